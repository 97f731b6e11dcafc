"""Hand-written Numba kernels for minigan, on raw NumPy (CPU) or CuPy (GPU) arrays.

Each kernel's per-element work is one Python function, compiled into a parallel
and a serial CPU loop (the serial one for launches under
_dispatch.PARALLEL_MIN_SIZE values) and into a CUDA kernel; the array type picks
which one runs. (col2im's
CPU loop has a body of its own: see kernels/conv.py.)
"""

import os

# After a parallel loop, OpenMP's worker threads busy-wait in case another loop
# follows at once: by default for 300,000 spins, which on a recent Xeon (a slow
# `pause` instruction) is over 10 ms. On a machine with few cores they then fight
# OpenBLAS's threads, which run the matrix products between our kernels: a
# parallel leaky ReLU followed by a small matmul took 28 ms instead of 0.6 ms on
# a busy 2-core machine. After 1,000 spins (tens of µs) they sleep instead; waking them costs
# up to a millisecond on a virtual machine, paid only by launches large enough to run
# in parallel (_dispatch.PARALLEL_MIN_SIZE). Set before numba loads its OpenMP runtime,
# which reads it once.
os.environ.setdefault("GOMP_SPINCOUNT", "1000")

from ._compile import CUDA_KERNELS
from .adam import adam_update
from .batch_norm import batch_norm_backward, batch_norm_forward
from .conv import col2im, im2col
from .layout import nchw_to_nhwc
from .leaky_relu import leaky_relu_backward, leaky_relu_forward

__all__ = [
    "CUDA_KERNELS",
    "adam_update",
    "batch_norm_backward",
    "batch_norm_forward",
    "col2im",
    "im2col",
    "leaky_relu_backward",
    "leaky_relu_forward",
    "nchw_to_nhwc",
]
