"""The agent's side of the runtime: start a pod's shim, read its status, stop it, exec into it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from netplane.dataplane.runtime.cgroups import PodCgroup
from netplane.dataplane.runtime.linux import DEFAULT_CAPABILITIES
from netplane.dataplane.runtime.spec import CONTROL_DIR, STATUS_FILE, load, write_atomic

SHIM_MODULE = "netplane.dataplane.runtime.shim"


def _shim_argv(pod_dir: Path, python: str) -> list[str]:
    return [python, "-m", SHIM_MODULE, "--pod-dir", str(pod_dir), "--detach"]


def start_shim(pod_dir: Path, python: str = sys.executable) -> int:
    """Starts the shim detached from the caller; returns its PID once it is running."""
    done = subprocess.run(_shim_argv(pod_dir, python), capture_output=True, text=True, timeout=60, check=True,
                          cwd="/")
    return int(done.stdout.strip())


async def start_shim_async(pod_dir: Path, python: str = sys.executable) -> int:
    """`start_shim` for an event loop: waits for the shim's start-up (a Python process's) without holding one
    of the loop's worker threads, which a burst of pods would otherwise queue on."""
    argv = _shim_argv(pod_dir, python)
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, cwd="/")
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode or 0, argv, out, err)
    return int(out.decode().strip())


async def wait_for_status(pod_dir: Path, timeout: float = 30.0, interval: float = 0.05) -> dict[str, Any]:
    """Polls (on the event loop) until the shim has written its status file; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = read_status(pod_dir)
        if status is not None:
            return status
        await asyncio.sleep(interval)
    raise TimeoutError(f"pod {pod_dir}: no status within {timeout}s")


def read_status(pod_dir: Path) -> dict[str, Any] | None:
    try:
        status: dict[str, Any] = json.loads((pod_dir / STATUS_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return status


def shim_alive(pod_dir: Path, pid: int) -> bool:
    """True if ``pid`` is still the shim of ``pod_dir`` (not a reused PID)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return str(pod_dir.resolve()).encode() in cmdline and any(SHIM_MODULE.encode() == a for a in cmdline)


def wait_for(pod_dir: Path, predicate: Any, timeout: float = 30.0, interval: float = 0.05) -> dict[str, Any]:
    """Polls the status file until ``predicate(status)`` holds; raises TimeoutError with the last status."""
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = read_status(pod_dir)
        if status is not None and predicate(status):
            return status
        time.sleep(interval)
    raise TimeoutError(f"pod {pod_dir}: condition not met within {timeout}s; last status: {status}")


def terminate(pod_dir: Path, timeout: float = 60.0) -> dict[str, Any] | None:
    """SIGTERM to the shim, which stops the pod within its grace period; waits for the shim to finish."""
    status = read_status(pod_dir)
    if status is None:
        return None
    pid = int(status.get("shimPid") or 0)
    if pid and shim_alive(pod_dir, pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while shim_alive(pod_dir, pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    cleanup(pod_dir)
    return read_status(pod_dir)


def kill_container(pod_dir: Path, container: str, restart_count: int, grace: float) -> bool:
    """Asks the pod's shim to stop one container (SIGTERM, SIGKILL after ``grace`` seconds) and to start it
    again unless the pod's restartPolicy is Never: the kubelet's answer to a failed liveness or startup probe.

    The request names the instance (its restartCount), so a late or repeated one never stops the next
    instance. Returns False when no shim runs the pod.
    """
    status = read_status(pod_dir) or {}
    pid = int(status.get("shimPid") or 0)
    if not pid or not shim_alive(pod_dir, pid):
        return False
    directory = pod_dir / CONTROL_DIR
    directory.mkdir(exist_ok=True)
    request = {"container": container, "restartCount": restart_count, "grace": grace}
    write_atomic(directory / f"kill-{container}.json", json.dumps(request))
    os.kill(pid, signal.SIGUSR1)
    return True


def cleanup(pod_dir: Path) -> None:
    """Removes what a shim that died without finishing left behind (its cgroup)."""
    status = read_status(pod_dir) or {}
    pid = int(status.get("shimPid") or 0)
    if pid and shim_alive(pod_dir, pid):
        return
    spec = load(pod_dir)
    cgroup = PodCgroup(spec.cgroup_parent, spec.uid)
    cgroup.kill_all()
    cgroup.remove()


def exec_argv(status: dict[str, Any], command: list[str], container: str | None = None,
              capabilities: list[str] | None = None, env: dict[str, str] | None = None) -> list[str]:
    """The argv that runs ``command`` inside a running container (for `kubectl exec`).

    It targets the container's main process, so the command sees that container's
    volumes, and joins the pod's network, mount, UTS, IPC and PID namespaces, root and
    working directory. The caller runs it as a host process (and may put it into the
    pod's cgroups from ``status["cgroups"]``).
    """
    runs = [c for c in status.get("containerStatuses", []) if c.get("pid")]
    chosen = next((c for c in runs if container is None or c["name"] == container), None)
    if chosen is None:
        raise LookupError(f"container {container or '(default)'} is not running")
    caps = DEFAULT_CAPABILITIES if capabilities is None else capabilities
    # setpriv gives the command the container's capabilities rather than the agent's.
    bounding = ",".join(["-all", *(f"+{c.lower()}" for c in caps)])
    env_argv = ["env", "-i", *(f"{k}={v}" for k, v in env.items())] if env is not None else []
    return ["nsenter", "-t", str(chosen["pid"]), "-n", "-m", "-u", "-i", "-p", "-r", "-w", "--",
            "setpriv", f"--bounding-set={bounding}", "--", *env_argv, *command]
