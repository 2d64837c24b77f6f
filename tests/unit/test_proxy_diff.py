"""Incremental proxy updates: random sequences of Service and EndpointSlice changes.

Two properties: a `Renderer` kept across passes (which re-renders only Services whose objects
changed) renders what a fresh one renders; and the incremental transaction between two renderings,
run against a model of the kernel's table that refuses what nftables refuses (adding an element
twice, deleting a missing one, deleting a chain something still jumps to, referring to a chain
that does not exist), leaves exactly the table a full sync of the new rendering defines.
"""

from __future__ import annotations

import copy
import ipaddress as ia
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netplane.dataplane.proxy import NodeConfig, Renderer, Ruleset, incremental_transaction, render
from netplane.dataplane.proxy.apply import T

pytestmark = pytest.mark.unit

CFG = NodeConfig("node1", (), (ia.IPv4Network("10.16.0.0/16"),))
NAMES = ["a", "b", "c", "d"]
ENDPOINT_IPS = ["10.16.0.5", "10.16.0.6", "10.16.0.7", "10.16.1.8"]


@dataclass
class Table:
    """The parts of a table the proxy writes: set/map elements by key, chains' rules."""

    sets: dict[str, dict[str, str]] = field(default_factory=dict)
    chains: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, rs: Ruleset) -> Table:
        return cls({s.name: {_key(e): e for e in s.elements} for s in rs.sets},
                   {c.name: list(c.rules) for c in rs.chains})

    def references(self) -> set[str]:
        text = [e for elements in self.sets.values() for e in elements.values()]
        text += [r for rules in self.chains.values() for r in rules]
        return {m for t in text for m in re.findall(r"(?:goto|jump) ([-\w.]+)", t)}

    def run(self, script: str) -> None:
        for line in script.splitlines():
            verb, kind, rest = _split(line)
            name, _, body = rest.partition(" ")
            if (verb, kind) in (("add", "set"), ("add", "map")):
                assert name not in self.sets, line
                self.sets[name] = {}
            elif (verb, kind) in (("flush", "set"), ("flush", "map")):
                self.sets[name].clear()
            elif (verb, kind) in (("delete", "set"), ("delete", "map")):
                assert f"@{name}" not in " ".join(r for rules in self.chains.values() for r in rules), line
                del self.sets[name]
            elif (verb, kind) == ("add", "element"):
                for e in _elements(body):
                    assert _key(e) not in self.sets[name], f"{line}: {e} exists"
                    self.sets[name][_key(e)] = e
            elif (verb, kind) == ("delete", "element"):
                for key in _elements(body):
                    assert key in self.sets[name], f"{line}: {key} missing"
                    del self.sets[name][key]
            elif (verb, kind) == ("add", "chain"):
                assert name not in self.chains, line
                self.chains[name] = []
            elif (verb, kind) == ("flush", "chain"):
                self.chains[name] = []
            elif (verb, kind) == ("delete", "chain"):
                assert not self.chains[name] and name not in self.references(), f"{line}: still in use"
                del self.chains[name]
            elif (verb, kind) == ("add", "rule"):
                self.chains[name].append(body)
            else:
                raise AssertionError(f"unexpected command {line}")
            # Like the kernel: nothing may lead to a chain that does not exist.
            assert self.references() <= self.chains.keys(), line


def _split(line: str) -> tuple[str, str, str]:
    verb, kind, rest = line.split(" ", 2)
    assert rest.startswith(T + " "), line
    return verb, kind, rest[len(T) + 1:]


def _elements(body: str) -> list[str]:
    assert body.startswith("{ ") and body.endswith(" }"), body
    return body[2:-2].split(", ")


def _key(element: str) -> str:
    return element.split(" : ", 1)[0]


def service(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    port: dict[str, Any] = {"name": "p", "port": 80, "protocol": spec["protocol"]}
    body: dict[str, Any] = {"type": spec["type"], "clusterIP": spec["ip"], "clusterIPs": [spec["ip"]],
                            "ports": [port], "externalTrafficPolicy": spec["etp"],
                            "internalTrafficPolicy": spec["itp"], "externalIPs": spec["external"]}
    if spec["type"] == "NodePort":
        port["nodePort"] = spec["node_port"]
    if spec["affinity"]:
        body["sessionAffinity"] = "ClientIP"
    return {"metadata": {"namespace": "ns", "name": name}, "spec": body}


def endpoint_slice(name: str, endpoints: list[tuple[str, str, bool]], protocol: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": f"{name}-1", "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "ports": [{"name": "p", "port": 8080, "protocol": protocol}],
            "endpoints": [{"addresses": [ip], "nodeName": node, "conditions": {"ready": ready}}
                          for ip, node, ready in endpoints]}


SPECS = st.fixed_dictionaries({
    "type": st.sampled_from(["ClusterIP", "NodePort"]),
    "protocol": st.sampled_from(["TCP", "UDP"]),
    # Few addresses and node ports: clashes between services happen.
    "ip": st.sampled_from(["10.96.0.10", "10.96.0.11", "10.96.0.12", "10.96.0.13"]),
    "node_port": st.sampled_from([30001, 30002, 30003]),
    "external": st.lists(st.sampled_from(["203.0.113.1", "203.0.113.2"]), max_size=1),
    "etp": st.sampled_from(["Cluster", "Local"]),
    "itp": st.sampled_from(["Cluster", "Local"]),
    "affinity": st.booleans(),
})
ENDPOINTS = st.lists(st.tuples(st.sampled_from(ENDPOINT_IPS), st.sampled_from(["node1", "node2"]), st.booleans()),
                     max_size=4, unique_by=lambda e: e[0])
STATES = st.dictionaries(st.sampled_from(NAMES), st.tuples(SPECS, ENDPOINTS), max_size=4)
# One Service changes at a time (its spec, its endpoints, or it goes), so others keep their objects.
CHANGE = st.one_of(st.none(), SPECS, ENDPOINTS, st.tuples(SPECS, ENDPOINTS))
CHANGES = st.lists(st.tuples(st.sampled_from(NAMES), CHANGE), min_size=1, max_size=8)


def objects(state: dict[str, tuple[dict[str, Any], list[tuple[str, str, bool]]]],
            last: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The state's objects, reusing last pass's object wherever it is equal (as an informer keeps
    an object until it changes), so the renderer's cache is exercised."""
    services: list[dict[str, Any]] = []
    slices: list[dict[str, Any]] = []
    for name, (spec, endpoints) in state.items():
        for kind, obj, out in (("svc", service(name, spec), services),
                               ("es", endpoint_slice(name, endpoints, spec["protocol"]), slices)):
            kept = last.get(f"{kind}/{name}")
            out.append(kept if kept == obj else obj)
    return services, slices


def _states(start: dict[str, Any], changes: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    states, state = [start], dict(start)
    for name, change in changes:
        if change is None:
            state.pop(name, None)
        elif isinstance(change, dict):
            state[name] = (change, state[name][1] if name in state else [])
        elif isinstance(change, list):
            if name in state:
                state[name] = (state[name][0], change)
        else:
            state[name] = change
        states.append(dict(state))
    return states


@settings(max_examples=200, deadline=None)
@given(STATES, CHANGES, st.booleans())
def test_incremental_passes_match_full_renderings(start: dict[str, Any], changes: list[tuple[str, Any]],
                                                  reorder: bool) -> None:
    renderer = Renderer()
    last: dict[str, dict[str, Any]] = {}
    applied: Ruleset | None = None
    table = Table()
    for step, state in enumerate(_states(start, changes)):
        services, slices = objects(state, last)
        if reorder and step % 2:  # as after a relist: the same objects in another order
            services, slices = services[::-1], slices[::-1]
        last = {f"svc/{s['metadata']['name']}": s for s in services}
        last.update({f"es/{s['metadata']['labels']['kubernetes.io/service-name']}": s for s in slices})
        rs = renderer.render(CFG, services, slices)
        fresh = render(CFG, copy.deepcopy(services), copy.deepcopy(slices))
        assert rs == fresh and rs.problems == fresh.problems
        if applied is None:
            table = Table.of(rs)
        else:
            table.run(incremental_transaction(applied, rs))
            assert table == Table.of(rs)
        applied = rs


def test_unchanged_services_keep_their_fragments() -> None:
    spec = {"type": "ClusterIP", "protocol": "TCP", "ip": "10.96.0.10", "node_port": 30001, "external": [],
            "etp": "Cluster", "itp": "Cluster", "affinity": False}
    services = [service("a", spec), service("b", {**spec, "ip": "10.96.0.11"})]
    slices = [endpoint_slice("a", [("10.16.0.5", "node1", True)], "TCP"),
              endpoint_slice("b", [("10.16.0.6", "node1", True)], "TCP")]
    renderer = Renderer()
    first = renderer.render(CFG, services, slices)
    changed = endpoint_slice("b", [("10.16.0.7", "node1", True)], "TCP")
    second = renderer.render(CFG, services, [slices[0], changed])
    a, b = (next(t for t in first.fragments if f"-ns-{n}-" in t) for n in "ab")
    assert second.fragments[a] is first.fragments[a]
    assert second.fragments[b] != first.fragments[b]
    assert renderer.render(CFG, services, [slices[0], changed]) == second
    # A clash settles by name, whichever object arrives first, and gives way when the owner goes.
    clash = service("c", spec)
    third = renderer.render(CFG, [clash, *services], [slices[0], changed])
    assert third.problems == ("service ns/c: 10.96.0.10/tcp/80 already used by ns/a (skipped)",)
    fourth = renderer.render(CFG, [clash, services[1]], [changed])
    assert fourth.problems == () and any("-ns-c-" in t for t in fourth.fragments)
