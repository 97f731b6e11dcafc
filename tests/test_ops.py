"""Every op's forward value against NumPy, its error messages, and its gradient
against finite differences (float64, central differences)."""

import numpy as np
import pytest

import minigan as mg
from minigan import nn
from minigan.nn import functional as F

rng = np.random.default_rng(1234)


def t(values, requires_grad=False):
    return mg.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


def randn(*shape):
    return rng.standard_normal(shape)


def close(tensor, expected, rtol=1e-12, atol=0.0):
    np.testing.assert_allclose(tensor.numpy(), expected, rtol=rtol, atol=atol)


# --- arithmetic --------------------------------------------------------------------
@pytest.mark.parametrize("shape_a, shape_b", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (2, 2))])
def test_arithmetic_matches_numpy(shape_a, shape_b):
    a, b = randn(*shape_a), np.abs(randn(*shape_b)) + 0.5
    A, B = t(a), t(b)
    close(A + B, a + b)
    close(A - B, a - b)
    close(A * B, a * b)
    close(A / B, a / b)
    close(-A, -a)
    close(B**A, b**a)


def test_python_scalars_on_either_side():
    a = np.array([0.5, 2.0, -4.0])
    A = t(a)
    close(2 - A, 2 - a)
    close(A - 2, a - 2)
    close(1 / A, 1 / a)
    close(A / 4, a / 4)
    close(A**2, a**2)
    close(3 * A, 3 * a)
    close(A + 1, a + 1)
    close(1 + A, 1 + a)
    close(2**A, 2**a)
    close(np.array([1.0, 2.0, 3.0]) * A, np.array([1.0, 2.0, 3.0]) * a)


def test_reversed_scalar_ops_have_the_right_gradient():
    # d(2 - x)/dx = -1;  d(1/x)/dx = -1/x²;  d(x²)/dx = 2x
    x = t([0.5, -2.0], requires_grad=True)
    ((2 - x) + (1 / x) + x**2).sum().backward()
    np.testing.assert_allclose(x.grad, -1 - 1 / x.data**2 + 2 * x.data)


def test_an_integer_tensor_meeting_a_float_becomes_float32():
    # As in PyTorch: the float is not cut down to an integer.
    n = mg.tensor([1, 2])
    assert (n + 0.5).dtype == np.float32 and (0.5 - n).dtype == np.float32
    np.testing.assert_array_equal((n + 0.5).numpy(), [1.5, 2.5])
    np.testing.assert_array_equal((0.5 - n).numpy(), [-0.5, -1.5])
    np.testing.assert_array_equal((n * 2).numpy(), [2, 4])  # an int keeps it integer
    assert (n * 2).dtype == np.int64
    # Dividing integers gives float32 too (NumPy's float64 would not mix with float32 weights).
    for quotient in (n / 2, 3 / n, n / n):
        assert quotient.dtype == np.float32
    np.testing.assert_array_equal((n / 4).numpy(), [0.25, 0.5])
    # A float list or array is a float too: it is not cut down to the integers' dtype.
    for product in (n * [0.5, 0.5], n * np.array([0.5, 0.5]), np.array([0.5, 0.5]) * n):
        assert product.dtype == np.float32
        np.testing.assert_array_equal(product.numpy(), [0.5, 1.0])
    # A bool tensor meeting an integer counts, as int64 (True + 1 is 2, not True).
    flags = mg.tensor([True, False])
    for total in (flags + 1, 2 * flags, flags + [1, 1]):
        assert total.dtype == np.int64
    np.testing.assert_array_equal((flags + 1).numpy(), [2, 1])
    np.testing.assert_array_equal((flags * 2).numpy(), [2, 0])
    assert (flags + True).dtype == np.bool_ and (flags * 0.5).dtype == np.float32
    # Floats an integer cannot hold: promoted before the cast, which raised (NaN, inf,
    # 1e20) or warned (an array holding inf).
    with np.errstate(all="raise"):
        np.testing.assert_array_equal((n + float("nan")).numpy(), [np.nan, np.nan])
        np.testing.assert_array_equal((n * float("inf")).numpy(), [np.inf, np.inf])
        np.testing.assert_array_equal((n * [1e20, 0.5]).numpy(), np.float32([1e20, 1.0]))
        np.testing.assert_array_equal((n + np.array([np.inf, 1.0])).numpy(), [np.inf, 3.0])


def test_smooth_functions_of_integers_are_float32():
    # As in PyTorch; sigmoid's stable form stayed integer (all 0s), and NumPy's exp,
    # log and tanh of integers are float64.
    n = mg.tensor([0, 1, 2])
    for fn, expected in [(lambda a: a.sigmoid(), 1 / (1 + np.exp(-np.arange(3.0)))),
                         (lambda a: a.exp(), np.exp(np.arange(3.0))),
                         (lambda a: (a + 1).log(), np.log(np.arange(1.0, 4.0))),
                         (lambda a: a.tanh(), np.tanh(np.arange(3.0))),
                         (lambda a: a.clamp(0.5, 1.5), [0.5, 1.0, 1.5])]:
        y = fn(n)
        assert y.dtype == np.float32
        np.testing.assert_allclose(y.numpy(), expected, rtol=1e-6)
    assert n.clamp(1, 2).dtype == np.int64  # integer bounds keep it integer


def test_pow_exponent_gradient_is_zero_where_the_base_is_zero():
    # d(a^b)/db = a^b·ln a: 0 where a = 0 (a^b is 0 for all b > 0), as in PyTorch,
    # and 4·ln 2 where a = 2, b = 2.
    b = t([2.0, 2.0, 0.0], requires_grad=True)
    (t([0.0, 2.0, 0.0]) ** b).sum().backward()
    np.testing.assert_allclose(b.grad, [0.0, 4 * np.log(2), 0.0], rtol=1e-15)


def test_pow_base_gradient_is_zero_where_the_exponent_is_zero():
    # a^0 = 1 for every a, so d(a^0)/da = 0, at a = 0 too (as in PyTorch), where
    # b·a^(b-1) would be 0·inf = NaN; for a constant exponent and a tensor one alike.
    a = t([0.0, 2.0, -3.0], requires_grad=True)
    (a**0).sum().backward()
    np.testing.assert_array_equal(a.grad, [0.0, 0.0, 0.0])
    a = t([0.0, 0.0, 2.0], requires_grad=True)
    (a ** t([0.0, 2.0, 0.0])).sum().backward()
    np.testing.assert_array_equal(a.grad, [0.0, 0.0, 0.0])


# --- matmul --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape_a, shape_b",
    [((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((1, 3, 4), (2, 4, 2))],
)
def test_matmul_matches_numpy(shape_a, shape_b):
    a, b = randn(*shape_a), randn(*shape_b)
    close(t(a) @ t(b), a @ b)
    close(t(a).matmul(t(b)), a @ b)


def test_matmul_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(5, 2\)"):
        t(randn(3, 4)) @ t(randn(5, 2))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        t(randn(3)) @ t(randn(3, 2))


def test_linear_matches_numpy():
    x, w, b = randn(4, 3), randn(2, 3), randn(2)
    close(F.linear(t(x), t(w), t(b)), x @ w.T + b)
    close(F.linear(t(x), t(w)), x @ w.T)


# --- elementwise functions --------------------------------------------------------------
def test_smooth_functions_match_numpy():
    x = randn(3, 4)
    X = t(x)
    close(X.exp(), np.exp(x))
    close(t(np.abs(x)).log(), np.log(np.abs(x)))
    close(X.tanh(), np.tanh(x))
    close(X.sigmoid(), 1 / (1 + np.exp(-x)), rtol=1e-14)
    close(t(np.abs(x)).sqrt(), np.sqrt(np.abs(x)))
    close(X.abs(), np.abs(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_at_huge_inputs(dtype):
    x = mg.tensor(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=dtype))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = x.sigmoid().numpy()
    assert y.dtype == dtype
    assert y[0] == 0.0 and y[-1] == 1.0  # the exact limits
    assert y[2] == 0.5
    # σ(-50) = e⁻⁵⁰/(1 + e⁻⁵⁰) ≈ 2e-22 is tiny but not rounded to 0; σ(50) rounds to 1.
    np.testing.assert_allclose(y[1], np.exp(-50) / (1 + np.exp(-50)), rtol=1e-6)
    assert y[3] == 1.0


def test_piecewise_linear_functions_match_numpy():
    x = np.array([[-2.0, -0.5, 0.25], [0.75, 3.0, -0.01]])
    X = t(x)
    close(F.relu(X), np.maximum(x, 0))
    close(X.relu(), np.maximum(x, 0))
    close(F.leaky_relu(X, 0.2), np.where(x > 0, x, 0.2 * x))
    close(F.leaky_relu(X), np.where(x > 0, x, 0.01 * x))  # PyTorch's default slope
    close(X.clamp(-0.5, 0.5), np.clip(x, -0.5, 0.5))
    close(X.clamp(min=0.0), np.clip(x, 0.0, None))
    close(X.clamp(max=0.0), np.clip(x, None, 0.0))


def test_piecewise_linear_gradients_are_masks():
    # relu' = [x > 0]; leaky' = 1 or slope; clamp' = 1 inside the interval, else 0
    x = np.array([-2.0, -0.5, 0.25, 3.0])
    for fn, slope in [(F.relu, np.where(x > 0, 1.0, 0.0)),
                      (lambda a: F.leaky_relu(a, 0.1), np.where(x > 0, 1.0, 0.1)),
                      (lambda a: a.clamp(-1.0, 1.0), np.array([0.0, 1.0, 1.0, 0.0]))]:
        X = t(x, requires_grad=True)
        fn(X).sum().backward()
        np.testing.assert_array_equal(X.grad, slope)


def test_clamp_passes_the_gradient_at_its_bounds_as_pytorch_does():
    # PyTorch's clamp backward lets the gradient through where min <= x <= max.
    x = t([-1.0, -0.5, 1.0, 2.0], requires_grad=True)
    x.clamp(-1.0, 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0, 1.0, 0.0])
    # With min > max every value is max (clamp is min(max(x, min), max)), and the
    # gradient is 0 everywhere, even where x equals max.
    x = t([-1.0, 0.0, 1.0, 2.0], requires_grad=True)
    y = x.clamp(1.0, 0.0)
    y.sum().backward()
    close(y, [0.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.0, 0.0])


def test_numpy_scalars_as_arguments_act_as_numbers_do_in_pytorch():
    # In NumPy's promotion a np.float64 counts as a float64 array: a float32 tensor
    # clamped to one became float64 (and its gradient too), and dropout or an eval-mode
    # batch norm given one failed in the next op, on mixed dtypes.
    x = mg.tensor(np.array([-1.0, 0.5, 2.0], np.float32), requires_grad=True)
    y = x.clamp(min=np.float64(0), max=np.float32(1))
    y.sum().backward()
    assert y.dtype == x.grad.dtype == np.float32
    np.testing.assert_array_equal(y.numpy(), [0.0, 0.5, 1.0])
    assert mg.tensor(np.array([1, 5], np.int32)).clamp(max=np.int64(3)).dtype == np.int32
    assert F.dropout(mg.ones(4), np.float64(0.5)).dtype == np.float32
    running = (mg.zeros(3), mg.ones(3))
    assert F.batch_norm(mg.randn(4, 3), *running, eps=np.float64(1e-5)).dtype == np.float32
    bn = nn.BatchNorm1d(3, eps=np.float64(1e-5), momentum=np.float64(0.1)).eval()
    assert bn(mg.randn(4, 3)).dtype == np.float32
    p = nn.Parameter(np.ones(3, np.float32))
    opt = mg.optim.SGD([p], lr=np.float64(0.1), momentum=np.float64(0.5))
    p.grad = np.full(3, 0.3, np.float32)
    opt.step()
    np.testing.assert_array_equal(p.data, np.float32(1) - np.float32(0.1) * np.float32(0.3))  # in float32, as PyTorch

def test_batch_norm_statistics_follow_pytorchs_formulas():
    # Training: normalise with the batch's mean and biased variance, and update
    # running = (1 - momentum)·running + momentum·batch with the unbiased variance.
    # Eval: normalise with the running statistics. eps and momentum not the defaults.
    gen = np.random.default_rng(3)
    x, gamma, beta = gen.standard_normal((5, 2, 3, 2)), gen.standard_normal(2), gen.standard_normal(2)
    rm, rv = np.array([0.2, -0.1]), np.array([1.5, 0.7])
    running_mean, running_var = t(rm), t(rv)
    eps, momentum, m = 0.1, 0.3, 5 * 3 * 2
    c = (1, 2, 1, 1)  # per-channel values broadcast over (N, C, H, W)
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    y = F.batch_norm(t(x), running_mean, running_var, t(gamma), t(beta), training=True, momentum=momentum, eps=eps)
    close(y, (x - mean.reshape(c)) / np.sqrt(var.reshape(c) + eps) * gamma.reshape(c) + beta.reshape(c), atol=1e-12)
    close(running_mean, (1 - momentum) * rm + momentum * mean)
    close(running_var, (1 - momentum) * rv + momentum * var * m / (m - 1))
    rm, rv = running_mean.numpy(), running_var.numpy()
    y = F.batch_norm(t(x), running_mean, running_var, t(gamma), t(beta), training=False, eps=eps)
    close(y, (x - rm.reshape(c)) / np.sqrt(rv.reshape(c) + eps) * gamma.reshape(c) + beta.reshape(c), atol=1e-12)


# --- reductions ------------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [None, 0, 1, -1, (0, 2)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_sum_and_mean_match_numpy(dim, keepdim):
    x = randn(2, 3, 4)
    close(t(x).sum(dim, keepdim=keepdim), x.sum(axis=dim, keepdims=keepdim))
    close(t(x).mean(dim, keepdim=keepdim), x.mean(axis=dim, keepdims=keepdim), rtol=1e-14)


def test_mean_divides_by_the_count_as_pytorch_does():
    # Σx · (1/n) rounds differently from Σx / n: the mean of 41 float32 ones was 0.99999994.
    for n in range(1, 200):
        assert mg.ones(n).mean().item() == 1.0, n
    values = np.array([0.1, 0.2, 0.3], np.float32)
    assert mg.tensor(values).mean().item() == values.sum() / np.float32(3)


def test_no_dims_means_every_dim_as_in_pytorch():
    # x.sum(()) is the sum of every value in PyTorch (NumPy's axis=() sums nothing).
    x = randn(2, 3)
    for dim in ((), []):
        X = t(x, requires_grad=True)
        close(X.sum(dim), x.sum())
        close(X.mean(dim, keepdim=True), x.mean(keepdims=True), rtol=1e-14)
        X.sum(dim).backward()
        np.testing.assert_array_equal(X.grad, np.ones((2, 3)))


def test_numpy_integers_work_as_dims_and_indices():
    x = randn(2, 3)
    close(t(x).sum(np.int64(1)), x.sum(axis=1))
    close(t(x).mean(np.int64(0)), x.mean(axis=0))
    close(t(x)[np.int64(1)], x[1])
    close(t(x)[:, np.int32(2)], x[:, 2])


@pytest.mark.parametrize("kernel", [2, (2, 3), (3, 1)])
def test_avg_pool2d_matches_numpy(kernel):
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = np.random.default_rng(5).standard_normal((2, 3, 7, 8)).astype(np.float32)
    oh, ow = 7 // kh, 8 // kw  # the rows and columns that fill no window are dropped
    want = x[:, :, : oh * kh, : ow * kw].reshape(2, 3, oh, kh, ow, kw).mean(axis=(3, 5))
    np.testing.assert_allclose(F.avg_pool2d(mg.tensor(x), kernel).numpy(), want, rtol=1e-6)


def test_sum_rejects_out_of_range_axis():
    with pytest.raises(IndexError, match="out of range"):
        t(randn(2, 3)).sum(2)


# --- shapes ------------------------------------------------------------------------------
def test_reshape_including_minus_one():
    x = randn(2, 3, 4)
    close(t(x).reshape(6, 4), x.reshape(6, 4))
    close(t(x).reshape(-1, 2), x.reshape(-1, 2))
    close(t(x).reshape((4, -1)), x.reshape(4, -1))
    close(t(x).view(24), x.reshape(24))


@pytest.mark.parametrize("shape", [(5, 5), (-1, 5), (-1, -1), (0, -1)])
def test_bad_reshape_raises(shape):
    with pytest.raises(ValueError, match=r"cannot reshape a tensor of shape \(2, 3, 4\) \(24 elements\)"):
        t(randn(2, 3, 4)).reshape(*shape)


def test_expand_takes_sizes_or_a_tuple():
    x = randn(3, 1)
    close(t(x).expand(2, 3, 4), np.broadcast_to(x, (2, 3, 4)))
    close(t(x).expand((3, 4)), np.broadcast_to(x, (3, 4)))
    close(t(x).expand(2, -1, 4), np.broadcast_to(x, (2, 3, 4)))  # -1: the size x has
    with pytest.raises(ValueError, match=r"cannot broadcast shape \(3, 1\) to \(-1, 3, 4\)"):
        t(x).expand(-1, 3, 4)  # a new dimension has no size to keep


def test_permute_transpose_and_T():
    x = randn(2, 3, 4)
    close(t(x).permute(2, 0, 1), x.transpose(2, 0, 1))
    close(t(x).permute((1, 2, 0)), x.transpose(1, 2, 0))
    close(t(x).transpose(0, 2), x.swapaxes(0, 2))
    close(t(x).transpose(-1, -2), x.swapaxes(-1, -2))
    close(t(x).T, x.T)
    with pytest.raises(ValueError, match="not a permutation"):
        t(x).permute(0, 0, 1)


@pytest.mark.parametrize(
    "index",
    [1, -1, slice(1, 3), (slice(None), 2), (Ellipsis, 0), (slice(None, None, 2), slice(1, None)), (None, 0)],
    ids=["int", "negative int", "slice", "column", "ellipsis", "steps", "new axis"],
)
def test_slicing_matches_numpy(index):
    x = randn(4, 5)
    close(t(x)[index], x[index])


def test_slice_gradient_is_zero_outside_the_slice():
    # L = sum(x[1:3, ::2]): dL/dx is 1 on the picked elements, 0 elsewhere.
    x = t(randn(4, 5), requires_grad=True)
    x[1:3, ::2].sum().backward()
    expected = np.zeros((4, 5))
    expected[1:3, ::2] = 1.0
    np.testing.assert_array_equal(x.grad, expected)


def test_fancy_indexing_is_refused():
    with pytest.raises(TypeError, match="supports ints, slices"):
        t(randn(4))[np.array([0, 0])]


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_matches_numpy(dim):
    a, b = randn(2, 3), randn(2, 3)
    close(mg.cat([t(a), t(b)], dim=dim), np.concatenate([a, b], axis=dim))


def test_cat_of_different_sizes_and_its_error():
    a, b = randn(2, 3), randn(4, 3)
    close(mg.cat([t(a), t(b)]), np.concatenate([a, b]))
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4, 3\) differ outside dimension 1"):
        mg.cat([t(a), t(b)], dim=1)


def test_flatten():
    x = randn(2, 3, 4, 5)
    close(t(x).flatten(), x.reshape(120))  # start_dim=0 by default, as torch.flatten (it was 1)
    close(t(x).flatten(1), x.reshape(2, 60))
    close(mg.nn.Flatten()(t(x)), x.reshape(2, 60))  # nn.Flatten keeps the batch
    assert t(3.0).flatten().shape == (1,)
    close(t(x).flatten(1, 2), x.reshape(2, 12, 5))


# --- losses ------------------------------------------------------------------------------
def bce_by_formula(x, target):
    """-[t·log σ(x) + (1 - t)·log(1 - σ(x))], straight from the definition."""
    s = 1 / (1 + np.exp(-x))
    return -(target * np.log(s) + (1 - target) * np.log(1 - s))


@pytest.mark.parametrize("target", [0.0, 0.9, 1.0])
def test_bce_with_logits_matches_the_formula(target):
    x = np.linspace(-6, 6, 9).reshape(9, 1)
    tg = np.full_like(x, target)
    close(F.binary_cross_entropy_with_logits(t(x), t(tg), reduction="none"), bce_by_formula(x, tg), rtol=1e-10)
    close(F.binary_cross_entropy_with_logits(t(x), t(tg)), bce_by_formula(x, tg).mean(), rtol=1e-10)
    close(F.binary_cross_entropy_with_logits(t(x), t(tg), reduction="sum"), bce_by_formula(x, tg).sum(), rtol=1e-10)


def test_bce_with_logits_stays_finite_at_huge_logits():
    # At x = +1000: log σ(x) = 0 and log(1 - σ(x)) = -1000, so with target 0.9 the
    # loss is 0.1·1000 = 100. At x = -1000 it is 0.9·1000 = 900.
    # The gradient σ(x) - t is 1 - 0.9 = 0.1 and 0 - 0.9 = -0.9.
    x = t([1000.0, -1000.0], requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = F.binary_cross_entropy_with_logits(x, t([0.9, 0.9]), reduction="sum")
        loss.backward()
    close(loss, 1000.0)
    np.testing.assert_allclose(x.grad, [0.1, -0.9], rtol=1e-12)


def test_binary_cross_entropy_matches_formula_and_clamps_at_minus_100():
    p = np.array([0.1, 0.5, 0.8])
    tg = np.array([0.0, 0.9, 1.0])
    expected = -(tg * np.log(p) + (1 - tg) * np.log(1 - p))
    close(F.binary_cross_entropy(t(p), t(tg), reduction="none"), expected)
    # p = 0 (or 1) makes a log infinite; each log is clamped at -100.
    with np.errstate(divide="ignore"):
        at_edges = F.binary_cross_entropy(t([0.0, 1.0, 0.0]), t([1.0, 0.0, 0.5]), reduction="none")
    close(at_edges, [100.0, 100.0, 50.0])


def test_binary_cross_entropy_gradient_near_0_and_1_follows_pytorch():
    # dℓ/dp = (p - t) / max(p·(1 - p), 1e-12): exact down to p·(1 - p) = 1e-12, and
    # finite below it (PyTorch's clamp, at the same place).
    p = t([1e-6, 1 - 1e-6, 1e-14, 0.5], requires_grad=True)
    F.binary_cross_entropy(p, t([0.0, 1.0, 0.0, 1.0]), reduction="sum").backward()
    np.testing.assert_allclose(p.grad, [1 / (1 - 1e-6), -1 / (1 - 1e-6), 1e-14 / 1e-12, -2.0], rtol=1e-6)
    # dℓ/dt = log(1 - p) - log p, each log clamped as in the loss: ±100 at p = 0 or 1
    # (PyTorch gives ±inf there; README's "Where the two differ").
    target = t([0.3, 0.3, 0.3], requires_grad=True)
    F.binary_cross_entropy(t([0.0, 1.0, 0.5]), target, reduction="sum").backward()
    np.testing.assert_allclose(target.grad, [100.0, -100.0, 0.0])


def test_dropout_zeroes_a_fraction_p_and_scales_the_rest_by_1_over_1_minus_p():
    x = t(np.random.default_rng(6).uniform(1, 2, size=(50, 80)))  # no zeros of its own
    y = F.dropout(x, 0.2, training=True, generator=np.random.default_rng(7)).numpy()
    dropped = y == 0
    assert abs(dropped.mean() - 0.2) < 0.03  # 4000 draws: the standard deviation is 0.006
    np.testing.assert_allclose(y[~dropped], x.numpy()[~dropped] / 0.8, rtol=1e-12)


def test_dropout_of_every_element_gives_zeros_as_in_pytorch():
    # 1/(1 - p) is inf at p = 1, and 0·inf would be NaN: PyTorch gives 0, and so a zero gradient
    x = t(np.random.default_rng(6).uniform(1, 2, size=(3, 4)), requires_grad=True)
    y = nn.Dropout(p=1.0)(x)
    y.sum().backward()
    assert not y.numpy().any() and not x.grad.any()


def test_mse_loss():
    a, b = randn(3, 4), randn(3, 4)
    close(F.mse_loss(t(a), t(b)), ((a - b) ** 2).mean(), rtol=1e-14)
    close(F.mse_loss(t(a), t(b), reduction="sum"), ((a - b) ** 2).sum(), rtol=1e-14)
    close(F.mse_loss(t(a), t(b), reduction="none"), (a - b) ** 2)


@pytest.mark.parametrize("loss", [F.binary_cross_entropy_with_logits, F.binary_cross_entropy, F.mse_loss])
def test_losses_reject_mismatched_shapes_and_bad_reduction(loss):
    with pytest.raises(ValueError, match=r"input of shape \(4, 1\) and target of shape \(4,\) differ"):
        loss(t(np.full((4, 1), 0.5)), t(np.full(4, 0.5)))
    with pytest.raises(ValueError, match="reduction must be"):
        loss(t(np.full(4, 0.5)), t(np.full(4, 0.5)), reduction="avg")


def test_cross_entropy_takes_labels_as_an_array_or_a_tensor():
    # ℓ_n = log Σ_k e^{x_nk} - x_{n,y_n}
    x = randn(3, 4)
    labels = np.array([0, 3, 1])
    expected = (np.log(np.exp(x).sum(1)) - x[np.arange(3), labels]).mean()
    close(F.cross_entropy(t(x), labels), expected, rtol=1e-14)
    close(F.cross_entropy(t(x), mg.tensor(labels)), expected, rtol=1e-14)


def test_cross_entropy_with_a_class_masked_out_by_minus_infinity():
    # A logit of -inf gives that class probability 0: the loss of another label is
    # finite, and its gradient there is softmax - one_hot = 0, as in PyTorch (not NaN).
    x = np.array([[0.0, -np.inf, 1.0], [1.0, 2.0, 3.0]])
    X = t(x, requires_grad=True)
    loss = F.cross_entropy(X, [0, 2])
    loss.backward()
    row0 = np.array([1.0, 0.0, np.e]) / (1 + np.e)
    row1 = np.exp(x[1] - x[1].max()) / np.exp(x[1] - x[1].max()).sum()
    close(loss, (-np.log(row0[0]) - np.log(row1[2])) / 2, rtol=1e-14)
    np.testing.assert_allclose(X.grad, (np.stack([row0, row1]) - np.eye(3)[[0, 2]]) / 2, rtol=1e-14, atol=1e-17)


# --- convolutions ------------------------------------------------------------------------
def ref_conv2d(x, w, b, stride, padding):
    """PyTorch's definition, window by window: out[n, o, i, j] = b[o] + Σ_{c, u, v}
    w[o, c, u, v] · x_padded[n, c, i·sh + u, j·sw + v] (a cross-correlation)."""
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    kh, kw = w.shape[2:]
    oh, ow = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    out = np.empty((x.shape[0], w.shape[0], oh, ow))
    for i in range(oh):
        for j in range(ow):
            window = xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
            out[:, :, i, j] = np.einsum("ncuv,ocuv->no", window, w) + b
    return out


def ref_conv_transpose2d(x, w, b, stride, padding, output_padding):
    """Each input pixel (i, j) adds x[n, c, i, j]·w[c] (a C_out×kh×kw patch) at
    (i·sh, j·sw) of the padded output; the padding is then cut off."""
    (sh, sw), (ph, pw), (oph, opw) = stride, padding, output_padding
    n, _, h, wd = x.shape
    kh, kw = w.shape[2:]
    out = np.zeros((n, w.shape[1], (h - 1) * sh + kh + oph, (wd - 1) * sw + kw + opw))
    for i in range(h):
        for j in range(wd):
            out[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] += np.einsum("nc,cokl->nokl", x[:, :, i, j], w)
    return out[:, :, ph : out.shape[2] - ph, pw : out.shape[3] - pw] + b.reshape(1, -1, 1, 1)


def test_conv2d_matches_the_definition():
    x, w, b = randn(2, 3, 7, 6), randn(4, 3, 3, 2), randn(4)
    for stride, padding in [((1, 1), (0, 0)), ((2, 3), (1, 2)), ((3, 1), (3, 0))]:
        close(F.conv2d(t(x), t(w), t(b), stride, padding), ref_conv2d(x, w, b, stride, padding), atol=1e-12)


def test_conv_transpose2d_matches_the_definition():
    x, w, b = randn(2, 3, 4, 3), randn(3, 2, 3, 2), randn(2)
    for stride, padding, output_padding in [((1, 1), (0, 0), (0, 0)), ((2, 3), (1, 0), (1, 2)), ((3, 1), (2, 1), (0, 0))]:
        y = F.conv_transpose2d(t(x), t(w), t(b), stride, padding, output_padding)
        close(y, ref_conv_transpose2d(x, w, b, stride, padding, output_padding), atol=1e-12)


# --- making tensors ------------------------------------------------------------------------
def test_tensor_copies_the_array_it_is_given():
    # As torch.tensor does: training changes the tensor's data in place, not the caller's array.
    values = np.array([1.0, 2.0])
    x = mg.tensor(values)
    x.data += 1
    np.testing.assert_array_equal(values, [1.0, 2.0])
    assert mg.tensor(x).data is not x.data


def test_tensor_of_a_list_of_tensors():
    # e.g. the losses of several steps: their values, not an array of objects.
    losses = [mg.tensor(1.5), mg.tensor(2.5, dtype="float64") * 2]
    made = mg.tensor(losses)
    assert made.dtype == np.float64 and made.shape == (2,)
    np.testing.assert_array_equal(made.numpy(), [1.5, 5.0])
    rows = mg.tensor([[mg.tensor([1.0, 2.0])], [mg.tensor([3.0, 4.0])]])
    assert rows.dtype == np.float32 and rows.shape == (2, 1, 2)


def test_shapes_are_taken_as_sizes_or_a_tuple():
    for make in (mg.zeros, mg.ones, mg.randn, mg.rand):
        assert make(2, 3).shape == make((2, 3)).shape == make([2, 3]).shape == (2, 3)


def test_manual_seed_reseeds_the_generator_others_hold():
    held = mg.random.default_generator()  # as a loss or a dropout layer may keep it
    mg.manual_seed(5)
    first = held.random(3)
    mg.manual_seed(5)
    np.testing.assert_array_equal(held.random(3), first)
    assert mg.random.default_generator() is held


# --- gradients against finite differences ----------------------------------------------------
def positive(x):
    return x * x + 0.5  # keeps log, sqrt, pow and div away from 0


GRAD_CASES = {
    "add (3,4)+(4,)": (lambda a, b: a + b, [(3, 4), (4,)]),
    "add (2,3)+()": (lambda a, b: a + b, [(2, 3), ()]),
    "sub (3,1)-(1,4)": (lambda a, b: a - b, [(3, 1), (1, 4)]),
    "sub (4,)-(2,3,4)": (lambda a, b: a - b, [(4,), (2, 3, 4)]),
    "mul (2,3,4)*(3,1)": (lambda a, b: a * b, [(2, 3, 4), (3, 1)]),
    "mul (2,1,4)*(3,1)": (lambda a, b: a * b, [(2, 1, 4), (3, 1)]),
    "div (3,4)/(4,)": (lambda a, b: a / positive(b), [(3, 4), (4,)]),
    "div ()/(2,3)": (lambda a, b: a / positive(b), [(), (2, 3)]),
    "neg": (lambda a: -a, [(3, 4)]),
    "pow scalar exponent": (lambda a: positive(a) ** 2.5, [(3, 4)]),
    "pow (3,4)**(4,)": (lambda a, b: positive(a) ** b, [(3, 4), (4,)]),
    "rsub and rtruediv": (lambda a: (2 - a) * (1 / positive(a)), [(3,)]),
    "matmul": (lambda a, b: a @ b, [(3, 4), (4, 2)]),
    "matmul batched": (lambda a, b: a @ b, [(2, 3, 4), (2, 4, 2)]),
    "matmul batch broadcast": (lambda a, b: a @ b, [(3, 4), (2, 4, 2)]),
    "linear": (lambda x, w, b: F.linear(x, w, b), [(4, 3), (2, 3), (2,)]),
    "exp": (lambda a: a.exp(), [(3, 4)]),
    "log": (lambda a: positive(a).log(), [(3, 4)]),
    "sqrt": (lambda a: positive(a).sqrt(), [(3, 4)]),
    "tanh": (lambda a: a.tanh(), [(3, 4)]),
    "sigmoid": (lambda a: a.sigmoid(), [(3, 4)]),
    "relu": (lambda a: F.relu(a), [(3, 4)]),
    "leaky_relu": (lambda a: F.leaky_relu(a, 0.01), [(3, 4)]),
    "clamp": (lambda a: a.clamp(-0.5, 0.5), [(3, 4)]),
    "abs": (lambda a: a.abs(), [(3, 4)]),
    "sum dim 0": (lambda a: a.sum(0), [(3, 4)]),
    "sum (0, 2) keepdim": (lambda a: a.sum((0, 2), keepdim=True), [(2, 3, 4)]),
    "mean": (lambda a: a.mean(), [(3, 4)]),
    "mean dim -1": (lambda a: a.mean(-1), [(2, 3, 4)]),
    "reshape -1": (lambda a: a.reshape(-1, 2), [(3, 4)]),
    "transpose": (lambda a: a.transpose(0, 2), [(2, 3, 4)]),
    "T": (lambda a: a.T, [(3, 4)]),
    "index int": (lambda a: a[1], [(3, 4)]),
    "index ellipsis and None": (lambda a: a[..., None, 1:], [(2, 3)]),
    "cat dim 1": (lambda a, b: mg.cat([a, b], dim=1), [(2, 3), (2, 1)]),
    "flatten": (lambda a: a.flatten(0), [(2, 3, 2)]),
    "broadcast_to": (lambda a: a.broadcast_to((2, 3, 4)), [(3, 1)]),
    "expand": (lambda a: a.expand(2, 3, 4), [(3, 1)]),
    "bce_with_logits (input and target)": (
        lambda x, y: F.binary_cross_entropy_with_logits(x, y.sigmoid(), reduction="sum"), [(5, 1), (5, 1)]),
    "bce_with_logits none": (lambda x: F.binary_cross_entropy_with_logits(x, t(np.full((4,), 0.9)), reduction="none"), [(4,)]),
    "binary_cross_entropy": (lambda x, y: F.binary_cross_entropy(x.sigmoid(), y.sigmoid()), [(5,), (5,)]),
    "mse_loss sum": (lambda a, b: F.mse_loss(a, b, reduction="sum"), [(3, 2), (3, 2)]),
}


@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_op_gradients_match_finite_differences(name):
    fn, shapes = GRAD_CASES[name]
    gen = np.random.default_rng(7)
    inputs = [t(gen.standard_normal(s), requires_grad=True) for s in shapes]
    assert mg.gradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-3)


def test_comparisons_are_elementwise_and_truth_needs_one_value():
    a, b = mg.tensor([1.0, 2.0, 3.0]), mg.tensor([1.0, 5.0, 3.0])
    np.testing.assert_array_equal((a == b).numpy(), [True, False, True])
    np.testing.assert_array_equal((a != b).numpy(), [False, True, False])
    np.testing.assert_array_equal((a > 1).numpy(), [False, True, True])
    np.testing.assert_array_equal((2 <= a).numpy(), [False, True, True])
    assert not (a == b).requires_grad
    assert bool(mg.tensor([0.0])) is False and float(mg.tensor([2.5])) == 2.5
    with pytest.raises(RuntimeError, match=r"the truth value of a tensor of shape \(3,\) is ambiguous"):
        bool(a)
    assert {a: 1}[a] == 1  # still hashed by identity
    assert (a == None) is False and (a != None) is True  # noqa: E711  (PyTorch's answers; NumPy compares each value)
    t = mg.Tensor([1, 2])  # as torch.Tensor: float32 (it kept the list, and printing it failed)
    assert t.dtype == np.float32 and repr(t) == "tensor([1., 2.], dtype=float32)"


def test_masks_combine_with_logical_operators_and_abs_is_an_op():
    x = mg.tensor([-2.0, -0.5, 0.5, 3.0], requires_grad=True)
    m, n = x > 0, x < 1
    np.testing.assert_array_equal((m & n).numpy(), [False, False, True, False])
    np.testing.assert_array_equal((m | n).numpy(), [True, True, True, True])
    np.testing.assert_array_equal((m ^ n).numpy(), [True, True, False, True])
    np.testing.assert_array_equal((~m).numpy(), [True, True, False, False])
    np.testing.assert_array_equal((True & m).numpy(), m.numpy())  # the operand on the left is not a tensor
    assert not (m & n).requires_grad and (m & n).dtype == bool
    y = mg.tensor(x)  # (a copy: x.detach() would share x's values)
    y[(y < -1) | (y > 1)] = 0  # the mask combined, then assigned to
    np.testing.assert_array_equal(y.numpy(), [0.0, -0.5, 0.5, 0.0])
    for combine in (lambda: x & m, lambda: m | x, lambda: ~x):  # a float tensor is no mask (as in PyTorch)
        with pytest.raises(TypeError, match="expected bool or integer tensors \\(masks\\), got float32"):
            combine()
    a = abs(x)  # the op, gradient sign(x)
    a.sum().backward()
    np.testing.assert_array_equal(a.detach().numpy(), [2.0, 0.5, 0.5, 3.0])
    np.testing.assert_array_equal(x.grad, [-1.0, -1.0, 1.0, 1.0])


def test_interpolate_takes_a_size_or_a_scale_factor_as_pytorch_does():
    x = mg.tensor(np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2))
    want = x.numpy().repeat(3, axis=2).repeat(3, axis=3)
    np.testing.assert_array_equal(F.interpolate(x, 6).numpy(), want)  # the second argument is the size
    np.testing.assert_array_equal(F.interpolate(x, (6, 6)).numpy(), want)
    np.testing.assert_array_equal(F.interpolate(x, scale_factor=3).numpy(), want)
    with pytest.raises(ValueError, match="size 5 is not the input's 2×2 times one whole number"):
        F.interpolate(x, 5)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        F.interpolate(x)
    # nn.Upsample takes them in the same order: Upsample(6) is the size, as in PyTorch.
    np.testing.assert_array_equal(nn.Upsample(6)(x).numpy(), want)
    np.testing.assert_array_equal(nn.Upsample(scale_factor=3)(x).numpy(), want)
    assert repr(nn.Upsample(6)) == "Upsample(size=6, mode='nearest')"
    with pytest.raises(ValueError, match="Upsample: give exactly one of size and scale_factor"):
        nn.Upsample()


def test_a_0d_tensor_reduces_over_dim_0_as_in_pytorch():
    x = mg.tensor(2.0, requires_grad=True)
    for y in (x.sum(0), x.sum(-1), x.mean(0), x.sum(0, keepdim=True)):  # each raised an IndexError
        assert y.shape == () and y.item() == 2.0
    x.sum(0).backward()
    assert x.grad == 1.0
    with pytest.raises(IndexError, match="axis 1 is out of range for a tensor with 0 dimensions"):
        x.sum(1)
