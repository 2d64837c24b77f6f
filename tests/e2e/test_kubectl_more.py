"""More of kubectl against netplane: paging, discovery-driven commands, events, watch tables,
client-side validation modes, protobuf `create` generators and custom resources in depth."""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Kubectl

pytestmark = pytest.mark.e2e


def _popen(kubectl: Kubectl, *args: str) -> subprocess.Popen[str]:
    cmd = [str(kubectl.binary), "--kubeconfig", str(kubectl.kubeconfig), "--cache-dir", str(kubectl.cache_dir),
           *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_get_with_chunk_size_pages_through_everything(kubectl: Kubectl, ns: str) -> None:
    for i in range(5):
        kubectl("create", "configmap", f"page-{i}", "--from-literal=a=1", "-n", ns)
    # -v=6 logs each request, so the test also sees that kubectl really paged (limit, then continue).
    result = kubectl.run("get", "configmaps", "-n", ns, "--chunk-size=2", "-v=6")
    rows = [line.split()[0] for line in result.stdout.splitlines()[1:]]
    # Every namespace also has kube-root-ca.crt, as on Kubernetes: six in all, three pages.
    assert rows == ["kube-root-ca.crt", *(f"page-{i}" for i in range(5))]
    assert result.stderr.count("continue=") == 2
    names = kubectl("get", "configmaps", "-n", ns, "--chunk-size=2", "-o", "name").split()
    assert names == ["configmap/kube-root-ca.crt", *(f"configmap/page-{i}" for i in range(5))]


def test_get_all_shows_deployment_and_service(kubectl: Kubectl, ns: str) -> None:
    kubectl("create", "deployment", "web", "--image=nginx", "-n", ns)
    kubectl("expose", "deployment", "web", "--port=80", "-n", ns)
    out = kubectl("get", "all", "-n", ns)
    names = [line.split()[0] for line in out.splitlines() if line and not line.startswith("NAME")]
    assert "service/web" in names and "deployment.apps/web" in names


def test_api_resources_and_cluster_info(kubectl: Kubectl) -> None:
    rows = {line.split()[0]: line.split() for line in kubectl("api-resources").splitlines()[1:]}
    assert rows["services"][1:] == ["svc", "v1", "true", "Service"]
    assert rows["deployments"][1:] == ["deploy", "apps/v1", "true", "Deployment"]
    assert rows["customresourcedefinitions"][1:] == ["crd,crds", "apiextensions.k8s.io/v1", "false",
                                                     "CustomResourceDefinition"]
    assert rows["jobs"][1:] == ["batch/v1", "true", "Job"]
    apps = kubectl("api-resources", "--api-group=apps", "-o", "name").split()
    assert "deployments.apps" in apps and "services" not in apps
    info = kubectl("cluster-info")
    assert "Kubernetes control plane is running at https://127.0.0.1:" in info


def _event_for(obj: dict, name: str, reason: str, message: str) -> str:
    m = obj["metadata"]
    return json.dumps({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": m["namespace"]},
        "involvedObject": {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": m["name"],
                           "namespace": m["namespace"], "uid": m["uid"]},
        "reason": reason, "message": message, "type": "Warning", "count": 1,
        "source": {"component": "acceptance-test"},
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z"})


@pytest.mark.parametrize("kind", ["service", "deployment"])
def test_describe_shows_events_of_the_object(kubectl: Kubectl, ns: str, kind: str) -> None:
    kubectl("create", "deployment", "web", "--image=nginx", "-n", ns)
    if kind == "service":
        kubectl("expose", "deployment", "web", "--port=80", "-n", ns)
    obj = json.loads(kubectl("get", kind, "web", "-n", ns, "-o", "json"))
    created = kubectl("create", "-f", "-", input=_event_for(obj, f"web.{kind}", "Poked", f"poked the {kind}"))
    assert created.strip() == f"event/web.{kind} created"
    # An event about another object of the same name must not show up.
    other = {**obj, "metadata": {**obj["metadata"], "uid": str(uuid.uuid4()), "name": "other"}}
    kubectl("create", "-f", "-", input=_event_for(other, "other.ev", "Elsewhere", "not this one"))
    out = kubectl("describe", kind, "web", "-n", ns)
    events = out.split("Events:", 1)[1].splitlines()
    assert events[1].split() == ["Type", "Reason", "Age", "From", "Message"]
    # The deployment controller's own Normal events (ScalingReplicaSet) may be listed too.
    assert [e.split()[:2] for e in events[3:] if e.strip() and "ScalingReplicaSet" not in e] == [["Warning", "Poked"]]
    assert f"acceptance-test poked the {kind}" in " ".join(events[3].split())  # column widths vary


def test_get_watch_default_table(kubectl: Kubectl, ns: str) -> None:
    kubectl("create", "configmap", "watched", "--from-literal=a=1", "-n", ns)
    watcher = _popen(kubectl, "get", "configmap", "watched", "-n", ns, "-w")
    try:
        assert watcher.stdout is not None
        header = watcher.stdout.readline().split()
        first = watcher.stdout.readline().split()
        assert header == ["NAME", "DATA", "AGE"]
        assert first[:2] == ["watched", "1"]
        kubectl("patch", "configmap", "watched", "-n", ns, "--type=merge", "-p", '{"data":{"b":"2"}}')
        deadline = time.monotonic() + 20
        second: list[str] = []
        while time.monotonic() < deadline and not second:
            second = watcher.stdout.readline().split()
        # The header is printed once, not again for the change.
        assert second[:2] == ["watched", "2"]
    finally:
        watcher.kill()
        watcher.wait()


_UNKNOWN_FIELD_SERVICE = textwrap.dedent("""\
    apiVersion: v1
    kind: Service
    metadata:
      name: lenient
    spec:
      bogus: 1
      ports:
      - port: 80
    """)


def test_apply_validate_warn_and_false(kubectl: Kubectl, ns: str) -> None:
    strict = kubectl.run("apply", "-n", ns, "-f", "-", input=_UNKNOWN_FIELD_SERVICE, check=False)
    assert strict.returncode != 0 and 'unknown field "spec.bogus"' in strict.stderr
    warned = kubectl.run("apply", "-n", ns, "--validate=warn", "-f", "-", input=_UNKNOWN_FIELD_SERVICE)
    assert warned.stdout.strip() == "service/lenient created"
    assert 'Warning: unknown field "spec.bogus"' in warned.stderr
    spec = json.loads(kubectl("get", "svc", "lenient", "-n", ns, "-o", "json"))["spec"]
    assert "bogus" not in spec and spec["ports"][0]["port"] == 80
    changed = _UNKNOWN_FIELD_SERVICE.replace("port: 80", "port: 81")
    ignored = kubectl.run("apply", "-n", ns, "--validate=false", "-f", "-", input=changed)
    assert ignored.stdout.strip() == "service/lenient configured"
    assert ignored.stderr == ""
    assert kubectl("get", "svc", "lenient", "-n", ns, "-o", "jsonpath={.spec.ports[0].port}") == "81"


def test_create_generators_send_protobuf(kubectl: Kubectl, ns: str) -> None:
    assert kubectl("create", "service", "clusterip", "cip", "--tcp=80:8080", "-n", ns).strip() == \
        "service/cip created"
    svc = json.loads(kubectl("get", "svc", "cip", "-n", ns, "-o", "json"))
    assert svc["spec"]["type"] == "ClusterIP" and svc["spec"]["clusterIP"].startswith("10.")
    assert svc["spec"]["ports"][0]["port"] == 80 and svc["spec"]["ports"][0]["targetPort"] == 8080
    assert svc["spec"]["selector"] == {"app": "cip"}

    assert kubectl("create", "serviceaccount", "robot", "-n", ns).strip() == "serviceaccount/robot created"
    assert kubectl("get", "sa", "robot", "-n", ns, "-o", "jsonpath={.metadata.name}") == "robot"

    out = kubectl("create", "ingress", "ing", "--class=default", "--rule=foo.example.com/bar*=svc1:8080",
                  "-n", ns)
    assert out.strip() == "ingress.networking.k8s.io/ing created"
    ing = json.loads(kubectl("get", "ingress", "ing", "-n", ns, "-o", "json"))
    rule = ing["spec"]["rules"][0]
    assert ing["spec"]["ingressClassName"] == "default" and rule["host"] == "foo.example.com"
    path = rule["http"]["paths"][0]
    assert path["path"] == "/bar" and path["pathType"] == "Prefix"
    assert path["backend"]["service"] == {"name": "svc1", "port": {"number": 8080}}
    table = kubectl("get", "ingress", "ing", "-n", ns).splitlines()
    assert table[1].split()[:3] == ["ing", "default", "foo.example.com"]


def test_create_job(kubectl: Kubectl, ns: str) -> None:
    out = kubectl("create", "job", "once", "--image=busybox", "-n", ns, "--", "echo", "hi")
    assert out.strip() == "job.batch/once created"
    job = json.loads(kubectl("get", "job", "once", "-n", ns, "-o", "json"))
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels["batch.kubernetes.io/job-name"] == "once" and labels["controller-uid"] == uid
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", "hi"]
    assert job["spec"]["backoffLimit"] == 6 and job["spec"]["completions"] == 1
    table = kubectl("get", "jobs", "-n", ns).splitlines()
    assert table[0].split()[:3] == ["NAME", "STATUS", "COMPLETIONS"]
    assert table[1].split()[0] == "once"
    assert "job.batch/once" in kubectl("get", "all", "-n", ns, "-o", "name").split()
    restarting = textwrap.dedent("""\
        apiVersion: batch/v1
        kind: Job
        metadata:
          name: forever
        spec:
          template:
            spec:
              containers:
              - name: c
                image: busybox
        """)
    bad = kubectl.run("apply", "-n", ns, "-f", "-", input=restarting, check=False)
    assert bad.returncode != 0
    assert 'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", ' \
        '"Never"' in bad.stderr
    kubectl("delete", "job", "once", "-n", ns)
    assert kubectl.run("get", "job", "once", "-n", ns, check=False).returncode != 0


def _crd(group: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata:
          name: gadgets.{group}
        spec:
          group: {group}
          scope: Namespaced
          names: {{plural: gadgets, singular: gadget, kind: Gadget}}
          versions:
          - name: v1beta1
            served: true
            storage: false
            schema:
              openAPIV3Schema:
                type: object
                x-kubernetes-preserve-unknown-fields: true
          - name: v1
            served: true
            storage: true
            subresources:
              status: {{}}
              scale:
                specReplicasPath: .spec.replicas
                statusReplicasPath: .status.replicas
            schema:
              openAPIV3Schema:
                type: object
                properties:
                  spec:
                    type: object
                    x-kubernetes-validations:
                    - rule: "self.replicas <= 10"
                      message: "at most 10 gadgets, please"
                    properties:
                      colour: {{type: string}}
                      replicas: {{type: integer}}
                  status:
                    type: object
                    properties:
                      replicas: {{type: integer}}
        """)


def _gadget(group: str, version: str, name: str, replicas: int) -> str:
    return json.dumps({"apiVersion": f"{group}/{version}", "kind": "Gadget", "metadata": {"name": name},
                       "spec": {"colour": "red", "replicas": replicas}})


@pytest.fixture
def gadgets(kubectl: Kubectl) -> Iterator[str]:
    """A fresh CRD group per test, so that both kubectl runs and reruns never share a kind."""
    group = f"g{uuid.uuid4().hex[:8]}.netplane.io"
    kubectl("apply", "-f", "-", input=_crd(group))
    kubectl("wait", "--for=condition=Established", f"crd/gadgets.{group}", "--timeout=30s")
    yield group
    kubectl.run("delete", "crd", f"gadgets.{group}", "--ignore-not-found", check=False)


def test_crd_serves_two_versions(kubectl: Kubectl, ns: str, gadgets: str) -> None:
    kubectl("apply", "-n", ns, "-f", "-", input=_gadget(gadgets, "v1beta1", "old", 1))
    kubectl("apply", "-n", ns, "-f", "-", input=_gadget(gadgets, "v1", "new", 2))
    for version in ("v1beta1", "v1"):
        listed = json.loads(kubectl("get", f"gadgets.{version}.{gadgets}", "-n", ns, "-o", "json"))
        assert sorted(i["metadata"]["name"] for i in listed["items"]) == ["new", "old"]
        assert {i["apiVersion"] for i in listed["items"]} == {f"{gadgets}/{version}"}
        one = kubectl("get", f"gadgets.{version}.{gadgets}", "old", "-n", ns, "-o", "yaml")
        assert f"apiVersion: {gadgets}/{version}\n" in one
    # Unqualified, kubectl uses the preferred version (the storage version here).
    assert kubectl("get", f"gadgets.{gadgets}", "new", "-n", ns, "-o", "jsonpath={.apiVersion}") == \
        f"{gadgets}/v1"


def test_crd_scale_subresource(kubectl: Kubectl, ns: str, gadgets: str) -> None:
    kubectl("apply", "-n", ns, "-f", "-", input=_gadget(gadgets, "v1", "g", 1))
    assert kubectl("scale", f"gadgets.{gadgets}", "g", "--replicas=4", "-n", ns).strip() == \
        f"gadget.{gadgets}/g scaled"
    assert kubectl("get", f"gadgets.{gadgets}", "g", "-n", ns, "-o", "jsonpath={.spec.replicas}") == "4"
    # A scale is an update of the object: its validation rules still apply.
    bad = kubectl.run("scale", f"gadgets.{gadgets}", "g", "--replicas=11", "-n", ns, check=False)
    assert bad.returncode != 0 and "at most 10 gadgets, please" in bad.stderr
    assert kubectl("get", f"gadgets.{gadgets}", "g", "-n", ns, "-o", "jsonpath={.spec.replicas}") == "4"


def test_crd_cel_rule_rejects_with_its_message(kubectl: Kubectl, ns: str, gadgets: str) -> None:
    bad = kubectl.run("apply", "-n", ns, "-f", "-", input=_gadget(gadgets, "v1", "big", 50), check=False)
    assert bad.returncode != 0
    assert bad.stderr.strip() == \
        'The Gadget "big" is invalid: spec: Invalid value: "object": at most 10 gadgets, please'
    assert kubectl.run("get", f"gadgets.{gadgets}", "big", "-n", ns, check=False).returncode != 0


def test_delete_crd_removes_its_objects_and_kind(kubectl: Kubectl, ns: str, gadgets: str,
                                                 tmp_path: Path) -> None:
    kubectl("apply", "-n", ns, "-f", "-", input=_gadget(gadgets, "v1", "doomed", 1))
    assert kubectl("delete", "crd", f"gadgets.{gadgets}").strip() == \
        f'customresourcedefinition.apiextensions.k8s.io "gadgets.{gadgets}" deleted'
    # kubectl trusts its discovery cache for hours (as against any cluster), so ask with an empty one.
    fresh = Kubectl(kubectl.binary, kubectl.kubeconfig, tmp_path / "fresh-cache")
    gone = fresh.run("get", f"gadgets.{gadgets}", "-n", ns, check=False)
    assert gone.returncode != 0
    # kubectl 1.37 adds ` in group "<group>"`.
    assert 'the server doesn\'t have a resource type "gadgets"' in gone.stderr
    # The objects went with the definition: a new CRD of the same name starts empty.
    kubectl("apply", "-f", "-", input=_crd(gadgets))
    kubectl("wait", "--for=condition=Established", f"crd/gadgets.{gadgets}", "--timeout=30s")
    again = Kubectl(kubectl.binary, kubectl.kubeconfig, tmp_path / "again-cache")
    listed = again.run("get", f"gadgets.{gadgets}", "-n", ns)
    assert listed.stdout == "" and "No resources found" in listed.stderr
