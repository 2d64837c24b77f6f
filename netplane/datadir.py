"""The data directory: its layout and format version."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

FORMAT_VERSION = 1
FORMAT_FILE = "format.json"
STORE_LOCK = "store.lock"

# Migrations from version N to N+1, applied in order when a newer netplane opens an older dir.
MIGRATIONS: dict[int, Callable[[Path], None]] = {}


class DataDirError(Exception):
    pass


def prepare(path: Path) -> Path:
    """Create or open ``path``, migrating an older format and refusing a newer one."""
    path.mkdir(parents=True, exist_ok=True)
    marker = path / FORMAT_FILE
    if not marker.exists():
        if any(p.name not in ("lock", STORE_LOCK) for p in path.iterdir()):
            raise DataDirError(f"{path} is not a netplane data directory (no {FORMAT_FILE}) and is not empty")
        marker.write_text(json.dumps({"format": FORMAT_VERSION}) + "\n")
        return path
    try:
        found = int(json.loads(marker.read_text())["format"])
    except (ValueError, KeyError, TypeError) as e:
        raise DataDirError(f"{marker} is unreadable: {e}") from None
    if found > FORMAT_VERSION:
        raise DataDirError(f"{path} was written by a newer netplane (data format {found}; this netplane "
                           f"understands up to {FORMAT_VERSION}). Upgrade netplane to open it.")
    while found < FORMAT_VERSION:
        MIGRATIONS[found](path)
        found += 1
        marker.write_text(json.dumps({"format": found}) + "\n")
    return path


def hold_lock(path: Path, name: str = "lock", wait: float = 0.0) -> int:
    """Take the data directory (``lock``, held by `netplane up`) or a part of it (``store.lock``, held
    by the API server process, the only one that opens the store) for this process; another holder
    is refused, after waiting up to ``wait`` seconds for it to let go.

    The returned descriptor must stay open for as long as the directory is in use; the
    kernel drops the lock when the process ends, however it ends.
    """
    import fcntl
    import os
    import time

    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / name, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise DataDirError(f"{path} is in use by another netplane process") from None
            time.sleep(0.1)
