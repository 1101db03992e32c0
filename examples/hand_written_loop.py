"""The same model trained by a hand-written loop, PyTorch style: what ``fit`` does for you.

Every step: take a batch, forward, loss, backward, optimizer step; once per epoch: score the
test set in evaluation mode without recording a graph.

    .venv/bin/python examples/hand_written_loop.py
"""

import numpy as np

import chainrule as cr
from chainrule.data import ArrayDataset, DataLoader
from chainrule.datasets import DatasetNotFoundError, digits, fashion_mnist
from chainrule.layers import Dense
from chainrule.losses import SparseCategoricalCrossentropy
from chainrule.metrics import SparseCategoricalAccuracy
from chainrule.models import Sequential
from chainrule.optimizers import Adam


def load():
    """Fashion-MNIST if installed (apt-get install dataset-fashion-mnist), else the digits."""
    try:
        (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
        scale = 255.0
    except DatasetNotFoundError:
        (x_train, y_train), (x_test, y_test) = digits.load_data()
        scale = 16.0
    x_train = x_train.reshape(len(x_train), -1).astype(np.float32) / scale
    x_test = x_test.reshape(len(x_test), -1).astype(np.float32) / scale
    return (x_train, y_train.astype(np.int64)), (x_test, y_test.astype(np.int64))


def main(epochs: int = 3) -> None:
    cr.manual_seed(0)
    (x_train, y_train), (x_test, y_test) = load()
    model = Sequential([Dense(256, activation="relu"), Dense(128, activation="relu"), Dense(10)])
    loss_fn = SparseCategoricalCrossentropy(from_logits=True)
    model(x_train[:1])  # build the layers, so the optimizer can see their weights
    optimizer = Adam(model.parameters(), learning_rate=1e-3)
    loader = DataLoader(ArrayDataset(x_train, y_train), batch_size=128, shuffle=True)

    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        for x, y in loader:
            optimizer.zero_grad()
            loss = loss_fn(y, model(x))
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            count += len(y)

        model.eval()
        accuracy = SparseCategoricalAccuracy()
        with cr.no_grad():
            for start in range(0, len(x_test), 1000):
                logits = model(x_test[start:start + 1000])
                accuracy.update_state(y_test[start:start + 1000], logits)
        print(f"epoch {epoch + 1}: training loss {total / count:.4f}, "
              f"test accuracy {accuracy.result():.4f}")


if __name__ == "__main__":
    main()
