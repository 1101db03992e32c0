"""GradientDescent: plain W ← W − α∇W (equal to torch's plain SGD) and the stopping rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule.optimizers import GradientDescent, schedules
from tests.optimizers._parity import run_parity, torch_optimizer
from tests.torch_helpers import require_torch

torch = require_torch()


def test_trajectory_matches_torch_plain_sgd():
    run_parity(torch, lambda p: GradientDescent(p, learning_rate=0.1),
               torch_optimizer(torch, "SGD", lr=0.1))


def test_step_returns_the_total_absolute_change_of_the_weights(rng):
    params = [cr.tensor(rng.normal(size=s), dtype=np.float64, requires_grad=True)
              for s in [(3, 4), (4,)]]
    for p in params:
        p.grad = cr.tensor(rng.normal(size=p.shape), dtype=np.float64)
    before = [p.data.copy() for p in params]
    opt = GradientDescent(params, learning_rate=0.3)
    change = opt.step()
    moved = sum(np.abs(p.data - b).sum() for p, b in zip(params, before))
    assert change == pytest.approx(moved, rel=1e-12)
    assert change == pytest.approx(0.3 * sum(np.abs(p.grad.data).sum() for p in params))
    assert opt.change == change


def test_stops_when_a_step_moves_the_weights_less_than_the_goal():
    # f(w) = ½‖w‖², so ∇f = w and w_t = (1 − α)^t w_0: step t moves the weights by
    # α (1 − α)^t Σ|w_0|, below the goal from t = ⌈log(goal / (α Σ|w_0|)) / log(1 − α)⌉ on.
    w0, lr, goal = np.array([3.0, -4.0]), 0.2, 1e-3
    w = cr.tensor(w0, dtype=np.float64, requires_grad=True)
    opt = GradientDescent([w], learning_rate=lr, goal=goal)
    steps = 0
    while not opt.converged:
        opt.zero_grad()
        ((w * w).sum() * 0.5).backward()
        opt.step()
        steps += 1
        assert steps < 1000
    expected = math.ceil(math.log(goal / (lr * np.abs(w0).sum())) / math.log(1 - lr)) + 1
    assert steps == expected
    assert opt.change < goal


def test_never_converges_without_a_goal():
    w = cr.tensor([1.0], requires_grad=True)
    opt = GradientDescent([w], learning_rate=0.5)
    w.grad = cr.zeros(1)
    assert opt.step() == 0.0
    assert opt.converged is False


def test_accepts_a_schedule_and_refuses_a_bad_goal():
    w = cr.tensor([1.0], dtype=np.float64, requires_grad=True)
    opt = GradientDescent([w], learning_rate=schedules.StepDecay(1.0, drop=0.5, every=1))
    w.grad = cr.tensor([1.0], dtype=np.float64)
    assert [opt.step() for _ in range(3)] == [1.0, 0.5, 0.25]
    with pytest.raises(ValueError, match="goal"):
        GradientDescent([w], goal=0.0)
