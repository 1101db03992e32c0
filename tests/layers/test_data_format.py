"""data_format on the image and sequence layers: the global setting, channels_last against
channels_first (values and gradients), PyTorch parity and gradient checks in channels_last,
the check that refuses channels-last-looking input under the default, and BatchNormalization's
axis."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import config, layers
from chainrule import layers as L
from tests.layers.helpers import assert_torch_parity, gradcheck_layer
from tests.torch_helpers import require_torch

torch = require_torch()
tF = torch.nn.functional
rng = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _default_layout(monkeypatch):
    """Each test starts from chainrule's default layout, never chosen; restored afterwards."""
    monkeypatch.setattr(config, "_state", {"data_format": "channels_first", "chosen": False})


# -- the global setting ---------------------------------------------------------------------------


def test_default_is_channels_first_and_the_setting_is_read_when_a_layer_is_made():
    assert config.image_data_format() == "channels_first"
    assert not config.image_data_format_chosen()
    before = L.Conv2D(2, 3)
    config.set_image_data_format("Channels_Last")
    assert config.image_data_format() == "channels_last" and config.image_data_format_chosen()
    after = [L.Conv2D(2, 3), L.Conv1D(2, 3), L.MaxPooling2D(), L.AveragePooling1D(),
             L.GlobalMaxPooling2D(), L.GlobalAveragePooling1D()]
    assert before.data_format == "channels_first"
    assert all(layer.data_format == "channels_last" for layer in after)
    assert L.Conv2D(2, 3, data_format="channels_first").data_format == "channels_first"
    config.set_image_data_format("channels_first")
    assert config.image_data_format() == "channels_first" and config.image_data_format_chosen()


def test_bad_data_format_is_refused():
    with pytest.raises(ValueError, match="set_image_data_format: data_format must be "
                                         "'channels_first' or 'channels_last', got 'NHWC'"):
        config.set_image_data_format("NHWC")
    with pytest.raises(ValueError, match="Conv2D: data_format must be"):
        L.Conv2D(2, 3, data_format=1)
    with pytest.raises(ValueError, match="MaxPooling2D: data_format must be"):
        L.MaxPooling2D(data_format="channels_middle")
    assert config.image_data_format() == "channels_first" and not config.image_data_format_chosen()


# -- channels_last equals channels_first on the transposed input ----------------------------------

LAYERS = [
    ("conv2d", lambda f: L.Conv2D(4, 3, data_format=f), 2),
    ("conv2d_same_strided", lambda f: L.Conv2D(4, (3, 2), strides=2, padding="same",
                                                dilation_rate=1, data_format=f), 2),
    ("conv2d_relu_dilated", lambda f: L.Conv2D(3, 2, dilation_rate=2, activation="relu",
                                               data_format=f), 2),
    ("max_pooling2d", lambda f: L.MaxPooling2D(2, data_format=f), 2),
    ("average_pooling2d_same", lambda f: L.AveragePooling2D(3, strides=2, padding="same",
                                                            data_format=f), 2),
    ("global_average_pooling2d", lambda f: L.GlobalAveragePooling2D(data_format=f), 2),
    ("global_max_pooling2d_keepdims", lambda f: L.GlobalMaxPooling2D(data_format=f,
                                                                     keepdims=True), 2),
    ("conv1d_causal", lambda f: L.Conv1D(4, 3, padding="causal", data_format=f), 1),
    ("conv1d_same_strided", lambda f: L.Conv1D(4, 4, strides=2, padding="same",
                                               data_format=f), 1),
    ("max_pooling1d", lambda f: L.MaxPooling1D(2, data_format=f), 1),
    ("average_pooling1d_same", lambda f: L.AveragePooling1D(3, strides=2, padding="same",
                                                            data_format=f), 1),
    ("global_average_pooling1d", lambda f: L.GlobalAveragePooling1D(data_format=f), 1),
    ("global_max_pooling1d_keepdims", lambda f: L.GlobalMaxPooling1D(data_format=f,
                                                                     keepdims=True), 1),
]


def _last(a, rank):
    """(N, C, *spatial) → (N, *spatial, C) for arrays."""
    return np.moveaxis(a, 1, -1) if a.ndim == rank + 2 else a


@pytest.mark.parametrize("name, make, rank", LAYERS, ids=[c[0] for c in LAYERS])
def test_channels_last_equals_channels_first_on_the_transposed_input(float64, name, make, rank):
    x = rng.permutation(2 * 3 * 7 ** rank).reshape(2, 3, *(7,) * rank) / 10.0  # no ties
    first, last = make("channels_first"), make("channels_last")
    xf = cr.tensor(x, requires_grad=True)
    xl = cr.tensor(_last(x, rank).copy(), requires_grad=True)
    yf = first(xf)
    last(xl)  # build
    last.set_weights(first.get_weights())
    yl = last(xl)
    np.testing.assert_allclose(yl.numpy(), _last(yf.numpy(), rank), rtol=1e-12)
    assert last.compute_output_shape((None, *xl.shape[1:])) == (None, *yl.shape[1:])
    upstream = rng.standard_normal(yf.shape)
    yf.backward(cr.tensor(upstream))
    yl.backward(cr.tensor(_last(upstream, rank).copy()))
    np.testing.assert_allclose(xl.grad.numpy(), _last(xf.grad.numpy(), rank), rtol=1e-12)
    for a, b in zip(first.parameters(), last.parameters()):
        assert a.shape == b.shape  # the kernel layout does not depend on data_format
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10)


@pytest.mark.parametrize("name, make, rank", LAYERS, ids=[c[0] for c in LAYERS])
def test_channels_last_gradcheck(float64, name, make, rank):
    x = rng.permutation(2 * 5 ** rank * 2).reshape(2, *(5,) * rank, 2) / 7.0
    assert gradcheck_layer(make("channels_last"), cr.tensor(x, requires_grad=True))


def test_conv2d_channels_last_matches_torch(float64):
    layer = L.Conv2D(4, 3, strides=2, padding="same", data_format="channels_last",
                     input_shape=(8, 7, 3))
    module = torch.nn.Conv2d(3, 4, 3, stride=2).double()
    layer.set_weights([module.weight.detach().numpy(), module.bias.detach().numpy()])

    def forward(t):  # NHWC → NCHW, Keras's "same" (an odd extra zero at the end), → NHWC
        t = tF.pad(t.permute(0, 3, 1, 2), (1, 1, 0, 1))  # (left, right, top, bottom)
        return module(t).permute(0, 2, 3, 1)

    assert_torch_parity(layer, forward, rng.standard_normal((2, 8, 7, 3)),
                        [(layer.kernel, module.weight, None), (layer.bias, module.bias, None)])
    assert layer.kernel.shape == (4, 3, 3, 3)  # (filters, in, kh, kw) in both layouts


def test_pooling2d_channels_last_matches_torch(float64):
    x = rng.permutation(2 * 6 * 6 * 3).reshape(2, 6, 6, 3) / 10.0
    assert_torch_parity(L.MaxPooling2D(2, data_format="channels_last"),
                        lambda t: tF.max_pool2d(t.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1), x)
    assert_torch_parity(L.AveragePooling2D(3, strides=1, data_format="channels_last"),
                        lambda t: tF.avg_pool2d(t.permute(0, 3, 1, 2), 3, 1).permute(0, 2, 3, 1),
                        x)
    assert_torch_parity(L.GlobalAveragePooling2D(data_format="channels_last"),
                        lambda t: t.mean(dim=(1, 2)), x)


def test_channels_last_input_spec_and_config():
    layer = L.Conv2D(5, 3, data_format="channels_last", name="c")
    layer(cr.zeros(1, 8, 8, 3))
    assert layer.kernel.shape == (5, 3, 3, 3)
    with pytest.raises(ValueError, match=r"'c' \(Conv2D\) expects input of shape "
                                         r"\(None, None, None, 3\) .* \(1, 8, 8, 4\)"):
        layer(cr.zeros(1, 8, 8, 4))
    config_ = layer.get_config()
    assert config_["data_format"] == "channels_last"
    restored = layers.deserialize(layers.serialize(layer))
    assert restored.data_format == "channels_last" and restored.get_config() == config_


def test_a_keras_style_model_trains_with_channels_last():
    from chainrule.models import Sequential

    config.set_image_data_format("channels_last")
    model = Sequential([
        L.Input(shape=(8, 8, 1)),
        L.Conv2D(4, 3, padding="same", activation="relu"),
        L.MaxPooling2D(),
        L.Conv2D(4, 3, activation="relu"),
        L.GlobalAveragePooling2D(),
        L.Dense(2, activation="softmax"),
    ])
    assert model.output_shape == (None, 2)
    x = rng.standard_normal((16, 8, 8, 1)).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0).astype(np.int64)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    losses = model.fit(x, y, epochs=5, batch_size=16, verbose=0).history["loss"]
    assert losses[-1] < losses[0]


# -- channels-last-looking input under the default ------------------------------------------------

IMAGE_LAYERS = [lambda: L.Conv2D(8, 3), lambda: L.Conv2D(8, 3, padding="same"),
                lambda: L.MaxPooling2D(), lambda: L.AveragePooling2D(padding="same"),
                lambda: L.GlobalAveragePooling2D(), lambda: L.GlobalMaxPooling2D()]


@pytest.mark.parametrize("shape", [(2, 28, 28, 1), (2, 32, 32, 3), (2, 64, 48, 4)])
@pytest.mark.parametrize("make", IMAGE_LAYERS)
def test_channels_last_looking_images_are_refused_under_the_default(make, shape):
    layer = make()
    name = type(layer).__name__
    pattern = (rf"\({name}\): input shape \(None, {shape[1]}, {shape[2]}, {shape[3]}\) looks "
               rf"channels-last \({shape[3]} channel\(s\) last\) but this layer assumes "
               r"channels_first \(C, H, W\); pass data_format='channels_last'")
    with pytest.raises(ValueError, match=pattern):
        layer(cr.zeros(*shape))
    with pytest.raises(ValueError, match="set_image_data_format"):
        make().build((None, *shape[1:]))


def test_the_issues_two_cases():
    # (N, 28, 28, 1) used to fail deep in NumPy ("negative dimensions"); (N, 32, 32, 3) with
    # "same" used to train silently with the rows as channels.
    with pytest.raises(ValueError, match=r"input shape \(None, 28, 28, 1\) looks channels-last"):
        L.Conv2D(32, 3, activation="relu")(cr.zeros(4, 28, 28, 1))
    with pytest.raises(ValueError, match=r"input shape \(None, 32, 32, 3\) looks channels-last"):
        L.Conv2D(32, 3, padding="same", input_shape=(32, 32, 3))
    from chainrule.models import Sequential

    with pytest.raises(ValueError, match="looks channels-last"):
        model = Sequential([L.Input(shape=(28, 28, 1)), L.Conv2D(4, 3), L.Flatten(), L.Dense(2)])
        model(cr.zeros(2, 28, 28, 1))


def test_a_chosen_layout_is_trusted():
    # explicit channels_first: the caller means rows as channels; no check
    assert L.Conv2D(4, 3, padding="same", data_format="channels_first")(
        cr.zeros(2, 32, 32, 3)).shape == (2, 4, 32, 3)
    config.set_image_data_format("channels_first")  # chosen globally: also trusted
    assert L.MaxPooling2D(padding="same")(cr.zeros(2, 32, 32, 3)).shape == (2, 32, 16, 2)
    config.set_image_data_format("channels_last")
    assert L.Conv2D(4, 3)(cr.zeros(2, 28, 28, 1)).shape == (2, 26, 26, 4)


@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (2, 1, 28, 28), (2, 64, 4, 4), (2, 64, 3, 3),
                                   (2, 25, 1, 40), (2, 16, 8, 8), (2, 4, 28, 1), (2, 8, 2, 1)])
def test_channels_first_shapes_are_not_refused(shape):
    assert L.Conv2D(2, 1)(cr.zeros(*shape)).shape == (2, 2, *shape[2:])
    assert L.GlobalMaxPooling2D()(cr.zeros(*shape)).shape == shape[:2]


def test_sequences_are_channels_last_until_a_layout_is_chosen():
    # chainrule's sequences are (N, T, F): Embedding -> Conv1D must read T as the length
    assert L.Conv1D(4, 3)(cr.zeros(2, 100, 1)).shape == (2, 98, 4)
    assert L.GlobalAveragePooling1D()(cr.zeros(2, 100, 5)).shape == (2, 5)
    tokens = L.Embedding(50, 8)(cr.tensor(np.zeros((2, 30), np.int64)))
    assert L.MaxPooling1D(2)(L.Conv1D(6, 5, padding="same")(tokens)).shape == (2, 15, 6)
    assert L.Conv1D(2, 1, data_format="channels_first")(cr.zeros(2, 3, 40)).shape == (2, 2, 40)
    config.set_image_data_format("channels_first")  # a chosen layout holds for 1-D layers too
    assert L.Conv1D(2, 1)(cr.zeros(2, 3, 40)).shape == (2, 2, 40)


def test_the_check_as_a_function():
    looks = L.conv.looks_channels_last
    assert looks((None, 28, 28, 1), 2) and looks((None, 224, 224, 3), 2)
    assert not looks((None, 3, 224, 224), 2) and not looks((None, 64, 4, 4), 2)
    assert not looks((None, None, None, 3), 2)  # unknown sizes: no guess
    assert not looks((None, 12, 12, 3), 2) and looks((None, 13, 13, 3), 2)  # more than 4 × 3
    assert looks((None, 50, 1), 1) and not looks((None, 50, 3), 1)


# -- BatchNormalization's axis --------------------------------------------------------------------


def test_batch_normalization_axis_follows_the_layout():
    assert L.BatchNormalization().axis == 1  # chainrule's default: NCHW channels, (N, F) features
    assert L.BatchNormalization(axis=-1).axis == -1
    config.set_image_data_format("channels_last")
    bn = L.BatchNormalization()
    assert bn.axis == -1 and bn.get_config()["axis"] == -1  # Keras's default
    bn(cr.tensor(rng.standard_normal((4, 5, 5, 3))))
    assert bn.gamma.shape == (3,)
    assert L.BatchNormalization(axis=1).axis == 1
    features = L.BatchNormalization()
    features(cr.ones(4, 6))
    assert features.gamma.shape == (6,)
