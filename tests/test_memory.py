"""edkeras.core.memory: freed memory held in the process (the CPU training speed-up)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from edkeras.core.memory import ENV_OFF, hold_freed_memory

# Allocate, touch and free a 64 MB block ten times; print the minor page faults per cycle.
_CYCLES = textwrap.dedent(
    """
    import ctypes, resource, sys
    from edkeras.core.memory import hold_freed_memory
    print(hold_freed_memory(), file=sys.stderr)
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    n = 64 << 20
    def cycle():
        p = libc.malloc(n)
        ctypes.memset(p, 1, n)
        libc.free(p)
    cycle()
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        cycle()
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) // 10)
    """
)

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.confstr("CS_GNU_LIBC_VERSION"), reason="glibc only"
)


def _faults_per_cycle(off: bool) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != ENV_OFF}
    if off:
        env[ENV_OFF] = "1"
    done = subprocess.run([sys.executable, "-c", _CYCLES], env=env, capture_output=True, text=True, check=True)
    return int(done.stdout.strip()), done.stderr.strip().splitlines()[-1]


@glibc
def test_held_memory_is_not_faulted_back_in_while_the_default_faults_every_page():
    held, said = _faults_per_cycle(off=False)
    assert said == "glibc: freed memory held"
    assert held < 100  # the block is reused from the heap
    returned, said = _faults_per_cycle(off=True)
    assert said.startswith("left to the C library") and ENV_OFF in said
    assert returned > 8000  # 64 MB in 4 kB pages (16,384), handed back and faulted in again each cycle


def test_hold_freed_memory_is_idempotent_and_says_what_it_did():
    first = hold_freed_memory()
    assert hold_freed_memory() == first
    assert first == "glibc: freed memory held" or first.startswith("left to the C library")
