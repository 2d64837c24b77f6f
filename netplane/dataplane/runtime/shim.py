"""The per-pod supervisor: ``python -m netplane.dataplane.runtime.shim --pod-dir DIR``.

Process tree of one pod (host PIDs; the pod's PID namespace numbers pause as 1)::

    shim  (own session, pod network namespace, host mount namespace, child subreaper)
    ├── pause       PID 1 of the pod: owns the pod's mount/UTS/IPC namespaces, reaps orphans
    ├── container   joins pause's namespaces (and its own mount namespace for volumes)
    └── container   ...

The shim stays in the host's mount namespace so that it can keep writing logs and the
status file in the pod directory, which the pod itself cannot see. It reads only
``spec.json`` and writes only ``status.json`` and ``logs/``, so the agent that started
it may die and come back: the shim does not notice. The one request it takes while it
runs comes the same way: on SIGUSR1 it reads ``control/kill-<container>.json``
(`client.kill_container`) and stops that container instance so that it is restarted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import signal
import sys
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netplane.dataplane.runtime import criolog, linux, sandbox
from netplane.dataplane.runtime.cgroups import PodCgroup, pod_limits
from netplane.dataplane.runtime.spec import CONTROL_DIR, STATUS_FILE, ContainerSpec, PodRuntimeSpec, load, write_atomic

LOG_DIR = "logs"
STAGING_DIR = "rootfs"
STDIN_DIR = "stdin"


def log_path(pod_dir: Path, container: str, restart_count: int) -> Path:
    """The kubelet's layout: one file per container start, named by restart count."""
    return pod_dir / LOG_DIR / container / f"{restart_count}.log"


def stdin_path(pod_dir: Path, container: str) -> Path:
    """The fifo `kubectl attach -i` writes a container's input into (the streams record points at it)."""
    return pod_dir / STDIN_DIR / container


class StdinRelay:
    """Copies what attached clients write into a container's fifo to its stdin (a pipe or the pty's master).

    The shim holds the fifo's read end, so a client can open it whenever the container runs, and the
    container's own stdin never sees the fifo: nobody attached is not an end of input. When the last
    client detaches the fifo reads EOF: with stdinOnce the container's stdin is closed (a pipe's
    reader sees EOF), otherwise the fifo is opened again for the next client. Input is not read from
    the fifo while the container does not take it, so a client's writes wait instead of the shim.
    """

    def __init__(self, fifo: Path, target: int, once: bool) -> None:
        fifo.parent.mkdir(exist_ok=True)
        if not fifo.exists():
            os.mkfifo(fifo, 0o600)
        self.fifo, self.target, self.once = fifo, target, once
        self.loop = asyncio.get_running_loop()
        self.pending = b""
        os.set_blocking(target, False)
        self.fd: int | None = None
        self._open()

    def _open(self) -> None:
        self.fd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self.loop.add_reader(self.fd, self._readable)

    def _close_fifo(self) -> None:
        if self.fd is not None:
            self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = None

    def _readable(self) -> None:
        assert self.fd is not None
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.pending = data
            self._flush()
            return
        self._close_fifo()
        if self.once:
            self.close()
        else:
            self._open()

    def _flush(self) -> None:
        while self.pending and self.target >= 0:
            try:
                written = os.write(self.target, self.pending)
            except BlockingIOError:
                if self.fd is not None:
                    self.loop.remove_reader(self.fd)
                self.loop.add_writer(self.target, self._writable)
                return
            except OSError:
                self.pending = b""  # the container is gone; its input with it
                return
            self.pending = self.pending[written:]

    def _writable(self) -> None:
        self.loop.remove_writer(self.target)
        self._flush()
        if not self.pending and self.fd is not None:
            self.loop.add_reader(self.fd, self._readable)

    def close(self) -> None:
        self._close_fifo()
        if self.target >= 0:
            self.loop.remove_writer(self.target)
            os.close(self.target)
            self.target = -1


def exit_code(wait_status: int) -> int:
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code  # killed by signal N → 128+N, as a shell reports it


def next_backoff(current: float, ran_for: float, initial: float, maximum: float, reset_after: float) -> float:
    """The kubelet's crash back-off: doubling up to a cap, forgiven after a long enough run."""
    if ran_for >= reset_after:
        return initial
    return min(current * 2, maximum)


def should_restart(policy: str, code: int, init: bool, killed: bool = False) -> bool:
    """``killed``: stopped on the agent's request (a failed probe), which restarts it whatever the exit code."""
    if policy == "Never":
        return False
    if init:  # init containers must succeed once; Always and OnFailure both retry them
        return code != 0
    return policy == "Always" or code != 0 or killed


def rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


@dataclass
class Run:
    spec: ContainerSpec
    init: bool
    restart_count: int = 0
    pid: int | None = None
    state: dict[str, Any] = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict[str, Any] = field(default_factory=dict)
    done: bool = False  # terminated and will not run again
    killed: bool = False  # this instance was stopped on the agent's request

    def status(self, pod_dir: Path) -> dict[str, Any]:
        return {"name": self.spec.name, "image": self.spec.image, "state": self.state, "lastState": self.last_state,
                "restartCount": self.restart_count, "started": "running" in self.state,
                "ready": "running" in self.state, "pid": self.pid,
                "logPath": str(log_path(pod_dir, self.spec.name, self.restart_count)),
                "stdin": str(stdin_path(pod_dir, self.spec.name)) if self.spec.stdin else "", "tty": self.spec.tty}


class Shim:
    def __init__(self, spec: PodRuntimeSpec, pod_dir: Path, cgroup: PodCgroup, pause_pid: int) -> None:
        self.spec, self.pod_dir, self.cgroup, self.pause_pid = spec, pod_dir, cgroup, pause_pid
        self.inits = [Run(c, True) for c in spec.init_containers]
        self.apps = [Run(c, False) for c in spec.containers]
        # Opened now, while /proc/<pause> is certainly pause: containers setns() through them.
        self.ns_fds = {flag: os.open(f"/proc/{pause_pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
                       for name, flag in (("ipc", linux.CLONE_NEWIPC), ("uts", linux.CLONE_NEWUTS),
                                          ("mnt", linux.CLONE_NEWNS))}
        self.exits: dict[int, asyncio.Future[int]] = {}
        self.unclaimed: dict[int, int] = {}
        self.terminating = asyncio.Event()
        self.message = ""
        self.phase = "Pending"
        self.finished = False

    # -- status -------------------------------------------------------------------------
    def compute_phase(self) -> str:
        if any(r.done and "terminated" in r.state and r.state["terminated"]["exitCode"] != 0 for r in self.inits):
            return "Failed"
        if not all(r.done for r in self.inits):
            return "Pending"
        if all(r.done for r in self.apps):
            codes = [r.state["terminated"]["exitCode"] for r in self.apps if "terminated" in r.state]
            return "Succeeded" if codes and all(c == 0 for c in codes) else "Failed"
        return "Running" if any(r.pid is not None or r.restart_count for r in self.apps) else "Pending"

    def write_status(self) -> None:
        if not self.finished:
            self.phase = self.compute_phase()
        doc = {
            "uid": self.spec.uid, "phase": self.phase, "message": self.message, "shimPid": os.getpid(),
            "pausePid": self.pause_pid, "hostname": self.spec.hostname, "terminating": self.terminating.is_set(),
            "shimExited": self.finished, "cgroups": [str(p) for p in self.cgroup.paths.values()],
            "updatedAt": criolog.timestamp(),
            "initContainerStatuses": [r.status(self.pod_dir) for r in self.inits],
            "containerStatuses": [r.status(self.pod_dir) for r in self.apps],
        }
        write_atomic(self.pod_dir / STATUS_FILE, json.dumps(doc, indent=1))

    # -- children -----------------------------------------------------------------------
    def on_sigchld(self) -> None:
        while True:
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.pause_pid:
                self.pause_pid_exited()
            future = self.exits.pop(pid, None)
            if future is None:
                self.unclaimed[pid] = wait_status  # reparented to us as subreaper, or not yet registered
            elif not future.done():
                future.set_result(wait_status)

    def pause_pid_exited(self) -> None:
        # The PID namespace is gone with its init; nothing can run in the pod any more.
        if not self.terminating.is_set():
            self.message = "the pod's PID 1 (pause) exited"
            self.terminating.set()

    def on_control(self) -> None:
        """SIGUSR1: the agent left requests in the control directory."""
        directory = self.pod_dir / CONTROL_DIR
        for path in sorted(directory.glob("kill-*.json")) if directory.is_dir() else []:
            try:
                request = json.loads(path.read_text())
                path.unlink()
            except (OSError, ValueError):
                continue
            run = next((r for r in self.apps if r.spec.name == request.get("container")
                        and r.restart_count == request.get("restartCount") and r.pid is not None), None)
            if run is not None and not self.terminating.is_set():
                self.kill(run, float(request.get("grace") or 0))

    def kill(self, run: Run, grace: float) -> None:
        """SIGTERM to the container's main process, SIGKILL to its process group after the grace period;
        `keep` then restarts it as `should_restart` says for a killed container."""
        pid = run.pid
        assert pid is not None
        run.killed = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)

        def force() -> None:
            if run.pid != pid:
                return  # it has exited (and may have been restarted as another process)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # what it started too: it is its own group leader (setsid)

        asyncio.get_running_loop().call_later(grace, force)

    def _child(self, run: Run, stdio: tuple[int, int, int], report_w: int) -> None:
        """In the forked child: enter the pod, mount volumes, exec. Never returns."""
        try:
            signal.set_wakeup_fd(-1)  # the shim's event loop must not hear the child's signals
            for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)  # Python ignores SIGPIPE; an exec'd program must not inherit that
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            os.setsid()
            self.cgroup.join()
            # Volume sources are host paths the pod's mount namespace hides; hold them open.
            sources = [linux.clone_tree(m.source) for m in run.spec.mounts]
            source_is_dir = [os.path.isdir(m.source) for m in run.spec.mounts]
            for flag, fd in self.ns_fds.items():
                linux.setns(fd, flag)
            if run.spec.mounts:
                linux.unshare(linux.CLONE_NEWNS)  # this container's volumes are its own
                for m, fd, is_dir in zip(run.spec.mounts, sources, source_is_dir, strict=True):
                    if not os.path.lexists(m.target):
                        if is_dir:
                            os.makedirs(m.target, exist_ok=True)
                        else:
                            os.makedirs(os.path.dirname(m.target), exist_ok=True)
                            open(m.target, "a").close()  # creates the mount point
                    linux.attach_tree(fd, m.target)
                    if m.read_only:
                        linux.mount(None, m.target, None, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY)
            os.chdir(run.spec.working_dir or "/")
            # Last, since the steps above need CAP_SYS_ADMIN: without it a container can
            # neither unmount what hides the data directory nor leave its namespaces.
            linux.limit_capabilities(set(run.spec.capabilities))
            for target, fd in enumerate(stdio):
                os.dup2(fd, target)
            if run.spec.tty:
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # the pty is the container's controlling terminal
            os.execvpe(run.spec.argv[0], run.spec.argv, run.spec.env)
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.write(report_w, f"{run.spec.argv[0] if run.spec.argv else '?'}: {e}".encode())
        os._exit(127)

    async def start_and_wait(self, run: Run) -> tuple[int, str, str]:
        """Runs one instance of a container; returns (exit code, reason, message)."""
        path = log_path(self.pod_dir, run.spec.name, run.restart_count)
        path.parent.mkdir(parents=True, exist_ok=True)
        log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        stdio, outputs, stdin_target = self._stdio(run)
        report_r, report_w = os.pipe()
        oom_before = self.cgroup.oom_kills()
        started = time.time()
        pid = os.fork()
        if pid == 0:
            self._child(run, stdio, report_w)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        if pid in self.unclaimed:
            future.set_result(self.unclaimed.pop(pid))
        else:
            self.exits[pid] = future
        for fd in {*stdio, report_w}:
            os.close(fd)
        self._attach_log(log_fd, outputs)
        relay = StdinRelay(stdin_path(self.pod_dir, run.spec.name), stdin_target, run.spec.stdin_once) \
            if stdin_target is not None else None
        try:
            return await self._run_instance(run, pid, future, report_r, oom_before, started)
        finally:
            if relay is not None:
                relay.close()

    def _stdio(self, run: Run) -> tuple[tuple[int, int, int], dict[int, str], int | None]:
        """The child's fds 0-2, the shim's ends that feed the log (fd → stream), and where its input goes.

        A TTY is one pty for all three, its output logged as stdout (the kubelet's way); without
        `stdin` the container reads /dev/null.
        """
        if run.spec.tty:
            master, slave = os.openpty()
            return (slave, slave, slave), {master: "stdout"}, os.dup(master)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        outputs = {out_r: "stdout", err_r: "stderr"}
        if run.spec.stdin:
            in_r, in_w = os.pipe()
            return (in_r, out_w, err_w), outputs, in_w
        return (os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC), out_w, err_w), outputs, None

    async def _run_instance(self, run: Run, pid: int, future: asyncio.Future[int], report_r: int, oom_before: int,
                            started: float) -> tuple[int, str, str]:
        # EOF as soon as the child execs (the pipe is close-on-exec), or its error report.
        report = await _read_async(report_r)
        if report:
            await future
            run.pid = None
            finished = time.time()
            run.state = {"terminated": {"exitCode": 128, "reason": "StartError", "message": report,
                                        "startedAt": rfc3339(started), "finishedAt": rfc3339(finished)}}
            self.write_status()
            return 128, "StartError", report
        run.pid = pid
        run.state = {"running": {"startedAt": rfc3339(started)}}
        self.write_status()
        wait_status = await future
        finished = time.time()
        code = exit_code(wait_status)
        if os.WIFSIGNALED(wait_status) and os.WTERMSIG(wait_status) == signal.SIGKILL \
                and self.cgroup.oom_kills() > oom_before:
            reason = "OOMKilled"
        else:
            reason = "Completed" if code == 0 else "Error"
        run.pid = None
        run.state = {"terminated": {"exitCode": code, "reason": reason, "startedAt": rfc3339(started),
                                    "finishedAt": rfc3339(finished)}}
        self.write_status()
        return code, reason, ""

    def _attach_log(self, log_fd: int, outputs: dict[int, str]) -> None:
        """Copies the output pipes (or the pty's master) into the log file until all are closed.

        They may outlive the container's main process (a background child still
        writing), so they are read to EOF independently of the exit. A pty's master reads
        EIO, not EOF, once no process holds the terminal: an end too.
        """
        loop = asyncio.get_running_loop()
        open_fds = set(outputs)
        streams = {fd: criolog.StreamLog(log_fd, stream) for fd, stream in outputs.items()}

        def readable(fd: int) -> None:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if data:
                streams[fd].feed(data)
                return
            loop.remove_reader(fd)
            streams[fd].close()
            os.close(fd)
            open_fds.discard(fd)
            if not open_fds:
                os.close(log_fd)

        for fd in outputs:
            os.set_blocking(fd, False)
            loop.add_reader(fd, readable, fd)

    async def keep(self, run: Run) -> int:
        """Runs a container, restarting it as the policy says; returns its last exit code."""
        backoff = self.spec.backoff_initial
        while True:
            started = time.monotonic()
            code, _reason, _ = await self.start_and_wait(run)
            killed, run.killed = run.killed, False
            if self.terminating.is_set() or not should_restart(self.spec.restart_policy, code, run.init, killed):
                run.done = True
                self.write_status()
                return code
            delay = next_backoff(backoff, time.monotonic() - started, self.spec.backoff_initial,
                                 self.spec.backoff_max, self.spec.backoff_reset) if run.restart_count else backoff
            backoff = delay
            run.last_state = run.state
            run.state = {"waiting": {"reason": "CrashLoopBackOff",
                                     "message": f"back-off {delay:g}s restarting failed container={run.spec.name}"}}
            self.write_status()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.terminating.wait(), timeout=delay)
            if self.terminating.is_set():
                run.state, run.last_state = run.last_state, {}
                run.done = True
                self.write_status()
                return code
            run.restart_count += 1

    async def run_pod(self) -> None:
        for run in self.inits:
            if self.terminating.is_set():
                return
            if await self.keep(run) != 0:
                self.message = f"init container {run.spec.name} failed"
                self.write_status()
                return
        self.write_status()
        await asyncio.gather(*(self.keep(run) for run in self.apps))

    async def shutdown(self, work: asyncio.Task[None]) -> None:
        """SIGTERM to every container's main process, SIGKILL to the whole pod after the grace period."""
        self.write_status()
        running = [r for r in (*self.inits, *self.apps) if r.pid is not None]
        for run in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(run.pid, signal.SIGTERM)  # type: ignore[arg-type]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(work), timeout=self.spec.grace_period)
        # Killing PID 1 makes the kernel kill everything else in the PID namespace; the
        # cgroup sweep then catches any process that entered the pod from outside (exec).
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pause_pid, signal.SIGKILL)
        self.cgroup.kill_all()  # blocking, but only briefly: nothing is left that could resist SIGKILL
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(work, timeout=5)

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGCHLD, self.on_sigchld)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.terminating.set)
        loop.add_signal_handler(signal.SIGUSR1, self.on_control)
        self.on_sigchld()  # pause may already have gone
        self.write_status()
        work = asyncio.create_task(self.run_pod())
        await self.terminating.wait()
        await self.shutdown(work)
        self.cgroup.remove()
        self.finished = True
        self.phase = self.compute_phase()
        self.write_status()


def _read_all(fd: int) -> str:
    chunks = []
    try:
        while chunk := os.read(fd, 4096):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode(errors="replace")


async def _read_async(fd: int) -> str:
    """Reads a pipe to EOF without a thread: the shim forks, and must stay single-threaded."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    chunks: list[bytes] = []

    def readable() -> None:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            return
        if chunk:
            chunks.append(chunk)
        elif not done.done():
            done.set_result(None)

    os.set_blocking(fd, False)
    loop.add_reader(fd, readable)
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return b"".join(chunks).decode(errors="replace")


def _fail(pod_dir: Path, spec: PodRuntimeSpec, message: str) -> None:
    write_atomic(pod_dir / STATUS_FILE, json.dumps({"uid": spec.uid, "phase": "Failed", "message": message,
                                                    "shimPid": os.getpid(), "shimExited": True,
                                                    "containerStatuses": [], "initContainerStatuses": []}))


def run(pod_dir: Path) -> int:
    spec = load(pod_dir)
    # Processes that double-fork out of the pod's PID namespace (exec'd helpers) come
    # back to the shim rather than to the host's init, so they are reaped and counted.
    linux.set_child_subreaper()
    if spec.netns:
        linux.setns_path(spec.netns, linux.CLONE_NEWNET)
    cgroup = PodCgroup(spec.cgroup_parent, spec.uid)
    try:
        cgroup.create(pod_limits(spec))
    except OSError as e:
        _fail(pod_dir, spec, f"cgroup: {e}")
        return 1
    # Children created from here on live in the pod's PID namespace; the first is its PID 1.
    linux.unshare(linux.CLONE_NEWPID)
    ready_r, ready_w = os.pipe()
    pause_pid = os.fork()
    if pause_pid == 0:
        os.close(ready_r)
        cgroup.join()
        sandbox.pause(ready_w, spec, pod_dir / STAGING_DIR)
    os.close(ready_w)
    answer = _read_all(ready_r)
    if answer != "ok":
        with contextlib.suppress(ProcessLookupError):
            os.kill(pause_pid, signal.SIGKILL)
        os.waitpid(pause_pid, 0)
        cgroup.kill_all()
        cgroup.remove()
        _fail(pod_dir, spec, answer or "the pod sandbox exited during setup")
        return 1
    shim = Shim(spec, pod_dir, cgroup, pause_pid)
    asyncio.run(shim.main())
    return 0


def detach(pod_dir: Path) -> None:
    """Continues in a grandchild in its own session; the caller gets its PID on stdout and exits.

    The agent waits only for this short-lived process, so the shim is never the agent's
    zombie and survives the agent: it is reparented to init (or the nearest subreaper).
    """
    pid = os.fork()
    if pid:
        print(pid, flush=True)
        os._exit(0)
    os.setsid()
    os.chdir("/")
    devnull = os.open("/dev/null", os.O_RDWR)
    log = os.open(pod_dir / "shim.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(log, 2)
    os.close(devnull)
    os.close(log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netplane-pod-shim", description=__doc__.splitlines()[0])
    parser.add_argument("--pod-dir", required=True, type=Path, help="directory holding spec.json")
    parser.add_argument("--detach", action="store_true", help="print the shim's PID and return at once")
    args = parser.parse_args(argv)
    pod_dir = args.pod_dir.resolve()
    if args.detach:
        detach(pod_dir)
    try:
        return run(pod_dir)
    except Exception as e:
        print(f"pod shim for {pod_dir}: {e}", file=sys.stderr)
        with contextlib.suppress(Exception):
            _fail(pod_dir, load(pod_dir), str(e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
