"""The ``chainrule`` command and ``python -m chainrule``."""

from __future__ import annotations

import subprocess
import sys

import chainrule
from chainrule.cli import main


def test_version_through_python_dash_m():
    result = subprocess.run(
        [sys.executable, "-m", "chainrule", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"chainrule {chainrule.__version__}"


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "usage: chainrule" in capsys.readouterr().out
