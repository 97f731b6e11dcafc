"""Properties over random shapes and hyper-parameters (hypothesis): for convolution,
transposed convolution, batch norm and the broadcasting ops, the gradients pass
gradcheck and the output shapes follow PyTorch's documented formulas.

The sizes stay small (batches of 1 or 2, a few channels, images up to 5×5) so that
every example checks in milliseconds."""

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigan.gradcheck import gradcheck
from minigan.nn import functional as F
from minigan.tensor import Tensor

# Derandomised: each test draws the same examples on every run, so a failure repeats.
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)

small = st.integers(1, 2)  # batch sizes and channel counts, down to 1
sizes = st.integers(1, 5)  # image heights and widths
kernels = st.integers(1, 3)
strides = st.integers(1, 3)
paddings = st.integers(0, 2)


def randn(seed, *shape):
    return Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


# PyTorch's formulas (torch.nn.Conv2d and ConvTranspose2d docs, dilation 1), per axis:
def conv2d_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def conv_transpose2d_size(size, kernel, stride, padding, output_padding):
    return (size - 1) * stride - 2 * padding + kernel + output_padding


def broadcast_shape(a, b):
    """NumPy's and PyTorch's rule: align the shapes on the right; each pair of sizes
    must be equal or contain a 1, and the result takes the larger."""
    a, b = (1,) * (len(b) - len(a)) + a, (1,) * (len(a) - len(b)) + b
    assert all(m == n or 1 in (m, n) for m, n in zip(a, b))
    return tuple(max(m, n) for m, n in zip(a, b))


@SETTINGS
@given(n=small, c_in=small, c_out=small, h=sizes, w=sizes, kh=kernels, kw=kernels,
       stride=st.tuples(strides, strides), padding=st.tuples(paddings, paddings),
       bias=st.booleans(), seed=st.integers(0, 2**16))
def test_conv2d(n, c_in, c_out, h, w, kh, kw, stride, padding, bias, seed):
    assume(h + 2 * padding[0] >= kh and w + 2 * padding[1] >= kw)
    x, weight, b = randn(seed, n, c_in, h, w), randn(seed + 1, c_out, c_in, kh, kw), randn(seed + 2, c_out)
    inputs = (x, weight, b) if bias else (x, weight)

    def conv(x, weight, b=None):
        return F.conv2d(x, weight, b, stride=stride, padding=padding)

    expected = (n, c_out, conv2d_size(h, kh, stride[0], padding[0]), conv2d_size(w, kw, stride[1], padding[1]))
    assert conv(*inputs).shape == expected
    assert gradcheck(conv, *inputs)


@SETTINGS
@given(n=small, c_in=small, c_out=small, h=st.integers(1, 4), w=st.integers(1, 4), kh=kernels, kw=kernels,
       stride=st.tuples(strides, strides), padding=st.tuples(paddings, paddings),
       data=st.data(), seed=st.integers(0, 2**16))
def test_conv_transpose2d(n, c_in, c_out, h, w, kh, kw, stride, padding, data, seed):
    # output_padding < stride: it picks one of the `stride` sizes that conv2d maps to h.
    output_padding = tuple(data.draw(st.integers(0, s - 1)) for s in stride)
    expected = (n, c_out, conv_transpose2d_size(h, kh, stride[0], padding[0], output_padding[0]),
                conv_transpose2d_size(w, kw, stride[1], padding[1], output_padding[1]))
    assume(min(expected[2:]) >= 1)
    x, weight, b = randn(seed, n, c_in, h, w), randn(seed + 1, c_in, c_out, kh, kw), randn(seed + 2, c_out)

    def conv_t(x, weight, b):
        return F.conv_transpose2d(x, weight, b, stride=stride, padding=padding, output_padding=output_padding)

    assert conv_t(x, weight, b).shape == expected
    assert gradcheck(conv_t, x, weight, b)


@SETTINGS
@given(n=st.integers(1, 4), c=small, spatial=st.sampled_from([(), (1, 1), (1, 3), (2, 2)]),
       training=st.booleans(), seed=st.integers(0, 2**16))
def test_batch_norm(n, c, spatial, training, seed):
    shape = (n, c) + spatial
    assume(not training or n * int(np.prod(spatial)) >= 2)  # batch statistics need two values a channel
    x, gamma, beta = randn(seed, *shape), randn(seed + 1, c), randn(seed + 2, c)
    rng = np.random.default_rng(seed + 3)
    running_mean, running_var = Tensor(rng.standard_normal(c)), Tensor(rng.uniform(0.5, 2, c))

    def bn(x, gamma, beta):
        # Training updates the running statistics in place: give each call fresh copies.
        return F.batch_norm(x, Tensor(running_mean.data.copy()), Tensor(running_var.data.copy()), gamma, beta,
                            training=training)

    assert bn(x, gamma, beta).shape == shape
    assert gradcheck(bn, x, gamma, beta)


OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 0.5),  # away from division by 0
    "pow": lambda a, b: (a * a + 0.5) ** b,  # a positive base
}


@SETTINGS
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       op=st.sampled_from(sorted(OPS)), seed=st.integers(0, 2**16))
def test_broadcasting_ops(shapes, op, seed):
    (shape_a, shape_b), _ = shapes
    a, b = randn(seed, *shape_a), randn(seed + 1, *shape_b)
    assert OPS[op](a, b).shape == broadcast_shape(shape_a, shape_b)
    assert gradcheck(OPS[op], a, b)


@SETTINGS
@given(batch=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=2),
       n=small, k=st.integers(1, 3), m=small, seed=st.integers(0, 2**16))
def test_batched_matmul_broadcasts_its_leading_axes(batch, n, k, m, seed):
    (batch_a, batch_b), batch_out = batch
    a, b = randn(seed, *batch_a, n, k), randn(seed + 1, *batch_b, k, m)
    assert (a @ b).shape == broadcast_shape(batch_a, batch_b) + (n, m)
    assert gradcheck(lambda a, b: a @ b, a, b)
