"""glibc's allocator, told to keep less: freed heap pages handed back, fewer per-thread heaps.

Packing the weights to int8, building the novelty indexes and tokenizing leave many megabytes of
freed blocks inside glibc's heaps, which it keeps for reuse and which therefore still count as
the process's resident memory: `malloc_trim(0)` returns every free page of them. And glibc gives
each thread that allocates its own heap ("arena", up to 8 per core), each holding freed blocks
of its own; the bot's worker threads (generation, the novelty builder, to_thread) then keep tens
of MB between them. Two arenas serve the bot's two busy threads (the event loop, the generation
worker): measured under bench.bot, 253 -> 238 MB peak, the latencies unchanged.
Elsewhere (musl, macOS) these do nothing.
"""

from __future__ import annotations

import ctypes
import functools
import os
from typing import Any

M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)


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


def limit_arenas(count: int = 2) -> bool:
    """At most `count` malloc arenas from now on (call it before threads start); whether glibc
    took it. MALLOC_ARENA_MAX in the environment, where set, wins."""
    libc = _libc()
    if libc is None or os.environ.get("MALLOC_ARENA_MAX") or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(ctypes.c_int(M_ARENA_MAX), ctypes.c_int(count)))
