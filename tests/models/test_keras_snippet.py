"""The lectures' Keras code, unchanged but for the imports, learns a small problem."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.layers import Dense
from chainrule.models import Sequential


def one_hot(labels, classes):
    return np.eye(classes)[labels]


def synthetic_problem(n, seed):
    """Four classes of points in 10-D, separable by their first two coordinates' signs."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 10))
    labels = (x[:, 0] > 0).astype(int) * 2 + (x[:, 1] > 0).astype(int)
    return x, one_hot(labels, 4)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_lecture_snippet(optimizer, capsys):
    x_train, y_train = synthetic_problem(800, seed=0)
    x_test, y_test = synthetic_problem(200, seed=1)

    # --- the lecture's code (Keras), unchanged -------------------------------------------------
    model = Sequential()
    model.add(Dense(64, activation="relu", input_shape=(10,)))
    model.add(Dense(64, activation="relu"))
    model.add(Dense(4, activation="softmax"))
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=20, batch_size=32)
    score = model.evaluate(x_test, y_test, batch_size=32)
    predictions = model.predict(x_test)
    # -------------------------------------------------------------------------------------------

    loss, accuracy = score
    assert accuracy > 0.75  # chance is 0.25
    assert predictions.shape == (200, 4)
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, rtol=1e-5)
    assert np.mean(predictions.argmax(1) == y_test.argmax(1)) == pytest.approx(accuracy)
    out = capsys.readouterr().out
    assert out.count("Epoch ") == 20 and "val_" not in out
