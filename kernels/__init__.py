"""Hand-written Numba kernels for minigan, on raw NumPy (CPU) or CuPy (GPU) arrays.

Each kernel's per-element work is one Python function, compiled into a parallel
and a serial CPU loop (the serial one for launches under
_dispatch.PARALLEL_MIN_SIZE values) and into a CUDA kernel; the array type picks
which one runs. (col2im's
CPU loop has a body of its own: see kernels/conv.py.)
"""

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
