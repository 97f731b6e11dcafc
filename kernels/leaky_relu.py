"""Leaky ReLU, forward and backward, through one gate kernel.

Forward:  y  = x        if x > 0 else slope * x
Backward: gx = gy       if x > 0 else slope * gy
Both are ``out = g if x > 0 else slope * g``, with g = x (forward) or g = gy
(backward), so one kernel does both. Arrays are handled flat.
"""

from numba import cuda, prange, void

from ._compile import cpu_launcher, cuda_kernel, device_body, host_body
from ._dispatch import contiguous, empty, grid, run


def _gate_value(x, g, out, k, slope):
    out[k] = g[k] if x[k] > 0 else slope * g[k]


_gate_value_cpu = host_body(_gate_value)
_gate_value_gpu = device_body(_gate_value)


@cpu_launcher
def _gate_cpu(x, g, out, slope):
    for k in prange(x.size):
        _gate_value_cpu(x, g, out, k, slope)


@cuda_kernel("leaky_relu_gate", lambda f: void(f[::1], f[::1], f[::1], f))
def _gate_cuda(x, g, out, slope):
    for k in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        _gate_value_gpu(x, g, out, k, slope)


def _apply_gate(x, g, slope):
    x, g = contiguous(x), contiguous(g)
    out = empty(x, x.shape)
    flat = (x.reshape(-1), g.reshape(-1), out.reshape(-1), x.dtype.type(slope))
    run(_gate_cpu, _gate_cuda, grid(x.size), *flat)
    return out


def leaky_relu_forward(x, negative_slope):
    return _apply_gate(x, x, negative_slope)


def leaky_relu_backward(x, gy, negative_slope):
    return _apply_gate(x, gy, negative_slope)
