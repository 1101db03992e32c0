"""The lectures' sanity checks: each passes on a healthy model and fails where it should."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule import losses, zoo
from chainrule.autograd.function import Function
from chainrule.diagnostics import sanity_check
from chainrule.optimizers import SGD


def _data(n=120, features=784, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, features)).astype(np.float32), rng.integers(0, 10, n)


def _mlp(optimizer="adam", lr=1e-3, loss=None):
    model = zoo.build("mlp", (784,), 10)
    if loss is None:
        zoo.compile_for_classification(model, optimizer, lr)
    else:
        model.compile(optimizer=SGD(learning_rate=lr), loss=loss)
    return model


def _by_name(report):
    return {check.name: check for check in report.checks}


def test_a_healthy_mlp_passes_every_check_and_is_left_unchanged():
    model = _mlp()
    before = model.get_weights()
    report = sanity_check(model, *_data())
    assert report.passed, str(report)
    assert list(_by_name(report)) == ["initial loss", "L2 raises the loss",
                                      "overfit 20 samples", "gradient check",
                                      "update / weight", "dead ReLUs"]
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert "ln 10 = 2.3026" in str(report)


def test_a_healthy_cnn_passes():
    model = zoo.build("cnn", (1, 28, 28), 10)
    zoo.compile_for_classification(model, "adam", 1e-3)
    x, y = _data(60)
    assert sanity_check(model, x.reshape(-1, 1, 28, 28), y).passed


def test_confident_initial_outputs_fail_the_initial_loss():
    model = _mlp()
    model.layers[-1].kernel.data *= 50.0  # far from uniform outputs
    checks = _by_name(sanity_check(model, *_data()))
    assert not checks["initial loss"].passed


def test_a_zero_learning_rate_cannot_overfit_and_updates_nothing():
    checks = _by_name(sanity_check(_mlp("sgd", 1e-12), *_data()))
    assert not checks["overfit 20 samples"].passed
    assert not checks["update / weight"].passed


class _WrongGradient(Function):
    """Identity forward, but a backward twice too large: a broken op."""

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return (2 * gy,)


def test_a_wrong_backward_fails_the_gradient_check():
    cross_entropy = losses.SparseCategoricalCrossentropy(from_logits=True)
    model = _mlp(loss=lambda y_true, y_pred: cross_entropy(y_true, _WrongGradient()(y_pred)))
    checks = _by_name(sanity_check(model, *_data()))
    assert not checks["gradient check"].passed
    assert checks["initial loss"].passed


def test_dead_relus_are_counted():
    model = _mlp()
    model.layers[0].bias.data[...] = -1e3  # every unit of the first layer dead
    check = _by_name(sanity_check(model, *_data()))["dead ReLUs"]
    assert not check.passed and "384 of 384" in check.measured  # the next layer sees 0s


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="compile the model first"):
        sanity_check(zoo.build("mlp", (784,), 10), *_data())
    x, y = _data(10)
    with pytest.raises(ValueError, match="at least 20 samples; got 10 and 10"):
        sanity_check(_mlp(), x, y)


def test_chainrule_check_prints_the_table(capsys, monkeypatch):
    from chainrule import cli, commands

    x, y = _data(200)
    images = (x.reshape(-1, 1, 28, 28) * 255).astype(np.uint8)
    monkeypatch.setattr(commands.ImageDataset, "load",
                        lambda self: ((images, y), (images[:10], y[:10])))
    chainrule.manual_seed(0)
    assert cli.main(["check", "--model", "mlp"]) == 0
    printed = capsys.readouterr().out
    assert "Sanity checks of mlp on fashion-mnist" in printed and "overfit 20 samples" in printed


def test_the_gradient_check_passes_on_images_with_a_zero_background():
    """Zero backgrounds and zero biases put ReLUs on their kink, where central differences are
    wrong: the check used to fail the (correct) CNN with a relative error of 1.0."""
    from chainrule.diagnostics import _gradient_check

    model = zoo.cnn()
    model.compile(optimizer="adam",
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.random((3, 1, 28, 28)).astype(np.float32)
    x[:, :, :8] = x[:, :, 20:] = 0
    y = rng.integers(0, 10, 3)
    model(chainrule.Tensor(x))
    assert _gradient_check(model, x, y, rng).passed
