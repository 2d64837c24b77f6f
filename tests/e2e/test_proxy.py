"""The service proxy on a real two-node fabric with podnet: pods are namespaces running a tiny
HTTP server that answers "<its name> <the client address it saw>".

node1 has pods a (10.16.0.5) and c (10.16.0.7), node2 has pod b (10.16.0.6); the external
namespace stands for a client outside the cluster. Every namespace carries the fabric's
cluster id, so `remove_fabric` removes them all, even after a failure.
"""

from __future__ import annotations

import ipaddress as ia
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from netplane.dataplane.fabric import build_fabric, cluster_namespaces, remove_fabric
from netplane.dataplane.fabric_plan import FabricPlan, plan_fabric
from netplane.dataplane.podnet import Cluster, Node, Pod, Subnet, apply, plan_node, pod_netns_name
from netplane.dataplane.proxy import NodeConfig, Proxy, render, render_text

pytestmark = pytest.mark.e2e

FABRIC_CIDR = "10.250.23.0/24"
POD_CIDR = ia.IPv4Network("10.16.0.0/16")
A = Pod("aaaaaaaa-0000-4000-8000-0000000000a1", "default/a", ia.IPv4Address("10.16.0.5"), "node1")
B = Pod("bbbbbbbb-0000-4000-8000-0000000000b2", "default/b", ia.IPv4Address("10.16.0.6"), "node2")
C = Pod("cccccccc-0000-4000-8000-0000000000c3", "default/c", ia.IPv4Address("10.16.0.7"), "node1")
NAMES = {A.ip: "a", B.ip: "b", C.ip: "c"}

ECHO_NAME = textwrap.dedent("""
    import http.server, sys
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"
        def do_GET(self):
            body = f"{sys.argv[2]} {self.client_address[0]}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer((sys.argv[1], 8000), Handler)
    print("ready", flush=True)
    server.serve_forever()
""")


UDP_ECHO_NAME = textwrap.dedent("""
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], 8053))
    print("ready", flush=True)
    while True:
        data, peer = s.recvfrom(100)
        s.sendto(sys.argv[2].encode(), peer)
""")

# Always the same source port: the same conntrack entry, as a long-lived UDP client would have.
UDP_ASK = textwrap.dedent("""
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 40053))
    s.settimeout(2)
    s.sendto(b"?", (sys.argv[1], 53))
    try:
        print(s.recv(100).decode())
    except OSError as e:
        print("error", e)
""")


def service(name: str, ip: str, *, node_port: int | None = None, **spec: Any) -> dict[str, Any]:
    port: dict[str, Any] = {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8000}
    if node_port:
        port["nodePort"] = node_port
    return {"metadata": {"namespace": "default", "name": name},
            "spec": {"type": "NodePort" if node_port else "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                     "ports": [port], **spec}}


def endpoint_slice(service_name: str, pods: list[Pod]) -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": f"{service_name}-x1",
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8000, "protocol": "TCP"}],
            "endpoints": [{"addresses": [str(p.ip)], "conditions": {"ready": True}, "nodeName": p.node}
                          for p in pods]}


BASELINE = (
    [service("web", "10.96.0.10", node_port=30080),
     service("sticky", "10.96.0.11", sessionAffinity="ClientIP",
             sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}}),
     service("empty", "10.96.0.12", node_port=30082),
     service("local", "10.96.0.13", node_port=30083, externalTrafficPolicy="Local"),
     service("self", "10.96.0.14")],
    [endpoint_slice("web", [B, C]), endpoint_slice("sticky", [B, C]), endpoint_slice("empty", []),
     endpoint_slice("local", [C]), endpoint_slice("self", [A])],
)


@dataclass
class Env:
    fabric: FabricPlan
    proxies: dict[str, Proxy]

    def ns(self, pod: Pod) -> str:
        return pod_netns_name(self.fabric.cluster_id, pod.uid)

    def node_config(self, index: int) -> NodeConfig:
        node = self.fabric.nodes[index]
        # node1 lists its NodePort addresses; node2 leaves it to `fib daddr type local`.
        ips = (node.address.ip,) if index == 0 else ()
        return NodeConfig(node.name, ips, (POD_CIDR,))

    def sync(self, services: list[dict[str, Any]], slices: list[dict[str, Any]]) -> dict[str, list[str]]:
        return {node.name: self.proxies[node.name].sync(render(self.node_config(i), services, slices))
                for i, node in enumerate(self.fabric.nodes)}


def _in(netns: str, *cmd: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", netns, *cmd], capture_output=True, text=True, timeout=timeout)


def _get(netns: str, address: object, port: int, max_time: float = 3) -> subprocess.CompletedProcess[str]:
    return _in(netns, "curl", "-sS", "-m", str(max_time), f"http://{address}:{port}/")


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    fabric = plan_fabric("x" + uuid.uuid4().hex[:5], ["node1", "node2"], FABRIC_CIDR)
    build_fabric(fabric)
    servers: list[subprocess.Popen[str]] = []
    try:
        nodes = tuple(Node(h.name, h.netns, h.address.ip, ia.IPv4Address(f"100.64.0.{i + 2}"))
                      for i, h in enumerate(fabric.nodes))
        cluster = Cluster(fabric.cluster_id, nodes, (Subnet("ovn-default", POD_CIDR, ia.IPv4Address("10.16.0.1"),
                                                            True),))
        for node in fabric.nodes:
            apply(plan_node(cluster, node.name, [A, B, C]))
        e = Env(fabric, {n.name: Proxy(n.netns) for n in fabric.nodes})
        for pod in (A, B, C):
            process = subprocess.Popen(["ip", "netns", "exec", e.ns(pod), sys.executable, "-c", ECHO_NAME,
                                        str(pod.ip), NAMES[pod.ip]], stdout=subprocess.PIPE, text=True)
            servers.append(process)
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
            process = subprocess.Popen(["ip", "netns", "exec", e.ns(pod), sys.executable, "-c", UDP_ECHO_NAME,
                                        str(pod.ip), NAMES[pod.ip]], stdout=subprocess.PIPE, text=True)
            servers.append(process)
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        for node in fabric.nodes:
            # A default route out of the cluster (as a real node has): without the proxy's reject, a
            # service address would leave towards it and time out instead of being refused. Added after
            # the servers started: http.server's reverse lookup of its address would wait for DNS.
            assert _in(node.netns, "ip", "route", "add", "default", "via", str(fabric.external.address.ip)
                       ).returncode == 0
        yield e
    finally:
        for process in servers:
            process.kill()
            process.wait()
        remove_fabric(fabric.cluster_id)
    assert cluster_namespaces(fabric.cluster_id) == []


@pytest.fixture
def baseline(env: Env) -> Env:
    env.sync(*BASELINE)
    return env


def test_rendering_is_accepted_by_nft_and_resync_writes_nothing(baseline: Env) -> None:
    node1 = baseline.fabric.nodes[0]
    before = _in(node1.netns, "nft", "-a", "list", "table", "ip", "netplane-proxy").stdout
    assert "chain cluster-tcp-2 " in before and "chain svc-" in before  # shared chains; the sticky service's own
    assert baseline.sync(*BASELINE) == {"node1": [], "node2": []}
    # A new agent process (fresh Proxy) does a full resync that yields the same table.
    fresh = Proxy(node1.netns)
    assert fresh.sync(render(baseline.node_config(0), *BASELINE)) == ["table ip netplane-proxy: full resync"]
    after = _in(node1.netns, "nft", "list", "table", "ip", "netplane-proxy").stdout
    assert " ".join(after.split()).count("chain ") == " ".join(before.split()).count("chain ")
    assert render_text(render(baseline.node_config(0), *BASELINE)).count("\tchain ") == after.count("\tchain ")
    # Other tables (podnet's) are left alone.
    assert "table inet netplane-podnet" in _in(node1.netns, "nft", "list", "tables").stdout


def test_cluster_ip_reaches_backends_on_both_nodes(baseline: Env) -> None:
    seen = set()
    for _ in range(24):
        got = _get(baseline.ns(A), "10.96.0.10", 80)
        assert got.returncode == 0, got.stderr
        name, client = got.stdout.split()
        assert client == str(A.ip)  # pod -> service keeps the pod's address
        seen.add(name)
    assert seen == {"b", "c"}


def test_node_port_on_both_node_addresses(baseline: Env) -> None:
    ext = baseline.fabric.external
    for node in baseline.fabric.nodes:
        names = set()
        for _ in range(12):
            got = _get(ext.netns, node.address.ip, 30080)
            assert got.returncode == 0, (node.name, got.stderr)
            names.add(got.stdout.split()[0])
            # externalTrafficPolicy Cluster: masqueraded to a node address (the join address towards the
            # overlay; towards a local pod veth, which has no address, the kernel picks the gateway on lo)
            assert got.stdout.split()[1] in {"100.64.0.2", "100.64.0.3", "10.16.0.1"}
        assert names == {"b", "c"}


def test_client_ip_affinity_sticks(baseline: Env) -> None:
    names = {_get(baseline.ns(A), "10.96.0.11", 80).stdout.split()[0] for _ in range(12)}
    assert len(names) == 1 and names <= {"b", "c"}
    node1 = baseline.fabric.nodes[0]
    assert "10.16.0.5 expires" in _in(node1.netns, "nft", "list", "table", "ip", "netplane-proxy").stdout
    # the client sits in an affinity set


def test_no_endpoints_is_refused_at_once(baseline: Env) -> None:
    for netns, address, port in ((baseline.ns(A), "10.96.0.12", 80),
                                 (baseline.fabric.external.netns, baseline.fabric.nodes[0].address.ip, 30082),
                                 (baseline.fabric.external.netns, baseline.fabric.nodes[1].address.ip, 30082)):
        got = _get(netns, address, port, max_time=5)
        assert got.returncode == 7, got.stderr  # curl: couldn't connect (refused), not 28 (timeout)


def test_external_traffic_policy_local(baseline: Env) -> None:
    ext = baseline.fabric.external
    node1, node2 = baseline.fabric.nodes
    for _ in range(4):
        got = _get(ext.netns, node1.address.ip, 30083)
        assert got.returncode == 0, got.stderr
        assert got.stdout.split() == ["c", str(ext.address.ip)]  # only the local pod; client IP kept
    got = _get(ext.netns, node2.address.ip, 30083, max_time=2)
    assert got.returncode == 28  # node2 has no local endpoint: dropped, not refused
    # Pods still reach the service through its cluster IP from any node...
    assert _get(baseline.ns(B), "10.96.0.13", 80).stdout.split()[0] == "c"
    # Where a local endpoint exists, pods and the node itself go the cluster way: the pod keeps its
    # address, the node's own connection is masqueraded (to the gateway address, as for hairpin).
    assert _get(baseline.ns(A), node1.address.ip, 30083).stdout.split() == ["c", str(A.ip)]
    assert _get(node1.netns, node1.address.ip, 30083).stdout.split() == ["c", "10.16.0.1"]


def test_hairpin_is_masqueraded(baseline: Env) -> None:
    got = _get(baseline.ns(A), "10.96.0.14", 80)
    assert got.returncode == 0, got.stderr
    # a reached itself, masqueraded to node1 (the veth has no address: the kernel picks the gateway on lo)
    assert got.stdout.split() == ["a", "10.16.0.1"]


def test_removing_a_service_removes_its_rules(baseline: Env) -> None:
    node1 = baseline.fabric.nodes[0]
    services, slices = BASELINE
    assert "10.96.0.10" in _in(node1.netns, "nft", "list", "table", "ip", "netplane-proxy").stdout
    changes = baseline.sync([s for s in services if s["metadata"]["name"] != "web"],
                            [s for s in slices if s["metadata"]["name"] != "web-x1"])
    assert changes["node1"] and changes["node1"][0].endswith("incremental commands")
    table = _in(node1.netns, "nft", "list", "table", "ip", "netplane-proxy").stdout
    assert "10.96.0.10" not in table and "30080" not in table
    assert _get(baseline.ns(A), "10.96.0.10", 80, max_time=2).returncode != 0
    assert _get(baseline.ns(A), "10.96.0.11", 80).returncode == 0  # the others keep working
    # Back again: incremental re-add works too.
    baseline.sync(*BASELINE)
    assert _get(baseline.ns(A), "10.96.0.10", 80).returncode == 0


def test_endpoint_change_keeps_affinity_sets_and_teardown(baseline: Env) -> None:
    node1 = baseline.fabric.nodes[0]
    _get(baseline.ns(A), "10.96.0.11", 80)
    services, slices = BASELINE
    # c leaves "web": only web's chains change, the sticky service's affinity memory survives.
    changed = [endpoint_slice("web", [B]) if s["metadata"]["name"] == "web-x1" else s for s in slices]
    baseline.sync(services, changed)
    assert {_get(baseline.ns(A), "10.96.0.10", 80).stdout.split()[0] for _ in range(8)} == {"b"}
    listing = _in(node1.netns, "nft", "list", "table", "ip", "netplane-proxy").stdout
    assert "10.16.0.5 expires" in listing
    assert baseline.proxies["node1"].teardown() == ["table ip netplane-proxy removed"]
    assert "netplane-proxy" not in _in(node1.netns, "nft", "list", "tables").stdout
    assert baseline.proxies["node1"].teardown() == []


def test_udp_flows_to_a_removed_endpoint_are_flushed(baseline: Env) -> None:
    """A UDP client keeps its 5-tuple; without deleting the conntrack entry it would keep reaching
    the old endpoint (still running here) long after it left the service."""
    services, slices = BASELINE
    dns = {"metadata": {"namespace": "default", "name": "dns"},
           "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.15", "clusterIPs": ["10.96.0.15"],
                    "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 8053}]}}

    def dns_slice(pod: Pod) -> dict[str, Any]:
        return {"metadata": {"namespace": "default", "name": "dns-x1",
                             "labels": {"kubernetes.io/service-name": "dns"}},
                "addressType": "IPv4", "ports": [{"name": "dns", "port": 8053, "protocol": "UDP"}],
                "endpoints": [{"addresses": [str(pod.ip)], "conditions": {"ready": True}, "nodeName": pod.node}]}

    def ask() -> str:
        return _in(baseline.ns(A), sys.executable, "-c", UDP_ASK, "10.96.0.15").stdout.strip()

    baseline.sync([*services, dns], [*slices, dns_slice(C)])
    assert ask() == "c"
    changes = baseline.sync([*services, dns], [*slices, dns_slice(B)])
    assert any(c.startswith("conntrack -D -p udp --orig-dst 10.96.0.15") for c in changes["node1"]), changes
    assert ask() == "b"
