"""chainrule.kernels: every kernel that can run here gives the reference's results (float32 bit
for bit), NaN handling, the fall-backs, and how the implementation is chosen."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import kernels
from chainrule.kernels import reference

DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("pool", [(2, 2), (3, 3), (2, 3), (1, 4)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_tiles_matches_a_direct_computation(each_kernels, pool, dtype, threads, rng):
    """Either kernel module, with the planes on one thread or dealt out to two."""
    kh, kw = pool
    planes = rng.standard_normal((5, 3 * kh, 4 * kw)).astype(dtype)
    planes[0, :kh, :kw] = 1.0  # a window of ties: the first (row-major) maximum wins
    module = kernels.select(planes)
    with kernels.own_threads(threads):
        best, index = module.max_pool_tiles(planes, kh, kw, True)
    windows = planes.reshape(5, 3, kh, 4, kw).transpose(0, 1, 3, 2, 4).reshape(5, 3, 4, -1)
    np.testing.assert_array_equal(best, windows.max(axis=-1))
    gy = rng.standard_normal(best.shape).astype(dtype)
    with kernels.own_threads(threads):
        gx = module.max_pool_tiles_backward(gy, index, kh, kw)
    routed = np.zeros_like(windows)
    np.put_along_axis(routed, windows.argmax(axis=-1)[..., None], gy[..., None], axis=-1)
    expected = routed.reshape(5, 3, 4, kh, kw).transpose(0, 1, 3, 2, 4).reshape(planes.shape)
    np.testing.assert_array_equal(gx, expected)
    assert gx[0, 0, 0] == gy[0, 0, 0] and not gx[0, :kh, :kw].ravel()[1:].any()


def test_max_pool_tiles_propagates_nan(each_kernels):
    planes = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    planes[0, 0, 1] = np.nan
    planes[1, 3, 3] = np.nan
    best, _ = kernels.select(planes).max_pool_tiles(planes, 2, 2, False)
    assert np.isnan(best[0, 0, 0]) and np.isnan(best[1, 1, 1])
    assert np.isnan(best).sum() == 2


def test_max_pool_tiles_without_tracking_returns_no_index(each_kernels, rng):
    planes = rng.standard_normal((2, 4, 4)).astype(np.float32)
    assert kernels.select(planes).max_pool_tiles(planes, 2, 2, False)[1] is None


def test_choosing_the_implementation():
    previous = kernels.active()
    try:
        kernels.use("numpy")
        assert kernels.active() == "numpy"
        assert kernels.select(np.zeros(3)) is reference
        kernels.use("auto")
        assert kernels.active() == kernels.available()[-1]
        with pytest.raises(ValueError, match="expected one of"):
            kernels.use("fortran")
    finally:
        kernels.use(previous)


def test_without_numba_asking_for_it_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(kernels, "_active", kernels._active)  # both restored afterwards
    monkeypatch.setattr(kernels, "_chosen", kernels._chosen)
    monkeypatch.setattr(kernels, "available", lambda: ("numpy",))
    with pytest.raises(ImportError, match=r"chainrule\[fast\]"):
        kernels.use("numba")
    kernels.use("auto")
    assert kernels.active() == "numpy"


def test_without_numba_the_default_warns_once_in_one_line_and_runs_numpy(monkeypatch):
    monkeypatch.setattr(kernels, "_active", None)
    monkeypatch.setattr(kernels, "_chosen", kernels._chosen)
    monkeypatch.delenv("CHAINRULE_KERNELS", raising=False)
    monkeypatch.setattr(kernels, "_numba_import_error",
                        lambda: ImportError("numba needs NumPy 2.3 or less"))
    with pytest.warns(kernels.KernelsNotice) as notices:
        assert kernels.active() == "numpy"
        assert kernels.active() == "numpy"  # chosen once: no second notice
    assert len(notices) == 1
    message = str(notices[0].message)
    assert "\n" not in message
    assert "ImportError: numba needs NumPy 2.3 or less" in message
    assert "CHAINRULE_KERNELS=numpy" in message


def test_asking_for_numpy_kernels_gives_no_notice(monkeypatch, recwarn):
    monkeypatch.setattr(kernels, "_active", None)
    monkeypatch.setattr(kernels, "_chosen", kernels._chosen)
    monkeypatch.setenv("CHAINRULE_KERNELS", "numpy")
    monkeypatch.setattr(kernels, "_numba_import_error", lambda: ImportError("absent"))
    assert kernels.active() == "numpy"
    assert not [w for w in recwarn if issubclass(w.category, kernels.KernelsNotice)]


def test_numba_and_threadpoolctl_are_runtime_dependencies():
    """A plain install gets the compiled kernels (issue: fast by default)."""
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    names = {dep.split(">")[0].split("=")[0] for dep in project["project"]["dependencies"]}
    assert {"numpy", "numba", "threadpoolctl"} <= names


def test_the_environment_variable_sets_the_default(monkeypatch):
    monkeypatch.setattr(kernels, "_active", None)
    monkeypatch.setattr(kernels, "_chosen", kernels._chosen)
    monkeypatch.setenv("CHAINRULE_KERNELS", "numpy")
    assert kernels.active() == "numpy"


def test_arrays_numba_cannot_take_get_the_reference(monkeypatch):
    class NotNumPy(np.ndarray):  # stands in for a CuPy array: not exactly np.ndarray
        pass

    previous = kernels.active()
    try:
        kernels.use(kernels.available()[-1])
        assert kernels.select(np.zeros(3).view(NotNumPy)) is reference
    finally:
        kernels.use(previous)


# -- Winograd tile transforms and direct convolution: compiled against the reference ------------

needs_numba = pytest.mark.skipif("numba" not in kernels.available(),
                                 reason="the compiled kernels need Numba ([fast] extra)")


def tiles(rows, count, ty, tx, dtype):
    """A staggered (16, rows, count, TY, TX) tile array, as chainrule.ops.conv_winograd makes."""
    flat = reference.tile_buffer(rows * count * ty * tx, dtype)
    return flat.reshape(16, rows, count, ty, tx)


def test_tile_buffer_staggers_its_rows_off_4_kib_multiples():
    for count, dtype in [(1, np.float32), (1024, np.float32), (1000, np.float64)]:
        rows = reference.tile_buffer(count, dtype)
        assert rows.shape == (16, count) and rows.flags.writeable
        offsets = {(rows.strides[0] * k) % 4096 for k in range(16)}
        assert len(offsets) == 16  # 16 different positions within a 4 KiB page


@needs_numba
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [(6, 6), (7, 5)])  # even and odd outputs
def test_winograd_transforms_match_the_reference_bit_for_bit(size, dtype, rng):
    from chainrule.kernels import compiled
    channels, filters, count = 3, 4, 2
    ty, tx = (-(-s // 2) for s in size)
    padded = rng.standard_normal((channels, count, 2 * ty + 2, 2 * tx + 2)).astype(dtype)
    m = tiles(filters, count, ty, tx, dtype)
    m[...] = rng.standard_normal(m.shape)
    gy = rng.standard_normal((filters, count, *size)).astype(dtype)
    bias = rng.standard_normal(filters).astype(dtype)
    results = {}
    for module in (reference, compiled):
        v, gm, gv = (tiles(rows, count, ty, tx, dtype) for rows in (channels, filters, channels))
        module.winograd_input_tiles(padded, v)
        y = {}
        for with_bias, relu in [(False, False), (True, True)]:
            y[relu] = np.full((filters, count, *size), np.nan, dtype)
            module.winograd_output_tiles(m, y[relu], bias if with_bias else None, relu)
        module.winograd_gradient_tiles(gy, gm)
        masked, bias_grad = tiles(filters, count, ty, tx, dtype), np.empty(filters, dtype)
        module.winograd_gradient_tiles(gy, masked, y[True], bias_grad)
        gv[...] = v  # any tile values will do
        gx = np.zeros_like(padded)
        module.winograd_input_gradient(gv, gx)
        results[module] = [v, y[False], y[True], gm, masked, gx, bias_grad]
    for name, expected, got in zip(("V", "y", "relu(y + b)", "∂M", "∂M masked", "∂d"),
                                   results[reference], results[compiled]):
        np.testing.assert_array_equal(got, expected, err_msg=name)
    np.testing.assert_allclose(results[compiled][-1], results[reference][-1],  # other order
                               rtol=1e-5, atol=1e-5)
    masked_gy = np.where(results[compiled][2] > 0, gy, 0)
    np.testing.assert_allclose(results[compiled][-1], masked_gy.sum(axis=(1, 2, 3)), rtol=1e-5)
    assert not np.isnan(results[compiled][1]).any()  # every output written
    assert (results[compiled][2] == 0).any() and (results[compiled][2] > 0).any()


@needs_numba
def test_winograd_kernels_refuse_tile_arrays_they_would_copy(rng):
    from chainrule.kernels import compiled
    v = np.zeros((3, 1, 2, 16, 2)).transpose(3, 0, 1, 2, 4)[..., :1, :]  # rows not contiguous
    with pytest.raises(ValueError, match="winograd kernels: tile array"):
        compiled.winograd_input_tiles(np.zeros((3, 2, 4, 4)), v)


@needs_numba
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", [(3, 3), (2, 4)])  # compiled, and the reference's fall-back
def test_direct_convolution_matches_the_reference(kernel, dtype, rng):
    from chainrule.kernels import compiled
    channels, count, filters, (kh, kw) = 2, 3, 4, kernel
    out_height, out_width = 5, 6
    padded = np.zeros((channels, count, out_height + kh, out_width + kw - 1), dtype)
    padded[:, :, :-1] = rng.standard_normal(padded[:, :, :-1].shape)  # last row: the spare
    weights = rng.standard_normal((filters, channels, kh, kw)).astype(dtype)
    bias = rng.standard_normal(filters).astype(dtype)
    gy = rng.standard_normal((filters, count, out_height, out_width)).astype(dtype)
    for relu in (False, True):
        expected, got = (np.empty((filters, count, out_height, out_width), dtype)
                         for _ in range(2))
        reference.direct_correlate(padded, weights, bias, relu, expected)
        compiled.direct_correlate(padded, weights, bias, relu, got)
        np.testing.assert_array_equal(got, expected)  # the same sums in the same order
        grads = []
        for module in (reference, compiled):
            gw, gb = np.empty_like(weights), np.empty_like(bias)
            module.direct_kernel_gradient(padded, gy, expected if relu else None, relu, gw, gb)
            grads.append((gw, gb))
        tolerance = 1e-5 if dtype == np.float32 else 1e-12  # sums in another order
        for expected_grad, got_grad in zip(*grads):
            np.testing.assert_allclose(got_grad, expected_grad, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("name", kernels.available())
@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_step_backward_may_write_over_the_gates(name, dtype, rng):
    module = reference
    if name == "numba":
        from chainrule.kernels import compiled as module
    batch, units = 3, 5
    gates = rng.uniform(0.05, 0.95, (batch, 4 * units)).astype(dtype)
    c_previous, tanh_c, dh, dc = (rng.standard_normal((batch, units)).astype(dtype)
                                  for _ in range(4))
    apart, d_c_apart = np.empty_like(gates), dc.copy()
    module.lstm_step_backward(dh, d_c_apart, gates, c_previous, tanh_c, apart)
    in_place, d_c = gates.copy(), dc.copy()
    module.lstm_step_backward(dh, d_c, in_place, c_previous, tanh_c, in_place)
    np.testing.assert_array_equal(in_place, apart)
    np.testing.assert_array_equal(d_c, d_c_apart)


@needs_numba
@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_steps_match_the_reference_bit_for_bit(dtype, rng):
    from chainrule.kernels import compiled
    from chainrule.ops.nn_recurrent import _lstm_gate_affine
    batch, units = 3, 5
    scale, shift = _lstm_gate_affine(np, units, dtype)
    z, gates = (rng.standard_normal((batch, 4 * units)).astype(dtype) for _ in range(2))
    c_previous, dh, dc = (rng.standard_normal((batch, units)).astype(dtype) for _ in range(3))
    results = []
    for module in (reference, compiled):
        step_gates, c, tanh_c, h = gates.copy(), *(np.empty_like(c_previous) for _ in range(3))
        module.lstm_step_forward(z.copy(), step_gates, scale, shift, c_previous, c, tanh_c, h)
        d_c, dz = dc.copy(), np.empty_like(gates)
        module.lstm_step_backward(dh, d_c, step_gates, c_previous, tanh_c, dz)
        results.append([step_gates, c, tanh_c, h, d_c, dz])
    for name, expected, got in zip(("gates", "c", "tanh c", "h", "∂c_{t-1}", "∂z"), *results):
        np.testing.assert_array_equal(got, expected, err_msg=name)
    i, f, g = (results[0][0][:, k * units:(k + 1) * units] for k in range(3))
    np.testing.assert_allclose(results[0][1], f * c_previous + i * g, rtol=1e-6)


# -- a dense layer's bias and ReLU ----------------------------------------------------------------


def dense_output(rows, units, dtype, rng):
    """A (rows, units) output with the values a mask or a maximum can get wrong: NaN, ±inf,
    ±0 (in ∂L/∂y too: g·0 keeps NaN and the sign of zero)."""
    y = rng.standard_normal((rows, units)).astype(dtype)
    if rows:
        y[0, :6] = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40]
    return y


@needs_numba
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", [0, 1, 7, 300])
@pytest.mark.parametrize("with_bias, relu", [(True, True), (True, False), (False, True)])
def test_bias_and_relu_matches_the_reference_bit_for_bit(rows, with_bias, relu, dtype, rng):
    from chainrule.kernels import compiled
    y = dense_output(rows, 37, dtype, rng)
    bias = rng.standard_normal(37).astype(dtype) if with_bias else None
    expected, got = y.copy(), y.copy()
    reference.bias_and_relu(expected, bias, relu)
    compiled.bias_and_relu(got, bias, relu)
    np.testing.assert_array_equal(got, expected)
    assert np.array_equal(np.signbit(got), np.signbit(expected))


@needs_numba
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", [0, 1, 7, 300])
@pytest.mark.parametrize("need_sum", [True, False])
def test_relu_gradient_and_bias_sum_match_the_reference_bit_for_bit(rows, need_sum, dtype, rng):
    from chainrule.kernels import compiled
    y = np.maximum(dense_output(rows, 37, dtype, rng), 0)
    gy = dense_output(rows, 37, dtype, rng)[::-1].copy()
    if rows:
        gy[:, 9] = -1.0  # a column whose masked values are all −0 ...
        y[:, 9] = 0.0  # ... sums to +0 in NumPy, which starts from +0
    with np.errstate(invalid="ignore"):  # inf · 0 is NaN (NumPy says so; Numba does not)
        expected, got = (module.relu_gradient_and_bias_sum(gy, y, need_sum)
                         for module in (reference, compiled))
    for e, g in zip(expected, got):
        if e is None:
            assert g is None
        else:
            np.testing.assert_array_equal(g, e)
            assert np.array_equal(np.signbit(g), np.signbit(e))


@needs_numba
def test_dense_kernels_hand_other_arrays_to_the_reference(rng):
    from chainrule.kernels import compiled
    y16 = rng.standard_normal((4, 6)).astype(np.float16)  # not a dtype the loops take
    strided = rng.standard_normal((4, 12)).astype(np.float32)[:, ::2]  # not contiguous
    for y in (y16, strided):
        expected, got = y.copy(), y.copy()
        reference.bias_and_relu(expected, np.ones(6, y.dtype), True)
        compiled.bias_and_relu(got, np.ones(6, y.dtype), True)
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(compiled.relu_gradient_and_bias_sum(y, y, True)[1],
                                      reference.relu_gradient_and_bias_sum(y, y, True)[1])
