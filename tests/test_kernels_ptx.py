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
