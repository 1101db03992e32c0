"""The classic learning rules: Rosenblatt's Perceptron and Widrow–Hoff's Adaline.

These two linear binary classifiers are the lectures' first learners, written in plain NumPy
(no autograd) with a scikit-learn-style interface: ``fit(X, y)``, ``predict(X)``,
``decision_function(X)``, ``score(X, y)`` (accuracy) and the fitted attributes ``classes_``,
``coef_`` (shape ``(n_features,)``), ``intercept_`` (a float), ``n_iter_`` and ``converged_``.

Labels may be any two values ({0, 1}, {-1, 1}, strings...). ``classes_`` holds them sorted
(like scikit-learn); internally ``classes_[0]`` becomes -1 and ``classes_[1]`` becomes +1.
Both rules are binary: more than two classes raise ``ValueError`` (one-vs-rest is not provided).

Both use the linear output ``o = w·x + b`` and predict ``classes_[1]`` when ``o > 0`` and
``classes_[0]`` otherwise (so a point exactly on the boundary goes to the negative class, as in
scikit-learn). They differ in what they learn from:

* Perceptron (mistake-driven): for each sample in turn, if ``y·(w·x + b) <= 0`` (a mistake, or
  a point on the boundary) then ``w ← w + η·y·x`` and ``b ← b + η·y``. ``errors_`` counts
  these updates per epoch.
* Adaline (delta rule, gradient descent on ``J = ½ Σ (y − o)²`` with no threshold during
  learning): batch mode ``w ← w + η·mean((y − o)·x)``, ``b ← b + η·mean(y − o)``; online mode
  ``w ← w + η·(y_i − o_i)·x_i``, ``b ← b + η·(y_i − o_i)`` per sample. ``cost_`` records ``J``
  per epoch.

Example (the logical AND, linearly separable):

>>> import numpy as np
>>> from chainrule.classic import Perceptron, Adaline
>>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
>>> y = np.array([0, 0, 0, 1])
>>> p = Perceptron(shuffle=False).fit(X, y)
>>> p.predict(X).tolist(), p.converged_, p.errors_
([0, 0, 0, 1], True, [2, 3, 3, 2, 2, 3, 2, 1, 0])
>>> p.coef_.tolist(), p.intercept_
([3.0, 2.0], -4.0)
>>> a = Adaline(learning_rate=0.5, max_epochs=500, shuffle=False).fit(X, y)
>>> a.predict(X).tolist(), round(a.score(X, y), 2)
([0, 0, 0, 1], 1.0)
"""

from __future__ import annotations

import numpy as np

__all__ = ["Adaline", "NotFittedError", "Perceptron"]


class NotFittedError(RuntimeError):
    """Raised when ``predict``/``decision_function``/``score`` is called before ``fit``."""


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def _check_rate(owner: str, learning_rate) -> float:
    """Return ``learning_rate`` as a float; it must be finite and > 0."""
    rate = float(learning_rate)
    if not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"{owner}: learning_rate must be finite and > 0, got {learning_rate!r}")
    return rate


def _check_epochs(owner: str, max_epochs) -> int:
    """Return ``max_epochs`` as an int; it must be >= 1."""
    if isinstance(max_epochs, bool) or int(max_epochs) != max_epochs or max_epochs < 1:
        raise ValueError(f"{owner}: max_epochs must be an integer >= 1, got {max_epochs!r}")
    return int(max_epochs)


def _check_X(owner: str, X, n_features: int | None = None) -> np.ndarray:
    """Return ``X`` as a finite, non-empty float64 array of shape (n_samples, n_features)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{owner}: X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{owner}: X is empty (shape {X.shape})")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{owner}: X contains NaN or infinity")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(
            f"{owner}: X has {X.shape[1]} features, but the model was fitted with {n_features}"
        )
    return X


def _encode_labels(owner: str, y, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(classes_, t)``: the two sorted labels, and ``t`` in {-1, +1} with
    ``classes_[0]`` ↦ -1 and ``classes_[1]`` ↦ +1."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{owner}: y must be 1-D, got shape {y.shape}")
    if len(y) != n_samples:
        raise ValueError(
            f"{owner}: X has {n_samples} samples but y has {len(y)} (len(X) != len(y))"
        )
    classes = np.unique(y)
    if len(classes) != 2:
        raise ValueError(
            f"{owner} is a binary rule and needs exactly 2 classes in y, found {len(classes)}: "
            f"{classes.tolist()} (one-vs-rest is not provided)"
        )
    t = np.where(y == classes[1], 1.0, -1.0)
    return classes, t


# --------------------------------------------------------------------------------------------
# Shared linear binary classifier
# --------------------------------------------------------------------------------------------


class _LinearBinaryRule:
    """Shared parts: argument checks, label mapping, ``decision_function``/``predict``/``score``."""

    def __init__(self, learning_rate, max_epochs, shuffle, seed, fit_intercept):
        owner = type(self).__name__
        self.learning_rate = _check_rate(owner, learning_rate)
        self.max_epochs = _check_epochs(owner, max_epochs)
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.fit_intercept = bool(fit_intercept)

    def _prepare(self, X, y) -> tuple[np.ndarray, np.ndarray]:
        """Check the training data, set ``classes_``, reset ``coef_ = 0``, ``intercept_ = 0``."""
        owner = type(self).__name__
        X = _check_X(owner, X)
        self.classes_, t = _encode_labels(owner, y, X.shape[0])
        self.coef_ = np.zeros(X.shape[1])
        self.intercept_ = 0.0
        self.n_features_in_ = X.shape[1]
        self.converged_ = False
        return X, t

    def _order(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """The sample order for one epoch: a fresh permutation if ``shuffle``, else 0..n-1."""
        return rng.permutation(n) if self.shuffle else np.arange(n)

    def decision_function(self, X) -> np.ndarray:
        """The linear output ``o = X @ coef_ + intercept_`` (> 0 means ``classes_[1]``)."""
        if not hasattr(self, "coef_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet: call `fit` first"
            )
        X = _check_X(type(self).__name__, X, self.n_features_in_)
        return X @ self.coef_ + self.intercept_

    def predict(self, X) -> np.ndarray:
        """``classes_[1]`` where ``o > 0``, else ``classes_[0]`` (sign(0) counts as -1)."""
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]

    def score(self, X, y) -> float:
        """Accuracy: the fraction of samples where ``predict(X) == y``."""
        y = np.asarray(y)
        predicted = self.predict(X)
        if len(y) != len(predicted):
            raise ValueError(
                f"{type(self).__name__}: X has {len(predicted)} samples but y has {len(y)} "
                "(len(X) != len(y))"
            )
        return float(np.mean(predicted == y))


# --------------------------------------------------------------------------------------------
# Perceptron
# --------------------------------------------------------------------------------------------


class Perceptron(_LinearBinaryRule):
    """Rosenblatt's perceptron rule (mistake-driven, one sample at a time).

    With ``t`` in {-1, +1} (``classes_[1]`` ↦ +1) and ``o = w·x + b``, each epoch visits every
    sample once (in a fresh random order when ``shuffle``, seeded by ``seed``) and applies::

        if t·(w·x + b) <= 0:          # a mistake, or a point on the boundary
            w ← w + η·t·x
            b ← b + η·t               # only when fit_intercept

    Decision at 0: a sample with ``w·x + b == 0`` counts as a mistake for *both* classes and
    triggers an update (this is exactly scikit-learn's ``Perceptron``: SGD on the loss
    ``max(0, −t·o)`` updates when ``t·o <= 0``), while ``predict`` sends ``o == 0`` to
    ``classes_[0]`` (like scikit-learn, which predicts the positive class only when ``o > 0``).
    In particular the first sample always triggers an update from ``w = 0``.

    ``errors_[k]`` is the number of updates (mistakes) in epoch ``k``. Training stops after the
    first epoch without a mistake (``converged_ = True``). On linearly separable data this
    happens after a finite number of updates, at most (R/γ)² (Novikoff's theorem, with
    R = max‖(x, 1)‖ and γ the margin of a unit-norm separating (w*, b*)), for any η > 0;
    otherwise (e.g. XOR) the weights cycle and training runs all ``max_epochs`` epochs.
    """

    def __init__(self, learning_rate=1.0, max_epochs=100, shuffle=True, seed=0,
                 fit_intercept=True):
        super().__init__(learning_rate, max_epochs, shuffle, seed, fit_intercept)

    def fit(self, X, y) -> Perceptron:
        """Run the perceptron rule for up to ``max_epochs`` epochs; return ``self``."""
        X, t = self._prepare(X, y)
        rng = np.random.default_rng(self.seed)
        self.errors_ = []
        for _ in range(self.max_epochs):
            self.errors_.append(self._epoch(X, t, self._order(rng, len(t))))
            if self.errors_[-1] == 0:
                self.converged_ = True
                break
        self.n_iter_ = len(self.errors_)
        self.intercept_ = float(self.intercept_)
        return self

    def _epoch(self, X: np.ndarray, t: np.ndarray, order: np.ndarray) -> int:
        """One pass in ``order``; update on every ``t·o <= 0``; return the number of updates."""
        eta, mistakes = self.learning_rate, 0
        for i in order:
            if t[i] * (X[i] @ self.coef_ + self.intercept_) <= 0:
                self.coef_ += eta * t[i] * X[i]                 # w ← w + η·t·x
                if self.fit_intercept:
                    self.intercept_ += eta * t[i]               # b ← b + η·t
                mistakes += 1
        return mistakes


# --------------------------------------------------------------------------------------------
# Adaline
# --------------------------------------------------------------------------------------------


def _cost(X: np.ndarray, t: np.ndarray, w: np.ndarray, b: float) -> float:
    """The sum-of-squares cost ``J = ½ Σ (t − (X w + b))²`` (inf if it overflowed)."""
    with np.errstate(over="ignore", invalid="ignore"):
        residual = t - (X @ w + b)
        cost = 0.5 * float(residual @ residual)
    return cost if np.isfinite(cost) else float("inf")


class Adaline(_LinearBinaryRule):
    """Widrow–Hoff's ADALINE: the delta (LMS) rule on the linear output, no threshold in learning.

    With ``t`` in {-1, +1} and ``o = X w + b``, gradient descent on the cost
    ``J(w, b) = ½ Σ_i (t_i − o_i)²``:

    * ``mode="batch"``: one step per epoch with the *mean* gradient, so the usable rate does
      not depend on the number of samples n::

          w ← w + η·(1/n)·Xᵀ(t − o)
          b ← b + η·(1/n)·Σ (t − o)          # only when fit_intercept

    * ``mode="online"``: one step per sample (in a fresh random order when ``shuffle``)::

          w ← w + η·(t_i − o_i)·x_i
          b ← b + η·(t_i − o_i)

    ``cost_[k]`` is ``J`` (the *sum*, not the mean) on the whole training set after epoch ``k``.
    With ``tol`` set, training stops when an epoch improves the cost by less than ``tol``
    (``converged_ = True``). Batch mode with a small enough rate (η < 2/λ_max of the mean
    Hessian) decreases the cost monotonically towards the least-squares solution of
    ``[X, 1] [w; b] ≈ t``. A too-large rate diverges: the cost grows each epoch; if it
    overflows, training stops, ``cost_`` ends with ``inf``, ``diverged_`` is True and
    ``coef_``/``intercept_`` keep the last finite values.

    ``predict`` thresholds ``o``: ``classes_[1]`` when ``o > 0``, else ``classes_[0]``.
    """

    MODES = ("batch", "online")

    def __init__(self, learning_rate=0.01, max_epochs=100, mode="batch", shuffle=True, seed=0,
                 tol=None, fit_intercept=True):
        super().__init__(learning_rate, max_epochs, shuffle, seed, fit_intercept)
        if mode not in self.MODES:
            raise ValueError(f"Adaline: mode must be one of {self.MODES}, got {mode!r}")
        if tol is not None and (not np.isfinite(float(tol)) or float(tol) < 0):
            raise ValueError(f"Adaline: tol must be None or a finite number >= 0, got {tol!r}")
        self.mode = mode
        self.tol = None if tol is None else float(tol)

    def fit(self, X, y) -> Adaline:
        """Run the delta rule for up to ``max_epochs`` epochs; return ``self``."""
        X, t = self._prepare(X, y)
        rng = np.random.default_rng(self.seed)
        self.cost_, self.diverged_ = [], False
        previous = _cost(X, t, self.coef_, self.intercept_)
        for _ in range(self.max_epochs):
            saved = (self.coef_.copy(), self.intercept_)
            with np.errstate(over="ignore", invalid="ignore"):
                if self.mode == "batch":
                    self._batch_step(X, t)
                else:
                    self._online_epoch(X, t, self._order(rng, len(t)))
            cost = _cost(X, t, self.coef_, self.intercept_)
            self.cost_.append(cost)
            if not np.isfinite(cost):                  # diverged: keep the last finite weights
                self.coef_, self.intercept_ = saved
                self.diverged_ = True
                break
            if self.tol is not None and previous - cost < self.tol:
                self.converged_ = True
                break
            previous = cost
        self.n_iter_ = len(self.cost_)
        return self

    def _batch_step(self, X: np.ndarray, t: np.ndarray) -> None:
        """One batch step with the mean gradient:
        ``w ← w + η·Xᵀ(t − o)/n``, ``b ← b + η·mean(t − o)``."""
        residual = t - (X @ self.coef_ + self.intercept_)
        self.coef_ = self.coef_ + self.learning_rate * (X.T @ residual) / len(t)
        if self.fit_intercept:
            self.intercept_ = self.intercept_ + self.learning_rate * float(np.mean(residual))

    def _online_epoch(self, X: np.ndarray, t: np.ndarray, order: np.ndarray) -> None:
        """One pass in ``order``: ``w ← w + η·(t_i − o_i)·x_i``, ``b ← b + η·(t_i − o_i)``."""
        eta = self.learning_rate
        for i in order:
            error = t[i] - (X[i] @ self.coef_ + self.intercept_)
            self.coef_ = self.coef_ + eta * error * X[i]
            if self.fit_intercept:
                self.intercept_ = self.intercept_ + eta * float(error)
