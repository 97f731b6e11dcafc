"""Exact resume: stopping and resuming changes nothing, bit for bit, on the CPU; and
training that goes bad (NaN) or is interrupted (Ctrl-C, SIGTERM) stops cleanly with a
checkpoint that works; and what a run shows meanwhile (its progress bar, its dashboard)."""

import dataclasses
import functools
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from minigan import dashboard, metrics
from minigan import train as train_module
from minigan.checkpoint import flatten, load_checkpoint
from minigan.train import Config, Trainer, TrainingError, prepare_output, train

from test_data import fake_set, write_idx
from test_example_cli import ENV, EXAMPLE  # the example, run with this checkout's minigan

# 24 digits in batches of 8: 3 steps an epoch. (The per-epoch metrics are deterministic
# too, but their classifier would take most of the time.)
SMALL = dict(limit=24, batch_size=8, epochs=2, metrics=False)


def _everything(trainer):
    """Every array and counter a run carries, as (name -> bytes or value): equal
    dicts mean bit-identical runs."""
    arrays, meta = trainer.state()
    state = {name: (a.dtype.str, a.shape, a.tobytes()) for name, a in flatten(arrays).items()}
    meta = {k: v for k, v in meta.items() if k != "config"}  # the output folders differ
    return state, meta


@pytest.mark.parametrize("model, ema", [("mlp", 0.0), ("dcgan", 0.0), ("dcgan", 0.9)])
def test_stop_and_resume_gives_bit_identical_weights(tmp_path, model, ema):
    n, k = 4, 2  # stop in the middle of the first epoch; the resumed run crosses into the second
    config = Config(model=model, ema=ema, **SMALL)
    straight = train(dataclasses.replace(config, out=str(tmp_path / "straight")), progress=False, max_steps=n)

    resumed_out = str(tmp_path / "resumed")
    first = train(dataclasses.replace(config, out=resumed_out), progress=False, max_steps=k)
    assert first["trainer"].step == k and first["trainer"].loader.position == 2
    second = train(dataclasses.replace(config, out=resumed_out), resume=first["checkpoint"], progress=False, max_steps=n)

    assert second["trainer"].step == straight["trainer"].step == n
    assert (first["steps_run"], second["steps_run"], straight["steps_run"]) == (k, n - k, n)
    assert _everything(second["trainer"]) == _everything(straight["trainer"])
    # The checkpoint on disk holds the same bits as the trainer.
    arrays, _ = load_checkpoint(second["checkpoint"])
    reference, _ = straight["trainer"].state()
    for name, a in flatten(reference).items():
        assert flatten(arrays)[name].tobytes() == a.tobytes(), name


def test_a_checkpoint_is_saved_at_every_epoch_end(tmp_path, monkeypatch):
    saved_steps = []
    save = Trainer.save
    monkeypatch.setattr(Trainer, "save", lambda self, path: (saved_steps.append(self.step), save(self, path)))
    train(Config(model="mlp", out=str(tmp_path), **SMALL), progress=False, max_steps=5)
    assert saved_steps == [3, 5]  # epoch 1's end, then the stop


def test_resume_must_keep_the_run_settings(tmp_path):
    first = train(Config(model="mlp", out=str(tmp_path), **SMALL), progress=False, max_steps=2)
    with pytest.raises(TrainingError, match="comes from a run with lr=0.0002, but this run has lr=0.001"):
        train(Config(model="mlp", out=str(tmp_path), lr=1e-3, **SMALL), resume=first["checkpoint"], progress=False)


def test_resume_takes_the_same_digits_from_another_folder_but_refuses_other_ones(tmp_path):
    digits = tmp_path / "digits"
    digits.mkdir()
    for part, (images, labels) in (("train", fake_set(16, 1)), ("t10k", fake_set(8, 2))):
        write_idx(digits, f"{part}-images-idx3-ubyte", images, 0x803)
        write_idx(digits, f"{part}-labels-idx1-ubyte", labels, 0x801)
    config = Config(model="mlp", data_dir=str(digits), out=str(tmp_path / "run"), **SMALL)
    first = train(config, progress=False, max_steps=2)
    moved = shutil.copytree(digits, tmp_path / "moved")
    assert train(dataclasses.replace(config, data_dir=str(moved)), resume=first["checkpoint"], progress=False,
                 max_steps=3)["trainer"].step == 3
    # As many digits, one pixel changed: other batches, so not the same run.
    images, labels = fake_set(16, 1)
    images[5, 10, 10] ^= 1
    write_idx(moved, "train-images-idx3-ubyte", images, 0x803)
    with pytest.raises(TrainingError, match=re.escape(f"{first['checkpoint']!r} was trained on other data: the arrays "
                                                      "differ from those the state was saved with")) as error:
        train(dataclasses.replace(config, data_dir=str(moved)), resume=first["checkpoint"], progress=False)
    assert str(error.value).endswith("the same files in another folder are fine (data_dir may change), other digits are not")


def test_resume_at_the_end_of_the_run_asks_for_more_epochs(tmp_path):
    done = train(Config(model="mlp", out=str(tmp_path), **SMALL), progress=False)
    with pytest.raises(TrainingError, match="the checkpoint is at step 6, after 2 epochs of 3 steps, and this run "
                                            "ends at step 6: ask for more than 2 epochs"):
        train(Config(model="mlp", out=str(tmp_path), **SMALL), resume=done["checkpoint"], progress=False)
    # Fewer epochs than the checkpoint has done: this run would end before it.
    with pytest.raises(TrainingError, match="the checkpoint is at step 6, after 2 epochs of 3 steps, and this run "
                                            "ends at step 3: ask for more than 2 epochs"):
        train(Config(model="mlp", out=str(tmp_path), **dict(SMALL, epochs=1)), resume=done["checkpoint"], progress=False)


def test_a_run_refuses_a_folder_holding_another_runs_checkpoint(tmp_path):
    config = Config(model="mlp", out=str(tmp_path / "run"), **SMALL)
    first = train(config, progress=False, max_steps=2)
    before = {path.name: path.read_bytes() for path in (tmp_path / "run").iterdir()}
    message = (f"{tmp_path / 'run'} already holds the checkpoint of another run: continue it with "
               f"--resume {first['checkpoint']}, or choose another --out")
    with pytest.raises(TrainingError, match=re.escape(message)):
        train(dataclasses.replace(config, seed=1), progress=False)
    assert {path.name: path.read_bytes() for path in (tmp_path / "run").iterdir()} == before  # nothing written
    # Resuming the run into another run's folder is refused too.
    other = train(dataclasses.replace(config, out=str(tmp_path / "other")), progress=False, max_steps=1)
    with pytest.raises(TrainingError, match="other already holds the checkpoint of another run"):
        train(dataclasses.replace(config, out=str(tmp_path / "other")), resume=first["checkpoint"], progress=False)
    assert load_checkpoint(other["checkpoint"])[1]["step"] == 1
    # Resuming into the run's own folder goes on as before.
    assert train(config, resume=first["checkpoint"], progress=False, max_steps=3)["trainer"].step == 3


def test_runs_started_in_the_same_second_get_folders_of_their_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(train_module.time, "strftime", lambda fmt: "20260101-120000")  # one second
    folders = [prepare_output(None, "mlp")[0] for _ in range(3)]
    assert folders == [os.path.join("runs", "mlp-20260101-120000" + suffix) for suffix in ("", "-2", "-3")]
    assert all(os.path.isdir(folder) for folder in folders)
    # A folder given by name is the one used, made or not (it is refused only once it holds a checkpoint).
    assert prepare_output("mine", "mlp") == prepare_output("mine", "mlp") == ("mine", os.path.join("mine", "checkpoint.npz"))


# --- a loss that becomes NaN ---------------------------------------------------------------
@pytest.mark.parametrize("bad_step, last_good", [(5, "step 3"), (2, None)])
def test_nan_loss_names_the_step_and_the_last_good_checkpoint(tmp_path, monkeypatch, bad_step, last_good):
    train_step = Trainer.train_step

    def poisoned(self, *batch):
        if self.step + 1 == bad_step:  # D's weights go NaN just before this step
            next(self.D.parameters()).data[...] = np.nan
        return train_step(self, *batch)

    monkeypatch.setattr(Trainer, "train_step", poisoned)
    checkpoint = tmp_path / "checkpoint.npz"
    # log_every=10: the losses are read back in groups, yet the message names the exact step.
    with pytest.raises(TrainingError) as error:
        train(Config(model="mlp", out=str(tmp_path), log_every=10, **SMALL), progress=False)
    message = str(error.value)
    assert message.startswith(f"loss_d became nan at step {bad_step}; training stopped.")
    if last_good is None:
        assert message.endswith("No checkpoint was saved before this.")
        assert not checkpoint.exists()
    else:
        assert message.endswith(f"The last good checkpoint is {checkpoint} ({last_good}).")
        arrays, meta = load_checkpoint(checkpoint)
        assert meta["step"] == 3 and all(np.isfinite(a).all() for a in flatten(arrays).values())


# --- Ctrl-C and SIGTERM ------------------------------------------------------------------
def test_ctrl_c_in_the_first_epoch_finishes_the_step_and_saves(tmp_path, monkeypatch):
    train_step = Trainer.train_step

    def interrupted(self, *batch):
        if self.step == 1:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C at the start of step 2
        return train_step(self, *batch)

    monkeypatch.setattr(Trainer, "train_step", interrupted)
    result = train(Config(model="mlp", out=str(tmp_path), **SMALL), progress=False)
    assert result["interrupted"] and result["trainer"].step == 2
    assert load_checkpoint(result["checkpoint"])[1]["step"] == 2


def test_sigterm_saves_as_ctrl_c_does_and_the_handlers_are_put_back(tmp_path, monkeypatch):
    """A kill, a timeout or a job scheduler stops a run with SIGTERM: it finishes the step and saves."""
    train_step = Trainer.train_step

    def terminated(self, *batch):
        if self.step == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return train_step(self, *batch)

    def not_handled(signum, frame):
        raise AssertionError("SIGTERM reached the handler from before training")

    monkeypatch.setattr(Trainer, "train_step", terminated)
    before = signal.signal(signal.SIGTERM, not_handled), signal.getsignal(signal.SIGINT)
    try:
        result = train(Config(model="mlp", out=str(tmp_path), **SMALL), progress=False)
        assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == (not_handled, before[1])
    finally:
        signal.signal(signal.SIGTERM, before[0])
    assert result["interrupted"] == signal.SIGTERM and result["trainer"].step == 2
    assert load_checkpoint(result["checkpoint"])[1]["step"] == 2


def test_a_second_ctrl_c_stops_at_once_and_names_the_checkpoint_on_disk(tmp_path, monkeypatch):
    train_step = Trainer.train_step

    def interrupted_twice(self, *batch):
        if self.step == 4:  # in epoch 2: epoch 1's checkpoint (step 3) is on disk
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return train_step(self, *batch)

    monkeypatch.setattr(Trainer, "train_step", interrupted_twice)
    checkpoint = tmp_path / "checkpoint.npz"
    with pytest.raises(KeyboardInterrupt, match=f"^{re.escape(f'the checkpoint {checkpoint}, at step 3, is intact')}$"):
        train(Config(model="mlp", out=str(tmp_path), **SMALL), progress=False)
    assert load_checkpoint(checkpoint)[1]["step"] == 3


def test_ctrl_c_after_the_last_step_is_not_an_interruption(tmp_path, monkeypatch):
    """A Ctrl-C while the final pictures are drawn stops nothing: the run is complete."""
    plot_losses = train_module.plot_losses

    def interrupted(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return plot_losses(*args, **kwargs)

    monkeypatch.setattr(train_module, "plot_losses", interrupted)
    result = train(Config(model="mlp", out=str(tmp_path), **SMALL), progress=False)
    assert not result["interrupted"] and result["trainer"].step == 6


def test_ctrl_c_before_the_first_step_leaves_a_checkpoint_to_resume(tmp_path, monkeypatch):
    """The example says "saved ... resume with --resume" after any stop: so there must be one."""
    tqdm = train_module.tqdm

    def progress_bar(*args, **kwargs):  # made once the Ctrl-C handler is in place
        os.kill(os.getpid(), signal.SIGINT)
        return tqdm(*args, **kwargs)

    monkeypatch.setattr(train_module, "tqdm", progress_bar)
    result = train(Config(model="mlp", out=str(tmp_path), **SMALL), progress=False)
    assert result["interrupted"] and result["trainer"].step == 0
    monkeypatch.setattr(train_module, "tqdm", tqdm)
    resumed = train(Config(model="mlp", out=str(tmp_path), **SMALL), resume=result["checkpoint"], progress=False)
    assert not resumed["interrupted"] and resumed["trainer"].step == 6


def test_ctrl_c_while_the_metrics_classifier_trains_stops_at_once(tmp_path, monkeypatch):
    """The first run trains the classifier behind the metrics (a minute or so): before
    the first step, so that a Ctrl-C then stops the run at once, with nothing to save."""
    def load_classifier(**kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while it trains
        raise AssertionError("the Ctrl-C did not stop the run")

    monkeypatch.setattr(metrics, "load_classifier", load_classifier)
    with pytest.raises(KeyboardInterrupt):
        train(Config(model="mlp", out=str(tmp_path), **dict(SMALL, metrics=True)), progress=False)
    assert not (tmp_path / "checkpoint.npz").exists()


def test_ctrl_c_saves_and_the_example_resumes_bit_identically(tmp_path):
    flags = ["--model", "mlp", "--limit", "24", "--batch-size", "8", "--report-every", "1", "--no-metrics", "--no-progress"]
    out = tmp_path / "run"
    checkpoint = out / "checkpoint.npz"
    run = subprocess.Popen([sys.executable, str(EXAMPLE), *flags, "--epochs", "100", "--out", str(out)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 60
    while not checkpoint.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the first checkpoint: training is under way
    run.send_signal(signal.SIGINT)
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr
    assert "Traceback" not in stderr
    message = stdout.splitlines()[-1]  # the one line that says what happened
    stopped_at = int(message.split()[3].rstrip(":"))
    assert message == f"interrupted at step {stopped_at}: saved {checkpoint} (resume with --resume {checkpoint})"
    assert load_checkpoint(checkpoint)[1]["step"] == stopped_at

    # Resume to the end of epoch 4 (or one epoch more), then compare with a run straight there.
    epochs = max(4, stopped_at // 3 + 1)
    resumed = subprocess.run([sys.executable, str(EXAMPLE), "--resume", str(checkpoint), "--epochs", str(epochs),
                              "--no-progress"], capture_output=True, text=True, timeout=120, env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert f"trained mlp for {3 * epochs} steps ({3 * epochs - stopped_at} of them in this run) in " in resumed.stdout
    straight = train(Config(model="mlp", **dict(SMALL, epochs=epochs), out=str(tmp_path / "straight")), progress=False)
    arrays, meta = load_checkpoint(checkpoint)
    assert meta["step"] == straight["trainer"].step == 3 * epochs
    reference, _ = straight["trainer"].state()
    for name, a in flatten(reference).items():
        assert flatten(arrays)[name].tobytes() == a.tobytes(), name


# --- what a run shows --------------------------------------------------------------------
def test_the_progress_bar_into_a_log_file_is_not_redrawn_at_every_step(tmp_path, capsys):
    # Not a terminal (pytest captures stderr): the bar is drawn at the start and the end,
    # not once per batch of statistics (48 steps, read every log_every steps), nor once
    # per epoch (its description, "epoch 3/8", drew it at once).
    train(Config(model="mlp", out=str(tmp_path), **dict(SMALL, limit=48, epochs=8, log_every=2)), progress=True)
    drawn = capsys.readouterr().err.count("\r")
    assert 1 <= drawn <= 4, drawn


def test_the_progress_bar_shows_both_losses_on_an_80_column_terminal(tmp_path, monkeypatch):
    """A line longer than the terminal is cut at its end: the losses come first, so they stay."""
    drawn = io.StringIO()
    monkeypatch.setattr(train_module, "tqdm", functools.partial(train_module.tqdm, ncols=80, file=drawn))
    result = train(Config(model="mlp", out=str(tmp_path), **dict(SMALL, log_every=1)), progress=True)
    last = result["trainer"].history[-1]
    line = drawn.getvalue().split("\r")[-1].strip()  # the last redraw
    assert len(line) <= 80 and f"loss D {last['loss_d']:.3f} G {last['loss_g']:.3f}" in line, line


def test_the_dashboards_step_axes_count_whole_steps(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(dashboard.plt, "close", figures.append)  # keep the figure to look at it
    history = [{"loss_d": 1.0, "loss_g": 1.0, "d_real": 0.6, "d_fake": 0.3}] * 6  # a short run: steps 3 to 6 drawn
    dashboard.save_dashboard(history, [], {}, str(tmp_path / "dashboard.png"))
    (figure,) = figures
    for ax in figure.axes[:2]:  # the losses, D's outputs
        assert ax.get_xlabel() == "step"
        assert all(float(tick).is_integer() for tick in ax.get_xticks()), ax.get_xticks()


def test_a_stop_in_an_epochs_last_step_saves_before_the_epochs_report(tmp_path, monkeypatch):
    # The report (samples, metrics, dashboard) takes seconds; after a SIGTERM a
    # scheduler may not wait that long, so the checkpoint comes first.
    train_step, write_epoch = Trainer.train_step, dashboard.write_epoch
    checkpoint = tmp_path / "checkpoint.npz"

    def stopped_in_the_last_step(self, *batch):
        if self.step == 2:  # step 3 ends epoch 1
            os.kill(os.getpid(), signal.SIGTERM)
        return train_step(self, *batch)

    def report(trainer, out, epoch, steps):
        assert load_checkpoint(checkpoint)[1]["step"] == 3  # already on disk
        return write_epoch(trainer, out, epoch, steps=steps)

    monkeypatch.setattr(Trainer, "train_step", stopped_in_the_last_step)
    monkeypatch.setattr(dashboard, "write_epoch", report)
    result = train(Config(model="mlp", out=str(tmp_path), **SMALL), progress=False)
    assert result["interrupted"] == signal.SIGTERM and result["trainer"].step == 3
    assert load_checkpoint(checkpoint)[1]["step"] == 3 and (tmp_path / "samples_epoch001.png").exists()


def test_a_stop_in_the_middle_of_an_epoch_writes_the_checkpoint_once(tmp_path, monkeypatch):
    train_step, save = Trainer.train_step, Trainer.save
    saved_at = []

    def stopped(self, *batch):
        if self.step == 1:  # in the middle of epoch 1 (3 steps)
            os.kill(os.getpid(), signal.SIGINT)
        return train_step(self, *batch)

    def counted(self, path):
        saved_at.append(self.step)
        return save(self, path)

    monkeypatch.setattr(Trainer, "train_step", stopped)
    monkeypatch.setattr(Trainer, "save", counted)
    result = train(Config(model="mlp", out=str(tmp_path), **SMALL), progress=False)
    assert result["interrupted"] == signal.SIGINT and saved_at == [2]  # it was written twice
