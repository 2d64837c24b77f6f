"""The stream backend for pods on this host: nsenter for exec, log files, setns for port-forward."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import shutil
import signal
import struct
import termios
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from pathlib import Path

from netplane.dataplane.streams import crilog, netns
from netplane.dataplane.streams.backend import STDERR, STDOUT, ExecOptions, LogOptions, PodRef, StreamError
from netplane.dataplane.streams.record import ContainerRecord, PodRecord, RecordError, load

CHUNK = 32 * 1024
# Bounded so that a slow client stops reading the process's pipes and the process blocks, instead
# of its output piling up in the API server.
QUEUE_DEPTH = 16
FOLLOW_POLL = 0.2
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def nsenter_command(pid: int, command: tuple[str, ...]) -> list[str]:
    """Every namespace of the container's process, as a runtime's exec joins them."""
    nsenter = shutil.which("nsenter") or "/usr/bin/nsenter"
    return [nsenter, "-t", str(pid), "-n", "-m", "-u", "-i", "-p", "--", *command]


def container_env(pid: int, tty: bool = False) -> dict[str, str]:
    """The container's own environment (its image's PATH, its env vars), not the caller's."""
    env: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            key, sep, value = item.partition(b"=")
            if sep and key:
                env[key.decode(errors="replace")] = value.decode(errors="replace")
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOME", "/root")
    if tty:
        env.setdefault("TERM", "xterm")
    return env


async def _ready(fd: int, add: Callable[..., object], remove: Callable[[int], object]) -> None:
    """Until the loop reports `fd` ready (`add`/`remove`: its add_reader/remove_reader or the writer pair)."""
    ready = asyncio.get_running_loop().create_future()
    add(fd, ready.set_result, None)
    try:
        await ready
    finally:
        remove(fd)


async def _read_fd(fd: int) -> bytes:
    """One read from a non-blocking descriptor; b"" at its end (EIO is how a pty reports it)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return os.read(fd, CHUNK)
        except BlockingIOError:
            pass
        except OSError as e:
            if e.errno == errno.EIO:
                return b""
            raise
        await _ready(fd, loop.add_reader, loop.remove_reader)


async def _write_fd(fd: int, data: bytes) -> None:
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
            continue
        except BlockingIOError:
            pass
        await _ready(fd, loop.add_writer, loop.remove_writer)


class ProcessSession:
    """An exec'd process: pipes, or one pty for stdin and all output when a TTY was asked for."""

    def __init__(self, proc: asyncio.subprocess.Process, pty_master: int | None):
        self.proc = proc
        self.master = pty_master
        self.queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue(QUEUE_DEPTH)
        sources: list[tuple[int, Callable[[], object]]] = []
        if pty_master is not None:
            master = pty_master
            sources.append((STDOUT, lambda: _read_fd(master)))
        else:
            for channel, stream in ((STDOUT, proc.stdout), (STDERR, proc.stderr)):
                if stream is not None:
                    sources.append((channel, lambda s=stream: s.read(CHUNK)))  # type: ignore[misc]
        self._pending = len(sources)
        self._tasks = [asyncio.create_task(self._pump(channel, read)) for channel, read in sources]
        if not sources:
            self.queue.put_nowait(None)

    async def _pump(self, channel: int, read: Callable[[], object]) -> None:
        try:
            while True:
                data = await read()  # type: ignore[misc]
                if not data:
                    break
                await self.queue.put((channel, data))
        except OSError:
            pass
        finally:
            self._pending -= 1
            if self._pending == 0:
                await self.queue.put(None)

    async def read(self) -> tuple[int, bytes] | None:
        return await self.queue.get()

    async def write_stdin(self, data: bytes) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            if self.master is not None:
                await _write_fd(self.master, data)
            elif self.proc.stdin is not None:
                self.proc.stdin.write(data)
                await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self.master is not None:
            # A terminal has no end of input of its own; ^D is what a user would type.
            await self.write_stdin(b"\x04")
        elif self.proc.stdin is not None:
            self.proc.stdin.close()

    def resize(self, width: int, height: int) -> None:
        if self.master is not None:
            _set_window_size(self.master, width, height)

    async def wait(self) -> int | None:
        code = await self.proc.wait()
        return 128 - code if code < 0 else code  # killed by a signal: the shell's convention

    async def terminate(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()
        for task in self._tasks:
            task.cancel()
        if self.master is not None:
            with contextlib.suppress(OSError):
                os.close(self.master)
            self.master = None


class AttachSession:
    """The container's own stdio: output followed from its log file, input into its stdin fifo."""

    def __init__(self, backend: LocalStreamBackend, pod: PodRef, container: ContainerRecord, path: Path,
                 stdin_fd: int | None, tty: bool):
        self.queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue(QUEUE_DEPTH)
        self.stdin_fd = stdin_fd
        self._terminal_pid = container.pid if tty else 0
        self._task = asyncio.create_task(self._follow(backend, pod, container.name, path, tty))

    async def _follow(self, backend: LocalStreamBackend, pod: PodRef, name: str, path: Path, tty: bool) -> None:
        try:
            with path.open("rb") as f:
                f.seek(0, os.SEEK_END)
                async for entry in _follow_entries(f, lambda: backend.container_alive(pod, name)):
                    await self.queue.put((STDOUT if tty or entry.stream == "stdout" else STDERR, entry.text))
        except OSError:
            pass
        finally:
            await self.queue.put(None)

    async def read(self) -> tuple[int, bytes] | None:
        return await self.queue.get()

    async def write_stdin(self, data: bytes) -> None:
        if self.stdin_fd is not None:
            with contextlib.suppress(OSError):
                await _write_fd(self.stdin_fd, data)

    async def close_stdin(self) -> None:
        # The shim sees the fifo's writer go: a stdinOnce container's input ends, another's waits for the
        # next attach.
        if self.stdin_fd is not None:
            os.close(self.stdin_fd)
            self.stdin_fd = None

    def resize(self, width: int, height: int) -> None:
        """The shim holds the terminal's master; the container's stdin is its other end, and a size set
        there is the terminal's size all the same (the kernel sends the container SIGWINCH)."""
        if not self._terminal_pid:
            return
        try:
            fd = os.open(f"/proc/{self._terminal_pid}/fd/0", os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return  # the container has exited
        try:
            if os.isatty(fd):  # not if the process has put something else on its stdin
                _set_window_size(fd, width, height)
        finally:
            os.close(fd)

    async def wait(self) -> int | None:
        await asyncio.shield(self._task)
        return None

    async def terminate(self) -> None:
        self._task.cancel()
        await self.close_stdin()


def _set_window_size(terminal: int, width: int, height: int) -> None:
    if width > 0 and height > 0:
        with contextlib.suppress(OSError):
            fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


async def _follow_entries(f: object, alive: Callable[[], bool]) -> AsyncIterator[crilog.Entry]:
    """Entries appended to an open log file until its container stops and the file is drained."""
    assembler = crilog.Assembler()
    rest = b""
    while True:
        chunk = f.read(CHUNK)  # type: ignore[attr-defined]
        if chunk:
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                entry = assembler.feed(line)
                if entry is not None:
                    yield entry
            continue
        if not alive():
            return
        await asyncio.sleep(FOLLOW_POLL)


class LocalStreamBackend:
    def __init__(self, pods_dir: Path):
        self.pods_dir = pods_dir

    def _record(self, pod: PodRef) -> PodRecord:
        return load(self.pods_dir, pod.uid)

    def _container(self, pod: PodRef, name: str) -> tuple[PodRecord, ContainerRecord]:
        try:
            record = self._record(pod)
        except RecordError:
            raise StreamError(f'container not found ("{name}")', 404, "NotFound") from None
        container = record.containers.get(name)
        if container is None or not container.alive:
            raise StreamError(f'container not found ("{name}")', 404, "NotFound")
        return record, container

    def container_alive(self, pod: PodRef, name: str) -> bool:
        try:
            container = self._record(pod).containers.get(name)
        except RecordError:
            return False
        return container is not None and container.alive

    async def exec(self, pod: PodRef, options: ExecOptions) -> ProcessSession:
        _, container = self._container(pod, options.container)
        argv = nsenter_command(container.pid, options.command)
        env = container_env(container.pid, options.tty)
        if options.tty:
            master, slave = os.openpty()
            os.set_blocking(master, False)
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
                    preexec_fn=_take_terminal)
            except OSError as e:
                os.close(master)
                raise StreamError(f"failed to exec in container: {e}", 500, "InternalError") from None
            finally:
                os.close(slave)
            return ProcessSession(proc, master)
        pipe, devnull = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=pipe if options.stdin else devnull, stdout=pipe if options.stdout else devnull,
                stderr=pipe if options.stderr else devnull, env=env, start_new_session=True)
        except OSError as e:
            raise StreamError(f"failed to exec in container: {e}", 500, "InternalError") from None
        return ProcessSession(proc, None)

    async def attach(self, pod: PodRef, options: ExecOptions) -> AttachSession:
        record, container = self._container(pod, options.container)
        stdin_fd = None
        if options.stdin and container.stdin:
            try:
                # Non-blocking open of a fifo for writing fails (ENXIO) without a reader: the
                # container's init process always holds the read end while it runs.
                stdin_fd = os.open(container.stdin, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as e:
                raise StreamError(f"failed to attach to container stdin: {e}", 500, "InternalError") from None
        path = record.log_path(container.name, container.restart_count)
        return AttachSession(self, pod, container, path, stdin_fd, container.tty)

    async def logs(self, pod: PodRef, options: LogOptions) -> AsyncGenerator[bytes, None]:
        name = options.container
        waiting = StreamError(f'container "{name}" in pod "{pod.name}" is waiting to start: ContainerCreating')
        try:
            record = self._record(pod)
        except RecordError:
            raise waiting from None
        container = record.containers.get(name)
        if container is None:
            raise waiting
        restart = container.restart_count - 1 if options.previous else container.restart_count
        path = record.log_path(name, restart)
        if options.previous and (restart < 0 or not path.exists()):
            raise StreamError(f'previous terminated container "{name}" in pod "{pod.name}" not found')
        try:
            f = path.open("rb")
        except FileNotFoundError:
            if not container.alive:
                raise waiting from None
            return
        with f:
            budget = options.limit_bytes
            existing = f.read()
            cut = existing.rfind(b"\n") + 1
            f.seek(cut)
            found = crilog.select(crilog.entries(existing[:cut].split(b"\n")), options.stream, options.since,
                                  options.tail_lines)
            for entry in found:
                data = crilog.render(entry, options.timestamps)
                if budget is not None:
                    data, budget = data[:budget], budget - len(data)
                yield data
                if budget is not None and budget <= 0:
                    return
            if not options.follow or options.previous:
                return
            async for entry in _follow_entries(f, lambda: self.container_alive(pod, name)):
                if not crilog.wanted(entry, options.stream, options.since):
                    continue
                data = crilog.render(entry, options.timestamps)
                if budget is not None:
                    data, budget = data[:budget], budget - len(data)
                yield data
                if budget is not None and budget <= 0:
                    return

    async def port_forward(self, pod: PodRef, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            record = self._record(pod)
        except RecordError:
            raise StreamError(f'pod "{pod.name}" has no running sandbox', 404, "NotFound") from None
        try:
            return await netns.open_connection(record.netns_path, port)
        except (OSError, TimeoutError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
            raise StreamError(f'failed to connect to localhost:{port} inside namespace of pod "{pod.name}": '
                              f"dial tcp4 127.0.0.1:{port}: connect: {reason.lower()}", 500,
                              "InternalError") from None


def _take_terminal() -> None:
    """In the child: make the pty (already its stdin) the controlling terminal of its new session."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
