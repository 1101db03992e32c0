"""Adadelta: 50-step trajectories equal torch.optim.Adadelta's, for every option."""

from __future__ import annotations

import pytest

import chainrule as cr
from chainrule.optimizers import Adadelta
from tests.optimizers._parity import run_parity, torch_optimizer
from tests.torch_helpers import require_torch

torch = require_torch()

#: chainrule's former defaults (PyTorch's), passed explicitly: its defaults are Keras's now.
TORCH_DEFAULTS = {"learning_rate": 1.0, "rho": 0.9, "epsilon": 1e-6}

CASES = {
    "defaults": ({}, {}),
    "rho_epsilon": ({"rho": 0.5, "epsilon": 1e-4}, {"rho": 0.5, "eps": 1e-4}),
    "learning_rate_weight_decay": ({"learning_rate": 5.0, "weight_decay": 0.05},
                                   {"lr": 5.0, "weight_decay": 0.05}),
}


@pytest.mark.parametrize("case", CASES)
def test_trajectory_matches_torch(case):
    ours, theirs = CASES[case]
    run_parity(torch, lambda p: Adadelta(p, **{**TORCH_DEFAULTS, **ours}),
               torch_optimizer(torch, "Adadelta", **theirs))


def test_param_groups_with_their_own_hyper_parameters_match_torch():
    def ours(p):
        return Adadelta([{"params": p[:2], "rho": 0.7}, {"params": p[2:], "lr": 3.0}],
                        **TORCH_DEFAULTS)

    def theirs(p):
        return torch.optim.Adadelta([{"params": p[:2], "rho": 0.7}, {"params": p[2:], "lr": 3.0}])

    run_parity(torch, ours, theirs)


@pytest.mark.parametrize("key, value", [("rho", 1.5), ("rho", -0.1), ("epsilon", -1e-6),
                                        ("weight_decay", -1.0)])
def test_invalid_hyper_parameters_are_refused(key, value):
    with pytest.raises(ValueError, match=key):
        Adadelta([cr.zeros(2, requires_grad=True)], **{key: value})
