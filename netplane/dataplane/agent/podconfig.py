"""A pod's configuration as the kubelet gives it: environment from ConfigMaps, Secrets, the pod
itself and Services, and the files of configMap, secret, downwardAPI (and projected) volumes.

Pure renderings (`render_env`, `render_volume`) over a `Lookup` of ConfigMaps and Secrets, plus
`write_volume`, the kubelet's atomic writer: the files live in a timestamped directory that a
`..data` symlink names, and each top-level entry is a symlink through `..data`. An update writes a
new directory and swaps `..data` with one rename, so a reader sees the old or the new set, never
a mix. Errors carry Kubernetes' messages (`configmap "x" not found`, `couldn't find key k in
ConfigMap ns/x`): the agent reports them as CreateContainerConfigError (env) or keeps the pod in
ContainerCreating (volumes).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netplane.dataplane.runtime.spec import SpecError, quantity

Obj = dict[str, Any]
# (kind, namespace, name) -> the object, None when it does not exist. kind: "configmap" or "secret".
Lookup = Callable[[str, str, str], Obj | None]
# (pod, a projected volume's serviceAccountToken source) -> the token; raises ConfigError if there is none.
TokenSource = Callable[[Obj, Obj], bytes]

DEFAULT_MODE = 0o644
DATA_LINK = "..data"


class ConfigError(ValueError):
    """A reference the pod needs cannot be resolved; the message is the kubelet's."""


@dataclass(frozen=True)
class NodeResources:
    """What a container's unset limits default to for resourceFieldRef (the node's allocatable)."""
    cpu: str = "1"
    memory: str = "1Gi"
    ephemeral_storage: str = "10Gi"


# ------------------------------------------------------------------ sources

_KIND_TITLE = {"configmap": "ConfigMap", "secret": "Secret"}


def source_data(kind: str, obj: Obj) -> dict[str, bytes]:
    """A ConfigMap's data and binaryData, or a Secret's data (base64) and stringData, as bytes."""
    out: dict[str, bytes] = {}
    if kind == "configmap":
        for key, value in (obj.get("data") or {}).items():
            out[key] = str(value).encode()
        for key, value in (obj.get("binaryData") or {}).items():
            out[key] = _b64(value)
    else:
        for key, value in (obj.get("data") or {}).items():
            out[key] = _b64(value)
        for key, value in (obj.get("stringData") or {}).items():
            out[key] = str(value).encode()
    return out


def _b64(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        return str(value).encode()


def _get(lookup: Lookup, kind: str, namespace: str, name: str, optional: bool) -> dict[str, bytes] | None:
    obj = lookup(kind, namespace, name)
    if obj is None:
        if optional:
            return None
        raise ConfigError(f'{kind} "{name}" not found')
    return source_data(kind, obj)


# ------------------------------------------------------------------ fields

def field_value(pod: Obj, path: str, pod_ip: str | None, host_ip: str | None) -> str:
    """A fieldRef's value (env and downwardAPI volumes)."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f"{k}={_quote(str(v))}" for k, v in sorted(items.items()))
    simple = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
              "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
              "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
              "status.podIP": pod_ip, "status.podIPs": pod_ip,
              "status.hostIP": host_ip, "status.hostIPs": host_ip}
    if path in simple:
        return str(simple[path] or "")
    m = re.match(r"^metadata\.(labels|annotations)\['(.+)'\]$", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    raise ConfigError(f"unsupported fieldPath: {path}")


def _quote(value: str) -> str:
    # Go's strconv.Quote for what labels and annotations hold (the downward API's format).
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


def resource_value(container: Obj | None, ref: Obj, node: NodeResources) -> str:
    """A resourceFieldRef's value: the quantity divided by the divisor, rounded up (kubelet)."""
    if container is None:
        raise ConfigError(f"resourceFieldRef: container {ref.get('containerName')!r} not found")
    resource = str(ref.get("resource") or "")
    m = re.match(r"^(limits|requests)\.(cpu|memory|ephemeral-storage)$", resource)
    if not m:
        raise ConfigError(f"unsupported container resource: {resource}")
    kind, name = m.groups()
    resources = container.get("resources") or {}
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    allocatable = {"cpu": node.cpu, "memory": node.memory, "ephemeral-storage": node.ephemeral_storage}[name]
    # Unset limits are the node's allocatable; unset requests default to the limit (or 0).
    value = limits.get(name, allocatable) if kind == "limits" else requests.get(name, limits.get(name, "0"))
    try:
        amount = quantity(value)
        divisor = quantity(ref.get("divisor") or "1")
    except SpecError as e:
        raise ConfigError(str(e)) from None
    if divisor <= 0:
        raise ConfigError(f"invalid divisor {ref.get('divisor')!r}")
    if name == "cpu":
        # Milli-units first, as Kubernetes does, so 250m / 1m is exactly 250.
        return str(math.ceil(round(amount * 1000) / max(1, round(divisor * 1000))))
    return str(math.ceil(amount / divisor))


# ------------------------------------------------------------------ env

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def render_env(pod: Obj, container: Obj, lookup: Lookup, pod_ip: str | None, host_ip: str | None,
               node: NodeResources | None = None) -> list[Obj]:
    """The container's `env`, with `envFrom` and every `valueFrom` resolved, as a plain list of
    name/value pairs in Kubernetes' order (envFrom first, then env, later entries winning).

    Literal `value`s are kept as written, so the runtime still expands their $(VAR) references;
    resolved values are escaped ($ -> $$) because Kubernetes never expands those. Raises
    `ConfigError` with the kubelet's message when a non-optional reference is missing."""
    node = node or NodeResources()
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    out: list[Obj] = []

    def resolved(name: str, value: str) -> None:
        out.append({"name": name, "value": value.replace("$", "$$")})

    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        for key, kind in (("configMapRef", "configmap"), ("secretRef", "secret")):
            if key not in source:
                continue
            ref = source[key] or {}
            data = _get(lookup, kind, namespace, str(ref.get("name") or ""), bool(ref.get("optional")))
            for name, value in sorted((data or {}).items()):
                if _ENV_NAME.match(prefix + name):  # the kubelet skips invalid names (an event, no error)
                    resolved(prefix + name, value.decode(errors="replace"))
    for item in container.get("env") or []:
        name = item["name"]
        value_from = item.get("valueFrom")
        if not value_from:
            out.append({"name": name, "value": str(item.get("value") or "")})
            continue
        if "fieldRef" in value_from:
            resolved(name, field_value(pod, str(value_from["fieldRef"].get("fieldPath") or ""), pod_ip, host_ip))
        elif "resourceFieldRef" in value_from:
            ref = value_from["resourceFieldRef"]
            target = container if not ref.get("containerName") else _container_named(pod, ref["containerName"])
            resolved(name, resource_value(target, ref, node))
        else:
            for key, kind in (("configMapKeyRef", "configmap"), ("secretKeyRef", "secret")):
                if key not in value_from:
                    continue
                ref = value_from[key] or {}
                optional, ref_name, ref_key = bool(ref.get("optional")), str(ref.get("name") or ""), str(ref["key"])
                data = _get(lookup, kind, namespace, ref_name, optional)
                if data is None:
                    break
                if ref_key not in data:
                    if optional:
                        break
                    raise ConfigError(f"couldn't find key {ref_key} in {_KIND_TITLE[kind]} {namespace}/{ref_name}")
                resolved(name, data[ref_key].decode(errors="replace"))
                break
    return out


def _container_named(pod: Obj, name: str) -> Obj | None:
    spec = pod.get("spec") or {}
    return next((c for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
                 if c.get("name") == name), None)


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def service_env(pod: Obj, services: Iterable[Obj]) -> list[Obj]:
    """The variables the kubelet gives every container for Services with a cluster IP: the API's
    (`kubernetes` in `default`) always and, unless ``enableServiceLinks`` is false, each Service of
    the pod's namespace (which wins over the API's of the same name): ``<NAME>_SERVICE_HOST``,
    ``<NAME>_SERVICE_PORT[_<PORT NAME>]`` and Docker's link variables ``<NAME>_PORT[_<port>_<PROTO>...]``."""
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    links = (pod.get("spec") or {}).get("enableServiceLinks") is not False
    chosen: dict[str, Obj] = {}
    for svc in services:
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        if spec.get("clusterIP") in (None, "", "None") or not spec.get("ports"):
            continue
        if links and meta.get("namespace") == namespace:
            chosen[meta["name"]] = svc
        elif (meta.get("namespace"), meta.get("name")) == ("default", "kubernetes"):
            chosen.setdefault("kubernetes", svc)
    out: list[Obj] = []
    for name in sorted(chosen):
        spec = chosen[name]["spec"]
        prefix, ip, ports = _env_name(name), str(spec["clusterIP"]), spec["ports"]
        out += [{"name": f"{prefix}_SERVICE_HOST", "value": ip},
                {"name": f"{prefix}_SERVICE_PORT", "value": str(ports[0].get("port"))}]
        out += [{"name": f"{prefix}_SERVICE_PORT_{_env_name(str(p['name']))}", "value": str(p.get("port"))}
                for p in ports if p.get("name")]
        host = f"[{ip}]" if ":" in ip else ip
        for i, p in enumerate(ports):
            protocol = str(p.get("protocol") or "TCP")
            url = f"{protocol.lower()}://{host}:{p.get('port')}"
            if i == 0:
                out.append({"name": f"{prefix}_PORT", "value": url})
            link = f"{prefix}_PORT_{p.get('port')}_{protocol.upper()}"
            out += [{"name": link, "value": url}, {"name": f"{link}_PROTO", "value": protocol.lower()},
                    {"name": f"{link}_PORT", "value": str(p.get("port"))}, {"name": f"{link}_ADDR", "value": ip}]
    return out


def with_resolved_env(pod: Obj, lookup: Lookup, pod_ip: str | None, host_ip: str | None,
                      node: NodeResources | None = None,
                      services: Iterable[Obj] | None = ()) -> tuple[Obj, dict[str, str]]:
    """A copy of the pod whose containers' env is resolved (`render_env`) and envFrom gone,
    and the errors by container name (CreateContainerConfigError).

    The variables of ``services`` (`service_env`) come first, so that the container's own win and
    its $(VAR) references see them. ``services`` None means they are not known yet, which, as for
    the kubelet, keeps every container from starting."""
    spec = dict(pod.get("spec") or {})
    errors: dict[str, str] = {}
    linked = service_env(pod, services) if services is not None else None
    for key in ("initContainers", "containers"):
        containers = []
        for c in spec.get(key) or []:
            c = dict(c)
            try:
                if linked is None:
                    raise ConfigError("services have not yet been read at least once, cannot construct envvars")
                c["env"] = linked + render_env(pod, c, lookup, pod_ip, host_ip, node)
            except ConfigError as e:
                errors[c["name"]] = str(e)
            c.pop("envFrom", None)
            containers.append(c)
        if key in spec:
            spec[key] = containers
    return {**pod, "spec": spec}, errors


# ------------------------------------------------------------------ volumes

# A volume's files: relative path -> (content, mode).
Files = dict[str, tuple[bytes, int]]
CONFIG_VOLUMES = ("configMap", "secret", "downwardAPI", "projected")


def _check_path(path: str) -> str:
    parts = path.split("/")
    if not path or path.startswith("/") or ".." in parts or path.startswith("..") or "" in parts:
        raise ConfigError(f"invalid path {path!r}: must be relative, without '..' or empty elements")
    return path


def _key_source(kind: str, source: Obj, namespace: str, lookup: Lookup, default_mode: int) -> Files:
    name = str(source.get("name") or source.get("secretName") or "")
    optional = bool(source.get("optional"))
    data = _get(lookup, kind, namespace, name, optional)
    if data is None:
        return {}
    items = source.get("items")
    if not items:
        return {_check_path(k): (v, default_mode) for k, v in data.items()}
    files: Files = {}
    for item in items:
        key = str(item.get("key") or "")
        if key not in data:
            if optional:
                continue
            what = "configmap references non-existent config key" if kind == "configmap" \
                else "references non-existent secret key"
            raise ConfigError(f"{what}: {key}")
        mode = item.get("mode")
        files[_check_path(str(item.get("path") or key))] = (data[key], default_mode if mode is None else int(mode))
    return files


def _downward_source(pod: Obj, source: Obj, pod_ip: str | None, host_ip: str | None, default_mode: int,
                     node: NodeResources) -> Files:
    files: Files = {}
    for item in source.get("items") or []:
        if "fieldRef" in item:
            text = field_value(pod, str(item["fieldRef"].get("fieldPath") or ""), pod_ip, host_ip)
        elif "resourceFieldRef" in item:
            ref = item["resourceFieldRef"]
            text = resource_value(_container_named(pod, str(ref.get("containerName") or "")), ref, node)
        else:
            continue
        mode = item.get("mode")
        files[_check_path(str(item.get("path") or ""))] = (text.encode(), default_mode if mode is None else int(mode))
    return files


def render_volume(pod: Obj, volume: Obj, lookup: Lookup, pod_ip: str | None = None, host_ip: str | None = None,
                  node: NodeResources | None = None, tokens: TokenSource | None = None) -> Files | None:
    """The files of a configMap, secret, downwardAPI or projected volume (None: not one of those).
    A projected serviceAccountToken comes from ``tokens``."""
    node = node or NodeResources()
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"

    def mode_of(source: Obj) -> int:
        mode = source.get("defaultMode")
        return DEFAULT_MODE if mode is None else int(mode)

    if "configMap" in volume:
        src = volume["configMap"] or {}
        return _key_source("configmap", src, namespace, lookup, mode_of(src))
    if "secret" in volume:
        src = volume["secret"] or {}
        return _key_source("secret", src, namespace, lookup, mode_of(src))
    if "downwardAPI" in volume:
        src = volume["downwardAPI"] or {}
        return _downward_source(pod, src, pod_ip, host_ip, mode_of(src), node)
    if "projected" in volume:
        src = volume["projected"] or {}
        default_mode = mode_of(src)
        files: Files = {}
        for part in src.get("sources") or []:
            if "configMap" in part:
                files.update(_key_source("configmap", part["configMap"] or {}, namespace, lookup, default_mode))
            elif "secret" in part:
                files.update(_key_source("secret", part["secret"] or {}, namespace, lookup, default_mode))
            elif "downwardAPI" in part:
                files.update(_downward_source(pod, part["downwardAPI"] or {}, pod_ip, host_ip, default_mode, node))
            elif "serviceAccountToken" in part and tokens is not None:
                source = part["serviceAccountToken"] or {}
                files[_check_path(str(source.get("path") or ""))] = (tokens(pod, source), default_mode)
            else:
                raise ConfigError(f"projected volume {volume.get('name')!r}: unsupported source {sorted(part)}")
        return files
    return None


def read_volume(directory: Path) -> Files | None:
    """What `write_volume` last wrote there (None: nothing yet)."""
    data = directory / DATA_LINK
    if not data.is_symlink():
        return None
    root = directory / os.readlink(data)
    files: Files = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            files[str(path.relative_to(root))] = (path.read_bytes(), path.stat().st_mode & 0o7777)
    return files


def write_volume(directory: Path, files: Files) -> bool:
    """Write ``files`` into ``directory`` atomically (the kubelet's AtomicWriter layout);
    returns False when it already holds exactly these files."""
    directory.mkdir(parents=True, exist_ok=True)
    if read_volume(directory) == files:
        return False
    old = os.readlink(directory / DATA_LINK) if (directory / DATA_LINK).is_symlink() else None
    stamp = dt.datetime.now(dt.UTC).strftime("..%Y_%m_%d_%H_%M_%S.%f")
    new = directory / stamp
    new.mkdir(mode=0o755)
    for rel, (content, mode) in files.items():
        path = new / rel
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        path.write_bytes(content)
        os.chmod(path, mode)
    tmp_link = directory / "..data_tmp"
    tmp_link.unlink(missing_ok=True)
    os.symlink(stamp, tmp_link)
    os.replace(tmp_link, directory / DATA_LINK)
    # Top-level entries point through ..data, so they follow the swap.
    top = {rel.split("/")[0] for rel in files}
    for name in top:
        link = directory / name
        if not link.is_symlink():
            if link.is_dir():
                shutil.rmtree(link)
            elif link.exists():
                link.unlink()
            os.symlink(f"{DATA_LINK}/{name}", link)
    for entry in directory.iterdir():
        if entry.is_symlink() and entry.name != DATA_LINK and entry.name not in top:
            entry.unlink()
    if old and old != stamp:
        shutil.rmtree(directory / old, ignore_errors=True)
    return True

