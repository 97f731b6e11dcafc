"""Every CUDA kernel, run by Numba's CUDA simulator on host arrays, equals the CPU kernel.

The simulator must be switched on before numba is first imported, so this file
runs in a pytest process of its own:

    NUMBA_ENABLE_CUDASIM=1 pytest -q tests/test_kernels_cudasim.py
"""

import os

import numpy as np
import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip(
        "needs the CUDA simulator: NUMBA_ENABLE_CUDASIM=1 pytest -q tests/test_kernels_cudasim.py",
        allow_module_level=True,
    )

import kernels  # noqa: E402
from kernels import _dispatch  # noqa: E402

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}

# Which registered kernels each public function launches; checked below to
# cover the whole registry.
LAUNCHES = {
    "im2col": ["im2col"],
    "col2im": ["col2im"],
    "batch_norm": ["batch_norm_sums", "batch_norm_normalize", "batch_norm_input_grad"],
    "leaky_relu": ["leaky_relu_gate"],
    "adam_update": ["adam"],
    "nchw_to_nhwc": ["nchw_to_nhwc"],
}


@pytest.fixture(autouse=True)
def small_grid(monkeypatch):
    # The simulator runs every thread as a Python thread: keep blocks small, and
    # cap them so that each thread of the grid-stride loops takes several items.
    monkeypatch.setattr(_dispatch, "THREADS_PER_BLOCK", 32)
    monkeypatch.setattr(_dispatch, "MAX_BLOCKS", 2)


def on_cpu_and_cuda(f, *args):
    """(CPU result, simulated CUDA result) of kernels.f(*args)."""
    cpu = f(*args)
    with _dispatch.forced_cuda():
        gpu = f(*args)
    return cpu, gpu


def assert_same(cpu, gpu, dtype, exact=False):
    """Equal within TOL, or ``exact``ly where the kernel only copies or selects values
    (or multiplies once): that gives the same bits on any device."""
    assert type(cpu) is type(gpu) and (not isinstance(cpu, tuple) or len(cpu) == len(gpu))
    for c, g in zip(cpu, gpu) if isinstance(cpu, tuple) else [(cpu, gpu)]:
        assert g.dtype == c.dtype == dtype and g.shape == c.shape
        if exact:
            np.testing.assert_array_equal(g, c)
        else:
            np.testing.assert_allclose(g, c, **TOL[dtype])


def test_every_registered_kernel_is_covered():
    assert sorted(sum(LAUNCHES.values(), [])) == sorted(kernels.CUDA_KERNELS)


def test_kernels_run_on_the_simulator():
    kernel, _ = kernels.CUDA_KERNELS["im2col"]
    assert type(kernel).__module__.startswith("numba.cuda.simulator")


CONV_CONFIGS = [
    # (N, H, W, C, kh, kw, sh, sw, ph, pw)
    (1, 5, 4, 1, 3, 3, 1, 1, 1, 1),
    (2, 5, 6, 2, 2, 3, 2, 3, 0, 2),
    (1, 4, 3, 3, 5, 1, 3, 2, 2, 0),
    (2, 1, 1, 1, 1, 1, 1, 1, 0, 0),  # 1×1 images, one channel
    (1, 1, 1, 2, 3, 3, 2, 2, 1, 1),  # a 1×1 image inside a larger kernel's padding
    (1, 3, 2, 1, 1, 2, 1, 2, 2, 3),  # padding larger than the kernel
    (2, 5, 7, 3, 1, 2, 3, 4, 0, 1),  # strides larger than the kernel: pixels no window reads
    (1, 2, 2, 2, 4, 4, 1, 1, 1, 1),  # a kernel larger than the input
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", CONV_CONFIGS, ids=str)
def test_im2col_and_col2im(config, dtype):
    N, H, W, C, kh, kw, sh, sw, ph, pw = config
    x = np.random.default_rng(0).standard_normal((N, H, W, C)).astype(dtype)
    cols_cpu, cols_gpu = on_cpu_and_cuda(kernels.im2col, x, kh, kw, sh, sw, ph, pw)
    assert_same(cols_cpu, cols_gpu, dtype, exact=True)
    assert_same(*on_cpu_and_cuda(kernels.col2im, cols_cpu, *config), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 2, 5), (3, 2, 100), (2, 1, 300), (40, 3, 1)], ids=str)
def test_batch_norm(shape, dtype):
    rng = np.random.default_rng(1)
    x, gy = (rng.standard_normal(shape).astype(dtype) + 1 for _ in range(2))
    gamma, beta = (rng.standard_normal(shape[1]).astype(dtype) for _ in range(2))
    cpu, gpu = on_cpu_and_cuda(kernels.batch_norm_forward, x, gamma, beta, 1e-5)
    assert_same(cpu, gpu, dtype)
    _, mean, invstd, _ = cpu
    assert_same(*on_cpu_and_cuda(kernels.batch_norm_backward, gy, x, mean, invstd, gamma), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_leaky_relu(dtype):
    rng = np.random.default_rng(2)
    x, gy = (rng.standard_normal((3, 50)).astype(dtype) for _ in range(2))
    assert_same(*on_cpu_and_cuda(kernels.leaky_relu_forward, x, 0.2), dtype, exact=True)
    assert_same(*on_cpu_and_cuda(kernels.leaky_relu_backward, x, gy, 0.2), dtype, exact=True)
    # ReLU (slope 0) at the infinities: an exact 0 on both, not 0·inf = NaN.
    x[0, :3], gy[0, :3] = -np.inf, np.inf
    for cpu, gpu in (on_cpu_and_cuda(kernels.leaky_relu_forward, x, 0.0),
                     on_cpu_and_cuda(kernels.leaky_relu_backward, x, gy, 0.0)):
        assert_same(cpu, gpu, dtype, exact=True)
        assert not np.isnan(gpu).any()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 1, 1), (2, 1, 3, 2)], ids=str)
def test_nchw_to_nhwc(shape, dtype):
    x = np.random.default_rng(4).standard_normal(shape).astype(dtype)
    cpu, gpu = on_cpu_and_cuda(kernels.nchw_to_nhwc, x)
    np.testing.assert_array_equal(cpu, x.transpose(0, 2, 3, 1))
    assert_same(cpu, gpu, dtype, exact=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_update(dtype):
    rng = np.random.default_rng(3)
    p, m = (rng.standard_normal(70).astype(dtype) for _ in range(2))
    v = rng.random(70).astype(dtype)
    g = rng.standard_normal(70).astype(dtype)

    def update(p, m, v):  # in place: return copies of what changed
        p, m, v = p.copy(), m.copy(), v.copy()
        kernels.adam_update(p, g, m, v, 3, 1e-2, 0.9, 0.999, 1e-8)
        return p, m, v

    cpu, gpu = on_cpu_and_cuda(update, p, m, v)
    assert not np.array_equal(cpu[0], p)
    assert_same(cpu, gpu, dtype)
