"""The real kubectl (every version on the machine) against `netplane up --no-dataplane`."""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import Kubectl

pytestmark = pytest.mark.e2e

MANIFESTS = Path(__file__).parent / "manifests"


def test_create_namespace_deployment_configmap_secret(kubectl: Kubectl, ns: str) -> None:
    # kubectl create sends protobuf bodies for these.
    assert kubectl("create", "deployment", "web", "--image=nginx:1.27", "--replicas=2", "-n", ns).strip() == \
        "deployment.apps/web created"
    kubectl("create", "configmap", "cfg", "--from-literal=a=1", "-n", ns)
    kubectl("create", "secret", "generic", "sec", "--from-literal=password=s3cret", "-n", ns)
    deploy = json.loads(kubectl("get", "deployment", "web", "-n", ns, "-o", "json"))
    assert deploy["spec"]["replicas"] == 2
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert deploy["spec"]["strategy"]["type"] == "RollingUpdate"
    assert kubectl("get", "configmap", "cfg", "-n", ns, "-o", "jsonpath={.data.a}") == "1"
    assert kubectl("get", "secret", "sec", "-n", ns, "-o", "jsonpath={.type}") == "Opaque"
    names = kubectl("get", "namespaces", "-o", "name").split()
    assert f"namespace/{ns}" in names and "namespace/kube-system" in names


def test_service_table_columns_and_output_formats(kubectl: Kubectl, ns: str) -> None:
    kubectl("apply", "-n", ns, "-f", str(MANIFESTS / "service-web.yaml"))
    table = kubectl("get", "svc", "web", "-n", ns).splitlines()
    assert table[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    cells = table[1].split()
    assert cells[0] == "web" and cells[1] == "NodePort" and cells[3] == "<none>"
    assert cells[2].startswith("10.") and cells[4].startswith("80:3") and cells[4].endswith("/TCP")
    wide = kubectl("get", "svc", "web", "-n", ns, "-o", "wide").splitlines()
    assert wide[0].split()[-1] == "SELECTOR" and wide[1].split()[-1] == "app=web"
    assert kubectl("get", "svc", "-n", ns, "-l", "tier=front", "-o", "name").split() == ["service/web"]
    assert kubectl("get", "svc", "-n", ns, "-l", "tier!=front", "-o", "name").strip() == ""
    labels = kubectl("get", "svc", "web", "-n", ns, "--show-labels").splitlines()
    assert labels[0].split()[-1] == "LABELS" and "tier=front" in labels[1]
    everywhere = kubectl("get", "svc", "-A").splitlines()
    assert everywhere[0].split()[0] == "NAMESPACE"
    assert any(line.split()[:2] == [ns, "web"] for line in everywhere)
    assert any(line.split()[:2] == ["default", "kubernetes"] for line in everywhere)
    as_yaml = kubectl("get", "svc", "web", "-n", ns, "-o", "yaml")
    assert "clusterIP: 10." in as_yaml and "sessionAffinity: None" in as_yaml


def test_apply_reapply_strategic_merge_on_deployment(kubectl: Kubectl, ns: str) -> None:
    out = kubectl("apply", "-n", ns, "-f", str(MANIFESTS / "deployment-web.yaml"))
    assert out.strip() == "deployment.apps/web created"
    assert kubectl("apply", "-n", ns, "-f", str(MANIFESTS / "deployment-web.yaml")).strip() == \
        "deployment.apps/web unchanged"
    changed = (MANIFESTS / "deployment-web.yaml").read_text().replace("nginx:1.27", "nginx:1.28") \
        .replace("replicas: 2", "replicas: 3").replace("name: A", "name: B")
    assert kubectl("apply", "-n", ns, "-f", "-", input=changed).strip() == "deployment.apps/web configured"
    deploy = json.loads(kubectl("get", "deploy", "web", "-n", ns, "-o", "json"))
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.28"
    assert [e["name"] for e in container["env"]] == ["B"]
    assert deploy["spec"]["replicas"] == 3
    assert deploy["metadata"]["generation"] == 2


def test_custom_resource_lifecycle(kubectl: Kubectl, ns: str) -> None:
    kubectl("apply", "-f", str(MANIFESTS / "crd-widgets.yaml"))
    kubectl("wait", "--for=condition=Established", "crd/widgets.example.netplane.io", "--timeout=30s")
    widget = (MANIFESTS / "widget.yaml").read_text()
    assert kubectl("apply", "-n", ns, "-f", "-", input=widget).strip() == "widget.example.netplane.io/w1 created"
    table = kubectl("get", "widgets", "-n", ns).splitlines()
    assert table[0].split() == ["NAME", "SIZE", "REPLICAS", "AGE"]
    assert table[1].split()[:3] == ["w1", "small", "1"]
    changed = widget.replace("size: small", "size: large")
    assert kubectl("apply", "-n", ns, "-f", "-", input=changed).strip() == "widget.example.netplane.io/w1 configured"
    assert kubectl("get", "wd", "w1", "-n", ns, "-o", "jsonpath={.spec.size}") == "large"
    bad = kubectl.run("apply", "-n", ns, "-f", "-", input=widget.replace("size: small", "size: huge"),
                      check=False)
    assert bad.returncode != 0
    assert 'spec.size: Unsupported value: "huge": supported values: "small", "large"' in bad.stderr
    explained = kubectl("explain", "widgets.spec.size")
    assert "How big the widget is" in explained


def test_get_watch_sees_change(kubectl: Kubectl, ns: str) -> None:
    kubectl("create", "configmap", "watched", "--from-literal=a=1", "-n", ns)
    cmd = [str(kubectl.binary), "--kubeconfig", str(kubectl.kubeconfig), "--cache-dir", str(kubectl.cache_dir),
           "get", "configmap", "watched", "-n", ns, "-w", "-o", "jsonpath={.data.a}{\"\\n\"}"]
    watcher = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        kubectl("patch", "configmap", "watched", "-n", ns, "--type=merge", "-p", '{"data":{"a":"2"}}')
        deadline = time.monotonic() + 20
        seen: list[str] = []
        assert watcher.stdout is not None
        while time.monotonic() < deadline and "2" not in seen:
            seen.append(watcher.stdout.readline().strip())
        assert seen[:1] == ["1"] and "2" in seen
    finally:
        watcher.kill()
        watcher.wait()


def test_edit_with_editor(kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    kubectl("create", "configmap", "editme", "--from-literal=colour=red", "-n", ns)
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/colour: red/colour: blue/' \"$1\"\n")
    editor.chmod(0o755)
    out = kubectl("edit", "configmap", "editme", "-n", ns, env={"KUBE_EDITOR": str(editor)})
    assert "configmap/editme edited" in out
    assert kubectl("get", "cm", "editme", "-n", ns, "-o", "jsonpath={.data.colour}") == "blue"


def test_patch_types(kubectl: Kubectl, ns: str) -> None:
    kubectl("apply", "-n", ns, "-f", str(MANIFESTS / "service-web.yaml"))
    kubectl("patch", "svc", "web", "-n", ns, "--type=merge", "-p", '{"metadata":{"labels":{"x":"1"}}}')
    kubectl("patch", "svc", "web", "-n", ns, "--type=json",
            "-p", '[{"op":"add","path":"/metadata/labels/y","value":"2"}]')
    kubectl("patch", "svc", "web", "-n", ns, "--type=strategic",
            "-p", '{"spec":{"ports":[{"port":443,"targetPort":8443,"name":"https"}]}}')
    svc = json.loads(kubectl("get", "svc", "web", "-n", ns, "-o", "json"))
    assert svc["metadata"]["labels"]["x"] == "1" and svc["metadata"]["labels"]["y"] == "2"
    assert sorted(p["port"] for p in svc["spec"]["ports"]) == [80, 443]
    bad = kubectl.run("patch", "svc", "web", "-n", ns, "--type=json",
                      "-p", '[{"op":"replace","path":"/spec/nope/x","value":1}]', check=False)
    assert bad.returncode != 0 and "doc is missing path: /spec/nope/x" in bad.stderr


def test_scale_and_expose(kubectl: Kubectl, ns: str) -> None:
    kubectl("create", "deployment", "my-app", "--image=nginx", "-n", ns)
    assert kubectl("scale", "deployment", "my-app", "--replicas=4", "-n", ns).strip() == \
        "deployment.apps/my-app scaled"
    assert kubectl("get", "deploy", "my-app", "-n", ns, "-o", "jsonpath={.spec.replicas}") == "4"
    # The guide's own command.
    out = kubectl("expose", "deployment", "my-app", "--port=80", "--target-port=8080", "--name=test-service",
                  "--type=NodePort", "-n", ns)
    assert out.strip() == "service/test-service exposed"
    svc = json.loads(kubectl("get", "svc", "test-service", "-n", ns, "-o", "json"))
    assert svc["spec"]["type"] == "NodePort"
    assert svc["spec"]["ports"][0]["targetPort"] == 8080
    assert 30000 <= svc["spec"]["ports"][0]["nodePort"] <= 32767
    assert svc["spec"]["selector"] == {"app": "my-app"}


def test_delete_waits_for_finalizer(kubectl: Kubectl, ns: str) -> None:
    kubectl("create", "configmap", "held", "--from-literal=a=1", "-n", ns)
    kubectl("patch", "cm", "held", "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":["example.com/hold"]}}')
    cmd = [str(kubectl.binary), "--kubeconfig", str(kubectl.kubeconfig), "--cache-dir", str(kubectl.cache_dir),
           "delete", "cm", "held", "-n", ns, "--timeout=30s"]
    deleting = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        assert deleting.poll() is None, "delete returned while a finalizer was still present"
        stamp = kubectl("get", "cm", "held", "-n", ns, "-o", "jsonpath={.metadata.deletionTimestamp}")
        assert stamp
        kubectl("patch", "cm", "held", "-n", ns, "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
        out, _ = deleting.communicate(timeout=30)
        assert deleting.returncode == 0 and 'configmap "held" deleted' in out
    finally:
        if deleting.poll() is None:
            deleting.kill()
    assert kubectl.run("get", "cm", "held", "-n", ns, check=False).returncode != 0


def _owned_configmap(owner: dict, name: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": name, "namespace": owner["metadata"]["namespace"], "ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "Deployment", "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "blockOwnerDeletion": True}]}, "data": {"a": "1"}})


@pytest.mark.parametrize("cascade", ["foreground", "background", "orphan"])
def test_cascading_deletion(kubectl: Kubectl, ns: str, cascade: str) -> None:
    kubectl("create", "deployment", "owner", "--image=nginx", "-n", ns)
    owner = json.loads(kubectl("get", "deploy", "owner", "-n", ns, "-o", "json"))
    kubectl("apply", "-f", "-", input=_owned_configmap(owner, "dependent"))
    kubectl("delete", "deploy", "owner", "-n", ns, f"--cascade={cascade}", "--timeout=30s")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        left = kubectl.run("get", "cm", "dependent", "-n", ns, "-o", "json", check=False)
        if cascade == "orphan" or left.returncode != 0:
            break
        time.sleep(0.2)
    if cascade == "orphan":
        assert "ownerReferences" not in json.loads(left.stdout)["metadata"]
    else:
        assert left.returncode != 0 and "NotFound" in left.stderr


def test_namespace_deletion_removes_contents(kubectl: Kubectl) -> None:
    name = f"gone-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    kubectl("create", "configmap", "c1", "--from-literal=a=1", "-n", name)
    kubectl("apply", "-n", name, "-f", str(MANIFESTS / "service-web.yaml"))
    assert kubectl("get", "sa", "default", "-n", name, "-o", "name").strip() == "serviceaccount/default"
    kubectl("delete", "namespace", name, "--timeout=30s")
    assert kubectl.run("get", "namespace", name, check=False).returncode != 0
    kubectl("create", "namespace", name)
    # Only what every new namespace gets: c1 did not come back.
    assert kubectl("get", "cm", "-n", name, "-o", "name").strip() == "configmap/kube-root-ca.crt"
    kubectl("delete", "namespace", name, "--timeout=30s")


def test_wait_for_condition_and_delete(kubectl: Kubectl, ns: str) -> None:
    kubectl("apply", "-f", str(MANIFESTS / "crd-widgets.yaml"))
    kubectl("wait", "--for=condition=Established", "crd/widgets.example.netplane.io", "--timeout=30s")
    kubectl("apply", "-n", ns, "-f", str(MANIFESTS / "widget.yaml"))
    cmd = [str(kubectl.binary), "--kubeconfig", str(kubectl.kubeconfig), "--cache-dir", str(kubectl.cache_dir),
           "wait", "--for=condition=Ready", "widget/w1", "-n", ns, "--timeout=30s"]
    waiting = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    status = {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Test", "message": "ok",
                                         "lastTransitionTime": "2026-11-26T00:00:00Z"}]}}
    kubectl("patch", "widget", "w1", "-n", ns, "--subresource=status", "--type=merge", "-p", json.dumps(status))
    out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 0, err
    assert "condition met" in out
    kubectl("delete", "widget", "w1", "-n", ns, "--wait=false")
    kubectl("wait", "--for=delete", "widget/w1", "-n", ns, "--timeout=30s")


def test_explain_builtin(kubectl: Kubectl) -> None:
    out = kubectl("explain", "deployment.spec.strategy")
    assert "KIND:" in out and "Deployment" in out
    assert "rollingUpdate" in out


def test_dry_run_server_and_diff(kubectl: Kubectl, ns: str) -> None:
    out = kubectl("apply", "-n", ns, "-f", str(MANIFESTS / "service-web.yaml"), "--dry-run=server")
    assert "(server dry run)" in out
    assert kubectl.run("get", "svc", "web", "-n", ns, check=False).returncode != 0
    kubectl("apply", "-n", ns, "-f", str(MANIFESTS / "service-web.yaml"))
    same = kubectl.run("diff", "-n", ns, "-f", str(MANIFESTS / "service-web.yaml"), check=False)
    assert same.returncode == 0, same.stderr
    changed = (MANIFESTS / "service-web.yaml").read_text().replace("tier: front", "tier: back")
    differs = kubectl.run("diff", "-n", ns, "-f", "-", input=changed, check=False)
    assert differs.returncode == 1 and "+    tier: back" in differs.stdout


def test_validation_errors_read_like_kubernetes(kubectl: Kubectl, ns: str) -> None:
    bad = textwrap.dedent("""\
        apiVersion: v1
        kind: Service
        metadata:
          name: bad
        spec:
          ports:
          - port: 70000
            targetPort: 80
        """)
    result = kubectl.run("apply", "-n", ns, "-f", "-", input=bad, check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == 'The Service "bad" is invalid: spec.ports[0].port: Invalid value: 70000: ' \
        'must be between 1 and 65535, inclusive'
    unknown = bad.replace("port: 70000", "port: 80\n    bogus: 1")
    defaulted_target = bad.replace("    targetPort: 80\n", "")
    result = kubectl.run("apply", "-n", ns, "-f", "-", input=defaulted_target, check=False)
    # targetPort defaults to port, so Kubernetes reports both.
    assert "* spec.ports[0].targetPort: Invalid value: 70000" in result.stderr
    result = kubectl.run("apply", "-n", ns, "-f", "-", input=unknown, check=False)
    assert result.returncode != 0 and 'unknown field "spec.ports[0].bogus"' in result.stderr
    assert kubectl.run("get", "svc", "bad", "-n", ns, check=False).returncode != 0
    missing = kubectl.run("get", "svc", "nope", "-n", ns, check=False)
    assert 'Error from server (NotFound): services "nope" not found' in missing.stderr
