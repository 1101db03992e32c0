"""Convolution layers on NCHW input (PyTorch's layout: batch, channels, height, width)."""

from __future__ import annotations

import math

from chainrule import activations, initializers, regularizers
from chainrule import functional as F
from chainrule.layers import _checks as check
from chainrule.layers.base import InputSpec, Layer
from chainrule.layers.core import _serialize_or_none
from chainrule.ops import nn_conv


def _pair(layer: str, name: str, value) -> tuple[int, int]:
    """An int or a pair of ints as a pair of positive ints."""
    return check.int_tuple(layer, name, value, length=2, minimum=1)


def normalize_padding(padding, what: str):
    """"valid", "same" (any case), or an int / pair of ints of zero padding per side."""
    if isinstance(padding, str):
        padding = padding.lower()
        if padding not in ("valid", "same"):
            raise ValueError(f"{what}: padding must be 'valid', 'same' or ints, got {padding!r}")
        return padding
    return check.int_tuple(what, "padding", padding, length=2, minimum=0,
                           what="'valid', 'same' or ints >= 0")


def conv_output_size(size, kernel: int, stride: int, padding, dilation: int = 1):
    """Output length of a convolution or pooling window along one axis (None stays None).

    "valid": ⌊(n − d·(k − 1) − 1) / s⌋ + 1;  "same": ⌈n / s⌉;
    p zeros on both sides: ⌊(n + 2p − d·(k − 1) − 1) / s⌋ + 1.
    """
    if size is None:
        return None
    if padding == "same":
        return math.ceil(size / stride)
    pad = 0 if padding == "valid" else padding
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


class Conv2D(Layer):
    """2-D convolution (cross-correlation, as in every framework) on NCHW input.

    y[n, f] = activation(bias[f] + Σ_c kernel[f, c] ⋆ x[n, c])

    ``kernel`` has shape (filters, in_channels, kh, kw) (PyTorch's layout) and ``bias`` shape
    (filters,). Parameters: filters · (in_channels · kh · kw + 1). Glorot and He initializers
    use fan_in = in_channels · kh · kw and fan_out = filters · kh · kw.

    Output size per spatial axis: "valid" ⌊(n − d(k−1) − 1)/s⌋ + 1; "same" ⌈n/s⌉ (zeros padded
    as evenly as possible, the extra one at the end, as in Keras); an int p pads p zeros on each
    side, ⌊(n + 2p − d(k−1) − 1)/s⌋ + 1.

    Args:
        filters: the number of output channels.
        kernel_size: an int or (kh, kw).
        strides: an int or a pair.
        padding: "valid", "same", or an int / pair of ints.
        dilation_rate: an int or a pair; the spacing between kernel taps.
        activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
            bias_regularizer: as in :class:`~chainrule.layers.Dense`.

    >>> import chainrule as cr
    >>> Conv2D(8, 3, padding="same")(cr.zeros(2, 3, 28, 28)).shape
    (2, 8, 28, 28)
    """

    def __init__(self, filters: int, kernel_size, strides=1, padding="valid", dilation_rate=1,
                 activation=None, use_bias: bool = True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = check.positive_int("Conv2D", "filters", filters)
        self.kernel_size = _pair("Conv2D", "kernel_size", kernel_size)
        self.strides = _pair("Conv2D", "strides", strides)
        self.padding = normalize_padding(padding, "Conv2D")
        self.dilation_rate = _pair("Conv2D", "dilation_rate", dilation_rate)
        self.activation = check.activation("Conv2D", "activation", activation)
        self.use_bias = check.flag("Conv2D", "use_bias", use_bias)
        self.kernel_initializer = check.initializer("Conv2D", "kernel_initializer",
                                                    kernel_initializer)
        self.bias_initializer = check.initializer("Conv2D", "bias_initializer", bias_initializer)
        self.kernel_regularizer = check.regularizer("Conv2D", "kernel_regularizer",
                                                    kernel_regularizer)
        self.bias_regularizer = check.regularizer("Conv2D", "bias_regularizer", bias_regularizer)
        self.input_spec = InputSpec(ndim=4)

    def build(self, input_shape):
        in_channels = input_shape[1]
        self.kernel = self.add_weight("kernel", (self.filters, in_channels, *self.kernel_size),
                                      self.kernel_initializer, self.kernel_regularizer)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer,
                                        self.bias_regularizer)
        self.input_spec = InputSpec(ndim=4, axes={1: in_channels})

    def runs_own_kernels(self) -> bool:
        """True where conv2d picks Winograd or direct sums (compiled kernels) over im2col."""
        if not self.built:
            return False
        span = [d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation_rate)]
        g = nn_conv.conv_geometry((1, self.kernel.shape[1], *(s + 2 for s in span)),
                                  self.kernel.shape, self.strides, self.padding,
                                  self.dilation_rate)
        return nn_conv.algorithm_for(g, self.kernel.data) != "im2col"

    def forward(self, x):
        fused_relu = self.activation is F.relu  # one op, no extra pass
        y = F.conv2d(x, self.kernel, self.bias, stride=self.strides, padding=self.padding,
                     dilation=self.dilation_rate, relu=fused_relu)
        return y if fused_relu else self.activation(y)

    def compute_output_shape(self, input_shape):
        spatial = []
        for axis in range(2):
            padding = self.padding if isinstance(self.padding, str) else self.padding[axis]
            spatial.append(conv_output_size(input_shape[2 + axis], self.kernel_size[axis],
                                            self.strides[axis], padding,
                                            self.dilation_rate[axis]))
        return (input_shape[0], self.filters, *spatial)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
            "dilation_rate": list(self.dilation_rate),
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": _serialize_or_none(regularizers, self.kernel_regularizer),
            "bias_regularizer": _serialize_or_none(regularizers, self.bias_regularizer),
        }
