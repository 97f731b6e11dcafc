"""Matrix products: matmul, and linear (x·Wᵀ + b) as one op because every layer uses it."""

import numpy as np

from ..autograd import Function, _not_a_tensor_error
from ..tensor import Tensor
from .reduce import unbroadcast


class MatMul(Function):
    def forward(self, a, b):
        return a @ b

    def backward(self, g):
        # C = A·B  =>  dA = dC·Bᵀ,  dB = Aᵀ·dC  (over the last two axes; leading
        # batch axes broadcast like any elementwise op, so unbroadcast them).
        a, b = self.inputs
        ga = unbroadcast(g @ b.transpose(-1, -2), a.shape) if self.needs_grad(0) else None
        gb = unbroadcast(a.transpose(-1, -2) @ g, b.shape) if self.needs_grad(1) else None
        return ga, gb


class Linear(Function):
    """y = x·Wᵀ + b with W of shape (out, in), as ``torch.nn.functional.linear``."""

    def forward(self, x, weight, bias=None):
        y = x @ weight.T
        if bias is not None:
            y += bias
        return y

    def backward(self, g):
        x, weight = self.inputs[:2]
        # y[n, o] = Σ_i x[n, i]·W[o, i] + b[o]
        gx = g @ weight if self.needs_grad(0) else None  # dL/dx[n,i] = Σ_o g[n,o]·W[o,i]
        gw = g.transpose(0, 1) @ x if self.needs_grad(1) else None  # dL/dW[o,i] = Σ_n g[n,o]·x[n,i]
        if len(self.inputs) == 2:
            return gx, gw
        gb = g.sum(0) if self.needs_grad(2) else None  # dL/db[o] = Σ_n g[n,o]
        return gx, gw, gb


def matmul(a, b):
    for t in (a, b):  # (the checks below read .ndim, which a list or a number lacks)
        if not isinstance(t, Tensor):
            _not_a_tensor_error(MatMul, (a, b), t)
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"matmul needs tensors with at least 2 dimensions, got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} do not fit: the last dimension of the first "
            f"({a.shape[-1]}) must equal the second-to-last of the second ({b.shape[-2]})"
        )
    if a.ndim > 2 or b.ndim > 2:  # batches of matrices (a plain product has none to check)
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(
                f"matmul: shapes {a.shape} and {b.shape} do not fit: their batch dimensions "
                f"{a.shape[:-2]} and {b.shape[:-2]} cannot be broadcast together"
            ) from None
    return MatMul.apply(a, b)


def with_bias(name, weight, bias, out_axis):
    """The tensors a layer op gets after its input: (weight,), or (weight, bias)
    with the bias checked to have one value per output (weight axis ``out_axis``)."""
    if bias is None:
        return (weight,)
    if bias.shape != (weight.shape[out_axis],):
        raise ValueError(f"{name}: bias of shape {bias.shape}, expected ({weight.shape[out_axis]},)")
    return weight, bias


def linear(x, weight, bias=None):
    if x.ndim != 2 or weight.ndim != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"linear: input of shape {x.shape} does not fit weight of shape {weight.shape}: "
            f"expected input (N, {weight.shape[1] if weight.ndim == 2 else 'in'})"
        )
    return Linear.apply(x, *with_bias("linear", weight, bias, 0))
