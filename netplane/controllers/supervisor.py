"""How `netplane up` runs its parts — the API server, `netplane controller`, the node agents — as
child processes.

Each child is a separate process (ARCHITECTURE.md §8): killing one never touches the others; `up`
notices, logs it and starts a new one with growing backoff. The child dies with its parent
(PR_SET_PDEATHSIG on Linux) so a `kill -9` of `netplane up` leaves no orphan behind. Its output is
relayed line by line with a prefix; the relay goes through a thread with a bounded queue, so an
unread stdout (a pipe nobody drains) can only drop lines, never stall `up`'s event loop.
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
READY_LINE = "ready"  # what a child that is waited for prints once it serves


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _how(code: int) -> str:
    return f"signal {-code}" if code < 0 else f"code {code}"


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
                 extra_args: tuple[str, ...] = (), argv: tuple[str, ...] | None = None, name: str = "controller",
                 pass_fds: tuple[int, ...] = (), wait_ready: bool = False):
        self.kubeconfig = kubeconfig.resolve()
        self.extra_args = extra_args
        # Node agents and the API server reuse this supervision with their own command line (`argv`
        # after the interpreter).
        self.argv = argv if argv is not None else (
            "-m", "netplane.cli", "controller", "--kubeconfig", str(self.kubeconfig), *extra_args)
        self.name = name
        # Descriptors every incarnation inherits (the API server's listening sockets, so a restarted
        # one serves on the same ports and connections made meanwhile wait in the backlog).
        self.pass_fds = pass_fds
        # With `wait_ready`, a child is ready once it prints READY_LINE; one that exits before it ever
        # did is not restarted (it cannot start at all: a bad data directory, not a crash).
        self.wait_for_ready = wait_ready
        self._ready = asyncio.Event()
        self._failed = asyncio.Event()
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

    async def wait_ready(self) -> bool:
        """True once the child printed READY_LINE, False if its first incarnation exited before."""
        ready, failed = (asyncio.ensure_future(e.wait()) for e in (self._ready, self._failed))
        await asyncio.wait((ready, failed), return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        failed.cancel()
        return self._ready.is_set()

    async def _supervise(self) -> None:
        backoff = MIN_BACKOFF
        while not self._stopping:
            started = time.monotonic()
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent,
                pass_fds=self.pass_fds)
            await self._relay_output(self.process)
            code = await self.process.wait()
            if self._stopping:
                return
            if self.wait_for_ready and not self._ready.is_set():
                self.relay.put(f"exited ({_how(code)}) before it was ready")
                self._failed.set()
                return
            if time.monotonic() - started > HEALTHY_AFTER:
                backoff = MIN_BACKOFF
            log.warning("the %s process exited (%s); starting it again in %.0fs", self.name, _how(code), backoff)
            self.relay.put(f"exited ({_how(code)}); restarting in {backoff:.0f}s")
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
            text = line.decode(errors="replace").rstrip()
            if self.wait_for_ready and text == READY_LINE:
                self._ready.set()
            self.relay.put(text)

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
