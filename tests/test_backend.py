"""GPU detection must not trust a successful ``import cupy``; CPU stays the default."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from chainrule import backend


@pytest.fixture
def fresh_backend(monkeypatch):
    """Reset the backend's detection state (and restore it afterwards)."""
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(backend, "_cuda_checked", False)
    monkeypatch.setattr(backend, "_cuda_available", False)
    return backend


def _fake_cupy(device_count=None, error=None):
    module = types.ModuleType("cupy")

    def get_device_count():
        if error is not None:
            raise error
        return device_count

    runtime = types.SimpleNamespace(getDeviceCount=get_device_count)
    module.cuda = types.SimpleNamespace(runtime=runtime)
    module.zeros = lambda n: np.zeros(n)
    module.ndarray = type("FakeCupyArray", (), {})
    return module


def test_cupy_that_imports_without_a_gpu_is_not_available(fresh_backend, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(error=RuntimeError("no CUDA driver")))
    assert fresh_backend.cuda_available() is False
    assert fresh_backend.get_array_module(np.ones(1)) is np


def test_cupy_with_zero_devices_is_not_available(fresh_backend, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(device_count=0))
    assert fresh_backend.cuda_available() is False


def test_missing_cupy_is_not_available(fresh_backend, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import raises ImportError
    assert fresh_backend.cuda_available() is False
    with pytest.raises(RuntimeError, match=r"\[gpu\] extra"):
        fresh_backend.to_device(np.ones(1), "cuda")


def test_cupy_with_a_device_is_used(fresh_backend, monkeypatch):
    fake = _fake_cupy(device_count=1)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    assert fresh_backend.cuda_available() is True
    array = fake.ndarray()
    assert fresh_backend.get_array_module(array) is fake
    assert fresh_backend.device_of(array) == "cuda"


def test_device_names():
    assert backend.normalize_device("cuda:0") == "cuda"
    assert backend.normalize_device("GPU") == "cuda"
    assert backend.normalize_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        backend.normalize_device("tpu")


def test_cpu_arrays_stay_put():
    a = np.ones(2)
    assert backend.to_device(a, "cpu") is a
    assert backend.to_numpy(a) is a
