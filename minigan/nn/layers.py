"""The layers, each a thin Module over an op in ``minigan.nn.functional``."""

import math
from collections import OrderedDict
from collections.abc import Iterable

import numpy as np

from ..backend import is_int
from ..ops.conv import check_dense, check_output_padding, pair
from ..ops.norm import check_momentum_and_eps
from ..ops.pool import check_dropout_p, pool_window, whole_scale
from ..ops.shape import _check_dims
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module, Parameter


def _param(*shape):
    return Parameter(np.empty(shape, dtype=np.float32))


def _check_sizes(layer, **sizes):
    """Numbers of features or channels are ints of at least 1."""
    for name, value in sizes.items():
        if not is_int(value) or value < 1:
            raise ValueError(f"{layer}: {name} must be an int of at least 1, got {value!r:.40}")


def _check_input(layer, x, ndims, axis, size, layout):
    """Raise a clear error naming the layer when x is not (.., size at axis, ..) with
    a number of dimensions in ``ndims``."""
    if x.ndim not in ndims or x.shape[axis] != size:
        raise ValueError(f"{layer!r}: expected input of shape {layout}, got {tuple(x.shape)}")


class Linear(Module):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        _check_sizes("Linear", in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight = _param(out_features, in_features)  # PyTorch's layout: (out, in)
        self.register_parameter("bias", _param(out_features) if bias else None)
        init.default_uniform_(self.weight, self.bias, in_features)

    def forward(self, x):
        _check_input(self, x, (2,), 1, self.in_features, f"(N, {self.in_features})")
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class _ConvNd(Module):
    transposed = False  # the weight's layout, PyTorch's: (out, in, kh, kw), or (in, out, kh, kw) when transposed

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias):
        super().__init__()
        name = type(self).__name__
        _check_sizes(name, in_channels=in_channels, out_channels=out_channels)
        self.in_channels, self.out_channels = in_channels, out_channels
        # Pairs (height, width), as PyTorch keeps them; checked here, not at the first forward.
        self.kernel_size = pair(kernel_size, "kernel_size", 1, name)
        self.stride, self.padding = pair(stride, "stride", 1, name), pair(padding, "padding", 0, name)
        check_dense(dilation, groups, name)
        channels = (in_channels, out_channels) if self.transposed else (out_channels, in_channels)
        self.weight = _param(*channels, *self.kernel_size)
        self.register_parameter("bias", _param(out_channels) if bias else None)
        init.default_uniform_(self.weight, self.bias, math.prod(self.weight.shape[1:]))  # fan-in from dim 1, as PyTorch

    def extra_repr(self):  # PyTorch's: padding and output_padding only when not 0
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
            + (f", padding={self.padding}" if any(self.padding) else "")
            + (f", output_padding={self.output_padding}" if any(getattr(self, "output_padding", ())) else "")
            + ("" if self.bias is not None else ", bias=False")
        )


class Conv2d(_ConvNd):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)

    def forward(self, x):
        _check_input(self, x, (4,), 1, self.in_channels, f"(N, {self.in_channels}, H, W)")
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)


class ConvTranspose2d(_ConvNd):
    transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1):  # PyTorch's order
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
        self.output_padding = pair(output_padding, "output_padding", 0, "ConvTranspose2d")
        check_output_padding(self.output_padding, self.stride, "ConvTranspose2d")

    def forward(self, x):
        _check_input(self, x, (4,), 1, self.in_channels, f"(N, {self.in_channels}, H, W)")
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding)


class _BatchNorm(Module):
    ndims, layout = (), ""  # the input's numbers of dimensions, and its layout for an error message
    _optional_buffers = ("num_batches_tracked",)  # see Module._optional_buffers

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__()
        name = type(self).__name__
        _check_sizes(name, num_features=num_features)
        momentum, eps = check_momentum_and_eps(momentum, eps, name)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.register_parameter("weight", Parameter(np.ones(num_features, np.float32)) if affine else None)
        self.register_parameter("bias", Parameter(np.zeros(num_features, np.float32)) if affine else None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features, np.float32)))
            self.register_buffer("running_var", Tensor(np.ones(num_features, np.float32)))
            # The training-mode forward passes so far, as PyTorch counts them (its momentum=None
            # averages with it; here it is only counted). A state dict saved before it existed
            # loads, leaving it as it is (see Module.load_state_dict).
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, np.int64)))
        else:  # no running statistics: the batch's own, in eval mode too (as in PyTorch)
            for buffer in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(buffer, None)

    def forward(self, x):
        _check_input(self, x, self.ndims, 1, self.num_features, self.layout.replace("C", str(self.num_features)))
        y = F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias,
            training=self.training or not self.track_running_stats, momentum=self.momentum, eps=self.eps,
        )
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
        return y

    def extra_repr(self):  # PyTorch's
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    ndims, layout = (2, 3), "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    ndims, layout = (4,), "(N, C, H, W)"


class _Activation(Module):
    fn = None

    def forward(self, x):
        return type(self).fn(x)


class ReLU(_Activation):
    fn = staticmethod(F.relu)


class Tanh(_Activation):
    fn = staticmethod(F.tanh)


class Sigmoid(_Activation):
    fn = staticmethod(F.sigmoid)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dimension ``dim`` into ``unflattened_size``, e.g. (N, 6272) -> (N, 128, 7, 7)."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)
        _check_sizes("Unflatten", **{f"unflattened_size[{i}]": n for i, n in enumerate(self.unflattened_size)})

    def forward(self, x):
        _check_dims(repr(self), x, self.dim)  # (dim % ndim would split another dimension)
        d = self.dim % x.ndim
        size = math.prod(self.unflattened_size)
        if x.shape[d] != size:
            raise ValueError(f"{self!r}: expected dimension {self.dim} of size {size}, got input of shape {tuple(x.shape)}")
        return x.reshape(x.shape[:d] + self.unflattened_size + x.shape[d + 1 :])

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None):
        super().__init__()
        pool_window(kernel_size, stride, "AvgPool2d")  # checked here, not at the first forward
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self):  # (stride None is the kernel's size, as PyTorch prints it)
        return f"kernel_size={self.kernel_size}, stride={self.kernel_size if self.stride is None else self.stride}"


class Upsample(Module):
    """PyTorch's argument order: ``Upsample(size)`` or ``Upsample(scale_factor=2)``."""

    def __init__(self, size=None, scale_factor=None, mode="nearest"):
        super().__init__()
        if mode != "nearest":
            raise ValueError(f"Upsample supports mode='nearest' only, got {mode!r}")
        if (size is None) == (scale_factor is None):
            raise ValueError("Upsample: give exactly one of size and scale_factor")
        if size is None:  # checked here, not at the first forward
            whole_scale(scale_factor, "Upsample")
        else:
            pair(size, "size", 1, "Upsample")
        self.size, self.scale_factor = size, scale_factor

    def forward(self, x):
        return F.interpolate(x, self.size, self.scale_factor)

    def extra_repr(self):
        size = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{size}, mode='nearest'"


class Dropout(Module):
    def __init__(self, p=0.5):
        super().__init__()
        self.p = check_dropout_p(p, "Dropout")

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class _Container(Module):
    """What Sequential and ModuleList share: their modules in order, as a list gives them."""

    def _position(self, i):
        """Index ``i`` (an int, counting from the end when negative) as a position 0, 1, ..."""
        n = len(self._modules)
        if not is_int(i):
            raise TypeError(f"{type(self).__name__}: expected an int index (or, to read, a slice), got {i!r:.40}")
        if not -n <= i < n:
            raise IndexError(f"{type(self).__name__}: index {i} is out of range for {n} modules")
        return i % n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self._sliced(list(self._modules.items())[i])
        return list(self._modules.values())[self._position(i)]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Sequential(_Container):
    """Modules run one after the other: ``Sequential(a, b, c)``, named "0", "1", "2",
    or ``Sequential(OrderedDict(name=module, ...))`` with names of one's own."""

    def __init__(self, *layers):
        super().__init__()
        named = layers[0].items() if len(layers) == 1 and isinstance(layers[0], OrderedDict) else enumerate(layers)
        for name, layer in named:
            self.add_module(str(name), layer)

    @staticmethod
    def _sliced(items):  # a Sequential of those layers, under their names
        return Sequential(OrderedDict(items))

    def forward(self, x):
        for layer in self:
            x = layer(x)
        return x


class ModuleList(_Container):
    """A list of modules whose parameters the module holding it owns, named "0", "1", ...
    (a plain Python list hides them from parameters() and state_dict()). It has no
    forward: the module holding it decides how to run them."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    @staticmethod
    def _sliced(items):  # a ModuleList of those modules, numbered from 0 again
        return ModuleList(module for _, module in items)

    def __setitem__(self, i, module):
        self.add_module(str(self._position(i)), module)

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        if not isinstance(modules, Iterable):
            raise TypeError(f"ModuleList.extend: expected an iterable of modules, got a {type(modules).__name__}")
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        """Put ``module`` before position ``index``, as list.insert does; the modules
        after it are numbered one higher."""
        modules = list(self)
        modules.insert(index, module)
        for i, m in enumerate(modules):
            self.add_module(str(i), m)
