"""Conditional GANs: G(z, y) and D(x, y) for the MLP and the DCGAN."""

import numpy as np
import pytest

import minigan as mg
from minigan import models
from minigan.nn import functional as F
from minigan.train import Config, Trainer, train

LABELS = np.array([0, 3, 9, 3, 7])


@pytest.mark.parametrize("name", ["mlp", "dcgan"])
@pytest.mark.parametrize("critic", [False, True])
def test_conditional_shapes(name, critic):
    mg.manual_seed(0)
    G, D = models.build(name, conditional=True, critic=critic)
    z = mg.randn(5, models.LATENT_DIM)
    images = G(z, LABELS)
    assert images.shape == (5, 1, 28, 28)
    assert D(images, LABELS).shape == (5, 1)
    # The label widens the first layers: 10 more inputs for G, and for D 10 more
    # inputs (MLP) or 10 more input channels (DCGAN).
    first_g = next(m for m in G.modules() if isinstance(m, mg.nn.Linear))
    assert first_g.in_features == models.LATENT_DIM + 10
    first_d = next(m for m in D.modules() if isinstance(m, (mg.nn.Linear, mg.nn.Conv2d)))
    assert (first_d.in_features if name == "mlp" else first_d.in_channels) == (28 * 28 + 10 if name == "mlp" else 11)


@pytest.mark.parametrize("name", ["mlp", "dcgan"])
def test_the_label_changes_the_outputs_and_gets_gradients(name):
    mg.manual_seed(1)
    G, D = models.build(name, conditional=True)
    G.eval()
    z = mg.randn(5, models.LATENT_DIM)
    other = (LABELS + 1) % 10
    assert not np.allclose(G(z, LABELS).numpy(), G(z, other).numpy())
    x = G(z, LABELS).detach()
    assert not np.allclose(D(x, LABELS).numpy(), D(x, other).numpy())
    D(x, LABELS).sum().backward()
    # Only the weights that read the label planes/inputs of the classes present get a gradient.
    first = next(m for m in D.modules() if isinstance(m, (mg.nn.Linear, mg.nn.Conv2d)))
    label_grad = first.weight.grad[:, 784:] if name == "mlp" else first.weight.grad[:, 1:]
    used = np.abs(label_grad).reshape(label_grad.shape[0], 10, -1).sum(axis=(0, 2)) > 0
    assert used.tolist() == [c in LABELS for c in range(10)]


def test_one_hot():
    like = mg.zeros(1)
    np.testing.assert_array_equal(F.one_hot(np.array([2, 0]), 3, like).numpy(), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match="labels in 0..9"):
        F.one_hot(np.array([10]), 10, like)
    for labels in (np.array([0.5, 1.0]), [1.0, 2.0]):  # 0.5 matched no class: a row of zeros
        with pytest.raises(ValueError, match="expected a 1-D array of integer labels in 0..9"):
            F.one_hot(labels, 10, like)
    with pytest.raises(ValueError, match="^cross_entropy: expected a 1-D array of integer labels in 0..2"):
        F.cross_entropy(mg.zeros(2, 3), np.array([0.5, 2.0]))


def test_conditional_sample_grid_has_one_row_per_digit():
    trainer = Trainer(Config(model="mlp", conditional=True, batch_size=8, limit=64, metrics=False))
    np.testing.assert_array_equal(trainer.fixed_labels, np.repeat(np.arange(10), 8))
    z = trainer.fixed_z.numpy().reshape(10, 8, -1)
    assert (z == z[:1]).all()  # the same 8 noise vectors in every row: columns share a style
    assert trainer.samples().shape == (80, 1, 28, 28)
    # A conditional train step uses the batch's labels for the fakes.
    real, labels = next(iter(trainer.loader))
    stats = trainer.train_step(real, labels)
    assert np.isfinite(stats["loss_d"].item())
    # Balanced classes for the metrics' samples.
    assert np.bincount(trainer.eval_noise[1]).tolist() == [100] * 10


def test_conditional_checkpoint_keeps_its_shape(tmp_path):
    """An unconditional run cannot load a conditional one's weights (other shapes)."""
    from minigan.train import TrainingError

    trainer = Trainer(Config(model="mlp", conditional=True, batch_size=8, limit=64, metrics=False))
    trainer.save(tmp_path / "c.npz")
    with pytest.raises(TrainingError, match="conditional"):
        Trainer(Config(model="mlp", batch_size=8, limit=64, metrics=False)).load(tmp_path / "c.npz")


@pytest.mark.parametrize("model, conditional, ema", [("mlp", False, 0.0), ("dcgan", True, 0.9)])
def test_a_run_with_another_latent_dim_trains_and_draws_every_picture(tmp_path, model, conditional, ema):
    config = Config(model=model, conditional=conditional, ema=ema, latent_dim=8, batch_size=8, limit=16, epochs=1,
                    metrics=False, out=str(tmp_path))
    trainer = train(config, progress=False)["trainer"]  # the training steps, the sample grids, the interpolation
    first_g = next(m for m in trainer.G.modules() if isinstance(m, mg.nn.Linear))
    assert first_g.in_features == 8 + (10 if conditional else 0)
    assert trainer.samples(*trainer.eval_noise).shape == (1000, 1, 28, 28)  # the metrics' samples
    assert (tmp_path / "interpolation.png").exists()
