"""Model.prefers_own_threads: which models run their steps inside kernels.own_threads, and that
fit, evaluate and predict do."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import kernels
from chainrule.layers import Conv2D, Dense, Flatten, Layer, MaxPooling2D
from chainrule.models import Sequential

pytestmark = pytest.mark.usefixtures("each_kernels")


class RecordWorkers(Layer):
    """Passes its input through, noting how many threads the kernels may use at that moment."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(kernels.workers())
        return x


def cnn(first_kernel=3, channels=1):
    model = Sequential([Conv2D(4, first_kernel, padding="same", activation="relu"),
                        MaxPooling2D(2), Flatten(), RecordWorkers(), Dense(3)])
    model.build((None, channels, 6, 6))
    model.compile(optimizer="sgd", loss=cr.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def compiled_and_threadpoolctl():
    return kernels.active() == "numba" and bool(kernels.threads._blas())


def test_which_models_prefer_chainrule_threads():
    compiled = kernels.active() == "numba"
    assert cnn().prefers_own_threads() == compiled          # direct sums for 1 channel
    assert not cnn(first_kernel=5).prefers_own_threads()    # im2col: BLAS products
    mlp = Sequential([Dense(8, activation="relu"), Dense(2)])
    mlp.build((None, 4))
    assert not mlp.prefers_own_threads()
    assert not Sequential([Conv2D(2, 3)]).prefers_own_threads()  # not built: no choice yet


def test_fit_evaluate_and_predict_run_the_steps_inside_own_threads(rng):
    model = cnn()
    recorder = model.layers[3]
    recorder.seen.clear()  # (build ran a forward pass)
    x = rng.standard_normal((8, 1, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    model.evaluate(x, y, batch_size=4, verbose=0)
    model.predict(x, batch_size=4)
    expected = max(1, min(lib.get_num_threads() for lib in kernels.threads._blas())) \
        if compiled_and_threadpoolctl() else 1
    assert recorder.seen == [expected] * 6
    assert kernels.workers() == 1  # and nothing outside the steps
