"""Threading is the ops' business, not the model's: no Model or Layer hook decides it, and a
Dense layer after a Winograd convolution runs its product on BLAS's full thread count, in
``fit``, ``evaluate``, ``predict`` and a hand-written loop alike."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import kernels
from chainrule.kernels import threads
from chainrule.layers import Conv2D, Dense, Flatten, Layer
from chainrule.models import Model, Sequential
from chainrule.ops import conv_winograd

pytestmark = pytest.mark.usefixtures("each_kernels")


def blas_counts():
    return [library.get_num_threads() for library in threads._numpy_blas()]


class SpyDense(Dense):
    """A Dense layer that notes BLAS's thread counts and the kernels' workers as it runs."""

    def __init__(self, units):
        super().__init__(units)
        self.seen = []

    def forward(self, x):
        y = super().forward(x)  # (its product gets BLAS's threads back first: blas_for)
        self.seen.append((blas_counts(), kernels.workers()))
        return y


def winograd_cnn():
    """16 → 16 channels, 3 × 3: Winograd with the compiled kernels, then a Dense layer."""
    model = Sequential([Conv2D(16, 3, padding="same", activation="relu"), Flatten(),
                        SpyDense(8)])
    model.build((None, 16, 6, 6))
    model.compile(optimizer="sgd", loss=cr.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_no_model_or_layer_decides_threading():
    for name in ("prefers_own_threads", "_threads", "_own_threads_choice"):
        assert not hasattr(Model, name), name
    assert not hasattr(Layer, "runs_own_kernels")
    assert not hasattr(Conv2D, "runs_own_kernels")


def test_dense_after_winograd_keeps_blas_threads(rng, monkeypatch):
    inside_winograd = []
    forward = conv_winograd._forward

    def spy_forward(*args, **kwargs):
        inside_winograd.append((blas_counts(), kernels.workers()))
        return forward(*args, **kwargs)

    monkeypatch.setattr(conv_winograd, "_forward", spy_forward)
    monkeypatch.setattr(kernels.threads, "MIN_SHARED_WORK", 0)  # these sizes would not share
    monkeypatch.setattr(kernels.threads, "THREADED_PRODUCT", 0)  # nor these use BLAS's threads
    full = blas_counts()
    model = winograd_cnn()
    dense = model.layers[-1]
    dense.seen.clear()  # (build ran a forward pass)
    inside_winograd.clear()
    x = rng.standard_normal((8, 16, 6, 6)).astype(np.float32)
    y = rng.integers(0, 8, 8)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    model.evaluate(x, y, batch_size=4, verbose=0)
    model.predict(x, batch_size=4)
    loss = model.loss(cr.tensor(y[:4]), model(cr.tensor(x[:4])))  # a hand-written step
    loss.backward()

    assert dense.seen == [(full, 1)] * 7  # 2 + 2 + 2 batches, and the hand-written step
    if kernels.active() == "numba" and threads._numpy_blas():
        cores = max(1, min(full))
        assert inside_winograd == [([1] * len(full), cores)] * 7
    else:
        assert inside_winograd == []  # im2col with the NumPy kernels
