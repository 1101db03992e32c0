"""Checksum-verified, atomic downloads.

A file is streamed into a temporary file *in the destination folder*, its MD5 or SHA-256 is
checked, and only then is it renamed into place with :func:`os.replace` (atomic on one file
system). Whatever goes wrong (network error, wrong checksum, Ctrl-C) the temporary file is
removed, so the destination either holds a verified file or nothing.

The opener is the module attribute :data:`urlopen`, looked up at call time, so tests (and users
behind a proxy) can replace it::

    monkeypatch.setattr(chainrule.datasets._download, "urlopen", fake_urlopen)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

from ._common import DatasetError

#: Seconds to wait for the server to connect or send the next block.
TIMEOUT = 20.0

#: Bytes read per block.
CHUNK_SIZE = 1 << 20

#: Called as ``urlopen(url, timeout=seconds)``; must return a context manager with ``.read(n)``.
urlopen = urllib.request.urlopen


class ChecksumError(DatasetError):
    """A downloaded file's digest differs from the one recorded in chainrule."""


def _hasher(md5: str | None, sha256: str | None):
    """(hash object, expected hex digest, algorithm name) for the given checksum."""
    if sha256:
        return hashlib.sha256(), sha256.lower(), "sha256"
    if md5:
        return hashlib.md5(usedforsecurity=False), md5.lower(), "md5"
    raise ValueError("download() needs an md5 or a sha256 checksum to verify against")


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    timeout: float | None = None,
) -> Path:
    """Download ``url`` to ``dest`` if, and only if, its checksum matches.

    Args:
        url: where to fetch from.
        dest: final file path; its folder is created if needed.
        md5, sha256: expected hex digest (give at least one; SHA-256 wins if both are given).
        timeout: seconds per network operation (default :data:`TIMEOUT`).

    Raises :class:`ChecksumError` on a digest mismatch and the opener's ``OSError``
    (``URLError``, timeouts) on network failure; in both cases no file is left behind.

    >>> download("https://example.org/f.gz", "/tmp/f.gz", md5="0" * 32)  # doctest: +SKIP
    """
    dest = Path(dest)
    hasher, expected, algorithm = _hasher(md5, sha256)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            with urlopen(url, timeout=TIMEOUT if timeout is None else timeout) as response:
                while chunk := response.read(CHUNK_SIZE):
                    hasher.update(chunk)
                    out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        actual = hasher.hexdigest()
        if actual != expected:
            raise ChecksumError(
                f"{url}: {algorithm} checksum mismatch (expected {expected}, got {actual}); "
                f"the file was not saved"
            )
        os.replace(tmp_name, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return dest
