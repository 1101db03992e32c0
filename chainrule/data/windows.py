"""Sliding windows over a time series, for forecasting."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def sliding_windows(series, input_len: int, horizon: int = 1, stride: int = 1):
    """Cut a series into (past, future) training pairs.

    Window ``i`` starts at time ``i * stride``: its input is the ``input_len`` steps from there
    and its target the ``horizon`` steps right after.

    Args:
        series: array of shape (T,) or (T, *features); time is the first axis.
        input_len: steps the model sees (>= 1).
        horizon: steps it predicts (>= 1, default 1).
        stride: steps between window starts (default 1).

    Returns:
        ``(X, y)`` with X of shape (n, input_len, *features) and y of shape
        (n, horizon, *features), where n = (T - input_len - horizon) // stride + 1.
        Both are read-only strided *views* of ``series`` (no memory is copied, so even
        long series with long windows are cheap); gather batches from them with fancy
        indexing (DataLoader does), or call ``np.array(X)`` for a writable copy.

    >>> X, y = sliding_windows(np.arange(6), input_len=3, horizon=2)
    >>> X.tolist(), y.tolist()
    ([[0, 1, 2], [1, 2, 3]], [[3, 4], [4, 5]])
    """
    series = np.asarray(series)
    for name, value in (("input_len", input_len), ("horizon", horizon), ("stride", stride)):
        if not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    window = input_len + horizon
    if series.ndim == 0 or len(series) < window:
        raise ValueError(
            f"series of shape {series.shape} is too short for windows of "
            f"input_len + horizon = {window} steps"
        )
    # sliding_window_view puts the window axis last: (n, *features, window) -> (n, window, *f).
    windows = np.moveaxis(sliding_window_view(series, window, axis=0), -1, 1)[::stride]
    return windows[:, :input_len], windows[:, input_len:]
