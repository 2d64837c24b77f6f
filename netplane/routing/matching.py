"""The IR's matching and rewriting semantics, executable: what the data plane must do, as a reference for its tests.

``route_request(listener, request)`` picks the virtual host and the first route whose match holds, exactly as the
IR module docstring describes; ``rewrite_path`` is what a path rewrite sends upstream. The data plane implements
the same in Lua; tests compare the two.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from netplane.routing.ir import (
    And,
    CookieMatch,
    HeaderMatch,
    HostMatch,
    Listener,
    Match,
    MethodMatch,
    Not,
    Or,
    PathKind,
    PathMatch,
    PathRewrite,
    QueryMatch,
    RegexRewrite,
    ReplaceFullPath,
    Route,
    StringMatchKind,
    VirtualHost,
)
from netplane.routing.precedence import host_matches, normalize_host, select_virtual_host
from netplane.routing.regex import compile_pcre, expand_substitution


@dataclass(frozen=True)
class Request:
    """A request as routing sees it. Header names are compared case-insensitively; ``path`` is the decoded path
    without the query string."""

    path: str = "/"
    host: str = ""
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    cookies: Mapping[str, str] = field(default_factory=dict)
    source_ip: str = "192.0.2.1"

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", {k.lower(): v for k, v in self.headers.items()})

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def segment_prefix_matches(prefix: str, path: str) -> bool:
    """Kubernetes/Gateway element-wise prefix: ``/foo`` and ``/foo/`` match ``/foo``, ``/foo/``, ``/foo/bar``,
    never ``/foobar``."""
    prefix = prefix.rstrip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


def path_matches(match: PathMatch, path: str) -> bool:
    value = match.value
    if match.ignore_case and match.kind is not PathKind.REGEX:
        value, path = value.lower(), path.lower()
    if match.kind is PathKind.EXACT:
        return path == value
    if match.kind is PathKind.PREFIX:
        return segment_prefix_matches(value, path)
    if match.kind is PathKind.STARTS_WITH:
        return path.startswith(value)
    return compile_pcre(match.value, match.ignore_case).search(path) is not None


def string_matches(kind: StringMatchKind, expected: str, actual: str | None, ignore_case: bool) -> bool:
    if actual is None:
        return False
    if kind is StringMatchKind.PRESENT:
        return True
    if kind is StringMatchKind.REGEX:
        return compile_pcre(expected, ignore_case).search(actual) is not None
    if ignore_case:
        expected, actual = expected.lower(), actual.lower()
    if kind is StringMatchKind.EXACT:
        return actual == expected
    if kind is StringMatchKind.PREFIX:
        return actual.startswith(expected)
    return actual.endswith(expected)


def _in_networks(address: str, cidrs: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(c, strict=False) for c in cidrs)


def evaluate(match: Match, request: Request) -> bool:
    """Whether ``match`` holds for ``request``."""
    if isinstance(match, And):
        return all(evaluate(m, request) for m in match.matches)
    if isinstance(match, Or):
        return any(evaluate(m, request) for m in match.matches)
    if isinstance(match, Not):
        return not evaluate(match.match, request)
    if isinstance(match, PathMatch):
        return path_matches(match, request.path)
    if isinstance(match, HostMatch):
        return host_matches(match.hostname, normalize_host(request.host), match.wildcard)
    if isinstance(match, MethodMatch):
        return request.method.upper() in match.methods
    if isinstance(match, HeaderMatch | QueryMatch | CookieMatch):
        if isinstance(match, HeaderMatch):
            actual = request.header(match.name)
        elif isinstance(match, QueryMatch):
            actual = request.query.get(match.name)
        else:
            actual = request.cookies.get(match.name)
        return string_matches(match.kind, match.value, actual, match.ignore_case) != match.invert
    return _in_networks(request.source_ip, match.cidrs) != match.invert


def first_match(vhost: VirtualHost, request: Request) -> Route | None:
    return next((r for r in vhost.routes if evaluate(r.match, request)), None)


def route_request(listener: Listener, request: Request) -> Route | None:
    """The route a request to ``listener`` takes, or None (the data plane answers 404)."""
    vhost = select_virtual_host(listener.virtual_hosts, request.host)
    return first_match(vhost, request) if vhost else None


def rewrite_path(rewrite: PathRewrite, match: PathMatch | None, path: str) -> str:
    """The path sent upstream after ``rewrite``, for a request ``path`` that the route's path ``match`` took."""
    if isinstance(rewrite, ReplaceFullPath):
        return rewrite.path
    if isinstance(rewrite, RegexRewrite):
        m = compile_pcre(rewrite.pattern, rewrite.ignore_case).search(path)
        if m is None:
            return path
        expanded = expand_substitution(rewrite.substitution, m)
        return expanded if rewrite.whole_path else path[:m.start()] + expanded + path[m.end():]
    # Validation guarantees a prefix match here; an element-wise prefix consumes no trailing '/'.
    assert match is not None
    consumed = match.value.rstrip("/") if match.kind is PathKind.PREFIX else match.value
    rest = path[len(consumed):]
    replacement = rewrite.prefix
    if replacement.endswith("/") and rest.startswith("/"):
        # Gateway API: replacing "/strip-prefix" with "/" turns "/strip-prefix/three" into "/three", not "//three".
        replacement = replacement[:-1]
    return replacement + rest or "/"
