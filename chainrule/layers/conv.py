"""Convolution layers: Conv1D over sequences and Conv2D over images.

Both run on the 2-D convolution op (:func:`chainrule.functional.conv2d`, NCHW): a sequence
(N, C, L) is the image (N, C, 1, L), so the gradients and the fast algorithms come with it.
``data_format`` picks the layout of the input and output: "channels_first" (N, C, H, W) /
(N, C, L), PyTorch's and chainrule's default, or "channels_last" (N, H, W, C) / (N, L, C),
Keras's; channels-last input is transposed to channels-first around the op. The kernel layout
is the same in both: (filters, in_channels, kh, kw) / (filters, in_channels, k), PyTorch's
(Keras stores (kh, kw, in_channels, filters) / (k, in_channels, filters)).
"""

from __future__ import annotations

from chainrule import activations, config
from chainrule import functional as F
from chainrule.layers import _checks as check
from chainrule.layers.base import InputSpec, Layer
from chainrule.layers.core import KERNEL_AND_BIAS
from chainrule.ops.conv_geometry import output_size, resolve_padding


def normalize_padding(padding, what: str, rank: int = 2, causal: bool = False):
    """"valid", "same", "causal" where allowed (any case), or an int / ``rank`` ints of zero
    padding per side."""
    modes = ("valid", "same", "causal") if causal else ("valid", "same")
    if isinstance(padding, str):
        padding = padding.lower()
        if padding not in modes:
            allowed = ", ".join(repr(m) for m in modes)
            raise ValueError(f"{what}: padding must be {allowed} or ints, got {padding!r}")
        return padding
    allowed = ", ".join(repr(m) for m in modes)
    return check.int_tuple(what, "padding", padding, length=rank, minimum=0,
                           what=f"{allowed} or ints >= 0")


def conv_output_size(size, kernel: int, stride: int, padding, dilation: int = 1):
    """Output length of a convolution or pooling window along one axis (None stays None), by
    :func:`chainrule.ops.conv_geometry.output_size`.

    "valid": ⌊(n − d·(k − 1) − 1) / s⌋ + 1;  "same" and "causal": ⌈n / s⌉ (causal puts all the
    zeros before);  p zeros on both sides: ⌊(n + 2p − d·(k − 1) − 1) / s⌋ + 1.
    """
    if size is None:
        return None
    padding = "same" if padding == "causal" else padding
    before, after = resolve_padding(padding, size, kernel, stride, dilation, "conv_output_size")
    return output_size(size, kernel, stride, dilation, before, after)


# -- data_format ----------------------------------------------------------------------------------

_AXES = {1: "(C, L)", 2: "(C, H, W)"}
_AXES_LAST = {1: "(L, C)", 2: "(H, W, C)"}


def resolve_data_format(data_format, what: str, rank: int = 2) -> tuple[str, bool]:
    """``(layout, chosen)``: ``data_format`` checked, None read from the global setting;
    ``chosen`` is whether the user picked it (here or with ``set_image_data_format``).

    Until the user chooses, 1-D layers read ``channels_last`` (N, L, C): chainrule's
    sequences are (N, T, F) everywhere (Embedding, the recurrent layers, Keras's Conv1D), so
    ``Embedding → Conv1D`` works; channels-first would silently read the time steps as
    channels. 2-D layers read ``channels_first``: chainrule's images are NCHW."""
    if data_format is None:
        if rank == 1 and not config.image_data_format_chosen():
            return "channels_last", False
        return config.image_data_format(), config.image_data_format_chosen()
    return config.normalize_data_format(data_format, what), True


def looks_channels_last(shape, rank: int) -> bool:
    """Whether an input shape (batch first) read as channels-first looks channels-last.

    True when the last axis has the size of an image's channels (1, 3 or 4: grey, RGB, RGBA;
    for sequences only 1, a single series) and every other non-batch axis is more than 4 times
    as long: (N, 28, 28, 1), (N, 32, 32, 3), (N, 100, 1); not (N, 64, 4, 4) or (N, 8, 2, 1).
    Unknown sizes give no guess.
    """
    if len(shape) != rank + 2 or any(n is None for n in shape[1:]):
        return False
    last = shape[-1]
    return (last in ((1, 3, 4) if rank == 2 else (1,))
            and all(n > 4 * last for n in shape[1:-1]))


def check_layout(layer: Layer, input_shape, rank: int) -> None:
    """Refuse an input that looks channels-last when the layer assumes channels-first by
    default (neither ``data_format`` nor ``set_image_data_format`` was given)."""
    if layer._data_format_chosen or layer.data_format != "channels_first":
        return
    if looks_channels_last(tuple(input_shape), rank):
        shape = (None, *tuple(input_shape)[1:])
        raise ValueError(
            f"layer '{layer.name}' ({type(layer).__name__}): input shape {shape} looks "
            f"channels-last ({shape[-1]} channel(s) last) but this layer assumes channels_first "
            f"{_AXES[rank]}; pass data_format='channels_last' (or 'channels_first' if the shape "
            "is meant) or call chainrule.config.set_image_data_format('channels_last')"
        )


def channel_axis(data_format: str) -> int:
    """The channel axis of an input: 1 for channels_first, -1 for channels_last."""
    return 1 if data_format == "channels_first" else -1


def to_channels_first(x, data_format: str, rank: int):
    """(N, *spatial, C) → (N, C, *spatial) when channels_last; x itself otherwise."""
    if data_format == "channels_first":
        return x
    return x.transpose(0, rank + 1, *range(1, rank + 1))


def from_channels_first(y, data_format: str, rank: int):
    """(N, C, *spatial) → (N, *spatial, C) when channels_last; y itself otherwise."""
    if data_format == "channels_first":
        return y
    return y.transpose(0, *range(2, rank + 2), 1)


def shape_to_channels_first(shape, data_format: str):
    shape = tuple(shape)
    return shape if data_format == "channels_first" else (shape[0], shape[-1], *shape[1:-1])


def shape_from_channels_first(shape, data_format: str):
    shape = tuple(shape)
    return shape if data_format == "channels_first" else (shape[0], *shape[2:], shape[1])


# -- the layers -----------------------------------------------------------------------------------


class _Conv(Layer):
    """Shared part of Conv1D and Conv2D (``rank`` spatial axes); see :class:`Conv2D`."""

    rank = 2

    def __init__(self, filters: int, kernel_size, strides=1, padding="valid", dilation_rate=1,
                 activation=None, use_bias: bool = True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 data_format=None, **kwargs):
        super().__init__(**kwargs)
        what, rank = type(self).__name__, self.rank

        def ints(name, value):
            return check.int_tuple(what, name, value, length=rank, minimum=1,
                                   what="a positive int or a pair of them" if rank == 2
                                   else "a positive int")

        self.filters = check.positive_int(what, "filters", filters)
        self.kernel_size = ints("kernel_size", kernel_size)
        self.strides = ints("strides", strides)
        self.padding = normalize_padding(padding, what, rank, causal=rank == 1)
        self.dilation_rate = ints("dilation_rate", dilation_rate)
        self.activation = check.activation(what, "activation", activation)
        self.use_bias = check.flag(what, "use_bias", use_bias)
        check.weight_options(self, what, kernel_initializer=kernel_initializer,
                             bias_initializer=bias_initializer,
                             kernel_regularizer=kernel_regularizer,
                             bias_regularizer=bias_regularizer)
        self.data_format, self._data_format_chosen = resolve_data_format(data_format, what,
                                                                         rank)
        self.input_spec = InputSpec(ndim=rank + 2)

    def build(self, input_shape):
        check_layout(self, input_shape, self.rank)
        axis = channel_axis(self.data_format)
        in_channels = input_shape[axis]
        self.kernel = self.add_weight("kernel", (self.filters, in_channels, *self.kernel_size),
                                      self.kernel_initializer, self.kernel_regularizer)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer,
                                        self.bias_regularizer)
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={axis: in_channels})

    # the op's arguments: a sequence is an image of height 1

    def _as_2d(self, values) -> tuple:
        return tuple(values) if self.rank == 2 else (1, *values)

    def _padding_2d(self):
        if self.padding == "causal":  # all the zeros before: y[t] sees x[≤ t] only
            span = self.dilation_rate[0] * (self.kernel_size[0] - 1)
            return ((0, 0), (span, 0))
        if isinstance(self.padding, str) or self.rank == 2:
            return self.padding
        return ((0, 0), (self.padding[0], self.padding[0]))

    def forward(self, x):
        x = to_channels_first(x, self.data_format, self.rank)
        kernel = self.kernel
        if self.rank == 1:
            x = x.reshape(x.shape[0], x.shape[1], 1, x.shape[2])
            kernel = kernel.reshape(*kernel.shape[:2], 1, kernel.shape[2])
        fused_relu = self.activation is F.relu  # one op, no extra pass
        y = F.conv2d(x, kernel, self.bias, stride=self._as_2d(self.strides),
                     padding=self._padding_2d(), dilation=self._as_2d(self.dilation_rate),
                     relu=fused_relu)
        if self.rank == 1:
            y = y.reshape(y.shape[0], y.shape[1], y.shape[3])
        y = y if fused_relu else self.activation(y)
        return from_channels_first(y, self.data_format, self.rank)

    def compute_output_shape(self, input_shape):
        shape = shape_to_channels_first(input_shape, self.data_format)
        spatial = []
        for axis in range(self.rank):
            padding = self.padding if isinstance(self.padding, str) else self.padding[axis]
            spatial.append(conv_output_size(shape[2 + axis], self.kernel_size[axis],
                                            self.strides[axis], padding,
                                            self.dilation_rate[axis]))
        return shape_from_channels_first((shape[0], self.filters, *spatial), self.data_format)

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
            **check.weight_options_config(self, KERNEL_AND_BIAS),
            "data_format": self.data_format,
        }


class Conv1D(_Conv):
    """1-D convolution (cross-correlation) over sequences, Keras's arguments.

    y[n, f, t] = activation(bias[f] + Σ_c Σ_p kernel[f, c, p] · x_pad[n, c, t·s + p·d])

    Input (N, L, C) with data_format "channels_last" (the default until
    ``set_image_data_format`` chooses one: Keras's, and what chainrule's Embedding and
    recurrent layers give), (N, C, L) with "channels_first" (PyTorch's ``conv1d``). ``kernel``
    has shape (filters, in_channels, k) (PyTorch's layout; Keras's is (k, in_channels,
    filters)) and ``bias`` (filters,).
    Computed as the 2-D convolution of the (N, C, 1, L) image with a 1 × k kernel.

    Output length: "valid" ⌊(L − d(k−1) − 1)/s⌋ + 1; "same" ⌈L/s⌉ (zeros padded as evenly as
    possible, the extra one at the end, as in Keras); "causal" ⌈L/s⌉ with all d(k−1) zeros at
    the start, so y[t] depends on x[≤ t·s] only (WaveNet; Keras's "causal"); an int p pads p
    zeros at both ends (PyTorch's ``padding``).

    Args:
        filters: the number of output channels.
        kernel_size: an int (or a 1-tuple).
        strides: an int; the step between windows.
        padding: "valid", "same", "causal", or an int.
        dilation_rate: an int; the spacing between kernel taps.
        activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
            bias_regularizer: as in :class:`~chainrule.layers.Dense`.
        data_format: "channels_first", "channels_last", or None (see above; read when the
            layer is made).

    >>> import chainrule as cr
    >>> Conv1D(8, 3, padding="causal", data_format="channels_first")(cr.zeros(2, 4, 10)).shape
    (2, 8, 10)
    >>> Conv1D(6, 3, data_format="channels_last")(cr.zeros(2, 10, 4)).shape
    (2, 8, 6)
    """

    rank = 1


class Conv2D(_Conv):
    """2-D convolution (cross-correlation, as in every framework) over images.

    y[n, f] = activation(bias[f] + Σ_c kernel[f, c] ⋆ x[n, c])

    Input (N, C, H, W) with data_format "channels_first" (chainrule's default, PyTorch's),
    (N, H, W, C) with "channels_last" (Keras's default). ``kernel`` has shape
    (filters, in_channels, kh, kw) in both (PyTorch's layout; Keras's is
    (kh, kw, in_channels, filters)) and ``bias`` shape (filters,).
    Parameters: filters · (in_channels · kh · kw + 1). Glorot and He initializers
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
        data_format: "channels_first", "channels_last", or None for
            :func:`chainrule.config.image_data_format` (read when the layer is made). Left to
            the default, an input that looks channels-last, such as (N, 32, 32, 3), is an error
            (see :func:`looks_channels_last`).

    >>> import chainrule as cr
    >>> Conv2D(8, 3, padding="same")(cr.zeros(2, 3, 28, 28)).shape
    (2, 8, 28, 28)
    >>> Conv2D(8, 3, data_format="channels_last")(cr.zeros(2, 28, 28, 3)).shape
    (2, 26, 26, 8)
    """

    rank = 2
