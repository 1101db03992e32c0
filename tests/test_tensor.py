"""The Tensor class: construction, dtype rules, conversion, operators and printing."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr


def test_floats_become_the_default_dtype(float64):
    assert cr.tensor(1.5).dtype == np.float64
    assert cr.tensor(np.ones(2, dtype=np.float32)).dtype == np.float64


def test_default_dtype_is_float32_and_ints_keep_theirs():
    assert cr.tensor([1.0, 2.0]).dtype == np.float32
    assert cr.tensor(np.ones(2)).dtype == np.float32
    assert cr.tensor([1, 2]).dtype == np.int64
    assert cr.tensor([True]).dtype == bool
    assert cr.tensor([1.0], dtype="float64").dtype == np.float64


def test_set_default_dtype_rejects_integers():
    with pytest.raises(TypeError, match="floating"):
        cr.set_default_dtype(np.int32)


def test_tensor_copies_its_input():
    a = np.ones(3, dtype=np.float32)
    t = cr.tensor(a)
    a[0] = 5
    assert t.data[0] == 1


def test_data_is_writable_in_place():
    t = cr.tensor([1.0, 2.0], requires_grad=True)
    t.data[0] = 7
    assert t.numpy()[0] == 7


def test_scalars_and_arrays_mix_with_tensors():
    t = cr.tensor([1.0, 2.0])
    for result, expected in [
        (2 + t, [3, 4]), (t - 1, [0, 1]), (1 - t, [0, -1]), (2 * t, [2, 4]), (t / 2, [0.5, 1]),
        (2 / t, [2, 1]), (t**2, [1, 4]), (2**t, [2, 4]), (np.array([1.0, 1.0]) + t, [2, 3]),
        (-t, [-1, -2]), (abs(-t), [1, 2]),
    ]:
        assert isinstance(result, cr.Tensor)
        np.testing.assert_allclose(result.numpy(), expected)


def test_comparisons_give_boolean_tensors_without_graph():
    t = cr.tensor([1.0, 2.0], requires_grad=True)
    for result in (t < 2, t <= 1, t > 1, t >= 2, t == 1, t != 1):
        assert result.dtype == bool and not result.requires_grad


def test_item_numpy_detach_and_len():
    t = cr.tensor([[1.0, 2.0]], requires_grad=True)
    assert t[0, 1].item() == 2.0
    assert isinstance(t.numpy(), np.ndarray)
    d = t.detach()
    assert not d.requires_grad and np.shares_memory(d.data, t.data)
    assert len(t) == 1 and [r.shape for r in t] == [(2,)]
    with pytest.raises(ValueError, match="2 elements"):
        t.item()


def test_repr_shows_values_and_graph():
    t = cr.tensor([1.0, 2.0], requires_grad=True)
    assert repr(t) == "tensor([1., 2.], requires_grad=True)"
    assert repr(t * 2) == "tensor([2., 4.], grad_fn=<Mul>)"
    assert "dtype=float64" in repr(cr.tensor([1.0], dtype="float64"))


def test_setitem_refuses_graph_tensors_but_allows_plain_ones():
    t = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        t[0] = 3.0
    u = cr.tensor([1.0, 2.0])
    u[0] = 3.0
    assert u.numpy()[0] == 3.0


def test_methods_mirror_functions():
    t = cr.tensor(np.arange(6.0).reshape(2, 3) + 1)
    for name in ("exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu"):
        np.testing.assert_allclose(getattr(t, name)().numpy(), getattr(cr, name)(t).numpy())
    assert t.sum(axis=1, keepdims=True).shape == (2, 1)
    assert t.T.shape == (3, 2) and t.transpose(1, 0).shape == (3, 2)
    assert t.reshape(3, 2).shape == (3, 2) and t.reshape((6,)).shape == (6,)
    assert t.flatten().shape == (6,) and t.expand_dims(0).shape == (1, 2, 3)
    assert t.argmax(axis=1).numpy().tolist() == [2, 2]
    assert t.var().item() == pytest.approx(np.var(np.arange(6.0) + 1))
    assert t.where(t > 2, 0.0).numpy().tolist() == [[0, 0, 3], [4, 5, 6]]


def test_split_and_stack_round_trip():
    t = cr.tensor(np.arange(12.0).reshape(3, 4))
    parts = cr.split(t, 2, axis=1)
    assert [p.shape for p in parts] == [(3, 2), (3, 2)]
    np.testing.assert_array_equal(cr.concat(parts, axis=1).numpy(), t.numpy())
    assert cr.stack(parts, axis=0).shape == (2, 3, 2)
    with pytest.raises(ValueError, match="equal sections"):
        cr.split(t, 3, axis=1)


def test_constructors_and_seed():
    assert cr.zeros(2, 3).shape == (2, 3) and cr.ones((2,)).numpy().tolist() == [1, 1]
    assert cr.full((2,), 7.0).numpy().tolist() == [7, 7]
    assert cr.arange(3).dtype == np.int64 and cr.arange(0.0, 1.0, 0.5).dtype == np.float32
    assert cr.eye(2).numpy().tolist() == [[1, 0], [0, 1]]
    assert cr.zeros_like(cr.ones(2, 2)).shape == (2, 2)
    assert cr.ones_like(cr.zeros(3)).numpy().sum() == 3
    cr.manual_seed(42)
    a, b = cr.rand(3), cr.randn(2, 2)
    cr.manual_seed(42)
    np.testing.assert_array_equal(a.numpy(), cr.rand(3).numpy())
    np.testing.assert_array_equal(b.numpy(), cr.randn(2, 2).numpy())
    assert cr.randn(2, requires_grad=True).requires_grad


def test_device_is_cpu_and_to_cpu_is_identity():
    t = cr.tensor([1.0])
    assert t.device == "cpu" and t.to("cpu") is t
    with pytest.raises(ValueError, match="unknown device"):
        t.to("tpu")


def test_cuda_request_without_gpu_is_a_clear_error():
    if cr.cuda_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="cuda.*not available"):
        cr.tensor([1.0]).to("cuda")


def test_max_ties_split_the_gradient_evenly():
    x = cr.tensor([1.0, 3.0, 3.0], requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.5, 0.5])
    y = cr.tensor([2.0, 2.0], requires_grad=True)
    cr.maximum(y[0], y[1]).backward()
    np.testing.assert_array_equal(y.grad.numpy(), [0.5, 0.5])


def test_repeated_index_gradients_accumulate():
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 1.0])


def test_logsumexp_and_sigmoid_are_stable_at_extremes():
    x = cr.tensor([1e4, -1e4, 0.0], requires_grad=True)
    assert np.isfinite(x.logsumexp().item())
    s = x.sigmoid()
    assert np.all(np.isfinite(s.numpy()))
    s.sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))


def test_subpackages_load_on_first_attribute_access():
    assert cr.layers.Dense.__name__ == "Dense"
    assert cr.data.DataLoader.__name__ == "DataLoader"
    assert "layers" in dir(cr)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        cr.nope  # noqa: B018
