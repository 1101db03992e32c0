"""Reductions over axes: sum, mean, var, max, min, logsumexp, argmax, argmin.

Every reduction takes ``axis`` (None for all axes, an int, or a tuple) and ``keepdims``, with
NumPy's meaning. Backward reshapes the upstream gradient to the ``keepdims`` shape and broadcasts
it back over the reduced axes.
"""

from __future__ import annotations

import builtins

from chainrule import backend
from chainrule._config import flags
from chainrule.autograd.function import Function, constant
from chainrule.ops._util import as_tensor, kept_shape, normalize_axis
from chainrule.tensor import Tensor


def _spread(gy, keep_shape, input_shape):
    """The upstream gradient of a reduction, broadcast back over the reduced axes (recorded
    under ``create_graph``; otherwise a broadcast view of the array, no graph node)."""
    if not flags.grad_enabled:
        xp = backend.get_array_module(gy.data)
        if gy.data.size == 1:  # a full reduction: one filled array (np.broadcast_to is ~5 us)
            return constant(xp.full(input_shape, gy.data.reshape(()), dtype=gy.data.dtype))
        return constant(xp.broadcast_to(gy.data.reshape(keep_shape), input_shape))
    from chainrule.ops.shape import broadcast_to, reshape

    if gy.shape != keep_shape:
        gy = reshape(gy, keep_shape)
    return broadcast_to(gy, input_shape)


class Sum(Function):
    """y = Σ x over ``axis``;  ∂y/∂x = 1 (the gradient is broadcast back)."""

    saved_inputs = ()

    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = normalize_axis(self.axis, x.ndim)
        self.input_shape = x.shape
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        return (_spread(gy, kept_shape(self.input_shape, self.axes), self.input_shape),)


class Mean(Function):
    """y = (1/n) Σ x over ``axis``;  ∂y/∂x = 1/n."""

    saved_inputs = ()

    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = normalize_axis(self.axis, x.ndim)
        self.input_shape = x.shape
        return x.mean(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        count = 1
        for a in self.axes:
            count *= self.input_shape[a]
        g = _spread(gy, kept_shape(self.input_shape, self.axes), self.input_shape)
        return (g * (1.0 / builtins.max(count, 1)),)


class Extremum(Function):
    """y = max (or min) of x over ``axis``.

    The gradient is split evenly between tied extreme elements (like ``torch.amax``), so it is
    the same whichever order the ties come in, and gradient checks agree with it.
    """

    saved_inputs = ()

    def __init__(self, axis, keepdims, take_max=True):
        self.axis, self.keepdims, self.take_max = axis, keepdims, take_max

    def forward(self, x):
        self.axes = normalize_axis(self.axis, x.ndim)
        if x.size == 0:
            raise ValueError(f"{'max' if self.take_max else 'min'}: empty tensor {x.shape}")
        reduce = x.max if self.take_max else x.min
        y_kept = reduce(axis=self.axes, keepdims=True)
        hits = x == y_kept
        self.share = hits / hits.sum(axis=self.axes, keepdims=True)
        self.share = self.share.astype(x.dtype, copy=False)
        self.input_shape = x.shape
        return y_kept if self.keepdims else y_kept.reshape(_dropped(x.shape, self.axes))

    def backward(self, gy):
        g = _spread(gy, kept_shape(self.input_shape, self.axes), self.input_shape)
        return (g * Tensor(self.share),)


class LogSumExp(Function):
    """y = log Σ exp(x) over ``axis``, computed as m + log Σ exp(x − m) with m = max x.

    ∂y/∂x = exp(x − y) = softmax(x).
    """

    keeps_output = True

    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.axes = normalize_axis(self.axis, x.ndim)
        m = x.max(axis=self.axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        y = xp.log(xp.exp(x - m).sum(axis=self.axes, keepdims=True)) + m
        self.input_shape = x.shape
        return y if self.keepdims else y.reshape(_dropped(x.shape, self.axes))

    def backward(self, gy):
        from chainrule.ops.elementwise import exp
        from chainrule.ops.shape import reshape

        keep = kept_shape(self.input_shape, self.axes)
        y = self.output()
        if y.shape != keep:
            y = reshape(y, keep)
        return (_spread(gy, keep, self.input_shape) * exp(self.inputs[0] - y),)


def _dropped(shape, axes):
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def sum(x, axis=None, keepdims=False) -> Tensor:  # noqa: A001 - NumPy's name
    """Σ x over ``axis`` (None: all axes)."""
    return Sum(axis, keepdims)(as_tensor(x))


def mean(x, axis=None, keepdims=False) -> Tensor:
    """Arithmetic mean over ``axis`` (None: all axes)."""
    return Mean(axis, keepdims)(as_tensor(x))


def var(x, axis=None, keepdims=False, ddof=0) -> Tensor:
    """Variance over ``axis``: Σ(x − x̄)² / (n − ddof). ``ddof=0`` as NumPy (PyTorch uses 1)."""
    x = as_tensor(x)
    axes = normalize_axis(axis, x.ndim)
    count = 1
    for a in axes:
        count *= x.shape[a]
    centered = x - mean(x, axes, keepdims=True)
    return sum(centered * centered, axes, keepdims) * (1.0 / builtins.max(count - ddof, 1))


def max(x, axis=None, keepdims=False) -> Tensor:  # noqa: A001 - NumPy's name
    """Largest value over ``axis``; tied maxima share the gradient evenly."""
    return Extremum(axis, keepdims, take_max=True)(as_tensor(x))


def min(x, axis=None, keepdims=False) -> Tensor:  # noqa: A001 - NumPy's name
    """Smallest value over ``axis``; tied minima share the gradient evenly."""
    return Extremum(axis, keepdims, take_max=False)(as_tensor(x))


def logsumexp(x, axis=None, keepdims=False) -> Tensor:
    """log Σ exp(x) over ``axis``, stable for large |x|."""
    return LogSumExp(axis, keepdims)(as_tensor(x))


def argmax(x, axis=None, keepdims=False) -> Tensor:
    """Index of the largest value (an int64 tensor; not differentiable)."""
    data = as_tensor(x).data
    return Tensor(data.argmax(axis=axis, keepdims=keepdims))


def argmin(x, axis=None, keepdims=False) -> Tensor:
    """Index of the smallest value (an int64 tensor; not differentiable)."""
    data = as_tensor(x).data
    return Tensor(data.argmin(axis=axis, keepdims=keepdims))
