"""One writer at a time on a SQLite file, handed over without sleeping.

SQLite serialises writers itself, but a writer that finds the database
locked sleeps in its busy handler for 1, 2, 5, 10... ms before it looks
again; with several workers committing every few milliseconds those sleeps
add up to most of the overhead. An exclusive ``flock`` on a file beside the
database queues the writers in the kernel instead, which wakes the next one
the moment the lock is released. It only orders writers on one machine,
which is all a SQLite file can serve anyway; SQLite's own locking still
guarantees correctness.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: SQLite's busy handler alone
    fcntl = None  # type: ignore[assignment]


class WriteLock:
    def __init__(self, path: str) -> None:
        self.path = path
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self._pid = -1

    def __getstate__(self) -> dict[str, str]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, str]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]

    def _file(self) -> int:
        # A forked child must not share the parent's open file description:
        # flock would then treat both as one holder.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            self._pid = os.getpid()
        return self._fd

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        if fcntl is None:
            yield
            return
        with self._thread_lock:
            fd = self._file()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
