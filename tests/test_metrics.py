"""The metrics: Fréchet distance, classifier score, coverage (on arrays with known
answers), the classifier (a quick one: no cached weights needed), slerp, the dashboard."""

import json
import os
import re

import numpy as np
import pytest

import minigan as mg
from minigan import dashboard, metrics, plots
from minigan.nn import functional as F
from minigan.train import Config, train


# --- Fréchet distance --------------------------------------------------------------
def test_frechet_distance_of_identical_gaussians_is_zero():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 6))
    cov = a @ a.T
    mu = rng.standard_normal(6)
    assert metrics.frechet_distance(mu, cov, mu, cov) == pytest.approx(0, abs=1e-9)


def test_frechet_distance_in_one_dimension():
    """N(μ₁, σ₁²) vs N(μ₂, σ₂²): (μ₁ - μ₂)² + (σ₁ - σ₂)²."""
    d = metrics.frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[0.25]]))
    assert d == pytest.approx(9 + (2 - 0.5) ** 2)


def test_frechet_distance_against_the_eigenvalues_of_the_product():
    """tr((Σ₁Σ₂)^½) is the sum of the square roots of the eigenvalues of Σ₁Σ₂ (real
    and >= 0 though the product is not symmetric): an independent reference."""
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 5, 5))
    cov1, cov2 = a @ a.T + 0.1 * np.eye(5), b @ b.T
    mu1, mu2 = rng.standard_normal((2, 5))
    trace_sqrt = np.sqrt(np.linalg.eigvals(cov1 @ cov2).real.clip(0)).sum()
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt
    assert metrics.frechet_distance(mu1, cov1, mu2, cov2) == pytest.approx(expected, rel=1e-9)
    assert metrics.frechet_distance(mu2, cov2, mu1, cov1) == pytest.approx(expected, rel=1e-9)  # symmetric


# --- score and coverage --------------------------------------------------------------
def test_classifier_score_extremes():
    sharp_balanced = np.eye(10)[np.arange(100) % 10]
    assert metrics.classifier_score(sharp_balanced) == pytest.approx(10, rel=1e-6)
    assert metrics.classifier_score(np.full((50, 10), 0.1)) == pytest.approx(1)  # unsure
    assert metrics.classifier_score(np.eye(10)[np.zeros(50, int)]) == pytest.approx(1)  # one class only
    two_classes = np.eye(10)[np.arange(100) % 2]
    assert metrics.classifier_score(two_classes) == pytest.approx(2, rel=1e-6)


def test_class_coverage():
    hit, kl, histogram = metrics.class_coverage(np.arange(1000) % 10)
    assert (hit, kl) == (10, pytest.approx(0)) and histogram.sum() == pytest.approx(1)
    hit, kl, _ = metrics.class_coverage(np.full(1000, 3))
    assert (hit, kl) == (1, pytest.approx(np.log(10)))
    # 9 classes share 991 samples, class 9 gets 9 (under a fifth of its fair 100): not hit
    predicted = np.concatenate([np.arange(991) % 9, np.full(9, 9)])
    assert metrics.class_coverage(predicted)[0] == 9


# --- the classifier ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def quick_classifier():
    """A classifier trained briefly on 2,000 digits (a few seconds)."""
    return metrics.train_classifier(epochs=3, train_size=2000, progress=False)


def test_quick_classifier_learns_digits(quick_classifier):
    assert quick_classifier.accuracy > 0.9  # (the full training reaches >= 97%)
    features, probs = quick_classifier.read(mg.data.mnist(split="test")[0][:7])
    assert features.shape == (7, 128) and probs.shape == (7, 10)
    np.testing.assert_allclose(probs.sum(1), 1)


def test_floor_is_better_than_ceiling(quick_classifier):
    bounds = metrics.Evaluator(quick_classifier).bounds(n=500)
    floor, ceiling = bounds["floor"], bounds["ceiling"]
    assert floor["fid"] < ceiling["fid"] / 10
    assert floor["score"] > 5 > 2 > ceiling["score"]
    assert floor["classes_hit"] == 10 and floor["class_kl"] < 0.05


def test_bounds_are_kept_per_sample_count_and_seed(quick_classifier):
    evaluator = metrics.Evaluator(quick_classifier)
    small, large = evaluator.bounds(n=100), evaluator.bounds(n=500)
    assert evaluator.bounds(n=100) is small  # computed once
    assert small["floor"]["fid"] != large["floor"]["fid"]  # (100 samples: a larger FID)
    assert evaluator.bounds(n=100, seed=1)["floor"]["fid"] != small["floor"]["fid"]
    with pytest.raises(ValueError, match="positive multiple of 10, got 105"):
        evaluator.bounds(n=105)


@pytest.mark.parametrize("shape, fill, message", [
    ((1, 1, 28, 28), 0.0, r"at least 2 images of shape \(N, 1, 28, 28\), got shape \(1, 1, 28, 28\)"),
    ((0, 1, 28, 28), 0.0, r"got shape \(0, 1, 28, 28\)"),
    ((4, 28, 28), 0.0, r"got shape \(4, 28, 28\)"),
    ((4, 1, 28, 28), np.nan, "NaN or infinity: has the generator diverged"),
])
def test_evaluate_names_images_it_cannot_score(quick_classifier, shape, fill, message):
    evaluator = metrics.Evaluator(quick_classifier)
    with pytest.raises(ValueError, match=message):
        evaluator.evaluate(np.full(shape, fill, np.float32))


def test_an_unusable_classifier_cache_is_named(tmp_path, monkeypatch, quick_classifier, capsys):
    monkeypatch.setattr(metrics, "train_classifier", lambda **kwargs: quick_classifier)
    path = metrics._cache_path(tmp_path)
    metrics.load_classifier(cache_dir=tmp_path, progress=False)
    with open(path, "r+b") as f:
        f.truncate(1000)  # a cache cut short
    with pytest.raises(FileNotFoundError, match=f"the classifier cached at {re.escape(path)} is unusable"):
        metrics.load_classifier(cache_dir=tmp_path, train_if_missing=False)
    metrics.load_classifier(cache_dir=tmp_path, progress=False)  # trained again, and says why
    assert "is unusable" in capsys.readouterr().out
    metrics.load_classifier(cache_dir=tmp_path, train_if_missing=False)  # and cached again


def test_classifier_is_cached(tmp_path, monkeypatch, quick_classifier):
    with pytest.raises(FileNotFoundError, match="python -m minigan.metrics"):
        metrics.load_classifier(cache_dir=tmp_path, train_if_missing=False)
    monkeypatch.setattr(metrics, "train_classifier", lambda **kwargs: quick_classifier)
    first = metrics.load_classifier(cache_dir=tmp_path, progress=False)
    monkeypatch.setattr(metrics, "train_classifier", lambda **kwargs: pytest.fail("trained again"))
    second = metrics.load_classifier(cache_dir=tmp_path)
    images = mg.data.mnist(split="test")[0][:20]
    np.testing.assert_array_equal(first.predict(images), second.predict(images))
    assert second.accuracy == quick_classifier.accuracy


def test_a_run_without_progress_trains_its_classifier_without_progress_lines(tmp_path, monkeypatch, quick_classifier, capsys):
    monkeypatch.setenv("MINIGAN_CACHE", str(tmp_path / "cache"))
    asked = []
    monkeypatch.setattr(metrics, "train_classifier", lambda **kwargs: asked.append(kwargs["progress"]) or quick_classifier)
    train(Config(model="mlp", epochs=1, batch_size=16, limit=64, out=str(tmp_path / "run")), progress=False)
    assert asked == [False]  # (it printed 30 "classifier epoch" lines under --no-progress)
    assert "training the MNIST classifier for the metrics (once" in capsys.readouterr().out


def test_classifier_cache_that_cannot_be_written_warns_and_the_run_goes_on(tmp_path, monkeypatch, quick_classifier):
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a file where the cache folder should go
    monkeypatch.setenv("MINIGAN_CACHE", str(blocker / "cache"))
    monkeypatch.setattr(metrics, "train_classifier", lambda **kwargs: quick_classifier)
    path = re.escape(str(blocker / "cache" / f"{metrics.CLASSIFIER_FORMAT}.npz"))
    # Neither cache can be written, and neither stops the run.
    with (pytest.warns(RuntimeWarning, match="MNIST cache not written"),
          pytest.warns(RuntimeWarning, match=f"classifier cache not written to {path} \\(.*Not a directory.*in memory")):
        result = train(Config(model="mlp", epochs=1, batch_size=16, limit=64, out=str(tmp_path / "run")), progress=False)
    assert os.path.isfile(result["checkpoint"])
    assert "fid" in result["trainer"].epoch_metrics[-1]


def test_metrics_command_checks_its_json_path_before_the_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(metrics, "load_classifier", lambda **kwargs: pytest.fail("started the work"))
    path = tmp_path / "no-such-folder" / "bounds.json"
    with pytest.raises(SystemExit) as exit_:
        metrics.main(["--json", str(path)])
    assert exit_.value.code == 2
    assert f"error: argument --json: cannot write {path}: no folder {path.parent}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        metrics.main(["--json", str(tmp_path)])
    assert f"cannot write {tmp_path}: it is a folder; give a file name" in capsys.readouterr().err


def test_cross_entropy_and_log_softmax():
    x = mg.tensor(np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]]), dtype="float64")
    logp = F.log_softmax(x, dim=1).numpy()
    assert np.isfinite(logp).all()
    np.testing.assert_allclose(logp[0], [1, 2, 3] - np.log(np.exp([1, 2, 3]).sum()))
    loss = F.cross_entropy(x, np.array([2, 0])).item()
    assert loss == pytest.approx(-(logp[0, 2] + logp[1, 0]) / 2)


# --- slerp and the dashboard -----------------------------------------------------------
def test_slerp():
    rng = np.random.default_rng(0)
    z0, z1 = rng.standard_normal((2, 4, 100))
    z1 *= np.linalg.norm(z0, axis=1, keepdims=True) / np.linalg.norm(z1, axis=1, keepdims=True)
    np.testing.assert_allclose(dashboard.slerp(z0, z1, 0.0), z0, atol=1e-12)
    np.testing.assert_allclose(dashboard.slerp(z0, z1, 1.0), z1, atol=1e-12)
    middle = dashboard.slerp(z0, z1, 0.5)
    # Stays on the sphere (a straight line would cut inside it) and halfway in angle.
    np.testing.assert_allclose(np.linalg.norm(middle, axis=1), np.linalg.norm(z0, axis=1))
    np.testing.assert_allclose((middle * z0).sum(1), (middle * z1).sum(1))
    assert (np.linalg.norm((z0 + z1) / 2, axis=1) < np.linalg.norm(z0, axis=1)).all()


def test_training_writes_metrics_and_dashboard(tmp_path, monkeypatch, quick_classifier, capsys):
    monkeypatch.setattr(metrics, "load_classifier", lambda **kwargs: quick_classifier)
    result = train(Config(model="mlp", epochs=2, batch_size=16, limit=64, out=str(tmp_path)), progress=False)
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert [e["epoch"] for e in record["epochs"]] == [1, 2]
    last = record["epochs"][-1]
    for key in ("loss_d", "loss_g", "d_real", "d_fake", "fid", "score", "classes_hit", "class_kl"):
        assert np.isfinite(last[key])
    assert len(last["histogram"]) == 10 and sum(last["histogram"]) == pytest.approx(1, abs=1e-3)
    assert record["floor"]["fid"] < record["ceiling"]["fid"]
    for name in ("dashboard.png", "interpolation.png", "timeline.png"):
        assert os.path.getsize(tmp_path / name) > 1000
    assert sorted(result["trainer"].timeline) == [1, 2]
    # 8 steps of an MLP GAN draw blobs, not 10 kinds of digits: the warning is printed.
    assert "mode collapse" in capsys.readouterr().out


def test_dashboard_of_a_run_with_no_steps_yet(tmp_path):
    from minigan.dashboard import save_dashboard

    save_dashboard([], [], {}, str(tmp_path / "dashboard.png"))  # empty curves, not a crash
    assert (tmp_path / "dashboard.png").stat().st_size > 0


def test_the_dashboards_running_mean_leaves_a_short_run_a_curve():
    # 25 steps wide on a long run; a run of 8 steps still gets a curve of several
    # points (one point alone draws no line).
    assert len(dashboard._smooth(np.arange(100.0))) == 100 - 25 + 1
    smoothed = dashboard._smooth(np.arange(8.0))
    assert len(smoothed) >= 4
    np.testing.assert_allclose(np.diff(smoothed), 1.0)  # the running mean of a ramp is a ramp


def test_a_short_timelines_title_fits_in_its_picture(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(dashboard.plt, "close", figures.append)  # keep the figure to measure it
    # One column (a run that reported one epoch): 32 pixels of grid, narrower than the title.
    dashboard.save_timeline({3: np.zeros((8, 1, 28, 28), np.float32)}, tmp_path / "timeline.png")
    (figure,) = figures
    (title,) = figure.texts
    assert title.get_text() == "fixed noise, epoch 3"
    box = title.get_window_extent(figure.canvas.get_renderer())
    assert 0 <= box.x0 and box.x1 <= figure.bbox.width


def _kept_figure(monkeypatch, draw):
    figures = []
    monkeypatch.setattr(plots.plt, "close", figures.append)  # keep the figure to look at it
    draw()
    (figure,) = figures
    return figure


def test_image_grid_places_each_image_inside_a_border():
    images = np.linspace(-1, 1, 10 * 28 * 28, dtype=np.float32).reshape(10, 1, 28, 28)
    grid = plots.image_grid(images, nrow=4, pad=2)
    assert grid.shape == (3 * 30 + 2, 4 * 30 + 2)  # (rows·(H+pad)+pad, nrow·(W+pad)+pad)
    np.testing.assert_allclose(grid[2 + 30 : 2 + 30 + 28, 2 + 60 : 2 + 60 + 28], (images[6, 0] + 1) / 2)  # row 1, column 2
    assert (grid[:2] == 1).all() and (grid[:, -2:] == 1).all() and (grid[2 + 60 :, 2 + 60 :] == 1).all()  # border, empty cells


def test_a_conditional_grid_names_the_digit_of_each_row(tmp_path, monkeypatch):
    images = np.zeros((20, 1, 28, 28), np.float32)
    figure = _kept_figure(monkeypatch, lambda: plots.save_grid(images, tmp_path / "g.png", nrow=4, row_labels=range(5)))
    (ax,) = figure.axes
    assert [t.get_text() for t in ax.texts] == ["0", "1", "2", "3", "4"]
    with pytest.raises(ValueError, match=r"save_grid: 4 row labels for 5 rows of 4 images"):
        plots.save_grid(images, tmp_path / "g.png", nrow=4, row_labels=range(4))
    renderer = figure.canvas.get_renderer()
    # Each label sits left of the grid, at the height of its row (five rows of 30 pixels).
    grid_left = ax.transData.transform((-0.5, 0))[0]
    rows = [ax.transData.transform((0, 2 + 30 * r + 14))[1] for r in range(5)]
    for text, y in zip(ax.texts, rows):
        box = text.get_window_extent(renderer)
        assert 0 <= box.x0 and box.x1 <= grid_left and box.y0 <= y <= box.y1


def test_the_loss_plot_of_a_critic_shows_scores_not_probabilities(tmp_path, monkeypatch):
    history = [{"loss_d": -1.0, "loss_g": 0.5, "d_real": 0.2 + 0.1 * i, "d_fake": 0.1} for i in range(3)]
    for critic, title in ((True, "critic scores"), (False, "discriminator outputs (probabilities)")):
        figure = _kept_figure(monkeypatch, lambda: plots.plot_losses(history, tmp_path / "l.png", critic=critic))
        scores = figure.axes[1]
        assert scores.get_title() == title
        # Scores are not clipped to [0, 1] (here they are inside it: the old guess took them for probabilities).
        assert (scores.get_ylim() == (0, 1)) != critic
        assert all(float(t).is_integer() for t in scores.get_xticks())  # whole steps


def _dashboard_figure(tmp_path, monkeypatch, epochs):
    """The figure save_dashboard draws for these epoch records (kept open to look at)."""
    figures = []
    monkeypatch.setattr(dashboard.plt, "close", figures.append)
    history = [{"loss_d": 1.0, "loss_g": 1.0, "d_real": 0.6, "d_fake": 0.3}] * 100
    dashboard.save_dashboard(history, epochs, {}, str(tmp_path / "dashboard.png"))
    (figure,) = figures
    return figure.axes  # losses, D's outputs, classes; FID, score, classes covered


def test_the_dashboards_epoch_axes_count_whole_epochs(tmp_path, monkeypatch):
    record = {"fid": 50.0, "score": 8.0, "classes_hit": 10, "histogram": [0.1] * 10}
    axes = _dashboard_figure(tmp_path, monkeypatch, [dict(record, epoch=e) for e in range(1, 21)])
    for ax in axes[3:]:
        assert ax.get_xlabel() == "epoch"
        assert all(tick == int(tick) for tick in ax.get_xticks()), ax.get_xticks()


def test_the_dashboard_of_a_run_without_metrics_says_so(tmp_path, monkeypatch):
    axes = _dashboard_figure(tmp_path, monkeypatch, [{"epoch": 1, "loss_d": 1.0}])  # metrics=False: no fid
    for ax in axes[2:]:
        assert [text.get_text() for text in ax.texts] == ["not measured in this run"]
