"""Model: subclassing, compile, evaluate, predict and the *_on_batch methods."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import metrics
from chainrule.layers import Dense, Dropout
from chainrule.losses import SparseCategoricalCrossentropy
from chainrule.models import Model, Sequential
from chainrule.optimizers import Adam
from tests.models.helpers import blobs, mlp


class TwoLayers(Model):
    """A subclassed model, Keras style (``call``)."""

    def __init__(self, hidden=16, classes=3, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = hidden
        self.classes = classes
        self.hidden = Dense(hidden, activation="relu")
        self.drop = Dropout(0.5)
        self.out = Dense(classes)

    def call(self, x):
        return self.out(self.drop(self.hidden(x)))

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden_units, "classes": self.classes}


def test_subclassed_model_trains_and_summarizes(capsys):
    x, y = blobs()
    model = TwoLayers(name="two_layers")
    model.compile(optimizer=Adam(learning_rate=0.01),
                  loss=SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.evaluate(x, y, verbose=0)[1] > 0.9
    assert [name for name, _ in model.named_parameters()] == [
        "hidden.kernel", "hidden.bias", "out.kernel", "out.bias"]
    model.summary()
    table = capsys.readouterr().out
    assert f"{model.hidden.name} (Dense)" in table and f"{model.drop.name} (Dropout)" in table
    assert "(None, 16)" in table and "Total params: 131 " in table


def test_subclassed_model_builds_from_a_shape():
    model = TwoLayers()
    model.build((None, 4))
    assert model.built and model.hidden.kernel.shape == (4, 16) and model.training


def test_functional_api_needs_symbolic_tensors():
    with pytest.raises(TypeError, match="symbolic tensors"):
        Model(inputs=None, outputs=None)


def test_compile_arguments():
    model = mlp(compile_=False)
    model.compile(optimizer="sgd", loss="mse", run_eagerly=True, jit_compile=False)
    assert type(model.optimizer).__name__ == "SGD" and model.metrics_names == ["loss"]
    with pytest.raises(TypeError, match="loss_weightz"):
        model.compile(loss="mse", loss_weightz=[1])
    with pytest.raises(ValueError, match="ConfusionMatrix"):
        model.compile(loss="mse", metrics=[metrics.ConfusionMatrix(3)])
    with pytest.raises(RuntimeError, match="compile"):
        mlp(compile_=False).fit(*blobs(), verbose=0)
    model.compile(optimizer="adam")
    with pytest.raises(RuntimeError, match="without a loss"):
        model.evaluate(*blobs(), verbose=0)


@pytest.mark.parametrize("loss, targets, expected", [
    (SparseCategoricalCrossentropy(from_logits=True), "labels",
     metrics.SparseCategoricalAccuracy),
    ("categorical_crossentropy", "one_hot", metrics.CategoricalAccuracy),
    ("mse", "one_hot", metrics.CategoricalAccuracy),
])
def test_accuracy_is_resolved_on_the_first_batch(loss, targets, expected):
    x, y = blobs()
    if targets == "one_hot":
        y = np.eye(3, dtype=np.float32)[y]
    model = mlp(compile_=False)
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy", "top_k_categorical_accuracy"]
                  if targets == "one_hot" else ["accuracy"])
    model.fit(x, y, epochs=1, verbose=0)
    assert type(model.compiled_metrics[0]) is expected
    assert model.metrics_names[:2] == ["loss", "accuracy"]


def test_evaluate_returns_loss_list_or_dict():
    x, y = blobs()
    model = mlp()
    loss, accuracy = model.evaluate(x, y, verbose=0)
    logits = model.predict(x)
    expected_loss = SparseCategoricalCrossentropy(from_logits=True)(y, logits).item()
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    assert accuracy == pytest.approx(np.mean(logits.argmax(1) == y))
    assert model.evaluate(x, y, verbose=0, return_dict=True) == {"loss": loss,
                                                                 "accuracy": accuracy}
    model.compile(optimizer="adam", loss=SparseCategoricalCrossentropy(from_logits=True))
    assert model.evaluate(x, y, batch_size=7, verbose=0) == pytest.approx(loss, rel=1e-5)


def test_evaluate_and_predict_run_in_evaluation_mode_without_a_graph():
    x, _ = blobs()
    model = TwoLayers()
    model.compile(optimizer="adam", loss=SparseCategoricalCrossentropy(from_logits=True))
    first = model.predict(x)
    np.testing.assert_array_equal(model.predict(x, batch_size=7), first)  # no dropout
    assert model.training and model.drop.training  # modes restored
    assert cr.is_grad_enabled()
    assert all(p.grad is None for p in model.parameters())
    np.testing.assert_array_equal(model.predict_on_batch(x), first)
    train_mode_output = model(x).numpy()
    assert not np.array_equal(train_mode_output, first)  # dropout is active again


def test_predict_accepts_loaders_and_datasets_and_casts_floats():
    from chainrule.data import ArrayDataset, DataLoader

    x, y = blobs(dtype=np.float64)
    model = mlp()
    out = model.predict(x)
    assert out.dtype == np.float32 and out.shape == (120, 3)
    np.testing.assert_array_equal(model.predict(ArrayDataset(x, y)), out)
    np.testing.assert_array_equal(model.predict(DataLoader(ArrayDataset(x), batch_size=50)), out)
    np.testing.assert_array_equal(model.predict(cr.tensor(x)), out)


def test_on_batch_methods():
    x, y = blobs(32)
    model = mlp()
    before = model.test_on_batch(x, y)
    loss, accuracy = model.train_on_batch(x, y)
    assert loss == pytest.approx(before[0])  # the loss before the step
    after = model.test_on_batch(x, y, return_dict=True)
    assert after["loss"] < before[0]
    for _ in range(3):
        model.train_on_batch(x[:16], y[:16], reset_metrics=False)
    assert model._loss_tracker.count == 32 + 48  # test_on_batch's batch, then 3 more
    assert model.train_on_batch(x, y, return_dict=True).keys() == {"loss", "accuracy"}


def test_model_in_a_sequential_is_a_layer():
    inner = TwoLayers(hidden=8, classes=5)
    model = Sequential([Dense(4, input_shape=(3,)), inner])
    assert model(np.zeros((2, 3), np.float32)).shape == (2, 5)
    assert len(model.parameters()) == 6
