"""examples/mnist_gan.py on bad input: one line on stderr that starts with "error:",
a non-zero exit status, and no traceback.

Each case is a fresh Python process, most of whose second goes into importing
minigan, so the processes run a few at a time and each test checks one result.
At the end, the example's own functions: the flags a resumed run may change, and
what an interruption without saving says."""

import importlib.util
import os
import signal
import subprocess
import sys
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from minigan.checkpoint import load_checkpoint, save_checkpoint
from minigan.train import Config, Trainer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "mnist_gan.py"
# The script's own folder heads its sys.path, not the checkout: make it import this
# checkout's minigan rather than whichever one is installed.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
QUICK = ["--model", "mlp", "--limit", "16", "--batch-size", "8", "--no-metrics"]

# name: (flags, the message; {tmp} is the folder with the files below)
CASES = {
    "negative epochs": (["--epochs", "-1"], "error: epochs must be a positive integer, got -1"),
    "zero batch size": (["--batch-size", "0"], "error: batch size must be an integer of at least 2 (batch norm needs 2), got 0"),
    "zero latent dim": (["--latent-dim", "0"], "error: latent dim must be a positive integer, got 0"),
    "unknown model": (["--model", "resnet"], "error: unknown model 'resnet' (expected one of: mlp, dcgan)"),
    "epochs not a number": (["--epochs", "ten"], "error: argument --epochs: invalid int value: 'ten' (see --help)"),
    "unknown flag": (["--learning-rate", "1"], "error: unrecognized arguments: --learning-rate 1 (see --help)"),
    "negative learning rate": (["--lr", "-0.1"], "error: learning rate must be positive, got -0.1"),
    "infinite learning rate": (["--lr", "inf"], "error: learning rate must be finite, got inf"),
    "unknown device": (["--device", "tpu"], "error: unknown device 'tpu': expected one of 'cpu', 'cuda' or 'auto'"),
    "more digits than there are": (["--limit", "100000"], "error: limit 100000 is more than the 5000 digits there are"),
    "missing data folder": (["--data-dir", "{tmp}/nowhere"],
                            "error: MNIST folder {tmp}/nowhere does not exist; expected a folder holding train-images-idx3-ubyte"),
    "data folder that is a file": (["--data-dir", "{tmp}/a-file"],
                                   "error: {tmp}/a-file is not a folder; expected a folder holding train-images-idx3-ubyte"),
    "truncated IDX file": (["--data-dir", "{tmp}/truncated"],
                           "error: {tmp}/truncated/train-images-idx3-ubyte: expected 7856 bytes for dims [10, 28, 28], "
                           "found 3936 (truncated or corrupt)"),
    "corrupt IDX file": (["--data-dir", "{tmp}/corrupt"],
                         "error: {tmp}/corrupt/train-images-idx3-ubyte: bad magic number 0x00000804, expected 0x00000803"),
    "output folder not writable": ([*QUICK, "--out", "{tmp}/a-file/run"],
                                   "error: cannot write to the output folder '{tmp}/a-file/run': Not a directory"),
    "output folder of another run": ([*QUICK, "--out", "{tmp}/done"],
                                     "error: {tmp}/done already holds the checkpoint of another run: "
                                     "continue it with --resume {tmp}/done/checkpoint.npz, or choose another --out"),
    "missing checkpoint": (["--resume", "{tmp}/missing.npz"], "error: checkpoint '{tmp}/missing.npz' does not exist (or is not a file)"),
    "run folder for its checkpoint": (["--resume", "{tmp}/done/"],
                                      "error: '{tmp}/done/' is a run folder: resume from its checkpoint, '{tmp}/done/checkpoint.npz'"),
    "not a checkpoint": (["--resume", "{tmp}/notes.txt"], "error: '{tmp}/notes.txt' is not a minigan checkpoint (not an .npz archive)"),
    "truncated checkpoint": (["--resume", "{tmp}/cut.npz"], "error: '{tmp}/cut.npz' is truncated or corrupt"),
    "checkpoint from a newer minigan": (["--resume", "{tmp}/newer.npz"],
                                        "error: '{tmp}/newer.npz' has settings this minigan does not know: warp_drive"),
    "checkpoint of another model": (["--resume", "{tmp}/mlp.npz", "--model", "dcgan"],
                                    "error: '{tmp}/mlp.npz' comes from a run with model='mlp', but this run has model='dcgan'"),
    "resume with other settings": (["--resume", "{tmp}/mlp.npz", "--batch-size", "16"],
                                   "error: '{tmp}/mlp.npz' comes from a run with batch_size=8, but this run has batch_size=16"),
    "empty checkpoint path": (["--resume", ""], "error: argument --resume: needs a path, got '' (see --help)"),
    "checkpoint with a bool for an integer": (["--resume", "{tmp}/bool-seed.npz", "--epochs", "5"],
                                              "error: seed must be a non-negative integer, got True"),
    "loss becomes NaN": ([*QUICK, "--lr", "1e30", "--out", "{tmp}/nan"],
                         "error: loss_g became nan at step 1; training stopped. No checkpoint was saved before this."),
}


def _idx(magic, dims, data_size):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + bytes(data_size)


def _make_files(tmp):
    (tmp / "truncated").mkdir()
    (tmp / "truncated" / "train-images-idx3-ubyte").write_bytes(_idx(0x803, [10, 28, 28], 5 * 28 * 28))
    (tmp / "truncated" / "train-labels-idx1-ubyte").write_bytes(_idx(0x801, [10], 10))
    (tmp / "corrupt").mkdir()
    (tmp / "corrupt" / "train-images-idx3-ubyte").write_bytes(_idx(0x804, [10, 28, 28], 10 * 28 * 28))
    (tmp / "corrupt" / "train-labels-idx1-ubyte").write_bytes(_idx(0x801, [10], 10))
    (tmp / "a-file").write_text("")
    (tmp / "notes.txt").write_text("step,loss\n1,0.5\n")
    Trainer(Config(model="mlp", limit=16, batch_size=8, metrics=False)).save(tmp / "mlp.npz")
    (tmp / "cut.npz").write_bytes((tmp / "mlp.npz").read_bytes()[:5000])
    (tmp / "done").mkdir()
    (tmp / "done" / "checkpoint.npz").write_bytes((tmp / "mlp.npz").read_bytes())
    arrays, meta = load_checkpoint(tmp / "mlp.npz")
    meta["config"]["warp_drive"] = True
    save_checkpoint(tmp / "newer.npz", arrays, meta)
    del meta["config"]["warp_drive"]
    meta["config"]["seed"] = True  # a hand-edited checkpoint: True would pass as the integer 1
    save_checkpoint(tmp / "bool-seed.npz", arrays, meta)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """{case: (its expected message, the finished process)}."""
    tmp = tmp_path_factory.mktemp("cli")
    _make_files(tmp)

    def run(flags):
        flags = [f.format(tmp=tmp) for f in flags]
        # cwd=tmp: a run that gets as far as making its default folder makes it there.
        return subprocess.run([sys.executable, str(EXAMPLE), "--no-progress", *flags],
                              capture_output=True, text=True, timeout=300, cwd=tmp, env=ENV)

    with ThreadPoolExecutor(max_workers=4) as pool:
        done = pool.map(run, [flags for flags, _ in CASES.values()])
        return {case: (message.format(tmp=tmp), result) for (case, (_, message)), result in zip(CASES.items(), done)}


@pytest.mark.parametrize("case", CASES)
def test_user_error_is_one_line_without_traceback(results, case):
    message, result = results[case]
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message)


def test_an_unknown_model_is_the_only_error(results):
    """No DCGAN settings are applied to it (its depths would be errors of their own)."""
    message, result = results["unknown model"]
    assert result.stderr == message + "\n"


def _example():
    """examples/mnist_gan.py as a module, to call its functions."""
    spec = importlib.util.spec_from_file_location("mnist_gan", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example


def test_resume_can_turn_the_metrics_on_and_off(tmp_path):
    example = _example()
    checkpoint = tmp_path / "checkpoint.npz"
    Trainer(Config(model="mlp", limit=16, batch_size=8, metrics=False)).save(checkpoint)
    for flags, metrics in (([], False), (["--metrics"], True), (["--no-metrics"], False)):
        assert example.make_config(example.parse_args(["--resume", str(checkpoint), *flags])).metrics is metrics, flags
    assert example.make_config(example.parse_args([])).metrics is True


def test_the_size_of_gs_noise_is_a_flag():
    example = _example()
    assert example.make_config(example.parse_args([])).latent_dim == 100
    assert example.make_config(example.parse_args(["--latent-dim", "8"])).latent_dim == 8


@pytest.mark.parametrize("resume, raised, on_disk", [
    (None, KeyboardInterrupt("the checkpoint run/checkpoint.npz, at step 3, is intact"),
     "the checkpoint run/checkpoint.npz, at step 3, is intact"),  # a second Ctrl-C while training
    ("run/checkpoint.npz", KeyboardInterrupt(), "the checkpoint run/checkpoint.npz is intact"),  # before training
    (None, KeyboardInterrupt(), "no checkpoint was saved"),
])
def test_an_interruption_without_saving_says_what_is_on_disk(monkeypatch, capsys, resume, raised, on_disk):
    example = _example()

    def interrupted(*args, **kwargs):
        raise raised

    monkeypatch.setattr(example, "make_config", lambda args: None)
    monkeypatch.setattr(example, "train", interrupted)
    assert example.main(["--resume", resume] if resume else []) == 130
    assert capsys.readouterr().err == f"error: interrupted without saving ({on_disk})\n"


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_run_exits_with_the_shells_code_for_its_signal(monkeypatch, capsys, signum, code):
    example = _example()
    trainer = types.SimpleNamespace(step=7)
    monkeypatch.setattr(example, "make_config", lambda args: None)
    monkeypatch.setattr(example, "train", lambda *a, **k: {"trainer": trainer, "interrupted": signum, "checkpoint": "c.npz"})
    assert example.main([]) == code  # a SIGTERM exited with Ctrl-C's 130
    assert capsys.readouterr().out == "interrupted at step 7: saved c.npz (resume with --resume c.npz)\n"
