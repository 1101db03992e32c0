"""Keras's functional API: Input, layers called on symbolic tensors, Model(inputs, outputs)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule.callbacks import ModelCheckpoint
from chainrule.layers import (
    LSTM,
    Add,
    Concatenate,
    Dense,
    Dropout,
    Embedding,
    Flatten,
)
from chainrule.models import (
    Functional,
    Input,
    Model,
    Sequential,
    SymbolicTensor,
    load_model,
    saving,
)


def two_branch_model():
    """Two inputs; branch a: Flatten → shared Dense; branch b: the same Dense; joined by
    Concatenate, then Add with a projection, then the output Dense."""
    a = Input(shape=(4, 2), name="series")
    b = Input(shape=(8,), name="features")
    shared = Dense(5, activation="relu", name="shared")
    left = shared(Flatten(name="flat")(a))
    right = shared(b)
    joined = Concatenate(name="join")([left, right])
    summed = Add(name="sum")([Dense(10, name="project")(b), joined])
    outputs = Dense(1, name="out")(summed)
    return Model([a, b], outputs, name="two_branch")


def data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 4, 2)).astype(np.float32),
            rng.normal(size=(n, 8)).astype(np.float32),
            rng.normal(size=(n, 1)).astype(np.float32))


def by_hand(model, xa, xb):
    w = {name: value for name, value in model.state_dict().items()}

    def dense(x, name):
        return x @ w[f"{name}.kernel"] + w[f"{name}.bias"]

    left = np.maximum(dense(xa.reshape(len(xa), -1), "shared"), 0)
    right = np.maximum(dense(xb, "shared"), 0)
    summed = dense(xb, "project") + np.concatenate([left, right], axis=-1)
    return dense(summed, "out")


def test_input_is_a_symbolic_tensor_with_a_free_batch_axis():
    inputs = Input(shape=(40, 1))
    assert isinstance(inputs, SymbolicTensor) and isinstance(inputs, cr.KerasTensor)
    assert inputs.shape == (None, 40, 1) and inputs.ndim == 3
    assert inputs.dtype == np.float32
    x = Dense(3)(Flatten()(inputs))
    assert x.shape == (None, 3) and x.node.layer.built
    with pytest.raises(TypeError, match="holds no data"):
        np.asarray(x)


def test_model_of_inputs_and_outputs_is_functional():
    model = two_branch_model()
    assert isinstance(model, Functional) and isinstance(model, Model)
    assert [layer.name for layer in model.layers] == [
        "series", "features", "flat", "shared", "join", "project", "sum", "out"]
    assert model.output_shape == (None, 1)
    names = list(model.state_dict())
    assert names[:2] == ["shared.kernel", "shared.bias"]
    assert model.get_layer("shared").kernel.shape == (8, 5)  # one weight, shared


def test_two_inputs_shared_layer_train_and_predict_as_written_by_hand():
    cr.manual_seed(0)
    model = two_branch_model()
    xa, xb, y = data()
    model.compile(optimizer="adam", loss="mse")
    before = model.evaluate([xa, xb], y, verbose=0)
    history = model.fit([xa, xb], y, epochs=20, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.evaluate([xa, xb], y, verbose=0) < before
    predicted = model.predict([xa, xb])
    np.testing.assert_allclose(predicted, by_hand(model, xa, xb), rtol=1e-5, atol=1e-5)
    by_name = model.predict({"series": xa, "features": xb})
    np.testing.assert_array_equal(by_name, predicted)
    direct = model([cr.tensor(xa), cr.tensor(xb)])
    np.testing.assert_allclose(direct.numpy(), predicted, rtol=1e-6)


def test_fit_validates_on_several_inputs():
    model = two_branch_model()
    xa, xb, y = data()
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit([xa, xb], y, epochs=1, verbose=0, validation_data=([xa, xb], y))
    assert "val_loss" in history.history
    history = model.fit([xa, xb], y, epochs=1, verbose=0, validation_split=0.25)
    assert "val_loss" in history.history
    assert np.isfinite(model.train_on_batch([xa, xb], y))
    assert model.predict_on_batch([xa, xb]).shape == (24, 1)


@pytest.mark.parametrize("name", ["model.npz", "model.keras", "model.h5"])
def test_save_and_load_give_identical_predictions(tmp_path, name, monkeypatch):
    monkeypatch.setattr(saving, "_warned_suffixes", set())  # the warning comes once a process
    cr.manual_seed(1)
    model = two_branch_model()
    xa, xb, y = data()
    model.compile(optimizer="adam", loss="mse")
    model.fit([xa, xb], y, epochs=2, verbose=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.save(tmp_path / name)
    if name != "model.npz":
        assert any("chainrule's own format (an npz)" in str(w.message) for w in caught)
    loaded = load_model(tmp_path / name)
    assert isinstance(loaded, Functional)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    np.testing.assert_array_equal(loaded.predict([xa, xb]), model.predict([xa, xb]))
    # the optimizer state came back too: one more step gives the same weights
    model.train_on_batch([xa, xb], y)
    loaded.train_on_batch([xa, xb], y)
    for key, value in model.state_dict().items():
        np.testing.assert_allclose(loaded.state_dict()[key], value, rtol=1e-6)


def test_a_keras_file_written_by_keras_is_refused_clearly(tmp_path):
    path = tmp_path / "keras_made.keras"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    with pytest.raises(ValueError, match="written by Keras cannot be read"):
        load_model(path)


def test_checkpoint_under_a_keras_name(tmp_path):
    model = two_branch_model()
    xa, xb, y = data()
    model.compile(optimizer="adam", loss="mse")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit([xa, xb], y, epochs=2, verbose=0, validation_data=([xa, xb], y),
                  callbacks=[ModelCheckpoint(str(tmp_path / "best_model.h5"),
                                             save_best_only=True)])
        model.save_weights(tmp_path / "only.weights.h5")
    best = load_model(tmp_path / "best_model.h5")
    assert best.predict([xa, xb]).shape == (24, 1)
    fresh = two_branch_model()
    fresh.load_weights(tmp_path / "only.weights.h5")
    np.testing.assert_array_equal(fresh.predict([xa, xb]), model.predict([xa, xb]))


def test_wrong_shapes_name_the_layer_and_the_shapes():
    inputs = Input(shape=(6,))
    dense = Dense(3, name="narrow")
    dense(Input(shape=(4,)))
    with pytest.raises(ValueError, match=r"layer 'narrow' \(Dense\).*\(None, 6\)"):
        dense(inputs)
    with pytest.raises(ValueError, match=r"layer 'join' \(Concatenate\)"):
        Concatenate(axis=1, name="join")([Input(shape=(2, 3)), Input(shape=(2, 4))])
    model = Model(inputs, Dense(2)(inputs))
    with pytest.raises(ValueError, match=r"input '.*' expects shape \(None, 6\), got \(2, 5\)"):
        model.predict(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="2 input"):
        two_branch_model().predict([np.zeros((2, 4, 2))])


def test_graph_errors_are_clear():
    a, b = Input(shape=(3,)), Input(shape=(3,))
    y = Add()([a, b])
    with pytest.raises(ValueError, match="not among the model's inputs"):
        Model(a, y)
    with pytest.raises(ValueError, match="must come from Input"):
        Model(Dense(2)(a), y)
    with pytest.raises(TypeError, match="symbolic tensors"):
        Model(a, np.zeros(3))

    class Mine(Model):
        pass

    with pytest.raises(TypeError, match="takes no inputs/outputs"):
        Mine(inputs=a, outputs=y)


def test_several_outputs_predict_a_list_and_save(tmp_path):
    inputs = Input(shape=(5,))
    hidden = Dense(4, activation="tanh")(inputs)
    model = Model(inputs=inputs, outputs=[Dense(2)(hidden), Dense(1)(hidden)])
    x = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)
    first, second = model.predict(x, batch_size=3)
    assert first.shape == (7, 2) and second.shape == (7, 1)
    model.save(tmp_path / "two.npz")
    again = load_model(tmp_path / "two.npz")
    for ours, theirs in zip(model.predict(x), again.predict(x)):
        np.testing.assert_array_equal(ours, theirs)


def two_headed(seed=0):
    cr.manual_seed(seed)
    inputs = Input(shape=(5,), name="x")
    hidden = Dense(8, activation="tanh", name="hidden")(inputs)
    kind = Dense(3, name="kind")(hidden)
    size = Dense(1, name="size")(hidden)
    return Model(inputs, [kind, size])


def test_several_outputs_train_on_the_weighted_sum_of_their_losses():
    from chainrule import losses
    from chainrule.optimizers import Adam

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype(np.float32)
    kind = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    size = x[:, 2:3] * 2.0
    model = two_headed()
    model.compile(optimizer=Adam(0.02), loss={"kind": losses.SparseCategoricalCrossentropy(True),
                                          "size": "mse"}, loss_weights=[1.0, 0.5])
    history = model.fit(x, {"kind": kind, "size": size}, epochs=30, batch_size=16, verbose=0,
                        validation_data=(x, [kind, size]))
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    # the logged loss is the weighted sum, computed by hand on the same weights
    logits, predicted = model.predict(x)
    by_hand = (losses.SparseCategoricalCrossentropy(True)(cr.tensor(kind), cr.tensor(logits))
               + 0.5 * losses.MeanSquaredError()(cr.tensor(size), cr.tensor(predicted)))
    assert model.evaluate(x, [kind, size], verbose=0) == pytest.approx(by_hand.item(),
                                                                       rel=1e-5)


@pytest.mark.parametrize("options, match", [
    ({"loss": ["mse"]}, r"loss has 1 entries for model .* 2 outputs \['kind', 'size'\]"),
    ({"loss": {"kind": "mse"}}, r"missing \['size'\]"),
    ({"loss": "mse", "metrics": ["accuracy"]}, "metrics per output are not logged"),
    ({}, "needs a loss"),
])
def test_compiling_several_outputs_checks_what_it_is_given(options, match):
    with pytest.raises(ValueError, match=match):
        two_headed().compile(optimizer="adam", **options)


def test_targets_of_several_outputs_must_match_them():
    model = two_headed()
    model.compile(optimizer="adam", loss="mse")
    x = np.zeros((4, 5), np.float32)
    with pytest.raises(ValueError, match="give y as a list or a dict"):
        model.fit(x, np.zeros((4, 1)), verbose=0)
    with pytest.raises(ValueError, match="different numbers of samples"):
        model.fit(x, [np.zeros((4, 3)), np.zeros((3, 1))], verbose=0)


def test_nested_models_are_layers(tmp_path):
    encoder_in = Input(shape=(6,))
    encoder = Model(encoder_in, Dense(3, activation="relu")(encoder_in), name="encoder")
    head = Sequential([Dense(2)], name="head")
    inputs = Input(shape=(6,))
    outputs = head(encoder(inputs))
    model = Model(inputs, outputs)
    x = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    expected = head(encoder(cr.tensor(x))).numpy()
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-6)
    assert [layer.name for layer in model.layers][1:] == ["encoder", "head"]
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, np.zeros((5, 2), np.float32), epochs=1, verbose=0)
    model.save(tmp_path / "nested.npz")
    np.testing.assert_array_equal(load_model(tmp_path / "nested.npz").predict(x), model.predict(x))


def test_summary_lists_layers_and_shapes():
    lines = []
    two_branch_model().summary(print_fn=lines.append)
    text = lines[0]
    for row in ("series (InputLayer)", "(None, 4, 2)", "join (Concatenate)", "(None, 10)",
                "shared (Dense)", "45", "out (Dense)"):
        assert row in text
    assert "Total params: 146" in text


def test_integer_inputs_recurrent_layers_and_training_flags(tmp_path):
    tokens = Input(shape=(7,), dtype="int64")
    x = Embedding(20, 4)(tokens)
    x = LSTM(5)(x)
    x = Dropout(0.5)(x, training=False)
    model = Model(tokens, Dense(1, activation="sigmoid")(x))
    ids = np.random.default_rng(0).integers(0, 20, size=(6, 7))
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(ids, np.ones((6, 1), np.float32), epochs=1, verbose=0)
    model.save(tmp_path / "text.npz")
    np.testing.assert_array_equal(load_model(tmp_path / "text.npz").predict(ids),
                                  model.predict(ids))


def test_embedding_after_a_default_float_input_as_in_keras():
    tokens = Input(shape=(5,))  # Keras's default dtype; the ids arrive as integers
    model = Model(tokens, Dense(1)(Flatten()(Embedding(10, 3)(tokens))))
    ids = np.random.default_rng(0).integers(0, 10, size=(4, 5))
    assert model.predict(ids).shape == (4, 1)


def test_sequential_and_subclassed_models_are_unchanged():
    model = Sequential([Input(shape=(3,)), Dense(2)])
    assert model.built and [layer.name for layer in model.layers][0].startswith("dense")
    with pytest.raises(TypeError, match="not an Input"):
        Sequential([Dense(2)(Input(shape=(3,)))])


def test_concatenate_and_add_on_tensors():
    a, b = cr.ones(2, 3), cr.zeros(2, 4)
    assert Concatenate()([a, b]).shape == (2, 7)
    assert Concatenate(axis=0)(a, cr.ones(1, 3)).shape == (3, 3)
    assert Concatenate().compute_output_shape([(None, 3), (None, 4)]) == (None, 7)
    assert Add()([a, a]).sum().item() == 12.0
    with pytest.raises(ValueError, match="Concatenate"):
        Concatenate()([a, cr.ones(3, 3)])
    assert Concatenate.from_config(Concatenate(axis=1).get_config()).axis == 1
