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


def interpolate(input, scale_factor=2, mode="nearest"):
    if mode != "nearest":
        raise ValueError(f"interpolate supports mode='nearest' only, got {mode!r}")
    return upsample_nearest(input, scale_factor)
