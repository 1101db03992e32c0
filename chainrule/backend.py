"""The one module that knows about CuPy: array modules, devices and transfers.

Ops never branch on the device. They ask :func:`get_array_module` for ``numpy`` or ``cupy`` and
call the same functions on it (Chainer's pattern). CuPy is imported lazily, the first time a
CUDA device is asked for, so a CPU-only session never pays for it.
"""

from __future__ import annotations

import numpy as np

_cupy = None  # the cupy module once a CUDA device has been used
_cuda_checked = False
_cuda_available = False
_cuda_problem = ""  # why CUDA is not available, once checked


def _import_cupy():
    """Import CuPy and check that a GPU is really there (importing succeeds without one)."""
    global _cupy, _cuda_checked, _cuda_available, _cuda_problem
    if not _cuda_checked:
        _cuda_checked = True
        try:
            import cupy
        except Exception as error:  # ImportError, or a broken installation
            _cuda_available = False
            _cuda_problem = f"CuPy cannot be imported ({type(error).__name__}: {error})"
            return _cupy
        try:
            _cuda_available = cupy.cuda.runtime.getDeviceCount() > 0
            if _cuda_available:
                cupy.zeros(1)  # fails here, not later, if the driver or runtime is broken
                _cupy = cupy
            else:
                _cuda_problem = f"CuPy {cupy.__version__} sees no GPU"
        except Exception as error:  # CUDARuntimeError, missing driver libraries...
            _cuda_available = False
            _cuda_problem = (f"CuPy {getattr(cupy, '__version__', '?')} finds no usable GPU "
                             f"({type(error).__name__}: {error})")
    return _cupy


def cuda_available() -> bool:
    """True when CuPy imports, sees at least one GPU and can allocate on it."""
    _import_cupy()
    return _cuda_available


def get_array_module(array):
    """``cupy`` for a CuPy array, else ``numpy``. Cheap when CuPy was never used."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return _cupy
    return np


def device_of(array) -> str:
    """``"cuda"`` or ``"cpu"``: where an array lives."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return "cuda"
    return "cpu"


def mixing_devices_possible() -> bool:
    """Whether any array can be on the GPU yet; ops skip device checks while it is False."""
    return _cupy is not None


def normalize_device(device) -> str:
    """Accept ``"cpu"``, ``"cuda"``, ``"cuda:0"`` or ``"gpu"``; return ``"cpu"`` or ``"cuda"``."""
    name = str(device).lower()
    if name == "cpu":
        return "cpu"
    if name in ("cuda", "gpu") or name.startswith("cuda:"):
        return "cuda"
    raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")


def require_cuda():
    """The cupy module, or a RuntimeError saying how to get a usable GPU."""
    cupy = _import_cupy()
    if cupy is None:
        why = f" ({_cuda_problem})" if _cuda_problem else ""
        raise RuntimeError(
            f"device 'cuda' is not available{why}: install the [gpu] extra "
            "(pip install chainrule[gpu]) on a machine with an NVIDIA GPU and driver"
        )
    return cupy


def is_array(value) -> bool:
    """Whether ``value`` is a NumPy array or (once CUDA is in use) a CuPy array."""
    return isinstance(value, np.ndarray) or (
        _cupy is not None and isinstance(value, _cupy.ndarray))


def synchronize(device="cuda") -> None:
    """Wait until the GPU has finished the work queued so far (a no-op on the CPU, and when
    CUDA was never used). Timings of GPU work must call it before reading the clock."""
    if normalize_device(device) == "cuda" and _cupy is not None:
        _cupy.cuda.Device().synchronize()


def describe_device(device="cuda") -> str:
    """One line naming the device: ``"cpu"``, or the GPU's name, memory and CUDA versions."""
    if normalize_device(device) == "cpu":
        return "cpu"
    cupy = require_cuda()
    runtime = cupy.cuda.runtime
    index = cupy.cuda.Device().id
    props = runtime.getDeviceProperties(index)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    memory = props["totalGlobalMem"] / 2**30
    return (f"cuda:{index} {name}, {memory:.0f} GiB, CUDA runtime {runtime.runtimeGetVersion()}, "
            f"driver {runtime.driverGetVersion()}, CuPy {cupy.__version__}")


def to_device(array, device: str):
    """Copy ``array`` to ``device`` (a no-op when it is already there)."""
    device = normalize_device(device)
    if device == "cpu":
        if _cupy is not None and isinstance(array, _cupy.ndarray):
            return _cupy.asnumpy(array)
        return array
    return require_cuda().asarray(array)


def to_numpy(array) -> np.ndarray:
    """A NumPy array with the same values, copying from the GPU when needed. Called per
    training step (the metrics read host arrays), so the CPU case costs one test."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return _cupy.asnumpy(array)
    return array
