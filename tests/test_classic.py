"""Tests for chainrule.classic: the Perceptron and Adaline learning rules."""

from __future__ import annotations

import doctest
import warnings

import numpy as np
import pytest

from chainrule import classic
from chainrule.classic import Adaline, NotFittedError, Perceptron

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([0, 1, 1, 0])


def separable(n: int, d: int, margin: float = 0.5, seed: int = 0):
    """Points with |w*·x + b*| >= margin for a random unit w*, labelled by the side."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=d)
    w /= np.linalg.norm(w)
    b = 0.3
    X = rng.normal(size=(4 * n, d))
    s = X @ w + b
    keep = np.abs(s) >= margin
    X, s = X[keep][:n], s[keep][:n]
    return X, np.where(s > 0, 1, 0)


def noisy(n: int = 60, seed: int = 1):
    """A fixed, not linearly separable 3-D data set with a nonzero offset."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) + [1.0, 0.0, -0.5]
    y = (X @ [1.0, -2.0, 0.5] - 0.7 + 0.8 * rng.normal(size=n) > 0).astype(int)
    return X, y


def test_module_doctest_passes():
    result = doctest.testmod(classic)
    assert result.attempted > 0 and result.failed == 0


# ------------------------------------------------------------------------------ Perceptron


@pytest.mark.parametrize("d", [2, 20])
@pytest.mark.parametrize("shuffle", [True, False])
def test_perceptron_converges_on_separable_data(d, shuffle):
    X, y = separable(200, d)
    p = Perceptron(max_epochs=1000, shuffle=shuffle).fit(X, y)
    assert p.converged_
    assert p.errors_[-1] == 0 and all(e > 0 for e in p.errors_[:-1])
    assert p.n_iter_ == len(p.errors_) < 1000
    assert p.score(X, y) == 1.0
    assert p.coef_.shape == (d,) and isinstance(p.intercept_, float)


def test_perceptron_cycles_on_xor():
    p = Perceptron(max_epochs=50).fit(XOR_X, XOR_Y)
    assert not p.converged_
    assert p.n_iter_ == 50 and len(p.errors_) == 50
    assert min(p.errors_) > 0
    assert p.score(XOR_X, XOR_Y) < 1.0


def test_perceptron_update_on_boundary_and_predict_at_zero():
    # Both samples land exactly on the boundary (o == 0) when visited in epoch 1, one of each
    # class: both count as mistakes (t·o <= 0), as in scikit-learn.
    p = Perceptron(shuffle=False, max_epochs=10).fit([[1.0], [-1.0]], [1, -1])
    assert p.errors_ == [2, 0] and p.converged_
    np.testing.assert_allclose(p.coef_, [2.0])              # w: 0 → 1 → 2
    assert p.intercept_ == 0.0                              # b: 0 → 1 → 0
    # predict sends o == 0 to the negative class (classes_[0]), like scikit-learn
    assert p.decision_function([[0.0]])[0] == 0.0
    assert p.predict([[0.0]])[0] == -1


def test_perceptron_fit_intercept_false_keeps_zero_intercept():
    X, y = separable(100, 3)
    p = Perceptron(fit_intercept=False, max_epochs=5).fit(X, y)
    assert p.intercept_ == 0.0


@pytest.mark.parametrize("epochs", [1, 3, 10])
@pytest.mark.parametrize("rate", [1.0, 0.1])
def test_perceptron_matches_sklearn(epochs, rate):
    sklearn_linear = pytest.importorskip("sklearn.linear_model")
    X, y = noisy()
    ref = sklearn_linear.Perceptron(
        eta0=rate, penalty=None, shuffle=False, fit_intercept=True, max_iter=epochs, tol=None
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")              # ConvergenceWarning for small max_iter
        ref.fit(X, y)
    ours = Perceptron(learning_rate=rate, max_epochs=epochs, shuffle=False).fit(X, y)
    assert ours.n_iter_ == epochs
    np.testing.assert_allclose(ours.coef_, ref.coef_.ravel(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_[0], rtol=1e-12, atol=1e-12)
    assert ours.intercept_ != 0.0
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


def test_perceptron_matches_sklearn_on_converged_and():
    sklearn_linear = pytest.importorskip("sklearn.linear_model")
    y = [0, 0, 0, 1]
    ref = sklearn_linear.Perceptron(eta0=1.0, penalty=None, shuffle=False, max_iter=30, tol=None)
    ref.fit(XOR_X, y)
    ours = Perceptron(shuffle=False, max_epochs=30).fit(XOR_X, y)
    assert ours.converged_
    np.testing.assert_allclose(ours.coef_, ref.coef_.ravel())
    np.testing.assert_allclose(ours.intercept_, ref.intercept_[0])


# ------------------------------------------------------------------------------ Adaline


def standardized_noisy():
    X, y = noisy()
    return (X - X.mean(0)) / X.std(0), y


def test_adaline_batch_reaches_least_squares():
    X, y = standardized_noisy()
    a = Adaline(learning_rate=0.5, max_epochs=3000, mode="batch").fit(X, y)
    t = np.where(y == 1, 1.0, -1.0)
    solution = np.linalg.lstsq(np.c_[X, np.ones(len(X))], t, rcond=None)[0]
    np.testing.assert_allclose(a.coef_, solution[:-1], rtol=1e-4, atol=1e-10)
    np.testing.assert_allclose(a.intercept_, solution[-1], rtol=1e-4, atol=1e-10)
    assert not a.diverged_ and a.n_iter_ == 3000


def test_adaline_batch_cost_decreases_monotonically():
    X, y = standardized_noisy()
    a = Adaline(learning_rate=0.05, max_epochs=200).fit(X, y)
    assert len(a.cost_) == 200
    assert np.all(np.diff(a.cost_) < 0)


def test_adaline_tol_stops_early():
    X, y = standardized_noisy()
    a = Adaline(learning_rate=0.5, max_epochs=5000, tol=1e-8).fit(X, y)
    assert a.converged_ and a.n_iter_ < 5000
    assert a.cost_[-2] - a.cost_[-1] < 1e-8


@pytest.mark.parametrize("d", [2, 20])
def test_adaline_online_is_accurate_on_separable_data(d):
    X, y = separable(200, d, margin=1.0)
    a = Adaline(learning_rate=0.01, max_epochs=30, mode="online").fit(X, y)
    assert a.score(X, y) >= 0.95
    assert a.cost_[-1] < 0.5 * len(y) / 4                 # J(w=0, b=0) = n/2


def test_adaline_too_large_rate_diverges_without_warnings():
    X, y = standardized_noisy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        short = Adaline(learning_rate=5.0, max_epochs=20).fit(X, y)
        assert np.all(np.diff(short.cost_) > 0)            # the cost grows every epoch
        long = Adaline(learning_rate=5.0, max_epochs=10_000).fit(X, y)
        assert long.diverged_ and long.cost_[-1] == np.inf and long.n_iter_ < 10_000
        assert np.all(np.isfinite(long.coef_)) and np.isfinite(long.intercept_)
        long.predict(X)
        online = Adaline(learning_rate=50.0, max_epochs=10_000, mode="online").fit(X, y)
        assert online.diverged_ and online.cost_[-1] == np.inf


def test_adaline_decision_function_is_linear_output():
    X, y = standardized_noisy()
    a = Adaline(max_epochs=10).fit(X, y)
    np.testing.assert_allclose(a.decision_function(X), X @ a.coef_ + a.intercept_)


# ------------------------------------------------------------------------------ labels


@pytest.mark.parametrize("model", [Perceptron, Adaline])
@pytest.mark.parametrize(
    "labels", [(0, 1), (-1, 1), ("cat", "dog"), (3.5, -2.0)], ids=["01", "pm1", "str", "float"]
)
def test_labels_round_trip(model, labels):
    X, y01 = separable(100, 2, margin=1.0)
    y = np.array(labels, dtype=object if isinstance(labels[0], str) else None)[y01]
    kwargs = {"learning_rate": 0.1, "max_epochs": 200} if model is Adaline else {}
    m = model(**kwargs).fit(X, y)
    np.testing.assert_array_equal(m.classes_, np.unique(y))
    predicted = m.predict(X)
    assert set(predicted.tolist()) <= set(labels)
    assert m.score(X, y) >= 0.95


@pytest.mark.parametrize("model", [Perceptron, Adaline])
def test_three_classes_raise(model):
    with pytest.raises(ValueError, match=rf"{model.__name__} is a binary rule.*\[0, 1, 2\]"):
        model().fit(np.zeros((3, 2)), [0, 1, 2])


@pytest.mark.parametrize("model", [Perceptron, Adaline])
def test_one_class_raises(model):
    with pytest.raises(ValueError, match="exactly 2 classes"):
        model().fit(np.zeros((3, 2)), [1, 1, 1])


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize("model", [Perceptron, Adaline])
@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"learning_rate": float("inf")}, "learning_rate"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"max_epochs": 2.5}, "max_epochs"),
    ],
)
def test_bad_hyperparameters_raise(model, kwargs, word):
    with pytest.raises(ValueError, match=rf"{model.__name__}: {word}"):
        model(**kwargs)


def test_adaline_bad_mode_and_tol_raise():
    with pytest.raises(ValueError, match=r"Adaline: mode .*'stochastic'"):
        Adaline(mode="stochastic")
    with pytest.raises(ValueError, match="Adaline: tol"):
        Adaline(tol=-1.0)


@pytest.mark.parametrize("model", [Perceptron, Adaline])
@pytest.mark.parametrize(
    "X, y, pattern",
    [
        (np.zeros(4), [0, 1, 0, 1], "X must be 2-D"),
        (np.zeros((4, 2)), [0, 1, 0], r"len\(X\) != len\(y\)"),
        (np.zeros((0, 2)), [], "X is empty"),
        (np.array([[0.0, np.nan], [1.0, 1.0]]), [0, 1], "NaN or infinity"),
        (np.array([[0.0, np.inf], [1.0, 1.0]]), [0, 1], "NaN or infinity"),
    ],
)
def test_bad_training_data_raise(model, X, y, pattern):
    with pytest.raises(ValueError, match=rf"{model.__name__}: .*{pattern}"):
        model().fit(X, y)


@pytest.mark.parametrize("model", [Perceptron, Adaline])
def test_predict_before_fit_raises(model):
    m = model()
    for method in (m.predict, m.decision_function):
        with pytest.raises(NotFittedError, match=rf"{model.__name__} is not fitted.*`fit`"):
            method(np.zeros((2, 2)))
    with pytest.raises(RuntimeError, match="not fitted"):
        m.score(np.zeros((2, 2)), [0, 1])


@pytest.mark.parametrize("model", [Perceptron, Adaline])
def test_predict_with_wrong_number_of_features_raises(model):
    X, y = separable(50, 3)
    m = model(max_epochs=5).fit(X, y)
    with pytest.raises(ValueError, match=rf"{model.__name__}: X has 2 features.*fitted with 3"):
        m.predict(X[:, :2])
    with pytest.raises(ValueError, match="X must be 2-D"):
        m.predict(X[0])
