"""`netplane up` as a real cluster (root only): node agents, pods as namespaces, the pod network.

One cluster per module (starting it costs seconds): its own data directory, `--api-port 0`, a
unique fabric (the cluster id is a hash of the data directory) and a node CIDR of its own, so it
never meets the session's `--no-dataplane` instance or another cluster. Teardown stops it with
SIGTERM, runs `netplane down` whatever happened, and checks that no namespace is left.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from netplane.dataplane.fabric_plan import cluster_id
from tests.conftest import ROOT, kubectl_binaries

pytestmark = [
    pytest.mark.e2e, pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and cgroups"),
    pytest.mark.skipif(not (shutil.which("nginx") and shutil.which("busybox") and kubectl_binaries()),
                       reason="needs nginx, busybox and kubectl (make setup installs them)"),
]

NODE_CIDR = "172.31.251.0/24"  # not the default, so a `make run` cluster on this machine is left alone
POD_CIDR = ipaddress.ip_network("10.16.0.0/16")
EXAMPLE = ROOT / "tests/e2e/guide_examples/access-internal-demo.yaml"
NETPLANE = [sys.executable, "-m", "netplane.cli"]


def _namespaces(cid: str) -> list[str]:
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
    process: subprocess.Popen[bytes] = field(init=False)
    starts: int = 0

    @property
    def cid(self) -> str:
        return cluster_id(self.data_dir)

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
                [*NETPLANE, "up", "--nodes", "2", "--api-port", "0", "--node-cidr", NODE_CIDR,
                 "--data-dir", str(self.data_dir)], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
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
        assert _namespaces(self.cid) == []
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # Outside /tmp: pods get a private /tmp, and the data directory is what they must not see.
    data_dir = Path(tempfile.mkdtemp(prefix="netplane-cluster-", dir="/var/tmp"))
    log = data_dir.with_suffix(".log")
    made = Cluster(data_dir, log, kubectl_binaries()[0])
    try:
        made.start()
        yield made
    finally:
        if hasattr(made, "process"):
            made.stop()
        down = subprocess.run([*NETPLANE, "down", "--data-dir", str(data_dir)], capture_output=True, text=True,
                              cwd=ROOT, timeout=120)
        left = _namespaces(made.cid)
        shutil.rmtree(data_dir, ignore_errors=True)
        log.unlink(missing_ok=True)
    # After a clean stop there is nothing for `down` to remove, and nothing is left anywhere.
    assert made.process.returncode == 0
    assert left == [], left
    assert "removed np-" not in down.stdout, down.stdout


def _ready_nodes(cluster: Cluster) -> list[str]:
    nodes = cluster.json("get", "nodes")["items"]
    return sorted(n["metadata"]["name"] for n in nodes
                  if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", [])))


def _running(cluster: Cluster, namespace: str, selector: str, count: int) -> list[dict[str, Any]] | None:
    pods = cluster.json("-n", namespace, "get", "pods", "-l", selector)["items"]
    running = [p for p in pods if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
               and all(c.get("ready") for c in p["status"].get("containerStatuses") or [{}])]
    return running if len(running) == count else None


def test_nodes_register_with_their_fabric_address(cluster: Cluster) -> None:
    assert wait_until("two Ready nodes", lambda: _ready_nodes(cluster) == ["node1", "node2"] and True)
    wide = cluster.kubectl("get", "nodes", "-o", "wide").stdout
    assert "172.31.251.11" in wide and "172.31.251.12" in wide, wide
    # The kubernetes Service points at the API's address on the fabric.
    endpoints = cluster.kubectl("get", "endpoints", "kubernetes").stdout
    assert "172.31.251.2:" in endpoints, endpoints


@dataclass
class Demo:
    ns: str
    nginx: list[dict[str, Any]]


@pytest.fixture(scope="module")
def demo(cluster: Cluster) -> Demo:
    """The access-internal demo (two nginx replicas and their ClusterIP Service) with a busybox
    client beside it, shared by the tests that only look at it."""
    ns = f"demo-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    cluster.kubectl("-n", ns, "apply", "-f", str(EXAMPLE))
    nginx = wait_until("two nginx pods Running", lambda: _running(cluster, ns, "app=nginx", 2), timeout=90)
    cluster.kubectl("-n", ns, "run", "client", "--image=busybox:1.36", "--restart=Never", "--", "sleep", "3600")
    wait_until("the busybox pod Running", lambda: _running(cluster, ns, "run=client", 1), timeout=60)
    return Demo(ns, nginx)


def test_access_internal_demo(cluster: Cluster, demo: Demo) -> None:
    ns, nginx = demo.ns, demo.nginx
    ips = [p["status"]["podIP"] for p in nginx]
    assert all(ipaddress.ip_address(ip) in POD_CIDR for ip in ips), ips
    assert {p["spec"]["nodeName"] for p in nginx} == {"node1", "node2"}, "the scheduler spreads the replicas"
    assert {p["status"]["hostIP"] for p in nginx} == {"172.31.251.11", "172.31.251.12"}

    for ip in ips:  # one of them is on the other node: across the VXLAN overlay
        page = cluster.kubectl("-n", ns, "exec", "client", "--", "wget", "-qO-", f"http://{ip}").stdout
        assert "Welcome to nginx!" in page, page

    name, ip = nginx[0]["metadata"]["name"], ips[0]
    addresses = cluster.kubectl("-n", ns, "exec", name, "--", "ip", "a").stdout
    assert "eth0" in addresses and f"inet {ip}/16" in addresses, addresses

    logs = cluster.kubectl("-n", ns, "logs", "client").stdout
    assert logs == "", logs  # sleep prints nothing; the point is that `kubectl logs` reaches the node
    cluster.kubectl("-n", ns, "run", "hello", "--image=busybox:1.36", "--restart=Never", "--",
                    "sh", "-c", "echo hello from $(hostname)")
    wait_until("hello's log", lambda: "hello from hello" in cluster.kubectl("-n", ns, "logs", "hello",
                                                                          check=False).stdout, timeout=60)


def test_services_of_the_demo_through_the_node_proxies(cluster: Cluster, demo: Demo) -> None:
    ns = demo.ns
    cluster_ip = cluster.json("-n", ns, "get", "service", "nginx-clusterip")["spec"]["clusterIP"]

    def from_client() -> str:
        # No `wget -T`: busybox 1.36's wget crashes with it here; kubectl's timeout bounds the wait.
        try:
            done = cluster.kubectl("-n", ns, "exec", "client", "--", "wget", "-qO-", f"http://{cluster_ip}",
                                   check=False, timeout=10)
        except subprocess.TimeoutExpired:
            return ""
        return done.stdout if done.returncode == 0 else ""

    # The agents sync once the endpoint slice controller has filled the Service's slice.
    assert "Welcome to nginx!" in wait_until("the cluster IP from the busybox pod", from_client, timeout=30)
    for _ in range(4):  # endpoints are picked at random: on this node or across the overlay, all answer
        assert "Welcome to nginx!" in from_client()

    cluster.kubectl("-n", ns, "expose", "deployment", "nginx-deployment", "--name", "nginx-nodeport",
                    "--type", "NodePort", "--port", "80")
    node_port = cluster.json("-n", ns, "get", "service", "nginx-nodeport")["spec"]["ports"][0]["nodePort"]

    def from_outside(node_ip: str) -> str:
        done = subprocess.run([*NETPLANE, "external", "--data-dir", str(cluster.data_dir), "--",
                               "curl", "-sS", "-m", "3", f"http://{node_ip}:{node_port}/"],
                              capture_output=True, text=True, cwd=ROOT, timeout=30)
        return done.stdout if done.returncode == 0 else ""

    for node_ip in ("172.31.251.11", "172.31.251.12"):
        page = wait_until(f"NodePort {node_port} on {node_ip} from the external namespace",
                          functools.partial(from_outside, node_ip), timeout=30)
        assert "Welcome to nginx!" in page, page


def test_pod_reaches_the_external_host_as_its_node(cluster: Cluster) -> None:
    ns = f"ext-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    server = subprocess.Popen([*NETPLANE, "external", "--data-dir", str(cluster.data_dir), "--",
                               sys.executable, "-m", "netplane.images.echo", "--port", "8080"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        cluster.kubectl("-n", ns, "run", "out", "--image=busybox:1.36", "--restart=Never", "--", "sleep", "3600")
        pod = wait_until("the pod Running", lambda: _running(cluster, ns, "run=out", 1), timeout=60)[0]
        node_ip = pod["status"]["hostIP"]

        def ask() -> str:
            done = cluster.kubectl("-n", ns, "exec", "out", "--", "wget", "-qO-", "http://172.31.251.254:8080/",
                                   check=False)
            return done.stdout if done.returncode == 0 else ""

        answer = json.loads(wait_until("the echo server in the external namespace", ask, timeout=30))
        # natOutgoing: the outside world sees the node, not the pod address.
        assert answer["remoteAddr"].split(":")[0] == node_ip, answer
    finally:
        server.terminate()
        server.wait(10)


def test_unknown_image_and_graceful_deletion(cluster: Cluster) -> None:
    ns = f"del-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    cluster.kubectl("-n", ns, "run", "nope", "--image=quay.io/nothing/here:1", "--restart=Never")
    wait_until("ErrImagePull", lambda: "ErrImagePull" in cluster.kubectl("-n", ns, "get", "pod", "nope").stdout,
               timeout=60)
    # Ignores SIGTERM, so only the end of its 4 s grace period stops it.
    overrides = {"spec": {"terminationGracePeriodSeconds": 4}}
    cluster.kubectl("-n", ns, "run", "sleeper", "--image=busybox:1.36", "--restart=Never",
                    f"--overrides={json.dumps(overrides)}", "--", "sh", "-c", "trap '' TERM; sleep 3600 & wait")
    pod = wait_until("sleeper Running", lambda: _running(cluster, ns, "run=sleeper", 1), timeout=60)[0]
    uid = pod["metadata"]["uid"]
    cluster.kubectl("-n", ns, "delete", "pod", "sleeper", "--wait=false")
    # Terminating until its agent has stopped it, then gone, and so are its processes and files.
    assert "Terminating" in cluster.kubectl("-n", ns, "get", "pod", "sleeper").stdout
    wait_until("the pod gone", lambda: cluster.kubectl("-n", ns, "get", "pod", "sleeper", check=False).returncode
               != 0, timeout=60)
    assert not (cluster.data_dir / "pods" / uid).exists()
    netns = f"np-{cluster.cid}-p-{uid.replace('-', '')[:8]}"
    wait_until("its network namespace removed", lambda: netns not in _namespaces(cluster.cid), timeout=15)


def test_pod_configuration_from_configmaps_secrets_and_fields(cluster: Cluster, tmp_path: Path) -> None:
    ns = f"cfg-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    cluster.kubectl("-n", ns, "create", "configmap", "app-config", "--from-literal=greeting=hello",
                    "--from-literal=mode=fast")
    cluster.kubectl("-n", ns, "create", "secret", "generic", "app-secret", "--from-literal=password=s3cret")
    pod: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "configured"}, "spec": {
        "restartPolicy": "Never",
        "containers": [{
            "name": "app", "image": "busybox:1.36", "command": ["sleep", "3600"],
            "envFrom": [{"configMapRef": {"name": "app-config"}, "prefix": "CFG_"}],
            "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "app-secret", "key": "password"}}},
                    {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "greeting"}}},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
            "volumeMounts": [{"name": "config", "mountPath": "/etc/app"},
                             {"name": "secret", "mountPath": "/etc/secret"}]}],
        "volumes": [{"name": "config", "configMap": {"name": "app-config"}},
                    {"name": "secret", "secret": {"secretName": "app-secret", "defaultMode": 0o400,
                                                  "items": [{"key": "password", "path": "db/password"}]}}]}}
    missing: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "unconfigured"}, "spec": {
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sleep", "3600"],
                        "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nothing", "key": "x"}}}]}]}}
    for manifest in (pod, missing):
        (tmp_path / f"{manifest['metadata']['name']}.json").write_text(json.dumps(manifest))
    cluster.kubectl("-n", ns, "apply", "-f", str(tmp_path))
    wait_until("configured Running", lambda: cluster.json("-n", ns, "get", "pod", "configured")["status"]
               .get("phase") == "Running", timeout=60)
    out = cluster.kubectl("-n", ns, "exec", "configured", "--", "sh", "-c",
                          "cat /etc/app/greeting; echo; cat /etc/app/mode; echo; cat /etc/secret/db/password; echo;"
                          " stat -L -c %a /etc/secret/db/password;"
                          " echo $CFG_greeting $CFG_mode $PASSWORD $GREETING $POD_NAME $POD_NS").stdout.split("\n")
    assert out[:5] == ["hello", "fast", "s3cret", "400", f"hello fast s3cret hello configured {ns}"], out
    # A changed ConfigMap reaches the mounted files (not the environment), as with the kubelet.
    cluster.kubectl("-n", ns, "patch", "configmap", "app-config", "-p", '{"data": {"greeting": "bonjour"}}')
    wait_until("the new greeting in the volume",
               lambda: cluster.kubectl("-n", ns, "exec", "configured", "--", "cat", "/etc/app/greeting").stdout
               == "bonjour", timeout=30)
    waiting = wait_until("CreateContainerConfigError", lambda: "CreateContainerConfigError" in (
        got := cluster.kubectl("-n", ns, "get", "pod", "unconfigured").stdout) and got, timeout=60)
    assert "CreateContainerConfigError" in waiting
    state = cluster.json("-n", ns, "get", "pod", "unconfigured")["status"]["containerStatuses"][0]["state"]
    assert state["waiting"]["message"] == 'configmap "nothing" not found', state


def _agent_pid(cluster: Cluster, node: str) -> int | None:
    out = subprocess.run(["pgrep", "-f", f"netplane.dataplane.agent --node {node} .*--data-dir {cluster.data_dir}"],
                         capture_output=True, text=True).stdout.split()
    return int(out[0]) if len(out) == 1 else None


def test_agent_restart_adopts_running_pods(cluster: Cluster) -> None:
    ns = f"adopt-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    cluster.kubectl("-n", ns, "run", "keep", "--image=busybox:1.36", "--restart=Never", "--", "sleep", "3600")
    pod = wait_until("keep Running", lambda: _running(cluster, ns, "run=keep", 1), timeout=60)[0]
    node = pod["spec"]["nodeName"]
    before = cluster.kubectl("-n", ns, "exec", "keep", "--", "sh", "-c", "echo $$; ps -o pid,comm | grep -c sleep")
    old = wait_until("the agent of " + node, lambda: _agent_pid(cluster, node))
    os.kill(old, signal.SIGKILL)
    new = wait_until("a new agent", lambda: (pid := _agent_pid(cluster, node)) not in (None, old) and pid,
                     timeout=60)
    assert new != old
    time.sleep(3)  # a few passes of the new agent
    after = cluster.json("-n", ns, "get", "pod", "keep")
    assert after["status"]["phase"] == "Running"
    assert after["status"]["containerStatuses"][0]["restartCount"] == 0
    assert after["status"]["startTime"] == pod["status"]["startTime"]
    # Still exactly one sleep in the pod: the pod was adopted, not started a second time.
    again = cluster.kubectl("-n", ns, "exec", "keep", "--", "sh", "-c", "echo $$; ps -o pid,comm | grep -c sleep")
    assert again.stdout.split()[1] == before.stdout.split()[1] == "1", (before.stdout, again.stdout)


def test_restarted_cluster_brings_pods_back_with_their_addresses(cluster: Cluster) -> None:
    ns = f"again-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    cluster.kubectl("-n", ns, "apply", "-f", str(EXAMPLE))
    first = wait_until("nginx Running", lambda: _running(cluster, ns, "app=nginx", 2), timeout=90)
    cluster.restart()
    second = wait_until("nginx Running again", lambda: _running(cluster, ns, "app=nginx", 2), timeout=120)
    assert sorted((p["metadata"]["name"], p["status"]["podIP"]) for p in first) == \
        sorted((p["metadata"]["name"], p["status"]["podIP"]) for p in second)
    cluster.kubectl("-n", ns, "run", "client", "--image=busybox:1.36", "--restart=Never", "--", "sleep", "3600")
    wait_until("client Running", lambda: _running(cluster, ns, "run=client", 1), timeout=60)
    page = cluster.kubectl("-n", ns, "exec", "client", "--", "wget", "-qO-",
                           f"http://{second[0]['status']['podIP']}").stdout
    assert "Welcome to nginx!" in page
