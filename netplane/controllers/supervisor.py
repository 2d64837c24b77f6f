"""How `netplane up` runs `netplane controller` beside the API server, as a child process.

The child is a separate process (ARCHITECTURE.md §8): killing it never touches the API server,
which notices, logs it and starts a new one with growing backoff. The child dies with its parent
(PR_SET_PDEATHSIG on Linux) so a `kill -9` of `netplane up` leaves no orphan behind. Its output is
relayed line by line with a prefix; the relay goes through a thread with a bounded queue, so an
unread stdout (a pipe nobody drains) can only drop lines, never stall the API server's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import queue
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

log = logging.getLogger("netplane")

MIN_BACKOFF = 1.0
MAX_BACKOFF = 30.0
HEALTHY_AFTER = 60.0  # a child that ran this long resets the backoff
STOP_GRACE = 10.0


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class _LineRelay:
    def __init__(self, out: TextIO, prefix: str, capacity: int = 1000):
        self.out = out
        self.prefix = prefix
        self.dropped = 0
        self._lines: queue.Queue[str | None] = queue.Queue(capacity)
        self._thread = threading.Thread(target=self._write, name="controller output", daemon=True)
        self._thread.start()

    def put(self, line: str) -> None:
        try:
            self._lines.put_nowait(line)
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        with contextlib.suppress(queue.Full):
            self._lines.put_nowait(None)

    def _write(self) -> None:
        while (line := self._lines.get()) is not None:
            with contextlib.suppress(OSError, ValueError):
                self.out.write(f"{self.prefix}{line}\n")
                self.out.flush()


class ControllerProcess:
    def __init__(self, kubeconfig: Path, *, prefix: str = "[controller] ", out: TextIO | None = None,
                 extra_args: tuple[str, ...] = (), argv: tuple[str, ...] | None = None, name: str = "controller"):
        self.kubeconfig = kubeconfig.resolve()
        self.extra_args = extra_args
        # Node agents reuse this supervision with their own command line (`argv` after the interpreter).
        self.argv = argv if argv is not None else (
            "-m", "netplane.cli", "controller", "--kubeconfig", str(self.kubeconfig), *extra_args)
        self.name = name
        self.relay = _LineRelay(out or sys.stdout, prefix)
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.returncode is None else None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name=f"{self.name} process")

    async def _supervise(self) -> None:
        backoff = MIN_BACKOFF
        while not self._stopping:
            started = time.monotonic()
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent)
            await self._relay_output(self.process)
            code = await self.process.wait()
            if self._stopping:
                return
            if time.monotonic() - started > HEALTHY_AFTER:
                backoff = MIN_BACKOFF
            log.warning("the %s process exited (%s); starting it again in %.0fs", self.name,
                        f"signal {-code}" if code < 0 else f"code {code}", backoff)
            self.relay.put(f"exited ({'signal ' + str(-code) if code < 0 else 'code ' + str(code)}); "
                           f"restarting in {backoff:.0f}s")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
            self.restarts += 1

    async def _relay_output(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while True:
            try:
                line = await process.stdout.readline()
            except ValueError:  # a line longer than the stream's limit: skip what was buffered
                continue
            if not line:
                return
            self.relay.put(line.decode(errors="replace").rstrip())

    async def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL after a grace period) and stop restarting it."""
        self._stopping = True
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.relay.close()
