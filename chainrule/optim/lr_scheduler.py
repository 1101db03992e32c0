"""PyTorch's learning-rate schedulers (``torch.optim.lr_scheduler``), on any chainrule optimizer.

A scheduler writes a new rate into every ``optimizer.param_groups[i]["lr"]`` each time
``scheduler.step()`` is called (once per epoch, after the epoch's ``optimizer.step()`` calls),
with PyTorch's semantics: making the scheduler counts as step 0 (``last_epoch`` becomes 0 and the
rate of epoch 0 is set), ``get_last_lr()`` is the list of rates it set last, and the chainable
schedulers (StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR) update the group's current
rate recursively as PyTorch does, so a rate changed by hand carries on from there.

>>> import chainrule.nn as nn
>>> import chainrule.optim as optim
>>> opt = optim.SGD(nn.Linear(2, 1).parameters(), lr=1.0)
>>> scheduler = StepLR(opt, step_size=2, gamma=0.5)
>>> rates = []
>>> for epoch in range(5):
...     rates.append(scheduler.get_last_lr()[0])
...     scheduler.step()
>>> rates
[1.0, 1.0, 0.5, 0.5, 0.25]

(Keras-style schedules, functions of the step count given as ``learning_rate=``, live in
:mod:`chainrule.optimizers.schedules`; a group whose rate is such a function cannot also be
driven by one of these.)
"""

from __future__ import annotations

import math
from collections import Counter

__all__ = ["CosineAnnealingLR", "ExponentialLR", "LRScheduler", "LambdaLR", "MultiStepLR",
           "MultiplicativeLR", "ReduceLROnPlateau", "StepLR"]


def _rate_of(scheduler_name: str, group) -> float:
    rate = group["lr"]
    if callable(rate):
        raise TypeError(f"{scheduler_name}: a parameter group's learning rate is a schedule "
                        f"({type(rate).__name__}); PyTorch-style schedulers need a number")
    return float(rate)


class LRScheduler:
    """Base class: ``step()`` moves to the next epoch and writes :meth:`get_lr`'s rates.

    Args:
        optimizer: any chainrule optimizer (``chainrule.optim`` or ``chainrule.optimizers``).
        last_epoch: only -1 (start from the beginning) is supported.
    """

    def __init__(self, optimizer, last_epoch: int = -1):
        if not hasattr(optimizer, "param_groups") or not optimizer.param_groups:
            raise TypeError(f"{type(self).__name__}: expected an optimizer holding parameters, "
                            f"got {type(optimizer).__name__}")
        if last_epoch != -1:
            raise NotImplementedError(f"{type(self).__name__}: last_epoch={last_epoch}: only "
                                      "-1 is supported; restore a scheduler with "
                                      "load_state_dict instead")
        self.optimizer = optimizer
        self.base_lrs = [_rate_of(type(self).__name__, g) for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self.step()

    def get_lr(self) -> list[float]:
        """The rates of epoch ``last_epoch`` (computed from the groups' current rates)."""
        raise NotImplementedError

    def step(self, epoch=None) -> None:
        """Move to the next epoch (or to ``epoch``) and set its rates."""
        self._step_count += 1
        if epoch is None:
            self.last_epoch += 1
            rates = self.get_lr()
        else:
            self.last_epoch = int(epoch)
            closed = getattr(self, "_closed_form_lr", None)
            rates = closed() if closed is not None else self.get_lr()
        for group, rate in zip(self.optimizer.param_groups, rates):
            group["lr"] = float(rate)
        self._last_lr = [float(g["lr"]) for g in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The rates set by the last :meth:`step` (one per parameter group)."""
        return list(self._last_lr)

    def _current(self) -> list[float]:
        return [_rate_of(type(self).__name__, g) for g in self.optimizer.param_groups]

    _unsaved = ("optimizer",)

    def state_dict(self) -> dict:
        """The scheduler's counters and settings (functions left out, as PyTorch)."""
        return {k: v for k, v in self.__dict__.items()
                if k not in self._unsaved and not callable(v)
                and not (isinstance(v, list) and any(callable(x) for x in v))}

    def load_state_dict(self, state: dict) -> None:
        self.__dict__.update(state)


class StepLR(LRScheduler):
    """lr × gamma every ``step_size`` epochs: lr_e = base · gamma^⌊e / step_size⌋."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size, self.gamma = step_size, float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current()
        return [rate * self.gamma for rate in self._current()]

    def _closed_form_lr(self):
        return [base * self.gamma ** (self.last_epoch // self.step_size)
                for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """lr × gamma at each epoch in ``milestones``."""

    def __init__(self, optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        self.milestones = Counter(int(m) for m in milestones)
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch not in self.milestones:
            return self._current()
        factor = self.gamma ** self.milestones[self.last_epoch]
        return [rate * factor for rate in self._current()]

    def _closed_form_lr(self):
        passed = sum(n for m, n in self.milestones.items() if m <= self.last_epoch)
        return [base * self.gamma ** passed for base in self.base_lrs]

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["milestones"] = dict(self.milestones)
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.milestones = Counter(self.milestones)


class ExponentialLR(LRScheduler):
    """lr × gamma every epoch."""

    def __init__(self, optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0:
            return self._current()
        return [rate * self.gamma for rate in self._current()]

    def _closed_form_lr(self):
        return [base * self.gamma ** self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine from the base rate down to ``eta_min`` over ``T_max`` epochs (and back up, as
    PyTorch's recursive form does past ``T_max``):
    lr_e = eta_min + (base − eta_min) · (1 + cos(π e / T_max)) / 2.
    """

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0,  # noqa: N803 - PyTorch's
                 last_epoch: int = -1):
        if isinstance(T_max, bool) or not isinstance(T_max, int) or T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive integer, "
                             f"got {T_max!r}")
        self.T_max, self.eta_min = T_max, float(eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        e, t, low = self.last_epoch, self.T_max, self.eta_min
        current = self._current()
        if e == 0:
            return current
        if (e - 1 - t) % (2 * t) == 0:
            return [rate + (base - low) * (1 - math.cos(math.pi / t)) / 2
                    for rate, base in zip(current, self.base_lrs)]
        return [(1 + math.cos(math.pi * e / t)) / (1 + math.cos(math.pi * (e - 1) / t))
                * (rate - low) + low for rate in current]

    def _closed_form_lr(self):
        return [self.eta_min + (base - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base in self.base_lrs]


class LambdaLR(LRScheduler):
    """lr_e = base · lr_lambda(e); one function, or one per parameter group."""

    def __init__(self, optimizer, lr_lambda, last_epoch: int = -1):
        groups = len(optimizer.param_groups)
        lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else \
            [lr_lambda] * groups
        if len(lambdas) != groups:
            raise ValueError(f"LambdaLR: expected {groups} functions (one per parameter group), "
                             f"got {len(lambdas)}")
        self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * f(self.last_epoch) for base, f in zip(self.base_lrs, self.lr_lambdas)]


class MultiplicativeLR(LRScheduler):
    """lr_e = lr_(e−1) · lr_lambda(e) for e > 0."""

    def __init__(self, optimizer, lr_lambda, last_epoch: int = -1):
        groups = len(optimizer.param_groups)
        lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else \
            [lr_lambda] * groups
        if len(lambdas) != groups:
            raise ValueError(f"MultiplicativeLR: expected {groups} functions, got {len(lambdas)}")
        self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        current = self._current()
        if self.last_epoch == 0:
            return current
        return [rate * f(self.last_epoch) for rate, f in zip(current, self.lr_lambdas)]


class ReduceLROnPlateau:
    """Multiply the rates by ``factor`` when a metric has stopped improving for ``patience``
    epochs (PyTorch's ``ReduceLROnPlateau``): ``scheduler.step(val_loss)`` once per epoch.

    Args:
        mode: "min" (lower is better) or "max".
        factor: the multiplier, < 1.
        patience: epochs without improvement tolerated before a reduction.
        threshold, threshold_mode: what counts as an improvement: "rel" (by a fraction
            ``threshold`` of the best value) or "abs".
        cooldown: epochs to wait after a reduction before counting bad epochs again.
        min_lr: a floor (one number, or one per group).
        eps: a reduction smaller than this is skipped.
    """

    def __init__(self, optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr=0, eps: float = 1e-8):
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1.0, got {factor}")
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', "
                             f"got {threshold_mode!r}")
        groups = optimizer.param_groups
        self.min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else \
            [min_lr] * len(groups)
        if len(self.min_lrs) != len(groups):
            raise ValueError(f"ReduceLROnPlateau: expected {len(groups)} min_lr values, "
                             f"got {len(self.min_lrs)}")
        self.optimizer = optimizer
        self.mode, self.factor, self.patience = mode, float(factor), int(patience)
        self.threshold, self.threshold_mode = float(threshold), threshold_mode
        self.cooldown, self.eps = int(cooldown), float(eps)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0
        self._last_lr = [_rate_of("ReduceLROnPlateau", g) for g in groups]

    def is_better(self, a: float, best: float) -> bool:
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return a < best * (1.0 - self.threshold)
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def step(self, metrics) -> None:
        """Record this epoch's value of the monitored metric; reduce the rates if needed."""
        current = float(metrics.item() if hasattr(metrics, "item") else metrics)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, floor in zip(self.optimizer.param_groups, self.min_lrs):
                old = _rate_of("ReduceLROnPlateau", group)
                new = max(old * self.factor, floor)
                if old - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [float(g["lr"]) for g in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state: dict) -> None:
        self.__dict__.update(state)
