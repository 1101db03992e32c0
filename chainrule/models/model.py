"""The Model: a Layer that knows how to train itself (Keras's ``compile`` / ``fit`` /
``evaluate`` / ``predict``), summarize itself and save itself.

Subclass it to write a model of your own, in Keras's or in PyTorch's manner::

    class MLP(Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.hidden = Dense(128, activation="relu")
            self.out = Dense(10)

        def forward(self, x):            # or Keras's call(self, x)
            return self.out(self.hidden(x))

    model = MLP()
    model.compile(optimizer="adam",
                  loss=SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=5, batch_size=128, validation_split=0.1)

or use :class:`~chainrule.models.Sequential` for a stack of layers.

What ``fit`` does per batch, and nothing more: take the batch from the DataLoader, forward,
loss (+ the layers' regularization losses, if any), backward, optimizer step, update the metrics
on the NumPy arrays. Everything that can be done once per epoch or once per call (mode
switches, metric resolution, binding the optimizer, checking for regularizers, which callbacks
want per-batch logs) is done there.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np

from chainrule import backend, io, losses, optimizers
from chainrule import metrics as metrics_module
from chainrule._config import get_default_dtype, no_grad
from chainrule.callbacks import CallbackList, History, ProgressBar
from chainrule.layers.base import Layer
from chainrule.models import training
from chainrule.models.fit_state import FitState, metric_sums, set_metric_sums
from chainrule.models.summary import summary_lines
from chainrule.tensor import Tensor

#: Keras compile() arguments that mean nothing here (there is no graph compiler); accepted and
#: ignored so that Keras code runs unchanged.
_IGNORED_COMPILE_ARGUMENTS = ("run_eagerly", "steps_per_execution", "auto_scale_loss")


class _ModelType(type(Layer)):
    """``Model(inputs, outputs)`` (Keras's functional API) makes a
    :class:`~chainrule.models.functional.Functional` model, as Keras's ``Model.__new__`` does.

    That class subclasses Model, so this module cannot import it: it registers itself
    (:func:`register_functional`) when :mod:`chainrule.models` loads, before any Model exists.
    """

    functional_class = None

    def __call__(cls, *args, **kwargs):
        if cls is Model and (args or "inputs" in kwargs or "outputs" in kwargs):
            return _ModelType.functional_class(*args, **kwargs)
        return super().__call__(*args, **kwargs)


def register_functional(functional_class) -> None:
    """Make ``Model(inputs, outputs)`` build a ``functional_class`` (called by
    :mod:`chainrule.models.functional`)."""
    _ModelType.functional_class = functional_class


class Model(Layer, metaclass=_ModelType):
    """A Layer with Keras's training API. Subclass it (define layers in ``__init__``, the
    computation in ``forward`` or ``call``), use :class:`Sequential`, or Keras's functional
    API: ``Model(inputs, outputs)`` with ``inputs = Input(shape=...)`` and ``outputs`` made by
    calling layers on them (see :mod:`chainrule.models.functional`).

    Attributes:
        optimizer: the optimizer given to :meth:`compile`.
        loss: the loss object given to :meth:`compile`.
        compiled_metrics: the metric objects, once the first batch has fixed their kind.
        history: the :class:`~chainrule.callbacks.History` of the last :meth:`fit`.
        stop_training: set it to True (from a callback) to end ``fit`` after the current batch.
        fit_state: while ``fit`` runs, its :class:`~chainrule.models.fit_state.FitState`
            (epoch, step, order; what checkpoints capture and restore); None otherwise.
    """

    optimizer = None
    loss = None
    compiled = False
    compiled_metrics = None
    history = None
    stop_training = False
    fit_state = None

    def __init__(self, *args, **kwargs):
        if args or "inputs" in kwargs or "outputs" in kwargs:
            raise TypeError(
                f"{type(self).__name__}: a subclass of Model takes no inputs/outputs (Keras's "
                "functional subclassing is not supported); build the graph with "
                "chainrule.Model(inputs, outputs), or define the computation in forward/call"
            )
        super().__init__(**kwargs)

    # -- building -------------------------------------------------------------------------------

    def build(self, input_shape, input_dtype=None) -> None:
        """Build every layer for inputs of ``input_shape`` (batch axis first, None allowed),
        as Keras's ``model.build((None, 784))``. Layers that cannot be built from shapes alone
        (those of a subclassed model) are built by calling the model once on zeros of that
        shape and ``input_dtype`` (default: the float dtype), in evaluation mode, recording
        nothing. A list of shapes means a model of several inputs."""
        self._build_layers(input_shape)
        if not all(layer.built for layer in self.modules()[1:]):
            self._call_on_zeros(input_shape, input_dtype)
        self._record_build(input_shape)

    def _build(self, input_shape) -> None:
        # What the first call (and ``input_shape=``) runs. The forward pass that follows builds
        # each layer as it reaches it, so nothing is called here: shapes only.
        self._build_layers(input_shape)
        self._record_build(input_shape)

    def _build_layers(self, input_shape) -> None:
        """Build what can be built from the input shape alone (Sequential: every layer)."""

    def _record_build(self, input_shape) -> None:
        """Mark the model built for ``input_shape`` (batch axis recorded as None)."""
        self.built = True
        self._build_input_shape = _free_batch(input_shape)
        self._checked_shape = None

    def _call_on_zeros(self, input_shape, input_dtype=None):
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        dtype = np.dtype(input_dtype) if input_dtype is not None else self._float_dtype()
        inputs = [Tensor(np.zeros(tuple(1 if n is None else int(n) for n in shape), dtype))
                  for shape in shapes]
        modes = self._modes()
        self.eval()
        try:
            with no_grad():
                return self.forward(*inputs)
        finally:
            _restore_modes(modes)

    def _float_dtype(self) -> np.dtype:
        """The floating dtype inputs are cast to: the weights', else the default dtype."""
        if self.dtype is not None:
            return self.dtype
        for weight in self.weights:
            if weight.dtype.kind == "f":
                return weight.dtype
        return get_default_dtype()

    def _modes(self):
        return [(layer, layer.training) for layer in self.modules()]

    # -- compile --------------------------------------------------------------------------------

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, jit: bool = False,
                jit_compile=None, **kwargs) -> None:
        """Choose the optimizer, the loss and the metrics for ``fit`` and ``evaluate``.

        Args:
            optimizer: an optimizer or its name (default "rmsprop", as in Keras); it is bound
                to the model's parameters on the first training batch (once they exist).
            loss: a loss object, its name ("categorical_crossentropy", "mse", ...) or a
                function ``loss(y_true, y_pred) -> scalar Tensor``.
            metrics: a list of metrics or names. "accuracy" (or "acc") becomes binary,
                categorical or sparse categorical accuracy according to the loss and to the
                shapes of the first batch, as in Keras; it keeps the name given.
            jit: trace the forward pass once per batch shape and replay it
                (:mod:`chainrule.models.traced`, :func:`chainrule.jit`): the same numbers as
                eager, with less Python per step. Keras's ``jit_compile=True`` means the same;
                its default "auto" and ``False`` leave the model eager.
            run_eagerly, steps_per_execution, auto_scale_loss: Keras arguments that mean
                nothing here; accepted and ignored.

        Compile again after freezing or unfreezing layers, so a fresh optimizer is bound to the
        new set of trainable parameters.
        """
        unknown = sorted(set(kwargs) - set(_IGNORED_COMPILE_ARGUMENTS))
        if unknown:
            raise TypeError(f"compile() got unexpected keyword argument(s) {unknown}")
        if isinstance(metrics, dict):
            raise TypeError("compile: metrics must be a list (one output); got a dict")
        self.optimizer = optimizers.get(optimizer)
        self.loss = None if loss is None else losses.get(loss)
        self._metric_specs = list(metrics or [])
        for spec in self._metric_specs:
            if isinstance(spec, metrics_module.ConfusionMatrix):
                raise ValueError("compile: ConfusionMatrix gives a matrix, not a number to log; "
                                 "use it on predict() outputs instead")
        self.compiled_metrics = None
        self.compiled = True
        self._ready = False
        if not isinstance(jit, bool):
            raise TypeError(f"compile: jit must be True or False, got {jit!r}")
        if jit_compile not in (None, True, False, "auto"):
            raise ValueError(f"compile: jit_compile must be True, False or 'auto' (Keras's), "
                             f"got {jit_compile!r}")
        self.jit = jit or jit_compile is True
        self._traced = None

    @property
    def metrics_names(self) -> list[str]:
        """``["loss", *metric names]``: the order of ``evaluate``'s list."""
        if self.compiled_metrics is not None:
            return ["loss", *(m.name for m in self.compiled_metrics)]
        return ["loss", *(_spec_name(spec) for spec in getattr(self, "_metric_specs", []))]

    def _require_compiled(self, what: str) -> None:
        if not self.compiled:
            raise RuntimeError(f"{what}: call model.compile(optimizer=..., loss=...) first")
        if self.loss is None:
            raise RuntimeError(f"{what}: the model was compiled without a loss; compile it with "
                               "loss=... (a name such as 'mse' or a loss object)")

    def _resolve_metrics(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        """Turn the metric names into metric objects, now that the shapes are known."""
        resolved = []
        for spec in self._metric_specs:
            if spec in ("accuracy", "acc"):
                resolved.append(metrics_module.resolve_accuracy(
                    spec, self.loss, np.shape(y_true), np.shape(y_pred)))
            else:
                resolved.append(metrics_module.get(spec))
        self.compiled_metrics = resolved

    def _prepare_training(self, y_true, y_pred) -> None:
        """Once per ``fit`` (after the first forward pass, when all weights exist): bind the
        optimizer, fix the metrics, and see whether any layer has a regularization loss."""
        try:
            self.optimizer.build(self.parameters())
        except ValueError as error:
            raise ValueError(f"{error} (compile the model again after changing which layers "
                             "are trainable)") from error
        if self.compiled_metrics is None:
            self._resolve_metrics(y_true, y_pred)
        self._regularized = self.regularization_loss().requires_grad
        self._watch_convergence = hasattr(self.optimizer, "converged")
        self._ready = True

    # -- fit ------------------------------------------------------------------------------------

    def fit(self, x=None, y=None, batch_size: int = 32, epochs: int = 1, verbose="auto",
            callbacks=None, validation_split: float = 0.0, validation_data=None,
            shuffle: bool = True, initial_epoch: int = 0, seed: int | None = None,
            validation_batch_size: int | None = None, validation_freq: int = 1,
            check_finite: bool = True, distributed=False) -> History:
        """Train for ``epochs`` passes over the data; return the :class:`History`.

        Args:
            x, y: arrays (or Tensors, or lists) of inputs and targets; or a
                :class:`~chainrule.data.DataLoader` or Dataset yielding ``(x, y)`` as ``x``
                (then ``y`` is None and ``batch_size``/``shuffle`` are the loader's own).
            batch_size: samples per step (default 32).
            epochs: the index of the last epoch (training runs from ``initial_epoch``).
            verbose: "auto" or 1: a progress bar on a terminal, one line per epoch otherwise;
                2: one line per epoch; 0: silent.
            callbacks: a list of :mod:`chainrule.callbacks` callbacks.
            validation_split: a fraction of the arrays, taken from their end *before*
                shuffling (Keras's rule), to validate on; warns if that tail's class mix is
                unlike the rest (sorted data).
            validation_data: ``(x_val, y_val)``, a Dataset or a DataLoader, scored after every
                epoch (overrides ``validation_split``).
            shuffle: visit the training samples in a new order every epoch (default True).
            initial_epoch: the epoch to start from (to resume a run).
            seed: seed of the shuffling order; None draws it from chainrule's generator (so
                :func:`chainrule.manual_seed` makes the run reproducible).
            validation_batch_size: the batch size for validation (default ``batch_size``).
            validation_freq: validate every this many epochs (default 1).
            check_finite: refuse input data holding NaN or infinite values before training,
                and stop training at a step whose loss is NaN or infinite, without applying
                its update (default True; see :mod:`chainrule.models.fit_state`).
            distributed: True (the job's :func:`chainrule.distributed.init`) or a
                :class:`~chainrule.distributed.Communicator`: data-parallel training over
                the ranks of an ``mpiexec`` job. Rank 0's initial weights are broadcast; every
                rank draws the same epoch order (root's seed) and takes its share of each
                global batch of ``batch_size · size`` samples; the optimizer averages the
                gradients (:func:`~chainrule.distributed.DistributedOptimizer`); the epoch
                logs are reduced over the ranks, so every rank logs the same numbers; each
                rank validates on all of the validation data; only rank 0 shows progress and
                runs the callbacks that write files (``root_only``). Alone, it changes
                nothing.

        Returns:
            the History; ``history.history`` holds one Python float per epoch for each of:
            ``loss`` (the mean training loss of the epoch, regularization included), every
            metric, ``val_loss`` and ``val_<metric>`` when validating, ``loss_ema`` (the
            training loss smoothed per step with an exponential moving average, β = 0.99,
            bias-corrected, as the thesis plots it; its value at the end of the epoch) and
            ``learning_rate`` (the rate used during the epoch).

        Training stops early when a callback sets ``model.stop_training``, when the
        optimizer reports ``converged`` (a :class:`~chainrule.optimizers.GradientDescent` with a
        ``goal``), or when a loss is not finite (``check_finite``): then the epoch ends after
        that step, and so does training. The first Ctrl-C also ends it after the step in
        progress, then raises KeyboardInterrupt (callbacks hear ``on_train_interrupt`` first).
        """
        self._require_compiled("fit")
        training.check_fit_arguments(epochs, initial_epoch, validation_freq)
        comm = _communicator(distributed)
        dtype = self._float_dtype()
        if validation_data is None and validation_split:
            (x, y), validation_data = training.split_tail(x, y, validation_split)
        if comm is not None:  # every rank draws the same orders: root's seed
            seed = comm.broadcast_object(_seed_for_all(seed))
        train_loader = training.make_loader(x, y, batch_size, shuffle, seed, dtype, "fit",
                                            check_finite)
        if comm is not None:
            from chainrule.distributed import shard_loader

            train_loader = shard_loader(train_loader, comm)
            callbacks, verbose = _callbacks_of_rank(callbacks, verbose, comm)
        val_loader = None
        if validation_data is not None:
            val_loader = training.validation_loader(
                validation_data, validation_batch_size or batch_size, dtype, check_finite)

        history = History()
        callback_list = CallbackList(
            _with_progress_bar(callbacks, verbose) + [history], model=self,
            params={"epochs": epochs, "steps": len(train_loader), "verbose": verbose,
                    "do_validation": val_loader is not None},
        )
        self.stop_training = False
        self._ready = False
        train_loader.skip_epochs(initial_epoch)  # the order of an uninterrupted run's epoch
        state = self.fit_state = FitState(self, train_loader, history, check_finite,
                                          initial_epoch)
        state.check_batches = check_finite and not training.is_array_loader(x)
        state.comm, state.dtype = comm, dtype
        modes = self._modes()
        epoch_logs: dict = {}
        try:
            with state.interruptible():
                callback_list.on_train_begin()
                state.apply_restore()
                self._bind_optimizer(state)
                if comm is not None:
                    self._join_job(state, comm)
                for epoch in range(state.epoch, epochs):
                    epoch_logs = self._fit_epoch(state, epoch, callback_list, val_loader,
                                                 validation_freq, dtype)
                    if state.interrupted or self.stop_training:
                        break
                if state.interrupted:
                    callback_list.on_train_interrupt()
                    raise KeyboardInterrupt(state.interrupt_message())
                callback_list.on_train_end(epoch_logs)
        finally:
            _restore_modes(modes)
            self.fit_state = None
        self.history = history
        return history

    def _bind_optimizer(self, state) -> None:
        """Bind the optimizer before the first step, so that a train_step of one's own can
        step it: a built model's parameters at once; a lazily built model is built first from
        one training sample (one forward pass in evaluation mode, drawing no random number)."""
        if not self.built:
            state._ready_to_load()
        elif not getattr(self.optimizer, "built", False):
            self.optimizer.build(self.parameters())
        self._watch_convergence = hasattr(self.optimizer, "converged")

    def _join_job(self, state, comm) -> None:
        """Data-parallel fit: build the model (from one sample), take rank 0's weights, and
        average the gradients in the optimizer."""
        from chainrule.distributed import DistributedOptimizer

        if not self.built or not getattr(self.optimizer, "built", False):
            state._ready_to_load()
        comm.broadcast_parameters(self)
        self.optimizer = DistributedOptimizer(self.optimizer, comm)

    def _agree_to_stop(self, state) -> None:
        """A data-parallel fit stops at the same step on every rank: when any rank's
        callbacks set ``stop_training``, or Ctrl-C reached any rank (one tiny Allreduce)."""
        flags = state.comm.allreduce_sum_(
            np.array([float(self.stop_training), float(state.interrupted)]))
        self.stop_training = bool(flags[0] > 0)
        state.interrupted = bool(flags[1] > 0)

    def _reduce_logs(self, comm) -> dict:
        """The epoch's logs over all ranks: the metrics' running sums (every number or array
        they hold) are summed across the ranks, then read."""
        sums = metric_sums(self)
        keys = [(name, key) for name in sums for key in sorted(sums[name])]
        parts = [np.asarray(sums[name][key], dtype=np.float64).reshape(-1) for name, key in keys]
        buffer = comm.allreduce_sum_(np.concatenate(parts) if parts else np.zeros(0))
        offset = 0
        for (name, key), part in zip(keys, parts):
            value = buffer[offset:offset + part.size]
            offset += part.size
            old = sums[name][key]
            sums[name][key] = (value.reshape(np.shape(old)).astype(old.dtype)
                               if isinstance(old, np.ndarray) else type(old)(value[0]))
        set_metric_sums(self, sums)
        return self._logs()

    def _fit_epoch(self, state, epoch, callback_list, val_loader, validation_freq, dtype):
        """One epoch of ``fit``: train, validate, log; returns the epoch logs (None when
        Ctrl-C stopped it in its middle: no validation, no ``on_epoch_end``)."""
        callback_list.on_epoch_begin(epoch)
        learning_rate = float(self.optimizer.learning_rate)
        self.train()
        epoch_logs = self._train_epoch(state, epoch, callback_list, dtype)
        if state.interrupted and state.step < state.steps_per_epoch:
            return None
        comm = getattr(state, "comm", None)
        if comm is not None:
            epoch_logs = self._reduce_logs(comm)
        if val_loader is not None and (epoch + 1) % validation_freq == 0:
            val_logs = self._evaluate_loader(val_loader, dtype)
            epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
        epoch_logs["loss_ema"] = (state.ema.value if comm is None else  # the ranks' mean
                                  float(comm.allreduce_sum_(np.array([state.ema.value]))[0]
                                        / comm.size))
        epoch_logs["learning_rate"] = learning_rate
        callback_list.on_epoch_end(epoch, epoch_logs)
        state.end_epoch()
        return epoch_logs

    def _train_epoch(self, state, epoch, callback_list, dtype) -> dict:
        """One pass over the epoch's order: the hot loop. Returns the epoch's loss and metrics.
        A step with a non-finite loss (``check_finite``) or a Ctrl-C ends it."""
        self._reset_metrics()
        start = state.begin_epoch(epoch)
        batch_hooks = callback_list.wants_batches("train")
        tracker, ema, check = self._loss_tracker, state.ema, state.check_finite
        for step, batch in enumerate(state.loader.batches(state.order, start), start):
            x, y = training.split_batch(batch, "fit")
            if y is None:
                raise ValueError("fit: the data yields no targets; give y, or batches (x, y)")
            if state.check_batches:
                training.check_finite_data(x, y, f"fit: batch {step + 1} of epoch {epoch + 1}")
            if batch_hooks:
                callback_list.on_train_batch_begin(step)
            loss_value = float(self.train_step((x, y))["loss"])
            state.step = step + 1
            tracker.update_state(loss_value, sample_weight=len(y))
            ema.update(loss_value)
            if batch_hooks:
                callback_list.on_train_batch_end(step, self._logs())
            if check and not math.isfinite(loss_value):
                state.stop_diverged(epoch, step, loss_value)
                self.stop_training = True
            if getattr(state, "comm", None) is not None:
                self._agree_to_stop(state)
            if self.stop_training or (self._watch_convergence and self.optimizer.converged):
                self.stop_training = True
                break
            if state.interrupted:
                break
        return self._logs()

    def train_step(self, data) -> dict:
        """One training step on a batch ``data = (x, y)`` of arrays (Keras's ``train_step``):
        forward, loss (plus the layers' regularization), backward, the optimizer's update, the
        metrics' update. Returns ``{"loss": value}``.

        ``fit`` and ``train_on_batch`` call it once per batch, and ``fit`` does nothing else
        per batch but call callbacks: override it to train differently (two optimizers, a
        loss of your own) and return at least the loss. Inside ``fit``, ``self.fit_state``
        says how: ``check_finite`` (a non-finite loss is returned without an update),
        ``comm`` (a data-parallel fit), ``dtype`` (the floating dtype of the inputs).
        """
        x, y = data
        state = self.fit_state
        if state is None:  # train_on_batch
            return {"loss": self._train_step(x, y, self._float_dtype())}
        return {"loss": self._train_step(x, y, state.dtype, skip_nonfinite=state.check_finite,
                                         comm=state.comm)}

    def _train_step(self, x: np.ndarray, y: np.ndarray, dtype,
                    skip_nonfinite: bool = False, comm=None) -> float:
        """forward, loss, backward, optimizer step, metrics: one batch. Returns the loss.
        With ``skip_nonfinite``, a NaN or infinite loss is returned at once: no backward, no
        update, no metrics. In a data-parallel fit (``comm``) all ranks skip together when
        any rank's loss is not finite (NaN is returned), and the optimizer learns how many
        samples this rank's gradient stands for."""
        x = training.cast_floats(x, dtype)
        y = training.cast_floats(y, dtype)
        x_on, y_on = training.to_device_of(self, x, y)  # the model's device (a no-op on CPU)
        loss, y_pred = self._forward_loss_step()(Tensor(x_on), Tensor(y_on))
        if not self._ready:
            self._prepare_training(y, _arrays_of(y_pred))
        if self._regularized:
            loss = loss + self.regularization_loss()
        value = float(loss.item())
        if skip_nonfinite:
            bad = not math.isfinite(value)
            if comm is not None and comm.any(bad):
                return value if bad else math.nan
            if bad:
                return value
        optimizer = self.optimizer
        if comm is not None:
            optimizer.local_samples = len(y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if comm is not None:
            self._average_buffers(comm)
        for metric in self.compiled_metrics:  # (a model of several outputs has none)
            metric.update_state(y, backend.to_numpy(y_pred.data))
        return value

    def forward_loss(self, x: Tensor, y: Tensor):
        """``(loss, y_pred)`` for a batch of Tensors: the part of a step that ``jit`` traces."""
        y_pred = self(x)
        return self.loss(y, y_pred), y_pred

    def _traced_steps(self):
        if getattr(self, "_traced", None) is None:
            from chainrule.models.traced import TracedSteps

            self._traced = TracedSteps(self)
        return self._traced

    def _forward_loss_step(self):
        """:meth:`forward_loss`, traced when the model was compiled with ``jit=True``."""
        return self._traced_or_eager("forward_loss", self.forward_loss)

    def _traced_or_eager(self, name: str, eager):
        """The traced step ``name`` of a model compiled with ``jit=True``, else ``eager``."""
        return getattr(self._traced_steps(), name) if getattr(self, "jit", False) else eager

    def _average_buffers(self, comm) -> None:
        """Data-parallel fit: the weights no gradient trains (batch norm's moving statistics,
        updated from each rank's own batch) are averaged over the ranks after every step, so
        every rank holds the same weights."""
        buffers = [w.data for w in self.non_trainable_weights if w.data.dtype.kind == "f"]
        if buffers:
            comm.allreduce_mean(buffers)

    def _reset_metrics(self) -> None:
        self._loss_tracker = metrics_module.Mean(name="loss")
        for metric in self.compiled_metrics or ():
            metric.reset_state()

    def _logs(self) -> dict:
        """``{"loss": ..., metric name: ...}`` as Python floats, from the running state."""
        logs = {"loss": self._loss_tracker.result()}
        for metric in self.compiled_metrics or ():
            logs[metric.name] = float(metric.result())
        return logs

    # -- evaluate -------------------------------------------------------------------------------

    def evaluate(self, x=None, y=None, batch_size: int = 32, verbose="auto",
                 return_dict: bool = False, callbacks=None):
        """The loss and metrics on ``(x, y)``, in evaluation mode, recording no graph.

        Args:
            x, y: arrays, or a Dataset / DataLoader yielding ``(x, y)`` as ``x``.
            batch_size: samples per batch (default 32).
            verbose: "auto" or 1: a progress bar on a terminal (one line otherwise); 0: silent.
            return_dict: return ``{"loss": ..., "accuracy": ...}`` instead of a list.
            callbacks: callbacks whose ``on_test_*`` hooks to run.

        Returns:
            the loss (a float) when there are no metrics, else ``[loss, *metrics]`` in the order
            of :attr:`metrics_names`; a dict with ``return_dict``.
        """
        self._require_compiled("evaluate")
        dtype = self._float_dtype()
        loader = training.make_loader(x, y, batch_size, False, None, dtype, "evaluate")
        callback_list = CallbackList(_with_progress_bar(callbacks, verbose), model=self,
                                     params={"steps": len(loader), "verbose": verbose})
        logs = self._evaluate_loader(loader, dtype, callback_list)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def _evaluate_loader(self, loader, dtype, callback_list=None) -> dict:
        """Score the model on every batch of ``loader`` (evaluation mode, no graph)."""
        callback_list = callback_list or CallbackList()
        batch_hooks = callback_list.wants_batches("test")
        modes = self._modes()
        self.eval()
        self._reset_metrics()
        callback_list.on_test_begin()
        try:
            with no_grad():
                for step, batch in enumerate(loader):
                    x, y = training.split_batch(batch, "evaluate")
                    if y is None:
                        raise ValueError("evaluate: the data yields no targets")
                    if batch_hooks:
                        callback_list.on_test_batch_begin(step)
                    self.test_step((x, y))
                    if batch_hooks:
                        callback_list.on_test_batch_end(step, self._logs())
        finally:
            _restore_modes(modes)
        logs = self._logs()
        callback_list.on_test_end(logs)
        return logs

    def test_step(self, data) -> dict:
        """One evaluation step on a batch ``data = (x, y)`` (Keras's ``test_step``): forward,
        loss, the metrics' update, in evaluation mode and recording no graph (``evaluate``
        sets both). Returns ``{"loss": value}``."""
        x, y = data
        return {"loss": self._test_step(x, y, self._float_dtype())}

    def predict_step(self, data) -> np.ndarray:
        """The outputs for one batch of inputs ``data`` (Keras's ``predict_step``), as a NumPy
        array; ``predict`` calls it in evaluation mode, recording no graph."""
        x = training.cast_floats(data, self._float_dtype())
        forward = self._traced_or_eager("forward", self)
        return backend.to_numpy(forward(Tensor(training.to_device_of(self, x))).data)

    def _test_step(self, x, y, dtype) -> float:
        y = training.cast_floats(y, dtype)
        x_on, y_on = training.to_device_of(self, training.cast_floats(x, dtype), y)
        loss, y_pred = self._forward_loss_step()(Tensor(x_on), Tensor(y_on))
        loss_value = float(loss.item())
        if self.compiled_metrics is None:
            self._resolve_metrics(y, _arrays_of(y_pred))
        self._loss_tracker.update_state(loss_value, sample_weight=len(y))
        for metric in self.compiled_metrics:
            metric.update_state(y, backend.to_numpy(y_pred.data))
        return loss_value

    # -- predict --------------------------------------------------------------------------------

    def predict(self, x, batch_size: int = 32, verbose=0, callbacks=None) -> np.ndarray:
        """The model's outputs for ``x`` as one NumPy array, in evaluation mode, recording no
        graph. ``x`` may be an array, a Dataset or a DataLoader (whose targets are ignored).
        ``verbose=1`` shows a progress bar (default 0: silent)."""
        dtype = self._float_dtype()
        loader = training.make_loader(x, None, batch_size, False, None, dtype, "predict")
        callback_list = CallbackList(_with_progress_bar(callbacks, verbose), model=self,
                                     params={"steps": len(loader), "verbose": verbose})
        batch_hooks = callback_list.wants_batches("predict")
        outputs = []
        modes = self._modes()
        self.eval()
        callback_list.on_predict_begin()
        try:
            with no_grad():
                for step, batch in enumerate(loader):
                    x_batch, _ = training.split_batch(batch, "predict")
                    outputs.append(self.predict_step(x_batch))
                    if batch_hooks:
                        callback_list.on_predict_batch_end(step)
        finally:
            _restore_modes(modes)
        callback_list.on_predict_end()
        if not outputs:
            raise ValueError("predict: the data is empty")
        return np.concatenate(outputs)

    def predict_mc(self, x, samples: int = 30, batch_size: int = 32, seed: int | None = None,
                   probabilities: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Monte-Carlo dropout (Gal & Ghahramani, 2016): the mean and the standard deviation
        of ``samples`` stochastic forward passes over ``x``.

        During the passes every Dropout layer is in training mode (a fresh mask per pass) and
        every other layer in evaluation mode: batch normalization uses its moving statistics
        and does not update them. No graph is recorded. Every layer's mode is restored
        afterwards, also on error. The model need not be compiled.

        Args:
            x: an array, a Dataset or a DataLoader (whose targets are ignored), as ``predict``.
            samples: T, the number of passes (≥ 1).
            batch_size: samples per batch (default 32).
            seed: seeds the dropout masks for a reproducible result; chainrule's global
                generator is left as it was. None: masks from chainrule's generator (and the
                layers' own seeded generators), advancing them.
            probabilities: False (default): average the outputs as ``predict`` gives them
                (logits stay logits). True: apply softmax along the last axis to each pass
                before averaging, the predictive distribution wanted for uncertainty (do not
                use it on a model that already ends in a softmax).

        Returns:
            ``(mean, std)``, arrays of ``predict``'s output shape: the mean over the T passes
            and their standard deviation (population, ddof = 0: zero when T = 1). With
            ``samples=1`` and no Dropout layer, ``mean`` equals ``predict(x)`` exactly.

        Raises:
            ValueError: ``samples`` is below 1, or the data is empty.
        """
        from chainrule.models.mc_dropout import mc_dropout_mode, seeded_masks, softmax

        if isinstance(samples, bool) or int(samples) != samples or samples < 1:
            raise ValueError(f"predict_mc: samples must be an integer ≥ 1, got {samples!r}")
        dtype = self._float_dtype()
        loader = training.make_loader(x, None, batch_size, False, None, dtype, "predict_mc")
        means, stds = [], []
        with mc_dropout_mode(self), seeded_masks(self, seed), no_grad():
            for batch in loader:
                x_batch = Tensor(training.to_device_of(self, training.cast_floats(
                    training.split_batch(batch, "predict_mc")[0], dtype)))
                passes = np.stack([self(x_batch).numpy() for _ in range(int(samples))])
                if probabilities:
                    passes = softmax(passes)
                means.append(passes.mean(axis=0))
                stds.append(passes.std(axis=0))
        if not means:
            raise ValueError("predict_mc: the data is empty")
        return np.concatenate(means), np.concatenate(stds)

    # -- one batch at a time --------------------------------------------------------------------

    def train_on_batch(self, x, y, reset_metrics: bool = True, return_dict: bool = False):
        """One training step on one batch; returns its loss (and metrics), like ``evaluate``.

        With ``reset_metrics=False`` the metrics accumulate over successive calls.
        """
        self._require_compiled("train_on_batch")
        if reset_metrics or not hasattr(self, "_loss_tracker"):
            self._ready = False
            self._reset_metrics()
        modes = self._modes()
        self.train()
        try:
            loss_value = float(self.train_step((training.as_array(x, "train_on_batch"),
                                                training.as_array(y, "train_on_batch")))["loss"])
        finally:
            _restore_modes(modes)
        self._loss_tracker.update_state(loss_value, sample_weight=len(y))
        return self._batch_result(return_dict)

    def test_on_batch(self, x, y, reset_metrics: bool = True, return_dict: bool = False):
        """The loss (and metrics) on one batch, in evaluation mode, recording no graph."""
        self._require_compiled("test_on_batch")
        if reset_metrics or not hasattr(self, "_loss_tracker"):
            self._reset_metrics()
        modes = self._modes()
        self.eval()
        try:
            with no_grad():
                self.test_step((training.as_array(x, "test_on_batch"),
                                training.as_array(y, "test_on_batch")))
        finally:
            _restore_modes(modes)
        return self._batch_result(return_dict)

    def predict_on_batch(self, x) -> np.ndarray:
        """The outputs for one batch as a NumPy array (evaluation mode, no graph)."""
        modes = self._modes()
        self.eval()
        try:
            with no_grad():
                x = training.cast_floats(training.as_array(x, "predict_on_batch"),
                                         self._float_dtype())
                return self(Tensor(training.to_device_of(self, x))).numpy()
        finally:
            _restore_modes(modes)

    def _batch_result(self, return_dict: bool):
        logs = self._logs()
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    # -- summary --------------------------------------------------------------------------------

    def _summary_rows(self) -> list:
        """(name, layer) for each row of the summary: the direct sub-layers."""
        return [(layer.name, layer) for _, layer in self.named_children()]

    def summary(self, line_length: int | None = None, print_fn=None) -> None:
        """Print Keras's table: each layer with its output shape and parameter count, then the
        total, trainable and non-trainable parameter counts.

        Args:
            line_length: the table's width (default 65, widened to fit long names).
            print_fn: called with the whole table (default ``print``).
        """
        if not self.built:
            raise ValueError(
                f"model '{self.name}' has not been built yet, so its shapes are unknown. Build it "
                "by calling it on a batch of data, with model.build(input_shape), or by giving "
                "the first layer input_shape=..."
            )
        text = "\n".join(summary_lines(self, self._summary_rows(), line_length or 65))
        (print_fn or print)(text)

    # -- saving ---------------------------------------------------------------------------------

    def save(self, filepath, overwrite: bool = True, include_optimizer: bool = True) -> None:
        """Save architecture (JSON), weights and optimizer state to one ``.npz`` (or
        ``.safetensors``) file, atomically; :func:`chainrule.models.load_model` reads it back.
        """
        from chainrule.models.saving import save_model

        save_model(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer)

    def save_weights(self, filepath, overwrite: bool = True) -> None:
        """Save every weight (``state_dict()``) to a ``.npz`` or ``.safetensors`` file (a
        Keras name such as ``.weights.h5`` holds an npz: see :mod:`chainrule.models.saving`)."""
        from chainrule.models import saving

        _check_overwrite(filepath, overwrite)
        metadata = {}
        if self.built and self._build_input_shape is not None:
            metadata["build_input_shape"] = list(self._build_input_shape)
        state = self.state_dict()
        saving.write_file(filepath, lambda path: io.save_weights(path, state, metadata=metadata))

    def load_weights(self, filepath, strict: bool = True):
        """Load weights saved by :meth:`save_weights` (or :meth:`save`) into this model.

        An unbuilt model is first built for the input shape stored in the file. Strict by
        default: names and shapes must match exactly. Returns ``(missing, unexpected)`` keys.
        """
        from chainrule.models import saving

        tree, metadata = saving.read_tree(filepath, with_metadata=True)
        if not isinstance(tree, dict) or not isinstance(tree.get("weights"), dict):
            raise io.FormatError(f"{os.fspath(filepath)}: holds no weights")
        shape = metadata.get("build_input_shape") or tree.get("build_input_shape")
        if not self.built and shape is not None:
            self.build(tuple(shape), tree.get("input_dtype"))
        return self.load_state_dict(tree["weights"], strict=strict)


# -- helpers --------------------------------------------------------------------------------------


def _arrays_of(y_pred):
    """The host arrays of a model's output: one, or a list for a model of several outputs."""
    if isinstance(y_pred, (list, tuple)):
        return [backend.to_numpy(t.data) for t in y_pred]
    return backend.to_numpy(y_pred.data)


def _communicator(distributed):
    """The communicator of a data-parallel fit, or None for an ordinary one."""
    if distributed is False or distributed is None:
        return None
    if distributed is True:
        from chainrule import distributed as distributed_module

        return distributed_module.init()
    if not hasattr(distributed, "allreduce_sum_"):
        raise TypeError(f"fit: distributed must be True, False or a "
                        f"chainrule.distributed.Communicator, got {distributed!r}")
    return distributed


def _seed_for_all(seed):
    """The loader's seed: the given one, or one drawn from chainrule's generator (on root its
    draw is the one every rank uses)."""
    from chainrule.random import get_generator

    return int(seed) if seed is not None else int(get_generator().integers(2**31 - 1))


def _callbacks_of_rank(callbacks, verbose, comm):
    """Rank 0 keeps every callback and the progress bar; the other ranks drop the callbacks
    that write files or print (``root_only = True``) and show no progress."""
    if comm.is_root:
        return callbacks, verbose
    return [cb for cb in (callbacks or []) if not getattr(cb, "root_only", False)], 0


def _restore_modes(modes) -> None:
    for layer, mode in modes:
        layer.training = mode


def _free_batch(shape):
    """The shape with its batch axis as None (a list of shapes element by element)."""
    if isinstance(shape, list):
        return [_free_batch(s) for s in shape]
    shape = tuple(shape)
    return (None, *shape[1:]) if shape else shape


def _spec_name(spec) -> str:
    if isinstance(spec, str):
        return spec
    return getattr(spec, "name", None) or getattr(spec, "__name__", type(spec).__name__)


def _with_progress_bar(callbacks, verbose) -> list:
    """The user's callbacks, with a ProgressBar first unless ``verbose`` is 0 or one is there."""
    callbacks = list(callbacks or [])
    if verbose == "auto":
        verbose = 1
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    if verbose and not any(isinstance(cb, ProgressBar) for cb in callbacks):
        callbacks.insert(0, ProgressBar(stream=sys.stdout, verbose=verbose))
    return callbacks


def _check_overwrite(filepath, overwrite: bool) -> None:
    if not overwrite and os.path.exists(os.fspath(filepath)):
        raise FileExistsError(f"{os.fspath(filepath)} exists; pass overwrite=True to replace it")


__all__ = ["Model"]
