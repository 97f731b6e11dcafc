"""``Module`` and ``Parameter``, with PyTorch's habits: attributes that are Parameters
or Modules are registered automatically; ``state_dict`` holds parameters and buffers
(such as batch norm's running statistics) by dotted name."""

from collections import OrderedDict, namedtuple
from collections.abc import Mapping

import numpy as np

from .. import backend
from ..tensor import Tensor, check_requires_grad


# What load_state_dict did not load (with strict=False), as PyTorch returns it.
IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _dotted(prefix, name):
    """The name of ``name`` inside the module named ``prefix`` ("" for the top one)."""
    return f"{prefix}.{name}" if prefix else name


def _array(value):
    """A state dict's value as an array: a NumPy or CuPy array as it is, a Tensor's
    array, anything else through NumPy (a list, a number, a tensor of PyTorch's)."""
    if isinstance(value, Tensor):
        return value.data
    cupy = backend.cupy_or_none()
    if isinstance(value, np.ndarray) or (cupy is not None and isinstance(value, cupy.ndarray)):
        return value
    return np.asarray(value)


def _zero_grad(params, set_to_none):
    """Clear the parameters' gradients before a backward, which adds to .grad (for
    Module.zero_grad and Optimizer.zero_grad). None, PyTorch's default, lets an
    optimiser skip a parameter that gets no gradient; zeros, written in place, do
    not: a zero gradient still moves Adam's weights, by its moments."""
    for p in params:
        if set_to_none:
            p.grad = None
        elif p.grad is not None:
            p.grad[...] = 0


class Parameter(Tensor):
    """A tensor that is a learnable weight of a Module (it always requires grad)."""

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        super().__init__(data.data if isinstance(data, Tensor) else data)
        self.requires_grad_(check_requires_grad(requires_grad, "nn.Parameter()"))


class Module:
    # Names of buffers that a state dict may lack, having been saved before they
    # existed: loading it leaves them as they are (batch norm's num_batches_tracked).
    _optional_buffers = ()

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before setting attributes")
        # PyTorch's rules. A Parameter or a Module is registered under the name (taken
        # from any other registry); a name it held already keeps its place, and so
        # state_dict's order. A registered name may also be given None (e.g. a layer's
        # bias removed), which keeps its place, and a buffer any tensor. Anything else
        # would silently stop being trained or saved: refused.
        if isinstance(value, (Parameter, Module)):
            home = self._parameters if isinstance(value, Parameter) else self._modules
            for registry in (self._parameters, self._buffers, self._modules):
                if registry is not home:
                    registry.pop(name, None)
            home[name] = value
        else:
            for kind, registry, holds, hint in (
                ("parameter", self._parameters, Parameter, "wrap it in nn.Parameter(...)"),
                ("module", self._modules, Module, "give a Module"),
                ("buffer", self._buffers, Tensor, "give a tensor (mg.tensor(...))"),
            ):
                if name in registry:
                    if not (value is None or isinstance(value, holds)):
                        raise TypeError(f"cannot assign a {type(value).__name__} as {kind} {name!r} of "
                                        f"{type(self).__name__}: {hint}, or None")
                    registry[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        object.__delattr__(self, name)

    def _check_new_name(self, what, name, registry):
        """A name for ``what`` (e.g. "add_module"): a string, not empty, without '.'
        (state_dict's dotted names could not be split again), and not an attribute
        that ``registry`` does not hold (e.g. "forward", or a parameter's name)."""
        if not isinstance(name, str):
            raise TypeError(f"{what}: the name must be a string, got {name!r:.40} (a {type(name).__name__})")
        if not name or "." in name:
            raise KeyError(f"{what}: the name must be non-empty and without '.', got {name!r}")
        if hasattr(self, name) and name not in registry:
            raise KeyError(f"{what}: {type(self).__name__} already has an attribute {name!r}")

    def add_module(self, name, module):
        """Register ``module`` as the child ``name``, as ``self.name = module`` does, for
        names that are not identifiers too (a Sequential's "0", "1", ...)."""
        self._check_new_name("add_module", name, self._modules)
        if not (module is None or isinstance(module, Module)):
            raise TypeError(f"{type(self).__name__}: {module!r:.60} (a {type(module).__name__}) is not a Module; "
                            "a function such as F.relu has a module twin, e.g. nn.ReLU()")
        self._modules[name] = module
        object.__setattr__(self, name, module)

    def register_parameter(self, name, param):
        """Register ``param`` (a Parameter, or None for one a layer goes without, e.g.
        its bias) under ``name``."""
        self._check_new_name("register_parameter", name, self._parameters)
        if not (param is None or isinstance(param, Parameter)):
            raise TypeError(f"register_parameter {name!r}: expected an nn.Parameter or None, got a {type(param).__name__}")
        self._parameters[name] = param
        object.__setattr__(self, name, param)

    def register_buffer(self, name, tensor):
        """A tensor saved in ``state_dict`` but not trained (e.g. running statistics);
        None registers the name with nothing to save yet."""
        self._check_new_name("register_buffer", name, self._buffers)
        if not (tensor is None or isinstance(tensor, Tensor)):
            raise TypeError(f"register_buffer {name!r}: expected a tensor (mg.tensor(...)) or None, "
                            f"got a {type(tensor).__name__}")
        self._buffers[name] = tensor
        object.__setattr__(self, name, tensor)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # --- walking the tree ---------------------------------------------------
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """This module and every one inside it, by dotted name. A module used in two
        places (shared weights) is listed under its first name only, unless
        ``remove_duplicate`` is False. ``memo`` holds the modules already listed."""
        memo = set() if memo is None else memo
        if remove_duplicate:
            if self in memo:
                return
            memo.add(self)
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(memo, _dotted(prefix, name), remove_duplicate)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_children(self):
        """The modules directly inside this one, each once, by name."""
        seen = set()
        for name, child in self._modules.items():
            if child is not None and child not in seen:
                seen.add(child)
                yield name, child

    def children(self):
        return (m for _, m in self.named_children())

    def apply(self, fn):
        """Call ``fn`` on every module inside this one, then on this one (e.g. an
        initialiser that looks at each layer's type); returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def _named(self, kinds, remove_duplicate=True):
        """The tensors of the registries ``kinds`` of every module, module by module,
        each tensor once (by identity) unless ``remove_duplicate`` is False: an
        optimiser given a shared weight twice would update it twice per step."""
        seen = set()
        for prefix, module in self.named_modules(remove_duplicate=remove_duplicate):
            for kind in kinds:
                for name, t in getattr(module, kind).items():
                    if t is not None and not (remove_duplicate and id(t) in seen):
                        seen.add(id(t))
                        yield _dotted(prefix, name), t

    def named_parameters(self):
        return self._named(["_parameters"])

    def parameters(self):
        return (p for _, p in self.named_parameters())

    def named_buffers(self):
        return self._named(["_buffers"])

    def buffers(self):
        return (b for _, b in self.named_buffers())

    def named_tensors(self, remove_duplicate=True):
        """Everything state_dict holds, in PyTorch's order: module by module, each one's
        parameters, then its buffers (batch-norm statistics), then its children's. A
        tensor shared by two modules comes once, under its first name, unless
        ``remove_duplicate`` is False (as in state_dict, PyTorch's way)."""
        return list(self._named(["_parameters", "_buffers"], remove_duplicate))

    # --- modes, devices, gradients -------------------------------------------
    def train(self, mode=True):
        if not isinstance(mode, bool):  # train("eval") would be training mode: a non-empty string is true
            raise ValueError(f"train(mode): mode must be True or False, got {mode!r} (for eval mode call .eval())")
        # PyTorch's way: set this module's flag, then ask each child, so that a module
        # whose own train() does more (e.g. keeps a frozen batch norm in eval mode) is heard.
        object.__setattr__(self, "training", mode)
        for child in self.children():
            child.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        _zero_grad(self.parameters(), set_to_none)

    def requires_grad_(self, requires_grad=True):
        """Whether backward computes the parameters' gradients (PyTorch's name)."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def to(self, device):
        device = backend.resolve_device(device)
        for _, t in self.named_tensors():
            t.data = backend.to_device(t.data, device)
            t.changed_in_place()
            if t.grad is not None:
                t.grad = backend.to_device(t.grad, device)
        return self

    # --- saving and loading --------------------------------------------------
    def state_dict(self):
        """Parameters and buffers by dotted name, as NumPy copies; a shared one under
        each of its names, as in PyTorch."""
        return OrderedDict((name, backend.to_numpy(t.data)) for name, t in self.named_tensors(remove_duplicate=False))

    def load_state_dict(self, state_dict, strict=True):
        """Copy values in place; missing, unexpected or mis-shaped entries are errors
        (a missing optional buffer is not: it keeps its value, as in PyTorch). With
        ``strict=False`` missing and unexpected keys are skipped, and returned."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict for {type(self).__name__}: expected a dict of name -> array "
                            f"(e.g. another model's state_dict()), got a {type(state_dict).__name__}")
        own = OrderedDict(self.named_tensors(remove_duplicate=False))
        optional = {_dotted(prefix, name) for prefix, m in self.named_modules(remove_duplicate=False)
                    for name in m._optional_buffers}
        missing = [k for k in own if k not in state_dict and k not in optional]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        if strict and missing:
            problems.append(f"missing keys: {', '.join(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {', '.join(unexpected)}")
        values = {}  # the entries to load, as arrays (an unexpected one is not even read)
        for name in own:
            if name not in state_dict:
                continue
            try:
                value = values[name] = _array(state_dict[name])
            except (TypeError, ValueError) as e:  # e.g. a ragged list
                problems.append(f"{name}: not an array ({e})")
                continue
            if tuple(value.shape) != own[name].shape:
                problems.append(f"{name}: shape {tuple(value.shape)} in the state dict, {own[name].shape} in the model")
            # Checked before anything is copied: None became NaN, and a string failed
            # halfway through, with the entries before it loaded already.
            elif value.dtype.kind not in backend.NUMERIC_KINDS:
                problems.append(f"{name}: values of dtype {value.dtype} in the state dict, numbers ({own[name].dtype}) in the model")
        if problems:
            raise RuntimeError(f"load_state_dict for {type(self).__name__} failed: " + "; ".join(problems))
        for name, value in values.items():
            target = own[name]
            xp = backend.get_xp(target.data)
            target.data[...] = xp.asarray(backend.to_device(value, target.device), dtype=target.dtype)
            target.changed_in_place()
        return IncompatibleKeys(missing, unexpected)

    def extra_repr(self):
        return ""

    def __repr__(self):
        """PyTorch's layout: the settings (extra_repr) on one line when there is nothing
        else, else each on a line of its own followed by the children, indented."""
        extra = self.extra_repr()
        lines = (extra.split("\n") if extra else []) + [
            f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        if len(lines) == 1 and not self._modules:
            body = lines[0]
        elif lines:
            body = "".join(f"\n  {line}" for line in lines) + "\n"
        else:
            body = ""
        return f"{type(self).__name__}({body})"
