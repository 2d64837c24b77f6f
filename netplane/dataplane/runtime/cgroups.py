"""One cgroup (v1) per pod, so that termination reaches every process of the pod.

Enforced from the Pod's resources (cgroup v1 controllers as mounted on this machine):
- ``memory``: the sum of the containers' ``limits.memory`` becomes
  ``memory.limit_in_bytes`` — only when every container has one, as the kubelet does
  for a pod-level cgroup (one unlimited container makes the pod unlimited);
- ``cpu``: the sum of ``requests.cpu`` (a limit stands in for a missing request)
  becomes ``cpu.shares`` (1000m → 1024, minimum 2), and the sum of ``limits.cpu``
  becomes a CFS quota (``cpu.cfs_quota_us`` over a 100 ms period) when every
  container has one;
- ``pids``: no Kubernetes field; used to list the pod's processes, never limited.
Init containers run alone, so the pod gets the larger of their largest value and the
sum over the app containers (Kubernetes' "effective request").
Not enforced: ephemeral-storage, hugepages, extended resources.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from netplane.dataplane.runtime.spec import ContainerSpec, PodRuntimeSpec

ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "cpu", "pids")
CFS_PERIOD_US = 100_000


@dataclass(frozen=True)
class Limits:
    memory: int | None
    cpu_shares: int | None
    cpu_quota_us: int | None


def _effective(spec: PodRuntimeSpec, value: str) -> int | None:
    def total(cs: list[ContainerSpec]) -> int | None:
        values = [getattr(c, value) for c in cs]
        return None if not values or any(v is None for v in values) else sum(values)

    app = total(spec.containers)
    inits = [getattr(c, value) for c in spec.init_containers]
    if app is None or any(v is None for v in inits):
        return None
    return max([app, *inits])


def pod_limits(spec: PodRuntimeSpec) -> Limits:
    memory = _effective(spec, "memory_limit")
    requests = [c.cpu_request_milli for c in spec.containers if c.cpu_request_milli is not None]
    init_requests = [c.cpu_request_milli for c in spec.init_containers if c.cpu_request_milli is not None]
    request = max([sum(requests), *init_requests]) if requests or init_requests else None
    cpu_limit = _effective(spec, "cpu_limit_milli")
    return Limits(
        memory=memory,
        cpu_shares=max(2, request * 1024 // 1000) if request else None,
        cpu_quota_us=max(1000, cpu_limit * CFS_PERIOD_US // 1000) if cpu_limit else None,
    )


class PodCgroup:
    def __init__(self, parent: str, uid: str, root: Path = ROOT) -> None:
        self.paths = {c: root / c / parent / uid for c in CONTROLLERS if (root / c).is_dir()}

    def create(self, limits: Limits) -> None:
        for path in self.paths.values():
            path.mkdir(parents=True, exist_ok=True)
        if "memory" in self.paths and limits.memory is not None:
            (self.paths["memory"] / "memory.limit_in_bytes").write_text(str(limits.memory))
        if "cpu" in self.paths:
            if limits.cpu_shares is not None:
                (self.paths["cpu"] / "cpu.shares").write_text(str(limits.cpu_shares))
            if limits.cpu_quota_us is not None:
                (self.paths["cpu"] / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
                (self.paths["cpu"] / "cpu.cfs_quota_us").write_text(str(limits.cpu_quota_us))

    def join(self, pid: int = 0) -> None:
        """Moves ``pid`` (the caller when 0) into every controller; children then inherit them."""
        for path in self.paths.values():
            # "0" is the writer itself: a PID would be read in the writer's PID namespace,
            # which for the pod's processes is not the host's.
            (path / "cgroup.procs").write_text(str(pid))

    def pids(self) -> set[int]:
        found: set[int] = set()
        for path in self.paths.values():
            with contextlib.suppress(FileNotFoundError):
                found.update(int(line) for line in (path / "cgroup.procs").read_text().split())
        return found

    def oom_kills(self) -> int:
        """The kernel's count of OOM kills in this cgroup (memory.oom_control, kernel ≥ 4.13)."""
        path = self.paths.get("memory")
        if path is None:
            return 0
        with contextlib.suppress(OSError):
            for line in (path / "memory.oom_control").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        return 0

    def kill_all(self, timeout: float = 5.0) -> bool:
        """SIGKILL until the cgroup is empty; a process forking meanwhile is caught on the next pass."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.pids() - {os.getpid()}
            if not left:
                return True
            if time.monotonic() > deadline:
                return False
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    def remove(self) -> None:
        for path in self.paths.values():
            for _ in range(50):  # rmdir fails with EBUSY until the last killed task is gone
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY:
                        raise
                    time.sleep(0.02)
