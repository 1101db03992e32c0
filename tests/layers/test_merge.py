"""Add and Residual: sums of inputs and skip connections."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.layers import Add, Dense, Residual
from tests.layers.helpers import assert_torch_parity, gradcheck_layer
from tests.torch_helpers import require_torch

torch = require_torch()
rng = np.random.default_rng(0)


def test_add_matches_torch_and_takes_a_list_or_arguments(float64):
    a, b, c = (rng.standard_normal((2, 3)) for _ in range(3))
    ta, tb, tc = (torch.tensor(v, requires_grad=True) for v in (a, b, c))
    xa, xb, xc = (cr.tensor(v, requires_grad=True) for v in (a, b, c))
    y = Add()([xa, xb, xc])
    np.testing.assert_allclose(y.numpy(), (ta + tb + tc).detach().numpy(), rtol=1e-12)
    y.sum().backward()
    np.testing.assert_array_equal(xc.grad.numpy(), np.ones((2, 3)))
    np.testing.assert_allclose(Add()(xa, xb).numpy(), a + b, rtol=1e-12)
    assert cr.gradcheck(lambda p, q: Add()([p, q]), [xa, xb])
    np.testing.assert_allclose(Add()([xa, b]).numpy(), a + b, rtol=1e-12)  # arrays converted


def test_add_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"'plus' \(Add\): inputs must have equal shapes, got "
                                         r"\(2, 3\), \(2, 4\)"):
        Add(name="plus")([cr.ones(2, 3), cr.ones(2, 4)])
    with pytest.raises(ValueError, match="at least 2 inputs"):
        Add()([cr.ones(2, 3)])


def test_residual_matches_torch(float64):
    linear = torch.nn.Linear(4, 4).double()
    dense = Dense(4, input_dim=4)
    dense.set_weights([linear.weight.detach().numpy().T, linear.bias.detach().numpy()])
    block = Residual(dense)
    assert [name for name, _ in block.named_parameters()] == ["layer.kernel", "layer.bias"]
    assert_torch_parity(block, lambda t: t + linear(t), rng.standard_normal((3, 4)),
                        [(dense.kernel, linear.weight, np.transpose),
                         (dense.bias, linear.bias, None)])


def test_residual_gradcheck(float64):
    x = cr.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    assert gradcheck_layer(Residual(Dense(3, activation="tanh")), x)


def test_residual_needs_a_shape_keeping_layer():
    with pytest.raises(ValueError, match=r"'res' \(Residual\): the wrapped layer 'inner' maps "
                                         r"shape \(2, 3\) to \(2, 5\)"):
        Residual(Dense(5, name="inner"), name="res")(cr.ones(2, 3))
    with pytest.raises(TypeError, match="expected a Layer"):
        Residual(lambda x: x)


def test_residual_builds_eagerly_and_serializes():
    block = Residual(Dense(3), input_shape=(3,))
    assert block.built and block.count_params() == 12
    again = Residual.from_config(block.get_config())
    assert type(again.layer) is Dense and again.built and again.layer.units == 3
