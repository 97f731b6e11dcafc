"""Hand-written Numba kernels for minigan, on raw NumPy (CPU) or CuPy (GPU) arrays.

Each kernel's per-element work is one Python function, compiled into a parallel
CPU loop and into a CUDA kernel; the array type picks which one runs.
"""

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
