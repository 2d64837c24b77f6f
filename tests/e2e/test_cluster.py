"""`netplane up` as a real cluster (root only): node agents, pods as namespaces, the pod network.

One cluster for the module (tests/e2e/clusters.py: its own data directory, fabric and node CIDR;
teardown checks that nothing is left).
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
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, kubectl_binaries
from tests.e2e.clusters import NETPLANE, Cluster, namespaces_of, running_cluster, running_pods, wait_until

pytestmark = [
    pytest.mark.e2e, pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and cgroups"),
    pytest.mark.skipif(not (shutil.which("nginx") and shutil.which("busybox") and kubectl_binaries()),
                       reason="needs nginx, busybox and kubectl (make setup installs them)"),
]

NODE_CIDR = "172.31.251.0/24"  # not the default, so a `make run` cluster on this machine is left alone
POD_CIDR = ipaddress.ip_network("10.16.0.0/16")
EXAMPLE = ROOT / "tests/e2e/guide_examples/access-internal-demo.yaml"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(NODE_CIDR) as made:
        yield made


def test_nodes_register_with_their_fabric_address(cluster: Cluster) -> None:
    assert wait_until("two Ready nodes", lambda: cluster.ready_nodes() == ["node1", "node2"] and True)
    wide = cluster.kubectl("get", "nodes", "-o", "wide").stdout
    assert "172.31.251.11" in wide and "172.31.251.12" in wide, wide
    # The kubernetes Service points at the API's address on the fabric.
    endpoints = cluster.kubectl("get", "endpoints", "kubernetes").stdout
    assert "172.31.251.2:" in endpoints, endpoints


def test_agents_log_in_as_their_node_with_only_a_nodes_rights(cluster: Cluster) -> None:
    """Each agent has its own identity (not the admin's): a client certificate for system:node:<name>
    in group system:nodes. The nodes registered above with it; outside the system:node role, 403."""
    wait_until("two Ready nodes", lambda: cluster.ready_nodes() == ["node1", "node2"] and True)
    kubeconfig = cluster.data_dir / "agents" / "node1" / "kubeconfig"
    assert "token" not in kubeconfig.read_text()
    # The agent's kubeconfig names the API on the fabric; from here, the same API on loopback.
    server = cluster.kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}").stdout

    def as_node1(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(cluster.kubectl_bin), "--kubeconfig", str(kubeconfig), "--server", server, *args],
                              capture_output=True, text=True, timeout=60)

    who = json.loads(as_node1("auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]
    assert who["username"] == "system:node:node1" and "system:nodes" in who["groups"], who
    assert "node1" in as_node1("get", "nodes").stdout  # what an agent does
    for denied in (["create", "namespace", f"node-made-{uuid.uuid4().hex[:6]}"],
                   ["delete", "node", "node2"], ["get", "clusterrolebindings"],
                   ["label", "node", "node2", "taken-over=yes"],  # another node's Node: NodeRestriction
                   ["create", "deployment", "x", "--image=busybox"]):
        done = as_node1(*denied)
        assert done.returncode != 0 and "forbidden" in done.stderr.lower() and "system:node:node1" in done.stderr, done
    assert cluster.ready_nodes() == ["node1", "node2"]
    # Secrets: only those of node1's own pods, one by name (and its agent still mounts them).
    ns = f"node-secrets-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    for name in ("used", "unused"):
        cluster.kubectl("-n", ns, "create", "secret", "generic", name, f"--from-literal=word={name}-word")
    cluster.kubectl("-n", ns, "run", "reader", "--image=busybox", "--restart=Never",
                    "--overrides", json.dumps({"spec": {"nodeName": "node1", "volumes": [
                        {"name": "s", "secret": {"secretName": "used"}}], "containers": [{
                            "name": "reader", "image": "busybox", "command": ["sleep", "3600"],
                            "volumeMounts": [{"name": "s", "mountPath": "/s"}]}]}}))
    wait_until("reader Running", lambda: running_pods(cluster, ns, "run=reader", 1), timeout=90)
    assert cluster.kubectl("-n", ns, "exec", "reader", "--", "cat", "/s/word").stdout == "used-word"
    assert as_node1("-n", ns, "get", "secret", "used", "-o", "name").stdout.strip() == "secret/used"
    for denied in (["-n", ns, "get", "secret", "unused"], ["get", "secrets", "-A"], ["-n", ns, "get", "secrets"]):
        done = as_node1(*denied)
        assert done.returncode != 0 and "forbidden" in done.stderr.lower(), done
    cluster.kubectl("delete", "namespace", ns, "--wait=false")


def from_outside(cluster: Cluster, node_ip: str, port: int) -> str:
    """The body of a GET from the external namespace to a node's port ("" when it fails)."""
    done = subprocess.run([*NETPLANE, "external", "--data-dir", str(cluster.data_dir), "--",
                           "curl", "-sS", "-m", "3", f"http://{node_ip}:{port}/"],
                          capture_output=True, text=True, cwd=ROOT, timeout=30)
    return done.stdout if done.returncode == 0 else ""


@dataclass
class Demo:
    ns: str
    nginx: list[dict[str, Any]]


@pytest.fixture(scope="module")
def demo(cluster: Cluster) -> Demo:
    """The access-internal demo (two nginx replicas and their ClusterIP Service) with a busybox
    client beside it, shared by the tests that only look at it."""
    ns = f"demo-{uuid.uuid4().hex[:6]}"

    # Spreading needs both nodes schedulable when the replicas are placed.
    wait_until("both nodes Ready", lambda: len(cluster.ready_nodes()) == 2, timeout=60)
    cluster.kubectl("create", "namespace", ns)
    cluster.kubectl("-n", ns, "apply", "-f", str(EXAMPLE))
    nginx = wait_until("two nginx pods Running", lambda: running_pods(cluster, ns, "app=nginx", 2), timeout=90)
    cluster.kubectl("-n", ns, "run", "client", "--image=busybox:1.36", "--restart=Never", "--", "sleep", "3600")
    wait_until("the busybox pod Running", lambda: running_pods(cluster, ns, "run=client", 1), timeout=60)
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

    for node_ip in ("172.31.251.11", "172.31.251.12"):
        page = wait_until(f"NodePort {node_port} on {node_ip} from the external namespace",
                          functools.partial(from_outside, cluster, node_ip, node_port), timeout=30)
        assert "Welcome to nginx!" in page, page


def test_pod_reaches_the_external_host_as_its_node(cluster: Cluster) -> None:
    ns = f"ext-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    server = subprocess.Popen([*NETPLANE, "external", "--data-dir", str(cluster.data_dir), "--",
                               sys.executable, "-m", "netplane.images.echo", "--port", "8080"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        cluster.kubectl("-n", ns, "run", "out", "--image=busybox:1.36", "--restart=Never", "--", "sleep", "3600")
        pod = wait_until("the pod Running", lambda: running_pods(cluster, ns, "run=out", 1), timeout=60)[0]
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
    pod = wait_until("sleeper Running", lambda: running_pods(cluster, ns, "run=sleeper", 1), timeout=60)[0]
    uid = pod["metadata"]["uid"]
    cluster.kubectl("-n", ns, "delete", "pod", "sleeper", "--wait=false")
    # Terminating until its agent has stopped it, then gone, and so are its processes and files.
    assert "Terminating" in cluster.kubectl("-n", ns, "get", "pod", "sleeper").stdout
    wait_until("the pod gone", lambda: cluster.kubectl("-n", ns, "get", "pod", "sleeper", check=False).returncode
               != 0, timeout=60)
    assert not (cluster.data_dir / "pods" / uid).exists()
    netns = f"np-{cluster.cid}-p-{uid.replace('-', '')[:8]}"
    wait_until("its network namespace removed", lambda: netns not in namespaces_of(cluster.cid), timeout=15)


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


def test_killing_the_controllers_never_interrupts_traffic(cluster: Cluster, demo: Demo) -> None:
    cluster_ip = cluster.json("-n", demo.ns, "get", "service", "nginx-clusterip")["spec"]["clusterIP"]

    def controller_pid() -> int | None:
        out = subprocess.run(["pgrep", "-f", f"netplane.cli controller --kubeconfig {cluster.data_dir}/kubeconfig"],
                             capture_output=True, text=True).stdout.split()
        return int(out[0]) if len(out) == 1 else None

    old = wait_until("the controller process", controller_pid)
    os.kill(old, signal.SIGKILL)
    for _ in range(5):  # while no controller runs: the nodes keep the rules they last had
        page = cluster.kubectl("-n", demo.ns, "exec", "client", "--", "wget", "-qO-", f"http://{cluster_ip}").stdout
        assert "Welcome to nginx!" in page, page
    new = wait_until("a restarted controller", lambda: (pid := controller_pid()) not in (None, old) and pid,
                     timeout=60)
    assert new != old


def test_killing_the_api_server_never_interrupts_traffic(cluster: Cluster, demo: Demo) -> None:
    """The API server is a child of `netplane up` (docs/design/nodes-and-pods.md). Frozen, it is as unavailable
    as a crashed one while agents, pods and the nodes' rules keep serving; killed, `up` starts it again on the
    same port and store, and agents and controllers carry on through it."""
    cluster.kubectl("-n", demo.ns, "expose", "deployment", "nginx-deployment", "--name", "nginx-api-down",
                    "--type", "NodePort", "--port", "80")
    node_port = cluster.json("-n", demo.ns, "get", "service", "nginx-api-down")["spec"]["ports"][0]["nodePort"]
    for node_ip in ("172.31.251.11", "172.31.251.12"):
        wait_until(f"NodePort {node_port} on {node_ip}",
                   functools.partial(from_outside, cluster, node_ip, node_port), timeout=30)
    old = wait_until("the API server process", cluster.api_server_pid)
    os.kill(old, signal.SIGSTOP)
    try:
        down = cluster.kubectl("get", "nodes", "--request-timeout=2s", check=False, timeout=20)
        assert down.returncode != 0, down.stdout
        for _ in range(5):
            for node_ip in ("172.31.251.11", "172.31.251.12"):
                assert "Welcome to nginx!" in from_outside(cluster, node_ip, node_port)
    finally:
        os.kill(old, signal.SIGKILL)  # a stopped process dies of it too
    assert "Welcome to nginx!" in from_outside(cluster, "172.31.251.11", node_port)
    wait_until("a restarted API server", lambda: cluster.api_server_pid() not in (None, old), timeout=60)
    assert "node1" in wait_until("the API back", lambda: cluster.kubectl("get", "nodes", check=False).stdout)
    assert cluster.process.poll() is None
    assert "[apiserver] exited (signal 9); restarting" in cluster.log.read_text(errors="replace")
    kept = cluster.json("-n", demo.ns, "get", "service", "nginx-api-down")
    assert kept["spec"]["ports"][0]["nodePort"] == node_port
    # The controllers (scheduling, addresses) and an agent (running it) work through the new API server.
    cluster.kubectl("-n", demo.ns, "run", "after-restart", "--image=busybox:1.36", "--restart=Never", "--",
                    "sleep", "3600")
    wait_until("a pod created after the restart Running",
               lambda: running_pods(cluster, demo.ns, "run=after-restart", 1), timeout=90)
    for node_ip in ("172.31.251.11", "172.31.251.12"):
        assert "Welcome to nginx!" in from_outside(cluster, node_ip, node_port)
    cluster.kubectl("-n", demo.ns, "delete", "pod", "after-restart", "--wait=false")


def test_agent_restart_adopts_running_pods(cluster: Cluster) -> None:
    ns = f"adopt-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    cluster.kubectl("-n", ns, "run", "keep", "--image=busybox:1.36", "--restart=Never", "--", "sleep", "3600")
    pod = wait_until("keep Running", lambda: running_pods(cluster, ns, "run=keep", 1), timeout=60)[0]
    node = pod["spec"]["nodeName"]
    before = cluster.kubectl("-n", ns, "exec", "keep", "--", "sh", "-c", "echo $$; ps -o pid,comm | grep -c sleep")
    old = wait_until("the agent of " + node, lambda: cluster.agent_pid(node))
    os.kill(old, signal.SIGKILL)
    new = wait_until("a new agent", lambda: (pid := cluster.agent_pid(node)) not in (None, old) and pid,
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
    first = wait_until("nginx Running", lambda: running_pods(cluster, ns, "app=nginx", 2), timeout=90)
    cluster.restart()
    second = wait_until("nginx Running again", lambda: running_pods(cluster, ns, "app=nginx", 2), timeout=120)
    assert sorted((p["metadata"]["name"], p["status"]["podIP"]) for p in first) == \
        sorted((p["metadata"]["name"], p["status"]["podIP"]) for p in second)
    cluster.kubectl("-n", ns, "run", "client", "--image=busybox:1.36", "--restart=Never", "--", "sleep", "3600")
    wait_until("client Running", lambda: running_pods(cluster, ns, "run=client", 1), timeout=60)
    # Running is not listening: nginx binds its port a moment after it starts (no readiness probe here).
    page = wait_until("nginx answering at its old address", lambda: cluster.kubectl(
        "-n", ns, "exec", "client", "--", "wget", "-qO-", f"http://{second[0]['status']['podIP']}",
        check=False).stdout, timeout=30)
    assert "Welcome to nginx!" in page


GATED_SERVER = """
import http.server, os

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = os.path.exists("/tmp/ready")
        self.send_response(200 if ok else 500)
        self.end_headers()
        self.wfile.write(b"ready" if ok else b"not yet")

    def log_message(self, *args):
        pass

http.server.HTTPServer(("", 8080), Handler).serve_forever()
"""


def _events(cluster: Cluster, ns: str, name: str) -> list[tuple[str, str]]:
    return [(e["reason"], e["message"]) for e in cluster.json("-n", ns, "get", "events")["items"]
            if e["involvedObject"]["name"] == name]


def _container(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    status = cluster.json("-n", ns, "get", "pod", name)["status"]
    return {"conditions": {c["type"]: c["status"] for c in status.get("conditions") or []},
            "podIP": status.get("podIP"), **((status.get("containerStatuses") or [{}])[0])}


def _endpoint_ips(cluster: Cluster, ns: str, service: str) -> tuple[set[str], set[str]]:
    subsets = cluster.json("-n", ns, "get", "endpoints", service).get("subsets") or []
    return ({a["ip"] for s in subsets for a in s.get("addresses") or []},
            {a["ip"] for s in subsets for a in s.get("notReadyAddresses") or []})


def test_probe_readiness_gates_the_service_endpoints(cluster: Cluster, tmp_path: Path) -> None:
    ns = f"ready-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "gated", "labels": {"app": "gated"}}, "spec": {
        "containers": [{"name": "web", "image": "python:3", "command": ["python3", "-c", GATED_SERVER],
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1,
                                           "failureThreshold": 1}}]}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "gated"},
               "spec": {"selector": {"app": "gated"}, "ports": [{"port": 80, "targetPort": 8080}]}}
    for manifest in (pod, service):
        (tmp_path / f"{manifest['kind']}.json").write_text(json.dumps(manifest))
    cluster.kubectl("-n", ns, "apply", "-f", str(tmp_path))

    # Running, started, but not ready: the probe gets 500, and the Service lists it as not ready.
    wait_until("the readiness probe's failures as events", lambda: (
        "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 500") in _events(cluster, ns, "gated"),
        timeout=60)
    unready = _container(cluster, ns, "gated")
    assert "running" in unready["state"] and unready["started"] and not unready["ready"], unready
    assert unready["conditions"]["Ready"] == unready["conditions"]["ContainersReady"] == "False", unready
    ip = unready["podIP"]
    wait_until("the pod among the not ready endpoints", lambda: _endpoint_ips(cluster, ns, "gated") == (set(), {ip}),
               timeout=30)
    assert "Unhealthy" in cluster.kubectl("-n", ns, "get", "events").stdout

    cluster.kubectl("-n", ns, "exec", "gated", "--", "touch", "/tmp/ready")
    wait_until("the pod Ready", lambda: _container(cluster, ns, "gated")["conditions"]["Ready"] == "True", timeout=30)
    wait_until("the pod among the ready endpoints", lambda: _endpoint_ips(cluster, ns, "gated") == ({ip}, set()),
               timeout=30)
    assert _container(cluster, ns, "gated")["restartCount"] == 0  # readiness never restarts anything

    # A restarted agent adopts the pod as ready (no trip out of the Service), then probes it again.
    node = cluster.json("-n", ns, "get", "pod", "gated")["spec"]["nodeName"]
    old = wait_until("the agent of " + node, lambda: cluster.agent_pid(node))
    os.kill(old, signal.SIGKILL)
    wait_until("a new agent", lambda: cluster.agent_pid(node) not in (None, old), timeout=60)
    for _ in range(6):
        assert _container(cluster, ns, "gated")["conditions"]["Ready"] == "True"
        time.sleep(0.5)
    cluster.kubectl("-n", ns, "exec", "gated", "--", "rm", "/tmp/ready")
    wait_until("the pod out of the ready endpoints again",
               lambda: _endpoint_ips(cluster, ns, "gated") == (set(), {ip}), timeout=30)


def test_probe_startup_gates_liveness_which_restarts_the_container(cluster: Cluster, tmp_path: Path) -> None:
    ns = f"live-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lively"}, "spec": {
        "terminationGracePeriodSeconds": 5,
        "containers": [{"name": "app", "image": "busybox:1.36",
                        "command": ["sh", "-c", "touch /tmp/healthy; exec sleep 3600"],
                        "startupProbe": {"exec": {"command": ["cat", "/tmp/started"]}, "periodSeconds": 1,
                                         "failureThreshold": 120},
                        "livenessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 1,
                                          "failureThreshold": 2}}]}}
    (tmp_path / "pod.json").write_text(json.dumps(pod))
    cluster.kubectl("-n", ns, "apply", "-f", str(tmp_path / "pod.json"))
    wait_until("lively running", lambda: "running" in (_container(cluster, ns, "lively").get("state") or {}),
               timeout=60)
    # Unhealthy already, but its liveness probe waits for the startup probe: nothing is restarted.
    cluster.kubectl("-n", ns, "exec", "lively", "--", "rm", "/tmp/healthy")
    wait_until("startup probe failures", lambda: any(
        reason == "Unhealthy" and message.startswith("Startup probe failed: cat: can't open '/tmp/started'")
        for reason, message in _events(cluster, ns, "lively")), timeout=30)
    time.sleep(4)  # twice the liveness failure threshold, were it running
    gated = _container(cluster, ns, "lively")
    assert (gated["restartCount"], gated["started"], gated["ready"]) == (0, False, False), gated
    assert not any(m.startswith("Liveness") for _, m in _events(cluster, ns, "lively"))

    cluster.kubectl("-n", ns, "exec", "lively", "--", "touch", "/tmp/started")
    wait_until("a restart after the liveness probe failed",
               lambda: _container(cluster, ns, "lively")["restartCount"] >= 1, timeout=60)
    events = _events(cluster, ns, "lively")
    assert ("Unhealthy", "Liveness probe failed: cat: can't open '/tmp/healthy': No such file or directory") \
        in events, events
    assert ("Killing", "Container app failed liveness probe, will be restarted") in events, events
    shown = cluster.kubectl("-n", ns, "get", "events").stdout
    assert "Unhealthy" in shown and "Liveness probe failed" in shown, shown
    # The new instance made /tmp/healthy again; /tmp/started is the pod's: started, ready, and left alone.
    wait_until("lively ready again", lambda: (c := _container(cluster, ns, "lively"))["ready"] and c["started"],
               timeout=60)
    time.sleep(3)
    after = _container(cluster, ns, "lively")
    assert after["restartCount"] == 1 and after["lastState"]["terminated"]["exitCode"] == 143, after


def test_a_pod_reaches_the_api_through_the_kubernetes_service_with_its_token(cluster: Cluster) -> None:
    ns = f"sa-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    cluster.kubectl("-n", ns, "create", "role", "pod-reader", "--verb=list", "--resource=pods")
    cluster.kubectl("-n", ns, "create", "rolebinding", "default-reads-pods", "--role=pod-reader",
                    f"--serviceaccount={ns}:default")
    # What client libraries' in-cluster configuration does: the Service variables, the token, the CA.
    script = "\n".join([
        "import json, os, ssl, urllib.request",
        "sa = '/var/run/secrets/kubernetes.io/serviceaccount'",
        "url = f\"https://{os.environ['KUBERNETES_SERVICE_HOST']}:{os.environ['KUBERNETES_SERVICE_PORT']}\"",
        "namespace = open(f'{sa}/namespace').read()",
        "request = urllib.request.Request(f'{url}/api/v1/namespaces/{namespace}/pods',",
        "                                 headers={'Authorization': 'Bearer ' + open(f'{sa}/token').read()})",
        "context = ssl.create_default_context(cafile=f'{sa}/ca.crt')",
        "with urllib.request.urlopen(request, context=context, timeout=10) as answer:",
        "    print(' '.join(p['metadata']['name'] for p in json.load(answer)['items']))",
    ])
    cluster.kubectl("-n", ns, "run", "lister", "--image=python:3", "--restart=Never", "--", "python", "-c", script)

    def finished() -> str:
        phase = str(cluster.json("-n", ns, "get", "pod", "lister")["status"].get("phase") or "")
        return phase if phase in ("Succeeded", "Failed") else ""

    phase = wait_until("the lister pod to finish", finished, timeout=60)
    logs = cluster.kubectl("-n", ns, "logs", "lister").stdout
    assert (phase, logs.split()) == ("Succeeded", ["lister"]), logs
