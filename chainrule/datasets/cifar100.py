"""CIFAR-100: 60,000 32x32 colour images in 100 fine / 20 coarse classes, "python version"."""

from __future__ import annotations

import os

from ._cifar import CifarFormat, load_cifar

FORMAT = CifarFormat(
    name="cifar100",
    title="CIFAR-100",
    archive="cifar-100-python.tar.gz",
    folder="cifar-100-python",
    train_files=("train",),
    test_files=("test",),
    url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    md5="eb9058c3a382ffc7106e4002c42a8d85",
)

#: System-wide places searched after the user cache (no distribution packages CIFAR today).
SYSTEM_DIRS: tuple[str, ...] = ()

#: label_mode -> (key in the batch dict, number of classes).
LABEL_MODES = {"fine": ("fine_labels", 100), "coarse": ("coarse_labels", 20)}


def load_data(path: str | os.PathLike | None = None, label_mode: str = "fine"):
    """Load CIFAR-100 as ``(x_train, y_train), (x_test, y_test)``.

    Args:
        path: the official ``cifar-100-python.tar.gz``, its extracted ``cifar-100-python``
            folder, or a folder containing either. Default None searches the user cache
            (``$CHAINRULE_DATA/cifar100`` or ``~/.cache/chainrule/datasets/cifar100``), then
            downloads the archive there (MD5-checked).
        label_mode: ``"fine"`` (100 classes, default) or ``"coarse"`` (20 superclasses).

    Returns:
        uint8 NCHW images (50000, 3, 32, 32) and (10000, 3, 32, 32); uint8 labels of shape
        (N, 1), as Keras returns them.

    >>> (x, y), _ = load_data(label_mode="coarse")  # doctest: +SKIP
    >>> int(y.max())  # doctest: +SKIP
    19
    """
    if label_mode not in LABEL_MODES:
        raise ValueError(f"label_mode must be 'fine' or 'coarse', got {label_mode!r}")
    key, num_classes = LABEL_MODES[label_mode]
    return load_cifar(FORMAT, path, SYSTEM_DIRS, key, num_classes)
