"""Weight initializers: the starting values of a layer's weights, as in Keras.

An initializer is called with a shape (and optionally a dtype) and returns a NumPy array::

    >>> import chainrule as cr
    >>> from chainrule import initializers
    >>> g = cr.manual_seed(0)
    >>> initializers.get("he_normal")((3, 4)).shape
    (3, 4)

The variance-scaling family (Glorot/Xavier, He, LeCun) keeps the variance of activations (and of
gradients) roughly constant from layer to layer. With ``fan_in`` inputs and ``fan_out`` outputs per
unit they draw weights with

=========================  ===============================
Glorot (Xavier)            Var(w) = 2 / (fan_in + fan_out)
He (for ReLU)              Var(w) = 2 / fan_in
LeCun (for SELU, tanh)     Var(w) = 1 / fan_in
=========================  ===============================

from a uniform distribution on [−limit, limit] with limit = √(3·Var), or from a normal distribution
truncated at two standard deviations (Keras's choice: the standard deviation is divided by
0.8796..., the standard deviation of a unit normal truncated to [−2, 2], so the variance of the
result is exactly Var).

Fans follow chainrule's weight layouts: a Dense kernel ``(in, out)`` has fan_in = in and
fan_out = out; a convolution kernel ``(filters, in_channels, kh, kw)`` has
fan_in = in_channels·kh·kw and fan_out = filters·kh·kw (Keras's receptive-field rule).

Every random initializer draws from :func:`chainrule.random.get_generator`, so
:func:`chainrule.manual_seed` makes initialization reproducible; an initializer given its own
``seed`` returns the same values on every call (as in Keras).
"""

from __future__ import annotations

import math
import re

import numpy as np

from chainrule._config import get_default_dtype
from chainrule.random import get_generator

# Standard deviation of a unit normal truncated to [-2, 2]; dividing by it restores the variance.
_TRUNCATED_STDDEV = 0.87962566103423978

# Every public Initializer subclass, by class name and by snake_case name (see get()).
_BY_NAME: dict[str, type] = {}


def compute_fans(shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape`` in chainrule's layouts.

    * ``()``: (1, 1); ``(n,)``: (n, n) (a bias or a per-channel vector);
    * ``(in, out)``: a Dense kernel;
    * ``(filters, in_channels, *kernel_size)``: a convolution kernel, both fans multiplied by the
      receptive field size ``prod(kernel_size)``.

    >>> compute_fans((784, 128))
    (784, 128)
    >>> compute_fans((32, 3, 5, 5))
    (75, 800)
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def _snake_case(name: str) -> str:
    """Keras's snake_case of a class name: GlorotUniform -> glorot_uniform, Conv2D -> conv2d."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


class Initializer:
    """Base class: ``init(shape, dtype=None)`` returns a new array of that shape.

    Subclasses implement :meth:`sample` (float64 values); ``__call__`` casts them to ``dtype``
    (default: chainrule's default floating dtype). ``get_config`` returns the constructor
    arguments, so ``type(init).from_config(init.get_config())`` rebuilds it. Subclasses are
    registered by name, so :func:`get` finds user-defined initializers too.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            _BY_NAME.setdefault(cls.__name__, cls)
            _BY_NAME.setdefault(_snake_case(cls.__name__), cls)

    def __call__(self, shape, dtype=None) -> np.ndarray:
        dtype = get_default_dtype() if dtype is None else np.dtype(dtype)
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
        return np.asarray(self.sample(shape, dtype), dtype=dtype)

    def sample(self, shape: tuple, dtype: np.dtype) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Initializer:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class _Seeded(Initializer):
    """An initializer that draws random numbers: from its own seed, or the global generator."""

    def __init__(self, seed: int | None = None):
        self.seed = seed

    def generator(self) -> np.random.Generator:
        return get_generator() if self.seed is None else np.random.default_rng(self.seed)

    def get_config(self) -> dict:
        return {"seed": self.seed}


# -- constants ------------------------------------------------------------------------------------


class Constant(Initializer):
    """Every element equals ``value``.

    >>> Constant(0.25)((2,))
    array([0.25, 0.25], dtype=float32)
    """

    def __init__(self, value: float = 0.0):
        self.value = float(value)

    def sample(self, shape, dtype):
        return np.full(shape, self.value, dtype=dtype)

    def get_config(self) -> dict:
        return {"value": self.value}


class Zeros(Initializer):
    """All zeros (biases, Shift's offsets, BatchNormalization's beta and moving mean)."""

    def sample(self, shape, dtype):
        return np.zeros(shape, dtype=dtype)


class Ones(Initializer):
    """All ones (Scale's factors, BatchNormalization's gamma and moving variance)."""

    def sample(self, shape, dtype):
        return np.ones(shape, dtype=dtype)


# -- plain distributions --------------------------------------------------------------------------


class RandomNormal(_Seeded):
    """w ~ N(mean, stddev²)."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def sample(self, shape, dtype):
        return self.generator().normal(self.mean, self.stddev, shape)

    def get_config(self) -> dict:
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


class RandomUniform(_Seeded):
    """w ~ U[minval, maxval)."""

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        self.minval, self.maxval = float(minval), float(maxval)

    def sample(self, shape, dtype):
        return self.generator().uniform(self.minval, self.maxval, shape)

    def get_config(self) -> dict:
        return {"minval": self.minval, "maxval": self.maxval, **super().get_config()}


class TruncatedNormal(_Seeded):
    """w ~ N(mean, stddev²) restricted to [mean − 2·stddev, mean + 2·stddev].

    Values outside the interval are drawn again (so the standard deviation of the result is
    about 0.88·stddev, as in Keras and TensorFlow).
    """

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def sample(self, shape, dtype):
        return self.mean + self.stddev * _truncated_unit_normal(self.generator(), shape)

    def get_config(self) -> dict:
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


def _truncated_unit_normal(generator: np.random.Generator, shape) -> np.ndarray:
    """Unit normal samples in [-2, 2]: the ~4.6% outside are redrawn until none are left."""
    values = generator.standard_normal(shape)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = generator.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return values


# -- variance scaling: Glorot, He, LeCun ----------------------------------------------------------


class VarianceScaling(_Seeded):
    """Var(w) = scale / n, with n = fan_in, fan_out or (fan_in + fan_out) / 2 (``mode``).

    ``distribution`` is "truncated_normal" (std = √(scale/n) / 0.8796, so that the truncated
    values have variance scale/n), "untruncated_normal" (std = √(scale/n)) or "uniform"
    (U[−limit, limit] with limit = √(3·scale/n)). See :func:`compute_fans` for the fans.
    """

    _modes = ("fan_in", "fan_out", "fan_avg")
    _distributions = ("truncated_normal", "untruncated_normal", "normal", "uniform")

    def __init__(self, scale: float = 1.0, mode: str = "fan_in",
                 distribution: str = "truncated_normal", seed: int | None = None):
        super().__init__(seed)
        if scale <= 0:
            raise ValueError(f"{type(self).__name__}: scale must be positive, got {scale}")
        if mode not in self._modes:
            raise ValueError(f"{type(self).__name__}: mode must be one of {self._modes}, "
                             f"got {mode!r}")
        if distribution not in self._distributions:
            raise ValueError(f"{type(self).__name__}: distribution must be one of "
                             f"{self._distributions}, got {distribution!r}")
        self.scale, self.mode = float(scale), mode
        self.distribution = "truncated_normal" if distribution == "normal" else distribution

    def variance(self, shape) -> float:
        """The target variance scale / n for a weight of ``shape``."""
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        return self.scale / max(1.0, n)

    def sample(self, shape, dtype):
        variance = self.variance(shape)
        generator = self.generator()
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return generator.uniform(-limit, limit, shape)
        if self.distribution == "untruncated_normal":
            return math.sqrt(variance) * generator.standard_normal(shape)
        stddev = math.sqrt(variance) / _TRUNCATED_STDDEV
        return stddev * _truncated_unit_normal(generator, shape)

    def get_config(self) -> dict:
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                **super().get_config()}


class _NamedVarianceScaling(VarianceScaling):
    """A VarianceScaling with fixed scale, mode and distribution; only ``seed`` is configurable."""

    _preset: tuple[float, str, str]

    def __init__(self, seed: int | None = None):
        scale, mode, distribution = self._preset
        super().__init__(scale, mode, distribution, seed)

    def get_config(self) -> dict:
        return {"seed": self.seed}


class GlorotUniform(_NamedVarianceScaling):
    """Xavier uniform: U[−limit, limit], limit = √(6 / (fan_in + fan_out)); Var = 2/(in+out)."""

    _preset = (1.0, "fan_avg", "uniform")


class GlorotNormal(_NamedVarianceScaling):
    """Xavier normal, truncated at 2σ (Keras): Var(w) = 2 / (fan_in + fan_out).

    PyTorch's ``xavier_normal_`` uses an untruncated normal with the same variance.
    """

    _preset = (1.0, "fan_avg", "truncated_normal")


class HeUniform(_NamedVarianceScaling):
    """He (Kaiming) uniform: U[−limit, limit], limit = √(6 / fan_in); Var(w) = 2 / fan_in."""

    _preset = (2.0, "fan_in", "uniform")


class HeNormal(_NamedVarianceScaling):
    """He (Kaiming) normal, truncated at 2σ (Keras): Var(w) = 2 / fan_in."""

    _preset = (2.0, "fan_in", "truncated_normal")


class LecunUniform(_NamedVarianceScaling):
    """LeCun uniform: U[−limit, limit], limit = √(3 / fan_in); Var(w) = 1 / fan_in."""

    _preset = (1.0, "fan_in", "uniform")


class LecunNormal(_NamedVarianceScaling):
    """LeCun normal, truncated at 2σ (Keras): Var(w) = 1 / fan_in."""

    _preset = (1.0, "fan_in", "truncated_normal")


class Orthogonal(_Seeded):
    """A (semi-)orthogonal matrix times ``gain`` (Saxe et al., 2014).

    The weight is viewed as a matrix of ``shape[0]`` rows and ``prod(shape[1:])`` columns (a
    Dense kernel ``(in, out)`` as is; a convolution kernel as one row per filter). Its rows are
    orthonormal when there are fewer rows than columns, else its columns are: the Q factor of
    the QR decomposition of a Gaussian matrix, with signs fixed so that it is uniformly
    distributed.
    """

    def __init__(self, gain: float = 1.0, seed: int | None = None):
        super().__init__(seed)
        self.gain = float(gain)

    def sample(self, shape, dtype):
        if len(shape) < 2:
            raise ValueError(f"Orthogonal: needs a shape with at least 2 axes, got {shape}")
        rows, cols = shape[0], math.prod(shape[1:])
        gaussian = self.generator().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(gaussian)
        q *= np.sign(np.diag(r))  # makes the distribution uniform (Haar) over orthogonal matrices
        if rows < cols:
            q = q.T
        return np.ascontiguousarray(self.gain * q.reshape(shape))  # q.T is Fortran-ordered

    def get_config(self) -> dict:
        return {"gain": self.gain, **super().get_config()}


# -- lookup by name -------------------------------------------------------------------------------


_BY_NAME.update({
    "zero": Zeros, "one": Ones, "uniform": RandomUniform, "normal": RandomNormal,
    "xavier_uniform": GlorotUniform, "xavier_normal": GlorotNormal,
    "kaiming_uniform": HeUniform, "kaiming_normal": HeNormal,
})


def get(identifier):
    """An initializer from a name, a config dict, an Initializer or a callable.

    Names are Keras's snake_case names ("glorot_uniform", "he_normal", "zeros", "uniform", ...)
    or class names ("HeNormal"); a dict is ``{"class_name": ..., "config": {...}}`` as made by
    :func:`serialize`. ``None`` gives ``None``.

    >>> get("he_normal")
    HeNormal(seed=None)
    >>> get({"class_name": "Constant", "config": {"value": 2.0}})
    Constant(value=2.0)
    """
    if identifier is None or isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        return _class_named(identifier)()
    if isinstance(identifier, dict):
        if "class_name" not in identifier:
            raise ValueError(f"initializers.get: a config dict needs a 'class_name', got "
                             f"{identifier!r}")
        return _class_named(identifier["class_name"]).from_config(identifier.get("config", {}))
    if callable(identifier):
        return identifier
    raise TypeError(f"initializers.get: cannot interpret {identifier!r} as an initializer")


def _class_named(name: str) -> type:
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(sorted(n for n in _BY_NAME if n.islower()))
        raise ValueError(f"unknown initializer {name!r}; known names: {known}") from None


def serialize(initializer) -> dict:
    """``{"class_name": ..., "config": ...}`` for an Initializer (JSON-able); see :func:`get`."""
    if not isinstance(initializer, Initializer):
        raise TypeError(
            f"initializers.serialize: {initializer!r} is not an Initializer; a plain function "
            "cannot be saved as JSON (subclass chainrule.initializers.Initializer instead)"
        )
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}


__all__ = [
    "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Initializer",
    "LecunNormal", "LecunUniform", "Ones", "Orthogonal", "RandomNormal", "RandomUniform",
    "TruncatedNormal", "VarianceScaling", "Zeros", "compute_fans", "get", "serialize",
]
