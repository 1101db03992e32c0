"""Model.predict_mc: Monte-Carlo dropout (dropout active, batch normalization frozen)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.layers import BatchNormalization, Dense, Dropout
from chainrule.models import Model, Sequential
from tests.models.helpers import blobs, mlp


def _linear_after_dropout(seed=0):
    """Dropout(0.5) then a linear Dense: E[output] is exactly the evaluation-mode output."""
    cr.manual_seed(seed)
    return Sequential([Dropout(0.5, input_shape=(4,)), Dense(3)])


def _with_batch_norm(x, y):
    """Dense – BatchNormalization – Dropout – Dense, trained a little so the moving statistics
    are not their initial values."""
    cr.manual_seed(0)
    model = Sequential([Dense(6, input_shape=(4,)), BatchNormalization(momentum=0.5),
                        Dropout(0.3), Dense(3)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, seed=0)
    return model


def _modes(model):
    return [layer.training for layer in model.modules()]


def test_shapes_and_passes_differ():
    x, _ = blobs(n=20)
    model = _linear_after_dropout()
    mean, std = model.predict_mc(x, samples=10, batch_size=8)
    assert mean.shape == std.shape == (20, 3)
    assert np.all(std >= 0) and np.any(std > 0)


def test_mean_approaches_predict_for_a_linear_model():
    x, _ = blobs(n=10)
    model = _linear_after_dropout()
    samples = 4000
    mean, std = model.predict_mc(x, samples=samples, seed=1)
    error = np.abs(mean - model.predict(x))
    assert np.all(error <= 5 * std / np.sqrt(samples) + 1e-5)


def test_same_seed_same_result_and_global_generator_untouched():
    x, _ = blobs(n=12)
    model = Sequential([Dropout(0.5, input_shape=(4,)), Dense(8), Dropout(0.2, seed=3),
                        Dense(3)])
    model.build((None, 4))
    cr.manual_seed(5)
    expected_next = cr.random.get_generator().random()
    cr.manual_seed(5)
    first = model.predict_mc(x, samples=5, seed=42)
    assert cr.random.get_generator().random() == expected_next
    second = model.predict_mc(x, samples=5, seed=42)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    other = model.predict_mc(x, samples=5, seed=43)
    assert not np.array_equal(first[0], other[0])


def test_one_sample_without_dropout_equals_predict():
    x, _ = blobs(n=37)
    model = mlp()
    mean, std = model.predict_mc(x, samples=1, batch_size=8)
    np.testing.assert_array_equal(mean, model.predict(x, batch_size=8))
    np.testing.assert_array_equal(std, np.zeros_like(std))


def test_no_dropout_gives_zero_std_for_many_samples():
    x, _ = blobs(n=9)
    mean, std = mlp(compile_=False).predict_mc(x, samples=4)
    np.testing.assert_array_equal(std, np.zeros_like(std))


def test_batch_norm_uses_and_keeps_its_moving_statistics():
    x, y = blobs(n=48)
    model = _with_batch_norm(x, y)
    dense, norm, _, head = model.layers
    before = {name: np.array(w, copy=True) for name, w in model.state_dict().items()}
    moving_mean = norm.moving_mean.numpy().copy()
    moving_variance = norm.moving_variance.numpy().copy()
    assert not np.allclose(moving_mean, 0.0)

    mean, _ = model.predict_mc(x, samples=3, seed=0)

    for name, weight in model.state_dict().items():
        np.testing.assert_array_equal(np.asarray(weight), before[name], err_msg=name)
    # Dropout off (rate 0) gives the evaluation-mode forward, computed by hand.
    model.layers[2].rate = 0.0
    one, _ = model.predict_mc(x, samples=1)
    hidden = x @ dense.kernel.numpy() + dense.bias.numpy()
    normed = ((hidden - moving_mean) / np.sqrt(moving_variance + norm.epsilon)
              * norm.gamma.numpy() + norm.beta.numpy())
    manual = normed @ head.kernel.numpy() + head.bias.numpy()
    np.testing.assert_allclose(one, manual, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(one, model.predict(x), rtol=1e-6, atol=1e-6)
    assert mean.shape == manual.shape


def test_modes_are_restored():
    x, y = blobs(n=16)
    model = _with_batch_norm(x, y)
    model.train()
    model.layers[1].training = False  # a mixed state, to be given back exactly
    modes = _modes(model)
    model.predict_mc(x, samples=2)
    assert _modes(model) == modes


def test_modes_are_restored_after_an_error():
    x, y = blobs(n=16)
    model = _with_batch_norm(x, y)
    model.train()
    modes = _modes(model)
    with pytest.raises(Exception):  # noqa: B017 - whatever the shape check raises
        model.predict_mc(np.zeros((4, 7), np.float32), samples=2)
    assert _modes(model) == modes


def test_dropout_is_active_and_batch_norm_inactive_during_the_passes():
    seen = []

    class Probe(Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.norm = BatchNormalization()
            self.drop = Dropout(0.5)
            self.out = Dense(2)

        def forward(self, x):
            seen.append((self.training, self.norm.training, self.drop.training))
            return self.out(self.drop(self.norm(x)))

    Probe().predict_mc(np.ones((3, 4), np.float32), samples=2)
    assert seen and all(state == (False, False, True) for state in seen)


def test_probabilities_flag_averages_softmax_per_pass():
    x, _ = blobs(n=6)
    model = _linear_after_dropout()
    logits_mean, _ = model.predict_mc(x, samples=1, seed=7)
    mean, std = model.predict_mc(x, samples=1, seed=7, probabilities=True)
    e = np.exp(logits_mean - logits_mean.max(axis=1, keepdims=True))
    np.testing.assert_allclose(mean, e / e.sum(axis=1, keepdims=True), rtol=1e-5)
    many, _ = model.predict_mc(x, samples=20, probabilities=True)
    np.testing.assert_allclose(many.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("samples", [0, -1, 2.5])
def test_bad_samples_raise(samples):
    with pytest.raises(ValueError, match="samples"):
        mlp(compile_=False).predict_mc(np.zeros((2, 4), np.float32), samples=samples)
