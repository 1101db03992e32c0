"""conv2d's three algorithms (im2col, Winograd F(2 × 2, 3 × 3), direct sums), each forced in turn
and run with each kernel set: PyTorch parity of outputs and every gradient, fused ReLU, first
layers, chunks, gradcheck, and what "auto" picks."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import functional as F
from chainrule import kernels
from chainrule.ops import conv_direct, conv_im2col, conv_winograd, nn_conv
from chainrule.ops.conv_geometry import conv_geometry
from tests.ops.test_nn_conv import torch_conv
from tests.torch_helpers import require_torch

torch = require_torch()

pytestmark = pytest.mark.usefixtures("each_kernels")

# stride-1 geometries, where every algorithm applies: (x shape, kernel shape, padding)
CASES = {
    "3x3 pad 1": ((2, 3, 7, 6), (4, 3, 3, 3), 1),
    "3x3 valid, odd output": ((2, 2, 8, 7), (3, 2, 3, 3), 0),
    "3x3 explicit ((2, 0), (1, 2))": ((2, 3, 5, 5), (2, 3, 3, 3), ((2, 0), (1, 2))),
    "3x3 padding wider than the kernel": ((1, 2, 4, 3), (3, 2, 3, 3), 3),
    "3x3 one pixel": ((2, 2, 1, 1), (3, 2, 3, 3), 1),
    "3x3 many channels": ((3, 17, 6, 6), (5, 17, 3, 3), 1),
    "5x3 same": ((2, 2, 6, 5), (3, 2, 5, 3), "same"),
}


@pytest.fixture(params=list(nn_conv.ALGORITHMS))
def algorithm(request):
    with F.conv_algorithm(request.param):
        yield request.param


def expected_algorithm(algorithm, w_shape):
    return "im2col" if algorithm == "winograd" and w_shape[2:] != (3, 3) else algorithm


def run_both(arrays, padding, dtype, relu=False, need_x=True):
    x, w, b = arrays
    ours = [cr.tensor(x, dtype=dtype, requires_grad=need_x)] + \
        [cr.tensor(a, dtype=dtype, requires_grad=True) for a in (w, b)]
    theirs = [torch.tensor(x.astype(dtype), requires_grad=need_x)] + \
        [torch.tensor(a.astype(dtype), requires_grad=True) for a in (w, b)]
    y = F.conv2d(*ours, padding=padding, relu=relu)
    algorithm = y._node.algorithm.name  # (backward frees the node's state)
    ty = torch_conv(*theirs, 1, padding, 1)
    ty = torch.relu(ty) if relu else ty
    gy = np.random.default_rng(1).standard_normal(ty.shape).astype(dtype)
    y.backward(cr.tensor(gy, dtype=dtype))
    ty.backward(torch.tensor(gy))
    return algorithm, [y] + [t.grad for t in ours], [ty] + [t.grad for t in theirs]


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("need_x", [True, False])
@pytest.mark.parametrize("case", list(CASES))
def test_parity_with_torch_float64(algorithm, case, need_x, relu, rng):
    x_shape, w_shape, padding = CASES[case]
    arrays = [rng.standard_normal(s) for s in (x_shape, w_shape, (w_shape[0],))]
    used, ours, theirs = run_both(arrays, padding, "float64", relu, need_x)
    assert used == expected_algorithm(algorithm, w_shape)
    for name, a, t in zip(("y", "gx", "gw", "gb"), ours, theirs):
        if t is None:
            assert a is None, name
            continue
        np.testing.assert_allclose(a.numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-10,
                                   err_msg=name)


@pytest.mark.parametrize("relu", [False, True])
def test_parity_float32_lenet_sized(algorithm, relu, rng):
    x = rng.standard_normal((6, 16, 14, 14)).astype(np.float32)
    w = (rng.standard_normal((8, 16, 3, 3)) * 0.2).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    used, ours, theirs = run_both([x, w, b], 1, "float32", relu)
    assert used == algorithm
    for name, a, t in zip(("y", "gx", "gw", "gb"), ours, theirs):
        assert a.dtype == np.float32, name
        np.testing.assert_allclose(a.numpy(), t.detach().numpy(), rtol=1e-4, atol=1e-4,
                                   err_msg=name)


@pytest.mark.parametrize("case", ["3x3 pad 1", "3x3 valid, odd output", "5x3 same"])
def test_gradcheck(algorithm, case, rng):
    x_shape, w_shape, padding = CASES[case]
    inputs = [cr.tensor(rng.standard_normal(s), dtype="float64", requires_grad=True)
              for s in ((1, 2) + x_shape[2:], (2, 2) + w_shape[2:], (2,))]
    for relu in (False, True):
        assert cr.gradcheck(
            lambda x, w, b, relu=relu: F.conv2d(x, w, b, padding=padding, relu=relu), inputs)


@pytest.mark.parametrize("samples_per_chunk", [1, 2])
def test_winograd_chunks_give_the_same_result(samples_per_chunk, monkeypatch, rng):
    x_shape, w_shape, padding = CASES["3x3 valid, odd output"]
    x_shape = (5,) + x_shape[1:]  # 5 samples: the last chunk is smaller
    tiles = 16 * 3 * 3 * (x_shape[1] + w_shape[0]) * 8  # one sample's tile bytes (float64)
    monkeypatch.setattr(conv_winograd, "CHUNK_BYTES", samples_per_chunk * tiles)
    arrays = [rng.standard_normal(s) for s in (x_shape, w_shape, (w_shape[0],))]
    with F.conv_algorithm("winograd"):
        _, ours, theirs = run_both(arrays, padding, "float64", relu=True)
    for a, t in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-10)


def fake_caches(root, *entries):
    """A sysfs-like cache directory: one indexN folder of level, type and size per entry."""
    for k, (level, kind, size) in enumerate(entries):
        folder = root / f"index{k}"
        folder.mkdir()
        for name, value in (("level", level), ("type", kind), ("size", size)):
            (folder / name).write_text(f"{value}\n")
    return str(root)


def test_winograd_reads_the_l2_cache_size_linux_reports(tmp_path):
    root = fake_caches(tmp_path, (1, "Data", "48K"), (1, "Instruction", "64K"),
                       (2, "Unified", "2048K"), (3, "Unified", "491520K"))
    assert conv_winograd.cache_bytes(1, root) == 48 * 1024  # the data cache, not instructions
    assert conv_winograd.cache_bytes(2, root) == 2 * 2**20
    assert conv_winograd.cache_bytes(4, root) is None
    assert conv_winograd.cache_bytes(2, str(tmp_path / "missing")) is None


def test_winograd_skips_cache_entries_it_cannot_read(tmp_path):
    root = fake_caches(tmp_path, (2, "Unified", "lots"), (2, "Unified", "1M"))
    (tmp_path / "index0" / "level").write_text("two\n")
    (tmp_path / "uevent").write_text("")  # not a folder: skipped
    assert conv_winograd.cache_bytes(2, root) == 2**20
    assert conv_winograd._bytes("lots") is None and conv_winograd._bytes("4096") == 4096


@pytest.mark.parametrize("l2, chunk", [(None, 2**20), (512 * 1024, 2**20), (2**21, 2**21),
                                       (2**25, 2**22)])
def test_winograd_chunks_are_the_l2_cache_within_1_to_4_mb(l2, chunk):
    assert conv_winograd.chunk_bytes(l2) == chunk


def test_winograd_keeps_float32_within_a_few_ulps_of_im2col(rng):
    x = rng.standard_normal((4, 32, 14, 14)).astype(np.float32)
    w = (rng.standard_normal((16, 32, 3, 3)) * 0.1).astype(np.float32)
    outputs = {}
    for algorithm in ("im2col", "winograd"):
        outputs[algorithm] = F.conv2d(cr.tensor(x), cr.tensor(w), padding=1,
                                      algorithm=algorithm).numpy()
    exact = F.conv2d(cr.tensor(x, dtype="float64"), cr.tensor(w, dtype="float64"),
                     padding=1).numpy()
    scale = np.abs(exact).max()
    for algorithm, y in outputs.items():
        assert np.abs(y - exact).max() < 2e-6 * scale, algorithm


@pytest.mark.parametrize("shape,stride,dilation,expected", [
    ((8, 1, 28, 28, 32), 1, 1, "direct"),        # a first layer on grey images
    ((8, 3, 32, 32, 16), 1, 1, "direct"),        # ... and on RGB images
    ((8, 32, 14, 14, 64), 1, 1, "winograd"),
    ((8, 8, 14, 14, 16), 1, 1, "im2col"),        # too few channels for Winograd's products
    ((8, 32, 14, 14, 64), 2, 1, "im2col"),
    ((8, 32, 14, 14, 64), 1, 2, "im2col"),
])
def test_auto_picks_by_geometry_and_kernels(shape, stride, dilation, expected):
    n, c, h, w, f = shape
    geom = conv_geometry((n, c, h, w), (f, c, 3, 3), stride, 1, dilation)
    x = np.zeros((n, c, h, w), np.float32)
    compiled = kernels.active() == "numba"
    assert nn_conv.algorithm_for(geom, x).name == (expected if compiled else "im2col")


def test_forced_algorithms_fall_back_where_they_do_not_apply():
    geom = conv_geometry((2, 3, 9, 9), (4, 3, 3, 3), 2, 1, 1)
    x = np.zeros((2, 3, 9, 9))
    for algorithm in ("winograd", "direct"):
        assert nn_conv.algorithm_for(geom, x, algorithm).name == "im2col"
        with F.conv_algorithm(algorithm):
            assert nn_conv.algorithm_for(geom, x).name == "im2col"
    with pytest.raises(ValueError, match="conv_algorithm must be 'auto' or one of"):
        with F.conv_algorithm("fft"):
            pass


def test_direct_is_chosen_only_for_small_3x3_patches(monkeypatch):
    monkeypatch.setattr(kernels, "select", lambda *arrays: "compiled")  # as with Numba

    def chosen(c, k):
        geom = conv_geometry((1, c, 8, 8), (2, c, k, k), 1, 1, 1)
        return nn_conv.algorithm_for(geom, np.zeros(1)).name
    assert chosen(3, 3) == "direct"
    assert chosen(4, 3) == "im2col"  # 36 taps; too few channels for Winograd
    assert chosen(1, 5) == "im2col"  # the compiled kernel is 3 × 3 only
    assert nn_conv.DIRECT.applies(conv_geometry((1, 1, 8, 8), (2, 1, 5, 5), 1, 1, 1))


@pytest.mark.parametrize("algorithm_name", ["winograd", "direct", "im2col"])
def test_two_threads_give_the_one_thread_results(algorithm_name, monkeypatch, rng):
    """Inside kernels.own_threads the chunks (Winograd, im2col) or the filters (direct) are
    dealt out to two threads: the same numbers, up to the order of the cross-thread sums."""
    pytest.importorskip("threadpoolctl")
    monkeypatch.setattr(conv_winograd, "CHUNK_BYTES", 1)  # one sample a chunk: 5 chunks
    monkeypatch.setattr(conv_im2col, "CHUNK_BYTES", 1)
    channels = 16 if algorithm_name == "winograd" else 3
    arrays = [rng.standard_normal(s) for s in ((5, channels, 6, 7), (4, channels, 3, 3), (4,))]
    results = []
    for threads in (1, 2):
        with kernels.own_threads(threads), F.conv_algorithm(algorithm_name):
            for need_x in (True, False):
                used, ours, theirs = run_both(arrays, 1, "float64", relu=True, need_x=need_x)
                assert used == algorithm_name
                results.append([None if a is None else a.numpy() for a in ours])
                for a, t in zip(ours, theirs):
                    if t is not None:
                        np.testing.assert_allclose(a.numpy(), t.detach().numpy(), rtol=1e-10,
                                                   atol=1e-10)
    for one, two in zip(results[:2], results[2:]):
        for a, b in zip(one, two):
            if a is not None:
                np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stride, need_x", [(2, True), (2, False), (1, False)])
def test_im2col_strided_and_first_layer_gradients_on_two_threads(stride, need_x, monkeypatch,
                                                                 rng):
    """col2im (strides) and the kernel gradient from the input's columns (a first layer, or
    strides), with the chunks on two threads: the one-thread numbers."""
    pytest.importorskip("threadpoolctl")
    monkeypatch.setattr(conv_im2col, "CHUNK_BYTES", 1)
    x, w, b = (rng.standard_normal(s) for s in ((5, 3, 9, 8), (4, 3, 3, 3), (4,)))
    results = []
    for threads in (1, 2):
        ours = [cr.tensor(x, dtype="float64", requires_grad=need_x)] + [
            cr.tensor(a, dtype="float64", requires_grad=True) for a in (w, b)]
        with kernels.own_threads(threads), F.conv_algorithm("im2col"):
            y = F.conv2d(*ours, stride=stride, padding=1, relu=True)
            (y * y).sum().backward()
        results.append([y.numpy()] + [None if t.grad is None else t.grad.numpy()
                                      for t in ours])
    assert (results[0][1] is None) != need_x
    for a, c in zip(*results):
        if a is not None:
            np.testing.assert_allclose(c, a, rtol=1e-12, atol=1e-12)


def test_im2col_shares_a_batch_between_threads_and_leaves_one_sample_to_blas(monkeypatch, rng):
    """The op enters kernels.own_threads itself: a batch is cut into chunks for every thread
    (at least one each); one sample runs its products on BLAS's threads instead."""
    pytest.importorskip("threadpoolctl")
    monkeypatch.setattr(kernels.threads, "MIN_SHARED_WORK", 0)  # these sizes would not share
    seen = []
    original = conv_im2col.over_chunks

    def spy(geom, dtype, each_chunk, sum_shape=None):
        seen.append((geom.batch, len(list(geom.chunks())), kernels.workers()))
        return original(geom, dtype, each_chunk, sum_shape)

    monkeypatch.setattr(conv_im2col, "over_chunks", spy)
    w = cr.tensor(rng.standard_normal((4, 3, 5, 5)))
    cores = kernels.threads._numpy_blas() and min(lib.get_num_threads() for lib in
                                                  kernels.threads._numpy_blas())
    kernels.give_blas_back()
    for batch in (1, 6):
        seen.clear()
        F.conv2d(cr.tensor(rng.standard_normal((batch, 3, 8, 8))), w, padding=2,
                 algorithm="im2col")
        kernels.give_blas_back()
        ((samples, chunks, workers),) = seen
        assert samples == batch
        if batch == 1:
            assert (chunks, workers) == (1, 1)
        else:
            assert workers == max(1, cores or 1) and chunks >= workers
            assert chunks % workers == 0


@pytest.mark.parametrize("stride, channels, filters", [(1, 3, 4), (2, 3, 4), (1, 2, 8),
                                                      (1, 16, 16)])
@pytest.mark.parametrize("need_x", [True, False])
def test_an_empty_batch_has_empty_outputs_and_zero_gradients(algorithm, stride, channels,
                                                             filters, need_x):
    """Every path (transposed correlation, col2im, strides, a first layer) with no samples:
    the threads' running sums start from zeros."""
    x = cr.tensor(np.zeros((0, channels, 6, 5)), dtype="float64", requires_grad=need_x)
    w = cr.tensor(np.ones((filters, channels, 3, 3)), dtype="float64", requires_grad=True)
    b = cr.tensor(np.ones(filters), dtype="float64", requires_grad=True)
    y = F.conv2d(x, w, b, stride=stride, padding=1, relu=True)
    assert y.shape == (0, filters, (6 - 1) // stride + 1, (5 - 1) // stride + 1)
    y.sum().backward()
    assert not w.grad.numpy().any() and not b.grad.numpy().any()
    assert (x.grad is not None) == need_x and (not need_x or x.grad.shape == x.shape)


# -- choosing: the rule, the block and the per-call argument ---------------------------------


def used_algorithm(**kwargs):
    x = cr.tensor(np.ones((1, 3, 6, 6)), requires_grad=True)
    return F.conv2d(x, cr.tensor(np.ones((2, 3, 3, 3))), padding=1, **kwargs)._node.algorithm.name


def test_a_block_chooses_and_a_per_call_argument_wins():
    auto = used_algorithm()
    with F.conv_algorithm("winograd"):
        assert used_algorithm() == "winograd"
        assert used_algorithm(algorithm="direct") == "direct"
        assert used_algorithm(algorithm="auto") == auto
        with F.conv_algorithm("im2col"):
            assert used_algorithm() == "im2col"
        assert used_algorithm() == "winograd"  # the outer block's choice again
    assert used_algorithm() == auto


def test_a_block_holds_in_its_own_thread_only():
    import threading

    seen = []
    with F.conv_algorithm("direct"):
        worker = threading.Thread(target=lambda: seen.append(used_algorithm()))
        worker.start()
        worker.join()
        assert used_algorithm() == "direct"
    assert seen == [used_algorithm()]  # the rule's choice, as outside any block


def test_an_unknown_algorithm_is_refused_naming_the_argument():
    with pytest.raises(ValueError, match=r"conv2d: algorithm must be 'auto' or one of "
                                         r"\('im2col', 'winograd', 'direct'\), got 'fft'"):
        used_algorithm(algorithm="fft")
    with pytest.raises(ValueError, match=r"conv_algorithm must be 'auto' or one of .*'FFT'"):
        F.conv_algorithm("FFT").__enter__()


# -- threads: the algorithms that run chainrule's kernels enter own_threads themselves --------


@pytest.mark.parametrize("name,module,passes", [
    ("winograd", conv_winograd, ("_forward", "_backward")),
    ("direct", conv_direct, ("_forward", "_kernel_gradient")),
])
def test_a_bare_call_runs_winograd_and_direct_on_chainrule_threads(name, module, passes,
                                                                   monkeypatch, rng):
    libraries = kernels.threads._numpy_blas()
    if not libraries:
        pytest.skip("no BLAS library that threadpoolctl can see")
    full = [library.get_num_threads() for library in libraries]
    seen = []
    monkeypatch.setattr(kernels.threads, "MIN_SHARED_WORK", 0)  # these sizes would not share

    def spying_on(run):
        def spy(*args, **kwargs):
            seen.append(([library.get_num_threads() for library in libraries],
                         kernels.workers()))
            return run(*args, **kwargs)
        return spy

    for pass_name in passes:
        monkeypatch.setattr(module, pass_name, spying_on(getattr(module, pass_name)))
    x = cr.tensor(rng.standard_normal((2, 16 if name == "winograd" else 3, 6, 6)))
    w = cr.tensor(rng.standard_normal((4, x.shape[1], 3, 3)), requires_grad=True)
    F.conv2d(x, w, padding=1, algorithm=name).sum().backward()
    assert seen == [([1] * len(full), max(1, min(full)))] * 2  # forward, then backward
    assert kernels.workers() == 1
    # BLAS stays on one thread for the next op of the kind (hold=True), until a large product
    # or give_blas_back() gives it its threads back
    assert [library.get_num_threads() for library in libraries] == [1] * len(full)
    kernels.give_blas_back()
    assert [library.get_num_threads() for library in libraries] == full


def test_the_conv_modules_import_one_way():
    """nn_conv → the algorithms → conv_geometry (conv_direct → conv_im2col): no circle."""
    import ast
    import pathlib

    import chainrule.ops

    def conv_imports(name):
        path = pathlib.Path(chainrule.ops.__file__).parent / f"{name}.py"
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("chainrule.ops"):
                modules = [node.module.rsplit(".", 1)[-1]] if node.module != "chainrule.ops" \
                    else [alias.name for alias in node.names]
                found |= {m for m in modules if m.startswith(("conv_", "nn_conv", "nn_pool"))}
        return found

    assert conv_imports("conv_geometry") == set()
    assert conv_imports("conv_im2col") == {"conv_geometry"}
    assert conv_imports("conv_winograd") == {"conv_geometry"}
    assert conv_imports("conv_direct") == {"conv_geometry", "conv_im2col"}
    assert conv_imports("nn_pool") == {"conv_geometry"}
    assert conv_imports("nn_conv") == {"conv_geometry", "conv_im2col", "conv_winograd",
                                       "conv_direct"}
