"""Named architectures for image classification, as used by ``chainrule train --model NAME``.

Every model outputs one score (a logit) per class; train it with
``SparseCategoricalCrossentropy(from_logits=True)`` (what :func:`compile_for_classification`
does). Images are NCHW (batch, channels, height, width) with pixels scaled to [0, 1]; the MLP
takes them flattened.

=========  ================================================================================
``mlp``    Dense 256 – ReLU – Dense 128 – ReLU – Dense classes (on flattened pixels)
``cnn``    Conv 3×3 32 (same) – ReLU – MaxPool 2 – Conv 3×3 64 (same) – ReLU – MaxPool 2 –
           Dense 128 – ReLU – Dropout – Dense classes (the benchmarks' small CNN); with
           ``batch_norm=True`` (``chainrule train``'s): Conv – MaxPool – BatchNorm – ReLU
``lenet``  LeNet-5 with ReLU and max pooling: Conv 5×5 6 (pad 2) – Pool – Conv 5×5 16 –
           Pool – Dense 120 – Dense 84 – Dense classes
=========  ================================================================================

>>> model = build("cnn", input_shape=(1, 28, 28))   # doctest: +SKIP
>>> model.count_params()                            # doctest: +SKIP
421642
"""

from __future__ import annotations

import math

from chainrule import losses
from chainrule.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D, ReLU
from chainrule.models import Input, Sequential

#: The zoo's images are NCHW whatever ``chainrule.config.set_image_data_format`` says: the
#: datasets and ``chainrule train`` give NCHW arrays.
NCHW = "channels_first"


def mlp(input_shape=(784,), num_classes: int = 10, hidden=(256, 128)) -> Sequential:
    """A multi-layer perceptron: Dense(h, relu) for each ``h`` in ``hidden``, then
    Dense(num_classes). ``input_shape`` is the flattened sample shape, e.g. (784,)."""
    model = Sequential([Input(shape=(math.prod(input_shape),))], name="mlp")
    for units in hidden:
        model.add(Dense(units, activation="relu"))
    model.add(Dense(num_classes))
    return model


def cnn(input_shape=(1, 28, 28), num_classes: int = 10, dropout: float = 0.25,
        batch_norm: bool = False, filters=(32, 64), units: int = 128) -> Sequential:
    """The benchmarks' small CNN: two 3×3 "same" convolutions (``filters``: 32 and 64), each with
    ReLU and 2×2 max pooling, then Dense(``units``: 128) with ReLU, Dropout(``dropout``) and
    Dense(num_classes). 421,642 parameters on 1×28×28 input.

    With ``batch_norm``, each convolution (without its bias, which the normalization's β
    replaces) is pooled first, then batch-normalized, then ReLU: Conv – MaxPool – BN – ReLU.
    Pooling first gives the normalization and the ReLU a quarter of the values to work on
    (max pooling commutes with ReLU, and with BN's affine map when γ > 0); 421,930 parameters
    on 1×28×28 input (192 of them the moving statistics)."""
    _check_image(input_shape, "cnn", min_size=4)
    layers = [Input(shape=input_shape)]
    for count in filters:
        if batch_norm:
            layers += [Conv2D(count, 3, padding="same", use_bias=False, data_format=NCHW),
                       MaxPooling2D(2, data_format=NCHW), BatchNormalization(axis=1), ReLU()]
        else:
            layers += [Conv2D(count, 3, padding="same", activation="relu", data_format=NCHW),
                       MaxPooling2D(2, data_format=NCHW)]
    layers += [Flatten(), Dense(units, activation="relu")]
    if dropout:
        layers.append(Dropout(dropout))
    layers.append(Dense(num_classes))
    return Sequential(layers, name="cnn")


def lenet(input_shape=(1, 28, 28), num_classes: int = 10) -> Sequential:
    """LeNet-5 (LeCun et al., 1998) with today's ReLU and max pooling: Conv 5×5 6 (padding 2)
    – Pool 2 – Conv 5×5 16 – Pool 2 – Dense 120 – Dense 84 – Dense(num_classes)."""
    _check_image(input_shape, "lenet", min_size=12)
    return Sequential([
        Input(shape=input_shape),
        Conv2D(6, 5, padding=2, activation="relu", data_format=NCHW),
        MaxPooling2D(2, data_format=NCHW),
        Conv2D(16, 5, activation="relu", data_format=NCHW),
        MaxPooling2D(2, data_format=NCHW),
        Flatten(),
        Dense(120, activation="relu"),
        Dense(84, activation="relu"),
        Dense(num_classes),
    ], name="lenet")


#: The architectures by name.
MODELS = {"mlp": mlp, "cnn": cnn, "lenet": lenet}

#: Whether each architecture takes images (NCHW) or flattened vectors.
TAKES_IMAGES = {"mlp": False, "cnn": True, "lenet": True}


def _check_image(input_shape, name: str, min_size: int) -> None:
    if len(input_shape) != 3:
        raise ValueError(f"{name}: input_shape must be (channels, height, width), got "
                         f"{tuple(input_shape)}")
    if min(input_shape[1:]) < min_size:
        raise ValueError(f"{name}: images must be at least {min_size}x{min_size}, got "
                         f"{input_shape[1]}x{input_shape[2]}")


def build(name: str, input_shape, num_classes: int = 10, **options) -> Sequential:
    """The architecture ``name`` ("mlp", "cnn", "lenet") for samples of ``input_shape``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](input_shape=tuple(input_shape), num_classes=num_classes, **options)


def compile_for_classification(model, optimizer="adam", learning_rate: float | None = None):
    """Compile with SparseCategoricalCrossentropy(from_logits=True) and accuracy; the
    optimizer by name with ``learning_rate`` when given."""
    from chainrule import optimizers

    optimizer = optimizers.get(optimizer)
    if learning_rate is not None:
        optimizer.learning_rate = learning_rate
    model.compile(optimizer=optimizer,
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


__all__ = ["MODELS", "build", "cnn", "compile_for_classification", "lenet", "mlp"]
