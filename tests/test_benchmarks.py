"""The benchmark suite runs: one tiny iteration of every row, with PyTorch beside
minigan when it is installed. Speed itself is measured by ``benchmarks/run.py``,
never here."""

import importlib.util
import json
import os

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
