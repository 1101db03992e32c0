"""The models of the shift/scale study: an MLP and the All-CNN-C, each in 11 variants.

The study reproduces a thesis: learned **shift** layers (y = x + b, :class:`Shift`) and
**scale** layers (y = s · x, :class:`Scale`, both in :mod:`chainrule.layers`), with one weight
per element, per channel or per layer, added after the input and after every activation except
the last (the softmax), compared with adding nothing and with batch normalisation.

Variants (:data:`VARIANTS`; the layers one position gets, :func:`added_layers`):

==============================  ==================================================
``none``                        nothing
``batchnorm``                   BatchNormalization(axis=1)
``shift-MODE``                  Shift(MODE): y = x + b
``scale-MODE``                  Scale(MODE): y = s · x
``shift-MODE+scale-MODE``       Shift(MODE), Scale(MODE): y = s · (x + b)
==============================  ==================================================

MODE is ``element``, ``channel`` or ``layer``; the combined variant shifts first and scales
second, the order of batch normalisation's centring and scaling.

Placement. The models output logits (the softmax is in the loss,
``SparseCategoricalCrossentropy(from_logits=True)``), so "after every activation but the last"
is: right after the input, and right after every ReLU, which is fused into its Dense/Conv2D
(``activation="relu"``, the same placement as a separate ReLU layer). Nothing follows the MLP's
output Dense. The All-CNN-C's class convolution (conv9) has a ReLU too, so the added layers also
follow it, before the global average pooling, whose output are the logits.

Dropout (``dropout=True``; off by default). Dropout(0.2) after the input position's added
layers; Dropout(0.5) after the added layers of every hidden Dense (MLP) or of the two stride-2
convolutions conv3 and conv6 (All-CNN-C, as in the paper, where they replace the pooling).

Initialisation. The i-th Dense/Conv2D (i from 0) has ``HeNormal(seed=seed * 1000 + i)``
kernels and zero biases, so all variants built from one seed start with the same weights in
those layers and differ only by the added layers (Shift b = 0, Scale s = 1, BatchNormalization
γ = 1, β = 0: every added layer but batch normalisation starts as the identity).

``mlp`` (input (784,), ``hidden=(256, 128)``, 10 classes):

=========  ============  ==========  ==============  ==========
layer      units         activation  output shape    parameters
=========  ============  ==========  ==============  ==========
dense1     256           ReLU        (256,)          200,960
dense2     128           ReLU        (128,)          32,896
dense3     10 (logits)   none        (10,)           1,290
=========  ============  ==========  ==============  ==========

``allconv``: the All-CNN-C of Springenberg et al. 2015 ("Striving for Simplicity: The All
Convolutional Net"), NCHW input, channels a = max(1, round(96·w)) and b = max(1, round(192·w))
for ``width`` w (the paper's w = 1: 96 and 192; default 0.25: 24 and 48). Every convolution has
a ReLU. Output shapes and parameters for 1×28×28 input at width 0.25, 10 classes:

==========  ===========  ======  =======  =============  ==========
layer       kernel       stride  padding  output shape   parameters
==========  ===========  ======  =======  =============  ==========
conv1       3×3, a=24    1       same     (24, 28, 28)   240
conv2       3×3, a       1       same     (24, 28, 28)   5,208
conv3       3×3, a       2       same     (24, 14, 14)   5,208
conv4       3×3, b=48    1       same     (48, 14, 14)   10,416
conv5       3×3, b       1       same     (48, 14, 14)   20,784
conv6       3×3, b       2       same     (48, 7, 7)     20,784
conv7       3×3, b       1       valid    (48, 5, 5)     20,784
conv8       1×1, b       1       valid    (48, 5, 5)     2,352
conv9       1×1, 10      1       valid    (10, 5, 5)     490
global avg  (logits)                      (10,)          0
==========  ===========  ======  =======  =============  ==========

Images must be at least 12×12 (12 → 6 → 3 through the stride-2 convolutions, then 1 after the
valid 3×3). :func:`layer_table` computes these tables for other shapes and options.

Parameter counts (``count_params()``) at the default options above. ``none``: mlp 235,146,
allconv 86,266. Added per variant (``count_params`` counts batch normalisation's moving mean
and variance too: 4 per channel, of which γ and β, 2 per channel, are trained):

===============================  ===========  ==============
variant                          mlp          allconv
===============================  ===========  ==============
batchnorm (trained / all)        2,336/4,672  646/1,292
shift-element, scale-element     1,168        66,938
shift-channel, scale-channel     1,168        323
shift-layer, scale-layer         3            10
shift+scale, element             2,336        133,876
shift+scale, channel             2,336        646
shift+scale, layer               6            20
===============================  ===========  ==============

(Positions: mlp 3 of 784, 256 and 128 features; allconv 10: the input 1×28×28, conv1–3
24 channels, conv4–8 48 channels, conv9 10 channels. Per channel the MLP's features are its
channels, so element and channel modes coincide there.)

>>> model = build_model("mlp", "shift-channel", (784,), 10)
>>> [type(layer).__name__ for layer in model.layers]
['Shift', 'Dense', 'Shift', 'Dense', 'Shift', 'Dense']
>>> model.count_params()
236314
"""

from __future__ import annotations

from chainrule import initializers
from chainrule.layers import (
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    GlobalAveragePooling2D,
    Layer,
    Scale,
    Shift,
)
from chainrule.models import Input, Sequential

#: The variants, in the order of the study's tables.
VARIANTS = (
    "none",
    "batchnorm",
    "shift-element",
    "shift-channel",
    "shift-layer",
    "scale-element",
    "scale-channel",
    "scale-layer",
    "shift-element+scale-element",
    "shift-channel+scale-channel",
    "shift-layer+scale-layer",
)

#: The architectures.
ARCHS = ("allconv", "mlp")

#: The options each architecture takes, with their defaults.
ARCH_OPTIONS = {"allconv": {"width": 0.25}, "mlp": {"hidden": (256, 128)}}

#: Dropout rates (when ``dropout=True``): after the input, and after the hidden positions that
#: get dropout (every hidden Dense of the MLP; the two stride-2 convolutions of the All-CNN).
INPUT_DROPOUT, HIDDEN_DROPOUT = 0.2, 0.5

#: The All-CNN-C's smallest accepted image side (12 → 6 → 3 → 1 through the two stride-2
#: convolutions and the valid 3×3 one).
MIN_IMAGE_SIZE = 12

_SEED_STRIDE = 1000  # kernel seed of the i-th Dense/Conv2D: seed * _SEED_STRIDE + i


# -- the added layers -----------------------------------------------------------------------------


def _parse_variant(variant: str) -> list[tuple[str, str | None]]:
    """``variant`` as (kind, mode) pairs in order: "shift-layer+scale-layer" →
    [("shift", "layer"), ("scale", "layer")]; "none" → []; "batchnorm" → [("batchnorm", None)].

    Raises:
        ValueError: ``variant`` is not one of :data:`VARIANTS`.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {list(VARIANTS)}, got variant={variant!r}")
    if variant == "none":
        return []
    if variant == "batchnorm":
        return [("batchnorm", None)]
    return [tuple(part.split("-")) for part in variant.split("+")]


def added_layers(variant: str, position: str | None = None) -> list[Layer]:
    """New layers that ``variant`` inserts at one position of a model, in order.

    * "none": [];
    * "batchnorm": [BatchNormalization(axis=1)] (features of (N, F), channels of NCHW);
    * "shift-MODE": [Shift(MODE)], y = x + b;
    * "scale-MODE": [Scale(MODE)], y = s · x;
    * "shift-MODE+scale-MODE": [Shift(MODE), Scale(MODE)]: shift first, then scale, so
      y = s · (x + b), the order of batch normalisation's centring before its scaling.

    MODE is "element" (one weight per element of a sample), "channel" (one per channel, axis
    1) or "layer" (one scalar). Every call returns new, unbuilt layers.

    Args:
        variant: one of :data:`VARIANTS`.
        position: when given, the layers are named ``f"{kind}_{position}"`` (e.g.
            "shift_conv3", "batchnorm_input"); otherwise they get the default names.

    Raises:
        ValueError: ``variant`` is not one of :data:`VARIANTS` (the message lists them).
    """
    layers = []
    for kind, mode in _parse_variant(variant):
        name = None if position is None else f"{kind}_{position}"
        if kind == "batchnorm":
            layers.append(BatchNormalization(axis=1, name=name))
        elif kind == "shift":
            layers.append(Shift(mode, name=name))
        else:
            layers.append(Scale(mode, name=name))
    return layers


# -- the architectures ----------------------------------------------------------------------------


def _he(seed: int, index: int):
    """He normal initialisation with the seed of the ``index``-th Dense/Conv2D of a model."""
    return initializers.HeNormal(seed=seed * _SEED_STRIDE + index)


def _mlp_trunk(input_shape, num_classes: int, seed: int, hidden=(256, 128)) -> list:
    """The MLP's layers as (layer, activated, dropout rate after it) triples: Dense(h, relu)
    per ``h`` in ``hidden`` (dropout 0.5 after each), then Dense(num_classes), the logits."""
    hidden = tuple(hidden)
    trunk = []
    for index, units in enumerate(hidden):
        trunk.append((Dense(units, activation="relu", kernel_initializer=_he(seed, index),
                            name=f"dense{index + 1}"), True, HIDDEN_DROPOUT))
    trunk.append((Dense(num_classes, kernel_initializer=_he(seed, len(hidden)),
                        name=f"dense{len(hidden) + 1}"), False, 0.0))
    return trunk


def allconv_channels(width: float) -> tuple[int, int]:
    """The All-CNN-C's two channel counts at ``width``: max(1, round(96·w)), max(1, round(192·w))
    (the paper's 96 and 192 at width 1)."""
    if not width > 0:
        raise ValueError(f"allconv: width must be positive, got width={width!r}")
    return max(1, round(96 * width)), max(1, round(192 * width))


def _allconv_trunk(input_shape, num_classes: int, seed: int, width: float = 0.25) -> list:
    """The All-CNN-C's layers as (layer, activated, dropout rate after it) triples (the table in
    the module docstring); dropout 0.5 after the two stride-2 convolutions."""
    a, b = allconv_channels(width)
    convs = [  # filters, kernel, stride, padding, dropout after
        (a, 3, 1, "same", 0.0),
        (a, 3, 1, "same", 0.0),
        (a, 3, 2, "same", HIDDEN_DROPOUT),
        (b, 3, 1, "same", 0.0),
        (b, 3, 1, "same", 0.0),
        (b, 3, 2, "same", HIDDEN_DROPOUT),
        (b, 3, 1, "valid", 0.0),
        (b, 1, 1, "valid", 0.0),
        (num_classes, 1, 1, "valid", 0.0),
    ]
    trunk = []
    for index, (filters, kernel, stride, padding, rate) in enumerate(convs):
        conv = Conv2D(filters, kernel, strides=stride, padding=padding, activation="relu",
                      kernel_initializer=_he(seed, index), name=f"conv{index + 1}",
                      data_format="channels_first")  # the study's images are NCHW
        trunk.append((conv, True, rate))
    trunk.append((GlobalAveragePooling2D(name="global_average_pooling",
                                         data_format="channels_first"), False, 0.0))
    return trunk


_TRUNKS = {"allconv": _allconv_trunk, "mlp": _mlp_trunk}


def _check_arch_and_shape(arch: str, input_shape: tuple) -> None:
    """Raise ValueError for an unknown ``arch`` or an ``input_shape`` it cannot take."""
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {list(ARCHS)}, got arch={arch!r}")
    if arch == "mlp" and len(input_shape) != 1:
        raise ValueError(f"mlp: input_shape must be (features,), the flattened sample, got "
                         f"{input_shape}")
    if arch == "allconv":
        if len(input_shape) != 3:
            raise ValueError(f"allconv: input_shape must be (channels, height, width), got "
                             f"{input_shape}")
        if min(input_shape[1:]) < MIN_IMAGE_SIZE:
            raise ValueError(f"allconv: images must be at least {MIN_IMAGE_SIZE}x"
                             f"{MIN_IMAGE_SIZE} (two stride-2 convolutions, then a valid 3x3 "
                             f"one), got {input_shape[1]}x{input_shape[2]}")


def _check_options(arch: str, arch_options: dict) -> None:
    unknown = sorted(set(arch_options) - set(ARCH_OPTIONS[arch]))
    if unknown:
        raise TypeError(f"{arch}: unexpected option(s) {unknown}; it takes "
                        f"{sorted(ARCH_OPTIONS[arch])}")


def _add_position(model: Sequential, variant: str, position: str, rate: float) -> None:
    """Append the variant's layers for ``position``, then Dropout(rate) when rate > 0."""
    for layer in added_layers(variant, position):
        model.add(layer)
    if rate > 0:
        model.add(Dropout(rate, name=f"dropout_{position}"))


def build_model(arch: str, variant: str, input_shape, num_classes: int, dropout: bool = False,
                seed: int = 0, **arch_options) -> Sequential:
    """The uncompiled, built model ``arch`` with the layers of ``variant`` added.

    The variant's layers (:func:`added_layers`) come right after the input and right after
    every ReLU-activated Dense/Conv2D, i.e. after every activation but the softmax, which is
    in the loss: the model outputs logits, for ``SparseCategoricalCrossentropy(from_logits=
    True)``. Nothing is added after the MLP's output Dense nor after the All-CNN's global
    average pooling. With ``dropout``, Dropout(0.2) follows the input position's added layers
    and Dropout(0.5) those of every hidden Dense (MLP) or of the two stride-2 convolutions
    (All-CNN-C, as in the paper).

    The i-th Dense/Conv2D (from 0) gets ``HeNormal(seed=seed * 1000 + i)`` kernels and zero
    biases, so every variant built with the same ``seed`` starts from the same weights in
    those layers. Dropout masks come from chainrule's generator (``chainrule.manual_seed``).

    Args:
        arch: "allconv" (input (C, H, W), NCHW, H and W at least 12) or "mlp" (input
            (features,)).
        variant: one of :data:`VARIANTS`.
        input_shape: the shape of one sample.
        num_classes: the number of logits.
        dropout: add the dropout layers.
        seed: a non-negative int, the seed of the Dense/Conv2D kernels.
        arch_options: allconv: ``width`` (default 0.25; channels max(1, round(96·w)) and
            max(1, round(192·w))); mlp: ``hidden`` (default (256, 128), the hidden sizes).

    Raises:
        ValueError: unknown ``arch`` or ``variant``, an input shape of the wrong rank, an image
            smaller than 12x12, a negative seed or a non-positive width.
        TypeError: an option the architecture does not take.
    """
    input_shape = tuple(int(n) for n in input_shape)
    _check_arch_and_shape(arch, input_shape)
    _parse_variant(variant)
    _check_options(arch, arch_options)
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got seed={seed!r}")
    model = Sequential([Input(shape=input_shape)], name=f"{arch}_{variant}")
    _add_position(model, variant, "input", INPUT_DROPOUT if dropout else 0.0)
    for layer, activated, rate in _TRUNKS[arch](input_shape, num_classes, int(seed),
                                                **arch_options):
        model.add(layer)
        if activated:
            _add_position(model, variant, layer.name, rate if dropout else 0.0)
    return model


# -- reading models -------------------------------------------------------------------------------


def added_layers_by_position(model: Sequential) -> dict[str, list[Layer]]:
    """The added layers (Shift, Scale, BatchNormalization) of a :func:`build_model` model by
    position: "input", then the name of the Dense/Conv2D they follow, in order, e.g.
    ``{"input": [shift, scale], "dense1": [...], ...}``. Positions without added layers (all
    of them for "none") are left out. Found from the layer types, not from their names."""
    positions: dict[str, list[Layer]] = {}
    position = "input"
    for layer in model.layers:
        if isinstance(layer, (Dense, Conv2D)):
            position = layer.name
        elif isinstance(layer, (Shift, Scale, BatchNormalization)):
            positions.setdefault(position, []).append(layer)
    return positions


def _describe(layer: Layer) -> tuple[str, str, str]:
    """(kernel or units, stride, padding) of a trunk layer, as text."""
    if isinstance(layer, Conv2D):
        kh, kw = layer.kernel_size
        return (f"{kh}x{kw}, {layer.filters}", str(layer.strides[0]), str(layer.padding))
    if isinstance(layer, Dense):
        return (f"{layer.units} units", "", "")
    return ("", "", "")


def layer_table(arch: str, input_shape=None, num_classes: int = 10,
                **arch_options) -> list[tuple]:
    """The layers of the "none" model: (name, type, kernel/units, stride, padding, output shape
    without the batch axis, parameters) per layer, as in the module docstring. ``input_shape``
    defaults to (1, 28, 28) for allconv and (784,) for mlp."""
    if input_shape is None:
        input_shape = (1, 28, 28) if arch == "allconv" else (784,)
    model = build_model(arch, "none", input_shape, num_classes, **arch_options)
    shape, rows = (None, *input_shape), []
    for layer in model.layers:
        shape = tuple(layer.compute_output_shape(shape))
        rows.append((layer.name, type(layer).__name__, *_describe(layer), shape[1:],
                     layer.count_params()))
    return rows


__all__ = [
    "ARCHS", "ARCH_OPTIONS", "HIDDEN_DROPOUT", "INPUT_DROPOUT", "MIN_IMAGE_SIZE", "VARIANTS",
    "added_layers", "added_layers_by_position", "allconv_channels", "build_model",
    "layer_table",
]
