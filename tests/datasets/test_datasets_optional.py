"""Loaders built on optional packages: mnist1d and scikit-learn's digits."""

import random
import sys

import numpy as np
import pytest

from chainrule.datasets import digits, mnist1d


def test_mnist1d_shapes_dtypes_and_no_side_effects():
    pytest.importorskip("mnist1d", reason="needs the mnist1d package: pip install chainrule[data]")
    np.random.seed(123)
    random.seed(123)
    numpy_before, python_before = np.random.random(), random.random()
    np.random.seed(123)
    random.seed(123)
    (x_train, y_train), (x_test, y_test) = mnist1d.load_data()
    assert np.random.random() == numpy_before and random.random() == python_before
    assert x_train.shape == (4000, 40) and x_test.shape == (1000, 40)
    assert x_train.dtype == np.float32 and y_train.dtype == np.uint8
    assert y_train.shape == (4000,) and y_test.shape == (1000,)
    assert set(np.unique(y_train)) == set(range(10))
    # Deterministic, and every call returns fresh arrays.
    (x_again, _), _ = mnist1d.load_data()
    np.testing.assert_array_equal(x_again, x_train)
    x_again[0, 0] = 1e9
    assert mnist1d.load_data()[0][0][0, 0] != 1e9


def test_mnist1d_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(ImportError, match=r"pip install chainrule\[data\]"):
        mnist1d._generate.__wrapped__()


def test_digits_stratified_seeded_split():
    pytest.importorskip("sklearn", reason="needs scikit-learn: pip install chainrule[data]")
    (x_train, y_train), (x_test, y_test) = digits.load_data()
    assert x_train.shape == (1437, 8, 8) and x_test.shape == (360, 8, 8)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert x_train.max() == 16
    all_counts = np.bincount(np.concatenate([y_train, y_test]))
    assert np.all(np.abs(np.bincount(y_test) - all_counts * 0.2) <= 1)
    (x2, y2), _ = digits.load_data()
    np.testing.assert_array_equal(x2, x_train)
    (_, _), (x3, _) = digits.load_data(test_size=100, seed=1)
    assert len(x3) == 100


def test_digits_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install chainrule\[data\]"):
        digits.load_data()
