"""ING-3 duplicate access points and the rest of Ingress admission for the nginx class."""

from __future__ import annotations

from typing import Any

import pytest

from netplane.routing.ingress.admission import review_ingress
from netplane.routing.ingress.annotations import PREFIX
from netplane.routing.ingress.conflicts import AccessPoint, access_points, find_conflicts
from netplane.routing.ingress.settings import ControllerSettings

pytestmark = pytest.mark.unit


def ingress(name: str, *paths: tuple[str | None, str, str], namespace: str = "k-1", tls_hosts: list[str] | None = None,
            canary: bool = False, class_name: str | None = "nginx", created: str = "2026-01-01T00:00:00Z",
            annotations: dict[str, str] | None = None) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    for host, path, path_type in paths:
        entry = {"path": path, "pathType": path_type,
                 "backend": {"service": {"name": "svc", "port": {"number": 80}}}}
        existing = next((r for r in rules if r.get("host") == host), None)
        if existing is None:
            existing = {"http": {"paths": []}}
            if host is not None:
                existing["host"] = host
            rules.append(existing)
        existing["http"]["paths"].append(entry)
    metadata_annotations = {f"{PREFIX}/{k}": v for k, v in (annotations or {}).items()}
    if canary:
        metadata_annotations[f"{PREFIX}/canary"] = "true"
    spec: dict[str, Any] = {"rules": rules}
    if class_name:
        spec["ingressClassName"] = class_name
    if tls_hosts is not None:
        spec["tls"] = [{"hosts": tls_hosts, "secretName": "tls"}]
    return {"metadata": {"name": name, "namespace": namespace, "creationTimestamp": created,
                         "annotations": metadata_annotations}, "spec": spec}


def conflict_messages(new: dict[str, Any], *existing: dict[str, Any], default_class: str | None = None) -> list[str]:
    return [str(c.to_field_error()) for c in find_conflicts(new, list(existing), default_class)]


def test_access_points() -> None:
    ing = ingress("a", ("demo.local", "/", "Prefix"), ("demo.local", "/api/", "Prefix"), (None, "/x", "Exact"),
                  ("secure.local", "/", "ImplementationSpecific"), tls_hosts=["secure.local"])
    assert [ap for _, ap in access_points(ing)] == [
        AccessPoint("demo.local", "http", "/", "Prefix"), AccessPoint("demo.local", "http", "/api", "Prefix"),
        AccessPoint("*", "http", "/x", "Exact"), AccessPoint("secure.local", "https", "/", "ImplementationSpecific")]


def test_duplicate_access_point_names_the_holder() -> None:
    holder = ingress("first", ("demo.local", "/", "Prefix"))
    new = ingress("second", ("demo.local", "/", "Prefix"), ("demo.local", "/other", "Prefix"))
    assert conflict_messages(new, holder) == [
        'spec.rules[0].http.paths[0].path: Invalid value: "/": host "demo.local" and path "/" (Prefix, http) is '
        "already defined in ingress k-1/first"]


@pytest.mark.parametrize(("existing", "new", "conflicts"), [
    # Same host, protocol, path and type → conflict.
    (ingress("a", ("demo.local", "/api", "Prefix")), ingress("b", ("demo.local", "/api", "Prefix")), 1),
    # A trailing slash does not make a different Prefix.
    (ingress("a", ("demo.local", "/api", "Prefix")), ingress("b", ("demo.local", "/api/", "Prefix")), 1),
    # Host names compare case-insensitively; a host-less rule is its own access point.
    (ingress("a", ("Demo.Local", "/api", "Prefix")), ingress("b", ("demo.local", "/api", "Prefix")), 1),
    (ingress("a", (None, "/api", "Prefix")), ingress("b", (None, "/api", "Prefix")), 1),
    (ingress("a", (None, "/api", "Prefix")), ingress("b", ("demo.local", "/api", "Prefix")), 0),
    # Different protocol (TLS for the host in one of them) → different access points.
    (ingress("a", ("demo.local", "/api", "Prefix"), tls_hosts=["demo.local"]),
     ingress("b", ("demo.local", "/api", "Prefix")), 0),
    (ingress("a", ("demo.local", "/api", "Prefix"), tls_hosts=["demo.local"]),
     ingress("b", ("demo.local", "/api", "Prefix"), tls_hosts=["demo.local"]), 1),
    # Exact and Prefix on the same path route differently.
    (ingress("a", ("demo.local", "/api", "Prefix")), ingress("b", ("demo.local", "/api", "Exact")), 0),
    # Different paths, hosts, namespaces or classes never conflict.
    (ingress("a", ("demo.local", "/api", "Prefix")), ingress("b", ("demo.local", "/apis", "Prefix")), 0),
    (ingress("a", ("demo.local", "/api", "Prefix")), ingress("b", ("other.local", "/api", "Prefix")), 0),
    (ingress("a", ("demo.local", "/api", "Prefix"), namespace="other"), ingress("b", ("demo.local", "/api", "Prefix")),
     0),
    (ingress("a", ("demo.local", "/api", "Prefix"), class_name="alb-1"),
     ingress("b", ("demo.local", "/api", "Prefix")), 0),
    # A canary shares its main Ingress's access point; two canaries (or two mains) do not.
    (ingress("a", ("demo.local", "/api", "Prefix")), ingress("b", ("demo.local", "/api", "Prefix"), canary=True), 0),
    (ingress("a", ("demo.local", "/api", "Prefix"), canary=True),
     ingress("b", ("demo.local", "/api", "Prefix"), canary=True), 1),
    # Updating an Ingress never conflicts with itself.
    (ingress("b", ("demo.local", "/api", "Prefix")), ingress("b", ("demo.local", "/api", "Prefix")), 0),
])
def test_conflict_table(existing: dict[str, Any], new: dict[str, Any], conflicts: int) -> None:
    assert len(find_conflicts(new, [existing])) == conflicts


def test_default_class_makes_classless_ingresses_comparable() -> None:
    classless = ingress("a", ("demo.local", "/", "Prefix"), class_name=None)
    new = ingress("b", ("demo.local", "/", "Prefix"))
    assert conflict_messages(new, classless) == []
    assert len(conflict_messages(new, classless, default_class="nginx")) == 1


def test_the_oldest_holder_is_named() -> None:
    newer = ingress("newer", ("demo.local", "/", "Prefix"), created="2026-03-01T00:00:00Z")
    older = ingress("older", ("demo.local", "/", "Prefix"), created="2026-01-01T00:00:00Z")
    (message,) = conflict_messages(ingress("c", ("demo.local", "/", "Prefix")), newer, older)
    assert message.endswith("is already defined in ingress k-1/older")


# ---------------------------------------------------------------------------------------------------------------
# Admission


def review(ing: dict[str, Any], *existing: dict[str, Any], **settings: Any) -> list[str]:
    result = review_ingress(ing, list(existing), ControllerSettings(**settings))
    return [str(e) for e in result.errors]


def test_admission_accepts_a_good_ingress() -> None:
    ing = ingress("ok", ("demo.local", "/something(/|$)(.*)", "ImplementationSpecific"),
                  annotations={"use-regex": "true", "rewrite-target": "/$2", "unknown-annotation": "x"})
    result = review_ingress(ing, [])
    assert result.errors == ()
    assert result.warnings == (f"metadata.annotations[{PREFIX}/unknown-annotation]: annotation is not supported by "
                               "netplane and has no effect",)


def test_admission_collects_every_problem() -> None:
    holder = ingress("holder", ("demo.local", "/taken", "Prefix"))
    bad = ingress("bad", ("demo.local", "/taken", "Prefix"), ("demo.local", "/api(", "ImplementationSpecific"),
                  ("demo.local", "/x[0-9]", "Prefix"), annotations={"use-regex": "true", "limit-rps": "x"})
    assert review(bad, holder) == [
        f'metadata.annotations[{PREFIX}/limit-rps]: Invalid value: "x": must be a positive integer',
        'spec.rules[0].http.paths[1].path: Invalid value: "/api(": invalid regular expression: missing ), '
        "unterminated subpattern at position 4",
        'spec.rules[0].http.paths[2].path: Invalid value: "/x[0-9]": cannot be used with pathType Prefix: only '
        "letters, digits and ._-/ are allowed (regular expressions need ImplementationSpecific with use-regex)",
        'spec.rules[0].http.paths[0].path: Invalid value: "/taken": host "demo.local" and path "/taken" (Prefix, '
        "http) is already defined in ingress k-1/holder",
    ]


def test_admission_checks_rewrite_captures() -> None:
    ing = ingress("r", ("demo.local", "/plain", "Prefix"), ("demo.local", "/re/(.*)", "ImplementationSpecific"),
                  annotations={"use-regex": "true", "rewrite-target": "/$1"})
    assert review(ing) == [
        f'metadata.annotations[{PREFIX}/rewrite-target]: Invalid value: "/$1": refers to $1 but path \'/plain\' '
        "(spec.rules[0].http.paths[0]) has 0 capture groups"]


def test_strict_path_validation_can_be_turned_off() -> None:
    ing = ingress("p", ("demo.local", "/x[0-9]", "Prefix"))
    assert review(ing, strict_validate_path_type=False) == []
    assert review(ingress("q", ("demo.local", "/a.b_c-d/e", "Exact"))) == []


def test_admission_honours_instance_policy() -> None:
    snippet = ingress("s", ("demo.local", "/", "Prefix"), annotations={"configuration-snippet": "set $x 1;",
                                                                       "ssl-passthrough": "true"})
    assert len(review(snippet)) == 2
    assert review(snippet, allow_snippet_annotations=True, enable_ssl_passthrough=True) == []
