"""The shift/scale study's models: placement of the added layers, parameter counts, identical
initial weights across variants, float64 gradient checks, and argument errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import initializers, losses
from chainrule.experiments.shift_scale.models import (
    ARCHS,
    VARIANTS,
    added_layers,
    added_layers_by_position,
    build_model,
    layer_table,
)
from chainrule.layers import (
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    GlobalAveragePooling2D,
    Scale,
    Shift,
)

rng = np.random.default_rng(0)

# Small models: the MLP (12,) → 8 → 6 → 3 and the All-CNN-C on 1×12×12 at width 0.1
# (a = round(9.6) = 10, b = round(19.2) = 19 channels), 3 classes.
SMALL = {
    "mlp": {"input_shape": (12,), "num_classes": 3, "hidden": (8, 6)},
    "allconv": {"input_shape": (1, 12, 12), "num_classes": 3, "width": 0.1},
}

# The sample shape at each position of the small models, worked out by hand: the input, then
# the output of every ReLU-activated Dense/Conv2D.
POSITION_SHAPES = {
    "mlp": [(12,), (8,), (6,)],
    "allconv": [(1, 12, 12), (10, 12, 12), (10, 12, 12), (10, 6, 6), (19, 6, 6), (19, 6, 6),
                (19, 3, 3), (19, 1, 1), (19, 1, 1), (3, 1, 1)],
}

# The layer types one position gets, and the modes of Shift/Scale among them.
ADDED = {
    "none": [],
    "batchnorm": [(BatchNormalization, None)],
    **{f"{kind}-{mode}": [(cls, mode)]
       for kind, cls in (("shift", Shift), ("scale", Scale))
       for mode in ("element", "channel", "layer")},
    **{f"shift-{mode}+scale-{mode}": [(Shift, mode), (Scale, mode)]
       for mode in ("element", "channel", "layer")},
}


def small_model(arch, variant, **kwargs):
    options = {**SMALL[arch], **kwargs}
    return build_model(arch, variant, options.pop("input_shape"), options.pop("num_classes"),
                       **options)


def trunk_layers(model):
    """The Dense and Conv2D layers, in order."""
    return [layer for layer in model.layers if isinstance(layer, (Dense, Conv2D))]


# -- placement ------------------------------------------------------------------------------------


def expected_sequence(arch, variant, dropout):
    """(type, detail) per layer, written from the placement rule, independently of the module:
    detail is the mode of Shift/Scale, the rate of Dropout, whether a Dense/Conv2D has a ReLU."""
    added = ADDED[variant]
    relu, linear = (Dense, True), (Dense, False)

    def position(rate):
        return added + ([(Dropout, rate)] if dropout else [])

    if arch == "mlp":
        return [*position(0.2), relu, *added, *([(Dropout, 0.5)] if dropout else []),
                relu, *added, *([(Dropout, 0.5)] if dropout else []), linear]
    sequence = position(0.2)
    for index in range(1, 10):
        sequence += [(Conv2D, True), *added]
        if dropout and index in (3, 6):  # the stride-2 convolutions
            sequence.append((Dropout, 0.5))
    return [*sequence, (GlobalAveragePooling2D, None)]


def describe(layer):
    if isinstance(layer, (Shift, Scale)):
        return type(layer), layer.mode
    if isinstance(layer, Dropout):
        return Dropout, layer.rate
    if isinstance(layer, (Dense, Conv2D)):
        return type(layer), layer.activation is cr.functional.relu
    return type(layer), None


@pytest.mark.parametrize("dropout", [False, True])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("arch", ARCHS)
def test_added_layers_follow_the_input_and_every_relu_and_nothing_else(arch, variant, dropout):
    model = small_model(arch, variant, dropout=dropout)
    assert [describe(layer) for layer in model.layers] == expected_sequence(arch, variant,
                                                                            dropout)
    for layer in model.layers:
        if isinstance(layer, BatchNormalization):
            assert layer.axis == 1


@pytest.mark.parametrize("arch", ARCHS)
def test_the_model_is_built_uncompiled_and_outputs_logits(arch):
    model = small_model(arch, "shift-channel+scale-channel", dropout=True)
    assert model.built and not model.compiled
    assert model.output_shape == (None, 3)
    x = rng.standard_normal((2, *SMALL[arch]["input_shape"]))
    assert model(x, training=True).shape == (2, 3)
    assert model(x, training=False).shape == (2, 3)


@pytest.mark.parametrize("arch", ARCHS)
def test_save_and_load_give_the_same_model(arch, tmp_path):
    from chainrule.models import load_model

    model = small_model(arch, "shift-channel+scale-channel", dropout=True)
    perturb_added_layers(model)
    model.save(str(tmp_path / "model.npz"))
    loaded = load_model(str(tmp_path / "model.npz"), compile=False)
    x = rng.standard_normal((2, *SMALL[arch]["input_shape"])).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


def test_added_layers_are_new_each_call_and_shift_comes_before_scale():
    first, second = added_layers("shift-layer+scale-layer"), added_layers("shift-layer+scale-layer")
    assert [type(layer) for layer in first] == [Shift, Scale]
    assert all(a is not b for a, b in zip(first, second))
    assert added_layers("none") == []
    assert [layer.name for layer in added_layers("batchnorm", "conv2")] == ["batchnorm_conv2"]


@pytest.mark.parametrize("arch", ARCHS)
def test_added_layers_by_position(arch):
    model = small_model(arch, "shift-element+scale-element", dropout=True)
    positions = added_layers_by_position(model)
    names = ["input"] + [layer.name for layer in trunk_layers(model)
                         if layer.activation is cr.functional.relu]
    assert list(positions) == names
    for (_, layers), shape in zip(positions.items(), POSITION_SHAPES[arch]):
        assert [type(layer) for layer in layers] == [Shift, Scale]
        assert layers[0].bias.shape == shape and layers[1].scale.shape == shape
    assert added_layers_by_position(small_model(arch, "none")) == {}


# -- parameter counts -----------------------------------------------------------------------------


def expected_added(variant, shapes):
    """(trainable, all) parameters a variant adds at positions of the given sample shapes."""
    if variant == "none":
        return 0, 0
    if variant == "batchnorm":  # γ and β trained; moving mean and variance counted too
        channels = sum(shape[0] for shape in shapes)
        return 2 * channels, 4 * channels
    mode = variant.split("+")[0].split("-")[1]
    per_position = {"element": math.prod, "channel": lambda s: s[0], "layer": lambda s: 1}[mode]
    added = sum(per_position(shape) for shape in shapes) * (2 if "+" in variant else 1)
    return added, added


def trainable_count(model):
    return sum(int(p.size) for p in model.parameters())


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("arch", ARCHS)
def test_parameter_counts_per_variant(arch, variant):
    none, model = small_model(arch, "none"), small_model(arch, variant)
    trainable, total = expected_added(variant, POSITION_SHAPES[arch])
    assert trainable_count(model) - trainable_count(none) == trainable
    assert model.count_params() - none.count_params() == total
    assert small_model(arch, variant, dropout=True).count_params() == model.count_params()


def test_parameter_counts_at_the_default_options_as_documented():
    mlp = build_model("mlp", "none", (784,), 10)
    allconv = build_model("allconv", "none", (1, 28, 28), 10)
    assert mlp.count_params() == 235_146
    assert allconv.count_params() == 86_266
    assert build_model("allconv", "shift-element", (1, 28, 28), 10).count_params() == 153_204
    assert build_model("allconv", "batchnorm", (1, 28, 28), 10).count_params() == 87_558
    assert build_model("mlp", "shift-layer+scale-layer", (784,), 10).count_params() == 235_152


def test_layer_table_of_the_default_allconv():
    rows = layer_table("allconv")
    assert [row[2:6] for row in rows] == [
        ("3x3, 24", "1", "same", (24, 28, 28)),
        ("3x3, 24", "1", "same", (24, 28, 28)),
        ("3x3, 24", "2", "same", (24, 14, 14)),
        ("3x3, 48", "1", "same", (48, 14, 14)),
        ("3x3, 48", "1", "same", (48, 14, 14)),
        ("3x3, 48", "2", "same", (48, 7, 7)),
        ("3x3, 48", "1", "valid", (48, 5, 5)),
        ("1x1, 48", "1", "valid", (48, 5, 5)),
        ("1x1, 10", "1", "valid", (10, 5, 5)),
        ("", "", "", (10,)),
    ]
    assert [row[6] for row in rows] == [240, 5208, 5208, 10416, 20784, 20784, 20784, 2352,
                                        490, 0]
    assert [row[5:] for row in layer_table("mlp")] == [((256,), 200960), ((128,), 32896),
                                                       ((10,), 1290)]


def test_width_one_is_the_papers_96_and_192_channels():
    model = build_model("allconv", "none", (3, 32, 32), 10, width=1.0)
    assert [layer.filters for layer in trunk_layers(model)] == [96] * 3 + [192] * 5 + [10]
    tiny = build_model("allconv", "none", (1, 12, 12), 2, width=0.001)
    assert [layer.filters for layer in trunk_layers(tiny)] == [1] * 8 + [2]


# -- identical initial weights --------------------------------------------------------------------


def trunk_weights(model):
    return [(layer.kernel.numpy(), layer.bias.numpy()) for layer in trunk_layers(model)]


@pytest.mark.parametrize("arch", ARCHS)
def test_every_variant_starts_from_the_same_trunk_weights(arch):
    reference = trunk_weights(small_model(arch, "none", seed=3))
    for variant in VARIANTS:
        for dropout in (False, True):
            weights = trunk_weights(small_model(arch, variant, seed=3, dropout=dropout))
            for (kernel, bias), (ref_kernel, ref_bias) in zip(weights, reference):
                np.testing.assert_array_equal(kernel, ref_kernel)
                np.testing.assert_array_equal(bias, ref_bias)
                assert not bias.any()
        other = trunk_weights(small_model(arch, variant, seed=4))
        assert all(not np.array_equal(kernel, ref) for (kernel, _), (ref, _) in
                   zip(other, reference))


def test_kernels_are_he_normal_seeded_by_seed_and_index():
    model = small_model("mlp", "batchnorm", seed=7)
    for index, layer in enumerate(trunk_layers(model)):
        assert isinstance(layer.kernel_initializer, initializers.HeNormal)
        assert layer.kernel_initializer.seed == 7000 + index
    kernels = [kernel for kernel, _ in trunk_weights(small_model("allconv", "none", seed=0))]
    assert not np.array_equal(kernels[1], kernels[2])  # same shape, different seeds


def test_building_does_not_depend_on_the_global_generator():
    cr.manual_seed(1)
    first = trunk_weights(small_model("allconv", "shift-layer"))
    cr.manual_seed(2)
    second = trunk_weights(small_model("allconv", "shift-layer"))
    for (a, _), (b, _) in zip(first, second):
        np.testing.assert_array_equal(a, b)


# -- gradient checks ------------------------------------------------------------------------------


def perturb_added_layers(model):
    """Move the added layers' weights away from the identity (b = 0, s = 1, γ = 1, β = 0)."""
    for layers in added_layers_by_position(model).values():
        for layer in layers:
            for name, weight in layer.named_parameters():
                if name in ("scale", "gamma"):
                    weight.data[...] = rng.uniform(0.5, 1.5, weight.shape)
                else:
                    weight.data[...] = 0.1 * rng.standard_normal(weight.shape)


def move_biases_off_zero(model):
    """Give every bias a small random value. With zero biases, an output whose window of
    inputs is all zeros (ReLU-dead units of the layer below) has a pre-activation of exactly
    0: a ReLU kink at the very point checked, where central differences see half the slope
    and backpropagation (like PyTorch) none, whatever the step (4 of 40 data draws of the
    all-conv net hit one)."""
    for name, weight in model.named_parameters():
        if name.endswith(".bias") and not any(
                name.startswith(f"layers.{i}.") for i in _added_layer_indices(model)):
            weight.data[...] = 0.1 * rng.standard_normal(weight.shape)


def _added_layer_indices(model):
    added = {id(layer) for layers in added_layers_by_position(model).values()
             for layer in layers}
    return [i for i, layer in enumerate(model.layers) if id(layer) in added]


def gradcheck_model(model, input_shape, batch=3):
    """Cross-entropy of the logits: its gradients w.r.t. the input and every parameter, in
    training mode (batch normalisation uses the batch statistics; no dropout in the model)."""
    perturb_added_layers(model)
    move_biases_off_zero(model)
    model.train()
    x = cr.tensor(rng.standard_normal((batch, *input_shape)), requires_grad=True)
    labels = np.arange(batch) % model.output_shape[-1]
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    return cr.gradcheck(lambda inputs, *params: loss(labels, model(inputs)),
                        [x, *model.parameters()])


@pytest.mark.parametrize("variant", VARIANTS)
def test_mlp_gradcheck(float64, variant):
    assert gradcheck_model(small_model("mlp", variant), SMALL["mlp"]["input_shape"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_allconv_gradcheck(float64, variant):
    # width 0.02: 2 and 4 channels, so that every parameter can be checked in about a second.
    model = build_model("allconv", variant, (1, 12, 12), 3, width=0.02)
    assert model.parameters()[0].dtype == np.float64
    assert gradcheck_model(model, (1, 12, 12))


# -- bad arguments --------------------------------------------------------------------------------


def test_unknown_variant():
    with pytest.raises(ValueError, match=r"variant must be one of \['none', 'batchnorm', "
                                         r".*got variant='shift-pixel'"):
        build_model("mlp", "shift-pixel", (12,), 3)
    with pytest.raises(ValueError, match=r"variant=.*'shift-channel\+scale-layer'"):
        added_layers("shift-channel+scale-layer")


def test_unknown_arch():
    with pytest.raises(ValueError, match=r"arch must be one of \['allconv', 'mlp'\], got "
                                         r"arch='resnet'"):
        build_model("resnet", "none", (12,), 3)


def test_wrong_input_rank():
    with pytest.raises(ValueError, match=r"mlp: input_shape must be \(features,\).*got "
                                         r"\(1, 12, 12\)"):
        build_model("mlp", "none", (1, 12, 12), 3)
    with pytest.raises(ValueError, match=r"allconv: input_shape must be \(channels, height, "
                                         r"width\), got \(144,\)"):
        build_model("allconv", "none", (144,), 3)


def test_too_small_image():
    with pytest.raises(ValueError, match="allconv: images must be at least 12x12.*got 12x11"):
        build_model("allconv", "none", (1, 12, 11), 3)


def test_bad_options_seed_and_width():
    with pytest.raises(TypeError, match=r"mlp: unexpected option\(s\) \['width'\]"):
        build_model("mlp", "none", (12,), 3, width=0.5)
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        build_model("mlp", "none", (12,), 3, seed=-1)
    with pytest.raises(ValueError, match="width must be positive"):
        build_model("allconv", "none", (1, 12, 12), 3, width=0)
