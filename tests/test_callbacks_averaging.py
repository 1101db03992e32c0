"""The SWA and SnapshotEnsemble callbacks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chainrule.callbacks import SWA, LambdaCallback, SnapshotEnsemble
from chainrule.layers import Dense
from chainrule.losses import SparseCategoricalCrossentropy
from chainrule.models import AveragedModel, Ensemble, Sequential
from chainrule.models.ensemble import softmax
from chainrule.optimizers import SGD


def problem(n=48, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(size=(3, 4))[y] * 2 + rng.normal(size=(n, 4))
    return x.astype(np.float32), y.astype(np.int64)


def small_model(lr=0.1):
    model = Sequential([Dense(8, activation="relu", input_shape=(4,)), Dense(3)])
    model.compile(optimizer=SGD(learning_rate=lr),
                  loss=SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_swa_averages_the_epoch_weights_at_swa_lr():
    x, y = problem()
    model = small_model()
    averaged = AveragedModel(model)
    recorded = []
    record = LambdaCallback(on_epoch_end=lambda epoch, logs: recorded.append(model.get_weights()))
    history = model.fit(x, y, epochs=5, batch_size=16, verbose=0, shuffle=False,
                        callbacks=[SWA(averaged, start_epoch=2, swa_lr=0.01), record])
    assert averaged.n_averaged == 3
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.01])
    for i, value in enumerate(averaged.get_weights()):
        np.testing.assert_allclose(value, np.mean([w[i] for w in recorded[2:]], axis=0),
                                   rtol=1e-5, atol=1e-6)


def test_swa_checks_its_arguments():
    averaged = AveragedModel(small_model())
    with pytest.raises(ValueError, match="start_epoch"):
        SWA(averaged, start_epoch=-1)
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="swa_lr"):
            SWA(averaged, swa_lr=bad)


def test_snapshot_ensemble_schedule_snapshots_and_ensemble():
    x, y = problem()
    model = small_model(lr=0.2)
    snapshots = SnapshotEnsemble(cycles=3)
    with pytest.raises(RuntimeError, match="fit"):
        snapshots.ensemble()
    rates = []
    record = LambdaCallback(
        on_train_batch_begin=lambda batch, logs: rates.append(model.optimizer.learning_rate))
    model.fit(x, y, epochs=6, batch_size=16, verbose=0, callbacks=[snapshots, record])
    total, length = 6 * 3, 6
    expected = [0.2 / 2 * (math.cos(math.pi * (t % length) / length) + 1) for t in range(total)]
    assert rates == pytest.approx(expected)
    assert snapshots.learning_rates == pytest.approx(expected)
    assert [rates[t] for t in (0, 6, 12)] == pytest.approx([0.2] * 3)
    assert len(snapshots.snapshots) == 3
    first = snapshots.snapshots[0].get_weights()
    assert not all(np.array_equal(a, b) for a, b in zip(first,
                                                         snapshots.snapshots[1].get_weights()))
    for a, b in zip(snapshots.snapshots[-1].get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    ensemble = snapshots.ensemble()
    assert isinstance(ensemble, Ensemble)
    expected_p = np.mean([softmax(m.predict(x).astype(np.float64))
                          for m in snapshots.snapshots], axis=0)
    np.testing.assert_allclose(ensemble.predict(x), expected_p, rtol=1e-6, atol=1e-7)


def test_snapshot_ensemble_checks_cycles():
    for bad in (0, -2, 1.5):
        with pytest.raises(ValueError, match="cycles"):
            SnapshotEnsemble(cycles=bad)
    with pytest.raises(ValueError, match="max_lr"):
        SnapshotEnsemble(cycles=2, max_lr=0.0)
    x, y = problem(n=16)
    with pytest.raises(ValueError, match="cycles=5"):
        small_model().fit(x, y, epochs=2, batch_size=8, verbose=0,
                          callbacks=[SnapshotEnsemble(cycles=5)])
