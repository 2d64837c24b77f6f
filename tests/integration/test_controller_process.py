"""`netplane controller` as processes: leader election between two of them, and the child that
`netplane up` supervises."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from netplane.controllers.kube import Client, NotFound, load_kubeconfig
from netplane.controllers.kube.resources import LEASES, NAMESPACES
from tests.conftest import ROOT, Netplane, start_netplane

pytestmark = pytest.mark.integration

LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 4.0, 3.0, 0.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout}s")


def api(kubeconfig: Path, call: Callable[[Client], Any]) -> Any:
    async def main() -> Any:
        async with Client(load_kubeconfig(kubeconfig)) as client:
            return await call(client)

    return asyncio.run(main())


def metric(port: int, name: str, labels: str) -> float:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return -1.0
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class Candidate:
    def __init__(self, kubeconfig: Path, namespace: str, identity: str, log: Path):
        self.identity = identity
        self.port = free_port()
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "netplane.cli", "controller", "--kubeconfig", str(kubeconfig),
             "--lease-namespace", namespace, "--identity", identity, "--metrics-port", str(self.port),
             "--lease-duration", str(LEASE_DURATION), "--renew-deadline", str(RENEW_DEADLINE),
             "--retry-period", str(RETRY_PERIOD)], stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)

    def leading(self) -> bool:
        return metric(self.port, "leader_election_master_status", "") == 1.0

    def reconciles(self) -> float:
        return metric(self.port, "controller_runtime_reconcile_total", 'controller="projects"')

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def lease_namespace(netplane: Netplane) -> Iterator[str]:
    name = f"le-{uuid.uuid4().hex[:6]}"
    api(netplane.kubeconfig, lambda c: c.create(NAMESPACES, {"metadata": {"name": name}}))
    yield name
    api(netplane.kubeconfig, lambda c: c.delete(NAMESPACES, name))


def test_two_controllers_one_leader_and_handover_when_the_leader_is_killed(
        netplane: Netplane, lease_namespace: str, tmp_path: Path) -> None:
    one = Candidate(netplane.kubeconfig, lease_namespace, "one", tmp_path / "one.log")
    two = Candidate(netplane.kubeconfig, lease_namespace, "two", tmp_path / "two.log")
    candidates = {"one": one, "two": two}
    try:
        def holder() -> str:
            try:
                lease = api(netplane.kubeconfig, lambda c: c.get(LEASES, "netplane-controller", lease_namespace))
            except NotFound:
                return ""
            return str(lease["spec"].get("holderIdentity") or "")

        leader_id = wait_for(lambda: holder() in candidates and holder(), what="a lease holder")
        leader = candidates[leader_id]
        follower = two if leader is one else one
        wait_for(leader.leading, what="the leader's metrics")
        # A namespace joining a project makes the leader, and only the leader, reconcile.
        project_ns = f"{lease_namespace}-member"
        api(netplane.kubeconfig, lambda c: c.create(NAMESPACES, {
            "metadata": {"name": project_ns, "labels": {"cpaas.io/project": f"{lease_namespace}-p"}}}))
        wait_for(lambda: leader.reconciles() > 0, what="a reconcile by the leader")
        time.sleep(2 * RETRY_PERIOD)
        assert not follower.leading()
        assert follower.reconciles() == 0, "the follower must not reconcile"
        assert holder() == leader_id

        leader.proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(lambda: holder() == follower.identity, timeout=3 * LEASE_DURATION, what="handover")
        handover = time.monotonic() - killed_at
        assert handover <= LEASE_DURATION + 2 * RETRY_PERIOD, f"handover took {handover:.1f}s"
        lease = api(netplane.kubeconfig, lambda c: c.get(LEASES, "netplane-controller", lease_namespace))
        assert lease["spec"]["leaseTransitions"] >= 1
        wait_for(follower.leading, what="the new leader's metrics")
        api(netplane.kubeconfig, lambda c: c.delete(NAMESPACES, project_ns))
        wait_for(lambda: follower.reconciles() > 0, what="a reconcile by the new leader")

        # A clean stop releases the lease at once.
        follower.stop()
        assert holder() == ""
    finally:
        for c in candidates.values():
            c.stop()


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_netplane_up_restarts_a_killed_controller_and_the_api_keeps_serving(tmp_path: Path) -> None:
    instance = start_netplane(tmp_path / "data")
    try:
        first = wait_for(lambda: children_of(instance.process.pid), what="the controller child")[0]
        os.kill(first, signal.SIGKILL)
        namespaces = api(instance.kubeconfig, lambda c: c.list(NAMESPACES))
        assert "default" in [n["metadata"]["name"] for n in namespaces["items"]]
        second = wait_for(lambda: [p for p in children_of(instance.process.pid) if p != first and alive(p)],
                          what="a restarted controller")[0]
        # The child dies with its parent: a kill -9 of `netplane up` leaves no orphan controller.
        instance.process.kill()
        instance.process.wait()
        wait_for(lambda: not alive(second), timeout=10, what="the orphaned controller to exit")
    finally:
        instance.stop()
