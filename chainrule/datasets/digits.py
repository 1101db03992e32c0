"""scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes) with a stratified split."""

from __future__ import annotations

import numpy as np

from ._common import missing_extra

#: The classes' names, by label: the digits.
CLASS_NAMES = tuple(str(digit) for digit in range(10))


def load_data(test_size: float | int = 0.2, seed: int | None = 0):
    """Load the digits as ``(x_train, y_train), (x_test, y_test)``.

    The data ships inside scikit-learn (an optional extra), so nothing is downloaded.

    Args:
        test_size: fraction (float, rounded up) or number (int) of test images (default 0.2).
        seed: seed of the stratified split (default 0, so the split is the same every time;
            None draws from :func:`chainrule.random.get_generator`).

    Returns:
        uint8 images of shape (N, 8, 8) with values 0..16 (divide by 16 to get [0, 1]) and
        uint8 labels 0..9 of shape (N,); each digit appears in the test part in proportion.

    Raises:
        ImportError: scikit-learn is missing (``pip install chainrule[data]``).

    >>> (x_train, y_train), (x_test, y_test) = load_data()  # doctest: +SKIP
    >>> x_train.shape, x_test.shape  # doctest: +SKIP
    ((1437, 8, 8), (360, 8, 8))
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise missing_extra("scikit-learn", "chainrule.datasets.digits") from err
    from ..data.splits import train_val_test_split

    bunch = load_digits()
    images = bunch.images.astype(np.uint8)
    labels = bunch.target.astype(np.uint8)
    x_train, y_train, _, _, x_test, y_test = train_val_test_split(
        images, labels, val=0, test=test_size, seed=seed, stratify=labels
    )
    return (x_train, y_train), (x_test, y_test)
