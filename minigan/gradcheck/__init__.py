"""Gradient checking: every backward against central finite differences in float64.

``gradcheck(fn, *inputs)`` compares the analytic gradient (from backward) with

    ∂f/∂x ≈ (f(x + eps) - f(x - eps)) / (2·eps)

and passes when |analytic - numeric| <= atol + rtol·|numeric| for every entry
(PyTorch's gradcheck rule). Small problems compare the whole Jacobian, one column
(input element) and one row (output element) at a time: a backward pass per output
element and two forward passes per input element. Where that would take more than
FULL_JACOBIAN_PASSES passes, Chainer's random-direction check stands in: for a random
input direction d and output weights w,

    wᵀ·J·d  (numeric: (w·f(x + eps·d) - w·f(x - eps·d)) / 2eps)  vs  (Jᵀw)·d  (backward)

one number per input, which catches a gradient wrong everywhere or in many entries,
but can miss one wrong entry among thousands. Every op in ``cases.py`` is small
enough for the whole Jacobian, at first and at second order.

The tolerances are PyTorch's gradcheck defaults: eps = 1e-6, atol = 1e-5,
rtol = 1e-3, in float64. There a central difference is off from the derivative
by about eps²·|f'''|/6 (Taylor's remainder, ~1e-13) plus 1e-16·|f|/eps (rounding,
~1e-10) for values of order 1, so a right backward passes with room to spare,
while a wrong one (a lost term, a sign, a factor, a transpose) is off by about
the size of the gradient itself. A NaN always fails.

``python -m minigan.gradcheck`` runs it over every op and prints a table (all but
``.to(device)``, whose backward moves the gradient back to the CPU: on a machine
without a GPU there is nowhere to move to).
"""

import argparse

import numpy as np

from .. import backend
from ..autograd import enable_grad, grad, no_grad
from ..tensor import Tensor

FULL_JACOBIAN_PASSES = 2000  # forward and backward passes the whole Jacobian may take


def compares_whole_jacobian(n_in, n_out):
    """Whether ``compare`` checks every entry of the Jacobian for n_in differentiable
    input elements and n_out output elements (n_out backward, 2·n_in forward passes)."""
    return n_out + 2 * n_in <= FULL_JACOBIAN_PASSES


class GradcheckError(AssertionError):
    pass


def _differentiable(inputs):
    return [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]


def _evaluate(fn, inputs):
    """f(inputs) as a float64 NumPy array, with no graph."""
    with no_grad():
        return backend.to_numpy(fn(*inputs).data).astype(np.float64)


def _analytic_vjp(fn, inputs, w):
    """(Jᵀw) for each differentiable input: one backward pass with output gradient w."""
    out = fn(*inputs)
    wanted = [inputs[i] for i in _differentiable(inputs)]
    w = Tensor(backend.to_device(w.reshape(out.shape).astype(out.dtype), out.device))
    grads = grad(out, wanted, w, allow_unused=True)
    return [np.zeros(x.shape) if g is None else backend.to_numpy(g.data).astype(np.float64) for x, g in zip(wanted, grads)]


def _perturbed(fn, inputs, index, direction, eps):
    """(f(x + eps·d) - f(x - eps·d)) / 2eps, perturbing input ``index`` in place."""
    x = inputs[index].data
    xp = backend.get_xp(x)
    d = xp.asarray(direction.reshape(x.shape))
    original = x.copy()
    x += eps * d
    plus = _evaluate(fn, inputs)
    x[...] = original - eps * d
    minus = _evaluate(fn, inputs)
    x[...] = original
    return (plus - minus) / (2 * eps)


def _one_hot(n, k):
    e = np.zeros(n)
    e[k] = 1.0
    return e


def compare(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Check fn's gradients; returns (max_abs_error, max_rel_error, failure or None).

    A failure is a message naming the input, the element, the analytic and the
    numeric value.
    """
    if not _differentiable(inputs):
        raise ValueError("gradcheck: no input requires grad, so there is no gradient to check: "
                         "give the inputs to differentiate requires_grad=True")
    for i in _differentiable(inputs):
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; finite differences need float64 inputs")
    rng = np.random.default_rng(seed)
    n_out = _evaluate(fn, inputs).size
    n_in = sum(inputs[i].data.size for i in _differentiable(inputs))
    errors = []  # (max abs error, max rel error, failure) per input

    def record(where, analytic, numeric):
        err = np.abs(analytic - numeric)
        rel = err / np.maximum(np.abs(numeric), 1e-12)
        bad = np.argwhere(~(err <= atol + rtol * np.abs(numeric)))  # "not within": a NaN fails too
        failure = None
        if bad.size:
            k = tuple(bad[0])
            failure = f"{where(k)}: analytic {analytic[k]:.8g}, numeric {numeric[k]:.8g}"
        errors.append((float(err.max(initial=0)), float(rel.max(initial=0)), failure))

    if compares_whole_jacobian(n_in, n_out):
        # The whole Jacobian J[o, e]: rows from backward (one-hot output gradients),
        # columns from finite differences (one input element at a time).
        rows = [_analytic_vjp(fn, inputs, _one_hot(n_out, o)) for o in range(n_out)]
        for pos, i in enumerate(_differentiable(inputs)):
            size = inputs[i].data.size
            analytic = np.stack([r[pos].reshape(-1) for r in rows])
            numeric = np.stack([_perturbed(fn, inputs, i, _one_hot(size, e), eps).reshape(-1) for e in range(size)], axis=1)
            shape = inputs[i].shape
            record(lambda k, i=i, shape=shape: f"input {i}, element {tuple(int(n) for n in np.unravel_index(k[1], shape))} (output {k[0]})", analytic, numeric)
    else:
        w = rng.standard_normal(n_out)
        vjps = _analytic_vjp(fn, inputs, w)
        for pos, i in enumerate(_differentiable(inputs)):
            d = rng.standard_normal(inputs[i].shape)
            numeric = np.array([w @ _perturbed(fn, inputs, i, d, eps).reshape(-1)])
            analytic = np.array([vjps[pos].reshape(-1) @ d.reshape(-1)])
            record(lambda k, i=i: f"input {i}, random direction", analytic, numeric)
    failures = [f for _, _, f in errors if f]
    return (
        max((a for a, _, _ in errors), default=0.0),
        max((r for _, r, _ in errors), default=0.0),
        failures[0] if failures else None,
    )


def _in_one_form(fn, inputs):
    """fn and its inputs as ``compare`` takes them, from PyTorch's form too: the inputs
    in one tuple, gradcheck(fn, (x, y)), and an fn returning a tuple of tensors (then
    checked as one output, their values joined)."""
    from ..ops import cat

    if len(inputs) == 1 and isinstance(inputs[0], (tuple, list)):
        inputs = tuple(inputs[0])

    def joined(*args):
        out = fn(*args)
        return cat([o.reshape(-1) for o in out]) if isinstance(out, (tuple, list)) else out

    return joined, inputs


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """True when fn's analytic gradients match finite differences (see module doc).
    ``gradcheck(fn, x, y)``, or PyTorch's ``gradcheck(fn, (x, y))``."""
    fn, inputs = _in_one_form(fn, inputs)
    _, _, failure = compare(fn, *inputs, eps=eps, atol=atol, rtol=rtol)
    if failure and raise_exception:
        raise GradcheckError(f"gradcheck failed: {failure}")
    return failure is None


def first_derivatives(fn, n_inputs):
    """A function of (*inputs, v) returning the gradient of v·fn(inputs), flattened
    and concatenated: differentiating *it* checks the second derivatives."""
    from ..ops import cat

    def grads_of(*args):
        inputs, v = args[:n_inputs], args[n_inputs]
        wanted = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
        with enable_grad():  # the first derivatives need a graph even where f does not
            gs = grad(fn(*inputs), wanted, v, create_graph=True, allow_unused=True)
        return cat([g.reshape(-1) for g in gs if g is not None])

    return grads_of


def second_order_problem(fn, inputs, seed=0):
    """The function and inputs whose gradcheck is fn's gradgradcheck: the first
    derivatives as a function of (*inputs, v), for a random output gradient v."""
    with no_grad():
        out = fn(*inputs)
    v = np.random.default_rng(seed).standard_normal(out.shape)
    v = Tensor(backend.to_device(v, out.device), requires_grad=True)
    return first_derivatives(fn, len(inputs)), (*inputs, v)


def gradgradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """gradcheck of the gradient itself (PyTorch's gradgradcheck): checks double backward."""
    grads_of, args = second_order_problem(*_in_one_form(fn, inputs))
    return gradcheck(grads_of, *args, eps=eps, atol=atol, rtol=rtol, raise_exception=raise_exception)


# --- python -m minigan.gradcheck --------------------------------------------------
def main(argv=None):
    """Check every registered op (``cases.py``), print a table; return 1 if any fails."""
    from .cases import CASES

    # No options: --help says what runs, and a mistyped flag is an error, not ignored.
    argparse.ArgumentParser(prog="python -m minigan.gradcheck",
                            description="Every op's gradient (and, where the op has one, its gradient's gradient) against float64 "
                                        "central differences (eps 1e-6, atol 1e-5, rtol 1e-3).").parse_args(argv)

    failed = []
    header = f"{'op':<32} {'shapes':<34} {'max abs err':>11} {'max rel err':>11}  {'1st':<4} {'2nd':<4}"
    print(header)
    print("-" * len(header))
    for case in CASES:
        inputs = case.make_inputs()
        abs_err, rel_err, failure = compare(case.fn, *inputs)
        second = "-"
        if case.second_order:
            grads_of, args = second_order_problem(case.fn, inputs)
            _, _, failure2 = compare(grads_of, *args)
            second = "FAIL" if failure2 else "ok"
            if failure2:
                failed.append(f"{case.name} (second order): {failure2}")
        first = "FAIL" if failure else "ok"
        if failure:
            failed.append(f"{case.name}: {failure}")
        shapes = " ".join("x".join(map(str, x.shape)) or "()" for x in inputs if isinstance(x, Tensor))
        print(f"{case.name:<32} {shapes:<34} {abs_err:>11.2e} {rel_err:>11.2e}  {first:<4} {second:<4}", flush=True)
    print("-" * len(header))
    print(f"{len(CASES)} ops checked (eps 1e-6, atol 1e-5, rtol 1e-3, float64); 2nd '-' = first order only")
    if failed:
        print("FAILED:\n  " + "\n  ".join(failed))
        return 1
    print("all gradients match finite differences")
    return 0

