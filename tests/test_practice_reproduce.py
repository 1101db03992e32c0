"""chainrule reproduce: MNIST-1D's reference models rebuilt, the Fashion-MNIST targets, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from chainrule import reproduce
from chainrule.cli import main
from chainrule.reproduce import MNIST1D_MODELS, MNIST1D_PARAMETERS, mnist1d_model
from tests.test_commands import needs_fashion_mnist


def _torch_models():
    """The reference PyTorch models (greydanus/mnist1d, notebooks/models.py), rebuilt."""
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear1, self.linear2 = nn.Linear(40, 100), nn.Linear(100, 100)
            self.linear3 = nn.Linear(100, 10)

        def forward(self, x):
            h = self.linear1(x).relu()
            h = h + self.linear2(h).relu()
            return self.linear3(h)

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv1d(1, 25, 5, stride=2, padding=1)
            self.conv2 = nn.Conv1d(25, 25, 3, stride=2, padding=1)
            self.conv3 = nn.Conv1d(25, 25, 3, stride=2, padding=1)
            self.linear = nn.Linear(125, 10)

        def forward(self, x):
            h = self.conv1(x.view(-1, 1, 40)).relu()
            h = self.conv3(self.conv2(h).relu()).relu()
            return self.linear(h.reshape(h.shape[0], -1))

    class GRU(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(1, 6, batch_first=True, bidirectional=True)
            self.linear = nn.Linear(2 * 6 * 40, 10)

    torch.manual_seed(0)
    return torch, {"linear": nn.Linear(40, 10), "mlp": MLP(), "cnn": CNN(), "gru": GRU()}


def test_parameter_counts_equal_the_reference_pytorch_models():
    _, models = _torch_models()
    for name in MNIST1D_MODELS:
        expected = sum(p.numel() for p in models[name].parameters())
        assert expected == MNIST1D_PARAMETERS[name], name
        assert mnist1d_model(name).count_params() == expected, name


def _copy_dense(layer, linear):
    layer.kernel.data[...] = linear.weight.detach().numpy().T
    layer.bias.data[...] = linear.bias.detach().numpy()


def test_mlp_and_cnn_compute_the_reference_function():
    """With PyTorch's weights copied in, chainrule's MLP (a Residual) and CNN (Conv1d as a
    1 × 40 Conv2D with pair padding) give the reference's logits."""
    torch, models = _torch_models()
    x = np.random.default_rng(0).normal(size=(6, 40)).astype(np.float32)
    mlp = mnist1d_model("mlp")
    mlp.build((None, 40))
    dense1, residual, dense3 = [layer for layer in mlp.layers if layer.count_params()]
    _copy_dense(dense1, models["mlp"].linear1)
    _copy_dense(residual.layer.layers[0], models["mlp"].linear2)
    _copy_dense(dense3, models["mlp"].linear3)
    cnn = mnist1d_model("cnn")
    cnn.build((None, 40))
    convs = [layer for layer in cnn.layers if type(layer).__name__ == "Conv2D"]
    for conv, reference in zip(convs, (models["cnn"].conv1, models["cnn"].conv2,
                                       models["cnn"].conv3)):
        conv.kernel.data[...] = reference.weight.detach().numpy()[:, :, None, :]
        conv.bias.data[...] = reference.bias.detach().numpy()
    _copy_dense(cnn.layers[-1], models["cnn"].linear)
    with torch.no_grad():
        for name, model in (("mlp", mlp), ("cnn", cnn)):
            expected = models[name](torch.from_numpy(x)).numpy()
            np.testing.assert_allclose(model.predict(x), expected, rtol=1e-4, atol=1e-5)


def test_cnn_and_gru_shapes():
    from chainrule.models import Sequential

    cnn = mnist1d_model("cnn")
    features = Sequential(cnn.layers[:4])  # Reshape and the three convolutions
    assert features.predict(np.zeros((3, 40), np.float32)).shape == (3, 25, 1, 5)
    gru = mnist1d_model("gru")
    assert Sequential(gru.layers[:2]).predict(np.zeros((3, 40), np.float32)).shape == (3, 40, 12)
    for model in (cnn, gru):
        assert model.predict(np.zeros((3, 40), np.float32)).shape == (3, 10)


@pytest.mark.parametrize("name", MNIST1D_MODELS)
def test_a_few_reference_steps_reduce_the_loss(name):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 200)
    x = (rng.normal(size=(200, 40)) + np.eye(10)[y].repeat(4, axis=1)).astype(np.float32)
    run = reproduce.train_mnist1d(name, ((x, y), (x[:50], y[:50])), seed=0, steps=20,
                                  eval_every=10)
    losses = run["losses"]  # two batches per pass: compare the first pass and the last
    assert np.mean(losses[-2:]) < np.mean(losses[:2])
    assert [step for step, _ in run["curve"]] == [10, 20]
    assert run["final"] == run["curve"][-1][1] and run["best"] >= run["final"]


def test_reproduce_mnist1d_end_to_end(tmp_path, capsys):
    pytest.importorskip("mnist1d")
    out = tmp_path / "m"
    assert main(["reproduce", "mnist1d", "--seeds", "2", "--steps", "10", "--limit", "200",
                 "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    rows = results["rows"]
    assert [row["model"] for row in rows] == list(MNIST1D_MODELS)
    for row in rows:
        assert row["steps"] == 10 and row["seeds"] == 2 and len(row["final_runs"]) == 2
        assert 0 <= row["final_mean"] <= 1 and row["published"] == \
            reproduce.MNIST1D_PUBLISHED[row["model"]]
    printed = capsys.readouterr().out
    assert "| gru |" in printed and "0.91" in printed
    assert (out / "results.md").read_text().count("\n| ") == 5


@needs_fashion_mnist
def test_reproduce_fashion_mnist_end_to_end(tmp_path):
    out = tmp_path / "f"
    assert main(["reproduce", "fashion-mnist", "--seeds", "1", "--epochs", "1", "--limit",
                 "256", "--out", str(out)]) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [(row["model"], row["target"]) for row in rows] == [("mlp", 0.89), ("cnn", 0.92)]
    for row in rows:
        assert row["passed"] is (row["final_mean"] >= row["target"])
        assert row["epochs"] == 1 and row["train_samples"] == 256
    assert "| pass |" in (out / "results.md").read_text()


@pytest.mark.parametrize("argv, named", [
    (["mnist1d", "--seeds", "0"], "--seeds"),
    (["mnist1d", "--steps", "0"], "--steps"),
    (["fashion-mnist", "--steps", "5"], "--steps"),
    (["fashion-mnist", "--epochs", "0"], "--epochs"),
])
def test_bad_arguments_are_named(tmp_path, capsys, argv, named):
    assert main(["reproduce", *argv, "--out", str(tmp_path)]) == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


def test_unknown_experiment_or_model():
    with pytest.raises(SystemExit):
        main(["reproduce", "cifar100"])
    with pytest.raises(ValueError, match="gru"):
        mnist1d_model("lstm")
