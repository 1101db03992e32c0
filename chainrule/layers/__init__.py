"""Layers: the building blocks of models, with Keras's names and arguments.

Every layer is a :class:`Layer`: callable on Tensors, built lazily on its first input, owning its
weights (``parameters()``, ``state_dict()``, ``get_weights()``) and sub-layers. See
docs/layers.md for the contract and the formulas.

>>> import chainrule as cr
>>> from chainrule.layers import Dense
>>> Dense(3, activation="relu")(cr.ones(2, 5)).shape
(2, 3)
"""

from chainrule.layers.activation import ELU, Activation, LeakyReLU, PReLU, ReLU, Softmax
from chainrule.layers.base import (
    InputSpec,
    Layer,
    LoadResult,
    deserialize,
    reset_names,
    serialize,
    unique_name,
)
from chainrule.layers.conv import Conv1D, Conv2D
from chainrule.layers.core import Dense, Flatten, Maxout, Reshape
from chainrule.layers.dropout import Dropout
from chainrule.layers.embedding import Embedding
from chainrule.layers.merge import Add, Concatenate, Residual
from chainrule.layers.normalization import BatchNormalization, Scale, Shift
from chainrule.layers.pooling import (
    AveragePooling1D,
    AveragePooling2D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    MaxPooling1D,
    MaxPooling2D,
)
from chainrule.layers.recurrent import GRU, LSTM, Bidirectional, SimpleRNN, TimeDistributed

__all__ = [
    "ELU", "GRU", "LSTM", "Activation", "Add", "AveragePooling2D", "BatchNormalization",
    "Bidirectional", "Conv2D", "Dense", "SimpleRNN", "TimeDistributed",
    "Dropout", "Embedding", "Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
    "InputSpec", "Layer", "LeakyReLU", "LoadResult", "Maxout", "MaxPooling2D", "PReLU", "ReLU",
    "Reshape", "Residual", "Scale", "Shift", "Softmax", "deserialize", "reset_names",
    "Concatenate",
    "serialize", "unique_name",
    "AveragePooling1D", "Conv1D", "GlobalAveragePooling1D", "GlobalMaxPooling1D", "MaxPooling1D",
]


def __getattr__(name):
    # Keras has ``from keras.layers import Input``; Input lives with the models (it is a
    # model's entry point), which import this package, so it is looked up on first use.
    if name in ("Input", "InputLayer"):
        from chainrule.models import sequential

        return getattr(sequential, name)
    raise AttributeError(f"module 'chainrule.layers' has no attribute {name!r}")
