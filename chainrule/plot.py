"""Pictures of training: learning curves and confusion matrices, as PNG files.

Needs matplotlib (``pip install chainrule[plot]``), imported only when a function here is
called. Figures are drawn with matplotlib's Agg backend on a :class:`~matplotlib.figure.Figure`
of their own, without pyplot, so plotting works without a display, from any thread, and
changes no global matplotlib state.

>>> history = {"loss": [0.9, 0.5, 0.4], "val_loss": [0.7, 0.6, 0.6],
...            "accuracy": [0.7, 0.8, 0.85], "val_accuracy": [0.75, 0.8, 0.8]}
>>> plot_history(history, "curves.png")                                 # doctest: +SKIP
>>> plot_confusion_matrix([[50, 2], [5, 43]], "confusion.png", ["cat", "dog"])  # doctest: +SKIP
"""

from __future__ import annotations

import os

import numpy as np

PLOT_EXTRA_HINT = "pip install chainrule[plot]"


def _figure(width: float, height: float):
    """A new Agg-backed Figure (no pyplot, no global state)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            f"chainrule.plot needs matplotlib, which is not installed: {PLOT_EXTRA_HINT} "
            "(or pip install matplotlib)"
        ) from error
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path) -> None:
    """Write the PNG atomically: a kill while drawing leaves the old file or none, never a
    broken one."""
    if path is not None:
        from chainrule.io import atomic_write

        folder = os.path.dirname(os.fspath(path))
        if folder:
            os.makedirs(folder, exist_ok=True)
        atomic_write(os.fspath(path), lambda file: figure.savefig(file, format="png"))


def _as_history_dict(history) -> dict:
    """The per-epoch dict of a History callback, or a dict given directly."""
    values = getattr(history, "history", history)
    if not isinstance(values, dict):
        raise TypeError(f"plot_history: expected a History or a dict of lists, got "
                        f"{type(history).__name__}")
    return values


def _default_panels(history: dict) -> list[str]:
    """"loss" first, then every other training metric that has a value per epoch."""
    skip = {"loss", "learning_rate", "loss_ema"}
    metrics = [k for k in history if not k.startswith("val_") and k not in skip]
    return (["loss"] if "loss" in history else []) + metrics


def plot_history(history, path=None, metrics=None, title: str | None = None):
    """Learning curves: one panel per metric, training against validation, by epoch.

    The loss panel also draws ``loss_ema`` (the training loss smoothed per step) when present.

    Args:
        history: a :class:`~chainrule.callbacks.History` (what ``fit`` returns) or its
            ``.history`` dict (``{"loss": [...], "val_loss": [...], ...}``).
        path: a PNG file to write (folders are created); None writes nothing.
        metrics: the keys to draw (default: "loss" and every training metric, e.g.
            "accuracy"); each panel adds the "val_" curve when there is one.
        title: a title above the panels.

    Returns:
        the matplotlib Figure.
    """
    history = _as_history_dict(history)
    panels = list(metrics) if metrics is not None else _default_panels(history)
    missing = [k for k in panels if k not in history]
    if missing or not panels:
        raise ValueError(f"plot_history: no values for {missing or 'any metric'}; the history "
                         f"has {sorted(history)}")
    figure = _figure(5.0 * len(panels), 4.0)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, key in zip(axes, panels):
        epochs = np.arange(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], "o-", label=f"training {key}")
        if key == "loss" and "loss_ema" in history:
            ax.plot(epochs, history["loss_ema"], "--", color="gray",
                    label="training loss (EMA 0.99 per step)")
        if f"val_{key}" in history:
            val = history[f"val_{key}"]
            ax.plot(np.arange(1, len(val) + 1), val, "s-", label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.set_title(key)
        ax.grid(True, alpha=0.3)
        ax.legend()
        if len(epochs) <= 20:
            ax.set_xticks(epochs)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    _save(figure, path)
    return figure


def plot_confusion_matrix(matrix, path=None, class_names=None, normalize: bool = False,
                          title: str | None = None):
    """A confusion matrix as a heat map: rows are true classes, columns predicted ones.

    Args:
        matrix: square counts ``C[i, j]`` (e.g. ``ConfusionMatrix(n).result()``).
        path: a PNG file to write (folders are created); None writes nothing.
        class_names: labels for the axes (default 0, 1, ...).
        normalize: show each row as fractions of its true class (the recall per class).
        title: the title (default "Confusion matrix").

    Returns:
        the matplotlib Figure.
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"plot_confusion_matrix: expected a square matrix, got shape "
                         f"{matrix.shape}")
    n = matrix.shape[0]
    names = [str(i) for i in range(n)] if class_names is None else [str(c) for c in class_names]
    if len(names) != n:
        raise ValueError(f"plot_confusion_matrix: {len(names)} class names for {n} classes")
    shown = matrix.astype(np.float64)
    if normalize:
        shown = shown / np.maximum(shown.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.6 * n + 2.0)
    figure = _figure(size + 1.0, size)
    ax = figure.subplots()
    image = ax.imshow(shown, cmap="Blues")
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or "Confusion matrix")
    if n <= 20:
        threshold = shown.max() / 2 if shown.size else 0
        for i in range(n):
            for j in range(n):
                text = f"{shown[i, j]:.2f}" if normalize else f"{int(matrix[i, j])}"
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="white" if shown[i, j] > threshold else "black")
    figure.tight_layout()
    _save(figure, path)
    return figure


__all__ = ["plot_confusion_matrix", "plot_history"]
