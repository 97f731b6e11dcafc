"""Where the time of one minigan training step goes.

    python benchmarks/profile_step.py                  # DCGAN and MLP GAN, batch 64
    python benchmarks/profile_step.py --model dcgan --batch 128

Every op's ``forward``, every kernel, every array copy and the optimiser update
are wrapped in a timer that records its own time (its time minus that of the
timed calls inside it). Whatever is left of the step is Python: building the
graph, walking it backwards, creating tensors. The split is by what the time is
spent on:

* matrix products: the forward of matmul, linear and the three convolution ops,
  less the kernels and copies inside them, i.e. the BLAS call;
* kernels: the Numba kernels (im2col, col2im, batch norm, leaky ReLU, and the
  NCHW -> NHWC copy of kernels/layout.py);
* copies and transposes: ``ascontiguousarray``;
* other NumPy: every other op's forward (add, mul, sum, tanh, ...);
* optimiser: Adam's update.
"""

import argparse
import collections
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kernels  # noqa: E402
import minigan  # noqa: E402
import workloads  # noqa: E402
from minigan.autograd import Function  # noqa: E402

PRODUCTS = {"MatMul", "Linear", "Conv2d", "Conv2dWeight", "ConvTranspose2d"}
KERNELS = ["nchw_to_nhwc", "im2col", "col2im", "batch_norm_forward", "batch_norm_backward", "leaky_relu_forward", "leaky_relu_backward"]


class Timers:
    """Own time per label: the time of a timed call minus the timed calls inside it."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.own = collections.defaultdict(float)
        self.calls = collections.Counter()
        self._children = []  # time of the timed calls inside each open call

    def wrap(self, label, f):
        def timed(*args, **kwargs):
            self._children.append(0.0)
            start = time.perf_counter()
            try:
                return f(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                self.own[label] += elapsed - self._children.pop()
                self.calls[label] += 1
                if self._children:
                    self._children[-1] += elapsed

        return timed


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def instrument(timers):
    """Wrap the ops, kernels, copies and Adam (for the rest of the process: once, or
    each call would be timed twice)."""
    for op in _subclasses(Function):
        if "forward" in op.__dict__:
            kind = "matrix products" if op.__name__ in PRODUCTS else "other NumPy"
            op.forward = timers.wrap((kind, op.__name__), op.forward)
    for name in KERNELS:
        setattr(kernels, name, timers.wrap(("kernels", name), getattr(kernels, name)))
    np.ascontiguousarray = timers.wrap(("copies and transposes", "ascontiguousarray"), np.ascontiguousarray)
    minigan.optim.Adam._update = timers.wrap(("optimiser", "Adam"), minigan.optim.Adam._update)


def profile(workload, batch, repeats, timers):
    step = workload.make(minigan, batch)
    for _ in range(2):
        step()
    timers.reset()
    totals = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        totals.append(time.perf_counter() - start)
    return statistics.median(totals), sum(totals)


def print_profile(name, batch, repeats, timers):
    workload = next(w for w in workloads.STEPS if w.name.startswith(name))
    median, total = profile(workload, batch, repeats, timers)
    by_kind = collections.defaultdict(float)
    for (kind, _), t in timers.own.items():
        by_kind[kind] += t
    by_kind["Python (graph, autograd, tensors)"] = total - sum(by_kind.values())
    print(f"\n{workload.name}, batch {batch}: median {median * 1e3:.1f} ms per step ({repeats} steps, instrumented)")
    print(f"{'':40} {'ms/step':>8} {'share':>6}")
    for kind, t in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"{kind:40} {t / repeats * 1e3:8.2f} {t / total:6.0%}")
    print("largest items:")
    for (kind, label), t in sorted(timers.own.items(), key=lambda kv: -kv[1])[:12]:
        calls = timers.calls[(kind, label)] // repeats
        print(f"  {label:24} {kind:24} {t / repeats * 1e3:8.2f} ms/step in {calls} calls")


def main(argv=None):
    p = argparse.ArgumentParser(description="Where the time of a minigan training step goes.")
    p.add_argument("--model", choices=["dcgan", "mlp"], nargs="+", default=["dcgan", "mlp"])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args(argv)
    timers = Timers()
    instrument(timers)
    for model in args.model:
        print_profile({"dcgan": "DCGAN", "mlp": "MLP"}[model], args.batch, args.repeats, timers)


if __name__ == "__main__":
    main()
