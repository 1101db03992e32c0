"""Metrics: running scores over batches, computed on NumPy arrays (no graph is recorded).

A metric is stateful, as in Keras: ``update_state(y_true, y_pred)`` adds a batch,
``result()`` gives the score of everything seen since the last ``reset_state()``::

    >>> import numpy as np
    >>> m = SparseCategoricalAccuracy()
    >>> m.update_state(np.array([0, 1]), np.array([[0.9, 0.1], [0.8, 0.2]]))
    >>> m.update_state(np.array([1]), np.array([[0.3, 0.7]]))
    >>> m.result()
    0.6666666666666666

Inputs may be NumPy arrays, nested lists or Tensors (their ``.data`` is used); results are Python
floats (a NumPy array for :class:`ConfusionMatrix`). Scores that average over samples are the
mean of every sample seen, not the mean of batch means, so the result does not depend on how
the data was batched.

================================  ==========================================================
``Accuracy``                      mean(y_true == y_pred) (exact match)
``BinaryAccuracy``                mean((y_pred > threshold) == y_true)
``CategoricalAccuracy``           mean(argmax y_true == argmax y_pred) (one-hot targets)
``SparseCategoricalAccuracy``     mean(y_true == argmax y_pred) (integer targets)
``TopKCategoricalAccuracy``       fraction whose true class is among the k highest scores
``SparseTopKCategoricalAccuracy`` the same with integer targets
``MeanSquaredError``              mean((y_true − y_pred)²)
``MeanAbsoluteError``             mean(|y_true − y_pred|)
``Precision``                     TP / (TP + FP), predictions thresholded
``Recall``                        TP / (TP + FN), predictions thresholded
``ConfusionMatrix``               counts C[i, j] of true class i predicted as j
``Mean``                          the (weighted) mean of the values given
================================  ==========================================================

:func:`get` finds a metric by Keras name ("accuracy", "mse", ...); :func:`resolve_accuracy`
picks the accuracy that fits a loss and target shapes, as Keras does for ``metrics=["accuracy"]``.
"""

from __future__ import annotations

import re

import numpy as np

# -- helpers --------------------------------------------------------------------------------------


def _array(value) -> np.ndarray:
    """A NumPy array from an array, a nested list or a Tensor (without recording anything)."""
    data = getattr(value, "data", value)
    if not isinstance(data, np.ndarray):
        if hasattr(data, "get"):  # a CuPy array
            data = data.get()
        data = np.asarray(data)
    return data


def _labels(y_true: np.ndarray) -> np.ndarray:
    """Integer class labels from sparse targets of shape (N,) or (N, 1)."""
    if y_true.ndim > 1 and y_true.shape[-1] == 1:
        y_true = y_true.reshape(y_true.shape[:-1])
    return y_true.astype(np.int64, copy=False)


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# -- the base classes -----------------------------------------------------------------------------


class Metric:
    """Base class: a score accumulated over batches.

    Subclasses implement :meth:`update_state`, :meth:`result` and :meth:`reset_state`.
    Calling a metric updates it with one batch and returns the new result (Keras).

    Args:
        name: the key under which ``fit`` reports it (default: the class name in snake_case).
    """

    def __init__(self, name: str | None = None):
        self.name = name or _snake_case(type(self).__name__)
        self.reset_state()

    def update_state(self, y_true, y_pred) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement update_state")

    def result(self):
        raise NotImplementedError(f"{type(self).__name__} must implement result")

    def reset_state(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement reset_state")

    def __call__(self, y_true, y_pred):
        self.update_state(y_true, y_pred)
        return self.result()

    def get_config(self) -> dict:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> Metric:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Mean(Metric):
    """The weighted mean of all values given: Σ wᵢ·vᵢ / Σ wᵢ (weights default to 1).

    ``fit`` tracks the loss with one, weighting each batch's loss by the batch size.

    >>> m = Mean()
    >>> m.update_state([1.0, 2.0]); m.update_state(6.0, sample_weight=2)
    >>> m.result()
    3.75
    """

    def reset_state(self) -> None:
        self.total = 0.0
        self.count = 0.0

    def update_state(self, values, sample_weight=None) -> None:
        if type(values) is float and (sample_weight is None or type(sample_weight) is int):
            weight = 1 if sample_weight is None else sample_weight  # fast path: one number
            self.total += values * weight
            self.count += weight
            return
        values = _array(values)
        if sample_weight is None:
            self.total += float(values.sum())
            self.count += values.size
        else:
            weights = np.broadcast_to(_array(sample_weight), values.shape)
            self.total += float((values * weights).sum())
            self.count += float(weights.sum())

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0


class MeanMetricWrapper(Mean):
    """The mean over samples of ``fn(y_true, y_pred)``, a function of arrays giving one value
    per sample (or per element); how every accuracy and error metric below is built.

    Args:
        fn: ``fn(y_true, y_pred) -> array`` on NumPy arrays.
        name: the metric's name (default: the function's name).

    >>> m = MeanMetricWrapper(lambda t, p: np.abs(t - p), name="l1")
    >>> m([1.0, 2.0], [1.5, 2.0])
    0.25
    """

    def __init__(self, fn=None, name: str | None = None, **kwargs):
        self._fn = fn if fn is not None else self.compute
        self._fn_kwargs = kwargs
        default = getattr(fn, "__name__", None) if fn is not None else None
        super().__init__(name=name or default)

    def compute(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """The per-sample values; subclasses override this instead of passing ``fn``."""
        raise NotImplementedError(f"{type(self).__name__} must implement compute")

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        values = self._fn(_array(y_true), _array(y_pred), **self._fn_kwargs)
        super().update_state(values, sample_weight)

    def get_config(self) -> dict:
        return {"name": self.name, **self._fn_kwargs}


# -- accuracies -----------------------------------------------------------------------------------


class Accuracy(MeanMetricWrapper):
    """How often predictions equal targets exactly: mean(y_true == y_pred).

    For class scores use one of the accuracies below ("accuracy" in ``compile`` picks one).
    """

    def compute(self, y_true, y_pred):
        return y_true.reshape(y_pred.shape) == y_pred


class BinaryAccuracy(MeanMetricWrapper):
    """How often thresholded predictions match binary targets: mean((y_pred > t) == y_true).

    Args:
        threshold: the decision threshold (default 0.5, for probabilities; use 0.0 for logits).
    """

    def __init__(self, name: str | None = None, threshold: float = 0.5):
        super().__init__(name=name, threshold=threshold)

    @staticmethod
    def compute(y_true, y_pred, threshold=0.5):  # noqa: D102
        return (y_pred > threshold) == (y_true.reshape(y_pred.shape) > 0.5)


class CategoricalAccuracy(MeanMetricWrapper):
    """How often the highest score is the one-hot target's class: argmax y_true == argmax y_pred.

    >>> CategoricalAccuracy()([[0, 1], [1, 0]], [[0.2, 0.8], [0.3, 0.7]])
    0.5
    """

    def compute(self, y_true, y_pred):
        return y_true.argmax(axis=-1) == y_pred.argmax(axis=-1)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the highest score is the integer target: y_true == argmax y_pred.

    Targets have shape (N,) or (N, 1); scores (N, classes).
    """

    def compute(self, y_true, y_pred):
        return _labels(y_true) == y_pred.argmax(axis=-1)


def _in_top_k(labels: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """Whether each true class is among the k highest scores: fewer than k scores beat it.

    Ties count in the target's favour, as TensorFlow's ``in_top_k`` does.
    """
    true_scores = np.take_along_axis(y_pred, labels[..., None], axis=-1)
    return (y_pred > true_scores).sum(axis=-1) < k


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot target's class is among the ``k`` highest scores (default k=5)."""

    def __init__(self, k: int = 5, name: str | None = None):
        super().__init__(name=name, k=k)

    @staticmethod
    def compute(y_true, y_pred, k=5):  # noqa: D102
        return _in_top_k(y_true.argmax(axis=-1), y_pred, k)


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer target is among the ``k`` highest scores (default k=5)."""

    def __init__(self, k: int = 5, name: str | None = None):
        super().__init__(name=name, k=k)

    @staticmethod
    def compute(y_true, y_pred, k=5):  # noqa: D102
        return _in_top_k(_labels(y_true), y_pred, k)


# -- regression errors ----------------------------------------------------------------------------


class MeanSquaredError(MeanMetricWrapper):
    """mean((y_true − y_pred)²) over every element seen."""

    def compute(self, y_true, y_pred):
        return np.square(y_true.reshape(y_pred.shape) - y_pred)


class MeanAbsoluteError(MeanMetricWrapper):
    """mean(|y_true − y_pred|) over every element seen."""

    def compute(self, y_true, y_pred):
        return np.abs(y_true.reshape(y_pred.shape) - y_pred)


# -- counts ---------------------------------------------------------------------------------------


class _ThresholdCounts(Metric):
    """True/false positives and negatives of thresholded predictions, for Precision/Recall.

    Every element is a binary decision (Keras's rule): ``y_pred > threshold`` against
    ``y_true > 0.5``. ``class_id`` restricts the counts to one column of one-hot targets.
    """

    def __init__(self, threshold: float = 0.5, class_id: int | None = None,
                 name: str | None = None):
        self.threshold = threshold
        self.class_id = class_id
        super().__init__(name=name)

    def reset_state(self) -> None:
        self.true_positives = 0
        self.false_positives = 0
        self.false_negatives = 0

    def update_state(self, y_true, y_pred) -> None:
        y_true, y_pred = _array(y_true), _array(y_pred)
        y_true = y_true.reshape(y_pred.shape)
        if self.class_id is not None:
            y_true, y_pred = y_true[..., self.class_id], y_pred[..., self.class_id]
        actual = y_true > 0.5
        predicted = y_pred > self.threshold
        self.true_positives += int(np.count_nonzero(actual & predicted))
        self.false_positives += int(np.count_nonzero(~actual & predicted))
        self.false_negatives += int(np.count_nonzero(actual & ~predicted))

    def get_config(self) -> dict:
        return {"threshold": self.threshold, "class_id": self.class_id, "name": self.name}


class Precision(_ThresholdCounts):
    """TP / (TP + FP): the share of predicted positives that are positive (0 when none are).

    Args:
        threshold: predictions above it count as positive (default 0.5).
        class_id: with one-hot targets, the class to score (default: every element).

    >>> Precision()([0, 1, 1, 0], [0.7, 0.9, 0.2, 0.1])
    0.5
    """

    def result(self) -> float:
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else 0.0


class Recall(_ThresholdCounts):
    """TP / (TP + FN): the share of positives predicted positive (0 when there are none).

    Args:
        threshold: predictions above it count as positive (default 0.5).
        class_id: with one-hot targets, the class to score (default: every element).

    >>> Recall()([0, 1, 1, 0], [0.7, 0.9, 0.2, 0.1])
    0.5
    """

    def result(self) -> float:
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else 0.0


class ConfusionMatrix(Metric):
    """Counts ``C[i, j]`` of samples of true class ``i`` predicted as class ``j``.

    Targets may be integer labels (N,) / (N, 1) or one-hot (N, classes); predictions may be
    labels or scores (N, classes), whose argmax is the predicted class.

    Args:
        num_classes: the number of classes.

    >>> m = ConfusionMatrix(3)
    >>> m.update_state([0, 1, 2, 2], [0, 2, 2, 1])
    >>> m.result().tolist()
    [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    """

    def __init__(self, num_classes: int, name: str | None = None):
        self.num_classes = int(num_classes)
        super().__init__(name=name)

    def reset_state(self) -> None:
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def _classes(self, y: np.ndarray) -> np.ndarray:
        if y.ndim > 1 and y.shape[-1] == self.num_classes and self.num_classes > 1:
            return y.argmax(axis=-1)
        return _labels(y).reshape(-1)

    def update_state(self, y_true, y_pred) -> None:
        true, predicted = self._classes(_array(y_true)), self._classes(_array(y_pred))
        n = self.num_classes
        for name, labels in (("y_true", true), ("y_pred", predicted)):
            outside = labels[(labels < 0) | (labels >= n)]
            if outside.size:
                raise ValueError(
                    f"ConfusionMatrix({n}): {name} has class {int(outside[0])} outside 0..{n - 1}"
                )
        self.matrix += np.bincount(true * n + predicted, minlength=n * n).reshape(n, n)

    def result(self) -> np.ndarray:
        return self.matrix.copy()

    def get_config(self) -> dict:
        return {"num_classes": self.num_classes, "name": self.name}


# -- finding metrics by name ----------------------------------------------------------------------

_BY_NAME = {
    "accuracy": Accuracy,
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "precision": Precision,
    "recall": Recall,
    "mean": Mean,
}

_ALL = {cls.__name__: cls for cls in {*_BY_NAME.values(), ConfusionMatrix, MeanMetricWrapper}}


def get(identifier) -> Metric:
    """A new metric from a Keras name ("mse", "sparse_categorical_accuracy", ...), a config
    dict ``{"class_name": ..., "config": ...}``, a Metric (returned as is) or a function
    ``fn(y_true, y_pred) -> per-sample values`` (wrapped in :class:`MeanMetricWrapper`).

    The metric is named as asked: ``get("mse").name == "mse"``. "accuracy" alone means exact
    matches; ``compile`` resolves it from the loss first (see :func:`resolve_accuracy`).
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier) or _ALL.get(identifier)
        if cls is None:
            known = ", ".join(sorted(_BY_NAME))
            raise ValueError(f"unknown metric {identifier!r}; known names: {known}")
        return cls(name=identifier)
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = _ALL.get(identifier["class_name"])
        if cls is None:
            raise ValueError(f"unknown metric class {identifier['class_name']!r}")
        return cls.from_config(dict(identifier.get("config", {})))
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise TypeError(f"metrics.get: cannot interpret {identifier!r} as a metric")


def serialize(metric: Metric) -> dict:
    """``{"class_name": ..., "config": ...}`` of a built-in metric (what :func:`get` takes)."""
    name = type(metric).__name__
    if name not in _ALL or name == "MeanMetricWrapper":
        raise ValueError(f"metrics.serialize: {metric!r} is not a built-in metric")
    return {"class_name": name, "config": metric.get_config()}


def resolve_accuracy(name: str, loss=None, y_true_shape=None, y_pred_shape=None) -> Metric:
    """The accuracy that "accuracy"/"acc" means for this loss and these shapes (Keras's rule).

    1. By the loss: binary cross-entropy → :class:`BinaryAccuracy` (threshold 0 for logits),
       categorical → :class:`CategoricalAccuracy`, sparse categorical →
       :class:`SparseCategoricalAccuracy`.
    2. Otherwise by the shapes: one output column → binary; targets with one axis fewer than
       the predictions, or a last axis of 1 against several scores → sparse; else categorical.

    The metric keeps the name asked for (``name``), so history keys read "accuracy".
    """
    loss_name = _snake_case(type(loss).__name__) if loss is not None else ""
    if hasattr(loss, "__name__"):
        loss_name = loss.__name__
    if "sparse_categorical" in loss_name:
        return SparseCategoricalAccuracy(name=name)
    if "categorical_crossentropy" in loss_name:
        return CategoricalAccuracy(name=name)
    if "binary_crossentropy" in loss_name:
        threshold = 0.0 if getattr(loss, "from_logits", False) else 0.5
        return BinaryAccuracy(name=name, threshold=threshold)
    if y_pred_shape is not None and len(y_pred_shape) and y_pred_shape[-1] == 1:
        return BinaryAccuracy(name=name)
    if y_true_shape is not None and y_pred_shape is not None:
        if len(y_true_shape) < len(y_pred_shape) or (
            len(y_true_shape) and y_true_shape[-1] == 1 and y_pred_shape[-1] > 1
        ):
            return SparseCategoricalAccuracy(name=name)
    return CategoricalAccuracy(name=name)


__all__ = [
    "Accuracy", "BinaryAccuracy", "CategoricalAccuracy", "ConfusionMatrix", "Mean",
    "MeanAbsoluteError", "MeanMetricWrapper", "MeanSquaredError", "Metric", "Precision",
    "Recall", "SparseCategoricalAccuracy", "SparseTopKCategoricalAccuracy",
    "TopKCategoricalAccuracy", "get", "resolve_accuracy", "serialize",
]
