"""chainrule.nn modules against torch.nn: same weights in, same outputs and gradients out;
eager build, PyTorch's initialisation, state_dict names, and the optimizer trap."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn as nn
import chainrule.optim as optim
from chainrule.layers import Dense
from chainrule.models import Sequential as KerasSequential
from tests.torch_helpers import require_torch

torch = require_torch()


def _copy_weights(ours, theirs) -> None:
    """torch module's state into ours, by name (layouts are PyTorch's on both sides)."""
    state = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    ours.load_state_dict(state)


def _run_both(ours, theirs, x: np.ndarray):
    """Forward both on x and back-propagate the same random upstream gradient; returns
    (our output, torch output, our input gradient, torch input gradient)."""
    xc = cr.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    yc, yt = ours(xc), theirs(xt)
    g = np.random.default_rng(1).standard_normal(yt.shape)
    yc.backward(cr.tensor(g))
    yt.backward(torch.tensor(g))
    return yc, yt, xc.grad.numpy(), xt.grad.numpy()


def _assert_parameter_grads(ours, theirs, atol=1e-8) -> None:
    ours_grads = {name: p.grad.numpy() for name, p in ours.named_parameters()}
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(ours_grads[name], p.grad.numpy(), rtol=1e-6, atol=atol,
                                   err_msg=name)


@pytest.fixture(autouse=True)
def _double():
    previous = cr.get_default_dtype()
    cr.set_default_dtype(np.float64)
    torch.set_default_dtype(torch.float64)
    yield
    cr.set_default_dtype(previous)
    torch.set_default_dtype(torch.float32)


# -- parity ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(rng, bias):
    ours, theirs = nn.Linear(5, 3, bias=bias), torch.nn.Linear(5, 3, bias=bias)
    _copy_weights(ours, theirs)
    yc, yt, gc, gt = _run_both(ours, theirs, rng.standard_normal((4, 5)))
    np.testing.assert_allclose(yc.numpy(), yt.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(gc, gt, rtol=1e-10)
    _assert_parameter_grads(ours, theirs)


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3), dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(3, 2), padding=(1, 0), dilation=2), dict(kernel_size=3, padding="same"),
    dict(kernel_size=1, bias=False),
])
def test_conv2d_matches_torch(rng, kwargs):
    ours, theirs = nn.Conv2d(3, 4, **kwargs), torch.nn.Conv2d(3, 4, **kwargs)
    _copy_weights(ours, theirs)
    yc, yt, gc, gt = _run_both(ours, theirs, rng.standard_normal((2, 3, 9, 8)))
    np.testing.assert_allclose(yc.numpy(), yt.detach().numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(gc, gt, rtol=1e-8, atol=1e-10)
    _assert_parameter_grads(ours, theirs)


@pytest.mark.parametrize("cls,shape", [("BatchNorm2d", (4, 3, 5, 5)), ("BatchNorm1d", (6, 3)),
                                       ("BatchNorm1d", (6, 3, 4))])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_matches_torch_in_train_and_eval(rng, cls, shape, momentum):
    ours = getattr(nn, cls)(3, momentum=momentum)
    theirs = getattr(torch.nn, cls)(3, momentum=momentum)
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 1.5)
        theirs.bias.uniform_(-0.5, 0.5)
    _copy_weights(ours, theirs)
    for step in range(3):  # running statistics follow PyTorch's momentum and unbiased variance
        x = rng.standard_normal(shape) * 2 + step
        yc, yt, gc, gt = _run_both(ours, theirs, x)
        np.testing.assert_allclose(yc.numpy(), yt.detach().numpy(), rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(gc, gt, rtol=1e-7, atol=1e-9)
    _assert_parameter_grads(ours, theirs, atol=1e-7)
    for name, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[name], value.numpy(), rtol=1e-10,
                                   err_msg=name)
    ours.eval()
    theirs.eval()
    yc, yt, gc, gt = _run_both(ours, theirs, rng.standard_normal(shape))
    np.testing.assert_allclose(yc.numpy(), yt.detach().numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(gc, gt, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("make", [
    lambda m: m.MaxPool2d(2), lambda m: m.MaxPool2d(3, stride=2, padding=1),
    lambda m: m.AvgPool2d(2), lambda m: m.AvgPool2d(3, stride=2, padding=1),
    lambda m: m.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
    lambda m: m.Flatten(), lambda m: m.Flatten(2), lambda m: m.ReLU(), lambda m: m.Tanh(),
    lambda m: m.Sigmoid(), lambda m: m.LeakyReLU(0.2), lambda m: m.Softmax(dim=1),
    lambda m: m.LogSoftmax(dim=1), lambda m: m.Identity(),
])
def test_weightless_modules_match_torch(rng, make):
    ours, theirs = make(nn), make(torch.nn)
    yc, yt, gc, gt = _run_both(ours, theirs, rng.standard_normal((2, 3, 7, 6)))
    np.testing.assert_allclose(yc.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gc, gt, rtol=1e-10, atol=1e-12)


def test_embedding_matches_torch():
    ours, theirs = nn.Embedding(7, 4), torch.nn.Embedding(7, 4)
    _copy_weights(ours, theirs)
    ids = np.array([[1, 2, 2], [6, 0, 1]])
    yc, yt = ours(cr.tensor(ids)), theirs(torch.tensor(ids))
    np.testing.assert_allclose(yc.numpy(), yt.detach().numpy())
    yc.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy())


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
@pytest.mark.parametrize("batch_first,num_layers", [(False, 1), (True, 2)])
def test_recurrent_modules_match_torch(rng, cls, batch_first, num_layers):
    ours = getattr(nn, cls)(3, 5, num_layers=num_layers, batch_first=batch_first)
    theirs = getattr(torch.nn, cls)(3, 5, num_layers=num_layers, batch_first=batch_first)
    _copy_weights(ours, theirs)
    x = rng.standard_normal((2, 4, 3))
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (oc, hc), (ot, ht) = ours(xc), theirs(xt)
    hc, ht = (hc[0], ht[0]) if cls == "LSTM" else (hc, ht)
    np.testing.assert_allclose(oc.numpy(), ot.detach().numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(hc.numpy(), ht.detach().numpy(), rtol=1e-8, atol=1e-10)
    ((oc * oc).sum() + hc.sum()).backward()
    ((ot * ot).sum() + ht.sum()).backward()
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), rtol=1e-7, atol=1e-9)
    _assert_parameter_grads(ours, theirs, atol=1e-8)


@pytest.mark.parametrize("make,target", [
    (lambda m: m.CrossEntropyLoss(), "ids"),
    (lambda m: m.CrossEntropyLoss(reduction="sum"), "ids"),
    (lambda m: m.CrossEntropyLoss(reduction="none"), "ids"),
    (lambda m: m.CrossEntropyLoss(ignore_index=2), "ids"),
    (lambda m: m.CrossEntropyLoss(label_smoothing=0.1), "ids"),
    (lambda m: m.CrossEntropyLoss(), "probs"),
    (lambda m: m.NLLLoss(), "ids"),
    (lambda m: m.NLLLoss(reduction="sum"), "ids"),
    (lambda m: m.MSELoss(), "same"),
    (lambda m: m.MSELoss(reduction="none"), "same"),
    (lambda m: m.BCEWithLogitsLoss(), "unit"),
])
def test_losses_match_torch(rng, make, target):
    x = rng.standard_normal((6, 4))
    t = {"ids": np.array([0, 2, 1, 3, 2, 0]), "same": rng.standard_normal((6, 4)),
         "probs": rng.dirichlet(np.ones(4), 6), "unit": rng.random((6, 4))}[target]
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    lc, lt = make(nn)(xc, cr.tensor(t)), make(torch.nn)(xt, torch.tensor(t))
    np.testing.assert_allclose(lc.numpy(), lt.detach().numpy(), rtol=1e-10)
    lc.sum().backward()
    lt.sum().backward()
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_class_weights_match_torch(rng):
    x, ids = rng.standard_normal((6, 4)), np.array([0, 2, 1, 3, 2, 0])
    w = np.array([1.0, 2.0, 0.5, 3.0])
    for ours, theirs in [(nn.CrossEntropyLoss(weight=w), torch.nn.CrossEntropyLoss(
            weight=torch.tensor(w))), (nn.NLLLoss(weight=w, ignore_index=3),
                                       torch.nn.NLLLoss(weight=torch.tensor(w), ignore_index=3))]:
        xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        lc, lt = ours(xc, cr.tensor(ids)), theirs(xt, torch.tensor(ids))
        np.testing.assert_allclose(lc.item(), lt.item(), rtol=1e-10)
        lc.backward()
        lt.backward()
        np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_dropout_modules_follow_the_mode():
    x = cr.ones(200, 8, 4, 4)
    for module in (nn.Dropout(0.25), nn.Dropout2d(0.25)):
        y = module(x).numpy()
        assert set(np.unique(y)) <= {0.0, 1 / 0.75}
        assert 0.15 < (y == 0).mean() < 0.35
        module.eval()
        np.testing.assert_array_equal(module(x).numpy(), x.numpy())
    y = nn.Dropout2d(0.5)(x).numpy()  # whole channels: every 4 x 4 plane is constant
    assert (y.reshape(200, 8, 16).std(axis=2) == 0).all()


# -- eager build, initialisation, names ------------------------------------------------------


def test_modules_are_built_at_construction_with_pytorch_shapes():
    assert nn.Linear(784, 128).weight.shape == (128, 784)
    assert nn.Conv2d(1, 32, 3, 1).weight.shape == (32, 1, 3, 3)
    bn = nn.BatchNorm2d(8)
    assert [name for name, _ in bn.named_parameters()] == ["weight", "bias"]
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                     "num_batches_tracked"]
    assert [name for name, _ in bn.named_buffers()] == ["running_mean", "running_var",
                                                         "num_batches_tracked"]
    lstm_names = [name for name, _ in nn.LSTM(3, 4).named_parameters()]
    assert lstm_names == [n for n, _ in torch.nn.LSTM(3, 4).named_parameters()]


def test_initialisation_is_pytorchs_kaiming_uniform():
    cr.manual_seed(0)
    layer = nn.Linear(400, 300)
    bound = 1 / np.sqrt(400)
    w, b = layer.weight.numpy(), layer.bias.numpy()
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.isclose(w.std(), bound / np.sqrt(3), rtol=0.02)  # U(-a, a) has std a/sqrt(3)
    conv = nn.Conv2d(16, 8, 5)
    assert np.abs(conv.weight.numpy()).max() <= 1 / np.sqrt(16 * 25)
    cr.manual_seed(0)
    np.testing.assert_array_equal(nn.Linear(400, 300).weight.numpy(), w)  # reproducible


def test_sequential_names_children_as_pytorch():
    ours = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _copy_weights(ours, theirs)
    x = np.random.default_rng(0).standard_normal((3, 4))
    np.testing.assert_allclose(ours(cr.tensor(x)).numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10)
    assert len(ours) == 3 and isinstance(ours[1], nn.ReLU) and len(ours[:2]) == 2


def test_module_is_chainrules_layer_and_mixes_with_it():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)
            self.scale = nn.Parameter(cr.ones(3))
            self.blocks = nn.ModuleList([nn.Linear(3, 3), nn.Linear(3, 3)])

        def forward(self, x):
            x = self.fc(x) * self.scale
            for block in self.blocks:
                x = block(x)
            return x

    net = Net()
    from chainrule.layers import Layer

    assert isinstance(net, Layer) and isinstance(net.scale, nn.Parameter)
    assert [n for n, _ in net.named_parameters()] == [
        "scale", "fc.weight", "fc.bias", "blocks.0.weight", "blocks.0.bias", "blocks.1.weight",
        "blocks.1.bias"]
    assert len(net.children()) == 2 and len(net.modules()) == 5
    net.eval()
    assert not net.fc.training
    net.train()
    out = net(cr.ones(2, 4))
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    assert net.to("cpu") is net and net.double().fc.weight.dtype == np.float64
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and seen.count("Linear") == 3


def test_to_cuda_without_a_gpu_says_so():
    if cr.cuda_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="cuda"):
        nn.Linear(2, 2).to("cuda")


def test_wrong_input_is_named():
    with pytest.raises(ValueError, match="Conv2d.*3 channels"):
        nn.Conv2d(3, 4, 3)(cr.zeros(1, 1, 8, 8))
    with pytest.raises(NotImplementedError, match="groups"):
        nn.Conv2d(4, 4, 3, groups=2)


# -- the optimizer trap -------------------------------------------------------------------


def test_optimizer_before_the_first_call_of_a_lazy_model_raises():
    model = KerasSequential([Dense(16, activation="relu"), Dense(3)])
    with pytest.raises(ValueError, match=r"parameters\(\): layers 'dense.*', 'dense.*' are not "
                                         r"built yet"):
        optim.SGD(model.parameters(), lr=0.1)
    model(cr.zeros(2, 5))  # after the first call every weight exists
    assert len(optim.SGD(model.parameters(), lr=0.1).params) == 4


def test_a_partly_built_lazy_model_raises_too():
    model = KerasSequential([Dense(16, activation="relu", input_shape=None), Dense(3)])
    model.layers[0](cr.zeros(2, 5))  # the first layer built, the second not
    with pytest.raises(ValueError, match="not built yet"):
        model.parameters()


def test_nn_modules_and_built_models_never_raise():
    assert len(nn.Sequential(nn.Linear(2, 3), nn.ReLU()).parameters()) == 2
    model = KerasSequential([Dense(4, input_shape=(3,)), Dense(2)])
    assert len(model.parameters()) == 4
    model = KerasSequential([Dense(4), Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.zeros((8, 3)), np.zeros((8, 2)), epochs=1, verbose=0)  # compile/fit bind late
    assert len(model.optimizer.params) == 4


# -- save and load ---------------------------------------------------------------------------


def test_save_and_load_state_without_pickle(tmp_path):
    from chainrule.nn.serialization import load, save

    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    opt = optim.Adam(model.parameters(), lr=0.01)
    model(cr.ones(5, 3)).sum().backward()
    opt.step()
    save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3,
          "tensor": cr.ones(2)}, tmp_path / "checkpoint.npz")
    loaded = load(tmp_path / "checkpoint.npz")
    assert loaded["epoch"] == 3 and loaded["tensor"].tolist() == [1.0, 1.0]
    fresh = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    fresh.load_state_dict(loaded["model"])
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[name], value)
    fresh_opt = optim.Adam(fresh.parameters(), lr=0.01)
    fresh_opt.load_state_dict(loaded["optimizer"])
    assert fresh_opt.state_dict()["iterations"] == 1
    with pytest.raises(TypeError, match="state_dict"):
        save(model, tmp_path / "model.npz")
    with pytest.raises(ValueError, match=r"\.npz or \.safetensors"):
        save(model.state_dict(), tmp_path / "model.pt")


def test_init_functions_fill_in_place_with_pytorchs_bounds():
    layer = nn.Linear(300, 200)
    weight = layer.weight
    assert nn.init.kaiming_uniform_(layer.weight, a=5 ** 0.5) is weight
    assert np.abs(weight.numpy()).max() <= 1 / np.sqrt(300)  # = PyTorch's default
    nn.init.xavier_uniform_(weight)
    assert np.abs(weight.numpy()).max() <= np.sqrt(6 / 500)
    nn.init.kaiming_normal_(weight, nonlinearity="relu")
    assert np.isclose(weight.numpy().std(), np.sqrt(2 / 300), rtol=0.05)
    nn.init.zeros_(layer.bias)
    assert layer.bias.tolist() == [0.0] * 200 and layer.bias.requires_grad
    for name in ("relu", "tanh", "leaky_relu", "linear", "selu"):
        assert nn.init.calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name))
