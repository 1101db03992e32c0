"""Activation layers: a nonlinearity as a layer of its own (``Activation("relu")``, ``PReLU()``)."""

from __future__ import annotations

from chainrule import activations, initializers, regularizers
from chainrule import functional as F
from chainrule.layers import _checks as check
from chainrule.layers.base import InputSpec, _SameShapeLayer


class Activation(_SameShapeLayer):
    """y = f(x) for an activation given by name (see :mod:`chainrule.activations`) or function.

    >>> import chainrule as cr
    >>> Activation("relu")(cr.tensor([[-1.0, 2.0]]))
    tensor([[0., 2.]])
    """

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = check.activation("Activation", "activation", activation)

    def forward(self, x):
        return self.activation(x)

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class ReLU(_SameShapeLayer):
    """y = max(x, 0)."""

    def forward(self, x):
        return F.relu(x)


class LeakyReLU(_SameShapeLayer):
    """y = x for x > 0, negative_slope · x otherwise (default slope 0.01, PyTorch's)."""

    def __init__(self, negative_slope: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        self.negative_slope = check.real("LeakyReLU", "negative_slope", negative_slope)

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def get_config(self) -> dict:
        return {**super().get_config(), "negative_slope": self.negative_slope}


class PReLU(_SameShapeLayer):
    """Parametric ReLU (He et al., 2015): y = x for x > 0, α_c · x otherwise, α learned.

    One slope α_c per channel: axis 1 of the input, which is the feature axis of 2-D input
    (N, features) and the channel axis of NCHW input. The number of channels is taken from the
    first input (lazy build). α starts at 0.25 (PyTorch's and the paper's value).

    Args:
        alpha_initializer: initializer of α (default ``Constant(0.25)``).
        alpha_regularizer: regularizer of α, or None.
    """

    def __init__(self, alpha_initializer=None, alpha_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if alpha_initializer is None:
            alpha_initializer = initializers.Constant(0.25)
        self.alpha_initializer = check.initializer("PReLU", "alpha_initializer",
                                                   alpha_initializer)
        self.alpha_regularizer = check.regularizer("PReLU", "alpha_regularizer",
                                                   alpha_regularizer)
        self.input_spec = InputSpec(min_ndim=2)

    def build(self, input_shape):
        channels = input_shape[1]
        self.alpha = self.add_weight("alpha", (channels,), self.alpha_initializer,
                                     self.alpha_regularizer)
        self.input_spec = InputSpec(min_ndim=2, axes={1: channels})

    def forward(self, x):
        return F.prelu(x, self.alpha)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "alpha_initializer": initializers.serialize(self.alpha_initializer),
            "alpha_regularizer": check.serialize_or_none(regularizers, self.alpha_regularizer),
        }


class ELU(_SameShapeLayer):
    """y = x for x > 0, alpha · (exp(x) − 1) otherwise (Clevert et al., 2015)."""

    def __init__(self, alpha: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = check.real("ELU", "alpha", alpha)

    def forward(self, x):
        return F.elu(x, self.alpha)

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha": self.alpha}


class Softmax(_SameShapeLayer):
    """y_i = exp(x_i) / Σ_j exp(x_j) along ``axis`` (default: the last)."""

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = check.integer("Softmax", "axis", axis)

    def forward(self, x):
        return F.softmax(x, axis=self.axis)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}
