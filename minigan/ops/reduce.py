"""Reductions and their adjoint, broadcasting.

``sum`` collapses axes; its gradient copies the incoming gradient back along them
(a broadcast). ``broadcast_to`` copies along axes; its gradient sums them back up.
``unbroadcast`` is the one place where every broadcasting op undoes NumPy's
broadcasting in its backward pass.
"""

import math

from ..autograd import Function
from ..backend import get_xp, is_int
from ..tensor import tuple_arg


def _axes(axis, ndim):
    """Normalise ``axis`` (None, an int or a tuple; negatives allowed) to a sorted tuple.
    None, and as in PyTorch an empty tuple or list, means every axis."""
    if axis is None or (isinstance(axis, (tuple, list)) and len(axis) == 0):
        return tuple(range(ndim))
    axis = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    span = max(ndim, 1)  # as in PyTorch, a 0-d tensor answers to dim 0 (or -1), with nothing to reduce
    for a in axis:
        if not is_int(a):
            raise TypeError(f"dim must be an int or a tuple of ints, got {a!r:.40} (a {type(a).__name__})")
        if not -span <= a < span:
            raise IndexError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
    if ndim == 0:
        return ()
    axes = sorted(a % ndim for a in axis)
    if len(set(axes)) != len(axes):
        raise ValueError(f"dim {axis} names an axis twice (of a tensor with {ndim} dimensions)")
    return tuple(axes)


class Sum(Function):
    def forward(self, x, axis, keepdims):
        self.in_shape = x.shape
        self.axis = _axes(axis, x.ndim)
        self.keepdims = keepdims
        return x.sum(axis=self.axis, keepdims=keepdims)

    def backward(self, g):
        # y = sum of x over some axes, so dy/dx = 1 for each summed element:
        # every x element gets the gradient of the sum it went into.
        if not self.keepdims and self.axis != tuple(range(len(self.axis))):
            # The summed axes back as axes of size 1. (Not needed when they were the
            # leading axes, e.g. a sum of everything: broadcasting prepends axes.)
            kept = [1 if i in self.axis else n for i, n in enumerate(self.in_shape)]
            g = g.reshape(kept)
        return (broadcast_to(g, self.in_shape),)


class BroadcastTo(Function):
    def forward(self, x, shape):
        self.in_shape = x.shape
        # x's values copied along the new axes into an array of its own (a broadcast
        # view would repeat one value in many places, and is read-only).
        out = get_xp(x).empty(shape, dtype=x.dtype)
        out[...] = x
        return out

    def backward(self, g):
        return (unbroadcast(g, self.in_shape),)


def sum(x, dim=None, keepdim=False):
    return Sum.apply(x, axis=dim, keepdims=keepdim)


def mean(x, dim=None, keepdim=False):
    if x.data.dtype.kind != "f":  # as in PyTorch: an integer dtype cannot hold a mean such as 1.5
        raise TypeError(
            f"mean() needs a floating-point tensor, got dtype {x.dtype}; "
            "convert it first, e.g. x.float()"
        )
    count = math.prod(x.shape[a] for a in _axes(dim, x.ndim))
    # Σx / n, a division as in PyTorch: Σx · (1/n) rounds differently (the mean of 41
    # ones came out as 0.99999994). No values: NaN, as in PyTorch.
    return sum(x, dim, keepdim) / (count if count else math.nan)


def broadcast_to(x, shape):
    shape = tuple(shape)
    if x.shape == shape:
        return x
    fits = len(shape) >= x.ndim and all(n in (1, m) for n, m in zip(x.shape[::-1], shape[::-1]))
    if not fits or min(shape, default=0) < 0:
        raise ValueError(
            f"broadcast_to: cannot broadcast shape {x.shape} to {shape} (aligned from the right, "
            "each size must equal the target's or be 1, and no target size may be negative)"
        )
    return BroadcastTo.apply(x, shape=shape)


def expand(x, *sizes):
    """``x.expand(2, 3)`` or ``x.expand((2, 3))``: PyTorch's other name for broadcast_to.
    As there, -1 keeps the size of that dimension of x (sizes align from the right)."""
    sizes = tuple_arg(sizes)
    lead = len(sizes) - x.ndim  # new leading dimensions, which have no size to keep
    return broadcast_to(x, tuple(x.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(sizes)))


def unbroadcast(g, shape):
    """Sum ``g`` down to ``shape``: the gradient of NumPy broadcasting.

    Broadcasting prepends axes and stretches axes of length 1; each copy of an input
    element received part of the gradient, so those parts are summed.
    """
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    stretched = tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    return sum(g, tuple(range(lead)) + stretched, keepdim=True).reshape(shape)
