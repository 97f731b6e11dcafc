"""Optimisers with PyTorch's update rules. They change ``p.data`` in place, outside
any graph, from the gradients that ``backward`` left in ``p.grad``."""

import math

import kernels
import numpy as np

from .backend import NUMERIC_KINDS, check_number, get_xp, is_int, is_number, to_device, to_numpy
from .nn.module import _zero_grad
from .tensor import Tensor


class Optimizer:
    state_keys = ()  # what a parameter's state holds once it has taken a step

    def __init__(self, params, defaults):
        if isinstance(params, Tensor) or hasattr(params, "parameters"):  # list() of a tensor: its rows
            raise TypeError(
                f"{type(self).__name__}: params is a {type(params).__name__}; give an iterable of tensors, "
                "e.g. model.parameters() or [w]"
            )
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        first = {}  # id -> position, to name a parameter given twice (it would be updated twice)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):  # a module itself, or PyTorch's {"params": ...} groups
                raise TypeError(
                    f"{type(self).__name__}: parameter {i} is a {type(p).__name__}, not a tensor; "
                    "give the optimiser model.parameters() (one parameter group only: change its settings "
                    "through opt.param_groups[0])"
                )
            if first.setdefault(id(p), i) != i:
                raise ValueError(
                    f"{type(self).__name__}: parameter {i} (shape {p.shape}) is parameter {first[id(p)]} "
                    "again; give each parameter once (module.parameters() lists a shared one once)"
                )
        self.defaults = self._checked(dict(defaults))  # those it was made with, whatever param_groups becomes
        # PyTorch's parameter groups, here one: the parameters, and the hyper-parameters
        # that step() reads, so that `opt.param_groups[0]["lr"] = 1e-4` changes the
        # learning rate from the next step on (a schedule's way).
        self.param_groups = [{"params": params, **self.defaults}]
        self._seen = self._checked_group = None  # see _group
        self.state = [{} for _ in params]  # per-parameter buffers, by position

    def _checked(self, group):
        """The hyper-parameters, checked (a ValueError names a bad one) and normalised."""
        raise NotImplementedError

    def _numbers(self, group, names):
        """A TypeError for a hyper-parameter that is not a number (the range checks
        would fail on it with Python's own message); the others, as Python numbers."""
        for name in names:
            group[name] = check_number(group[name], name, type(self).__name__)

    def _hyper_parameters(self):
        """param_groups[0], all but its "params"."""
        return {k: v for k, v in self.param_groups[0].items() if k != "params"}

    def zero_grad(self, set_to_none=True):
        _zero_grad(self.param_groups[0]["params"], set_to_none)

    def _group(self):
        """param_groups[0]'s hyper-parameters, checked where a step first reads a change
        to them: a bad value, or a misspelt name (which would be ignored), would show
        only in the weights. (Checked once per change: a step is on the hot path.)"""
        group = self._hyper_parameters()
        if group != self._seen:
            if set(group) != set(self.defaults):
                raise ValueError(f"{type(self).__name__}.step: param_groups[0] holds the hyper-parameters "
                                 f"{sorted(group)}, expected {sorted(self.defaults)}")
            self._seen, self._checked_group = group, self._checked(dict(group))  # (_checked normalises its copy)
        return self._checked_group

    def step(self):
        group = self._group()
        for i, (p, state) in enumerate(zip(self.param_groups[0]["params"], self.state)):
            if p.grad is not None:
                if type(p.grad) is not type(p.data):  # a Tensor: SGD's `p -= ...` would make a new one, the weights unchanged
                    raise TypeError(
                        f"{type(self).__name__}.step: parameter {i}'s .grad is a {type(p.grad).__name__}; it must be "
                        f"a raw array like its .data ({type(p.data).__name__}), as backward leaves it (t.grad = g.data)"
                    )
                if p.grad.shape != p.shape:  # SGD would broadcast it (Adam's kernel would refuse it, naming no parameter)
                    raise ValueError(
                        f"{type(self).__name__}.step: parameter {i} (shape {p.shape}) has a .grad of shape "
                        f"{p.grad.shape}; a gradient has its parameter's shape"
                    )
                self._update(p.data, p.grad, state, group)
                p.changed_in_place()

    def state_dict(self):
        """PyTorch's keys: "state", the per-parameter state (step counts, moments as
        NumPy copies), and "param_groups", the one group with its parameters given by
        position. (PyTorch's "state" is a dict by position holding only parameters
        that have taken a step; here it is a list, an empty dict for the others.)"""
        params = self.param_groups[0]["params"]
        return {
            "state": [{k: (v if isinstance(v, (int, float)) else to_numpy(v)) for k, v in s.items()} for s in self.state],
            "param_groups": [{**self._hyper_parameters(), "params": list(range(len(params)))}],
        }

    def load_state_dict(self, state_dict):
        name = type(self).__name__
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            keys = f" of {sorted(map(str, state_dict))}" if isinstance(state_dict, dict) else ""
            raise ValueError(f"{name}.load_state_dict: expected an optimiser's state_dict(), a dict of 'state' "
                             f"and 'param_groups', got a {type(state_dict).__name__}{keys}")
        states = state_dict["state"]
        groups = state_dict["param_groups"]
        if not isinstance(groups, (list, tuple)) or len(groups) != 1 or not isinstance(groups[0], dict):
            raise ValueError(f"{name}.load_state_dict: 'param_groups' must be a list of one dict (one parameter "
                             f"group, as this optimiser has), got {groups!r:.60}")
        loaded = {k: v for k, v in groups[0].items() if k != "params"}
        if not set(loaded) <= set(self.defaults):  # e.g. SGD's state for an Adam
            raise ValueError(f"{name}.load_state_dict: hyper-parameters {sorted(loaded)} in the state dict, "
                             f"{sorted(self.defaults)} in this {name}")
        hyper_parameters = self._checked({**self._hyper_parameters(), **loaded})  # the ones it names replace this one's
        params = self.param_groups[0]["params"]
        if not isinstance(states, (list, tuple)) or not all(isinstance(s, dict) for s in states):
            raise ValueError(f"{name}.load_state_dict: 'state' must be a list of one dict per parameter, got {states!r:.60}")
        if len(states) != len(params):
            raise ValueError(f"{name}.load_state_dict: state for {len(states)} parameters, this optimiser has {len(params)}")
        for i, (p, s) in enumerate(zip(params, states)):
            if s and set(s) != set(self.state_keys):  # a parameter's state is all of them once it has any
                raise ValueError(f"{name}.load_state_dict: parameter {i}'s state holds {sorted(s)}, "
                                 f"expected {sorted(self.state_keys)} (or nothing, before its first step)")
            for k, v in s.items():
                self._check_state_value(i, k, v, p)
        self.param_groups[0].update(hyper_parameters)
        self.state = [
            {k: (int(v) if k == "step" else to_device(v, p.device).astype(p.dtype)) for k, v in s.items()}
            for p, s in zip(params, states)
        ]

    def _check_state_value(self, i, key, value, p):
        """A step count is an int of at least 1 (the state exists once a step was taken;
        Adam divides by 1 - β^step); any other value, an array of numbers shaped like
        its parameter."""
        where = f"{type(self).__name__}.load_state_dict: state '{key}' of parameter {i}"
        if key == "step":
            if not is_int(value) or value < 1:
                raise ValueError(f"{where} must be a step count, an int of 1 or more, got {value!r:.40}")
        elif not hasattr(value, "dtype") or value.dtype.kind not in NUMERIC_KINDS:
            raise ValueError(f"{where} must be an array of numbers, got {value!r:.40} (a {type(value).__name__})")
        elif tuple(value.shape) != p.shape:
            raise ValueError(f"{where} has shape {tuple(value.shape)}, the parameter {p.shape}")


class SGD(Optimizer):
    """v = momentum·v + g;  p -= lr·v   (plain gradient descent when momentum = 0)."""

    state_keys = ("momentum_buffer",)

    def __init__(self, params, lr, momentum=0.0):
        super().__init__(params, {"lr": lr, "momentum": momentum})

    def _checked(self, group):
        self._numbers(group, ("lr", "momentum"))
        if not 0 <= group["lr"] < math.inf:  # (NaN fails too; 0 is PyTorch's frozen weights)
            raise ValueError(f"SGD: lr must be 0 or more and finite, got {group['lr']}")
        if not group["momentum"] >= 0:
            raise ValueError(f"SGD: momentum must be 0 or more, got {group['momentum']}")
        return group

    def _update(self, p, g, state, group):
        if group["momentum"]:
            if "momentum_buffer" in state:
                v = state["momentum_buffer"]
                v *= group["momentum"]
                v += g
            else:
                v = state["momentum_buffer"] = g.copy()
            g = v
        p -= group["lr"] * g


class Adam(Optimizer):
    """Adam (Kingma & Ba), in PyTorch's arithmetic:

        m = β1·m + (1 - β1)·g            v = β2·v + (1 - β2)·g²
        p -= lr/(1 - β1^t) · m / (√v/√(1 - β2^t) + eps)

    with ``weight_decay`` (L2 regularisation, as in PyTorch's Adam) added to g first:
    g + weight_decay·p, the gradient of weight_decay/2·‖p‖².
    """

    state_keys = ("step", "exp_avg", "exp_avg_sq")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    def _checked(self, group):
        self._numbers(group, ("lr", "eps", "weight_decay"))
        lr, betas, eps, weight_decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if not 0 <= lr < math.inf:
            raise ValueError(f"Adam: lr must be 0 or more and finite, got {lr}")
        if np.shape(betas) != (2,) or not all(is_number(b) and 0 <= b < 1 for b in betas):
            raise ValueError(f"Adam: betas must be in [0, 1), two of them (beta1, beta2), got {betas!r}")
        if not eps >= 0:
            raise ValueError(f"Adam: eps must be 0 or more, got {eps}")
        if not 0 <= weight_decay < math.inf:
            raise ValueError(f"Adam: weight_decay must be 0 or more and finite, got {weight_decay}")
        return {**group, "betas": tuple(betas)}

    def _update(self, p, g, state, group):
        if not state:
            xp = get_xp(p)
            state.update(step=0, exp_avg=xp.zeros(p.shape, p.dtype), exp_avg_sq=xp.zeros(p.shape, p.dtype))
        state["step"] += 1
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p  # a new array: p.grad stays as backward left it
        beta1, beta2 = group["betas"]
        # One pass over p, m and v (kernels/adam.py): the same numbers as the ten
        # or so whole-array NumPy operations the formulas above take, faster.
        kernels.adam_update(p, g, state["exp_avg"], state["exp_avg_sq"], state["step"], group["lr"], beta1, beta2, group["eps"])
