"""Adagrad: 50-step trajectories equal torch.optim.Adagrad's, for every option."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.optimizers import Adagrad
from tests.optimizers._parity import run_parity, torch_optimizer
from tests.torch_helpers import require_torch

torch = require_torch()

#: chainrule's former defaults (PyTorch's), passed explicitly: its defaults are Keras's now.
TORCH_DEFAULTS = {"learning_rate": 0.01, "epsilon": 1e-10, "initial_accumulator_value": 0.0}

CASES = {
    "defaults": ({}, {}),
    "learning_rate": ({"learning_rate": 0.1}, {"lr": 0.1}),
    "lr_decay": ({"learning_rate": 0.1, "lr_decay": 0.05}, {"lr": 0.1, "lr_decay": 0.05}),
    "initial_accumulator_value": (
        {"learning_rate": 0.1, "initial_accumulator_value": 0.3, "epsilon": 1e-6},
        {"lr": 0.1, "initial_accumulator_value": 0.3, "eps": 1e-6},
    ),
    "weight_decay": ({"learning_rate": 0.1, "weight_decay": 0.05},
                     {"lr": 0.1, "weight_decay": 0.05}),
}


@pytest.mark.parametrize("case", CASES)
def test_trajectory_matches_torch(case):
    ours, theirs = CASES[case]
    run_parity(torch, lambda p: Adagrad(p, **{**TORCH_DEFAULTS, **ours}),
               torch_optimizer(torch, "Adagrad", **theirs))


def test_param_groups_with_their_own_hyper_parameters_match_torch():
    def ours(p):
        return Adagrad([{"params": p[:2], "lr_decay": 0.1},
                        {"params": p[2:], "lr": 0.05}],
                       **{**TORCH_DEFAULTS, "learning_rate": 0.2})

    def theirs(p):
        return torch.optim.Adagrad([{"params": p[:2], "lr_decay": 0.1},
                                    {"params": p[2:], "lr": 0.05}], lr=0.2)

    run_parity(torch, ours, theirs)


def test_accumulator_starts_at_its_initial_value():
    w = cr.zeros((2, 2), dtype=np.float64, requires_grad=True)
    opt = Adagrad([w], initial_accumulator_value=0.25)
    w.grad = cr.ones((2, 2), dtype=np.float64)
    opt.step()
    np.testing.assert_array_equal(opt.state[w]["sum"], np.full((2, 2), 1.25))


@pytest.mark.parametrize("key", ["epsilon", "initial_accumulator_value", "lr_decay",
                                 "weight_decay"])
def test_negative_hyper_parameters_are_refused(key):
    with pytest.raises(ValueError, match=key):
        Adagrad([cr.zeros(2, requires_grad=True)], **{key: -0.1})
