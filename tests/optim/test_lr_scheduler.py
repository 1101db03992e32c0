"""chainrule.optim.lr_scheduler against torch.optim.lr_scheduler (the same rate sequences),
and chainrule.optim's PyTorch signatures and trajectories against torch.optim."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
import chainrule.optim as optim
from chainrule.optim import lr_scheduler
from tests.torch_helpers import require_torch

torch = require_torch()


def _pair(lrs=(0.5,)):
    """A chainrule and a torch SGD with one parameter group per rate in ``lrs``."""
    ours = optim.SGD([{"params": [cr.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs],
                     lr=lrs[0])
    theirs = torch.optim.SGD([{"params": [torch.zeros(2, requires_grad=True)], "lr": lr}
                              for lr in lrs], lr=lrs[0])
    return ours, theirs


SCHEDULERS = {
    "StepLR": dict(step_size=3, gamma=0.5),
    "MultiStepLR": dict(milestones=[2, 5, 5, 9], gamma=0.3),
    "ExponentialLR": dict(gamma=0.9),
    "CosineAnnealingLR": dict(T_max=7, eta_min=0.01),
    "LambdaLR": dict(lr_lambda=lambda epoch: 1 / (1 + epoch)),
    "MultiplicativeLR": dict(lr_lambda=lambda epoch: 0.95),
}


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_rate_sequences_match_torch(name):
    ours, theirs = _pair((0.5, 0.1))
    ours_s = getattr(lr_scheduler, name)(ours, **SCHEDULERS[name])
    theirs_s = getattr(torch.optim.lr_scheduler, name)(theirs, **SCHEDULERS[name])
    for epoch in range(25):  # beyond CosineAnnealing's T_max: its recursive form goes back up
        assert ours_s.get_last_lr() == pytest.approx(theirs_s.get_last_lr(), rel=1e-12), epoch
        assert [g["lr"] for g in ours.param_groups] == pytest.approx(
            [g["lr"] for g in theirs.param_groups], rel=1e-12)
        assert ours_s.last_epoch == theirs_s.last_epoch
        ours.step()
        theirs.step()
        ours_s.step()
        theirs_s.step()


def test_chainable_schedulers_carry_on_from_a_rate_changed_by_hand():
    ours, theirs = _pair()
    ours_s = lr_scheduler.StepLR(ours, step_size=2, gamma=0.5)
    theirs_s = torch.optim.lr_scheduler.StepLR(theirs, step_size=2, gamma=0.5)
    for epoch in range(6):
        if epoch == 3:
            ours.param_groups[0]["lr"] = theirs.param_groups[0]["lr"] = 0.04
        ours.step()
        theirs.step()
        ours_s.step()
        theirs_s.step()
        assert ours_s.get_last_lr() == pytest.approx(theirs_s.get_last_lr(), rel=1e-12)


@pytest.mark.parametrize("kwargs", [
    dict(), dict(mode="max", factor=0.5, patience=1), dict(patience=2, cooldown=2, min_lr=0.02),
    dict(threshold_mode="abs", threshold=0.1, patience=0),
])
def test_reduce_on_plateau_matches_torch(kwargs):
    ours, theirs = _pair()
    ours_s = lr_scheduler.ReduceLROnPlateau(ours, **kwargs)
    theirs_s = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs, **kwargs)
    metrics = [1.0, 0.9, 0.95, 0.95, 0.89, 0.97, 0.99, 0.91, 0.92, 0.93, 0.94] * 3
    for value in metrics:
        ours_s.step(value)
        theirs_s.step(value)
        assert ours_s.get_last_lr() == pytest.approx(theirs_s.get_last_lr(), rel=1e-12)
        assert ours_s.num_bad_epochs == theirs_s.num_bad_epochs


def test_step_with_an_epoch_uses_the_closed_form():
    ours, theirs = _pair()
    ours_s = lr_scheduler.CosineAnnealingLR(ours, T_max=10)
    ours_s.step(4)
    assert ours_s.get_last_lr()[0] == pytest.approx(0.5 * (1 + math.cos(math.pi * 4 / 10)) / 2)


def test_scheduler_state_round_trips_and_leaves_functions_out():
    ours, _ = _pair()
    scheduler = lr_scheduler.LambdaLR(ours, lr_lambda=lambda e: 0.5 ** e)
    scheduler.step()
    scheduler.step()
    state = scheduler.state_dict()
    assert "lr_lambdas" not in state and state["last_epoch"] == 2
    fresh = lr_scheduler.LambdaLR(_pair()[0], lr_lambda=lambda e: 0.5 ** e)
    fresh.load_state_dict(state)
    assert fresh.last_epoch == 2 and fresh.get_last_lr() == [0.125]


def test_a_scheduled_optimizer_still_saves_and_loads_its_state():
    ours, _ = _pair()
    lr_scheduler.StepLR(ours, step_size=1, gamma=0.5).step()
    fresh, _ = _pair()
    fresh.load_state_dict(ours.state_dict())
    assert fresh.param_groups[0]["lr"] == 0.25


def test_a_schedule_function_as_learning_rate_is_refused():
    from chainrule.optimizers import SGD, schedules

    opt = SGD([cr.zeros(2, requires_grad=True)],
              learning_rate=schedules.ExponentialDecay(0.1, 10, 0.9))
    with pytest.raises(TypeError, match="schedule"):
        lr_scheduler.StepLR(opt, step_size=1)


# -- the optimizers' PyTorch signatures ------------------------------------------------------


OPTIMIZERS = [
    ("SGD", dict(lr=0.1)), ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("Adam", dict()), ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict()), ("AdamW", dict(lr=0.01, weight_decay=0.1)),
    ("RMSprop", dict()), ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True)),
    ("Adagrad", dict()), ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
    ("Adadelta", dict()), ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.01)),
]


@pytest.mark.parametrize("name,kwargs", OPTIMIZERS)
def test_trajectories_match_torch_with_a_scheduler(name, kwargs):
    rng = np.random.default_rng(0)
    start = rng.standard_normal((3, 4))
    w = cr.tensor(start, dtype=np.float64, requires_grad=True)
    wt = torch.tensor(start, requires_grad=True)
    ours = getattr(optim, name)([w], **kwargs)
    theirs = getattr(torch.optim, name)([wt], **kwargs)
    ours_s = lr_scheduler.StepLR(ours, step_size=3, gamma=0.7)
    theirs_s = torch.optim.lr_scheduler.StepLR(theirs, step_size=3, gamma=0.7)
    for _ in range(12):
        target = rng.standard_normal((3, 4))
        ours.zero_grad()
        theirs.zero_grad()
        ((w - cr.tensor(target, dtype=np.float64)) ** 2).sum().backward()
        ((wt - torch.tensor(target)) ** 2).sum().backward()
        ours.step()
        theirs.step()
        ours_s.step()
        theirs_s.step()
    np.testing.assert_allclose(w.numpy(), wt.detach().numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta"])
def test_defaults_are_pytorchs(name):
    import inspect

    ours = inspect.signature(getattr(optim, name)).parameters
    theirs = inspect.signature(getattr(torch.optim, name)).parameters
    for key in ("lr", "momentum", "dampening", "weight_decay", "nesterov", "betas", "eps",
                "amsgrad", "alpha", "centered", "lr_decay", "initial_accumulator_value", "rho"):
        if key in theirs:
            assert ours[key].default == theirs[key].default, key
    switches = {"foreach", "capturable", "maximize", "differentiable", "fused"}
    positional = [p for p in theirs if p not in switches
                  and theirs[p].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert list(ours)[:len(positional)] == positional


def test_optimizers_take_group_lr_and_refuse_maximize():
    w = cr.zeros(2, requires_grad=True)
    opt = optim.Adam([w], lr=0.01)
    opt.param_groups[0]["lr"] = 0.02
    assert opt.param_groups[0]["lr"] == 0.02 and opt.learning_rate == 0.02
    assert optim.SGD([w], lr=0.1, foreach=False).param_groups[0]["lr"] == 0.1
    with pytest.raises(NotImplementedError, match="maximize"):
        optim.SGD([w], lr=0.1, maximize=True)
    with pytest.raises(TypeError, match="unexpected"):
        optim.SGD([w], lr=0.1, bogus=1)
