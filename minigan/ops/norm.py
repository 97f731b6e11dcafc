"""Batch normalisation over (N, C), (N, C, L) or (N, C, H, W), on fused kernels in
training mode.

Per channel c, over the M = N·H·W (or N·L, or N) values of the batch:
    mean = Σx / M,  var = Σ(x - mean)² / M (biased),  x̂ = (x - mean)/√(var + eps)
    y = γ·x̂ + β
Backward, in closed form (the kernels compute it in two passes: the per-channel
sums, then one elementwise pass for dx):
    dβ = Σ gy,   dγ = Σ gy·x̂,   dx = γ/σ · (gy - dβ/M - x̂·dγ/M)
In eval mode the running statistics are constants, so y is an affine function of x
built from ordinary ops.
"""

import kernels

from ..autograd import Function
from ..backend import check_number, get_xp
from ..tensor import Tensor
from .layout import from_nhwc, is_channels_last, to_nhwc


def _channel_rows(a, channels_last):
    """a as the (N, C, L) array the kernels take, without a copy where a's memory allows:
    (N, C, H·W) for NCHW memory, (N·H·W, C, 1) for channels-last (a row of C values
    per pixel), (N, C, 1) for (N, C)."""
    if channels_last:
        return to_nhwc(a).reshape(-1, a.shape[1], 1)
    return a.reshape(a.shape[0], a.shape[1], -1)


def _image_of(rows, like, channels_last):
    """The inverse of ``_channel_rows``: rows back to ``like``'s shape and layout."""
    if channels_last:
        n, c, h, w = like.shape
        return from_nhwc(rows.reshape(n, h, w, c))
    return rows.reshape(like.shape)


class BatchNormTrain(Function):
    twice_differentiable = False  # the fused backward kernel is not itself an op

    def forward(self, x, gamma, beta, eps, running_mean, running_var, momentum):
        self.channels_last = is_channels_last(x)
        x3 = _channel_rows(x, self.channels_last)
        y, self.mean, self.invstd, var = kernels.batch_norm_forward(x3, gamma, beta, eps)
        if running_mean is not None:
            # running = (1 - momentum)·running + momentum·batch, in place; the variance
            # kept is the unbiased one, var·M/(M - 1), as in PyTorch.
            m = x3.shape[0] * x3.shape[2]
            running_mean *= 1 - momentum
            running_mean += momentum * self.mean
            running_var *= 1 - momentum
            running_var += momentum * (var * (m / (m - 1)))
        return _image_of(y, x, self.channels_last)

    def backward(self, g):
        x, gamma, _ = self.inputs
        g3, x3 = (_channel_rows(a.data, self.channels_last) for a in (g, x))  # g in x's layout
        gx, ggamma, gbeta = kernels.batch_norm_backward(g3, x3, self.mean, self.invstd, gamma.data)
        return Tensor(_image_of(gx, x, self.channels_last)), Tensor(ggamma), Tensor(gbeta)


def check_momentum_and_eps(momentum, eps, who):
    """The running statistics' momentum, a number in [0, 1], and eps > 0, as Python numbers."""
    checked = None if momentum is None else check_number(momentum, "momentum", who)
    if checked is None or not 0 <= checked <= 1:
        raise ValueError(
            f"{who}: momentum must be a number in [0, 1], got {momentum!r} "
            "(PyTorch's momentum=None, a cumulative average, is not supported)"
        )
    eps = check_number(eps, "eps", who)
    if not eps > 0:  # 1/√(σ² + eps): a negative eps gives NaN
        raise ValueError(f"{who}: eps must be positive, got {eps!r}")
    return checked, eps


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """PyTorch's ``F.batch_norm``: batch statistics in training mode (updating the
    running statistics in place), the running statistics in eval mode."""
    if input.ndim not in (2, 3, 4):
        raise ValueError(f"batch_norm: expected a 2-D (N, C), 3-D (N, C, L) or 4-D (N, C, H, W) input, "
                         f"got shape {input.shape}")
    if input.dtype.kind != "f":  # the kernel would normalise integers to integers: all 0s
        raise TypeError(f"batch_norm: expected a floating-point input, got dtype {input.dtype}")
    c = input.shape[1]
    if c == 0:  # (the statistics below would divide by it)
        raise ValueError(f"batch_norm: the input of shape {input.shape} has no channels")
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if t is None:
            continue
        if not isinstance(t, Tensor):  # (a NumPy array's .data is a memoryview)
            raise TypeError(f"batch_norm: {name} must be a Tensor or None, got a {type(t).__name__}")
        if t.shape != (c,):
            raise ValueError(f"batch_norm: {name} has shape {t.shape}, expected ({c},) for input of shape {input.shape}")
        if t.dtype != input.dtype:  # (the running statistics would silently take the input's dtype)
            raise TypeError(f"batch_norm: {name} has dtype {t.dtype}, the input {input.dtype}; give them one dtype")
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm: eval mode (training=False) normalises with running_mean and running_var, "
                         "but one of them is None: pass both, or training=True for the batch's statistics")
    if (running_mean is None) != (running_var is None):  # one of them would be left as it was
        raise ValueError("batch_norm: running_mean and running_var must both be None or both be given")
    momentum, eps = check_momentum_and_eps(momentum, eps, "batch_norm")
    xp = get_xp(input.data)
    if weight is None:
        weight = Tensor(xp.ones(c, dtype=input.dtype))
    if bias is None:
        bias = Tensor(xp.zeros(c, dtype=input.dtype))
    if training:
        if input.data.size // c < 2:
            raise ValueError(f"batch_norm: training needs more than one value per channel, got input of shape {input.shape}")
        raw = (None, None) if running_mean is None else (running_mean.data, running_var.data)
        y = BatchNormTrain.apply(input, weight, bias, eps=eps, running_mean=raw[0], running_var=raw[1], momentum=momentum)
        if running_mean is not None:  # updated in place: a graph that read them is out of date
            running_mean.changed_in_place()
            running_var.changed_in_place()
        return y
    shape = (1, c) + (1,) * (input.ndim - 2)
    scale = weight.reshape(shape) * Tensor(1 / xp.sqrt(running_var.data + eps)).reshape(shape)
    return (input - Tensor(running_mean.data).reshape(shape)) * scale + bias.reshape(shape)

