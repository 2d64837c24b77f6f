"""Cloud load-balancer annotations (SVC-9): say on the Service that nothing here acts on them.

For a LoadBalancer Service carrying AWS EKS, Huawei CCE, Azure AKS or Google GKE load-balancer
annotations (see `netplane.model.cloud_lb`), one Normal Event `CloudProviderAnnotations` names the
provider(s), so `kubectl describe svc` explains why no cloud load balancer appears. The Event has a
name derived from the Service's uid and the message, so it is written once per Service and set of
providers, across retries, resyncs and controller restarts alike.
"""

from __future__ import annotations

import hashlib
import logging
import socket
from typing import Any

from netplane.controllers.endpoints import SERVICES
from netplane.controllers.kube.client import Client
from netplane.controllers.kube.errors import AlreadyExists, NotFound
from netplane.controllers.kube.resources import EVENTS
from netplane.controllers.runtime.conditions import now_rfc3339
from netplane.controllers.runtime.controller import Result
from netplane.controllers.runtime.informer import Informer
from netplane.controllers.runtime.manager import Manager
from netplane.model.cloud_lb import providers_in

log = logging.getLogger("netplane.cloudlb")

Obj = dict[str, Any]
REASON = "CloudProviderAnnotations"
COMPONENT = "netplane-cloud-lb"


def announcement(service: Obj) -> str | None:
    """The Event message for this Service, or None when it deserves none."""
    if (service.get("spec") or {}).get("type") != "LoadBalancer":
        return None
    providers = providers_in((service.get("metadata") or {}).get("annotations"))
    if not providers:
        return None
    names = [p.name for p in providers]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return (f"Service has cloud load-balancer annotations for {listed}; no cloud provider acts on them "
            "in this cluster, they are kept for reference only")


def event_name(service: Obj, message: str) -> str:
    meta = service["metadata"]
    digest = hashlib.sha256(f"{meta.get('uid', '')}\n{message}".encode()).hexdigest()[:10]
    return f"{meta['name']}.cloud-lb-{digest}"


class CloudAnnotations:
    def __init__(self, client: Client, services: Informer):
        self.client = client
        self.services = services
        self.host = socket.gethostname()
        self.done: dict[str, str] = {}  # service key -> name of the event written (or found) for it

    async def reconcile(self, key: str) -> Result:
        service = self.services.cache.get(key)
        if service is None or (service.get("metadata") or {}).get("deletionTimestamp"):
            self.done.pop(key, None)
            return Result()
        message = announcement(service)
        if message is None:
            return Result()
        name = event_name(service, message)
        if self.done.get(key) == name:
            return Result()
        meta = service["metadata"]
        now = now_rfc3339()
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": "v1", "kind": "Service", "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta.get("uid", ""),
                               "resourceVersion": meta.get("resourceVersion", "")},
            "type": "Normal", "reason": REASON, "message": message,
            "source": {"component": COMPONENT, "host": self.host},
            "reportingComponent": COMPONENT, "reportingInstance": self.host,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }
        try:
            await self.client.create(EVENTS, body, meta["namespace"])
            log.info("service %s: %s", key, message)
        except AlreadyExists:
            pass
        except NotFound:  # the namespace is going away
            return Result()
        self.done[key] = name
        return Result()


def setup(mgr: Manager) -> None:
    services = mgr.informer(SERVICES)
    mgr.controller("cloud-lb-annotations", CloudAnnotations(mgr.client, services).reconcile).watch(services)
