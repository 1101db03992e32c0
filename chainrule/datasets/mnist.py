"""MNIST: 70,000 28x28 grayscale images of handwritten digits 0-9 (LeCun et al., 1998)."""

from __future__ import annotations

import os

from ._idx import load_mnist_style

#: The classes' names, by label: the digits.
CLASS_NAMES = tuple(str(digit) for digit in range(10))

#: Folder name under the user cache.
NAME = "mnist"

#: System-wide folders searched after the user cache (Debian-style locations; Debian has no
#: MNIST package today, but a local administrator may put the files there).
SYSTEM_DIRS = ("/usr/share/datasets/mnist",)

#: Download locations tried in order: PyTorch's mirror of the original files (Yann LeCun's
#: page no longer serves them reliably).
BASE_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",)

#: MD5 of each original file (the digests torchvision checks too).
MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


def load_data(path: str | os.PathLike | None = None):
    """Load MNIST as ``(x_train, y_train), (x_test, y_test)``, like Keras.

    Args:
        path: a folder holding the four IDX files (gzipped or not). Default None searches the
            user cache (``$CHAINRULE_DATA/mnist`` or ``~/.cache/chainrule/datasets/mnist``),
            then ``/usr/share/datasets/mnist``, then downloads the files from
            :data:`BASE_URLS` into the cache, checking their MD5.

    Returns:
        uint8 images of shape (60000, 28, 28) and (10000, 28, 28), uint8 labels of shape
        (60000,) and (10000,) with values 0..9.

    Raises:
        DatasetNotFoundError: nowhere to be found; the message says how to get the data.
        DatasetError: a file is malformed (the message names it).

    >>> (x_train, y_train), (x_test, y_test) = load_data()  # doctest: +SKIP
    """
    return load_mnist_style(NAME, "MNIST", path, SYSTEM_DIRS, BASE_URLS, MD5)
