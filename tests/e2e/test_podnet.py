"""The pod network on a real two-node fabric: pods are namespaces with a tiny HTTP server.

Every namespace here carries the fabric's unique cluster id (pods: `np-<cid>-p-...`),
so `remove_fabric` in the fixture removes pods and nodes alike, even after a failure.
"""

from __future__ import annotations

import ipaddress as ia
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from netplane.dataplane.fabric import cluster_namespaces
from netplane.dataplane.fabric_plan import FabricPlan
from netplane.dataplane.podnet import (
    Cluster,
    Node,
    Pod,
    PodnetApplyError,
    Subnet,
    apply,
    plan_node,
    pod_netns_name,
    teardown,
)
from netplane.dataplane.podnet.plan import host_ifname
from tests.conftest import ROOT
from tests.e2e.fabrics import two_node_fabric

pytestmark = pytest.mark.e2e

FABRIC_CIDR = "10.250.17.0/24"
A = Pod("aaaaaaaa-0000-4000-8000-000000000001", "default/a", ia.IPv4Address("10.16.0.5"), "node1")
B = Pod("bbbbbbbb-0000-4000-8000-000000000002", "default/b", ia.IPv4Address("10.16.0.6"), "node2")
C = Pod("cccccccc-0000-4000-8000-000000000003", "default/c", ia.IPv4Address("10.16.0.7"), "node1")

# Answers every GET with the peer address it saw, so the client learns its source after NAT.
ECHO_PEER = textwrap.dedent("""
    import http.server, sys
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = self.client_address[0].encode()
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


def podnet_cluster(fabric: FabricPlan, nat_outgoing: bool = True) -> Cluster:
    nodes = tuple(Node(h.name, h.netns, h.address.ip, ia.IPv4Address(f"100.64.0.{i + 2}"))
                  for i, h in enumerate(fabric.nodes))
    subnet = Subnet("ovn-default", ia.IPv4Network("10.16.0.0/16"), ia.IPv4Address("10.16.0.1"), nat_outgoing)
    return Cluster(fabric.cluster_id, nodes, (subnet,))


def apply_all(fabric: FabricPlan, pods: list[Pod], nat_outgoing: bool = True) -> dict[str, list[str]]:
    cluster = podnet_cluster(fabric, nat_outgoing)
    return {n.name: apply(plan_node(cluster, n.name, pods)) for n in fabric.nodes}


@pytest.fixture
def fabric() -> Iterator[FabricPlan]:
    with two_node_fabric("q", FABRIC_CIDR) as plan:
        yield plan
    assert cluster_namespaces(plan.cluster_id) == []
    assert not [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
                if n.startswith(f"np-{plan.cluster_id}")]


@pytest.fixture
def serve() -> Iterator[list[subprocess.Popen[str]]]:
    """Servers started by a test; killed afterwards whatever happens."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


def _in(netns: str, *cmd: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", netns, *cmd], capture_output=True, text=True, timeout=timeout)


def _start(started: list[subprocess.Popen[str]], netns: str, address: object) -> None:
    process = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-c", ECHO_PEER, str(address)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started.append(process)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready", process.stderr.read() if process.stderr else ""


def _peer_seen(netns: str, address: object) -> str:
    """GET from `netns`; returns the source address the server saw (or curl's error)."""
    got = _in(netns, "curl", "-sS", "-m", "5", f"http://{address}:8000/")
    return got.stdout if got.returncode == 0 else f"curl failed: {got.stderr.strip()}"


def _pod_ns(fabric: FabricPlan, pod: Pod) -> str:
    return pod_netns_name(fabric.cluster_id, pod.uid)


def _snapshot(fabric: FabricPlan, pods: list[Pod]) -> dict[str, str]:
    """Everything apply manages, as the tools print it (with ifindexes and nft handles, so a
    recreated link or a rewritten table shows up as a difference). IPv4 only: the kernel's
    own IPv6 link-local addresses change state (DAD) by themselves."""
    shots = {}
    for node in fabric.nodes:
        for cmd in (["ip", "-d", "link"], ["ip", "-4", "addr"], ["ip", "-4", "route", "show", "table", "all"],
                    ["ip", "neigh", "show", "nud", "permanent"], ["bridge", "fdb", "show", "dev", "vxlan0"],
                    ["nft", "-a", "list", "ruleset"], ["sysctl", "net.ipv4"]):
            shots[f"{node.name}: {' '.join(cmd)}"] = _in(node.netns, *cmd).stdout
    for pod in pods:
        for cmd in (["ip", "-d", "link"], ["ip", "-4", "addr"], ["ip", "-4", "route", "show", "table", "all"]):
            shots[f"{pod.name}: {' '.join(cmd)}"] = _in(_pod_ns(fabric, pod), *cmd).stdout
    return shots


def test_pods_reach_each_other_across_and_within_nodes(fabric: FabricPlan, serve: list[subprocess.Popen[str]]) -> None:
    changes = apply_all(fabric, [A, B, C])
    assert all(changes.values())
    brief = _in(_pod_ns(fabric, A), "ip", "-br", "addr", "show", "eth0").stdout.split()
    assert brief[0].startswith("eth0") and brief[2] == "10.16.0.5/16"
    assert _in(_pod_ns(fabric, A), "ip", "route", "show", "default").stdout.split()[:3] == ["default", "via",
                                                                                             "10.16.0.1"]
    for pod in (A, B, C):
        _start(serve, _pod_ns(fabric, pod), pod.ip)
    assert _peer_seen(_pod_ns(fabric, A), B.ip) == "10.16.0.5"  # over VXLAN, no NAT inside the cluster
    assert _peer_seen(_pod_ns(fabric, B), A.ip) == "10.16.0.6"
    assert _peer_seen(_pod_ns(fabric, A), C.ip) == "10.16.0.5"  # same node
    # The node reaches its own pods, and pods on the other node, from its join address.
    node1, node2 = fabric.nodes
    assert _peer_seen(node1.netns, A.ip) == "100.64.0.2"
    assert _peer_seen(node1.netns, B.ip) == "100.64.0.2"
    assert _peer_seen(node2.netns, B.ip) == "100.64.0.3"
    # An address without a pod is refused at once by the node (unreachable route), even on a node
    # with a default route, instead of leaking towards the outside and timing out.
    assert _in(node1.netns, "ip", "route", "add", "default", "via", str(fabric.external.address.ip)).returncode == 0
    got = _in(_pod_ns(fabric, A), "curl", "-sS", "-m", "5", "http://10.16.9.9:8000/")
    assert got.returncode != 0 and "timed out" not in got.stderr


@pytest.mark.parametrize("nat_outgoing", [True, False])
def test_egress_to_the_external_host(fabric: FabricPlan, serve: list[subprocess.Popen[str]],
                                     nat_outgoing: bool) -> None:
    apply_all(fabric, [A, B], nat_outgoing)
    external = fabric.external
    if not nat_outgoing:
        # Without NAT the outside world must route the pod subnet back (as an upstream router
        # with a route to the cluster would); only the test's own external namespace is changed.
        assert _in(external.netns, "ip", "route", "add", "10.16.0.0/16",
                   "via", str(fabric.nodes[0].address.ip)).returncode == 0
    _start(serve, external.netns, external.address.ip)
    expected = str(fabric.nodes[0].address.ip) if nat_outgoing else "10.16.0.5"
    assert _peer_seen(_pod_ns(fabric, A), external.address.ip) == expected
    table = _in(fabric.nodes[0].netns, "nft", "list", "table", "inet", "netplane-podnet").stdout
    assert ("elements = { 10.16.0.0/16 }" in table.split("set cluster-ranges")[0]) == nat_outgoing


def test_removing_a_pod_removes_exactly_its_links_and_routes(fabric: FabricPlan,
                                                             serve: list[subprocess.Popen[str]]) -> None:
    apply_all(fabric, [A, B, C])
    node1 = fabric.nodes[0]
    kept_index = _in(node1.netns, "cat", f"/sys/class/net/{host_ifname(A.uid)}/ifindex").stdout
    changes = apply_all(fabric, [A, B])
    assert sorted(changes["node1"]) == sorted([f"removed veth {host_ifname(C.uid)}",
                                               f"removed namespace {_pod_ns(fabric, C)}"])
    # The other node only loses its route to the pod.
    assert changes["node2"] == ["removed route 10.16.0.7/32"]
    assert host_ifname(C.uid) not in _in(node1.netns, "ip", "-br", "link").stdout
    assert "10.16.0.7" not in _in(node1.netns, "ip", "route").stdout
    assert _pod_ns(fabric, C) not in cluster_namespaces(fabric.cluster_id)
    assert _in(node1.netns, "cat", f"/sys/class/net/{host_ifname(A.uid)}/ifindex").stdout == kept_index
    _start(serve, _pod_ns(fabric, B), B.ip)
    assert _peer_seen(_pod_ns(fabric, A), B.ip) == "10.16.0.5"


def test_drift_is_repaired_with_exactly_the_missing_pieces(fabric: FabricPlan,
                                                           serve: list[subprocess.Popen[str]]) -> None:
    apply_all(fabric, [A, B])
    node1 = fabric.nodes[0]
    veth = host_ifname(A.uid)
    for cmd in (["ip", "route", "del", "10.16.0.6/32"], ["sysctl", "-w", f"net.ipv4.conf.{veth}.proxy_arp=0"],
                ["nft", "delete", "table", "inet", "netplane-podnet"],
                ["ip", "neigh", "del", "100.64.0.3", "dev", "vxlan0"]):
        assert _in(node1.netns, *cmd).returncode == 0, cmd
    changes = apply(plan_node(podnet_cluster(fabric), "node1", [A, B]))
    assert sorted(changes) == sorted([
        "vxlan0: added neighbour 100.64.0.3 -> 0e:4e:64:40:00:03", f"sysctl net/ipv4/conf/{veth}/proxy_arp",
        "route 10.16.0.6/32 dev vxlan0 via 100.64.0.3", "nftables table inet netplane-podnet written"])
    _start(serve, _pod_ns(fabric, B), B.ip)
    assert _peer_seen(_pod_ns(fabric, A), B.ip) == "10.16.0.5"


def test_checked_pods_are_not_entered_but_their_node_side_is_kept(fabric: FabricPlan) -> None:
    """What the agent relies on between full verifications: a pod it passes as `checked` is not looked
    at inside (so drift there waits for the next full apply), while the node's own state, that pod's
    veth and route included, is still verified and kept."""
    plan = plan_node(podnet_cluster(fabric), "node1", [A, B, C])
    apply(plan)
    a_ns, node1 = _pod_ns(fabric, A), fabric.nodes[0]
    assert _in(a_ns, "ip", "route", "del", "default").returncode == 0
    assert _in(node1.netns, "ip", "route", "del", "10.16.0.6/32").returncode == 0
    checked = [p for p in plan.pods if p.uid == A.uid]
    assert apply(plan, checked) == ["route 10.16.0.6/32 dev vxlan0 via 100.64.0.3"]
    assert "default" not in _in(a_ns, "ip", "route").stdout
    assert host_ifname(A.uid) in _in(node1.netns, "ip", "-br", "link").stdout
    assert apply(plan) == ["pod default/a: default route via 10.16.0.1"]
    assert "default via 10.16.0.1" in _in(a_ns, "ip", "route").stdout


def test_reapplying_from_a_new_agent_process_changes_nothing(fabric: FabricPlan,
                                                             serve: list[subprocess.Popen[str]]) -> None:
    pods = [A, B, C]
    apply_all(fabric, pods)
    assert apply_all(fabric, pods) == {"node1": [], "node2": []}  # same process, second sync
    before = _snapshot(fabric, pods)
    _start(serve, _pod_ns(fabric, B), B.ip)
    # Pod A keeps talking to pod B over the overlay while the "restarted agent" syncs.
    traffic = subprocess.Popen(
        ["ip", "netns", "exec", _pod_ns(fabric, A), sys.executable, "-c", textwrap.dedent(f"""
            import time, urllib.request
            ok = failed = 0
            end = time.monotonic() + 4
            while time.monotonic() < end:
                try:
                    urllib.request.urlopen("http://{B.ip}:8000/", timeout=1).read()
                    ok += 1
                except OSError:
                    failed += 1
                time.sleep(0.02)
            print(ok, failed)
        """)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    agent = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import json
        from netplane.dataplane.fabric_plan import plan_fabric
        from tests.e2e.test_podnet import A, B, C, FABRIC_CIDR, apply_all
        print(json.dumps(apply_all(plan_fabric({fabric.cluster_id!r}, ["node1", "node2"], FABRIC_CIDR), [A, B, C])))
    """)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert agent.returncode == 0, agent.stderr
    assert json.loads(agent.stdout) == {"node1": [], "node2": []}
    out, err = traffic.communicate(timeout=30)
    ok, failed = map(int, out.split())
    assert ok > 20 and failed == 0, err
    after = _snapshot(fabric, pods)
    assert [k for k in before if before[k] != after[k]] == []


def test_teardown_removes_everything_it_made(fabric: FabricPlan) -> None:
    apply_all(fabric, [A, B, C])
    node1 = fabric.nodes[0]
    pristine_node2 = _in(fabric.nodes[1].netns, "ip", "-d", "link").stdout
    removed = teardown(fabric.cluster_id, node1.netns)
    assert f"removed namespace {_pod_ns(fabric, A)}" in removed and "removed vxlan0" in removed
    assert sorted(_in(node1.netns, "ls", "/sys/class/net").stdout.split()) == ["eth0", "lo"]
    assert _in(node1.netns, "ip", "-4", "-br", "addr", "show", "dev", "lo").stdout.split()[2:] == ["127.0.0.1/8"]
    assert "proto 78" not in _in(node1.netns, "ip", "route", "show", "table", "all").stdout
    assert _in(node1.netns, "nft", "list", "ruleset").stdout.strip() == ""
    assert {_pod_ns(fabric, A), _pod_ns(fabric, C)}.isdisjoint(cluster_namespaces(fabric.cluster_id))
    assert _pod_ns(fabric, B) in cluster_namespaces(fabric.cluster_id)  # the other node's pod is untouched
    assert _in(fabric.nodes[1].netns, "ip", "-d", "link").stdout == pristine_node2
    assert teardown(fabric.cluster_id, node1.netns) == []
    # And the node can be set up again from nothing.
    assert apply(plan_node(podnet_cluster(fabric), "node1", [A, B, C]))


def test_a_pod_that_cannot_be_wired_does_not_stop_the_others(fabric: FabricPlan,
                                                             serve: list[subprocess.Popen[str]]) -> None:
    bogus = Path("/run/netns") / _pod_ns(fabric, C)
    bogus.touch()  # a plain file where C's namespace should be: entering it fails
    try:
        with pytest.raises(PodnetApplyError, match="pod default/c") as failure:
            apply(plan_node(podnet_cluster(fabric), "node1", [A, B, C]))
        assert "route 10.16.0.5/32 dev " + host_ifname(A.uid) in failure.value.changes
        assert "10.16.0.7" not in _in(fabric.nodes[0].netns, "ip", "route").stdout
        apply(plan_node(podnet_cluster(fabric), "node2", [A, B, C]))
        _start(serve, _pod_ns(fabric, B), B.ip)
        assert _peer_seen(_pod_ns(fabric, A), B.ip) == "10.16.0.5"
    finally:
        bogus.unlink()
    assert apply(plan_node(podnet_cluster(fabric), "node1", [A, B, C]))  # wired once the obstacle is gone
    _start(serve, _pod_ns(fabric, C), C.ip)
    assert _peer_seen(_pod_ns(fabric, B), C.ip) == "10.16.0.6"
