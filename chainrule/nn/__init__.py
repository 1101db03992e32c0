"""The PyTorch face: ``import chainrule.nn as nn`` serves code written for ``torch.nn``.

Modules with PyTorch's constructor signatures, parameter names and defaults, built at
construction, on chainrule's layers and ops (``nn.Module`` is a chainrule
:class:`~chainrule.layers.Layer`); ``chainrule.nn.functional`` is ``torch.nn.functional``'s
counterpart. What is there and which defaults differ: ``docs/compat.md``.

>>> import chainrule as cr
>>> import chainrule.nn as nn
>>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
>>> model(cr.ones(3, 4)).shape, len(model.parameters())
((3, 2), 4)
"""

from chainrule.nn import functional, init
from chainrule.nn.modules import (
    GELU,
    GRU,
    LSTM,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    BCELoss,
    BCEWithLogitsLoss,
    Conv2d,
    CrossEntropyLoss,
    Dropout,
    Dropout2d,
    Embedding,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    MaxPool2d,
    Module,
    ModuleList,
    MSELoss,
    NLLLoss,
    Parameter,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)

__all__ = [
    "GELU", "GRU", "LSTM", "AvgPool2d", "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d",
    "BatchNorm2d", "Conv2d", "CrossEntropyLoss", "Dropout", "Dropout2d", "Embedding", "Flatten",
    "Identity", "LeakyReLU", "Linear", "LogSoftmax", "MSELoss", "MaxPool2d", "Module",
    "ModuleList", "NLLLoss", "Parameter", "ReLU", "Sequential", "Sigmoid", "Softmax", "Tanh",
    "functional", "init",
]
