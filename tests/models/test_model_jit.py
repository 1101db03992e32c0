"""model.compile(jit=True): fit, evaluate and predict replay traced forward passes and give
define-by-run's numbers exactly."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import chainrule as cr
from chainrule import layers as L
from chainrule.models.fit_state import DivergenceWarning


def _mlp():
    return cr.models.Sequential([L.Dense(32, activation="relu"), L.BatchNormalization(),
                                 L.Dropout(0.3), L.Dense(4)])


def _cnn():
    return cr.models.Sequential([
        L.Conv2D(4, 3, padding="same", activation="relu"), L.MaxPooling2D(2),
        L.BatchNormalization(), L.Flatten(), L.Dropout(0.2), L.Dense(4)])


def _rnn():
    return cr.models.Sequential([L.Embedding(12, 6), L.LSTM(8), L.Dense(4)])


MODELS = {
    "mlp": (_mlp, lambda rng, n: rng.normal(size=(n, 8))),
    "cnn": (_cnn, lambda rng, n: rng.normal(size=(n, 1, 6, 6))),
    "rnn": (_rnn, lambda rng, n: rng.integers(0, 12, (n, 5))),
}


def _train(name, jit, optimizer="adam", epochs=2):
    make, inputs = MODELS[name]
    cr.manual_seed(0)
    model = make()
    model.compile(optimizer=optimizer, loss=cr.losses.SparseCategoricalCrossentropy(
        from_logits=True), metrics=["accuracy"], jit=jit)
    rng = np.random.default_rng(0)
    x, y = inputs(rng, 50), rng.integers(0, 4, 50)
    history = model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, seed=1,
                        validation_data=(x[:20], y[:20]))
    return model, history.history, model.evaluate(x, y, verbose=0), model.predict(x)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fit_evaluate_and_predict_equal_eager_exactly(name):
    """Same losses, metrics, weights (batch-norm statistics included), evaluation and
    predictions as eager after two epochs with dropout, a partial last batch and validation."""
    eager_model, eager_history, eager_eval, eager_pred = _train(name, jit=False)
    model, history, evaluation, prediction = _train(name, jit=True)
    assert history == eager_history
    assert evaluation == eager_eval
    np.testing.assert_array_equal(prediction, eager_pred)
    for mine, theirs in zip(model.weights, eager_model.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    info = model._traced.cache_info()["train/test"]
    assert info.hits > info.misses  # replayed: (16, 16, 16, 2) training batches per epoch


def test_float64_training_equals_eager_to_1e_12(float64):
    eager_model, eager_history, *_ = _train("mlp", jit=False, optimizer="sgd")
    model, history, *_ = _train("mlp", jit=True, optimizer="sgd")
    np.testing.assert_allclose(history["loss"], eager_history["loss"], rtol=1e-12)
    for mine, theirs in zip(model.weights, eager_model.weights):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-12)


def test_keras_jit_compile_true_means_jit():
    model = _mlp()
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    assert model.jit
    model.compile(optimizer="sgd", loss="mse", jit_compile="auto")
    assert not model.jit


def test_bad_jit_arguments_are_refused_by_name():
    model = _mlp()
    with pytest.raises(TypeError, match="compile: jit must be True or False, got 'yes'"):
        model.compile(optimizer="sgd", loss="mse", jit="yes")
    with pytest.raises(ValueError, match="jit_compile must be True, False or 'auto'"):
        model.compile(optimizer="sgd", loss="mse", jit_compile="xla")


def test_a_copy_of_a_jit_model_traces_its_own_weights():
    model, *_ = _train("mlp", jit=True, epochs=1)
    clone = copy.deepcopy(model)
    assert clone._traced is None
    x = np.random.default_rng(3).normal(size=(5, 8))
    clone.layers[0].kernel.data[...] = 0  # the copy's own weights change; the model's do not
    assert not np.array_equal(clone.predict(x), model.predict(x))
    np.testing.assert_array_equal(model.predict(x), model.predict(x))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_a_diverging_jit_fit_stops_as_the_eager_one_does():
    """A diverging learning rate: the non-finite loss is read outside the trace, so the step is
    skipped and fit stops where eager's does, with the same finite weights."""
    from tests.models.test_fit_guards import SetRate, data, model

    results = []
    for jit in (False, True):
        net = model()
        net.compile(optimizer=net.optimizer, loss=net.loss, jit=jit)
        x, y = data()
        with pytest.warns(DivergenceWarning):
            history = net.fit(x, y, epochs=4, batch_size=16, verbose=0,
                              callbacks=[SetRate(1, 1e30)])
        results.append((history.history, history.diverged, net.get_weights()))
    (eager_history, eager_diverged, eager_weights), (history, diverged, weights) = results
    assert diverged["epoch"] == eager_diverged["epoch"] == 1
    np.testing.assert_equal(history, eager_history)
    for mine, theirs in zip(weights, eager_weights):
        np.testing.assert_array_equal(mine, theirs)
