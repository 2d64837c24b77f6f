"""Which pods back a Service, and on which ports: the pure core shared by both controllers.

Kubernetes' rules (kube-controller-manager's endpoint and endpointslice controllers):
  - only Services with a selector are managed; ExternalName Services get nothing;
  - a pod counts if it matches the selector in the Service's namespace, has an IP, and is not
    finished (Succeeded, or Failed unless restartPolicy Always); terminating pods count only for
    EndpointSlices (as terminating) and, for Endpoints, only with publishNotReadyAddresses;
  - a port's targetPort is resolved per pod: a number is taken as is, a name is looked up among the
    pod's container ports of the same protocol, and a pod without it is left out of that port.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

IPV4, IPV6 = "IPv4", "IPv6"
HEADLESS_LABEL = "service.kubernetes.io/headless"


def meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def selector(service: Obj) -> dict[str, str]:
    """The Service's selector; empty means "no selector" (the user manages its endpoints)."""
    return {str(k): str(v) for k, v in (spec(service).get("selector") or {}).items()}


def managed(service: Obj) -> bool:
    """Whether the controllers maintain this Service's endpoints at all."""
    return bool(selector(service)) and spec(service).get("type") != "ExternalName"


def headless(service: Obj) -> bool:
    return spec(service).get("clusterIP") == "None"


def selects(service: Obj, pod: Obj) -> bool:
    wanted = selector(service)
    labels = meta(pod).get("labels") or {}
    return bool(wanted) and meta(pod).get("namespace") == meta(service).get("namespace") \
        and all(labels.get(k) == v for k, v in wanted.items())


def family_of(ip: str) -> str | None:
    try:
        return IPV6 if ipaddress.ip_address(ip).version == 6 else IPV4
    except ValueError:
        return None


def pod_ips(pod: Obj) -> list[str]:
    status = pod.get("status") or {}
    ips = [str(p.get("ip")) for p in status.get("podIPs") or [] if isinstance(p, dict) and p.get("ip")]
    if not ips and status.get("podIP"):
        ips = [str(status["podIP"])]
    return ips


def pod_ip(pod: Obj, family: str) -> str | None:
    return next((ip for ip in pod_ips(pod) if family_of(ip) == family), None)


def address_types(service: Obj, pods: Iterable[Obj] = ()) -> list[str]:
    """The address families the Service is served on: its ipFamilies, else its clusterIP's family;
    a headless Service without either takes whatever families its pods have, as Kubernetes does."""
    s = spec(service)
    families = [f for f in s.get("ipFamilies") or [] if f in (IPV4, IPV6)]
    if families:
        return list(dict.fromkeys(families))
    family = family_of(str(s.get("clusterIP") or ""))
    if family:
        return [family]
    found = {f for pod in pods for f in map(family_of, pod_ips(pod)) if f}
    return [f for f in (IPV4, IPV6) if f in found] or [IPV4]


def terminating(pod: Obj) -> bool:
    return bool(meta(pod).get("deletionTimestamp"))


def ready(pod: Obj) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def eligible(pod: Obj, include_terminating: bool) -> bool:
    """Whether a pod belongs among a Service's endpoints at all (ready or not)."""
    if not pod_ips(pod):
        return False
    if terminating(pod) and not include_terminating:
        return False
    phase = (pod.get("status") or {}).get("phase")
    policy = spec(pod).get("restartPolicy") or "Always"
    # A finished pod will never serve again; a Failed one with restartPolicy Always will be restarted.
    if policy == "Never":
        return phase not in ("Failed", "Succeeded")
    if policy == "OnFailure":
        return phase != "Succeeded"
    return True


def resolve_port(pod: Obj, service_port: Obj) -> int | None:
    """The pod's port for a Service port: a numeric targetPort as is, a named one from the pod's
    container ports (same protocol; sidecar init containers count); None when the pod lacks it."""
    target = service_port.get("targetPort")
    if target in (None, "", 0):
        target = service_port.get("port")
    if isinstance(target, int):
        return target
    protocol = service_port.get("protocol") or "TCP"
    s = spec(pod)
    containers = list(s.get("containers") or []) + [
        c for c in s.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for container in containers:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port["containerPort"])
    return None


@dataclass(frozen=True, order=True)
class Port:
    name: str
    port: int
    protocol: str
    app_protocol: str | None = None

    def endpoints_form(self) -> Obj:
        """As in Endpoints subsets: an unnamed port has no name field."""
        out: Obj = {"port": self.port, "protocol": self.protocol}
        if self.name:
            out["name"] = self.name
        if self.app_protocol:
            out["appProtocol"] = self.app_protocol
        return out

    def slice_form(self) -> Obj:
        """As in EndpointSlices: name is always present ("" when unnamed), as the API defaults it."""
        out: Obj = {"name": self.name, "port": self.port, "protocol": self.protocol}
        if self.app_protocol:
            out["appProtocol"] = self.app_protocol
        return out


def pod_ports(service: Obj, pod: Obj) -> list[Port]:
    out = []
    for sp in spec(service).get("ports") or []:
        number = resolve_port(pod, sp)
        if number is not None:
            out.append(Port(str(sp.get("name") or ""), number, str(sp.get("protocol") or "TCP"),
                            sp.get("appProtocol") or None))
    return out


def target_ref(pod: Obj) -> Obj:
    m = meta(pod)
    ref: Obj = {"kind": "Pod", "namespace": m.get("namespace", ""), "name": m.get("name", "")}
    if m.get("uid"):
        ref["uid"] = m["uid"]
    return ref


def hostname(service: Obj, pod: Obj) -> str | None:
    """A pod's hostname is published only when its subdomain names this Service (DNS A records)."""
    s = spec(pod)
    if s.get("hostname") and s.get("subdomain") == meta(service).get("name") \
            and meta(pod).get("namespace") == meta(service).get("namespace"):
        return str(s["hostname"])
    return None


def service_labels(service: Obj, reserved: Iterable[str] = ()) -> dict[str, str]:
    """The Service's labels as copied onto its Endpoints / EndpointSlices, with the headless marker."""
    skip = set(reserved) | {HEADLESS_LABEL}
    labels = {str(k): str(v) for k, v in (meta(service).get("labels") or {}).items() if k not in skip}
    if headless(service):
        labels[HEADLESS_LABEL] = ""
    return labels


def sorted_pods(pods: Iterable[Obj]) -> list[Obj]:
    return sorted(pods, key=lambda p: (str(meta(p).get("name") or ""), str(meta(p).get("uid") or "")))


def owner_reference(service: Obj) -> Obj:
    m = meta(service)
    return {"apiVersion": "v1", "kind": "Service", "name": m.get("name", ""), "uid": m.get("uid", ""),
            "controller": True, "blockOwnerDeletion": True}


def strip_none(obj: Mapping[str, Any]) -> Obj:
    return {k: v for k, v in obj.items() if v is not None}
