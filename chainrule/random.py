"""One seeded random generator for the whole library.

Everything random in chainrule (initializers, dropout masks, ``rand``/``randn``, shuffling when
no explicit seed is given) draws from the single :class:`numpy.random.Generator` returned by
:func:`get_generator`. :func:`manual_seed` replaces it, so one call makes a run reproducible.
"""

from __future__ import annotations

import contextlib

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed chainrule's generator and return it.

    >>> g = manual_seed(0); a = g.random(); g = manual_seed(0); a == g.random()
    True
    """
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def get_generator() -> np.random.Generator:
    """The generator every random operation in chainrule draws from."""
    return _generator


@contextlib.contextmanager
def using(generator: np.random.Generator):
    """Inside the block, everything random draws from ``generator``; on leaving, chainrule's
    own generator is put back, its stream untouched (a seeded side computation such as
    ``predict_mc(seed=...)`` does not change what the run draws next).

    >>> before = get_generator()
    >>> with using(np.random.default_rng(0)):
    ...     get_generator() is before
    False
    >>> get_generator() is before
    True
    """
    global _generator
    previous = _generator
    _generator = generator
    try:
        yield generator
    finally:
        _generator = previous


def child_generator(seed: int | None = None) -> np.random.Generator:
    """A generator of its own: seeded from ``seed`` if given, else drawn from the global one."""
    if seed is not None:
        return np.random.default_rng(seed)
    return np.random.default_rng(_generator.integers(2**63))
