"""The one place that picks CPU or GPU: NumPy arrays run the CPU launcher,
CuPy arrays run the CUDA kernel. CuPy is imported only when a CuPy array shows up."""

from contextlib import contextmanager

import numpy as np
from numba import cuda

THREADS_PER_BLOCK = 256
MAX_BLOCKS = 4096  # past this, each thread takes several items (grid-stride loop)

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
PARALLEL_MIN_SIZE = 1 << 22

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
