"""``import chainrule as keras``: Keras 3 code runs with only the import changed."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule as keras
from chainrule import layers


@pytest.fixture
def channels_last():
    keras.config.set_image_data_format("channels_last")
    try:
        yield
    finally:
        keras.config.set_image_data_format("channels_first")


@pytest.fixture
def tiny_mnist(monkeypatch):
    rng = np.random.default_rng(0)

    def load_data():
        return ((rng.integers(0, 256, (100, 28, 28), dtype=np.uint8),
                 (np.arange(100) % 10).astype(np.uint8)),  # every class in the 10 % tail
                (rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
                 rng.integers(0, 10, 10).astype(np.uint8)))

    monkeypatch.setattr(keras.datasets.mnist, "load_data", load_data)


def test_top_level_names():
    assert keras.Sequential is keras.models.Sequential
    assert keras.Model is keras.models.Model and keras.Input is keras.models.Input
    assert keras.layers.Dense and keras.layers.Input is keras.Input
    assert keras.optimizers.Adam and keras.losses.CategoricalCrossentropy
    assert keras.callbacks.EarlyStopping and keras.metrics.Accuracy
    assert keras.utils.to_categorical and keras.config.image_data_format
    assert keras.Layer is keras.layers.Layer and keras.KerasTensor
    for name in ("mnist", "fashion_mnist", "cifar10"):
        assert callable(getattr(keras.datasets, name).load_data)
    assert keras.exp and keras.tensor  # the engine's names are unchanged
    with pytest.raises(AttributeError):
        keras.no_such_name  # noqa: B018


def test_keras_mnist_convnet_runs_unchanged(tiny_mnist, channels_last):
    # keras.io/examples/vision/mnist_convnet, with 1 epoch and the tiny data above
    num_classes = 10
    input_shape = (28, 28, 1)
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    x_train = x_train.astype("float32") / 255
    x_test = x_test.astype("float32") / 255
    x_train = np.expand_dims(x_train, -1)
    x_test = np.expand_dims(x_test, -1)
    y_train = keras.utils.to_categorical(y_train, num_classes)
    y_test = keras.utils.to_categorical(y_test, num_classes)
    model = keras.Sequential([
        keras.Input(shape=input_shape),
        layers.Conv2D(8, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ])
    lines = []
    model.summary(print_fn=lines.append)
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=16, epochs=1, validation_split=0.1, verbose=0)
    score = model.evaluate(x_test, y_test, verbose=0)
    assert len(score) == 2 and 0.0 <= score[1] <= 1.0
    assert "(None, 26, 26, 8)" in lines[0]


def test_keras_timeseries_classification_functional_example(tmp_path, channels_last):
    # keras.io/examples/timeseries/timeseries_classification_from_scratch, on small made-up
    # series whose class shifts their level (learnable in a few epochs)
    keras.utils.set_random_seed(0)
    y_train = np.random.randint(0, 2, 160)
    x_train = (np.random.randn(160, 50, 1) + 1.5 * y_train[:, None, None]).astype("float32")

    def make_model(input_shape, num_classes):
        input_layer = keras.layers.Input(input_shape)
        conv1 = keras.layers.Conv1D(filters=8, kernel_size=3, padding="same")(input_layer)
        conv1 = keras.layers.BatchNormalization()(conv1)
        conv1 = keras.layers.ReLU()(conv1)
        conv2 = keras.layers.Conv1D(filters=8, kernel_size=3, padding="same")(conv1)
        conv2 = keras.layers.BatchNormalization()(conv2)
        conv2 = keras.layers.ReLU()(conv2)
        gap = keras.layers.GlobalAveragePooling1D()(conv2)
        output_layer = keras.layers.Dense(num_classes, activation="softmax")(gap)
        return keras.models.Model(inputs=input_layer, outputs=output_layer)

    model = make_model(input_shape=x_train.shape[1:], num_classes=2)
    best = str(tmp_path / "best_model.keras")
    callbacks = [
        keras.callbacks.ModelCheckpoint(best, save_best_only=True, monitor="val_loss"),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=20,
                                          min_lr=0.0001),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=50, verbose=1),
    ]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["sparse_categorical_accuracy"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # best_model.keras holds chainrule's npz: it says so
        history = model.fit(x_train, y_train, batch_size=8, epochs=8, callbacks=callbacks,
                            validation_split=0.25, verbose=0)
    assert "val_sparse_categorical_accuracy" in history.history
    model = keras.models.load_model(best)
    test_loss, test_acc = model.evaluate(x_train, y_train, verbose=0)
    assert np.isfinite(test_loss) and test_acc > 0.8  # it learned the level


KERAS_DEFAULTS = {
    "SGD": {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
    "Adam": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "AdamW": {"learning_rate": 0.001, "weight_decay": 0.004, "epsilon": 1e-7},
    "RMSprop": {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7,
                "centered": False},
    "Adagrad": {"learning_rate": 0.001, "initial_accumulator_value": 0.1, "epsilon": 1e-7},
    "Adadelta": {"learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-7},
}


@pytest.mark.parametrize("name", KERAS_DEFAULTS)
def test_optimizers_have_keras_defaults(name):
    config = getattr(keras.optimizers, name)().get_config()
    for key, value in KERAS_DEFAULTS[name].items():
        assert config[key] == value, (name, key)
    by_name = keras.optimizers.get(name.lower()).get_config()
    assert by_name["learning_rate"] == KERAS_DEFAULTS[name]["learning_rate"]


def test_compile_by_name_gets_keras_rmsprop():
    model = keras.Sequential([keras.Input(shape=(3,)), layers.Dense(1)])
    model.compile(optimizer="rmsprop", loss="mse")
    config = model.optimizer.get_config()
    assert (config["learning_rate"], config["rho"]) == (0.001, 0.9)


def test_keras_character_lstm_example_runs_and_learns():
    # keras.io/examples/generative/lstm_character_level_text_generation, on a small text
    keras.utils.set_random_seed(0)
    text = ("def add(a, b):\n    return a + b\n\n" * 30).lower()
    chars = sorted(list(set(text)))
    char_indices = dict((c, i) for i, c in enumerate(chars))
    indices_char = dict((i, c) for i, c in enumerate(chars))
    maxlen = 20
    step = 3
    sentences = []
    next_chars = []
    for i in range(0, len(text) - maxlen, step):
        sentences.append(text[i: i + maxlen])
        next_chars.append(text[i + maxlen])
    x = np.zeros((len(sentences), maxlen, len(chars)), dtype="bool")
    y = np.zeros((len(sentences), len(chars)), dtype="bool")
    for i, sentence in enumerate(sentences):
        for t, char in enumerate(sentence):
            x[i, t, char_indices[char]] = 1
        y[i, char_indices[next_chars[i]]] = 1
    model = keras.Sequential([keras.Input(shape=(maxlen, len(chars))), layers.LSTM(64),
                              layers.Dense(len(chars), activation="softmax")])
    optimizer = keras.optimizers.RMSprop(learning_rate=0.01)
    model.compile(loss="categorical_crossentropy", optimizer=optimizer)

    def sample(preds, temperature=1.0):
        preds = np.asarray(preds).astype("float64")
        preds = np.log(preds) / temperature
        exp_preds = np.exp(preds)
        preds = exp_preds / np.sum(exp_preds)
        probas = np.random.multinomial(1, preds, 1)
        return np.argmax(probas)

    losses = [model.fit(x, y, batch_size=32, epochs=1, verbose=0).history["loss"][-1]
              for _ in range(4)]
    sentence, generated = text[:maxlen], ""
    for _ in range(40):
        x_pred = np.zeros((1, maxlen, len(chars)))
        for t, char in enumerate(sentence):
            x_pred[0, t, char_indices[char]] = 1.0
        preds = model.predict(x_pred, verbose=0)[0]
        next_char = indices_char[sample(preds, 0.2)]
        sentence = sentence[1:] + next_char
        generated += next_char
    assert losses[-1] < 0.5 * losses[0]  # it learned the snippet
    assert set(generated) <= set(chars) and len(generated) == 40


def test_keras_convnet_learns_fashion_mnist(channels_last):
    # the MNIST convnet again, on a cut of the real Fashion-MNIST: it must learn
    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    except (OSError, ValueError):
        pytest.skip("Fashion-MNIST is not installed (make data)")
    keras.utils.set_random_seed(0)
    x_train = np.expand_dims(x_train[:3000].astype("float32") / 255, -1)
    x_test = np.expand_dims(x_test[:500].astype("float32") / 255, -1)
    y_train = keras.utils.to_categorical(y_train[:3000], 10)
    y_test = keras.utils.to_categorical(y_test[:500], 10)
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(8, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=2, validation_split=0.1, verbose=0)
    assert model.evaluate(x_test, y_test, verbose=0)[1] > 0.65
