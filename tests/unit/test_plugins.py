"""Cluster plugin layouts and the rules of the plugin controller (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from netplane.controllers.plugins import readiness, underlay_only
from netplane.controllers.plugins.manifests import ClusterFacts, coredns_objects, nodelocaldns_objects
from netplane.controllers.runtime.ensure import covers
from netplane.dataplane.dns import cluster_dns_ip, cluster_dns_ip_from_kubernetes_ip

pytestmark = pytest.mark.unit

FACTS = ClusterFacts("10.96.0.10", ("172.31.250.254",))


def plugin(name: str, **config: Any) -> dict[str, Any]:
    return {"apiVersion": "netplane.io/v1alpha1", "kind": "ClusterPlugin",
            "metadata": {"name": name, "uid": "u-1"}, "spec": {"config": config}}


def test_the_dns_address_is_the_ranges_tenth() -> None:
    assert cluster_dns_ip("10.96.0.0/12") == "10.96.0.10"
    assert cluster_dns_ip_from_kubernetes_ip("10.96.0.1") == "10.96.0.10"
    assert cluster_dns_ip("fd00:10:96::/108") == "fd00:10:96::a"


def test_coredns_layout() -> None:
    objects = coredns_objects(plugin("coredns", nodeSelector={"dns": "yes"},
                                     tolerations=[{"key": "k", "operator": "Exists"}]), FACTS)
    kinds = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert kinds == [("ServiceAccount", "coredns"), ("ClusterRole", "system:coredns"),
                     ("ClusterRoleBinding", "system:coredns"), ("Service", "kube-dns"), ("Deployment", "coredns")]
    assert all(o["metadata"]["ownerReferences"][0]["uid"] == "u-1" for o in objects)
    service, deployment = objects[3], objects[4]
    assert service["spec"]["clusterIP"] == "10.96.0.10"
    assert service["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux", "dns": "yes"}
    assert {"key": "k", "operator": "Exists"} in pod["tolerations"]
    assert pod["dnsPolicy"] == "Default"
    args = pod["containers"][0]["args"]
    assert args[0] == "serve" and args[-2:] == ["--upstream", "172.31.250.254"]


def test_nodelocaldns_layout_defaults_its_address() -> None:
    (daemonset,) = nodelocaldns_objects(plugin("nodelocaldns"), FACTS)
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["tolerations"] == [{"operator": "Exists"}]
    assert pod["containers"][0]["args"][:3] == ["cache", "--listen", "169.254.20.10"]
    (v6,) = nodelocaldns_objects(plugin("nodelocaldns", ip="fd00::10"), FACTS)
    assert v6["spec"]["template"]["spec"]["containers"][0]["args"][2] == "fd00::10"


def test_covers_ignores_defaults_but_sees_changes() -> None:
    stored = {"spec": {"replicas": 2, "template": {"spec": {"restartPolicy": "Always",
                                                             "containers": [{"name": "a", "args": ["x"]}]}}}}
    assert covers(stored, {"spec": {"replicas": 2, "template": {"spec": {"containers": [{"args": ["x"]}]}}}})
    assert not covers(stored, {"spec": {"replicas": 3}})
    assert not covers(stored, {"spec": {"template": {"spec": {"containers": [{"args": ["x"]}, {"args": []}]}}}})
    assert not covers(stored, {"spec": {"paused": True}})


def test_underlay_only() -> None:
    def subnet(name: str, vlan: str = "") -> dict[str, Any]:
        return {"metadata": {"name": name}, "spec": {"vlan": vlan} if vlan else {}}

    assert not underlay_only([subnet("join"), subnet("ovn-default")])
    assert not underlay_only([subnet("join"), subnet("ovn-default"), subnet("u", "vlan10")])
    assert underlay_only([subnet("join", "x"), subnet("u", "vlan10")])
    assert not underlay_only([subnet("join")])


def test_readiness() -> None:
    assert readiness("coredns", None)[:2] == (False, "Installing")
    assert readiness("coredns", {"spec": {"replicas": 2}, "status": {"availableReplicas": 1}}) == (
        True, "Available", "1 of 2 DNS pods available")
    assert readiness("nodelocaldns", {"status": {"desiredNumberScheduled": 2, "numberReady": 1}})[0] is False
    assert readiness("nodelocaldns", {"status": {"desiredNumberScheduled": 2, "numberReady": 2}})[0] is True
    assert readiness("nodelocaldns", {"status": {}})[0] is False
