"""Leaky ReLU, forward and backward, through one gate kernel.

Forward:  y  = x        if x > 0 else slope * x
Backward: gx = gy       if x > 0 else slope * gy
Both are ``out = g if x > 0 else slope * g``, with g = x (forward) or g = gy
(backward), so one kernel does both. Arrays are handled flat, in the order
x lies in memory (g is brought into that order), and the result comes out in
x's layout, e.g. channels-last for a channels-last x. With slope 0 (ReLU) the
"else" is an exact 0, as in PyTorch's relu: relu(-inf) is 0, and so is the gradient
where x <= 0 even when gy is infinite. (So leaky_relu with slope 0 is relu here;
PyTorch's computes 0·x there, NaN at x = -inf.)
"""

from numba import cuda, prange, void

from ._compile import cpu_launcher, cuda_kernel, device_body, host_body
from ._dispatch import check_shapes, contiguous, empty, grid, memory_order, run


def _gate_value(x, g, out, k, slope):
    # Where x is NaN, PyTorch's leaky ReLU takes the "else" (slope·g: NaN forward),
    # its ReLU passes g (NaN forward, the gradient unchanged backward).
    if x[k] > 0:
        out[k] = g[k]
    elif slope != 0:
        out[k] = slope * g[k]
    elif x[k] <= 0:  # ReLU: an exact 0, where 0·g would be NaN for g = ±inf (and -0 for g < 0)
        out[k] = 0
    else:  # ReLU of NaN
        out[k] = g[k]


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


def _gate(x, g, out, slope):
    """The kernel over the flat memory of x, g and out (C-ordered, one shape)."""
    run(_gate_cpu, _gate_cuda, grid(x.size), x.reshape(-1), g.reshape(-1), out.reshape(-1), x.dtype.type(slope))


def _apply_gate(x, g, slope):
    if x.flags.c_contiguous:  # the common case: nothing to reorder
        out = empty(x, x.shape)
        _gate(x, contiguous(g), out, slope)
        return out
    axes = memory_order(x)
    x_mem, g_mem = contiguous(x.transpose(axes)), contiguous(g.transpose(axes))  # no copy of x
    out = empty(x, tuple(x.shape[i] for i in axes))  # (x_mem is 1-d when x is 0-d)
    _gate(x_mem, g_mem, out, slope)
    return out.transpose(tuple(axes.index(i) for i in range(x.ndim)))  # back to x's axes


def leaky_relu_forward(x, negative_slope):
    return _apply_gate(x, x, negative_slope)


def leaky_relu_backward(x, gy, negative_slope):
    check_shapes("leaky_relu_backward", x.shape, gy=gy)
    return _apply_gate(x, gy, negative_slope)
