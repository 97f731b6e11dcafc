"""The Tensor: a raw array plus what autodiff needs to know about it.

``t.data`` is the raw array (NumPy on the CPU, CuPy on a GPU), ``t.grad`` is a raw
array of the same shape and device once ``backward`` has run, and ``t.grad_fn`` is
the op (a :class:`minigan.autograd.Function`) that made ``t``, or None for a leaf.
The arithmetic operators and methods (``+``, ``@``, ``.sum()``, ...) are the ops of
``minigan.ops``; they are attached to the class in ``minigan/ops/__init__.py``.
"""

import numpy as np

from . import backend
from .random import default_generator


class Tensor:
    __slots__ = ("data", "requires_grad", "grad", "grad_fn", "_changes", "__weakref__")
    __array_priority__ = 1000  # so `ndarray * tensor` calls Tensor.__rmul__

    def __init__(self, data, requires_grad=False, grad_fn=None):
        if type(data) is not np.ndarray:  # (what the ops make, told apart in one comparison)
            data = _array_of(data, requires_grad)
        if requires_grad and grad_fn is None:  # a leaf (an op's output that requires grad is float)
            _check_differentiable(data.dtype)
        self.data = data
        self.requires_grad = requires_grad
        self.grad = None
        self.grad_fn = grad_fn
        # How many times the values were changed in place (an optimiser step, an
        # initialiser, load_state_dict, x += y: see changed_in_place), in a cell that
        # detach() shares, as the two tensors share their values. An op records its
        # inputs' versions, and backward checks them (minigan.autograd).
        self._changes = [0]

    @property
    def _version(self):
        return self._changes[0]

    def changed_in_place(self):
        """Note that ``self.data``'s values were just overwritten in place. A graph
        recorded before then would compute gradients from the new values, silently
        wrong, so a backward pass through it refuses to run (as in PyTorch)."""
        self._changes[0] += 1

    # --- what the tensor is ---------------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        return backend.device_of(self.data)

    @property
    def is_leaf(self):
        return self.grad_fn is None

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self):
        return int(self.data.size)

    def __bool__(self):
        if self.data.size != 1:  # as in PyTorch: `if t:` of many values means nothing
            raise RuntimeError(f"the truth value of a tensor of shape {self.shape} is ambiguous (it holds "
                               f"{self.data.size} values); reduce it first, e.g. (t > 0).numpy().all()")
        return bool(self.data)

    def __float__(self):
        return float(self.item())

    def __format__(self, spec):
        """f"{loss:.4f}": a 0-d tensor formats as its number, as in PyTorch."""
        return format(self.item(), spec) if self.ndim == 0 else object.__format__(self, spec)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:  # Python's fallback (t[0], t[1], ... until IndexError) gave no values
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self):
        extra = ", requires_grad=True" if self.requires_grad else ""
        if self.grad_fn is not None:
            extra = f", grad_fn={type(self.grad_fn).__name__}"
        # (prefix: the rows after the first line up under it, as in PyTorch's repr)
        body = np.array2string(self.numpy(), separator=", ", threshold=20, precision=4, prefix="tensor(")
        dev = "" if self.device == "cpu" else ", device='cuda'"
        return f"tensor({body}, dtype={self.dtype}{dev}{extra})"

    # --- leaving the graph ----------------------------------------------------
    def numpy(self):
        """A NumPy copy of the data (from any device)."""
        return backend.to_numpy(self.data)

    def __array__(self, dtype=None, copy=None):
        """np.asarray(t), and what calls it (plt.plot(t)): t.numpy(), in ``dtype`` if
        given. (Without it NumPy made an array of objects, one 0-d tensor each.)"""
        values = self.numpy()
        return values if dtype is None else values.astype(dtype, copy=False)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def detach(self):
        """The same data as a new leaf that no gradient flows through. A change to
        either one's values in place counts as a change to both."""
        leaf = Tensor(self.data)
        leaf._changes = self._changes
        return leaf

    def requires_grad_(self, requires_grad=True):
        if check_requires_grad(requires_grad, "requires_grad_()"):
            _check_differentiable(self.dtype)
        elif self.grad_fn is not None:  # backward would silently skip the path through it
            raise RuntimeError("requires_grad_(False) on a tensor computed in a graph: only a leaf's flag can change, "
                               "as in PyTorch; t.detach() gives its values outside the graph")
        self.requires_grad = requires_grad
        return self

    def backward(self, gradient=None, retain_graph=False, create_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (see minigan.autograd)."""
        from .autograd import backward

        backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph)


# --- making tensors ---------------------------------------------------------------
def tuple_arg(args):
    """``f(x, 2, 3)`` and ``f(x, (2, 3))`` alike, as PyTorch's reshape, expand and zeros take them."""
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else args


def _size(args, who):
    """A new tensor's size, given as ``f(2, 3)`` or ``f((2, 3))``: ints, 0 or more."""
    size = tuple_arg(args)
    if not all(map(backend.is_int, size)):
        raise TypeError(f"{who}: the size must be ints, got {size!r:.60}")
    if any(n < 0 for n in size):
        raise ValueError(f"{who}: the size must not be negative, got {size!r}")
    return size


def _dtype(dtype, who, floating=False):
    """A dtype argument ('float32', np.float64, ...) as a NumPy dtype: one of the number
    types a tensor holds, or a floating-point one only (``floating``)."""
    if dtype is None:
        return None
    try:
        resolved = np.dtype(dtype)
    except (TypeError, ValueError):
        resolved = None
    if resolved is None or resolved.kind not in ("f" if floating else backend.NUMERIC_KINDS):
        expected = "a floating-point type" if floating else "a number type (bool, integer or floating point)"
        raise TypeError(f"{who}: dtype must be {expected}, e.g. 'float32' or 'float64', got {dtype!r:.40}")
    return resolved


def tensor(data, requires_grad=False, dtype=None, device="cpu"):
    """Make a leaf tensor from a list, a scalar, a NumPy/CuPy array or another tensor.

    Python floats become float32 (as in PyTorch); arrays keep their dtype unless
    ``dtype`` says otherwise. The data is always copied, as ``torch.tensor`` does:
    training changes a tensor's data in place, and must not change the caller's array.
    """
    device = backend.resolve_device(device)
    if isinstance(data, Tensor):
        data = data.data
    elif (unwrapped := _numpy_of_tensors(data)) is not None:
        data = np.asarray(unwrapped, dtype=np.result_type(*_entry_types(unwrapped)))  # e.g. a list of 0-d losses
    xp = backend.xp_for(device)
    given = backend.numeric_dtype(data, "mg.tensor(): ")  # checked before the cast to dtype
    dtype = _dtype(dtype, "mg.tensor()")
    if dtype is None and not hasattr(data, "dtype"):
        dtype = np.float32 if given.kind == "f" else given
    array = xp.array(backend.to_device(data, device) if hasattr(data, "dtype") else data, dtype=dtype)
    return _leaf(array, requires_grad, "mg.tensor()")


def _array_of(data, requires_grad):
    """The array a Tensor holds, from what it was given besides a NumPy array: a CuPy
    array as it is; a tensor's own array (shared, as torch.Tensor(t) shares it); a
    NumPy scalar (e.g. an array's sum) as a 0-d array; numbers and lists as float32,
    as torch.Tensor makes them (mg.tensor infers the dtype)."""
    if not isinstance(requires_grad, bool):  # Tensor(2, 3) was 2, with requires_grad=3
        raise TypeError(f"Tensor(): requires_grad must be True or False, got {requires_grad!r:.40} (Tensor takes "
                        "values; for a tensor of a given shape, as torch.Tensor(2, 3) makes, use mg.zeros(2, 3))")
    if isinstance(data, Tensor):  # (it was kept as the array: a tensor of a tensor)
        return data.data
    backend.numeric_dtype(data, "Tensor(): ")  # None would be NaN
    if isinstance(data, np.generic):
        return np.asarray(data)
    return data if hasattr(data, "dtype") else np.asarray(data, dtype=np.float32)


def check_requires_grad(value, who):
    """``value`` if it is True or False: "no" would be stored, and count as true."""
    if not isinstance(value, bool):
        raise TypeError(f"{who}: requires_grad must be True or False, got {value!r:.40}")
    return value


def _check_differentiable(dtype):
    """Only floating-point values have gradients (an integer moves in steps of 1)."""
    if dtype.kind != "f":
        raise TypeError(f"only floating-point tensors can require gradients, got dtype {dtype}")


def _numpy_of_tensors(data):
    """``data`` (a list, maybe nested) with each Tensor in it as a NumPy array, or None
    where it holds no Tensor (NumPy would keep a Tensor as an opaque object)."""
    if isinstance(data, Tensor):
        return backend.to_numpy(data.data)
    if isinstance(data, (list, tuple)):
        parts = [_numpy_of_tensors(d) for d in data]
        if any(p is not None for p in parts):
            return [d if p is None else p for d, p in zip(data, parts)]
    return None


def _entry_types(data):
    """What decides the dtype of a (nested) list that holds tensors, for np.result_type:
    each tensor's dtype, float32 for a Python float, and a Python int or bool as its
    value (NumPy lets such a value take the others' type), so that the tensors decide,
    as in PyTorch."""
    if isinstance(data, (list, tuple)):
        return [t for entry in data for t in _entry_types(entry)]
    if type(data) is float:
        return [np.dtype(np.float32)]
    return [data if type(data) in (int, bool) else backend.numeric_dtype(data, "mg.tensor(): ")]


def _leaf(array, requires_grad, who):
    return Tensor(array, check_requires_grad(requires_grad, who))  # (which refuses an integer leaf that requires grad)


def zeros(*shape, dtype="float32", device="cpu", requires_grad=False):
    size, dtype = _size(shape, "mg.zeros()"), _dtype(dtype, "mg.zeros()")
    return _leaf(backend.xp_for(backend.resolve_device(device)).zeros(size, dtype=dtype), requires_grad, "mg.zeros()")


def ones(*shape, dtype="float32", device="cpu", requires_grad=False):
    size, dtype = _size(shape, "mg.ones()"), _dtype(dtype, "mg.ones()")
    return _leaf(backend.xp_for(backend.resolve_device(device)).ones(size, dtype=dtype), requires_grad, "mg.ones()")


def randn(*shape, dtype="float32", device="cpu", requires_grad=False, generator=None):
    """Standard normal samples, drawn on the CPU from minigan's generator (so runs are
    reproducible on any device) and then moved to ``device``."""
    size, dtype = _size(shape, "mg.randn()"), _dtype(dtype, "mg.randn()", floating=True)
    values = (generator or default_generator()).standard_normal(size).astype(dtype)
    return _leaf(backend.to_device(values, backend.resolve_device(device)), requires_grad, "mg.randn()")


def rand(*shape, dtype="float32", device="cpu", requires_grad=False, generator=None):
    """Uniform samples in [0, 1), drawn like :func:`randn`."""
    size, dtype = _size(shape, "mg.rand()"), _dtype(dtype, "mg.rand()", floating=True)
    values = (generator or default_generator()).random(size).astype(dtype)
    return _leaf(backend.to_device(values, backend.resolve_device(device)), requires_grad, "mg.rand()")
