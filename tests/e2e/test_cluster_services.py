"""Services on a real cluster (root only), driven through kubectl as a user would: what the node
proxies do with session affinity, traffic policies, UDP, named ports, readiness, Services without
endpoints, `kubectl expose`, rejected updates and stale UDP flows.

One cluster for the module (tests/e2e/clusters.py). Clients are pods (busybox for HTTP, python:3
for UDP and timing) and the cluster's external namespace (`netplane external`); servers are
netplane/echo pods (HTTP, answering JSON with the pod's name and the client address they saw)
and python:3 pods running a small UDP echo.
"""

from __future__ import annotations

import functools
import json
import os
import re
import select
import shutil
import subprocess
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, kubectl_binaries
from tests.e2e.clusters import NETPLANE, Cluster, running_cluster, running_pods, wait_until

pytestmark = [
    pytest.mark.e2e, pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and cgroups"),
    pytest.mark.skipif(not (shutil.which("busybox") and shutil.which("curl") and shutil.which("conntrack")
                            and kubectl_binaries()),
                       reason="needs busybox, curl, conntrack and kubectl (make setup installs them)"),
]

NODE_CIDR = "172.31.254.0/24"  # this module's own (test_cluster.py and test_cluster_dns.py have others)
NODE_IPS = {"node1": "172.31.254.11", "node2": "172.31.254.12"}
EXTERNAL_IP = "172.31.254.254"  # the external namespace: the world outside the cluster

# Answers each datagram with the pod's name; keeps answering through SIGTERM, so a pod being
# deleted still answers for its whole grace period (what a client stuck to it would get).
UDP_ECHO = textwrap.dedent("""
    import signal, socket
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 5353))
    while True:
        data, peer = s.recvfrom(512)
        s.sendto(socket.gethostname().encode(), peer)
""")

# One datagram, one answer (or "timeout").
UDP_ASK = textwrap.dedent("""
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(b"?", (sys.argv[1], int(sys.argv[2])))
    try:
        print(s.recv(512).decode())
    except OSError:
        print("timeout")
""")

# A long-lived UDP client, as a resolver's: one source port for good, a datagram every 0.2 s, each
# answer printed as it comes. Ends after 5 answers in a row from a pod other than the first one.
UDP_STREAM = textwrap.dedent("""
    import socket, sys, time
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 40053))
    s.settimeout(0.5)
    first, others, deadline = None, 0, time.monotonic() + 90
    while others < 5 and time.monotonic() < deadline:
        s.sendto(b"?", (sys.argv[1], int(sys.argv[2])))
        try:
            name = s.recv(512).decode()
        except OSError:
            print("timeout", flush=True)
            continue
        first = first or name
        others = others + 1 if name != first else 0
        print(name, flush=True)
        time.sleep(0.2)
""")

# How long a TCP connect takes to fail, and how.
CONNECT = textwrap.dedent("""
    import socket, sys, time
    started = time.monotonic()
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()
        outcome = "connected"
    except ConnectionRefusedError:
        outcome = "refused"
    except OSError as e:
        outcome = type(e).__name__
    print(outcome, round(time.monotonic() - started, 3))
""")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(NODE_CIDR) as made:
        yield made


def new_namespace(cluster: Cluster, prefix: str) -> str:
    ns = f"{prefix}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    return ns


def apply(cluster: Cluster, tmp_path: Path, ns: str, *objects: dict[str, Any]) -> None:
    path = tmp_path / f"objects-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    cluster.kubectl("-n", ns, "apply", "-f", str(path))


def echo_pod(name: str, labels: dict[str, str], *, node: str | None = None,
             ports: tuple[tuple[str, int], ...] = (("http", 8080),), readiness: bool = False) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "echo", "image": "netplane/echo",
                                 "ports": [{"name": n, "containerPort": p} for n, p in ports]}
    if readiness:
        container["readinessProbe"] = {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1,
                                       "failureThreshold": 1}
    spec: dict[str, Any] = {"containers": [container]}
    if node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": spec}


def echo_deployment(name: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "echo", "image": "netplane/echo",
                                                           "ports": [{"name": "http", "containerPort": 8080}]}]}}}}


def udp_echo_pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"terminationGracePeriodSeconds": 60,
                     "containers": [{"name": "udp", "image": "python:3", "command": ["python3", "-c", UDP_ECHO],
                                     "ports": [{"name": "dns", "containerPort": 5353, "protocol": "UDP"}]}]}}


def service(name: str, selector: dict[str, str], *, port: int = 80, target: int | str = 8080, protocol: str = "TCP",
            **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": selector, "ports": [{"name": "p", "port": port, "targetPort": target,
                                                       "protocol": protocol}], **spec}}


def busybox_client(cluster: Cluster, ns: str) -> str:
    cluster.kubectl("-n", ns, "run", "client", "--image=busybox:1.36", "--restart=Never", "--", "sleep", "3600")
    wait_until("the busybox client Running", lambda: running_pods(cluster, ns, "run=client", 1), timeout=90)
    return "client"


def python_client(cluster: Cluster, ns: str) -> str:
    cluster.kubectl("-n", ns, "run", "pyclient", "--image=python:3", "--restart=Never", "--",
                    "python3", "-c", "import time; time.sleep(3600)")
    wait_until("the python client Running", lambda: running_pods(cluster, ns, "run=pyclient", 1), timeout=90)
    return "pyclient"


def cluster_ip(cluster: Cluster, ns: str, name: str) -> str:
    return str(cluster.json("-n", ns, "get", "service", name)["spec"]["clusterIP"])


def node_port(cluster: Cluster, ns: str, name: str) -> int:
    return int(cluster.json("-n", ns, "get", "service", name)["spec"]["ports"][0]["nodePort"])


def ready_endpoints(cluster: Cluster, ns: str, name: str) -> set[str]:
    subsets = cluster.json("-n", ns, "get", "endpoints", name).get("subsets") or []
    return {a["ip"] for s in subsets for a in s.get("addresses") or []}


def pods_ready(cluster: Cluster, ns: str, selector: str, count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = wait_until(f"{count} ready pods {selector}",
                                             lambda: running_pods(cluster, ns, selector, count), timeout=120)
    return found


def http_pods(cluster: Cluster, ns: str, client: str, url: str, count: int) -> list[str]:
    """The pods that answered `count` requests, one new connection each, from one busybox client."""
    # No `wget -T`: busybox 1.36's wget crashes with it here; kubectl's timeout bounds the wait.
    loop = f"for i in $(seq {count}); do wget -qO- {url} || echo '{{}}'; echo; done"
    try:
        done = cluster.kubectl("-n", ns, "exec", client, "--", "sh", "-c", loop, check=False, timeout=30 + count)
    except subprocess.TimeoutExpired:
        return []
    return [json.loads(line).get("pod", "") for line in done.stdout.splitlines() if line.strip()]


def answered_by(cluster: Cluster, ns: str, client: str, url: str, count: int, expected: set[str]) -> list[str]:
    """Wait until `count` requests in a row are answered by exactly the pods `expected` (the proxies
    follow the EndpointSlices within a second or so), then return who answered."""
    def check() -> list[str] | None:
        names = http_pods(cluster, ns, client, url, count)
        return names if len(names) == count and set(names) == expected else None
    found: list[str] = wait_until(f"{url} answered by {sorted(expected)}", check, timeout=60, interval=1)
    return found


def external(cluster: Cluster, *command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run `command` in the cluster's external namespace (the host outside the cluster)."""
    return subprocess.run([*NETPLANE, "external", "--data-dir", str(cluster.data_dir), "--", *command],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def curl_outside(cluster: Cluster, address: str, port: int, max_time: float = 3) -> subprocess.CompletedProcess[str]:
    return external(cluster, "curl", "-sS", "-m", str(max_time), f"http://{address}:{port}/")


def echo_answer(cluster: Cluster, address: str, port: int) -> dict[str, Any] | None:
    done = curl_outside(cluster, address, port)
    return json.loads(done.stdout) if done.returncode == 0 else None


def test_session_affinity_client_ip_sticks_to_one_pod(cluster: Cluster, tmp_path: Path) -> None:
    ns = new_namespace(cluster, "affinity")
    apply(cluster, tmp_path, ns, echo_deployment("echo", 2),
          service("sticky", {"app": "echo"}, sessionAffinity="ClientIP"),
          service("spread", {"app": "echo"}))
    pods = {p["metadata"]["name"] for p in pods_ready(cluster, ns, "app=echo", 2)}
    client = busybox_client(cluster, ns)
    # Without affinity both pods answer (which also shows both endpoints are in the proxies)...
    answered_by(cluster, ns, client, f"http://{cluster_ip(cluster, ns, 'spread')}/", 50, pods)
    # ...with ClientIP affinity, one of them answers all 50 requests of the client.
    sticky = http_pods(cluster, ns, client, f"http://{cluster_ip(cluster, ns, 'sticky')}/", 50)
    assert len(sticky) == 50 and len(set(sticky)) == 1 and set(sticky) <= pods, sticky
    described = cluster.kubectl("-n", ns, "describe", "service", "sticky").stdout
    assert re.search(r"Session Affinity:\s+ClientIP", described), described


def test_external_traffic_policy_local_keeps_the_client_address(cluster: Cluster, tmp_path: Path) -> None:
    ns = new_namespace(cluster, "etp")
    apply(cluster, tmp_path, ns, echo_pod("local", {"app": "local"}, node="node1"),
          service("local", {"app": "local"}, type="NodePort", externalTrafficPolicy="Local"))
    pods_ready(cluster, ns, "app=local", 1)
    port = node_port(cluster, ns, "local")
    answer = wait_until("the NodePort on node1", lambda: echo_answer(cluster, NODE_IPS["node1"], port), timeout=30)
    assert answer["pod"] == "local"
    assert answer["remoteAddr"].rsplit(":", 1)[0] == EXTERNAL_IP, answer  # not masqueraded
    # node2 has no endpoint of its own: it does not answer at all (dropped: no reset, no reply).
    silent = curl_outside(cluster, NODE_IPS["node2"], port, max_time=3)
    assert silent.returncode == 28, (silent.returncode, silent.stdout, silent.stderr)  # curl: timed out
    # Cluster policy: every node answers, and the pod sees a node's address instead of the client's.
    cluster.kubectl("-n", ns, "patch", "service", "local", "-p", '{"spec": {"externalTrafficPolicy": "Cluster"}}')
    answer = wait_until("the NodePort on node2 under the Cluster policy",
                        lambda: echo_answer(cluster, NODE_IPS["node2"], port), timeout=30)
    assert answer["pod"] == "local" and answer["remoteAddr"].rsplit(":", 1)[0] != EXTERNAL_IP, answer


def test_udp_service(cluster: Cluster, tmp_path: Path) -> None:
    ns = new_namespace(cluster, "udp")
    apply(cluster, tmp_path, ns, udp_echo_pod("udp-echo", {"app": "udp-echo"}),
          service("dns", {"app": "udp-echo"}, port=53, target="dns", protocol="UDP", type="NodePort"))
    pods_ready(cluster, ns, "app=udp-echo", 1)
    client = python_client(cluster, ns)
    address = cluster_ip(cluster, ns, "dns")

    def from_pod() -> str:
        done = cluster.kubectl("-n", ns, "exec", client, "--", "python3", "-c", UDP_ASK, address, "53", check=False)
        return done.stdout.strip() if done.stdout.strip() == "udp-echo" else ""

    wait_until("an answer through the UDP ClusterIP", from_pod, timeout=30)
    port = str(node_port(cluster, ns, "dns"))

    def from_outside(node_ip: str) -> bool:
        return external(cluster, "python3", "-c", UDP_ASK, node_ip, port).stdout.strip() == "udp-echo"

    for node_ip in NODE_IPS.values():
        wait_until(f"an answer through the UDP NodePort on {node_ip}", functools.partial(from_outside, node_ip),
                   timeout=30)


def test_named_target_port_resolves_per_pod(cluster: Cluster, tmp_path: Path) -> None:
    ns = new_namespace(cluster, "named")
    # One Service, one port name, two pods that give the name different numbers.
    apply(cluster, tmp_path, ns, echo_pod("eighty", {"app": "named"}, ports=(("web", 8080),)),
          echo_pod("ninety", {"app": "named"}, ports=(("web", 9090),)),
          service("named", {"app": "named"}, target="web"))
    pods_ready(cluster, ns, "app=named", 2)
    client = busybox_client(cluster, ns)
    url = f"http://{cluster_ip(cluster, ns, 'named')}/"
    answered_by(cluster, ns, client, url, 20, {"eighty", "ninety"})
    loop = f"for i in $(seq 20); do wget -qO- {url}; echo; done"
    answers = [json.loads(line) for line in cluster.kubectl("-n", ns, "exec", client, "--", "sh", "-c", loop)
               .stdout.splitlines() if line.strip()]
    assert {(a["pod"], a["localPort"]) for a in answers} == {("eighty", 8080), ("ninety", 9090)}, answers


def test_unready_pod_stops_receiving_new_connections(cluster: Cluster, tmp_path: Path) -> None:
    ns = new_namespace(cluster, "ready")
    apply(cluster, tmp_path, ns, echo_pod("one", {"app": "gated"}, readiness=True),
          echo_pod("two", {"app": "gated"}, readiness=True), service("gated", {"app": "gated"}))
    def running(name: str) -> bool:
        return bool(cluster.json("-n", ns, "get", "pod", name)["status"].get("phase") == "Running")

    for name in ("one", "two"):
        wait_until(f"{name} running", functools.partial(running, name), timeout=90)
        cluster.kubectl("-n", ns, "exec", name, "--", "touch", "/tmp/ready")
    pods_ready(cluster, ns, "app=gated", 2)
    client = busybox_client(cluster, ns)
    url = f"http://{cluster_ip(cluster, ns, 'gated')}/"
    answered_by(cluster, ns, client, url, 30, {"one", "two"})

    cluster.kubectl("-n", ns, "exec", "one", "--", "rm", "/tmp/ready")
    two_ip = cluster.json("-n", ns, "get", "pod", "two")["status"]["podIP"]
    wait_until("one out of the ready endpoints", lambda: ready_endpoints(cluster, ns, "gated") == {two_ip},
               timeout=30)
    answered_by(cluster, ns, client, url, 30, {"two"})
    # And it stays that way: the unready pod gets no new connection at all.
    assert set(http_pods(cluster, ns, client, url, 30)) == {"two"}
    assert cluster.json("-n", ns, "get", "pod", "one")["status"]["phase"] == "Running"  # unready, not gone


def test_service_without_endpoints_refuses_at_once(cluster: Cluster, tmp_path: Path) -> None:
    ns = new_namespace(cluster, "noep")
    apply(cluster, tmp_path, ns, service("nobody", {"app": "nobody"}, type="NodePort"))
    client = python_client(cluster, ns)
    address = cluster_ip(cluster, ns, "nobody")

    def refused() -> list[str] | None:
        out = cluster.kubectl("-n", ns, "exec", client, "--", "python3", "-c", CONNECT, address, "80").stdout.split()
        return out if out[0] == "refused" else None

    _, seconds = wait_until("a refused connection to the ClusterIP", refused, timeout=30)
    assert float(seconds) < 1, seconds  # refused at once, not a timeout
    port = node_port(cluster, ns, "nobody")
    for node_ip in NODE_IPS.values():
        started = time.monotonic()
        done = curl_outside(cluster, node_ip, port, max_time=5)
        assert done.returncode == 7, (node_ip, done.returncode, done.stderr)  # curl: connection refused
        assert time.monotonic() - started < 3


def test_kubectl_expose_creates_a_working_node_port(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "expose")
    cluster.kubectl("-n", ns, "create", "deployment", "web", "--image=netplane/echo", "--replicas=2", "--port=8080")
    pods = {p["metadata"]["name"] for p in pods_ready(cluster, ns, "app=web", 2)}
    cluster.kubectl("-n", ns, "expose", "deployment", "web", "--type=NodePort", "--port=80", "--target-port=8080")
    port = node_port(cluster, ns, "web")
    for node_ip in NODE_IPS.values():
        answer = wait_until(f"the exposed NodePort on {node_ip}",
                            functools.partial(echo_answer, cluster, node_ip, port), timeout=30)
        assert answer["pod"] in pods, answer
    shown = cluster.kubectl("-n", ns, "get", "service", "web").stdout
    assert "NodePort" in shown and f"80:{port}/TCP" in shown, shown


def _proxy_map(cluster: Cluster, name: str) -> list[str]:
    """One map of the service proxy's table, as each node has it."""
    return [subprocess.run(["ip", "netns", "exec", cluster.netns(host), "nft", "list", "map", "ip", "netplane-proxy",
                            name], capture_output=True, text=True, check=True).stdout for host in ("n0", "n1")]


def test_a_rejected_service_update_changes_nothing(cluster: Cluster, tmp_path: Path) -> None:
    ns = new_namespace(cluster, "reject")
    apply(cluster, tmp_path, ns, echo_pod("first", {"app": "first"}), echo_pod("second", {"app": "second"}),
          service("first", {"app": "first"}, type="NodePort"), service("second", {"app": "second"}, type="NodePort"))
    pods_ready(cluster, ns, "app in (first, second)", 2)
    first_port, second_port = node_port(cluster, ns, "first"), node_port(cluster, ns, "second")
    for name, port in (("first", first_port), ("second", second_port)):
        answer = wait_until(f"{name}'s NodePort", functools.partial(echo_answer, cluster, NODE_IPS["node1"], port),
                            timeout=30)
        assert answer["pod"] == name
    before = cluster.json("-n", ns, "get", "service", "second")
    tables = _proxy_map(cluster, "service-nodeports")

    taken = cluster.kubectl("-n", ns, "patch", "service", "second", "--type=json", "-p", json.dumps(
        [{"op": "replace", "path": "/spec/ports/0/nodePort", "value": first_port}]), check=False)
    assert taken.returncode != 0 and "provided port is already allocated" in taken.stderr, taken.stderr
    invalid = cluster.kubectl("-n", ns, "patch", "service", "second", "--type=json", "-p", json.dumps(
        [{"op": "replace", "path": "/spec/ports/0/port", "value": 70000}]), check=False)
    assert invalid.returncode != 0 and "Invalid value: 70000" in invalid.stderr, invalid.stderr

    after = cluster.json("-n", ns, "get", "service", "second")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["spec"] == before["spec"]
    # A later change shows a proxy pass has run since (in its own map): the rules are as they were.
    apply(cluster, tmp_path, ns, service("marker", {"app": "nobody"}, type="NodePort"))
    marker = f"tcp . {node_port(cluster, ns, 'marker')} : goto reject-chain"
    wait_until("the marker Service in every proxy", lambda: all(
        marker in table for table in _proxy_map(cluster, "no-endpoint-nodeports")), timeout=30)
    assert _proxy_map(cluster, "service-nodeports") == tables
    for name, port in (("first", first_port), ("second", second_port)):
        for node_ip in NODE_IPS.values():
            answer = echo_answer(cluster, node_ip, port)
            assert answer is not None and answer["pod"] == name, (name, node_ip, answer)


def test_udp_flows_to_a_removed_endpoint_are_flushed(cluster: Cluster, tmp_path: Path) -> None:
    """A UDP client that keeps its source port keeps its conntrack entry, and with it the pod it was
    sent to. When that pod leaves the Service (deleted; it still answers through its grace period),
    the node's proxy deletes those entries, so the very next datagram goes to the other pod."""
    ns = new_namespace(cluster, "udpflush")
    apply(cluster, tmp_path, ns, udp_echo_pod("dns-a", {"app": "dns"}), udp_echo_pod("dns-b", {"app": "dns"}),
          service("dns", {"app": "dns"}, port=53, target=5353, protocol="UDP"))
    pods_ready(cluster, ns, "app=dns", 2)
    client = python_client(cluster, ns)
    address = cluster_ip(cluster, ns, "dns")
    wait_until("both UDP endpoints in the Service", lambda: len(ready_endpoints(cluster, ns, "dns")) == 2, timeout=30)
    wait_until("an answer through the UDP ClusterIP", lambda: cluster.kubectl(
        "-n", ns, "exec", client, "--", "python3", "-c", UDP_ASK, address, "53").stdout.strip().startswith("dns-"),
        timeout=30)

    stream = subprocess.Popen([str(cluster.kubectl_bin), "--kubeconfig", str(cluster.data_dir / "kubeconfig"),
                               "-n", ns, "exec", client, "--", "python3", "-u", "-c", UDP_STREAM, address, "53"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = stream.stdout
    assert out is not None
    lines: list[tuple[float, str]] = []

    def next_line(timeout: float) -> str:
        ready, _, _ = select.select([out], [], [], timeout)
        line = out.readline() if ready else ""
        if line:
            lines.append((time.monotonic(), line.strip()))
        return line.strip()

    try:
        stuck = next_line(15)
        assert stuck.startswith("dns-"), lines
        for _ in range(5):  # its flow stays with that pod
            assert next_line(10) == stuck, lines
        other = "dns-b" if stuck == "dns-a" else "dns-a"
        stuck_ip = cluster.json("-n", ns, "get", "pod", stuck)["status"]["podIP"]
        cluster.kubectl("-n", ns, "delete", "pod", stuck, "--wait=false")
        deleted = time.monotonic()
        while next_line(30):
            pass
        assert stream.wait(30) == 0, stream.stderr.read() if stream.stderr else ""
    finally:
        if stream.poll() is None:
            stream.kill()
            stream.wait()
    after = [(t - deleted, name) for t, name in lines if t > deleted]
    switched = next((t for t, name in after if name == other), None)
    assert switched is not None and switched < 5, after  # flushed by the proxy's pass, not by a conntrack timeout
    assert all(name == other for t, name in after if t > switched), after
    # The deleted pod still answers (its grace period runs): only the flush moved the client.
    direct = cluster.kubectl("-n", ns, "exec", client, "--", "python3", "-c", UDP_ASK, stuck_ip, "5353").stdout
    assert direct.strip() == stuck, direct
