"""Every registered CUDA kernel compiles to PTX, with the exact signatures it is
launched with, for Ampere (8.0) and Hopper (9.0). Needs NVVM, not a GPU."""

import os

import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    pytest.skip("PTX compilation is not available under the CUDA simulator", allow_module_level=True)

cuda = pytest.importorskip("numba.cuda", reason="numba-cuda is not installed")

import kernels  # noqa: E402


def _nvvm_available():
    try:
        from numba.cuda.cudadrv.nvvm import NVVM

        NVVM()
        return True
    except Exception:
        return False


pytestmark = pytest.mark.skipif(
    not _nvvm_available(), reason="NVVM not found (pip install 'numba-cuda[cu13]')"
)

CASES = [
    pytest.param(name, signature, id=f"{name}-{signature.args[0].dtype}")
    for name, (_, signatures) in sorted(kernels.CUDA_KERNELS.items())
    for signature in signatures
]


@pytest.mark.parametrize("cc", [(8, 0), (9, 0)], ids=["sm80", "sm90"])
@pytest.mark.parametrize("name, signature", CASES)
def test_compiles_to_ptx(name, signature, cc):
    kernel, _ = kernels.CUDA_KERNELS[name]
    ptx, _ = cuda.compile_ptx(kernel.py_func, signature, cc=cc)
    assert f".target sm_{cc[0]}{cc[1]}" in ptx
    assert ".entry" in ptx


def test_every_kernel_is_registered_for_both_float_types():
    for name, (_, signatures) in kernels.CUDA_KERNELS.items():
        assert [str(s.args[0].dtype) for s in signatures] == ["float32", "float64"], name


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_registered_signatures_are_the_launch_signatures(monkeypatch, dtype):
    # Record the argument types of every launch (made here on the CPU path; a
    # CuPy array of the same shape, dtype and layout types the same) and check
    # that they are exactly a registered signature of the kernel.
    import numpy as np
    from numba import typeof

    from kernels import _dispatch

    launched = {}
    run = _dispatch.run

    def recording_run(cpu, gpu, launch, *args):
        launched[gpu] = tuple(typeof(a) for a in args)
        run(cpu, gpu, launch, *args)

    for module in ("conv", "batch_norm", "leaky_relu", "adam", "layout"):
        monkeypatch.setattr(f"kernels.{module}.run", recording_run)

    x = np.ones((2, 3, 4, 5), dtype)
    cols = kernels.im2col(x, 3, 3, 1, 1, 1, 1)  # x read as (N, H, W, C) = (2, 3, 4, 5)
    kernels.col2im(cols, 2, 3, 4, 5, 3, 3, 1, 1, 1, 1)
    x3, g = x.reshape(2, 3, 20), np.ones(3, dtype)
    y, mean, invstd, _ = kernels.batch_norm_forward(x3, g, g, 1e-5)
    kernels.batch_norm_backward(y, x3, mean, invstd, g)
    kernels.leaky_relu_backward(x, kernels.leaky_relu_forward(x, 0.2), 0.2)
    kernels.adam_update(x, x.copy(), np.zeros_like(x), np.zeros_like(x), 1, 1e-3, 0.9, 0.999, 1e-8)
    kernels.nchw_to_nhwc(x)

    registered = {kernel: sigs for kernel, sigs in kernels.CUDA_KERNELS.values()}
    assert set(launched) == set(registered)
    for kernel, types in launched.items():
        assert types in [s.args for s in registered[kernel]], kernel.py_func.__name__
