"""`netplane up` as a process: HTTPS and auth, restarts, crashes, the data directory."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Netplane, start_netplane
from tests.helpers import Client

pytestmark = pytest.mark.integration


def _configmap(name: str, value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": value}}


def test_public_endpoints_and_authentication(netplane: Netplane) -> None:
    client = Client(netplane)
    assert client.request("GET", "/version", token=None)[1]["gitVersion"].startswith("v1.32.")
    for path in ("/healthz", "/livez", "/readyz"):
        assert client.request("GET", path, token=None) == (200, "ok")
    status, body = client.request("GET", "/api/v1/namespaces", token=None)
    assert status == 401 and body["reason"] == "Unauthorized"
    assert client.request("GET", "/api/v1/namespaces", token="wrong")[0] == 401
    status, body = client.request("GET", "/api/v1/namespaces")
    assert status == 200
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= \
        {n["metadata"]["name"] for n in body["items"]}
    status, svc = client.request("GET", "/api/v1/namespaces/default/services/kubernetes")
    assert status == 200 and svc["spec"]["clusterIP"] == "10.96.0.1"
    metrics = client.request("GET", "/metrics")[1]
    assert "apiserver_request_total" in metrics and "apiserver_storage_objects" in metrics


def test_ready_line_names_the_kubeconfig(netplane: Netplane) -> None:
    assert str(netplane.kubeconfig) in netplane.ready_line
    assert netplane.kubeconfig.stat().st_mode & 0o077 == 0


def test_restart_keeps_objects_and_resource_versions(tmp_path: Path) -> None:
    first = start_netplane(tmp_path / "data")
    try:
        client = Client(first)
        created = [client.request("POST", "/api/v1/namespaces/default/configmaps", _configmap(f"c{i}", str(i)))
                   for i in range(5)]
        assert all(status == 201 for status, _ in created)
        svc = client.request("POST", "/api/v1/namespaces/default/services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"type": "NodePort", "ports": [{"port": 80}]}})[1]
        before = client.request("GET", "/api/v1/namespaces/default/configmaps")[1]
    finally:
        assert first.stop(signal.SIGINT) == 0
    second = start_netplane(tmp_path / "data")
    try:
        client = Client(second)
        after = client.request("GET", "/api/v1/namespaces/default/configmaps")[1]
        def identity(items: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
            return [(i["metadata"]["name"], i["metadata"]["resourceVersion"], i["metadata"]["uid"]) for i in items]

        assert identity(after["items"]) == identity(before["items"])
        # Allocations are rebuilt: the restarted server refuses the taken IP and node port.
        status, body = client.request("POST", "/api/v1/namespaces/default/services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s2"},
            "spec": {"type": "NodePort", "clusterIP": svc["spec"]["clusterIP"],
                     "ports": [{"port": 80, "nodePort": svc["spec"]["ports"][0]["nodePort"]}]}})
        assert status == 422
        fields = {c["field"] for c in body["details"]["causes"]}
        assert fields == {"spec.clusterIPs", "spec.ports[0].nodePort"}
    finally:
        second.stop()


def test_kill_9_loses_no_acknowledged_write(tmp_path: Path) -> None:
    instance = start_netplane(tmp_path / "data")
    client = Client(instance)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(worker: int) -> None:
        i = 0
        while not stop.is_set():
            name = f"w{worker}-{i}"
            try:
                status, _ = client.request("POST", "/api/v1/namespaces/default/configmaps", _configmap(name, "x"))
            except (OSError, urllib.error.URLError):
                return
            if status == 201:
                with lock:
                    acknowledged.append(name)
            i += 1

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(writer, w) for w in range(4)]
        time.sleep(2.0)
        instance.process.send_signal(signal.SIGKILL)
        instance.process.wait()
        stop.set()
        for f in futures:
            f.result()
    assert len(acknowledged) > 20
    restarted = start_netplane(tmp_path / "data")
    try:
        stored = {i["metadata"]["name"] for i in
                  Client(restarted).request("GET", "/api/v1/namespaces/default/configmaps")[1]["items"]}
        missing = set(acknowledged) - stored
        assert not missing, f"{len(missing)} acknowledged writes lost"
    finally:
        restarted.stop()


def test_data_dir_from_a_newer_netplane_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "format.json").write_text('{"format": 99}\n')
    result = subprocess.run([sys.executable, "-m", "netplane.cli", "up", "--no-dataplane", "--api-port", "0",
                             "--data-dir", str(data)], capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert result.returncode == 2
    assert "written by a newer netplane (data format 99" in result.stderr


def test_a_second_netplane_on_the_same_data_dir_is_refused(netplane: Netplane) -> None:
    result = subprocess.run([sys.executable, "-m", "netplane.cli", "up", "--no-dataplane", "--api-port", "0",
                             "--data-dir", str(netplane.data_dir)], capture_output=True, text=True, cwd=ROOT,
                            timeout=30)
    assert result.returncode == 2
    assert "is in use by another netplane process" in result.stderr
    assert Client(netplane).request("GET", "/healthz", token=None) == (200, "ok")


def _apiserver_pid(instance: Netplane) -> int | None:
    """The pid of `up`'s API server child, None while there is none."""
    out = subprocess.run(["pgrep", "-P", str(instance.process.pid), "-f", "netplane.cli apiserver"],
                         capture_output=True, text=True).stdout.split()
    return int(out[0]) if len(out) == 1 else None


def _wait_for(what: str, check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while (value := check()) is None or value is False:
        assert time.monotonic() < deadline, f"{what} not within {timeout}s"
        time.sleep(0.1)
    return value


def test_a_killed_api_server_comes_back_on_the_same_port_with_its_objects(tmp_path: Path) -> None:
    """The API server is a child of `up` serving on sockets `up` bound: a request made while it is
    dead waits in the backlog (the port never closes) and the restarted one answers it from the store."""
    instance = start_netplane(tmp_path / "data")
    try:
        client = Client(instance)
        assert client.request("POST", "/api/v1/namespaces/default/configmaps", _configmap("before", "1"))[0] == 201
        old = _wait_for("the API server process", lambda: _apiserver_pid(instance))
        os.kill(old, signal.SIGKILL)
        status, got = client.request("GET", "/api/v1/namespaces/default/configmaps/before")
        assert status == 200 and got["data"] == {"v": "1"}
        new = _apiserver_pid(instance)
        assert new not in (None, old)
        assert client.request("POST", "/api/v1/namespaces/default/configmaps", _configmap("after", "2"))[0] == 201
        assert instance.server in instance.kubeconfig.read_text()
    finally:
        assert instance.stop() == 0
    assert subprocess.run(["pgrep", "-f", f"netplane.cli apiserver --data-dir {(tmp_path / 'data').resolve()}"],
                          capture_output=True).returncode == 1, "the API server outlived `up`"


def test_an_api_server_that_cannot_start_stops_up_instead_of_restarting(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "format.json").write_text('{"format": 1}\n')
    (data / "state.db").write_bytes(b"not a database" * 512)
    result = subprocess.run([sys.executable, "-m", "netplane.cli", "up", "--no-dataplane", "--api-port", "0",
                             "--data-dir", str(data)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 1
    assert "[apiserver] exited (code 1) before it was ready" in result.stdout
    assert "restarting" not in result.stdout
    assert "the API server could not start" in result.stderr
