"""ING-4 (the IngressNginx kind): an instance lays out its class, workload and Service; deleting it removes them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Kubectl
from tests.e2e.clusters import wait_until

pytestmark = pytest.mark.e2e


def get_json(kubectl: Kubectl, *args: str) -> Any:
    result = kubectl.run("get", *args, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def test_guide_instance_lays_out_its_controller(kubectl: Kubectl) -> None:
    kubectl.run("create", "namespace", "ingress-nginx-operator", check=False)
    kubectl("apply", "-f", "tests/e2e/guide_examples/ehc-ingress-nginx.yaml")
    try:
        workload = wait_until("the controller Deployment", lambda: get_json(
            kubectl, "deployment", "demo-ingress-nginx-controller", "-n", "ingress-nginx-operator"))
        template = workload["spec"]["template"]
        assert workload["spec"]["replicas"] == 1
        assert template["metadata"]["annotations"] == {"endpoint-health-checker.io/enabled": "true"}
        assert template["spec"]["containers"][0]["args"][:2] == ["--class", "nginx"]
        ingress_class = get_json(kubectl, "ingressclass", "nginx")
        assert ingress_class["spec"]["controller"] == "k8s.io/ingress-nginx"
        service = get_json(kubectl, "service", "demo-ingress-nginx-controller", "-n", "ingress-nginx-operator")
        assert service["spec"]["type"] == "LoadBalancer"
        assert [p["port"] for p in service["spec"]["ports"]] == [80, 443]
        def row() -> str | None:
            out = kubectl("get", "ingressnginx", "demo", "-n", "ingress-nginx-operator")
            return out if "nginx" in out else None

        assert "Deploying" in wait_until("the status", row)  # nothing runs pods in this session

        kubectl("patch", "ingressnginx", "demo", "-n", "ingress-nginx-operator", "--type", "merge", "-p", json.dumps(
            {"spec": {"controller": {"replicaCount": 2, "kind": "Deployment", "hostNetwork": True,
                                     "nodeSelector": {"ingress": "yes"},
                                     "service": {"type": "NodePort", "nodePorts": {"http": 30180}}}}}))

        def updated() -> Any:
            got = get_json(kubectl, "deployment", "demo-ingress-nginx-controller", "-n", "ingress-nginx-operator")
            return got if got and got["spec"]["replicas"] == 2 else None

        pod_spec = wait_until("the new values", updated)["spec"]["template"]["spec"]
        assert pod_spec["hostNetwork"] is True and pod_spec["nodeSelector"]["ingress"] == "yes"
        def node_port_service() -> Any:
            got = get_json(kubectl, "service", "demo-ingress-nginx-controller", "-n", "ingress-nginx-operator")
            return got if got and got["spec"]["type"] == "NodePort" else None

        service = wait_until("the NodePort Service", node_port_service)
        assert service["spec"]["ports"][0]["nodePort"] == 30180
    finally:
        kubectl("delete", "ingressnginx", "demo", "-n", "ingress-nginx-operator")
    wait_until("uninstall to remove the controller", lambda: get_json(
        kubectl, "deployment", "demo-ingress-nginx-controller", "-n", "ingress-nginx-operator") is None)


def test_bad_values_are_refused(kubectl: Kubectl, ns: str) -> None:
    result = kubectl.run("apply", "-f", "-", check=False, input=f"""apiVersion: ingress-nginx.alauda.io/v1
kind: IngressNginx
metadata: {{name: bad, namespace: {ns}}}
spec:
  controller:
    replicaCount: -1
    kind: StatefulSet
    service: {{type: External}}
""")
    assert result.returncode != 0
    for field in ("spec.controller.replicaCount", "spec.controller.kind", "spec.controller.service.type"):
        assert field in result.stderr, result.stderr
