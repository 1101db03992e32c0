"""Pooling layers on NCHW input: windowed max and average, and global average and max."""

from __future__ import annotations

from chainrule import functional as F
from chainrule.layers import _checks as check
from chainrule.layers.base import InputSpec, Layer
from chainrule.layers.conv import _pair, conv_output_size


class _Pooling2D(Layer):
    """Shared arguments of the windowed pools: pool_size, strides (default: pool_size), padding."""

    _function = None  # the functional kernel, set by subclasses

    def __init__(self, pool_size=2, strides=None, padding: str = "valid", **kwargs):
        super().__init__(**kwargs)
        what = type(self).__name__
        self.pool_size = _pair(what, "pool_size", pool_size)
        self.strides = self.pool_size if strides is None else _pair(what, "strides", strides)
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ValueError(f"{what}: padding must be 'valid' or 'same', got {padding!r}")
        self.padding = padding.lower()
        self.input_spec = InputSpec(ndim=4)

    def forward(self, x):
        return self._function(x, pool_size=self.pool_size, strides=self.strides,
                              padding=self.padding)

    def compute_output_shape(self, input_shape):
        spatial = [conv_output_size(input_shape[2 + axis], self.pool_size[axis],
                                    self.strides[axis], self.padding) for axis in range(2)]
        return (*input_shape[:2], *spatial)

    def get_config(self) -> dict:
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding}


class MaxPooling2D(_Pooling2D):
    """y[n, c, i, j] = max of x[n, c] over the pool_size window at (i·sh, j·sw).

    "valid" drops windows that do not fit; "same" gives ⌈n/s⌉ outputs per axis (the padding
    never wins the max). The gradient goes to the maximum of each window.

    >>> import chainrule as cr
    >>> MaxPooling2D(2)(cr.zeros(1, 3, 8, 8)).shape
    (1, 3, 4, 4)
    """

    _function = staticmethod(F.max_pool2d)


class AveragePooling2D(_Pooling2D):
    """y[n, c, i, j] = mean of x[n, c] over the pool_size window at (i·sh, j·sw).

    With "same" padding the mean is over the window's positions inside the input (Keras's
    rule; padded positions are not counted).
    """

    _function = staticmethod(F.avg_pool2d)


class GlobalAveragePooling2D(Layer):
    """(N, C, H, W) → (N, C): y[n, c] = mean over (h, w) of x[n, c, h, w].

    Args:
        keepdims: keep the spatial axes with size 1, giving (N, C, 1, 1).
    """

    def __init__(self, keepdims: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.keepdims = check.flag(type(self).__name__, "keepdims", keepdims)
        self.input_spec = InputSpec(ndim=4)

    def forward(self, x):
        return x.mean(axis=(2, 3), keepdims=self.keepdims)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:2], 1, 1) if self.keepdims else tuple(input_shape[:2])

    def get_config(self) -> dict:
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalMaxPooling2D(GlobalAveragePooling2D):
    """(N, C, H, W) → (N, C): y[n, c] = max over (h, w) of x[n, c, h, w]."""

    def forward(self, x):
        return x.max(axis=(2, 3), keepdims=self.keepdims)
