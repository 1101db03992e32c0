"""The base class of every callback: the hooks ``fit``, ``evaluate`` and ``predict`` call.

In a module of its own, below :mod:`chainrule.callbacks` (the Keras callbacks and the list
that runs them) and :mod:`chainrule.tensorboard`, so both can subclass it without importing
each other.
"""

from __future__ import annotations


class Callback:
    """Base class: override the hooks you need; each gets the shared ``logs`` dict.

    Attributes:
        model: the model being trained (set by ``fit``).
        params: ``{"epochs": ..., "steps": ..., "verbose": ...}`` of the current call.
    """

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs=None): ...

    def on_train_end(self, logs=None): ...

    def on_train_interrupt(self, logs=None):
        """chainrule's hook: Ctrl-C stopped ``fit`` after a whole step (the model and the
        optimizer are consistent; ``model.fit_state`` says where). ``on_train_end`` is not
        called; KeyboardInterrupt follows."""

    def on_epoch_begin(self, epoch, logs=None): ...

    def on_epoch_end(self, epoch, logs=None): ...

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs)

    def on_batch_begin(self, batch, logs=None):
        """Keras's older name of :meth:`on_train_batch_begin`."""

    def on_batch_end(self, batch, logs=None):
        """Keras's older name of :meth:`on_train_batch_end`."""

    def on_test_begin(self, logs=None): ...

    def on_test_end(self, logs=None): ...

    def on_test_batch_begin(self, batch, logs=None): ...

    def on_test_batch_end(self, batch, logs=None): ...

    def on_predict_begin(self, logs=None): ...

    def on_predict_end(self, logs=None): ...

    def on_predict_batch_begin(self, batch, logs=None): ...

    def on_predict_batch_end(self, batch, logs=None): ...
