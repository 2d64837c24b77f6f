"""`netplane user add`: record the user, mint a credential, and render its kubeconfig."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from netplane import certs
from netplane.api.auth.users import add_user, check_name, groups_for

CLIENT_CERT_VALIDITY = dt.timedelta(days=365)
DEFAULT_SERVER = "https://127.0.0.1:6443"


def client_certificate(pki: Path, name: str, groups: list[str]) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for CN=name, one O per group, signed by the cluster CA."""
    ca_cert, ca_key = certs.ensure_ca(pki)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
                        + [x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + CLIENT_CERT_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _server(data_dir: Path) -> str:
    """Where the running (or last) `netplane up` serves, from the admin kubeconfig it wrote."""
    admin = data_dir / "kubeconfig"
    if admin.exists():
        config = yaml.safe_load(admin.read_text()) or {}
        for cluster in config.get("clusters") or []:
            server = (cluster.get("cluster") or {}).get("server")
            if server:
                return str(server)
    return DEFAULT_SERVER


def kubeconfig(server: str, ca_pem: bytes, user: str, credentials: dict[str, str],
               namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "netplane", "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": f"{user}@netplane", "context": {"cluster": "netplane", "user": user,
                                                              "namespace": namespace}}],
        "current-context": f"{user}@netplane",
    }


def add_user_kubeconfig(data_dir: Path, name: str, projects: list[str], admin: bool,
                        client_cert: bool) -> str:
    """Create the user and return the YAML of a kubeconfig that logs in as them."""
    check_name("user name", name)
    for project in projects:
        check_name("project name", project)
    groups = groups_for(projects, admin)
    pki = data_dir / "pki"
    ca_cert, _ = certs.ensure_ca(pki)
    if client_cert:
        cert_pem, key_pem = client_certificate(pki, name, groups)
        add_user(data_dir, name, groups, None)
        credentials = {"client-certificate-data": base64.b64encode(cert_pem).decode(),
                       "client-key-data": base64.b64encode(key_pem).decode()}
    else:
        token = secrets.token_urlsafe(32)
        add_user(data_dir, name, groups, token)
        credentials = {"token": token}
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    return yaml.safe_dump(kubeconfig(_server(data_dir), ca_pem, name, credentials), sort_keys=False)
