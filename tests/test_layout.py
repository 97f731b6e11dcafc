"""Channels-last images between layers (minigan/ops/layout.py): a convolution hands
on a view of its NHWC result, batch norm and leaky ReLU keep that layout, and the
next convolution reads it without a copy, all with the values of NCHW arrays."""

import numpy as np
import pytest

import minigan as mg
from minigan import models
from minigan.nn import functional as F
from minigan.ops.layout import from_nhwc, is_channels_last, to_nhwc


def _nchw_copy(t):
    """t with its values copied into NCHW memory, still in the graph (the first
    reshape of a channels-last array copies in C order)."""
    return t.reshape(t.shape[0], -1).reshape(t.shape)


def test_layout_helpers():
    a = np.arange(2 * 3 * 4 * 5.0).reshape(2, 3, 4, 5)
    assert not is_channels_last(a)
    b = from_nhwc(to_nhwc(a))
    assert is_channels_last(b) and np.shares_memory(to_nhwc(b), b)  # to_nhwc of channels-last: no copy
    np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
def test_convolutions_return_channels_last_views(op):
    rng = np.random.default_rng(0)
    x = mg.Tensor(rng.standard_normal((2, 3, 6, 6)))
    if op == "conv2d":
        y = F.conv2d(x, mg.Tensor(rng.standard_normal((4, 3, 3, 3))), mg.Tensor(rng.standard_normal(4)), stride=2, padding=1)
    else:
        y = F.conv_transpose2d(x, mg.Tensor(rng.standard_normal((3, 4, 4, 4))), mg.Tensor(rng.standard_normal(4)), stride=2, padding=1)
    assert is_channels_last(y.data)


def test_a_leaf_image_gets_its_own_channels_last_gradient():
    # conv2d's input gradient is a channels-last view of col2im's NHWC result; the
    # leaf's .grad is a copy of it (a view may be shared) in the same memory order:
    # a straight copy, not a transposing one.
    rng = np.random.default_rng(0)
    x = mg.Tensor(rng.standard_normal((2, 3, 6, 6)), requires_grad=True)
    weight = mg.Tensor(rng.standard_normal((4, 3, 3, 3)))
    (view,) = mg.grad(F.conv2d(x, weight, stride=2, padding=1).sum(), x)  # grad() hands the array on as it is
    assert is_channels_last(view.data) and view.data.base is not None
    F.conv2d(x, weight, stride=2, padding=1).sum().backward()
    assert is_channels_last(x.grad) and x.grad.base is None
    np.testing.assert_array_equal(x.grad, view.data)


def test_a_block_keeps_channels_last_and_matches_nchw():
    # conv -> BN -> leaky ReLU -> conv, once as minigan runs it and once with every
    # intermediate copied to NCHW: the same values and gradients (float64).
    rng = np.random.default_rng(1)
    x = mg.Tensor(rng.standard_normal((4, 3, 8, 8)), requires_grad=True)
    w1, w2 = (mg.Tensor(rng.standard_normal(s) * 0.3, requires_grad=True) for s in ((6, 3, 4, 4), (5, 6, 3, 3)))
    gamma, beta = mg.Tensor(rng.uniform(0.5, 1.5, 6), requires_grad=True), mg.Tensor(rng.standard_normal(6), requires_grad=True)

    def block(to_nchw):
        h = to_nchw(F.conv2d(x, w1, stride=2, padding=1))
        h = to_nchw(F.batch_norm(h, None, None, gamma, beta, training=True))
        h = to_nchw(F.leaky_relu(h, 0.2))
        return h, F.conv2d(h, w2, padding=1)

    h, y = block(lambda t: t)
    assert is_channels_last(h.data) and is_channels_last(y.data)
    (y * y).sum().backward()
    grads = [t.grad for t in (x, w1, w2, gamma, beta)]
    for t in (x, w1, w2, gamma, beta):
        t.grad = None
    h_ref, y_ref = block(_nchw_copy)
    assert not is_channels_last(h_ref.data) and h_ref.data.flags.c_contiguous
    np.testing.assert_allclose(y.data, y_ref.data, rtol=1e-12, atol=1e-12)
    (y_ref * y_ref).sum().backward()
    for got, t in zip(grads, (x, w1, w2, gamma, beta)):
        np.testing.assert_allclose(got, t.grad, rtol=1e-10, atol=1e-10)


def test_discriminator_passes_channels_last_between_its_convolutions(monkeypatch):
    # Count the NCHW -> NHWC copies: only D's input (NCHW, from the data) is copied.
    copies = []
    real_to_nhwc = mg.ops.conv.to_nhwc

    def counting_to_nhwc(a):
        copies.append(not is_channels_last(a) and a.shape[1] > 1)
        return real_to_nhwc(a)

    monkeypatch.setattr(mg.ops.conv, "to_nhwc", counting_to_nhwc)
    D = models.dcgan_discriminator(width=4, depth=3)
    D(mg.randn(2, 1, 28, 28))
    assert len(copies) == 3 and not any(copies)


def test_conv_backward_lays_out_an_nchw_gradient_once(monkeypatch):
    # Both of conv2d's gradients read the output gradient as NHWC rows; an NCHW
    # gradient is copied once for both, and the copy passes double backward.
    rng = np.random.default_rng(2)
    x = mg.Tensor(rng.standard_normal((2, 3, 6, 6)), requires_grad=True)
    w = mg.Tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    y = F.conv2d(x, w, stride=2, padding=1)
    copies = []
    real_to_nhwc = mg.ops.conv.to_nhwc
    monkeypatch.setattr(mg.ops.conv, "to_nhwc", lambda a: copies.append(is_channels_last(a)) or real_to_nhwc(a))
    gy = mg.Tensor(rng.standard_normal(y.shape))  # NCHW
    gx, gw = mg.grad(y, [x, w], gy, create_graph=True)
    assert copies and all(copies)  # every to_nhwc in the backward found NHWC memory
    assert gx.requires_grad and gw.requires_grad
