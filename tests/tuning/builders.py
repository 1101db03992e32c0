"""Model builders for the search tests: module-level, so that worker processes import them."""

from __future__ import annotations

import numpy as np

from chainrule import losses
from chainrule.layers import Dense
from chainrule.models import Input, Sequential
from chainrule.optimizers import SGD


def mlp(hp: dict):
    """A one-hidden-layer MLP on 8 features, 3 classes, with the hp's rate and width."""
    model = Sequential([Input(shape=(8,)), Dense(hp.get("units", 8), activation="relu"),
                        Dense(3)])
    model.compile(optimizer=SGD(learning_rate=hp["lr"], momentum=0.9),
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def uncompiled(hp: dict):
    return Sequential([Input(shape=(8,)), Dense(3)])


def blobs(n: int = 150, seed: int = 0):
    """Three Gaussian blobs in 8-D: easy with a good rate, not with a tiny one."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centres = rng.normal(scale=3.0, size=(3, 8))
    x = (centres[y] + rng.normal(size=(n, 8))).astype(np.float32)
    return x, y.astype(np.int64)
