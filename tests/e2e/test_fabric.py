"""The embedded cluster's physical network: real namespaces, veths and a bridge."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

from netplane.dataplane.fabric import build_fabric, cluster_namespaces
from netplane.dataplane.fabric_plan import FabricPlan
from tests.conftest import ROOT
from tests.e2e.fabrics import two_node_fabric

pytestmark = pytest.mark.e2e


@pytest.fixture
def fabric() -> Iterator[FabricPlan]:
    with two_node_fabric("t", "10.250.7.0/24") as plan:
        yield plan
    assert cluster_namespaces(plan.cluster_id) == []


def _in(netns: str, *cmd: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", netns, *cmd], capture_output=True, text=True, timeout=timeout)


def _serve(netns: str, address: str) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-m", "http.server", "--bind", address,
                               "8000"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.8)
    return server


def test_nodes_and_external_host_reach_each_other(fabric: FabricPlan) -> None:
    a, b = fabric.nodes
    assert _in(a.netns, "ip", "-br", "addr", "show", "eth0").stdout.split()[2] == str(a.address)
    server = _serve(fabric.external.netns, str(fabric.external.address.ip))
    try:
        for node in (a, b):
            got = _in(node.netns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                      f"http://{fabric.external.address.ip}:8000/")
            assert got.stdout == "200"
    finally:
        server.kill()
        server.wait()


def test_building_again_replaces_leftovers(fabric: FabricPlan) -> None:
    build_fabric(fabric)  # as after a crash: the same names exist already
    assert cluster_namespaces(fabric.cluster_id) == sorted(fabric.namespaces)


def test_host_access_in_a_disposable_root_namespace() -> None:
    script = textwrap.dedent("""
        import subprocess, sys, time
        from netplane.dataplane.fabric import build_fabric, remove_fabric
        from netplane.dataplane.fabric_plan import plan_fabric
        plan = plan_fabric("thost1", ["node1"], "10.250.8.0/24")
        build_fabric(plan, host_access=True)
        node = plan.nodes[0]
        server = subprocess.Popen(["ip", "netns", "exec", node.netns, sys.executable, "-m", "http.server",
                                   "--bind", str(node.address.ip), "8000"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.8)
        code = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                               f"http://{node.address.ip}:8000/"], capture_output=True, text=True).stdout
        server.kill()
        remove_fabric(plan.cluster_id)
        print(code)
    """)
    # A fresh network and mount namespace stands in for the host: nothing here touches the real one.
    result = subprocess.run(["unshare", "--net", "--mount", "--propagation", "private", sys.executable, "-c", script],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "200"
