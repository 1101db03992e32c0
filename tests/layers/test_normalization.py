"""BatchNormalization, Shift and Scale: gradient checks and parity with PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.layers import BatchNormalization, Scale, Shift
from tests.layers.helpers import assert_torch_parity, gradcheck_layer, torch_param
from tests.torch_helpers import require_torch

torch = require_torch()
rng = np.random.default_rng(0)

KERAS_MOMENTUM = 0.9


def paired_batch_norms(shape, center=True, scale=True):
    """A BatchNormalization and a torch BatchNorm1d/2d with the same random γ, β and moving
    statistics; torch's momentum is 1 − Keras's."""
    channels = shape[1]
    module = (torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d)(
        channels, eps=1e-3, momentum=1 - KERAS_MOMENTUM, affine=center and scale).double()
    layer = BatchNormalization(momentum=KERAS_MOMENTUM, epsilon=1e-3, center=center,
                               scale=scale, input_shape=shape[1:])
    mean, var = rng.standard_normal(channels), rng.uniform(0.5, 2.0, channels)
    with torch.no_grad():
        module.running_mean.copy_(torch.tensor(mean))
        module.running_var.copy_(torch.tensor(var))
        if module.affine:
            module.weight.copy_(torch.tensor(rng.uniform(0.5, 1.5, channels)))
            module.bias.copy_(torch.tensor(rng.standard_normal(channels)))
    state = {"moving_mean": mean, "moving_variance": var}
    if module.affine:
        state.update(gamma=module.weight.detach().numpy(), beta=module.bias.detach().numpy())
    layer.load_state_dict(state)
    pairs = [(layer.gamma, module.weight, None), (layer.beta, module.bias, None)]
    return layer, module, pairs if module.affine else []


@pytest.mark.parametrize("shape", [(6, 3), (2, 3, 5, 5)])
def test_batch_norm_training_mode_matches_torch(float64, shape):
    layer, module, pairs = paired_batch_norms(shape)
    old_var = layer.moving_variance.data.copy()
    x = rng.standard_normal(shape) * 2 + 1
    assert_torch_parity(layer, module, x, pairs)
    np.testing.assert_allclose(layer.moving_mean.data, module.running_mean.numpy(), rtol=1e-12)
    # Keras moves towards the biased batch variance, PyTorch towards the unbiased one.
    n = x.size // shape[1]
    axes = tuple(i for i in range(x.ndim) if i != 1)
    expected = KERAS_MOMENTUM * old_var + (1 - KERAS_MOMENTUM) * x.var(axis=axes)
    np.testing.assert_allclose(layer.moving_variance.data, expected, rtol=1e-12)
    torch_unbiased = (module.running_var.numpy() - KERAS_MOMENTUM * old_var) / (1 - KERAS_MOMENTUM)
    np.testing.assert_allclose(torch_unbiased * (n - 1) / n, x.var(axis=axes), rtol=1e-10)


@pytest.mark.parametrize("shape", [(6, 3), (2, 3, 5, 5)])
def test_batch_norm_evaluation_mode_matches_torch(float64, shape):
    layer, module, pairs = paired_batch_norms(shape)
    layer.eval()
    module.eval()
    before = layer.state_dict()
    assert_torch_parity(layer, module, rng.standard_normal(shape), pairs)
    for name in ("moving_mean", "moving_variance"):
        np.testing.assert_array_equal(layer.state_dict()[name], before[name])  # not updated


def test_batch_norm_without_center_and_scale_matches_torch(float64):
    layer, module, _ = paired_batch_norms((6, 3), center=False, scale=False)
    assert [name for name, _ in layer.named_weights()] == ["moving_mean", "moving_variance"]
    assert layer.count_params() == 6
    assert_torch_parity(layer, module, rng.standard_normal((6, 3)))


def test_batch_norm_channels_last(float64):
    layer, module, pairs = paired_batch_norms((2, 3, 4, 4))
    channels_last = BatchNormalization(axis=-1, momentum=KERAS_MOMENTUM, epsilon=1e-3)
    channels_last(cr.zeros(2, 4, 4, 3))
    channels_last.set_weights(layer.get_weights())
    assert_torch_parity(channels_last,
                        lambda t: module(t.permute(0, 3, 1, 2)).permute(0, 2, 3, 1),
                        rng.standard_normal((2, 4, 4, 3)),
                        [(channels_last.gamma, module.weight, None),
                         (channels_last.beta, module.bias, None)])


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 3, 3)])
def test_batch_norm_gradcheck(float64, training, shape):
    layer, _, _ = paired_batch_norms(shape)
    layer.train(training)
    x = cr.tensor(rng.standard_normal(shape), requires_grad=True)
    assert gradcheck_layer(layer, x)


def test_batch_norm_train_and_eval_differ():
    layer = BatchNormalization()
    x = cr.tensor(rng.standard_normal((8, 3)) * 3 + 2)
    train_out = layer(x).numpy()
    np.testing.assert_allclose(train_out.mean(axis=0), 0, atol=1e-5)
    eval_out = layer.eval()(x).numpy()
    assert not np.allclose(train_out, eval_out, atol=1e-2)
    moving = layer.moving_mean.data.copy()
    layer(x)
    np.testing.assert_array_equal(layer.moving_mean.data, moving)


def test_frozen_batch_norm_uses_moving_statistics():
    layer = BatchNormalization(input_shape=(3,))
    layer.trainable = False
    x = cr.tensor(rng.standard_normal((8, 3)) * 3 + 2)
    np.testing.assert_allclose(layer(x).numpy(), x.numpy() / np.sqrt(1 + 1e-3), rtol=1e-6)
    np.testing.assert_array_equal(layer.moving_mean.data, np.zeros(3))


def test_batch_norm_moving_statistics_are_state_not_parameters():
    layer = BatchNormalization(input_shape=(2, 4, 4))
    assert [name for name, _ in layer.named_parameters()] == ["gamma", "beta"]
    assert layer.non_trainable_weights == [layer.moving_mean, layer.moving_variance]
    assert not layer.moving_mean.requires_grad
    assert layer.count_params() == 8


def test_batch_norm_errors():
    with pytest.raises(ValueError, match="momentum"):
        BatchNormalization(momentum=1.5)
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        BatchNormalization(axis=3)(cr.ones(2, 3))
    layer = BatchNormalization(name="bn")
    layer(cr.ones(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"'bn' .*\(None, 3, None, None\)"):
        layer(cr.ones(2, 5, 4, 4))


# -- Shift and Scale ----------------------------------------------------------------------------

MODES = [
    # (mode, input shape, weight shape, how the weight broadcasts against the input in torch)
    ("element", (4, 3), (3,), lambda w: w),
    ("channel", (4, 3), (3,), lambda w: w),
    ("layer", (4, 3), (), lambda w: w),
    ("element", (2, 3, 5, 5), (3, 5, 5), lambda w: w),
    ("channel", (2, 3, 5, 5), (3,), lambda w: w.reshape(3, 1, 1)),
    ("layer", (2, 3, 5, 5), (), lambda w: w),
]


@pytest.mark.parametrize("mode, shape, weight_shape, broadcast", MODES,
                         ids=[f"{m[0]}-{len(m[1])}d" for m in MODES])
@pytest.mark.parametrize("cls", [Shift, Scale])
def test_shift_and_scale_match_torch(float64, cls, mode, shape, weight_shape, broadcast):
    layer = cls(mode)
    x = rng.standard_normal(shape)
    identity = layer(cr.tensor(x))
    np.testing.assert_array_equal(identity.numpy(), x)  # b = 0 and s = 1 at the start
    weight = layer.weights[0]
    assert weight.shape == weight_shape and layer.count_params() == int(np.prod(weight_shape))
    weight.data[...] = rng.uniform(0.5, 1.5, weight_shape)
    theirs = torch_param(weight.data)
    if cls is Shift:
        assert_torch_parity(layer, lambda t: t + broadcast(theirs), x, [(weight, theirs, None)])
    else:
        assert_torch_parity(layer, lambda t: broadcast(theirs) * t, x, [(weight, theirs, None)])


@pytest.mark.parametrize("mode", ["element", "channel", "layer"])
@pytest.mark.parametrize("cls", [Shift, Scale])
def test_shift_and_scale_gradcheck(float64, cls, mode):
    layer = cls(mode)
    x = cr.tensor(rng.standard_normal((2, 3, 2, 2)), requires_grad=True)
    layer(x)
    layer.weights[0].data[...] = rng.uniform(0.5, 1.5, layer.weights[0].shape)
    assert gradcheck_layer(layer, x)


def test_shift_and_scale_weight_names_and_errors():
    assert Shift(input_shape=(3,)).state_dict().keys() == {"bias"}
    assert Scale(input_shape=(3,)).state_dict().keys() == {"scale"}
    with pytest.raises(ValueError, match="mode must be one of"):
        Shift("pixel")
    layer = Scale("element", name="sc")
    layer(cr.ones(2, 3, 4))
    with pytest.raises(ValueError, match=r"'sc' \(Scale\) expects .*\(None, 3, 4\)"):
        layer(cr.ones(2, 3, 5))
    layer = Shift("layer")
    layer(cr.ones(2, 3))
    assert layer(cr.ones(5)).shape == (5,)  # one scalar fits any input


def test_shift_and_scale_train_by_gradient():
    shift, scale = Shift("channel"), Scale("channel")
    x = cr.tensor(rng.standard_normal((8, 3)))
    loss = ((scale(shift(x)) - 2.0) ** 2).mean()
    loss.backward()
    for p in (*shift.parameters(), *scale.parameters()):
        p.data -= 0.1 * p.grad.data
    assert ((scale(shift(x)) - 2.0) ** 2).mean().item() < loss.item()
