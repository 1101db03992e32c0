"""chainrule.kernels.malloc: glibc keeps freed memory while the NumPy kernels run (measured in a
child process: no page faults for a block freed and made again), and leaves malloc alone when
told to, when the user set it, or where malloc is not glibc's."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from chainrule import kernels
from chainrule.kernels import malloc


@pytest.fixture
def fake_mallopt(monkeypatch):
    calls = []

    def mallopt(parameter, value):
        calls.append((parameter, value))
        return 1

    monkeypatch.setattr(malloc, "_kept", False)
    monkeypatch.setattr(malloc, "_glibc_mallopt", lambda: mallopt)
    for name in malloc._USER_SETTINGS + ("CHAINRULE_KEEP_FREED_MEMORY",):
        monkeypatch.delenv(name, raising=False)
    return calls


def test_sets_both_thresholds_once(fake_mallopt):
    assert malloc.keep_freed_memory()
    assert fake_mallopt == [(malloc.M_MMAP_THRESHOLD, 64 * 2**20),
                            (malloc.M_TRIM_THRESHOLD, 256 * 2**20)]
    assert malloc.keep_freed_memory()
    assert len(fake_mallopt) == 2


@pytest.mark.parametrize("variable, value", [("CHAINRULE_KEEP_FREED_MEMORY", "0"),
                                             ("MALLOC_TRIM_THRESHOLD_", "1000"),
                                             ("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")])
def test_leaves_malloc_alone_when_told_or_set_by_the_user(fake_mallopt, monkeypatch, variable,
                                                          value):
    monkeypatch.setenv(variable, value)
    assert not malloc.keep_freed_memory()
    assert fake_mallopt == []


def test_leaves_other_c_libraries_alone(fake_mallopt, monkeypatch):
    monkeypatch.setattr(malloc, "_glibc_mallopt", lambda: None)
    assert not malloc.keep_freed_memory()


def test_choosing_the_numpy_kernels_keeps_freed_memory(monkeypatch):
    chosen = []
    monkeypatch.setattr(malloc, "keep_freed_memory", lambda: chosen.append(True))
    previous = kernels.active()
    try:
        kernels.use("numpy")
        assert chosen == [True]
        if "numba" in kernels.available():
            kernels.use("numba")
            assert chosen == [True]
    finally:
        kernels.use(previous)


CHILD = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from chainrule import kernels
    kernels.use("numpy")
    faults = []
    for _ in range(4):  # 48 MB: above glibc's own largest threshold (32 MB), so mmap by default
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = np.ones(12 * 2**20, np.float32)
        del block
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(max(faults[1:]))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux") or malloc._glibc_mallopt() is None,
                    reason="glibc only")
@pytest.mark.parametrize("keep", ["1", "0"])
def test_a_block_made_again_is_not_faulted_in_again(keep):
    env = {name: value for name, value in os.environ.items()
           if name not in malloc._USER_SETTINGS}
    env["CHAINRULE_KEEP_FREED_MEMORY"] = keep
    result = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                            text=True, timeout=120, check=True)
    faults = int(result.stdout.split()[-1])
    fewest = 48 * 2**20 // (2 * 2**20)  # 48 MB in pages of 2 MB (transparent huge pages) or more
    if keep == "1":
        assert faults <= 2, faults  # the freed block was reused
    else:
        assert faults >= fewest // 2, faults  # mapped and faulted in afresh every time
