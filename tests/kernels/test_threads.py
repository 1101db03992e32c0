"""chainrule.kernels.threads: BLAS's thread caps, chainrule's own threads and their pool."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import kernels
from chainrule.kernels import threads


def test_blas_threads_caps_and_restores():
    pytest.importorskip("threadpoolctl")
    libraries = threads._blas()  # NumPy's BLAS, and any other loaded when first asked
    if not libraries:
        pytest.skip("no BLAS library that threadpoolctl can see")

    def counts():
        return [library.get_num_threads() for library in libraries]

    before = counts()
    with kernels.blas_threads(1):
        assert counts() == [1] * len(libraries)
    assert counts() == before
    with pytest.raises(RuntimeError), kernels.blas_threads(1):  # restored on errors too
        raise RuntimeError
    assert counts() == before


def test_blas_threads_without_threadpoolctl_changes_nothing(monkeypatch):
    monkeypatch.setattr(kernels.threads, "_blas_libraries", [])
    with kernels.blas_threads(1):
        assert (np.ones((3, 3)) @ np.ones((3, 3)) == 3).all()


# -- chainrule's own threads ------------------------------------------------------------------


def test_own_threads_caps_blas_and_lends_the_kernels_threads():
    pytest.importorskip("threadpoolctl")
    libraries = threads._numpy_blas()
    if not libraries:
        pytest.skip("no BLAS library that threadpoolctl can see")
    before = [library.get_num_threads() for library in libraries]
    assert kernels.workers() == 1
    with kernels.own_threads(3):
        assert kernels.workers() == 3
        assert [library.get_num_threads() for library in libraries] == [1] * len(libraries)
        with kernels.own_threads():  # nested: keeps the count it is given
            assert kernels.workers() == 3
        assert kernels.workers() == 3
    assert kernels.workers() == 1
    assert [library.get_num_threads() for library in libraries] == before
    with kernels.own_threads():  # by default as many threads as BLAS had
        assert kernels.workers() == min(before)


def test_own_threads_without_threadpoolctl_keeps_one_thread(monkeypatch):
    monkeypatch.setattr(kernels.threads, "_blas_libraries", [])
    with kernels.own_threads(4):
        assert kernels.workers() == 1


def test_run_each_runs_every_index_and_waits_for_all_before_raising():
    import threading
    import time

    names = kernels.run_each(lambda i: (i, threading.current_thread().name), 3)
    assert [i for i, _ in names] == [0, 1, 2]
    assert names[0][1] == threading.current_thread().name  # the caller does its share
    assert all(name.startswith("chainrule-kernels") for _, name in names[1:])
    finished = []

    def work(i):
        if i == 0:
            raise KeyError("first")
        time.sleep(0.05)
        finished.append(i)

    with pytest.raises(KeyError, match="first"):
        kernels.run_each(work, 3)
    assert sorted(finished) == [1, 2]  # nothing still running after the raise


def test_run_each_nested_in_a_worker_runs_in_that_worker():
    inner = kernels.run_each(lambda i: kernels.run_each(lambda j: (i, j), 2), 2)
    assert inner == [[(0, 0), (0, 1)], [(1, 0), (1, 1)]]


def test_run_each_starts_a_new_pool_in_a_forked_child(monkeypatch):
    kernels.run_each(lambda i: i, 2)
    pool = threads._pool
    monkeypatch.setattr(threads.os, "getpid", lambda: -1)  # as in a child after fork()
    assert kernels.run_each(lambda i: i * 10, 2) == [0, 10]
    assert threads._pool is not pool


@pytest.mark.parametrize("count,parts,expected", [
    (10, 2, [(0, 5), (5, 10)]), (5, 2, [(0, 2), (2, 5)]), (1, 2, [(0, 1)]), (0, 2, []),
    (7, 3, [(0, 2), (2, 4), (4, 7)]),
])
def test_split_cuts_near_equal_runs(count, parts, expected):
    assert kernels.split(count, parts) == expected


def test_a_nested_count_applies_inside_and_the_outer_one_returns():
    pytest.importorskip("threadpoolctl")
    if not threads._blas():
        pytest.skip("no BLAS library that threadpoolctl can see")
    with kernels.own_threads(3):
        with kernels.own_threads(2):
            assert kernels.workers() == 2
        assert kernels.workers() == 3
    assert kernels.workers() == 1


def test_the_thread_tools_are_reexported_from_kernels():
    for name in ("blas_threads", "own_threads", "workers", "run_each", "split"):
        assert getattr(kernels, name) is getattr(threads, name), name


# -- BLAS's spinning workers ----------------------------------------------------------------------

QUIET_SCRIPT = """
import os, numpy as np
from chainrule import kernels
from chainrule.kernels import threads
def tasks():
    return len(os.listdir("/proc/self/task"))
a = np.ones((600, 600), np.float32)
kernels.blas_threads  # imported
libraries = threads._numpy_blas()
assert libraries and libraries[0].internal_api == "openblas", "not OpenBLAS"
assert libraries[0].get_num_threads() == 2, "BLAS has not 2 threads"
before = tasks()
a @ a
awake = tasks()
with kernels.own_threads():
    inside = tasks()
product = a @ a
after = tasks()
print(before, awake, inside, after, float(product[0, 0]))
"""


def _blas_worker_counts(environment):
    import os
    import subprocess
    import sys

    env = dict(os.environ, OPENBLAS_NUM_THREADS="2", **environment)
    result = subprocess.run([sys.executable, "-c", QUIET_SCRIPT], capture_output=True,
                            text=True, env=env, timeout=120)
    if "not OpenBLAS" in result.stderr or "BLAS has not 2 threads" in result.stderr:
        pytest.skip("needs NumPy on OpenBLAS with 2 threads")
    assert result.returncode == 0, result.stderr
    return [float(value) for value in result.stdout.split()]


def test_own_threads_sends_openblas_workers_to_sleep_and_the_next_product_wakes_them():
    pytest.importorskip("threadpoolctl")
    if not threads._numpy_blas() or threads._numpy_blas()[0].internal_api != "openblas":
        pytest.skip("needs NumPy on OpenBLAS")
    awake, inside, after, value = _blas_worker_counts({})[1:]
    assert inside == awake - 1  # OpenBLAS's worker is gone: it no longer spins on a core
    assert after == awake  # and came back for the next 2-thread product, which is right
    assert value == 600.0
    quiet_off = _blas_worker_counts({"CHAINRULE_QUIET_BLAS": "0"})
    assert quiet_off[2] == quiet_off[1]  # the switch leaves the worker alone


def test_the_workers_are_left_alone_while_another_thread_could_be_in_blas(monkeypatch):
    import threading

    calls = []
    monkeypatch.setattr(threads, "_worker_shutdowns", [lambda: calls.append(1)])
    monkeypatch.setattr(threads, "_blas_libraries", threads._blas() or [_FakeBlas()])
    release = threading.Event()
    user_thread = threading.Thread(target=release.wait)  # not a daemon: it could run BLAS
    user_thread.start()
    try:
        with kernels.own_threads(2):
            pass
        assert calls == []
    finally:
        release.set()
        user_thread.join()
    others = [t for t in threading.enumerate()
              if t is not threading.current_thread() and not t.daemon
              and not t.name.startswith(threads._POOL_NAME)]
    if others:
        pytest.skip(f"the test runner has threads of its own: {others}")
    with kernels.own_threads(2):
        assert calls == [1]
        with kernels.own_threads():  # nested: already quiet
            pass
        assert calls == [1]
    assert calls == [1, 1]  # giving BLAS its threads back started a worker: stopped again


class _FakeBlas:
    """A BLAS controller for machines whose BLAS threadpoolctl cannot see."""

    internal_api = "openblas"

    def __init__(self, filepath: str = "/elsewhere/libopenblas.so"):
        self.count, self.filepath = 2, filepath

    def get_num_threads(self):
        return self.count

    def set_num_threads(self, count):
        self.count = count


def test_own_threads_for_little_work_changes_nothing(monkeypatch):
    calls = []
    monkeypatch.setattr(threads, "_worker_shutdowns", [lambda: calls.append(1)])
    monkeypatch.setattr(threads, "_blas_libraries", [_FakeBlas()])
    with kernels.own_threads(2, work=threads.MIN_SHARED_WORK - 1):
        assert kernels.workers() == 1
        assert threads._blas()[0].get_num_threads() == 2  # BLAS keeps its threads
    with kernels.own_threads(2, work=threads.MIN_SHARED_WORK):
        assert kernels.workers() == 2
        assert threads._blas()[0].get_num_threads() == 1
    assert threads._blas()[0].get_num_threads() == 2


# -- ops that hold the cores ----------------------------------------------------------------------


def test_a_held_block_keeps_blas_on_one_thread_until_a_large_product(monkeypatch):
    monkeypatch.setattr(threads, "_worker_shutdowns", [])
    monkeypatch.setattr(threads, "_blas_libraries", [_FakeBlas()])
    monkeypatch.setattr(threads, "_held", [])
    blas = threads._blas()[0]
    with kernels.own_threads(hold=True):
        assert (blas.get_num_threads(), kernels.workers()) == (1, 2)
        kernels.blas_for(10**9)  # inside: the kernels keep the cores
        assert blas.get_num_threads() == 1
    assert (blas.get_num_threads(), kernels.workers()) == (1, 1)  # held for the next op
    with kernels.own_threads(hold=True):  # the next one finds the cores taken
        assert kernels.workers() == 2  # as many as BLAS had, not its held count of 1
    with kernels.own_threads():  # nor does a plain block give back what it did not take
        pass
    assert blas.get_num_threads() == 1
    kernels.blas_for(threads.THREADED_PRODUCT - 1)  # a product BLAS runs on one thread anyway
    assert blas.get_num_threads() == 1
    kernels.blas_for(threads.THREADED_PRODUCT)
    assert blas.get_num_threads() == 2
    kernels.blas_for(10**9)  # nothing held: nothing to do
    kernels.give_blas_back()
    assert blas.get_num_threads() == 2


def test_a_plain_block_gives_back_what_it_took(monkeypatch):
    monkeypatch.setattr(threads, "_worker_shutdowns", [])
    monkeypatch.setattr(threads, "_blas_libraries", [_FakeBlas()])
    monkeypatch.setattr(threads, "_held", [])
    with pytest.raises(RuntimeError), kernels.own_threads():
        assert threads._blas()[0].get_num_threads() == 1
        raise RuntimeError
    assert threads._blas()[0].get_num_threads() == 2


@pytest.mark.parametrize("units, gets_blas_back", [(1024, True), (256, False)])
def test_a_dense_layer_after_a_convolution(units, gets_blas_back, rng):
    """A Dense product of 2²⁸ multiply-adds or more gets BLAS's threads back; a smaller one
    leaves the cores held and shares chainrule's threads (kernels.product)."""
    pytest.importorskip("threadpoolctl")
    libraries = threads._numpy_blas()
    if not libraries or min(lib.get_num_threads() for lib in libraries) < 2:
        pytest.skip("needs a BLAS with 2 threads or more")
    import chainrule as cr
    from chainrule import functional as F

    full = [library.get_num_threads() for library in threads._numpy_blas()]
    x = cr.tensor(rng.standard_normal((64, 32, 14, 14)).astype(np.float32))
    w = cr.tensor(rng.standard_normal((64, 32, 3, 3)).astype(np.float32))
    features = F.conv2d(x, w, padding=1, algorithm="winograd").reshape(64, -1)
    held = [library.get_num_threads() for library in threads._numpy_blas()]
    kernel = rng.standard_normal((64 * 14 * 14, units)).astype(np.float32)
    assert (64 * kernel.size >= threads.THREADED_PRODUCT) == gets_blas_back
    y = F.linear(features, cr.tensor(kernel))
    assert held == [1] * len(full)  # the convolution held the cores for the next kernel op
    after = [library.get_num_threads() for library in threads._numpy_blas()]
    assert after == (full if gets_blas_back else held)
    np.testing.assert_allclose(y.numpy(), features.numpy() @ kernel, rtol=1e-4, atol=1e-3)
    kernels.give_blas_back()


@pytest.mark.parametrize("shape", [(96, 40, 64), (64, 40, 96), (24, 8, 20)])
def test_a_product_while_the_cores_are_held_shares_chainrules_threads(shape, monkeypatch, rng):
    """Rows (or columns, where there are more) dealt out to the pool, one block a thread: the
    numbers of a @ b. Outside a held block, or inside a kernel, it is a @ b as it is."""
    monkeypatch.setattr(threads, "_worker_shutdowns", [])
    monkeypatch.setattr(threads, "_blas_libraries", [_FakeBlas()])
    monkeypatch.setattr(threads, "_held", [])
    monkeypatch.setattr(threads, "MIN_SHARED_WORK", 0)
    runs = []
    run_each = threads.run_each
    monkeypatch.setattr(threads, "run_each", lambda work, count: runs.append(count)
                        or run_each(work, count))
    m, k, n = shape
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    np.testing.assert_array_equal(kernels.product(a, b), a @ b)  # nothing held
    assert runs == []
    with kernels.own_threads(hold=True):
        np.testing.assert_array_equal(kernels.product(a, b), a @ b)  # inside a kernel
    assert runs == []
    np.testing.assert_allclose(kernels.product(a, b), a @ b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(kernels.product(a.T.copy().T, b[:, ::-1]), a @ b[:, ::-1],
                               rtol=1e-12, atol=1e-12)  # strided operands
    small = max(m, n) < 2 * threads.PRODUCT_MIN_ROWS  # too few rows to share: a @ b
    assert runs == ([] if small else [2, 2])
    assert threads._blas()[0].get_num_threads() == 1  # still held
    kernels.give_blas_back()


def test_a_blas_cap_takes_over_from_held_cores_and_leaves_none_behind(monkeypatch):
    monkeypatch.setattr(threads, "_worker_shutdowns", [])
    blas = _FakeBlas()
    blas.count = 4
    monkeypatch.setattr(threads, "_blas_libraries", [blas])
    monkeypatch.setattr(threads, "_held", [])
    with kernels.own_threads(hold=True):
        pass
    assert blas.get_num_threads() == 1  # held at 1 by a kernel op
    with kernels.blas_threads(2):  # e.g. an experiment's worker sharing the machine
        assert blas.get_num_threads() == 2
        with kernels.own_threads(hold=True):
            assert kernels.workers() == 2
        assert blas.get_num_threads() == 1
    assert blas.get_num_threads() == 4  # BLAS's own count, nothing held any more
    kernels.blas_for(10**9)
    assert blas.get_num_threads() == 4


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"kernels.product: a and b must be 2-D, got shapes "
                                         r"\(3,\) and \(3, 2\)"):
        kernels.product(np.ones(3), np.ones((3, 2)))
    with pytest.raises(TypeError, match="own_threads: hold must be .* got 'yes'"):
        with kernels.own_threads(hold="yes"):
            pass
    with pytest.raises(TypeError, match="own_threads: hold must be .* got -1"):
        with kernels.own_threads(hold=-1):
            pass


def test_blocks_and_chunks_dealt_out_and_summed(monkeypatch):
    """run_blocks gives every item to one block (one empty block for none); deal_out gives
    every chunk to one state (one state for none); summed adds the threads' terms."""
    monkeypatch.setattr(threads, "_worker_shutdowns", [])
    monkeypatch.setattr(threads, "_blas_libraries", [_FakeBlas()])
    monkeypatch.setattr(threads, "_held", [])
    with kernels.own_threads(2):
        assert kernels.run_blocks(5, lambda a, b: (a, b)) == [(0, 2), (2, 5)]
        assert kernels.run_blocks(0, lambda a, b: (a, b)) == [(0, 0)]
        states = kernels.deal_out([(0, 1), (1, 2), (2, 3)], list,
                                  lambda state, a, b: state.append((a, b)))
        assert sorted(sum(states, [])) == [(0, 1), (1, 2), (2, 3)] and len(states) == 2
        assert kernels.deal_out([], list, lambda *_: None) == [[]]
    assert kernels.summed([np.ones(2), np.ones(2), np.ones(2)]).tolist() == [3, 3]


def _in_numpys_wheel(name: str) -> str:
    """A path in the folder of libraries that NumPy's Linux wheel ships."""
    import os

    package = os.path.dirname(os.path.realpath(np.__file__))
    return os.path.join(os.path.dirname(package), "numpy.libs", name)


def test_only_numpys_own_blas_is_switched_when_the_kernels_take_the_cores(monkeypatch):
    """Another BLAS in the process (SciPy's, which Numba loads) keeps its threads: set back
    to 2 at every give-back it started a worker that spun beside NumPy's products."""
    numpys, scipys = _FakeBlas(_in_numpys_wheel("libscipy_openblas64_.so")), _FakeBlas()
    monkeypatch.setattr(threads, "_worker_shutdowns", [])
    monkeypatch.setattr(threads, "_blas_libraries", [numpys, scipys])
    assert threads._numpy_blas() == [numpys]
    with kernels.own_threads(2):
        assert (numpys.count, scipys.count) == (1, 2)
    assert (numpys.count, scipys.count) == (2, 2)
    with kernels.blas_threads(1):  # a cap, though, caps every BLAS
        assert (numpys.count, scipys.count) == (1, 1)
    assert (numpys.count, scipys.count) == (2, 2)


def test_every_blas_is_switched_where_numpy_bundles_none(monkeypatch):
    libraries = [_FakeBlas("/usr/lib/libopenblas.so"), _FakeBlas("/opt/mkl/libmkl_rt.so")]
    monkeypatch.setattr(threads, "_blas_libraries", libraries)
    assert threads._numpy_blas() == libraries  # a NumPy built against the system's BLAS


def test_numpys_wheel_blas_is_the_one_threadpoolctl_finds_beside_numpy():
    pytest.importorskip("threadpoolctl")
    ours = threads._bundled_with_numpy(threads._blas())
    if not ours:
        pytest.skip("NumPy does not come from a wheel that bundles its BLAS")
    assert threads._numpy_blas() == ours and len(ours) == 1
