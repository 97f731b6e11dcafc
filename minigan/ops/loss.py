"""Losses, elementwise first and then reduced ("mean", "sum" or "none") as in PyTorch."""

from ..autograd import Function
from ..backend import get_xp
from .unary import clamp, log, sigmoid


class BCEWithLogits(Function):
    """ℓ(x, t) = -[t·log σ(x) + (1 - t)·log(1 - σ(x))] for a logit x.

    Written as max(x, 0) - x·t + log(1 + e^-|x|), which never overflows: the
    exponent is never positive.
    """

    def forward(self, x, t):
        xp = get_xp(x)
        return xp.maximum(x, 0) - x * t + xp.log1p(xp.exp(-xp.abs(x)))

    def backward(self, g):
        x, t = self.inputs
        gx = g * (sigmoid(x) - t) if self.needs_grad(0) else None  # dℓ/dx = σ(x) - t
        gt = -g * x if self.needs_grad(1) else None  # dℓ/dt = -x
        return gx, gt


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_same_shape(name, input, target):
    if input.shape != target.shape:
        raise ValueError(f"{name}: input of shape {input.shape} and target of shape {target.shape} differ")


def binary_cross_entropy_with_logits(input, target, reduction="mean"):
    _check_same_shape("binary_cross_entropy_with_logits", input, target)
    return _reduce(BCEWithLogits.apply(input, target), reduction)


def binary_cross_entropy(input, target, reduction="mean"):
    """BCE on probabilities. As in PyTorch each log is clamped at -100, so p = 0 or 1
    gives a large finite loss instead of infinity."""
    _check_same_shape("binary_cross_entropy", input, target)
    loss = -(target * clamp(log(input), min=-100.0) + (1 - target) * clamp(log(1 - input), min=-100.0))
    return _reduce(loss, reduction)


def mse_loss(input, target, reduction="mean"):
    _check_same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, reduction)
