"""A stand-in for CuPy on machines without a GPU, for testing device bookkeeping only.

Its "GPU arrays" are NumPy arrays of a subclass, so :func:`chainrule.backend.device_of` says
``"cuda"`` for them and every NumPy function still runs on them. It proves that weights,
gradients, optimizer state and batches are moved and that mismatches are caught; it proves
nothing about CuPy itself (that is what ``test_cuda.py`` does on a real GPU).
"""

from __future__ import annotations

import types

import numpy as np


class FakeGpuArray(np.ndarray):
    """An array that the backend takes for a CuPy array."""


def fake_cupy() -> types.ModuleType:
    module = types.ModuleType("fake_cupy")
    module.ndarray = FakeGpuArray
    module.asarray = lambda a, dtype=None: np.array(a, dtype=dtype).view(FakeGpuArray)
    module.asnumpy = lambda a: np.array(a).view(np.ndarray)
    module.__getattr__ = lambda name: getattr(np, name)  # every other function: NumPy's
    return module
