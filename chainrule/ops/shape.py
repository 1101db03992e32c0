"""Shape ops: reshape, transpose, broadcasting, indexing, concatenation, padding.

None of these change values, so each backward just moves the gradient back into place:
reshape ↔ reshape, transpose ↔ inverse transpose, broadcast_to ↔ sum_to, getitem ↔ scatter-add,
concat ↔ slicing, pad ↔ slicing.
"""

from __future__ import annotations

import numpy as np

from chainrule import backend
from chainrule.autograd.function import Function
from chainrule.ops._util import as_tensor, normalize_axis
from chainrule.tensor import Tensor


class Reshape(Function):
    """y = x with a new shape (same elements, same order)."""

    saved_inputs = ()

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.input_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return (reshape(gy, self.input_shape),)


class Transpose(Function):
    """y = x with its axes permuted; the gradient is permuted back."""

    saved_inputs = ()

    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, gy):
        return (transpose(gy, tuple(np.argsort(self.axes))),)


class BroadcastTo(Function):
    """y = x repeated along new or size-1 axes;  the gradient is summed back (sum_to).

    The result is a new writable array, not a read-only strided view: it is mostly used to
    spread gradients, which end up in ``.grad`` or in arithmetic anyway, and filling an array is
    cheaper than NumPy's ``broadcast_to`` wrapper for the small shapes where overhead matters.
    """

    saved_inputs = ()

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.input_shape = x.shape
        y = backend.get_array_module(x).empty(self.shape, dtype=x.dtype)
        y[...] = x
        return y

    def backward(self, gy):
        return (sum_to(gy, self.input_shape),)


class SumTo(Function):
    """y = x summed over the axes that broadcasting to x's shape would have added or stretched."""

    saved_inputs = ()

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.input_shape = x.shape
        return _sum_to_array(x, self.shape)

    def backward(self, gy):
        return (broadcast_to(gy, self.input_shape),)


def _sum_to_array(x, shape):
    lead = x.ndim - len(shape)
    if lead < 0:
        raise ValueError(f"sum_to: cannot sum shape {x.shape} to the larger shape {shape}")
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and x.shape[lead + i] != 1
    )
    for i, n in enumerate(shape):
        if n != 1 and x.shape[lead + i] != n:
            raise ValueError(f"sum_to: shape {x.shape} does not broadcast from {shape}")
    y = x.sum(axis=axes, keepdims=True) if axes else x
    return y.reshape(shape) if lead else y


class GetItem(Function):
    """y = x[index] for basic or integer-array indexing."""

    saved_inputs = ()

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.input_shape = x.shape
        return x[self.index]

    def backward(self, gy):
        return (ScatterAdd(self.index, self.input_shape)(gy),)


class ScatterAdd(Function):
    """y = zeros(shape); y[index] += x, adding up repeated indices (the gradient of GetItem)."""

    saved_inputs = ()

    def __init__(self, index, shape):
        self.index, self.shape = index, shape

    def forward(self, x):
        xp = backend.get_array_module(x)
        y = xp.zeros(self.shape, dtype=x.dtype)
        if _is_basic_index(self.index):
            y[self.index] = x
        elif xp is np:
            np.add.at(y, self.index, x)
        else:
            xp.add.at(y, self.index, x)
        return y

    def backward(self, gy):
        return (getitem(gy, self.index),)


def _is_basic_index(index) -> bool:
    """True when ``index`` uses only ints, slices, None and Ellipsis (no repeats possible)."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(
        p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer)) for p in parts
    )


class Concat(Function):
    """y = the inputs joined along ``axis``;  each input's gradient is its slice of gy."""

    saved_inputs = ()

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        self.sizes = [x.shape[self.axis] for x in xs]
        return backend.get_array_module(xs[0]).concatenate(xs, axis=self.axis)

    def backward(self, gy):
        grads, start = [], 0
        lead = (slice(None),) * (self.axis % gy.ndim)
        for x, size in zip(self.inputs, self.sizes):
            grads.append(gy[lead + (slice(start, start + size),)] if x.requires_grad else None)
            start += size
        return grads


class Pad(Function):
    """y = x surrounded by a constant; the gradient is the inner slice of gy."""

    saved_inputs = ()

    def __init__(self, pad_width, value):
        self.pad_width, self.value = pad_width, value

    def forward(self, x):
        xp = backend.get_array_module(x)
        return xp.pad(x, self.pad_width, mode="constant", constant_values=self.value)

    def backward(self, gy):
        inner = tuple(slice(before, gy.shape[i] - after)
                      for i, (before, after) in enumerate(self.pad_width))
        return (gy[inner],)


# -- functions -----------------------------------------------------------------------------------


def reshape(x, shape) -> Tensor:
    """``x`` with a new shape; one dimension may be -1."""
    x = as_tensor(x)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if shape == x.data.shape:
        return x
    try:
        return Reshape(shape)(x)
    except ValueError:
        raise ValueError(f"reshape: cannot reshape shape {x.shape} to {shape}") from None


def transpose(x, axes=None) -> Tensor:
    """``x`` with axes permuted (reversed when ``axes`` is None, as in NumPy)."""
    x = as_tensor(x)
    if axes is None:
        axes = tuple(range(x.ndim - 1, -1, -1))
    axes = tuple(int(a) % max(x.ndim, 1) for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation for shape {x.shape}")
    return Transpose(axes)(x)


def swapaxes(x, axis1: int, axis2: int) -> Tensor:
    """``x`` with two axes exchanged."""
    x = as_tensor(x)
    axes = list(range(x.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return Transpose(tuple(axes))(x)


def expand_dims(x, axis) -> Tensor:
    """``x`` with a new axis of size 1 at ``axis``."""
    x = as_tensor(x)
    return reshape(x, np.expand_dims(np.empty(x.shape, dtype=bool), axis).shape)


def squeeze(x, axis=None) -> Tensor:
    """``x`` without axes of size 1 (only ``axis`` if given; it must have size 1)."""
    x = as_tensor(x)
    if axis is not None:
        for a in normalize_axis(axis, x.ndim):
            if x.shape[a] != 1:
                raise ValueError(f"squeeze: axis {a} of shape {x.shape} does not have size 1")
    return reshape(x, np.squeeze(np.empty(x.shape, dtype=bool), axis).shape)


def flatten(x, start_axis: int = 0) -> Tensor:
    """``x`` with the axes from ``start_axis`` on merged into one (``flatten(x, 1)``: batches)."""
    x = as_tensor(x)
    start_axis %= max(x.ndim, 1)
    return reshape(x, x.shape[:start_axis] + (-1,))


def broadcast_to(x, shape) -> Tensor:
    """``x`` broadcast to ``shape`` (NumPy's rules); the gradient is summed back."""
    x = as_tensor(x)
    shape = tuple(shape)
    if x.data.shape == shape:
        return x
    try:
        return BroadcastTo(shape)(x)
    except ValueError:
        raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}") from None


def sum_to(x, shape) -> Tensor:
    """``x`` summed down to ``shape``: the inverse of :func:`broadcast_to`."""
    x = as_tensor(x)
    shape = tuple(shape)
    if x.data.shape == shape:
        return x
    return SumTo(shape)(x)


def getitem(x, index) -> Tensor:
    """``x[index]``: basic and integer-array indexing; repeated indices accumulate gradients."""
    x = as_tensor(x)
    index = _plain_index(index)
    try:
        return GetItem(index)(x)
    except IndexError as error:
        raise IndexError(f"getitem: {error} (tensor of shape {x.shape})") from None


def _plain_index(index):
    """Tensors and lists inside an index become arrays."""
    if isinstance(index, tuple):
        return tuple(_plain_index_part(p) for p in index)
    return _plain_index_part(index)


def _plain_index_part(part):
    if isinstance(part, Tensor):
        return part.data
    if isinstance(part, list):
        return np.asarray(part)
    return part


def concat(tensors, axis: int = 0) -> Tensor:
    """Join tensors of equal shape (except along ``axis``) along ``axis``."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("concat: needs at least one tensor")
    ndim = tensors[0].ndim
    axis = normalize_axis(axis, ndim)[0]
    for t in tensors:
        if t.ndim != ndim or any(
            a != b for i, (a, b) in enumerate(zip(t.shape, tensors[0].shape)) if i != axis
        ):
            shapes = ", ".join(str(u.shape) for u in tensors)
            raise ValueError(f"concat: shapes {shapes} differ outside axis {axis}")
    return Concat(axis)(*tensors)


def stack(tensors, axis: int = 0) -> Tensor:
    """Join tensors of equal shape along a new axis."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: all shapes must be equal, got {sorted(shapes)}")
    axis = axis % (tensors[0].ndim + 1)
    return concat([expand_dims(t, axis) for t in tensors], axis)


def split(x, indices_or_sections, axis: int = 0) -> list[Tensor]:
    """Split ``x`` along ``axis`` into equal sections (an int) or at the given indices (NumPy)."""
    x = as_tensor(x)
    axis = normalize_axis(axis, x.ndim)[0]
    n = x.shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        if n % indices_or_sections:
            raise ValueError(
                f"split: axis {axis} of shape {x.shape} does not divide into "
                f"{indices_or_sections} equal sections"
            )
        step = n // indices_or_sections
        bounds = list(range(step, n, step))
    else:
        bounds = list(indices_or_sections)
    edges = [0] + bounds + [n]
    lead = (slice(None),) * axis
    return [getitem(x, lead + (slice(a, b),)) for a, b in zip(edges[:-1], edges[1:])]


def pad(x, pad_width, value=0.0) -> Tensor:
    """Pad with a constant; ``pad_width`` is NumPy's: an int, a pair, or one pair per axis."""
    x = as_tensor(x)
    width = np.broadcast_to(np.asarray(pad_width, dtype=int), (x.ndim, 2))
    if (width < 0).any():
        raise ValueError(f"pad: negative pad_width {pad_width}")
    return Pad(tuple(map(tuple, width.tolist())), value)(x)
