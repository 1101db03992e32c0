"""chainrule: a readable deep-learning framework on NumPy.

The engine has PyTorch's semantics (``Tensor``, ``loss.backward()``, ``no_grad()``); the
high-level API has Keras's names (``Sequential``, ``compile``, ``fit``), and
``import chainrule as keras`` runs Keras 3 code (docs/compat.md)::

    >>> import chainrule as cr
    >>> x, y, z = (cr.tensor(v, requires_grad=True) for v in (-2.0, 5.0, -4.0))
    >>> f = (x + y) * z
    >>> f.backward()
    >>> x.grad.item(), y.grad.item(), z.grad.item()
    (-4.0, -4.0, 3.0)
"""

from chainrule._config import (
    enable_grad,
    get_default_dtype,
    is_grad_enabled,
    no_grad,
    set_default_dtype,
)
from chainrule.autograd import Function, grad
from chainrule.backend import cuda_available
from chainrule.creation import (
    arange,
    eye,
    full,
    ones,
    ones_like,
    rand,
    randn,
    zeros,
    zeros_like,
)
from chainrule.ops import (
    abs,
    argmax,
    argmin,
    broadcast_to,
    clip,
    concat,
    exp,
    expand_dims,
    flatten,
    log,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    pad,
    relu,
    reshape,
    sigmoid,
    split,
    sqrt,
    squeeze,
    stack,
    sum,
    tanh,
    transpose,
    var,
    where,
)
from chainrule.random import manual_seed
from chainrule.tensor import Tensor, tensor
from chainrule.testing.gradcheck import gradcheck

__version__ = "0.1.0"

# Subpackages load on first use (PEP 562), so ``import chainrule`` stays quick and
# ``cr.layers.Dense`` works without importing chainrule.layers first.
_SUBMODULES = (
    "activations", "autograd", "backend", "callbacks", "data", "datasets", "functional",
    "initializers", "layers", "losses", "metrics", "models", "ops", "optimizers", "plot",
    "config", "regularizers", "testing", "utils", "nn", "optim", "viz", "graph",
    "distributed",
)

# Keras 3's top-level names, so that ``import chainrule as keras`` serves Keras code
# (``keras.Sequential``, ``keras.Input``, ``keras.Model(inputs, outputs)``); looked up on first
# use like the subpackages, since chainrule.models imports this package.
_KERAS_NAMES = {
    "Sequential": "chainrule.models", "Model": "chainrule.models", "Input": "chainrule.models",
    "InputLayer": "chainrule.models", "KerasTensor": "chainrule.models",
    "Layer": "chainrule.layers", "InputSpec": "chainrule.layers", "Loss": "chainrule.losses",
    # PyTorch's: chainrule.save(model.state_dict(), "m.npz"), chainrule.load("m.npz")
    "save": "chainrule.nn.serialization", "load": "chainrule.nn.serialization",
    "Metric": "chainrule.metrics", "Optimizer": "chainrule.optimizers",
    "Initializer": "chainrule.initializers", "Regularizer": "chainrule.regularizers",
    "jit": "chainrule.graph.jit",  # trace once, replay (chainrule.jit(fn))
}


def __getattr__(name):
    import importlib

    if name in _SUBMODULES:
        return importlib.import_module(f"chainrule.{name}")
    if name in _KERAS_NAMES:
        return getattr(importlib.import_module(_KERAS_NAMES[name]), name)
    raise AttributeError(f"module 'chainrule' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES) + list(_KERAS_NAMES))

__all__ = [
    "Function", "Tensor", "abs", "arange", "argmax", "argmin", "broadcast_to", "clip", "concat",
    "cuda_available", "enable_grad", "exp", "expand_dims", "eye", "flatten", "full",
    "get_default_dtype", "grad", "gradcheck", "is_grad_enabled", "log", "logsumexp",
    "manual_seed", "matmul", "max", "maximum", "mean", "min", "minimum", "no_grad", "ones",
    "ones_like", "pad", "rand", "randn", "relu", "reshape", "set_default_dtype", "sigmoid",
    "split", "sqrt", "squeeze", "stack", "sum", "tanh", "tensor", "transpose", "var", "where",
    "zeros", "zeros_like",
]
