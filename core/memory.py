"""Handing freed heap memory back to the operating system (glibc), after start-up's big temporaries.

Packing the weights to int8, building the novelty indexes and tokenizing leave many megabytes of
freed blocks inside glibc's heaps, which it keeps for reuse and which therefore still count as
the process's resident memory. `malloc_trim(0)` returns every free page of them. Elsewhere
(musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any


@functools.cache
def _libc() -> Any:
    # The symbols already loaded (CDLL(None)): ctypes.util.find_library would run ldconfig.
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return libc


def release_free_memory() -> bool:
    """Return freed heap pages to the system; whether glibc's malloc_trim ran."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
