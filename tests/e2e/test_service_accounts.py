"""Service accounts with the real kubectl: `kubectl create token`, tokens as credentials (RBAC,
bound pods), the token volume pods get, and the kube-root-ca.crt ConfigMap of every namespace."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest

from tests.conftest import Kubectl, Netplane

pytestmark = pytest.mark.e2e

MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def whoami(kubectl: Kubectl, token: str) -> list[list[str]]:
    return [line.split(None, 1) for line in kubectl("--token", token, "auth", "whoami").splitlines()]


def forbidden_list_pods(ns: str, where: str) -> str:
    scope = f'in the namespace "{where}"' if where else "at the cluster scope"
    return (f'Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:{ns}:default" cannot '
            f'list resource "pods" in API group "" {scope}')


def test_create_token_and_grant_it_access(kubectl: Kubectl, ns: str) -> None:
    token = kubectl("create", "token", "default", "-n", ns).strip()
    issued = claims(token)
    assert issued["sub"] == f"system:serviceaccount:{ns}:default"
    assert issued["aud"] == ["https://kubernetes.default.svc.cluster.local"]
    assert issued["exp"] - issued["iat"] == 3600
    rows = whoami(kubectl, token)
    assert ["Username", f"system:serviceaccount:{ns}:default"] in rows
    assert ["Groups", f"[system:serviceaccounts system:serviceaccounts:{ns} system:authenticated]"] in rows
    uid = kubectl("get", "serviceaccount", "default", "-n", ns, "-o", "jsonpath={.metadata.uid}")
    assert ["UID", uid] in rows

    # Nothing by default; a RoleBinding grants in its namespace, a ClusterRoleBinding everywhere.
    denied = kubectl.run("--token", token, "get", "pods", "-n", ns, check=False)
    assert denied.returncode != 0 and denied.stderr.strip() == forbidden_list_pods(ns, ns)
    kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", ns)
    kubectl("create", "rolebinding", "sa-reads-pods", "--role=pod-reader", f"--serviceaccount={ns}:default",
            "-n", ns)
    allowed = kubectl.run("--token", token, "get", "pods", "-n", ns)
    assert allowed.stderr.strip() == f"No resources found in {ns} namespace."
    denied = kubectl.run("--token", token, "get", "pods", "-A", check=False)
    assert denied.stderr.strip() == forbidden_list_pods(ns, "")
    name = f"sa-pods-{ns}"
    kubectl("create", "clusterrole", name, "--verb=list", "--resource=pods")
    try:
        kubectl("create", "clusterrolebinding", name, f"--clusterrole={name}", f"--serviceaccount={ns}:default")
        assert kubectl.run("--token", token, "get", "pods", "-A").returncode == 0
        assert kubectl("--token", token, "auth", "can-i", "list", "pods", "-n", "kube-system").strip() == "yes"
    finally:
        kubectl.run("delete", "clusterrolebinding", name, check=False)
        kubectl.run("delete", "clusterrole", name, check=False)


def test_token_lifetime_and_errors(kubectl: Kubectl, ns: str) -> None:
    token = kubectl("create", "token", "default", "-n", ns, "--duration", "10m").strip()
    assert claims(token)["exp"] - claims(token)["iat"] == 600
    short = kubectl.run("create", "token", "default", "-n", ns, "--duration", "5m", check=False)
    assert short.stderr.strip() == ('error: failed to create token: TokenRequest.authentication.k8s.io "" is '
                                    "invalid: spec.expirationSeconds: Invalid value: 300: may not specify a duration "
                                    "less than 10 minutes")
    missing = kubectl.run("create", "token", "nobody", "-n", ns, check=False)
    assert missing.stderr.strip() == 'error: failed to create token: serviceaccounts "nobody" not found'
    other = kubectl("create", "token", "default", "-n", ns, "--audience", "vault").strip()
    signed, signature = token.rsplit(".", 1)
    forged = f"{signed}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
    for bad in (other, forged):
        rejected = kubectl.run("--token", bad, "auth", "whoami", check=False)
        assert rejected.returncode != 0 and "Unauthorized" in rejected.stderr
    resources = json.loads(kubectl("get", "--raw", "/api/v1"))["resources"]
    assert {"name": "serviceaccounts/token", "singularName": "", "namespaced": True, "kind": "TokenRequest",
            "verbs": ["create"], "group": "authentication.k8s.io", "version": "v1"} in resources


def test_a_token_bound_to_a_pod_ends_with_the_pod(kubectl: Kubectl, ns: str) -> None:
    kubectl("run", "holder", "-n", ns, "--image=busybox:1.36", "--restart=Never", "--", "sleep", "3600")
    token = kubectl("create", "token", "default", "-n", ns, "--bound-object-kind", "Pod",
                    "--bound-object-name", "holder").strip()
    uid = kubectl("get", "pod", "holder", "-n", ns, "-o", "jsonpath={.metadata.uid}")
    assert claims(token)["kubernetes.io"]["pod"] == {"name": "holder", "uid": uid}
    rows = [line.split() for line in kubectl("--token", token, "auth", "whoami").splitlines()]
    assert ["Extra:", "authentication.kubernetes.io/pod-name", "[holder]"] in rows
    assert ["Extra:", "authentication.kubernetes.io/pod-uid", f"[{uid}]"] in rows
    kubectl("delete", "pod", "holder", "-n", ns, "--wait=false")
    gone = kubectl.run("--token", token, "auth", "whoami", check=False)
    assert gone.returncode != 0
    assert gone.stderr.strip() == "error: You must be logged in to the server (Unauthorized)"
    wrong = kubectl.run("create", "token", "default", "-n", ns, "--bound-object-kind", "Pod",
                        "--bound-object-name", "holder", check=False)
    assert wrong.stderr.strip() == 'error: failed to create token: pods "holder" not found'


def _pod(kubectl: Kubectl, ns: str, name: str, **spec: Any) -> dict[str, Any]:
    overrides = json.dumps({"spec": spec}) if spec else "{}"
    kubectl("run", name, "-n", ns, "--image=busybox:1.36", "--restart=Never", f"--overrides={overrides}", "--",
            "sleep", "3600")
    pod: dict[str, Any] = json.loads(kubectl("get", "pod", name, "-n", ns, "-o", "json"))
    return pod


def test_pods_get_the_token_volume(kubectl: Kubectl, ns: str) -> None:
    _pod(kubectl, ns, "mounted")
    volume = kubectl("get", "pod", "mounted", "-n", ns, "-o", "jsonpath={.spec.volumes[0].name}")
    assert volume.startswith("kube-api-access-") and len(volume) == len("kube-api-access-") + 5
    mount = kubectl("get", "pod", "mounted", "-n", ns, "-o",
                    "jsonpath={.spec.containers[0].volumeMounts[0].mountPath} {.spec.containers[0].volumeMounts[0]"
                    ".name} {.spec.containers[0].volumeMounts[0].readOnly} {.spec.serviceAccountName}")
    assert mount == f"{MOUNT} {volume} true default"
    projected = json.loads(kubectl("get", "pod", "mounted", "-n", ns, "-o", "jsonpath={.spec.volumes[0].projected}"))
    assert projected == {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}

    off = _pod(kubectl, ns, "unmounted", automountServiceAccountToken=False)
    assert "volumes" not in off["spec"] and "volumeMounts" not in off["spec"]["containers"][0]
    kubectl("create", "serviceaccount", "quiet", "-n", ns)
    kubectl("patch", "serviceaccount", "quiet", "-n", ns, "-p", '{"automountServiceAccountToken": false}')
    quiet = _pod(kubectl, ns, "quiet", serviceAccountName="quiet")
    assert "volumes" not in quiet["spec"] and quiet["spec"]["serviceAccountName"] == "quiet"


def test_a_missing_service_account_is_refused(kubectl: Kubectl, ns: str) -> None:
    refused = kubectl.run("run", "lost", "-n", ns, "--image=busybox:1.36", "--restart=Never",
                          '--overrides={"spec": {"serviceAccountName": "ghost"}}', check=False)
    assert refused.returncode != 0
    assert refused.stderr.strip() == (f'Error from server (Forbidden): pods "lost" is forbidden: error looking up '
                                      f'service account {ns}/ghost: serviceaccount "ghost" not found')


def test_every_namespace_has_the_root_ca(kubectl: Kubectl, netplane: Netplane) -> None:
    ns = f"t-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", ns)
    try:
        ca = (netplane.data_dir / "pki" / "ca.crt").read_text()

        def published() -> str:
            done = kubectl.run("get", "configmap", "kube-root-ca.crt", "-n", ns, "-o", r"jsonpath={.data.ca\.crt}",
                               check=False)
            return done.stdout if done.returncode == 0 else ""

        assert _eventually(published) == ca
        kubectl("delete", "configmap", "kube-root-ca.crt", "-n", ns)
        assert _eventually(published) == ca
        kubectl("patch", "configmap", "kube-root-ca.crt", "-n", ns, "-p", '{"data": {"ca.crt": "not a CA"}}')
        assert _eventually(lambda: published() == ca)
    finally:
        kubectl.run("delete", "namespace", ns, "--wait=false", check=False)


def _eventually(check: Any, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)
