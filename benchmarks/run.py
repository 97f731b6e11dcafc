"""minigan's speed, side by side with PyTorch's when it is installed.

    python benchmarks/run.py                     # ops at batch 64, steps at 64 and 128
    python benchmarks/run.py --repeats 15        # more timed runs per row
    python benchmarks/run.py --startup           # also the cold and warm start
    python benchmarks/run.py --update-docs       # also write docs/benchmarks.md

Everything runs in one process. Each row is warmed up, then timed ``--repeats``
times, minigan and PyTorch taking turns, so that a busy machine slows both
alike; the table gives the medians and their ratio. The ceilings, what the
machine itself does (a 2048² float32 NumPy matmul for the convolutions, a copy
of an array as large as the row's input for the memory-bound ops), take their
turns too, in every row they bound.
PyTorch runs with ``torch.set_num_threads`` set to the number of cores this
process may use.
"""

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import sys
import time

# PyTorch is optional. It is imported before minigan, so that its OpenMP keeps its own
# settings, and not at all under --no-torch, so that minigan's kernels then run as they
# do without PyTorch (beside PyTorch's OpenMP runtime they run serially: kernels/_dispatch.py).
torch = None
if "--no-torch" not in sys.argv[1:]:
    try:
        import torch
    except ImportError:
        pass

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import kernels  # noqa: E402
import minigan  # noqa: E402
import startup  # noqa: E402
import workloads  # noqa: E402

ROOT = os.path.dirname(HERE)
DOCS = os.path.join(ROOT, "docs", "benchmarks.md")
TABLE_BEGIN, TABLE_END = "<!-- benchmark table -->", "<!-- end of benchmark table -->"
# The speed targets: (row, what, limit).
TARGETS = [
    ("DCGAN training step, batch 64", "ratio", 1.5),
    ("MLP GAN training step, batch 64", "ratio", 1.2),
    ("conv2d 64→128 (14×14), batch 64", "peak", 0.60),
]


def parse_args(argv=None):
    # (no abbreviated flags: --no-torch is looked for, spelt out, before the parsing)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    p.add_argument("--repeats", type=int, default=7, help="timed runs per row (default %(default)s)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs first (default %(default)s)")
    p.add_argument("--op-batch", type=int, default=64, help="batch of the single-op rows")
    p.add_argument("--step-batches", type=int, nargs="+", default=[64, 128], help="batches of the training steps")
    p.add_argument("--peak-size", type=int, default=2048, help="n of the n×n matmul that sets the ceiling")
    p.add_argument("--only", default="", help="only the rows whose name contains this (e.g. DCGAN)")
    p.add_argument("--no-torch", action="store_true", help="minigan only, even if PyTorch is installed")
    p.add_argument("--startup", action="store_true", help="also time the cold and warm start (slow: compiles)")
    p.add_argument("--out", default=os.path.join(HERE, "results"), help="results folder (default %(default)s)")
    p.add_argument("--update-docs", action="store_true", help="write the table and chart into docs/")
    p.add_argument("--pause", type=float, default=0.2, help="seconds of rest before each timed run (see _seconds)")
    p.add_argument("--quick", action="store_true", help="one tiny iteration of everything (a smoke test)")
    args = p.parse_args(argv)
    for name, least in (("repeats", 1), ("warmup", 0), ("op_batch", 1), ("peak_size", 1)):
        if getattr(args, name) < least:
            p.error(f"--{name.replace('_', '-')} must be at least {least}, got {getattr(args, name)}")
    if min(args.step_batches) < 1:
        p.error(f"--step-batches must each be at least 1, got {args.step_batches}")
    names = [w.name for w in workloads.OPS + workloads.STEPS]
    if not any(args.only in name for name in names):
        p.error(f"--only {args.only!r} matches no row; the rows: {', '.join(names)}")
    if args.update_docs and (args.quick or args.only):
        p.error("--update-docs writes the whole table of a full run: not with --quick or --only")
    if args.quick:
        args.repeats, args.warmup, args.op_batch, args.step_batches, args.peak_size, args.pause = 1, 0, 2, [2], 128, 0
    return args


# ------------------------------------------------------------- timing ---


def _seconds(f, pause, number):
    # Idle worker threads busy-wait for a while after their last job: OpenBLAS's
    # (NumPy's matmul) for about 0.1 s, PyTorch's OpenMP threads for 300,000
    # spins. Right after a NumPy matmul, a PyTorch convolution took 5 times as
    # long. A pause lets them go to sleep, so no run pays for the other's
    # threads; one untimed run then wakes the library's own, as in a training
    # loop, where one step follows another. Returns the time of one run, out of
    # ``number`` runs back to back.
    time.sleep(pause)
    f()
    start = time.perf_counter()
    for _ in range(number):
        f()
    return (time.perf_counter() - start) / number


# A timed sample lasts at least this long: a few-millisecond row (the MLP GAN's
# step) is timed as several runs back to back, as in a training loop, so that
# one preemption by the machine's other work does not decide a sample.
MIN_SAMPLE_SECONDS = 0.05


def time_side_by_side(runs, repeats, warmup, pause=0.2):
    """Median seconds of each closure in ``runs``, timed in turns."""
    numbers = []
    for f in runs:
        for _ in range(warmup):
            f()
        start = time.perf_counter()
        f()
        numbers.append(max(1, math.ceil(MIN_SAMPLE_SECONDS / (time.perf_counter() - start))))
    times = [[] for _ in runs]
    for _ in range(repeats):
        for f, ts, number in zip(runs, times, numbers):
            ts.append(_seconds(f, pause, number))
    return [statistics.median(ts) for ts in times]


# The ceilings: what the machine itself does, as (run, GFLOP or GB per run). Each
# is timed in turns with every row it bounds, like PyTorch, so that a row's share
# of it compares the two under the same load (on this shared machine the matmul
# alone moved by ±5% from run to run).


def matmul_ceiling(n):
    """An n×n float32 matmul (NumPy): GFLOP/s, the ceiling for the convolutions."""
    a, b = (np.random.default_rng(i).standard_normal((n, n)).astype(np.float32) for i in (0, 1))
    return (lambda: a @ b), 2 * n**3 / 1e9


def copy_ceiling(values):
    """A copy of an array of ``values`` float32 values (NumPy's, on one core): GB/s
    read + written, the ceiling for a memory-bound row whose arrays are that large.
    Sized like the row's arrays because the rate depends on which cache they fit
    in: on the Xeon of docs/benchmarks.md's early runs a copy of the rows' 3.2 MB
    ran at 29 GB/s, of 64 MB at 15-19 GB/s. (On two cores a 64 MB copy reaches 50 GB/s,
    but for arrays of a few MB waking a second thread costs more than it gains;
    PyTorch, whose threads stay awake, can beat this ceiling.)"""
    a = np.ones(values, np.float32)
    b = np.empty_like(a)
    return (lambda: np.copyto(b, a)), 2 * a.nbytes / 1e9


# ---------------------------------------------------------------- rows ---


def measure(args, use_torch):
    frameworks = [minigan] + ([torch] if use_torch else [])
    matmul = matmul_ceiling(args.peak_size)
    rows = []

    def add(workload, batch):
        row = {"name": f"{workload.name}, batch {batch}", "group": workload.group}
        if workload.flops:
            row["gflop"] = workload.flops(batch) / 1e9
        if workload.bytes:
            row["gbyte"] = workload.bytes(batch) / 1e9
        kind = _kind(row)
        ceiling = matmul if kind == "gflop" else copy_ceiling(workload.values(batch)) if kind == "gbyte" else None
        runs = [workload.make(fw, batch) for fw in frameworks] + ([ceiling[0]] if ceiling else [])
        times = time_side_by_side(runs, args.repeats, args.warmup, args.pause)
        row["minigan_s"] = times[0]
        if use_torch:
            row["torch_s"] = times[1]
        if kind:
            row["ceiling"] = ceiling[1] / times[-1]  # GFLOP/s or GB/s
        rows.append(row)
        print(f"  {_label(row)}", flush=True)

    for w in workloads.OPS:
        if args.only in w.name:
            add(w, args.op_batch)
    for w in workloads.STEPS:
        for batch in args.step_batches:
            if args.only in w.name:
                add(w, batch)
    return rows


def _label(row):
    text = f"{row['name']}: minigan {row['minigan_s'] * 1e3:.2f} ms"
    if "torch_s" in row:
        text += f", PyTorch {row['torch_s'] * 1e3:.2f} ms, ratio {row['minigan_s'] / row['torch_s']:.2f}"
    if _kind(row):
        text += f"; minigan at {_rate(row)[0][1]:.1%} of {_ceiling_text(row)}"
    return text


def machine(use_torch):
    import numba

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel ran
        layer = "not started"
    info = {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "numpy": f"{np.__version__} ({blas.get('name')} {blas.get('version')})",
        "numba": f"{numba.__version__} (threading layer {layer}, "
                 f"GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT')})",
        "kernels": _kernel_threads(),
        "minigan": minigan.__version__ if hasattr(minigan, "__version__") else "",
        "load average": "%.2f %.2f %.2f" % os.getloadavg(),
    }
    if use_torch:
        info["torch"] = f"{torch.__version__} (torch.set_num_threads({torch.get_num_threads()}))"
    return info


def _kernel_threads():
    size = kernels._dispatch.PARALLEL_MIN_SIZE
    if size == sys.maxsize:  # see kernels/_dispatch.py
        return "serial (an OpenMP runtime, PyTorch's, was loaded before minigan)"
    return f"parallel from {size:,} values"


# -------------------------------------------------------------- output ---


UNITS = {"gflop": ("GFLOP/s", 0), "gbyte": ("GB/s", 1)}  # unit, decimals


def _kind(row):
    """"gflop" for a compute-bound row, "gbyte" for a memory-bound one, else None."""
    return next((key for key in UNITS if key in row), None)


def _rate_text(kind, value):
    unit, decimals = UNITS[kind]
    return f"{value:.{decimals}f} {unit}"


def _rate(row):
    """(text of the rate, share of the ceiling) for minigan and for PyTorch."""
    kind, out = _kind(row), []
    for key in ("minigan_s", "torch_s"):
        if key not in row:
            continue
        if kind is None:
            out.append(("", None))
            continue
        rate = row[kind] / row[key]
        out.append((_rate_text(kind, rate), rate / row["ceiling"]))
    return out


def _ceiling_text(row):
    kind = _kind(row)
    return "" if kind is None else _rate_text(kind, row["ceiling"])


def table(rows, use_torch):
    head = ["", "minigan (ms)", "rate", "of peak", "peak"]
    if use_torch:
        head = ["", "minigan (ms)", "PyTorch (ms)", "minigan / PyTorch", "minigan rate", "of peak",
                "PyTorch rate", "of peak", "peak"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["name"], f"{row['minigan_s'] * 1e3:.2f}"]
        if use_torch:
            cells += [f"{row['torch_s'] * 1e3:.2f}", f"**{row['minigan_s'] / row['torch_s']:.2f}×**"]
        for text, share in _rate(row):
            cells += [text, "" if share is None else f"{share:.0%}"]
        cells.append(_ceiling_text(row))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def target_lines(rows, use_torch):
    by_name = {r["name"]: r for r in rows}
    lines = []
    for name, kind, limit in TARGETS:
        row = by_name.get(name)
        if row is None or (kind == "ratio" and not use_torch):
            continue
        if kind == "ratio":
            value = row["minigan_s"] / row["torch_s"]
            ok, text = value <= limit, f"{value:.2f}× (target ≤ {limit}×)"
        else:
            value = _rate(row)[0][1]
            ok, text = value >= limit, f"{value:.1%} of the matmul peak timed beside it (target ≥ {limit:.0%})"
        lines.append(f"- {'met' if ok else 'MISSED'}: {name}: {text}")
    return lines


def chart(rows, use_torch, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["name"] for r in rows][::-1]
    y = np.arange(len(rows))
    panels = 2 if use_torch else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 0.45 * len(rows) + 1.5), squeeze=False)
    ax = axes[0][0]
    h = 0.4 if use_torch else 0.8
    ax.barh(y + (h / 2 if use_torch else 0), [r["minigan_s"] * 1e3 for r in rows][::-1], h, label="minigan")
    if use_torch:
        ax.barh(y - h / 2, [r["torch_s"] * 1e3 for r in rows][::-1], h, label="PyTorch")
    ax.set_xscale("log")
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlabel("milliseconds (log scale), median")
    ax.legend(loc="lower right")
    if use_torch:
        ax = axes[0][1]
        ratios = [r["minigan_s"] / r["torch_s"] for r in rows][::-1]
        ax.barh(y, ratios, 0.6, color=["tab:green" if v <= 1 else "tab:gray" for v in ratios])
        ax.axvline(1.0, color="black", linewidth=0.8)
        limits = {name: limit for name, kind, limit in TARGETS if kind == "ratio"}
        for yi, name in zip(y, names):  # a row's target, where it has one
            if name in limits:
                ax.plot([limits[name]] * 2, [yi - 0.4, yi + 0.4], color="black", linestyle="--", linewidth=1)
        ax.set_yticks(y, [""] * len(rows))
        ax.set_xlabel("minigan / PyTorch (lower is better; dashed: a target)")
        for yi, v in zip(y, ratios):
            ax.text(v, yi, f" {v:.2f}×", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _ceiling_range(rows, kind):
    values = sorted(r["ceiling"] for r in rows if _kind(r) == kind)
    return f"{values[0]:.{UNITS[kind][1]}f}-{_rate_text(kind, values[-1])}" if values else "not timed"


def report(args, rows, info, use_torch, start):
    cmd = "python benchmarks/run.py " + shlex.join(a for a in args.argv if a != "--update-docs")
    parts = [
        f"`{cmd.strip()}`, {time.strftime('%Y-%m-%d %H:%M')}: medians of {args.repeats} timed runs "
        f"after {args.warmup} warm-up runs, minigan and PyTorch in turns in one process.",
        "",
        f"Ceilings, each timed in turns with every row it bounds (the last column): float32 matmul "
        f"{args.peak_size}² (NumPy) {_ceiling_range(rows, 'gflop')}; a NumPy copy (one core) of an "
        f"array as large as the row's input, {_ceiling_range(rows, 'gbyte')}. Ops are forward + backward "
        "(input and weight gradients); GFLOP/s counts the three products of a convolution, GB/s the "
        "unavoidable traffic (read x, write y; read x and the "
        "output gradient, write the input gradient).",
        "",
        table(rows, use_torch),
        "",
    ]
    targets = target_lines(rows, use_torch)
    if targets:
        parts += ["Targets:", ""] + targets + [""]
    if start:
        parts += [
            "Start-up to the end of the example's first DCGAN training step (`python benchmarks/startup.py`):",
            "",
            f"- cold (one run, every kernel compiled into an empty cache): **{start['cold']:.1f} s**",
            f"- warm (the best of three runs, the kernels cached on disk): **{start['warm']:.1f} s**",
            "",
        ]
    parts += ["Machine: " + "; ".join(f"{k} {v}" for k, v in info.items() if v), ""]
    return "\n".join(parts)


def update_docs(text, chart_path):
    shutil.copyfile(chart_path, os.path.join(os.path.dirname(DOCS), "benchmarks.png"))
    with open(DOCS) as f:
        doc = f.read()
    before, rest = doc.split(TABLE_BEGIN, 1)
    _, after = rest.split(TABLE_END, 1)
    with open(DOCS, "w") as f:
        f.write(f"{before}{TABLE_BEGIN}\n{text}\n![minigan and PyTorch, side by side](benchmarks.png)\n\n{TABLE_END}{after}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    args.argv = argv  # for the command line in the report
    use_torch = torch is not None and not args.no_torch
    if use_torch:
        torch.set_num_threads(len(os.sched_getaffinity(0)))
    print(f"minigan{' and PyTorch' if use_torch else ''}: {args.repeats} timed runs per row", flush=True)
    rows = measure(args, use_torch)
    start = startup.measure() if args.startup else None
    info = machine(use_torch)
    os.makedirs(args.out, exist_ok=True)
    chart_path = os.path.join(args.out, "chart.png")
    chart(rows, use_torch, chart_path)
    text = report(args, rows, info, use_torch, start)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"rows": rows, "machine": info, "startup": start}, f, indent=1)
    if args.update_docs:
        update_docs(text, chart_path)
    print("\n" + text)
    print(f"wrote {args.out}/table.md, chart.png, results.json" + (" and docs/benchmarks.md" if args.update_docs else ""))
    return rows


if __name__ == "__main__":
    main()
