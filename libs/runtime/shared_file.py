"""A small file mapped into the memory of every process of one platform.

``binome up --workers N`` runs the HTTP side in N processes on one host
(libs/runtime/workers.py). The few values they must agree on at every
request (rate-limit counters, the dev clock's offset) live in a file under
the platform's run directory that each process maps with ``mmap``: a read
is a memory access, an update a memory write under an exclusive ``flock``
of the file (two system calls, no round trip to PostgreSQL).

The lock is a ``flock`` (held per open file, so it also excludes the other
processes' threads) plus a ``threading.Lock`` (``flock`` does not exclude
the threads of the process holding it).
"""

from __future__ import annotations

import fcntl
import mmap
import os
import threading
from pathlib import Path


class SharedFile:
    """``size`` bytes of ``path``, mapped; created (zero-filled) if missing."""

    def __init__(self, path: Path, size: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(self._fd).st_size < size:
            os.ftruncate(self._fd, size)  # sparse: untouched pages take no memory
        self.map = mmap.mmap(self._fd, size)
        self._threads = threading.Lock()

    def locked(self) -> SharedFile:
        """The file as a lock: ``with shared.locked() as memory:`` holds the
        mapping exclusively for this thread of this process."""
        return self

    def __enter__(self) -> mmap.mmap:
        # Acquired here and released in __exit__, with no per-call state kept
        # on the instance: threads taking the lock at once never see each
        # other's context.
        self._threads.acquire()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        return self.map

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()

    def close(self) -> None:
        self.map.close()
        os.close(self._fd)
