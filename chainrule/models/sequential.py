"""Sequential: a model that is a stack of layers, each feeding the next (Keras's Sequential).

>>> from chainrule.layers import Dense
>>> model = Sequential([Dense(64, activation="relu", input_shape=(784,)), Dense(10)])
>>> model.add(Dense(10, activation="softmax"))
>>> [layer.name for layer in model.layers][-1].startswith("dense")
True
>>> model.output_shape
(None, 10)
"""

from __future__ import annotations

import numpy as np

from chainrule.layers.base import Layer, deserialize, serialize
from chainrule.models.functional import Input, SymbolicTensor
from chainrule.models.input_layer import InputLayer
from chainrule.models.model import Model


class Sequential(Model):
    """A stack of layers: ``y = layers[-1](... layers[1](layers[0](x)))``.

    Args:
        layers: the layers, in order (more can be added with :meth:`add`). The first may be an
            :func:`Input` or have ``input_shape=``; then the model is built at once.
        name: the model's name (default "sequential", numbered).
        trainable, dtype: as for every :class:`~chainrule.layers.Layer`.

    The layers are also ``model.layers`` (a copy of the list), ``model[i]``, ``len(model)``
    and ``for layer in model``; weights are named ``layers.<i>.<weight>`` in ``state_dict()``.
    """

    def __init__(self, layers=None, name: str | None = None, trainable: bool = True,
                 dtype=None):
        super().__init__(name=name, trainable=trainable, dtype=dtype)
        self.layers = []  # registered as sub-layers: named layers.0, layers.1, ...
        self._input_dtype = None
        for layer in layers or []:
            self.add(layer)

    # ``layers`` is read-only for users (a copy, as in Keras); the one assignment above goes
    # through Layer.__setattr__, which registers the list so its items are sub-layers.
    @property
    def layers(self) -> list[Layer]:
        """The layers, in order (a new list: use :meth:`add` and :meth:`pop` to change them)."""
        return list(self._layer_list)

    @layers.setter
    def layers(self, value) -> None:
        if "_layer_list" in self.__dict__:
            raise AttributeError("Sequential.layers cannot be replaced; use add() and pop()")
        self.__dict__["_layer_list"] = value

    # -- changing the stack ---------------------------------------------------------------------

    def add(self, layer) -> None:
        """Append ``layer``. If the input shape is known (an :func:`Input` came first, the first
        layer has ``input_shape=``, or the model was built), the new layer is built at once."""
        if isinstance(layer, SymbolicTensor):  # Input(shape=...): its InputLayer
            if not isinstance(layer.node.layer, InputLayer):
                raise TypeError(f"Sequential.add: {layer!r} is a layer's output, not an Input")
            layer = layer.node.layer
        if isinstance(layer, InputLayer):
            if self._layer_list:
                raise ValueError(f"Sequential '{self.name}': an Input can only come first")
            self._input_dtype = layer.dtype
            self._build((None, *layer.shape))
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a Layer, got {type(layer).__name__}")
        if any(existing is layer for existing in self._layer_list):
            raise ValueError(f"Sequential '{self.name}': layer '{layer.name}' is already in it")
        self._layer_list.append(layer)
        if self.built:
            self._build_layers(self._build_input_shape)
        elif len(self._layer_list) == 1 and layer.built and layer.input_shape is not None:
            self._build(layer.input_shape)

    def pop(self) -> Layer:
        """Remove and return the last layer."""
        if not self._layer_list:
            raise IndexError(f"Sequential '{self.name}' has no layers to pop")
        layer = self._layer_list.pop()
        self._last_output_shape = None
        return layer

    def __getitem__(self, index):
        """``model[i]`` is a layer; ``model[a:b]`` a new Sequential sharing those layers."""
        if isinstance(index, slice):
            return Sequential(self._layer_list[index])
        return self._layer_list[index]

    def __len__(self) -> int:
        return len(self._layer_list)

    def __iter__(self):
        return iter(list(self._layer_list))

    # -- building and calling -------------------------------------------------------------------

    def _build_layers(self, input_shape) -> None:
        """Build the layers one after the other from the shapes alone, each from the output
        shape of the one before; stop at a layer that cannot tell its output shape (it will be
        built by the first call, or by :meth:`build`'s call on zeros)."""
        shape = tuple(input_shape)
        for layer in self._layer_list:
            if not layer.built:
                layer._build(shape)
            try:
                shape = tuple(layer.compute_output_shape(shape))
            except NotImplementedError:
                return

    def build(self, input_shape=None, input_dtype=None) -> None:
        """Build every layer for inputs of ``input_shape`` (batch first, e.g. ``(None, 784)``)."""
        if input_shape is None:
            if not self.built:
                raise ValueError(f"Sequential '{self.name}'.build() needs an input shape")
            input_shape = self._build_input_shape
        super().build(input_shape, input_dtype or self._input_dtype)

    def forward(self, x):
        for layer in self._layer_list:
            x = layer(x)
        return x

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self._layer_list:
            shape = tuple(layer.compute_output_shape(shape))
        return shape

    @property
    def output_shape(self):
        """The output shape of the last layer (batch axis None)."""
        if not self._layer_list:
            raise AttributeError(f"Sequential '{self.name}' has no layers, so no output shape")
        return self._layer_list[-1].output_shape

    def _summary_rows(self) -> list:
        return [(layer.name, layer) for layer in self._layer_list]

    def extra_repr(self) -> str:
        return f"name={self.name!r}"  # the layers are listed below it

    # -- configuration --------------------------------------------------------------------------

    def get_config(self) -> dict:
        """``name``, ``trainable``, ``dtype`` and ``layers`` (each ``{"class_name", "config"}``);
        plus ``input_shape`` when the model was built for one."""
        config = {"name": self.name, "trainable": self.trainable,
                  "dtype": None if self.dtype is None else self.dtype.name,
                  "layers": [serialize(layer) for layer in self._layer_list]}
        if self.built and self._build_input_shape is not None:
            config["input_shape"] = list(self._build_input_shape[1:])
            if self._input_dtype is not None:
                config["input_dtype"] = self._input_dtype.name
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Sequential:
        config = dict(config)
        layers = [deserialize(c, custom_objects) for c in config.pop("layers", [])]
        input_shape = config.pop("input_shape", None)
        input_dtype = config.pop("input_dtype", None)
        model = cls(layers, **config)
        if input_dtype is not None:
            model._input_dtype = np.dtype(input_dtype)
        if input_shape is not None and not model.built:
            model.build((None, *input_shape))
        return model


__all__ = ["Input", "InputLayer", "Sequential"]
