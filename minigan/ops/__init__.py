"""minigan's ops. Each file is one family; each op is a Function with its forward
and backward side by side. Below, the ops become Tensor's operators and methods."""

from ..autograd import is_grad_enabled
from ..backend import get_xp
from ..tensor import Tensor
from .arithmetic import add, div, mul, neg, pow, sub
from .conv import conv2d, conv2d_weight, conv_transpose2d
from .linalg import linear, matmul
from .loss import (
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, log_softmax, mse_loss, one_hot,
)
from .norm import batch_norm
from .pool import avg_pool2d, dropout, upsample_nearest
from .reduce import broadcast_to, expand, mean, sum, unbroadcast
from .shape import cat, flatten, getitem, permute, reshape, setitem, to, transpose
from .unary import abs, clamp, exp, leaky_relu, log, relu, sigmoid, sqrt, tanh


def _swap(op):
    """``2 - t`` calls ``t.__rsub__(2)``: the op with its operands swapped back."""
    return lambda self, other: op(other, self)


Tensor.__add__ = add
Tensor.__radd__ = add
Tensor.__sub__ = sub
Tensor.__rsub__ = _swap(sub)
Tensor.__mul__ = mul
Tensor.__rmul__ = mul
Tensor.__truediv__ = div
Tensor.__rtruediv__ = _swap(div)
Tensor.__neg__ = neg
Tensor.__abs__ = abs
Tensor.__pow__ = pow
Tensor.__rpow__ = _swap(pow)
Tensor.__matmul__ = matmul
Tensor.__getitem__ = getitem
Tensor.__setitem__ = setitem


def _in_place(op, symbol):
    """``x += y`` and friends change x's own values, as in PyTorch, so that
    ``p -= lr * p.grad`` under ``mg.no_grad()`` updates the weight p itself (Python's
    fallback, x = x + y, made a new tensor and left the model as it was). Where x or y
    is in a graph, x is made anew instead (``loss += term``), as that fallback did, so
    another name for x keeps the old values (in PyTorch it changes too); a view refuses
    (the tensor it views would keep them), and so does a leaf that requires grad, as
    in PyTorch: the change would be outside any graph."""
    def update(self, other):
        if is_grad_enabled() and (self.requires_grad or getattr(other, "requires_grad", False)):
            if self.requires_grad and self.is_leaf:
                raise RuntimeError(
                    f"in-place {symbol} on a leaf tensor that requires grad (shape {self.shape}), e.g. a "
                    f"weight: change weights under `with mg.no_grad():`, or write x = x {symbol[:-1]} y for a new tensor"
                )
            # A view (the tensor it views would not change): one made in the graph, or a
            # leaf whose array views another's (e.g. made by indexing under no_grad).
            if (self.grad_fn.returns_view if self.grad_fn is not None else self.data.base is not None):
                of = f" (of {type(self.grad_fn).__name__})" if self.grad_fn is not None else ""
                raise RuntimeError(
                    f"in-place {symbol} on a view{of} in a graph: minigan would make "
                    f"it anew, and the tensor it views would keep its old values (in PyTorch both change); write "
                    f"x = x {symbol[:-1]} y for a new tensor"
                )
            return op(self, other)
        result = op(self, other)
        if result.shape != self.shape or result.dtype != self.dtype:
            raise TypeError(
                f"in-place {symbol}: the result ({result.dtype}, shape {result.shape}) does not fit into "
                f"the tensor ({self.dtype}, shape {self.shape}); write x = x {symbol[:-1]} y for a new tensor"
            )
        self.data[...] = result.data
        self.changed_in_place()
        return self
    return update


Tensor.__iadd__ = _in_place(add, "+=")
Tensor.__isub__ = _in_place(sub, "-=")
Tensor.__imul__ = _in_place(mul, "*=")
Tensor.__itruediv__ = _in_place(div, "/=")
Tensor.__ipow__ = _in_place(pow, "**=")

for _name, _op in {
    "exp": exp, "log": log, "tanh": tanh, "sigmoid": sigmoid, "relu": relu, "clamp": clamp,
    "abs": abs, "sqrt": sqrt, "sum": sum, "mean": mean, "reshape": reshape, "view": reshape,
    "permute": permute, "transpose": transpose, "flatten": flatten, "matmul": matmul,
    "broadcast_to": broadcast_to, "expand": expand, "to": to,
}.items():
    setattr(Tensor, _name, _op)
Tensor.cpu = lambda self: to(self, "cpu")
Tensor.cuda = lambda self: to(self, "cuda")
Tensor.float = lambda self: to(self, "float32")
Tensor.double = lambda self: to(self, "float64")


def _comparison(method):
    """``a < b`` and friends: a bool tensor of the elementwise answers (outside any
    graph: a comparison has no gradient), as in PyTorch."""
    def compare(self, other):
        if other is None:  # t == None is False, as in PyTorch (NumPy would compare each value)
            return NotImplemented
        answers = getattr(self.data, method)(other.data if isinstance(other, Tensor) else other)
        return Tensor(get_xp(self.data).asarray(answers))  # NumPy answers 0-d tensors with a scalar
    return compare


for _method in ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"):
    setattr(Tensor, _method, _comparison(_method))
Tensor.__hash__ = object.__hash__  # defining __eq__ would take it away: tensors are hashed by identity


def _logical(method, symbol):
    """``~m``, ``m & n``, ``m | n`` and ``m ^ n`` on bool (or integer) tensors, e.g. to
    combine masks, ``x[(x < -1) | (x > 1)] = 0``: outside any graph, as comparisons are."""
    def combine(self, *other):
        for operand in (self, *other):
            if isinstance(operand, Tensor) and operand.dtype.kind not in "biu":
                raise TypeError(f"{symbol}: expected bool or integer tensors (masks), got {operand.dtype}")
        answers = getattr(self.data, method)(*(o.data if isinstance(o, Tensor) else o for o in other))
        return Tensor(get_xp(self.data).asarray(answers))
    return combine


Tensor.__invert__ = _logical("__invert__", "~")
for _method, _symbol in (("__and__", "&"), ("__or__", "|"), ("__xor__", "^")):
    setattr(Tensor, _method, _logical(_method, _symbol))
    setattr(Tensor, "__r" + _method[2:], _logical(_method, _symbol))  # True & m is m & True

Tensor.T = property(lambda self: permute(self, tuple(reversed(range(self.ndim)))))
