"""Elementwise functions of one tensor: exp, log, tanh, sigmoid, relu, clamp, leaky ReLU.

The smooth ones write their derivative with their own output where that is
cheapest (tanh' = 1 - tanh², σ' = σ(1 - σ), exp' = exp). Of the piecewise-linear
ones, clamp and abs multiply by a mask that is constant almost everywhere; relu and
leaky ReLU pick g or slope·g in the gate kernel of kernels/leaky_relu.py.
"""

import kernels

from ..autograd import Function
from ..backend import check_number, get_xp
from .arithmetic import _float32


class Exp(Function):
    def forward(self, x):
        return get_xp(x).exp(x)

    def backward(self, g):
        return (g * self.output(),)


class Log(Function):
    def forward(self, x):
        return get_xp(x).log(x)

    def backward(self, g):
        (x,) = self.inputs
        return (g / x,)


class Tanh(Function):
    def forward(self, x):
        return get_xp(x).tanh(x)

    def backward(self, g):
        y = self.output()
        return (g * (1 - y * y),)


class Sigmoid(Function):
    def forward(self, x):
        # Stable form: exp of a non-positive number never overflows.
        #   x >= 0: 1 / (1 + e^-x);   x < 0: e^x / (1 + e^x)
        xp = get_xp(x)
        e = xp.exp(-xp.abs(x))
        return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)

    def backward(self, g):
        y = self.output()
        return (g * y * (1 - y),)


class Mask(Function):
    """Multiply by a constant array: the backward of piecewise-linear functions."""

    def forward(self, x, mask):
        self.mask = mask
        return x * mask

    def backward(self, g):
        return (mask(g, self.mask),)


def mask(x, m):
    return Mask.apply(x, mask=m)


class Clamp(Function):
    def forward(self, x, min, max):
        xp = get_xp(x)
        # Slope 1 where min <= x <= max, as PyTorch has it. (Where min > max every
        # value becomes max and none is inside, though y == x where x = max.)
        inside = xp.ones(x.shape, dtype=bool)
        if min is not None:
            inside &= x >= min
        if max is not None:
            inside &= x <= max
        self.inside = inside.astype(x.dtype)
        return xp.clip(x, min, max)

    def backward(self, g):
        return (mask(g, self.inside),)  # slope 1 inside [min, max], 0 where clipped


class LeakyReLU(Function):
    """y = x for x > 0, else slope·x, on the hand-written kernel."""

    def forward(self, x, negative_slope):
        self.slope = negative_slope
        return kernels.leaky_relu_forward(x, negative_slope)

    def backward(self, g):
        (x,) = self.inputs
        return (LeakyReLUGrad.apply(g, x=x.data, negative_slope=self.slope),)


class LeakyReLUGrad(Function):
    """gx = gy where x > 0, else slope·gy. Linear in gy, so its own backward is itself."""

    def forward(self, gy, x, negative_slope):
        self.x, self.slope = x, negative_slope
        return kernels.leaky_relu_backward(x, gy, negative_slope)

    def backward(self, g):
        return (LeakyReLUGrad.apply(g, x=self.x, negative_slope=self.slope),)


def _floating(x):
    """x, or an integer (or bool) x's values as float32: exp, log, tanh and sigmoid of
    integers are floats, as in PyTorch (NumPy's would be float64, and the stable
    sigmoid above would stay integer, all 0s)."""
    return x if x.dtype.kind == "f" else _float32(x)


def exp(x):
    return Exp.apply(_floating(x))


def log(x):
    return Log.apply(_floating(x))


def tanh(x):
    return Tanh.apply(_floating(x))


def sigmoid(x):
    return Sigmoid.apply(_floating(x))


def relu(x):
    # A leaky ReLU with slope 0: one pass of the gate kernel each way, where
    # x * (x > 0) and its mask took three NumPy passes.
    return LeakyReLU.apply(x, negative_slope=0.0)


def clamp(x, min=None, max=None):
    if min is None and max is None:  # as in PyTorch: clamping to nothing is likely a slip
        raise ValueError("clamp: give min, max or both")
    min, max = (None if bound is None else check_number(bound, name, "clamp") for name, bound in (("min", min), ("max", max)))
    if any(isinstance(b, float) for b in (min, max)):
        x = _floating(x)  # a float bound makes an integer tensor float32, as in PyTorch
    return Clamp.apply(x, min=min, max=max)


def leaky_relu(x, negative_slope=0.01):
    if x.dtype.kind != "f":  # the slope would be rounded to an integer
        raise TypeError(f"leaky_relu: expected a floating-point tensor, got {x.dtype}")
    return LeakyReLU.apply(x, negative_slope=float(check_number(negative_slope, "negative_slope", "leaky_relu")))


def sqrt(x):
    return x**0.5


def abs(x):
    return mask(x, get_xp(x.data).sign(x.data))

