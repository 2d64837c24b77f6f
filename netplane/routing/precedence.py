"""The ordering model: which virtual host a request reaches, and in which order its routes are tried.

The IR stores routes of a virtual host in evaluation order (first match wins). Each front door computes that order
with its own sort key, all of them total orders over routes with distinct ids:

- ``gateway_key`` — Gateway API HTTPRoute precedence, the strictest of the three: path (Exact, then
  RegularExpression, then the longest PathPrefix), then method, then most header matches, then most query
  matches; then the hostname the route was attached under (more characters of an exact hostname, then more
  characters), then the oldest source, then ``namespace/name``, then rule and match index. The hostname comes
  after the match criteria because conformance (HTTPRouteMatchingAcrossRoutes) routes ``example.com/v2`` to a
  ``*.com`` route's ``/v2`` rather than an ``example.com`` route's ``/``: hostname precedence separates routes
  whose matches tie. RegularExpression's place is implementation-specific in the specification; netplane puts
  it between Exact and PathPrefix, longest pattern first, as the Envoy-based implementations do.
- ``ingress_key`` — Kubernetes Ingress: the longest path first, an Exact path before a Prefix of the same length
  (element-wise Prefix: a trailing ``/`` does not count), ingress-nginx's ImplementationSpecific after both at
  equal length (a character prefix, or a regex when ``use-regex`` is on for the host), equal lengths in
  descending path order as ingress-nginx sorts its locations; then the oldest Ingress, then ``namespace/name``.
- ``alb_key`` — Alauda ALB: user priority ascending, then the rule's complexity score descending (host 50000 for an
  exact host or 10000 for a wildcard; each exact URL 2000, each prefix / regex URL 1000 plus its length, +2 more
  for a plain prefix; every other condition 100 per alternative), then the length of its DSL, then rule name.

``Route.priority`` comes first in every key, so a translator can pin derived routes before or after the rest.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import orjson

from netplane.routing.ir import (
    And,
    HeaderMatch,
    HostMatch,
    Match,
    MethodMatch,
    Or,
    PathKind,
    PathMatch,
    QueryMatch,
    Route,
    VirtualHost,
    WildcardMode,
    export,
)

CATCH_ALL = "*"

# ---------------------------------------------------------------------------------------------------------------
# Hostnames


def normalize_host(host: str) -> str:
    """The Host header (or SNI) as matching sees it: lower case, without port and trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end >= 0 else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def is_wildcard(hostname: str) -> bool:
    return hostname.startswith("*.")


def host_matches(pattern: str, host: str, mode: WildcardMode = WildcardMode.ANY_LABELS) -> bool:
    """Whether ``host`` (already normalised) is covered by ``pattern`` (exact, ``*.``-wildcard or ``*``).

    A wildcard never covers the bare suffix: ``*.example.com`` does not match ``example.com``.
    """
    pattern = pattern.lower()
    if pattern == CATCH_ALL:
        return True
    if not is_wildcard(pattern):
        return host == pattern
    suffix = pattern[1:]
    if not host.endswith(suffix):
        return False
    label = host[: -len(suffix)]
    if not label or label.startswith(".") or label.endswith("."):
        return False
    return mode is WildcardMode.ANY_LABELS or "." not in label


def hostname_rank(hostname: str) -> tuple[int, int, str]:
    """Selection order of hostnames: exact names, then wildcards with more labels after ``*``, then ``*``."""
    if hostname == CATCH_ALL:
        return (2, 0, "")
    if is_wildcard(hostname):
        return (1, -hostname.count("."), hostname)
    return (0, 0, hostname)


def virtual_host_order(vhost: VirtualHost) -> tuple[tuple[int, int, str], tuple[str, ...]]:
    ranks = [hostname_rank(h) for h in vhost.hostnames] or [hostname_rank(CATCH_ALL)]
    return (min(ranks), vhost.hostnames)


def select_virtual_host(vhosts: Iterable[VirtualHost], host: str) -> VirtualHost | None:
    """The one virtual host a request for ``host`` reaches: an exact name, else the matching wildcard with the
    most labels (then the longest), else the catch-all ``*``; None when nothing covers it."""
    host = normalize_host(host)
    best: tuple[tuple[int, int, int], VirtualHost] | None = None
    for vhost in vhosts:
        for pattern in vhost.hostnames:
            if not host_matches(pattern, host, vhost.wildcard):
                continue
            rank = hostname_rank(pattern.lower())
            key = (rank[0], rank[1], -len(pattern))
            if best is None or key < best[0]:
                best = (key, vhost)
    return best[1] if best else None


def intersect_hostnames(listener: str, route: str) -> str | None:
    """Gateway API hostname intersection: the hostname a route serves on a listener, or None if they do not
    overlap. Empty (or ``*``) stands for any host; the more specific side wins."""
    listener, route = listener.lower(), route.lower()
    if listener in ("", CATCH_ALL):
        return route
    if route in ("", CATCH_ALL):
        return listener
    if not is_wildcard(listener) and not is_wildcard(route):
        return route if route == listener else None
    if is_wildcard(listener) and not is_wildcard(route):
        return route if host_matches(listener, route) else None
    if not is_wildcard(listener) and is_wildcard(route):
        return listener if host_matches(route, listener) else None
    if route[1:].endswith(listener[1:]):
        return route
    if listener[1:].endswith(route[1:]):
        return listener
    return None


# ---------------------------------------------------------------------------------------------------------------
# What the keys look at


@dataclass(frozen=True)
class MatchSummary:
    """The parts of a match that precedence looks at, taken from its top-level conjunction (predicates nested
    under ``Or``/``Not`` do not count: their specificity is not comparable)."""

    path: PathMatch | None
    has_method: bool
    header_names: int
    query_names: int


def conjuncts(match: Match) -> list[Match]:
    """The top-level conjunction of a match, nested ``And`` flattened."""
    if isinstance(match, And):
        return [leaf for m in match.matches for leaf in conjuncts(m)]
    return [match]


def summarize(match: Match) -> MatchSummary:
    parts = conjuncts(match)
    path = next((p for p in parts if isinstance(p, PathMatch)), None)
    headers = {p.name.lower() for p in parts if isinstance(p, HeaderMatch)}
    queries = {p.name for p in parts if isinstance(p, QueryMatch)}
    return MatchSummary(path, any(isinstance(p, MethodMatch) for p in parts), len(headers), len(queries))


def _created(route: Route) -> tuple[int, str]:
    # A source without a creation time (not yet stored) sorts after every stored one.
    created = route.provenance.created
    return (0, created) if created else (1, "")


def _identity(route: Route) -> tuple[str, str, int, int, str, str]:
    p = route.provenance
    return (p.namespace, p.name, p.rule_index, p.match_index, p.role, route.id)


# ---------------------------------------------------------------------------------------------------------------
# Gateway API

_GATEWAY_PATH_RANK = {PathKind.EXACT: 0, PathKind.REGEX: 1, PathKind.PREFIX: 2, PathKind.STARTS_WITH: 2}


def hostname_specificity(hostname: str) -> tuple[int, int]:
    """(characters of a non-wildcard hostname, characters of the hostname) — Gateway API's hostname precedence."""
    if hostname in ("", CATCH_ALL):
        return (0, 0)
    return (0 if is_wildcard(hostname) else len(hostname), len(hostname))


def gateway_key(route: Route) -> tuple[object, ...]:
    summary = summarize(route.match)
    path = summary.path or PathMatch(PathKind.PREFIX, "/")
    exact_chars, chars = hostname_specificity(route.hostname)
    return (route.priority, _GATEWAY_PATH_RANK[path.kind], -len(path.value), 0 if summary.has_method else 1,
            -summary.header_names, -summary.query_names, -exact_chars, -chars, _created(route), *_identity(route))


# ---------------------------------------------------------------------------------------------------------------
# Kubernetes Ingress (ingress-nginx flavour for ImplementationSpecific)

_INGRESS_KIND_RANK = {PathKind.EXACT: 0, PathKind.PREFIX: 1, PathKind.STARTS_WITH: 2, PathKind.REGEX: 3}


def ingress_path_length(path: PathMatch | None) -> int:
    """Length used for "longest path first": an element-wise prefix without its trailing ``/``, a regex
    without the ``^`` the translator anchored it with."""
    if path is None:
        return 0
    if path.kind is PathKind.PREFIX:
        return max(1, len(path.value.rstrip("/")))
    if path.kind is PathKind.REGEX:
        return len(path.value.removeprefix("^"))
    return len(path.value)


def _descending(text: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in text)


def ingress_key(route: Route) -> tuple[object, ...]:
    path = summarize(route.match).path
    rank = _INGRESS_KIND_RANK[path.kind] if path else len(_INGRESS_KIND_RANK)
    return (route.priority, -ingress_path_length(path), rank, _descending(path.value if path else ""),
            _created(route), *_identity(route))


# ---------------------------------------------------------------------------------------------------------------
# Alauda ALB


def _alb_term_score(term: Match) -> int:
    leaves = list(term.matches) if isinstance(term, Or) else [term]
    if leaves and all(isinstance(leaf, HostMatch) for leaf in leaves):
        exact = all(not is_wildcard(leaf.hostname) for leaf in leaves if isinstance(leaf, HostMatch))
        return 50000 if exact else 10000
    if leaves and all(isinstance(leaf, PathMatch) for leaf in leaves):
        score = 0
        for leaf in leaves:
            assert isinstance(leaf, PathMatch)
            if leaf.kind is PathKind.EXACT:
                score += 2000
            else:
                score += 1000 + len(leaf.value) + (2 if leaf.kind in (PathKind.STARTS_WITH, PathKind.PREFIX) else 0)
        return score
    return 100 * max(1, len(leaves))


def alb_complexity(match: Match) -> int:
    return sum(_alb_term_score(term) for term in conjuncts(match))


def alb_key(route: Route) -> tuple[object, ...]:
    dsl_length = len(orjson.dumps(export(route.match), option=orjson.OPT_SORT_KEYS))
    return (route.priority, -alb_complexity(route.match), -dsl_length, route.provenance.name, *_identity(route))


class OrderingModel(enum.StrEnum):
    GATEWAY = "gateway"
    INGRESS = "ingress"
    ALB = "alb"


SORT_KEYS: dict[OrderingModel, Callable[[Route], tuple[object, ...]]] = {
    OrderingModel.GATEWAY: gateway_key,
    OrderingModel.INGRESS: ingress_key,
    OrderingModel.ALB: alb_key,
}


def order_routes(routes: Sequence[Route], model: OrderingModel) -> tuple[Route, ...]:
    """``routes`` in evaluation order for ``model``; the result does not depend on the input order."""
    return tuple(sorted(routes, key=SORT_KEYS[model]))
