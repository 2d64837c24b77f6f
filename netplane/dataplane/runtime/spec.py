"""What the agent hands the shim: one JSON file, ``spec.json``, in the pod directory.

The agent turns a Pod into a `PodRuntimeSpec` (`build_spec`) after it has created the
network namespace and prepared the volume directories; the shim reads nothing else,
so it never needs the API server and keeps running when the control plane is down.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from netplane.dataplane.runtime import images
from netplane.dataplane.runtime.linux import CAPABILITIES, DEFAULT_CAPABILITIES

SPEC_FILE = "spec.json"
STATUS_FILE = "status.json"
# Requests from the agent to a running shim, one JSON file each, read when the shim gets SIGUSR1.
CONTROL_DIR = "control"

# Kubernetes mounts these volume types read-only whatever the volumeMount says.
ALWAYS_READ_ONLY = ("configMap", "secret", "downwardAPI", "projected")


class SpecError(ValueError):
    pass


@dataclass
class Mount:
    source: str  # a path on the host, prepared by the agent
    target: str  # the mountPath inside the container
    read_only: bool = False


@dataclass
class ContainerSpec:
    name: str
    image: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str = "/"
    mounts: list[Mount] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    memory_limit: int | None = None  # bytes
    cpu_request_milli: int | None = None
    cpu_limit_milli: int | None = None
    capabilities: list[str] = field(default_factory=lambda: list(DEFAULT_CAPABILITIES))
    stdin: bool = False  # an open stdin that `kubectl attach -i` writes into (else /dev/null)
    stdin_once: bool = False  # closed for good when the first attached client detaches
    tty: bool = False  # a pseudo-terminal for stdin, stdout and stderr


@dataclass
class PodRuntimeSpec:
    uid: str
    name: str
    namespace: str
    hostname: str
    containers: list[ContainerSpec]
    init_containers: list[ContainerSpec] = field(default_factory=list)
    netns: str | None = None  # path such as /run/netns/np-…; None keeps the shim's own
    restart_policy: str = "Always"
    grace_period: float = 30.0
    etc_files: dict[str, str] = field(default_factory=dict)  # /etc/hosts → host file
    hidden: list[str] = field(default_factory=list)  # host paths the pod must not see
    cgroup_parent: str = "netplane"
    backoff_initial: float = 10.0  # kubelet: 10 s doubling to 5 min
    backoff_max: float = 300.0
    backoff_reset: float = 600.0  # a container that ran this long starts again from the initial delay

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PodRuntimeSpec:
        def container(c: dict[str, Any]) -> ContainerSpec:
            return ContainerSpec(**{**c, "mounts": [Mount(**m) for m in c.get("mounts", [])]})

        return cls(**{**raw, "containers": [container(c) for c in raw["containers"]],
                      "init_containers": [container(c) for c in raw.get("init_containers", [])]})


def save(pod_dir: Path, spec: PodRuntimeSpec) -> None:
    pod_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(pod_dir / SPEC_FILE, spec.to_json())


def load(pod_dir: Path) -> PodRuntimeSpec:
    return PodRuntimeSpec.from_dict(json.loads((pod_dir / SPEC_FILE).read_text()))


def write_atomic(path: Path, text: str) -> None:
    """Readers (the agent) see the old or the new file, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIX = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60, "m": 10**-3}


def quantity(value: str | int | float) -> float:
    """A Kubernetes resource quantity as a number (``128Mi`` → 134217728, ``250m`` → 0.25)."""
    m = _QUANTITY.match(str(value).strip())
    if not m or m.group(2) not in _SUFFIX:
        raise SpecError(f"invalid quantity {value!r}")
    return float(m.group(1)) * _SUFFIX[m.group(2)]


_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: unknown references stay as written, $$ escapes."""
    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR_REF.sub(one, text)


def _field_ref(pod: dict[str, Any], path: str, pod_ip: str | None) -> str | None:
    meta = pod.get("metadata", {})
    simple = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
              "metadata.uid": meta.get("uid"), "spec.nodeName": pod.get("spec", {}).get("nodeName"),
              "spec.serviceAccountName": pod.get("spec", {}).get("serviceAccountName"),
              "status.podIP": pod_ip, "status.hostIP": pod.get("status", {}).get("hostIP")}
    if path in simple:
        return simple[path]
    m = re.match(r"^metadata\.(labels|annotations)\['(.+)'\]$", path)
    if m:
        value = meta.get(m.group(1), {}).get(m.group(2))
        return None if value is None else str(value)
    return None


def _container(pod: dict[str, Any], c: dict[str, Any], volume_dirs: dict[str, str], volume_types: dict[str, str],
               resolved_env: dict[str, str], pod_ip: str | None, hostname: str) -> ContainerSpec | images.ImageError:
    env: dict[str, str] = {}
    for item in c.get("env") or []:
        name = item["name"]
        if "value" in item:
            env[name] = expand(str(item["value"]), env)
        elif name in resolved_env:
            env[name] = resolved_env[name]
        elif "fieldRef" in (item.get("valueFrom") or {}):
            value = _field_ref(pod, item["valueFrom"]["fieldRef"].get("fieldPath", ""), pod_ip)
            if value is not None:
                env[name] = value
    ports = [int(p["containerPort"]) for p in c.get("ports") or [] if p.get("containerPort")]
    command = [expand(a, env) for a in c.get("command") or []]
    args = [expand(a, env) for a in c.get("args") or []]
    program = images.resolve(c.get("image", ""), command, args, ports)
    if isinstance(program, images.ImageError):
        return program
    mounts = []
    for vm in c.get("volumeMounts") or []:
        if vm["name"] not in volume_dirs:
            raise SpecError(f"container {c['name']}: volume {vm['name']!r} has no prepared directory")
        source = volume_dirs[vm["name"]]
        if vm.get("subPath"):
            source = os.path.join(source, vm["subPath"])
        read_only = bool(vm.get("readOnly")) or volume_types.get(vm["name"]) in ALWAYS_READ_ONLY
        mounts.append(Mount(source, vm["mountPath"], read_only))
    security = c.get("securityContext") or {}
    if security.get("privileged"):
        capabilities = list(CAPABILITIES)
    else:
        caps = security.get("capabilities") or {}
        names = {n.upper().removeprefix("CAP_") for n in caps.get("add") or []}
        drop = {n.upper().removeprefix("CAP_") for n in caps.get("drop") or []}
        kept = set(CAPABILITIES) if "ALL" in names else set(DEFAULT_CAPABILITIES) | names
        capabilities = [] if "ALL" in drop else sorted(n for n in kept - drop if n in CAPABILITIES)
    resources = c.get("resources") or {}
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    cpu_request = requests.get("cpu", limits.get("cpu"))  # Kubernetes defaults a request to its limit
    return ContainerSpec(
        name=c["name"], image=c.get("image", ""), argv=program.argv,
        env={**program.env, "HOSTNAME": hostname, **env},
        working_dir=c.get("workingDir") or "/", mounts=mounts, ports=ports,
        memory_limit=int(quantity(limits["memory"])) if "memory" in limits else None,
        cpu_request_milli=round(quantity(cpu_request) * 1000) if cpu_request is not None else None,
        cpu_limit_milli=round(quantity(limits["cpu"]) * 1000) if "cpu" in limits else None,
        capabilities=capabilities,
        stdin=bool(c.get("stdin")), stdin_once=bool(c.get("stdinOnce")), tty=bool(c.get("tty")),
    )


def build_spec(pod: dict[str, Any], *, netns: str | None, volume_dirs: dict[str, str] | None = None,
               etc_files: dict[str, str] | None = None, hidden: list[str] | None = None,
               pod_ip: str | None = None, resolved_env: dict[str, dict[str, str]] | None = None,
               ) -> PodRuntimeSpec | dict[str, images.ImageError]:
    """A Pod object → the shim's spec, or the image errors by container name (ErrImagePull).

    ``resolved_env`` holds, per container, values the agent looked up for
    ``valueFrom`` references the shim cannot resolve (secretKeyRef, configMapKeyRef).
    """
    meta, pod_spec = pod.get("metadata", {}), pod.get("spec", {})
    hostname = pod_spec.get("hostname") or meta["name"]
    volume_types = {v["name"]: next((k for k in v if k != "name"), "") for v in pod_spec.get("volumes") or []}
    built: dict[str, list[ContainerSpec]] = {"initContainers": [], "containers": []}
    errors: dict[str, images.ImageError] = {}
    for key in built:
        for c in pod_spec.get(key) or []:
            got = _container(pod, c, volume_dirs or {}, volume_types, (resolved_env or {}).get(c["name"], {}),
                             pod_ip, hostname)
            if isinstance(got, images.ImageError):
                errors[c["name"]] = got
            else:
                built[key].append(got)
    if errors:
        return errors
    grace = pod_spec.get("terminationGracePeriodSeconds")
    return PodRuntimeSpec(
        uid=meta["uid"], name=meta["name"], namespace=meta.get("namespace", "default"), hostname=hostname,
        containers=built["containers"], init_containers=built["initContainers"], netns=netns,
        restart_policy=pod_spec.get("restartPolicy", "Always"), grace_period=30.0 if grace is None else float(grace),
        etc_files=dict(etc_files or {}), hidden=list(hidden or []),
    )


def write_etc_files(directory: Path, hostname: str, pod_ip: str | None, resolv_conf: str,
                    host_aliases: Sequence[dict[str, Any]] = (), subdomain_fqdn: str | None = None) -> dict[str, str]:
    """Writes the pod's hosts, hostname and resolv.conf; returns the mapping for `etc_files`.

    /etc/hosts is the kubelet's: localhost lines, the pod's own address with its FQDN first when it
    has hostname+subdomain, then spec.hostAliases under the kubelet's marker line.
    """
    directory.mkdir(parents=True, exist_ok=True)
    hosts = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    if pod_ip:
        hosts.append(f"{pod_ip}\t{subdomain_fqdn}\t{hostname}" if subdomain_fqdn else f"{pod_ip}\t{hostname}")
    aliases = [f"{a.get('ip')}\t" + "\t".join(str(h) for h in a.get("hostnames") or [])
               for a in host_aliases if a.get("ip") and a.get("hostnames")]
    if aliases:
        hosts += ["", "# Entries added by HostAliases.", *aliases]
    files = {
        "hosts": "# Kubernetes-managed hosts file (netplane).\n" + "\n".join(hosts) + "\n",
        "hostname": hostname + "\n",
        "resolv.conf": resolv_conf,
    }
    for name, text in files.items():
        write_atomic(directory / name, text)
    return {f"/etc/{name}": str(directory / name) for name in files}
