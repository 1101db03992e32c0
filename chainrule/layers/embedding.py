"""Embedding: integer ids → learned vectors (a lookup table trained by gradient)."""

from __future__ import annotations

from chainrule import functional as F
from chainrule import initializers, regularizers
from chainrule.layers import _checks as check
from chainrule.layers.base import Layer


class Embedding(Layer):
    """y[..., :] = embeddings[ids[...], :]: each integer id in [0, input_dim) selects a row.

    ``embeddings`` has shape (input_dim, output_dim); it is created at construction (its shape
    does not depend on the input). The gradient of a row is the sum of the gradients of every
    position where its id occurs. Parameters: input_dim · output_dim.

    Args:
        input_dim: the vocabulary size (ids are 0 ... input_dim − 1).
        output_dim: the length of each vector.
        embeddings_initializer: default "uniform", Keras's RandomUniform(−0.05, 0.05).
        embeddings_regularizer: a regularizer of the table, or None.

    >>> import chainrule as cr
    >>> Embedding(10, 4)(cr.tensor([[1, 2, 3]])).shape
    (1, 3, 4)
    """

    def __init__(self, input_dim: int, output_dim: int, embeddings_initializer="uniform",
                 embeddings_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if not all(check.is_integer(n) and n > 0 for n in (input_dim, output_dim)):
            raise ValueError(f"Embedding: input_dim and output_dim must be positive integers, "
                             f"got input_dim={input_dim!r}, output_dim={output_dim!r}")
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = check.initializer("Embedding", "embeddings_initializer",
                                                        embeddings_initializer)
        self.embeddings_regularizer = check.regularizer("Embedding", "embeddings_regularizer",
                                                        embeddings_regularizer)
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          self.embeddings_initializer,
                                          self.embeddings_regularizer)
        self.built = True
        if self._given_input_shape is not None:
            self._build_input_shape = (None, *self._given_input_shape)

    def forward(self, ids):
        return F.embedding(ids, self.embeddings)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
            "embeddings_regularizer": check.serialize_or_none(regularizers,
                                                         self.embeddings_regularizer),
        }
