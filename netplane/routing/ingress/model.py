"""Read Ingress objects (plain dicts, as the API server stores them) defensively: translation and admission must
never raise on whatever a client managed to store."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from netplane.api.validation.access import as_dict, as_list, as_str
from netplane.routing.ir import WildcardMode
from netplane.routing.precedence import CATCH_ALL, host_matches

CLASS_ANNOTATION = "kubernetes.io/ingress.class"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
CANARY_ANNOTATION = "nginx.ingress.kubernetes.io/canary"




@dataclass(frozen=True)
class Meta:
    namespace: str
    name: str
    created: str
    annotations: Mapping[str, Any]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def meta(obj: Mapping[str, Any]) -> Meta:
    m = as_dict(obj.get("metadata"))
    return Meta(as_str(m.get("namespace")) or "default", as_str(m.get("name")), as_str(m.get("creationTimestamp")),
                as_dict(m.get("annotations")))


def age_order(obj: Mapping[str, Any]) -> tuple[int, str, str, str]:
    """Oldest first; objects without a creation time (not stored yet) last; then by namespace/name."""
    m = meta(obj)
    return (0 if m.created else 1, m.created, m.namespace, m.name)


def spec(obj: Mapping[str, Any]) -> dict[str, Any]:
    return as_dict(obj.get("spec"))


def ingress_class(ingress: Mapping[str, Any]) -> str | None:
    """The class an Ingress asks for: ``spec.ingressClassName``, else the legacy annotation, else None."""
    name = as_str(spec(ingress).get("ingressClassName"))
    return name or as_str(meta(ingress).annotations.get(CLASS_ANNOTATION)) or None


def belongs_to(ingress: Mapping[str, Any], class_name: str, class_is_default: bool) -> bool:
    wanted = ingress_class(ingress)
    return wanted == class_name or (wanted is None and class_is_default)


def is_canary(ingress: Mapping[str, Any]) -> bool:
    return as_str(meta(ingress).annotations.get(CANARY_ANNOTATION)).strip() in ("1", "t", "T", "TRUE", "true",
                                                                                "True")


def normalize_host(host: str) -> str:
    """An Ingress rule host as a virtual-host name: lower case, ``*`` for none."""
    return host.strip().lower() or CATCH_ALL


@dataclass(frozen=True)
class IngressPath:
    """One ``spec.rules[rule].http.paths[index]`` entry."""

    rule: int
    index: int
    host: str
    path: str
    path_type: str
    backend: dict[str, Any]

    @property
    def field(self) -> str:
        return f"spec.rules[{self.rule}].http.paths[{self.index}]"


def paths(ingress: Mapping[str, Any]) -> Iterator[IngressPath]:
    for i, rule in enumerate(as_list(spec(ingress).get("rules"))):
        rule = as_dict(rule)
        host = normalize_host(as_str(rule.get("host")))
        for j, entry in enumerate(as_list(as_dict(rule.get("http")).get("paths"))):
            entry = as_dict(entry)
            path_type = as_str(entry.get("pathType")) or "Prefix"
            yield IngressPath(i, j, host, as_str(entry.get("path")) or "/", path_type, as_dict(entry.get("backend")))


def rule_hosts(ingress: Mapping[str, Any]) -> list[str]:
    """Hosts of the Ingress's rules, in order, each once."""
    hosts = [normalize_host(as_str(as_dict(r).get("host"))) for r in as_list(spec(ingress).get("rules"))]
    return list(dict.fromkeys(hosts))


def tls_secret(ingress: Mapping[str, Any], host: str) -> tuple[bool, str | None]:
    """Whether the Ingress's ``tls`` section covers ``host``, and the secret named for it.

    An entry lists the host (exactly, or as a one-label wildcard), or lists no hosts at all, which Kubernetes
    defines as covering the Ingress's hosts. An entry may omit the secret (the default certificate then serves).
    """
    for entry in as_list(spec(ingress).get("tls")):
        entry = as_dict(entry)
        hosts = [as_str(h).lower() for h in as_list(entry.get("hosts")) if as_str(h)]
        if not hosts or host in hosts or (host != CATCH_ALL and any(
                host_matches(h, host, WildcardMode.ONE_LABEL) for h in hosts)):
            return True, as_str(entry.get("secretName")) or None
    return False, None


def service_backend(backend: Mapping[str, Any]) -> tuple[str, int | str] | None:
    """(service name, port number or name) of an Ingress backend, or None for resource backends."""
    service = as_dict(backend.get("service"))
    name = as_str(service.get("name"))
    port = as_dict(service.get("port"))
    number, port_name = port.get("number"), as_str(port.get("name"))
    if not name:
        return None
    if isinstance(number, int) and not isinstance(number, bool) and number > 0:
        return name, number
    return (name, port_name) if port_name else None
