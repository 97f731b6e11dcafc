"""2-D convolution and its adjoint, the transposed convolution, on im2col + GEMM.

Shapes (PyTorch's layouts): input x (N, C, H, W); conv weight (O, C, kh, kw);
transposed-conv weight (C_in, C_out, kh, kw). ``kernels.im2col`` gathers every
kh×kw window of x into a row, channels last, so a convolution is one matrix
product:

    cols = im2col(x as NHWC)                   (N·OH·OW, C·kh·kw)
    y    = cols @ W.reshape(O, C·kh·kw)ᵀ   ->  (N·OH·OW, O), i.e. NHWC  ->  (N, O, OH, OW)

``kernels.col2im`` is im2col's adjoint (it sums every column entry back onto the
pixel it came from). The three ops below are each other's gradients:

    conv2d            d/dx = conv_transpose2d(gy, W)     d/dW = conv2d_weight(x, gy)
    conv_transpose2d  d/dx = conv2d(gy, W)               d/dW = conv2d_weight(gy, x)
    conv2d_weight     d/dx = conv_transpose2d(gy, gW')   d/dgy = conv2d(x, gW')

so every gradient is again made of these ops, and double backward comes for free.
"""

import kernels

from ..autograd import Function
from ..backend import get_xp


def conv_output_size(size, k, s, p):
    """How many windows of size k, stride s, fit in size + 2p (PyTorch's formula)."""
    return (size + 2 * p - k) // s + 1


def _nhwc(x):
    """(N, C, H, W) -> (N, H, W, C), C-contiguous: the channels of a pixel side by side."""
    return get_xp(x).ascontiguousarray(x.transpose(0, 2, 3, 1))


def _nchw(rows, n, h, w):
    """(N·H·W, C) or (N, H, W, C) -> (N, C, H, W), C-contiguous."""
    return get_xp(rows).ascontiguousarray(rows.reshape(n, h, w, -1).transpose(0, 3, 1, 2))


def _wide_product(a, b):
    """a @ b for a result that is copied into another layout next (so any layout will do).

    Computed as (bᵀ·aᵀ)ᵀ when the result would be wide (fewer rows than columns):
    OpenBLAS is several times faster on these shapes, e.g. (128, 3136) @ (3136, 1024),
    when the long side is the rows of the result."""
    return (b.T @ a.T).T if a.shape[0] < b.shape[1] else a @ b


# Up to this many multiply-adds per sample, a convolution's product is bound by
# memory traffic, not arithmetic (e.g. the DCGAN's layers with one channel on one
# side): there one product per sample, e.g. (O, K) @ (K, OH·OW) for n = 0..N-1,
# reading and writing the NCHW arrays as they are, beats one large product and a
# transposing copy (1.7-2.5x at batch 64). Larger products run faster as one.
PER_SAMPLE_MAX_MACS = 1 << 21


def _per_sample(rows, inner, cols):
    """Whether a (rows, inner) @ (inner, cols) product per sample is small enough."""
    return rows * inner * cols <= PER_SAMPLE_MAX_MACS


class Conv2d(Function):
    def forward(self, x, weight, stride, padding, cols=None):
        (sh, sw), (ph, pw) = self.stride, self.padding = stride, padding
        n, _, h, w = x.shape
        o, _, kh, kw = weight.shape
        oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
        if cols is None:
            cols = kernels.im2col(_nhwc(x), kh, kw, sh, sw, ph, pw)
        self.cols = cols  # kept for the weight gradient
        w_mat = weight.reshape(o, -1)  # (O, C·kh·kw)
        if _per_sample(o, cols.shape[1], oh * ow):
            # y[n] = W @ (the rows of sample n)ᵀ: (O, C·kh·kw) @ (C·kh·kw, OH·OW), already NCHW
            per_sample = cols.reshape(n, oh * ow, -1).transpose(0, 2, 1)
            return get_xp(w_mat).matmul(w_mat, per_sample).reshape(n, o, oh, ow)
        return _nchw(cols @ w_mat.T, n, oh, ow)

    def backward(self, g):
        x, weight = self.inputs
        gx = gw = None
        if self.needs_grad(0):
            gx = conv_transpose2d(g, weight, stride=self.stride, padding=self.padding, output_size=x.shape[2:])
        if self.needs_grad(1):
            gw = conv2d_weight(x, g, weight.shape, self.stride, self.padding, cols=self.cols)
        return gx, gw


class Conv2dWeight(Function):
    """gW[o, c, i, j] = Σ_{n, oh, ow} gy[n, o, oh, ow] · x[n, c, oh·s + i - p, ow·s + j - p]."""

    def forward(self, x, gy, weight_shape, stride, padding, cols=None):
        (sh, sw), (ph, pw) = self.stride, self.padding = stride, padding
        _, _, kh, kw = self.weight_shape = weight_shape
        if cols is None:
            cols = kernels.im2col(_nhwc(x), kh, kw, sh, sw, ph, pw)
        n, o, oh, ow = gy.shape
        if _per_sample(o, oh * ow, cols.shape[1]):
            # Σ_n gy[n] (O, OH·OW) @ (the rows of sample n) (OH·OW, C·kh·kw), gy read as it is.
            # The rows go in as the transpose of a (C·kh·kw, OH·OW) array per sample:
            # OpenBLAS adds up small products in an order that depends on how the
            # operands lie in memory, and in this layout training reproduces the
            # figures in docs/results.md bit for bit (a GAN's training is chaotic:
            # a difference in the last bit of one gradient gives another run).
            xp = get_xp(gy)
            per_sample = xp.ascontiguousarray(cols.reshape(n, oh * ow, -1).transpose(0, 2, 1)).transpose(0, 2, 1)
            gw = xp.matmul(gy.reshape(n, o, oh * ow), per_sample).sum(0)
        else:
            # gyᵀ (O, N·OH·OW) @ cols (N·OH·OW, C·kh·kw)
            gw = _wide_product(_nhwc(gy).reshape(-1, o).T, cols)
        return gw.reshape(weight_shape)

    def backward(self, ggw):
        x, gy = self.inputs
        gx = conv_transpose2d(gy, ggw, stride=self.stride, padding=self.padding, output_size=x.shape[2:]) if self.needs_grad(0) else None
        ggy = conv2d(x, ggw, None, self.stride, self.padding) if self.needs_grad(1) else None
        return gx, ggy


class ConvTranspose2d(Function):
    def forward(self, x, weight, stride, padding, output_size):
        (sh, sw), (ph, pw) = self.stride, self.padding = stride, padding
        n, c_in, h, w = x.shape
        _, c_out, kh, kw = weight.shape
        # Each input pixel scatters W[c_in] (a C_out·kh·kw patch) into the output: as
        # rows that is x·W, and col2im adds the overlapping patches up.
        w_mat = weight.reshape(c_in, -1)  # (C_in, C_out·kh·kw)
        if _per_sample(h * w, *w_mat.shape):
            # the rows of sample n = x[n]ᵀ @ W: (H·W, C_in) @ (C_in, C_out·kh·kw), x read as it is
            cols = get_xp(x).matmul(x.reshape(n, c_in, h * w).transpose(0, 2, 1), w_mat)
        else:
            cols = _nhwc(x).reshape(-1, c_in) @ w_mat  # (N·H·W, C_out·kh·kw)
        y = kernels.col2im(cols.reshape(n * h * w, -1), n, *output_size, c_out, kh, kw, sh, sw, ph, pw)
        return _nchw(y, n, *output_size)

    def backward(self, g):
        x, weight = self.inputs
        # Both gradients read the windows of g: gather them once.
        cols = kernels.im2col(_nhwc(g.data), *weight.shape[2:], *self.stride, *self.padding)
        params = dict(stride=self.stride, padding=self.padding, cols=cols)
        gx = Conv2d.apply(g, weight, **params) if self.needs_grad(0) else None
        gw = conv2d_weight(g, x, weight.shape, **params) if self.needs_grad(1) else None
        return gx, gw


def pair(value, name):
    """An int or a pair of ints as a pair, e.g. a kernel size, stride or padding."""
    values = (value, value) if isinstance(value, int) else tuple(value)
    if len(values) != 2 or not all(isinstance(v, int) for v in values):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return values


def _check_conv_input(name, x, weight, in_axis):
    if x.ndim != 4:
        raise ValueError(f"{name}: expected a 4-D input (N, C, H, W), got shape {x.shape}")
    if weight.ndim != 4:
        raise ValueError(f"{name}: expected a 4-D weight, got shape {weight.shape}")
    if x.shape[1] != weight.shape[in_axis]:
        raise ValueError(
            f"{name}: input has {x.shape[1]} channels (shape {x.shape}) but the weight of shape "
            f"{weight.shape} expects {weight.shape[in_axis]}"
        )


def _add_bias(y, bias, name):
    if bias is None:
        return y
    if bias.shape != (y.shape[1],):
        raise ValueError(f"{name}: bias of shape {bias.shape}, expected ({y.shape[1]},)")
    return y + bias.reshape(1, -1, 1, 1)


def conv2d(input, weight, bias=None, stride=1, padding=0):
    stride, padding = pair(stride, "stride"), pair(padding, "padding")
    _check_conv_input("conv2d", input, weight, 1)
    for axis, (size, k, p) in enumerate(zip(input.shape[2:], weight.shape[2:], padding)):
        if k > size + 2 * p:
            raise ValueError(
                f"conv2d: kernel size {k} is larger than the padded input ({size} + 2·{p}) "
                f"along {'HW'[axis]} (input shape {input.shape}, weight shape {weight.shape})"
            )
    return _add_bias(Conv2d.apply(input, weight, stride=stride, padding=padding), bias, "conv2d")


def conv2d_weight(input, grad_output, weight_shape, stride=1, padding=0, cols=None):
    """The weight gradient of conv2d as an op of its own (so it can be differentiated)."""
    stride, padding = pair(stride, "stride"), pair(padding, "padding")
    return Conv2dWeight.apply(
        input, grad_output, weight_shape=tuple(weight_shape), stride=stride, padding=padding, cols=cols
    )


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, output_size=None):
    stride, padding = pair(stride, "stride"), pair(padding, "padding")
    output_padding = pair(output_padding, "output_padding")
    _check_conv_input("conv_transpose2d", input, weight, 0)
    if output_size is None:
        # The size whose convolution gives back the input size, plus output_padding
        # to pick among the sizes a strided convolution maps to the same size.
        for op, s in zip(output_padding, stride):
            if not 0 <= op < s:
                raise ValueError(f"conv_transpose2d: output_padding {output_padding} must be smaller than stride {stride}")
        output_size = tuple(
            (size - 1) * s - 2 * p + k + op
            for size, s, p, k, op in zip(input.shape[2:], stride, padding, weight.shape[2:], output_padding)
        )
    output_size = tuple(output_size)
    if min(output_size) < 1:
        raise ValueError(f"conv_transpose2d: the output size {output_size} is not positive (input shape {input.shape})")
    y = ConvTranspose2d.apply(input, weight, stride=stride, padding=padding, output_size=output_size)
    return _add_bias(y, bias, "conv_transpose2d")
