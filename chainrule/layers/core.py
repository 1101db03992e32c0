"""Core layers: Dense (fully connected), Maxout, Flatten and Reshape."""

from __future__ import annotations

import math

from chainrule import activations
from chainrule import functional as F
from chainrule.layers import _checks as check
from chainrule.layers.base import InputSpec, Layer

#: The weight options of a layer with a kernel and a bias (Dense, Maxout, the convolutions).
KERNEL_AND_BIAS = ("kernel_initializer", "bias_initializer", "kernel_regularizer",
                   "bias_regularizer")


class Dense(Layer):
    """Fully connected layer: y = activation(x · kernel + bias), over the last axis of x.

    ``kernel`` has shape (in_features, units) (Keras's layout; PyTorch's ``nn.Linear`` stores its
    transpose) and ``bias`` shape (units,). The input size is taken from the first input
    (lazy build) unless ``input_dim`` or ``input_shape`` is given. Parameters:
    in_features · units + units.

    Args:
        units: the number of outputs.
        activation: an activation name ("relu", ...), a function, or None for none.
        use_bias: whether to add ``bias``.
        kernel_initializer, bias_initializer: initializers or their names.
        kernel_regularizer, bias_regularizer: regularizers (or names), or None.
        input_dim: the input size, to build at once (Keras); or ``input_shape=(in,)``.

    >>> import chainrule as cr
    >>> layer = Dense(3, activation="relu")
    >>> layer(cr.ones(2, 5)).shape
    (2, 3)
    >>> layer.kernel.shape, layer.count_params()
    ((5, 3), 18)
    """

    def __init__(self, units: int, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, input_dim: int | None = None,
                 **kwargs):
        if input_dim is not None:
            kwargs.setdefault("input_shape", (check.positive_int("Dense", "input_dim", input_dim),))
        super().__init__(**kwargs)
        self.units = check.positive_int("Dense", "units", units)
        self.activation = check.activation("Dense", "activation", activation)
        self.use_bias = check.flag("Dense", "use_bias", use_bias)
        check.weight_options(self, "Dense", kernel_initializer=kernel_initializer,
                             bias_initializer=bias_initializer,
                             kernel_regularizer=kernel_regularizer,
                             bias_regularizer=bias_regularizer)
        self.input_spec = InputSpec(min_ndim=2)

    def build(self, input_shape):
        in_features = input_shape[-1]
        self.kernel = self.add_weight("kernel", (in_features, self.units),
                                      self.kernel_initializer, self.kernel_regularizer)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.units,), self.bias_initializer,
                                        self.bias_regularizer)
        self.input_spec = InputSpec(min_ndim=2, axes={-1: in_features})

    def forward(self, x):
        if self.activation is F.relu:  # fused: one op, no extra pass
            return F.linear(x, self.kernel, self.bias, relu=True)
        return self.activation(F.linear(x, self.kernel, self.bias))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            **check.weight_options_config(self, KERNEL_AND_BIAS),
        }


class Maxout(Layer):
    """Maxout (Goodfellow et al., 2013): the maximum of ``pieces`` affine maps per unit.

    y_j = max_{p < pieces} (x · kernel + bias)[j·pieces + p]

    One kernel of shape (in_features, units · pieces) computes all the affine maps at once; its
    output is viewed as (..., units, pieces) and reduced with max over the last axis (so the
    pieces of unit j are the adjacent columns j·pieces ... j·pieces + pieces − 1). The gradient
    flows into the winning piece only (ties share it). Parameters: (in + 1) · units · pieces.

    Args:
        units: the number of outputs.
        pieces: the number of affine maps each output is the maximum of (k in the paper).
        use_bias, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
            input_dim: as in :class:`Dense`.
    """

    def __init__(self, units: int, pieces: int = 2, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, input_dim: int | None = None,
                 **kwargs):
        if input_dim is not None:
            kwargs.setdefault("input_shape",
                              (check.positive_int("Maxout", "input_dim", input_dim),))
        super().__init__(**kwargs)
        if not all(check.is_integer(n) and n > 0 for n in (units, pieces)):
            raise ValueError(f"Maxout: units and pieces must be positive integers, got "
                             f"units={units!r}, pieces={pieces!r}")
        self.units, self.pieces = int(units), int(pieces)
        self.use_bias = check.flag("Maxout", "use_bias", use_bias)
        check.weight_options(self, "Maxout", kernel_initializer=kernel_initializer,
                             bias_initializer=bias_initializer,
                             kernel_regularizer=kernel_regularizer,
                             bias_regularizer=bias_regularizer)
        self.input_spec = InputSpec(min_ndim=2)

    def build(self, input_shape):
        in_features, width = input_shape[-1], self.units * self.pieces
        self.kernel = self.add_weight("kernel", (in_features, width), self.kernel_initializer,
                                      self.kernel_regularizer)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight("bias", (width,), self.bias_initializer,
                                        self.bias_regularizer)
        self.input_spec = InputSpec(min_ndim=2, axes={-1: in_features})

    def forward(self, x):
        z = F.linear(x, self.kernel, self.bias)
        return z.reshape(*z.shape[:-1], self.units, self.pieces).max(axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "units": self.units,
            "pieces": self.pieces,
            "use_bias": self.use_bias,
            **check.weight_options_config(self, KERNEL_AND_BIAS),
        }


class Flatten(Layer):
    """(N, d1, d2, ...) → (N, d1·d2·...): keeps the batch axis, merges the rest.

    >>> import chainrule as cr
    >>> Flatten()(cr.zeros(2, 3, 4, 5)).shape
    (2, 60)
    """

    def forward(self, x):
        return x.reshape(x.shape[0], -1)

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        return (input_shape[0], None if None in rest else math.prod(rest))


class Reshape(Layer):
    """(N, ...) → (N, *target_shape): the same elements, in the same order, in a new shape.

    ``target_shape`` excludes the batch axis; one of its entries may be -1 (inferred).

    >>> import chainrule as cr
    >>> Reshape((3, -1))(cr.zeros(2, 12)).shape
    (2, 3, 4)
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        sizes = (target_shape,) if check.is_integer(target_shape) else target_shape
        try:
            sizes = tuple(sizes)
        except TypeError:
            sizes = None
        if (sizes is None or not all(check.is_integer(n) for n in sizes)
                or sizes.count(-1) > 1 or any(n < -1 or n == 0 for n in sizes)):
            raise ValueError(f"Reshape: target_shape {target_shape!r} must hold positive "
                             "integer sizes and at most one -1")
        self.target_shape = tuple(int(n) for n in sizes)

    def build(self, input_shape):
        self._resolved(input_shape)  # a mismatch is an error here, naming the layer

    def forward(self, x):
        try:
            return x.reshape(x.shape[0], *self.target_shape)
        except ValueError:
            self._resolved(x.shape)  # raises the error that names this layer
            raise

    def _resolved(self, input_shape):
        """The output shape with -1 worked out; an error if the sizes cannot match."""
        rest = input_shape[1:]
        if None in rest:
            return (input_shape[0], *self.target_shape)
        size, known = math.prod(rest), math.prod(n for n in self.target_shape if n != -1)
        fits = size % known == 0 if -1 in self.target_shape else size == known
        if not fits:
            raise ValueError(
                f"layer '{self.name}' (Reshape): cannot reshape input of shape {tuple(input_shape)}"
                f" ({size} elements per sample) to target shape {self.target_shape}"
            )
        return (input_shape[0], *(size // known if n == -1 else n for n in self.target_shape))

    def compute_output_shape(self, input_shape):
        return self._resolved(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "target_shape": list(self.target_shape)}
