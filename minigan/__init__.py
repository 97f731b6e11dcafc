"""minigan: a small, readable reverse-mode autodiff engine that trains GANs.

    import minigan as mg
    x = mg.tensor([[1.0, 2.0]], requires_grad=True)
    (x * x).sum().backward()
    x.grad            # array([[2., 4.]], dtype=float32)
"""

from . import ops  # noqa: F401  (attaches the operators to Tensor)
from .anomaly import detect_anomaly
from .autograd import Function, enable_grad, grad, is_grad_enabled, no_grad
from .ops import cat
from .random import get_rng_state, manual_seed, set_rng_state
from .tensor import Tensor, ones, rand, randn, tensor, zeros
from .gradcheck import gradcheck, gradgradcheck
from . import nn, optim  # noqa: E402

float32 = "float32"
float64 = "float64"

__all__ = [
    "Tensor", "tensor", "zeros", "ones", "randn", "rand", "cat", "no_grad", "enable_grad",
    "is_grad_enabled", "grad", "Function", "detect_anomaly", "gradcheck", "gradgradcheck",
    "manual_seed", "get_rng_state", "set_rng_state", "nn", "optim", "float32", "float64",
]
