"""Version counters: an in-place write to a tensor that a backward needs raises at backward.

Every in-place Tensor operation bumps ``_version``; a node records the versions of the tensors
its backward reads and the engine checks them before that backward, as PyTorch does.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import functional as F
from chainrule import optimizers
from chainrule.layers import Dense
from tests.torch_helpers import require_torch

MODIFIED = "modified by an inplace operation"


# -- the counter ---------------------------------------------------------------------------------


def test_every_in_place_operation_bumps_the_version():
    t = cr.tensor([1.0, 2.0, 3.0])
    assert t._version == 0
    t.add_(1)
    t.sub_(cr.tensor([1.0, 1.0, 1.0]))
    t.mul_(2)
    t.div_(2)
    t[0] = 5.0
    assert t._version == 5
    t.copy_(cr.tensor([7.0]))
    t.fill_(3.0)
    t.zero_()
    assert t._version == 8
    np.testing.assert_array_equal(t.numpy(), [0.0, 0.0, 0.0])


def test_in_place_operations_compute_what_their_out_of_place_twins_do():
    t = cr.tensor([1.0, 2.0, 3.0])
    assert t.add_(1).mul_(cr.tensor([2.0, 2.0, 0.5])).sub_(1).div_(2) is t
    np.testing.assert_allclose(t.numpy(), [1.5, 2.5, 0.5])
    t.copy_(np.array([4.0, 5.0, 6.0]))
    np.testing.assert_array_equal(t.numpy(), [4.0, 5.0, 6.0])


def test_out_of_place_operations_and_reads_do_not_bump_the_version():
    t = cr.tensor([1.0, 2.0], requires_grad=True)
    y = t * 2 + 1
    _ = t.numpy(), t.sum(), t[0], t.detach()
    assert t._version == 0 and y._version == 0


# -- writes that a backward needs raise --------------------------------------------------------


def test_write_to_a_saved_output_raises_naming_the_op():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    y.add_(1)
    with pytest.raises(RuntimeError, match=MODIFIED) as info:
        y.sum().backward()
    message = str(info.value)
    assert "Exp" in message and "(2,)" in message
    assert "version 1; expected version 0" in message


def test_write_to_an_input_saved_by_mul_raises():
    a = cr.tensor([1.0, 2.0])
    w = cr.tensor([3.0, 4.0], requires_grad=True)
    y = a * w
    a.mul_(10)
    with pytest.raises(RuntimeError, match=MODIFIED) as info:
        y.sum().backward()
    assert "input 0 of Mul" in str(info.value)


def test_setitem_under_no_grad_on_a_saved_output_raises():
    x = cr.tensor([0.5, -1.0, 2.0], requires_grad=True)
    y = x.tanh()
    with cr.no_grad():
        y[0] = 0.0
    with pytest.raises(RuntimeError, match="Tanh"):
        y.sum().backward()


def test_updating_a_parameter_between_forward_and_backward_raises():
    """The GAN mistake: a step between forward and backward of the same graph."""
    layer = Dense(3)
    x = cr.tensor(np.ones((2, 4), np.float32))
    loss = layer(x).sum()
    with cr.no_grad():
        layer.kernel.sub_(0.1)
    with pytest.raises(RuntimeError, match="Linear"):
        loss.backward()


def test_the_check_holds_for_a_retained_graph_too():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x.sigmoid()
    z = y.sum()
    z.backward(retain_graph=True)
    with cr.no_grad():
        y.fill_(0.5)
    with pytest.raises(RuntimeError, match="Sigmoid"):
        z.backward()


# -- writes that no backward needs do not raise --------------------------------------------------


def test_write_to_an_input_of_add_does_not_raise():
    a = cr.tensor([1.0, 2.0])
    w = cr.tensor([3.0, 4.0], requires_grad=True)
    y = (a + w) * w
    a.add_(5)
    y.sum().backward()  # dy/dw = a_old + 2w, a_old kept in the output of Add
    np.testing.assert_allclose(w.grad.numpy(), [1 + 6, 2 + 8])


def test_write_after_backward_does_not_raise():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    y.sum().backward()
    y.add_(1)
    np.testing.assert_allclose(x.grad.numpy(), np.exp([1.0, 2.0]), rtol=1e-6)


def test_write_to_an_unsaved_input_of_a_reshape_does_not_raise():
    x = cr.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    y = x + 0  # Add keeps neither inputs nor output
    s = y.reshape(2, 2).sum()  # Reshape and Sum need only shapes
    with cr.no_grad():
        y.mul_(2)
    s.backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0, 1.0, 1.0])


def test_write_to_the_bias_of_linear_does_not_raise_but_to_its_kernel_does():
    x = cr.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    w = cr.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    b = cr.tensor(np.zeros(2, np.float32), requires_grad=True)
    y = F.linear(x, w, b)
    with cr.no_grad():
        b.add_(1)  # Linear's backward reads x and w only
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 3), 2.0))
    y = F.linear(x, w, b)
    with cr.no_grad():
        w.mul_(2)
    with pytest.raises(RuntimeError, match="input 1 of Linear"):
        y.sum().backward()


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_optimizer_steps_after_backward_and_a_second_forward_work(name):
    cr.manual_seed(0)
    layer = Dense(2)
    x = cr.tensor(np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32))
    layer(x)
    optimizer = optimizers.get(name)
    optimizer.build(layer.parameters())
    losses = []
    for _ in range(5):
        loss = (layer(x) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_in_place_update_of_a_leaf_under_no_grad_then_a_new_forward_works():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    with cr.no_grad():
        w.sub_(w.grad * 0.25)  # the hand-written SGD step of the lectures
    w.grad = None
    (w * w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [1.0, 2.0])
    assert w._version == 1


# -- in-place operations inside a recorded graph -------------------------------------------------


def test_in_place_on_a_leaf_that_requires_grad_is_refused():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        w.add_(1)
    assert w._version == 0


def test_in_place_on_a_non_leaf_is_recorded():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    w = cr.tensor([3.0, 5.0], requires_grad=True)
    y = x * 2
    y.mul_(w)  # y = 2xw
    y.add_(x)  # y = 2xw + x
    assert y.creator is not None and y._version == 2
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2 * 3 + 1, 2 * 5 + 1])
    np.testing.assert_allclose(w.grad.numpy(), [2.0, 4.0])


def test_copy_into_a_plain_tensor_records_the_source():
    src = cr.tensor([1.0, 2.0], requires_grad=True)
    dst = cr.zeros(3, 2)
    dst.copy_(src)
    (dst * cr.tensor([[1.0], [2.0], [3.0]])).sum().backward()
    np.testing.assert_allclose(src.grad.numpy(), [6.0, 6.0])


def test_zero_on_a_non_leaf_gives_its_history_no_gradient():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.zero_()
    (y + x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0])


def test_in_place_result_of_another_shape_is_refused():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    with pytest.raises(RuntimeError, match=r"add_: the result has shape \(2, 2\)"):
        y.add_(cr.tensor([[1.0], [2.0]]))


# -- parity with PyTorch: the same programs raise, or not ----------------------------------------


def _exp_output_written(lib, tensor, no_grad):
    x = tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    with no_grad():
        y[1] = 0.0
    y.sum().backward()


def _mul_input_written(lib, tensor, no_grad):
    a = tensor([1.0, 2.0])
    w = tensor([3.0, 4.0], requires_grad=True)
    y = a * w
    a.add_(1)
    y.sum().backward()


def _add_input_written(lib, tensor, no_grad):
    a = tensor([1.0, 2.0])
    w = tensor([3.0, 4.0], requires_grad=True)
    y = a + w
    a.add_(1)
    y.sum().backward()


def _relu_output_written(lib, tensor, no_grad):
    x = tensor([1.0, -2.0], requires_grad=True)
    y = (x * 1).relu()
    y.mul_(2)
    y.sum().backward()


def _leaf_updated_before_backward(lib, tensor, no_grad):
    w = tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    x = tensor([[1.0, 1.0]], requires_grad=True)  # so that x's gradient needs w
    loss = (x @ w).sum() if lib == "torch" else cr.matmul(x, w).sum()
    with no_grad():
        w.sub_(0.1)  # matmul saved x and w
    loss.backward()


@pytest.mark.parametrize("program, raises", [
    (_exp_output_written, True),
    (_mul_input_written, True),
    (_add_input_written, False),
    (_relu_output_written, True),
    (_leaf_updated_before_backward, True),
])
def test_error_condition_matches_torch(program, raises):
    torch = require_torch()

    def outcome(lib, tensor, no_grad):
        try:
            program(lib, tensor, no_grad)
        except RuntimeError as error:
            assert "modified by an inplace operation" in str(error)
            return True
        return False

    assert outcome("torch", torch.tensor, torch.no_grad) is raises
    assert outcome("chainrule", cr.tensor, cr.no_grad) is raises
