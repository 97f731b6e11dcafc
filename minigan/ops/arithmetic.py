"""Elementwise arithmetic with NumPy broadcasting: add, sub, mul, div, neg, pow.

Each backward applies the chain rule for its formula, then ``unbroadcast`` sums the
gradient back to each input's own shape.
"""

import numpy as np

from ..autograd import Function
from ..backend import asarray_like, get_xp, numeric_dtype
from ..tensor import Tensor
from .reduce import unbroadcast


def _operands(name, a, b):
    """``a`` and ``b`` as tensors, checked to broadcast together (NumPy's rules).

    One of them may be a number or an array: it becomes a constant with the other's
    dtype and device. An integer tensor that meets a float becomes float32 first,
    as in PyTorch: [1, 2] + 0.5 is [1.5, 2.5], not [1, 2].
    """
    if not isinstance(a, Tensor):
        b, a = _with_constant(b, a)
    elif not isinstance(b, Tensor):
        a, b = _with_constant(a, b)
    if a.shape == b.shape:
        return a, b
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"{name}: shapes {a.shape} and {b.shape} cannot be broadcast together "
            "(aligned from the right, each pair of sizes must be equal or one of them 1)"
        ) from None
    return a, b


def _with_constant(t, value):
    """``t``, and ``value`` as a constant tensor of t's dtype and device (see _operands).

    A float value (a number, a list or an array) meeting an integer or bool t makes
    t float32 first, and an integer one meeting a bool t makes it int64, as in
    PyTorch: cast to t's dtype, [1, 2] * [0.5, 0.5] was [0, 0] and True + 1 was True."""
    # Promoted before the value is cast to t's dtype (NaN has no integer). A Tensor that
    # holds no array (Tensor([1.0]) + 1) is left to asarray_like, which names the mistake.
    if hasattr(t.data, "dtype") and t.dtype.kind in "iub":
        kind = numeric_dtype(value).kind
        if kind == "f":
            t = _float32(t)
        elif kind in "iu" and t.dtype.kind == "b":
            t = Tensor(t.data.astype(np.int64))
    return t, Tensor(asarray_like(value, t.data))


def _float32(t):
    """An integer (or bool) tensor's values as float32, as PyTorch promotes them. An
    integer tensor is in no graph: there is nothing to keep."""
    return Tensor(t.data.astype(np.float32))


class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, g):
        a, b = self.inputs  # d(a+b)/da = d(a+b)/db = 1
        ga = unbroadcast(g, a.shape) if self.needs_grad(0) else None
        gb = unbroadcast(g, b.shape) if self.needs_grad(1) else None
        return ga, gb


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, g):
        a, b = self.inputs  # d(a-b)/da = 1, d(a-b)/db = -1
        ga = unbroadcast(g, a.shape) if self.needs_grad(0) else None
        gb = unbroadcast(-g, b.shape) if self.needs_grad(1) else None
        return ga, gb


class Mul(Function):
    def forward(self, a, b):
        return a * b

    def backward(self, g):
        a, b = self.inputs  # d(ab)/da = b, d(ab)/db = a
        ga = unbroadcast(g * b, a.shape) if self.needs_grad(0) else None
        gb = unbroadcast(g * a, b.shape) if self.needs_grad(1) else None
        return ga, gb


class Div(Function):
    def forward(self, a, b):
        return a / b

    def backward(self, g):
        a, b = self.inputs  # d(a/b)/da = 1/b, d(a/b)/db = -a/b²
        ga = unbroadcast(g / b, a.shape) if self.needs_grad(0) else None
        gb = unbroadcast(-g * self.output() / b, b.shape) if self.needs_grad(1) else None
        return ga, gb


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return (-g,)


class Pow(Function):
    """a ** b for a tensor base and a tensor (or constant) exponent."""

    def forward(self, a, b):
        return a**b

    def backward(self, g):
        a, b = self.inputs
        xp = get_xp(a.data)
        # d(a^b)/da = b·a^(b-1);  d(a^b)/db = a^b·ln a
        ga = None
        if self.needs_grad(0):
            # Where b = 0, a^b is 1 for every a: the gradient is 0 (as in PyTorch), but at
            # a = 0 it would be 0·0^(-1) = 0·inf = NaN. Base 1 in place of 0 there gives the 0.
            one = Tensor(xp.asarray((a.data == 0) & (b.data == 0), dtype=a.dtype))
            ga = unbroadcast(g * b * (a + one) ** (b - 1), a.shape)
        gb = None
        if self.needs_grad(1):
            # Where a = 0 and b > 0, a^b is 0 for every b nearby: the gradient is 0
            # (PyTorch takes 0 at b = 0 too), but a^b·ln a would be 0·(-inf) = NaN.
            # ln 1 = 0 in place of ln 0 at those places gives the 0.
            flat = Tensor(xp.asarray((a.data == 0) & (b.data >= 0), dtype=a.dtype))
            gb = unbroadcast(g * self.output() * (a + flat).log(), b.shape)
        return ga, gb


def add(a, b):
    return Add.apply(*_operands("add", a, b))


def sub(a, b):
    return Sub.apply(*_operands("sub", a, b))


def mul(a, b):
    return Mul.apply(*_operands("mul", a, b))


def div(a, b):
    a, b = _operands("div", a, b)
    if a.dtype.kind in "iub" and b.dtype.kind in "iub":
        a, b = _float32(a), _float32(b)  # true division of integers: float32, not NumPy's float64
    return Div.apply(a, b)


def neg(a):
    return Neg.apply(a)


def pow(a, b):
    return Pow.apply(*_operands("pow", a, b))
