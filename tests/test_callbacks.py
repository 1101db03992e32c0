"""Callbacks: every hook's behaviour, alone (driven by hand) and inside fit."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest

from chainrule import callbacks
from chainrule.layers import Dense
from chainrule.losses import SparseCategoricalCrossentropy
from chainrule.models import Sequential, load_model
from chainrule.optimizers import SGD


class FakeTTY(io.StringIO):
    """A terminal, as far as ProgressBar can tell."""

    def isatty(self):
        return True


def problem(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
    return x, y


def model(learning_rate=0.1):
    net = Sequential([Dense(8, activation="relu", input_shape=(4,)), Dense(3)])
    net.compile(optimizer=SGD(learning_rate=learning_rate),
                loss=SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return net


class FakeModel:
    """What the monitoring callbacks touch: weights, an optimizer, stop_training."""

    def __init__(self):
        self.stop_training = False
        self.weights = [np.zeros(2)]
        self.optimizer = SGD(learning_rate=1.0)

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [w.copy() for w in weights]


def drive(callback, values, key="val_loss", model_=None):
    """Run epochs with ``logs[key]`` taking ``values``; weights[0] holds the epoch number."""
    fake = model_ or FakeModel()
    callback.set_model(fake)
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        fake.weights = [np.full(2, float(epoch))]
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch, {key: value})
        if fake.stop_training:
            break
    callback.on_train_end()
    return fake, epoch


# -- History and the callback list ----------------------------------------------------------------


def test_history_holds_python_floats_per_epoch():
    x, y = problem()
    history = model().fit(x, y, epochs=3, batch_size=32, verbose=0, validation_split=0.25)
    assert list(history.history) == ["loss", "accuracy", "val_loss", "val_accuracy",
                                     "loss_ema", "learning_rate"]
    assert history.epoch == [0, 1, 2]
    for values in history.history.values():
        assert len(values) == 3 and all(type(v) is float for v in values)


def test_callback_list_only_runs_batch_hooks_of_callbacks_that_have_them():
    calls = []

    class EpochsOnly(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            calls.append(epoch)

    class Batches(callbacks.Callback):
        def on_batch_end(self, batch, logs=None):  # Keras's older name works too
            calls.append(("batch", batch, sorted(logs)))

    assert not callbacks.CallbackList([EpochsOnly()]).wants_batches("train")
    assert callbacks.CallbackList([Batches()]).wants_batches("train")
    x, y = problem(64)
    model().fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[EpochsOnly(), Batches()])
    assert calls == [("batch", 0, ["accuracy", "loss"]), ("batch", 1, ["accuracy", "loss"]), 0]


# -- ProgressBar ----------------------------------------------------------------------------------


def test_progress_bar_writes_one_line_per_epoch_to_a_file():
    stream = io.StringIO()
    x, y = problem()
    model().fit(x, y, epochs=3, batch_size=8, validation_split=0.25,
                callbacks=[callbacks.ProgressBar(stream=stream, interval=0)])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in stream.getvalue()
    assert lines[0].startswith("Epoch 1/3 - 9/9 - ")
    for key in ("loss: ", "accuracy: ", "val_loss: ", "val_accuracy: ", "/step"):
        assert key in lines[2]
    assert "learning_rate" not in lines[2]


def test_progress_bar_redraws_in_place_on_a_terminal():
    stream = FakeTTY()
    x, y = problem()
    model().fit(x, y, epochs=2, batch_size=8,
                callbacks=[callbacks.ProgressBar(stream=stream, interval=0)])
    text = stream.getvalue()
    assert text.startswith("Epoch 1/2\n")
    assert "ETA: " in text and "[" in text and ">" in text
    finals = [line.rsplit("\r", 1)[-1] for line in text.split("\n")]
    finals = [line for line in finals if line.startswith("12/12 [=====")]
    assert len(finals) == 2 and "/step - loss: " in finals[0]
    assert text.count("\r") >= 2 * 12  # every step was drawn (interval 0)


def test_progress_bar_is_throttled():
    stream = FakeTTY()
    x, y = problem()
    model().fit(x, y, epochs=1, batch_size=8,
                callbacks=[callbacks.ProgressBar(stream=stream, interval=3600)])
    assert stream.getvalue().count("\r") == 1  # only the end of the epoch


def test_fit_prints_per_epoch_lines_when_stdout_is_not_a_terminal(capsys):
    x, y = problem()
    model().fit(x, y, epochs=2, batch_size=32)
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" - ")[0] for line in out] == ["Epoch 1/2", "Epoch 2/2"]
    model().fit(x, y, epochs=2, batch_size=32, verbose=0)
    assert capsys.readouterr().out == ""


def test_evaluate_progress_on_a_terminal():
    stream = FakeTTY()
    x, y = problem()
    net = model()
    net.evaluate(x, y, batch_size=32, callbacks=[callbacks.ProgressBar(stream=stream)])
    assert stream.getvalue().startswith("\r3/3 [==============================] - ")
    assert stream.getvalue().endswith("\n") and "accuracy: " in stream.getvalue()


# -- EarlyStopping --------------------------------------------------------------------------------


def test_early_stopping_stops_after_patience_and_restores_the_best():
    stop = callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    fake, last_epoch = drive(stop, [1.0, 0.5, 0.6, 0.7, 0.1])
    assert last_epoch == 3 and stop.stopped_epoch == 3 and stop.best_epoch == 1
    np.testing.assert_array_equal(fake.weights[0], [1.0, 1.0])


def test_early_stopping_restores_even_when_training_runs_to_the_end():
    stop = callbacks.EarlyStopping(patience=10, restore_best_weights=True)
    fake, last_epoch = drive(stop, [1.0, 0.2, 0.6, 0.7])
    assert last_epoch == 3 and stop.stopped_epoch == 0
    np.testing.assert_array_equal(fake.weights[0], [1.0, 1.0])


@pytest.mark.parametrize("monitor, values, kwargs, stops_at", [
    ("val_accuracy", [0.5, 0.6, 0.55, 0.58], {"patience": 1}, 2),  # "auto" means max
    ("val_loss", [1.0, 0.94, 0.93, 0.92], {"min_delta": 0.05, "patience": 1}, 2),
    ("val_loss", [1.0, 0.9, 0.9, 0.8, 0.8], {"baseline": 0.5, "patience": 3}, 2),
    ("val_loss", [1.0, 0.9, 0.9, 0.8, 0.8], {"patience": 3}, 4),
    ("loss", [3.0, 2.0, 1.0, 2.0, 3.0], {"start_from_epoch": 3}, 4),
])
def test_early_stopping_rules(monitor, values, kwargs, stops_at):
    stop = callbacks.EarlyStopping(monitor=monitor, **kwargs)
    _, last_epoch = drive(stop, values, key=monitor)
    assert last_epoch == stops_at


def test_early_stopping_warns_when_the_value_is_missing():
    with pytest.warns(UserWarning, match="'val_loss', which is not in the logs"):
        drive(callbacks.EarlyStopping(), [1.0], key="loss")


def test_early_stopping_in_fit_restores_the_best_epochs_weights():
    x, y = problem()
    net = model()
    scores = [0.3, 0.9, 0.5, 0.4, 0.2]
    snapshots = []

    def inject(epoch, logs):
        logs["score"] = scores[epoch]
        snapshots.append(net.get_weights())

    history = net.fit(x, y, epochs=5, batch_size=32, verbose=0, callbacks=[
        callbacks.LambdaCallback(on_epoch_end=inject, logs_added=("score",)),
        callbacks.EarlyStopping(monitor="score", mode="max", patience=2,
                                restore_best_weights=True)])
    assert history.epoch == [0, 1, 2, 3]
    for restored, best in zip(net.get_weights(), snapshots[1]):
        np.testing.assert_array_equal(restored, best)


# -- ModelCheckpoint ------------------------------------------------------------------------------


def test_checkpoint_every_epoch_with_a_template(tmp_path):
    x, y = problem()
    net = model()
    template = str(tmp_path / "ckpt" / "model-{epoch:02d}-{loss:.2f}.npz")
    net.fit(x, y, epochs=3, batch_size=32, verbose=0,
            callbacks=[callbacks.ModelCheckpoint(template, monitor="loss")])
    names = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert [n[:8] for n in names] == ["model-01", "model-02", "model-03"]
    last = load_model(tmp_path / "ckpt" / names[-1])
    np.testing.assert_array_equal(last.predict(x), net.predict(x))


def test_checkpoint_best_only_and_weights_only(tmp_path):
    check = callbacks.ModelCheckpoint(str(tmp_path / "w-{epoch}.npz"), save_best_only=True,
                                      save_weights_only=True)
    saved = []

    class Recorder(FakeModel):
        def save_weights(self, path):
            saved.append(path)

    drive(check, [1.0, 0.5, 0.7, 0.4], model_=Recorder())
    assert [p.rsplit("-", 1)[1] for p in saved] == ["1.npz", "2.npz", "4.npz"]


def test_checkpoint_saves_every_n_batches(tmp_path):
    x, y = problem(64)
    net = model()
    net.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[callbacks.ModelCheckpoint(
        str(tmp_path / "b{epoch}-{loss:.3f}.npz"), save_weights_only=True, save_freq=3)])
    assert len(list(tmp_path.iterdir())) == 2  # after batches 3 and 6 of 8
    fresh = Sequential([Dense(8, activation="relu", input_shape=(4,)), Dense(3)])
    fresh.load_weights(next(tmp_path.iterdir()))


def test_checkpoint_names_the_formats_it_writes():
    with pytest.raises(ValueError, match=r"\.npz or \.safetensors"):
        callbacks.ModelCheckpoint("model.txt")
    callbacks.ModelCheckpoint("model.h5")  # Keras's name: chainrule's npz, with a warning


# -- learning rate --------------------------------------------------------------------------------


def test_learning_rate_scheduler_sets_the_rate_each_epoch():
    x, y = problem()
    net = model(learning_rate=0.1)
    history = net.fit(x, y, epochs=4, batch_size=32, verbose=0, callbacks=[
        callbacks.LearningRateScheduler(lambda epoch, lr: lr / 2 if epoch else lr)])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025, 0.0125])
    history = net.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[
        callbacks.LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1))])
    assert history.history["learning_rate"] == pytest.approx([0.01, 0.02])


def test_learning_rate_scheduler_rejects_non_numbers():
    with pytest.raises(ValueError, match="returned None"):
        drive(callbacks.LearningRateScheduler(lambda epoch: None), [1.0])


def test_reduce_lr_on_plateau():
    reduce = callbacks.ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_lr=0.2)
    fake, _ = drive(reduce, [1.0] * 6)
    # reductions after epochs 2 and 4 (the cooldown epoch counts towards patience, as in Keras)
    assert fake.optimizer.learning_rate == pytest.approx(0.25)
    fake, _ = drive(reduce, [1.0] * 8)
    assert fake.optimizer.learning_rate == pytest.approx(0.2)  # 0.125 is below min_lr
    fake, _ = drive(callbacks.ReduceLROnPlateau(factor=0.5, patience=1, min_lr=0.3),
                    [1.0] * 6)
    assert fake.optimizer.learning_rate == pytest.approx(0.3)
    fake, _ = drive(callbacks.ReduceLROnPlateau(patience=1), [1.0, 0.5, 0.2, 0.1])
    assert fake.optimizer.learning_rate == 1.0  # always improving
    with pytest.raises(ValueError, match="factor must be < 1"):
        callbacks.ReduceLROnPlateau(factor=1.5)


# -- CSVLogger, TerminateOnNaN ------------------------------------------------------------------


def test_csv_logger_writes_a_row_per_epoch_and_appends(tmp_path):
    path = tmp_path / "history.csv"
    x, y = problem()
    net = model()
    net.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[callbacks.CSVLogger(path)])
    net.fit(x, y, epochs=1, batch_size=32, verbose=0,
            callbacks=[callbacks.CSVLogger(path, append=True)])
    with open(path) as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["epoch", "accuracy", "learning_rate", "loss", "loss_ema"]
    assert [row["epoch"] for row in rows] == ["0", "1", "0"]
    assert float(rows[1]["loss"]) < float(rows[0]["loss"])


def test_terminate_on_nan_stops_at_once(capsys):
    x, y = problem(64)
    x[40] = np.nan  # the third batch of 16 has a NaN input (fit would refuse it: checks off)
    history = model().fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0,
                          callbacks=[callbacks.TerminateOnNaN()], check_finite=False)
    assert history.epoch == [0] and math.isnan(history.history["loss"][0])
    assert "Batch 2: Invalid loss, terminating training" in capsys.readouterr().out


def test_lambda_callback_rejects_unknown_hooks():
    with pytest.raises(TypeError, match="on_epoch_ends"):
        callbacks.LambdaCallback(on_epoch_ends=print)
