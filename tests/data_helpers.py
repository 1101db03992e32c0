"""Test helpers for the data sets the tests may find installed or not."""

from __future__ import annotations

from pathlib import Path

import pytest

from chainrule.datasets import _common, fashion_mnist


def have_fashion_mnist() -> bool:
    """Whether Fashion-MNIST's four files are in the loader's cache or a system folder."""
    folders = [_common.cache_dir(fashion_mnist.NAME), *map(Path, fashion_mnist.SYSTEM_DIRS)]
    return any(all((folder / name).is_file() for name in fashion_mnist.MD5)
               for folder in folders)


needs_fashion_mnist = pytest.mark.skipif(
    not have_fashion_mnist(),
    reason="Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist (make data)")
