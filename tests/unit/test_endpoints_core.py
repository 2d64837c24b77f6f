"""The pure core of the Endpoints and EndpointSlice controllers: pods + Service → desired objects."""

from __future__ import annotations

from typing import Any

import pytest

from netplane.controllers.endpoints import slices, subsets
from netplane.controllers.endpoints.core import resolve_port

Obj = dict[str, Any]


def svc(ports: list[Obj] | None = None, **spec: Any) -> Obj:
    base: Obj = {"selector": {"app": "web"}, "clusterIP": "10.96.0.10", "ipFamilies": ["IPv4"],
                 "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}] if ports is None else ports}
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid", "labels": {"team": "a"}},
            "spec": {**base, **spec}}


def pod(name: str, ip: str = "", *, ready: bool = True, labels: Obj | None = None, node: str = "n1",
        ports: list[Obj] | None = None, deleting: bool = False, phase: str = "Running", **spec: Any) -> Obj:
    n = int(name.rsplit("-", 1)[-1]) if name[-1].isdigit() else 9
    meta: Obj = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "labels": labels or {"app": "web"}}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"metadata": meta,
            "spec": {"nodeName": node, "containers": [{"name": "c", "ports": ports or []}], **spec},
            "status": {"phase": phase, "podIP": ip or f"10.16.0.{n}",
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def addresses(subset: Obj, field: str = "addresses") -> list[str]:
    return [a["ip"] for a in subset.get(field) or []]


def test_ready_and_not_ready_pods_share_a_subset_with_the_port() -> None:
    want = subsets.desired(svc(), [pod("p-1"), pod("p-2", ready=False), pod("p-3")])
    (subset,) = want.subsets
    assert addresses(subset) == ["10.16.0.1", "10.16.0.3"]
    assert addresses(subset, "notReadyAddresses") == ["10.16.0.2"]
    assert subset["ports"] == [{"port": 8080, "protocol": "TCP"}]
    first = subset["addresses"][0]
    assert first["targetRef"] == {"kind": "Pod", "namespace": "ns", "name": "p-1", "uid": "uid-p-1"}
    assert first["nodeName"] == "n1" and "hostname" not in first
    assert want.labels == {"team": "a", subsets.SKIP_MIRROR: "true"}


@pytest.mark.parametrize(("case", "pods", "service", "ready", "not_ready"), [
    ("other labels are not selected", [pod("p-1"), pod("p-2", labels={"app": "db"})], svc(), ["10.16.0.1"], []),
    ("other namespace", [pod("p-1"), {**pod("p-2"), "metadata": {**pod("p-2")["metadata"], "namespace": "x"}}],
     svc(), ["10.16.0.1"], []),
    ("no IP yet", [pod("p-1"), {**pod("p-2"), "status": {"phase": "Pending"}}], svc(), ["10.16.0.1"], []),
    ("terminating pods leave Endpoints", [pod("p-1"), pod("p-2", deleting=True)], svc(), ["10.16.0.1"], []),
    ("publishNotReadyAddresses: all ready, terminating too",
     [pod("p-1", ready=False), pod("p-2", deleting=True)], svc(publishNotReadyAddresses=True),
     ["10.16.0.1", "10.16.0.2"], []),
    ("finished pods with restartPolicy Never", [pod("p-1"), pod("p-2", phase="Succeeded", restartPolicy="Never"),
                                                pod("p-3", phase="Failed", restartPolicy="Never")],
     svc(), ["10.16.0.1"], []),
    ("a failed pod with restartPolicy Always stays (not ready)", [pod("p-1", phase="Failed", ready=False)],
     svc(), [], ["10.16.0.1"]),
])
def test_which_pods_become_addresses(case: str, pods: list[Obj], service: Obj, ready: list[str],
                                     not_ready: list[str]) -> None:
    want = subsets.desired(service, pods)
    assert [addresses(s) for s in want.subsets] == ([ready] if ready or not_ready else [])
    assert [addresses(s, "notReadyAddresses") for s in want.subsets] == ([not_ready] if ready or not_ready else [])


@pytest.mark.parametrize(("target", "protocol", "container_ports", "expected"), [
    (8080, "TCP", [], 8080),  # a number is used even if no container declares it
    ("http", "TCP", [{"name": "http", "containerPort": 9376}], 9376),
    ("http", "UDP", [{"name": "http", "containerPort": 9376}], None),  # protocol must match
    ("http", "TCP", [{"name": "metrics", "containerPort": 9100}], None),
    (None, "TCP", [], 80),  # no targetPort: the Service port
])
def test_target_port_resolution(target: Any, protocol: str, container_ports: list[Obj], expected: int | None) -> None:
    port = {"port": 80, "protocol": protocol, **({"targetPort": target} if target is not None else {})}
    assert resolve_port(pod("p-1", ports=container_ports), port) == expected


def test_a_pod_without_the_named_port_is_left_out_of_that_ports_subset() -> None:
    service = svc([{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"},
                   {"name": "metrics", "port": 9100, "targetPort": 9100, "protocol": "TCP"}])
    pods = [pod("p-1", ports=[{"name": "web", "containerPort": 8080, "protocol": "TCP"}]),
            pod("p-2", ports=[{"name": "web", "containerPort": 8081, "protocol": "TCP"}]), pod("p-3")]
    got = {tuple((p["name"], p["port"]) for p in s["ports"]): addresses(s)
           for s in subsets.desired(service, pods).subsets}
    assert got == {(("http", 8080),): ["10.16.0.1"], (("http", 8081),): ["10.16.0.2"],
                   (("metrics", 9100),): ["10.16.0.1", "10.16.0.2", "10.16.0.3"]}


def test_ports_offered_by_the_same_addresses_share_one_subset() -> None:
    service = svc([{"name": "a", "port": 80, "targetPort": 80, "protocol": "TCP"},
                   {"name": "b", "port": 53, "targetPort": 53, "protocol": "UDP"}])
    (subset,) = subsets.desired(service, [pod("p-1"), pod("p-2")]).subsets
    assert subset["ports"] == [{"name": "a", "port": 80, "protocol": "TCP"},
                               {"name": "b", "port": 53, "protocol": "UDP"}]


def test_headless_service_without_ports_and_hostnames() -> None:
    service = svc([], clusterIP="None", ipFamilies=None)
    pods = [pod("p-1", hostname="db-0", subdomain="web"), pod("p-2", hostname="db-1", subdomain="other")]
    want = subsets.desired(service, pods)
    (subset,) = want.subsets
    assert "ports" not in subset
    assert [a.get("hostname") for a in subset["addresses"]] == ["db-0", None]
    assert want.labels["service.kubernetes.io/headless"] == ""


def test_endpoints_are_capped_at_1000_addresses_ready_first() -> None:
    pods = [pod(f"p-{i}", ip=f"10.16.{i // 250}.{i % 250 + 1}", ready=i >= 10) for i in range(1005)]
    want = subsets.desired(svc(), pods)
    (subset,) = want.subsets
    assert want.truncated and len(subset["addresses"]) == 995 and len(subset["notReadyAddresses"]) == 5


def test_unchanged_endpoints_are_up_to_date_after_the_server_defaults_them() -> None:
    want = subsets.desired(svc(), [pod("p-1")])
    stored = subsets.apply(None, svc(), want)
    stored["metadata"]["resourceVersion"] = "7"
    assert subsets.up_to_date(stored, want)
    assert not subsets.up_to_date(stored, subsets.desired(svc(), [pod("p-1"), pod("p-2")]))
    assert not subsets.up_to_date(stored, subsets.desired(svc(), [pod("p-1", ready=False)]))


# ---------------------------------------------------------------- EndpointSlices

def stored(plan: slices.Plan, start: int = 0) -> list[Obj]:
    """The plan's creates as the API would store them (named, with a resourceVersion)."""
    out = []
    for i, obj in enumerate(plan.create, start):
        m = {**obj["metadata"], "name": f"web-{i:05d}", "resourceVersion": str(i + 1)}
        del m["generateName"]
        out.append({**obj, "metadata": m})
    return out


def conditions(s: Obj) -> dict[str, tuple[bool, bool, bool]]:
    return {e["targetRef"]["name"]: (e["conditions"]["ready"], e["conditions"]["serving"],
                                     e["conditions"]["terminating"]) for e in s["endpoints"]}


def test_one_slice_with_labels_owner_and_conditions() -> None:
    plan = slices.plan(svc(), [pod("p-1"), pod("p-2", ready=False), pod("p-3", deleting=True)], [])
    (s,) = plan.create
    assert not plan.update and not plan.delete
    assert s["metadata"]["generateName"] == "web-" and s["addressType"] == "IPv4"
    assert s["metadata"]["labels"] == {"team": "a", "kubernetes.io/service-name": "web",
                                       "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    assert s["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                                 "uid": "svc-uid", "controller": True, "blockOwnerDeletion": True}]
    assert s["ports"] == [{"name": "", "port": 8080, "protocol": "TCP"}]
    assert conditions(s) == {"p-1": (True, True, False), "p-2": (False, False, False), "p-3": (False, True, True)}
    assert all("zone" not in e and e["nodeName"] == "n1" for e in s["endpoints"])


def test_a_resync_writes_nothing_and_changes_edit_slices_in_place() -> None:
    pods = [pod(f"p-{i}") for i in range(1, 4)]
    existing = stored(slices.plan(svc(), pods, []))
    assert slices.plan(svc(), pods, existing).empty
    plan = slices.plan(svc(), pods[:1], existing)  # scaled to 1
    assert not plan.create and not plan.delete
    assert [s["metadata"]["name"] for s in plan.update] == ["web-00000"]
    assert [e["addresses"] for e in plan.update[0]["endpoints"]] == [["10.16.0.1"]]
    assert existing[0]["endpoints"][1]["addresses"] == ["10.16.0.2"]  # the cached object was not mutated


def test_slices_hold_at_most_100_endpoints_and_new_ones_fill_free_room() -> None:
    pods = [pod(f"p-{i}", ip=f"10.16.{i // 200}.{i % 200 + 1}") for i in range(250)]
    existing = stored(slices.plan(svc(), pods, []))
    assert [len(s["endpoints"]) for s in existing] == [100, 100, 50]
    more = [*pods, pod("p-250", ip="10.17.0.1")]
    plan = slices.plan(svc(), more, existing)
    assert not plan.create and not plan.delete and [s["metadata"]["name"] for s in plan.update] == ["web-00002"]
    assert len(plan.update[0]["endpoints"]) == 51


def test_port_sets_and_address_types_split_slices() -> None:
    service = svc([{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}],
                  ipFamilies=["IPv4", "IPv6"])
    dual = {"podIPs": [{"ip": "10.16.0.1"}, {"ip": "fd00::1"}]}
    p1 = pod("p-1", ports=[{"name": "web", "containerPort": 8080}])
    p1["status"].update(dual)
    p2 = pod("p-2")  # no "web" port: its endpoint goes to a slice without ports
    got = {(s["addressType"], tuple(p["port"] for p in s["ports"])): [e["addresses"][0] for e in s["endpoints"]]
           for s in slices.plan(service, [p1, p2], []).create}
    assert got == {("IPv4", (8080,)): ["10.16.0.1"], ("IPv4", ()): ["10.16.0.2"], ("IPv6", (8080,)): ["fd00::1"]}


def test_placeholder_when_no_pods_and_reused_when_pods_come() -> None:
    (placeholder,) = stored(slices.plan(svc(), [], []))
    assert placeholder["endpoints"] == [] and placeholder["ports"] == []
    assert slices.plan(svc(), [], [placeholder]).empty
    plan = slices.plan(svc(), [pod("p-1")], [placeholder])
    assert not plan.create and not plan.delete
    assert plan.update[0]["metadata"]["name"] == "web-00000" and len(plan.update[0]["endpoints"]) == 1


def test_an_external_name_service_loses_controller_slices() -> None:
    existing = stored(slices.plan(svc(), [pod("p-1")], []))
    plan = slices.plan(svc(type="ExternalName"), [pod("p-1")], existing)
    assert plan.delete == existing and not plan.create and not plan.update


def test_slices_of_a_recreated_service_are_replaced() -> None:
    existing = stored(slices.plan(svc(), [pod("p-1")], []))
    recreated = svc()
    recreated["metadata"]["uid"] = "new-uid"
    plan = slices.plan(recreated, [pod("p-1")], existing)
    assert plan.delete == existing and len(plan.create) == 1
    assert plan.create[0]["metadata"]["ownerReferences"][0]["uid"] == "new-uid"
