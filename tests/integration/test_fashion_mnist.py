"""The real data: the zoo's MLP learns Fashion-MNIST in one epoch of fit."""

from __future__ import annotations

from pathlib import Path

import pytest

import chainrule as cr
from chainrule import commands, zoo
from chainrule.datasets import _common, fashion_mnist


def _load():
    """The real data from the cache or Debian's folder (never downloaded in a test)."""
    folders = [_common.cache_dir(fashion_mnist.NAME), *map(Path, fashion_mnist.SYSTEM_DIRS)]
    for folder in folders:
        if all((folder / name).is_file() for name in fashion_mnist.MD5):
            return fashion_mnist.load_data(path=folder)
    pytest.skip("Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist "
                "(or make data)")


def test_mlp_learns_fashion_mnist_in_one_epoch():
    (x_train, y_train), (x_test, y_test) = _load()
    x_train = commands.prepare_inputs(x_train, 255.0, (784,))
    x_test = commands.prepare_inputs(x_test, 255.0, (784,))
    cr.manual_seed(0)
    model = zoo.compile_for_classification(zoo.build("mlp", (784,)), "adam", 1e-3)
    history = model.fit(x_train, y_train, batch_size=128, epochs=1, seed=0, verbose=0)
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    assert history.history["accuracy"][0] > 0.75
    assert accuracy >= 0.83, f"test accuracy {accuracy:.4f} after one epoch"
    assert loss < 0.5
