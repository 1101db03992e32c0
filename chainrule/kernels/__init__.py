"""Fused kernels: work that NumPy does in several passes over memory, done in one.

Each kernel exists twice, with the same arguments and the same results:

* :mod:`chainrule.kernels.reference`, written with NumPy: always there, the definition of what
  the kernel computes, and what CuPy arrays and unusual layouts use;
* :mod:`chainrule.kernels.compiled`, the same loops compiled to machine code by Numba (the
  ``[fast]`` extra: ``pip install chainrule[fast]``). One pass over memory where NumPy makes
  temporaries: a fused SGD-momentum update, 2 × 2 max pooling with its argmax, the gate
  arithmetic of an LSTM step, Winograd's tile transforms and direct 3 × 3 convolution.

Which one runs: the compiled kernels when Numba can be imported, unless the environment
variable ``CHAINRULE_KERNELS=numpy`` says otherwise; :func:`use` switches at run time (the
tests run every kernel both ways). Both do their arithmetic in the arrays' dtype, in the same
order, so float32 results agree bit for bit (the long sums of a convolution's kernel gradient
and bias gradient excepted: their loops add in another order, and agree to rounding)::

    >>> from chainrule import kernels
    >>> kernels.use("numpy")
    >>> kernels.active()
    'numpy'
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent import futures

import numpy as np

from chainrule.kernels import reference

CHOICES = ("numpy", "numba")

_active = None  # the module in use; chosen on first use (importing Numba takes ~0.3 s)
_chosen: str | None = None


def available() -> tuple[str, ...]:
    """The kernel implementations that can run here: ("numpy",) or ("numpy", "numba")."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return ("numpy",)
    return CHOICES


def use(name: str) -> None:
    """Run the kernels of ``name``: "numpy" (the reference), "numba" (compiled) or "auto"
    (numba when installed)."""
    global _active, _chosen
    if name == "auto":
        name = available()[-1]
    if name not in CHOICES:
        raise ValueError(f"kernels.use: expected one of {CHOICES} or 'auto', got {name!r}")
    if name == "numba":
        if "numba" not in available():
            raise ImportError(
                "kernels.use('numba'): Numba is not installed; pip install 'chainrule[fast]' "
                "(or numba) to compile the fused kernels"
            )
        from chainrule.kernels import compiled as module
    else:
        module = reference
    _active, _chosen = module, name


def active() -> str:
    """The name of the kernels in use ("numpy" or "numba")."""
    if _active is None:
        _choose_default()
    return _chosen


def _choose_default() -> None:
    use(os.environ.get("CHAINRULE_KERNELS", "auto").strip().lower() or "auto")


def select(*arrays):
    """The active kernel module, or the reference for arrays Numba can't take (CuPy).

    Ops that keep state between forward and backward (the argmax of max pooling, whose form
    differs between the two) hold on to the module that ran their forward.
    """
    if _active is None:
        _choose_default()
    if _active is reference:
        return reference
    for a in arrays:
        if type(a) is not np.ndarray:
            return reference
    return _active


# -- BLAS threads --------------------------------------------------------------------------------

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
    CNN training step ran 64 ms instead of 56-96 ms on a shared 2-core machine. Needs
    threadpoolctl (the ``[fast]`` extra); without it the block runs unchanged.
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


# -- chainrule's own threads ---------------------------------------------------------------------
#
# BLAS parallelises each product on threads of its own, which spin for ~0.1 s after every
# product they helped with. Kernels of ours that run on several threads then find a core
# taken (a measured 13.4 vs 8.8 ms). So the two never mix: outside :func:`own_threads` BLAS
# has its threads and the kernels run on one; inside it BLAS runs on one thread (its
# workers fall asleep) and the kernels that can split their work do so on chainrule's pool.

_workers = 1  # threads the kernels may use: more than 1 only inside own_threads()
_POOL_NAME = "chainrule-kernels"
_pool = None
_pool_owner = None  # (pid, size): a forked child must not use its parent's (dead) threads


@contextlib.contextmanager
def own_threads(count: int | None = None):
    """Inside the block, BLAS runs on one thread and chainrule's kernels on ``count`` threads
    (default: as many as BLAS was using).

    For work whose time is in chainrule's own kernels rather than in large BLAS products: a
    CNN's training step (Winograd convolutions, direct first layers). ``Model.fit``,
    ``evaluate`` and ``predict`` enter it for models that have such layers
    (:meth:`chainrule.models.Model.prefers_own_threads`). Without threadpoolctl (the
    ``[fast]`` extra) BLAS cannot be held to one thread, and the block changes nothing. The
    setting is the process's, like BLAS's own: two threads training at once share it.
    """
    global _workers
    libraries = _blas()
    if not libraries:
        yield
        return
    previous = _workers
    if count is None:
        count = previous if previous > 1 else min(lib.get_num_threads() for lib in libraries)
    with blas_threads(1):
        _workers = max(1, int(count))
        try:
            yield
        finally:
            _workers = previous


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


# -- the kernels -----------------------------------------------------------------------------


def momentum_update(param, buffer, grad, momentum: float, learning_rate: float) -> None:
    """SGD with momentum, in place: b ← μ·b + g;  θ ← θ − η·b.

    ``param``, ``buffer`` and ``grad`` have one shape and dtype; the scalars are cast to it.
    """
    dtype = param.dtype.type
    select(param, buffer, grad).momentum_update(param, buffer, grad, dtype(momentum),
                                                dtype(learning_rate))


def scaled_subtract(param, direction, scale: float, work) -> None:
    """θ ← θ − s·d in place (``work`` is a scratch array like ``param``; the reference uses it
    for s·d, the compiled kernel needs none)."""
    dtype = param.dtype.type
    select(param, direction).scaled_subtract(param, direction, dtype(scale), work)


# Max pooling over tiling windows, from ``select(planes)``:
#
#   module.max_pool_tiles(planes, kh, kw, track) -> (maxima, argmax)
#       planes (P, kh·OH, kw·OW), contiguous; maxima (P, OH, OW); argmax None unless ``track``,
#       else in a form private to the module (the first maximum in row-major order). NaN
#       propagates to the output.
#   module.max_pool_tiles_backward(gy, argmax, kh, kw) -> gx (P, kh·OH, kw·OW)
#       gy (P, OH, OW) sent to each window's maximum, zeros elsewhere.
