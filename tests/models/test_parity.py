"""fit against the same loop written in PyTorch: same weights, same data order, same result."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import losses, optimizers
from chainrule.layers import Dense
from chainrule.models import Sequential
from tests.torch_helpers import require_torch

torch = require_torch()


def torch_loss(name):
    if name == "mse":
        return torch.nn.functional.mse_loss
    return lambda logits, target: torch.nn.functional.cross_entropy(logits, target)


CASES = [
    ("mse", lambda: optimizers.SGD(learning_rate=0.1),
     lambda params: torch.optim.SGD(params, lr=0.1)),
    ("sparse", lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9),
     lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9)),
    ("sparse", lambda: optimizers.Adam(learning_rate=0.01, epsilon=1e-8),
     lambda params: torch.optim.Adam(params, lr=0.01, eps=1e-8)),
]


@pytest.mark.parametrize("loss_name, make_optimizer, make_torch_optimizer", CASES,
                         ids=["mse-sgd", "crossentropy-momentum", "crossentropy-adam"])
def test_fit_matches_a_pytorch_loop(float64, loss_name, make_optimizer, make_torch_optimizer):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 3))
    if loss_name == "mse":
        y = rng.normal(size=(12, 2))
        loss = "mse"
    else:
        y = rng.integers(0, 2, 12)
        loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    model = Sequential([Dense(5, activation="relu", input_shape=(3,)), Dense(2)])
    model.compile(optimizer=make_optimizer(), loss=loss)

    first, second = torch.nn.Linear(3, 5).double(), torch.nn.Linear(5, 2).double()
    with torch.no_grad():
        for linear, dense in ((first, model.layers[0]), (second, model.layers[1])):
            linear.weight.copy_(torch.from_numpy(dense.kernel.numpy().T))
            linear.bias.copy_(torch.from_numpy(dense.bias.numpy()))
    net = torch.nn.Sequential(first, torch.nn.ReLU(), second)
    optimizer = make_torch_optimizer(net.parameters())
    criterion = torch_loss(loss_name)

    history = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)

    torch_epoch_losses = []
    for _ in range(2):
        batch_losses = []
        for start in range(0, 12, 4):
            xb = torch.from_numpy(x[start:start + 4])
            yb = torch.from_numpy(y[start:start + 4])
            optimizer.zero_grad()
            value = criterion(net(xb), yb)
            value.backward()
            optimizer.step()
            batch_losses.append(value.item())
        torch_epoch_losses.append(np.mean(batch_losses))

    np.testing.assert_allclose(history.history["loss"], torch_epoch_losses, rtol=1e-6)
    for linear, dense in ((first, model.layers[0]), (second, model.layers[1])):
        np.testing.assert_allclose(dense.kernel.numpy(), linear.weight.detach().numpy().T,
                                   rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(dense.bias.numpy(), linear.bias.detach().numpy(),
                                   rtol=1e-6, atol=1e-9)
