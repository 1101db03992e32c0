"""SGD: 50-step trajectories equal torch.optim.SGD's, for every option."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.optimizers import SGD
from tests.optimizers._parity import run_parity, torch_optimizer
from tests.torch_helpers import require_torch

torch = require_torch()

# every test runs with each kernel implementation (NumPy, and Numba with the [fast] extra)
pytestmark = pytest.mark.usefixtures("each_kernels")

CASES = {
    "plain": ({"learning_rate": 0.1}, {"lr": 0.1}),
    "momentum": ({"learning_rate": 0.05, "momentum": 0.9}, {"lr": 0.05, "momentum": 0.9}),
    "nesterov": (
        {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
        {"lr": 0.05, "momentum": 0.9, "nesterov": True},
    ),
    "dampening": (
        {"learning_rate": 0.05, "momentum": 0.8, "dampening": 0.3},
        {"lr": 0.05, "momentum": 0.8, "dampening": 0.3},
    ),
    "weight_decay": ({"learning_rate": 0.1, "weight_decay": 0.05},
                     {"lr": 0.1, "weight_decay": 0.05}),
    "momentum_weight_decay_nesterov": (
        {"learning_rate": 0.05, "momentum": 0.7, "nesterov": True, "weight_decay": 0.02},
        {"lr": 0.05, "momentum": 0.7, "nesterov": True, "weight_decay": 0.02},
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_trajectory_matches_torch(case):
    ours, theirs = CASES[case]
    run_parity(torch, lambda p: SGD(p, **ours), torch_optimizer(torch, "SGD", **theirs))


def test_param_groups_with_their_own_hyper_parameters_match_torch():
    def ours(p):
        return SGD([{"params": p[:2], "lr": 0.2},
                    {"params": p[2:], "momentum": 0.9, "nesterov": True}],
                   learning_rate=0.05)

    def theirs(p):
        return torch.optim.SGD([{"params": p[:2], "lr": 0.2},
                                {"params": p[2:], "momentum": 0.9, "nesterov": True}], lr=0.05)

    run_parity(torch, ours, theirs)


def test_parameters_without_gradient_are_skipped_like_torch():
    def drop_some(step, ours, theirs):
        if step % 3 == 1:  # b1 has no gradient on these steps: no update, no momentum decay
            ours[1].grad = theirs[1].grad = None

    run_parity(torch, lambda p: SGD(p, learning_rate=0.05, momentum=0.9),
               torch_optimizer(torch, "SGD", lr=0.05, momentum=0.9), before_step=drop_some)


def test_first_momentum_step_uses_the_gradient_itself():
    w = cr.tensor([1.0, 2.0], dtype=np.float64, requires_grad=True)
    opt = SGD([w], learning_rate=0.5, momentum=0.9, dampening=0.5)
    w.grad = cr.tensor([2.0, 4.0], dtype=np.float64)
    opt.step()
    np.testing.assert_array_equal(opt.state[w]["momentum_buffer"], [2.0, 4.0])  # no dampening
    np.testing.assert_array_equal(w.data, [0.0, 0.0])
    opt.step()  # b = 0.9 b + 0.5 g = [2.8, 5.6]
    np.testing.assert_allclose(w.data, [-1.4, -2.8])


def test_nesterov_needs_momentum_and_no_dampening():
    w = cr.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="Nesterov"):
        SGD([w], nesterov=True)
    with pytest.raises(ValueError, match="Nesterov"):
        SGD([w], momentum=0.9, nesterov=True, dampening=0.1)
