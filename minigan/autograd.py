"""Reverse-mode autodiff: the Function an op is made of, and the backward pass.

Every op is a subclass of :class:`Function` with two methods side by side:

* ``forward(*arrays, **params)`` works on raw arrays (fast, no graph) and returns
  the output array;
* ``backward(grad)`` gets dL/d(output) as a Tensor and returns dL/d(input) for each
  input, also as Tensors, computed *with minigan's own ops*.

Because backward is written with ops, a backward pass can itself be recorded as a
graph (``create_graph=True``) and differentiated again: that is double backward,
which the WGAN-GP gradient penalty needs.
"""

import functools
import weakref

import numpy as np

from .anomaly import check_gradient
from .backend import asarray_like, get_xp
from .tensor import Tensor

# --- grad mode --------------------------------------------------------------------
_grad_enabled = True


class no_grad:
    """``with mg.no_grad():``, or ``@mg.no_grad()`` / ``@mg.no_grad`` on a function: ops
    inside record no graph (inference, optimiser steps). As in PyTorch, one object
    may be entered again and again."""

    enabled = False  # the grad mode inside

    def __new__(cls, f=None):
        if f is None:
            return super().__new__(cls)
        return cls()(f)  # @mg.no_grad, without the parentheses

    def __enter__(self):
        global _grad_enabled
        self.previous, _grad_enabled = _grad_enabled, self.enabled

    def __exit__(self, *exc_info):
        global _grad_enabled
        _grad_enabled = self.previous

    def __call__(self, f):
        @functools.wraps(f)
        def in_mode(*args, **kwargs):
            with type(self)():
                return f(*args, **kwargs)
        return in_mode


class enable_grad(no_grad):
    """Ops record a graph again inside (e.g. a gradient needed inside mg.no_grad())."""

    enabled = True


def is_grad_enabled():
    return _grad_enabled


# --- the op -----------------------------------------------------------------------
class Function:
    """One node of the graph. Subclasses define ``forward`` and ``backward``."""

    released = False  # set once backward has freed what the node saved
    twice_differentiable = True  # False where backward uses a fused kernel of its own
    # True where the output may be a view of the first input's memory (reshape, permute,
    # indexing): then the two share their count of in-place changes, as their values.
    returns_view = False
    # During a grad() pass: for each input, whether it leads to a tensor grad() was
    # asked about (see needs_grad). None: every input that requires grad.
    leads_to_wanted = None

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on tensors: forward on their arrays, then record the node."""
        fn = cls()
        for t in inputs:
            if not isinstance(t, Tensor):  # its .data would be a memoryview, or nothing
                _not_a_tensor_error(cls, inputs, t)
        first = inputs[0].data
        for t in inputs[1:]:
            if type(t.data) is not type(first):
                raise RuntimeError(
                    f"{cls.__name__}: expected all tensors on one device, "
                    f"got {inputs[0].device} and {t.device}; move them with .to(device)"
                )
            if t.data.dtype != first.dtype:
                raise TypeError(
                    f"{cls.__name__}: expected tensors of one dtype, got {first.dtype} and "
                    f"{t.data.dtype}; convert one of them (e.g. x.to('float32'), x.float(), x.double())"
                )
        out = fn.forward(*[t.data for t in inputs], **params)
        if isinstance(out, np.generic):  # NumPy turns 0-d results into scalars
            out = np.asarray(out)
        recorded = _grad_enabled and any([t.requires_grad for t in inputs])
        result = Tensor(out, requires_grad=True, grad_fn=fn) if recorded else Tensor(out)
        if cls.returns_view and out.base is not None and get_xp(out).may_share_memory(out, first):
            result._changes = inputs[0]._changes  # a view: one count of in-place changes for both
        if recorded:
            fn.inputs = inputs
            # The versions of what backward reads: the inputs, checked before it runs, and
            # the output, checked when a backward reads it (tanh's reads tanh(x)).
            fn.versions = [t._version for t in inputs]
            fn.output_version = result._version
            fn._output = weakref.ref(result)
        return result

    def output(self):
        """The tensor this op produced (alive whenever its backward runs), with the
        values of the forward pass."""
        out = self._output()
        if out._version != self.output_version:
            raise RuntimeError(
                f"{type(self).__name__}: its output (shape {out.shape}), or a view or detached copy of it, "
                "was changed in place after the forward pass, and its backward reads it: change a copy "
                "instead (mg.tensor(y) makes one)"
            )
        return out

    def needs_grad(self, i):
        """Whether this pass wants input ``i``'s gradient (skip the work when it does not)."""
        wanted = self.leads_to_wanted
        return self.inputs[i].requires_grad if wanted is None else wanted[i]

    def release(self):
        """Free the saved arrays; a later backward through this node is an error."""
        self.__dict__.clear()
        self.released = True


# --- the backward pass ------------------------------------------------------------
def _topological_order(roots):
    """Tensors that need a gradient, every tensor after the inputs it was made from.

    An explicit stack instead of recursion, so a graph of any depth works.
    """
    order, seen = [], set()
    stack = [(root, False) for root in roots]
    while stack:
        t, inputs_done = stack.pop()
        if inputs_done:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        fn = t.grad_fn
        if fn is None:
            continue
        if fn.released:
            raise RuntimeError(
                f"backward through the graph a second time: the saved values of "
                f"{type(fn).__name__} were freed by the first backward. "
                "Pass retain_graph=True to the first backward if you need a second one."
            )
        stack.extend((p, False) for p in fn.inputs if p.requires_grad and id(p) not in seen)
    return order


def _leading_to(order, wanted):
    """Ids of the tensors of ``order`` from which a tensor of ``wanted`` can be reached
    (the wanted ones included): the only ones whose gradient ``grad`` needs."""
    leading = {id(t) for t in wanted}
    for t in order:  # every tensor after the inputs it was made from
        fn = t.grad_fn
        if fn is not None and any([id(p) in leading for p in fn.inputs]):
            leading.add(id(t))
    return leading


def _run_backward(roots, root_grads, wanted, retain_graph, create_graph):
    """Propagate gradients from ``roots`` to the leaves.

    ``wanted`` is None to accumulate into every leaf's ``.grad`` (``backward``), or a
    list of tensors whose gradients are returned (``grad``). Then only the nodes on a
    path from a root to a wanted tensor run, and only they are released: a gradient
    penalty's ∇ₓD(x) computes no gradient for D's weights.
    """
    order = _topological_order(roots)
    grads = {}
    for root, g in zip(roots, root_grads):
        grads[id(root)] = grads[id(root)] + g if id(root) in grads else g
    wanted_ids = None if wanted is None else {id(t) for t in wanted}
    leading = None if wanted is None else _leading_to(order, wanted)
    # A leaf's .grad must be an array of its own, or `x.grad *= 0.5` would change
    # another leaf's .grad too (Add hands one array to both inputs) or the caller's
    # gradient. Copying every time would copy every parameter's gradient each step,
    # so only an array that may be shared is copied: a view of another array, or one
    # already handed out in this pass (the root gradients count as handed out). The
    # copy keeps the memory order (order="K"): a channels-last gradient stays
    # channels-last, a straight copy rather than a transposing one (half the time).
    handed = {id(g.data) for g in root_grads}
    found = {}
    with enable_grad() if create_graph else no_grad():
        # Reverse topological order: a tensor's gradient is complete (summed over
        # every use) before it is passed on to the inputs it was made from.
        for t in reversed(order):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if wanted_ids is not None and id(t) in wanted_ids:
                found[id(t)] = g
            fn = t.grad_fn
            if fn is None:
                if wanted is None:  # a leaf: accumulate the raw array into .grad
                    if t.grad is None:
                        shared = g.data.base is not None or id(g.data) in handed
                        t.grad = g.data.copy(order="K") if shared else g.data
                        handed.add(id(t.grad))
                    else:
                        t.grad = t.grad + g.data
                continue
            if leading is not None:
                leads = [id(p) in leading for p in fn.inputs]
                if not any(leads):
                    continue  # nothing grad() was asked about lies below t
                fn.leads_to_wanted = leads
            if [p._version for p in fn.inputs] != fn.versions:
                _changed_input_error(fn)
            if create_graph and not fn.twice_differentiable:
                raise RuntimeError(
                    f"{type(fn).__name__} has no second derivative in minigan (its backward is a "
                    "fused kernel), so create_graph=True cannot go through it"
                )
            input_grads = fn.backward(g)
            for p, gp in zip(fn.inputs, input_grads):
                if gp is None or not p.requires_grad:
                    continue
                if gp.shape != p.shape:
                    raise RuntimeError(
                        f"{type(fn).__name__}.backward returned a gradient of shape "
                        f"{gp.shape} for an input of shape {p.shape}"
                    )
                check_gradient(fn, gp)
                grads[id(p)] = grads[id(p)] + gp if id(p) in grads else gp
            if not retain_graph:
                fn.release()
            elif leading is not None:
                del fn.leads_to_wanted  # a later backward() through the kept graph wants every input
    return found


def _not_a_tensor_error(cls, inputs, t):
    i = next(i for i, u in enumerate(inputs) if u is t)
    raise TypeError(f"{cls.__name__}: input {i} is a {type(t).__name__}, expected a Tensor; make one with mg.tensor(...)")


def _changed_input_error(fn):
    i, t = next((i, t) for i, (t, v) in enumerate(zip(fn.inputs, fn.versions)) if t._version != v)
    raise RuntimeError(
        f"{type(fn).__name__}: input {i} (shape {t.shape}) was changed in place after the forward "
        "pass that used it (e.g. by an optimiser step), so its gradient would be computed from the "
        "new values: call backward() before the step, or run the forward pass again"
    )


def _root_gradient(root, gradient, caller="backward() on a tensor", argument="a gradient argument"):
    """The gradient that starts a backward pass from ``root``: ``gradient`` checked and
    made a tensor like root, or 1 for a scalar root. (The error for a missing one
    names the caller and its argument.)"""
    if gradient is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"{caller} of shape {root.shape} needs {argument}: "
                "an implicit gradient exists only for scalar outputs (reduce with .sum() or "
                ".mean() first, or pass a tensor of the same shape)"
            )
        return Tensor(get_xp(root.data).ones_like(root.data))
    if not isinstance(gradient, Tensor):  # a number, a list or an array: made like root
        gradient = Tensor(asarray_like(gradient, root.data))
    if gradient.shape != root.shape:
        raise RuntimeError(f"gradient of shape {gradient.shape} given for a tensor of shape {root.shape}")
    if gradient.device != root.device:
        raise RuntimeError(
            f"gradient on {gradient.device} given for a tensor on {root.device}; move it with .to(device)"
        )
    if gradient.dtype != root.dtype:
        raise TypeError(
            f"gradient of dtype {gradient.dtype} given for a tensor of dtype {root.dtype}; "
            f"give it the tensor's dtype (e.g. mg.tensor(g, dtype='{root.dtype}'))"
        )
    return gradient


def backward(root, gradient=None, retain_graph=False, create_graph=False):
    """Accumulate d(root)/d(leaf) into ``leaf.grad`` for every leaf that requires grad."""
    if not root.requires_grad:
        raise RuntimeError(
            "backward() on a tensor that does not require grad: none of the tensors it "
            "was made from has requires_grad=True (or it was made under mg.no_grad())"
        )
    _run_backward([root], [_root_gradient(root, gradient)], None, retain_graph or create_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Return a tuple of d(sum of outputs)/d(input), one per input (a tuple of one for
    one input, as in PyTorch: ``(gx,) = grad(y, x)``), without touching ``.grad``.

    With ``create_graph=True`` the returned gradients are themselves part of a graph
    and can be differentiated again (double backward).
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):  # zip() would leave the outputs past the shorter list out
        raise ValueError(f"grad(): {len(outputs)} outputs but {len(grad_outputs)} grad_outputs; give one per output "
                         "(None for a scalar output)")
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"grad(): input {i} is a {type(t).__name__}, expected a Tensor")
        if not t.requires_grad:  # no graph records how the outputs depend on it
            raise RuntimeError(f"grad(): input {i} (shape {t.shape}) does not require grad, so the outputs "
                               "have no gradient with respect to it: make it with requires_grad=True")
    for t in outputs:
        if not t.requires_grad:
            raise RuntimeError("grad(): an output does not require grad, so it has no gradient")
    root_grads = [_root_gradient(o, g, "grad() of an output", f"grad_outputs[{i}]")
                  for i, (o, g) in enumerate(zip(outputs, grad_outputs))]
    retain = create_graph if retain_graph is None else retain_graph
    found = _run_backward(outputs, root_grads, inputs, retain, create_graph)
    result = []
    for i, t in enumerate(inputs):
        g = found.get(id(t))
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad(): input {i} (shape {t.shape}) was not used to compute the outputs; "
                "pass allow_unused=True to get None for it"
            )
        result.append(g)
    return tuple(result)
