"""RMSprop: 50-step trajectories equal torch.optim.RMSprop's, for every option."""

from __future__ import annotations

import pytest

import chainrule as cr
from chainrule.optimizers import RMSprop
from tests.optimizers._parity import run_parity, torch_optimizer
from tests.torch_helpers import require_torch

torch = require_torch()

#: chainrule's former defaults (PyTorch's), passed explicitly: its defaults are Keras's now.
TORCH_DEFAULTS = {"learning_rate": 0.01, "rho": 0.99, "epsilon": 1e-8}

CASES = {
    "defaults": ({}, {}),
    "rho_epsilon": ({"learning_rate": 0.005, "rho": 0.9, "epsilon": 1e-5},
                    {"lr": 0.005, "alpha": 0.9, "eps": 1e-5}),
    "centered": ({"centered": True}, {"centered": True}),
    "momentum": ({"learning_rate": 0.002, "momentum": 0.8},
                 {"lr": 0.002, "momentum": 0.8}),
    "centered_momentum_weight_decay": (
        {"learning_rate": 0.002, "momentum": 0.5, "centered": True, "weight_decay": 0.1},
        {"lr": 0.002, "momentum": 0.5, "centered": True, "weight_decay": 0.1},
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_trajectory_matches_torch(case):
    ours, theirs = CASES[case]
    run_parity(torch, lambda p: RMSprop(p, **{**TORCH_DEFAULTS, **ours}),
               torch_optimizer(torch, "RMSprop", **theirs))


def test_param_groups_with_their_own_hyper_parameters_match_torch():
    def ours(p):
        return RMSprop([{"params": p[:2], "centered": True}, {"params": p[2:], "lr": 0.001}],
                       **TORCH_DEFAULTS)

    def theirs(p):
        return torch.optim.RMSprop([{"params": p[:2], "centered": True},
                                    {"params": p[2:], "lr": 0.001}])

    run_parity(torch, ours, theirs)


def test_state_holds_only_the_buffers_the_options_need():
    w = cr.zeros(3, requires_grad=True)
    opt = RMSprop([w])
    w.grad = cr.ones(3)
    opt.step()
    assert sorted(opt.state[w]) == ["square_avg", "step"]
    opt.param_groups[0]["momentum"] = 0.9
    opt.param_groups[0]["centered"] = True
    opt.step()
    assert sorted(opt.state[w]) == ["grad_avg", "momentum_buffer", "square_avg", "step"]


@pytest.mark.parametrize("key", ["rho", "epsilon", "momentum", "weight_decay"])
def test_negative_hyper_parameters_are_refused(key):
    with pytest.raises(ValueError, match=key):
        RMSprop([cr.zeros(2, requires_grad=True)], **{key: -0.1})
