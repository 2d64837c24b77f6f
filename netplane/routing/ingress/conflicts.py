"""ING-3: duplicate access points are refused at admission.

The guide: "When creating multiple ingresses within the same namespace, different ingresses MUST NOT have the same
Domain, Protocol, and Path (i.e., duplicate access points are not allowed)." An access point is therefore

- the host (``*`` for rules without one),
- the protocol: ``https`` when the Ingress's ``tls`` covers the host, else ``http``,
- the path, with its type: paths of different types route differently (Kubernetes itself documents an Exact and
  a Prefix ``/foo`` side by side), while ``/foo`` and ``/foo/`` as Prefix are the same access point.

Only Ingresses of the same class (one data plane) and the same namespace are compared. A canary Ingress shares its
main Ingress's access points on purpose, so one canary and one main Ingress never conflict; two of either do, as in
ingress-nginx. Across namespaces the oldest Ingress keeps the access point at translation time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from netplane.api.errors import FieldError, invalid
from netplane.routing.ingress.model import IngressPath, age_order, ingress_class, is_canary, meta, paths, tls_secret


@dataclass(frozen=True)
class AccessPoint:
    host: str
    protocol: str
    path: str
    path_type: str


def _normalized_path(p: IngressPath) -> str:
    if p.path_type == "Prefix" and p.path != "/":
        return p.path.rstrip("/") or "/"
    return p.path


def access_points(ingress: Mapping[str, Any]) -> list[tuple[IngressPath, AccessPoint]]:
    out = []
    for p in paths(ingress):
        protocol = "https" if tls_secret(ingress, p.host)[0] else "http"
        out.append((p, AccessPoint(p.host, protocol, _normalized_path(p), p.path_type)))
    return out


@dataclass(frozen=True)
class Conflict:
    field: str
    path: str
    access_point: AccessPoint
    holder: str

    @property
    def message(self) -> str:
        ap = self.access_point
        return (f'host "{ap.host}" and path "{self.path}" ({ap.path_type}, {ap.protocol}) is already defined in '
                f"ingress {self.holder}")

    def to_field_error(self) -> FieldError:
        return invalid(f"{self.field}.path", self.path, self.message)


def find_conflicts(ingress: Mapping[str, Any], existing: Iterable[Mapping[str, Any]],
                   default_class: str | None = None) -> list[Conflict]:
    """The access points of ``ingress`` (new, or an update) already held by another Ingress of ``existing``.

    ``default_class`` is the class an Ingress without one belongs to (the IngressClass marked default), if any.
    """
    m = meta(ingress)
    own_class = ingress_class(ingress) or default_class
    canary = is_canary(ingress)
    holders: dict[AccessPoint, str] = {}
    for other in sorted(existing, key=age_order):
        om = meta(other)
        if (om.namespace, om.name) == (m.namespace, m.name) or om.namespace != m.namespace:
            continue
        if (ingress_class(other) or default_class) != own_class or is_canary(other) != canary:
            continue
        for _, ap in access_points(other):
            holders.setdefault(ap, om.key)
    conflicts = []
    for p, ap in access_points(ingress):
        holder = holders.get(ap)
        if holder is not None:
            conflicts.append(Conflict(p.field, p.path, ap, holder))
    return conflicts
