"""One run of the shift/scale study: a plain, seeded function of its spec.

:func:`run` trains one variant as the thesis did: softmax + cross-entropy, SGD with momentum
0.9 at the spec's learning rate, He initialisation, and the same data order for every variant of
a seed (``fit(seed=seed)``). It writes into its folder:

==================  ===========================================================================
``curves.npz``      per step: ``train_error_ema`` (the thesis's curve: 1 − batch accuracy
                    smoothed by an EMA, coefficient 0.99, bias-corrected as ``fit``'s
                    ``loss_ema``) and ``train_loss``; per epoch: ``train_error``, ``val_error``,
                    ``val_loss``; ``step`` and ``epoch`` numbers (1-based). Past
                    :data:`MAX_STEPS_KEPT` steps every k-th step is kept (the EMA runs over all)
``learned.json``    every shift/scale layer's learned values at the end: position (0 = after
                    the input, k = after the k-th activation), kind, mode, mean, std, min, max,
                    and the values themselves up to :data:`MAX_VALUES_LISTED` of them
``learned.npz``     all learned values, one array per layer
``model.npz``       the trained model (``chainrule.models.load_model``)
==================  ===========================================================================

and returns the metrics of ``results.csv``: ``final_train_error_ema``, ``final_val_error``,
``best_val_error``, ``best_epoch``, ``epochs_to_target`` (first epoch whose validation error is
at most ``target_error``; None if never), ``time_s`` (training wall time), ``diverged``.

The data: the training set's pixels scaled to [0, 1]; a stratified validation set of
``val_size`` samples held out with a fixed seed (the same for every run of a study), and
``limit`` training samples (all the rest when None). The test set is not touched.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from pathlib import Path

import numpy as np

import chainrule
from chainrule import losses
from chainrule.callbacks import Callback, TerminateOnNaN
from chainrule.experiments.shift_scale.models import build_model
from chainrule.layers import Conv2D, Dense, Scale, Shift
from chainrule.models.fit_state import DivergenceWarning
from chainrule.optimizers import SGD

#: Data sets of the study: the chainrule.datasets module, the sample shape, the classes, and
#: the validation error that ``epochs_to_target`` waits for (about what a plain MLP reaches in
#: a few epochs).
DATASETS = {
    "fashion-mnist": {"module": "fashion_mnist", "shape": (1, 28, 28), "classes": 10,
                      "target_error": 0.15},
    "cifar10": {"module": "cifar10", "shape": (3, 32, 32), "classes": 10, "target_error": 0.45},
    "cifar100": {"module": "cifar100", "shape": (3, 32, 32), "classes": 100,
                 "target_error": 0.75},
}

#: The thesis's smoothing coefficient of the training-error curve.
EMA_COEFFICIENT = 0.99
#: Steps kept in curves.npz (batch size 1 makes hundreds of thousands).
MAX_STEPS_KEPT = 20_000
#: Learned values listed in learned.json per layer (element-wise layers have thousands).
MAX_VALUES_LISTED = 1024
#: The seed of the train/validation split: the same for every run, so seeds vary only the
#: weights, the data order and the dropout masks.
SPLIT_SEED = 0


# -- data ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def load_split(dataset: str, val_size: int, limit: int | None):
    """``(x_train, y_train), (x_val, y_val)`` as float32 NCHW in [0, 1] and int64 labels.

    Cached per process: a worker that runs many specs loads the data once."""
    import importlib

    from chainrule.data import train_val_test_split

    info = DATASETS[dataset]
    module = importlib.import_module(f"chainrule.datasets.{info['module']}")
    (images, labels), _ = module.load_data()
    images = images.reshape((-1, *info["shape"]))
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    if not 0 < val_size < len(labels):
        raise ValueError(f"val_size must be between 1 and {len(labels) - 1} for {dataset}, "
                         f"got {val_size}")
    x_train, y_train, x_val, y_val, _, _ = train_val_test_split(
        images, labels, val=val_size / len(labels), test=0, seed=SPLIT_SEED, stratify=labels)
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]
    return (_scaled(x_train), y_train), (_scaled(x_val), y_val)


def _scaled(images: np.ndarray) -> np.ndarray:
    x = images.astype(np.float32)
    x /= 255.0
    return x


def model_inputs(x: np.ndarray, arch: str) -> np.ndarray:
    """Images for the all-convolutional net, flattened pixels for the MLP."""
    return x.reshape(len(x), -1) if arch == "mlp" else x


# -- the per-step curve -------------------------------------------------------------------------


class StepCurve(Callback):
    """Records each step's training error and loss, and their EMA (coefficient 0.99).

    A step's error is 1 − the accuracy of its batch, read from the compiled accuracy metric's
    running total and count (the difference between two steps is the batch's share)."""

    def __init__(self, coefficient: float = EMA_COEFFICIENT, keep_every: int = 1):
        super().__init__()
        self.coefficient = coefficient
        self.keep_every = max(1, int(keep_every))
        self.steps = 0
        self.diverged = False  # a step's loss was NaN or infinite
        self._accuracy = None  # the compiled accuracy metric, found at the first step of a fit
        self.average = 0.0
        self.kept: dict[str, list] = {"step": [], "train_error_ema": [], "train_loss": []}

    def on_train_begin(self, logs=None):
        self._accuracy = None  # a new fit compiles its metrics at its first batch

    def on_epoch_begin(self, epoch, logs=None):
        self._correct = self._count = self._loss_sum = 0.0

    def on_train_batch_end(self, batch, logs=None):
        if self._accuracy is None:
            self._accuracy = next(m for m in self.model.compiled_metrics
                                  if m.name == "accuracy")
        accuracy = self._accuracy
        size = accuracy.count - self._count
        if size == 0:  # fit took no update and no metrics at this step: its loss was NaN/inf
            self.diverged = True
            return
        error = 1.0 - (accuracy.total - self._correct) / size
        loss_sum = logs["loss"] * accuracy.count
        loss = (loss_sum - self._loss_sum) / size
        self._correct, self._count, self._loss_sum = accuracy.total, accuracy.count, loss_sum
        self.steps += 1
        self.diverged = self.diverged or not math.isfinite(loss)
        # e_t = β e_{t−1} + (1 − β) error_t, shown as e_t / (1 − β^t) (no bias towards 0)
        self.average = self.coefficient * self.average + (1.0 - self.coefficient) * error
        if self.steps % self.keep_every == 0:
            self.kept["step"].append(self.steps)
            self.kept["train_error_ema"].append(self.ema)
            self.kept["train_loss"].append(loss)

    @property
    def ema(self) -> float:
        if self.steps == 0:
            return math.nan
        return self.average / (1.0 - self.coefficient ** self.steps)


# -- one run ------------------------------------------------------------------------------------


def run(spec: dict, directory) -> dict:
    """Train the spec's variant and write its folder; return its metrics (module docstring).

    ``spec`` keys: variant, arch, dropout, lr, seed, epochs, batch_size, dataset, and
    optionally limit, val_size (default 10000), target_error, arch_options (a dict).
    ``directory`` is created if it does not exist.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    info = DATASETS[spec["dataset"]]
    (x_train, y_train), (x_val, y_val) = load_split(
        spec["dataset"], int(spec.get("val_size") or 10_000), spec.get("limit"))
    arch = spec["arch"]
    x_train, x_val = model_inputs(x_train, arch), model_inputs(x_val, arch)
    chainrule.manual_seed(spec["seed"])
    model = build_model(arch, spec["variant"], x_train.shape[1:], info["classes"],
                        dropout=bool(spec["dropout"]), seed=spec["seed"],
                        **(spec.get("arch_options") or {}))
    model.compile(optimizer=SGD(learning_rate=spec["lr"], momentum=0.9),
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    steps = spec["epochs"] * math.ceil(len(y_train) / spec["batch_size"])
    curve = StepCurve(keep_every=math.ceil(steps / MAX_STEPS_KEPT))
    started = time.perf_counter()
    # A diverging run (a high rate) overflows: it is stopped and recorded as diverged, so
    # NumPy's overflow warnings and fit's DivergenceWarning would only fill the study's log.
    with np.errstate(over="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)
        history = model.fit(x_train, y_train, batch_size=spec["batch_size"],
                            epochs=spec["epochs"], validation_data=(x_val, y_val),
                            seed=spec["seed"], verbose=0, callbacks=[curve, TerminateOnNaN()])
    seconds = time.perf_counter() - started
    epochs = _epoch_curves(history.history)
    _write_curves(directory / "curves.npz", curve, epochs, math.ceil(len(y_train) /
                                                                     spec["batch_size"]))
    _write_learned(directory, model)
    model.save(str(directory / "model.npz"))
    target = spec.get("target_error", info["target_error"])
    return _metrics(curve, epochs, target, seconds)


def _epoch_curves(history: dict) -> dict:
    return {
        "epoch": np.arange(1, len(history["loss"]) + 1, dtype=np.int64),
        "train_error": 1.0 - np.asarray(history["accuracy"], dtype=np.float64),
        "val_error": 1.0 - np.asarray(history["val_accuracy"], dtype=np.float64),
        "val_loss": np.asarray(history["val_loss"], dtype=np.float64),
    }


def _metrics(curve: StepCurve, epochs: dict, target: float, seconds: float) -> dict:
    val_error = epochs["val_error"]
    finite = np.where(np.isfinite(val_error), val_error, np.inf)
    best = int(np.argmin(finite))
    reached = np.flatnonzero(finite <= target)
    return {
        "final_train_error_ema": float(curve.ema),
        "final_train_loss": float(curve.kept["train_loss"][-1]) if curve.steps else None,
        "final_val_error": float(val_error[-1]),
        "final_val_loss": float(epochs["val_loss"][-1]),
        "best_val_error": float(val_error[best]),
        "best_epoch": best + 1,
        "epochs_to_target": int(reached[0]) + 1 if len(reached) else None,
        "target_error": float(target),
        "epochs_run": len(val_error),
        "diverged": curve.diverged,
        "time_s": round(seconds, 3),
    }


# -- files ------------------------------------------------------------------------------------


def _write_curves(path, curve: StepCurve, epochs: dict, steps_per_epoch: int) -> None:
    from chainrule.io import atomic_write

    arrays = {
        "step": np.asarray(curve.kept["step"], dtype=np.int64),
        "train_error_ema": np.asarray(curve.kept["train_error_ema"], dtype=np.float64),
        "train_loss": np.asarray(curve.kept["train_loss"], dtype=np.float64),
        **epochs,
        "steps_per_epoch": np.asarray(steps_per_epoch, dtype=np.int64),
    }
    atomic_write(str(path), lambda file: np.savez(file, **arrays))


def learned_values(model) -> list[tuple[dict, np.ndarray]]:
    """``(description, values)`` of every Shift and Scale layer, in order, with its position:
    0 after the input, k after the k-th Dense/Conv2D layer's activation."""
    found = []
    position = 0
    for layer in model.layers:
        if isinstance(layer, (Dense, Conv2D)):
            position += 1
        elif isinstance(layer, (Shift, Scale)):
            values = np.asarray(layer.parameters()[0].data, dtype=np.float64).reshape(-1)
            found.append(({"position": position, "layer": layer.name,
                           "kind": "shift" if isinstance(layer, Shift) else "scale",
                           "mode": layer.mode, "size": int(values.size)}, values))
    return found


def _write_learned(directory, model) -> None:
    from chainrule.io import atomic_write, write_json

    described = []
    arrays = {}
    for description, values in learned_values(model):
        summary = {**description, "mean": float(values.mean()), "std": float(values.std()),
                   "min": float(values.min()), "max": float(values.max())}
        if values.size <= MAX_VALUES_LISTED:
            summary["values"] = values.tolist()
        described.append(summary)
        arrays[description["layer"]] = values
    write_json(directory / "learned.json", described)
    atomic_write(str(directory / "learned.npz"), lambda file: np.savez(file, **arrays))
