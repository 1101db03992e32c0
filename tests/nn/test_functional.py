"""chainrule.nn.functional against torch.nn.functional, gradient checks of the functions
composed here, and the PyTorch-named Tensor methods."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from tests.torch_helpers import require_torch

torch = require_torch()
TF = torch.nn.functional


def _t(x, grad=False):
    return torch.tensor(x, requires_grad=grad)


def _c(x, grad=False):
    return cr.tensor(x, dtype=np.float64 if np.asarray(x).dtype.kind == "f" else None,
                     requires_grad=grad)


def _check(ours, theirs, *arrays, grad_of=(0,), rtol=1e-10, atol=1e-12):
    """Call ``ours`` on chainrule tensors and ``theirs`` on torch tensors of ``arrays``;
    compare values, then gradients of Σ out² wrt the inputs in ``grad_of``."""
    cs = [_c(a, i in grad_of) for i, a in enumerate(arrays)]
    ts = [_t(a, i in grad_of) for i, a in enumerate(arrays)]
    yc, yt = ours(*cs), theirs(*ts)
    np.testing.assert_allclose(yc.numpy(), yt.detach().numpy(), rtol=rtol, atol=atol)
    (yc * yc).sum().backward()
    (yt * yt).sum().backward()
    for i in grad_of:
        np.testing.assert_allclose(cs[i].grad.numpy(), ts[i].grad.numpy(), rtol=rtol * 100,
                                   atol=atol * 100)


@pytest.fixture
def x4(rng):
    return rng.standard_normal((2, 3, 8, 7))


def test_linear_takes_pytorchs_weight_layout(rng):
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((3, 5)), rng.standard_normal(3)
    _check(F.linear, TF.linear, x, w, b, grad_of=(0, 1, 2))
    _check(F.linear, TF.linear, x, w, grad_of=(0, 1))


@pytest.mark.parametrize("kwargs", [{}, dict(stride=2, padding=1), dict(padding=(2, 1)),
                                    dict(dilation=2), dict(padding="same")])
def test_conv2d(rng, x4, kwargs):
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    _check(lambda x, w, b: F.conv2d(x, w, b, **kwargs),
           lambda x, w, b: TF.conv2d(x, w, b, **kwargs), x4, w, b, grad_of=(0, 1, 2),
           rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=3, stride=2),
                                    dict(kernel_size=3, stride=1, padding=1),
                                    dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1))])
@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
def test_pools(x4, name, kwargs):
    _check(lambda x: getattr(F, name)(x, **kwargs), lambda x: getattr(TF, name)(x, **kwargs), x4)


def test_avg_pool_without_counting_the_padding(x4):
    _check(lambda x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=False),
           lambda x: TF.avg_pool2d(x, 3, 1, 1, count_include_pad=False), x4)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmaxes_take_dim(rng, name, dim):
    x = rng.standard_normal((3, 4, 5))
    _check(lambda t: getattr(F, name)(t, dim=dim), lambda t: getattr(TF, name)(t, dim=dim), x)


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid", "elu", "softplus", "gelu"])
def test_activations(rng, name):
    _check(getattr(F, name), getattr(TF, name), rng.standard_normal((4, 6)), rtol=1e-7,
           atol=1e-9)


@pytest.mark.parametrize("args", [(1,), (0,), (1, 2), (2, -1), (0, -1)])
def test_flatten_start_and_end_dim(x4, args):
    _check(lambda x: F.flatten(x, *args), lambda x: torch.flatten(x, *args), x4)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses(rng, reduction):
    x, ids = rng.standard_normal((5, 4)), np.array([3, 0, 1, 1, 2])
    log_p = np.log(np.exp(x) / np.exp(x).sum(1, keepdims=True))
    _check(lambda a: F.nll_loss(a, cr.tensor(ids), reduction=reduction),
           lambda a: TF.nll_loss(a, torch.tensor(ids), reduction=reduction), log_p)
    _check(lambda a: F.cross_entropy(a, cr.tensor(ids), reduction=reduction),
           lambda a: TF.cross_entropy(a, torch.tensor(ids), reduction=reduction), x)
    _check(lambda a, b: F.mse_loss(a, b, reduction=reduction),
           lambda a, b: TF.mse_loss(a, b, reduction=reduction), x, rng.standard_normal((5, 4)),
           grad_of=(0, 1))
    p = rng.uniform(0.05, 0.95, (5, 4))
    _check(lambda a, b: F.binary_cross_entropy(a, b, reduction=reduction),
           lambda a, b: TF.binary_cross_entropy(a, b, reduction=reduction), p, rng.random((5, 4)))


def test_losses_over_spatial_axes(rng):
    """(N, C, H, W) scores with (N, H, W) ids: class axis 1, as PyTorch."""
    x, ids = rng.standard_normal((2, 4, 3, 3)), rng.integers(0, 4, (2, 3, 3))
    _check(lambda a: F.cross_entropy(a, cr.tensor(ids)),
           lambda a: TF.cross_entropy(a, torch.tensor(ids)), x)
    _check(lambda a: F.nll_loss(F.log_softmax(a, 1), cr.tensor(ids), ignore_index=0),
           lambda a: TF.nll_loss(TF.log_softmax(a, 1), torch.tensor(ids), ignore_index=0), x)
    _check(lambda a: F.cross_entropy(a, cr.tensor(ids), label_smoothing=0.2, ignore_index=1),
           lambda a: TF.cross_entropy(a, torch.tensor(ids), label_smoothing=0.2,
                                      ignore_index=1), x)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_function_updates_the_running_statistics_as_pytorch(rng, x4, training):
    mean_c, var_c = np.zeros(3), np.ones(3) * 2
    mean_t = torch.zeros(3, dtype=torch.float64)
    var_t = torch.ones(3, dtype=torch.float64) * 2
    w, b = rng.random(3) + 0.5, rng.standard_normal(3)
    _check(lambda x, w, b: F.batch_norm(x, mean_c, var_c, w, b, training, 0.3, 1e-3),
           lambda x, w, b: TF.batch_norm(x, mean_t, var_t, w, b, training, 0.3, 1e-3),
           x4, w, b, grad_of=(0, 1, 2), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(mean_c, mean_t.numpy(), rtol=1e-12)
    np.testing.assert_allclose(var_c, var_t.numpy(), rtol=1e-12)


def test_dropout_defaults_to_training_and_p_one_gives_zeros():
    x = cr.ones(1000)
    assert (F.dropout(x).numpy() == 0).mean() > 0.3  # PyTorch's F.dropout: training=True
    np.testing.assert_array_equal(F.dropout(x, 0.5, training=False).numpy(), x.numpy())
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), np.zeros(1000))


# -- gradient checks of what is composed here -------------------------------------------------


def test_gradcheck_of_the_composed_functions(float64, rng):
    x = cr.tensor(rng.standard_normal((4, 3, 5)), requires_grad=True)
    ids = cr.tensor(rng.integers(0, 3, (4, 5)))
    w = np.array([0.5, 2.0, 1.0])
    assert cr.gradcheck(lambda a: F.nll_loss(a, ids, weight=w, ignore_index=1), [x])
    assert cr.gradcheck(lambda a: F.cross_entropy(a, ids, label_smoothing=0.3), [x])
    assert cr.gradcheck(lambda a: F.linear(a, a[0, :2, :]), [x])
    img = cr.tensor(rng.standard_normal((2, 2, 5, 5)), requires_grad=True)
    assert cr.gradcheck(lambda a: F.avg_pool2d(a, 3, 2, 1), [img])
    assert cr.gradcheck(lambda a: F.flatten(a, 1, 2), [img])
    p = cr.tensor(rng.uniform(0.1, 0.9, (3, 4)), requires_grad=True)
    assert cr.gradcheck(lambda a: F.binary_cross_entropy(a, np.full((3, 4), 0.3)), [p])

    def dropout2d_same_mask(a):
        cr.manual_seed(3)  # the same channels dropped at every evaluation
        return F.dropout2d(a, 0.5)

    assert cr.gradcheck(dropout2d_same_mask, [img])
    mask = dropout2d_same_mask(cr.ones(2, 2, 5, 5)).numpy()
    assert 0 < (mask == 0).mean() < 1
    img.grad = None
    cr.manual_seed(3)
    y = F.dropout2d(img, 0.5)
    y.sum().backward()
    np.testing.assert_array_equal(img.grad.numpy(), mask)


# -- PyTorch's Tensor methods -----------------------------------------------------------------


def test_tensor_methods_of_the_mnist_example():
    output = cr.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]])
    target = cr.tensor([1, 2, 2])
    pred = output.argmax(dim=1, keepdim=True)
    assert pred.shape == (3, 1)
    assert pred.eq(target.view_as(pred)).sum().item() == 2
    assert output.size() == (3, 3) and output.size(1) == 3 and output.size == 9
    assert output.dim() == 2 and output.numel() == 9
    assert output.to("cpu") is output and target.float().dtype == np.float32
    assert output.long().dtype == np.int64 and output.to(np.float64).dtype == np.float64
    assert output.view(9).shape == (9,) and output.view(-1, 1).shape == (9, 1)
    assert output.unsqueeze(0).shape == (1, 3, 3) and output.permute(1, 0).shape == (3, 3)
    assert output.sum(dim=0, keepdim=True).shape == (1, 3)
    assert output.mean(dim=1).shape == (3,)
    assert output.argmax(1).tolist() == [1, 0, 2]  # NumPy's positional axis still works
    w = cr.ones(3, requires_grad=True)
    copy = w.clone()
    assert copy is not w and not np.shares_memory(copy.data, w.data)
    (copy * 2).sum().backward()
    assert w.grad.tolist() == [2.0, 2.0, 2.0]
    assert not np.shares_memory(target.clone().data, target.data)
    with pytest.raises(TypeError, match="not both"):
        output.sum(axis=0, dim=0)
    for name, expected in [("eq", [0, 0, 1]), ("ne", [1, 1, 0]), ("lt", [1, 1, 0]),
                           ("le", [1, 1, 1]), ("gt", [0, 0, 0]), ("ge", [0, 0, 1])]:
        assert getattr(cr.tensor([0, 1, 2]), name)(2).tolist() == [bool(v) for v in expected]
