"""DIR/audit.log: one JSON line per request, buffered in memory and appended by a worker thread.

Requests only append an encoded line to a list; a background task hands the batch to a thread
once a second (and on shutdown), so a slow disk delays the log, never a request. Past
``max_bytes`` the file is rotated to audit.log.1 (older ones shift up to ``backups``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 1.0
MAX_BYTES = 100 * 1024 * 1024
BACKUPS = 5
# Past this many unwritten lines (a stuck disk) new ones are dropped rather than eating memory.
MAX_PENDING = 200_000


def timestamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditLog:
    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS,
                 interval: float = FLUSH_INTERVAL):
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.interval = interval
        self._pending: list[bytes] = []
        self._dropped = 0
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def record(self, entry: dict[str, Any]) -> None:
        if len(self._pending) >= MAX_PENDING:
            self._dropped += 1
            return
        self._pending.append(orjson.dumps(entry) + b"\n")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, []
            if self._dropped:
                log.warning("audit log: dropped %d entries while the disk was behind", self._dropped)
                self._dropped = 0
            try:
                await asyncio.get_running_loop().run_in_executor(None, self._write, b"".join(batch))
            except OSError:
                log.exception("audit log: cannot write %s", self.path)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    def _write(self, data: bytes) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.path.stat().st_size + len(data) > self.max_bytes:
                self._rotate()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)

    def _rotate(self) -> None:
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self.backups > 0:
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
