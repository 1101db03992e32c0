"""Layers that combine tensors: Add (a sum of inputs), Concatenate (inputs joined along an
axis) and Residual (x + layer(x))."""

from __future__ import annotations

from chainrule.layers import _checks
from chainrule.layers.base import Layer, deserialize, serialize
from chainrule.ops import concat


class Add(Layer):
    """y = x_1 + x_2 + ... + x_k for inputs of equal shape: ``Add()([a, b])`` or ``Add()(a, b)``.

    >>> import chainrule as cr
    >>> Add()([cr.ones(2, 3), cr.ones(2, 3)]).sum().item()
    12.0
    """

    def forward(self, *inputs):
        tensors = inputs[0] if len(inputs) == 1 and isinstance(inputs[0], list) else inputs
        if len(tensors) < 2:
            raise ValueError(f"layer '{self.name}' (Add) needs at least 2 inputs, got "
                             f"{len(tensors)}")
        shapes = [t.shape for t in tensors]
        if any(shape != shapes[0] for shape in shapes):
            raise ValueError(f"layer '{self.name}' (Add): inputs must have equal shapes, got "
                             f"{', '.join(str(s) for s in shapes)}")
        total = tensors[0]
        for t in tensors[1:]:
            total = total + t
        return total

    def compute_output_shape(self, input_shape):
        return input_shape[0]


class Concatenate(Layer):
    """y = [x_1, x_2, ..., x_k] joined along ``axis`` (default -1, the features), for inputs
    whose other axes are equal: ``Concatenate()([a, b])`` or ``Concatenate()(a, b)``.

    Args:
        axis: the axis to join along (default -1); it counts the batch axis (axis 1 of an
            NCHW image is its channels).

    >>> import chainrule as cr
    >>> Concatenate()([cr.ones(2, 3), cr.zeros(2, 4)]).shape
    (2, 7)
    """

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = _checks.integer("Concatenate", "axis", axis)

    def forward(self, *inputs):
        tensors = inputs[0] if len(inputs) == 1 and isinstance(inputs[0], list) else inputs
        if len(tensors) < 2:
            raise ValueError(f"layer '{self.name}' (Concatenate) needs at least 2 inputs, got "
                             f"{len(tensors)}")
        shapes = [t.shape for t in tensors]
        ndim = len(shapes[0])
        axis = self.axis + ndim if self.axis < 0 else self.axis
        if not 0 <= axis < ndim or any(
                len(s) != ndim or any(a != b for i, (a, b) in enumerate(zip(s, shapes[0]))
                                      if i != axis) for s in shapes):
            raise ValueError(f"layer '{self.name}' (Concatenate): inputs must have equal shapes "
                             f"except along axis {self.axis}, got "
                             f"{', '.join(str(s) for s in shapes)}")
        return concat(list(tensors), axis=axis)

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        axis = self.axis % len(shapes[0])
        sizes = [s[axis] for s in shapes]
        total = None if any(n is None for n in sizes) else sum(sizes)
        return (*shapes[0][:axis], total, *shapes[0][axis + 1:])

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


class Residual(Layer):
    """y = x + layer(x): a skip connection around ``layer`` (He et al., 2016, ResNets).

    The wrapped layer (or block of layers) must keep the shape of its input. Its weights are
    this layer's weights (``layer.kernel``, ...).

    >>> import chainrule as cr
    >>> from chainrule.layers import Dense
    >>> Residual(Dense(4))(cr.ones(2, 4)).shape
    (2, 4)
    """

    def __init__(self, layer: Layer, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(layer, Layer):
            raise TypeError(f"Residual: expected a Layer to wrap, got {type(layer).__name__}")
        self.layer = layer

    def build(self, input_shape):
        if not self.layer.built:
            self.layer._build(input_shape)

    def forward(self, x):
        y = self.layer(x)
        if y.shape != x.shape:
            raise ValueError(
                f"layer '{self.name}' (Residual): the wrapped layer '{self.layer.name}' maps "
                f"shape {x.shape} to {y.shape}; x + layer(x) needs it to keep the shape"
            )
        return x + y

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "layer": serialize(self.layer)}

    @classmethod
    def from_config(cls, config: dict) -> Residual:
        config = dict(config)
        return cls(deserialize(config.pop("layer")), **config)
