"""CON-3 / DNS-2 / DNS-3 through the real kubectl: ClusterPlugin install, configure, uninstall.

The session's API server runs without a data plane, so these check what the plugin controller lays
out and what admission refuses; DNS answers from pods are in tests/e2e/test_cluster_dns.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Kubectl
from tests.e2e.clusters import wait_until

pytestmark = pytest.mark.e2e


def get_json(kubectl: Kubectl, *args: str) -> Any:
    result = kubectl.run("get", *args, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


@pytest.fixture
def coredns_config(kubectl: Kubectl) -> Iterator[None]:
    """Puts the coredns plugin's configuration back after a test changed it."""
    yield
    kubectl("patch", "clusterplugin", "coredns", "--type", "merge", "-p", '{"spec":{"config":null}}')


def test_coredns_is_installed_from_start(kubectl: Kubectl) -> None:
    plugins = kubectl("get", "clusterplugins")
    assert plugins.splitlines()[0].split() == ["NAME", "READY", "REASON", "AGE"]
    assert "coredns" in plugins
    service = wait_until("the kube-dns Service", lambda: get_json(kubectl, "service", "kube-dns", "-n", "kube-system"))
    assert service["spec"]["clusterIP"] == "10.96.0.10"
    assert [(p["name"], p["port"], p["protocol"]) for p in service["spec"]["ports"]] == [
        ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")]
    deployment = wait_until("the coredns Deployment",
                          lambda: get_json(kubectl, "deployment", "coredns", "-n", "kube-system"))
    assert deployment["spec"]["replicas"] == 2
    assert deployment["metadata"]["ownerReferences"][0]["kind"] == "ClusterPlugin"
    rules = get_json(kubectl, "clusterrole", "system:coredns")["rules"]
    assert any("endpointslices" in r["resources"] for r in rules)
    # Nothing runs pods in this session, so the plugin says why it is not Ready.
    status = wait_until("the plugin's status", lambda: get_json(kubectl, "clusterplugin", "coredns").get("status"))
    assert status["conditions"][0]["reason"] == "Installing"
    assert "DNS pods available" in status["conditions"][0]["message"]


def test_coredns_node_selector_and_tolerations_reach_its_pods(kubectl: Kubectl, coredns_config: None) -> None:
    kubectl("patch", "clusterplugin", "coredns", "--type", "merge", "-p", json.dumps({"spec": {"config": {
        "nodeSelector": {"dns": "yes"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "dns", "effect": "NoSchedule"}],
        "hostAliases": [{"ip": "10.1.2.3", "domains": ["example.com", "test.example.com"]}]}}}))

    def template() -> Any:
        spec = get_json(kubectl, "deployment", "coredns", "-n", "kube-system")["spec"]["template"]["spec"]
        return spec if spec.get("nodeSelector", {}).get("dns") == "yes" else None

    spec = wait_until("the coredns Deployment to follow the plugin", template)
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux", "dns": "yes"}
    assert {"key": "dedicated", "operator": "Equal", "value": "dns", "effect": "NoSchedule"} in spec["tolerations"]


def test_bad_plugin_configuration_is_refused_and_changes_nothing(kubectl: Kubectl, coredns_config: None) -> None:
    before = get_json(kubectl, "clusterplugin", "coredns")
    bad = {"spec": {"config": {"hostAliases": [
        {"ip": "10.0.0.300", "domains": ["example.com"]},
        {"ip": "10.1.1.1", "domains": ["example.com", "bad domain"]}]}}}
    result = kubectl.run("patch", "clusterplugin", "coredns", "--type", "merge", "-p", json.dumps(bad), check=False)
    assert result.returncode != 0
    assert 'The ClusterPlugin "coredns" is invalid' in result.stderr
    assert "spec.config.hostAliases[0].ip: Invalid value" in result.stderr
    assert "must be an IPv4 or IPv6 address" in result.stderr
    assert "a domain may appear only once across hostAliases" in result.stderr
    assert 'spec.config.hostAliases[1].domains[1]: Invalid value: "bad domain"' in result.stderr
    ip = kubectl.run("patch", "clusterplugin", "coredns", "--type", "merge",
                     "-p", '{"spec":{"config":{"upstreams":["not-an-ip"]}}}', check=False)
    assert ip.returncode != 0 and "spec.config.upstreams[0]" in ip.stderr
    after = get_json(kubectl, "clusterplugin", "coredns")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_nodelocaldns_install_configure_uninstall(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input="apiVersion: netplane.io/v1alpha1\nkind: ClusterPlugin\n"
                                      "metadata: {name: nodelocaldns}\nspec: {config: {ip: 169.254.20.10}}\n")
    try:
        daemonset = wait_until("the node-local-dns DaemonSet",
                             lambda: get_json(kubectl, "daemonset", "node-local-dns", "-n", "kube-system"))
        pod_spec = daemonset["spec"]["template"]["spec"]
        assert pod_spec["hostNetwork"] is True
        args = pod_spec["containers"][0]["args"]
        assert args[:5] == ["cache", "--listen", "169.254.20.10", "--cluster-dns", "10.96.0.10"]
        assert pod_spec["containers"][0]["securityContext"]["capabilities"]["add"] == ["NET_ADMIN"]

        kubectl("patch", "clusterplugin", "nodelocaldns", "--type", "merge",
                "-p", '{"spec":{"config":{"ip":"fd00::10"}}}')
        wait_until("the cache to move to fd00::10", lambda: "fd00::10" in json.dumps(
            get_json(kubectl, "daemonset", "node-local-dns", "-n", "kube-system")))
    finally:
        kubectl("delete", "clusterplugin", "nodelocaldns")
    wait_until("uninstall to remove the DaemonSet",
             lambda: get_json(kubectl, "daemonset", "node-local-dns", "-n", "kube-system") is None)


def test_unknown_and_later_plugins_say_so(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input="apiVersion: netplane.io/v1alpha1\nkind: ClusterPlugin\n"
                                      "metadata: {name: no-such-plugin}\n---\n"
                                      "apiVersion: netplane.io/v1alpha1\nkind: ClusterPlugin\n"
                                      "metadata: {name: multus}\n")
    try:
        def rows() -> Any:
            out = kubectl("get", "clusterplugins", "no-such-plugin", "multus")
            return out if "UnknownPlugin" in out and "NotAvailable" in out else None

        wait_until("plugin status", rows)
        message = get_json(kubectl, "clusterplugin", "no-such-plugin")["status"]["conditions"][0]["message"]
        assert message == ("no plugin named no-such-plugin; known: coredns, nodelocaldns, "
                           "endpoint-health-checker, multus")
    finally:
        kubectl("delete", "clusterplugin", "no-such-plugin", "multus")
