"""chainrule.losses: every loss against PyTorch (values and gradients, for each reduction),
float64 gradcheck, names, configs and error messages."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import losses
from tests.torch_helpers import require_torch

torch = require_torch()
TF = torch.nn.functional

N, C = 6, 4


def labels(rng):
    return rng.integers(0, C, N)


def probabilities(rng):
    return rng.dirichlet(np.ones(C), N)


def torch_reduce(values, reduction):
    """Per-sample values reduced the chainrule way."""
    if reduction == "mean":
        return values.mean()
    return values.sum() if reduction == "sum" else values


# name: (loss factory, make y_true, make y_pred, torch per-sample reference(y_true, y_pred))
CASES = {
    "categorical_crossentropy from logits": (
        lambda r: losses.CategoricalCrossentropy(from_logits=True, reduction=r),
        lambda rng: np.eye(C)[labels(rng)],
        lambda rng: rng.standard_normal((N, C)) * 2,
        lambda t, p: TF.cross_entropy(p, t, reduction="none"),
    ),
    "categorical_crossentropy from probabilities": (
        lambda r: losses.CategoricalCrossentropy(reduction=r),
        lambda rng: np.eye(C)[labels(rng)],
        lambda rng: probabilities(rng) * 3,  # rows not summing to 1: renormalised (Keras)
        lambda t, p: -(t * torch.log(p / p.sum(-1, keepdim=True))).sum(-1),
    ),
    "sparse_categorical_crossentropy from logits": (
        lambda r: losses.SparseCategoricalCrossentropy(from_logits=True, reduction=r),
        labels,
        lambda rng: rng.standard_normal((N, C)) * 2,
        lambda t, p: TF.cross_entropy(p, t, reduction="none"),
    ),
    "sparse_categorical_crossentropy from probabilities": (
        lambda r: losses.SparseCategoricalCrossentropy(reduction=r),
        labels,
        lambda rng: probabilities(rng) * 3,
        lambda t, p: TF.nll_loss(torch.log(p / p.sum(-1, keepdim=True)), t, reduction="none"),
    ),
    "binary_crossentropy from probabilities": (
        lambda r: losses.BinaryCrossentropy(reduction=r),
        lambda rng: rng.integers(0, 2, (N, 3)).astype(float),
        lambda rng: rng.uniform(0.05, 0.95, (N, 3)),
        lambda t, p: TF.binary_cross_entropy(p, t, reduction="none").mean(-1),
    ),
    "binary_crossentropy from logits": (
        lambda r: losses.BinaryCrossentropy(from_logits=True, reduction=r),
        lambda rng: rng.uniform(0, 1, (N, 3)),
        lambda rng: rng.standard_normal((N, 3)) * 3,
        lambda t, p: TF.binary_cross_entropy_with_logits(p, t, reduction="none").mean(-1),
    ),
    "multiclass hinge": (
        lambda r: losses.MultiClassHinge(reduction=r),
        labels,
        lambda rng: rng.standard_normal((N, C)),
        lambda t, p: torch.nn.MultiMarginLoss(p=1, margin=1.0, reduction="none")(p, t) * C,
    ),
    "mean squared error": (
        lambda r: losses.MeanSquaredError(reduction=r),
        lambda rng: rng.standard_normal((N, 3)),
        lambda rng: rng.standard_normal((N, 3)),
        lambda t, p: TF.mse_loss(p, t, reduction="none").mean(-1),
    ),
    "mean absolute error": (
        lambda r: losses.MeanAbsoluteError(reduction=r),
        lambda rng: rng.standard_normal((N, 3)),
        lambda rng: rng.standard_normal((N, 3)),
        lambda t, p: TF.l1_loss(p, t, reduction="none").mean(-1),
    ),
    "huber delta 0.7": (
        lambda r: losses.Huber(delta=0.7, reduction=r),
        lambda rng: rng.standard_normal((N, 3)),
        lambda rng: rng.standard_normal((N, 3)) * 2,
        lambda t, p: torch.nn.HuberLoss(reduction="none", delta=0.7)(p, t).mean(-1),
    ),
    "sum of squares": (
        lambda r: losses.SumOfSquares(reduction=r),
        lambda rng: rng.standard_normal((N, 3)),
        lambda rng: rng.standard_normal((N, 3)),
        lambda t, p: 0.5 * ((p - t) ** 2).sum(-1),
    ),
}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", list(CASES))
def test_parity_with_torch(case, reduction, rng):
    make_loss, make_true, make_pred, reference = CASES[case]
    y_true, y_pred = make_true(rng), make_pred(rng)
    pred = cr.tensor(y_pred, dtype="float64", requires_grad=True)
    tpred = torch.tensor(y_pred, requires_grad=True)
    loss = make_loss(reduction)(y_true, pred)
    tloss = torch_reduce(reference(torch.tensor(y_true), tpred), reduction)
    np.testing.assert_allclose(loss.numpy(), tloss.detach().numpy(), rtol=1e-10, atol=1e-12)
    weight = rng.standard_normal(loss.shape)
    (loss * cr.tensor(weight, dtype="float64")).sum().backward()
    (tloss * torch.tensor(weight)).sum().backward()
    np.testing.assert_allclose(pred.grad.numpy(), tpred.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("case", list(CASES))
def test_gradcheck(case, rng):
    make_loss, make_true, make_pred, _ = CASES[case]
    y_true, y_pred = make_true(rng)[:3], make_pred(rng)[:3]
    loss = make_loss("none")
    pred = cr.tensor(y_pred, dtype="float64", requires_grad=True)
    assert cr.gradcheck(lambda p: loss(y_true, p), [pred])


@pytest.mark.parametrize("case", list(CASES))
def test_float32_stays_float32(case, rng):
    make_loss, make_true, make_pred, _ = CASES[case]
    pred = cr.tensor(make_pred(rng).astype(np.float32), requires_grad=True)
    value = make_loss("mean")(make_true(rng), pred)
    value.backward()
    assert value.dtype == np.float32 and pred.grad.dtype == np.float32


def test_default_reductions():
    y_true, y_pred = cr.tensor([[1.0, 2.0], [0.0, 0.0]]), cr.tensor([[0.0, 0.0], [1.0, 1.0]])
    assert losses.MeanSquaredError()(y_true, y_pred).item() == pytest.approx((5 / 2 + 1) / 2)
    # the lecture formula ½ Σ_i Σ_j (ŷ − y)² by default
    assert losses.SumOfSquares()(y_true, y_pred).item() == pytest.approx(0.5 * 7)
    assert losses.SumOfSquares(reduction="mean")(y_true, y_pred).item() == pytest.approx(
        0.5 * 7 / 2)
    assert losses.MeanSquaredError(reduction="sum_over_batch_size").reduction == "mean"


def test_sum_of_squares_gradient_is_the_error():
    y_pred = cr.tensor([[1.0, 2.0], [3.0, 5.0]], requires_grad=True)
    losses.SumOfSquares()([[0.0, 0.0], [1.0, 1.0]], y_pred).backward()
    np.testing.assert_allclose(y_pred.grad.numpy(), [[1, 2], [2, 4]])


def test_probabilities_are_clipped_so_zeros_give_finite_losses():
    y_pred = cr.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    for loss in (losses.CategoricalCrossentropy(), losses.BinaryCrossentropy()):
        value = loss([[0.0, 1.0], [0.0, 1.0]], y_pred)
        assert np.isfinite(value.item()) and value.item() > 5
    value = losses.SparseCategoricalCrossentropy()([1, 1], y_pred)
    assert value.item() == pytest.approx(-np.log(1e-7) / 2, rel=1e-4)


@pytest.mark.parametrize("from_logits", [True, False])
def test_sparse_labels_may_be_a_column_or_integral_floats(from_logits, rng):
    y_pred = rng.dirichlet(np.ones(C), N)
    loss = losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    ids = labels(rng)
    expected = loss(ids, y_pred).item()
    assert loss(ids[:, None], y_pred).item() == pytest.approx(expected)
    assert loss(ids.astype(float), y_pred).item() == pytest.approx(expected)


def test_regression_targets_of_shape_n_match_predictions_of_shape_n_1():
    value = losses.MeanSquaredError()(np.array([1.0, 2.0]), cr.tensor([[1.0], [4.0]]))
    assert value.item() == pytest.approx(2.0)


@pytest.mark.parametrize("loss,y_true,y_pred,message", [
    (losses.MeanSquaredError(), np.zeros((4, 3)), np.zeros((4, 2)),
     r"MeanSquaredError: y_true of shape \(4, 3\) does not match y_pred of shape \(4, 2\)"),
    (losses.Huber(), np.zeros(3), np.zeros((4, 1)), r"Huber: y_true of shape \(3,\)"),
    (losses.CategoricalCrossentropy(), np.zeros(4, int), np.zeros((4, 3)),
     r"CategoricalCrossentropy: y_true of shape \(4,\) must be one-hot with y_pred's shape "
     r"\(4, 3\)"),
    (losses.SparseCategoricalCrossentropy(), np.zeros((4, 3)), np.zeros((4, 3)),
     r"SparseCategoricalCrossentropy: y_true of shape \(4, 3\) must hold one integer class per "
     r"sample, shape \(4,\), for y_pred of shape \(4, 3\)"),
    (losses.MultiClassHinge(), np.array([0, 3]), np.zeros((2, 3)),
     r"MultiClassHinge: class ids must be in \[0, 3\) for y_pred of shape \(2, 3\)"),
    (losses.SparseCategoricalCrossentropy(), np.array([0.5, 1.0]), np.zeros((2, 3)),
     r"SparseCategoricalCrossentropy: y_true must hold integer class ids"),
])
def test_errors_name_the_loss_and_both_shapes(loss, y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        loss(y_true, cr.tensor(y_pred))


@pytest.mark.parametrize("name,cls", [
    ("categorical_crossentropy", losses.CategoricalCrossentropy),
    ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
    ("mse", losses.MeanSquaredError), ("mean_squared_error", losses.MeanSquaredError),
    ("mae", losses.MeanAbsoluteError), ("mean_absolute_error", losses.MeanAbsoluteError),
    ("binary_crossentropy", losses.BinaryCrossentropy), ("hinge", losses.MultiClassHinge),
    ("multiclass_hinge", losses.MultiClassHinge), ("huber", losses.Huber),
    ("sum_of_squares", losses.SumOfSquares), ("MeanSquaredError", losses.MeanSquaredError),
    ("MSE", losses.MeanSquaredError),
])
def test_get_by_name(name, cls):
    assert type(losses.get(name)) is cls


def test_get_passes_objects_and_callables_through_and_round_trips_configs():
    loss = losses.Huber(delta=2.0, reduction="sum")
    assert losses.get(loss) is loss
    assert losses.get(None) is None

    def my_loss(y_true, y_pred):
        return (y_pred - y_true).sum()

    assert losses.get(my_loss) is my_loss
    assert isinstance(losses.get(losses.MeanAbsoluteError), losses.MeanAbsoluteError)
    copy = losses.get(losses.serialize(loss))
    assert type(copy) is losses.Huber and copy.get_config() == loss.get_config()
    config = losses.serialize(losses.CategoricalCrossentropy(from_logits=True))
    assert losses.get(config).from_logits is True
    assert "delta=2.0" in repr(loss)


def test_get_errors():
    with pytest.raises(ValueError, match="unknown loss 'cross'; known names: .*mse"):
        losses.get("cross")
    with pytest.raises(TypeError, match="cannot interpret 3"):
        losses.get(3)
    with pytest.raises(ValueError, match="MeanSquaredError: reduction must be"):
        losses.MeanSquaredError(reduction="max")
