"""chainrule.functional's own behaviour: arguments, defaults, errors, dropout, one_hot and the
moving statistics of batch_norm. (The numerics of the fused ops are tested in tests/ops.)"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import functional as F
from tests.torch_helpers import require_torch

torch = require_torch()
TF = torch.nn.functional


# -- dropout ---------------------------------------------------------------------------------------


def test_dropout_keeps_with_probability_one_minus_rate_and_rescales():
    x = cr.ones(200, 500)
    y = F.dropout(x, 0.3).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert y.dtype == np.float32


def test_dropout_gradient_is_the_same_mask(rng):
    x = cr.tensor(rng.standard_normal((30, 40)), requires_grad=True)
    y = F.dropout(x, 0.5)
    y.sum().backward()
    expected = np.where(y.numpy() != 0, 2.0, 0.0)
    np.testing.assert_array_equal(x.grad.numpy(), expected.astype(np.float32))


@pytest.mark.parametrize("kwargs", [{"training": False}, {"rate": 0.0}])
def test_dropout_is_the_identity_when_not_training_or_rate_zero(kwargs):
    x = cr.randn(4, 5)
    arguments = {"rate": 0.5, **kwargs}
    assert F.dropout(x, **arguments) is x


def test_dropout_masks_are_reproducible():
    x = cr.ones(10, 10)
    cr.manual_seed(3)
    a = F.dropout(x, 0.5).numpy()
    cr.manual_seed(3)
    b = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, b)
    c, d = F.dropout(x, 0.5, seed=7).numpy(), F.dropout(x, 0.5, seed=7).numpy()
    np.testing.assert_array_equal(c, d)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_dropout_rate_must_be_in_zero_one(rate):
    with pytest.raises(ValueError, match=r"dropout: rate must be in \[0, 1\)"):
        F.dropout(cr.ones(3), rate)


def test_dropout_double_backward_works(float64):
    x = cr.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    y = F.dropout(x, 0.5, seed=0)
    (g,) = cr.grad((y * y).sum(), [x], create_graph=True)
    (gg,) = cr.grad(g.sum(), [x])
    mask = y.numpy() / x.numpy()
    np.testing.assert_allclose(gg.numpy(), 2 * mask * mask)


# -- one_hot and embedding arguments ---------------------------------------------------------------


def test_one_hot_values_shape_and_dtype():
    y = F.one_hot([[0, 2], [1, 1]], 3)
    assert y.shape == (2, 2, 3) and y.dtype == np.float32 and not y.requires_grad
    np.testing.assert_array_equal(y.numpy()[0], [[1, 0, 0], [0, 0, 1]])
    assert F.one_hot(np.array([1]), 2, dtype=np.int64).dtype == np.int64
    np.testing.assert_array_equal(F.one_hot(cr.tensor([1, 0]), 2).numpy(),
                                  TF.one_hot(torch.tensor([1, 0]), 2).numpy())


@pytest.mark.parametrize("labels,error,message", [
    ([0, 3], ValueError, r"one_hot: values must be in \[0, 3\).*max 3"),
    ([-1], ValueError, r"one_hot: values must be in \[0, 3\).*min -1"),
    ([0.5], TypeError, r"one_hot: labels must be integers"),
])
def test_one_hot_errors(labels, error, message):
    with pytest.raises(error, match=message):
        F.one_hot(labels, 3)


def test_embedding_errors_name_the_shapes():
    weights = cr.zeros(5, 2)
    with pytest.raises(ValueError, match=r"embedding: values must be in \[0, 5\).*\(5, 2\)"):
        F.embedding([1, 5], weights)
    with pytest.raises(TypeError, match="embedding: ids must be integers"):
        F.embedding([1.0], weights)
    with pytest.raises(ValueError, match=r"embedding: weights must be 2-D"):
        F.embedding([1], cr.zeros(5))


def test_embedding_output_shape():
    table = cr.tensor(np.arange(12.0).reshape(4, 3))
    y = F.embedding(np.array([[3, 0]]), table)
    assert y.shape == (1, 2, 3)
    np.testing.assert_array_equal(y.numpy()[0, 0], [9, 10, 11])


# -- linear, prelu and gelu arguments --------------------------------------------------------------


def test_linear_errors():
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 3\) does not match kernel "
                                         r"of shape \(4, 5\)"):
        F.linear(cr.zeros(2, 3), cr.zeros(4, 5))
    with pytest.raises(ValueError, match=r"linear: kernel must be 2-D"):
        F.linear(cr.zeros(2, 3), cr.zeros(3))
    with pytest.raises(ValueError, match=r"linear: bias must have shape \(5,\)"):
        F.linear(cr.zeros(2, 4), cr.zeros(4, 5), cr.zeros(4))


def test_linear_accepts_arrays_and_takes_the_input_dtype():
    y = F.linear(cr.ones(2, 3), np.ones((3, 2)), np.zeros(2))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.numpy(), np.full((2, 2), 3.0))


def test_prelu_keras_style_per_element_alpha(rng):
    """α with the shape of one sample (1 on shared axes) broadcasts against x.shape[1:]."""
    x = rng.standard_normal((2, 3, 4))
    alpha = rng.uniform(0.1, 0.3, (1, 4))
    xt, at = cr.tensor(x, dtype="float64"), cr.tensor(alpha, dtype="float64", requires_grad=True)
    y = F.prelu(xt, at)
    np.testing.assert_allclose(y.numpy(), np.where(x > 0, x, x * alpha))
    y.sum().backward()
    np.testing.assert_allclose(at.grad.numpy(), np.minimum(x, 0).sum(axis=(0, 1))[None])


def test_prelu_rejects_alpha_that_does_not_fit():
    with pytest.raises(ValueError, match=r"prelu: alpha of shape \(5,\).*\(2, 3, 4\)"):
        F.prelu(cr.zeros(2, 3, 4), cr.zeros(5))


def test_gelu_approximate_argument():
    x = cr.tensor([0.5, -1.0])
    np.testing.assert_array_equal(F.gelu(x, approximate=True).numpy(),
                                  F.gelu(x, approximate="tanh").numpy())
    np.testing.assert_array_equal(F.gelu(x, "none").numpy(), F.gelu(x).numpy())
    with pytest.raises(ValueError, match="gelu: approximate must be"):
        F.gelu(x, approximate="sigmoid")


def test_softmax_axis_argument(rng):
    x = rng.standard_normal((3, 4))
    np.testing.assert_allclose(F.softmax(x, axis=0).numpy().sum(axis=0), 1, rtol=1e-6)
    np.testing.assert_allclose(F.log_softmax(x, 0).numpy(), torch.log_softmax(
        torch.tensor(x, dtype=torch.float32), 0).numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        F.softmax(x, axis=2)


# -- cross-entropy arguments -----------------------------------------------------------------------


def test_softmax_cross_entropy_accepts_keras_column_labels():
    logits = cr.tensor([[2.0, 0.5, 0.1], [0.0, 1.0, 3.0]])
    flat = F.softmax_cross_entropy(logits, [0, 2])
    assert F.softmax_cross_entropy(logits, np.array([[0], [2]])).item() == flat.item()


@pytest.mark.parametrize("labels,message", [
    (np.array([0, 1, 2]), r"integer labels must have shape \(2,\) for logits of shape \(2, 3\)"),
    (np.array([0, 3]), r"values must be in \[0, 3\).*max 3"),
    (np.ones((2, 4)), r"target of shape \(2, 4\) must have the logits' shape \(2, 3\)"),
])
def test_softmax_cross_entropy_errors(labels, message):
    with pytest.raises(ValueError, match="softmax_cross_entropy: " + message):
        F.softmax_cross_entropy(cr.zeros(2, 3), labels)


def test_reduction_must_be_known():
    with pytest.raises(ValueError, match="softmax_cross_entropy: reduction must be"):
        F.softmax_cross_entropy(cr.zeros(2, 3), [0, 1], reduction="max")
    with pytest.raises(ValueError, match="binary_cross_entropy_with_logits: targets of shape"):
        F.binary_cross_entropy_with_logits(cr.zeros(2, 3), cr.zeros(3, 2))


# -- batch_norm arguments and moving statistics ----------------------------------------------------


def test_batch_norm_updates_the_moving_statistics_in_place(rng):
    x = rng.standard_normal((16, 3)) * 2 + 5
    moving_mean, moving_variance = cr.zeros(3), cr.ones(3)
    mean_array = moving_mean.data
    F.batch_norm(cr.tensor(x), None, None, moving_mean, moving_variance, training=True,
                 momentum=0.9)
    assert moving_mean.data is mean_array
    np.testing.assert_allclose(moving_mean.numpy(), 0.1 * x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(moving_variance.numpy(), 0.9 + 0.1 * x.var(axis=0), rtol=1e-5)


def test_batch_norm_inference_uses_the_moving_statistics_only(rng):
    x = rng.standard_normal((5, 2))
    y = F.batch_norm(cr.tensor(x, dtype="float64"), None, None, cr.tensor([1.0, -1.0]),
                     cr.tensor([4.0, 0.25]), training=False, epsilon=0.0)
    np.testing.assert_allclose(y.numpy(), (x - [1.0, -1.0]) / [2.0, 0.5], rtol=1e-6)


def test_batch_norm_errors():
    with pytest.raises(ValueError, match=r"batch_norm: gamma must have shape \(3,\) for input "
                                         r"of shape \(4, 3\)"):
        F.batch_norm(cr.zeros(4, 3), cr.ones(2), None, None, None, training=True)
    with pytest.raises(ValueError, match="batch_norm: inference .* needs the moving statistics"):
        F.batch_norm(cr.zeros(4, 3), None, None, None, None, training=False)
    with pytest.raises(ValueError, match="batch_norm: input must have at least 2 dimensions"):
        F.batch_norm(cr.zeros(4), None, None, None, None, training=True)


def test_batch_norm_without_moving_statistics_in_training(rng):
    y = F.batch_norm(cr.tensor(rng.standard_normal((6, 2))), None, None, None, None,
                     training=True, epsilon=0.0)
    np.testing.assert_allclose(y.numpy().mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(y.numpy().std(axis=0), 1, rtol=1e-5)


# -- pooling and conv inside a tiny network --------------------------------------------------------


def test_small_cnn_step_matches_torch(rng):
    """conv → batch norm → relu → max pool → linear → cross-entropy: values and gradients."""
    x = rng.standard_normal((4, 2, 8, 8)).astype(np.float32)
    w = (rng.standard_normal((3, 2, 3, 3)) * 0.3).astype(np.float32)
    k = (rng.standard_normal((3 * 4 * 4, 5)) * 0.1).astype(np.float32)
    labels = rng.integers(0, 5, 4)
    ours = [cr.tensor(a, requires_grad=True) for a in (w, k)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (w, k)]
    h = F.batch_norm(F.conv2d(cr.tensor(x), ours[0], padding="same"), None, None, None, None,
                     training=True)
    h = F.max_pool2d(F.relu(h), 2)
    loss = F.softmax_cross_entropy(F.linear(h.reshape(4, -1), ours[1]), labels)
    th = TF.batch_norm(TF.conv2d(torch.tensor(x), theirs[0], padding="same"), None, None,
                       training=True, eps=1e-3)
    th = TF.max_pool2d(TF.relu(th), 2)
    tloss = TF.cross_entropy(th.reshape(4, -1) @ theirs[1], torch.tensor(labels))
    loss.backward()
    tloss.backward()
    assert loss.item() == pytest.approx(tloss.item(), rel=1e-5)
    for a, t in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-5)
