"""Checks of layer constructor arguments, shared by every layer.

Each check takes the layer's class name, the argument's name and its value, and returns the value
in its normal form (a Python int, float, bool or tuple) or raises an error that names all three:
``Dense: units must be a positive integer, got 2.5``. A bad argument is refused where it is given,
not at the first call or deep inside an op.

Integers are Python or NumPy integers, never booleans (``Dense(True)`` is an error) and never
floats, even integral ones; real numbers are any finite int or float except booleans.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from chainrule import activations, initializers, regularizers


def is_integer(value) -> bool:
    """True for Python and NumPy integers; False for booleans, floats and everything else."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_real(value) -> bool:
    """True for finite ints and floats (NumPy's too); False for booleans, NaN and infinities."""
    return (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
            and math.isfinite(value))


def positive_int(layer: str, name: str, value) -> int:
    """``value`` as an int ≥ 1."""
    if not is_integer(value) or value < 1:
        raise ValueError(f"{layer}: {name} must be a positive integer, got {value!r}")
    return int(value)


def integer(layer: str, name: str, value) -> int:
    """``value`` as an int of any sign (an axis, say)."""
    if not is_integer(value):
        raise ValueError(f"{layer}: {name} must be an integer, got {value!r}")
    return int(value)


def optional_seed(layer: str, name: str, value) -> int | None:
    """None, or an int ≥ 0 (what ``numpy.random.default_rng`` takes)."""
    if value is None:
        return None
    if not is_integer(value) or value < 0:
        raise ValueError(f"{layer}: {name} must be None or a non-negative integer, got {value!r}")
    return int(value)


def real(layer: str, name: str, value) -> float:
    """``value`` as a finite float."""
    if not is_real(value):
        raise ValueError(f"{layer}: {name} must be a finite number, got {value!r}")
    return float(value)


def positive_real(layer: str, name: str, value) -> float:
    """``value`` as a finite float > 0."""
    if not is_real(value) or value <= 0:
        raise ValueError(f"{layer}: {name} must be a positive number, got {value!r}")
    return float(value)


def flag(layer: str, name: str, value) -> bool:
    """``value`` as a bool: True, False (NumPy's too), or the integers 0 and 1."""
    if isinstance(value, (bool, np.bool_)) or (is_integer(value) and value in (0, 1)):
        return bool(value)
    raise ValueError(f"{layer}: {name} must be True or False, got {value!r}")


def int_tuple(layer: str, name: str, value, length: int = 2, minimum: int = 1,
              what: str = "a positive int or a pair of them") -> tuple[int, ...]:
    """An int or ``length`` ints, each ≥ ``minimum``, as a tuple of ``length`` ints."""
    if is_integer(value):
        values = (value,) * length
    else:
        try:
            values = tuple(value)
        except TypeError:
            values = ()
    if len(values) != length or not all(is_integer(v) and v >= minimum for v in values):
        raise ValueError(f"{layer}: {name} must be {what}, got {value!r}")
    return tuple(int(v) for v in values)


def shape(layer: str, name: str, value) -> tuple:
    """An int or a sequence of ints ≥ 1 and Nones (unknown sizes), as a tuple."""
    sizes = (value,) if is_integer(value) else value
    try:
        sizes = tuple(sizes)
    except TypeError:
        sizes = None
    if sizes is None or not all(n is None or (is_integer(n) and n > 0) for n in sizes):
        raise ValueError(f"{layer}: {name} must hold positive integers (or None for an unknown "
                         f"size), got {value!r}")
    return tuple(None if n is None else int(n) for n in sizes)


def dtype(layer: str, name: str, value) -> np.dtype:
    """``value`` as a NumPy dtype."""
    try:
        return np.dtype(value)
    except TypeError as error:
        raise TypeError(f"{layer}: {name}={value!r} is not a dtype ({error})") from None


def one_of(layer: str, name: str, value, choices):
    """``value`` itself, which must be one of ``choices``."""
    if not any(value is c or (type(value) is type(c) and value == c) for c in choices):
        raise ValueError(f"{layer}: {name} must be one of {list(choices)}, got {value!r}")
    return value


def layer_instance(layer: str, name: str, value, kind: type, what: str):
    """``value``, which must be an instance of ``kind`` (described as ``what``)."""
    if not isinstance(value, kind):
        raise TypeError(f"{layer}: {name} must be {what}, got {type(value).__name__}")
    return value


def activation(layer: str, name: str, value):
    """The activation function ``value`` names (see :func:`chainrule.activations.get`)."""
    return _looked_up(activations.get, layer, name, value)


def initializer(layer: str, name: str, value):
    """The initializer ``value`` names (see :func:`chainrule.initializers.get`)."""
    return _looked_up(initializers.get, layer, name, value)


def regularizer(layer: str, name: str, value):
    """The regularizer ``value`` names, or None (see :func:`chainrule.regularizers.get`)."""
    return _looked_up(regularizers.get, layer, name, value)


def _looked_up(get, layer: str, name: str, value):
    """``get(value)``, with the layer and the argument added to its error (same type)."""
    try:
        return get(value)
    except (ValueError, TypeError) as error:
        raise type(error)(f"{layer}: {name}={value!r}: {error}") from None


def serialize_or_none(module, value):
    """``module.serialize(value)`` for a layer's config, or None when the option is unset (a
    regularizer, an initializer...): the one spelling of it for every layer's get_config."""
    return None if value is None else module.serialize(value)


def weight_options(layer, what: str, **options) -> None:
    """Check and set a layer's weight options, ``<weight>_initializer=`` and
    ``<weight>_regularizer=`` (as Keras names them), in one place for every layer: each becomes
    the attribute of its name, looked up by :func:`initializer` / :func:`regularizer`."""
    for name, value in options.items():
        if name.endswith("_initializer"):
            setattr(layer, name, initializer(what, name, value))
        elif name.endswith("_regularizer"):
            setattr(layer, name, regularizer(what, name, value))
        else:
            raise TypeError(f"weight_options: {name!r} is not an initializer or a regularizer")


def weight_options_config(layer, names) -> dict:
    """The ``get_config`` entries of a layer's weight options ``names`` (see
    :func:`weight_options`): initializers serialized, unset regularizers None."""
    return {name: (initializers.serialize(getattr(layer, name)) if name.endswith("_initializer")
                   else serialize_or_none(regularizers, getattr(layer, name)))
            for name in names}
