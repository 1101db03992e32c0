"""Activation functions by name, for ``Dense(64, activation="relu")`` and ``Activation("tanh")``.

:func:`get` maps a Keras name to the function in :mod:`chainrule.functional` (or returns a callable
unchanged); :func:`serialize` maps a function back to its name, for saving a model as JSON.

=================  ==================================================
"linear"           x (the identity; also what ``None`` means)
"relu"             max(x, 0)
"leaky_relu"       x if x > 0 else 0.01·x
"elu"              x if x > 0 else exp(x) − 1
"sigmoid"          1 / (1 + exp(−x))
"tanh"             tanh(x)
"softplus"         log(1 + exp(x))
"gelu"             x · Φ(x), Φ the standard normal CDF
"softmax"          exp(x_i) / Σ_j exp(x_j) over the last axis
"log_softmax"      x_i − log Σ_j exp(x_j) over the last axis
=================  ==================================================

>>> import chainrule as cr
>>> get("relu")(cr.tensor([-1.0, 2.0]))
tensor([0., 2.])
"""

from __future__ import annotations

from chainrule import functional as F
from chainrule.tensor import Tensor


def linear(x: Tensor) -> Tensor:
    """The identity, y = x (Keras's "linear" activation: no activation)."""
    return x


_BY_NAME = {
    "linear": linear,
    "relu": F.relu,
    "leaky_relu": F.leaky_relu,
    "elu": F.elu,
    "sigmoid": F.sigmoid,
    "tanh": F.tanh,
    "softplus": F.softplus,
    "gelu": F.gelu,
    "softmax": F.softmax,
    "log_softmax": F.log_softmax,
}


def get(identifier):
    """The activation function named ``identifier``; a callable is returned as is.

    ``None`` gives :func:`linear` (no activation), as in Keras.
    """
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        try:
            return _BY_NAME[identifier]
        except KeyError:
            raise ValueError(
                f"unknown activation {identifier!r}; known names: {', '.join(sorted(_BY_NAME))}"
            ) from None
    if callable(identifier):
        return identifier
    raise TypeError(f"activations.get: cannot interpret {identifier!r} as an activation")


def serialize(activation) -> str:
    """The name of a built-in activation function (what :func:`get` takes back).

    A function of one's own cannot be named in JSON; a :class:`~chainrule.layers.Layer` (e.g.
    ``LeakyReLU(0.2)``) can be used as the next layer instead.
    """
    for name, function in _BY_NAME.items():
        if activation is function:
            return name
    raise ValueError(
        f"activations.serialize: {getattr(activation, '__name__', activation)!r} is not one of "
        f"the built-in activations ({', '.join(sorted(_BY_NAME))}), so it cannot be saved by name"
    )


__all__ = ["get", "linear", "serialize"]
