"""Regularizers: penalties, gradients (float64 check and PyTorch parity), lookup by name."""

from __future__ import annotations

import json

import numpy as np
import pytest

import chainrule as cr
from chainrule import regularizers as R
from tests.torch_helpers import require_torch

torch = require_torch()

W = np.array([[0.5, -1.5, 2.0], [-0.25, 0.75, -3.0]])

CASES = [
    (R.L1(0.1), 0.1, 0.0),
    (R.L2(0.2), 0.0, 0.2),
    (R.L1L2(l1=0.3, l2=0.05), 0.3, 0.05),
    (R.get("l2"), 0.0, 0.01),
    (R.get("l1"), 0.01, 0.0),
]


@pytest.mark.parametrize("reg, l1, l2", CASES, ids=[repr(c[0]) for c in CASES])
def test_penalty_and_gradient_match_pytorch(reg, l1, l2):
    w = cr.tensor(W, dtype="float64", requires_grad=True)
    penalty = reg(w)
    penalty.backward()
    tw = torch.tensor(W, requires_grad=True)
    expected = l1 * tw.abs().sum() + l2 * (tw**2).sum()
    expected.backward()
    assert penalty.shape == ()
    np.testing.assert_allclose(penalty.item(), expected.item(), rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("reg", [R.L1(0.1), R.L2(0.2), R.L1L2(0.3, 0.05)], ids=repr)
def test_gradcheck(reg, float64):
    w = cr.tensor(W, requires_grad=True)  # no element at 0, where |w| has a kink
    assert cr.gradcheck(reg, [w])


def test_l2_of_half_lambda_is_pytorch_weight_decay():
    """The documented correspondence: torch's weight_decay=λ is L2(λ/2)."""
    lam, lr = 0.1, 0.5
    tw = torch.tensor(W, requires_grad=True)
    optimizer = torch.optim.SGD([tw], lr=lr, weight_decay=lam)
    (tw * 0).sum().backward()
    optimizer.step()
    w = cr.tensor(W, dtype="float64", requires_grad=True)
    R.L2(lam / 2)(w).backward()
    np.testing.assert_allclose(w.data - lr * w.grad.data, tw.detach().numpy(), rtol=1e-12)


def test_float32_stays_float32():
    w = cr.tensor(W, requires_grad=True)
    assert R.L1L2(0.1, 0.1)(w).dtype == np.float32


def test_zero_factors_give_a_constant_zero():
    w = cr.tensor(W, requires_grad=True)
    penalty = R.L1L2()(w)
    assert penalty.item() == 0.0 and penalty.dtype == np.float32


def test_negative_factor_is_an_error():
    with pytest.raises(ValueError, match="must be >= 0"):
        R.L2(-1.0)


@pytest.mark.parametrize("reg", [R.L1(0.5), R.L2(0.25), R.L1L2(0.1, 0.2)], ids=repr)
def test_serialize_round_trips_through_json(reg):
    again = R.get(json.loads(json.dumps(R.serialize(reg))))
    assert type(again) is type(reg) and again.get_config() == reg.get_config()


def test_get_by_name_and_passthrough():
    assert type(R.get("l1_l2")) is R.L1L2 and type(R.get("L2")) is R.L2
    reg = R.L2(0.5)
    assert R.get(reg) is reg and R.get(None) is None
    assert R.get(abs) is abs
    with pytest.raises(ValueError, match="unknown regularizer 'l3'.*l1_l2"):
        R.get("l3")
    with pytest.raises(TypeError, match="not a Regularizer"):
        R.serialize(abs)
