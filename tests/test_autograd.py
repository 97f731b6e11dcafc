"""The backward pass itself: chain rule, summed gradients, graph bookkeeping, errors.

Every expected gradient here is derived by hand in a comment next to the test.
"""

import numpy as np
import pytest

import minigan as mg


def leaf(values, dtype="float64"):
    return mg.tensor(np.asarray(values, dtype=dtype), requires_grad=True)


# --- simple expressions ------------------------------------------------------------
def test_product_and_sum_gradients_match_hand_derivation():
    # L = sum(a * b + a)  =>  dL/da = b + 1,  dL/db = a
    a = leaf([1.0, -2.0, 3.0])
    b = leaf([4.0, 5.0, -6.0])
    (a * b + a).sum().backward()
    np.testing.assert_array_equal(a.grad, [5.0, 6.0, -5.0])
    np.testing.assert_array_equal(b.grad, [1.0, -2.0, 3.0])


def test_quotient_gradients():
    # L = sum(a / b)  =>  dL/da = 1/b,  dL/db = -a/b²
    a = leaf([1.0, 6.0])
    b = leaf([2.0, -3.0])
    (a / b).sum().backward()
    np.testing.assert_allclose(a.grad, [0.5, -1 / 3])
    np.testing.assert_allclose(b.grad, [-1 / 4, -6 / 9])


def test_chain_rule_through_exp_and_tanh():
    # L = tanh(exp(x))  =>  dL/dx = (1 - tanh²(eˣ))·eˣ
    x = leaf([0.3])
    x.exp().tanh().sum().backward()
    e = np.exp(0.3)
    np.testing.assert_allclose(x.grad, [(1 - np.tanh(e) ** 2) * e], rtol=1e-14)


def test_matmul_gradient_is_transposed_products():
    # L = sum(A @ B)  =>  dL/dA = 1·Bᵀ (each row of A meets every column of B),
    #                     dL/dB = Aᵀ·1
    A = leaf([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    B = leaf([[1.0, -1.0, 0.0, 2.0], [0.5, 0.5, 1.0, -1.0]])
    (A @ B).sum().backward()
    ones = np.ones((3, 4))
    np.testing.assert_allclose(A.grad, ones @ B.data.T)
    np.testing.assert_allclose(B.grad, A.data.T @ ones)
    # Row sums of B: 2 and 1; column sums of A: 9 and 12.
    np.testing.assert_array_equal(A.grad, [[2.0, 1.0]] * 3)
    np.testing.assert_array_equal(B.grad, [[9.0] * 4, [12.0] * 4])


# --- a node used more than once ------------------------------------------------------
def test_node_used_twice_gets_summed_gradient():
    # y = x·x + x  =>  dy/dx = 2x + 1 (x is used three times, each use contributes)
    x = leaf([-1.5, 0.0, 2.0])
    (x * x + x).sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * np.array([-1.5, 0.0, 2.0]) + 1)


def test_tensor_fed_into_two_branches():
    # h = 3x feeds two branches: u = h², v = exp(h); L = sum(u + v)
    # dL/dh = 2h + eʰ, dL/dx = 3·(2h + eʰ)
    x = leaf([0.1, -0.2])
    h = x * 3
    u = h * h
    v = h.exp()
    (u + v).sum().backward()
    hv = 3 * np.array([0.1, -0.2])
    np.testing.assert_allclose(x.grad, 3 * (2 * hv + np.exp(hv)), rtol=1e-14)


def test_deep_chain_of_10000_ops_has_no_recursion_error():
    # y = x·c·c·…·c (10,000 times)  =>  dy/dx = c^10000
    c = 1.0001
    x = leaf([2.0])
    y = x
    for _ in range(10_000):
        y = y * c
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [c**10_000], rtol=1e-9)


def test_deep_chain_reusing_the_leaf():
    # y = x + x + … + x (x added 10,000 times onto itself)  =>  dy/dx = 10,001
    x = leaf([1.0, 2.0])
    y = x
    for _ in range(10_000):
        y = y + x
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [10_001.0, 10_001.0])


# --- graph lifetime ------------------------------------------------------------------
def test_second_backward_through_freed_graph_raises():
    x = leaf([1.0, 2.0])
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="second time") as info:
        loss.backward()
    assert "retain_graph=True" in str(info.value)


def test_retain_graph_allows_a_second_backward():
    # dL/dx = 2x per backward; two backward calls accumulate 4x.
    x = leaf([1.0, 2.0])
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_array_equal(x.grad, [4.0, 8.0])


def test_retain_graph_through_a_convolution_gives_the_same_gradients_twice():
    # conv2d frees its im2col columns during the first backward; the second
    # gathers them again, so it adds the same gradients once more.
    rng = np.random.default_rng(0)
    x, w = leaf(rng.standard_normal((2, 3, 6, 6))), leaf(rng.standard_normal((4, 3, 3, 3)))
    loss = (mg.nn.functional.conv2d(x, w, stride=2, padding=1) ** 2).sum()
    loss.backward(retain_graph=True)
    first = x.grad.copy(), w.grad.copy()
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * first[0], rtol=1e-12)
    np.testing.assert_allclose(w.grad, 2 * first[1], rtol=1e-12)


def test_backward_on_non_scalar_needs_a_gradient():
    x = leaf([1.0, 2.0])
    y = x * 2
    with pytest.raises(RuntimeError, match="needs a gradient argument"):
        y.backward()
    # With an explicit output gradient g: dL/dx = 2·g.
    y.backward(np.array([1.0, -3.0]))
    np.testing.assert_array_equal(x.grad, [2.0, -6.0])


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor([1.0, 2.0]).sum().backward()


# --- switching the graph off -----------------------------------------------------------
def test_no_grad_records_no_graph():
    x = leaf([1.0, 2.0])
    with mg.no_grad():
        y = (x * x).sum()
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled()
    assert y.grad_fn is None and not y.requires_grad
    with pytest.raises(RuntimeError):
        y.backward()


def test_no_grad_is_reusable_and_a_decorator_as_in_pytorch():
    mode = mg.no_grad()
    for _ in range(2):  # one object entered twice (a generator-based one could not be)
        with mode:
            assert not mg.is_grad_enabled()
        assert mg.is_grad_enabled()

    @mg.no_grad
    def bare():
        return mg.is_grad_enabled()

    @mg.no_grad()
    def called():
        with mg.enable_grad():
            inner = mg.is_grad_enabled()
        return mg.is_grad_enabled(), inner

    assert bare() is False and called() == (False, True) and bare.__name__ == "bare"
    assert mg.is_grad_enabled()


def test_only_a_leafs_requires_grad_can_be_turned_off():
    x = leaf([1.0, 2.0])
    y = x * 2
    with pytest.raises(RuntimeError, match=r"requires_grad_\(False\) on a tensor computed in a graph"):
        y.requires_grad_(False)  # the path through y would be skipped: x.grad [2, 4] instead of [4, 8]
    (y * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [4.0, 8.0])


def test_detach_stops_gradients():
    # L = sum(x · detach(x)): the detached factor is a constant c = x,
    # so dL/dx = c = x (not 2x).
    x = leaf([3.0, -1.0])
    d = x.detach()
    assert d.grad_fn is None and not d.requires_grad
    (x * d).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, -1.0])


def test_grad_accumulates_and_is_a_raw_numpy_array():
    x = leaf([1.0, 2.0])
    (x * 3).sum().backward()
    assert type(x.grad) is np.ndarray and x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])
    (x * x).sum().backward()  # adds 2x
    np.testing.assert_array_equal(x.grad, [5.0, 7.0])


def test_each_leaf_gets_a_grad_array_of_its_own():
    # Add hands one gradient array to both inputs, and the reshape's gradient is a
    # view of that same array: each leaf must still get its own, as must a leaf
    # whose gradient is the caller's array passed through.
    x, y = leaf([1.0, 2.0, 3.0, 4.0]), leaf([[5.0, 6.0], [7.0, 8.0]])
    (x.reshape(2, 2) + y).sum().backward()
    x.grad *= 0.5
    np.testing.assert_array_equal(x.grad, [0.5] * 4)
    np.testing.assert_array_equal(y.grad, [[1.0, 1.0], [1.0, 1.0]])
    z = leaf([1.0, 2.0])
    upstream = np.ones(2)
    (z + 0.0).backward(upstream)
    z.grad *= 3
    np.testing.assert_array_equal(upstream, [1.0, 1.0])


# --- in-place operators -----------------------------------------------------------------
def test_in_place_update_under_no_grad_changes_the_weight_itself():
    # The hand-written SGD step of PyTorch tutorials: p -= lr·dL/dp, with dL/dp = x = 2.
    net = mg.nn.Linear(1, 1, bias=False)
    weight, before = net.weight, net.weight.data.copy()
    net(mg.tensor(np.full((1, 1), 2.0, np.float32))).sum().backward()
    with mg.no_grad():
        for p in net.parameters():
            p -= 0.1 * p.grad
    assert net.weight is weight and isinstance(weight, mg.nn.Parameter)
    np.testing.assert_allclose(weight.data, before - 0.2, rtol=1e-6)
    counts = mg.tensor([1.0, 2.0])
    alias = counts
    counts *= 3  # a tensor outside any graph changes in place too
    np.testing.assert_array_equal(alias.numpy(), [3.0, 6.0])
    counts **= 2
    np.testing.assert_array_equal(alias.numpy(), [9.0, 36.0])


def test_in_place_operators_in_a_graph():
    x = leaf([1.0, 2.0])
    loss = (x * x).sum()
    loss += (3 * x).sum()  # a tensor in the graph: made anew, dL/dx = 2x + 3
    loss.backward()
    np.testing.assert_array_equal(x.grad, [5.0, 7.0])
    with pytest.raises(RuntimeError, match=r"in-place -= on a leaf tensor that requires grad \(shape \(2,\)\)"):
        x -= 1.0
    y = x * 1
    view = y[0:1]
    with pytest.raises(RuntimeError, match=r"in-place \*= on a view \(of GetItem\) in a graph"):
        view *= 3  # y would keep its old values, and x's gradient through it would be wrong
    with pytest.raises(TypeError, match=r"in-place \+=: the result \(float64, shape \(2, 2\)\) does not fit"):
        z = mg.tensor(np.zeros(2))
        z += mg.tensor(np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"the result \(float32, shape \(2,\)\) does not fit into the tensor \(int64"):
        n = mg.tensor([1, 2])
        n /= 2


def test_a_single_element_is_a_view_too():
    w = mg.tensor([1.0, 2.0, 3.0])
    v = w[0]  # NumPy would give a scalar, a copy
    v += 10.0
    np.testing.assert_array_equal(w.numpy(), [11.0, 2.0, 3.0])


def test_a_change_through_a_detached_tensor_is_seen_by_backward():
    # The GAN slip: D's input is G's output detached, then noise is added to it in
    # place; tanh's backward reads its output, which now holds other values.
    z = leaf([0.5, -1.0])
    fake = z.tanh()
    d_input = fake.detach()
    with mg.no_grad():
        d_input += 0.1
    with pytest.raises(RuntimeError, match=r"Tanh: its output \(shape \(2,\)\), or a view or detached copy of it, "
                                           "was changed in place after the forward pass, and its backward reads it"):
        fake.sum().backward()


def test_an_output_that_backward_does_not_read_may_change():
    # Mul's backward reads its inputs, not its output: as in PyTorch, changing the
    # output (or a detached copy of it, e.g. a loss scaled for a log) stops nothing.
    x = leaf([1.0, 2.0])
    y = x * 2.0
    log = y.detach()
    with mg.no_grad():
        y += 1.0
        log *= 100.0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_a_change_through_a_view_is_seen_by_backward():
    w = leaf([[1.0, 2.0], [3.0, 4.0]])
    for _ in range(2):  # an earlier change to w (an optimiser step) is no reason to refuse
        with mg.no_grad():
            w -= 0.5
    for view in (lambda w: w.reshape(4), lambda w: w.permute(1, 0), lambda w: w[0], lambda w: w[1, 0]):
        loss = (w * w).sum()  # Mul keeps w for its backward
        with mg.no_grad():
            v = view(w)
            v += 1.0  # changes w's values too
        with pytest.raises(RuntimeError, match="Mul: input 0 .* was changed in place"):
            loss.backward()
    y = w.reshape(4) * 1.0  # a view made from w after its changes: backward runs
    y.sum().backward()
    np.testing.assert_array_equal(w.grad, np.ones((2, 2)))


def test_mixing_float32_and_float64_raises_naming_both():
    a = mg.tensor(np.ones(2, np.float32))
    b = mg.tensor(np.ones(2, np.float64))
    with pytest.raises(TypeError) as info:
        a + b
    assert "float32" in str(info.value) and "float64" in str(info.value)


def test_python_scalars_take_the_tensors_dtype():
    a = mg.tensor(np.ones(2, np.float32))
    assert (a + 1.5).dtype == np.float32
    assert (2.0 * a).dtype == np.float32


# --- mg.grad ------------------------------------------------------------------------------
def test_grad_returns_gradients_without_touching_dot_grad():
    # d(sum x²)/dx = 2x
    x = leaf([1.0, -2.0])
    g = mg.grad((x * x).sum(), x)
    assert isinstance(g, tuple) and len(g) == 1  # as in PyTorch: g[0] is the gradient, not its first row
    np.testing.assert_array_equal(g[0].data, [2.0, -4.0])
    assert x.grad is None


def test_grad_with_create_graph_gives_second_derivative():
    # y = x³: dy/dx = 3x², d²y/dx² = 6x
    x = leaf([0.5, -2.0, 3.0])
    (dy,) = mg.grad((x * x * x).sum(), [x], create_graph=True)
    np.testing.assert_allclose(dy.data, 3 * x.data**2)
    assert dy.requires_grad
    (d2y,) = mg.grad(dy.sum(), x)
    np.testing.assert_allclose(d2y.data, 6 * x.data)


def test_grad_of_pow_twice():
    # y = x ** 3 through the Pow op: same derivatives as above
    x = leaf([0.5, 2.0])
    (dy,) = mg.grad((x**3).sum(), x, create_graph=True)
    (d2y,) = mg.grad(dy.sum(), x)
    np.testing.assert_allclose(d2y.data, 6 * x.data)


class Spy(mg.Function):
    """a·b, remembering which input gradients its last backward was asked for."""

    asked = None

    def forward(self, a, b):
        return a * b

    def backward(self, g):
        a, b = self.inputs
        Spy.asked = (self.needs_grad(0), self.needs_grad(1))
        return (g * b if self.needs_grad(0) else None), (g * a if self.needs_grad(1) else None)


def test_grad_runs_only_the_paths_that_reach_its_inputs():
    # ∂/∂x of sum(x·w) needs no gradient for w: it is not computed.
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (gx,) = mg.grad(Spy.apply(x, w).sum(), x)
    np.testing.assert_array_equal(gx.data, [3.0, 4.0])
    assert Spy.asked == (True, False)
    # The node that made h lies below what grad() was asked about: it neither runs
    # nor is freed, so a backward through it still works afterwards.
    h = x * x
    (gh,) = mg.grad((h * h).sum(), h)  # d(h²)/dh = 2h
    np.testing.assert_array_equal(gh.data, [2.0, 8.0])
    h.sum().backward()  # d(x²)/dx = 2x
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])


def test_grad_goes_on_past_an_input_to_another_input_below_it():
    # L = sum(h²) with h = 3x: dL/dh = 2h, dL/dx = 3·2h
    x = leaf([1.0, -1.0])
    h = x * 3.0
    gh, gx = mg.grad((h * h).sum(), [h, x])
    np.testing.assert_array_equal(gh.data, [6.0, -6.0])
    np.testing.assert_array_equal(gx.data, [18.0, -18.0])


def test_backward_after_grad_on_a_kept_graph_computes_every_gradient():
    # As a gradient penalty does: ∂y/∂x through a kept graph, then a backward
    # through the same nodes that wants w's gradient too.
    # L = sum(x·w) + sum(∂/∂x sum(x·w)) = sum(x·w) + sum(w)  =>  dL/dw = x + 1
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    y = Spy.apply(x, w).sum()
    (gx,) = mg.grad(y, x, create_graph=True)
    (y + gx.sum()).backward()
    np.testing.assert_array_equal(w.grad, [2.0, 3.0])
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


def test_grad_of_unused_input_raises_unless_allowed():
    x, unused = leaf([1.0]), leaf([2.0])
    with pytest.raises(RuntimeError, match="not used"):
        mg.grad((x * 2).sum(), [x, unused])
    gx, gu = mg.grad((x * 2).sum(), [x, unused], allow_unused=True)
    np.testing.assert_array_equal(gx.data, [2.0])
    assert gu is None


# --- detect_anomaly ------------------------------------------------------------------------
def test_detect_anomaly_names_the_op_whose_backward_went_nan():
    # L = sum(0 · log x) at x = 0. The multiplication passes a gradient of 0 to
    # log x, and Log's backward computes 0 / x = 0 / 0 = NaN: Log is the culprit.
    x = leaf([0.0, 1.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        loss = (x.log() * 0.0).sum()
        with mg.detect_anomaly():
            with pytest.raises(FloatingPointError, match=r"Log\.backward returned NaN"):
                loss.backward(retain_graph=True)
        # Off (the default): no error, the NaN simply lands in .grad.
        loss.backward()
    assert np.isnan(x.grad[0])


def test_detect_anomaly_reports_infinite_gradients():
    # d(log x)/dx = 1/x is infinite at x = 0.
    x = leaf([0.0])
    with np.errstate(divide="ignore"), mg.detect_anomaly():
        with pytest.raises(FloatingPointError, match="Log.backward returned infinite"):
            x.log().sum().backward()


# --- broadcasting is undone in the backward pass -------------------------------------------------
def sum_to_shape(g, shape):
    """Sum a broadcast gradient back down to ``shape``, by hand."""
    while g.ndim > len(shape):  # axes that broadcasting prepended
        g = g.sum(axis=0)
    for axis, n in enumerate(shape):  # axes of length 1 that were stretched
        if n == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


@pytest.mark.parametrize(
    "shape_a, shape_b",
    [
        ((3, 4), (4,)),  # row vector added to every row
        ((3, 1), (1, 4)),  # column against row: both stretched
        ((2, 3, 4), (3, 1)),  # a leading dim and a stretched dim
        ((2, 3), ()),  # a 0-d scalar tensor
        ((5,), (1,)),  # a one-element vector
        ((2, 1, 4), (3, 1)),  # leading dim for b, stretched dims on both sides
        ((4,), (2, 3, 4)),  # the first operand is the smaller one
    ],
)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_broadcast_gradients_have_input_shapes(shape_a, shape_b, op):
    rng = np.random.default_rng(0)
    a_np = rng.uniform(0.5, 2.0, shape_a)
    b_np = rng.uniform(0.5, 2.0, shape_b)
    a, b = leaf(a_np), leaf(b_np)
    out = {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b}[op]
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)
    assert a.grad.shape == shape_a and b.grad.shape == shape_b
    # Elementwise partial derivatives, broadcast to the output, then summed back.
    A, B = np.broadcast_arrays(a_np, b_np)
    da, db = {
        "add": (1.0, 1.0),
        "sub": (1.0, -1.0),
        "mul": (B, A),
        "div": (1 / B, -A / B**2),
    }[op]
    np.testing.assert_allclose(a.grad, sum_to_shape(upstream * da, shape_a), rtol=1e-12)
    np.testing.assert_allclose(b.grad, sum_to_shape(upstream * db, shape_b), rtol=1e-12)


def test_scalar_tensor_leaf_gets_scalar_gradient():
    # L = sum(s · x) for a 0-d s  =>  dL/ds = sum(x)
    s = leaf(2.0)
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    (s * x).sum().backward()
    assert s.grad.shape == ()
    assert s.grad == 10.0



def test_item_assignment_changes_the_tensor_in_place():
    x = mg.tensor([1.0, 2.0, 3.0])
    x[0] += 10  # reads x[0], adds in place, writes it back: it raised after changing x
    x[1:] = mg.tensor([5.0, 6.0])
    np.testing.assert_array_equal(x.numpy(), [11.0, 5.0, 6.0])
    x[x > 10] = 0  # a bool mask of x's shape, as in PyTorch
    np.testing.assert_array_equal(x.numpy(), [0.0, 5.0, 6.0])
    w = leaf([1.0, 2.0])
    y = (w * w).sum()
    with mg.no_grad():  # editing a weight, as in PyTorch
        w[0] = 5.0
    np.testing.assert_array_equal(w.numpy(), [5.0, 2.0])
    with pytest.raises(RuntimeError, match="was changed in place after the forward pass"):
        y.backward()  # the graph read w before the write


def test_comparing_one_value_tensors_gives_a_bool_tensor():
    x = mg.tensor([1.0, 2.0])
    c = x[0] < x[1]  # NumPy answered with a bool scalar, and printing it failed
    assert repr(c) == "tensor(True, dtype=bool)"
    assert (c + 1).item() == 2


def test_a_0d_tensor_formats_as_its_number():
    loss = mg.tensor(0.123456)
    assert f"{loss:.3f}" == "0.123" and f"{loss}" == format(np.float32(0.123456).item())
    with pytest.raises(TypeError):
        f"{mg.tensor([1.0, 2.0]):.3f}"


def test_a_list_of_tensors_and_python_floats_takes_the_tensors_dtype():
    assert mg.tensor([mg.tensor(1.0), 2.5]).dtype == np.float32  # the float made it float64
    assert mg.tensor([mg.tensor(1.0), 2]).dtype == np.float32  # and so did an int
    assert mg.tensor([mg.tensor(1.0, dtype="float64"), 2.5]).dtype == np.float64
    assert mg.tensor([mg.tensor(1), 2]).dtype == np.int64
