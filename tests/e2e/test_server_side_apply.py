"""`kubectl apply --server-side` against netplane: ownership, conflicts, pruning, managedFields."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Kubectl, Netplane
from tests.helpers import Client

pytestmark = pytest.mark.e2e


def _deployment(replicas: int | None = 2, labels: str = "{app: web, tier: front}") -> str:
    replicas_line = f"\n  replicas: {replicas}" if replicas is not None else ""
    return textwrap.dedent("""\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
          labels: LABELS
        spec:REPLICAS
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              containers:
              - name: nginx
                image: nginx:1.25
                ports: [{containerPort: 80}]
        """).replace("LABELS", labels).replace("\nspec:REPLICAS", "\nspec:" + replicas_line)


def _managed(kubectl: Kubectl, *target: str) -> list[dict[str, Any]]:
    obj = json.loads(kubectl("get", *target, "-o", "json", "--show-managed-fields"))
    entries: list[dict[str, Any]] = obj["metadata"]["managedFields"]
    return entries


def test_apply_creates_and_updates_a_deployment_and_a_configmap(kubectl: Kubectl, ns: str) -> None:
    assert "serverside-applied" in kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=_deployment(2))
    assert "serverside-applied" in kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=_deployment(3))
    assert kubectl("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}") == "3"
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: '1', b: '2'}\n"
    kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=cm)
    kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=cm.replace("'2'", "'3'"))
    assert json.loads(kubectl("get", "cm", "settings", "-n", ns, "-o", "jsonpath={.data}")) == {"a": "1", "b": "3"}
    [entry] = _managed(kubectl, "cm", "settings", "-n", ns)
    assert entry["manager"] == "kubectl" and entry["operation"] == "Apply" and entry["apiVersion"] == "v1"
    assert entry["fieldsType"] == "FieldsV1" and entry["fieldsV1"] == {"f:data": {"f:a": {}, "f:b": {}}}
    # Applying the same configuration again changes nothing, not even the resourceVersion.
    version = kubectl("get", "cm", "settings", "-n", ns, "-o", "jsonpath={.metadata.resourceVersion}")
    kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=cm.replace("'2'", "'3'"))
    assert kubectl("get", "cm", "settings", "-n", ns, "-o", "jsonpath={.metadata.resourceVersion}") == version
    # managedFields are stored, and kubectl shows them only when asked to.
    assert "managedFields" not in kubectl("get", "cm", "settings", "-n", ns, "-o", "yaml")


def test_a_second_manager_conflicts_on_replicas_until_forced(kubectl: Kubectl, ns: str) -> None:
    kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=_deployment(2))
    result = kubectl.run("apply", "--server-side", "--field-manager=other", "-n", ns, "-f", "-",
                         input=_deployment(5), check=False)
    assert result.returncode != 0
    assert 'error: Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas' in result.stderr
    assert "--force-conflicts" in result.stderr  # kubectl's own advice follows the server's message
    assert kubectl("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}") == "2"
    kubectl("apply", "--server-side", "--field-manager=other", "--force-conflicts", "-n", ns, "-f", "-",
            input=_deployment(5))
    assert kubectl("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}") == "5"
    entries = {e["manager"]: e for e in _managed(kubectl, "deploy", "web", "-n", ns)}
    # The deployment controller writes too (revision annotation, status), as kube-controller-manager does.
    assert set(entries) - {"netplane-controller"} == {"kubectl", "other"}
    assert "f:replicas" in entries["other"]["fieldsV1"]["f:spec"]
    assert "f:replicas" not in entries["kubectl"]["fieldsV1"]["f:spec"]
    yaml_out = kubectl("get", "deploy", "web", "-n", ns, "-o", "yaml", "--show-managed-fields")
    assert "manager: kubectl\n" in yaml_out and "manager: other\n" in yaml_out


def test_an_update_by_another_manager_conflicts_with_its_version(kubectl: Kubectl, ns: str) -> None:
    kubectl("create", "configmap", "conf", "-n", ns, "--from-literal=a=1")
    [entry] = _managed(kubectl, "cm", "conf", "-n", ns)
    assert (entry["manager"], entry["operation"]) == ("kubectl-create", "Update")
    assert entry["fieldsV1"] == {"f:data": {".": {}, "f:a": {}}}
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: conf}\ndata: {a: '2'}\n"
    result = kubectl.run("apply", "--server-side", "-n", ns, "-f", "-", input=cm, check=False)
    assert 'Apply failed with 1 conflict: conflict with "kubectl-create" using v1: .data.a' in result.stderr


def test_removing_a_field_from_the_manifest_removes_it_from_the_object(kubectl: Kubectl, ns: str) -> None:
    kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=_deployment(4))
    kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=_deployment(None, "{app: web}"))
    labels = json.loads(kubectl("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.metadata.labels}"))
    assert labels == {"app": "web"}
    # replicas is gone from the object, so defaulting puts back Kubernetes' default.
    assert kubectl("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}") == "1"


def _raw_patch(netplane: Netplane, path: str, body: str, content_type: str) -> tuple[int, dict[str, Any]]:
    """A PATCH kubectl cannot send: kubectl always names a fieldManager for apply."""
    return Client(netplane).raw("PATCH", path, body.encode(), content_type)


def test_apply_without_field_manager_and_force_on_other_patches_are_invalid(netplane: Netplane, ns: str) -> None:
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    code, status = _raw_patch(netplane, f"/api/v1/namespaces/{ns}/configmaps/x", body, "application/apply-patch+yaml")
    assert (code, status["reason"]) == (422, "Invalid")
    assert status["message"] == ('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                                 "is required for apply patch")
    code, status = _raw_patch(netplane, f"/api/v1/namespaces/{ns}/configmaps/x?force=true", "{}",
                              "application/merge-patch+json")
    assert code == 422 and "force: Forbidden: may not be specified for non-apply patch" in status["message"]


CRD = textwrap.dedent("""\
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata: {name: gadgets.ssa.example.com}
    spec:
      group: ssa.example.com
      scope: Namespaced
      names: {plural: gadgets, singular: gadget, kind: Gadget}
      versions:
      - name: v1
        served: true
        storage: true
        schema:
          openAPIV3Schema:
            type: object
            properties:
              spec:
                type: object
                properties:
                  size: {type: integer}
                  color: {type: string}
                  tags: {type: array, items: {type: string}, x-kubernetes-list-type: set}
    """)


@pytest.fixture
def gadget_crd(kubectl: Kubectl) -> Iterator[None]:
    kubectl("apply", "--server-side", "-f", "-", input=CRD)
    kubectl("wait", "--for=condition=Established", "crd/gadgets.ssa.example.com", "--timeout=30s")
    yield


def test_apply_of_a_custom_resource(kubectl: Kubectl, ns: str, gadget_crd: None) -> None:
    gadget = ("apiVersion: ssa.example.com/v1\nkind: Gadget\nmetadata: {name: g1}\n"
              "spec: {size: 2, color: red, tags: [a]}\n")
    kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=gadget)
    kubectl("apply", "--server-side", "--field-manager=tagger", "-n", ns, "-f", "-",
            input="apiVersion: ssa.example.com/v1\nkind: Gadget\nmetadata: {name: g1}\nspec: {tags: [b]}\n")
    kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=gadget.replace("color: red, ", ""))
    spec = json.loads(kubectl("get", "gadget", "g1", "-n", ns, "-o", "jsonpath={.spec}"))
    assert spec == {"size": 2, "tags": ["a", "b"]}
    entries = {e["manager"]: e["fieldsV1"] for e in _managed(kubectl, "gadget", "g1", "-n", ns)}
    assert entries["tagger"] == {"f:spec": {"f:tags": {'v:"b"': {}}}}
    assert entries["kubectl"] == {"f:spec": {"f:size": {}, "f:tags": {'v:"a"': {}}}}
