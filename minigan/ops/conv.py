"""2-D convolution and its adjoint, the transposed convolution, on im2col + GEMM.

Shapes (PyTorch's layouts): input x (N, C, H, W); conv weight (O, C, kh, kw);
transposed-conv weight (C_in, C_out, kh, kw). ``kernels.im2col`` gathers every
kh×kw window of x into a row, tap by tap with the channels last, so a
convolution is one matrix product:

    cols  = im2col(x as NHWC)                  (N·OH·OW, kh·kw·C)
    W_mat = W as (O, kh, kw, C), flattened     (O, kh·kw·C)
    y     = cols @ W_matᵀ                  ->  (N·OH·OW, O), i.e. NHWC

and y goes on as an (N, O, OH, OW) view of that NHWC memory (channels-last,
see layout.py), which the next convolution reads without a copy.

``kernels.col2im`` is im2col's adjoint (it sums every column entry back onto the
pixel it came from). The three ops below are each other's gradients:

    conv2d            d/dx = conv_transpose2d(gy, W)     d/dW = conv2d_weight(x, gy)
    conv_transpose2d  d/dx = conv2d(gy, W)               d/dW = conv2d_weight(gy, x)
    conv2d_weight     d/dx = conv_transpose2d(gy, gW')   d/dgy = conv2d(x, gW')

so every gradient is again made of these ops, and double backward comes for free.
"""

import operator

import kernels

from ..autograd import Function
from ..backend import get_xp
from .layout import channels_last, from_nhwc, to_nhwc
from .linalg import with_bias


def conv_output_size(size, k, s, p):
    """How many windows of size k, stride s, fit in size + 2p (PyTorch's formula)."""
    return (size + 2 * p - k) // s + 1


def _nchw(rows, n, h, w, bias=None):
    """(N·H·W, C) rows, plus the bias (C,) added in place to each -> the (N, C, H, W)
    view of them (channels-last)."""
    if bias is not None:
        rows += bias.reshape(-1)  # each pixel's row of C channels gets the same C biases
    return from_nhwc(rows.reshape(n, h, w, -1))


def _bias_grad(g):
    """d/dbias of y + bias[c]: Σ gy over everything but the channel."""
    return g.sum(dim=(0, 2, 3))


def _taps_last(weight):
    """(A, B, kh, kw) -> (A, kh·kw·B): a weight's rows in the column order of im2col."""
    return weight.transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)


def _weight_from_rows(gy_rows, cols, shape):
    """gy_rowsᵀ @ cols, i.e. (O, N·OH·OW) @ (N·OH·OW, kh·kw·C), laid out as a weight
    (O, C, kh, kw), C-contiguous, in one copy.

    When O is the short side, the product is computed as colsᵀ @ gy_rows, (kh·kw·C, O):
    OpenBLAS is several times faster on e.g. (128, 3136) @ (3136, 1024) when the
    long side is the rows of the result."""
    o, c, kh, kw = shape
    if o < cols.shape[1]:
        w = (cols.T @ gy_rows).reshape(kh, kw, c, o).transpose(3, 2, 0, 1)
    else:
        w = (gy_rows.T @ cols).reshape(o, kh, kw, c).transpose(0, 3, 1, 2)
    return get_xp(cols).ascontiguousarray(w)


class Conv2d(Function):
    def forward(self, x, weight, bias=None, *, stride, padding, cols=None):
        (sh, sw), (ph, pw) = self.stride, self.padding = stride, padding
        n, _, h, w = x.shape
        _, _, kh, kw = weight.shape
        oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
        if cols is None:
            cols = kernels.im2col(to_nhwc(x), kh, kw, sh, sw, ph, pw)
        self.cols = cols  # kept for the weight gradient
        return _nchw(cols @ _taps_last(weight).T, n, oh, ow, bias)

    def backward(self, g):
        x, weight = self.inputs[:2]
        g = channels_last(g)  # both gradients read g as NHWC rows: lay it out so once
        gx = gw = gb = None
        # The weight gradient first, then the columns can go before the input
        # gradient makes columns of its own, of the same size: the allocator hands
        # back the memory just freed, still in the cache (64→128 at batch 64: 14.4 →
        # 13.5 ms forward and backward; the DCGAN step 84 → 80 ms). A second
        # backward (retain_graph=True) gathers them again.
        if self.needs_grad(1):
            gw = conv2d_weight(x, g, weight.shape, self.stride, self.padding, cols=self.cols)
        self.cols = None
        if self.needs_grad(0):
            gx = conv_transpose2d(g, weight, stride=self.stride, padding=self.padding, output_size=x.shape[2:])
        if len(self.inputs) == 3 and self.needs_grad(2):
            gb = _bias_grad(g)
        return gx, gw, gb


class Conv2dWeight(Function):
    """gW[o, c, i, j] = Σ_{n, oh, ow} gy[n, o, oh, ow] · x[n, c, oh·s + i - p, ow·s + j - p]."""

    def forward(self, x, gy, weight_shape, stride, padding, cols=None):
        (sh, sw), (ph, pw) = self.stride, self.padding = stride, padding
        _, _, kh, kw = self.weight_shape = weight_shape
        if cols is None:
            cols = kernels.im2col(to_nhwc(x), kh, kw, sh, sw, ph, pw)
        return _weight_from_rows(to_nhwc(gy).reshape(-1, gy.shape[1]), cols, weight_shape)

    def backward(self, ggw):
        x, gy = self.inputs
        gx = conv_transpose2d(gy, ggw, stride=self.stride, padding=self.padding, output_size=x.shape[2:]) if self.needs_grad(0) else None
        ggy = conv2d(x, ggw, None, self.stride, self.padding) if self.needs_grad(1) else None
        return gx, ggy


class ConvTranspose2d(Function):
    def forward(self, x, weight, bias=None, *, stride, padding, output_size):
        (sh, sw), (ph, pw) = self.stride, self.padding = stride, padding
        n, c_in, h, w = x.shape
        _, c_out, kh, kw = weight.shape
        # Each input pixel scatters W[c_in] (a kh·kw·C_out patch) into the output: as
        # rows that is x·W_mat, and col2im adds the overlapping patches up.
        w_mat = _taps_last(weight)  # (C_in, kh·kw·C_out)
        cols = to_nhwc(x).reshape(-1, c_in) @ w_mat  # (N·H·W, kh·kw·C_out)
        y = kernels.col2im(cols, n, *output_size, c_out, kh, kw, sh, sw, ph, pw)
        return _nchw(y.reshape(-1, c_out), n, *output_size, bias)

    def backward(self, g):
        x, weight = self.inputs[:2]
        # Both gradients read the windows of g: gather them once.
        cols = kernels.im2col(to_nhwc(g.data), *weight.shape[2:], *self.stride, *self.padding)
        params = dict(stride=self.stride, padding=self.padding, cols=cols)
        gx = Conv2d.apply(g, weight, **params) if self.needs_grad(0) else None
        gw = conv2d_weight(g, x, weight.shape, **params) if self.needs_grad(1) else None
        gb = _bias_grad(g) if len(self.inputs) == 3 and self.needs_grad(2) else None
        return gx, gw, gb


def pair(value, name, minimum, who):
    """An int or a pair of ints, each at least ``minimum``, as a pair: e.g. a kernel
    size (at least 1), a stride (1) or a padding (0). ``who`` starts the error message."""
    try:
        values = tuple(map(operator.index, value if isinstance(value, (tuple, list)) else (value, value)))
    except TypeError:
        values = ()
    if len(values) != 2 or min(values) < minimum:
        raise ValueError(f"{who}: {name} must be an int or a pair of ints, each at least {minimum}, got {value!r}")
    return values


def check_output_padding(output_padding, stride, who):
    """A transposed convolution's output_padding picks one of the ``stride`` sizes that
    map onto its input's (see conv_transpose2d): it must be smaller than the stride."""
    if any(op >= s for op, s in zip(output_padding, stride)):
        raise ValueError(f"{who}: output_padding {output_padding} must be smaller than stride {stride}")


def check_dense(dilation, groups, who):
    """minigan's convolutions take every input channel and neighbouring pixels:
    PyTorch's dilation=1 and groups=1. Other values are refused, never ignored
    (they are in PyTorch's positions, so that a call written for PyTorch lands
    here rather than in the argument after them)."""
    if pair(dilation, "dilation", 1, who) != (1, 1):
        raise NotImplementedError(f"{who}: dilation {dilation!r} is not supported (only 1)")
    if groups != 1:
        raise NotImplementedError(f"{who}: groups={groups!r} is not supported (only 1: every input channel feeds every output channel)")


def _check_conv_input(name, x, weight_shape, in_axis):
    if x.ndim != 4:
        raise ValueError(f"{name}: expected a 4-D input (N, C, H, W), got shape {x.shape}")
    if len(weight_shape) != 4:
        raise ValueError(f"{name}: expected a 4-D weight, got shape {weight_shape}")
    if 0 in x.shape or 0 in weight_shape:
        raise ValueError(f"{name}: input of shape {x.shape} and weight of shape {weight_shape} must not be empty")
    if x.shape[1] != weight_shape[in_axis]:
        raise ValueError(
            f"{name}: input has {x.shape[1]} channels (shape {x.shape}) but the weight of shape "
            f"{weight_shape} expects {weight_shape[in_axis]}"
        )


def _check_kernel_fits(name, x, weight_shape, padding):
    """A convolution's kernel fits in its padded input (else it has no output)."""
    for axis, (size, k, p) in enumerate(zip(x.shape[2:], weight_shape[2:], padding)):
        if k > size + 2 * p:
            raise ValueError(
                f"{name}: kernel size {k} is larger than the padded input ({size} + 2·{p}) "
                f"along {'HW'[axis]} (input shape {x.shape}, weight shape {weight_shape})"
            )


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    stride, padding = pair(stride, "stride", 1, "conv2d"), pair(padding, "padding", 0, "conv2d")
    check_dense(dilation, groups, "conv2d")
    _check_conv_input("conv2d", input, weight.shape, 1)
    _check_kernel_fits("conv2d", input, weight.shape, padding)
    return Conv2d.apply(input, *with_bias("conv2d", weight, bias, 0), stride=stride, padding=padding)


def conv2d_weight(input, grad_output, weight_shape, stride=1, padding=0, cols=None):
    """The weight gradient of conv2d as an op of its own (so it can be differentiated):
    input (N, C, H, W), grad_output conv2d's output gradient (N, O, OH, OW)."""
    stride, padding = pair(stride, "stride", 1, "conv2d_weight"), pair(padding, "padding", 0, "conv2d_weight")
    weight_shape = tuple(weight_shape)
    _check_conv_input("conv2d_weight", input, weight_shape, 1)
    _check_kernel_fits("conv2d_weight", input, weight_shape, padding)
    out = tuple(conv_output_size(*a) for a in zip(input.shape[2:], weight_shape[2:], stride, padding))
    if grad_output.shape != (input.shape[0], weight_shape[0], *out):  # (else a wrong gradient, silently)
        raise ValueError(f"conv2d_weight: grad_output has shape {grad_output.shape}, expected conv2d's output "
                         f"shape {(input.shape[0], weight_shape[0], *out)} for input {input.shape} and weight {weight_shape}")
    return Conv2dWeight.apply(
        input, grad_output, weight_shape=weight_shape, stride=stride, padding=padding, cols=cols
    )


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, *,
                     output_size=None):
    stride, padding = pair(stride, "stride", 1, "conv_transpose2d"), pair(padding, "padding", 0, "conv_transpose2d")
    check_dense(dilation, groups, "conv_transpose2d")
    output_padding = pair(output_padding, "output_padding", 0, "conv_transpose2d")
    _check_conv_input("conv_transpose2d", input, weight.shape, 0)
    # A strided convolution maps `stride` neighbouring sizes onto the same size, so
    # its adjoint may give any of them: the smallest, plus output_padding (or the
    # output_size asked for) to pick among the others.
    smallest = tuple((size - 1) * s - 2 * p + k for size, s, p, k in zip(input.shape[2:], stride, padding, weight.shape[2:]))
    if output_size is None:
        check_output_padding(output_padding, stride, "conv_transpose2d")
        output_size = tuple(lo + op for lo, op in zip(smallest, output_padding))
    else:
        output_size = pair(output_size, "output_size", 1, "conv_transpose2d")
        if any(not lo <= size < lo + s for size, lo, s in zip(output_size, smallest, stride)):
            raise ValueError(
                f"conv_transpose2d: output_size {output_size} is not one of the sizes that stride {stride}, "
                f"padding {padding} and a {weight.shape[2]}×{weight.shape[3]} kernel map back to the input's "
                f"{input.shape[2]}×{input.shape[3]}: from {smallest} to {tuple(lo + s - 1 for lo, s in zip(smallest, stride))}"
            )
    if min(output_size) < 1:
        raise ValueError(f"conv_transpose2d: the output size {output_size} is not positive (input shape {input.shape})")
    return ConvTranspose2d.apply(
        input, *with_bias("conv_transpose2d", weight, bias, 1), stride=stride, padding=padding, output_size=output_size
    )
