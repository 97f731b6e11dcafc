"""Hand-written Numba kernels for minigan, on raw NumPy (CPU) or CuPy (GPU) arrays.

Each kernel's per-element work is one Python function, compiled into a parallel
CPU loop and into a CUDA kernel; the array type picks which one runs. (col2im's
CPU loop has a body of its own: see kernels/conv.py.)
"""

import os

# After a parallel loop, OpenMP's worker threads busy-wait (by default for about
# 300,000 spins) in case another loop follows at once. On a machine with few
# cores they then fight OpenBLAS's threads, which run the matrix products that
# come between our kernels, and a 10 µs kernel followed by a small matmul can
# cost milliseconds. A short spin puts them to sleep soon; waking them costs
# microseconds, which only the large (parallel) launches pay; see _dispatch.run.
# Set here, before numba loads its OpenMP runtime, which reads it once.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from ._compile import CUDA_KERNELS
from .batch_norm import batch_norm_backward, batch_norm_forward
from .conv import col2im, im2col
from .leaky_relu import leaky_relu_backward, leaky_relu_forward

__all__ = [
    "CUDA_KERNELS",
    "batch_norm_backward",
    "batch_norm_forward",
    "col2im",
    "im2col",
    "leaky_relu_backward",
    "leaky_relu_forward",
]
