"""Average pooling, nearest upsampling and dropout, built from other ops (so their
gradients, and second gradients, come from those ops)."""

from ..backend import check_number, get_xp, is_number
from ..random import default_generator
from ..tensor import Tensor
from .conv import pair
from .reduce import broadcast_to


def pool_window(kernel_size, stride, who):
    """(kh, kw) of an average pooling whose stride, if given, is its kernel size."""
    kh, kw = pair(kernel_size, "kernel_size", 1, who)
    if stride is not None and pair(stride, "stride", 1, who) != (kh, kw):
        raise ValueError(f"{who} supports stride equal to kernel_size only, got kernel_size={kernel_size}, stride={stride}")
    return kh, kw


def avg_pool2d(input, kernel_size, stride=None):
    """Mean over non-overlapping kh×kw windows (stride = kernel_size, as by default in
    PyTorch); rows and columns that do not fill a window are dropped, as there."""
    kh, kw = pool_window(kernel_size, stride, "avg_pool2d")
    if input.ndim != 4:
        raise ValueError(f"avg_pool2d: expected a 4-D input (N, C, H, W), got shape {input.shape}")
    n, c, h, w = input.shape
    if kh > h or kw > w:
        raise ValueError(f"avg_pool2d: kernel_size {kernel_size} is larger than the input's {h}×{w}")
    oh, ow = h // kh, w // kw
    x = input if (h, w) == (oh * kh, ow * kw) else input[:, :, : oh * kh, : ow * kw]
    # (N, C, OH·kh, OW·kw) -> (N, C, OH, kh, OW, kw): each window gets two axes of its own.
    return x.reshape(n, c, oh, kh, ow, kw).mean(dim=(3, 5))


def whole_scale(scale_factor, who):
    """A nearest upsampling's scale factor: a whole number of at least 1 (2 or 2.0), as an int."""
    if not (is_number(scale_factor) and scale_factor >= 1 and float(scale_factor).is_integer()):
        raise ValueError(f"{who}: scale_factor must be a whole number of at least 1, got {scale_factor!r}")
    return int(scale_factor)


def upsample_nearest(input, scale_factor=2):
    """Repeat each pixel in a scale×scale block: (N, C, H, W) -> (N, C, sH, sW)."""
    s = whole_scale(scale_factor, "upsample")
    if input.ndim != 4:
        raise ValueError(f"upsample: expected a 4-D input (N, C, H, W), got shape {input.shape}")
    n, c, h, w = input.shape
    # A broadcast copies along the new axes; its gradient sums each block back up.
    x = broadcast_to(input.reshape(n, c, h, 1, w, 1), (n, c, h, s, w, s))
    return x.reshape(n, c, h * s, w * s)


def check_dropout_p(p, who):
    """A dropout probability: a number in [0, 1]."""
    p = check_number(p, "p", who)
    if not 0 <= p <= 1:
        raise ValueError(f"{who}: the probability p must be in [0, 1], got {p}")
    return p


def dropout(input, p=0.5, training=True, *, generator=None):
    """Zero each element with probability p and scale the rest by 1/(1 - p), so the
    expected value is unchanged (inverted dropout). Identity when not training.
    (``generator`` by name only: PyTorch's fourth argument is ``inplace``.)"""
    p = check_dropout_p(p, "dropout")
    if not training or p == 0:
        return input
    if p == 1:  # every element dropped (1/(1 - p) would make 0·inf = NaN), as in PyTorch
        return input * 0.0
    keep = (generator or default_generator()).random(input.shape) >= p
    xp = get_xp(input.data)
    scale = xp.asarray(keep, dtype=input.dtype) / (1 - p)
    return input * Tensor(scale)
