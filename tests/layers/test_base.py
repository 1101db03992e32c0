"""The Layer contract: registration, names, state, modes, freezing, lazy build, shape errors."""

from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pytest

import chainrule as cr
from chainrule import regularizers
from chainrule.layers import (
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    InputSpec,
    Layer,
    deserialize,
    reset_names,
    serialize,
)


class Block(Layer):
    """A layer of layers: one attribute, a list of layers, and a raw parameter."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.first = Dense(4)
        self.blocks = [Dense(4), Dense(2)]
        self.gain = cr.tensor(1.5, requires_grad=True)

    def forward(self, x):
        x = self.first(x) * self.gain
        for block in self.blocks:
            x = block(x)
        return x


class KerasStyle(Layer):
    """Overrides Keras's ``call`` instead of ``forward``."""

    def build(self, input_shape):
        self.w = self.add_weight("w", (input_shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.w


def test_automatic_names_are_unique_snake_case():
    reset_names()
    assert [Dense(1).name, Dense(1).name, Dense(1).name] == ["dense", "dense_1", "dense_2"]
    assert Conv2D(1, 1).name == "conv2d"
    assert BatchNormalization().name == "batch_normalization"
    assert Dense(1, name="head").name == "head"


def test_sub_layers_lists_and_tensors_are_registered_in_order():
    block = Block()
    block(cr.ones(3, 5))
    names = [name for name, _ in block.named_parameters()]
    assert names == ["gain", "first.kernel", "first.bias", "blocks.0.kernel", "blocks.0.bias",
                     "blocks.1.kernel", "blocks.1.bias"]
    assert [p is w for p, w in zip(block.parameters(), block.weights)] == [True] * 7
    assert block.children() == [block.first, *block.blocks]
    assert [name for name, _ in block.named_modules()] == ["", "first", "blocks.0", "blocks.1"]


def test_layers_appended_to_a_registered_list_are_found():
    class Stack(Layer):
        def __init__(self):
            super().__init__()
            self.layers = []
            for units in (3, 2):
                self.layers.append(Dense(units))

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    stack = Stack()
    stack(cr.ones(1, 4))
    assert list(stack.state_dict()) == ["layers.0.kernel", "layers.0.bias", "layers.1.kernel",
                                        "layers.1.bias"]


def test_shared_layers_and_weights_are_counted_once():
    class Tied(Layer):
        def __init__(self):
            super().__init__()
            self.encode = Dense(3)
            self.again = self.encode

        def forward(self, x):
            return self.again(self.encode(x))

    tied = Tied()
    tied(cr.ones(2, 3))
    assert [name for name, _ in tied.named_parameters()] == ["encode.kernel", "encode.bias"]
    assert tied.count_params() == 12


def test_reassigning_or_deleting_an_attribute_unregisters_it():
    block = Block()
    block.first = None
    block.gain = 2.0
    del block.blocks
    assert block.named_parameters() == [] and block.children() == []


def test_a_weight_cannot_be_replaced_by_a_computed_tensor():
    dense = Dense(2, input_dim=3)
    with pytest.raises(TypeError, match="cannot replace weight 'kernel'"):
        dense.kernel = dense.kernel * 2
    fresh = cr.zeros(3, 2, requires_grad=True)
    dense.kernel = fresh
    assert dense.parameters()[0] is fresh


def test_state_dict_holds_copies_of_all_weights_including_moving_statistics():
    bn = BatchNormalization(input_shape=(3,))
    state = bn.state_dict()
    assert list(state) == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert [name for name, _ in bn.named_parameters()] == ["gamma", "beta"]
    assert bn.non_trainable_weights == [bn.moving_mean, bn.moving_variance]
    state["gamma"][:] = 7.0
    assert bn.gamma.data[0] == 1.0  # a copy, not a view


def test_load_state_dict_copies_in_place_and_keeps_the_dtype():
    dense = Dense(2, input_dim=3)
    kernel_array = dense.kernel.data
    state = {"kernel": np.arange(6.0).reshape(3, 2), "bias": np.array([1.0, 2.0])}
    result = dense.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert dense.kernel.data is kernel_array and dense.kernel.dtype == np.float32
    np.testing.assert_array_equal(dense.kernel.data, state["kernel"])
    np.testing.assert_array_equal(dense.bias.data, [1.0, 2.0])


def test_load_state_dict_names_missing_unexpected_and_misshaped_keys():
    dense = Dense(2, input_dim=3, name="probe")
    before = dense.get_weights()
    with pytest.raises(ValueError, match=r"layer 'probe'.*missing keys \['bias'\]"):
        dense.load_state_dict({"kernel": np.zeros((3, 2))})
    with pytest.raises(ValueError, match=r"unexpected keys \['extra'\]"):
        dense.load_state_dict({**dense.state_dict(), "extra": np.zeros(1)})
    with pytest.raises(ValueError, match=r"'kernel': expected \(3, 2\), got \(2, 3\)"):
        dense.load_state_dict({"kernel": np.zeros((2, 3)), "bias": np.zeros(2)})
    with pytest.raises(ValueError, match="shape mismatch"):
        dense.load_state_dict({"kernel": np.zeros((2, 3))}, strict=False)
    for old, new in zip(before, dense.get_weights()):
        np.testing.assert_array_equal(old, new)  # nothing was copied


def test_load_state_dict_non_strict_reports_what_it_skipped():
    dense = Dense(2, input_dim=3)
    result = dense.load_state_dict({"bias": np.ones(2), "other": np.ones(1)}, strict=False)
    assert result.missing_keys == ["kernel"] and result.unexpected_keys == ["other"]
    np.testing.assert_array_equal(dense.bias.data, [1.0, 1.0])


def test_loading_into_an_unbuilt_layer_says_so():
    with pytest.raises(ValueError, match="not built yet"):
        Dense(2).load_state_dict({"kernel": np.zeros((3, 2)), "bias": np.zeros(2)})


def test_get_and_set_weights_in_keras_order():
    dense = Dense(2, input_dim=3, name="probe")
    kernel, bias = dense.get_weights()
    assert kernel.shape == (3, 2) and bias.shape == (2,)
    dense.set_weights([np.ones((3, 2)), np.full(2, 0.5)])
    np.testing.assert_array_equal(dense(cr.ones(1, 3)).numpy(), [[3.5, 3.5]])
    with pytest.raises(ValueError, match=r"layer 'probe': expected 2 arrays .* got 1"):
        dense.set_weights([np.ones((3, 2))])
    with pytest.raises(ValueError, match=r"weight 'bias' has shape \(2,\), got .* \(3,\)"):
        dense.set_weights([np.ones((3, 2)), np.ones(3)])


def test_train_and_eval_switch_the_whole_tree():
    block = Block()
    assert block.training and block.blocks[1].training
    assert block.eval() is block
    assert not any(layer.training for layer in block.modules())
    block.train()
    assert all(layer.training for layer in block.modules())


def test_training_argument_applies_to_one_call():
    dropout = Dropout(0.5).eval()
    x = cr.ones(20, 20)
    assert (dropout(x, training=True).numpy() == 0).any()
    assert not dropout.training
    np.testing.assert_array_equal(dropout(x).numpy(), x.numpy())


def test_zero_grad_forgets_gradients():
    dense = Dense(2)
    dense(cr.ones(1, 3)).sum().backward()
    assert all(p.grad is not None for p in dense.parameters())
    dense.zero_grad()
    assert all(p.grad is None for p in dense.parameters())


def test_freezing_excludes_weights_from_parameters_and_from_gradients():
    block = Block()
    block(cr.ones(2, 5))
    block.blocks[0].trainable = False
    assert len(block.parameters()) == 5 and len(block.non_trainable_weights) == 2
    assert not block.blocks[0].kernel.requires_grad
    block(cr.ones(2, 5)).sum().backward()
    assert block.blocks[0].kernel.grad is None and block.blocks[1].kernel.grad is not None
    block.trainable = False
    assert block.parameters() == [] and len(block.non_trainable_weights) == 7
    block.trainable = True
    assert len(block.parameters()) == 7


def test_frozen_layer_keeps_non_trainable_state_non_trainable():
    bn = BatchNormalization(input_shape=(3,))
    bn.trainable = False
    bn.trainable = True
    assert not bn.moving_mean.requires_grad and bn.gamma.requires_grad


def test_constructor_trainable_false():
    dense = Dense(2, input_dim=3, trainable=False)
    assert dense.parameters() == [] and not dense.kernel.requires_grad
    assert len(dense.weights) == 2


def test_count_params_needs_a_built_layer():
    with pytest.raises(ValueError, match="unbuilt layer"):
        Dense(2, name="lazy").count_params()
    assert Dense(4, input_dim=3).count_params() == 16
    assert BatchNormalization(input_shape=(5,)).count_params() == 20


def test_regularization_loss_sums_the_penalties_of_trainable_weights():
    class Two(Layer):
        def __init__(self):
            super().__init__()
            self.a = Dense(2, kernel_regularizer=regularizers.L2(0.5), input_dim=3)
            self.b = Dense(2, kernel_regularizer="l1", bias_regularizer=regularizers.L1(2.0),
                           input_dim=2)

    two = Two()
    two.b.bias.data[:] = [1.0, -3.0]
    expected = (0.5 * (two.a.kernel.data ** 2).sum() + 0.01 * np.abs(two.b.kernel.data).sum()
                + 2.0 * 4.0)
    loss = two.regularization_loss()
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-6)
    loss.backward()
    np.testing.assert_allclose(two.a.kernel.grad.numpy(), two.a.kernel.data, rtol=1e-6)
    two.b.trainable = False
    np.testing.assert_allclose(two.regularization_loss().item(),
                               0.5 * (two.a.kernel.data ** 2).sum(), rtol=1e-6)


def test_regularization_loss_is_zero_without_regularizers():
    loss = Dense(2, input_dim=3).regularization_loss()
    assert isinstance(loss, cr.Tensor) and loss.item() == 0.0


def test_lazy_build_on_first_call_and_eager_build_with_input_shape():
    lazy = Dense(3)
    assert not lazy.built and lazy.weights == []
    lazy(cr.ones(2, 5))
    assert lazy.built and lazy.kernel.shape == (5, 3)
    assert lazy.input_shape == (None, 5) and lazy.output_shape == (None, 3)
    for eager in (Dense(3, input_dim=5), Dense(3, input_shape=(5,)), Dense(3, input_shape=5)):
        assert eager.built and eager.kernel.shape == (5, 3)
        assert eager.input_shape == (None, 5) and eager.output_shape == (None, 3)


def test_an_unbuilt_layer_has_no_input_shape():
    with pytest.raises(AttributeError, match="not built yet"):
        _ = Dense(3).input_shape


def test_incompatible_input_after_build_names_layer_and_shapes():
    dense = Dense(3, name="probe")
    dense(cr.ones(2, 5))
    with pytest.raises(ValueError, match=r"'probe' \(Dense\) expects input of shape "
                                         r"\(\.\.\., 5\) but received .* \(2, 4\)"):
        dense(cr.ones(2, 4))
    with pytest.raises(ValueError, match="at least 2 axes"):
        dense(cr.ones(5))


def test_wrong_rank_is_caught_before_the_build():
    conv = Conv2D(2, 3, name="c")
    with pytest.raises(ValueError, match=r"'c' \(Conv2D\) expects input of shape "
                                         r"\(None, None, None, None\).*\(3, 5, 5\)"):
        conv(cr.ones(3, 5, 5))
    assert not conv.built


def test_input_spec_describes_expected_shapes():
    assert InputSpec(ndim=4, axes={1: 3}).expected_shape() == "(None, 3, None, None)"
    assert InputSpec(min_ndim=2, axes={-1: 4}).expected_shape() == "(..., 4)"
    assert InputSpec(ndim=4, axes={1: 3}).problem((2, 3, 5, 5)) is None
    assert "size 3" in InputSpec(ndim=4, axes={1: 3}).problem((2, 4, 5, 5))


def test_keras_call_is_supported_and_numbers_and_arrays_are_converted():
    layer = KerasStyle()
    y = layer(np.array([[1.0, 2.0]]))  # float64 array -> default dtype
    assert isinstance(y, cr.Tensor) and y.dtype == np.float32
    np.testing.assert_array_equal(y.numpy(), [[1.0, 2.0]])
    assert [name for name, _ in layer.named_parameters()] == ["w"]


def test_a_layer_without_forward_or_call_says_what_to_override():
    with pytest.raises(NotImplementedError, match="must override forward"):
        Layer()(cr.ones(1))


def test_add_weight_rejects_duplicates_and_constructors_reject_unknown_arguments():
    dense = Dense(2, input_dim=3)
    with pytest.raises(ValueError, match="already has a weight named 'kernel'"):
        dense.add_weight("kernel", (1,))
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        Dense(2, units_out=3)


def test_add_weight_options():
    layer = Layer()
    w = layer.add_weight("w", (2, 3), initializer="ones", dtype="float64", trainable=False)
    assert w.dtype == np.float64 and not w.requires_grad and layer.w is w
    assert layer.non_trainable_weights == [w] and layer.parameters() == []


def test_get_config_round_trips_through_json():
    dense = Dense(4, activation="tanh", use_bias=False, kernel_initializer="he_normal",
                  kernel_regularizer=regularizers.L1L2(0.1, 0.2), input_dim=3, name="head")
    config = json.loads(json.dumps(dense.get_config()))
    again = Dense.from_config(config)
    assert again.get_config() == dense.get_config()
    assert again.built and again.kernel.shape == (3, 4) and again.bias is None
    copy = deserialize(json.loads(json.dumps(serialize(dense))))
    assert type(copy) is Dense and copy.get_config() == dense.get_config()


def test_deserialize_finds_layers_defined_by_users():
    restored = deserialize({"class_name": "KerasStyle", "config": {"name": "k"}})
    assert type(restored) is KerasStyle and restored.name == "k"
    with pytest.raises(ValueError, match="unknown layer class 'Nope'"):
        deserialize({"class_name": "Nope", "config": {}})


def test_custom_activations_cannot_be_saved_by_name():
    dense = Dense(2, activation=lambda x: x * 2)
    with pytest.raises(ValueError, match="cannot be saved by name"):
        dense.get_config()


def test_repr_shows_arguments_and_children():
    block = Block()
    text = repr(block)
    assert text.startswith("Block(\n  (first): Dense(units=4")
    assert "(blocks.1): Dense(units=2" in text


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda layer: pickle.loads(pickle.dumps(layer))],
                         ids=["deepcopy", "pickle"])
def test_layers_can_be_copied_and_pickled(clone):
    block = Block()
    x = cr.tensor(np.random.default_rng(0).standard_normal((2, 5)))
    expected = block(x).numpy()
    twin = clone(block)
    np.testing.assert_array_equal(twin(x).numpy(), expected)
    assert twin.blocks[0].kernel is not block.blocks[0].kernel
    assert [n for n, _ in twin.named_parameters()] == [n for n, _ in block.named_parameters()]
    twin.blocks[0].kernel.data[...] = 0.0
    np.testing.assert_array_equal(block(x).numpy(), expected)


def test_the_pytorch_face_does_not_take_the_keras_layers_names():
    import subprocess
    import sys

    # chainrule.nn imported first, then a saved Keras-style Sequential loaded: its own class
    code = ("import chainrule.nn as nn, tempfile, os\n"
            "from chainrule.layers import Dense, Dropout\n"
            "from chainrule.models import Sequential, load_model\n"
            "m = Sequential([Dense(3, input_shape=(2,)), Dropout(0.1)], name='s')\n"
            "p = os.path.join(tempfile.mkdtemp(), 'm.npz'); m.save(p)\n"
            "print(type(load_model(p)).__module__, type(load_model(p).layers[1]).__module__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["chainrule.models.sequential", "chainrule.layers.dropout"]
