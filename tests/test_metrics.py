"""Metrics: formulas against NumPy (and scikit-learn where present), batching, names."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import losses, metrics

RNG = np.random.default_rng(0)
SCORES = RNG.random((12, 4))
LABELS = RNG.integers(0, 4, 12)
ONE_HOT = np.eye(4)[LABELS]
BINARY_TRUE = RNG.integers(0, 2, (12, 3)).astype(np.float32)
BINARY_PRED = RNG.random((12, 3))
REGRESSION_TRUE = RNG.normal(size=(12, 3))
REGRESSION_PRED = RNG.normal(size=(12, 3))


def _top_k(labels, scores, k):
    return np.mean([label in np.argsort(-row)[:k] for label, row in zip(labels, scores)])


# metric, y_true, y_pred, expected value from a plain NumPy formula
CASES = [
    (metrics.Accuracy(), LABELS, SCORES.argmax(1), np.mean(LABELS == SCORES.argmax(1))),
    (metrics.BinaryAccuracy(), BINARY_TRUE, BINARY_PRED,
     np.mean((BINARY_PRED > 0.5) == BINARY_TRUE)),
    (metrics.BinaryAccuracy(threshold=0.7), BINARY_TRUE, BINARY_PRED,
     np.mean((BINARY_PRED > 0.7) == BINARY_TRUE)),
    (metrics.CategoricalAccuracy(), ONE_HOT, SCORES, np.mean(LABELS == SCORES.argmax(1))),
    (metrics.SparseCategoricalAccuracy(), LABELS, SCORES, np.mean(LABELS == SCORES.argmax(1))),
    (metrics.SparseCategoricalAccuracy(), LABELS[:, None], SCORES,
     np.mean(LABELS == SCORES.argmax(1))),
    (metrics.TopKCategoricalAccuracy(k=2), ONE_HOT, SCORES, _top_k(LABELS, SCORES, 2)),
    (metrics.SparseTopKCategoricalAccuracy(k=3), LABELS, SCORES, _top_k(LABELS, SCORES, 3)),
    (metrics.MeanSquaredError(), REGRESSION_TRUE, REGRESSION_PRED,
     np.mean((REGRESSION_TRUE - REGRESSION_PRED) ** 2)),
    (metrics.MeanAbsoluteError(), REGRESSION_TRUE, REGRESSION_PRED,
     np.mean(np.abs(REGRESSION_TRUE - REGRESSION_PRED))),
    (metrics.Precision(), BINARY_TRUE, BINARY_PRED,
     np.sum((BINARY_PRED > 0.5) & (BINARY_TRUE == 1)) / np.sum(BINARY_PRED > 0.5)),
    (metrics.Recall(), BINARY_TRUE, BINARY_PRED,
     np.sum((BINARY_PRED > 0.5) & (BINARY_TRUE == 1)) / np.sum(BINARY_TRUE == 1)),
    (metrics.Precision(class_id=2), ONE_HOT, SCORES,
     np.sum((SCORES[:, 2] > 0.5) & (LABELS == 2)) / np.sum(SCORES[:, 2] > 0.5)),
]


@pytest.mark.parametrize("metric, y_true, y_pred, expected", CASES,
                         ids=[f"{type(c[0]).__name__}-{i}" for i, c in enumerate(CASES)])
def test_metric_matches_its_formula_whatever_the_batching(metric, y_true, y_pred, expected):
    metric.reset_state()
    metric.update_state(y_true, y_pred)
    assert metric.result() == pytest.approx(expected)
    metric.reset_state()
    for start in range(0, 12, 5):  # uneven batches: 5, 5, 2
        metric.update_state(y_true[start:start + 5], y_pred[start:start + 5])
    assert metric.result() == pytest.approx(expected)
    assert isinstance(metric.result(), float)


def test_metrics_take_tensors_and_lists():
    m = metrics.SparseCategoricalAccuracy()
    m.update_state(cr.tensor(LABELS), cr.tensor(SCORES))
    assert m.result() == pytest.approx(np.mean(LABELS == SCORES.argmax(1)))
    assert metrics.Accuracy()([1, 2, 3], [1, 2, 4]) == pytest.approx(2 / 3)


def test_reset_state_forgets_everything():
    m = metrics.MeanSquaredError()
    m.update_state([1.0], [3.0])
    m.reset_state()
    assert m.result() == 0.0
    m.update_state([1.0], [2.0])
    assert m.result() == 1.0


def test_top_k_counts_ties_for_the_target():
    # the target's score ties with the best: it is among the top 1 (TensorFlow's in_top_k)
    assert metrics.SparseTopKCategoricalAccuracy(k=1)([0], [[0.5, 0.5, 0.1]]) == 1.0
    assert metrics.SparseTopKCategoricalAccuracy(k=1)([2], [[0.5, 0.4, 0.1]]) == 0.0


def test_precision_and_recall_are_zero_without_positives():
    assert metrics.Precision()([1, 0], [0.1, 0.2]) == 0.0
    assert metrics.Recall()([0, 0], [0.9, 0.2]) == 0.0


def test_confusion_matrix_from_labels_one_hot_and_scores():
    m = metrics.ConfusionMatrix(4)
    m.update_state(LABELS, SCORES)
    expected = np.zeros((4, 4), np.int64)
    for t, p in zip(LABELS, SCORES.argmax(1)):
        expected[t, p] += 1
    np.testing.assert_array_equal(m.result(), expected)
    m.update_state(ONE_HOT, SCORES.argmax(1))
    np.testing.assert_array_equal(m.result(), 2 * expected)
    assert m.result().sum() == 24


def test_confusion_matrix_rejects_classes_out_of_range():
    with pytest.raises(ValueError, match="class 5 outside 0..2"):
        metrics.ConfusionMatrix(3).update_state([0, 5], [0, 1])


def test_mean_is_weighted():
    m = metrics.Mean()
    m.update_state([1.0, 3.0])
    m.update_state(10.0, sample_weight=2.0)
    assert m.result() == pytest.approx((1 + 3 + 20) / 4)
    m.update_state(np.float64(5.0), sample_weight=np.float64(4.0))
    m.update_state(5.0, sample_weight=4)  # the fast path for one Python number
    assert m.result() == pytest.approx((1 + 3 + 20 + 40) / 12)


def test_agrees_with_scikit_learn():
    sk = pytest.importorskip("sklearn.metrics")
    y_true, y_pred = BINARY_TRUE.ravel(), BINARY_PRED.ravel()
    decided = (y_pred > 0.5).astype(int)
    assert metrics.Precision()(y_true, y_pred) == pytest.approx(
        sk.precision_score(y_true, decided))
    assert metrics.Recall()(y_true, y_pred) == pytest.approx(sk.recall_score(y_true, decided))
    confusion = metrics.ConfusionMatrix(4)
    confusion.update_state(LABELS, SCORES)
    np.testing.assert_array_equal(
        confusion.result(), sk.confusion_matrix(LABELS, SCORES.argmax(1), labels=range(4)))


@pytest.mark.parametrize("name, cls", [
    ("mse", metrics.MeanSquaredError), ("mean_absolute_error", metrics.MeanAbsoluteError),
    ("sparse_categorical_accuracy", metrics.SparseCategoricalAccuracy),
    ("precision", metrics.Precision), ("top_k_categorical_accuracy",
                                       metrics.TopKCategoricalAccuracy),
])
def test_get_by_name_keeps_the_name(name, cls):
    metric = metrics.get(name)
    assert isinstance(metric, cls) and metric.name == name


def test_get_wraps_functions_and_rejects_unknown_names():
    metric = metrics.get(lambda t, p: np.abs(t - p))
    assert metric([1.0, 2.0], [2.0, 2.0]) == 0.5
    with pytest.raises(ValueError, match="unknown metric 'f1_scor'"):
        metrics.get("f1_scor")


def test_serialize_round_trip():
    for metric in (metrics.BinaryAccuracy(threshold=0.3), metrics.TopKCategoricalAccuracy(k=2),
                   metrics.Recall(class_id=1), metrics.ConfusionMatrix(3, name="cm")):
        copy = metrics.get(metrics.serialize(metric))
        assert type(copy) is type(metric) and copy.get_config() == metric.get_config()


@pytest.mark.parametrize("loss, true_shape, pred_shape, expected", [
    (losses.SparseCategoricalCrossentropy(), (8,), (8, 10), metrics.SparseCategoricalAccuracy),
    (losses.CategoricalCrossentropy(), (8, 10), (8, 10), metrics.CategoricalAccuracy),
    (losses.BinaryCrossentropy(), (8, 1), (8, 1), metrics.BinaryAccuracy),
    ("mse-by-shapes", (8,), (8, 10), metrics.SparseCategoricalAccuracy),
    ("mse-by-shapes", (8, 1), (8, 10), metrics.SparseCategoricalAccuracy),
    ("mse-by-shapes", (8, 10), (8, 10), metrics.CategoricalAccuracy),
    ("mse-by-shapes", (8, 1), (8, 1), metrics.BinaryAccuracy),
])
def test_accuracy_is_resolved_like_keras(loss, true_shape, pred_shape, expected):
    loss = losses.MeanSquaredError() if loss == "mse-by-shapes" else loss
    metric = metrics.resolve_accuracy("acc", loss, true_shape, pred_shape)
    assert type(metric) is expected and metric.name == "acc"


def test_binary_accuracy_from_logits_thresholds_at_zero():
    metric = metrics.resolve_accuracy("accuracy", losses.BinaryCrossentropy(from_logits=True))
    assert metric([1.0, 0.0], [0.2, -0.3]) == 1.0
