"""Ready-made data sets with a Keras-style ``load_data()``.

=================  ==========================================  ============================
module             returns                                     source
=================  ==========================================  ============================
``fashion_mnist``  uint8 (60000, 28, 28) / (10000, 28, 28)     path, cache, Debian, download
``mnist``          uint8 (60000, 28, 28) / (10000, 28, 28)     path, cache, download
``cifar10``        uint8 (N, 3, 32, 32), labels (N, 1)         path, cache, download
``cifar100``       uint8 (N, 3, 32, 32), labels (N, 1)         path, cache, download
``mnist1d``        float32 (4000, 40) / (1000, 40)             ``mnist1d`` package
``digits``         uint8 (N, 8, 8), values 0..16               scikit-learn
``text``           a character :class:`~.text.Corpus`          stdlib sources or your files
=================  ==========================================  ============================

Malformed files raise :class:`DatasetError` (a ``ValueError``) naming the file; data that can
be found nowhere raises :class:`DatasetNotFoundError` saying how to get it. See docs/data.md.
"""

from . import cifar10, cifar100, digits, fashion_mnist, mnist, mnist1d, text
from ._cifar import UnsafePickleError
from ._common import DatasetError, DatasetNotFoundError
from ._download import ChecksumError

__all__ = [
    "ChecksumError",
    "DatasetError",
    "DatasetNotFoundError",
    "UnsafePickleError",
    "cifar10",
    "cifar100",
    "digits",
    "fashion_mnist",
    "mnist",
    "mnist1d",
    "text",
]
