"""The agent's pure translations: shim status -> Pod status, runtime record, Node object."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from netplane.dataplane.agent import config as agent_config
from netplane.dataplane.agent import status as st
from netplane.dataplane.runtime.images import ImageError

pytestmark = pytest.mark.unit

POD: dict[str, Any] = {"metadata": {"name": "web", "namespace": "demo", "uid": "u-1",
                    "annotations": {st.IP_ANNOTATION: "10.16.0.5"}},
       "spec": {"nodeName": "node1", "containers": [{"name": "nginx", "image": "nginx:1.25"}]}}

SHIM: dict[str, Any] = {"phase": "Running", "pausePid": 100, "message": "",
        "containerStatuses": [{"name": "nginx", "image": "nginx:1.25", "pid": 101, "logPath": "/x",
                               "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}, "lastState": {},
                               "restartCount": 2, "started": True, "ready": True}]}


def test_pod_ip_from_the_ipam_annotation() -> None:
    assert st.pod_ipv4(POD) == ipaddress.IPv4Address("10.16.0.5")
    assert st.pod_ipv4({"metadata": {"annotations": {st.IP_ANNOTATION: "fd00::5,10.16.0.9"}}}) == \
        ipaddress.IPv4Address("10.16.0.9")
    assert st.pod_ipv4({"metadata": {}}) is None


def test_running_pod_status() -> None:
    status = st.pod_status(POD, SHIM, "172.31.250.11", "10.16.0.5")
    assert status["phase"] == "Running"
    assert status["podIP"] == "10.16.0.5" and status["podIPs"] == [{"ip": "10.16.0.5"}]
    assert status["hostIP"] == "172.31.250.11"
    container = status["containerStatuses"][0]
    assert container["restartCount"] == 2 and "running" in container["state"]
    assert "pid" not in container and "logPath" not in container  # the node's business, not the API's
    ready = {c["type"]: c["status"] for c in status["conditions"]}
    assert ready["Ready"] == ready["ContainersReady"] == "True"


def test_unknown_image_is_err_image_pull() -> None:
    status = st.pod_status(POD, None, "172.31.250.11", "10.16.0.5",
                           {"nginx": ImageError("nginx:1.25", "not here")})
    assert status["phase"] == "Pending"
    waiting = status["containerStatuses"][0]["state"]["waiting"]
    assert waiting == {"reason": "ErrImagePull", "message": "not here"}
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "False"


def test_unchanged_status_is_not_rewritten_and_transitions_keep_their_time() -> None:
    first = st.pod_status(POD, SHIM, "172.31.250.11", "10.16.0.5")
    pod: dict[str, Any] = {**POD, "status": {**first, "conditions": [{**c, "lastTransitionTime": "2000-01-01T00:00:00Z"}
                                                     for c in first["conditions"]]}}
    again = st.pod_status(pod, SHIM, "172.31.250.11", "10.16.0.5")
    assert st.same_status(pod["status"], again)
    assert all(c["lastTransitionTime"] == "2000-01-01T00:00:00Z" for c in again["conditions"])
    stopped = {**SHIM, "phase": "Failed", "containerStatuses": [
        {**SHIM["containerStatuses"][0], "state": {"terminated": {"exitCode": 1}}, "ready": False}]}
    assert not st.same_status(pod["status"], st.pod_status(pod, stopped, "172.31.250.11", "10.16.0.5"))


def test_runtime_record_for_streams() -> None:
    record = st.runtime_record(POD, SHIM, Path("/d/pods/u-1"), "np-abc-p-u1")
    assert record.pid == 100 and record.netns == "/run/netns/np-abc-p-u1"
    assert record.log_path("nginx", 2) == Path("/d/pods/u-1/logs/nginx/2.log")
    assert record.containers["nginx"].pid == 101 and record.containers["nginx"].running


def test_node_object_and_status() -> None:
    node = st.node_object("node1", "100.64.0.2", agent_config.JOIN_CIDR, agent_config.JOIN_GATEWAY, {})
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "node1"
    assert node["metadata"]["labels"]["kubernetes.io/os"] == "linux"
    assert node["metadata"]["annotations"][st.IP_ANNOTATION] == "100.64.0.2"
    status = st.node_status("node1", "172.31.250.11")
    assert {"type": "InternalIP", "address": "172.31.250.11"} in status["addresses"]
    assert status["conditions"][0]["type"] == "Ready" and status["conditions"][0]["status"] == "True"
    assert int(status["capacity"]["pods"]) > 0


def test_join_addresses_are_stable_per_node_index() -> None:
    assert [agent_config.join_address(i) for i in range(3)] == ["100.64.0.2", "100.64.0.3", "100.64.0.4"]
