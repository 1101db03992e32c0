"""Optional dependencies: import one, or say which extra installs it."""

from __future__ import annotations

import importlib


def require(module: str, extra: str, needed_by: str, package: str | None = None):
    """``module`` imported, or an ImportError naming ``needed_by``, the ``chainrule[extra]``
    that installs it and the package itself (``package``, default the module's name)."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        package = package or module
        raise ImportError(f"{needed_by} needs {package}, which is not installed: pip install "
                          f"'chainrule[{extra}]' (or pip install {package})") from error
