"""chainrule.utils: Keras's keras.utils names."""

from __future__ import annotations

import random
import shutil

import numpy as np
import pytest

import chainrule as cr
from chainrule import utils
from chainrule.layers import Concatenate, Dense
from chainrule.models import Input, Model, Sequential


def test_to_categorical_as_keras():
    out = utils.to_categorical([0, 2, 1])
    assert out.dtype == np.float32 and out.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
    assert utils.to_categorical(np.array([[3], [1]]), num_classes=5).shape == (2, 5)
    with pytest.raises(ValueError):
        utils.to_categorical([0, 7], num_classes=3)


def test_normalize():
    out = utils.normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    np.testing.assert_allclose(utils.normalize([[1.0, 3.0]], order=1), [[0.25, 0.75]])
    np.testing.assert_allclose(utils.normalize([[3.0], [4.0]], axis=0), [[0.6], [0.8]])


def test_set_random_seed_seeds_chainrule_numpy_and_python():
    def draws():
        return (cr.randn(3).numpy().tolist(), np.random.rand(), random.random(),
                Dense(2, input_shape=(3,)).kernel.numpy().tolist())

    utils.set_random_seed(7)
    first = draws()
    utils.set_random_seed(7)
    assert draws() == first
    utils.set_random_seed(8)
    assert draws() != first
    with pytest.raises(ValueError, match="seed"):
        utils.set_random_seed(-1)


def small_functional():
    a, b = Input(shape=(3,), name="left"), Input(shape=(2,), name="right")
    joined = Concatenate(name="join")([Dense(4, name="da")(a), b])
    return Model([a, b], Dense(1, name="out")(joined), name="net")


def test_model_to_dot_draws_the_graph():
    text = utils.model_to_dot(small_functional(), show_shapes=True)
    assert text.startswith("digraph")
    for label in ("left (InputLayer)", "join (Concatenate)", "output (None, 1)"):
        assert label in text
    assert text.count("->") == 4  # left→da, da→join, right→join, join→out
    chain = utils.model_to_dot(Sequential([Input(shape=(3,)), Dense(2), Dense(1)]))
    assert chain.count("->") == 1  # dense → dense (a Sequential's layers, in order)
    with pytest.raises(ValueError, match="rankdir"):
        utils.model_to_dot(small_functional(), rankdir="XY")


def test_plot_model_writes_dot_text(tmp_path):
    path = utils.plot_model(small_functional(), to_file=str(tmp_path / "model.dot"))
    assert open(path).read().startswith("digraph")
    with pytest.raises(ValueError, match=r"\.png"):
        utils.plot_model(small_functional(), to_file=str(tmp_path / "model.xyz"))


def test_plot_model_png_needs_graphviz(tmp_path, monkeypatch):
    from chainrule.viz import GraphvizNotFoundError

    if shutil.which("dot") is not None:
        path = utils.plot_model(small_functional(), to_file=str(tmp_path / "model.png"))
        assert open(path, "rb").read(4) == b"\x89PNG"
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(GraphvizNotFoundError, match="apt-get install graphviz"):
        utils.plot_model(small_functional(), to_file=str(tmp_path / "model.png"))
