"""Dense, Maxout, Flatten, Reshape: gradient checks and parity with PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.layers import Dense, Flatten, Maxout, Reshape
from tests.layers.helpers import assert_torch_parity, gradcheck_layer
from tests.torch_helpers import require_torch

torch = require_torch()
rng = np.random.default_rng(0)


@pytest.mark.parametrize("shape", [(2, 3), (2, 4, 3)])
@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_gradcheck(float64, shape, use_bias):
    x = cr.tensor(rng.standard_normal(shape), requires_grad=True)
    assert gradcheck_layer(Dense(2, activation="tanh", use_bias=use_bias), x)


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 5)])
@pytest.mark.parametrize("activation", [None, "relu", "sigmoid"])
def test_dense_matches_torch_linear(float64, shape, activation):
    linear = torch.nn.Linear(5, 3).double()
    dense = Dense(3, activation=activation, input_dim=5)
    dense.kernel.data[...] = linear.weight.detach().numpy().T  # (in, units) = weight.T
    dense.bias.data[...] = linear.bias.detach().numpy()
    act = {None: lambda t: t, "relu": torch.relu, "sigmoid": torch.sigmoid}[activation]
    assert_torch_parity(dense, lambda t: act(linear(t)), rng.standard_normal(shape), [
        (dense.kernel, linear.weight, np.transpose),
        (dense.bias, linear.bias, None),
    ])


def test_dense_keeps_float32():
    dense = Dense(3)
    assert dense(cr.ones(2, 4)).dtype == np.float32 and dense.kernel.dtype == np.float32


def test_maxout_gradcheck(float64):
    x = cr.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    assert gradcheck_layer(Maxout(2, pieces=3), x)


def torch_maxout(x, weight, bias, units, pieces):
    """The textbook maxout: max over pieces of the affine maps, pieces adjacent per unit."""
    z = x @ weight + bias
    return z.reshape(*z.shape[:-1], units, pieces).amax(dim=-1)


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 5)])
def test_maxout_matches_torch(float64, shape):
    maxout = Maxout(3, pieces=4, bias_initializer="glorot_uniform", input_dim=5)
    weight = torch.tensor(maxout.kernel.data.copy(), requires_grad=True)
    bias = torch.tensor(maxout.bias.data.copy(), requires_grad=True)
    assert_torch_parity(maxout, lambda t: torch_maxout(t, weight, bias, 3, 4),
                        rng.standard_normal(shape),
                        [(maxout.kernel, weight, None), (maxout.bias, bias, None)])


def test_maxout_equals_its_composite(float64):
    """Maxout(units, pieces) is a Dense(units·pieces) followed by a max over adjacent pieces."""
    maxout, dense = Maxout(2, pieces=3, input_dim=4), Dense(6, input_dim=4)
    dense.set_weights(maxout.get_weights())
    x = cr.tensor(rng.standard_normal((5, 4)))
    expected = dense(x).reshape(5, 2, 3).max(axis=-1)
    np.testing.assert_allclose(maxout(x).numpy(), expected.numpy(), rtol=1e-12)
    assert maxout.count_params() == (4 + 1) * 2 * 3


def test_flatten_and_reshape_match_torch(float64):
    x = rng.standard_normal((2, 3, 4, 5))
    assert_torch_parity(Flatten(), lambda t: t.flatten(1), x)
    assert_torch_parity(Reshape((5, -1)), lambda t: t.reshape(2, 5, 12), x)
    assert_torch_parity(Reshape((12, 5)), lambda t: t.reshape(2, 12, 5), x)


def test_flatten_and_reshape_gradcheck(float64):
    x = cr.tensor(rng.standard_normal((2, 3, 2)), requires_grad=True)
    assert gradcheck_layer(Flatten(), x)
    assert gradcheck_layer(Reshape((-1, 2)), x)


def test_reshape_errors_name_the_layer():
    with pytest.raises(ValueError, match="target_shape"):
        Reshape((-1, -1))
    with pytest.raises(ValueError, match=r"'rs' \(Reshape\): cannot reshape input of shape "
                                         r"\(2, 12\) .* to target shape \(5, -1\)"):
        Reshape((5, -1), name="rs")(cr.ones(2, 12))
    layer = Reshape((3, 4), name="rs2")
    layer(cr.ones(2, 12))
    with pytest.raises(ValueError, match="'rs2'"):
        layer(cr.ones(2, 10))
    with pytest.raises(ValueError, match=r"\(None, 3, 4\)|\(5, 6\)"):
        Reshape((5, 6), input_shape=(12,))


def test_reshape_and_flatten_output_shapes():
    assert Reshape((3, -1)).compute_output_shape((None, 12)) == (None, 3, 4)
    assert Flatten().compute_output_shape((None, 3, 4, 5)) == (None, 60)
    assert Flatten().compute_output_shape((None, 3, None)) == (None, None)


def test_dense_rejects_bad_units():
    with pytest.raises(ValueError, match="units"):
        Dense(0)
    with pytest.raises(ValueError, match="units and pieces"):
        Maxout(2, pieces=0)
