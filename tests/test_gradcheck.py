"""The gradient checker: every registered op passes it, and it catches a wrong backward."""

import importlib
import re
import subprocess
import sys

import numpy as np
import pytest

import minigan as mg
import minigan.ops.unary
from minigan.autograd import Function
from minigan.ops.layout import from_nhwc, is_channels_last, to_nhwc

# ``mg.gradcheck`` is the function; the module it lives in (with main, GradcheckError
# and compares_whole_jacobian) is reached through the import system.
gc = importlib.import_module("minigan.gradcheck")
from minigan.gradcheck import cases as cases_module
from minigan.gradcheck.cases import CASES

CASES_BY_NAME = {case.name: case for case in CASES}


def test_case_names_are_unique():
    assert len(CASES_BY_NAME) == len(CASES)


@pytest.mark.parametrize("name", list(CASES_BY_NAME))
def test_registered_case_first_order(name):
    case = CASES_BY_NAME[name]
    assert mg.gradcheck(case.fn, *case.make_inputs())


@pytest.mark.parametrize("name", [c.name for c in CASES if c.second_order])
def test_registered_case_second_order(name):
    case = CASES_BY_NAME[name]
    assert mg.gradgradcheck(case.fn, *case.make_inputs())


IMAGE_CASES = [c.name for c in CASES if c.name.startswith(("conv", "batch_norm 2d"))]


@pytest.mark.parametrize("name", IMAGE_CASES)
def test_image_cases_on_channels_last_inputs(name):
    # Inside a network the images between convolutions are channels-last views
    # (minigan/ops/layout.py); check the gradients with the 4-D inputs laid out so.
    case = CASES_BY_NAME[name]
    inputs = [
        mg.Tensor(from_nhwc(to_nhwc(t.data)), requires_grad=True) if t.ndim == 4 else t for t in case.make_inputs()
    ]
    assert any(is_channels_last(t.data) for t in inputs)
    assert mg.gradcheck(case.fn, *inputs)
    if case.second_order:
        assert mg.gradgradcheck(case.fn, *inputs)


def test_command_line_checks_every_case():
    result = subprocess.run(
        [sys.executable, "-m", "minigan.gradcheck"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for case in CASES:
        assert case.name in result.stdout
    assert "FAIL" not in result.stdout
    assert f"{len(CASES)} ops checked" in result.stdout


# --- a wrong backward is caught -----------------------------------------------------------
def doubled_tanh_backward(self, g):
    return (g * 2,)  # wrong: the true derivative is 1 - tanh²


@pytest.fixture
def broken_tanh(monkeypatch):
    monkeypatch.setattr(minigan.ops.unary.Tanh, "backward", doubled_tanh_backward)


def test_wrong_backward_is_reported_with_element_and_values(broken_tanh):
    x = mg.tensor(np.array([[0.3, -0.7], [1.2, 0.1]]), requires_grad=True)
    with pytest.raises(gc.GradcheckError) as info:
        mg.gradcheck(lambda a: a.tanh(), x)
    message = str(info.value)
    found = re.search(r"input 0, element \((\d+), (\d+)\) \(output (\d+)\): analytic (\S+), numeric (\S+)", message)
    assert found, message
    i, j, out = (int(found.group(k)) for k in (1, 2, 3))
    analytic, numeric = float(found.group(4)), float(found.group(5))
    # The first failing entry is on the diagonal of the Jacobian of an elementwise op:
    # the broken backward says 2, finite differences say 1 - tanh²(x).
    assert out == 2 * i + j
    assert analytic == pytest.approx(2.0)
    assert numeric == pytest.approx(1 - np.tanh(x.data[i, j]) ** 2, rel=1e-6)


def test_wrong_backward_makes_gradcheck_return_false_when_not_raising(broken_tanh):
    x = mg.tensor(np.array([0.3, -0.7]), requires_grad=True)
    assert mg.gradcheck(lambda a: a.tanh(), x, raise_exception=False) is False


def test_wrong_backward_makes_main_fail_and_name_the_op(broken_tanh, monkeypatch, capsys):
    # Run the command line entry point over two of the registered cases only.
    subset = [CASES_BY_NAME["tanh"], CASES_BY_NAME["exp"]]
    monkeypatch.setattr(cases_module, "CASES", subset)
    assert gc.main([]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out
    assert re.search(r"^\s+tanh: input 0", out, re.MULTILINE), out
    assert re.search(r"^exp .* ok\s+ok\s*$", out, re.MULTILINE), out
    assert "exp:" not in out.split("FAILED")[1]


def test_main_returns_0_when_all_pass(monkeypatch, capsys):
    monkeypatch.setattr(cases_module, "CASES", [CASES_BY_NAME["tanh"]])
    assert gc.main([]) == 0
    assert "all gradients match" in capsys.readouterr().out


def test_main_takes_no_flags_and_says_so(monkeypatch, capsys):
    monkeypatch.setattr(cases_module, "CASES", [])  # (so that a flag let through checks nothing, quickly)
    with pytest.raises(SystemExit) as exit_:
        gc.main(["--only", "tanh"])
    assert exit_.value.code == 2 and "unrecognized arguments: --only tanh" in capsys.readouterr().err


def test_wrong_double_backward_is_caught(monkeypatch):
    # Tanh's first derivative is right but built from a constant copy of its
    # output, so the second derivative misses the term that y depends on x.
    def backward_with_detached_output(self, g):
        y = self.output().detach()
        return (g * (1 - y * y),)

    monkeypatch.setattr(minigan.ops.unary.Tanh, "backward", backward_with_detached_output)
    x = mg.tensor(np.array([0.3, -0.7, 1.1]), requires_grad=True)
    assert mg.gradcheck(lambda a: a.tanh(), x)
    with pytest.raises(gc.GradcheckError):
        mg.gradgradcheck(lambda a: a.tanh(), x)


def test_nan_backward_is_caught(monkeypatch):
    # NaN compares false with everything, so "is the error too large?" would pass it.
    monkeypatch.setattr(minigan.ops.unary.Tanh, "backward", lambda self, g: (g * np.nan,))
    x = mg.tensor(np.array([0.3, -0.7]), requires_grad=True)
    with pytest.raises(gc.GradcheckError, match="analytic nan, numeric"):
        mg.gradcheck(lambda a: a.tanh(), x)


def test_float32_inputs_are_rejected():
    x = mg.tensor(np.ones(3, np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="input 0 is float32.*float64"):
        mg.gradcheck(lambda a: a.tanh(), x)


# --- the random-direction check for large problems ---------------------------------------------
def large_input():
    x = np.random.default_rng(3).standard_normal((70, 70))
    assert not gc.compares_whole_jacobian(x.size, x.size)  # the whole Jacobian would take too long
    return mg.tensor(x, requires_grad=True)


def test_random_direction_check_passes_a_right_backward():
    assert mg.gradcheck(lambda a: (a @ a).tanh(), large_input())


def test_random_direction_check_catches_a_wrong_backward(broken_tanh):
    with pytest.raises(gc.GradcheckError, match="input 0, random direction: analytic .*, numeric"):
        mg.gradcheck(lambda a: a.tanh(), large_input())


# --- what gradcheck must never pass ------------------------------------------------------
class Product(Function):
    """a * b with a backward that can be made wrong for one input (``wrong``)."""

    wrong = None  # (input index, how its gradient is spoiled)

    def forward(self, a, b):
        return a * b

    def backward(self, g):
        a, b = self.inputs
        grads = [g * b, g * a]
        if self.wrong is not None:
            i, spoil = self.wrong
            grads[i] = spoil(grads[i])
        return tuple(grads)


SPOILED = {
    "all zeros": lambda gx: gx * 0,
    "sign flipped": lambda gx: -gx,
    "twice too large": lambda gx: gx * 2,
    "1% too large": lambda gx: gx * 1.01,  # ten times rtol: the tolerance is tight enough
    "NaN": lambda gx: gx * np.nan,
}


def product_inputs(n):
    # b is small, so d(ab)/da = b is about 1e-2: a wrong gradient of that size must
    # not hide under atol either.
    rng = np.random.default_rng(5)
    return mg.tensor(rng.standard_normal(n), requires_grad=True), mg.tensor(1e-2 * rng.standard_normal(n), requires_grad=True)


@pytest.mark.parametrize("size", [6, 70 * 70], ids=["whole Jacobian", "random direction"])
@pytest.mark.parametrize("spoil", list(SPOILED))
@pytest.mark.parametrize("which", [0, 1])
def test_a_wrong_gradient_of_either_input_fails(monkeypatch, size, spoil, which):
    a, b = product_inputs(size)
    assert gc.compares_whole_jacobian(2 * size, size) == (size == 6)  # the mode
    assert mg.gradcheck(Product.apply, a, b)  # right, it passes
    monkeypatch.setattr(Product, "wrong", (which, SPOILED[spoil]))
    with pytest.raises(gc.GradcheckError, match=f"input {which}, "):
        mg.gradcheck(Product.apply, a, b)


def test_a_wrong_second_derivative_of_either_input_fails(monkeypatch):
    # d(ab)/db = g·a with the right values but as a constant: right to first order,
    # but its derivatives with respect to a (and to g) are lost.
    a, b = product_inputs(3)
    assert mg.gradgradcheck(Product.apply, a, b)
    monkeypatch.setattr(Product, "wrong", (1, lambda gb: gb.detach()))
    assert mg.gradcheck(Product.apply, a, b)
    with pytest.raises(gc.GradcheckError):
        mg.gradgradcheck(Product.apply, a, b)


def test_nothing_to_check_is_an_error():
    # With no input that requires grad there is no gradient to compare, even where
    # the output has one (through a weight of fn's own): passing would hide a
    # forgotten requires_grad=True.
    x = mg.tensor(np.array([0.3, -0.7]))
    w = mg.tensor(np.array([2.0, 3.0]), requires_grad=True)
    with pytest.raises(ValueError, match="no input requires grad"):
        mg.gradcheck(lambda a: a * w, x)


def test_every_registered_op_gets_the_whole_jacobian_compared():
    # A one-number random-direction check can miss a single wrong entry: none of the
    # registered problems, first or second order, may fall back to it.
    for case in CASES:
        inputs = case.make_inputs()
        problems = [(case.fn, inputs)] + ([gc.second_order_problem(case.fn, inputs)] if case.second_order else [])
        for fn, args in problems:
            n_in = sum(args[i].data.size for i in gc._differentiable(args))
            assert gc.compares_whole_jacobian(n_in, gc._evaluate(fn, args).size), case.name


def test_one_wrong_entry_of_a_gradient_fails(monkeypatch):
    a, b = product_inputs(6)
    monkeypatch.setattr(Product, "wrong", (0, lambda gx: gx * mg.tensor([1.0, 1.0, 1.0, 1.0, 1.02, 1.0], dtype="float64")))
    with pytest.raises(gc.GradcheckError, match=r"input 0, element \(4,\)"):
        mg.gradcheck(Product.apply, a, b)


def test_pytorchs_form_inputs_in_a_tuple_and_a_tuple_of_outputs(broken_tanh):
    # gradcheck(fn, (x,)) said no input requires grad, gradgradcheck failed deep inside,
    # and a tuple of outputs failed on tuple.data; both are PyTorch's form.
    x = mg.tensor(np.array([0.3, -0.7]), requires_grad=True)
    y = mg.tensor(np.array([0.5, 2.0]), requires_grad=True)
    assert mg.gradcheck(lambda a, b: (a * b, b.exp()), (x, y))
    assert mg.gradgradcheck(lambda a, b: (a * b, b.exp()), [x, y])
    # and a wrong gradient of any one output still fails
    assert mg.gradcheck(lambda a, b: (a * b, a.tanh()), (x, y), raise_exception=False) is False
    with pytest.raises(gc.GradcheckError, match=r"input 0, element \(0,\) \(output 2\)"):
        mg.gradcheck(lambda a, b: (a * b, a.tanh()), (x, y))
