"""Weight regularizers: penalties on a layer's weights added to the training loss, as in Keras.

A regularizer maps a weight Tensor ``w`` to a differentiable scalar Tensor::

    L1(l1)        penalty = l1 · Σ|w|
    L2(l2)        penalty = l2 · Σ w²
    L1L2(l1, l2)  penalty = l1 · Σ|w| + l2 · Σ w²

Keras's convention has no ½ in the L2 term, so its gradient is 2·l2·w. PyTorch's optimizers
implement L2 as ``weight_decay=λ``, adding λ·w to the gradient: that is ``L2(λ / 2)``.

Layers take them as ``kernel_regularizer=`` (a regularizer, a name such as "l2", or a config
dict); ``layer.regularization_loss()`` sums the penalties of a layer and its sub-layers, for a
hand-written training loop::

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0, -2.0], requires_grad=True)
    >>> L2(0.5)(w)
    tensor(2.5, grad_fn=<Mul>)
"""

from __future__ import annotations

from chainrule import backend
from chainrule.initializers import _snake_case
from chainrule.tensor import Tensor

# Every public Regularizer subclass, by class name and by snake_case name (see get()).
_BY_NAME: dict[str, type] = {}


class Regularizer:
    """Base class: ``reg(weight)`` returns the penalty as a scalar Tensor.

    ``get_config`` returns the constructor arguments; subclasses are registered by name, so
    :func:`get` finds user-defined regularizers too.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            _BY_NAME.setdefault(cls.__name__, cls)
            _BY_NAME.setdefault(_snake_case(cls.__name__), cls)

    def __call__(self, weight: Tensor) -> Tensor:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Regularizer:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class L1L2(Regularizer):
    """penalty = l1 · Σ|w| + l2 · Σ w² (each term only when its factor is non-zero)."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        if l1 < 0 or l2 < 0:
            raise ValueError(f"{type(self).__name__}: factors must be >= 0, got l1={l1}, l2={l2}")
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, weight: Tensor) -> Tensor:
        penalty = None
        if self.l1:
            penalty = weight.abs().sum() * self.l1
        if self.l2:
            squares = (weight * weight).sum() * self.l2
            penalty = squares if penalty is None else penalty + squares
        if penalty is None:  # both factors zero: a constant 0 in the weight's dtype
            return Tensor(backend.get_array_module(weight.data).zeros((), weight.dtype))
        return penalty

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """penalty = l1 · Σ|w| (lasso; drives weights to exactly zero)."""

    def __init__(self, l1: float = 0.01):
        super().__init__(l1=l1)

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(L1L2):
    """penalty = l2 · Σ w² (ridge, weight decay; PyTorch's weight_decay=λ is L2(λ/2))."""

    def __init__(self, l2: float = 0.01):
        super().__init__(l2=l2)

    def get_config(self) -> dict:
        return {"l2": self.l2}


_BY_NAME.update({"l1_l2": L1L2, "l1l2": L1L2})


def get(identifier):
    """A regularizer from a name ("l1", "l2", "l1_l2"), a config dict, an instance or a callable.

    Names give the Keras defaults (``L1(0.01)``, ``L2(0.01)``, ``L1L2(0, 0)``); ``None`` gives
    ``None``.

    >>> get("l2")
    L2(l2=0.01)
    >>> get({"class_name": "L1L2", "config": {"l1": 0.1, "l2": 0.2}})
    L1L2(l1=0.1, l2=0.2)
    """
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        return _class_named(identifier)()
    if isinstance(identifier, dict):
        if "class_name" not in identifier:
            raise ValueError(f"regularizers.get: a config dict needs a 'class_name', got "
                             f"{identifier!r}")
        return _class_named(identifier["class_name"]).from_config(identifier.get("config", {}))
    if callable(identifier):
        return identifier
    raise TypeError(f"regularizers.get: cannot interpret {identifier!r} as a regularizer")


def _class_named(name: str) -> type:
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(sorted(n for n in _BY_NAME if n.islower()))
        raise ValueError(f"unknown regularizer {name!r}; known names: {known}") from None


def serialize(regularizer) -> dict:
    """``{"class_name": ..., "config": ...}`` for a Regularizer (JSON-able); see :func:`get`."""
    if not isinstance(regularizer, Regularizer):
        raise TypeError(
            f"regularizers.serialize: {regularizer!r} is not a Regularizer; a plain function "
            "cannot be saved as JSON (subclass chainrule.regularizers.Regularizer instead)"
        )
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}


__all__ = ["L1", "L1L2", "L2", "Regularizer", "get", "serialize"]
