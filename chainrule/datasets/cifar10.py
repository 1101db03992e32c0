"""CIFAR-10: 60,000 32x32 colour images in 10 classes (Krizhevsky, 2009), "python version"."""

from __future__ import annotations

import os

from ._cifar import CifarFormat, load_cifar

FORMAT = CifarFormat(
    name="cifar10",
    title="CIFAR-10",
    archive="cifar-10-python.tar.gz",
    folder="cifar-10-batches-py",
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_files=("test_batch",),
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    md5="c58f30108f718f92721af3b95e74349a",
)

#: System-wide places searched after the user cache (no distribution packages CIFAR today).
SYSTEM_DIRS: tuple[str, ...] = ()

CLASS_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


def load_data(path: str | os.PathLike | None = None):
    """Load CIFAR-10 as ``(x_train, y_train), (x_test, y_test)``.

    Args:
        path: the official ``cifar-10-python.tar.gz``, its extracted ``cifar-10-batches-py``
            folder, or a folder containing either. Default None searches the user cache
            (``$CHAINRULE_DATA/cifar10`` or ``~/.cache/chainrule/datasets/cifar10``), then
            downloads the archive there (MD5-checked; it is read in place, not extracted).

    Returns:
        Images as uint8 NCHW arrays, (50000, 3, 32, 32) and (10000, 3, 32, 32) (chainrule's
        convolutions are channels-first; Keras would return NHWC). Labels are uint8 of shape
        (50000, 1) and (10000, 1), as Keras returns them; use ``y.ravel()`` for shape (N,).

    The batches are unpickled by a restricted unpickler that rebuilds NumPy arrays only, so a
    tampered file cannot run code.

    >>> (x_train, y_train), (x_test, y_test) = load_data("~/data")  # doctest: +SKIP
    """
    return load_cifar(FORMAT, path, SYSTEM_DIRS, "labels", 10)
