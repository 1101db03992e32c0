"""Sequential: building, the layer list, indexing, configs and the summary table."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.layers import BatchNormalization, Dense, Dropout, Flatten, Layer
from chainrule.models import Input, Sequential


def test_input_shape_on_the_first_layer_builds_everything_at_once():
    model = Sequential([Dense(8, input_shape=(4,)), Dense(3)])
    assert model.built and all(layer.built for layer in model.layers)
    assert model.input_shape == (None, 4) and model.output_shape == (None, 3)
    model.add(Dense(2))  # added to a built model: built at once
    assert model.layers[-1].kernel.shape == (3, 2)


def test_an_input_declares_the_shape_and_is_not_a_layer():
    model = Sequential([Input(shape=(1, 6, 6)), Flatten(), Dense(5)])
    assert len(model) == 2 and model.layers[1].kernel.shape == (36, 5)
    with pytest.raises(ValueError, match="Input can only come first"):
        model.add(Input(shape=(3,)))


def test_lazy_model_builds_on_its_first_call():
    model = Sequential()
    model.add(Dense(8, activation="relu"))
    model.add(Dense(3))
    assert not model.built
    with pytest.raises(ValueError, match="not been built yet"):
        model.summary()
    assert model(np.zeros((2, 5), np.float32)).shape == (2, 3)
    assert model.built and model.input_shape == (None, 5)


def test_build_with_a_shape_like_keras():
    model = Sequential([Dense(8), Dense(3)])
    model.build((None, 7))
    assert model.built and model.layers[0].kernel.shape == (7, 8)


def test_layers_without_compute_output_shape_are_built_by_a_call_on_zeros():
    class Double(Layer):  # no compute_output_shape
        def forward(self, x):
            return cr.concat([x, x], axis=-1)

    model = Sequential([Dense(3), Double(), Dense(2)])
    model.build((None, 4))
    assert model.layers[2].kernel.shape == (6, 2)
    assert model.layers[0].training  # the call on zeros left the modes as they were


def test_layers_list_indexing_and_pop():
    first, second, third = Dense(4), Dense(3), Dense(2)
    model = Sequential([first, second, third])
    assert model.layers == [first, second, third] and model[1] is second and model[-1] is third
    assert [layer for layer in model] == model.layers and len(model) == 3
    model.layers.append(Dense(9))  # a copy: the model is unchanged
    assert len(model) == 3
    head = model[:2]
    assert isinstance(head, Sequential) and head.layers == [first, second]
    assert model.pop() is third and model.layers == [first, second]
    with pytest.raises(AttributeError, match="cannot be replaced"):
        model.layers = []
    with pytest.raises(TypeError, match="expected a Layer"):
        model.add("dense")
    with pytest.raises(ValueError, match="already in it"):
        model.add(first)


def test_weights_are_named_by_position():
    model = Sequential([Dense(3, input_shape=(2,)), BatchNormalization(axis=-1)])
    assert list(model.state_dict()) == ["layers.0.kernel", "layers.0.bias", "layers.1.gamma",
                                        "layers.1.beta", "layers.1.moving_mean",
                                        "layers.1.moving_variance"]
    assert len(model.parameters()) == 4 and len(model.non_trainable_weights) == 2


def test_forward_is_the_composition():
    model = Sequential([Dense(3, activation="relu", input_shape=(2,)), Dense(1)])
    x = cr.tensor(np.random.default_rng(0).normal(size=(5, 2)))
    expected = model.layers[1](model.layers[0](x))
    np.testing.assert_allclose(model(x).numpy(), expected.numpy())


def test_config_round_trip_rebuilds_an_equal_model():
    model = Sequential([Input(shape=(6,)), Dense(4, activation="relu", name="hidden"),
                        Dropout(0.5), Sequential([Dense(2)], name="head")], name="net")
    copy = Sequential.from_config(model.get_config())
    assert copy.name == "net" and copy.built
    assert [type(layer).__name__ for layer in copy.layers] == ["Dense", "Dropout", "Sequential"]
    assert {k: v.shape for k, v in copy.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()}


def test_summary_prints_keras_table(capsys):
    model = Sequential([Dense(64, activation="relu", input_shape=(784,), name="dense"),
                        Dense(10, activation="softmax", name="dense_1")], name="sequential")
    model.summary()
    assert capsys.readouterr().out == (
        'Model: "sequential"\n'
        "_________________________________________________________________\n"
        "Layer (type)                 Output Shape              Param #\n"
        "=================================================================\n"
        "dense (Dense)                (None, 64)                50,240\n"
        "_________________________________________________________________\n"
        "dense_1 (Dense)              (None, 10)                650\n"
        "=================================================================\n"
        "Total params: 50,890 (198.79 KB)\n"
        "Trainable params: 50,890 (198.79 KB)\n"
        "Non-trainable params: 0 (0.00 Byte)\n"
        "_________________________________________________________________\n"
    )


def test_summary_columns_and_totals():
    lines = []
    model = Sequential([Dense(64, activation="relu", input_shape=(784,), name="dense"),
                        BatchNormalization(axis=-1, name="batch_normalization"),
                        Dense(10, activation="softmax", name="dense_1")], name="sequential")
    model.summary(print_fn=lines.append)
    table = lines[0].splitlines()
    assert table[0] == 'Model: "sequential"'
    header = table[2]
    shape_at, params_at = header.index("Output Shape"), header.index("Param #")
    rows = {line.split()[0]: line for line in table if line.startswith(("dense", "batch"))}
    assert rows["dense"][shape_at:params_at].strip() == "(None, 64)"
    assert rows["dense"][params_at:] == "50,240"
    assert rows["batch_normalization"][params_at:] == "256"
    assert rows["dense_1"].startswith("dense_1 (Dense)") and rows["dense_1"].endswith("650")
    assert table[-4:] == ["Total params: 51,146 (199.79 KB)",
                          "Trainable params: 51,018 (199.29 KB)",
                          "Non-trainable params: 128 (512.00 Byte)",
                          "_" * len(table[1])]
