"""glibc's malloc told to keep freed memory for the next step, while the NumPy kernels run.

The NumPy kernels (:mod:`chainrule.kernels.reference`) make temporaries of megabytes in every
training step: the pooling's index arrays, im2col's masked gradient, the LSTM's gate slopes.
glibc gives large freed blocks back to the system (``munmap``, or trimming the top of a heap),
so the next step faults the same memory in again, page by page. Measured on 2 cores:

=====================================  ======================  ==========================
a training step, NumPy kernels         malloc as it is          with :func:`keep_freed_memory`
=====================================  ======================  ==========================
bench/cnn.py's CNN, batch 128          53.5 ms, 2,200 faults,   48.0 ms, 0 faults
                                       7 ms of system time
bench/lstm.py's char-LSTM, batch 32    36.9 ms, 1,800 faults    33.7 ms, 0 faults
=====================================  ======================  ==========================

The compiled kernels make no such temporaries (0-7 page faults a step), and neither does an
MLP, so nothing is changed for them. When the NumPy kernels are chosen
(:func:`chainrule.kernels.use`), chainrule sets glibc's ``M_MMAP_THRESHOLD`` to 64 MiB and
``M_TRIM_THRESHOLD`` to 256 MiB, what ``MALLOC_MMAP_THRESHOLD_=67108864
MALLOC_TRIM_THRESHOLD_=268435456`` in the environment would do: blocks under 64 MiB come from
malloc's heaps, and up to 256 MiB of freed memory stays at a heap's top for reuse. Both are
needed (glibc adapts the two together, up to 32 and 64 MiB, until either is set; setting one
alone made the CNN's step 61-75 ms). The price: the process's resident memory stays near its
peak between steps instead of dropping.

``CHAINRULE_KEEP_FREED_MEMORY=0`` leaves malloc as it is, and so does any malloc setting of the
user's own in the environment (``MALLOC_*_`` or ``GLIBC_TUNABLES``). Other C libraries (musl,
macOS's) are left alone.
"""

from __future__ import annotations

import ctypes
import os

#: glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3

#: Blocks below this come from malloc's heaps, not fresh ``mmap`` calls.
MMAP_THRESHOLD = 64 * 2**20

#: Freed memory up to this much stays at the top of a heap.
TRIM_THRESHOLD = 256 * 2**20

_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
                  "GLIBC_TUNABLES")

_kept = False  # set once per process


def keep_freed_memory() -> bool:
    """Set glibc's thresholds (see the module); True when they are in effect now, False where
    they are switched off, the user has malloc settings of their own, or malloc is not glibc's.
    Once per process."""
    global _kept
    if _kept:
        return True
    if os.environ.get("CHAINRULE_KEEP_FREED_MEMORY", "1").strip() == "0":
        return False
    if any(name in os.environ for name in _USER_SETTINGS):
        return False
    mallopt = _glibc_mallopt()
    if mallopt is None:
        return False
    _kept = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _kept


def _glibc_mallopt():
    """glibc's ``mallopt``, or None elsewhere (it answers ``gnu_get_libc_version`` only)."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc's own symbol: present only there
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # (TypeError: Windows has no CDLL(None))
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt
