"""What ``fit``, ``evaluate`` and ``predict`` share: turning their inputs into batches, the
Keras validation split (with its class-mix check), and the smoothed training loss.

Everything here runs once per call (or once per epoch); the per-batch work stays in
:mod:`chainrule.models.model`.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from chainrule import backend
from chainrule.data import ArrayDataset, DataLoader
from chainrule.tensor import Tensor

#: The total-variation distance between the class frequencies of the training part and of the
#: validation tail above which ``validation_split`` warns (0 = same mix, 1 = disjoint classes).
CLASS_MIX_TOLERANCE = 0.25


# -- inputs ---------------------------------------------------------------------------------------


def as_array(value, what: str) -> np.ndarray:
    """A NumPy array from an array, a Tensor or a nested list."""
    if isinstance(value, Tensor):
        return backend.to_numpy(value.data)
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (list, tuple)) or np.isscalar(value):
        return np.asarray(value)
    raise TypeError(f"{what}: expected a NumPy array, a Tensor, a list, a Dataset or a "
                    f"DataLoader, got {type(value).__name__}")


def cast_floats(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``array`` in ``dtype`` when it is floating (no copy when it already is); integer and
    boolean arrays (labels, token ids) are left alone."""
    if array.dtype.kind == "f" and array.dtype != dtype:
        return array.astype(dtype)
    return array


def is_loader(value) -> bool:
    return isinstance(value, DataLoader)


def is_dataset(value) -> bool:
    """A Dataset: ``len`` and ``[i]``, but not an array, Tensor or list of numbers."""
    return (hasattr(value, "__len__") and hasattr(value, "__getitem__")
            and not isinstance(value, (np.ndarray, Tensor, list, tuple, str, dict)))


def is_array_loader(x) -> bool:
    """Whether ``fit`` was given arrays (checked whole before training), not a Dataset or a
    DataLoader (checked batch by batch)."""
    return not (is_loader(x) or is_dataset(x))


def make_loader(x, y, batch_size: int, shuffle: bool, seed, dtype, what: str,
                check_finite: bool = False) -> DataLoader:
    """A DataLoader over ``x`` (and ``y``): a DataLoader is used as is, a Dataset wrapped,
    arrays cast to the model's floating dtype once and wrapped in an ArrayDataset. Arrays
    must hold samples, and with ``check_finite`` no NaN or infinite value."""
    if is_loader(x):
        if y is not None:
            raise ValueError(f"{what}: y must be None when x is a DataLoader (it yields "
                             "(x, y) batches itself)")
        return _nonempty(x, what)
    if is_dataset(x):
        if y is not None:
            raise ValueError(f"{what}: y must be None when x is a Dataset")
        return _nonempty(DataLoader(x, batch_size=batch_size, shuffle=shuffle, seed=seed), what)
    if x is None:
        raise ValueError(f"{what}: no input data (x is None)")
    arrays = [cast_floats(as_array(x, what), dtype)]
    if y is not None:
        arrays.append(cast_floats(as_array(y, what), dtype))
        if len(arrays[1]) != len(arrays[0]):
            raise ValueError(f"{what}: x has {len(arrays[0])} samples but y has "
                             f"{len(arrays[1])}")
    if check_finite:
        check_finite_data(*arrays, what=what)
    loader = DataLoader(ArrayDataset(*arrays), batch_size=batch_size, shuffle=shuffle, seed=seed)
    return _nonempty(loader, what)


def _nonempty(loader: DataLoader, what: str) -> DataLoader:
    if len(loader) == 0:
        raise ValueError(f"{what}: the data holds no samples ({len(loader.dataset)} samples, "
                         f"batch_size {loader.batch_size}"
                         f"{', drop_last' if loader.drop_last else ''}): nothing to train on")
    return loader


def check_finite_data(x, y=None, what: str = "fit") -> None:
    """Refuse floating inputs or targets holding NaN or infinite values, naming the first."""
    for name, array in (("x", x), ("y", y)):
        if array is None or getattr(array, "dtype", None) is None or array.dtype.kind != "f":
            continue
        if np.isfinite(array.sum()):  # a NaN or an inf makes the sum so: one cheap pass
            continue
        finite = np.isfinite(array)  # (a finite sum that overflowed lands here too: checked)
        if finite.all():
            continue
        bad = np.argwhere(~finite)
        first = tuple(int(i) for i in bad[0])
        raise ValueError(
            f"{what}: {name} holds {len(bad)} NaN or infinite value(s), the first "
            f"{array[first]} at index {first} (sample {first[0]}); clean the data, or pass "
            f"check_finite=False to fit")


def check_fit_arguments(epochs, initial_epoch, validation_freq) -> None:
    """``fit``'s counts, refused where they are given rather than after an epoch."""
    for name, value, least in (("epochs", epochs, 0), ("initial_epoch", initial_epoch, 0),
                               ("validation_freq", validation_freq, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"fit: {name} must be an integer >= {least}, got {value!r}")


def validation_loader(validation_data, batch_size: int, dtype,
                      check_finite: bool = False) -> DataLoader:
    """A loader (in order) for ``validation_data``: ``(x_val, y_val)``, a Dataset or a
    DataLoader."""
    if is_loader(validation_data) or is_dataset(validation_data):
        return make_loader(validation_data, None, batch_size, False, None, dtype, "fit")
    if isinstance(validation_data, (tuple, list)) and len(validation_data) == 2:
        x_val, y_val = validation_data
        return make_loader(x_val, y_val, batch_size, False, None, dtype,
                           "fit: validation_data", check_finite)
    raise ValueError("fit: validation_data must be (x_val, y_val), a Dataset or a DataLoader, "
                     f"got {type(validation_data).__name__}")


def split_batch(batch, what: str):
    """``(x, y)`` of a loader's batch tuple; y is None for batches of inputs alone."""
    if len(batch) == 1:
        return batch[0], None
    if len(batch) == 2:
        return batch
    raise ValueError(f"{what}: batches must be (x,) or (x, y); got {len(batch)} arrays "
                     "(sample weights are not supported)")


def to_device_of(model, *batch):
    """The batch's arrays on ``model``'s device: one call per step, before the forward pass.

    NumPy arrays go to the GPU when the model is there (CuPy arrays come back to the host when
    it is not); lists, tuples and dicts of arrays (models of several inputs or outputs) are
    moved item by item, and None stays None. Returns the one array when given one, else a
    tuple. Free on the CPU: while CUDA has never been used no array can be on the GPU, and the
    arrays are returned as they are, without looking at the model.

    >>> import numpy as np
    >>> from chainrule.layers import Dense
    >>> x = np.ones((2, 3), np.float32)
    >>> to_device_of(Dense(1, input_shape=(3,)), x) is x
    True
    """
    if backend.mixing_devices_possible():
        device = model.device
        batch = tuple(_moved(value, device) for value in batch)
    return batch[0] if len(batch) == 1 else batch


def _moved(value, device: str):
    if value is None:
        return None
    if isinstance(value, Tensor):
        return value.to(device)
    if isinstance(value, (list, tuple)):
        return type(value)(_moved(item, device) for item in value)
    if isinstance(value, dict):
        return {key: _moved(item, device) for key, item in value.items()}
    return backend.to_device(value, device)


# -- the validation split -------------------------------------------------------------------------


def split_tail(x, y, validation_split: float, what: str = "fit"):
    """Keras's ``validation_split``: the last fraction of the samples, before any shuffling.

    Returns ``(x_train, y_train), (x_val, y_val)`` and warns when the tail's classes are mixed
    unlike the rest's (see :func:`class_mix_distance`), as when the data is sorted by class.
    """
    if not 0.0 < validation_split < 1.0:
        raise ValueError(f"{what}: validation_split must be in (0, 1), got {validation_split}")
    if is_loader(x) or is_dataset(x):
        raise ValueError(f"{what}: validation_split needs arrays; with a Dataset or a "
                         "DataLoader pass validation_data instead")
    x, y = as_array(x, what), as_array(y, what)
    split_at = int(math.floor(len(x) * (1.0 - validation_split)))
    if split_at == 0 or split_at == len(x):
        raise ValueError(f"{what}: validation_split={validation_split} leaves no samples for "
                         f"{'training' if split_at == 0 else 'validation'} ({len(x)} in all)")
    distance = class_mix_distance(y[:split_at], y[split_at:])
    if distance is not None and distance > CLASS_MIX_TOLERANCE:
        warnings.warn(
            f"{what}: validation_split takes the last {len(x) - split_at} samples, and their "
            f"class mix differs badly from the training part's (total variation distance "
            f"{distance:.2f}): the data looks sorted. Shuffle x and y together before fit, or "
            "pass validation_data (e.g. from chainrule.data.train_val_test_split).",
            UserWarning, stacklevel=3,
        )
    return (x[:split_at], y[:split_at]), (x[split_at:], y[split_at:])


def class_labels(y: np.ndarray) -> np.ndarray | None:
    """Integer class labels of classification targets, or None for anything else.

    Labels: integer or boolean arrays of shape (N,) or (N, 1), or whole-number floats with at
    most 1000 distinct values; one-hot or probability rows (N, classes) give their argmax.
    """
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.size == 0:
        return None
    if y.dtype.kind in "biu":
        return y.astype(np.int64)
    if y.dtype.kind == "f" and np.all(y == np.round(y)) and y.min() >= 0 and y.max() < 1000:
        return y.astype(np.int64)
    return None


def class_mix_distance(y_train: np.ndarray, y_val: np.ndarray) -> float | None:
    """Total-variation distance ½ Σ_c |p_c − q_c| between the class frequencies of two target
    arrays (None when the targets are not class labels)."""
    train, val = class_labels(y_train), class_labels(y_val)
    if train is None or val is None or min(train.min(), val.min()) < 0:
        return None
    classes = int(max(train.max(), val.max())) + 1
    p = np.bincount(train, minlength=classes) / len(train)
    q = np.bincount(val, minlength=classes) / len(val)
    return 0.5 * float(np.abs(p - q).sum())


# -- the smoothed loss ----------------------------------------------------------------------------


class LossEMA:
    """The training loss smoothed per step by an exponential moving average (the thesis's
    curve): m ← β·m + (1 − β)·loss, reported bias-corrected as m / (1 − βᵗ) after t steps
    (so the first value is the first loss, not 1 % of it). β = 0.99 by default.

    >>> ema = LossEMA()
    >>> ema.update(2.0); ema.value
    2.0
    """

    def __init__(self, beta: float = 0.99):
        self.beta = beta
        self.average = 0.0
        self.steps = 0

    def update(self, loss: float) -> None:
        self.average = self.beta * self.average + (1.0 - self.beta) * loss
        self.steps += 1

    @property
    def value(self) -> float:
        if self.steps == 0:
            return math.nan
        return self.average / (1.0 - self.beta ** self.steps)
