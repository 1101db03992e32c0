"""The layer behind ``Input``: the start of a Sequential or a functional model.

A module of its own, below both :mod:`chainrule.models.sequential` and
:mod:`chainrule.models.functional`, which both use it (so neither imports the other back).
"""

from __future__ import annotations

from chainrule.layers.base import Layer


class InputLayer(Layer):
    """The layer behind :func:`Input`: ``Sequential([Input(shape=(784,)), ...])`` or the start
    of a functional model.

    It holds only the input shape (without the batch axis); adding it to a Sequential fixes
    the shapes of every layer, so ``summary()`` works at once. It is not one of a
    Sequential's ``model.layers``, but is one of a functional model's (as in Keras).

    Args:
        shape: the shape of one sample, e.g. ``(784,)`` or ``(1, 28, 28)``.
        dtype: the input's dtype (default: the float dtype).
    """

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, input_shape=None):
        shape = shape if shape is not None else input_shape
        if shape is None:
            raise ValueError("InputLayer needs shape=, the shape of one sample, e.g. (784,)")
        super().__init__(name=name, dtype=dtype)
        self.shape = tuple(None if n is None else int(n) for n in
                           ((shape,) if isinstance(shape, int) else shape))
        self.batch_size = batch_size
        self.built = True
        self._build_input_shape = (batch_size, *self.shape)

    @property
    def output_shape(self):
        return (self.batch_size, *self.shape)

    def forward(self, x):
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {"shape": list(self.shape), "batch_size": self.batch_size,
                "dtype": None if self.dtype is None else self.dtype.name, "name": self.name}
