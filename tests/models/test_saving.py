"""Saving and loading models: same predictions, same continued training, strict and atomic."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import chainrule as cr
from chainrule import io, losses
from chainrule.layers import BatchNormalization, Dense, Embedding, Flatten
from chainrule.models import Input, Model, Sequential, load_model
from chainrule.optimizers import Adam
from tests.models.helpers import blobs, mlp

SUFFIXES = [".npz", pytest.param(".safetensors", marks=pytest.mark.skipif(
    importlib.util.find_spec("safetensors") is None, reason="safetensors is not installed"))]


def bn_model():
    model = Sequential([Dense(8, input_shape=(4,)), BatchNormalization(axis=-1), Dense(3)])
    model.compile(optimizer=Adam(learning_rate=0.01),
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy", "sparse_top_k_categorical_accuracy"])
    return model


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_round_trip_gives_identical_predictions_and_settings(tmp_path, suffix):
    x, y = blobs()
    model = bn_model()
    model.fit(x, y, epochs=2, verbose=0)
    path = tmp_path / f"model{suffix}"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    for name, value in model.state_dict().items():  # moving statistics included
        np.testing.assert_array_equal(loaded.state_dict()[name], value)
    assert type(loaded.loss) is losses.SparseCategoricalCrossentropy and loaded.loss.from_logits
    assert loaded.metrics_names == ["loss", "accuracy", "sparse_top_k_categorical_accuracy"]
    assert type(loaded.optimizer) is Adam and loaded.optimizer.learning_rate == 0.01
    assert loaded.optimizer.iterations == model.optimizer.iterations
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # nothing temporary left


def test_training_continues_on_the_same_trajectory(tmp_path):
    x, y = blobs()
    model = bn_model()
    model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    model.save(tmp_path / "model.npz")
    model.save(tmp_path / "no_optimizer.npz", include_optimizer=False)
    resumed = load_model(tmp_path / "model.npz")
    fresh_optimizer = load_model(tmp_path / "no_optimizer.npz")
    for net in (model, resumed, fresh_optimizer):
        net.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(model.get_weights()[0], fresh_optimizer.get_weights()[0])


def test_weights_only_round_trip_is_strict(tmp_path):
    x, _ = blobs()
    model = mlp()
    model.save_weights(tmp_path / "w.npz")
    same = Sequential([Dense(16, activation="relu"), Dense(3)])  # unbuilt: built from the file
    same.load_weights(tmp_path / "w.npz")
    np.testing.assert_array_equal(same.predict(x), model.predict(x))
    wider = Sequential([Dense(32, activation="relu", input_shape=(4,)), Dense(3)])
    with pytest.raises(ValueError, match="shape mismatch"):
        wider.load_weights(tmp_path / "w.npz")
    deeper = Sequential([Dense(16, input_shape=(4,)), Dense(3), Dense(3)])
    with pytest.raises(ValueError, match="missing keys"):
        deeper.load_weights(tmp_path / "w.npz")
    with pytest.raises(io.FormatError, match="not a saved model"):
        load_model(tmp_path / "w.npz")


def test_load_weights_accepts_a_whole_model_file(tmp_path):
    model = mlp()
    model.save(tmp_path / "m.npz")
    copy = mlp(compile_=False)
    copy.load_weights(tmp_path / "m.npz")
    for a, b in zip(copy.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


class Classifier(Model):
    def __init__(self, hidden=8, classes=3, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units, self.classes = hidden, classes
        self.hidden = Dense(hidden, activation="tanh")
        self.out = Dense(classes)

    def forward(self, x):
        return self.out(self.hidden(x))

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden_units, "classes": self.classes}


def test_subclassed_model_with_a_config(tmp_path):
    x, y = blobs()
    model = Classifier(hidden=5)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model(x)  # built by its first call
    model.save(tmp_path / "c.npz")
    loaded = load_model(tmp_path / "c.npz", custom_objects={"Classifier": Classifier})
    assert isinstance(loaded, Classifier) and loaded.hidden.kernel.shape == (4, 5)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_integer_inputs_are_rebuilt_with_their_dtype(tmp_path):
    tokens = np.random.default_rng(0).integers(0, 10, (6, 5))
    model = Sequential([Input(shape=(5,), dtype="int64"), Embedding(10, 3), Flatten(), Dense(2)])
    model.save(tmp_path / "e.npz")
    np.testing.assert_array_equal(load_model(tmp_path / "e.npz").predict(tokens),
                                  model.predict(tokens))


def test_saving_rules(tmp_path):
    with pytest.raises(ValueError, match="not built yet"):
        Sequential([Dense(2)]).save(tmp_path / "m.npz")
    model = mlp()
    model.save(tmp_path / "m.npz")
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "m.npz", overwrite=False)
    with pytest.raises(FileExistsError):
        model.save_weights(tmp_path / "m.npz", overwrite=False)
    with pytest.raises(ValueError, match=r"\.npz or \.safetensors"):
        model.save(tmp_path / "m.txt")
    model.save(tmp_path / "deep" / "er" / "m.npz")  # folders are created
    assert (tmp_path / "deep" / "er" / "m.npz").exists()


def test_a_plain_function_loss_cannot_be_saved_but_the_model_can(tmp_path):
    model = mlp(compile_=False)
    model.compile(optimizer="adam", loss=lambda t, p: ((p - t) ** 2).mean())
    with pytest.warns(UserWarning, match="plain function"):
        model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.compiled and loaded.loss is None
    np.testing.assert_array_equal(loaded.predict(np.ones((1, 4))), model.predict(np.ones((1, 4))))


def test_load_without_compiling(tmp_path):
    mlp().save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz", compile=False)
    assert not loaded.compiled
    assert cr.is_grad_enabled()
