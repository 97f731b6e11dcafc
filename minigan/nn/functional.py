"""PyTorch's ``torch.nn.functional`` names for minigan's ops."""

from ..ops import (  # noqa: F401
    avg_pool2d,
    batch_norm,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    conv2d,
    conv_transpose2d,
    cross_entropy,
    dropout,
    leaky_relu,
    linear,
    log_softmax,
    mse_loss,
    one_hot,
    relu,
    sigmoid,
    tanh,
)
from ..ops import upsample_nearest
from ..ops.conv import pair


def interpolate(input, size=None, scale_factor=None, mode="nearest"):
    """PyTorch's arguments: the output ``size`` (H, W) or a ``scale_factor``; here a
    nearest-neighbour upsampling by a whole number."""
    if mode != "nearest":
        raise ValueError(f"interpolate supports mode='nearest' only, got {mode!r}")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    if size is not None:
        if input.ndim != 4:
            raise ValueError(f"interpolate: expected a 4-D input (N, C, H, W), got shape {input.shape}")
        (h, w), (H, W) = pair(size, "size", 1, "interpolate"), input.shape[2:]
        if h % H or w % W or h // H != w // W:
            raise ValueError(f"interpolate: size {size} is not the input's {H}×{W} times one whole number")
        scale_factor = h // H
    return upsample_nearest(input, scale_factor)
