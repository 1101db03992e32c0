"""The CLI subcommands: train (end to end on small subsets), evaluate and summary."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from chainrule import commands
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
    assert args.epochs is None and commands.EPOCHS["cnn"] == 10 and args.batch_size == 128
    assert args.lr == 1e-3 and args.limit is None and args.lr_schedule == "halve"


def test_summary_of_the_default_cnn(capsys):
    assert main(["summary"]) == 0
    table = capsys.readouterr().out
    assert 'Model: "cnn"' in table and "(None, 32, 28, 28)" in table
    assert "Total params: 421,642" in table


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
