"""Adam and AdamW: 50-step trajectories equal torch.optim's, for every option."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.optimizers import Adam, AdamW
from tests.optimizers._parity import run_parity, torch_optimizer
from tests.torch_helpers import require_torch

torch = require_torch()

#: chainrule's former defaults (PyTorch's), passed explicitly: its defaults are Keras's now.
TORCH_DEFAULTS = {Adam: {"epsilon": 1e-8}, AdamW: {"epsilon": 1e-8, "weight_decay": 0.01}}

CASES = {
    "adam": (Adam, {"learning_rate": 0.01}, "Adam", {"lr": 0.01}),
    "adam_defaults": (Adam, {}, "Adam", {}),
    "adam_betas_epsilon": (
        Adam, {"learning_rate": 0.02, "beta_1": 0.8, "beta_2": 0.95, "epsilon": 1e-4},
        "Adam", {"lr": 0.02, "betas": (0.8, 0.95), "eps": 1e-4},
    ),
    "adam_weight_decay": (Adam, {"learning_rate": 0.01, "weight_decay": 0.1},
                          "Adam", {"lr": 0.01, "weight_decay": 0.1}),
    "adam_amsgrad": (Adam, {"learning_rate": 0.02, "amsgrad": True, "beta_2": 0.9},
                     "Adam", {"lr": 0.02, "amsgrad": True, "betas": (0.9, 0.9)}),
    "adamw": (AdamW, {"learning_rate": 0.01}, "AdamW", {"lr": 0.01}),
    "adamw_weight_decay_amsgrad": (
        AdamW, {"learning_rate": 0.01, "weight_decay": 0.3, "amsgrad": True},
        "AdamW", {"lr": 0.01, "weight_decay": 0.3, "amsgrad": True},
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_trajectory_matches_torch(case):
    cls, ours, name, theirs = CASES[case]
    run_parity(torch, lambda p: cls(p, **{**TORCH_DEFAULTS[cls], **ours}),
               torch_optimizer(torch, name, **theirs))


def test_param_groups_with_their_own_hyper_parameters_match_torch():
    def ours(p):
        return Adam([{"params": p[:2], "lr": 0.03, "betas": (0.5, 0.9)},
                     {"params": p[2:], "amsgrad": True}], learning_rate=0.01, epsilon=1e-8)

    def theirs(p):
        return torch.optim.Adam([{"params": p[:2], "lr": 0.03, "betas": (0.5, 0.9)},
                                 {"params": p[2:], "amsgrad": True}], lr=0.01)

    run_parity(torch, ours, theirs)


def test_each_parameter_counts_its_own_steps_like_torch():
    def drop_some(step, ours, theirs):
        if step % 4 == 0:  # W2 misses some steps, so its bias correction lags
            ours[2].grad = theirs[2].grad = None

    _, optimizer = run_parity(torch, lambda p: AdamW(p, learning_rate=0.01,
                                                               **TORCH_DEFAULTS[AdamW]),
                              torch_optimizer(torch, "AdamW", lr=0.01), before_step=drop_some)
    steps = [optimizer.state[p]["step"] for p in optimizer.params]
    assert steps == [50, 50, 37, 50]


def test_adamw_decoupled_weight_decay_of_one_hundredth():
    w = cr.tensor([1.0, -1.0], dtype=np.float64, requires_grad=True)
    opt = AdamW([w], learning_rate=0.1, weight_decay=0.01)
    assert opt.param_groups[0]["weight_decay"] == 0.01
    w.grad = cr.zeros(2, dtype=np.float64)
    opt.step()  # zero gradient: only the decay moves W, by the factor 1 − αλ
    np.testing.assert_allclose(w.data, [0.999, -0.999], rtol=1e-15)


@pytest.mark.parametrize("key, value", [("beta_1", 1.0), ("beta_2", -0.1), ("epsilon", -1.0),
                                        ("weight_decay", -0.5)])
def test_invalid_hyper_parameters_are_refused(key, value):
    with pytest.raises(ValueError, match=key):
        Adam([cr.zeros(2, requires_grad=True)], **{key: value})
