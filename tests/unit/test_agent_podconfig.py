"""The agent's pod configuration: env from ConfigMaps/Secrets/fields/resources, config volumes."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from netplane.dataplane.agent.podconfig import (
    ConfigError,
    NodeResources,
    read_volume,
    render_env,
    render_volume,
    with_resolved_env,
    write_volume,
)
from netplane.dataplane.runtime.spec import PodRuntimeSpec, build_spec

OBJECTS: dict[tuple[str, str, str], dict[str, Any]] = {
    ("configmap", "ns", "cfg"): {"data": {"greeting": "hello $(X)", "mode": "fast", "1bad": "x"},
                                 "binaryData": {"bin": base64.b64encode(b"\x00\x01").decode()}},
    ("secret", "ns", "sec"): {"data": {"password": base64.b64encode(b"s3cret").decode(),
                                       "user": base64.b64encode(b"admin").decode()}},
}


def lookup(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    return OBJECTS.get((kind, namespace, name))


def pod(container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web-1", "namespace": "ns", "uid": "u-1", "labels": {"app": "web", "tier": "a"},
                         "annotations": {"note": 'say "hi"'}},
            "spec": {"nodeName": "node1", "containers": [{"name": "app", "image": "busybox", **container}], **spec}}


def env_of(p: dict[str, Any], **kw: Any) -> dict[str, str]:
    return {e["name"]: e["value"] for e in render_env(p, p["spec"]["containers"][0], lookup, "10.16.0.5", "172.1.1.2",
                                                      **kw)}


def test_env_from_sources_fields_and_resources() -> None:
    p = pod({"envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}, {"secretRef": {"name": "sec"}}],
             "env": [{"name": "mode", "value": "override"},
                     {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
                     {"name": "G", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}},
                     {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                     {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                     {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
                     {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                     {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                     {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                     {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
                     {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                     {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                                        "divisor": "1Mi"}}},
                     {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu",
                                                                        "divisor": "1m"}}},
                     {"name": "CPULIM", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}],
             "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}}})
    env = env_of(p, node=NodeResources(cpu="4"))
    assert env["CFG_greeting"] == "hello $$(X)" and env["CFG_bin"] == "\x00\x01" and "CFG_1bad" in env
    assert "1bad" not in env and env["password"] == "s3cret" and env["user"] == "admin"
    assert env["mode"] == "override" and env["PW"] == "s3cret" and env["G"] == "hello $$(X)"
    assert (env["NAME"], env["NS"], env["UID"], env["NODE"]) == ("web-1", "ns", "u-1", "node1")
    assert (env["IP"], env["HOST"], env["SA"], env["APP"]) == ("10.16.0.5", "172.1.1.2", "default", "web")
    assert (env["MEM"], env["CPU"], env["CPULIM"]) == ("64", "250", "4")
    # Through the runtime spec: resolved values are literal, written values still expand $(VAR).
    p["spec"]["containers"][0]["env"].append({"name": "REF", "value": "$(NAME)-$(G)"})
    resolved, errors = with_resolved_env(p, lookup, "10.16.0.5", "172.1.1.2")
    assert errors == {} and "envFrom" not in resolved["spec"]["containers"][0]
    built = build_spec(resolved, netns=None)
    assert isinstance(built, PodRuntimeSpec)
    assert built.containers[0].env["G"] == "hello $(X)" and built.containers[0].env["REF"] == "web-1-hello $(X)"


@pytest.mark.parametrize(("env", "message"), [
    ({"envFrom": [{"configMapRef": {"name": "missing"}}]}, 'configmap "missing" not found'),
    ({"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]}, 'secret "nope" not found'),
    ({"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]},
     "couldn't find key k in ConfigMap ns/cfg"),
    ({"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "k"}}}]},
     "couldn't find key k in Secret ns/sec"),
])
def test_missing_references_are_config_errors(env: dict[str, Any], message: str) -> None:
    p = pod(env)
    with pytest.raises(ConfigError) as e:
        env_of(p)
    assert str(e.value) == message
    _, errors = with_resolved_env(p, lookup, None, None)
    assert errors == {"app": message}


def test_optional_references_are_skipped() -> None:
    p = pod({"envFrom": [{"secretRef": {"name": "missing", "optional": True}}],
             "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k", "optional": True}}},
                     {"name": "B", "valueFrom": {"secretKeyRef": {"name": "x", "key": "k", "optional": True}}}]})
    assert env_of(p) == {}


def test_config_volumes() -> None:
    p = pod({})
    assert render_volume(p, {"name": "v", "emptyDir": {}}, lookup) is None
    cfg = render_volume(p, {"name": "v", "configMap": {"name": "cfg", "defaultMode": 0o400}}, lookup)
    assert cfg is not None and cfg["mode"] == (b"fast", 0o400) and cfg["bin"] == (b"\x00\x01", 0o400)
    items = render_volume(p, {"name": "v", "secret": {"secretName": "sec", "items": [
        {"key": "password", "path": "db/pw", "mode": 0o600}, {"key": "user", "path": "user.txt"}]}}, lookup)
    assert items == {"db/pw": (b"s3cret", 0o600), "user.txt": (b"admin", 0o644)}
    assert render_volume(p, {"name": "v", "configMap": {"name": "missing", "optional": True}}, lookup) == {}
    with pytest.raises(ConfigError, match='configmap "missing" not found'):
        render_volume(p, {"name": "v", "configMap": {"name": "missing"}}, lookup)
    with pytest.raises(ConfigError, match="non-existent config key: nokey"):
        render_volume(p, {"name": "v", "configMap": {"name": "cfg", "items": [{"key": "nokey", "path": "x"}]}}, lookup)
    with pytest.raises(ConfigError, match="invalid path"):
        render_volume(p, {"name": "v", "configMap": {"name": "cfg", "items": [{"key": "mode", "path": "../x"}]}},
                      lookup)
    down = render_volume(p, {"name": "v", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}, "mode": 0o444}]}}, lookup)
    assert down == {"labels": (b'app="web"\ntier="a"', 0o644), "annotations": (b'note="say \\"hi\\""', 0o644),
                    "name": (b"web-1", 0o644), "namespace": (b"ns", 0o444)}
    projected = render_volume(p, {"name": "v", "projected": {"sources": [
        {"secret": {"name": "sec", "items": [{"key": "user", "path": "u"}]}},
        {"downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}}, lookup)
    assert projected == {"u": (b"admin", 0o644), "n": (b"web-1", 0o644)}


def test_write_volume_is_atomic_and_idempotent(tmp_path: Path) -> None:
    d = tmp_path / "vol"
    assert write_volume(d, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert (d / "a").read_bytes() == b"1" and (d / "dir" / "b").read_bytes() == b"2"
    assert os.readlink(d / "a") == "..data/a" and (d / "..data").is_symlink()
    assert (d / "dir" / "b").stat().st_mode & 0o777 == 0o600
    first = os.readlink(d / "..data")
    assert not write_volume(d, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert write_volume(d, {"a": (b"changed", 0o644)})
    assert (d / "a").read_bytes() == b"changed" and not (d / "dir").exists() and not (d / first).exists()
    assert read_volume(d) == {"a": (b"changed", 0o644)}
    assert sorted(p.name for p in d.iterdir() if not p.name.startswith("..")) == ["a"]
