"""Differentiable primitives. Each op is a small :class:`~chainrule.autograd.Function` subclass
plus the lowercase function users call; Tensor methods and operators call these functions."""

from chainrule.ops.elementwise import (
    abs,
    add,
    astype,
    clip,
    compare,
    div,
    exp,
    log,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    relu,
    sigmoid,
    sqrt,
    sub,
    tanh,
    to_device,
    where,
)
from chainrule.ops.linalg import matmul
from chainrule.ops.reduction import argmax, argmin, logsumexp, max, mean, min, sum, var
from chainrule.ops.shape import (
    broadcast_to,
    concat,
    expand_dims,
    flatten,
    getitem,
    pad,
    reshape,
    split,
    squeeze,
    stack,
    sum_to,
    swapaxes,
    transpose,
)


def zeros_array_tensor(shape, dtype, like):
    """A constant Tensor of zeros on the same device as the array ``like``."""
    from chainrule import backend
    from chainrule.tensor import Tensor

    return Tensor(backend.get_array_module(like).zeros(shape, dtype=dtype))


__all__ = [
    "abs", "add", "argmax", "argmin", "astype", "broadcast_to", "clip", "compare", "concat",
    "div", "exp", "expand_dims", "flatten", "getitem", "log", "logsumexp", "matmul", "max",
    "maximum", "mean", "min", "minimum", "mul", "neg", "pad", "pow", "relu", "reshape",
    "sigmoid", "split", "sqrt", "squeeze", "stack", "sub", "sum", "sum_to", "swapaxes", "tanh",
    "to_device", "transpose", "var", "where",
]
