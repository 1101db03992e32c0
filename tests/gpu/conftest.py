"""Fixtures of the device tests: a pretend CUDA, and a missing one."""

from __future__ import annotations

import pytest

from chainrule import backend
from tests.gpu.fake_cuda import fake_cupy


@pytest.fixture
def fake_cuda(monkeypatch):
    """Make the backend believe that CUDA is present (restored after the test)."""
    fake = fake_cupy()
    monkeypatch.setattr(backend, "_cupy", fake)
    monkeypatch.setattr(backend, "_cuda_checked", True)
    monkeypatch.setattr(backend, "_cuda_available", True)
    return fake


@pytest.fixture
def no_cuda(monkeypatch):
    """Make the backend believe that CuPy is not installed (restored after the test)."""
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(backend, "_cuda_checked", True)
    monkeypatch.setattr(backend, "_cuda_available", False)
