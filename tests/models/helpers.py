"""Small problems and models shared by the model tests."""

from __future__ import annotations

import numpy as np

from chainrule.callbacks import Callback
from chainrule.layers import Dense
from chainrule.losses import SparseCategoricalCrossentropy
from chainrule.models import Sequential
from chainrule.optimizers import Adam


def blobs(n=120, classes=3, features=4, seed=0, dtype=np.float32):
    """Well separated Gaussian blobs: (x, integer labels), classes interleaved."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(classes, features))
    y = np.arange(n) % classes
    x = centers[y] + rng.normal(size=(n, features))
    return x.astype(dtype), y.astype(np.int64)


def mlp(features=4, classes=3, hidden=16, compile_=True, optimizer=None, **layer_kwargs):
    """Dense(hidden, relu) – Dense(classes) on logits; Adam(0.01) unless ``optimizer``."""
    model = Sequential([Dense(hidden, activation="relu", input_shape=(features,), **layer_kwargs),
                        Dense(classes)])
    if compile_:
        model.compile(optimizer=optimizer or Adam(learning_rate=0.01),
                      loss=SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


class Killed(Exception):
    """Stands for a kill -9: fit ends at once, with nothing more saved."""


class KillAt(Callback):
    """Raise :class:`Killed` at the end of global training step ``at`` (counted from 1)."""

    def __init__(self, at: int):
        super().__init__()
        self.at, self.seen = at, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.at:
            raise Killed(f"killed after step {self.at}")
