"""What every loader shares: its errors, the cache folder and the install hint for extras.

Search order used by the file-based loaders (MNIST, Fashion-MNIST, CIFAR):

1. ``path`` when the caller gives one (and only there: see :func:`candidate_dirs`),
2. the user cache, ``$CHAINRULE_DATA/<name>`` when that variable is set, else
   ``~/.cache/chainrule/datasets/<name>`` (:data:`DEFAULT_CACHE_ROOT`),
3. system-wide folders such as Debian's ``/usr/share/datasets/fashion-mnist``,
4. a checksum-verified download into the user cache (see :mod:`._download`).
"""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable that moves the whole cache (``$CHAINRULE_DATA/<name>``).
CACHE_ENV = "CHAINRULE_DATA"

#: Cache root when :data:`CACHE_ENV` is unset; ``~`` is expanded at call time.
DEFAULT_CACHE_ROOT = "~/.cache/chainrule/datasets"

#: Shown by every loader whose optional dependency is missing.
DATA_EXTRA_HINT = "pip install chainrule[data]"


class DatasetError(ValueError):
    """A data file is malformed: wrong magic number, shape, count, or a truncated archive.

    The message always names the file and what is wrong with it.
    """


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The data set is in none of the searched places and could not be downloaded.

    It is both a :class:`DatasetError` (a ``ValueError``) and a ``FileNotFoundError``, so
    either ``except`` clause catches it. The message says how to get the data.
    """


def cache_dir(name: str) -> Path:
    """The user cache folder of data set ``name`` (it may not exist yet).

    ``$CHAINRULE_DATA/<name>`` when the variable is set, else
    ``~/.cache/chainrule/datasets/<name>``.

    >>> cache_dir("mnist").name
    'mnist'
    """
    root = os.environ.get(CACHE_ENV) or DEFAULT_CACHE_ROOT
    return Path(root).expanduser() / name


def candidate_dirs(
    name: str, path: str | os.PathLike | None, system_dirs: tuple[str, ...]
) -> list[Path]:
    """Folders to search for data set ``name``, in order.

    An explicit ``path`` is the only candidate: if the caller names a folder, silently loading
    some other copy (or downloading) would hide a typo, so the loader reports what is missing
    there instead. Without ``path``: the user cache, then the system folders.
    """
    if path is not None:
        return [Path(path).expanduser()]
    return [cache_dir(name), *(Path(d) for d in system_dirs)]


def remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` if a failed download left it empty (leave it alone otherwise)."""
    try:
        folder.rmdir()
    except OSError:
        pass


def missing_extra(package: str, what: str) -> ImportError:
    """The ImportError raised when an optional package (``mnist1d``, ``scikit-learn``) is absent."""
    return ImportError(
        f"{what} needs the optional package {package!r}, which is not installed. "
        f"Install chainrule's data extras with `{DATA_EXTRA_HINT}` (or `pip install {package}`)."
    )
