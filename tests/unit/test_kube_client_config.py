"""The client's kubeconfig loading and the typed errors it raises from Status bodies."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from netplane.controllers.kube import errors
from netplane.controllers.kube.config import KubeconfigError, load_kubeconfig
from netplane.controllers.kube.resources import Resource

pytestmark = pytest.mark.unit


def write(path: Path, cluster: dict[str, object], user: dict[str, object], namespace: str = "team") -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "contexts": [{"name": "other", "context": {"cluster": "nope", "user": "nope"}},
                     {"name": "c", "context": {"cluster": "k", "user": "u", "namespace": namespace}}],
        "clusters": [{"name": "k", "cluster": cluster}], "users": [{"name": "u", "user": user}]}))
    return path


def test_inline_ca_and_token(tmp_path: Path) -> None:
    config = load_kubeconfig(write(tmp_path / "kc", {
        "server": "https://10.0.0.1:6443/", "certificate-authority-data": base64.b64encode(b"PEM").decode()},
        {"token": "abc"}))
    assert (config.server, config.ca_pem, config.bearer_token(), config.namespace) == \
        ("https://10.0.0.1:6443", b"PEM", "abc", "team")


def test_files_are_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_bytes(b"CA")
    (tmp_path / "tls.crt").write_bytes(b"CERT")
    (tmp_path / "tls.key").write_bytes(b"KEY")
    (tmp_path / "token").write_text("from-file\n")
    config = load_kubeconfig(write(tmp_path / "kc", {
        "server": "https://k:6443", "certificate-authority": "ca.crt", "insecure-skip-tls-verify": True},
        {"client-certificate": "tls.crt", "client-key": "tls.key", "tokenFile": "token"}))
    assert (config.ca_pem, config.client_cert_pem, config.client_key_pem) == (b"CA", b"CERT", b"KEY")
    assert config.insecure_skip_tls_verify and config.bearer_token() == "from-file"


@pytest.mark.parametrize(("cluster", "user", "message"), [
    ({"server": "https://k"}, {"exec": {"command": "aws"}}, "exec or auth-provider plugin"),
    ({"server": "k:6443"}, {}, "has no http(s) server URL"),
    ({"server": "https://k", "certificate-authority": "missing.crt"}, {}, "missing.crt: No such file"),
    ({"server": "https://k", "certificate-authority-data": "!!"}, {}, "not valid base64"),
])
def test_unusable_kubeconfigs_say_why(tmp_path: Path, cluster: dict[str, object], user: dict[str, object],
                                      message: str) -> None:
    with pytest.raises(KubeconfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_kubeconfig(write(tmp_path / "kc", cluster, user))


def test_an_unknown_context_is_named(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match="no context named 'prod'"):
        load_kubeconfig(write(tmp_path / "kc", {"server": "https://k"}, {}), context="prod")


@pytest.mark.parametrize(("code", "reason", "cls"), [
    (404, "NotFound", errors.NotFound), (409, "AlreadyExists", errors.AlreadyExists),
    (409, "Conflict", errors.Conflict), (410, "Expired", errors.Expired), (410, "Gone", errors.Expired),
    (403, "Forbidden", errors.Forbidden), (422, "Invalid", errors.Invalid), (500, "", errors.ApiError),
    (429, "", errors.TooManyRequests),
])
def test_status_bodies_become_typed_errors(code: int, reason: str, cls: type[errors.ApiError]) -> None:
    error = errors.error_from_status(code, {"kind": "Status", "code": code, "reason": reason, "message": "m"})
    assert type(error) is cls and error.code == code and error.message == "m"


def test_a_body_that_is_not_a_status_still_gives_a_typed_error() -> None:
    error = errors.error_from_status(404, "404 page not found")
    assert isinstance(error, errors.NotFound) and error.message == "404 page not found"


@pytest.mark.parametrize(("res", "ns", "name", "sub", "path"), [
    (Resource("", "v1", "namespaces", namespaced=False), None, "x", None, "/api/v1/namespaces/x"),
    (Resource("", "v1", "configmaps"), None, None, None, "/api/v1/configmaps"),
    (Resource("", "v1", "configmaps"), "a", "b", None, "/api/v1/namespaces/a/configmaps/b"),
    (Resource("netplane.io", "v1alpha1", "projects", namespaced=False), None, "p", "status",
     "/apis/netplane.io/v1alpha1/projects/p/status"),
])
def test_resource_paths(res: Resource, ns: str | None, name: str | None, sub: str | None, path: str) -> None:
    assert res.path(ns, name, sub) == path


def test_a_namespaced_object_needs_a_namespace() -> None:
    with pytest.raises(ValueError, match="namespaced"):
        Resource("", "v1", "configmaps").path(None, "x")
