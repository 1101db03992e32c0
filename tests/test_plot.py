"""chainrule.plot: PNG files of learning curves and confusion matrices; a clear error without
matplotlib."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from chainrule import plot
from chainrule.callbacks import History

pytest.importorskip("matplotlib", reason="plots need matplotlib ([plot] extra)")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HISTORY = {"loss": [0.9, 0.5, 0.4], "val_loss": [0.7, 0.6, 0.6], "accuracy": [0.7, 0.8, 0.85],
           "val_accuracy": [0.75, 0.8, 0.8], "loss_ema": [1.0, 0.6, 0.45],
           "learning_rate": [0.001] * 3}


def test_learning_curves_png(tmp_path):
    path = tmp_path / "runs" / "curves.png"
    figure = plot.plot_history(HISTORY, path, title="demo")
    assert path.read_bytes().startswith(PNG_MAGIC)
    titles = [ax.get_title() for ax in figure.axes]
    assert titles == ["loss", "accuracy"]  # learning_rate and loss_ema get no panel
    labels = [line.get_label() for line in figure.axes[0].lines]
    assert labels == ["training loss", "training loss (EMA 0.99 per step)", "validation loss"]
    np.testing.assert_array_equal(figure.axes[1].lines[1].get_ydata(), [0.75, 0.8, 0.8])


def test_learning_curves_from_a_history_callback_without_validation():
    history = History()
    history.history = {"loss": [1.0, 0.5]}
    figure = plot.plot_history(history)
    assert [line.get_label() for line in figure.axes[0].lines] == ["training loss"]


def test_unknown_metric_is_an_error():
    with pytest.raises(ValueError, match="no values for \\['auc'\\]"):
        plot.plot_history(HISTORY, metrics=["auc"])


def test_confusion_matrix_png(tmp_path):
    path = tmp_path / "confusion.png"
    matrix = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 9]])
    figure = plot.plot_confusion_matrix(matrix, path, class_names=["a", "b", "c"])
    assert path.read_bytes().startswith(PNG_MAGIC)
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert texts == [str(v) for v in matrix.ravel()]
    normalized = plot.plot_confusion_matrix(matrix, normalize=True)
    assert normalized.axes[0].texts[0].get_text() == "0.83"


def test_confusion_matrix_checks_its_input():
    with pytest.raises(ValueError, match="square"):
        plot.plot_confusion_matrix(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        plot.plot_confusion_matrix(np.eye(3), class_names=["a", "b"])


def test_missing_matplotlib_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install chainrule\[plot\]"):
        plot.plot_history(HISTORY)


def test_a_drawing_that_dies_midway_leaves_the_old_png_whole(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    path = tmp_path / "curves.png"
    history = {"loss": [0.9, 0.5], "val_loss": [0.8, 0.6]}
    plot.plot_history(history, path)
    before = path.read_bytes()

    def dies_midway(self, file, **options):
        file.write(b"\x89PNG half a picture")
        raise KeyboardInterrupt  # a kill while drawing

    monkeypatch.setattr(Figure, "savefig", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        plot.plot_history({"loss": [0.1, 0.2]}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]  # no temporary file left
