"""Fashion-MNIST: 70,000 28x28 grayscale images of clothing in 10 classes (Xiao et al., 2017).

Class ids: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt,
7 Sneaker, 8 Bag, 9 Ankle boot (:data:`CLASS_NAMES`).
"""

from __future__ import annotations

import os

from ._idx import load_mnist_style

#: Folder name under the user cache.
NAME = "fashion-mnist"

#: System-wide folders searched after the user cache (Debian package ``dataset-fashion-mnist``).
SYSTEM_DIRS = ("/usr/share/datasets/fashion-mnist",)

#: Debian package that installs the files into :data:`SYSTEM_DIRS`.
APT_PACKAGE = "dataset-fashion-mnist"

#: Official download location, as listed in the Fashion-MNIST README.
BASE_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)

#: MD5 of each official file, from the Fashion-MNIST README. (Debian's package re-compresses
#: the files, so its copies have other digests; files found locally are validated by format,
#: only downloads are checked against these.)
MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


def load_data(path: str | os.PathLike | None = None):
    """Load Fashion-MNIST as ``(x_train, y_train), (x_test, y_test)``, like Keras.

    Args:
        path: a folder holding the four IDX files (gzipped or not). Default None searches the
            user cache (``$CHAINRULE_DATA/fashion-mnist`` or
            ``~/.cache/chainrule/datasets/fashion-mnist``), then ``/usr/share/datasets/
            fashion-mnist`` (``apt-get install dataset-fashion-mnist``), then downloads the
            official files into the cache, checking their MD5.

    Returns:
        uint8 images of shape (60000, 28, 28) and (10000, 28, 28), uint8 labels of shape
        (60000,) and (10000,) with values 0..9.

    Raises:
        DatasetNotFoundError: nowhere to be found; the message says how to get the data.
        DatasetError: a file is malformed (the message names it).

    >>> (x_train, y_train), (x_test, y_test) = load_data()  # doctest: +SKIP
    >>> x_train.shape, y_train.dtype  # doctest: +SKIP
    ((60000, 28, 28), dtype('uint8'))
    """
    return load_mnist_style(
        NAME, "Fashion-MNIST", path, SYSTEM_DIRS, BASE_URLS, MD5, apt_package=APT_PACKAGE
    )
