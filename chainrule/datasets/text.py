"""A character-level text corpus, by default the Python standard library's own source code.

The standard library is on every machine that runs chainrule, so a character language model
(as in Karpathy's char-rnn) can be trained without downloading anything.

>>> corpus = load(max_chars=10_000)  # doctest: +SKIP
>>> ids = corpus.encode("def f():")  # doctest: +SKIP
>>> corpus.decode(ids)  # doctest: +SKIP
'def f():'
"""

from __future__ import annotations

import fnmatch
import os
import sysconfig
from functools import cached_property
from pathlib import Path

import numpy as np

from ._common import DatasetError, DatasetNotFoundError

#: Folders skipped when reading the standard library: installed packages and test suites.
EXCLUDED_DIRS = frozenset(
    {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}
)


class Corpus:
    """A string with its character vocabulary and the encode/decode maps.

    Attributes:
        text: the whole corpus.
        vocab: sorted list of the distinct characters; a character's id is its index here.
        files: the files the text was read from, in order (empty if built from a string).

    >>> c = Corpus("hello")
    >>> c.vocab
    ['e', 'h', 'l', 'o']
    >>> c.encode("hole").tolist()
    [1, 3, 2, 0]
    >>> c.decode([1, 0, 2, 2, 3])
    'hello'
    """

    def __init__(self, text: str, files: list[Path] | None = None):
        self.text = text
        self.files = list(files or [])
        self.vocab = sorted(set(text))
        # Code points in vocab order: sorting 1-character strings sorts by code point, so
        # this array is sorted and np.searchsorted maps characters to ids.
        self._codes = np.array([ord(ch) for ch in self.vocab], dtype=np.uint32)

    def __len__(self) -> int:
        return len(self.text)

    def __repr__(self) -> str:
        return f"Corpus({len(self.text)} characters, {len(self.vocab)} distinct)"

    @property
    def vocab_size(self) -> int:
        """Number of distinct characters."""
        return len(self.vocab)

    @cached_property
    def ids(self) -> np.ndarray:
        """The whole text encoded, computed once."""
        return self.encode(self.text)

    def encode(self, s: str) -> np.ndarray:
        """Character ids of ``s`` as an int64 array.

        Raises ``ValueError`` naming the first character (and its position) that is not in
        the vocabulary; there is no silent "unknown" id.
        """
        codes = np.frombuffer(s.encode("utf-32-le", "surrogatepass"), dtype="<u4")
        if not len(self._codes):
            if len(codes):
                raise ValueError("cannot encode characters with an empty vocabulary")
            return np.zeros(0, dtype=np.int64)
        ids = np.searchsorted(self._codes, codes)
        known = self._codes[np.minimum(ids, len(self._codes) - 1)] == codes
        if not known.all():
            pos = int(np.argmin(known))
            raise ValueError(
                f"character {s[pos]!r} (U+{ord(s[pos]):04X}) at position {pos} is not in "
                f"the corpus vocabulary of {len(self.vocab)} characters"
            )
        return ids.astype(np.int64)

    def decode(self, ids) -> str:
        """The string whose character ids are ``ids`` (any integer array-like)."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= len(self.vocab)):
            raise ValueError(
                f"ids must lie in [0, {len(self.vocab)}), got min {ids.min()}, max {ids.max()}"
            )
        return self._codes[ids].astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")


def stdlib_files(root: str | os.PathLike | None = None, pattern: str = "*.py") -> list[Path]:
    """The standard library's files matching ``pattern``, test suites and site-packages excluded.

    Sorted by path relative to ``root`` (default ``sysconfig.get_paths()['stdlib']``), so the
    order is the same on every machine with the same Python version.
    """
    root = Path(root or sysconfig.get_paths()["stdlib"])
    files = []
    for folder, subdirs, names in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in EXCLUDED_DIRS]
        files.extend(Path(folder) / name for name in fnmatch.filter(names, pattern))
    return sorted(files, key=lambda f: f.relative_to(root).as_posix())


def _files_under(folder: Path, pattern: str) -> list[Path]:
    """Files matching ``pattern`` below ``folder``, hidden ones skipped, sorted by path."""
    files = [
        f
        for f in folder.rglob(pattern)
        if f.is_file() and not any(part.startswith(".") for part in f.relative_to(folder).parts)
    ]
    return sorted(files, key=lambda f: f.relative_to(folder).as_posix())


def _read_text(files: list[Path], max_chars: int | None, errors: str) -> tuple[str, list[Path]]:
    """Concatenate the files' UTF-8 text, stopping once ``max_chars`` characters are read."""
    parts, used, total = [], [], 0
    for file in files:
        if max_chars is not None and total >= max_chars:
            break
        try:
            part = file.read_bytes().decode("utf-8", errors)
        except UnicodeDecodeError as err:
            raise DatasetError(f"{file}: not UTF-8 text ({err})") from err
        parts.append(part)
        used.append(file)
        total += len(part)
    text = "".join(parts)
    return (text if max_chars is None else text[:max_chars]), used


def load(
    path: str | os.PathLike | None = None,
    max_chars: int | None = None,
    pattern: str | None = None,
) -> Corpus:
    """Load a character corpus.

    Args:
        path: a text file, or a folder whose files matching ``pattern`` are read recursively
            (hidden files skipped). Default None: the standard library's ``*.py`` files (see
            :func:`stdlib_files`; undecodable bytes become U+FFFD there).
        max_chars: keep only the first ``max_chars`` characters (None: everything, about
            12 million characters for CPython 3.11's standard library).
        pattern: glob for folders; default ``"*.py"`` for the standard library, ``"*"`` for a
            folder you give.

    Files are concatenated as they are, in sorted path order. A file you give that is not
    UTF-8 raises :class:`DatasetError` naming it.

    >>> corpus = load(max_chars=100_000)  # doctest: +SKIP
    >>> len(corpus), corpus.vocab_size  # doctest: +SKIP
    (100000, 97)
    """
    if max_chars is not None and max_chars < 0:
        raise ValueError(f"max_chars must be >= 0, got {max_chars}")
    if path is None:
        files, errors = stdlib_files(pattern=pattern or "*.py"), "replace"
    else:
        path, errors = Path(path).expanduser(), "strict"
        if path.is_file():
            files = [path]
        elif path.is_dir():
            files = _files_under(path, pattern or "*")
        else:
            raise DatasetNotFoundError(f"{path}: no such text file or folder")
        if not files:
            raise DatasetNotFoundError(f"{path}: no files matching {pattern or '*'!r}")
    text, used = _read_text(files, max_chars, errors)
    return Corpus(text, used)
