"""Dropout: inverted scaling in training mode, the identity in evaluation mode, seeding."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.layers import Dropout
from tests.torch_helpers import require_torch

torch = require_torch()


def test_training_mode_drops_the_rate_and_scales_the_rest():
    layer = Dropout(0.3)
    x = cr.ones(200, 200)
    y = layer(x).numpy()
    kept = y != 0
    assert kept.mean() == pytest.approx(0.7, abs=0.01)
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert y.dtype == np.float32


def test_the_same_scaling_as_torch():
    """Where both keep an element they scale it alike: x / (1 − rate)."""
    x = np.random.default_rng(0).uniform(1, 2, (50, 50))
    ours = Dropout(0.25)(cr.tensor(x, dtype="float64")).numpy()
    theirs = torch.nn.Dropout(0.25)(torch.tensor(x)).numpy()
    both = (ours != 0) & (theirs != 0)
    np.testing.assert_allclose(ours[both], theirs[both], rtol=1e-12)
    np.testing.assert_allclose(ours[both], x[both] / 0.75, rtol=1e-12)


def test_gradient_is_the_mask_over_keep_probability(float64):
    layer = Dropout(0.5)
    x = cr.tensor(np.random.default_rng(1).uniform(1, 2, (6, 7)), requires_grad=True)
    y = layer(x)
    upstream = np.random.default_rng(2).standard_normal((6, 7))
    (y * upstream).sum().backward()
    mask = y.numpy() != 0
    np.testing.assert_allclose(x.grad.numpy(), upstream * mask / 0.5, rtol=1e-12)


def test_gradcheck_with_a_fixed_mask(float64):
    """A new layer with the same seed on every evaluation draws the same mask."""
    x = cr.tensor(np.random.default_rng(1).standard_normal((4, 5)), requires_grad=True)
    assert cr.gradcheck(lambda t: Dropout(0.4, seed=11)(t), [x])


def test_evaluation_mode_is_the_identity():
    layer = Dropout(0.9).eval()
    x = cr.tensor(np.random.default_rng(0).standard_normal((4, 5)), requires_grad=True)
    y = layer(x)
    assert y is x
    assert Dropout(0.0)(x) is x


def test_masks_change_per_call_and_seeds_make_them_reproducible():
    x = cr.ones(30, 30)
    a, b = Dropout(0.5, seed=3), Dropout(0.5, seed=3)
    first, second = a(x).numpy(), a(x).numpy()
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(b(x).numpy(), first)
    np.testing.assert_array_equal(b(x).numpy(), second)
    cr.manual_seed(5)
    c = Dropout(0.5)(x).numpy()
    cr.manual_seed(5)
    np.testing.assert_array_equal(Dropout(0.5)(x).numpy(), c)


def test_rate_must_be_in_range():
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
        Dropout(1.0)
