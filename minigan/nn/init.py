"""Weight initialisers. They draw from minigan's seeded generator (``mg.manual_seed``)."""

import math

import numpy as np

from ..backend import check_number, to_device
from ..random import default_generator
from ..tensor import Tensor


def _check_tensor(tensor, who):
    if not isinstance(tensor, Tensor):
        # PyTorch's m.weight.data is a tensor; here it is the raw array (NumPy's or
        # CuPy's ndarray), and a change made through it would escape the tensor's
        # count of in-place changes (see Tensor.changed_in_place).
        hint = "; pass the tensor (m.weight), not its array m.weight.data" if type(tensor).__name__ == "ndarray" else ""
        raise TypeError(f"nn.init.{who}: expected a Tensor, got a {type(tensor).__name__}{hint}")


def _fill(tensor, values):
    """Write ``values`` (a NumPy array of the tensor's shape, or one number) into a
    tensor on any device, in place."""
    tensor.data[...] = to_device(np.asarray(values, tensor.dtype), tensor.device)
    tensor.changed_in_place()
    return tensor


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    _check_tensor(tensor, "normal_")
    mean, std = check_number(mean, "mean", "nn.init.normal_"), check_number(std, "std", "nn.init.normal_")
    if not std >= 0:  # (NaN fails too, as in PyTorch)
        raise ValueError(f"nn.init.normal_: std must be 0 or more, got {std}")
    return _fill(tensor, (generator or default_generator()).normal(mean, std, tensor.shape))


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    _check_tensor(tensor, "uniform_")
    a, b = check_number(a, "a", "nn.init.uniform_"), check_number(b, "b", "nn.init.uniform_")
    if not a <= b:
        raise ValueError(f"nn.init.uniform_: expected a <= b (values drawn from [a, b)), got a={a}, b={b}")
    return _fill(tensor, (generator or default_generator()).uniform(a, b, tensor.shape))


def constant_(tensor, val):
    _check_tensor(tensor, "constant_")
    return _fill(tensor, check_number(val, "val", "nn.init.constant_"))


def zeros_(tensor):
    _check_tensor(tensor, "zeros_")
    return _fill(tensor, 0)


def ones_(tensor):
    _check_tensor(tensor, "ones_")
    return _fill(tensor, 1)


def default_uniform_(weight, bias, fan_in, generator=None):
    """PyTorch's default for Linear and Conv: U(-1/√fan_in, 1/√fan_in) for weight and bias."""
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
    uniform_(weight, -bound, bound, generator)
    if bias is not None:
        uniform_(bias, -bound, bound, generator)


def dcgan_init_(module, std=0.02, generator=None):
    """The DCGAN paper's initialisation, for every layer inside ``module``:
    Linear and (transposed) conv weights ~ N(0, std) with zero biases; batch-norm
    scale γ ~ N(1, std) and shift β = 0."""
    from .layers import BatchNorm1d, BatchNorm2d, Conv2d, ConvTranspose2d, Linear

    for m in module.modules():
        if isinstance(m, (Linear, Conv2d, ConvTranspose2d)):
            normal_(m.weight, 0.0, std, generator)
            if m.bias is not None:
                zeros_(m.bias)
        elif isinstance(m, (BatchNorm1d, BatchNorm2d)) and m.weight is not None:
            normal_(m.weight, 1.0, std, generator)
            zeros_(m.bias)
    return module
