"""The one place that picks CPU or GPU: NumPy arrays run the CPU launcher,
CuPy arrays run the CUDA kernel. CuPy is imported only when a CuPy array shows up."""

import os
import sys
from contextlib import contextmanager

import numpy as np
from numba import cuda

THREADS_PER_BLOCK = 256
MAX_BLOCKS = 4096  # past this, each thread takes several items (grid-stride loop)

# After a parallel loop, OpenMP's worker threads busy-wait in case another loop
# follows at once: by default for 300,000 spins, which on a recent Xeon (a slow
# `pause` instruction) is over 10 ms. On a machine with few cores they then fight
# OpenBLAS's threads, which run the matrix products between our kernels: a
# parallel leaky ReLU followed by a small matmul took 28 ms instead of 0.6 ms on
# a busy 2-core machine. After 1,000 spins (tens of µs) they sleep instead; waking
# them costs up to a millisecond on a virtual machine, paid only by launches
# large enough to run in parallel. The runtime reads the setting once, when it
# is loaded: numba loads it at the first parallel launch, after this import.
_SPINS_CHOSEN_BY_USER = "GOMP_SPINCOUNT" in os.environ or "OMP_WAIT_POLICY" in os.environ
os.environ.setdefault("GOMP_SPINCOUNT", "1000")


def _openmp_already_loaded():
    """Whether a GNU OpenMP runtime is in this process before any kernel ran (PyTorch
    loads its own at import; Linux only, where /proc/self/maps lists the libraries)."""
    try:
        with open("/proc/self/maps") as f:
            return any("libgomp" in line for line in f)
    except OSError:
        return False


# Launches whose largest array has fewer elements run the serial loop. A parallel
# loop wins only when each thread gets enough work to pay for waking the others
# (and, on a busy machine, for waiting until the scheduler runs them all, while
# OpenBLAS's threads may still be spinning after the last matrix product). On a
# 2-core Xeon, an im2col with 3.2 million column entries (the 64→128 convolution
# at batch 64, with (C, kh, kw) taps) ran twice as fast in parallel alone (0.84
# against 1.65 ms), but the DCGAN step as a whole was no faster with it (114.1
# against 114.8 ms); a lower threshold for every kernel (2²¹, and later 2¹⁸)
# made the step slower; a leaky ReLU of 8 million values took 3.2 ms in
# parallel and 4.7 serially.
# An OpenMP runtime loaded before us has read its settings already, and numba's
# parallel loops would run on its threads, spinning 300,000 times after each
# loop. With PyTorch imported first, the DCGAN step at batch 128 took 236-268 ms
# with parallel kernels and 195-216 ms with serial ones (200-210 ms without
# PyTorch, either way; 2-core AMD EPYC): then every launch runs the serial loop,
# unless the spin count was the user's choice, made in the environment.
PARALLEL_MIN_SIZE = sys.maxsize if _openmp_already_loaded() and not _SPINS_CHOSEN_BY_USER else 1 << 22

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_force_cuda = False


def _is_cupy(a):
    return type(a) is not np.ndarray and type(a).__module__.partition(".")[0] == "cupy"


def array_module(a):
    """``numpy`` or ``cupy``, whichever ``a`` belongs to."""
    if _is_cupy(a):
        import cupy

        return cupy
    return np


def contiguous(a):
    return array_module(a).ascontiguousarray(a)


def memory_order(a):
    """The axes of ``a`` from the outermost in memory to the innermost, when its
    values fill one block of memory in some order (e.g. an (N, C, H, W) view of
    NHWC memory: (0, 2, 3, 1)); otherwise ``a``'s own order, (0, 1, ..., ndim-1).

    ``a.transpose(memory_order(a))`` is then C-contiguous without a copy when it
    can be, so an elementwise kernel can run over any such layout flat."""
    if a.flags.c_contiguous:
        return tuple(range(a.ndim))
    axes = tuple(sorted(range(a.ndim), key=lambda i: -a.strides[i]))
    return axes if a.transpose(axes).flags.c_contiguous else tuple(range(a.ndim))


def check_shapes(who, shape, **arrays):
    """A ValueError naming the first of ``arrays`` (by argument name) whose shape is not
    ``shape``: the loops index without bounds checks, and would read or write past
    the end of a shorter array."""
    for name, a in arrays.items():
        if a.shape != shape:
            raise ValueError(f"{who}: {name} has shape {a.shape}, expected {shape}")


def empty(like, shape):
    """An uninitialised array of ``like``'s dtype, on ``like``'s device."""
    return array_module(like).empty(shape, dtype=like.dtype)


def grid(n):
    """(blocks, threads) for ``n`` independent work items."""
    blocks = (n + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
    return max(1, min(blocks, MAX_BLOCKS)), THREADS_PER_BLOCK


def run(cpu, gpu, launch, *args):
    """Run the CPU launcher ``cpu`` on ``args``, or launch ``gpu[launch](*args)`` if
    the first array is CuPy's (the arrays of one launch are all on its device).

    Both launchers take the same arguments; ``launch`` is the (blocks, threads)
    configuration, used on the GPU only.
    """
    # The first argument is the array the launch works on, and the other arrays are
    # made like it, on its device: it alone decides (a look at every argument cost
    # more than the launch of a small kernel). float16 would fail deep inside
    # Numba's compiler.
    first = args[0]
    if first.dtype.kind == "f" and first.dtype not in FLOAT_DTYPES:
        raise TypeError(f"the kernels take float32 or float64 arrays, got an array of dtype {first.dtype} (convert it to float32 first)")
    on_cupy = _is_cupy(first)
    if not (on_cupy or _force_cuda):
        work = max([a.size for a in args if isinstance(a, np.ndarray)])
        (cpu.parallel if work >= PARALLEL_MIN_SIZE else cpu.serial)(*args)
    elif on_cupy:
        # Here a look at every argument costs nothing next to a launch: a NumPy
        # array among CuPy ones would be copied to the GPU and back at each launch.
        host = [i for i, a in enumerate(args) if isinstance(a, np.ndarray)]
        if host:
            raise TypeError(f"a GPU launch got NumPy arrays as arguments {host} (counting from 0): "
                            "move every array of the launch to the GPU first")
        import cupy

        stream = cuda.external_stream(cupy.cuda.get_current_stream().ptr)
        gpu[launch + (stream,)](*args)
    else:
        gpu[launch](*args)  # host arrays: numba copies them to and from the device


@contextmanager
def forced_cuda():
    """Run the CUDA kernels even on NumPy arrays (e.g. under the CUDA simulator)."""
    global _force_cuda
    previous, _force_cuda = _force_cuda, True
    try:
        yield
    finally:
        _force_cuda = previous
