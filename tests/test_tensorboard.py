"""TensorBoard callback: the event files it writes, read back record by record."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from chainrule.callbacks import Callback
from chainrule.layers import Dense
from chainrule.losses import SparseCategoricalCrossentropy
from chainrule.models import Sequential
from chainrule.optimizers import SGD
from chainrule.tensorboard import TensorBoard

tensorboardX = pytest.importorskip("tensorboardX")
from tensorboardX.proto.event_pb2 import Event  # noqa: E402


def read_events(folder) -> list:
    """Every Event of the event files directly in ``folder``, parsed from the TFRecord framing:
    8-byte little-endian length, 4-byte length CRC, the data, 4-byte data CRC."""
    events = []
    for path in sorted(Path(folder).glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            start = offset + 12
            event = Event()
            event.ParseFromString(data[start:start + length])
            events.append(event)
            offset = start + length + 4
        assert offset == len(data), f"{path}: truncated record"
    return events


def scalars(folder) -> dict:
    """``{tag: {step: value}}`` of the scalar summaries in ``folder``."""
    found: dict = {}
    for event in read_events(folder):
        for value in event.summary.value:
            if value.HasField("simple_value"):
                found.setdefault(value.tag, {})[event.step] = value.simple_value
    return found


def histograms(folder) -> dict:
    """``{tag: {step: HistogramProto}}`` of the histogram summaries in ``folder``."""
    found: dict = {}
    for event in read_events(folder):
        for value in event.summary.value:
            if value.HasField("histo"):
                found.setdefault(value.tag, {})[event.step] = value.histo
    return found


def problem(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return x, y


def model():
    net = Sequential([Dense(8, activation="relu", input_shape=(4,)), Dense(2)])
    net.compile(optimizer=SGD(learning_rate=0.1),
                loss=SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return net


def fit(board, epochs=3):
    x, y = problem()
    xv, yv = problem(32, seed=1)
    return model().fit(x, y, epochs=epochs, batch_size=16, validation_data=(xv, yv),
                       callbacks=[board], verbose=0)


def test_scalars_match_history(tmp_path):
    history = fit(TensorBoard(log_dir=tmp_path))
    train, validation = scalars(tmp_path / "train"), scalars(tmp_path / "validation")
    for name in ("loss", "accuracy"):
        assert sorted(train[f"epoch_{name}"]) == [0, 1, 2]
        np.testing.assert_allclose([train[f"epoch_{name}"][s] for s in range(3)],
                                   history.history[name], rtol=1e-6)
        np.testing.assert_allclose([validation[f"epoch_{name}"][s] for s in range(3)],
                                   history.history[f"val_{name}"], rtol=1e-6)
    np.testing.assert_allclose([train["epoch_learning_rate"][s] for s in range(3)], [0.1] * 3,
                               rtol=1e-6)
    assert not any(tag.startswith("epoch_val_") for tag in train | validation)
    assert "epoch_learning_rate" not in validation
    assert histograms(tmp_path / "train") == {}  # histogram_freq=0
    assert not (tmp_path / "train" / "hparams").exists()


def test_histograms_of_every_weight(tmp_path):
    net = model()
    x, y = problem()
    net.fit(x, y, epochs=3, batch_size=16, verbose=0,
            callbacks=[TensorBoard(log_dir=str(tmp_path), histogram_freq=2)])
    found = histograms(tmp_path / "train")
    names = [name.replace(".", "/") for name, _ in net.named_parameters()]
    assert sorted(found) == sorted(names) and "layers/0/kernel" in found
    for name, weight in net.named_parameters():
        steps = found[name.replace(".", "/")]
        assert sorted(steps) == [0, 2]  # epochs 0, k, 2k, ... of 3
        assert steps[2].num == weight.numpy().size
    # the last histogram is of the final weights
    kernel = net.named_parameters()[0][1].numpy()
    last = found["layers/0/kernel"][2]
    np.testing.assert_allclose([last.min, last.max], [kernel.min(), kernel.max()], rtol=1e-6)


def test_hparams_written(tmp_path):
    history = fit(TensorBoard(log_dir=tmp_path, hparams={"units": 8, "lr": 0.1,
                                                         "act": "relu", "bn": False}))
    events = [e for path in sorted(tmp_path.rglob("events.out.tfevents.*"))
              for e in read_events(path.parent)]
    plugins = {v.metadata.plugin_data.plugin_name for e in events for v in e.summary.value}
    assert "hparams" in plugins
    session = scalars(tmp_path / "train" / "hparams")
    assert session["hparam/val_loss"][0] == pytest.approx(history.history["val_loss"][-1],
                                                         rel=1e-6)
    experiment = [v for e in read_events(tmp_path / "train" / "hparams") for v in e.summary.value
                  if v.tag == "_hparams_/experiment"]
    assert experiment
    content = experiment[0].metadata.plugin_data.content
    for name in ("units", "lr", "act", "bn", "hparam/loss"):
        assert name.encode() in content


def test_missing_tensorboardx_names_the_extra(tmp_path, monkeypatch):
    board = TensorBoard(log_dir=tmp_path)  # constructing needs no tensorboardX
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r"chainrule\[track\]"):
        fit(board, epochs=1)


def test_close_is_safe_after_a_failed_fit(tmp_path):
    board = TensorBoard(log_dir=tmp_path)

    class Boom(Exception):
        pass

    class Fail(Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise Boom

    x, y = problem()
    with pytest.raises(Boom):
        model().fit(x, y, epochs=2, verbose=0, callbacks=[board, Fail()])
    assert board._writers  # left open by the failed fit
    board.close()
    board.close()
    assert scalars(tmp_path / "train")["epoch_loss"].keys() == {0}
    fit(board, epochs=1)  # a new fit with the same callback works
    assert board._writers == {}


@pytest.mark.parametrize("kwargs, name", [
    ({"histogram_freq": -1}, "histogram_freq"),
    ({"histogram_freq": 1.5}, "histogram_freq"),
    ({"histogram_freq": True}, "histogram_freq"),
    ({"log_dir": 3}, "log_dir"),
    ({"log_dir": None}, "log_dir"),
    ({"hparams": [("a", 1)]}, "hparams"),
    ({"hparams": {1: 2}}, "hparams"),
    ({"hparams": {"a": [1, 2]}}, r"hparams\['a'\]"),
    ({"hparams": {"a": None}}, r"hparams\['a'\]"),
    ({"write_graph": "yes"}, "write_graph"),
])
def test_bad_arguments_are_named(kwargs, name):
    with pytest.raises((TypeError, ValueError), match=name):
        TensorBoard(**kwargs)


def test_write_graph_warns_and_arguments_are_kept(tmp_path):
    with pytest.warns(UserWarning, match="write_graph"):
        board = TensorBoard(log_dir=tmp_path, write_graph=True, hparams={"n": np.int64(3)})
    assert board.log_dir == str(tmp_path) and board.hparams == {"n": 3}
    assert type(board.hparams["n"]) is int
    assert "TensorBoard(log_dir=" in repr(board)


def test_it_is_keras_s_callbacks_tensorboard():
    from chainrule import callbacks
    from chainrule.tensorboard import TensorBoard

    assert callbacks.TensorBoard is TensorBoard
    with pytest.raises(AttributeError, match="no attribute 'Tensorboard'"):
        callbacks.Tensorboard  # noqa: B018
