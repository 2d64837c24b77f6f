"""Pure translations between the runtime's files and API objects (unit-tested without a cluster)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from netplane import KUBERNETES_VERSION
from netplane.dataplane.runtime.images import ImageError
from netplane.dataplane.streams.record import ContainerRecord, PodRecord

Obj = dict[str, Any]

IP_ANNOTATION = "ovn.kubernetes.io/ip_address"
CIDR_ANNOTATION = "ovn.kubernetes.io/cidr"
GATEWAY_ANNOTATION = "ovn.kubernetes.io/gateway"
MAC_ANNOTATION = "ovn.kubernetes.io/mac_address"
SWITCH_ANNOTATION = "ovn.kubernetes.io/logical_switch"
# Only the shim's fields that belong in a Pod's containerStatuses (pid and logPath are the node's business).
_CONTAINER_FIELDS = ("name", "image", "state", "lastState", "restartCount", "started", "ready")


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_ipv4(pod: Obj) -> ipaddress.IPv4Address | None:
    """The pod's IPv4 address as central IPAM annotated it (`v4` or `v4,v6`), None before that."""
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(IP_ANNOTATION, "")
    for part in str(value).split(","):
        try:
            ip = ipaddress.ip_address(part.strip())
        except ValueError:
            continue
        if isinstance(ip, ipaddress.IPv4Address):
            return ip
    return None


def _conditions(previous: list[Obj], wanted: dict[str, bool], stamp: str) -> list[Obj]:
    """Conditions keep their lastTransitionTime while their status does not change."""
    before = {c.get("type"): c for c in previous}
    out = []
    for kind, ok in wanted.items():
        status = "True" if ok else "False"
        old = before.get(kind) or {}
        since = old.get("lastTransitionTime") if old.get("status") == status else stamp
        out.append({"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": since or stamp})
    return out


def pod_status(pod: Obj, shim: Obj | None, host_ip: str, pod_ip: str | None,
               image_errors: dict[str, ImageError] | None = None, message: str = "",
               probed: Mapping[str, tuple[bool, bool]] | None = None) -> Obj:
    """The Pod status a kubelet would report, from the shim's status.json (None: not started yet).

    ``probed``: (started, ready) of running containers that have probes, by name (`prober.Prober.sync`);
    the shim counts any running container as both.
    """
    spec, previous = pod.get("spec") or {}, pod.get("status") or {}
    stamp = now()
    containers = spec.get("containers") or []
    inits = spec.get("initContainers") or []

    def waiting(c: Obj, reason: str, text: str = "") -> Obj:
        state: Obj = {"waiting": {"reason": reason, **({"message": text} if text else {})}}
        return {"name": c["name"], "image": c.get("image", ""), "imageID": "", "state": state, "lastState": {},
                "restartCount": 0, "started": False, "ready": False}

    if image_errors:
        statuses = [waiting(c, image_errors[c["name"]].reason, image_errors[c["name"]].message)
                    if c["name"] in image_errors else waiting(c, "ContainerCreating") for c in containers]
        init_statuses = [waiting(c, "PodInitializing") for c in inits]
        phase = "Pending"
    elif shim is None:
        statuses = [waiting(c, "ContainerCreating") for c in containers]
        init_statuses = [waiting(c, "PodInitializing") for c in inits]
        phase = "Pending"
    else:
        def clean(c: Obj) -> Obj:
            out = {"imageID": "", "containerID": f"netplane://{pod['metadata']['uid']}/{c['name']}",
                   **{k: c[k] for k in _CONTAINER_FIELDS if k in c}}
            if c["name"] in (probed or {}) and "running" in (c.get("state") or {}):
                out["started"], out["ready"] = (probed or {})[c["name"]]
            return out

        statuses = [clean(c) for c in shim.get("containerStatuses") or []]
        init_statuses = [clean(c) for c in shim.get("initContainerStatuses") or []]
        phase = str(shim.get("phase") or "Pending")
        message = message or str(shim.get("message") or "")
    ready = phase == "Running" and bool(statuses) and all(c.get("ready") for c in statuses)
    initialized = all("terminated" in (c.get("state") or {}) for c in init_statuses) if shim else not inits
    status: Obj = {
        "phase": phase,
        "conditions": _conditions(previous.get("conditions") or [], {
            "PodReadyToStartContainers": shim is not None, "Initialized": initialized, "Ready": ready,
            "ContainersReady": ready, "PodScheduled": True}, stamp),
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
        "startTime": previous.get("startTime") or stamp,
        "containerStatuses": statuses,
        "qosClass": previous.get("qosClass") or "BestEffort",
    }
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    if message:
        status["message"] = message
    return status


def same_status(a: Obj, b: Obj) -> bool:
    """Equal but for time stamps the agent itself fills in (so an unchanged pod is not rewritten)."""
    def strip(s: Obj) -> Obj:
        out = {k: v for k, v in s.items() if k not in ("startTime",)}
        out["conditions"] = sorted((c.get("type"), c.get("status")) for c in s.get("conditions") or [])
        return out

    return strip(a) == strip(b)


def runtime_record(pod: Obj, shim: Obj, pod_dir: Path, netns: str) -> PodRecord:
    """The streams record (`runtime.json`) the API server's exec/logs/port-forward read."""
    meta = pod["metadata"]
    containers = {}
    for c in [*(shim.get("initContainerStatuses") or []), *(shim.get("containerStatuses") or [])]:
        containers[c["name"]] = ContainerRecord(c["name"], int(c.get("pid") or 0), int(c.get("restartCount") or 0),
                                                "running" in (c.get("state") or {}), str(c.get("stdin") or ""),
                                                bool(c.get("tty")))
    return PodRecord(meta["uid"], meta.get("namespace", ""), meta["name"], int(shim.get("pausePid") or 0),
                     pod_dir / "logs", f"/run/netns/{netns}", containers)


def _memory_kib() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 4 * 1024 * 1024


def node_object(name: str, join_address: str, join_cidr: str, join_gateway: str, labels: dict[str, str]) -> Obj:
    prefix = ipaddress.ip_network(join_cidr).prefixlen
    return {"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": name,
        "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                   "kubernetes.io/arch": "amd64" if platform.machine() in ("x86_64", "amd64") else platform.machine(),
                   **labels},
        # Kube-OVN's node annotations: the node's own address in the join subnet.
        "annotations": {IP_ANNOTATION: join_address, CIDR_ANNOTATION: join_cidr, GATEWAY_ANNOTATION: join_gateway,
                        SWITCH_ANNOTATION: "join", "netplane.io/join-prefix": str(prefix)}}}


def node_allocatable() -> dict[str, str]:
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{_memory_kib()}Ki", "pods": "110",
            "ephemeral-storage": "10Gi"}


def node_status(name: str, fabric_address: str, previous: Obj | None = None) -> Obj:
    stamp = now()
    old: Obj = next((c for c in (previous or {}).get("conditions") or [] if c.get("type") == "Ready"), {})
    capacity = node_allocatable()
    uname = os.uname()
    return {
        "addresses": [{"type": "InternalIP", "address": fabric_address}, {"type": "Hostname", "address": name}],
        "capacity": capacity, "allocatable": dict(capacity),
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "netplane agent is posting ready status", "lastHeartbeatTime": stamp,
                        "lastTransitionTime": old.get("lastTransitionTime") if old.get("status") == "True"
                        else stamp}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
        "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux", "osImage": "netplane embedded node",
                     "kernelVersion": uname.release, "kubeletVersion": f"v{KUBERNETES_VERSION.lstrip('v')}",
                     "kubeProxyVersion": "", "containerRuntimeVersion": "netplane://0.1.0",
                     "machineID": "", "systemUUID": "", "bootID": ""},
    }
