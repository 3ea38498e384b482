"""One writer per trace store: an exclusive advisory lock held for the recorder's life.

The lock is `fcntl.flock` on a small file inside the store (`.plastic-writer.lock`, which
Zarr ignores) holding the writer's pid. The kernel drops it when the holder's file is
closed or the process dies (SIGKILL included), so a killed writer never leaves a stale
lock. Readers never take it.
"""

from __future__ import annotations

import os
from pathlib import Path

from plastic.errors import TraceError

LOCK_NAME = ".plastic-writer.lock"


class WriterLock:
    """An exclusive lock on `store`; TraceError naming the holder's pid if already held."""

    def __init__(self, store: Path) -> None:
        import fcntl

        self.path = Path(store) / LOCK_NAME
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(self._fd)
            self.release()
            raise TraceError(
                f"{store} is being recorded by another process (pid {holder}); "
                "one writer per trace store: wait for it to finish or record elsewhere"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        """Drop the lock (the file stays: unlinking it would race with a new writer)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


def only_lock_file(path: Path) -> bool:
    """True for a directory that holds nothing but a writer's lock file (a killed start-up)."""
    return path.is_dir() and [p.name for p in path.iterdir()] in ([], [LOCK_NAME])


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"
