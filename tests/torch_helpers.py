"""Import PyTorch for parity tests, skipping cleanly where it is not installed."""

from __future__ import annotations

import pytest


def require_torch():
    """The torch module, or skip the calling test module when it is missing."""
    torch = pytest.importorskip("torch", reason="parity tests need torch==2.13.0 ([test] extra)")
    torch.set_num_threads(1)
    return torch
