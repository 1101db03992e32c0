"""Where a ``fit`` is, and what it takes to continue it bit for bit, or to step back.

:class:`FitState` is the training loop's memory, held by the model as ``model.fit_state``
while ``fit`` runs: the epoch, the step within it, the epoch's sample order, the smoothed
loss, and the guards of a run:

* **Divergence.** With ``check_finite`` (the default) a step whose loss is NaN or infinite
  takes no update: ``fit`` stops after it and warns (:class:`DivergenceWarning`) naming the
  epoch and the step. The weights are then those of the last finite step; should they hold a
  non-finite value anyway (an overflow in the update of a step whose loss was still finite),
  the weights and optimizer state of the start of the epoch are put back.
* **Ctrl-C.** The first Ctrl-C lets the current step finish, then ``fit`` stops: callbacks
  hear ``on_train_interrupt`` (:class:`~chainrule.callbacks.BackupAndRestore` saves there),
  and ``KeyboardInterrupt`` says where the run stopped. A second Ctrl-C stops at once.
* **Checkpoints.** :meth:`FitState.capture` returns everything a resumed run needs: the
  weights, the optimizer state, the position (epoch, step), the epoch's order, the states of
  chainrule's generator and of the loader's own generators (shuffling, augmentation), the
  history, the smoothed loss and the epoch's running metric sums. :meth:`request_restore`
  (from a callback's ``on_train_begin``) puts all of that back before the first step, so the
  run goes on exactly as if it had not stopped: same samples in the same order, same dropout
  masks, same weights after every step.

Not saved: the state of other callbacks (an ``EarlyStopping``'s patience count, a
``ReduceLROnPlateau``'s plateau), as in Keras's ``BackupAndRestore``.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import warnings

import numpy as np

from chainrule import backend
from chainrule import random as cr_random
from chainrule.models.training import LossEMA, split_batch

#: The format tag of a captured state.
STATE_FORMAT = "chainrule-fit-state"
STATE_VERSION = 1


class DivergenceWarning(UserWarning):
    """``fit`` stopped because a training loss was NaN or infinite."""


class FitState:
    """The state of one ``fit`` call (see the module docstring)."""

    def __init__(self, model, loader, history, check_finite: bool = True,
                 initial_epoch: int = 0):
        self.model, self.loader, self.history = model, loader, history
        self.check_finite = bool(check_finite)
        self.steps_per_epoch = len(loader)
        self.epoch, self.step, self.order = int(initial_epoch), 0, None
        self.epoch_complete = False  # on_epoch_end has run for self.epoch
        self.ema = LossEMA()
        self.diverged: dict | None = None  # {"epoch", "step", "loss"} once stopped
        self.comm = None  # the communicator of a data-parallel fit
        self.dtype = None  # the floating dtype inputs are cast to
        self.interrupted = False
        self._snapshot = None  # weights and optimizer state at the start of the epoch
        self._pending = None  # a captured state to restore before the first step
        self._metric_sums = None  # the running metric sums of a resumed epoch

    # -- epochs ---------------------------------------------------------------------------------

    def begin_epoch(self, epoch: int) -> int:
        """Start ``epoch``: its sample order (drawn now, or the restored one of an epoch that
        was resumed in its middle); return the batch to start from."""
        self.epoch_complete = False
        if self.order is None or self.epoch != epoch:
            self.epoch, self.step = epoch, 0
            self.order = self.loader.epoch_order()
        elif self._metric_sums is not None:
            set_metric_sums(self.model, self._metric_sums)
        self._metric_sums = None
        if self.check_finite:
            self._snapshot = self._weights_and_optimizer()
        return self.step

    def end_epoch(self) -> None:
        """The epoch's callbacks have run; the next epoch draws its own order."""
        self.order = None
        self.epoch_complete = True

    # -- divergence -----------------------------------------------------------------------------

    def stop_diverged(self, epoch: int, step: int, loss: float) -> None:
        """A step's loss was not finite (its update was not applied): keep finite weights,
        record where, and warn."""
        restored = ""
        if not self._all_finite():
            self._put_back(self._snapshot)
            restored = (f"; they had become non-finite, so the weights and optimizer state "
                        f"of the start of epoch {epoch + 1} were put back")
        self.diverged = {"epoch": epoch, "step": step, "loss": loss}
        self.history.diverged = self.diverged
        warnings.warn(
            f"fit: the loss became {loss} at epoch {epoch + 1}, step {step + 1} of "
            f"{self.steps_per_epoch}: training stopped without that step's update, so the "
            f"weights are those of the last finite step{restored}. Lower the learning rate, "
            f"clip the gradients (an optimizer's clipnorm=...), or look for extreme values in "
            f"the data; fit(..., check_finite=False) trains on regardless.",
            DivergenceWarning, stacklevel=5)

    def _all_finite(self) -> bool:
        arrays = [w.data for w in self.model.weights]
        optimizer = self.model.optimizer
        for entries in getattr(optimizer, "state", {}).values():
            arrays += [v for v in entries.values() if hasattr(v, "dtype")]
        return all(bool(backend.get_array_module(a).isfinite(a).all()) for a in arrays
                   if a.dtype.kind == "f")

    def _weights_and_optimizer(self):
        optimizer = self.model.optimizer
        return (self.model.state_dict(),
                optimizer.state_dict() if getattr(optimizer, "built", False) else None)

    def _put_back(self, snapshot) -> None:
        weights, optimizer_state = snapshot
        self.model.load_state_dict(weights)
        optimizer = self.model.optimizer
        if optimizer_state is not None:
            optimizer.load_state_dict(optimizer_state)
        elif getattr(optimizer, "built", False):  # not stepped yet at the snapshot
            optimizer.state.clear()
            optimizer.iterations = 0

    # -- Ctrl-C ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def interruptible(self):
        """While ``fit`` runs: the first Ctrl-C sets :attr:`interrupted` (the loop stops after
        the step in progress), a second one raises at once. Only in the main thread, where
        Python delivers signals."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGINT)

        def on_interrupt(signum, frame):
            self.interrupted = True
            signal.signal(signal.SIGINT, signal.default_int_handler)  # the second one stops

        signal.signal(signal.SIGINT, on_interrupt)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def interrupt_message(self) -> str:
        return (f"training interrupted by Ctrl-C after epoch {self.epoch + 1}, step "
                f"{self.step} of {self.steps_per_epoch}, with the step completed")

    # -- checkpoints ----------------------------------------------------------------------------

    def capture(self, epoch_logs: dict | None = None) -> dict:
        """Everything a resumed run needs, as a tree for :func:`chainrule.io.save_tree`.

        ``epoch_logs``: at the end of an epoch (``on_epoch_end``), that epoch's logs, which
        the History has not recorded yet when the caller runs before it. Captured after the
        last step of an epoch but before its end (validation, ``on_epoch_end``), the state
        resumes there: the epoch's end runs again, its steps do not."""
        done = self.epoch_complete or epoch_logs is not None
        history = {key: list(values) for key, values in self.history.history.items()}
        epochs = list(self.history.epoch)
        if done and epoch_logs is not None and self.epoch not in epochs:
            epochs.append(self.epoch)
            for key, value in epoch_logs.items():
                history.setdefault(key, []).append(value)
        optimizer = self.model.optimizer
        return {
            "format": STATE_FORMAT, "version": STATE_VERSION,
            "epoch": self.epoch + 1 if done else self.epoch,
            "step": 0 if done else self.step,
            "order": None if done or self.order is None else np.asarray(self.order),
            "generator": cr_random.get_generator().bit_generator.state,
            "loader_generators": self.loader.generator_states(),
            "weights": self.model.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer.built else None,
            "history": {"epoch": epochs, "values": history},
            "loss_ema": {"average": self.ema.average, "steps": self.ema.steps},
            "metric_sums": None if done else metric_sums(self.model),
        }

    def request_restore(self, tree: dict) -> None:
        """Restore ``tree`` (from :meth:`capture`) before the first step of this fit."""
        if not isinstance(tree, dict) or tree.get("format") != STATE_FORMAT:
            raise ValueError("request_restore: not a state captured by FitState.capture")
        if tree.get("version", 0) > STATE_VERSION:
            raise ValueError(f"request_restore: state version {tree['version']} is newer "
                             f"than this chainrule's ({STATE_VERSION}); upgrade chainrule")
        self._pending = tree

    def apply_restore(self) -> bool:
        """Put back the requested state (``fit`` calls it after ``on_train_begin``); returns
        whether there was one."""
        tree, self._pending = self._pending, None
        if tree is None:
            return False
        self._ready_to_load()
        self.model.load_state_dict(tree["weights"])
        if tree["optimizer"] is not None:
            self.model.optimizer.load_state_dict(tree["optimizer"])
        self.epoch, self.step = int(tree["epoch"]), int(tree["step"])
        self.order = None if tree["order"] is None else np.asarray(tree["order"])
        cr_random.get_generator().bit_generator.state = tree["generator"]
        self.loader.set_generator_states(tree["loader_generators"])
        self.history.epoch = list(tree["history"]["epoch"])
        self.history.history = {k: list(v) for k, v in tree["history"]["values"].items()}
        self.ema.average = float(tree["loss_ema"]["average"])
        self.ema.steps = int(tree["loss_ema"]["steps"])
        self._metric_sums = tree["metric_sums"]
        return True

    def _ready_to_load(self) -> None:
        """Build the model and bind the optimizer (a fresh process has neither yet), and fix
        the metrics' kinds, from one training sample: the saved state then has somewhere to
        go. Runs the model once in evaluation mode, drawing no random numbers."""
        model = self.model
        x, y = split_batch(self.loader.fetch(np.array([0])), "fit")  # sample 0, any rank
        y_pred = model.predict_on_batch(x)  # (a transform's draws are overwritten after this)
        model.optimizer.build(model.parameters())
        if model.compiled_metrics is None and y is not None:
            model._resolve_metrics(y, y_pred)


# -- the running sums of the metrics --------------------------------------------------------------


def _metric_objects(model) -> dict:
    objects = {"loss": model._loss_tracker}
    for metric in model.compiled_metrics or ():
        objects[metric.name] = metric
    return objects


def _numbers(metric) -> dict:
    """A metric's running sums: its attributes that are numbers or arrays."""
    return {key: value for key, value in vars(metric).items()
            if isinstance(value, (int, float, np.ndarray, np.number))
            and not isinstance(value, bool)}


def metric_sums(model) -> dict:
    """The running sums of the loss tracker and of every compiled metric, by name: what a
    checkpoint keeps of an epoch in progress, and what a data-parallel fit sums over ranks."""
    return {name: _numbers(metric) for name, metric in _metric_objects(model).items()}


def set_metric_sums(model, sums: dict) -> None:
    """Put :func:`metric_sums`' values back into the model's tracker and metrics."""
    for name, metric in _metric_objects(model).items():
        for key, value in sums.get(name, {}).items():
            setattr(metric, key, np.array(value) if isinstance(value, np.ndarray) else value)


def check_weights_finite(model, what: str) -> bool:
    """Whether every floating weight of ``model`` is finite; warns naming ``what`` (a
    checkpoint that will not be written) when not."""
    for name, weight in getattr(model, "named_weights", list)():
        data = weight.data
        if data.dtype.kind == "f" and not bool(backend.get_array_module(data).isfinite(data)
                                               .all()):
            warnings.warn(f"{what}: not saved, weight {name!r} holds NaN or infinite values "
                          f"(the last good file is kept)", DivergenceWarning, stacklevel=3)
            return False
    return True


__all__ = ["DivergenceWarning", "FitState", "check_weights_finite"]
