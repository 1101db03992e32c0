"""Monte-Carlo dropout's pieces (Gal & Ghahramani, 2016), used by
:meth:`chainrule.models.Model.predict_mc` and :class:`chainrule.models.Ensemble`: dropout on at
prediction time, masks from a seeded generator, and a NumPy softmax.

A module below both (it needs only the layers), so neither imports the other.
"""

from __future__ import annotations

import contextlib

import numpy as np

from chainrule import random as cr_random
from chainrule.layers.dropout import Dropout


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """softmax along ``axis`` of a NumPy array, the max subtracted first (stable)."""
    shifted = logits - np.max(logits, axis=axis, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / np.sum(exponentials, axis=axis, keepdims=True)


@contextlib.contextmanager
def mc_dropout_mode(model):
    """Within the block: every :class:`~chainrule.layers.Dropout` of ``model`` in training
    mode (masks drawn), every other layer in evaluation mode (batch normalization uses and
    leaves alone its moving statistics). Every layer's previous mode is restored on leaving,
    also when the block raises."""
    modes = [(layer, layer.training) for layer in model.modules()]
    try:
        for layer, _ in modes:
            layer.training = isinstance(layer, Dropout)
        yield model
    finally:
        for layer, mode in modes:
            layer.training = mode


@contextlib.contextmanager
def seeded_masks(model, seed: int | None):
    """Within the block, dropout masks come from generators seeded by ``seed`` (nothing
    changes when it is None): chainrule's global generator and the own generator of each
    seeded Dropout layer are replaced, and put back on leaving, so the global random stream
    outside the block is not disturbed."""
    if seed is None:
        yield
        return
    seeded = np.random.default_rng(seed)
    own = [layer for layer in model.modules()
           if isinstance(layer, Dropout) and layer._generator is not None]
    saved_own = [layer._generator for layer in own]
    try:
        with cr_random.using(seeded):
            for layer in own:
                layer._generator = np.random.default_rng(seeded.integers(2**63))
            yield
    finally:
        for layer, generator in zip(own, saved_own):
            layer._generator = generator
