"""Ops that move elements around without changing them: reshape, permute, slicing,
concat, and from one device (or floating-point dtype) to another. Each backward puts
the gradient back where the element came from.
"""

import math
import operator

from ..autograd import Function, is_grad_enabled
from ..backend import asarray_like, device_of, get_xp, is_int, resolve_device, to_device
from ..tensor import Tensor, _dtype, tuple_arg


class Reshape(Function):
    returns_view = True

    def forward(self, x, shape):
        self.in_shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return (g.reshape(self.in_shape),)


class Permute(Function):
    returns_view = True

    def forward(self, x, dims):
        self.dims = dims
        return x.transpose(dims)

    def backward(self, g):
        # Undo the permutation: axis dims[i] of x became axis i of y.
        inverse = [0] * len(self.dims)
        for i, d in enumerate(self.dims):
            inverse[d] = i
        return (g.permute(*inverse),)


class GetItem(Function):
    returns_view = True

    def forward(self, x, index):
        self.in_shape, self.index = x.shape, index
        parts = index if isinstance(index, tuple) else (index,)
        # x[0] of a 1-D array is a NumPy scalar, a copy; x[0, ...] is the same value as a
        # 0-d view, as in PyTorch (basic indexing always gives a view).
        return x[index] if Ellipsis in parts else x[parts + (Ellipsis,)]

    def backward(self, g):
        # The elements that were picked get their gradient; all others get 0.
        return (SetIntoZeros.apply(g, shape=self.in_shape, index=self.index),)


class SetIntoZeros(Function):
    """zeros(shape) with g written at ``index``: the adjoint of ``x[index]``."""

    def forward(self, g, shape, index):
        self.index = index
        out = get_xp(g).zeros(shape, dtype=g.dtype)
        out[index] = g
        return out

    def backward(self, gg):
        return (gg[self.index],)


class Concat(Function):
    def forward(self, *xs, axis):
        self.axis = axis
        self.sizes = [x.shape[axis] for x in xs]
        return get_xp(xs[0]).concatenate(xs, axis=axis)

    def backward(self, g):
        # Each input gets back its own slice of the gradient along the axis.
        grads, start = [], 0
        for size in self.sizes:
            index = (slice(None),) * self.axis + (slice(start, start + size),)
            grads.append(g[index])
            start += size
        return tuple(grads)


class Cast(Function):
    """The same values in another floating-point dtype."""

    def forward(self, x, dtype):
        return x.astype(dtype)

    def backward(self, g):
        (x,) = self.inputs
        return (to(g, x.dtype),)  # dL/dx = dL/dy, rounded to x's dtype


class ToDevice(Function):
    """The same values on another device."""

    def forward(self, x, device):
        self.source = device_of(x)
        return to_device(x, device)

    def backward(self, g):
        return (to(g, self.source),)  # the gradient goes back to where x lives


def _basic_index(index):
    """Check that an index is basic (ints, slices, None, ...), which never repeats an element."""
    parts = index if isinstance(index, tuple) else (index,)
    for p in parts:
        if p is None or p is Ellipsis or isinstance(p, (int, slice)):
            continue
        try:
            operator.index(p)  # an integer of another type, e.g. NumPy's int64
        except TypeError:
            raise TypeError(
                f"tensor indexing supports ints, slices, None and ... ; got {type(p).__name__}"
            ) from None
    return index


def _check_dims(name, x, *dims):
    for dim in dims:
        if not is_int(dim):
            raise TypeError(f"{name}: dimensions are ints, got {dim!r:.40} (a {type(dim).__name__})")
        if not -x.ndim <= dim < x.ndim:
            raise ValueError(f"{name}: dimension {dim} is out of range for a tensor of shape {x.shape}")


def reshape(x, *shape):
    shape = tuple_arg(shape)
    known = math.prod(n for n in shape if n != -1)  # the size of every axis but an inferred one
    size = x.data.size
    if -1 in shape:  # one axis may be inferred: the others must divide the size
        fits = shape.count(-1) == 1 and known != 0 and size % known == 0
    else:
        fits = known == size
    if not fits:
        raise ValueError(f"cannot reshape a tensor of shape {x.shape} ({size} elements) to {shape}")
    return Reshape.apply(x, shape=shape)


def permute(x, *dims):
    dims = tuple_arg(dims)
    _check_dims("permute", x, *dims)
    if sorted(d % x.ndim for d in dims) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of the {x.ndim} axes of shape {x.shape}")
    return Permute.apply(x, dims=tuple(d % x.ndim for d in dims))


def transpose(x, dim0, dim1):
    _check_dims("transpose", x, dim0, dim1)
    dims = list(range(x.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return Permute.apply(x, dims=tuple(dims))  # a permutation by construction: no need to check it again


def to(x, device_or_dtype):
    """x on a device ("cpu", "cuda" or "auto"), or in a dtype ("float64", np.float32,
    ...), as PyTorch's ``.to``: x itself when it is so already, else a copy that
    gradients flow back through (none flows through integers or bools, as in PyTorch:
    such a copy is a constant)."""
    if isinstance(device_or_dtype, str) and not device_or_dtype.startswith(("float", "int", "uint", "bool")):
        device = resolve_device(device_or_dtype)
        return x if x.device == device else ToDevice.apply(x, device=device)
    if device_or_dtype is None:  # (_dtype takes None for "no dtype given")
        raise TypeError("to(): expected a device ('cpu', 'cuda' or 'auto') or a dtype ('float32', ...), got None")
    dtype = _dtype(device_or_dtype, "to()")
    if dtype == x.dtype:
        return x
    if dtype.kind != "f":
        return Tensor(x.data.astype(dtype))
    return Cast.apply(x, dtype=dtype)


def getitem(x, index):
    return GetItem.apply(x, index=_basic_index(index))


def setitem(x, index, value):
    """``x[index] = value``: x's own values changed in place, as in PyTorch, where no
    graph is being recorded through x or value (``x[0] += 1`` reads x[0], adds in
    place, then writes it back here). The index is a basic one, or a bool tensor of
    x's shape, as in ``x[x < 0] = 0``."""
    if is_grad_enabled() and (x.requires_grad or getattr(value, "requires_grad", False)):
        # PyTorch would record the write as an op; here the graph's ops make the new tensor.
        raise RuntimeError(
            f"x[index] = value where x (shape {x.shape}) or value requires grad: a backward pass could "
            "read the values it overwrites; make a new tensor with ops instead (mg.cat, or "
            "x * mask + value * (1 - mask)), or write under `with mg.no_grad():`"
        )
    if getattr(index, "dtype", None) == bool:  # a mask, as in x[x < 0] = 0
        if not isinstance(index, Tensor) or index.shape != x.shape:  # (a row mask x[m] = 0 is PyTorch's only)
            raise IndexError(f"x[mask] = value takes a bool tensor of x's shape {x.shape} as the mask, "
                             f"got a {type(index).__name__} of shape {tuple(index.shape)}")
        index = index.data
    else:
        index = _basic_index(index)
    x.data[index] = asarray_like(value.data if isinstance(value, Tensor) else value, x.data)
    x.changed_in_place()


def cat(tensors, dim=0):
    if isinstance(tensors, Tensor):  # list() of it would be its rows, joined silently
        raise TypeError(f"cat: expected a list of tensors, got a Tensor of shape {tensors.shape}; write mg.cat([a, b])")
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors, got an empty one")
    _check_dims("cat", tensors[0], dim)
    ndim = tensors[0].ndim
    axis = dim % ndim
    for t in tensors[1:]:
        if t.ndim != ndim or t.shape[:axis] + t.shape[axis + 1 :] != tensors[0].shape[:axis] + tensors[0].shape[axis + 1 :]:
            raise ValueError(
                f"cat: shapes {tensors[0].shape} and {t.shape} differ outside dimension {dim}"
            )
    return Concat.apply(*tensors, axis=axis)


def flatten(x, start_dim=0, end_dim=-1):
    """Dimensions start_dim..end_dim merged into one: all of them by default, as
    torch.flatten (nn.Flatten starts at 1, keeping the batch). A 0-d tensor counts
    as one of shape (1,), as in PyTorch."""
    if x.ndim == 0:
        x = reshape(x, (1,))
    _check_dims("flatten", x, start_dim, end_dim)
    start, end = start_dim % x.ndim, end_dim % x.ndim
    if start > end:  # NumPy would reshape to a shape with a 1 inserted, silently
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} (shape {x.shape})")
    size = math.prod(x.shape[start : end + 1])
    return reshape(x, x.shape[:start] + (size,) + x.shape[end + 1 :])
