"""The zoo's architectures as ``build_fn(hp)``: what each hyper-parameter changes."""

from __future__ import annotations

import pytest

from chainrule.layers import Dense, Dropout
from chainrule.tuning.hypermodels import ZooHyperModel, known_names


def test_mlp_units_and_layers_give_halving_widths():
    model = ZooHyperModel("mlp", (64,), 10)({"units": 64, "layers": 3, "lr": 0.05})
    widths = [layer.units for layer in model.layers if isinstance(layer, Dense)]
    assert widths == [64, 32, 16, 10]
    assert model.optimizer.learning_rate == pytest.approx(0.05)
    assert type(model.optimizer).__name__ == "Adam"


def test_defaults_are_the_zoo_model():
    model = ZooHyperModel("mlp", (64,), 10)({})
    assert [layer.units for layer in model.layers if isinstance(layer, Dense)] == [256, 128, 10]


def test_cnn_dropout_and_sgd_momentum():
    model = ZooHyperModel("cnn", (1, 8, 8), 10)({"dropout": 0.4, "optimizer": "sgd",
                                                 "momentum": 0.9})
    (dropout,) = [layer for layer in model.layers if isinstance(layer, Dropout)]
    assert dropout.rate == pytest.approx(0.4)
    assert model.optimizer.get_config()["momentum"] == pytest.approx(0.9)


@pytest.mark.parametrize("hp, match", [
    ({"optimizer": "adam", "momentum": 0.9}, "optimizer 'adam' does not take"),
    ({"units": 0}, "units and layers must be >= 1"),
    ({"dropout": 0.1}, "mlp takes no hyper-parameter 'dropout'"),
])
def test_bad_hyper_parameters(hp, match):
    with pytest.raises(ValueError, match=match):
        ZooHyperModel("mlp", (64,), 10)(hp)


def test_known_names_and_unknown_model():
    assert known_names("lenet") == ("lr", "optimizer", "momentum")
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        ZooHyperModel("resnet", (3, 32, 32), 10)
