"""Channels-last images: (N, C, H, W) arrays whose memory is laid out (N, H, W, C).

A convolution computes in NHWC (the C channels of a pixel side by side: see
conv.py), so its result is NHWC memory. Instead of copying it back to NCHW, it
is handed on as an (N, C, H, W) view of that memory, as PyTorch does with its
``torch.channels_last`` memory format: shapes and indexing stay NCHW everywhere,
only the strides differ. NumPy's elementwise ops keep their input's layout, and
the kernels take either (leaky ReLU runs in memory order, batch norm reads rows
of channels), so the next convolution finds NHWC memory again and needs no copy.
(CuPy's elementwise ops return C-ordered arrays, so on a GPU a convolution after
one of them copies its input to NHWC again: the same values, one copy more.)
"""

import kernels

from ..autograd import Function


def is_channels_last(a):
    """Whether the (N, C, H, W) array a lies in memory as (N, H, W, C) (with one
    channel, or 1×1 images, an NCHW array does too)."""
    return a.ndim == 4 and a.transpose(0, 2, 3, 1).flags.c_contiguous


def to_nhwc(a):
    """(N, C, H, W) -> (N, H, W, C), C-contiguous: a view of channels-last memory, else a copy."""
    if is_channels_last(a):
        return a.transpose(0, 2, 3, 1)
    return kernels.nchw_to_nhwc(a)


def from_nhwc(a):
    """(N, H, W, C) -> the (N, C, H, W) view of the same memory (channels-last)."""
    return a.transpose(0, 3, 1, 2)


class ChannelsLast(Function):
    """The same values laid out channels-last (PyTorch's
    ``x.contiguous(memory_format=torch.channels_last)``): a copy whose gradient
    passes through unchanged."""

    def forward(self, x):
        return from_nhwc(to_nhwc(x))

    def backward(self, g):
        return (g,)


def channels_last(x):
    """x itself if it is channels-last already, else a channels-last copy."""
    return x if is_channels_last(x.data) else ChannelsLast.apply(x)
