"""fit's guards: non-finite data and losses, bad counts, checkpoint templates, Ctrl-C."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

import chainrule
from chainrule import callbacks, losses
from chainrule.layers import Dense
from chainrule.models import Input, Sequential, load_model
from chainrule.models.fit_state import DivergenceWarning
from chainrule.optimizers import SGD

# the diverging runs overflow on purpose
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                                        "ignore:invalid value encountered:RuntimeWarning")


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    return x, y


def model(lr=0.1):
    chainrule.manual_seed(0)
    net = Sequential([Input(shape=(5,)), Dense(8, activation="relu"), Dense(2)])
    net.compile(optimizer=SGD(learning_rate=lr, momentum=0.9),
                loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
    return net


def all_finite(net) -> bool:
    return all(np.isfinite(w).all() for w in net.get_weights())


class SetRate(callbacks.Callback):
    """From epoch ``at`` on, the learning rate is ``rate`` (a diverging one)."""

    def __init__(self, at, rate):
        super().__init__()
        self.at, self.rate = at, rate
        self.weights_at_epoch_begin = {}

    def on_epoch_begin(self, epoch, logs=None):
        self.weights_at_epoch_begin[epoch] = self.model.get_weights()
        if epoch >= self.at:
            self.model.optimizer.learning_rate = self.rate


def test_a_diverging_fit_stops_with_finite_weights_and_says_where():
    net = model()
    x, y = data()
    with pytest.warns(DivergenceWarning, match=r"the loss became \w+ at epoch 2, step \d+ of 4"):
        history = net.fit(x, y, epochs=4, batch_size=16, verbose=0,
                          callbacks=[SetRate(1, 1e30)])
    assert all_finite(net)
    assert history.diverged["epoch"] == 1 and not np.isfinite(history.diverged["loss"])
    assert history.epoch == [0, 1]  # the epoch it diverged in ends, and so does training


class Overflow(callbacks.Callback):
    """After global step ``at``, a weight is infinite (as if an update had overflowed while
    the loss was still finite); records the weights at the start of every epoch."""

    def __init__(self, at):
        super().__init__()
        self.at, self.seen, self.weights_at_epoch_begin = at, 0, {}

    def on_epoch_begin(self, epoch, logs=None):
        self.weights_at_epoch_begin[epoch] = self.model.get_weights()

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.at:
            self.model.layers[0].kernel.data[0, 0] = np.inf


def test_weights_that_overflowed_before_the_loss_did_are_put_back():
    net = model()
    x, y = data()
    overflow = Overflow(6)  # epoch 2, step 2: the loss of step 3 is not finite
    with pytest.warns(DivergenceWarning, match="epoch 2, step 3 of 4.*start of epoch 2 were "
                                               "put back"):
        net.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[overflow])
    for got, want in zip(net.get_weights(), overflow.weights_at_epoch_begin[1]):
        np.testing.assert_array_equal(got, want)
    assert all(np.isfinite(v).all() for entries in net.optimizer.state.values()
               for v in entries.values() if hasattr(v, "dtype"))


def test_checkpoints_are_never_written_with_non_finite_weights(tmp_path):
    path = tmp_path / "model.npz"
    net = model()
    x, y = data()
    with pytest.warns(DivergenceWarning, match="not saved, weight"):
        net.fit(x, y, epochs=3, batch_size=16, verbose=0, check_finite=False,
                callbacks=[SetRate(1, 1e38), callbacks.ModelCheckpoint(str(path))])
    assert not all_finite(net)
    assert all_finite(load_model(str(path)))  # epoch 1's file is kept


@pytest.mark.parametrize("where, match", [
    ("x", r"fit: x holds 2 NaN or infinite value\(s\), the first nan at index \(3, 1\)"),
    ("y", r"fit: y holds 1 NaN"),
    ("val", r"fit: validation_data: x holds"),
])
def test_non_finite_data_is_refused_before_training(where, match):
    net = model()
    x, y = data()
    y = y.astype(np.float32)[:, None] if where == "y" else y
    xv, yv = data(16, seed=1)
    if where == "x":
        x[3, 1] = x[9, 0] = np.nan
    elif where == "y":
        y[5] = np.inf
        net.compile(optimizer="sgd", loss="mse")
    else:
        xv[0, 0] = np.inf
    before = net.get_weights()
    with pytest.raises(ValueError, match=match):
        net.fit(x, y, validation_data=(xv, yv), verbose=0)
    for got, want in zip(net.get_weights(), before):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("options, match", [
    ({"validation_freq": 0}, "validation_freq must be an integer >= 1, got 0"),
    ({"epochs": -1}, "epochs must be an integer >= 0"),
    ({"epochs": 2.5}, "epochs must be an integer"),
    ({"initial_epoch": True}, "initial_epoch must be an integer"),
])
def test_bad_counts_are_refused_at_once(options, match):
    with pytest.raises(ValueError, match=match):
        model().fit(*data(), verbose=0, **options)


def test_empty_data_is_refused():
    x, y = data()
    with pytest.raises(ValueError, match="the data holds no samples"):
        model().fit(x[:0], y[:0], verbose=0)


@pytest.mark.parametrize("template, match", [
    ("m-{val_loss:.2f}.npz", r"uses \['val_loss'\], which this fit will not log"),
    ("m-{epoch}-{acc}.npz", r"uses \['acc'\]"),
])
def test_checkpoint_names_are_checked_before_the_first_epoch(tmp_path, template, match):
    calls = []
    with pytest.raises(ValueError, match=match):
        model().fit(*data(), verbose=0, callbacks=[
            callbacks.ModelCheckpoint(str(tmp_path / template)),
            callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: calls.append(b))])
    assert calls == []


def test_save_best_only_needs_what_it_monitors(tmp_path):
    checkpoint = callbacks.ModelCheckpoint(str(tmp_path / "best.npz"), save_best_only=True)
    with pytest.raises(ValueError, match="monitors 'val_loss', which this fit will not log"):
        model().fit(*data(), verbose=0, callbacks=[checkpoint])
    model().fit(*data(), verbose=0, callbacks=[checkpoint], validation_data=data(16, 1))
    assert (tmp_path / "best.npz").exists()


class CtrlC(callbacks.Callback):
    """Press Ctrl-C (SIGINT to this process) at the end of global step ``at``."""

    def __init__(self, at):
        super().__init__()
        self.at, self.seen = at, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.at:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_finishes_the_step_backs_up_and_says_where(tmp_path):
    x, y = data()
    whole = model()
    whole.fit(x, y, epochs=3, batch_size=16, verbose=0)
    net = model()
    backup = callbacks.BackupAndRestore(tmp_path, save_freq=False)
    with pytest.raises(KeyboardInterrupt, match="after epoch 2, step 2 of 4"):
        net.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[backup, CtrlC(6)])
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    assert net.optimizer.iterations == 6  # the step in progress was completed, not torn
    resumed = model(lr=0.1)
    resumed.fit(x, y, epochs=3, batch_size=16, verbose=0,
                callbacks=[callbacks.BackupAndRestore(tmp_path, save_freq=False)])
    for got, want in zip(resumed.get_weights(), whole.get_weights()):
        np.testing.assert_array_equal(got, want)


class AddsScore(callbacks.Callback):
    """A callback of the user's that adds a value to the epoch logs, and says so."""

    logs_added = ("score",)

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = 1.0 - logs["loss"]


def test_log_keys_that_a_callback_declares_may_be_used(tmp_path):
    model().fit(*data(), verbose=0, callbacks=[
        AddsScore(), callbacks.ModelCheckpoint(str(tmp_path / "m-{score:.3f}.npz"))])
    assert len(list(tmp_path.glob("m-*.npz"))) == 1


@pytest.mark.filterwarnings("ignore:EarlyStopping is conditioned on")  # Keras's, each epoch
def test_early_stopping_on_an_unlogged_value_warns_at_the_start():
    with pytest.warns(UserWarning, match="EarlyStopping monitors 'val_loss', which this fit "
                                         "will not log"):
        model().fit(*data(), verbose=0, epochs=1, callbacks=[callbacks.EarlyStopping()])
