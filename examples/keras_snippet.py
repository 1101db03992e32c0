"""The lectures' Keras code on chainrule: only the imports differ.

Trains a small MLP on Fashion-MNIST (or, without it, on scikit-learn's 8x8 digits) with
Sequential / compile / fit / evaluate / predict, exactly as written for Keras.

    .venv/bin/python examples/keras_snippet.py
"""

import numpy as np

# Keras:  from tensorflow.keras.models import Sequential
#         from tensorflow.keras.layers import Dense
#         from tensorflow.keras.utils import to_categorical
from chainrule.datasets import DatasetNotFoundError, digits, fashion_mnist
from chainrule.layers import Dense
from chainrule.models import Sequential


def to_categorical(labels, num_classes):
    return np.eye(num_classes, dtype="float32")[labels]


def load():
    """Fashion-MNIST if installed (apt-get install dataset-fashion-mnist), else the digits."""
    try:
        (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
        scale = 255.0
    except DatasetNotFoundError:
        (x_train, y_train), (x_test, y_test) = digits.load_data()
        scale = 16.0
    x_train = x_train.reshape(len(x_train), -1).astype("float32") / scale
    x_test = x_test.reshape(len(x_test), -1).astype("float32") / scale
    return (x_train, to_categorical(y_train, 10)), (x_test, to_categorical(y_test, 10))


(x_train, y_train), (x_test, y_test) = load()

# ---- from here on, the lecture's Keras code, unchanged ---------------------------------------
model = Sequential()
model.add(Dense(256, activation="relu", input_shape=(x_train.shape[1],)))
model.add(Dense(128, activation="relu"))
model.add(Dense(10, activation="softmax"))
model.summary()

model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x_train, y_train, epochs=5, batch_size=128, validation_split=0.1)

loss, accuracy = model.evaluate(x_test, y_test)
print(f"test loss {loss:.4f}, test accuracy {accuracy:.4f}")

probabilities = model.predict(x_test[:5])
print("predicted classes:", probabilities.argmax(axis=1), "true:", y_test[:5].argmax(axis=1))
