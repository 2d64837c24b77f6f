"""A real `netplane up` cluster for a test module (root only): start, stop, kubectl, clean-up checks.

Each module gets its own data directory (outside /tmp: pods get a private /tmp, and the data
directory is what they must not see), `--api-port 0`, and a node CIDR of its own, so clusters
never meet each other, the session's `--no-dataplane` instance or a `make run` on this machine.
Teardown stops it with SIGTERM, runs `netplane down` whatever happened, and checks that no
namespace is left.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netplane.dataplane.fabric_plan import cluster_id
from tests.conftest import ROOT, kubectl_binaries

NETPLANE = [sys.executable, "-m", "netplane.cli"]


def namespaces_of(cid: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(f"np-{cid}-")]


def wait_until(what: str, check: Callable[[], Any], timeout: float = 60, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


@dataclass
class Cluster:
    data_dir: Path
    log: Path
    kubectl_bin: Path
    node_cidr: str
    extra_args: tuple[str, ...] = ()  # more `netplane up` options
    process: subprocess.Popen[bytes] = field(init=False)
    starts: int = 0

    @property
    def cid(self) -> str:
        return cluster_id(self.data_dir)

    def netns(self, host: str) -> str:
        """`ext`, `n0`, `n1`, `fabric`: the network namespace of one of the cluster's hosts."""
        return f"np-{self.cid}-{host}"

    def kubectl(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(self.kubectl_bin), "--kubeconfig", str(self.data_dir / "kubeconfig"), *args],
                              capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({done.returncode}): {done.stderr}\n"
                                 f"--- netplane log tail ---\n{self.log_tail()}")
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*NETPLANE, "up", "--nodes", "2", "--api-port", "0", "--node-cidr", self.node_cidr,
                 "--data-dir", str(self.data_dir), *self.extra_args], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                start_new_session=True)
        wait_until("netplane up to bring up its nodes",
                   lambda: self.process.poll() is not None
                   or self.log.read_text(errors="replace").count("netplane cluster:") > self.starts)
        self.starts += 1
        assert self.process.poll() is None, self.log_tail()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self) -> None:
        self.stop()
        assert self.process.returncode == 0, self.log_tail()
        assert namespaces_of(self.cid) == []
        self.start()

    def agent_pid(self, node: str) -> int | None:
        """The pid of the node's agent process, None while there is none (or, briefly, two)."""
        out = subprocess.run(["pgrep", "-f", f"netplane.dataplane.agent --node {node} .*--data-dir {self.data_dir}"],
                             capture_output=True, text=True).stdout.split()
        return int(out[0]) if len(out) == 1 else None

    def ready_nodes(self) -> list[str]:
        """The names of the nodes whose Ready condition is True."""
        nodes = self.json("get", "nodes")["items"]
        # A node just registered has no status yet: its agent writes it right after creating the Node.
        return sorted(n["metadata"]["name"] for n in nodes
                      if any(c["type"] == "Ready" and c["status"] == "True"
                             for c in (n.get("status") or {}).get("conditions", [])))

    def api_server_pid(self) -> int | None:
        """The pid of `up`'s API server child, None while there is none."""
        out = subprocess.run(["pgrep", "-P", str(self.process.pid), "-f", "netplane.cli apiserver"],
                             capture_output=True, text=True).stdout.split()
        return int(out[0]) if len(out) == 1 else None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextmanager
def running_cluster(node_cidr: str, *extra_args: str) -> Iterator[Cluster]:
    data_dir = Path(tempfile.mkdtemp(prefix="netplane-cluster-", dir="/var/tmp"))
    log = data_dir.with_suffix(".log")
    made = Cluster(data_dir, log, kubectl_binaries()[0], node_cidr, extra_args)
    try:
        made.start()
        yield made
    finally:
        if hasattr(made, "process"):
            made.stop()
        down = subprocess.run([*NETPLANE, "down", "--data-dir", str(data_dir)], capture_output=True, text=True,
                              cwd=ROOT, timeout=120)
        left = namespaces_of(made.cid)
        shutil.rmtree(data_dir, ignore_errors=True)
        log.unlink(missing_ok=True)
    # After a clean stop there is nothing for `down` to remove, and nothing is left anywhere.
    assert made.process.returncode == 0
    assert left == [], left
    assert "removed np-" not in down.stdout, down.stdout


def running_pods(cluster: Cluster, namespace: str, selector: str, count: int) -> list[dict[str, Any]] | None:
    pods = cluster.json("-n", namespace, "get", "pods", "-l", selector)["items"]
    running = [p for p in pods if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
               and all(c.get("ready") for c in p["status"].get("containerStatuses") or [{}])]
    return running if len(running) == count else None
