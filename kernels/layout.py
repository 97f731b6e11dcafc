"""NCHW -> NHWC: the copy that lays an image out channels-last.

    y[n, h, w, c] = x[n, c, h, w]

y is written in its memory order, so the C values of pixel (h, w) come from C
rows x[n, :, h, :], which stay in the L1 cache while the W pixels of an image
row are written. (NumPy's transposing copy is 20-30% slower on these shapes:
its innermost loop is a strided one of only C values.)
"""

from numba import cuda, prange, void

from ._compile import cpu_launcher, cuda_kernel, device_body, host_body
from ._dispatch import contiguous, empty, grid, run


def _nhwc_value(x, y, n, c, h, w):
    y[n, h, w, c] = x[n, c, h, w]


_nhwc_value_cpu = host_body(_nhwc_value)
_nhwc_value_gpu = device_body(_nhwc_value)


@cpu_launcher
def _nhwc_cpu(x, y):
    N, C, H, W = x.shape
    for n in prange(N):
        for h in range(H):
            for w in range(W):
                for c in range(C):
                    _nhwc_value_cpu(x, y, n, c, h, w)


@cuda_kernel("nchw_to_nhwc", lambda f: void(f[:, :, :, ::1], f[:, :, :, ::1]))
def _nhwc_cuda(x, y):
    # One thread per value of y, in memory order (coalesced writes).
    N, C, H, W = x.shape
    for e in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        n, h, w, c = e // (H * W * C), e // (W * C) % H, e // C % W, e % C
        _nhwc_value_gpu(x, y, n, c, h, w)


def nchw_to_nhwc(x):
    """(N, C, H, W) -> a new (N, H, W, C) array, C-contiguous."""
    x = contiguous(x)
    N, C, H, W = x.shape
    y = empty(x, (N, H, W, C))
    run(_nhwc_cpu, _nhwc_cuda, grid(y.size), x, y)
    return y
