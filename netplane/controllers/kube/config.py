"""Loading a kubeconfig (or the in-cluster service account) into what a client needs to connect.

Covers what kubeconfigs for a cluster's API server carry: the server URL, its CA (inline data or a
file, relative to the kubeconfig), `insecure-skip-tls-verify`, `tls-server-name`, and the user's
bearer token (inline or file), client certificate and key (inline or files), or basic auth.
Exec and auth-provider plugins are not supported: they say so instead of failing later.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

IN_CLUSTER_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeconfigError(ValueError):
    """The kubeconfig cannot be used; the message says which entry and why."""


@dataclass(frozen=True)
class ClusterConfig:
    server: str
    ca_pem: bytes | None = None
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None
    token: str | None = None
    token_file: Path | None = None
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    username: str | None = None
    password: str | None = None
    namespace: str = "default"

    def bearer_token(self) -> str | None:
        # A token file is re-read on each use: projected service-account tokens rotate.
        if self.token_file is not None:
            return self.token_file.read_text().strip()
        return self.token

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.server.startswith("https://"):
            return None
        ctx = ssl.create_default_context(cadata=self.ca_pem.decode() if self.ca_pem else None)
        if self.insecure_skip_tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.client_cert_pem and self.client_key_pem:
            _load_cert_chain(ctx, self.client_cert_pem, self.client_key_pem)
        return ctx


def _load_cert_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    # ssl only loads certificate chains from files: hand it a private temporary one, removed at once.
    with tempfile.TemporaryDirectory(prefix="netplane-client-") as tmp:
        cert_path, key_path = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        for path, data in ((cert_path, cert), (key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(cert_path, key_path)


def _named(entries: Any, name: str, what: str, source: Path) -> dict[str, Any]:
    for entry in entries or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            body = entry.get(what)
            return body if isinstance(body, dict) else {}
    raise KubeconfigError(f"{source}: no {what} named {name!r}")


def _data_or_file(entry: dict[str, Any], data_key: str, file_key: str, base: Path) -> bytes | None:
    if entry.get(data_key):
        try:
            return base64.b64decode(entry[data_key], validate=True)
        except ValueError as e:
            raise KubeconfigError(f"{data_key} is not valid base64: {e}") from None
    if entry.get(file_key):
        path = base / str(entry[file_key])
        try:
            return path.read_bytes()
        except OSError as e:
            raise KubeconfigError(f"{file_key} {path}: {e.strerror}") from None
    return None


def load_kubeconfig(path: Path, context: str | None = None) -> ClusterConfig:
    """The connection settings of `context` (default: the current context) in the kubeconfig at `path`."""
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as e:
        raise KubeconfigError(f"{path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise KubeconfigError(f"{path}: not YAML: {e}") from None
    if not isinstance(doc, dict):
        raise KubeconfigError(f"{path}: not a kubeconfig")
    name = context or doc.get("current-context")
    if not name:
        raise KubeconfigError(f"{path}: no current-context, and no context was given")
    ctx = _named(doc.get("contexts"), str(name), "context", path)
    cluster = _named(doc.get("clusters"), str(ctx.get("cluster", "")), "cluster", path)
    user = _named(doc.get("users"), str(ctx.get("user", "")), "user", path) if ctx.get("user") else {}
    if "exec" in user or "auth-provider" in user:
        raise KubeconfigError(f"{path}: user {ctx.get('user')!r} uses an exec or auth-provider plugin, "
                              "which this client does not run; use a token or client certificate")
    server = str(cluster.get("server") or "")
    if not server.startswith(("https://", "http://")):
        raise KubeconfigError(f"{path}: cluster {ctx.get('cluster')!r} has no http(s) server URL")
    base = path.parent
    token_file = user.get("tokenFile")
    return ClusterConfig(
        server=server.rstrip("/"),
        ca_pem=_data_or_file(cluster, "certificate-authority-data", "certificate-authority", base),
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name"),
        token=user.get("token"),
        token_file=base / str(token_file) if token_file and not user.get("token") else None,
        client_cert_pem=_data_or_file(user, "client-certificate-data", "client-certificate", base),
        client_key_pem=_data_or_file(user, "client-key-data", "client-key", base),
        username=user.get("username"),
        password=user.get("password"),
        namespace=str(ctx.get("namespace") or "default"),
    )


def in_cluster_config() -> ClusterConfig:
    """The settings of a pod's service account, as client-go's rest.InClusterConfig reads them."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise KubeconfigError("not running in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set")
    if ":" in host:
        host = f"[{host}]"
    namespace_file = IN_CLUSTER_DIR / "namespace"
    return ClusterConfig(server=f"https://{host}:{port}", ca_pem=(IN_CLUSTER_DIR / "ca.crt").read_bytes(),
                         token_file=IN_CLUSTER_DIR / "token",
                         namespace=namespace_file.read_text().strip() if namespace_file.exists() else "default")
