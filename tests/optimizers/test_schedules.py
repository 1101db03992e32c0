"""Schedules: Keras's formulas (hand-computed values) and trajectories equal to torch's
lr_scheduler equivalents."""

from __future__ import annotations

import math

import pytest

from chainrule.optimizers import SGD, Adam, AdamW, schedules
from tests.optimizers._parity import run_parity, train
from tests.torch_helpers import require_torch

torch = require_torch()

# (schedule, step, expected learning rate), each computed by hand from Keras's formula.
VALUES = [
    (schedules.ExponentialDecay(0.1, 10, 0.96), 0, 0.1),
    (schedules.ExponentialDecay(0.1, 10, 0.96), 25, 0.1 * 0.96**2.5),
    (schedules.ExponentialDecay(0.1, 10, 0.96, staircase=True), 25, 0.1 * 0.96**2),
    (schedules.ExponentialDecay(0.1, 10, 0.96, staircase=True), 9, 0.1),
    (schedules.InverseTimeDecay(0.1, 10, 0.5), 25, 0.1 / (1 + 0.5 * 2.5)),
    (schedules.InverseTimeDecay(0.1, 10, 0.5, staircase=True), 25, 0.1 / (1 + 0.5 * 2)),
    (schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]), 0, 1.0),
    (schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]), 10, 1.0),
    (schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]), 11, 0.5),
    (schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]), 20, 0.5),
    (schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]), 21, 0.1),
    (schedules.CosineDecay(1.0, 100, alpha=0.1), 0, 1.0),
    (schedules.CosineDecay(1.0, 100, alpha=0.1), 50, 0.1 + 0.9 * 0.5),
    (schedules.CosineDecay(1.0, 100, alpha=0.1), 25, 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4))),
    (schedules.CosineDecay(1.0, 100, alpha=0.1), 100, 0.1),
    (schedules.CosineDecay(1.0, 100, alpha=0.1), 250, 0.1),
    (schedules.CosineDecay(0.0, 100, warmup_target=2.0, warmup_steps=10), 5, 1.0),
    (schedules.CosineDecay(0.0, 100, warmup_target=2.0, warmup_steps=10), 10, 2.0),
    (schedules.CosineDecay(0.0, 100, warmup_target=2.0, warmup_steps=10), 60, 1.0),
    (schedules.CosineDecay(0.0, 100, warmup_target=2.0, warmup_steps=10), 500, 0.0),
    (schedules.StepDecay(0.1), 9, 0.1),
    (schedules.StepDecay(0.1), 10, 0.05),
    (schedules.StepDecay(0.1, drop=0.1, every=3), 7, 0.1 * 0.1**2),
]


@pytest.mark.parametrize("schedule, step, expected", VALUES)
def test_schedule_follows_the_keras_formula(schedule, step, expected):
    value = schedule(step)
    assert isinstance(value, float)
    assert value == pytest.approx(expected, rel=1e-12, abs=1e-15)


def _lambda(schedule):
    """torch LambdaLR multiplies the initial rate by a factor: schedule(t) / schedule(0)."""
    return lambda t: schedule(t) / schedule(0)


# (chainrule schedule, torch scheduler factory) pairs that give the same rate at every step.
TORCH_EQUIVALENTS = {
    "exponential_lr": (
        schedules.ExponentialDecay(0.05, decay_steps=1, decay_rate=0.95, staircase=True),
        lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.95),
    ),
    "step_lr": (
        schedules.StepDecay(0.05, drop=0.5, every=7),
        lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.5),
    ),
    "cosine_annealing_lr": (
        schedules.CosineDecay(0.05, decay_steps=60, alpha=0.1),
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=60, eta_min=0.005),
    ),
    "inverse_time_lambda": (
        schedules.InverseTimeDecay(0.05, decay_steps=5, decay_rate=0.3),
        lambda opt: torch.optim.lr_scheduler.LambdaLR(
            opt, _lambda(schedules.InverseTimeDecay(0.05, decay_steps=5, decay_rate=0.3))),
    ),
    "piecewise_lambda": (
        schedules.PiecewiseConstantDecay([10, 30], [0.05, 0.02, 0.01]),
        lambda opt: torch.optim.lr_scheduler.LambdaLR(
            opt, _lambda(schedules.PiecewiseConstantDecay([10, 30], [0.05, 0.02, 0.01]))),
    ),
    "cosine_warmup_lambda": (
        schedules.CosineDecay(0.01, 40, warmup_target=0.05, warmup_steps=10),
        lambda opt: torch.optim.lr_scheduler.LambdaLR(
            opt, _lambda(schedules.CosineDecay(0.01, 40, warmup_target=0.05, warmup_steps=10))),
    ),
}


@pytest.mark.parametrize("case", TORCH_EQUIVALENTS)
@pytest.mark.parametrize("algorithm", ["SGD", "AdamW"])
def test_trajectory_matches_torch_lr_scheduler(case, algorithm):
    schedule, make_scheduler = TORCH_EQUIVALENTS[case]
    if algorithm == "SGD":
        def ours(p):
            return SGD(p, learning_rate=schedule, momentum=0.9)

        def theirs(p):
            opt = torch.optim.SGD(p, lr=schedule(0), momentum=0.9)
            return opt, make_scheduler(opt)
    else:
        def ours(p):
            return AdamW(p, learning_rate=schedule, weight_decay=0.1, epsilon=1e-8)

        def theirs(p):
            opt = torch.optim.AdamW(p, lr=schedule(0), weight_decay=0.1)
            return opt, make_scheduler(opt)

    run_parity(torch, ours, theirs)


def test_step_t_uses_the_rate_of_the_steps_already_taken():
    seen = []

    def schedule(t):
        seen.append(t)
        return 0.01

    _, opt = train(lambda p: Adam(p, learning_rate=schedule), steps=3)
    assert seen == [0, 1, 2]
    assert opt.learning_rate == 0.01 and seen[-1] == 3  # reading it evaluates schedule(3)


def test_learning_rate_property_follows_the_schedule():
    schedule = schedules.StepDecay(1.0, drop=0.5, every=2)
    _, opt = train(lambda p: SGD(p, learning_rate=schedule), steps=4)
    assert opt.iterations == 4
    assert opt.learning_rate == 0.25


@pytest.mark.parametrize("schedule", [v[0] for v in VALUES[::3]])
def test_serialize_round_trip_gives_an_equal_schedule(schedule):
    config = schedules.serialize(schedule)
    assert config["class_name"] == type(schedule).__name__
    assert all(v is not None for v in config["config"].values())
    copy = schedules.deserialize(config)
    assert copy == schedule and copy is not schedule
    assert [copy(t) for t in range(0, 300, 7)] == [schedule(t) for t in range(0, 300, 7)]


def test_subclasses_are_registered_for_deserialize():
    class Halving(schedules.LearningRateSchedule):
        def __init__(self, start):
            self.start = start

        def __call__(self, step):
            return self.start / 2**step

        def get_config(self):
            return {"start": self.start}

    assert schedules.deserialize(schedules.serialize(Halving(1.0)))(3) == 0.125
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'Nope'"):
        schedules.deserialize({"class_name": "Nope", "config": {}})


@pytest.mark.parametrize("make, message", [
    (lambda: schedules.ExponentialDecay(0.1, 0, 0.5), "decay_steps"),
    (lambda: schedules.InverseTimeDecay(0.1, -1, 0.5), "decay_steps"),
    (lambda: schedules.CosineDecay(0.1, 0), "decay_steps"),
    (lambda: schedules.CosineDecay(0.1, 10, warmup_target=1.0), "warmup_steps"),
    (lambda: schedules.StepDecay(0.1, every=0), "every"),
    (lambda: schedules.PiecewiseConstantDecay([1, 2], [1.0, 2.0]), "3 values"),
    (lambda: schedules.PiecewiseConstantDecay([5, 2], [1.0, 2.0, 3.0]), "increase"),
])
def test_invalid_schedules_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_halving_schedule_keeps_the_rate_for_half_the_epochs_then_halves_it():
    from chainrule.optimizers.schedules import halving_schedule

    schedule = halving_schedule(1e-3, epochs=10)
    assert [schedule(e) / 1e-3 for e in range(10)] == [1, 1, 1, 1, 1, 0.5, 0.25, 0.125,
                                                       0.0625, 0.03125]
