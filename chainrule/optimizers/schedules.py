"""Learning-rate schedules: the learning rate as a function of the step (Keras's API).

A schedule is a callable ``schedule(step) -> float``. Give one to any optimizer as its
``learning_rate``; the step number ``t`` it is called with is the number of optimizer steps
already taken (``optimizer.iterations``), so the first update uses ``schedule(0)``::

    >>> from chainrule.optimizers import SGD, schedules
    >>> schedule = schedules.ExponentialDecay(0.1, decay_steps=100, decay_rate=0.5)
    >>> schedule(0), schedule(100), schedule(200)
    (0.1, 0.05, 0.025)
    >>> opt = SGD(learning_rate=schedule)

Every schedule counts optimizer **steps** (batches), not epochs. For a rate that changes once an
epoch, measure the schedule's interval in steps: ``every=steps_per_epoch * epochs_between``.

Any function of the step works as a schedule too (``learning_rate=lambda t: 0.1 / (1 + t)``);
subclasses of :class:`LearningRateSchedule` can in addition be saved (:meth:`get_config`,
:func:`serialize`) with the optimizer's ``state_dict``.
"""

from __future__ import annotations

import math
from numbers import Real


class LearningRateSchedule:
    """Base class of the schedules: implement ``__call__(step)`` and ``get_config()``.

    ``from_config(get_config())`` must rebuild an equal schedule; subclasses are registered by
    name so :func:`deserialize` can find them.
    """

    _registry: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        LearningRateSchedule._registry[cls.__name__] = cls

    def __call__(self, step) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    __hash__ = object.__hash__


class _StepDecaySchedule(LearningRateSchedule):
    """The shared part of the two Keras decays that are functions of the progress ``p = t / T``
    (``⌊t / T⌋`` with ``staircase=True``) and of a decay rate ``r``."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        _check_positive(type(self).__name__, "decay_steps", decay_steps)
        _check_rate(type(self).__name__, "initial_learning_rate", initial_learning_rate)
        _check_rate(type(self).__name__, "decay_rate", decay_rate)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase

    def progress(self, step) -> float:
        p = step / self.decay_steps
        return math.floor(p) if self.staircase else p

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase}


class ExponentialDecay(_StepDecaySchedule):
    """``α(t) = α₀ · r^(t / T)``: multiply the rate by ``r`` every ``T`` steps, smoothly.

    This is the lectures' ``α₀·e^(−kt)`` with ``k = −ln(r) / T``. With ``staircase=True`` the
    exponent is ``⌊t / T⌋``, so the rate drops in steps (``decay_steps=1, staircase=True`` is
    PyTorch's ``ExponentialLR(gamma=r)``).

    Args:
        initial_learning_rate: ``α₀``.
        decay_steps: ``T``, in optimizer steps (> 0).
        decay_rate: ``r``.
        staircase: use ``⌊t / T⌋`` instead of ``t / T``.

    >>> ExponentialDecay(1.0, decay_steps=10, decay_rate=0.5, staircase=True)(15)
    0.5
    """

    def __call__(self, step) -> float:
        return float(self.initial_learning_rate * self.decay_rate**self.progress(step))


class InverseTimeDecay(_StepDecaySchedule):
    """``α(t) = α₀ / (1 + r · t / T)`` (``⌊t / T⌋`` with ``staircase=True``).

    Args:
        initial_learning_rate: ``α₀``.
        decay_steps: ``T``, in optimizer steps (> 0).
        decay_rate: ``r``.
        staircase: use ``⌊t / T⌋`` instead of ``t / T``.

    >>> InverseTimeDecay(1.0, decay_steps=1, decay_rate=0.5)(2)
    0.5
    """

    def __call__(self, step) -> float:
        return float(self.initial_learning_rate / (1 + self.decay_rate * self.progress(step)))


class PiecewiseConstantDecay(LearningRateSchedule):
    """A constant rate between boundaries: ``values[0]`` while ``t <= boundaries[0]``,
    ``values[i]`` while ``boundaries[i-1] < t <= boundaries[i]``, ``values[-1]`` after.

    Args:
        boundaries: increasing step numbers.
        values: the rates, one more than the boundaries.

    >>> s = PiecewiseConstantDecay([100, 200], [1.0, 0.5, 0.1])
    >>> s(100), s(101), s(500)
    (1.0, 0.5, 0.1)
    """

    def __init__(self, boundaries, values):
        boundaries, values = list(boundaries), list(values)
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                f"PiecewiseConstantDecay: {len(boundaries)} boundaries need "
                f"{len(boundaries) + 1} values, got {len(values)}"
            )
        if any(a >= b for a, b in zip(boundaries, boundaries[1:])):
            raise ValueError(f"PiecewiseConstantDecay: boundaries {boundaries} must increase")
        for value in values:
            _check_rate("PiecewiseConstantDecay", "values", value)
        self.boundaries = boundaries
        self.values = values

    def __call__(self, step) -> float:
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return float(value)
        return float(self.values[-1])

    def get_config(self) -> dict:
        return {"boundaries": list(self.boundaries), "values": list(self.values)}


class CosineDecay(LearningRateSchedule):
    """Cosine annealing from ``α₀`` down to ``alpha · α₀`` over ``decay_steps``, with an
    optional linear warm-up (Keras's ``CosineDecay``).

    Without warm-up: ``α(t) = α₀ · ((1 − alpha) · ½(1 + cos(π · min(t, T) / T)) + alpha)``.
    With ``warmup_target`` and ``warmup_steps = W``: the rate rises linearly from ``α₀`` to
    ``warmup_target`` during the first ``W`` steps, then decays from ``warmup_target`` by the
    formula above with ``t − W`` in place of ``t``.

    Args:
        initial_learning_rate: ``α₀``.
        decay_steps: ``T``, the length of the decay in steps (> 0).
        alpha: the final rate as a fraction of the rate the decay starts from.
        warmup_target: the rate reached at the end of the warm-up (None: no warm-up).
        warmup_steps: ``W``, the length of the warm-up in steps.

    >>> CosineDecay(1.0, decay_steps=10)(5)
    0.5
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None,
                 warmup_steps=0):
        _check_positive("CosineDecay", "decay_steps", decay_steps)
        if warmup_target is not None and warmup_steps <= 0:
            raise ValueError("CosineDecay: a warmup_target needs warmup_steps > 0")
        _check_rate("CosineDecay", "initial_learning_rate", initial_learning_rate)
        _check_rate("CosineDecay", "alpha", alpha)
        if warmup_target is not None:
            _check_rate("CosineDecay", "warmup_target", warmup_target)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.alpha = alpha
        self.warmup_target = warmup_target
        self.warmup_steps = warmup_steps

    def __call__(self, step) -> float:
        if self.warmup_target is None:
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            fraction = step / self.warmup_steps
            start = self.initial_learning_rate
            return float((self.warmup_target - start) * fraction + start)
        return self._decay(step - self.warmup_steps, self.warmup_target)

    def _decay(self, step, start) -> float:
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return float(start * ((1 - self.alpha) * cosine + self.alpha))

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


class StepDecay(LearningRateSchedule):
    """``α(t) = α₀ · drop^⌊t / every⌋``: multiply the rate by ``drop`` every ``every`` steps
    (PyTorch's ``StepLR(step_size=every, gamma=drop)``).

    ``every`` counts optimizer steps, like every schedule here. To halve the rate every 10
    epochs of 250 batches, use ``StepDecay(α₀, drop=0.5, every=10 * 250)``.

    Args:
        initial_learning_rate: ``α₀``.
        drop: the factor applied at each drop (0.5 halves the rate).
        every: the number of steps between drops (> 0).

    >>> s = StepDecay(0.1, drop=0.5, every=10)
    >>> s(9), s(10), s(25)
    (0.1, 0.05, 0.025)
    """

    def __init__(self, initial_learning_rate, drop=0.5, every=10):
        _check_positive("StepDecay", "every", every)
        _check_rate("StepDecay", "initial_learning_rate", initial_learning_rate)
        _check_rate("StepDecay", "drop", drop)
        self.initial_learning_rate = initial_learning_rate
        self.drop = drop
        self.every = every

    def __call__(self, step) -> float:
        return float(self.initial_learning_rate * self.drop ** (step // self.every))

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "drop": self.drop,
                "every": self.every}


def halving_schedule(base_lr: float, epochs: int):
    """An epoch schedule for ``callbacks.LearningRateScheduler`` (``chainrule train``'s
    default): ``base_lr`` for the first half of the epochs, then halved every epoch,
    lr(e) = base_lr · 0.5^max(0, e − ⌊E/2⌋ + 1). Fine convergence at the end, for free.

    >>> [halving_schedule(1.0, 4)(e) for e in range(4)]
    [1.0, 1.0, 0.5, 0.25]
    """
    start = epochs // 2

    def schedule(epoch: int) -> float:
        return base_lr * 0.5 ** max(0, epoch - start + 1)

    return schedule


def serialize(schedule: LearningRateSchedule) -> dict:
    """``{"class_name": ..., "config": {...}}``: a schedule as plain data (None entries left
    out, so only numbers, strings, booleans and lists remain)."""
    config = {k: v for k, v in schedule.get_config().items() if v is not None}
    return {"class_name": type(schedule).__name__, "config": config}


def deserialize(config: dict) -> LearningRateSchedule:
    """The schedule described by :func:`serialize`'s output."""
    name = _plain(config["class_name"])
    cls = LearningRateSchedule._registry.get(name)
    if cls is None:
        raise ValueError(
            f"unknown learning-rate schedule {name!r}; known: "
            f"{sorted(LearningRateSchedule._registry)}"
        )
    return cls.from_config({k: _plain(v) for k, v in config["config"].items()})


def _plain(value):
    """NumPy scalars and arrays (what a saved file gives back) as Python numbers and lists."""
    return value.tolist() if hasattr(value, "tolist") else value


def _check_positive(owner: str, name: str, value) -> None:
    if not _finite_number(value) or value <= 0:
        raise ValueError(f"{owner}: {name} must be > 0, got {value!r}")


def _check_rate(owner: str, name: str, value) -> None:
    """A rate or factor of a schedule: a finite number >= 0 (NaN would poison every step)."""
    if not _finite_number(value) or value < 0:
        raise ValueError(f"{owner}: {name} must be a finite number >= 0, got {value!r}")


def _finite_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
