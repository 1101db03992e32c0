"""Feeding data to models: datasets, the DataLoader, splits, windows and transforms.

>>> import numpy as np
>>> from chainrule.data import ArrayDataset, DataLoader
>>> x, y = np.zeros((100, 1, 28, 28), np.uint8), np.zeros(100, np.uint8)
>>> loader = DataLoader(ArrayDataset(x, y), batch_size=32, shuffle=True, seed=0)
>>> len(loader)
4

See docs/data.md for a guide.
"""

from . import transforms
from .dataset import ArrayDataset, Dataset, Subset, collate, fetch_batch
from .loader import DataLoader
from .splits import KFold, StratifiedKFold, random_split, train_val_test_split
from .windows import sliding_windows

__all__ = [
    "ArrayDataset",
    "DataLoader",
    "Dataset",
    "KFold",
    "StratifiedKFold",
    "Subset",
    "collate",
    "fetch_batch",
    "random_split",
    "sliding_windows",
    "train_val_test_split",
    "transforms",
]
