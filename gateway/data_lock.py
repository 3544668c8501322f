"""One gateway process per data directory: an exclusive ``flock`` on ``<dir>/gateway.lock``, held for life.

Two gateways on one data directory would each trust their own in-memory spend counters, and the second would
replay (and delete) the first one's write-ahead log and spill files. The lock is taken before anything touches the
directory; the file names the holder's PID for the message a second process prints. The kernel drops the lock
when the process dies, however it dies, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

__all__ = ["DataDirLocked", "lock_data_dir"]

LOCK_NAME = "gateway.lock"


class DataDirLocked(RuntimeError):
    """Another live process holds the data directory."""


def lock_data_dir(directory: Path) -> int:
    """Take the directory's lock (creating the directory) and return the descriptor that holds it: keep it open
    for as long as the process serves. Raises ``DataDirLocked`` naming the directory and the holder's PID."""
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise DataDirLocked(
            f"another gateway (PID {holder}) is using the data directory {directory}; "
            "one gateway process per data directory (give each its own `data.dir`)"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
