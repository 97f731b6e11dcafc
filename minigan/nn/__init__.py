"""Layers and their functional forms (``minigan.nn.functional``), in PyTorch's shape."""

from . import functional, init  # noqa: F401
from .layers import (  # noqa: F401
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Dropout,
    Flatten,
    LeakyReLU,
    Linear,
    ModuleList,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
    Unflatten,
    Upsample,
)
from .module import Module, Parameter  # noqa: F401
