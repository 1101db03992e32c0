"""Who runs on how many threads: BLAS's thread caps and chainrule's own pool, in one place.

BLAS (OpenBLAS, MKL, ...) parallelises each product on threads of its own, which spin for
~0.1 s after every product they helped with. Kernels of ours that run on several threads then
find a core taken (a measured 13.4 vs 8.8 ms). So the two never mix: outside
:func:`own_threads` BLAS has its threads and chainrule's kernels run on one; inside it BLAS
runs on one thread (its workers fall asleep) and the kernels that can split their work do so
on chainrule's pool (:func:`run_each`, :func:`split`, :func:`workers`).

The op that runs a compiled kernel decides, around its own work only: the Winograd and direct
convolutions enter :func:`own_threads` in their forward and backward passes, so the layers
around them (a wide Dense layer's products) keep BLAS's threads, and a hand-written training
loop runs as fast as ``Model.fit``. Entering it costs ~4.4 µs per op call (two BLAS thread
counts read and two set through threadpoolctl, measured in a loop on an idle 2-core machine
with OpenBLAS; 13-24 µs right after a 2-thread product on a loaded one), against milliseconds
of convolution; a nested entry, already in effect, returns at once (~0.8 µs instead of 2.3 µs).

**BLAS's spinning workers.** Capping BLAS to one thread does not stop a worker that is already
awake: OpenBLAS's workers busy-wait for new work for 2²⁸ cycles (~0.1 s) after every product
they helped with, whatever the thread count is set to since. In a CNN step the Dense head's
2-thread products come milliseconds before the next convolution, so the worker spins on the
core the convolution's second thread needs: ``bench/cnn.py``'s step took 43 ms instead of 30 ms
(the same step with the spin switched off by ``OPENBLAS_THREAD_TIMEOUT=4`` when NumPy loads:
30 ms, with the Dense products still on two threads). So :func:`own_threads` also sends
OpenBLAS's workers to sleep when it takes the cores (:func:`_quiet_blas_workers`: OpenBLAS's
own ``blas_thread_shutdown_``, what it runs before a ``fork``; the next product that wants
threads starts them again, ~0.1 ms), and once more when it gives them back, since restoring
BLAS's thread count starts a fresh worker, which would spin on whatever runs next (PyTorch's
threads in a benchmark ran 3-7x slower). That step is then 31-33 ms (0.65 ms of it for the
second stop), and an MLP epoch, whose products keep their spinning workers between steps, is
unchanged (0.59 s, in turn with and without). It is done only
while no other thread of the program could be inside a BLAS call (see
:func:`_quiet_blas_workers`) and can be switched off with ``CHAINRULE_QUIET_BLAS=0``.

On a machine whose cores other processes keep busy, BLAS's second thread can wait
milliseconds to be scheduled (a 128 × 3136 by 3136 × 128 product: 0.5 ms in a tight loop, 10-100 ms
inside a CNN step at load 4-8 on 2 cores, 0.9 ms on one thread). A loop that runs there can
enter ``own_threads()`` around whole steps: BLAS then stays on one thread throughout, and the
nested entries of the ops return at once.

Needs threadpoolctl (the ``[fast]`` extra); without it BLAS cannot be capped, and both
context managers change nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from concurrent import futures

_blas_libraries = None  # threadpoolctl's controllers of the loaded BLAS libraries, found once


def _blas():
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


@contextlib.contextmanager
def blas_threads(count: int):
    """Run BLAS (OpenBLAS, MKL, ...) on at most ``count`` threads inside the block.

    For work made of many small products (Winograd's 16 per chunk), where waking BLAS's other
    threads costs more than they save, and far more when another process has the cores: a
    CNN training step ran 64 ms instead of 56-96 ms on a shared 2-core machine; and for
    worker processes that share the cores (``chainrule.experiments``).
    """
    changed = []
    for library in _blas():
        previous = library.get_num_threads()
        if previous > count:
            library.set_num_threads(count)
            changed.append((library, previous))
    try:
        yield
    finally:
        for library, previous in changed:
            library.set_num_threads(previous)


# -- BLAS's spinning workers ----------------------------------------------------------------------

_worker_shutdowns = None  # OpenBLAS's blas_thread_shutdown_ of each loaded OpenBLAS, found once


def _openblas_shutdowns() -> list:
    global _worker_shutdowns
    if _worker_shutdowns is None:
        _worker_shutdowns = []
        if os.environ.get("CHAINRULE_QUIET_BLAS", "1") != "0":
            for library in _blas():
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


#: Multiply-adds (or elements, for memory-bound work) below which :func:`own_threads` given
#: ``work=`` changes nothing: taking the cores costs ~0.1 ms (BLAS's thread counts set twice,
#: its worker stopped and started again), ~0.2-0.5 ms of such work on one thread.
MIN_SHARED_WORK = 4_000_000


@contextlib.contextmanager
def own_threads(count: int | None = None, work: int | None = None):
    """Inside the block, BLAS runs on one thread and chainrule's kernels on ``count`` threads
    (default: as many as BLAS was using, so a cap set with :func:`blas_threads` holds).

    Entered by the ops whose time is in chainrule's own kernels rather than in BLAS products
    (the Winograd and direct convolutions, the fused LSTM, a large optimizer step), around
    their own work. ``work`` (multiply-adds) says how much there is: below
    :data:`MIN_SHARED_WORK` the block runs as it is, on the caller's thread (a gradient check's
    tiny convolutions ran 20 % slower taking the cores each time). Nested, it keeps the count
    in effect. The setting is the process's, like BLAS's own: two threads running such ops at
    once share it.
    """
    global _workers
    libraries = _blas()
    if (not libraries or (_workers > 1 and count in (None, _workers))
            or (work is not None and work < MIN_SHARED_WORK)):
        yield  # nothing to cap, already in effect, or not worth it
        return
    previous = _workers
    if count is None:
        count = previous if previous > 1 else min(lib.get_num_threads() for lib in libraries)
    try:
        with blas_threads(1):
            _quiet_blas_workers()
            _workers = max(1, int(count))
            try:
                yield
            finally:
                _workers = previous
    finally:
        _quiet_blas_workers()  # giving BLAS its count back started its workers: they would spin


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
