"""Who runs on how many threads: BLAS's thread caps and chainrule's own pool, in one place.

BLAS (OpenBLAS, MKL, ...) parallelises each product on threads of its own, which spin for
~0.1 s after every product they helped with. Kernels of ours that run on several threads then
find a core taken (a measured 13.4 vs 8.8 ms). So the two never mix: outside
:func:`own_threads` BLAS has its threads and chainrule's kernels run on one; inside it BLAS
runs on one thread (its workers stopped) and the kernels that can split their work do so
on chainrule's pool (:func:`run_each`, :func:`split`, :func:`workers`).

The op that runs a kernel of its own decides: the convolutions (Winograd, direct sums, and
im2col over a batch: its copies and one-thread products per chunk), max pooling and the
fused LSTM enter :func:`own_threads` around their own work with ``hold=True`` (a large
optimizer step with ``hold=NEXT_PRODUCT``), and an op about to run a BLAS product (a Dense
layer, ``matmul``, an im2col convolution of one sample) calls :func:`blas_for`, which gives
BLAS its threads back for a large one (:data:`THREADED_PRODUCT`); a Dense layer's smaller
products then share chainrule's threads (:func:`product`). So a wide Dense layer between
convolutions runs on BLAS's threads, the convolutions on chainrule's, a hand-written training
loop runs as fast as ``Model.fit``, and no model or layer decides. ``hold=True`` leaves BLAS
on one thread after the block, for the next op of the kind: a CNN or char-LSTM step whose
Dense head is below :data:`THREADED_PRODUCT` never switches at all (it switched twice a step
before, and around each of its kernel ops before that: 1.1 ms of a 33 ms step). So after such
an op, NumPy products of your own run on one BLAS thread until chainrule's next large product
or :func:`give_blas_back`. A nested entry, already in effect, returns at once.

**BLAS's spinning workers.** Capping BLAS to one thread does not stop a worker that is already
awake: OpenBLAS's workers busy-wait for new work for 2²⁸ cycles (~0.1 s) after every product
they helped with, whatever the thread count is set to since. In a CNN step the Dense head's
2-thread products come milliseconds before the next convolution, so the worker spins on the
core the convolution's second thread needs: ``bench/cnn.py``'s step took 43 ms instead of 30 ms
(the same step with the spin switched off by ``OPENBLAS_THREAD_TIMEOUT=4`` when NumPy loads:
30 ms, with the Dense products still on two threads). So taking the cores also stops
OpenBLAS's workers (:func:`_quiet_blas_workers`: OpenBLAS's own ``blas_thread_shutdown_``,
what it runs before a ``fork``; the next product that wants threads starts them again,
0.5-2 ms on this machine: hence :data:`THREADED_PRODUCT`), and a plain :func:`own_threads`
block stops them once more when it gives BLAS its threads back, since restoring the count
starts a fresh worker, which would spin on whatever
runs next (PyTorch's threads in a benchmark ran 3-7x slower). An MLP epoch, whose products
keep their spinning workers between steps, is unchanged (0.59 s, in turn with and without).
The workers are stopped only while no other thread of the program could be inside a BLAS call
(see :func:`_quiet_blas_workers`); ``CHAINRULE_QUIET_BLAS=0`` switches it off.

On a machine whose cores other processes keep busy, BLAS's second thread can wait
milliseconds to be scheduled (a 128 × 3136 by 3136 × 128 product: 0.5 ms in a tight loop, 10-100 ms
inside a CNN step at load 4-8 on 2 cores, 0.9 ms on one thread). A loop that runs there can
enter ``own_threads()`` around whole steps: BLAS then stays on one thread throughout, and the
nested entries of the ops return at once.

Needs threadpoolctl (a dependency of ``pip install chainrule``); without it BLAS cannot be
capped, and both context managers change nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from concurrent import futures

import numpy as np

_blas_libraries = None  # threadpoolctl's controllers of the loaded BLAS libraries, found once
_numpy_blas_found = (None, [])  # (the _blas() list it was found in, NumPy's among them)


def _blas():
    """threadpoolctl's controllers of every BLAS library loaded (found once)."""
    global _blas_libraries
    if _blas_libraries is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _blas_libraries = []
        else:
            _blas_libraries = [library for library in ThreadpoolController().lib_controllers
                               if library.user_api == "blas"]
    return _blas_libraries


def _numpy_blas():
    """The controllers of the BLAS that NumPy's products call: the library NumPy's wheel
    bundles (found by its folder), else every BLAS loaded. Only these are switched when
    chainrule's kernels take the cores and give them back.

    Another BLAS in the process is not ours to switch: Numba loads SciPy, whose wheel bundles
    an OpenBLAS of its own, and setting that one back to 2 threads at every give-back started a
    worker that spun for ~0.1 s beside NumPy's products (an MLP 784-1024-1024-10 step, whose
    optimizer takes the cores, took 17.5 ms instead of 7.0 ms)."""
    global _numpy_blas_found
    libraries = _blas()
    if _numpy_blas_found[0] is not libraries:
        _numpy_blas_found = (libraries, _bundled_with_numpy(libraries) or libraries)
    return _numpy_blas_found[1]


def _bundled_with_numpy(libraries) -> list:
    """The libraries among ``libraries`` that NumPy's wheel ships: in ``numpy.libs`` beside the
    package (Linux and Windows wheels), ``numpy/.libs`` or ``numpy/.dylibs`` (macOS)."""
    package = os.path.dirname(os.path.realpath(np.__file__))
    folders = tuple(os.path.join(folder, "") for folder in (
        os.path.join(os.path.dirname(package), "numpy.libs"),
        os.path.join(package, ".libs"), os.path.join(package, ".dylibs")))
    return [library for library in libraries
            if os.path.realpath(getattr(library, "filepath", "")).startswith(folders)]


@contextlib.contextmanager
def blas_threads(count: int):
    """Run BLAS (OpenBLAS, MKL, ...) on at most ``count`` threads inside the block.

    For work made of many small products (Winograd's 16 per chunk), where waking BLAS's other
    threads costs more than they save, and far more when another process has the cores: a
    CNN training step ran 64 ms instead of 56-96 ms on a shared 2-core machine; and for
    worker processes that share the cores (``chainrule.experiments``). Threads that kernel ops
    hold (``own_threads(hold=True)``) are given back first, and again on leaving, so that the
    block's counts and the ones it restores are BLAS's own.
    """
    give_blas_back()
    changed = []
    for library in _blas():
        previous = library.get_num_threads()
        if previous > count:
            library.set_num_threads(count)
            changed.append((library, previous))
    try:
        yield
    finally:
        give_blas_back()
        for library, previous in changed:
            library.set_num_threads(previous)


# -- BLAS's spinning workers ----------------------------------------------------------------------

_worker_shutdowns = None  # OpenBLAS's blas_thread_shutdown_ of each loaded OpenBLAS, found once


def _openblas_shutdowns() -> list:
    global _worker_shutdowns
    if _worker_shutdowns is None:
        _worker_shutdowns = []
        if os.environ.get("CHAINRULE_QUIET_BLAS", "1") != "0":
            for library in _numpy_blas():
                if library.internal_api != "openblas":
                    continue
                try:
                    shutdown = ctypes.CDLL(library.filepath).blas_thread_shutdown_
                except (OSError, AttributeError):  # a build without it: the spin stays
                    continue
                shutdown.restype = ctypes.c_int
                _worker_shutdowns.append(shutdown)
    return _worker_shutdowns


def _quiet_blas_workers() -> None:
    """Send OpenBLAS's worker threads to sleep (they stop busy-waiting and exit; its next
    threaded product starts them again), so that chainrule's threads get the cores.

    Skipped while the program has another thread that could be inside a BLAS call: stopping
    the workers under it would wait on it forever. Threads that are not ours count, unless
    they are daemons (an interpreter's or notebook's service threads; a thread started with
    ``threading.Thread`` or a ``ThreadPoolExecutor`` is not one) or idle in chainrule's pool.
    """
    shutdowns = _openblas_shutdowns()
    if not shutdowns:
        return
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon and not thread.name.startswith(
                _POOL_NAME):
            return
    for shutdown in shutdowns:
        shutdown()


# -- chainrule's own threads ---------------------------------------------------------------------

_workers = 1  # threads the kernels may use: more than 1 only inside own_threads()
_POOL_NAME = "chainrule-kernels"
_pool = None
_pool_owner = None  # (pid, size): a forked child must not use its parent's (dead) threads


#: Multiply-adds (or their time's worth of other work) below which :func:`own_threads` given
#: ``work=`` changes nothing: taking the cores costs ~0.1 ms (BLAS's thread counts set, its
#: worker stopped), ~0.2-0.5 ms of such work on one thread.
MIN_SHARED_WORK = 4_000_000

#: Multiply-adds m·k·n from which a product gets BLAS's threads back from chainrule's kernels
#: (:func:`blas_for`). Starting OpenBLAS's stopped workers again is not free: a 2048 × 256 by
#: 256 × 95 product (the char-LSTM's head) took 0.44 ms on two threads, and 1.9 ms (median of
#: 100) right after the workers were stopped; a second thread saves that much only on products
#: of ~2²⁸ multiply-adds. Smaller ones share chainrule's threads instead (:func:`product`).
#: Giving them back for every product over 2 × 262,144 (OpenBLAS's own threshold for a second
#: thread), as before, cost the char-LSTM step 27 → 30-36 ms.
THREADED_PRODUCT = 2**28

#: The same for cores that a large optimizer step holds (``own_threads(hold=NEXT_PRODUCT)``):
#: any product BLAS would run on two threads (OpenBLAS's own threshold, 2 × 262,144) gets them
#: back. The next step's forward pass is all products, and on chainrule's threads one by one
#: (:func:`product`) they ran slower than on BLAS's own after one restart (an MLP of width
#: 1024: 8.2 against 7.0 ms a step); held until then, steps back to back switch nothing.
NEXT_PRODUCT = 2 * 262_144

#: Rows of a product's output per thread, at least, when :func:`product` deals them out.
PRODUCT_MIN_ROWS = 16

_held = []  # [(BLAS library, its thread count)]: the counts chainrule's kernels took, to give back
_release_at = 0  # the multiply-adds of a product that gets them back (the largest hold asked)


def _take_cores() -> bool:
    """BLAS on one thread and its workers stopped, until :func:`give_blas_back`; False when the
    kernels hold the cores already."""
    if _held:
        return False
    for library in _numpy_blas():
        count = library.get_num_threads()
        if count > 1:
            library.set_num_threads(1)
            _held.append((library, count))
    _quiet_blas_workers()
    return True


def give_blas_back() -> None:
    """Give BLAS the threads that chainrule's kernels hold since an op took them
    (``own_threads(hold=True)``); nothing when they hold none.

    chainrule's ops do it themselves before a product large enough for BLAS's threads
    (:func:`blas_for`). Call it after a hand-written loop whose last op was a convolution, an
    LSTM or a large optimizer step, before NumPy work of your own that wants BLAS's threads
    (until then BLAS runs it on one thread).
    """
    global _release_at
    while _held:
        library, count = _held.pop()
        library.set_num_threads(count)
    _release_at = 0


def cores_taken() -> bool:
    """Whether :func:`own_threads` would switch no thread of BLAS's: chainrule's kernels hold
    the cores already, or BLAS runs on one thread anyway (or cannot be capped)."""
    return bool(_held) or all(library.get_num_threads() <= 1 for library in _numpy_blas())


def blas_for(multiply_adds: int) -> None:
    """Called by an op just before a BLAS product of ``multiply_adds`` (m·k·n): gives BLAS its
    threads back (:func:`give_blas_back`) when chainrule's kernels hold them, the product is
    large enough to use them (:data:`THREADED_PRODUCT`, or :data:`NEXT_PRODUCT` after an
    optimizer step) and no kernel is running (outside an ``own_threads`` block). Costs one
    test when there is nothing to do."""
    if _held and _workers == 1 and multiply_adds >= (_release_at or THREADED_PRODUCT):
        give_blas_back()


def product(a, b):
    """a @ b (2-D arrays) on the threads that are free now: BLAS's own, as for any product,
    except while chainrule's kernels hold the cores (after a convolution or an LSTM, say) and
    the product is too small to start BLAS's workers again for (:func:`blas_for`):
    its rows, or its columns where it has more of them, are then dealt out to chainrule's
    threads, BLAS on one thread each. (The char-LSTM's head: 1.0 → 0.7 ms forward and
    1.8 → 1.5 ms backward, against BLAS's one thread; its step 27.6-28.0 → 25.7-26.2 ms.)
    Inside a kernel (``workers() > 1``) it is a plain a @ b on the calling thread."""
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"kernels.product: a and b must be 2-D, got shapes {a.shape} and "
                         f"{b.shape}")
    rows, columns = a.shape[0], b.shape[1]
    multiply_adds = rows * a.shape[1] * columns
    blas_for(multiply_adds)
    if (not _held or _workers > 1 or multiply_adds < MIN_SHARED_WORK
            or max(rows, columns) < 2 * PRODUCT_MIN_ROWS or type(a) is not np.ndarray
            or type(b) is not np.ndarray):
        return a @ b
    out = np.empty((rows, columns), dtype=np.result_type(a.dtype, b.dtype))
    by_rows = rows >= columns

    def block(k):
        part = slice(*blocks[k])
        if by_rows:
            np.matmul(a[part], b, out=out[part])
        else:
            np.matmul(a, b[:, part], out=out[:, part])

    with own_threads(hold=True):
        length = rows if by_rows else columns
        blocks = split(length, min(_workers, length // PRODUCT_MIN_ROWS))
        run_each(block, len(blocks))
    return out


@contextlib.contextmanager
def own_threads(count: int | None = None, work: int | None = None, hold: bool | int = False):
    """Inside the block, BLAS runs on one thread (its spinning workers stopped) and
    chainrule's kernels on ``count`` threads (default: as many as BLAS had, so a cap set with
    :func:`blas_threads` holds).

    Entered by the ops whose time is in chainrule's own kernels rather than in one BLAS
    product (the convolutions, max pooling, the fused LSTM, a large optimizer step), around
    their own work, with ``hold``: BLAS then stays on one thread after the block, so that the
    next such op (a pooling after a convolution, the convolutions and the update of a step)
    finds the cores taken already, and the first op with a large product gives BLAS its
    threads back (:func:`blas_for`): no switch at all in a CNN step whose Dense head is
    smaller than :data:`THREADED_PRODUCT`, against two per op once (1.1 ms of a 33 ms step).
    Without ``hold`` (a user's block around a whole loop) BLAS gets
    its threads back on leaving, unless they were held before it. ``hold`` may also be the
    multiply-adds of the product that gets them back (the optimizer's :data:`NEXT_PRODUCT`;
    ``True`` is :data:`THREADED_PRODUCT`); the largest hold in effect counts.

    ``work`` (multiply-adds) says how much there is: below :data:`MIN_SHARED_WORK` the block
    runs as it is, on the caller's thread (a gradient check's tiny convolutions ran 20 %
    slower taking the cores each time). Nested, it keeps the count in effect. The setting is
    the process's, like BLAS's own: two threads running such ops at once share it.
    """
    global _workers, _release_at
    if not isinstance(hold, (bool, int)) or hold < 0:
        raise TypeError(f"own_threads: hold must be True, False or a number of multiply-adds "
                        f"(an int >= 0), got {hold!r}")
    libraries = _numpy_blas()
    if (not libraries or (_workers > 1 and count in (None, _workers))
            or (work is not None and work < MIN_SHARED_WORK)):
        yield  # nothing to cap, already in effect, or not worth it
        return
    previous = _workers
    if count is None:
        count = previous if previous > 1 else min(
            [held for _, held in _held] or [lib.get_num_threads() for lib in libraries])
    took = _take_cores()
    if hold and _held:
        _release_at = max(_release_at, THREADED_PRODUCT if hold is True else int(hold))
    _workers = max(1, int(count))
    try:
        yield
    finally:
        _workers = previous
        if took and not hold:
            give_blas_back()
            _quiet_blas_workers()  # restoring the count started BLAS's workers: they would spin


def workers() -> int:
    """How many threads the kernels may use now (1 outside :func:`own_threads`)."""
    return _workers


def run_each(work, count: int) -> list:
    """[work(0), ..., work(count − 1)] on ``count`` threads (the caller runs work(0)); the
    first exception is raised. For work whose steps release the GIL: NumPy products and
    copies, and the compiled kernels (``nogil``)."""
    global _pool, _pool_owner
    if count <= 1 or threading.current_thread().name.startswith(_POOL_NAME):
        return [work(index) for index in range(count)]  # (nested: the pool is busy with us)
    owner = (os.getpid(), count - 1)
    if _pool_owner != owner:
        if _pool is not None and _pool_owner[0] == os.getpid():
            _pool.shutdown(wait=False)  # another size: its threads end once idle
        _pool = futures.ThreadPoolExecutor(max_workers=count - 1, thread_name_prefix=_POOL_NAME)
        _pool_owner = owner
    others = [_pool.submit(work, index) for index in range(1, count)]
    try:
        first = work(0)
    finally:
        futures.wait(others)  # never leave a worker writing after we return or raise
    return [first] + [future.result() for future in others]


def split(count: int, parts: int) -> list[tuple[int, int]]:
    """``count`` items cut into ``parts`` contiguous (start, stop) runs of near-equal size."""
    bounds = [count * k // parts for k in range(parts + 1)]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def run_blocks(count: int, work, parts: int | None = None) -> list:
    """[work(start, stop) for each block] of ``count`` items cut into ``parts`` (default
    :func:`workers`) near-equal blocks, one per thread (:func:`run_each`); one empty block
    (0, 0) when there are no items, so that the work still sees its (empty) arrays."""
    blocks = split(count, workers() if parts is None else parts) or [(0, count)]
    return run_each(lambda k: work(*blocks[k]), len(blocks))


def deal_out(chunks: list, new_state, each_chunk) -> list:
    """Runs ``each_chunk(state, start, stop)`` for every (start, stop) of ``chunks``, dealt out
    in turn to :func:`workers` threads, each with a ``state = new_state()`` of its own (its
    buffers, its running sums), reused across its chunks. Returns the states, at least one
    (a state that took no chunk when there are none)."""
    count = max(1, min(workers(), len(chunks)))

    def run(index):
        state = new_state()
        for start, stop in chunks[index::count]:
            each_chunk(state, start, stop)
        return state

    return run_each(run, count)


def summed(terms: list):
    """Σ terms (the threads' partial sums), added into the first."""
    total = terms[0]
    for term in terms[1:]:
        total += term
    return total
