"""Resuming fit: BackupAndRestore gives the weights of an uninterrupted run, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule import callbacks, losses
from chainrule.data import ArrayDataset, DataLoader
from chainrule.data.transforms import RandomFlip
from chainrule.layers import BatchNormalization, Dense, Dropout
from chainrule.models import Input, Sequential
from chainrule.optimizers import Adam
from tests.models.helpers import KillAt, Killed


def data(n=72, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] > 0).astype(np.int64)
    return x, y


def model(seed: int):
    chainrule.manual_seed(seed)
    net = Sequential([Input(shape=(6,)), Dense(16, activation="relu"), BatchNormalization(),
                      Dropout(0.3), Dense(2)])
    net.compile(optimizer=Adam(learning_rate=0.01),
                loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
    return net


def train(net, extra=(), epochs=4, **options):
    x, y = data()
    return net.fit(x, y, epochs=epochs, batch_size=16, verbose=0, callbacks=list(extra),
                   validation_data=data(24, seed=1), **options)


def weights(net) -> list:
    return [w.copy() for w in net.get_weights()]


def uninterrupted(**options):
    net = model(0)
    history = train(net, **options)
    return weights(net), history.history


@pytest.mark.parametrize("save_freq, kill_at", [
    (1, 7), (1, 5), (3, 11), ("epoch", 9), ("epoch", 15), (2, 20),
])
def test_a_killed_fit_run_again_ends_with_the_uninterrupted_weights(tmp_path, save_freq,
                                                                   kill_at):
    expected, expected_history = uninterrupted()
    backup = callbacks.BackupAndRestore(tmp_path, save_freq=save_freq)
    with pytest.raises(Killed):
        train(model(0), [backup, KillAt(kill_at)])
    assert (tmp_path / "fit-state.npz").exists()
    resumed = model(123)  # another process: other initial weights, another generator state
    restore = callbacks.BackupAndRestore(tmp_path, save_freq=save_freq)
    history = train(resumed, [restore])
    assert restore.restored_from is not None
    for got, want in zip(weights(resumed), expected):
        np.testing.assert_array_equal(got, want)
    assert history.epoch == [0, 1, 2, 3]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "loss_ema"):
        np.testing.assert_array_equal(history.history[key], expected_history[key], err_msg=key)
    assert not (tmp_path / "fit-state.npz").exists()  # deleted when fit ends normally


def test_augmentation_and_a_seeded_loader_resume_too(tmp_path):
    x, y = data()
    images = x.reshape(-1, 1, 2, 3)

    def run(extra, seed):
        net = model(seed)
        loader = DataLoader(ArrayDataset(images, y), batch_size=16, shuffle=True, seed=5,
                            transform=lambda xb, yb: (RandomFlip(seed=None)(xb).reshape(-1, 6),
                                                      yb))
        net.fit(loader, epochs=3, verbose=0, callbacks=list(extra))
        return weights(net)

    expected = run([], 0)
    with pytest.raises(Killed):
        run([callbacks.BackupAndRestore(tmp_path, save_freq=1), KillAt(8)], 0)
    for got, want in zip(run([callbacks.BackupAndRestore(tmp_path, save_freq=1)], 9), expected):
        np.testing.assert_array_equal(got, want)


def test_initial_epoch_continues_the_data_order():
    x, y = data()

    def plain_model():
        chainrule.manual_seed(0)
        net = Sequential([Input(shape=(6,)), Dense(8, activation="relu"), Dense(2)])
        net.compile(optimizer=Adam(0.01), loss=losses.SparseCategoricalCrossentropy(True))
        return net

    whole = plain_model()
    whole.fit(x, y, epochs=4, batch_size=16, seed=3, verbose=0)
    halves = plain_model()
    halves.fit(x, y, epochs=2, batch_size=16, seed=3, verbose=0)
    halves.fit(x, y, epochs=4, initial_epoch=2, batch_size=16, seed=3, verbose=0)
    for got, want in zip(halves.get_weights(), whole.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_a_backup_of_another_kind_is_refused(tmp_path):
    chainrule.io.save_tree(tmp_path / "fit-state.npz", {"weights": {}})
    with pytest.raises(ValueError, match="not a state captured by FitState.capture"):
        train(model(0), [callbacks.BackupAndRestore(tmp_path)])


@pytest.mark.parametrize("bad, match", [
    ({"save_freq": 0}, "save_freq must be 'epoch', a positive int or False"),
    ({"save_freq": "batch"}, "save_freq"),
    ({"backup_dir": 3}, "backup_dir must be a folder name"),
])
def test_bad_backup_arguments(tmp_path, bad, match):
    arguments = {"backup_dir": tmp_path, **bad}
    with pytest.raises((TypeError, ValueError), match=match):
        callbacks.BackupAndRestore(**arguments)
