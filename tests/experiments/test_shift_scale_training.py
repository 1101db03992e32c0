"""One run of the shift/scale study: the per-step curve, the files and the metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest

import chainrule
from chainrule.experiments.shift_scale import training
from chainrule.layers import Dense
from chainrule.models import Input, Sequential
from chainrule.optimizers import SGD


def _synthetic_split(n_train=192, n_val=64, features=784, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(10, features)).astype(np.float32)

    def draw(n):
        y = rng.integers(0, 10, n)
        x = np.clip(0.5 + 0.2 * centres[y] + 0.3 * rng.normal(size=(n, features)), 0, 1)
        return x.astype(np.float32).reshape(n, 1, 28, 28), y.astype(np.int64)

    return draw(n_train), draw(n_val)


@pytest.fixture
def synthetic(monkeypatch):
    split = _synthetic_split()
    monkeypatch.setattr(training, "load_split", lambda dataset, val_size, limit: split)
    return split


def _spec(**changes):
    spec = {"variant": "shift-layer+scale-layer", "arch": "mlp", "dropout": False, "lr": 0.02,
            "seed": 0, "epochs": 2, "batch_size": 32, "dataset": "fashion-mnist",
            "arch_options": {"hidden": (16,)}}
    return {**spec, **changes}


def test_step_curve_is_the_ema_of_each_batch_error_in_fit():
    """With a learning rate of 0 the weights stay put, so each batch's error can be computed
    from predictions; the curve must be their bias-corrected EMA, step by step."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(70, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = Sequential([Input(shape=(5,)), Dense(2)])
    model.compile(optimizer=SGD(learning_rate=0.0),
                  loss=chainrule.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    wrong = model.predict(x).argmax(axis=1) != y
    curve = training.StepCurve(coefficient=0.9)
    model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0, callbacks=[curve])
    batches = [wrong[0:32].mean(), wrong[32:64].mean(), wrong[64:70].mean()] * 2
    expected, average = [], 0.0
    for step, error in enumerate(batches, start=1):
        average = 0.9 * average + 0.1 * error
        expected.append(average / (1 - 0.9 ** step))
    assert curve.kept["step"] == list(range(1, 7))
    assert curve.kept["train_error_ema"] == pytest.approx(expected, abs=1e-12)
    assert curve.ema == pytest.approx(expected[-1])


def test_step_curve_reads_batch_errors_from_the_accuracy_totals():
    """Batch k's error is 1 − (correct_k / size_k), from the metric's running totals."""
    curve = training.StepCurve(coefficient=0.5)

    class Metric:
        name = "accuracy"
        total = 0.0
        count = 0.0

    class Model:
        compiled_metrics = [Metric()]

    curve.model = Model()
    curve.on_epoch_begin(0)
    batches = [(32, 16, 0.8), (32, 24, 0.6), (6, 6, 0.1)]  # size, correct, batch loss
    loss_sum = 0.0
    for step, (size, correct, loss) in enumerate(batches):
        Metric.total += correct
        Metric.count += size
        loss_sum += loss * size
        curve.on_train_batch_end(step, {"loss": loss_sum / Metric.count})
    errors = [0.5, 0.25, 0.0]
    ema = 0.0
    for error in errors:
        ema = 0.5 * ema + 0.5 * error
    assert curve.ema == pytest.approx(ema / (1 - 0.5 ** 3))
    assert curve.kept["train_loss"] == pytest.approx([0.8, 0.6, 0.1])


def test_run_writes_its_files_and_returns_the_metrics(synthetic, tmp_path):
    metrics = training.run(_spec(), tmp_path)
    curves = np.load(tmp_path / "curves.npz", allow_pickle=False)
    assert list(curves["epoch"]) == [1, 2]
    assert int(curves["steps_per_epoch"]) == 6  # 192 / 32
    assert list(curves["step"]) == list(range(1, 13))
    assert metrics["final_val_error"] == pytest.approx(curves["val_error"][-1])
    assert metrics["best_val_error"] == pytest.approx(curves["val_error"].min())
    assert metrics["best_epoch"] == int(np.argmin(curves["val_error"])) + 1
    assert metrics["final_train_error_ema"] == pytest.approx(curves["train_error_ema"][-1])
    assert metrics["diverged"] is False and metrics["epochs_run"] == 2
    learned = json.loads((tmp_path / "learned.json").read_text())
    assert [(d["position"], d["kind"], d["mode"]) for d in learned] == [
        (0, "shift", "layer"), (0, "scale", "layer"), (1, "shift", "layer"),
        (1, "scale", "layer")]
    assert all(len(d["values"]) == 1 for d in learned)
    arrays = np.load(tmp_path / "learned.npz", allow_pickle=False)
    assert sorted(arrays.files) == sorted(d["layer"] for d in learned)
    assert chainrule.models.load_model(str(tmp_path / "model.npz")) is not None
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))


def test_runs_are_seeded(synthetic, tmp_path):
    first = training.run(_spec(dropout=True), tmp_path / "a")
    again = training.run(_spec(dropout=True), tmp_path / "b")
    other = training.run(_spec(dropout=True, seed=1), tmp_path / "c")
    same = ("final_val_error", "final_train_error_ema", "final_train_loss")
    assert [first[k] for k in same] == [again[k] for k in same]
    assert first["final_train_loss"] != other["final_train_loss"]


def test_variants_of_a_seed_see_the_same_data_order(synthetic, tmp_path, monkeypatch):
    """fit is given the seed itself, so every variant shuffles the data the same way."""
    seen = []
    original = chainrule.models.Model.fit

    def recording_fit(self, *args, **kwargs):
        seen.append(kwargs["seed"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(chainrule.models.Model, "fit", recording_fit)
    for variant in ("none", "batchnorm", "scale-element"):
        training.run(_spec(variant=variant, seed=4, epochs=1), tmp_path / variant)
    assert seen == [4, 4, 4]


def test_epochs_to_target_and_a_never_reached_target(synthetic, tmp_path):
    reached = training.run(_spec(target_error=1.0), tmp_path / "a")
    never = training.run(_spec(target_error=0.0), tmp_path / "b")
    assert reached["epochs_to_target"] == 1 and reached["target_error"] == 1.0
    assert never["epochs_to_target"] is None


def test_learned_values_of_an_element_layer_are_summarised(synthetic, tmp_path, monkeypatch):
    monkeypatch.setattr(training, "MAX_VALUES_LISTED", 100)
    training.run(_spec(variant="shift-element", epochs=1), tmp_path)
    learned = json.loads((tmp_path / "learned.json").read_text())
    first = learned[0]
    assert first["size"] == 784 and "values" not in first  # too many to list
    assert first["min"] <= first["mean"] <= first["max"]
    assert learned[1]["size"] == 16 and len(learned[1]["values"]) == 16


def test_the_mlp_gets_flat_inputs_and_the_allconv_images():
    x = np.zeros((3, 1, 28, 28), np.float32)
    assert training.model_inputs(x, "mlp").shape == (3, 784)
    assert training.model_inputs(x, "allconv").shape == (3, 1, 28, 28)


def _write_cifar10(folder, images_per_batch=40):
    """CIFAR-10's six pickled batches (random pixels and labels) in its folder layout."""
    import pickle

    from chainrule.datasets import cifar10

    rng = np.random.default_rng(0)
    target = folder / "cifar10" / cifar10.FORMAT.folder
    target.mkdir(parents=True)
    for name in cifar10.FORMAT.train_files + cifar10.FORMAT.test_files:
        batch = {b"data": rng.integers(0, 256, (images_per_batch, 3072), dtype=np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, images_per_batch)]}
        (target / name).write_bytes(pickle.dumps(batch, protocol=2))


@pytest.mark.parametrize("arch", ["allconv", "mlp"])
def test_a_run_on_cifar10_files(tmp_path, monkeypatch, arch):
    """CIFAR cannot be downloaded here: the loader reads files the test writes."""
    _write_cifar10(tmp_path / "data")
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "data"))
    training.load_split.cache_clear()
    options = {"allconv": {"width": 0.05}, "mlp": {"hidden": (8,)}}[arch]
    try:
        metrics = training.run(_spec(arch=arch, dataset="cifar10", val_size=50, epochs=1,
                                     arch_options=options), tmp_path / "run")
    finally:
        training.load_split.cache_clear()
    model = chainrule.models.load_model(str(tmp_path / "run" / "model.npz"))
    assert model.input_shape[1:] == {"allconv": (3, 32, 32), "mlp": (3072,)}[arch]
    assert metrics["epochs_run"] == 1 and 0 <= metrics["final_val_error"] <= 1


def test_a_diverging_run_stops_and_says_so(synthetic, tmp_path):
    metrics = training.run(_spec(lr=1e6, epochs=3), tmp_path)
    assert metrics["diverged"] is True
    assert metrics["epochs_run"] <= 3
