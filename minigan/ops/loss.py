"""Losses, elementwise first and then reduced ("mean", "sum" or "none") as in PyTorch.
``reduction`` is a keyword argument: the third place is PyTorch's ``weight``, which
minigan does not take."""

import numpy as np

from ..autograd import Function
from ..backend import get_xp, is_int, numeric_dtype
from ..tensor import Tensor
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
    if not isinstance(target, Tensor):  # as in PyTorch: a list or an array has no dtype of the input's
        raise TypeError(f"{name}: target must be a Tensor, got a {type(target).__name__} (mg.tensor(...) makes one)")
    if input.shape != target.shape:
        raise ValueError(f"{name}: input of shape {input.shape} and target of shape {target.shape} differ")


def binary_cross_entropy_with_logits(input, target, *, reduction="mean"):
    _check_same_shape("binary_cross_entropy_with_logits", input, target)
    return _reduce(BCEWithLogits.apply(input, target), reduction)


class BCE(Function):
    """ℓ(p, t) = -[t·log p + (1 - t)·log(1 - p)] on probabilities p.

    As in PyTorch, each log is clamped at -100 (so p = 0 or 1 gives a large finite
    loss, not infinity) and the gradient's denominator at 1e-12 (so it stays finite).
    The target's gradient, which PyTorch leaves at ±inf there, is that of the clamped
    loss: ±100 at p = 0 or 1."""

    def forward(self, p, t):
        xp = get_xp(p)
        with np.errstate(divide="ignore"):
            return -(t * xp.maximum(xp.log(p), -100) + (1 - t) * xp.maximum(xp.log1p(-p), -100))

    def backward(self, g):
        p, t = self.inputs
        # dℓ/dp = -t/p + (1 - t)/(1 - p) = (p - t) / (p·(1 - p));  dℓ/dt = log(1 - p) - log p
        gp = g * (p - t) / clamp(p * (1 - p), min=1e-12) if self.needs_grad(0) else None
        with np.errstate(divide="ignore"):  # log 0 = -inf, clamped as in the forward
            gt = g * (clamp(log(1 - p), min=-100.0) - clamp(log(p), min=-100.0)) if self.needs_grad(1) else None
        return gp, gt


def binary_cross_entropy(input, target, *, reduction="mean"):
    _check_same_shape("binary_cross_entropy", input, target)
    x = input.data
    if not bool(((x >= 0) & (x <= 1)).all()):  # a logit given here made log(1 - p) NaN
        if bool(get_xp(x).isnan(x).any()):
            raise ValueError("binary_cross_entropy: the input holds NaN (has training diverged?)")
        raise ValueError(
            f"binary_cross_entropy: input must be probabilities in [0, 1], got values from {float(x.min())} "
            f"to {float(x.max())}; for logits (before the sigmoid) use binary_cross_entropy_with_logits"
        )
    t = target.data
    if not bool(((t >= 0) & (t <= 1)).all()):  # a target of 3 gave a negative "loss"
        raise ValueError(f"binary_cross_entropy: target must be in [0, 1], got values from {float(t.min())} "
                         f"to {float(t.max())}")
    return _reduce(BCE.apply(input, target), reduction)


def mse_loss(input, target, *, reduction="mean"):
    _check_same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, reduction)


def log_softmax(input, dim):
    """log p_k = x_k - log Σ_j e^{x_j} along ``dim``, made of ops (so twice
    differentiable). ``dim`` must be given: without it PyTorch guesses one from the
    number of dimensions (a deprecated habit), and a guess can be silently wrong.

    Subtracting the row maximum m first keeps every exponent <= 0. m is a constant
    here: log_softmax(x - m) = log_softmax(x) for any m, so no gradient is lost.
    """
    if not is_int(dim):
        raise TypeError(f"log_softmax: dim must be an int, got {dim!r:.40} (a {type(dim).__name__})")
    if not -input.ndim <= dim < input.ndim:
        raise ValueError(f"log_softmax: dim {dim} is out of range for a tensor of shape {input.shape}")
    if input.dtype.kind != "f":  # (the shift below would fail naming Sub, an op not written here)
        raise TypeError(f"log_softmax: expected floating-point logits, got dtype {input.dtype}")
    xp = get_xp(input.data)
    shifted = input - Tensor(xp.max(input.data, axis=dim, keepdims=True))
    return shifted - shifted.exp().sum(dim, keepdim=True).log()


def _class_labels(name, labels, num_classes, like):
    """(N,) integer labels (an array, a list or a tensor), checked to lie in
    0..num_classes - 1, as an array on ``like``'s device."""
    labels = labels.data if isinstance(labels, Tensor) else labels
    labels = labels if hasattr(labels, "ndim") else np.asarray(labels)
    numeric_dtype(labels, f"{name}: labels: ")  # (a PyTorch tensor's dtype is not NumPy's)
    # Checked where the labels are, before they go to like's device: NumPy labels on
    # the host; labels on a GPU in one reduction (reading its result waits for the GPU).
    # (A label such as 0.5 matched no class: a row of zeros, silently.)
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or bool(((labels < 0) | (labels >= num_classes)).any()):
        raise ValueError(f"{name}: expected a 1-D array of integer labels in 0..{num_classes - 1}, got {labels!r}")
    return get_xp(like.data).asarray(labels)


def _one_hot(labels, num_classes, like):
    xp = get_xp(like.data)
    return Tensor((labels[:, None] == xp.arange(num_classes)).astype(like.dtype))


def one_hot(labels, num_classes, like):
    """(N,) integer labels (an array, a list or a tensor) -> (N, num_classes) constant
    tensor of 0s and 1s with ``like``'s dtype and device."""
    return _one_hot(_class_labels("one_hot", labels, num_classes, like), num_classes, like)


class PickClass(Function):
    """x[n, labels[n]] for each row n of x (N, K): each row's value at its class.

    Picked out by indexing, not by a sum of x times a one-hot mask: a logit of -inf
    (a class masked out) times 0 would be NaN, and so would the sum."""

    def forward(self, x, labels):
        self.labels = labels
        return get_xp(x).take_along_axis(x, labels[:, None], axis=1)[:, 0]

    def backward(self, g):
        # Each row's gradient goes to its class's entry, 0 to the others.
        (x,) = self.inputs
        return (g.reshape(-1, 1) * _one_hot(self.labels, x.shape[1], x),)


def cross_entropy(input, labels, *, reduction="mean"):
    """Multi-class cross entropy on logits (N, K) and integer labels (N,):
    ℓ_n = -log softmax(x_n)[y_n]."""
    if input.ndim != 2:
        raise ValueError(f"cross_entropy: expected logits of shape (N, K), got {input.shape}")
    labels = _class_labels("cross_entropy", labels, input.shape[1], input)
    if len(labels) != input.shape[0]:
        raise ValueError(f"cross_entropy: expected N labels for logits (N, K) = {input.shape}, got {len(labels)} labels")
    picked = PickClass.apply(log_softmax(input, 1), labels=labels)
    return _reduce(-picked, reduction)
