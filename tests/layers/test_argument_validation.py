"""Every layer argument is checked where it is given, with an error naming the layer class,
the argument and the value; good edge values keep working."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.layers import (
    ELU,
    GRU,
    LSTM,
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Bidirectional,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    LeakyReLU,
    Maxout,
    MaxPooling2D,
    PReLU,
    Reshape,
    Residual,
    Scale,
    Shift,
    SimpleRNN,
    Softmax,
    TimeDistributed,
)

BAD = [
    # core
    (lambda: Dense(2.5), ValueError, "Dense: units must be a positive integer, got 2.5"),
    (lambda: Dense(0), ValueError, "Dense: units must be a positive integer, got 0"),
    (lambda: Dense(-3), ValueError, "Dense: units must be a positive integer, got -3"),
    (lambda: Dense(True), ValueError, "Dense: units must be a positive integer, got True"),
    (lambda: Dense("8"), ValueError, "Dense: units must be a positive integer, got '8'"),
    (lambda: Dense(None), ValueError, "Dense: units must be a positive integer, got None"),
    (lambda: Dense(3.0), ValueError, "Dense: units must be a positive integer, got 3.0"),
    (lambda: Dense(4, input_dim=0), ValueError, "Dense: input_dim must be a positive integer"),
    (lambda: Dense(4, activation="rleu"), ValueError,
     "Dense: activation='rleu': unknown activation 'rleu'"),
    (lambda: Dense(4, activation=3), TypeError, "Dense: activation=3: "),
    (lambda: Dense(4, kernel_initializer="glorot_unifrom"), ValueError,
     "Dense: kernel_initializer='glorot_unifrom': unknown initializer"),
    (lambda: Dense(4, bias_initializer=1.5), TypeError, "Dense: bias_initializer=1.5"),
    (lambda: Dense(4, kernel_regularizer="l3"), ValueError, "Dense: kernel_regularizer='l3'"),
    (lambda: Dense(4, use_bias="no"), ValueError, "Dense: use_bias must be True or False"),
    (lambda: Maxout(2, pieces=0), ValueError, "Maxout: units and pieces must be positive"),
    (lambda: Maxout(2.5), ValueError, "units=2.5"),
    (lambda: Reshape((2, 0)), ValueError, "Reshape: target_shape"),
    (lambda: Reshape((-1, -1)), ValueError, "at most one -1"),
    (lambda: Reshape((2.5, 2)), ValueError, "Reshape: target_shape (2.5, 2)"),
    (lambda: Reshape(None), ValueError, "Reshape: target_shape None"),
    # base arguments every layer takes
    (lambda: Dense(2, input_shape=(0,)), ValueError,
     "Dense: input_shape must hold positive integers"),
    (lambda: Dense(2, input_shape=(2.5,)), ValueError, "Dense: input_shape"),
    (lambda: Dense(2, name=7), TypeError, "Dense: name must be a string, got 7"),
    (lambda: Dense(2, dtype="flaot32"), TypeError, "Dense: dtype='flaot32' is not a dtype"),
    (lambda: Dense(2, trainable="yes"), ValueError, "Dense: trainable must be True or False"),
    (lambda: Dense(2, unitz=3), TypeError, "unexpected keyword argument"),
    # dropout, embedding
    (lambda: Dropout(1.5), ValueError, r"Dropout: rate must be in [0, 1), got 1.5"),
    (lambda: Dropout(-0.1), ValueError, r"Dropout: rate must be in [0, 1), got -0.1"),
    (lambda: Dropout(1.0), ValueError, r"Dropout: rate must be in [0, 1)"),
    (lambda: Dropout(float("nan")), ValueError, r"Dropout: rate must be in [0, 1), got nan"),
    (lambda: Dropout("0.5"), ValueError, r"Dropout: rate must be in [0, 1), got '0.5'"),
    (lambda: Dropout(0.5, seed=-1), ValueError, "Dropout: seed must be None or a non-negative"),
    (lambda: Dropout(0.5, seed=1.5), ValueError, "Dropout: seed must be None"),
    (lambda: Embedding(0, 8), ValueError, "Embedding: input_dim and output_dim must be positive"),
    (lambda: Embedding(10, 2.5), ValueError, "output_dim=2.5"),
    (lambda: Embedding(10, 4, embeddings_initializer="nope"), ValueError,
     "Embedding: embeddings_initializer='nope'"),
    # convolution and pooling
    (lambda: Conv2D(32, 0), ValueError, "Conv2D: kernel_size must be a positive int"),
    (lambda: Conv2D(0, 3), ValueError, "Conv2D: filters must be a positive integer, got 0"),
    (lambda: Conv2D(8.5, 3), ValueError, "Conv2D: filters must be a positive integer, got 8.5"),
    (lambda: Conv2D(8, 2.5), ValueError, "Conv2D: kernel_size must be a positive int"),
    (lambda: Conv2D(8, (3, 3, 3)), ValueError, "Conv2D: kernel_size"),
    (lambda: Conv2D(8, 3, strides=0), ValueError, "Conv2D: strides must be a positive int"),
    (lambda: Conv2D(8, 3, strides=-1), ValueError, "Conv2D: strides"),
    (lambda: Conv2D(8, 3, strides=(1, 0)), ValueError, "Conv2D: strides"),
    (lambda: Conv2D(8, 3, dilation_rate=0), ValueError, "Conv2D: dilation_rate"),
    (lambda: Conv2D(8, 3, padding=-1), ValueError, "Conv2D: padding must be 'valid', 'same'"),
    (lambda: Conv2D(8, 3, padding=True), ValueError, "Conv2D: padding"),
    (lambda: Conv2D(8, 3, padding="full"), ValueError, "Conv2D: padding"),
    (lambda: Conv2D(8, 3, activation="sigmod"), ValueError, "Conv2D: activation='sigmod'"),
    (lambda: MaxPooling2D(0), ValueError, "MaxPooling2D: pool_size must be a positive int"),
    (lambda: MaxPooling2D(-2), ValueError, "MaxPooling2D: pool_size"),
    (lambda: MaxPooling2D(2, strides=0), ValueError, "MaxPooling2D: strides"),
    (lambda: AveragePooling2D(2, padding=1), ValueError,
     "AveragePooling2D: padding must be 'valid' or 'same', got 1"),
    (lambda: AveragePooling2D((2, 0)), ValueError, "AveragePooling2D: pool_size"),
    (lambda: GlobalAveragePooling2D(keepdims="yes"), ValueError,
     "GlobalAveragePooling2D: keepdims must be True or False"),
    (lambda: GlobalMaxPooling2D(keepdims=2), ValueError, "GlobalMaxPooling2D: keepdims"),
    # normalization
    (lambda: BatchNormalization(momentum=2), ValueError, "momentum=2"),
    (lambda: BatchNormalization(momentum=-0.5), ValueError, "momentum"),
    (lambda: BatchNormalization(epsilon=0), ValueError, "epsilon=0"),
    (lambda: BatchNormalization(epsilon=-1e-3), ValueError, "epsilon"),
    (lambda: BatchNormalization(momentum=True), ValueError, "BatchNormalization: need"),
    (lambda: BatchNormalization(axis=1.5), ValueError,
     "BatchNormalization: axis must be an integer, got 1.5"),
    (lambda: BatchNormalization(center="no"), ValueError, "BatchNormalization: center"),
    (lambda: BatchNormalization(gamma_initializer="onez"), ValueError,
     "BatchNormalization: gamma_initializer='onez'"),
    (lambda: Shift("pixel"), ValueError, "Shift: mode must be one of"),
    (lambda: Scale(None), ValueError, "Scale: mode must be one of"),
    (lambda: Scale(initializer="twos"), ValueError, "Scale: initializer='twos'"),
    # activations
    (lambda: Activation("rleu"), ValueError, "Activation: activation='rleu'"),
    (lambda: LeakyReLU("a"), ValueError, "LeakyReLU: negative_slope must be a finite number"),
    (lambda: ELU(float("inf")), ValueError, "ELU: alpha must be a finite number, got inf"),
    (lambda: Softmax(axis=None), ValueError, "Softmax: axis must be an integer, got None"),
    (lambda: PReLU(alpha_regularizer="l5"), ValueError, "PReLU: alpha_regularizer='l5'"),
    # recurrent and wrappers
    (lambda: LSTM(units=2.5), ValueError, "LSTM: units must be a positive integer, got 2.5"),
    (lambda: GRU(0), ValueError, "GRU: units must be a positive integer, got 0"),
    (lambda: SimpleRNN(-1), ValueError, "SimpleRNN: units"),
    (lambda: SimpleRNN(4, activation="tanhh"), ValueError, "SimpleRNN: activation='tanhh'"),
    (lambda: LSTM(4, recurrent_activation="sigmod"), ValueError,
     "LSTM: recurrent_activation='sigmod'"),
    (lambda: LSTM(4, return_sequences="yes"), ValueError, "LSTM: return_sequences must be"),
    (lambda: GRU(4, reset_after=None), ValueError, "GRU: reset_after must be True or False"),
    (lambda: LSTM(4, recurrent_initializer="orthogonl"), ValueError,
     "LSTM: recurrent_initializer='orthogonl'"),
    (lambda: Bidirectional(LSTM(2), merge_mode="max"), ValueError,
     "Bidirectional: merge_mode must be one of"),
    (lambda: Bidirectional(LSTM(2), backward_layer=Dense(2)), TypeError,
     "Bidirectional: backward_layer must be a SimpleRNN, LSTM or GRU, got Dense"),
    (lambda: Bidirectional(Dense(2)), TypeError, "SimpleRNN, LSTM or GRU"),
    (lambda: TimeDistributed("dense"), TypeError, "TimeDistributed: expected a Layer"),
    (lambda: Residual(None), TypeError, "Residual: expected a Layer"),
]


@pytest.mark.parametrize("make, error, fragment", BAD,
                         ids=[f"{i}-{fragment[:40]}" for i, (_, _, fragment) in enumerate(BAD)])
def test_bad_argument_is_refused_naming_layer_argument_and_value(make, error, fragment):
    with pytest.raises(error) as info:
        make()
    assert fragment in str(info.value)


GOOD = [
    (lambda: Dense(np.int64(3)), lambda layer: layer.units == 3 and type(layer.units) is int),
    (lambda: Dense(np.int32(1), use_bias=np.bool_(False)), lambda layer: not layer.use_bias),
    (lambda: Dense(2, input_dim=np.int64(4)), lambda layer: layer.kernel.shape == (4, 2)),
    (lambda: Dense(2, input_shape=(None, 4)), lambda layer: layer.kernel.shape == (4, 2)),
    (lambda: Dense(2, input_shape=4), lambda layer: layer.kernel.shape == (4, 2)),
    (lambda: Dense(2, use_bias=0), lambda layer: layer.use_bias is False),
    (lambda: Dense(2, trainable=False), lambda layer: not layer.trainable),
    (lambda: Dense(2, dtype="float64", name="d64"), lambda layer: layer.name == "d64"),
    (lambda: Maxout(np.int64(2), pieces=np.int16(3)), lambda layer: layer.pieces == 3),
    (lambda: Dropout(0.0), lambda layer: layer.rate == 0.0),
    (lambda: Dropout(0), lambda layer: layer.rate == 0.0),
    (lambda: Dropout(np.float32(0.25), seed=np.int64(3)), lambda layer: layer.seed == 3),
    (lambda: Dropout(0.999), lambda layer: layer.rate == 0.999),
    (lambda: Embedding(np.int64(5), 1), lambda layer: layer.embeddings.shape == (5, 1)),
    (lambda: Conv2D(np.int64(4), (np.int64(3), 1), strides=(1, 2), padding=(0, 1)),
     lambda layer: layer.kernel_size == (3, 1) and layer.padding == (0, 1)),
    (lambda: Conv2D(1, 1, padding="SAME"), lambda layer: layer.padding == "same"),
    (lambda: MaxPooling2D(np.int64(3), strides=1), lambda layer: layer.strides == (1, 1)),
    (lambda: AveragePooling2D(padding="Same"), lambda layer: layer.padding == "same"),
    (lambda: BatchNormalization(momentum=0, epsilon=1e-12), lambda layer: layer.momentum == 0),
    (lambda: BatchNormalization(momentum=1, axis=-1), lambda layer: layer.axis == -1),
    (lambda: BatchNormalization(momentum=np.float32(0.9)), lambda layer: layer.momentum > 0.8),
    (lambda: Reshape((np.int64(2), -1)), lambda layer: layer.target_shape == (2, -1)),
    (lambda: Reshape([3, 4]), lambda layer: layer.target_shape == (3, 4)),
    (lambda: LeakyReLU(0), lambda layer: layer.negative_slope == 0.0),
    (lambda: ELU(np.float64(0.5)), lambda layer: layer.alpha == 0.5),
    (lambda: Softmax(np.int64(1)), lambda layer: layer.axis == 1),
    (lambda: Activation(None), lambda layer: layer(cr.ones(1, 2)).shape == (1, 2)),
    (lambda: Activation(cr.relu), lambda layer: layer.activation is cr.relu),
    (lambda: Shift("layer"), lambda layer: layer.mode == "layer"),
    (lambda: LSTM(np.int64(1), return_sequences=np.bool_(True)),
     lambda layer: layer.units == 1 and layer.return_sequences is True),
    (lambda: Bidirectional(GRU(2), merge_mode=None), lambda layer: layer.merge_mode is None),
    (lambda: Dense(2, kernel_initializer={"class_name": "Constant", "config": {"value": 1.0}},
                   kernel_regularizer="l2"),
     lambda layer: layer.kernel_regularizer is not None),
]


@pytest.mark.parametrize("make, holds", GOOD, ids=[str(i) for i in range(len(GOOD))])
def test_good_edge_values_still_work(make, holds):
    assert holds(make())


def test_reshape_with_the_wrong_number_of_elements_fails_at_build_naming_the_shapes():
    layer = Reshape((5, 5), name="rs_bad")
    with pytest.raises(ValueError, match=r"'rs_bad' \(Reshape\): cannot reshape input of shape "
                                         r"\(2, 12\) \(12 elements per sample\) to target shape "
                                         r"\(5, 5\)"):
        layer(cr.ones(2, 12))
    with pytest.raises(ValueError, match=r"\(None, 7\)"):
        Reshape((2, -1), input_shape=(7,))
