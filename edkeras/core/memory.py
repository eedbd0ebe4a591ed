"""Keep freed memory in the process while networks train, so that each step does not fault it back in.

TensorFlow on a CPU takes each step's activations and gradients (tens of MB for a batch of
64 three-plane events) from the C library's ``malloc`` and frees them at the end of the step.
glibc returns large freed blocks to the kernel (``munmap``, or trimming the top of a heap),
and the next step faults the same memory back in, page by page: measured on the 2-core
development machine, ≈ 95,000 page faults per step of the main job's network, the system
time close to the user time, and training at half speed (125 against 250 samples/s; which of
the two a process gets depended on the order of its first allocations).
:func:`hold_freed_memory` tells glibc to serve every block from its heaps and never hand freed
memory back (``mallopt(M_MMAP_MAX, 0)``, ``mallopt(M_TRIM_THRESHOLD, ∞)``): the faults drop
to a few hundred per step. The price: the process keeps its peak memory until it ends, which
a training process does anyway. ``benchmarks/fit_memory.py`` measures both settings.

Elsewhere (macOS, musl, Windows) this does nothing and says so in its return value.

Example:
    >>> from edkeras.core.memory import hold_freed_memory
    >>> hold_freed_memory()   # once, before training; repeated calls are harmless
    'glibc: freed memory held'
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["ENV_OFF", "hold_freed_memory"]

ENV_OFF = "EDKERAS_RETURN_FREED_MEMORY"
"""Set this environment variable to 1 to leave glibc's defaults alone (memory returned, slower steps)."""

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_NEVER = 2**31 - 1  # the largest value mallopt takes (an int)

_state: str | None = None


def hold_freed_memory() -> str:
    """Make glibc keep freed memory in the process (see the module doc); idempotent.

    Returns:
        What was done: ``glibc: freed memory held``, or why nothing was (not Linux, no glibc,
        turned off by ``EDKERAS_RETURN_FREED_MEMORY=1``, or ``mallopt`` refused).
    """
    global _state
    if _state is not None:
        return _state
    if os.environ.get(ENV_OFF, "").strip() not in ("", "0"):
        _state = f"left to the C library ({ENV_OFF} is set)"
        return _state
    if not sys.platform.startswith("linux"):
        _state = f"left to the C library (not Linux: {sys.platform})"
        return _state
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p  # absent from musl: AttributeError
        gnu = libc.gnu_get_libc_version()
    except (OSError, AttributeError):
        _state = "left to the C library (not glibc)"
        return _state
    ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, _NEVER) == 1
    _state = "glibc: freed memory held" if ok else f"left to the C library (glibc {gnu.decode()} refused mallopt)"
    return _state
