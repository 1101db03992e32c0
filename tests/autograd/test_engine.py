"""The backward engine: the chain rule, accumulation, freeing, errors and higher order."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import chainrule as cr


def test_lecture_graph_gradients():
    """f = (x + y)·z at x = −2, y = 5, z = −4 (the lectures' first computational graph)."""
    x, y, z = (cr.tensor(v, requires_grad=True) for v in (-2.0, 5.0, -4.0))
    f = (x + y) * z
    f.backward()
    assert f.item() == -12.0
    assert (x.grad.item(), y.grad.item(), z.grad.item()) == (-4.0, -4.0, 3.0)


def test_value_used_many_times_gets_every_contribution():
    a = cr.tensor(1.5, requires_grad=True)
    b = a + a
    c = b + b
    c.backward()
    assert a.grad.item() == 4.0


def test_diamond_graph():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    z = y * y + y.exp()  # dz/dx = 3(2y + e^y)
    z.sum().backward()
    expected = 3 * (2 * 3 * x.numpy() + np.exp(3 * x.numpy()))
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-5)


def test_long_chain_has_no_recursion_limit():
    x = cr.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0


def test_leaf_gradients_accumulate_across_backward_calls():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [5.0, 5.0])


def test_accumulation_is_out_of_place():
    x = cr.tensor([1.0], requires_grad=True)
    (x * 2).sum().backward()
    first = x.grad
    (x * 3).sum().backward()
    assert first.item() == 2.0 and x.grad.item() == 5.0


def test_leaves_never_share_a_gradient_array():
    a = cr.tensor([1.0, 2.0], requires_grad=True)
    b = cr.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()
    assert not np.shares_memory(a.grad.data, b.grad.data)
    a.grad.data *= 10  # in-place clipping of one gradient must not touch the other
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0])
    assert a.grad.data.flags.writeable


def test_broadcasting_is_undone():
    x = cr.tensor(np.ones((3, 1)), requires_grad=True)
    b = cr.tensor(np.ones(4), requires_grad=True)
    (x * b).sum().backward()
    assert x.grad.shape == (3, 1) and b.grad.shape == (4,)
    np.testing.assert_array_equal(x.grad.numpy(), np.full((3, 1), 4.0))
    np.testing.assert_array_equal(b.grad.numpy(), np.full(4, 3.0))


def test_graph_is_freed_and_second_backward_raises():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)


def test_backward_on_non_scalar_needs_grad():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar outputs.*shape \\(2,\\)"):
        (x * 2).backward()
    (x * 2).backward(cr.tensor([1.0, 10.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 20.0])


def test_backward_grad_shape_mismatch_names_both_shapes():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match="\\(3,\\).*\\(2,\\)"):
        (x * 2).backward(cr.tensor([1.0, 2.0, 3.0]))


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="floating.*int64"):
        cr.tensor([1, 2], requires_grad=True)


def test_op_shape_errors_name_the_op_and_shapes():
    a = cr.tensor(np.ones((2, 3)))
    b = cr.tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match="matmul.*\\(2, 3\\).*\\(4, 5\\)"):
        a @ b
    with pytest.raises(ValueError, match="reshape.*\\(2, 3\\).*\\(4,\\)"):
        a.reshape(4)
    with pytest.raises(ValueError, match="concat.*\\(2, 3\\).*\\(4, 5\\)"):
        cr.concat([a, b])


def test_backward_without_graph_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        cr.tensor(1.0).backward()


def test_no_grad_records_nothing_and_is_a_decorator():
    x = cr.tensor([1.0], requires_grad=True)
    with cr.no_grad():
        y = x * 2
    assert not y.requires_grad and y.creator is None

    @cr.no_grad()
    def double(t):
        return t * 2

    assert not double(x).requires_grad
    assert cr.is_grad_enabled()
    with cr.no_grad():
        with cr.enable_grad():
            assert (x * 2).requires_grad


def test_grad_mode_is_thread_local():
    seen = []
    with cr.no_grad():
        thread = threading.Thread(target=lambda: seen.append(cr.is_grad_enabled()))
        thread.start()
        thread.join()
    assert seen == [True]


def test_grad_returns_without_touching_dot_grad():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    (g,) = cr.grad((x * x).sum(), [x])
    np.testing.assert_array_equal(g.numpy(), [2.0, 4.0])
    assert x.grad is None


def test_grad_with_respect_to_an_intermediate():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    y = (h * h).sum()
    gh, gx = cr.grad(y, [h, x])
    np.testing.assert_allclose(gh.numpy(), 2 * h.numpy())
    np.testing.assert_allclose(gx.numpy(), 18 * x.numpy())


def test_grad_unused_input():
    x = cr.tensor(1.0, requires_grad=True)
    u = cr.tensor(1.0, requires_grad=True)
    with pytest.raises(RuntimeError, match="not used"):
        cr.grad(x * 2, [x, u])
    assert cr.grad(x * 2, [x, u], allow_unused=True)[1] is None


def test_second_derivative_of_cube_is_6x():
    x = cr.tensor([0.5, -2.0, 3.0], dtype="float64", requires_grad=True)
    (dx,) = cr.grad((x**3).sum(), [x], create_graph=True)
    (ddx,) = cr.grad(dx.sum(), [x])
    np.testing.assert_allclose(dx.numpy(), 3 * x.numpy() ** 2)
    np.testing.assert_allclose(ddx.numpy(), 6 * x.numpy())


def test_third_derivative_through_tanh(float64):
    x = cr.tensor(0.3, requires_grad=True)
    y = x.tanh()
    (d1,) = cr.grad(y, [x], create_graph=True)
    (d2,) = cr.grad(d1, [x], create_graph=True)
    (d3,) = cr.grad(d2, [x])
    t = np.tanh(0.3)
    np.testing.assert_allclose(d3.item(), -2 * (1 - t**2) * (1 - 3 * t**2), rtol=1e-12)


def test_create_graph_backward_records_leaf_gradient():
    x = cr.tensor(2.0, dtype="float64", requires_grad=True)
    (x**3).backward(create_graph=True)
    assert x.grad.requires_grad
    g = x.grad
    x.grad = None
    g.backward()
    assert x.grad.item() == pytest.approx(12.0)


def test_float32_stays_float32():
    x = cr.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    y = (x * 0.5 + np.float64(2.0) * x + np.ones(3)).exp().sum()
    assert y.dtype == np.float32
    y.backward()
    assert x.grad.dtype == np.float32


def test_multi_use_in_one_op():
    x = cr.tensor([3.0], requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.item() == 6.0
