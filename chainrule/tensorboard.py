"""TensorBoard: write the epoch logs, weight histograms and hyper-parameters of ``fit``.

:class:`TensorBoard` is Keras's callback of that name, writing event files through
`tensorboardX <https://github.com/lanpa/tensorboardX>`_ (``pip install 'chainrule[track]'``),
which is imported only when training starts. What it writes where, for ``log_dir="logs"``:

==========================  ==============================================================
``logs/train/``             ``epoch_<name>`` for each training value of the epoch logs
                            (``epoch_loss``, ``epoch_accuracy``, ``epoch_loss_ema``), and
                            ``epoch_learning_rate``; with ``histogram_freq=k`` a histogram of
                            every trainable weight every ``k`` epochs, tagged with its name
                            path (``layers/0/kernel`` for ``named_parameters()``'s
                            ``layers.0.kernel``)
``logs/validation/``        ``epoch_<name>`` for each ``val_<name>`` (``val_loss`` is
                            ``epoch_loss`` here, so TensorBoard draws it over the training one)
``logs/train/hparams/``     with ``hparams=``: one HParams-plugin session at the end of
                            training, with the final logs as metrics ``hparam/<name>``
``logs/<trial>/...``        passed to a search's ``search(..., callbacks=[board])``: each
                            trial's events under its own folder, with its hyper-parameters
                            as ``hparams`` (:meth:`TensorBoard.for_trial`)
==========================  ==============================================================

The step of every value is the epoch index (0 for the first epoch). View them with
``tensorboard --logdir logs``.

>>> from chainrule.tensorboard import TensorBoard
>>> board = TensorBoard(log_dir="logs/run1", histogram_freq=1, hparams={"units": 8})
>>> board.log_dir, board.histogram_freq
('logs/run1', 1)

and then ``model.fit(x, y, epochs=10, validation_data=(xv, yv), callbacks=[board])``.
"""

from __future__ import annotations

import numbers
import os
import warnings

from chainrule._extras import require
from chainrule.callback_base import Callback


def import_summary_writer():
    """tensorboardX's ``SummaryWriter``, or an ImportError that names the extra to install
    (``[track]``)."""
    return require("tensorboardX", "track", "chainrule.tensorboard.TensorBoard").SummaryWriter


class TensorBoard(Callback):
    """Write TensorBoard event files during ``fit`` (Keras's ``TensorBoard`` callback).

    Args:
        log_dir: the folder of the event files; training values go to ``log_dir/train``,
            validation values to ``log_dir/validation`` (see the module's table).
        histogram_freq: every how many epochs to write a histogram of each trainable weight
            (epochs 0, k, 2k, ...); 0 writes none.
        write_graph: accepted for Keras compatibility; chainrule has no graph to write, so
            ``True`` only warns.
        hparams: ``{name: value}`` of hyper-parameters (str, int, float or bool values), written
            once at the end of training with the final epoch logs as metrics, for TensorBoard's
            HParams dashboard.

    The writers are flushed and closed at the end of training; :meth:`close` does the same
    (for example after ``fit`` raised) and may be called any number of times.
    """

    root_only = True  # in a data-parallel fit, only rank 0 writes events

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=False, hparams=None):
        super().__init__()
        if not isinstance(log_dir, (str, os.PathLike)):
            raise TypeError(f"TensorBoard: log_dir must be a str or path, got {log_dir!r}")
        if (not isinstance(histogram_freq, numbers.Integral) or isinstance(histogram_freq, bool)
                or histogram_freq < 0):
            raise ValueError(f"TensorBoard: histogram_freq must be an int >= 0, "
                             f"got {histogram_freq!r}")
        if not isinstance(write_graph, bool):
            raise TypeError(f"TensorBoard: write_graph must be a bool, got {write_graph!r}")
        if hparams is not None:
            if not isinstance(hparams, dict):
                raise TypeError(f"TensorBoard: hparams must be a dict of name -> value, "
                                f"got {hparams!r}")
            for key, value in hparams.items():
                if not isinstance(key, str):
                    raise TypeError(f"TensorBoard: hparams names must be str, got {key!r}")
                if not isinstance(value, (bool, numbers.Integral, numbers.Real, str)):
                    raise TypeError(f"TensorBoard: hparams[{key!r}] must be an int, float, str "
                                    f"or bool, got {value!r}")
        if write_graph:
            warnings.warn("TensorBoard: write_graph=True is ignored: chainrule writes no graph",
                          stacklevel=2)
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = int(histogram_freq)
        self.write_graph = write_graph
        self.hparams = None if hparams is None else {k: _plain(v) for k, v in hparams.items()}
        self._writers: dict = {}
        self._summary_writer = None  # tensorboardX's SummaryWriter, imported at train begin

    def for_trial(self, name: str, hparams: dict) -> TensorBoard:
        """This callback for one trial of a hyper-parameter search (``chainrule.tuning``
        calls it): events go to ``log_dir/<name>``, with the trial's hyper-parameters (added
        to this callback's own) for the HParams dashboard, as KerasTuner does."""
        merged = {**(self.hparams or {}), **{key: _hparam(value)
                                             for key, value in hparams.items()}}
        return TensorBoard(os.path.join(self.log_dir, name), self.histogram_freq,
                           hparams=merged)

    # -- writers ----------------------------------------------------------------------------

    def _writer(self, name: str):
        """The writer of ``log_dir/<name>`` ("train" or "validation"), opened when first used."""
        if name not in self._writers:
            if self._summary_writer is None:
                self._summary_writer = import_summary_writer()
            self._writers[name] = self._summary_writer(os.path.join(self.log_dir, name))
        return self._writers[name]

    def close(self) -> None:
        """Flush and close the writers; safe to call again, or when none is open."""
        writers, self._writers = self._writers, {}
        for writer in writers.values():
            writer.close()

    # -- hooks ------------------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        self.close()  # writers a previous fit left open (it raised before on_train_end)
        self._summary_writer = import_summary_writer()
        self._writer("train")

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            value = _number(value)
            if value is None:
                continue
            if key.startswith("val_"):
                self._writer("validation").add_scalar(f"epoch_{key[4:]}", value, epoch)
            else:
                self._writer("train").add_scalar(f"epoch_{key}", value, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._write_histograms(epoch)

    def on_train_end(self, logs=None):
        try:
            if self.hparams is not None and "train" in self._writers:
                metrics = {f"hparam/{key}": number for key, value in (logs or {}).items()
                           if (number := _number(value)) is not None}
                self._writers["train"].add_hparams(dict(self.hparams), metrics, name="hparams")
        finally:
            self.close()

    def _write_histograms(self, epoch: int) -> None:
        writer = self._writer("train")
        for name, weight in self.model.named_parameters():
            values = weight.numpy() if hasattr(weight, "numpy") else weight
            writer.add_histogram(name.replace(".", "/"), values, epoch)

    def __repr__(self) -> str:
        return (f"TensorBoard(log_dir={self.log_dir!r}, histogram_freq={self.histogram_freq}, "
                f"write_graph={self.write_graph}, hparams={self.hparams!r})")


def _number(value):
    """``value`` as a Python float when it is a real number (or a one-element array), else None."""
    if isinstance(value, (bool, str, bytes)):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _hparam(value):
    """A searched value as an HParams value: numbers and str as they are, others as text."""
    if isinstance(value, (bool, str, numbers.Real)):
        return value
    return str(value)


def _plain(value):
    """A NumPy scalar hyper-parameter as the Python value tensorboardX expects."""
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value)
