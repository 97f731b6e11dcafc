"""The benchmark suite runs (one tiny iteration of every row, with PyTorch beside
minigan when it is installed), and its op rows hand each op an output gradient
laid out like its output. Speed itself is measured by ``benchmarks/run.py``,
never here."""

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

import minigan
from minigan import models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_runner():
    spec = importlib.util.spec_from_file_location("benchmarks_run", os.path.join(ROOT, "benchmarks", "run.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_suite_writes_table_chart_and_results(tmp_path):
    run = load_runner()
    rows = run.main(["--quick", "--out", str(tmp_path)])
    names = [r["name"] for r in rows]
    assert "conv2d 64→128 (14×14), batch 2" in names
    assert "DCGAN training step, batch 2" in names and "MLP GAN training step, batch 2" in names
    assert all(r["minigan_s"] > 0 for r in rows)
    with_torch = run.torch is not None  # the PyTorch columns only where it is installed
    assert all(("torch_s" in r) == with_torch for r in rows)
    table = (tmp_path / "table.md").read_text()
    assert ("PyTorch (ms)" in table) == with_torch
    assert (tmp_path / "chart.png").stat().st_size > 0
    assert json.loads((tmp_path / "results.json").read_text())["rows"] == rows


def test_the_output_gradient_is_laid_out_like_the_output():
    # A channels-last output gets a channels-last gradient with the same values
    # (as torch.randn_like would give), so no row times a layout copy that a
    # network would not make.
    workloads = load_runner().workloads
    values = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    channels_last = np.ascontiguousarray(values.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    for y in (minigan.tensor(values), minigan.tensor(channels_last)):
        g = workloads._like(minigan, y, values)
        assert g.data.strides == y.data.strides
        np.testing.assert_array_equal(g.data, values)


def test_a_memory_bound_row_is_bounded_by_a_copy_of_its_own_size():
    # The copy's rate depends on which cache its arrays fit in, so each memory-bound
    # row gets a copy of an array as large as its input (read it, write another).
    run = load_runner()
    memory_bound = [w for w in run.workloads.OPS if w.bytes is not None]
    assert [w.name for w in memory_bound] == ["batch norm 2d (64×14×14)", "leaky ReLU (64×14×14)"]
    for w in memory_bound:
        values = w.values(8)
        assert values == 8 * 64 * 14 * 14
        assert w.bytes(8) == 5 * 4 * values  # read x, write y; read x and gy, write gx
        copy, gbyte = run.copy_ceiling(values)
        copy()
        assert gbyte == 2 * 4 * values / 1e9


def test_the_benchmarked_models_are_the_examples_models_layer_for_layer():
    # workloads.py writes each GAN once for both frameworks; with minigan's layers it
    # must be minigan.models' GAN: the same parameters and buffers and, given the
    # same weights, the same outputs (train mode: batch norm on the batch).
    workloads = load_runner().workloads
    z = minigan.tensor(np.random.default_rng(0).standard_normal((4, workloads.LATENT_DIM)).astype(np.float32))
    for name, mirror in (("mlp", workloads.mlp_gan), ("dcgan", workloads.dcgan)):
        (g, d), (g_model, d_model) = mirror(minigan), models.build(name)
        for ours, theirs in ((g, g_model), (d, d_model)):
            state = theirs.state_dict()
            assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in state.items()}
            ours.load_state_dict(state)
        images = g_model(z)
        np.testing.assert_array_equal(g(z).data, images.data)
        np.testing.assert_array_equal(d(images).data, d_model(images).data)


def test_the_report_gives_a_command_that_runs_again(tmp_path):
    run = load_runner()
    argv = ["--quick", "--only", "conv2d 64→128", "--out", str(tmp_path)]
    run.main(argv)
    text = (tmp_path / "table.md").read_text()
    command = text.split("`")[1]  # the report's first line quotes the command
    assert command == "python benchmarks/run.py --quick --only 'conv2d 64→128' --out " + str(tmp_path)
    assert run.parse_args(shlex.split(command)[2:]).only == "conv2d 64→128"


@pytest.mark.parametrize("argv, message", [
    (["--repeats", "0"], "--repeats must be at least 1, got 0"),
    (["--warmup", "-1"], "--warmup must be at least 0, got -1"),
    (["--step-batches", "64", "0"], r"--step-batches must each be at least 1, got \[64, 0\]"),
    (["--only", "nothing matches"], "--only 'nothing matches' matches no row; the rows: conv2d 1→64"),
    (["--quick", "--update-docs"], "--update-docs writes the whole table of a full run: not with --quick or --only"),
    (["--only", "DCGAN", "--update-docs"], "not with --quick or --only"),
    (["--no-t"], "unrecognized arguments: --no-t"),  # spelt out, as the import looks for it
])
def test_bad_arguments_are_refused_before_any_timing(argv, message, capsys):
    run = load_runner()
    with pytest.raises(SystemExit) as exit_:
        run.parse_args(argv)
    assert exit_.value.code == 2
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed")
def test_no_torch_leaves_pytorch_unloaded():
    # Loaded beside PyTorch's OpenMP runtime, minigan's kernels run serially: a
    # minigan-only run must not load it.
    code = ("import runpy, sys\n"
            "sys.argv = ['benchmarks/run.py', '--no-torch', '--help']\n"
            "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
            "except SystemExit:  # --help's exit\n    pass\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "False"


def test_the_step_profile_runs_and_accounts_for_the_whole_step():
    # (in a process of its own: the profile wraps minigan's ops for the rest of its process)
    out = subprocess.run([sys.executable, "benchmarks/profile_step.py", "--model", "mlp", "dcgan", "--batch", "2", "--repeats", "1"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for model in ("MLP GAN", "DCGAN"):
        block = out.split(f"{model} training step, batch 2: median")[1].split("largest items:")[0]
        shares = [int(line.split()[-1].rstrip("%")) for line in block.splitlines()[2:] if line.strip()]
        assert len(shares) == 6 and abs(sum(shares) - 100) <= 3  # six kinds, rounded to whole percents
        assert "matrix products" in block and "Python (graph, autograd, tensors)" in block


def test_startup_takes_no_flags_and_says_so():
    # (it used to ignore them and start its minute of measuring)
    done = subprocess.run([sys.executable, "benchmarks/startup.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.startswith("usage: startup.py [-h]")
