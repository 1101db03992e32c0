"""AveragedModel (SWA / EMA) and update_bn, checked by hand and against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.layers import BatchNormalization, Dense
from chainrule.models import AveragedModel, Sequential, update_bn


def bn_model():
    return Sequential([Dense(3, input_shape=(4,)), BatchNormalization(), Dense(2)])


def random_weights(model, rng):
    """Random arrays for every weight (positive ones for the moving variance)."""
    return [(np.abs(rng.normal(size=w.shape)) if "variance" in name else rng.normal(size=w.shape))
            .astype(np.float32) for name, w in model.named_weights()]


def test_swa_is_the_arithmetic_mean_and_bn_buffers_are_copied():
    rng = np.random.default_rng(0)
    model = bn_model()
    averaged = AveragedModel(model)
    assert averaged.module is not model and averaged.n_averaged == 0
    names = [n for n, _ in model.named_weights()]
    trainable = {n for n, _ in model.named_parameters()}
    history = []
    for _ in range(4):
        weights = random_weights(model, rng)
        model.set_weights(weights)
        averaged.update_parameters(model)
        history.append(weights)
    assert averaged.n_averaged == 4
    for i, (name, value) in enumerate(zip(names, averaged.get_weights())):
        if name in trainable:
            expected = np.mean([h[i] for h in history], axis=0)
        else:  # moving statistics: copied from the last update, not averaged
            expected = history[-1][i]
        np.testing.assert_allclose(value, expected, rtol=1e-6, atol=1e-6)
    assert any(name not in trainable for name in names)
    x = rng.normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(averaged.predict(x), averaged.module.predict(x))


def test_ema_follows_the_recurrence():
    rng = np.random.default_rng(1)
    model = Sequential([Dense(3, input_shape=(4,))])
    averaged = AveragedModel(model, mode="ema", decay=0.9)
    expected = None
    for _ in range(3):
        weights = random_weights(model, rng)
        model.set_weights(weights)
        averaged.update_parameters(model)
        expected = weights if expected is None else [
            0.9 * e + 0.1 * w for e, w in zip(expected, weights)]
    for value, want in zip(averaged.get_weights(), expected):
        np.testing.assert_allclose(value, want, rtol=1e-6, atol=1e-6)


def test_errors():
    model = Sequential([Dense(3, input_shape=(4,))])
    with pytest.raises(ValueError, match="mode"):
        AveragedModel(model, mode="mean")
    for decay in (1.0, -0.1):
        with pytest.raises(ValueError, match="decay"):
            AveragedModel(model, mode="ema", decay=decay)
    averaged = AveragedModel(model)
    with pytest.raises(ValueError, match="model"):
        averaged.update_parameters(Sequential([Dense(5, input_shape=(4,))]))


def test_update_bn_one_batch_and_many_batches():
    rng = np.random.default_rng(2)
    model = bn_model()
    averaged = AveragedModel(model)
    averaged.update_parameters(model)
    bn = averaged.module.layers[1]
    averaged.module.eval()
    x = rng.normal(size=(12, 4)).astype(np.float32)
    hidden = averaged.module.layers[0](x).numpy().astype(np.float64)
    update_bn(averaged, x, batch_size=len(x))
    np.testing.assert_allclose(bn.moving_mean.numpy(), hidden.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), hidden.var(0), rtol=1e-5, atol=1e-6)
    assert bn.momentum == 0.99 and not any(m.training for m in averaged.module.modules())

    update_bn(averaged, x, batch_size=5)  # batches of 5, 5, 2: the plain mean of their stats
    chunks = [hidden[i:i + 5] for i in range(0, 12, 5)]
    np.testing.assert_allclose(bn.moving_mean.numpy(), np.mean([c.mean(0) for c in chunks], 0),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(),
                               np.mean([c.var(0) for c in chunks], 0), rtol=1e-5, atol=1e-6)


def test_update_bn_without_batch_norm_does_nothing():
    model = Sequential([Dense(2, input_shape=(3,))])
    before = model.get_weights()
    update_bn(model, np.ones((4, 3), np.float32))
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_update_bn_matches_pytorch():
    torch = pytest.importorskip("torch")
    from torch.optim.swa_utils import update_bn as torch_update_bn

    rng = np.random.default_rng(3)
    x = rng.normal(loc=2.0, scale=3.0, size=(10, 3)).astype(np.float32)
    model = Sequential([BatchNormalization(input_shape=(3,))])
    update_bn(model, x, batch_size=10)
    torch_bn = torch.nn.BatchNorm1d(3)
    loader = torch.utils.data.DataLoader(torch.from_numpy(x), batch_size=10)
    torch_update_bn(loader, torch_bn)
    bn = model.layers[0]
    np.testing.assert_allclose(bn.moving_mean.numpy(), torch_bn.running_mean.numpy(), rtol=1e-5)
    # PyTorch stores the unbiased variance, chainrule (as Keras) the biased one
    np.testing.assert_allclose(bn.moving_variance.numpy(),
                               torch_bn.running_var.numpy() * 9 / 10, rtol=1e-5)
