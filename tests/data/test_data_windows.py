"""sliding_windows for forecasting."""

import numpy as np
import pytest

from chainrule.data import ArrayDataset, DataLoader, sliding_windows


def _reference(series, input_len, horizon, stride):
    starts = range(0, len(series) - input_len - horizon + 1, stride)
    xs = [series[s : s + input_len] for s in starts]
    ys = [series[s + input_len : s + input_len + horizon] for s in starts]
    return np.array(xs), np.array(ys)


@pytest.mark.parametrize("shape", [(20,), (20, 3), (15, 2, 2)])
@pytest.mark.parametrize(("input_len", "horizon", "stride"), [(4, 1, 1), (5, 3, 2), (1, 1, 7)])
def test_windows_match_a_loop(shape, input_len, horizon, stride):
    series = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    X, y = sliding_windows(series, input_len, horizon, stride)
    want_x, want_y = _reference(series, input_len, horizon, stride)
    assert X.shape == (len(want_x), input_len, *shape[1:])
    assert y.shape == (len(want_y), horizon, *shape[1:])
    np.testing.assert_array_equal(X, want_x)
    np.testing.assert_array_equal(y, want_y)
    assert X.dtype == np.float32


def test_windows_are_read_only_views():
    series = np.arange(1000.0)
    X, y = sliding_windows(series, 100, 10)
    assert np.shares_memory(X, series) and np.shares_memory(y, series)
    assert not X.flags.writeable
    (xb, yb), *_ = DataLoader(ArrayDataset(X, y), batch_size=8, shuffle=True, seed=0)
    assert xb.shape == (8, 100) and yb.shape == (8, 10) and xb.flags.writeable
    np.testing.assert_array_equal(yb[:, 0], xb[:, -1] + 1)


def test_window_errors():
    with pytest.raises(ValueError, match=r"shape \(5,\) is too short .* 6 steps"):
        sliding_windows(np.zeros(5), 4, 2)
    with pytest.raises(ValueError, match="horizon must be an int >= 1"):
        sliding_windows(np.zeros(5), 2, 0)
    assert sliding_windows(np.zeros(6), 4, 2)[0].shape == (1, 4)
