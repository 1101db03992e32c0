"""The CLI subcommands: train (end to end on small subsets), evaluate and summary."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from chainrule import commands, zoo
from chainrule.cli import build_parser, main
from tests.data_helpers import needs_fashion_mnist

RUN_FILES = {"config.json", "history.csv", "summary.json", "curves.png", "confusion.png",
             "model.npz"}




@needs_fashion_mnist
def test_train_end_to_end_on_a_subset(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "mlp", "--limit", "512", "--epochs", "1",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == RUN_FILES
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples"] == {"train": 460, "validation": 52, "test": 512}
    assert 0.3 < summary["test_accuracy"] <= 1 and summary["test_loss"] > 0
    assert f"test accuracy: {summary['test_accuracy']:.4f}" in printed
    assert "Epoch 1/1 - 4/4 - " in printed
    config = json.loads((out / "config.json").read_text())
    assert config["arguments"]["model"] == "mlp" and config["model_config"]["class_name"]
    with open(out / "history.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 1 and {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(rows[0])
    for png in ("curves.png", "confusion.png"):
        assert (out / png).read_bytes().startswith(b"\x89PNG")

    assert main(["evaluate", "--model-path", str(out / "model.npz"), "--limit", "512"]) == 0
    assert f"test accuracy: {summary['test_accuracy']:.4f}" in capsys.readouterr().out


def test_train_a_cnn_on_digits(tmp_path, capsys):
    pytest.importorskip("sklearn", reason="the digits need scikit-learn ([data] extra)")
    out = tmp_path / "digits"
    assert main(["train", "--model", "cnn", "--dataset", "digits", "--limit", "128",
                 "--epochs", "1", "--batch-size", "32", "--validation-split", "0",
                 "--optimizer", "sgd", "--lr", "0.05", "--lr-schedule", "constant",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples"]["validation"] == 0 and summary["parameters"] > 0
    config = json.loads((out / "config.json").read_text())
    assert config["arguments"]["optimizer"] == "sgd" and config["arguments"]["lr"] == 0.05
    assert "val_loss" not in (out / "history.csv").read_text()
    capsys.readouterr()
    assert main(["summary", "--model-path", str(out / "model.npz")]) == 0
    assert "(None, 32, 8, 8)" in capsys.readouterr().out


def test_without_matplotlib_the_plots_are_skipped_with_a_note(tmp_path, capsys, monkeypatch):
    pytest.importorskip("sklearn", reason="the digits need scikit-learn ([data] extra)")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for name in [m for m in sys.modules if m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    out = tmp_path / "noplots"
    assert main(["train", "--model", "mlp", "--dataset", "digits", "--limit", "64",
                 "--epochs", "1", "--out", str(out)]) == 0
    assert "note: skipped curves.png and confusion.png" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == RUN_FILES - {"curves.png", "confusion.png"}


def test_defaults_are_the_main_job():
    commands_ = build_parser()
    args = commands_.parse_args(["train"])
    assert (args.model, args.dataset, args.optimizer) == ("cnn", "fashion-mnist", "adam")
    assert args.epochs is None and commands.EPOCHS["cnn"] == 9 and args.batch_size == 128
    assert args.lr is None and args.limit is None and args.lr_schedule is None
    commands.apply_recipe(args)  # what train does with the options not given
    assert (args.epochs, args.lr, args.lr_schedule) == (9, 1e-3, "halve")
    assert (args.augment, args.batch_norm) == ("flip", True)


def test_the_default_cnn_recipe_is_the_documented_one():
    """docs/models.md and docs/performance.md: Conv – MaxPool – BN – ReLU twice, Dense 128,
    Dropout 0.25; Adam 1e-3, batch 128, 9 epochs, halving schedule; random left-right flips."""
    from chainrule.data.transforms import Compose, RandomFlip
    from chainrule.layers import BatchNormalization, Conv2D, MaxPooling2D, ReLU

    args = commands.apply_recipe(build_parser().parse_args(["train"]))
    model = zoo.build("cnn", (1, 28, 28), 10, **commands.model_options(args))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Conv2D", "MaxPooling2D", "BatchNormalization", "ReLU"] * 2 + [
        "Flatten", "Dense", "Dropout", "Dense"]
    assert model.count_params() == 421_930
    convs = [layer for layer in model.layers if isinstance(layer, Conv2D)]
    assert [c.filters for c in convs] == [32, 64] and not any(c.use_bias for c in convs)
    assert all(isinstance(layer, BatchNormalization | MaxPooling2D | ReLU | Conv2D)
               for layer in model.layers[:8])
    assert commands.learning_rate(args, steps_per_epoch=422) == 1e-3
    schedule = commands.LR_SCHEDULES[args.lr_schedule](args.lr, args.epochs)
    assert [schedule(e) for e in range(9)] == [1e-3] * 4 + [1e-3 / 2 ** k for k in range(1, 6)]
    transform = commands.augmentation(args.augment, args.seed)
    assert isinstance(transform, Compose)
    assert [(type(t), t.mode) for t in transform.transforms] == [(RandomFlip, "horizontal")]
    assert commands.recipe_model("cnn", (1, 28, 28), 10).count_params() == 421_930


def test_explicit_options_override_the_recipe():
    args = commands.apply_recipe(build_parser().parse_args(
        ["train", "--epochs", "3", "--lr", "0.01", "--lr-schedule", "warmup-cosine",
         "--augment", "none", "--no-batch-norm"]))
    assert (args.epochs, args.lr, args.lr_schedule, args.augment, args.batch_norm) == (
        3, 0.01, "warmup-cosine", "none", False)
    assert zoo.build("cnn", (1, 28, 28), 10, **commands.model_options(args)).count_params() \
        == 421_642  # the benchmarks' CNN, zoo.cnn's default
    assert commands.augmentation(args.augment, 0) is None
    schedule = commands.learning_rate(args, steps_per_epoch=10)
    assert np.isclose(schedule(0), 1e-3) and np.isclose(schedule(10), 0.01)
    assert schedule(30) == 0.0  # up during the first epoch, then cosine down to 0 at the end
    mlp = commands.apply_recipe(build_parser().parse_args(["train", "--model", "mlp"]))
    assert (mlp.epochs, mlp.augment, mlp.batch_norm) == (15, "none", None)
    with pytest.raises(ValueError, match="--batch-norm applies to cnn"):
        commands.apply_recipe(build_parser().parse_args(["train", "--model", "mlp",
                                                         "--batch-norm"]))
    with pytest.raises(ValueError, match="--augment flip moves pixels of images"):
        commands.apply_recipe(build_parser().parse_args(["train", "--model", "mlp",
                                                         "--augment", "flip"]))


def test_augmentations_are_seeded_and_keep_shapes():
    x = np.random.default_rng(0).random((8, 1, 6, 6)).astype(np.float32)
    first, second = (commands.augmentation("flip+shift", 3)(x) for _ in range(2))
    np.testing.assert_array_equal(first, second)
    assert first.shape == x.shape and first.dtype == np.float32
    assert not np.array_equal(first, x)


@needs_fashion_mnist
def test_train_with_augmentation_and_a_step_schedule(tmp_path):
    out = tmp_path / "aug"
    assert main(["train", "--limit", "256", "--epochs", "2", "--augment", "flip+shift",
                 "--lr-schedule", "cosine", "--lr", "0.002", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())["arguments"]
    assert (config["augment"], config["batch_norm"], config["lr_schedule"]) == (
        "flip+shift", True, "cosine")
    with open(out / "history.csv") as file:
        rates = [float(row["learning_rate"]) for row in csv.DictReader(file)]
    assert rates[0] == 0.002 and 0 < rates[1] < 0.002


def test_resuming_a_run_from_before_the_recipe_options(tmp_path):
    """A config.json without --augment and --batch-norm: the run had neither."""
    folder = tmp_path / "old"
    folder.mkdir()
    arguments = {"model": "cnn", "dataset": "digits", "epochs": 2, "batch_size": 16,
                 "optimizer": "adam", "lr": 1e-3, "lr_schedule": "halve", "seed": 0,
                 "validation_split": 0.1, "limit": 64}
    (folder / "config.json").write_text(json.dumps({"arguments": arguments}))
    args = build_parser().parse_args(["train", "--resume", str(folder)])
    resumed = commands._resumed_arguments(args, say=lambda *a: None)
    assert (resumed.augment, resumed.batch_norm, resumed.epochs) == ("none", None, 2)
    assert commands.model_options(resumed) == {}


def test_summary_of_the_default_cnn(capsys):
    assert main(["summary"]) == 0
    table = capsys.readouterr().out
    assert 'Model: "cnn"' in table and "(None, 32, 28, 28)" in table
    assert "batch_normalization" in table and "Total params: 421,930" in table


def test_prepare_inputs_scales_and_shapes():
    images = np.full((3, 28, 28), 255, np.uint8)
    x = commands.prepare_inputs(images, 255.0, (784,))
    assert x.dtype == np.float32 and x.shape == (3, 784) and x.max() == 1.0
    assert commands.prepare_inputs(images, 255.0, (1, 28, 28)).shape == (3, 1, 28, 28)


def test_unknown_choices_are_refused(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--model", "resnet"])
    assert "invalid choice: 'resnet'" in capsys.readouterr().err


def test_python_dash_m_lists_the_commands():
    result = subprocess.run([sys.executable, "-m", "chainrule", "--help"], capture_output=True,
                            text=True, check=True)
    for name in ("train", "evaluate", "summary"):
        assert name in result.stdout
