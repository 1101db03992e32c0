"""Gradient clipping: clip_grad_norm / clip_grad_value against torch.nn.utils, and the
optimizers' clipnorm / global_clipnorm / clipvalue options (Keras semantics)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule.optimizers import SGD, Adam, RMSprop, clip_grad_norm, clip_grad_value
from tests.optimizers._parity import run_parity, torch_optimizer
from tests.torch_helpers import require_torch

torch = require_torch()


def _pair(rng, shapes, dtype=np.float64, scale=1.0):
    """The same gradients on chainrule and torch parameters."""
    ours, theirs = [], []
    for shape in shapes:
        g = (rng.normal(size=shape) * scale).astype(dtype)
        p = cr.zeros(shape, dtype=dtype, requires_grad=True)
        p.grad = cr.tensor(g, dtype=dtype)
        q = torch.zeros(shape, dtype=getattr(torch, np.dtype(dtype).name), requires_grad=True)
        q.grad = torch.tensor(g)
        ours.append(p)
        theirs.append(q)
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(rng, norm_type, max_norm):
    ours, theirs = _pair(rng, [(3, 4), (4,), (2, 2, 2)])
    total = clip_grad_norm(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert isinstance(total, float)
    assert total == pytest.approx(expected.item(), rel=1e-13)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=1e-13, atol=1e-15)


def test_clip_grad_norm_in_float32_stays_float32(rng):
    ours, theirs = _pair(rng, [(50, 20), (20,)], dtype=np.float32, scale=3.0)
    arrays = [p.grad.data for p in ours]
    total = clip_grad_norm(ours, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert total == pytest.approx(expected.item(), rel=1e-5)
    for p, q, array in zip(ours, theirs, arrays):
        assert p.grad.data is array and array.dtype == np.float32  # changed in place
        np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_clip_grad_norm_leaves_small_gradients_bit_identical(rng):
    ours, _ = _pair(rng, [(3, 3)])
    before = ours[0].grad.data.copy()
    clip_grad_norm(ours, 100.0)
    np.testing.assert_array_equal(ours[0].grad.data, before)


def test_clip_grad_norm_skips_missing_gradients_and_accepts_a_tensor(rng):
    ours, _ = _pair(rng, [(3,)], scale=10.0)
    assert clip_grad_norm([cr.zeros(2, requires_grad=True)], 1.0) == 0.0
    norm = float(np.linalg.norm(ours[0].grad.data))
    assert clip_grad_norm(ours[0], 1.0) == pytest.approx(norm)
    assert np.linalg.norm(ours[0].grad.data) == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_value_matches_torch(rng):
    ours, theirs = _pair(rng, [(5, 4), (7,)])
    clip_grad_value(ours, 0.3)
    torch.nn.utils.clip_grad_value_(theirs, 0.3)
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.data, q.grad.numpy())


def test_read_only_gradients_are_replaced_not_written(rng):
    ours, _ = _pair(rng, [(4,)], scale=10.0)
    ours[0].grad.data.flags.writeable = False
    clip_grad_value(ours, 0.5)
    assert np.abs(ours[0].grad.data).max() <= 0.5
    ours[0].grad.data.flags.writeable = False
    clip_grad_norm(ours, 0.1)
    assert np.linalg.norm(ours[0].grad.data) == pytest.approx(0.1, rel=1e-5)


# -- in a training loop, against torch ---------------------------------------------------------


def test_trajectory_with_clip_grad_norm_matches_torch():
    def clip(step, ours, theirs):
        total = clip_grad_norm(ours, 0.3)
        assert total == pytest.approx(torch.nn.utils.clip_grad_norm_(theirs, 0.3).item(),
                                      rel=1e-12)

    run_parity(torch, lambda p: SGD(p, learning_rate=0.1, momentum=0.9),
               torch_optimizer(torch, "SGD", lr=0.1, momentum=0.9), before_step=clip)


def test_trajectory_with_clip_grad_value_matches_torch():
    def clip(step, ours, theirs):
        clip_grad_value(ours, 0.05)
        torch.nn.utils.clip_grad_value_(theirs, 0.05)

    run_parity(torch, lambda p: Adam(p, learning_rate=0.01, epsilon=1e-8),
               torch_optimizer(torch, "Adam", lr=0.01), before_step=clip)


def test_clipvalue_option_matches_torch_clip_grad_value():
    run_parity(torch, lambda p: RMSprop(p, learning_rate=0.01, rho=0.99, epsilon=1e-8,
                                        clipvalue=0.05),
               torch_optimizer(torch, "RMSprop"),
               before_step=lambda step, ours, theirs: torch.nn.utils.clip_grad_value_(theirs,
                                                                                       0.05))


def _torch_clip_each(theirs, clipnorm):
    for q in theirs:
        norm = torch.linalg.vector_norm(q.grad).item()
        if norm > clipnorm:
            q.grad.mul_(clipnorm / norm)


def _torch_clip_global(theirs, clipnorm):
    total = math.sqrt(sum(torch.linalg.vector_norm(q.grad).item() ** 2 for q in theirs))
    if total > clipnorm:
        for q in theirs:
            q.grad.mul_(clipnorm / total)


def test_clipnorm_option_clips_each_gradient_on_its_own():
    run_parity(torch, lambda p: SGD(p, learning_rate=0.2, clipnorm=0.1),
               torch_optimizer(torch, "SGD", lr=0.2),
               before_step=lambda step, ours, theirs: _torch_clip_each(theirs, 0.1))


def test_global_clipnorm_option_clips_all_gradients_together():
    run_parity(torch, lambda p: Adam(p, learning_rate=0.01, epsilon=1e-8, global_clipnorm=0.2),
               torch_optimizer(torch, "Adam", lr=0.01),
               before_step=lambda step, ours, theirs: _torch_clip_global(theirs, 0.2))


def test_clipnorm_scales_only_gradients_above_it():
    big, small = cr.zeros(2, requires_grad=True), cr.zeros(2, requires_grad=True)
    big.grad, small.grad = cr.tensor([3.0, 4.0]), cr.tensor([0.3, 0.4])
    SGD([big, small], learning_rate=1.0, clipnorm=1.0).step()
    np.testing.assert_allclose(big.data, [-0.6, -0.8], rtol=1e-6)
    np.testing.assert_allclose(small.data, [-0.3, -0.4], rtol=1e-6)


def test_only_one_clipping_option_at_a_time():
    w = cr.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="only one of clipnorm, clipvalue"):
        SGD([w], clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="global_clipnorm must be > 0"):
        SGD([w], global_clipnorm=0.0)
