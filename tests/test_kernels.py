"""CPU kernels against plain NumPy references written for clarity, not speed."""

import ctypes.util
import importlib
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import kernels
from kernels import _dispatch
from kernels._compile import CpuLauncher
from kernels._dispatch import memory_order

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


# ------------------------------------------------------------ references ---


def out_size(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def ref_im2col(x, kh, kw, sh, sw, ph, pw):
    N, H, W, C = x.shape
    OH, OW = out_size(H, kh, sh, ph), out_size(W, kw, sw, pw)
    padded = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    cols = np.empty((N, OH, OW, kh, kw, C), x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j] = padded[:, i : i + sh * OH : sh, j : j + sw * OW : sw]
    return cols.reshape(N * OH * OW, kh * kw * C)


def ref_col2im(cols, N, H, W, C, kh, kw, sh, sw, ph, pw):
    OH, OW = out_size(H, kh, sh, ph), out_size(W, kw, sw, pw)
    cols = cols.reshape(N, OH, OW, kh, kw, C)
    padded = np.zeros((N, H + 2 * ph, W + 2 * pw, C), cols.dtype)
    for i in range(kh):
        for j in range(kw):
            padded[:, i : i + sh * OH : sh, j : j + sw * OW : sw] += cols[:, :, :, i, j]
    return padded[:, ph : ph + H, pw : pw + W]


def ref_batch_norm_forward(x, gamma, beta, eps):
    mean = x.mean(axis=(0, 2))
    var = x.var(axis=(0, 2))
    invstd = 1 / np.sqrt(var + eps)
    xhat = (x - mean[:, None]) * invstd[:, None]
    return xhat * gamma[:, None] + beta[:, None], mean, invstd, var


def ref_batch_norm_backward(gy, x, mean, invstd, gamma):
    M = x.shape[0] * x.shape[2]
    xhat = (x - mean[:, None]) * invstd[:, None]
    gbeta = gy.sum(axis=(0, 2))
    ggamma = (gy * xhat).sum(axis=(0, 2))
    gx = (gamma * invstd)[:, None] * (gy - gbeta[:, None] / M - xhat * ggamma[:, None] / M)
    return gx, ggamma, gbeta


# --------------------------------------------------------------- im2col ---


def conv_configs(count, seed=0):
    """Random (N, H, W, C, kh, kw, sh, sw, ph, pw) with at least one output pixel."""
    rng = np.random.default_rng(seed)
    configs = [
        (1, 1, 1, 1, 1, 1, 1, 1, 0, 0),  # a single pixel
        (1, 5, 7, 1, 1, 1, 3, 2, 0, 0),  # 1x1 taps that skip pixels
        (2, 4, 4, 3, 5, 5, 1, 1, 2, 2),  # kernel larger than the input
        (1, 6, 5, 2, 2, 3, 3, 1, 2, 1),  # padding as large as the kernel
        (2, 6, 6, 16, 4, 4, 2, 2, 1, 1),  # the DCGAN's taps, with many channels
    ]
    while len(configs) < count:
        N, C = rng.integers(1, 4, size=2)
        H, W = rng.integers(1, 10, size=2)
        kh, kw = rng.integers(1, 6, size=2)
        sh, sw = rng.integers(1, 4, size=2)
        ph, pw = rng.integers(0, 3, size=2)
        if H + 2 * ph >= kh and W + 2 * pw >= kw:
            configs.append(tuple(int(v) for v in (N, H, W, C, kh, kw, sh, sw, ph, pw)))
    return configs


CONV_CONFIGS = conv_configs(40)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", CONV_CONFIGS, ids=str)
def test_im2col_matches_reference(config, dtype):
    N, H, W, C, *geometry = config
    x = np.random.default_rng(1).standard_normal((N, H, W, C)).astype(dtype)
    cols = kernels.im2col(x, *geometry)
    assert cols.dtype == dtype and cols.flags.c_contiguous
    np.testing.assert_array_equal(cols, ref_im2col(x, *geometry))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", CONV_CONFIGS, ids=str)
def test_col2im_matches_reference(config, dtype):
    N, H, W, C, kh, kw, sh, sw, ph, pw = config
    OH, OW = out_size(H, kh, sh, ph), out_size(W, kw, sw, pw)
    cols = np.random.default_rng(2).standard_normal((N * OH * OW, C * kh * kw)).astype(dtype)
    x = kernels.col2im(cols, *config)
    assert x.shape == (N, H, W, C) and x.dtype == dtype
    np.testing.assert_allclose(x, ref_col2im(cols, *config), **TOL[dtype])


@pytest.mark.parametrize("config", CONV_CONFIGS, ids=str)
def test_col2im_is_the_adjoint_of_im2col(config):
    # <col2im(c), x> == <c, im2col(x)> for all x and c.
    N, H, W, C, kh, kw, sh, sw, ph, pw = config
    rng = np.random.default_rng(3)
    x = rng.standard_normal((N, H, W, C))
    c = rng.standard_normal((N * out_size(H, kh, sh, ph) * out_size(W, kw, sw, pw), C * kh * kw))
    lhs = np.vdot(kernels.col2im(c, *config), x)
    rhs = np.vdot(c, kernels.im2col(x, kh, kw, sh, sw, ph, pw))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


def test_col2im_rejects_columns_of_another_shape():
    # The loops index cols by the output's geometry: a cols of any other shape would
    # be read past its end (or mapped to the wrong pixels), so it is refused.
    cols = np.zeros((9, 9), np.float32)  # a 3×3 kernel's columns for a 5×5 output
    assert kernels.col2im(cols, 1, 5, 5, 1, 3, 3, 1, 1, 0, 0).shape == (1, 5, 5, 1)
    with pytest.raises(ValueError, match=r"col2im: cols has shape \(9, 9\), .* needs \(25, 9\)"):
        kernels.col2im(cols, 1, 7, 7, 1, 3, 3, 1, 1, 0, 0)


def test_a_kernel_that_does_not_fit_the_padded_image_is_refused():
    # OH and OW both negative made N·OH·OW rows of uninitialised memory (OH = 0: none).
    with pytest.raises(ValueError, match=r"im2col: a 4×4 kernel does not fit in a 1×3 image padded by \(0, 0\)"):
        kernels.im2col(np.ones((2, 1, 3, 1)), 4, 4, 1, 1, 0, 0)
    with pytest.raises(ValueError, match=r"col2im: a 4×4 kernel does not fit in a 1×1 image"):
        kernels.col2im(np.ones((2, 16)), 2, 1, 1, 1, 4, 4, 1, 1, 0, 0)


@pytest.mark.parametrize("call, words", [
    (lambda: kernels.leaky_relu_backward(-np.ones(6), np.ones(2), 0.5),
     r"leaky_relu_backward: gy has shape \(2,\), expected \(6,\)"),
    (lambda: kernels.adam_update(np.ones(6), np.ones(2), np.zeros(6), np.zeros(6), 1, 0.1, 0.9, 0.999, 1e-8),
     r"adam_update: g has shape \(2,\), expected \(6,\)"),
    (lambda: kernels.batch_norm_forward(np.ones((4, 3, 2)), np.ones(1), np.ones(3), 1e-5),
     r"batch_norm_forward: gamma has shape \(1,\), expected \(3,\)"),
    (lambda: kernels.batch_norm_backward(np.ones((4, 3, 1)), np.ones((4, 3, 2)), np.zeros(3), np.ones(3), np.ones(3)),
     r"batch_norm_backward: gy has shape \(4, 3, 1\), expected \(4, 3, 2\)"),
])
def test_kernels_refuse_arrays_shorter_than_their_loops(call, words):
    # The loops have no bounds checks: a short gy, g or gamma was read (or written) past its end.
    with pytest.raises(ValueError, match=words):
        call()


def test_im2col_accepts_non_contiguous_input():
    x = np.random.default_rng(4).standard_normal((3, 2, 5, 4)).transpose(1, 2, 3, 0)  # (2, 5, 4, 3), strided
    np.testing.assert_array_equal(kernels.im2col(x, 3, 2, 1, 2, 1, 0), ref_im2col(x, 3, 2, 1, 2, 1, 0))


# ----------------------------------------------------------- batch norm ---

BN_SHAPES = [(1, 1, 1), (2, 1, 1), (4, 3, 1), (1, 2, 9), (3, 5, 7), (8, 4, 33)]


def bn_inputs(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    C = shape[1]
    x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)
    gamma = rng.standard_normal(C).astype(dtype)
    beta = rng.standard_normal(C).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    return x, gamma, beta, gy


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
def test_batch_norm_forward_matches_reference(shape, dtype):
    x, gamma, beta, _ = bn_inputs(shape, dtype)
    got = kernels.batch_norm_forward(x, gamma, beta, 1e-5)
    want = ref_batch_norm_forward(x.astype(np.float64), gamma, beta, 1e-5)
    for g, w in zip(got, want):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, w, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
def test_batch_norm_backward_matches_reference(shape, dtype):
    x, gamma, beta, gy = bn_inputs(shape, dtype)
    _, mean, invstd, _ = kernels.batch_norm_forward(x, gamma, beta, 1e-5)
    got = kernels.batch_norm_backward(gy, x, mean, invstd, gamma)
    want = ref_batch_norm_backward(*(a.astype(np.float64) for a in (gy, x, mean, invstd, gamma)))
    for g, w in zip(got, want):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, w, rtol=TOL[dtype]["rtol"], atol=TOL[dtype]["atol"] * 10)


@pytest.mark.parametrize("shape", [(16, 2, 64), (1024, 2, 1)], ids=["(N, C, L)", "rows of channels"])
def test_batch_norm_float32_statistics_survive_a_large_offset(shape):
    # Float64 sums of values shifted by one of the channel's own keep the
    # statistics accurate where E[x^2] - E[x]^2 would cancel: at an offset of
    # 1e6, even in float64 its error in var (~1e-16 * 1e12) would be 1e-4.
    x64 = 1e6 + np.random.default_rng(5).standard_normal(shape)
    x = x64.astype(np.float32)
    _, mean, invstd, var = kernels.batch_norm_forward(x, np.ones(2, np.float32), np.zeros(2, np.float32), 1e-5)
    _, want_mean, want_invstd, want_var = ref_batch_norm_forward(x.astype(np.float64), np.ones(2), np.zeros(2), 1e-5)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-7)
    np.testing.assert_allclose(invstd, want_invstd, rtol=1e-5)
    np.testing.assert_allclose(var, want_var, rtol=1e-5)


@pytest.mark.parametrize("shape", [(3, 2, 4), (5, 3, 1)], ids=str)
def test_batch_norm_backward_matches_finite_differences(shape):
    x, gamma, beta, gy = bn_inputs(shape, np.float64, seed=6)
    eps, h = 1e-3, 1e-6

    def loss(x, gamma, beta):  # d loss / d y = gy
        return np.vdot(kernels.batch_norm_forward(x, gamma, beta, eps)[0], gy)

    def numeric_grad(arg):
        args = [x, gamma, beta]
        grad = np.zeros_like(args[arg])
        for k in np.ndindex(grad.shape):
            plus = [a.copy() for a in args]
            minus = [a.copy() for a in args]
            plus[arg][k] += h
            minus[arg][k] -= h
            grad[k] = (loss(*plus) - loss(*minus)) / (2 * h)
        return grad

    _, mean, invstd, _ = kernels.batch_norm_forward(x, gamma, beta, eps)
    gx, ggamma, gbeta = kernels.batch_norm_backward(gy, x, mean, invstd, gamma)
    np.testing.assert_allclose(gx, numeric_grad(0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ggamma, numeric_grad(1), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gbeta, numeric_grad(2), rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------- leaky relu ---


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 4), (2, 3, 4, 5), (1000,)], ids=str)
def test_leaky_relu(shape, dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape).astype(dtype)
    x.flat[0] = 0  # the kink goes to the negative side
    gy = rng.standard_normal(shape).astype(dtype)
    slope = 0.2
    y = kernels.leaky_relu_forward(x, slope)
    gx = kernels.leaky_relu_backward(x, gy, slope)
    assert y.shape == gx.shape == shape and y.dtype == gx.dtype == dtype
    np.testing.assert_array_equal(y, np.where(x > 0, x, dtype(slope) * x))
    np.testing.assert_array_equal(gx, np.where(x > 0, gy, dtype(slope) * gy))


def test_leaky_relu_works_in_memory_order_and_keeps_the_layout():
    # An (N, C, H, W) view of NHWC memory (channels-last) runs without a copy and
    # gives a result in the same layout; a gradient in another layout is brought
    # into x's first.
    rng = np.random.default_rng(9)
    x = np.ascontiguousarray(rng.standard_normal((2, 4, 3, 5)).transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    gy = rng.standard_normal(x.shape)  # NCHW
    y, gx = kernels.leaky_relu_forward(x, 0.1), kernels.leaky_relu_backward(x, gy, 0.1)
    assert y.strides == gx.strides == x.strides
    np.testing.assert_array_equal(y, np.where(x > 0, x, 0.1 * x))
    np.testing.assert_array_equal(gx, np.where(x > 0, gy, 0.1 * gy))


def test_memory_order():
    a = np.zeros((2, 3, 4, 5))
    assert memory_order(a) == (0, 1, 2, 3)
    assert memory_order(a.transpose(0, 3, 1, 2)) == (0, 2, 3, 1)  # channels-last
    assert memory_order(a[:, :, ::2]) == (0, 1, 2, 3)  # gaps: no order makes it one block


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 4, 5), (3, 64, 7, 6)], ids=str)
def test_nchw_to_nhwc(shape, dtype):
    x = np.random.default_rng(12).standard_normal(shape).astype(dtype)
    y = kernels.nchw_to_nhwc(x)
    assert y.flags.c_contiguous and y.dtype == dtype
    np.testing.assert_array_equal(y, x.transpose(0, 2, 3, 1))
    # any input layout: a channels-last view, a strided slice
    np.testing.assert_array_equal(kernels.nchw_to_nhwc(y.transpose(0, 3, 1, 2)), y)
    np.testing.assert_array_equal(kernels.nchw_to_nhwc(x[:, ::2]), x[:, ::2].transpose(0, 2, 3, 1))


def test_leaky_relu_accepts_non_contiguous_input():
    x = np.random.default_rng(8).standard_normal((4, 6)).T
    np.testing.assert_array_equal(kernels.leaky_relu_forward(x, 0.1), np.where(x > 0, x, 0.1 * x))


def test_relu_is_an_exact_zero_where_x_is_not_positive():
    # Slope 0 writes 0 itself: 0·(-inf) and 0·inf would be NaN (PyTorch's relu gives 0).
    x = np.array([-np.inf, -1.0, 0.0, 2.0, np.nan], np.float32)
    gy = np.array([np.inf, -np.inf, 1.0, 3.0, 1.0], np.float32)
    y, gx = kernels.leaky_relu_forward(x, 0.0), kernels.leaky_relu_backward(x, gy, 0.0)
    np.testing.assert_array_equal(y, [0, 0, 0, 2, np.nan])
    np.testing.assert_array_equal(np.signbit(y[:3]), False)
    np.testing.assert_array_equal(gx, [0, 0, 0, 3, 1])  # NaN's gradient passes, as in PyTorch
    np.testing.assert_array_equal(kernels.leaky_relu_forward(x, 0.5), [-np.inf, -0.5, 0, 2, np.nan])
    # A leaky ReLU's gradient at NaN is slope·gy, as in PyTorch (x > 0 is false there).
    np.testing.assert_array_equal(kernels.leaky_relu_backward(x, gy, 0.5), [np.inf, -np.inf, 0.5, 3, 0.5])


def test_leaky_relu_of_a_0d_array():
    x = np.array(-2.0, np.float32)
    y, gx = kernels.leaky_relu_forward(x, 0.5), kernels.leaky_relu_backward(x, np.array(4.0, np.float32), 0.5)
    assert y.shape == gx.shape == () and (y, gx) == (-1.0, 2.0)


# ----------------------------------------------------------------- adam ---


def ref_adam(p, g, m, v, t, lr, beta1, beta2, eps):
    """Adam as whole-array NumPy operations, one at a time, in p's dtype."""
    m[...] = beta1 * m + (1 - beta1) * g
    v[...] = beta2 * v + (1 - beta2) * (g * g)
    p -= (m / (np.sqrt(v) / math.sqrt(1 - beta2**t) + eps)) * (lr / (1 - beta1**t))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (3, 5), (64, 1, 4, 4), (100_000,)], ids=str)
def test_adam_update_gives_numpys_numbers_bit_for_bit(shape, dtype):
    rng = np.random.default_rng(10)
    got = [rng.standard_normal(shape).astype(dtype), np.zeros(shape, dtype), np.zeros(shape, dtype)]
    want = [a.copy() for a in got]
    for t in range(1, 4):
        g = rng.standard_normal(shape).astype(dtype)
        kernels.adam_update(*got[:1], g, *got[1:], t, 2e-4, 0.5, 0.999, 1e-8)
        ref_adam(*want[:1], g, *want[1:], t, 2e-4, 0.5, 0.999, 1e-8)
        for name, a, b in zip("pmv", got, want):
            assert a.dtype == dtype
            np.testing.assert_array_equal(a, b, err_msg=f"{name} after step {t}")


def test_adam_update_writes_through_non_contiguous_arrays():
    # A transposed parameter and moments, a float64 gradient for float32 arrays:
    # the arrays passed in are the ones updated.
    rng = np.random.default_rng(11)
    p, m, v = (np.asarray(rng.random((5, 3)), np.float32).T for _ in range(3))
    g = rng.standard_normal((3, 5))
    want = [a.copy() for a in (p, m, v)]
    kernels.adam_update(p, g, m, v, 2, 1e-2, 0.9, 0.999, 1e-8)
    ref_adam(want[0], g.astype(np.float32), *want[1:], 2, 1e-2, 0.9, 0.999, 1e-8)
    for a, b in zip((p, m, v), want):
        assert not a.flags.c_contiguous
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------- parallel loops ---


def every_kernel(dtype):
    """The results of every kernel on small inputs: im2col, col2im, batch norm both
    ways on (N, C, L) and on rows of channels, leaky ReLU both ways, the NHWC copy
    and an Adam step."""
    rng = np.random.default_rng(13)
    x = rng.standard_normal((3, 5, 4, 2)).astype(dtype)
    cols = kernels.im2col(x, 3, 2, 2, 1, 1, 1)
    results = [cols, kernels.col2im(cols, 3, 5, 4, 2, 3, 2, 2, 1, 1, 1)]
    gamma, beta = rng.standard_normal(2).astype(dtype), rng.standard_normal(2).astype(dtype)
    for x3 in (x.reshape(3, 2, 20), x.reshape(60, 2, 1)):
        y, mean, invstd, var = kernels.batch_norm_forward(x3, gamma, beta, 1e-5)
        results += [y, mean, invstd, var, *kernels.batch_norm_backward(x3[::-1].copy(), x3, mean, invstd, gamma)]
    results += [kernels.leaky_relu_forward(x, 0.2), kernels.leaky_relu_backward(x, x[::-1].copy(), 0.2)]
    results.append(kernels.nchw_to_nhwc(x))
    p, m, v = x.reshape(-1).copy(), np.zeros(x.size, dtype), np.zeros(x.size, dtype)
    kernels.adam_update(p, x.reshape(-1)[::-1].copy(), m, v, 1, 1e-2, 0.9, 0.999, 1e-8)
    return results + [p, m, v]


@pytest.mark.parametrize("dtype", DTYPES)
def test_parallel_cpu_loops_give_the_serial_results(monkeypatch, dtype):
    # Launches of _dispatch.PARALLEL_MIN_SIZE values or more (far above the other
    # tests' sizes) run each CPU loop's parallel build: here every launch does.
    serial = every_kernel(dtype)
    monkeypatch.setattr(_dispatch, "PARALLEL_MIN_SIZE", 0)
    parallel = every_kernel(dtype)
    launchers = [v for name in ("conv", "batch_norm", "leaky_relu", "layout", "adam")
                 for v in vars(importlib.import_module(f"kernels.{name}")).values() if isinstance(v, CpuLauncher)]
    assert len(launchers) == 8 and all(launcher.parallel.signatures for launcher in launchers)  # each ran
    assert len(parallel) == len(serial)
    for k, (p, s) in enumerate(zip(parallel, serial)):
        assert p.dtype == s.dtype == dtype and p.shape == s.shape
        np.testing.assert_array_equal(p, s, err_msg=f"result {k}")


@pytest.mark.parametrize("preload, environment, parallel", [
    (False, {}, True),
    (True, {}, False),  # as with PyTorch imported first: its threads spin 300,000 times
    (True, {"GOMP_SPINCOUNT": "1000"}, True),  # the user set the spin count for it
    (True, {"OMP_WAIT_POLICY": "passive"}, True),
])
def test_kernels_stay_serial_on_an_openmp_runtime_loaded_before_them(preload, environment, parallel):
    gomp = ctypes.util.find_library("gomp")
    if gomp is None or not os.path.exists("/proc/self/maps"):
        pytest.skip("needs GNU OpenMP and Linux's /proc")
    child_env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    script = (f"import ctypes; ctypes.CDLL({gomp!r})\n" if preload else "") + (
        "import kernels._dispatch as d; print(d.PARALLEL_MIN_SIZE)")
    out = subprocess.run([sys.executable, "-c", script], env={**child_env, **environment},
                         capture_output=True, text=True, check=True)
    assert int(out.stdout) == (1 << 22 if parallel else sys.maxsize)


def test_a_gpu_launch_refuses_host_arrays(monkeypatch):
    # With the first array on the GPU (any non-NumPy array stands in for CuPy's
    # here), Numba would copy a NumPy argument to the GPU and back at every launch.
    class GpuArray:
        dtype = np.dtype(np.float32)

    monkeypatch.setattr(_dispatch, "_is_cupy", lambda a: isinstance(a, GpuArray))
    with pytest.raises(TypeError, match=re.escape(
            "a GPU launch got NumPy arrays as arguments [1, 3] (counting from 0): move every array of the launch to the GPU first")):
        _dispatch.run(None, None, (1, 1), GpuArray(), np.zeros(2), GpuArray(), np.zeros(2))
