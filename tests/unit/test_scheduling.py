"""The scheduler's pure core: filters, their order, spreading, and kube-scheduler's failure message."""

from __future__ import annotations

from typing import Any

import pytest

from netplane.scheduling.matching import node_selector_matches, tolerates
from netplane.scheduling.placement import Load, place

Obj = dict[str, Any]


def node(name: str, labels: dict[str, str] | None = None, taints: list[Obj] | None = None, *,
         ready: bool = True, unschedulable: bool = False) -> Obj:
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"taints": taints or [], **({"unschedulable": True} if unschedulable else {})},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def affinity(*terms: Obj) -> Obj:
    return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": list(terms)}}}}


def expr(key: str, op: str, *values: str) -> Obj:
    return {"matchExpressions": [{"key": key, "operator": op, **({"values": list(values)} if values else {})}]}


SSD = node("a", {"disk": "ssd", "cores": "8"})
HDD = node("b", {"disk": "hdd", "cores": "2"})
BARE = node("c")


@pytest.mark.parametrize(("spec", "matching"), [
    ({}, "abc"),
    ({"nodeSelector": {"disk": "ssd"}}, "a"),
    (affinity(expr("disk", "In", "ssd", "hdd")), "ab"),
    (affinity(expr("disk", "NotIn", "ssd")), "bc"),
    (affinity(expr("disk", "Exists")), "ab"),
    (affinity(expr("disk", "DoesNotExist")), "c"),
    (affinity(expr("cores", "Gt", "4")), "a"),
    (affinity(expr("cores", "Lt", "4")), "b"),
    (affinity(expr("disk", "Gt", "4")), ""),                                # not an integer: no match
    (affinity(expr("disk", "In", "ssd"), expr("disk", "In", "hdd")), "ab"),  # terms are ORed
    (affinity({"matchExpressions": [{"key": "disk", "operator": "Exists"},
                                    {"key": "cores", "operator": "Lt", "values": ["4"]}]}), "b"),  # ANDed
    (affinity({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["c"]}]}), "c"),
    (affinity({"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["c"]}]}), "ab"),
    (affinity({}), ""),                                                      # an empty term matches nothing
    ({"nodeSelector": {"disk": "ssd"}, **affinity(expr("disk", "In", "hdd"))}, ""),  # both must hold
])
def test_node_selection(spec: Obj, matching: str) -> None:
    assert "".join(n["metadata"]["name"] for n in (SSD, HDD, BARE) if node_selector_matches(spec, n)) == matching


@pytest.mark.parametrize(("toleration", "taint", "expected"), [
    ({"key": "k", "value": "v", "effect": "NoSchedule"}, {"key": "k", "value": "v", "effect": "NoSchedule"}, True),
    ({"key": "k", "value": "w"}, {"key": "k", "value": "v", "effect": "NoSchedule"}, False),
    ({"key": "k", "operator": "Exists"}, {"key": "k", "value": "v", "effect": "NoExecute"}, True),
    ({"key": "k", "operator": "Exists", "effect": "NoExecute"}, {"key": "k", "effect": "NoSchedule"}, False),
    ({"operator": "Exists"}, {"key": "anything", "effect": "NoSchedule"}, True),
    ({"key": "other", "operator": "Exists"}, {"key": "k", "effect": "NoSchedule"}, False),
])
def test_tolerations(toleration: Obj, taint: Obj, expected: bool) -> None:
    assert tolerates(toleration, taint) is expected


DB_TAINT = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}


@pytest.mark.parametrize(("spec", "nodes", "expected"), [
    ({"nodeSelector": {"disk": "nvme"}}, [node("n1"), node("n2", taints=[DB_TAINT])],
     "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
     "1 node(s) had untolerated taint {dedicated: db}. "
     "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."),
    ({}, [node("n1", unschedulable=True), node("n2", ready=False)],
     "0/2 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, "
     "1 node(s) were unschedulable. "
     "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."),
    ({}, [node("n1", taints=[{"key": "gpu", "effect": "NoExecute"}])] * 2,
     "0/2 nodes are available: 2 node(s) had untolerated taint {gpu: }. "
     "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."),
    ({}, [], "no nodes available to schedule pods"),
])
def test_unschedulable_messages(spec: Obj, nodes: list[Obj], expected: str) -> None:
    assert place(spec, nodes, {}).message == expected
    assert place(spec, nodes, {}).node is None


@pytest.mark.parametrize(("spec", "nodes", "loads", "chosen"), [
    ({}, [node("n1"), node("n2")], {}, "n1"),                                           # ties: by name
    ({}, [node("n1"), node("n2")], {"n1": Load(pods=1, siblings=1)}, "n2"),             # spread siblings
    ({}, [node("n1"), node("n2")], {"n1": Load(pods=1), "n2": Load(pods=5, siblings=0)}, "n1"),
    ({}, [node("n1"), node("n2")], {"n1": Load(pods=9, siblings=0), "n2": Load(pods=1, siblings=1)}, "n1"),
    ({}, [node("n1", unschedulable=True), node("n2")], {"n2": Load(pods=9, siblings=9)}, "n2"),  # cordoned
    ({"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}]},
     [node("n1", unschedulable=True), node("n2")], {"n2": Load(pods=1)}, "n1"),
    ({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]},
     [node("n1", taints=[DB_TAINT])], {}, "n1"),
    ({}, [node("n1", taints=[{"key": "x", "effect": "PreferNoSchedule"}]), node("n2")], {}, "n2"),
])
def test_placement(spec: Obj, nodes: list[Obj], loads: dict[str, Load], chosen: str) -> None:
    assert place(spec, nodes, loads).node == chosen
