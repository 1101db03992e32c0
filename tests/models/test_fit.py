"""Model.fit: data forms, validation, History keys, the smoothed loss, stopping rules."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule import callbacks
from chainrule.data import ArrayDataset, DataLoader
from chainrule.layers import Dense
from chainrule.losses import SparseCategoricalCrossentropy
from chainrule.models import Sequential
from chainrule.models.training import LossEMA, class_mix_distance
from chainrule.optimizers import SGD, GradientDescent
from tests.models.helpers import blobs, mlp


def test_fit_learns_and_reports_every_key():
    x, y = blobs()
    history = mlp().fit(x, y, epochs=15, batch_size=16, verbose=0, validation_split=0.2)
    h = history.history
    assert set(h) == {"loss", "accuracy", "val_loss", "val_accuracy", "loss_ema",
                      "learning_rate"}
    assert h["loss"][-1] < h["loss"][0] and h["val_accuracy"][-1] > 0.9
    assert h["learning_rate"] == [pytest.approx(0.01)] * 15


def test_validation_split_takes_the_tail_before_shuffling():
    x, y = blobs(100)
    model = mlp()
    history = model.fit(x, y, epochs=1, batch_size=10, verbose=0, validation_split=0.3)
    tail = model.evaluate(x[70:], y[70:], verbose=0, return_dict=True)
    assert history.history["val_loss"][0] == pytest.approx(tail["loss"], rel=1e-6)
    assert history.history["val_accuracy"][0] == pytest.approx(tail["accuracy"])


def test_validation_split_warns_about_sorted_data():
    x, y = blobs(90)
    order = np.argsort(y, kind="stable")
    with pytest.warns(UserWarning, match="class mix differs badly"):
        mlp().fit(x[order], y[order], epochs=1, verbose=0, validation_split=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mlp().fit(x, y, epochs=1, verbose=0, validation_split=0.2)  # interleaved: no warning


def test_class_mix_distance():
    assert class_mix_distance(np.array([0, 1, 0, 1]), np.array([1, 0])) == 0.0
    assert class_mix_distance(np.array([0, 0]), np.array([1, 1])) == 1.0
    assert class_mix_distance(np.eye(3)[[0, 1, 2, 2]], np.eye(3)[[2, 2]]) == 0.5
    assert class_mix_distance(np.array([0.5, 1.7]), np.array([0.1])) is None  # regression


def test_loaders_datasets_and_arrays_give_the_same_training():
    x, y = blobs(64)
    results = []
    for data in ((x, y), (ArrayDataset(x, y), None), (DataLoader(ArrayDataset(x, y),
                                                                batch_size=16), None)):
        cr.manual_seed(1)
        model = mlp()
        model.fit(data[0], data[1], batch_size=16, epochs=2, shuffle=False, verbose=0,
                  validation_data=DataLoader(ArrayDataset(x[:8], y[:8]), batch_size=4))
        results.append(model.get_weights())
    for weights in results[1:]:
        for a, b in zip(results[0], weights):
            np.testing.assert_array_equal(a, b)


def test_seed_makes_shuffling_reproducible():
    x, y = blobs(64)
    runs = []
    for seed in (3, 3, 4):
        cr.manual_seed(0)
        model = mlp()
        model.fit(x, y, batch_size=8, epochs=2, seed=seed, verbose=0)
        runs.append(model.get_weights()[0])
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_initial_epoch_and_validation_freq():
    x, y = blobs(60)
    history = mlp().fit(x, y, epochs=5, initial_epoch=2, validation_data=(x, y),
                        validation_freq=2, verbose=0)
    assert history.epoch == [2, 3, 4]
    assert len(history.history["loss"]) == 3 and len(history.history["val_loss"]) == 1


def test_float64_data_trains_a_float32_model():
    x, y = blobs(32, dtype=np.float64)
    model = mlp()
    model.fit(x, y, epochs=1, verbose=0)
    assert {w.dtype for w in model.weights} == {np.dtype(np.float32)}


def test_regularization_losses_are_added():
    x, y = blobs(40)
    model = Sequential([Dense(3, input_shape=(4,), kernel_regularizer="l2")])
    loss_fn = SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=SGD(learning_rate=0.0), loss=loss_fn)
    history = model.fit(x, y, batch_size=40, epochs=1, verbose=0)
    data_loss = loss_fn(y, model.predict(x)).item()
    penalty = model.regularization_loss().item()
    assert penalty > 0
    assert history.history["loss"][0] == pytest.approx(data_loss + penalty, rel=1e-6)


def test_loss_ema_is_the_bias_corrected_average_per_step():
    ema = LossEMA(beta=0.5)
    for loss in (4.0, 2.0, 1.0):
        ema.update(loss)
    # m = Σ (1 − β)·β^(t−i)·lossᵢ, divided by 1 − β³
    assert ema.value == pytest.approx((0.125 * 4 + 0.25 * 2 + 0.5 * 1) / (1 - 0.5**3))
    x, y = blobs(8)
    repeated = (np.tile(x, (5, 1)), np.tile(y, 5))  # 5 identical batches of 8
    model = mlp(optimizer=SGD(learning_rate=0.0))
    history = model.fit(*repeated, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert history.history["loss_ema"] == pytest.approx(history.history["loss"], rel=1e-6)


def test_gradient_descent_with_a_goal_stops_fit_when_converged():
    x, y = blobs(30)
    model = Sequential([Dense(3, input_shape=(4,))])
    model.compile(optimizer=GradientDescent(learning_rate=0.05, goal=0.05),
                  loss=SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, batch_size=30, epochs=10_000, verbose=0)
    assert model.optimizer.converged and len(history.epoch) < 10_000
    assert model.stop_training


def test_stop_training_ends_the_epoch_after_the_current_batch():
    x, y = blobs(64)
    seen = []
    model = mlp()

    def stop_after_two(batch, logs):
        seen.append(batch)
        if batch == 1:
            model.stop_training = True

    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0,
                        callbacks=[callbacks.LambdaCallback(on_train_batch_end=stop_after_two)])
    assert seen == [0, 1] and history.epoch == [0]


@pytest.mark.parametrize("kwargs, error, message", [
    ({"x": np.zeros((4, 4), np.float32), "y": np.zeros(3, np.int64)}, ValueError,
     "x has 4 samples but y has 3"),
    ({"x": DataLoader(ArrayDataset(np.zeros((4, 4), np.float32))), "y": None}, ValueError,
     "no targets"),
    ({"x": np.zeros((4, 4), np.float32), "y": np.zeros(4, np.int64),
      "validation_split": 1.5}, ValueError, "validation_split must be in"),
    ({"x": DataLoader(ArrayDataset(np.zeros((4, 4), np.float32), np.zeros(4, np.int64))),
      "validation_split": 0.5}, ValueError, "pass validation_data"),
    ({"x": np.zeros((4, 4), np.float32), "y": np.zeros(4, np.int64), "verbose": 3},
     ValueError, "verbose must be"),
    ({"x": {"a": 1}, "y": None}, TypeError, "expected a NumPy array"),
])
def test_fit_reports_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        mlp().fit(**kwargs)


def test_train_step_is_the_one_method_to_override():
    """Keras's way to customise training: fit calls train_step once per batch and logs what
    it returns; here a step that trains on twice the loss (so twice the gradient)."""
    import chainrule
    from chainrule.layers import Dense
    from chainrule.models import Input, Sequential
    from chainrule.optimizers import SGD

    class Doubled(Sequential):
        steps = 0

        def train_step(self, data):
            x, y = data
            loss = self.loss(chainrule.tensor(y), self(chainrule.tensor(x))) * 2.0
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            Doubled.steps += 1
            return {"loss": loss.item()}

    def make(cls):
        chainrule.manual_seed(0)
        net = cls([Input(shape=(3,)), Dense(2)])
        net.compile(optimizer=SGD(0.1), loss="mse")
        return net

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 3)), rng.normal(size=(32, 2))
    doubled = make(Doubled)
    history = doubled.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert Doubled.steps == 8
    plain = make(Sequential)
    plain.compile(optimizer=SGD(0.2), loss="mse")  # twice the rate = twice the gradient
    plain_history = plain.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for got, want in zip(doubled.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(history.history["loss"], 2 * np.array(
        plain_history.history["loss"]), rtol=1e-5)
    assert doubled.evaluate(x, y, verbose=0) == pytest.approx(plain.evaluate(x, y, verbose=0))
    assert doubled.predict_step(x[:2]).shape == (2, 2)
