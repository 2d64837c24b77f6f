"""Nodes failing and coming back on a real `netplane up` cluster (root only): a killed agent, a frozen one
(node lifecycle: Unknown, unreachable taints, taint-based eviction), sixty pods, a restarted cluster.

One cluster for the module (tests/e2e/clusters.py), with a 10 s node monitor grace period so that an
unreachable node shows within seconds; the tests run in order and share the `app` below.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import kubectl_binaries
from tests.e2e.clusters import Cluster, running_cluster, running_pods, wait_until

pytestmark = [
    pytest.mark.e2e, pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and cgroups"),
    pytest.mark.skipif(not (shutil.which("nginx") and shutil.which("busybox") and kubectl_binaries()),
                       reason="needs nginx, busybox and kubectl (make setup installs them)"),
]

NODE_CIDR = "172.31.249.0/24"
POD_CIDR = ipaddress.ip_network("10.16.0.0/16")
UNREACHABLE = "node.kubernetes.io/unreachable"
TICKER = "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.5; done"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(NODE_CIDR, "--node-monitor-grace-period", "10s") as made:
        yield made


def _deployment(name: str, replicas: int, container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": {
        "replicas": replicas, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container], **spec}}}}


def _sleeper(name: str) -> dict[str, Any]:
    return {"name": name, "image": "busybox:1.36", "command": ["sleep", "3600"]}


@dataclass
class App:
    """nginx behind a Service (one replica per node), a busybox client, and a pod logging twice a second
    on node1."""

    ns: str
    manifests: Path

    def apply(self, cluster: Cluster, *objects: dict[str, Any]) -> None:
        for obj in objects:
            path = self.manifests / f"{obj['kind']}-{obj['metadata']['name']}.json"
            path.write_text(json.dumps(obj))
            cluster.kubectl("-n", self.ns, "apply", "-f", str(path))


@pytest.fixture(scope="module")
def app(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> App:
    made = App(f"nodes-{uuid.uuid4().hex[:6]}", tmp_path_factory.mktemp("manifests"))
    # Spreading needs both nodes schedulable when the replicas are placed.
    wait_until("both nodes Ready", lambda: len(cluster.ready_nodes()) == 2, timeout=60)
    cluster.kubectl("create", "namespace", made.ns)
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}
    ticker = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ticker"}, "spec": {
        "nodeSelector": {"kubernetes.io/hostname": "node1"},
        "containers": [{"name": "ticker", "image": "busybox:1.36", "command": ["sh", "-c", TICKER]}]}}
    client = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
              "spec": {"containers": [_sleeper("client")]}}
    made.apply(cluster, _deployment("web", 2, {"name": "nginx", "image": "nginx:1.27"}), service, ticker, client)
    web = wait_until("two nginx pods Running", lambda: running_pods(cluster, made.ns, "app=web", 2), timeout=120)
    assert {p["spec"]["nodeName"] for p in web} == {"node1", "node2"}
    for name in ("ticker", "client"):
        wait_until(f"{name} Running", lambda n=name: _pod(cluster, made.ns, n).get("status", {}).get("phase")
                   == "Running", timeout=60)
    return made


def _pod(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    done = cluster.kubectl("-n", ns, "get", "pod", name, "-o", "json", check=False)
    return json.loads(done.stdout) if done.returncode == 0 else {}


def _pods(cluster: Cluster, ns: str, selector: str | None = None) -> list[dict[str, Any]]:
    return list(cluster.json("-n", ns, "get", "pods", *(["-l", selector] if selector else []))["items"])


def _ready(obj: dict[str, Any]) -> str:
    return next((c["status"] for c in obj.get("status", {}).get("conditions") or [] if c["type"] == "Ready"), "")


def _wget(cluster: Cluster, ns: str, url: str) -> str:
    """From the client pod; kubectl's timeout bounds the wait (busybox's `wget -T` is not usable here)."""
    try:
        done = cluster.kubectl("-n", ns, "exec", "client", "--", "wget", "-qO-", url, check=False, timeout=15)
    except subprocess.TimeoutExpired:
        return ""
    return done.stdout if done.returncode == 0 else ""


def _endpoints(cluster: Cluster, ns: str, service: str) -> tuple[set[str], set[str]]:
    subsets = cluster.json("-n", ns, "get", "endpoints", service).get("subsets") or []
    return ({a["ip"] for s in subsets for a in s.get("addresses") or []},
            {a["ip"] for s in subsets for a in s.get("notReadyAddresses") or []})


def _unanswered_pings(cluster: Cluster, ns: str, ips: list[str]) -> list[str]:
    """The addresses that do not answer one ping from the client pod (one exec for all of them)."""
    script = f"for ip in {' '.join(ips)}; do ping -c 1 -W 5 $ip >/dev/null 2>&1 || echo $ip; done"
    return cluster.kubectl("-n", ns, "exec", "client", "--", "sh", "-c", script, timeout=300).stdout.split()


def _shims(cluster: Cluster) -> set[int]:
    out = subprocess.run(["pgrep", "-f", f"netplane.dataplane.runtime.shim --pod-dir {cluster.data_dir}/pods/"],
                         capture_output=True, text=True).stdout
    return {int(pid) for pid in out.split()}


def _heartbeat(cluster: Cluster, node: str) -> str:
    ready = next(c for c in cluster.json("get", "node", node)["status"]["conditions"] if c["type"] == "Ready")
    return str(ready.get("lastHeartbeatTime") or "")


class Follower:
    """`kubectl logs -f` running in the background, its lines collected."""

    def __init__(self, cluster: Cluster, ns: str, pod: str):
        self.lines: list[str] = []
        self.process = subprocess.Popen([str(cluster.kubectl_bin), "--kubeconfig", str(cluster.data_dir / "kubeconfig"),
                                         "-n", ns, "logs", "-f", pod], stdout=subprocess.PIPE, text=True)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def ticks(self) -> list[int]:
        return [int(line.split()[1]) for line in list(self.lines) if line.startswith("tick ")]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self._thread.join(10)


def test_a_killed_agent_restarts_with_backoff_and_its_pods_never_notice(cluster: Cluster, app: App) -> None:
    ns = app.ns
    pods_before = {p["metadata"]["name"]: p["metadata"]["uid"] for p in _pods(cluster, ns)}
    shims_before = _shims(cluster)
    web_ips = sorted(p["status"]["podIP"] for p in _pods(cluster, ns, "app=web"))
    cluster_ip = cluster.json("-n", ns, "get", "service", "web")["spec"]["clusterIP"]
    follower = Follower(cluster, ns, "ticker")
    try:
        wait_until("the ticker's lines through logs -f", lambda: len(follower.ticks()) >= 2, timeout=30)
        # Killed three times in a row (each time once it has registered again): the supervisor waits
        # 1 s, 2 s, then 4 s before the next start, which leaves a real outage to look at.
        for kill in range(3):
            old = wait_until("node1's agent", lambda: cluster.agent_pid("node1"), timeout=60)
            killed_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            os.kill(old, signal.SIGKILL)
            wait_until("the old agent gone", lambda o=old: cluster.agent_pid("node1") != o, timeout=30)
            if kill < 2:  # so that the outages do not add up to the grace period
                wait_until("a new agent registered", lambda t=killed_at: _heartbeat(cluster, "node1") > t, timeout=60)
        assert cluster.agent_pid("node1") is None
        ticks_in_outage = len(follower.ticks())
        # No agent on node1 now: its pods keep serving, through the Service and by address.
        for url in [f"http://{cluster_ip}", *(f"http://{ip}" for ip in web_ips)]:
            assert "Welcome to nginx!" in wait_until(f"{url} during the outage", lambda u=url: _wget(cluster, ns, u),
                                                     timeout=30)
        assert "exited (signal 9); restarting in 4s" in cluster.log.read_text(errors="replace")

        new = wait_until("node1's agent back", lambda: cluster.agent_pid("node1"), timeout=60)
        back = len(follower.ticks())
        # The same `logs -f` (the API server reads the log files itself) kept streaming through it all.
        wait_until("lines after the agent came back", lambda: len(follower.ticks()) >= back + 4, timeout=30)
        ticks = follower.ticks()
        assert ticks == list(range(ticks[0], ticks[0] + len(ticks))), ticks  # nothing lost, nothing twice
        assert len(ticks) > ticks_in_outage
        assert follower.process.poll() is None
    finally:
        follower.stop()

    # Adopted, not started again: the same pods, the same shim processes, no restarts.
    time.sleep(3)  # a few passes of the new agent
    assert cluster.agent_pid("node1") == new
    assert {p["metadata"]["name"]: p["metadata"]["uid"] for p in _pods(cluster, ns)} == pods_before
    assert _shims(cluster) == shims_before
    for pod in _pods(cluster, ns):
        assert pod["status"]["phase"] == "Running" and _ready(pod) == "True", pod["status"]
        assert all(c["restartCount"] == 0 for c in pod["status"]["containerStatuses"])


def _node_state(cluster: Cluster, node: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    obj = cluster.json("get", "node", node)
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    return ready, list((obj.get("spec") or {}).get("taints") or [])


def _events(cluster: Cluster, ns: str, name: str) -> list[tuple[str, str, str]]:
    return [(e["reason"], e["message"], e["source"].get("component", ""))
            for e in cluster.json("-n", ns, "get", "events")["items"] if e["involvedObject"]["name"] == name]


def test_a_frozen_agent_makes_its_node_unreachable_and_impatient_pods_move(cluster: Cluster, app: App) -> None:
    ns = app.ns
    toleration = {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}
    app.apply(cluster, _deployment("impatient", 1, _sleeper("impatient"), tolerations=[toleration]))
    [impatient] = wait_until("the impatient pod Running", lambda: running_pods(cluster, ns, "app=impatient", 1),
                             timeout=60)
    node = impatient["spec"]["nodeName"]
    other = "node2" if node == "node1" else "node1"
    web = {p["spec"]["nodeName"]: p for p in _pods(cluster, ns, "app=web")}
    stuck, serving = web[node], web[other]
    stuck_ip, serving_ip = stuck["status"]["podIP"], serving["status"]["podIP"]
    # The DefaultTolerationSeconds defaults: 5 minutes, so the web pods ride this out.
    assert {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300} \
        in stuck["spec"]["tolerations"]
    assert impatient["spec"]["tolerations"].count(toleration) == 1
    cluster_ip = cluster.json("-n", ns, "get", "service", "web")["spec"]["clusterIP"]

    agent = wait_until(f"{node}'s agent", lambda: cluster.agent_pid(node), timeout=60)
    os.kill(agent, signal.SIGSTOP)  # alive but silent: no heartbeat, no pod status, nothing
    try:
        ready = wait_until(f"{node} Unknown", lambda: (r := _node_state(cluster, node)[0])["status"] == "Unknown"
                           and r, timeout=60)
        assert (ready["reason"], ready["message"]) == ("NodeStatusUnknown", "Kubelet stopped posting node status.")
        taints = wait_until("the unreachable taints", lambda: len(t := [
            x for x in _node_state(cluster, node)[1] if x["key"] == UNREACHABLE]) == 2 and t, timeout=30)
        assert sorted(t["effect"] for t in taints) == ["NoExecute", "NoSchedule"] and all(
            t.get("timeAdded") for t in taints), taints
        assert ("NodeNotReady", f"Node {node} status is now: NodeNotReady", "node-controller") \
            in _events(cluster, "default", node)

        # Its pods are not ready any more, so the Service sends everything to the other node...
        wait_until("the stuck web pod not ready", lambda: _ready(_pod(cluster, ns, stuck["metadata"]["name"]))
                   == "False", timeout=30)
        wait_until("the stuck pod among the not ready endpoints",
                   lambda: _endpoints(cluster, ns, "web") == ({serving_ip}, {stuck_ip}), timeout=30)
        for _ in range(3):
            assert "Welcome to nginx!" in wait_until("the Service", lambda: _wget(cluster, ns, f"http://{cluster_ip}"),
                                                     timeout=30)
        # ...although they still run: the agent is the only thing that stopped.
        assert "Welcome to nginx!" in wait_until("the stuck pod by address",
                                                 lambda: _wget(cluster, ns, f"http://{stuck_ip}"), timeout=30)

        # The impatient pod is evicted once its 5 s are up, and its Deployment starts another elsewhere.
        wait_until("the impatient pod deleted", lambda: _pod(cluster, ns, impatient["metadata"]["name"])
                   .get("metadata", {}).get("deletionTimestamp"), timeout=60)
        [moved] = wait_until("a new impatient pod Running", lambda: running_pods(cluster, ns, "app=impatient", 1),
                             timeout=90)
        assert moved["spec"]["nodeName"] == other
        events = _events(cluster, ns, impatient["metadata"]["name"])
        assert ("TaintManagerEviction", f"Marking for deletion Pod {ns}/{impatient['metadata']['name']}",
                "taint-eviction-controller") in events, events
        assert ("NodeNotReady", "Node is not ready", "node-controller") in events, events
        assert not _pod(cluster, ns, stuck["metadata"]["name"])["metadata"].get("deletionTimestamp")
    finally:
        os.kill(agent, signal.SIGCONT)

    # Back: its own status again, the taints gone, the evicted pod finished off, the web pod serving again.
    wait_until(f"{node} Ready", lambda: _node_state(cluster, node)[0]["status"] == "True", timeout=60)
    wait_until("the unreachable taints gone", lambda: not any(
        t["key"] == UNREACHABLE for t in _node_state(cluster, node)[1]), timeout=30)
    wait_until("the evicted pod gone", lambda: not _pod(cluster, ns, impatient["metadata"]["name"]), timeout=60)
    wait_until("the web pod among the ready endpoints again",
               lambda: _endpoints(cluster, ns, "web") == ({serving_ip, stuck_ip}, set()), timeout=60)
    assert cluster.agent_pid(node) == agent


@pytest.mark.timeout(600)
def test_sixty_pods_over_two_nodes(cluster: Cluster, app: App) -> None:
    ns = app.ns
    app.apply(cluster, _deployment("many", 60, _sleeper("many"), terminationGracePeriodSeconds=1))
    pods = wait_until("60 pods Running", lambda: running_pods(cluster, ns, "app=many", 60), timeout=540,
                      interval=3)
    ips = {p["status"]["podIP"] for p in pods}
    assert len(ips) == 60 and all(ipaddress.ip_address(ip) in POD_CIDR for ip in ips), sorted(ips)
    per_node = {n: sum(1 for p in pods if p["spec"]["nodeName"] == n) for n in ("node1", "node2")}
    assert per_node == {"node1": 30, "node2": 30}, per_node
    # Every one of them, from the client (half of them across the overlay): addressed, routed, alive.
    assert _unanswered_pings(cluster, ns, sorted(ips)) == []


@pytest.mark.timeout(600)
def test_a_restarted_cluster_brings_every_pod_back_with_its_address(cluster: Cluster, app: App) -> None:
    ns = app.ns
    before = {p["metadata"]["name"]: p["status"]["podIP"] for p in _pods(cluster, ns)}
    assert len(before) == 65, before  # the sixty, two web, the client, the ticker, the impatient one
    cluster.restart()

    def all_back() -> dict[str, str] | None:
        pods = _pods(cluster, ns)
        if not all(p["status"].get("phase") == "Running" and _ready(p) == "True" for p in pods):
            return None
        return {p["metadata"]["name"]: p["status"]["podIP"] for p in pods}

    assert wait_until("every pod Running again", all_back, timeout=540, interval=3) == before
    cluster_ip = cluster.json("-n", ns, "get", "service", "web")["spec"]["clusterIP"]
    web_ips = [ip for name, ip in before.items() if name.startswith("web-")]
    for url in [*(f"http://{ip}" for ip in web_ips), f"http://{cluster_ip}"]:
        assert "Welcome to nginx!" in wait_until(f"{url} after the restart", lambda u=url: _wget(cluster, ns, u),
                                                 timeout=60)
    assert _unanswered_pings(cluster, ns, sorted(ip for name, ip in before.items() if name.startswith("many-"))) == []
