"""The pod runtime record: where a pod's processes, namespaces and logs are on its node.

The container runtime (the per-pod shim) writes one record per pod, and rewrites it whenever a
container starts, restarts or exits, at ``<data-dir>/pods/<pod uid>/runtime.json``::

    {
      "version": 1,
      "uid": "6f1c…", "namespace": "default", "name": "web",
      "pid": 4242,                        # the sandbox (pause) process; holds the pod's namespaces
      "netns": "/run/netns/np-6f1c…",     # optional: the pod's network namespace (default /proc/<pid>/ns/net)
      "logDir": "/…/pods/6f1c…/logs",     # <logDir>/<container>/<restartCount>.log, CRI format
      "containers": {
        "app": {
          "pid": 4243,                    # the container's init process; exec enters its namespaces
          "restartCount": 0,
          "running": true,
          "stdin": "/…/app.stdin",        # optional fifo to the init process's stdin (attach -i)
          "tty": false
        }
      }
    }

Write it atomically (temporary file + rename): readers take it at any moment. Log lines are CRI
lines, ``<RFC3339Nano> stdout|stderr F|P <text>``, as kubelet's container runtimes write them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RECORD_FILE = "runtime.json"


class RecordError(Exception):
    """A record that is missing or unreadable: the pod has no running sandbox on this node."""


@dataclass(frozen=True)
class ContainerRecord:
    name: str
    pid: int
    restart_count: int = 0
    running: bool = True
    stdin: str = ""
    tty: bool = False

    @property
    def alive(self) -> bool:
        """Running per the record and its process still there (the shim may lag behind a crash)."""
        return self.running and self.pid > 0 and os.path.exists(f"/proc/{self.pid}")


@dataclass(frozen=True)
class PodRecord:
    uid: str
    namespace: str
    name: str
    pid: int
    log_dir: Path
    netns: str = ""
    containers: dict[str, ContainerRecord] = field(default_factory=dict)

    @property
    def netns_path(self) -> str:
        return self.netns or f"/proc/{self.pid}/ns/net"

    def log_path(self, container: str, restart: int) -> Path:
        return self.log_dir / container / f"{restart}.log"

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1, "uid": self.uid, "namespace": self.namespace, "name": self.name, "pid": self.pid,
            "netns": self.netns, "logDir": str(self.log_dir),
            "containers": {c.name: {"pid": c.pid, "restartCount": c.restart_count, "running": c.running,
                                    "stdin": c.stdin, "tty": c.tty} for c in self.containers.values()},
        }


def record_path(pods_dir: Path, uid: str) -> Path:
    return pods_dir / uid / RECORD_FILE


def load(pods_dir: Path, uid: str) -> PodRecord:
    path = record_path(pods_dir, uid)
    try:
        raw = json.loads(path.read_text())
        containers = {
            name: ContainerRecord(name, int(c.get("pid", 0)), int(c.get("restartCount", 0)),
                                  bool(c.get("running", True)), str(c.get("stdin", "")), bool(c.get("tty", False)))
            for name, c in (raw.get("containers") or {}).items()
        }
        return PodRecord(str(raw["uid"]), str(raw.get("namespace", "")), str(raw.get("name", "")),
                         int(raw["pid"]), Path(raw["logDir"]), str(raw.get("netns", "")), containers)
    except FileNotFoundError:
        raise RecordError(f"no runtime record for pod {uid}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise RecordError(f"unreadable runtime record {path}: {e}") from None


def write(pods_dir: Path, record: PodRecord) -> Path:
    """Write a record atomically (used by tests and, later, by the runtime)."""
    path = record_path(pods_dir, record.uid)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record.to_json(), indent=2))
    os.replace(tmp, path)
    return path
