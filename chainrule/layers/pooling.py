"""Pooling layers over sequences and images: windowed max and average, global average and max.

The 1-D layers run the 2-D pooling ops on (N, C, 1, L); ``data_format`` reads the input as
"channels_first" (N, C, L) / (N, C, H, W) or "channels_last" (N, L, C) / (N, H, W, C), the
latter transposed to channels-first around the op (see :mod:`chainrule.layers.conv`).
"""

from __future__ import annotations

from chainrule import functional as F
from chainrule.layers import _checks as check
from chainrule.layers.base import InputSpec, Layer
from chainrule.layers.conv import (
    channel_axis,
    check_layout,
    conv_output_size,
    from_channels_first,
    resolve_data_format,
    shape_from_channels_first,
    shape_to_channels_first,
    to_channels_first,
)


class _Pooling(Layer):
    """Shared arguments of the windowed pools: pool_size, strides (default: pool_size), padding,
    data_format; ``rank`` spatial axes."""

    rank = 2
    _function = None  # the functional kernel, set by subclasses

    def __init__(self, pool_size=2, strides=None, padding: str = "valid", data_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        what, rank = type(self).__name__, self.rank
        how = "a positive int or a pair of them" if rank == 2 else "a positive int"
        self.pool_size = check.int_tuple(what, "pool_size", pool_size, length=rank, what=how)
        self.strides = (self.pool_size if strides is None
                        else check.int_tuple(what, "strides", strides, length=rank, what=how))
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ValueError(f"{what}: padding must be 'valid' or 'same', got {padding!r}")
        self.padding = padding.lower()
        self.data_format, self._data_format_chosen = resolve_data_format(data_format, what,
                                                                         rank)
        self.input_spec = InputSpec(ndim=rank + 2)

    def build(self, input_shape):
        check_layout(self, input_shape, self.rank)

    def forward(self, x):
        x = to_channels_first(x, self.data_format, self.rank)
        pool_size, strides = self.pool_size, self.strides
        if self.rank == 1:  # a sequence is an image of height 1
            x = x.reshape(x.shape[0], x.shape[1], 1, x.shape[2])
            pool_size, strides = (1, *pool_size), (1, *strides)
        y = self._function(x, pool_size=pool_size, strides=strides, padding=self.padding)
        if self.rank == 1:
            y = y.reshape(y.shape[0], y.shape[1], y.shape[3])
        return from_channels_first(y, self.data_format, self.rank)

    def compute_output_shape(self, input_shape):
        shape = shape_to_channels_first(input_shape, self.data_format)
        spatial = [conv_output_size(shape[2 + axis], self.pool_size[axis],
                                    self.strides[axis], self.padding) for axis in range(self.rank)]
        return shape_from_channels_first((*shape[:2], *spatial), self.data_format)

    def get_config(self) -> dict:
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding,
                "data_format": self.data_format}


class MaxPooling1D(_Pooling):
    """y[n, c, t] = max of x[n, c] over the pool_size window at t·s (channels_first).

    Keras's arguments: ``pool_size=2``, ``strides=None`` (pool_size), ``padding`` "valid" or
    "same" (⌈L/s⌉ outputs; the padding never wins the max), ``data_format``.

    >>> import chainrule as cr
    >>> MaxPooling1D(2)(cr.zeros(1, 3, 8)).shape
    (1, 3, 4)
    """

    rank = 1
    _function = staticmethod(F.max_pool2d)


class AveragePooling1D(_Pooling):
    """y[n, c, t] = mean of x[n, c] over the pool_size window at t·s (channels_first).

    With "same" padding the mean is over the window's positions inside the input (Keras's
    rule; padded positions are not counted).
    """

    rank = 1
    _function = staticmethod(F.avg_pool2d)


class MaxPooling2D(_Pooling):
    """y[n, c, i, j] = max of x[n, c] over the pool_size window at (i·sh, j·sw).

    "valid" drops windows that do not fit; "same" gives ⌈n/s⌉ outputs per axis (the padding
    never wins the max). The gradient goes to the maximum of each window. ``data_format``:
    "channels_first" (N, C, H, W), "channels_last" (N, H, W, C), or None for the global setting.

    >>> import chainrule as cr
    >>> MaxPooling2D(2)(cr.zeros(1, 3, 8, 8)).shape
    (1, 3, 4, 4)
    """

    _function = staticmethod(F.max_pool2d)


class AveragePooling2D(_Pooling):
    """y[n, c, i, j] = mean of x[n, c] over the pool_size window at (i·sh, j·sw).

    With "same" padding the mean is over the window's positions inside the input (Keras's
    rule; padded positions are not counted).
    """

    _function = staticmethod(F.avg_pool2d)


class _GlobalPooling(Layer):
    """Shared part of the global pools: the mean or max over every spatial axis.

    Args:
        data_format: "channels_first", "channels_last", or None for the global setting.
        keepdims: keep the spatial axes with size 1.
    """

    rank = 2
    _reduction = "mean"

    def __init__(self, data_format=None, keepdims: bool = False, **kwargs):
        super().__init__(**kwargs)
        what = type(self).__name__
        self.data_format, self._data_format_chosen = resolve_data_format(data_format, what,
                                                                         self.rank)
        self.keepdims = check.flag(what, "keepdims", keepdims)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def build(self, input_shape):
        check_layout(self, input_shape, self.rank)

    def _spatial_axes(self) -> tuple[int, ...]:
        first = 2 if self.data_format == "channels_first" else 1
        return tuple(range(first, first + self.rank))

    def forward(self, x):
        return getattr(x, self._reduction)(axis=self._spatial_axes(), keepdims=self.keepdims)

    def compute_output_shape(self, input_shape):
        channels = input_shape[channel_axis(self.data_format)]
        if not self.keepdims:
            return (input_shape[0], channels)
        spatial = (1,) * self.rank
        if self.data_format == "channels_first":
            return (input_shape[0], channels, *spatial)
        return (input_shape[0], *spatial, channels)

    def get_config(self) -> dict:
        return {**super().get_config(), "data_format": self.data_format,
                "keepdims": self.keepdims}


class GlobalAveragePooling1D(_GlobalPooling):
    """(N, C, L) → (N, C): y[n, c] = mean over t of x[n, c, t] ((N, L, C) when channels_last).

    ``keepdims=True`` gives (N, C, 1) / (N, 1, C).
    """

    rank = 1


class GlobalMaxPooling1D(_GlobalPooling):
    """(N, C, L) → (N, C): y[n, c] = max over t of x[n, c, t] ((N, L, C) when channels_last)."""

    rank = 1
    _reduction = "max"


class GlobalAveragePooling2D(_GlobalPooling):
    """(N, C, H, W) → (N, C): y[n, c] = mean over (h, w) of x[n, c, h, w].

    With channels_last the input is (N, H, W, C). ``keepdims=True`` keeps the spatial axes with
    size 1: (N, C, 1, 1) / (N, 1, 1, C).
    """


class GlobalMaxPooling2D(_GlobalPooling):
    """(N, C, H, W) → (N, C): y[n, c] = max over (h, w) of x[n, c, h, w]."""

    _reduction = "max"
