"""Callbacks: code that ``fit`` runs at the start and end of training, epochs and batches.

A callback overrides some of the hooks of :class:`Callback`. They receive a ``logs`` dict of
Python floats: at the end of a batch the running training loss and metrics of the epoch so far,
at the end of an epoch also the validation scores (``val_loss``, ...), ``learning_rate`` and
``loss_ema``. The dict is shared by all callbacks of a call, in order, so one may add entries
that the next one reads: ``fit`` runs the progress bar first, then yours, then the ``History``
it returns (which so records what your callbacks added). ``self.model`` is the model being
trained; setting ``self.model.stop_training = True`` ends training after the current batch.

=========================  ===================================================================
``History``                records the epoch logs (``fit`` returns it)
``ProgressBar``            a live progress line on a terminal, one line per epoch in a log file
``EarlyStopping``          stop when a monitored value stops improving; restore the best weights
``ModelCheckpoint``        save the model (or the best one) every epoch
``BackupAndRestore``       back the run up; a killed fit, run again, goes on where it stopped
``LearningRateScheduler``  set the learning rate from a function of the epoch
``ReduceLROnPlateau``      divide the learning rate when a monitored value stops improving
``CSVLogger``              write the epoch logs to a CSV file, one row per epoch
``TerminateOnNaN``         stop as soon as the loss is NaN or infinite
``LambdaCallback``         a callback made of plain functions
=========================  ===================================================================

Arguments and defaults are Keras's.

>>> from chainrule.callbacks import EarlyStopping
>>> stop = EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
>>> stop.monitor, stop.mode
('val_loss', 'min')
"""

from __future__ import annotations

import csv
import inspect
import math
import os
import string
import sys
import time
import warnings

import numpy as np

from chainrule.callback_base import Callback
from chainrule.tensorboard import TensorBoard  # noqa: F401 - Keras's callbacks.TensorBoard

# -- the list that runs callbacks (the base class: chainrule.callback_base) -----------------------


_BATCH_HOOKS = {
    "train": ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end"),
    "test": ("on_test_batch_begin", "on_test_batch_end"),
    "predict": ("on_predict_batch_begin", "on_predict_batch_end"),
}


def _overrides(callback: Callback, hooks) -> bool:
    return any(getattr(type(callback), hook) is not getattr(Callback, hook) for hook in hooks)


class CallbackList:
    """Runs a list of callbacks in order; ``fit``, ``evaluate`` and ``predict`` talk to this.

    ``wants_batches(mode)`` says whether any callback overrides the batch hooks of ``mode``
    ("train", "test", "predict"), so the loops skip building per-batch logs when none does.
    """

    def __init__(self, callbacks=(), model=None, params=None):
        self.callbacks = list(callbacks)
        if params is not None:  # what the callbacks add to the logs, for the others to check
            params = {**params, "logs_added": sorted(
                {key for cb in self.callbacks for key in getattr(cb, "logs_added", ())})}
        for callback in self.callbacks:
            if model is not None:
                callback.set_model(model)
            if params is not None:
                callback.set_params(params)
        self._batch_callbacks = {
            mode: [cb for cb in self.callbacks if _overrides(cb, hooks)]
            for mode, hooks in _BATCH_HOOKS.items()
        }

    def wants_batches(self, mode: str = "train") -> bool:
        return bool(self._batch_callbacks[mode])

    def _call(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(*args)

    def _call_batch(self, mode: str, hook: str, batch: int, logs) -> None:
        for callback in self._batch_callbacks[mode]:
            getattr(callback, hook)(batch, logs)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs)

    def on_train_interrupt(self, logs=None):
        self._call("on_train_interrupt", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call_batch("train", "on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call_batch("train", "on_train_batch_end", batch, logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._call_batch("test", "on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call_batch("test", "on_test_batch_end", batch, logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._call_batch("predict", "on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call_batch("predict", "on_predict_batch_end", batch, logs)


# -- History --------------------------------------------------------------------------------------


class History(Callback):
    """Records the logs of every epoch; ``fit`` adds one first and returns it.

    Attributes:
        history: ``{"loss": [..], "accuracy": [..], "val_loss": [..], ...}``, one Python float
            per epoch for every key of the epoch logs (see :meth:`Model.fit
            <chainrule.models.Model.fit>` for the keys).
        epoch: the indices of the recorded epochs.
        diverged: ``{"epoch", "step", "loss"}`` when ``fit`` stopped at a non-finite loss,
            else None.
    """

    def __init__(self):
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.diverged: dict | None = None

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


# -- ProgressBar ----------------------------------------------------------------------------------

_QUIET_KEYS = ("learning_rate", "loss_ema")


def _format_duration(seconds: float) -> str:
    """Keras's ETA style: ``42s``, ``3:05``, ``1:02:03``."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    if seconds >= 60:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds}s"


def _format_per_step(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


def _format_logs(logs) -> str:
    return "".join(
        f" - {key}: {value:.4f}" for key, value in (logs or {}).items()
        if key not in _QUIET_KEYS and isinstance(value, (int, float))
    )


class ProgressBar(Callback):
    """Keras's progress output: a live bar on a terminal, one line per epoch elsewhere.

    On a terminal (``stream.isatty()``) the line is redrawn in place at most every
    ``interval`` seconds::

        Epoch 1/10
        120/469 [=======>......................] - ETA: 2s - loss: 0.6123 - accuracy: 0.7812

    and ends, when the epoch does, as
    ``469/469 [==============================] - 3s 6ms/step - loss: ... - val_loss: ...``.
    Anywhere else (a log file, a pipe) it writes one line per epoch and nothing per batch, so a
    long run never floods a log::

        Epoch 1/10 - 469/469 - 3s 6ms/step - loss: 0.5412 - accuracy: 0.8123 - val_loss: ...

    ``evaluate(verbose=1)`` uses it too (a bar without the "Epoch" line).

    Args:
        stream: where to write (default: ``sys.stdout`` at the time training starts).
        interval: the least seconds between redraws of the live bar (default 0.1).
        verbose: 1 (default) as described; 2 forces one line per epoch even on a terminal.
        width: the number of characters of the bar (default 30).
    """

    def __init__(self, stream=None, interval: float = 0.1, verbose: int = 1, width: int = 30):
        super().__init__()
        self.stream = stream
        self.interval = interval
        self.verbose = verbose
        self.width = width
        self._out = None

    # -- the stream ---------------------------------------------------------------------------

    def _start(self) -> None:
        self._out = self.stream if self.stream is not None else sys.stdout
        isatty = getattr(self._out, "isatty", None)
        self.live = self.verbose == 1 and bool(isatty and isatty())
        self._last_width = 0

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    def _redraw(self, line: str, final: bool = False) -> None:
        padding = " " * max(0, self._last_width - len(line))
        self._last_width = 0 if final else len(line)
        self._write("\r" + line + padding + ("\n" if final else ""))

    # -- one pass (an epoch, or an evaluate/predict call) -------------------------------------

    def _begin_pass(self) -> None:
        self._pass_start = self._last_draw = time.monotonic()
        self._seen = 0

    def _batch_done(self, batch: int, logs) -> None:
        self._seen = batch + 1
        if self.live:
            now = time.monotonic()
            if now - self._last_draw >= self.interval:
                self._last_draw = now
                self._redraw(self._bar_line(logs, now))

    def _counter(self) -> str:
        steps = self.params.get("steps")
        if steps is None:
            return f"{self._seen}/Unknown"
        return f"{self._seen:>{len(str(steps))}}/{steps}"

    def _bar(self) -> str:
        steps = self.params.get("steps")
        if not steps:
            return ""
        filled = int(self.width * min(self._seen, steps) / steps)
        arrow = ">" if filled < self.width else ""
        body = "=" * filled + arrow
        return " [" + body + "." * (self.width - len(body)) + "]"

    def _bar_line(self, logs, now: float) -> str:
        elapsed = now - self._pass_start
        steps = self.params.get("steps")
        eta = ""
        if steps and self._seen:
            eta = " - ETA: " + _format_duration(elapsed / self._seen * (steps - self._seen))
        return self._counter() + self._bar() + eta + _format_logs(logs)

    def _end_pass(self, logs, prefix: str = "") -> None:
        elapsed = time.monotonic() - self._pass_start
        timing = f"{_format_duration(elapsed)} {_format_per_step(elapsed / max(self._seen, 1))}"
        if self.live:
            self._redraw(self._counter() + self._bar() + " - " + timing + _format_logs(logs),
                         final=True)
        else:
            self._write(prefix + self._counter() + " - " + timing + _format_logs(logs) + "\n")

    # -- fit ----------------------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        self._start()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_title = f"Epoch {epoch + 1}/{self.params.get('epochs', '?')}"
        if self.live:
            self._write(self._epoch_title + "\n")
        self._begin_pass()

    def on_train_batch_end(self, batch, logs=None):
        self._batch_done(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._end_pass(logs, prefix=self._epoch_title + " - ")

    # -- evaluate and predict -----------------------------------------------------------------

    def on_test_begin(self, logs=None):
        self._start()
        self._begin_pass()

    def on_test_batch_end(self, batch, logs=None):
        self._batch_done(batch, logs)

    def on_test_end(self, logs=None):
        self._end_pass(logs)

    def on_predict_begin(self, logs=None):
        self._start()
        self._begin_pass()

    def on_predict_batch_end(self, batch, logs=None):
        self._batch_done(batch, None)

    def on_predict_end(self, logs=None):
        self._end_pass(None)


# -- monitoring a value ---------------------------------------------------------------------------


def _mode_for(monitor: str, mode: str, owner: str) -> str:
    """"min" or "max": ``mode`` itself, or for "auto" "max" for accuracies, AUC, precision and
    recall and "min" for everything else (losses, errors)."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    name = monitor.removeprefix("val_")
    higher_is_better = ("acc", "auc", "precision", "recall", "f1")
    return "max" if any(word in name for word in higher_is_better) else "min"


def _monitored(logs, monitor: str, owner: str):
    """``logs[monitor]`` as a float, or None with a warning listing the available keys."""
    value = (logs or {}).get(monitor)
    if value is None:
        warnings.warn(
            f"{owner} is conditioned on {monitor!r}, which is not in the logs; available: "
            f"{sorted(logs or {})}", stacklevel=3,
        )
        return None
    return float(value)


# -- EarlyStopping --------------------------------------------------------------------------------


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs.

    Improvement means ``current < best − min_delta`` in "min" mode (``>`` and ``+`` in "max").

    Args:
        monitor: the log key to watch (default "val_loss").
        min_delta: the least change that counts as an improvement (default 0).
        patience: epochs without improvement before stopping (default 0).
        verbose: 1 prints a message when stopping and restoring (default 0).
        mode: "min", "max" or "auto" (default: from the name, "max" for accuracies).
        baseline: training stops unless the value beats this within ``patience`` epochs.
        restore_best_weights: when training ends, put back the weights of the best epoch —
            also when training ran to the last epoch (Keras 3's rule). Default False.
        start_from_epoch: epochs to wait before watching at all (default 0).

    Attributes:
        stopped_epoch: the epoch at which training was stopped (0 if it was not).
        best_epoch: the epoch of the best value seen.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0):
        super().__init__()
        self.monitor = monitor
        self.min_delta = abs(min_delta)
        self.patience = patience
        self.verbose = verbose
        self.mode = _mode_for(monitor, mode, "EarlyStopping")
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch

    def _improves(self, value: float, reference: float) -> bool:
        if self.mode == "min":
            return value < reference - self.min_delta
        return value > reference + self.min_delta

    def on_train_begin(self, logs=None):
        _warn_unless_logged(self, self.monitor, "EarlyStopping")
        self.wait = 0
        self.stopped_epoch = 0
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.start_from_epoch:
            return
        current = _monitored(logs, self.monitor, "EarlyStopping")
        if current is None:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()  # the first epoch is the best so far
            self.best_epoch = epoch
        self.wait += 1
        if self._improves(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improves(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


# -- ModelCheckpoint ------------------------------------------------------------------------------

#: .keras / .h5 / .hdf5 (Keras's names) hold chainrule's own npz, with a warning on the first
#: save (see chainrule.models.saving).
_SAVE_SUFFIXES = (".npz", ".safetensors", ".keras", ".h5", ".hdf5")


class ModelCheckpoint(Callback):
    """Save the model (or only its weights) after every epoch, or only when it is the best.

    The file name may hold ``str.format`` fields: ``epoch`` (counted from 1) and any log key,
    e.g. ``"ckpt/model-{epoch:02d}-{val_loss:.2f}.npz"``. Folders are created; writes are atomic.

    Args:
        filepath: where to save; a ``.npz`` or ``.safetensors`` file name (template).
        monitor: the log key that decides what is best (default "val_loss").
        verbose: 1 prints a line for each save (default 0).
        save_best_only: save only when ``monitor`` improved (default False).
        save_weights_only: ``model.save_weights`` instead of ``model.save`` (default False).
        mode: "min", "max" or "auto" for ``monitor`` (default "auto").
        save_freq: "epoch" (default), or an int: save every that many batches.
        initial_value_threshold: with ``save_best_only``, a value the first save must beat.
    """

    root_only = True  # in a data-parallel fit, only rank 0 writes the files

    def __init__(self, filepath, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False,
                 mode: str = "auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__()
        self.filepath = os.fspath(filepath)
        if not self.filepath.endswith(_SAVE_SUFFIXES):
            raise ValueError(
                f"ModelCheckpoint: chainrule saves .npz or .safetensors files (or its own npz "
                f"under Keras's .keras / .h5 names), got {self.filepath!r}"
            )
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(f"ModelCheckpoint: save_freq must be 'epoch' or a positive int, "
                             f"got {save_freq!r}")
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.mode = _mode_for(monitor, mode, "ModelCheckpoint")
        self.save_freq = save_freq
        worst = math.inf if self.mode == "min" else -math.inf
        self.best = worst if initial_value_threshold is None else float(initial_value_threshold)
        self._batches_seen = 0
        self._epoch = 0

    def on_train_begin(self, logs=None):
        """Check the file name's fields and ``monitor`` against what ``fit`` will log, now
        rather than after the first epoch (for a chainrule model; other objects pass)."""
        if not hasattr(self.model, "metrics_names"):
            return
        logged = expected_log_keys(self.model, self.params)
        allowed = logged | {"epoch"} | ({"batch"} if self.save_freq != "epoch" else set())
        fields = {name.split(".")[0].split("[")[0]
                  for _, name, _, _ in string.Formatter().parse(self.filepath) if name}
        unknown = sorted(fields - allowed)
        if unknown:
            raise ValueError(f"ModelCheckpoint: the file name {self.filepath!r} uses "
                             f"{unknown}, which this fit will not log; it logs "
                             f"{sorted(allowed)}")
        if self.save_best_only and self.monitor not in logged:
            raise ValueError(f"ModelCheckpoint: save_best_only monitors {self.monitor!r}, "
                             f"which this fit will not log (validation data given? "
                             f"{bool(self.params.get('do_validation'))}); it logs "
                             f"{sorted(logged)}")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq != "epoch":
            self._batches_seen += 1
            if self._batches_seen % self.save_freq == 0:
                self._save(self._epoch, {**(logs or {}), "batch": batch + 1})

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, logs)

    def _is_better(self, value: float) -> bool:
        return value < self.best if self.mode == "min" else value > self.best

    def _save(self, epoch: int, logs) -> None:
        logs = dict(logs or {})
        if self.save_best_only:
            current = _monitored(logs, self.monitor, "ModelCheckpoint")
            if current is None or not self._is_better(current):
                return
            if self.verbose > 0:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                      f"{current:.5f}, saving model")
            self.best = current
        from chainrule.models.fit_state import check_weights_finite

        path = self.filepath.format(epoch=epoch + 1, **logs)
        if not check_weights_finite(self.model, f"ModelCheckpoint {path}"):
            return
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)
        if self.verbose > 0 and not self.save_best_only:
            print(f"Epoch {epoch + 1}: saving model to {path}")


def expected_log_keys(model, params: dict) -> set:
    """The keys of the epoch logs of a ``fit`` with ``params``: the loss and the metrics, their
    ``val_`` versions when validating, ``loss_ema``, ``learning_rate``, and the keys that the
    call's callbacks declare they add (a ``logs_added = ("name", ...)`` attribute)."""
    names = set(model.metrics_names)
    if params.get("do_validation"):
        names |= {f"val_{name}" for name in names}
    return names | {"loss_ema", "learning_rate"} | set(params.get("logs_added", ()))


def _warn_unless_logged(callback, monitor: str, owner: str) -> None:
    """At the start of training, a warning when ``monitor`` will not be in the logs (Keras
    warns only at the end of each epoch)."""
    if not hasattr(callback.model, "metrics_names") or "epochs" not in callback.params:
        return
    logged = expected_log_keys(callback.model, callback.params)
    if monitor not in logged:
        warnings.warn(f"{owner} monitors {monitor!r}, which this fit will not log (validation "
                      f"data given? {bool(callback.params.get('do_validation'))}); it logs "
                      f"{sorted(logged)}", stacklevel=6)


# -- BackupAndRestore -----------------------------------------------------------------------------


class BackupAndRestore(Callback):
    """Back a run up as it trains; run the same ``fit`` again after a kill, and it goes on
    from the backup exactly as if it had not stopped (Keras's ``BackupAndRestore``).

    The backup (``backup_dir/fit-state.npz``, written atomically) is what
    :meth:`FitState.capture <chainrule.models.fit_state.FitState.capture>` returns: weights,
    optimizer state, epoch and step, the epoch's sample order, every generator's state, the
    history so far. At the start of ``fit`` an existing backup is restored; the resumed run
    ends with the weights of an uninterrupted one, bit for bit (same seed, same data).

    Args:
        backup_dir: the backup's folder (created when needed).
        save_freq: "epoch" (default): at the end of every epoch; an int N: every N training
            steps, so a kill loses at most N steps; False: only when Ctrl-C stops ``fit``.
        delete_checkpoint: delete the backup when ``fit`` ends normally (default True), so the
            next ``fit`` starts afresh.

    A backup is also written when Ctrl-C stops ``fit`` (after the step in progress), and
    never with non-finite weights (the last good one is kept). Other callbacks' state (an
    EarlyStopping's patience count) is not backed up, as in Keras.
    """

    FILE = "fit-state.npz"

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint: bool = True):
        super().__init__()
        if not isinstance(backup_dir, (str, os.PathLike)):
            raise TypeError(f"BackupAndRestore: backup_dir must be a folder name, "
                            f"got {backup_dir!r}")
        positive_int = (isinstance(save_freq, int) and not isinstance(save_freq, bool)
                        and save_freq > 0)
        if not (save_freq is False or save_freq == "epoch" or positive_int):
            raise ValueError(f"BackupAndRestore: save_freq must be 'epoch', a positive int or "
                             f"False, got {save_freq!r}")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = bool(delete_checkpoint)
        self.restored_from: tuple | None = None  # (epoch, step) of the backup restored

    @property
    def path(self) -> str:
        return os.path.join(self.backup_dir, self.FILE)

    def on_train_begin(self, logs=None):
        self.restored_from = None
        if os.path.exists(self.path):
            from chainrule import io

            tree = io.load_tree(self.path)
            self.model.fit_state.request_restore(tree)
            self.restored_from = (int(tree["epoch"]), int(tree["step"]))

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq not in ("epoch", False):
            state = self.model.fit_state
            if (state.epoch * state.steps_per_epoch + state.step) % self.save_freq == 0:
                self.save()

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self.save(logs)

    def on_train_interrupt(self, logs=None):
        self.save()

    def on_train_end(self, logs=None):
        state = self.model.fit_state
        if getattr(state, "comm", None) is not None and not state.comm.is_root:
            return  # rank 0 deletes it
        if self.delete_checkpoint and os.path.exists(self.path):
            os.remove(self.path)

    def save(self, epoch_logs=None) -> None:
        """Write the backup now (atomically); skipped, with a warning, when a weight is not
        finite."""
        from chainrule import io
        from chainrule.models.fit_state import check_weights_finite

        state = self.model.fit_state
        if getattr(state, "comm", None) is not None and not state.comm.is_root:
            return  # every rank restores the backup, rank 0 alone writes it
        if not check_weights_finite(self.model, f"BackupAndRestore {self.path}"):
            return
        os.makedirs(self.backup_dir, exist_ok=True)
        io.save_tree(self.path, self.model.fit_state.capture(epoch_logs))


# -- the learning rate ----------------------------------------------------------------------------


def _learning_rate(model) -> float:
    return float(model.optimizer.learning_rate)


def _set_learning_rate(model, value: float) -> None:
    model.optimizer.learning_rate = float(value)


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of every epoch to ``schedule(epoch, lr)``.

    Args:
        schedule: ``fn(epoch, lr) -> new lr`` (epoch counted from 0), or ``fn(epoch)``.
        verbose: 1 prints the new rate every epoch (default 0).

    >>> halve_every_10 = LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch % 10 == 9
    ...                                        else lr)
    """

    def __init__(self, schedule, verbose: int = 0):
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose
        self._takes_lr = _positional_arity(schedule) >= 2

    def on_epoch_begin(self, epoch, logs=None):
        lr = _learning_rate(self.model)
        new_lr = self.schedule(epoch, lr) if self._takes_lr else self.schedule(epoch)
        if not isinstance(new_lr, (int, float, np.floating)) or not math.isfinite(new_lr):
            raise ValueError(f"LearningRateScheduler: the schedule returned {new_lr!r} for "
                             f"epoch {epoch}; it must return a finite number")
        _set_learning_rate(self.model, new_lr)
        if self.verbose > 0:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {new_lr}.")
        # (fit logs the rate each epoch used, as "learning_rate": one writer)


def _positional_arity(fn) -> int:
    """How many positional arguments ``fn`` accepts (2 for ``*args``)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    kinds = [p.kind for p in parameters]
    if inspect.Parameter.VAR_POSITIONAL in kinds:
        return 2
    return sum(k in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
               for k in kinds)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has stopped improving.

    After ``patience`` epochs without an improvement (``current < best − min_delta`` in "min"
    mode), ``lr ← max(lr · factor, min_lr)``, then nothing happens for ``cooldown`` epochs.

    Args:
        monitor: the log key to watch (default "val_loss").
        factor: the multiplier, < 1 (default 0.1).
        patience: epochs without improvement before reducing (default 10).
        verbose: 1 prints each reduction (default 0).
        mode: "min", "max" or "auto" (default "auto").
        min_delta: the least change that counts as an improvement (default 1e-4).
        cooldown: epochs to wait after a reduction before counting again (default 0).
        min_lr: the rate never goes below this (default 0).
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0):
        super().__init__()
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1, got {factor}")
        self.monitor = monitor
        self.factor = factor
        self.patience = patience
        self.verbose = verbose
        self.mode = _mode_for(monitor, mode, "ReduceLROnPlateau")
        self.min_delta = abs(min_delta)
        self.cooldown = cooldown
        self.min_lr = min_lr
        self._reset()

    def _reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.cooldown_counter = 0

    def _improves(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_train_begin(self, logs=None):
        _warn_unless_logged(self, self.monitor, "ReduceLROnPlateau")
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        current = _monitored(logs, self.monitor, "ReduceLROnPlateau")
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improves(current):
            self.best = current
            self.wait = 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait >= self.patience:
            old_lr = _learning_rate(self.model)
            if old_lr > self.min_lr:
                new_lr = max(old_lr * self.factor, self.min_lr)
                _set_learning_rate(self.model, new_lr)
                if self.verbose > 0:
                    print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                          f"{new_lr}.")
                self.cooldown_counter = self.cooldown
                self.wait = 0


# -- CSVLogger, TerminateOnNaN, LambdaCallback ----------------------------------------------------


class CSVLogger(Callback):
    """Write the logs of every epoch as a row of a CSV file (columns: ``epoch``, then the log
    keys in sorted order, as Keras does). The file is flushed after every row.

    Args:
        filename: the CSV file.
        separator: the column separator (default ",").
        append: add to an existing file instead of overwriting it (default False).
    """

    root_only = True  # in a data-parallel fit, only rank 0 writes the files

    def __init__(self, filename, separator: str = ",", append: bool = False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.separator = separator
        self.append = append
        self._file = None
        self._writer = None
        self.keys = None

    def on_train_begin(self, logs=None):
        has_rows = (self.append and os.path.exists(self.filename)
                    and os.path.getsize(self.filename) > 0)
        self._file = open(self.filename, "a" if self.append else "w", newline="")  # noqa: SIM115
        self._writer = None
        self.keys = None
        self._header_written = has_rows

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._writer is None:
            self.keys = sorted(logs)
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch", *self.keys],
                                          delimiter=self.separator, extrasaction="ignore")
            if not self._header_written:
                self._writer.writeheader()
        row = {"epoch": epoch}
        for key in self.keys:
            value = logs.get(key, "NA")
            row[key] = repr(float(value)) if isinstance(value, (int, float)) else value
        self._writer.writerow(row)
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


class TerminateOnNaN(Callback):
    """Stop training as soon as the loss becomes NaN or infinite (checked after every batch)."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. ``LambdaCallback(on_epoch_end=lambda e, logs: ...)``.

    Each argument is named after the hook it implements and takes that hook's arguments.
    ``logs_added=("score",)`` declares keys the functions add to the logs, for the checks that
    other callbacks make at the start of training.
    """

    _HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
              "on_train_batch_begin", "on_train_batch_end")

    def __init__(self, logs_added=(), **hooks):
        super().__init__()
        self.logs_added = tuple(logs_added)
        unknown = sorted(set(hooks) - set(self._HOOKS))
        if unknown:
            raise TypeError(f"LambdaCallback: unknown hook(s) {unknown}; known: {self._HOOKS}")
        for name, fn in hooks.items():
            if fn is not None:
                setattr(self, name, fn)

    def on_train_batch_begin(self, batch, logs=None): ...

    def on_train_batch_end(self, batch, logs=None): ...


class SWA(Callback):
    """Stochastic weight averaging (Izmailov et al., 2018) during ``fit``.

    From epoch ``start_epoch`` on (counted from 0) the learning rate is set to ``swa_lr`` at
    the start of every epoch (when given; else the optimizer's rate is left alone), and at the
    end of every such epoch ``averaged.update_parameters(model)`` adds the model's weights to
    the running average θ̄ ← θ̄ + (θ − θ̄)/(n + 1). Call
    :func:`chainrule.models.update_bn` on ``averaged`` after training when the model has
    BatchNormalization layers.

    Args:
        averaged: a :class:`chainrule.models.AveragedModel` of the model being trained.
        start_epoch: the first epoch averaged (≥ 0).
        swa_lr: the constant learning rate from ``start_epoch`` on (> 0, finite), or None.

    >>> from chainrule.layers import Dense
    >>> from chainrule.models import AveragedModel, Sequential
    >>> model = Sequential([Dense(2, input_shape=(3,))])
    >>> swa = SWA(AveragedModel(model), start_epoch=5, swa_lr=0.01)
    """

    def __init__(self, averaged, start_epoch: int = 0, swa_lr=None):
        super().__init__()
        if not hasattr(averaged, "update_parameters"):
            raise TypeError(f"SWA: averaged must be an AveragedModel, got "
                            f"{type(averaged).__name__}")
        if isinstance(start_epoch, bool) or int(start_epoch) != start_epoch or start_epoch < 0:
            raise ValueError(f"SWA: start_epoch must be an integer >= 0, got {start_epoch!r}")
        if swa_lr is not None and (isinstance(swa_lr, bool) or not math.isfinite(swa_lr)
                                   or swa_lr <= 0):
            raise ValueError(f"SWA: swa_lr must be a finite number > 0 or None, got {swa_lr!r}")
        self.averaged = averaged
        self.start_epoch = int(start_epoch)
        self.swa_lr = None if swa_lr is None else float(swa_lr)

    def on_epoch_begin(self, epoch, logs=None):
        if epoch >= self.start_epoch and self.swa_lr is not None:
            _set_learning_rate(self.model, self.swa_lr)

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= self.start_epoch:
            self.averaged.update_parameters(self.model)


class SnapshotEnsemble(Callback):
    """Snapshot ensembles (Huang et al., 2017): cosine annealing with warm restarts, and a copy
    of the model at the end of every cycle.

    With T = epochs · steps the number of training steps of ``fit``, L = ⌈T / cycles⌉ the
    length of a cycle and t = 0, 1, ..., T − 1 the step, the learning rate of step t is

        lr(t) = max_lr / 2 · (cos(π · (t mod L) / L) + 1),

    set before every step: it starts each cycle at ``max_lr`` and falls towards 0. After the
    last step of each cycle (and after step T − 1, which may end a shorter last cycle) a copy
    of the model (same weights, compiled like it) is appended to :attr:`snapshots`; there are
    ⌈T / L⌉ of them (``cycles`` when T is a multiple of ``cycles``). A new ``fit`` starts
    afresh. ``learning_rates`` lists the rate of every step.

    Args:
        cycles: the number of cycles M (≥ 1, at most the number of steps: checked when
            training begins).
        max_lr: the rate at the start of each cycle (> 0, finite); default: the optimizer's
            learning rate when training begins.

    >>> snapshots = SnapshotEnsemble(cycles=5)
    >>> # model.fit(x, y, epochs=50, callbacks=[snapshots]); snapshots.ensemble().predict(x)
    """

    def __init__(self, cycles: int = 5, max_lr=None):
        super().__init__()
        if isinstance(cycles, bool) or int(cycles) != cycles or cycles < 1:
            raise ValueError(f"SnapshotEnsemble: cycles must be an integer >= 1, got {cycles!r}")
        if max_lr is not None and (isinstance(max_lr, bool) or not math.isfinite(max_lr)
                                   or max_lr <= 0):
            raise ValueError(f"SnapshotEnsemble: max_lr must be a finite number > 0 or None, "
                             f"got {max_lr!r}")
        self.cycles = int(cycles)
        self.max_lr = None if max_lr is None else float(max_lr)
        self.snapshots: list = []
        self.learning_rates: list[float] = []
        self._epoch = 0

    def on_train_begin(self, logs=None):
        steps = int(self.params.get("steps") or 0)
        self._steps_per_epoch = steps
        self._total = int(self.params.get("epochs") or 0) * steps
        if self.cycles > self._total:
            raise ValueError(f"SnapshotEnsemble: cycles={self.cycles} is more than the "
                             f"{self._total} training steps of fit (epochs × steps per epoch); "
                             "use fewer cycles or more epochs")
        self._cycle_length = math.ceil(self._total / self.cycles)
        self._peak = self.max_lr if self.max_lr is not None else _learning_rate(self.model)
        self.snapshots, self.learning_rates = [], []

    def _rate(self, step: int) -> float:
        position = (step % self._cycle_length) / self._cycle_length
        return self._peak / 2 * (math.cos(math.pi * position) + 1)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        _set_learning_rate(self.model, self._rate(epoch * self._steps_per_epoch))

    def on_train_batch_begin(self, batch, logs=None):
        rate = self._rate(self._epoch * self._steps_per_epoch + batch)
        _set_learning_rate(self.model, rate)
        self.learning_rates.append(rate)

    def on_train_batch_end(self, batch, logs=None):
        step = self._epoch * self._steps_per_epoch + batch + 1
        if step % self._cycle_length == 0 or step == self._total:
            from chainrule.models.copying import copy_model

            self.snapshots.append(copy_model(self.model, "SnapshotEnsemble"))

    def ensemble(self, **kwargs):
        """A :class:`chainrule.models.Ensemble` of the snapshots (``kwargs`` go to it).

        Raises:
            RuntimeError: no snapshot has been taken yet (call ``fit`` first).
        """
        if not self.snapshots:
            raise RuntimeError("SnapshotEnsemble.ensemble: no snapshots yet; call fit with this "
                               "callback first")
        from chainrule.models.ensemble import Ensemble

        return Ensemble(self.snapshots, **kwargs)
