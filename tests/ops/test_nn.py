"""The fused ops of chainrule.ops.nn: PyTorch parity (values, gradients and, where the backward is
differentiable, second derivatives), float64 gradcheck, and agreement with the composites from
primitives that they replace."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import functional as F
from chainrule.ops.nn import scatter_add_rows
from tests.torch_helpers import require_torch

torch = require_torch()
TF = torch.nn.functional


def as_numpy(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else t.numpy()


def assert_close(ours, theirs, rtol=1e-9, atol=1e-10, what=""):
    np.testing.assert_allclose(as_numpy(ours), as_numpy(theirs), rtol=rtol, atol=atol,
                               err_msg=what)


def first_and_second_order(fn, arrays, wrap, grad, weight):
    """Outputs, gradients and gradients of Σ(gradient²) with respect to every input."""
    inputs = [wrap(a) for a in arrays]
    y = fn(*inputs)
    loss = (y * wrap(weight, False) * y).sum()
    grads = grad(loss, inputs, create_graph=True)
    second = grad(sum((g * g).sum() for g in grads), inputs)
    return y, grads, second


def cr_wrap(a, requires_grad=True):
    return cr.tensor(a, dtype="float64", requires_grad=requires_grad)


def torch_wrap(a, requires_grad=True):
    return torch.tensor(a, requires_grad=requires_grad)


def torch_grad(out, inputs, create_graph=False):
    return torch.autograd.grad(out, inputs, create_graph=create_graph)


# -- elementwise activations ---------------------------------------------------------------------

# name: (chainrule function, torch function, shapes of the inputs after x)
ACTIVATIONS = {
    "relu": (F.relu, TF.relu, []),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2), []),
    "elu": (lambda x: F.elu(x, 1.3), lambda x: TF.elu(x, 1.3), []),
    "sigmoid": (F.sigmoid, torch.sigmoid, []),
    "tanh": (F.tanh, torch.tanh, []),
    "softplus": (F.softplus, TF.softplus, []),
    "gelu": (F.gelu, TF.gelu, []),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"),
                  lambda x: TF.gelu(x, approximate="tanh"), []),
    "erf": (F.erf, torch.erf, []),
    "prelu_channels": (F.prelu, TF.prelu, [(3,)]),
    "prelu_scalar": (F.prelu, TF.prelu, [(1,)]),
    "softmax": (lambda x: F.softmax(x, axis=1), lambda x: torch.softmax(x, 1), []),
    "log_softmax": (lambda x: F.log_softmax(x, axis=-1), lambda x: torch.log_softmax(x, -1), []),
}


def activation_inputs(name, rng, shape=(4, 3, 5)):
    x = rng.standard_normal(shape) * 2
    x[np.abs(x) < 1e-3] = 0.5  # away from the kinks, where derivatives are one-sided
    extra = [rng.uniform(0.1, 0.5, s) for s in ACTIVATIONS[name][2]]
    return [x] + extra


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_parity_with_torch_to_second_order(name, rng):
    ours_fn, torch_fn, _ = ACTIVATIONS[name]
    arrays = activation_inputs(name, rng)
    weight = rng.standard_normal(arrays[0].shape)
    y, grads, second = first_and_second_order(ours_fn, arrays, cr_wrap, cr.grad, weight)
    ty, tgrads, tsecond = first_and_second_order(torch_fn, arrays, torch_wrap, torch_grad,
                                                 weight)
    assert_close(y, ty, what="forward")
    for g, tg in zip(grads, tgrads):
        assert_close(g, tg, what="gradient")
    for g, tg in zip(second, tsecond):
        assert_close(g, tg, rtol=1e-8, atol=1e-9, what="second order")


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_gradcheck(name, rng):
    arrays = activation_inputs(name, rng, shape=(2, 3, 2))
    inputs = [cr_wrap(a) for a in arrays]
    assert cr.gradcheck(ACTIVATIONS[name][0], inputs)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_float32_stays_float32(name, rng):
    arrays = [a.astype(np.float32) for a in activation_inputs(name, rng)]
    inputs = [cr.tensor(a, requires_grad=True) for a in arrays]
    y = ACTIVATIONS[name][0](*inputs)
    y.sum().backward()
    assert y.dtype == np.float32
    assert all(t.grad.dtype == np.float32 for t in inputs)
    expected = ACTIVATIONS[name][1](*[torch.tensor(a) for a in arrays])
    assert_close(y, expected, rtol=2e-6, atol=1e-6)


def test_prelu_per_channel_on_images_and_features(rng):
    """α along axis 1: channels of NCHW input, features of (N, F) input."""
    for shape in [(2, 3, 4, 5), (6, 3)]:
        x, alpha = rng.standard_normal(shape), rng.uniform(0.1, 0.5, 3)
        xt, at = cr_wrap(x), cr_wrap(alpha)
        tx, ta = torch_wrap(x), torch_wrap(alpha)
        y, ty = F.prelu(xt, at), TF.prelu(tx, ta)
        (y * y).sum().backward()
        (ty * ty).sum().backward()
        assert_close(y, ty)
        assert_close(xt.grad, tx.grad)
        assert_close(at.grad, ta.grad)


@pytest.mark.parametrize("name,composite", [
    ("leaky_relu", lambda x: cr.where(x.data > 0, x, x * 0.2)),
    ("elu", lambda x: cr.where(x.data > 0, x, (x.minimum(0.0).exp() - 1) * 1.3)),
    ("softplus", lambda x: x.maximum(0.0) + ((-x.abs()).exp() + 1).log()),
    ("gelu", lambda x: x * 0.5 * (F.erf(x * (1 / math.sqrt(2))) + 1)),
    ("softmax", lambda x: (x - x.logsumexp(axis=1, keepdims=True)).exp()),
    ("log_softmax", lambda x: x - x.logsumexp(axis=-1, keepdims=True)),
])
def test_fused_activation_matches_its_composite(name, composite, rng, float64):
    x = activation_inputs(name, rng)[0]
    results = []
    for fn in (ACTIVATIONS[name][0], composite):
        xt = cr.tensor(x, requires_grad=True)
        y = fn(xt)
        (y * y).sum().backward()
        results.append((y.numpy(), xt.grad.numpy()))
    for a, c in zip(*results):
        np.testing.assert_allclose(a, c, rtol=1e-10, atol=1e-12)


def test_gelu_tanh_differs_from_exact_gelu(rng):
    x = cr.tensor(rng.standard_normal(50) * 3)
    difference = np.abs(F.gelu(x).numpy() - F.gelu(x, approximate="tanh").numpy())
    assert 1e-6 < difference.max() < 1e-2


# -- softmax family at extreme logits ------------------------------------------------------------


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
def test_softmax_is_finite_at_huge_logits(fn):
    x = cr.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], requires_grad=True)
    y = fn(x)
    (y * cr.tensor([[1.0, 2.0, 3.0], [1.0, 0.0, -1.0]])).sum().backward()
    assert np.isfinite(y.numpy()).all() and np.isfinite(x.grad.numpy()).all()
    expected = getattr(torch, fn.__name__)(torch.tensor(x.numpy()), -1)
    assert_close(y, expected, rtol=1e-6, atol=1e-6)


# -- linear --------------------------------------------------------------------------------------


@pytest.mark.parametrize("x_shape", [(5, 3), (2, 4, 3), (3,)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_matches_composite_to_second_order(x_shape, with_bias, rng):
    arrays = [rng.standard_normal(x_shape), rng.standard_normal((3, 4)), rng.standard_normal(4)]
    arrays = arrays if with_bias else arrays[:2]
    weight = rng.standard_normal(x_shape[:-1] + (4,))

    def composite(x, k, b=None):
        return x @ k + b if b is not None else x @ k

    fused = first_and_second_order(F.linear, arrays, cr_wrap, cr.grad, weight)
    reference = first_and_second_order(composite, arrays, cr_wrap, cr.grad, weight)
    for a, c in zip([fused[0], *fused[1], *fused[2]], [reference[0], *reference[1],
                                                        *reference[2]]):
        assert_close(a, c, rtol=1e-12, atol=1e-12)


def test_linear_parity_with_torch_and_gradcheck(rng):
    x, k, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5)), rng.standard_normal(5)
    ours = [cr_wrap(a) for a in (x, k, b)]
    theirs = [torch_wrap(a) for a in (x, k, b)]
    y = F.linear(*ours)
    ty = TF.linear(theirs[0], theirs[1].T, theirs[2])
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    assert_close(y, ty)
    for a, t in zip(ours, theirs):
        assert_close(a.grad, t.grad)
    small = [cr_wrap(a) for a in (x[:1, :2], k[:, :2], b[:2])]
    assert cr.gradcheck(F.linear, small)


@pytest.mark.parametrize("x_shape", [(1, 4), (4,), (1, 1, 4)])
def test_linear_single_row_backward_matches_torch(x_shape, rng):
    # one row: the kernel gradient is an outer product (np.dot path, not np.matmul's loop)
    x, k, b = rng.standard_normal(x_shape), rng.standard_normal((4, 3)), rng.standard_normal(3)
    ours = [cr_wrap(a) for a in (x, k, b)]
    theirs = [torch_wrap(a) for a in (x, k, b)]
    upstream = rng.standard_normal(x_shape[:-1] + (3,))
    F.linear(*ours).backward(cr_wrap(upstream))
    TF.linear(theirs[0], theirs[1].T, theirs[2]).backward(torch_wrap(upstream))
    for a, t in zip(ours, theirs):
        assert a.grad.shape == a.shape
        assert_close(a.grad, t.grad)


@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_with_fused_relu_matches_the_composite_to_second_order(with_bias, rng):
    arrays = [rng.standard_normal((5, 3)), rng.standard_normal((3, 4)), rng.standard_normal(4)]
    arrays = arrays if with_bias else arrays[:2]
    weight = rng.standard_normal((5, 4))
    fused = first_and_second_order(lambda *a: F.linear(*a, relu=True), arrays, cr_wrap, cr.grad,
                                   weight)
    reference = first_and_second_order(lambda *a: F.relu(F.linear(*a)), arrays, cr_wrap,
                                       cr.grad, weight)
    for a, c in zip([fused[0], *fused[1], *fused[2]], [reference[0], *reference[1],
                                                        *reference[2]]):
        assert_close(a, c, rtol=1e-12, atol=1e-12)


def test_linear_with_fused_relu_matches_torch_and_gradcheck(rng):
    x, k, b = rng.standard_normal((6, 4)), rng.standard_normal((4, 5)), rng.standard_normal(5)
    ours = [cr_wrap(a) for a in (x, k, b)]
    theirs = [torch_wrap(a) for a in (x, k, b)]
    upstream = rng.standard_normal((6, 5))
    y = F.linear(*ours, relu=True)
    ty = torch.relu(TF.linear(theirs[0], theirs[1].T, theirs[2]))
    y.backward(cr_wrap(upstream))
    ty.backward(torch_wrap(upstream))
    assert_close(y, ty)
    for a, t in zip(ours, theirs):
        assert_close(a.grad, t.grad)
    assert cr.gradcheck(lambda *a: F.linear(*a, relu=True), [cr_wrap(a) for a in (x, k, b)])


def test_linear_float32_stays_float32(rng):
    x = cr.tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    k = cr.tensor(rng.standard_normal((3, 2)).astype(np.float32), requires_grad=True)
    b = cr.tensor(np.zeros(2, np.float32), requires_grad=True)
    y = F.linear(x, k, b)
    y.sum().backward()
    assert {y.dtype, x.grad.dtype, k.grad.dtype, b.grad.dtype} == {np.dtype(np.float32)}


# -- cross-entropies -----------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("target_kind", ["sparse", "one_hot", "probabilities"])
def test_softmax_cross_entropy_parity_with_torch(target_kind, reduction, rng):
    logits = rng.standard_normal((6, 5)) * 3
    labels = rng.integers(0, 5, 6)
    if target_kind == "sparse":
        target = labels
    elif target_kind == "one_hot":
        target = np.eye(5)[labels]
    else:
        target = rng.dirichlet(np.ones(5), 6)
    x, tx = cr_wrap(logits), torch_wrap(logits)
    loss = F.softmax_cross_entropy(x, target, reduction=reduction)
    tloss = TF.cross_entropy(tx, torch.tensor(target), reduction=reduction)
    assert_close(loss, tloss)
    weight = rng.standard_normal(loss.shape)
    (loss * cr.tensor(weight, dtype="float64")).sum().backward()
    (tloss * torch.tensor(weight)).sum().backward()
    assert_close(x.grad, tx.grad)


def test_softmax_cross_entropy_over_axis_1_of_images(rng):
    """Per-pixel classification: logits (N, C, H, W), labels (N, H, W), as PyTorch."""
    logits, labels = rng.standard_normal((2, 4, 3, 5)), rng.integers(0, 4, (2, 3, 5))
    x, tx = cr_wrap(logits), torch_wrap(logits)
    loss = F.softmax_cross_entropy(x, labels, axis=1)
    tloss = TF.cross_entropy(tx, torch.tensor(labels))
    loss.backward()
    tloss.backward()
    assert_close(loss, tloss)
    assert_close(x.grad, tx.grad)


@pytest.mark.parametrize("sparse", [True, False])
def test_softmax_cross_entropy_gradcheck_and_composite(sparse, rng, float64):
    logits = rng.standard_normal((3, 4))
    labels = rng.integers(0, 4, 3)
    target = labels if sparse else rng.dirichlet(np.ones(4), 3)
    x = cr.tensor(logits, requires_grad=True)
    if sparse:
        assert cr.gradcheck(lambda t: F.softmax_cross_entropy(t, labels, reduction="none"), [x])
    else:
        t = cr.tensor(target, requires_grad=True)
        assert cr.gradcheck(lambda a, b: F.softmax_cross_entropy(a, b, reduction="none"), [x, t])
    dense = np.eye(4)[labels] if sparse else target
    composite = -(cr.tensor(dense) * F.log_softmax(cr.tensor(logits), -1)).sum(axis=-1).mean()
    assert_close(F.softmax_cross_entropy(cr.tensor(logits), target), composite, rtol=1e-12)


def test_softmax_cross_entropy_target_gradient_matches_torch(rng):
    logits, target = rng.standard_normal((4, 3)), rng.dirichlet(np.ones(3), 4)
    x, t = cr_wrap(logits), cr_wrap(target)
    tx, tt = torch_wrap(logits), torch_wrap(target)
    F.softmax_cross_entropy(x, t).backward()
    TF.cross_entropy(tx, tt).backward()
    assert_close(t.grad, tt.grad)


@pytest.mark.parametrize("sparse", [True, False])
def test_softmax_cross_entropy_is_finite_at_huge_logits(sparse):
    logits = cr.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], requires_grad=True)
    labels = np.array([1, 0])
    loss = F.softmax_cross_entropy(logits, labels if sparse else np.eye(3)[labels])
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(logits.grad.numpy()).all()
    expected = TF.cross_entropy(torch.tensor(logits.numpy()), torch.tensor(labels))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_softmax_cross_entropy_refuses_second_order(rng):
    x = cr.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match="SoftmaxCrossEntropy"):
        cr.grad(F.softmax_cross_entropy(x, [0, 1]), [x], create_graph=True)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_with_logits_parity_to_second_order(reduction, rng):
    logits, targets = rng.standard_normal((4, 3)) * 3, rng.uniform(0, 1, (4, 3))
    weight = rng.standard_normal((4, 3)) if reduction == "none" else np.array(1.0)

    def ours(x, t):
        return F.binary_cross_entropy_with_logits(x, t, reduction=reduction)

    def theirs(x, t):
        return TF.binary_cross_entropy_with_logits(x, t, reduction=reduction)

    y, grads, second = first_and_second_order(ours, [logits, targets], cr_wrap, cr.grad, weight)
    ty, tgrads, tsecond = first_and_second_order(theirs, [logits, targets], torch_wrap,
                                                 torch_grad, weight)
    for a, t in zip([y, *grads, *second], [ty, *tgrads, *tsecond]):
        assert_close(a, t)
    assert cr.gradcheck(ours, [cr_wrap(logits[:2]), cr_wrap(targets[:2])])


def test_binary_cross_entropy_with_logits_is_finite_at_huge_logits():
    x = cr.tensor([1e4, -1e4, 50.0, -50.0], requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(x, [0.0, 1.0, 1.0, 0.0])
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(x.grad.numpy()).all()
    assert loss.item() == pytest.approx(1e4 / 2, rel=1e-6)


# -- batch normalisation -------------------------------------------------------------------------


def make_batch_norm_inputs(rng, shape, channels):
    return (rng.standard_normal(shape) * 2 + 1, rng.uniform(0.5, 1.5, channels),
            rng.standard_normal(channels), rng.standard_normal(channels),
            rng.uniform(0.5, 2.0, channels))


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5, 2)])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_parity_with_torch(shape, affine, training, rng):
    x, gamma, beta, mean, var = make_batch_norm_inputs(rng, shape, 3)
    momentum = 0.9
    ours = [cr_wrap(a) for a in (x, gamma, beta)]
    theirs = [torch_wrap(a) for a in (x, gamma, beta)]
    moving = [cr.tensor(mean, dtype="float64"), cr.tensor(var, dtype="float64")]
    running = [torch.tensor(mean), torch.tensor(var)]
    y = F.batch_norm(ours[0], ours[1] if affine else None, ours[2] if affine else None,
                     *moving, training=training, momentum=momentum, epsilon=1e-3)
    ty = TF.batch_norm(theirs[0], *running, theirs[1] if affine else None,
                       theirs[2] if affine else None, training=training,
                       momentum=1 - momentum, eps=1e-3)
    gy = rng.standard_normal(shape)
    y.backward(cr.tensor(gy, dtype="float64"))
    ty.backward(torch.tensor(gy))
    assert_close(y, ty)
    for a, t in zip(ours if affine else ours[:1], theirs):
        assert_close(a.grad, t.grad, rtol=1e-8, atol=1e-9)
    assert_close(moving[0], running[0])
    if not training:
        assert_close(moving[1], running[1])
        return
    # Keras (and chainrule) move towards the biased batch variance, PyTorch the unbiased one
    count = x.size // 3
    axes = tuple(a for a in range(x.ndim) if a != 1)
    biased = x.var(axis=axes)
    np.testing.assert_allclose(moving[1].numpy(), var * momentum + biased * (1 - momentum),
                               rtol=1e-12)
    unbiased_update = var * momentum + biased * count / (count - 1) * (1 - momentum)
    np.testing.assert_allclose(running[1].numpy(), unbiased_update, rtol=1e-12)


def test_batch_norm_channels_last_axis(rng):
    x, gamma, beta, mean, var = make_batch_norm_inputs(rng, (4, 5, 2, 3), 3)
    xt = cr_wrap(x)
    y = F.batch_norm(xt, cr_wrap(gamma), cr_wrap(beta), cr.tensor(mean), cr.tensor(var),
                     training=True, axis=-1)
    tx = torch_wrap(x)
    ty = TF.batch_norm(tx.permute(0, 3, 1, 2), None, None, torch.tensor(gamma),
                       torch.tensor(beta), training=True, eps=1e-3).permute(0, 2, 3, 1)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    assert_close(y, ty)
    assert_close(xt.grad, tx.grad, rtol=1e-8)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_gradcheck(training, affine, rng):
    x, gamma, beta, mean, var = make_batch_norm_inputs(rng, (3, 2, 2, 2), 2)
    inputs = [cr_wrap(a) for a in ((x, gamma, beta) if affine else (x,))]
    moving = (cr.tensor(mean, dtype="float64"), cr.tensor(var, dtype="float64"))

    def fn(x, gamma=None, beta=None):
        return F.batch_norm(x, gamma, beta, *moving, training=training, momentum=1.0)

    assert cr.gradcheck(fn, inputs)


def test_batch_norm_matches_composite_from_primitives(rng, float64):
    x, gamma, beta, _, _ = make_batch_norm_inputs(rng, (4, 3, 2, 5), 3)

    def composite(x, gamma, beta):
        mean = x.mean(axis=(0, 2, 3), keepdims=True)
        var = x.var(axis=(0, 2, 3), keepdims=True)
        shape = (1, 3, 1, 1)
        return (x - mean) / (var + 1e-3).sqrt() * gamma.reshape(shape) + beta.reshape(shape)

    results = []
    for fn in (lambda *a: F.batch_norm(*a, None, None, training=True), composite):
        inputs = [cr.tensor(a, requires_grad=True) for a in (x, gamma, beta)]
        y = fn(*inputs)
        (y * y * y).sum().backward()
        results.append([y.numpy()] + [t.grad.numpy() for t in inputs])
    for a, c in zip(*results):
        np.testing.assert_allclose(a, c, rtol=1e-9, atol=1e-10)


def test_batch_norm_float32_stays_float32(rng):
    x = cr.tensor(rng.standard_normal((8, 4, 3, 3)).astype(np.float32), requires_grad=True)
    gamma = cr.ones(4, requires_grad=True)
    moving = cr.zeros(4), cr.ones(4)
    y = F.batch_norm(x, gamma, None, *moving, training=True)
    y.sum().backward()
    assert {y.dtype, x.grad.dtype, gamma.grad.dtype, moving[0].dtype,
            moving[1].dtype} == {np.dtype(np.float32)}


# -- embedding -----------------------------------------------------------------------------------


def test_embedding_parity_with_repeated_ids_to_second_order(rng):
    table = rng.standard_normal((6, 3))
    ids = np.array([[0, 2, 2], [5, 0, 2]])
    weight = rng.standard_normal((2, 3, 3))
    y, grads, second = first_and_second_order(lambda w: F.embedding(ids, w), [table], cr_wrap,
                                              cr.grad, weight)
    ty, tgrads, tsecond = first_and_second_order(lambda w: TF.embedding(torch.tensor(ids), w),
                                                 [table], torch_wrap, torch_grad, weight)
    for a, t in zip([y, *grads, *second], [ty, *tgrads, *tsecond]):
        assert_close(a, t)
    assert cr.gradcheck(lambda w: F.embedding(ids, w), [cr_wrap(table)])


@pytest.mark.parametrize("rows,count", [(50, 2000), (3000, 2000)])  # many and few repeats
def test_scatter_add_rows_matches_add_at(rows, count, rng):
    ids = rng.integers(0, rows, count)
    values = rng.standard_normal((count, 7)).astype(np.float32)
    expected = np.zeros((rows, 7), np.float32)
    np.add.at(expected, ids, values)
    got = scatter_add_rows(ids, values, rows)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert scatter_add_rows(ids[:0], values[:0], 4).tolist() == np.zeros((4, 7)).tolist()


# -- ops that take their data as inputs (so that traces read each call's) ------------------------


def test_pick_last_matches_torch_gather_and_gradchecks(rng):
    from chainrule.ops.nn import PickLast

    values = rng.standard_normal((2, 3, 5))
    labels = np.array([[0, 4, 2], [1, 1, 3]])
    ours_in = cr_wrap(values)
    theirs_in = torch.tensor(values, requires_grad=True)
    ours = PickLast()(ours_in, cr.tensor(labels))
    theirs = torch.gather(theirs_in, -1, torch.tensor(labels)[..., None]).squeeze(-1)
    assert_close(ours, theirs)
    upstream = rng.standard_normal(labels.shape)
    ours.backward(cr_wrap(upstream, requires_grad=False))
    theirs.backward(torch.tensor(upstream))
    assert_close(ours_in.grad, theirs_in.grad)
    assert cr.gradcheck(lambda v: PickLast()(v, cr.tensor(labels)), [cr_wrap(values)])


def test_dropout_op_matches_torch_with_the_same_mask_and_gradchecks(rng):
    from chainrule.ops.nn import Dropout

    x = rng.standard_normal((4, 6))
    op = Dropout(0.4, seed=3)
    ours_in = cr_wrap(x)
    ours = op(ours_in)
    mask = torch.tensor(op.mask)  # keep / (1 − p), drawn by the op
    assert set(np.unique(op.mask)) == {0.0, 1 / 0.6}
    theirs_in = torch.tensor(x, requires_grad=True)
    theirs = theirs_in * mask
    assert_close(ours, theirs)
    upstream = rng.standard_normal(x.shape)
    ours.backward(cr_wrap(upstream, requires_grad=False))
    theirs.backward(torch.tensor(upstream))
    assert_close(ours_in.grad, theirs_in.grad)
    assert cr.gradcheck(lambda t: Dropout(0.4, seed=3)(t), [cr_wrap(x)])


def test_dropout_draws_the_masks_it_drew_before_it_was_an_op():
    """Same generator, same draws: F.dropout's masks under a seed are those of the old
    x * Tensor(mask) spelling, so seeded runs from before still reproduce."""
    x = np.ones((3, 7), np.float32)
    cr.manual_seed(11)
    got = F.dropout(cr.tensor(x), 0.25).numpy()
    generator = np.random.default_rng(11)  # chainrule.manual_seed(11)'s generator
    keep = generator.random(x.shape, dtype=np.float32) >= 0.25
    np.testing.assert_array_equal(got, keep.astype(np.float32) * np.float32(1 / 0.75))
