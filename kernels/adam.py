"""Adam's update of one parameter, in one pass over its values.

For each value, with g the gradient and t the step number (1, 2, ...):

    m  = β1·m + (1 - β1)·g                   first moment (running mean of g)
    v  = β2·v + (1 - β2)·g²                  second moment (running mean of g²)
    p -= lr/(1 - β1^t) · m / (√v/√(1 - β2^t) + eps)

PyTorch's formulas, in the parameter's dtype and in the order NumPy would do
them one whole-array operation at a time, so on the CPU the result is that of
the NumPy update to the bit (PyTorch's own Adam, which updates m as
m + (1 - β1)·(g - m), may differ in the last bit); but p, m and v are read and
written once instead of about ten times.
(On a GPU, NVVM fuses a multiply and an add into one rounding where it can, so
the last bit may differ from the CPU's; GPU runs still repeat exactly.)
"""

import functools
import math

from numba import cuda, prange, void

from ._compile import cpu_launcher, cuda_kernel, device_body, host_body
from ._dispatch import check_shapes, contiguous, grid, run


def _adam_value(p, g, m, v, k, beta1, one_minus_beta1, beta2, one_minus_beta2, sqrt_bias2, eps, step_size):
    gk = g[k]
    mk = beta1 * m[k] + one_minus_beta1 * gk
    vk = beta2 * v[k] + one_minus_beta2 * (gk * gk)
    m[k] = mk
    v[k] = vk
    p[k] -= step_size * (mk / (math.sqrt(vk) / sqrt_bias2 + eps))


_adam_value_cpu = host_body(_adam_value)
_adam_value_gpu = device_body(_adam_value)


@cpu_launcher
def _adam_cpu(p, g, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, sqrt_bias2, eps, step_size):
    for k in prange(p.size):
        _adam_value_cpu(p, g, m, v, k, beta1, one_minus_beta1, beta2, one_minus_beta2, sqrt_bias2, eps, step_size)


@cuda_kernel("adam", lambda f: void(f[::1], f[::1], f[::1], f[::1], f, f, f, f, f, f, f))
def _adam_cuda(p, g, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, sqrt_bias2, eps, step_size):
    for k in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        _adam_value_gpu(p, g, m, v, k, beta1, one_minus_beta1, beta2, one_minus_beta2, sqrt_bias2, eps, step_size)


@functools.lru_cache(maxsize=16)
def _constants(dtype, step, lr, beta1, beta2, eps):
    """The kernel's constants in the parameter's dtype, each rounded once as NumPy
    would round them. Every parameter of a step shares them: computed once per step."""
    f = dtype.type
    return f(beta1), f(1 - beta1), f(beta2), f(1 - beta2), f(math.sqrt(1 - beta2**step)), f(eps), f(lr / (1 - beta1**step))


def adam_update(p, g, m, v, step, lr, beta1, beta2, eps):
    """Step ``step`` of Adam for parameter ``p`` with gradient ``g``: p, m and v
    (arrays of p's shape and dtype) are updated in place."""
    check_shapes("adam_update", p.shape, g=g, m=m, v=v)
    constants = _constants(p.dtype, step, lr, beta1, beta2, eps)
    # The kernel runs over flat memory; an array that is not one C-ordered
    # block is updated through a contiguous copy (``contiguous`` hands back a
    # C-contiguous array itself).
    state = [contiguous(a) for a in (p, m, v)]
    flat_p, flat_m, flat_v = (a.reshape(-1) for a in state)
    flat_g = contiguous(g.astype(p.dtype, copy=False)).reshape(-1)
    run(_adam_cpu, _adam_cuda, grid(p.size), flat_p, flat_g, flat_m, flat_v, *constants)
    for a, copy in zip((p, m, v), state):
        if copy is not a:
            a[...] = copy
