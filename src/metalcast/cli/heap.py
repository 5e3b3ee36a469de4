"""The server process's C heap: few malloc arenas, and free memory given back.

Under a steady workload (provision verbs, detail reads of 1,000 nodes) the
Python objects of the all-in-one server stay flat (tracemalloc), but its RSS grew
in steps and stayed up: glibc's malloc gives each new thread an arena of its own,
up to eight per core, and the API's worker threads, the conductor's task threads and
SQLite's connections each leave freed memory behind in theirs, which glibc keeps.
So the server limits malloc to :data:`ARENAS` arenas (unless the operator set
``MALLOC_ARENA_MAX``) and gives free heap memory back every :data:`TRIM_INTERVAL`
seconds (``malloc_trim``).  Nothing happens where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading

_log = logging.getLogger(__name__)

#: malloc arenas the server's threads share (glibc's default: 8 per core)
ARENAS = 2
#: seconds between two returns of free heap memory to the system
TRIM_INTERVAL = 10.0
#: mallopt's parameter for the number of arenas (glibc's M_ARENA_MAX)
_M_ARENA_MAX = -8


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None
    return libc


def tame(stop: threading.Event) -> bool:
    """Limit malloc's arenas (call before the server starts its threads) and trim
    the heap every :data:`TRIM_INTERVAL` seconds until ``stop`` is set.  Returns
    False where there is no glibc to ask."""
    libc = _glibc()
    if libc is None:
        return False
    if "MALLOC_ARENA_MAX" not in os.environ:
        libc.mallopt(_M_ARENA_MAX, ARENAS)

    def trim() -> None:
        while not stop.wait(TRIM_INTERVAL):
            libc.malloc_trim(0)

    threading.Thread(target=trim, name="heap-trim", daemon=True).start()
    _log.debug("malloc: %s arenas, trimmed every %.0f s", ARENAS, TRIM_INTERVAL)
    return True
