"""Users, roles and projects with the real kubectl: tokens, client certificates, RBAC, project
namespaces by label, `auth can-i`, `auth whoami`, and the audit log."""

from __future__ import annotations

import base64
import datetime as dt
import json
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from netplane import certs
from tests.conftest import ROOT, Kubectl, Netplane, kubectl_binaries, start_netplane

pytestmark = pytest.mark.e2e


def user_add(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netplane.cli", "user", "add", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


@dataclass
class Cluster:
    netplane: Netplane
    root: Path

    def kubeconfig_for(self, name: str, *args: str) -> Path:
        result = user_add(self.netplane.data_dir, name, *args)
        assert result.returncode == 0, result.stderr
        path = self.root / f"{name}.kubeconfig"
        path.write_text(result.stdout)
        return path

    def admin(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return Kubectl(kubectl_binaries()[0], self.netplane.kubeconfig, self.root / "admin-cache").run(
            *args, check=check)

    def audit(self) -> list[dict[str, object]]:
        time.sleep(1.5)  # flushed at least once a second
        path = self.netplane.data_dir / "audit.log"
        return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with tempfile.TemporaryDirectory(prefix="netplane-auth-") as tmp:
        instance = start_netplane(Path(tmp) / "data")
        c = Cluster(instance, Path(tmp))
        try:
            for ns, project in (("p1-ns", "p1"), ("p2-ns", "p2")):
                c.admin("create", "namespace", ns)
                c.admin("label", "namespace", ns, f"cpaas.io/project={project}")
            c.admin("create", "secret", "generic", "db", "--from-literal=password=p2-secret", "-n", "p2-ns")
            c.kubeconfig_for("alice", "--project", "p1")
            c.kubeconfig_for("bob", "--project", "p2", "--client-cert")
            yield c
        finally:
            instance.stop()


@pytest.fixture
def alice(cluster: Cluster, kubectl_bin: Path, tmp_path: Path) -> Kubectl:
    return Kubectl(kubectl_bin, cluster.root / "alice.kubeconfig", tmp_path / "cache")


def forbidden(verb: str, resource: str, ns: str, user: str = "alice", group: str = "") -> str:
    return (f'{resource} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
            f'in API group "{group}" in the namespace "{ns}"')


def test_user_kubeconfig_and_whoami(cluster: Cluster, alice: Kubectl) -> None:
    config = yaml.safe_load((cluster.root / "alice.kubeconfig").read_text())
    assert config["users"][0]["name"] == "alice" and config["users"][0]["user"]["token"]
    users = (cluster.netplane.data_dir / "users.json").read_text()
    assert config["users"][0]["user"]["token"] not in users
    assert (cluster.netplane.data_dir / "users.json").stat().st_mode & 0o777 == 0o600
    rows = [line.split(None, 1) for line in alice("auth", "whoami").splitlines()]
    assert rows[0] == ["ATTRIBUTE", "VALUE"]
    assert ["Username", "alice"] in rows
    assert ["Groups", "[project:p1 system:authenticated]"] in rows


def test_developer_works_in_own_project_only(cluster: Cluster, alice: Kubectl) -> None:
    name = f"web-{uuid.uuid4().hex[:6]}"
    assert alice("create", "service", "clusterip", name, "--tcp=80", "-n", "p1-ns").strip() == \
        f"service/{name} created"
    assert alice("get", "svc", name, "-n", "p1-ns", "-o", "name").strip() == f"service/{name}"

    denied = alice.run("get", "secrets", "-n", "p2-ns", check=False)
    assert denied.returncode != 0
    assert denied.stderr.strip() == "Error from server (Forbidden): " + forbidden("list", "secrets", "p2-ns")
    denied = alice.run("get", "secret", "db", "-n", "p2-ns", check=False)
    assert 'secrets "db" is forbidden: User "alice" cannot get resource "secrets"' in denied.stderr

    manifest = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                "spec": {"ports": [{"port": 80}]}}
    denied = alice.run("create", "-n", "p2-ns", "-f", "-", input=json.dumps(manifest), check=False)
    assert denied.returncode != 0 and forbidden("create", "services", "p2-ns") in denied.stderr
    denied = alice.run("create", "configmap", "c", "-n", "p2-ns", check=False)
    assert forbidden("create", "configmaps", "p2-ns") in denied.stderr
    assert cluster.admin("get", "svc", name, "-n", "p2-ns", check=False).returncode != 0

    everywhere = alice.run("get", "services", "-A", check=False)
    assert 'User "alice" cannot list resource "services" in API group "" at the cluster scope' in everywhere.stderr
    roles = alice.run("get", "rolebindings", "-n", "p1-ns", check=False)
    assert forbidden("list", "rolebindings", "p1-ns", group="rbac.authorization.k8s.io").replace(
        "rolebindings is", "rolebindings.rbac.authorization.k8s.io is") in roles.stderr
    # Namespaces: only the project's are listed, and may be read.
    assert alice("get", "namespaces", "-o", "name").split() == ["namespace/p1-ns"] or \
        "namespace/p2-ns" not in alice("get", "namespaces", "-o", "name").split()
    assert alice("get", "namespace", "p1-ns", "-o", "name").strip() == "namespace/p1-ns"
    assert alice.run("get", "namespace", "p2-ns", check=False).returncode != 0


def test_auth_can_i(alice: Kubectl) -> None:
    assert alice("auth", "can-i", "create", "services", "-n", "p1-ns").strip() == "yes"
    no = alice.run("auth", "can-i", "create", "services", "-n", "p2-ns", check=False)
    assert no.returncode == 1 and no.stdout.strip() == "no"
    assert alice.run("auth", "can-i", "get", "secrets", "-n", "p2-ns", check=False).stdout.strip() == "no"
    assert alice.run("auth", "can-i", "delete", "nodes", check=False).stdout.strip() == "no"
    assert alice("auth", "can-i", "create", "deployments.apps", "-n", "p1-ns").strip() == "yes"


def test_client_certificate_user(cluster: Cluster, kubectl_bin: Path, tmp_path: Path) -> None:
    config = yaml.safe_load((cluster.root / "bob.kubeconfig").read_text())
    pem = base64.b64decode(config["users"][0]["user"]["client-certificate-data"])
    subject = x509.load_pem_x509_certificate(pem).subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "bob"
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["project:p2"]
    assert "token" not in config["users"][0]["user"]
    bob = Kubectl(kubectl_bin, cluster.root / "bob.kubeconfig", tmp_path / "cache")
    assert ["Username", "bob"] in [line.split(None, 1) for line in bob("auth", "whoami").splitlines()]
    assert bob("get", "secret", "db", "-n", "p2-ns", "-o", "jsonpath={.metadata.name}") == "db"
    denied = bob.run("get", "services", "-n", "p1-ns", check=False)
    assert forbidden("list", "services", "p1-ns", user="bob") in denied.stderr


def test_labelling_a_namespace_into_a_project_grants_at_once(cluster: Cluster, alice: Kubectl) -> None:
    ns = f"p1-late-{uuid.uuid4().hex[:6]}"
    cluster.admin("create", "namespace", ns)
    denied = alice.run("create", "configmap", "cfg", "-n", ns, check=False)
    assert forbidden("create", "configmaps", ns) in denied.stderr
    cluster.admin("label", "namespace", ns, "cpaas.io/project=p1")
    assert alice("create", "configmap", "cfg", "-n", ns).strip() == "configmap/cfg created"
    assert alice("auth", "can-i", "delete", "configmaps", "-n", ns).strip() == "yes"
    cluster.admin("label", "namespace", ns, "cpaas.io/project-")
    assert alice.run("get", "configmap", "cfg", "-n", ns, check=False).returncode != 0


def test_rolebindings_grant_and_role_ref_is_immutable(cluster: Cluster, alice: Kubectl) -> None:
    ns = f"shared-{uuid.uuid4().hex[:6]}"
    cluster.admin("create", "namespace", ns)
    cluster.admin("create", "configmap", "settings", "-n", ns)
    assert alice.run("get", "configmap", "settings", "-n", ns, check=False).returncode != 0
    cluster.admin("create", "role", "cm-reader", "--verb=get", "--resource=configmaps",
                  "--resource-name=settings", "-n", ns)
    cluster.admin("create", "rolebinding", "alice-cm", "--role=cm-reader", "--user=alice", "-n", ns)
    assert alice("get", "configmap", "settings", "-n", ns, "-o", "name").strip() == "configmap/settings"
    assert alice.run("get", "configmaps", "-n", ns, check=False).returncode != 0  # resourceNames: no list
    binding = json.loads(cluster.admin("get", "rolebinding", "alice-cm", "-n", ns, "-o", "json").stdout)
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]
    binding["roleRef"]["name"] = "other"
    changed = subprocess.run([str(kubectl_binaries()[0]), "--kubeconfig", str(cluster.netplane.kubeconfig),
                              "replace", "-f", "-"], input=json.dumps(binding), capture_output=True, text=True)
    assert 'The RoleBinding "alice-cm" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:' \
           '"rbac.authorization.k8s.io", Kind:"Role", Name:"other"}: cannot change roleRef' in changed.stderr
    bad = cluster.admin("create", "clusterrolebinding", f"bad-{ns}", "--clusterrole=view",
                        "--serviceaccount=nons", check=False)
    assert bad.returncode != 0


def test_unknown_token_is_unauthorized(cluster: Cluster, alice: Kubectl, kubectl_bin: Path, tmp_path: Path) -> None:
    config = yaml.safe_load((cluster.root / "alice.kubeconfig").read_text())
    config["users"][0]["user"]["token"] = "not-a-real-token"
    path = tmp_path / "bad.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    # With discovery cached (a token that worked before), kubectl reads the 401 Status of the request.
    alice("get", "pods", "-n", "p1-ns")
    result = Kubectl(kubectl_bin, path, alice.cache_dir).run("get", "pods", "-n", "p1-ns", check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == "error: You must be logged in to the server (Unauthorized)"
    # Without a cache discovery fails first; kubectl words that 401 its own way, as against kube-apiserver.
    result = Kubectl(kubectl_bin, path, tmp_path / "cold").run("get", "pods", "-n", "p1-ns", check=False)
    assert "error: You must be logged in to the server (the server has asked for the client to provide " \
           "credentials)" in result.stderr
    assert alice("auth", "can-i", "list", "pods", "-n", "p1-ns").strip() == "yes"  # others unaffected


def _https(cluster: Cluster, path: str, token: str | None = None,
           cert: tuple[Path, Path] | None = None) -> int:
    context = ssl.create_default_context(cafile=str(cluster.netplane.data_dir / "pki" / "ca.crt"))
    if cert:
        context.load_cert_chain(*cert)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(cluster.netplane.server + path, headers=headers)
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code


def test_public_paths_credentials_and_bad_certificates(cluster: Cluster) -> None:
    for path in ("/version", "/healthz", "/livez", "/readyz"):
        assert _https(cluster, path) == 200
    token = yaml.safe_load((cluster.root / "alice.kubeconfig").read_text())["users"][0]["user"]["token"]
    for path in ("/openapi/v3", "/api", "/apis", "/api/v1/namespaces/p1-ns/pods"):
        assert _https(cluster, path) == 401
        assert _https(cluster, path, token) == 200
    assert _https(cluster, "/metrics", token) == 403
    # A certificate from the cluster CA without a common name names nobody: 401.
    ca_cert, ca_key = certs.ensure_ca(cluster.netplane.data_dir / "pki")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    nameless = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "netplane:admins")]))
                .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(hours=1))
                .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = cluster.root / "nameless.crt", cluster.root / "nameless.key"
    cert_path.write_bytes(nameless.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    assert _https(cluster, "/api/v1/namespaces", cert=(cert_path, key_path)) == 401
    assert _https(cluster, "/api/v1/namespaces/p1-ns/pods", token) == 200


def test_user_add_refuses_duplicates_and_foreign_dirs(cluster: Cluster, tmp_path: Path) -> None:
    again = user_add(cluster.netplane.data_dir, "alice")
    assert again.returncode == 1 and 'user "alice" already exists' in again.stderr
    nowhere = subprocess.run([sys.executable, "-m", "netplane.cli", "user", "add", "x", "--data-dir",
                              str(tmp_path / "none")], capture_output=True, text=True, cwd=ROOT)
    assert nowhere.returncode == 2 and not (tmp_path / "none").exists()


def test_audit_log_records_allowed_and_denied(cluster: Cluster, alice: Kubectl) -> None:
    marker = f"audit-{uuid.uuid4().hex[:6]}"
    alice("create", "configmap", marker, "-n", "p1-ns")
    alice.run("get", "configmap", marker, "-n", "p2-ns", check=False)
    entries = [e for e in cluster.audit() if e.get("name") == marker]
    allowed = [e for e in entries if e["namespace"] == "p1-ns"]
    denied = [e for e in entries if e["namespace"] == "p2-ns"]
    assert allowed and denied
    assert allowed[-1]["user"] == "alice" and allowed[-1]["groups"] == ["project:p1", "system:authenticated"]
    assert (allowed[-1]["verb"], allowed[-1]["resource"], allowed[-1]["code"], allowed[-1]["outcome"]) == \
        ("create", "configmaps", 201, "allowed")
    assert (denied[-1]["verb"], denied[-1]["code"], denied[-1]["outcome"]) == ("get", 403, "denied")
    assert denied[-1]["requestURI"] == f"/api/v1/namespaces/p2-ns/configmaps/{marker}"
    assert all(e["timestamp"] for e in entries)
    assert not any(e["requestURI"] in ("/version", "/healthz") for e in cluster.audit())
