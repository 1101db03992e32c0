"""Activation layers and the activations registry: gradient checks and parity with PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import activations
from chainrule.layers import ELU, Activation, LeakyReLU, PReLU, ReLU, Softmax
from tests.layers.helpers import assert_torch_parity, gradcheck_layer
from tests.torch_helpers import require_torch

torch = require_torch()
tF = torch.nn.functional
rng = np.random.default_rng(0)

# Inputs kept away from 0, where relu-like functions have a kink that finite differences straddle.
X = rng.choice([-1.0, 1.0], (2, 3, 4)) * rng.uniform(0.1, 2.0, (2, 3, 4))

TORCH_ACTIVATIONS = {
    "linear": lambda t: t,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": lambda t: torch.softmax(t, dim=-1),
    "log_softmax": lambda t: torch.log_softmax(t, dim=-1),
    "elu": tF.elu,
    "leaky_relu": tF.leaky_relu,
    "softplus": tF.softplus,
    "gelu": tF.gelu,
}


@pytest.mark.parametrize("name", sorted(TORCH_ACTIVATIONS))
def test_activation_layer_matches_torch(float64, name):
    assert_torch_parity(Activation(name), TORCH_ACTIVATIONS[name], X)


@pytest.mark.parametrize("name", sorted(TORCH_ACTIVATIONS))
def test_activation_layer_gradcheck(float64, name):
    assert gradcheck_layer(Activation(name), cr.tensor(X, requires_grad=True))


@pytest.mark.parametrize("layer, torch_module", [
    (ReLU(), torch.nn.ReLU()),
    (LeakyReLU(), torch.nn.LeakyReLU()),
    (LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
    (ELU(), torch.nn.ELU()),
    (ELU(0.5), torch.nn.ELU(0.5)),
    (Softmax(), torch.nn.Softmax(dim=-1)),
    (Softmax(axis=1), torch.nn.Softmax(dim=1)),
], ids=repr)
def test_activation_layers_match_torch(float64, layer, torch_module):
    assert_torch_parity(layer, torch_module, X)
    assert gradcheck_layer(layer, cr.tensor(X, requires_grad=True))


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5, 5)])
def test_prelu_matches_torch(float64, shape):
    x = rng.choice([-1.0, 1.0], shape) * rng.uniform(0.1, 2.0, shape)
    prelu, torch_prelu = PReLU(), torch.nn.PReLU(num_parameters=3).double()
    prelu(cr.tensor(x))  # lazy build: 3 slopes, from axis 1
    assert prelu.alpha.shape == (3,)
    np.testing.assert_array_equal(prelu.alpha.data, [0.25, 0.25, 0.25])
    with torch.no_grad():
        torch_prelu.weight.copy_(torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64))
    prelu.alpha.data[...] = [0.1, 0.2, 0.3]
    assert_torch_parity(prelu, torch_prelu, x, [(prelu.alpha, torch_prelu.weight, None)])


def test_prelu_gradcheck(float64):
    x = cr.tensor(X[:, :, :2], requires_grad=True)
    assert gradcheck_layer(PReLU(), x)


def test_prelu_channel_count_is_fixed_after_build():
    prelu = PReLU(name="p")
    prelu(cr.ones(2, 3))
    with pytest.raises(ValueError, match="'p' .*axis 1 must have size 3"):
        prelu(cr.ones(2, 4))


def test_registry_returns_functions_and_names_them_back():
    for name in TORCH_ACTIVATIONS:
        assert activations.serialize(activations.get(name)) == name
    assert activations.get(None) is activations.linear
    assert activations.get(np.tanh) is np.tanh
    with pytest.raises(ValueError, match="unknown activation 'rleu'; known names:.* relu"):
        activations.get("rleu")
    with pytest.raises(ValueError, match="unknown activation"):
        Activation("swishy")
    with pytest.raises(TypeError, match="cannot interpret"):
        activations.get(3)
