"""Ensemble: the weighted mean of its members' class probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.layers import Dense
from chainrule.losses import SparseCategoricalCrossentropy
from chainrule.models import Ensemble, Sequential
from chainrule.optimizers import Adam
from tests.models.helpers import blobs, mlp


def _softmax(logits):
    """A reference softmax written out here, independent of the one under test."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _trained_pair():
    """Two MLPs of different hidden sizes (logits), a few epochs on 3-class blobs."""
    x, y = blobs(n=90, seed=1)
    small, large = mlp(hidden=4), mlp(hidden=24)
    small.fit(x, y, epochs=2, batch_size=16, verbose=0, seed=0)
    large.fit(x, y, epochs=2, batch_size=16, verbose=0, seed=0)
    return x, y, small, large


@pytest.fixture(scope="module")
def pair():
    return _trained_pair()


def test_predict_is_the_mean_of_the_members_softmax(pair):
    x, _, small, large = pair
    expected = (_softmax(small.predict(x).astype(np.float64))
                + _softmax(large.predict(x).astype(np.float64))) / 2
    got = Ensemble([small, large]).predict(x, batch_size=7)
    assert got.shape == (len(x), 3)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-12)


def test_weights_are_normalised(pair):
    x, _, small, large = pair
    p_small = _softmax(small.predict(x).astype(np.float64))
    p_large = _softmax(large.predict(x).astype(np.float64))
    got = Ensemble([small, large], weights=[3, 1]).predict(x)
    np.testing.assert_allclose(got, 0.75 * p_small + 0.25 * p_large, rtol=1e-10, atol=1e-12)
    only_large = Ensemble([small, large], weights=[0.0, 2.0]).predict(x)
    np.testing.assert_allclose(only_large, p_large, rtol=1e-10, atol=1e-12)


def test_evaluate_gives_the_nll_and_accuracy_of_the_average(pair):
    x, y, small, large = pair
    p = (_softmax(small.predict(x).astype(np.float64))
         + _softmax(large.predict(x).astype(np.float64))) / 2
    nll = -np.mean([np.log(max(p[i, label], 1e-12)) for i, label in enumerate(y)])
    accuracy = np.mean(p.argmax(axis=1) == y)
    ensemble = Ensemble([small, large])
    result = ensemble.evaluate(x, y)
    assert set(result) == {"loss", "accuracy"}
    assert result["loss"] == pytest.approx(nll, rel=1e-10)
    assert result["accuracy"] == pytest.approx(accuracy)
    one_hot = np.eye(3)[y]
    assert ensemble.evaluate(x, one_hot) == pytest.approx(result)


def test_one_member_equals_its_softmax(pair):
    x, _, small, _ = pair
    np.testing.assert_allclose(Ensemble([small]).predict(x),
                               _softmax(small.predict(x).astype(np.float64)), rtol=1e-10)


def test_probability_outputs_are_used_as_they_are(pair):
    x, y, small, _ = pair
    softmax_model = Sequential([Dense(5, activation="relu", input_shape=(4,)),
                                Dense(3, activation="softmax")])
    softmax_model.compile(optimizer=Adam(0.01), loss="sparse_categorical_crossentropy")
    softmax_model.fit(x, y, epochs=1, verbose=0, seed=0)
    probabilities = softmax_model.predict(x).astype(np.float64)
    got = Ensemble([softmax_model, small]).predict(x)
    expected = (probabilities + _softmax(small.predict(x).astype(np.float64))) / 2
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_output_can_be_forced(pair):
    x, _, small, _ = pair
    logits = small.predict(x).astype(np.float64)
    np.testing.assert_allclose(Ensemble([small], output="probabilities").predict(x), logits)
    uncompiled = Sequential([Dense(3, input_shape=(4,))])
    np.testing.assert_allclose(Ensemble([uncompiled], output="logits").predict(x),
                               _softmax(uncompiled.predict(x).astype(np.float64)), rtol=1e-10)
    with pytest.raises(ValueError, match="output"):
        Ensemble([small], output="scores")


def test_uncompiled_logit_members_get_a_softmax(pair):
    x, _, _, _ = pair
    member = Sequential([Dense(3, input_shape=(4,))])
    np.testing.assert_allclose(Ensemble([member]).predict(x),
                               _softmax(member.predict(x).astype(np.float64)), rtol=1e-10)


def test_different_output_sizes_raise_naming_the_members(pair):
    _, _, small, _ = pair
    four = Sequential([Dense(4, input_shape=(4,))], name="four_classes")
    with pytest.raises(ValueError, match=r"models\[1\].*four_classes.*4 classes.*3"):
        Ensemble([small, four])


def test_different_output_sizes_found_at_predict_when_unknown(pair):
    x, _, small, _ = pair
    unbuilt = Sequential([Dense(5)], name="unbuilt_five")
    ensemble = Ensemble([small, unbuilt])
    with pytest.raises(ValueError, match=r"models\[1\].*unbuilt_five.*5 classes"):
        ensemble.predict(x)


def test_bad_arguments_raise_naming_them(pair):
    _, _, small, large = pair
    with pytest.raises(ValueError, match="models is empty"):
        Ensemble([])
    with pytest.raises(TypeError, match=r"models\[1\]"):
        Ensemble([small, "not a model"])
    with pytest.raises(ValueError, match="weights"):
        Ensemble([small, large], weights=[1.0])
    with pytest.raises(ValueError, match="weights"):
        Ensemble([small, large], weights=[1.0, -0.5])
    with pytest.raises(ValueError, match="weights"):
        Ensemble([small, large], weights=[0.0, 0.0])


def test_evaluate_rejects_bad_labels(pair):
    x, y, small, _ = pair
    with pytest.raises(ValueError, match="y"):
        Ensemble([small]).evaluate(x, y[:-1])
    with pytest.raises(ValueError, match="class ids"):
        Ensemble([small]).evaluate(x, np.full(len(x), 7))


def test_members_are_not_left_in_another_mode(pair):
    x, _, small, large = pair
    small.train()
    Ensemble([small, large]).predict(x)
    assert all(layer.training for layer in small.modules())
    small.eval()


def test_loss_from_logits_is_read_from_the_compiled_loss():
    model = Sequential([Dense(3, input_shape=(4,))])
    model.compile(optimizer="sgd", loss=SparseCategoricalCrossentropy(from_logits=True))
    # Logits that happen to look like probabilities still get the softmax.
    model.layers[0].kernel.data[...] = 0.0
    model.layers[0].bias.data[...] = np.array([0.2, 0.3, 0.5], dtype=np.float32)
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(Ensemble([model]).predict(x),
                               _softmax(np.tile([[0.2, 0.3, 0.5]], (2, 1))), rtol=1e-6)
