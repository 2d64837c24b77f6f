"""The ordering model: hostnames, virtual-host selection, and route order for Gateway API, Ingress and ALB,
checked against conformance-style tables and properties."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netplane.routing.ir import (
    And,
    DirectResponse,
    HeaderMatch,
    HostMatch,
    Match,
    MethodMatch,
    Or,
    PathKind,
    PathMatch,
    Provenance,
    QueryMatch,
    Route,
    VirtualHost,
    WildcardMode,
)
from netplane.routing.matching import Request, first_match
from netplane.routing.precedence import (
    OrderingModel,
    alb_complexity,
    alb_key,
    gateway_key,
    host_matches,
    hostname_specificity,
    ingress_key,
    intersect_hostnames,
    normalize_host,
    order_routes,
    select_virtual_host,
    summarize,
)

pytestmark = pytest.mark.unit

ONE, ANY = WildcardMode.ONE_LABEL, WildcardMode.ANY_LABELS


def route(name: str, match: Match, *, rule: int = 0, index: int = 0, created: str = "2026-01-01T00:00:00Z",
          namespace: str = "ns", hostname: str = "", kind: str = "HTTPRoute", priority: int = 0,
          backend: str = "") -> Route:
    """A route whose action names the backend it stands for (the status code carries no meaning here)."""
    return Route(Provenance(kind, namespace, name, rule, index, created=created), match,
                 DirectResponse(200, body=backend or name), hostname=hostname, priority=priority)


def gw_match(path: tuple[str, str] | None = ("PathPrefix", "/"), method: str | None = None,
             headers: Sequence[tuple[str, str]] = (), query: Sequence[tuple[str, str]] = ()) -> Match:
    """An HTTPRouteMatch as the Gateway translator builds it (an absent path is PathPrefix /)."""
    kinds = {"PathPrefix": PathKind.PREFIX, "Exact": PathKind.EXACT, "RegularExpression": PathKind.REGEX}
    parts: list[Match] = []
    if path is not None:
        parts.append(PathMatch(kinds[path[0]], path[1]))
    if method:
        parts.append(MethodMatch((method,)))
    parts += [HeaderMatch(n, value=v) for n, v in headers]
    parts += [QueryMatch(n, value=v) for n, v in query]
    return And(tuple(parts))


def backend_of(vhost: VirtualHost, request: Request) -> str | None:
    chosen = first_match(vhost, request)
    if chosen is None:
        return None
    assert isinstance(chosen.action, DirectResponse)
    return chosen.action.body


# ---------------------------------------------------------------------------------------------------------------
# Hostnames


@pytest.mark.parametrize(("raw", "expected"), [
    ("Example.COM", "example.com"),
    ("example.com:8080", "example.com"),
    ("example.com.", "example.com"),
    ("[::1]:443", "[::1]"),
    ("  foo.bar  ", "foo.bar"),
    ("very.specific.com:1234", "very.specific.com"),
])
def test_normalize_host(raw: str, expected: str) -> None:
    assert normalize_host(raw) == expected


@pytest.mark.parametrize(("pattern", "host", "one_label", "any_labels"), [
    ("example.com", "example.com", True, True),
    ("example.com", "www.example.com", False, False),
    ("*.example.com", "foo.example.com", True, True),
    ("*.example.com", "foo.bar.example.com", False, True),
    ("*.example.com", "example.com", False, False),
    ("*.example.com", "fooexample.com", False, False),
    ("*.example.com", ".example.com", False, False),
    ("*.foo.com", "bar.foo.com", True, True),
    ("*.foo.com", "baz.bar.foo.com", False, True),
    ("*", "anything.at.all", True, True),
    ("*.Example.com", "a.example.com", True, True),
])
def test_host_matches_ingress_and_gateway_wildcards(pattern: str, host: str, one_label: bool,
                                                     any_labels: bool) -> None:
    # Kubernetes Ingress: "*.foo.com" matches "bar.foo.com" but not "baz.bar.foo.com" or "foo.com";
    # Gateway API: the wildcard covers one or more labels.
    assert host_matches(pattern, host, ONE) is one_label
    assert host_matches(pattern, host, ANY) is any_labels


def vhosts(*names: str, wildcard: WildcardMode = ANY) -> list[VirtualHost]:
    return [VirtualHost((n,), (route(n, And(())),), wildcard=wildcard) for n in names]


@pytest.mark.parametrize(("host", "expected"), [
    ("foo.example.com", "foo.example.com"),
    ("FOO.example.com:80", "foo.example.com"),
    ("bar.example.com", "*.example.com"),
    ("a.bar.example.com", "*.bar.example.com"),
    ("a.b.c.example.com", "*.example.com"),
    ("example.com", "*"),
    ("other.org", "*"),
])
def test_select_virtual_host_prefers_exact_then_longest_wildcard_then_catch_all(host: str, expected: str) -> None:
    chosen = select_virtual_host(vhosts("*", "*.example.com", "*.bar.example.com", "foo.example.com"), host)
    assert chosen is not None and chosen.hostnames == (expected,)


def test_select_virtual_host_without_catch_all_and_one_label_mode() -> None:
    hosts = vhosts("*.example.com", wildcard=ONE)
    assert select_virtual_host(hosts, "a.example.com") is hosts[0]
    assert select_virtual_host(hosts, "a.b.example.com") is None
    assert select_virtual_host(hosts, "example.com") is None


@pytest.mark.parametrize(("listener", "route_host", "expected"), [
    ("", "foo.com", "foo.com"),
    ("*", "foo.com", "foo.com"),
    ("foo.com", "", "foo.com"),
    ("foo.com", "foo.com", "foo.com"),
    ("foo.com", "bar.com", None),
    ("*.wildcard.io", "foo.bar.wildcard.io", "foo.bar.wildcard.io"),
    ("*.wildcard.io", "wildcard.io", None),
    ("*.example.com", "*.foo.example.com", "*.foo.example.com"),
    ("*.foo.example.com", "*.example.com", "*.foo.example.com"),
    ("*.example.com", "*.example.net", None),
    ("very.specific.com", "*.specific.com", "very.specific.com"),
    ("*.specific.com", "very.specific.com", "very.specific.com"),
    ("non.matching.com", "*.specific.com", None),
])
def test_intersect_hostnames(listener: str, route_host: str, expected: str | None) -> None:
    assert intersect_hostnames(listener, route_host) == expected


def test_hostname_specificity() -> None:
    assert hostname_specificity("") == (0, 0)
    assert hostname_specificity("*") == (0, 0)
    assert hostname_specificity("*.example.com") == (0, 13)
    assert hostname_specificity("example.com") == (11, 11)


# ---------------------------------------------------------------------------------------------------------------
# Gateway API precedence, conformance-style


def test_summary_flattens_top_level_and_ignores_or() -> None:
    match = And((PathMatch(PathKind.EXACT, "/a"), And((HeaderMatch("x"), HeaderMatch("X"), HeaderMatch("y"))),
                 Or((QueryMatch("q"), MethodMatch(("GET",)))), QueryMatch("p")))
    summary = summarize(match)
    assert summary.path == PathMatch(PathKind.EXACT, "/a")
    assert (summary.has_method, summary.header_names, summary.query_names) == (False, 2, 1)


def test_httproute_matching() -> None:
    # HTTPRouteMatching: rule 0 = {PathPrefix /} or {Version: one} → v1; rule 1 = {PathPrefix /v2} or {Version: two}.
    routes = [route("matching", gw_match(), rule=0, index=0, backend="v1"),
              route("matching", gw_match(None, headers=[("version", "one")]), rule=0, index=1, backend="v1"),
              route("matching", gw_match(("PathPrefix", "/v2")), rule=1, index=0, backend="v2"),
              route("matching", gw_match(None, headers=[("version", "two")]), rule=1, index=1, backend="v2")]
    vhost = VirtualHost(("*",), order_routes(routes, OrderingModel.GATEWAY))
    cases = [("/", {}, "v1"), ("/example", {}, "v1"), ("/", {"Version": "one"}, "v1"), ("/v2", {}, "v2"),
             ("/v2/example", {}, "v2"), ("/", {"Version": "two"}, "v2"), ("/v2/", {}, "v2"),
             ("/v2example", {}, "v1"), ("/foo/v2/example", {}, "v1")]
    for path, headers, expected in cases:
        assert backend_of(vhost, Request(path, headers=headers)) == expected, (path, headers)


def test_httproute_matching_across_routes_with_hostname_copies() -> None:
    # HTTPRouteMatchingAcrossRoutes: part1 (example.com, example.net) and part2 (*.com). The translator copies
    # part2's routes under example.com; the hostname only breaks ties between equal matches.
    part1 = [route("matching-part1", gw_match(), index=0, backend="v1"),
             route("matching-part1", gw_match(None, headers=[("version", "one")]), index=1, backend="v1")]
    part2 = [route("matching-part2", gw_match(("PathPrefix", "/v2")), index=0, backend="v2",
                   created="2026-01-01T00:00:01Z"),
             route("matching-part2", gw_match(None, headers=[("version", "two")]), index=1, backend="v2",
                   created="2026-01-01T00:00:01Z")]

    def copies(routes: list[Route], hostname: str) -> list[Route]:
        return [Route(r.provenance, r.match, r.action, hostname=hostname) for r in routes]

    listener_vhosts = [
        VirtualHost(("example.com",), order_routes(copies(part1, "example.com") + copies(part2, "*.com"),
                                                   OrderingModel.GATEWAY)),
        VirtualHost(("example.net",), order_routes(copies(part1, "example.net"), OrderingModel.GATEWAY)),
        VirtualHost(("*.com",), order_routes(copies(part2, "*.com"), OrderingModel.GATEWAY)),
    ]
    cases = [("example.com", "/", {}, "v1"), ("example.com", "/example", {}, "v1"),
             ("example.net", "/example", {}, "v1"), ("example.com", "/example", {"Version": "one"}, "v1"),
             ("example.com", "/v2", {}, "v2"), ("example.net", "/v2", {}, "v1"),
             ("example.com", "/v2/example", {}, "v2"), ("example.com", "/", {"Version": "two"}, "v2"),
             ("foo.com", "/v2", {}, "v2"), ("foo.com", "/", {}, None)]
    for host, path, headers, expected in cases:
        vhost = select_virtual_host(listener_vhosts, host)
        assert vhost is not None
        assert backend_of(vhost, Request(path, host=host, headers=headers)) == expected, (host, path, headers)


def test_hostname_breaks_ties_between_equal_matches() -> None:
    # A route for a specific hostname beats a catch-all route with the same match, whatever their ages.
    specific = route("specific", gw_match(), hostname="api.example.com", created="2026-02-01T00:00:00Z")
    wildcard = route("wildcard", gw_match(), hostname="*.example.com", created="2026-01-01T00:00:00Z")
    catch_all = route("any", gw_match(), created="2025-01-01T00:00:00Z")
    ordered = order_routes([catch_all, wildcard, specific], OrderingModel.GATEWAY)
    assert [r.provenance.name for r in ordered] == ["specific", "wildcard", "any"]


def test_httproute_path_match_order() -> None:
    # HTTPRoutePathMatchOrder: exact matches before prefixes, longer prefixes first.
    rules = [(("Exact", "/match"), "v1"), (("Exact", "/match/exact"), "v2"), (("Exact", "/match/exact/one"), "v3"),
             (("PathPrefix", "/match/"), "v3"), (("PathPrefix", "/match/prefix/"), "v1"),
             (("PathPrefix", "/match/prefix/one"), "v2")]
    routes = [route("path-matching-order", gw_match(path), rule=i, backend=b) for i, (path, b) in enumerate(rules)]
    vhost = VirtualHost(("*",), order_routes(routes, OrderingModel.GATEWAY))
    for path, expected in [("/match/exact/one", "v3"), ("/match/exact", "v2"), ("/match", "v1"),
                           ("/match/prefix/one/any", "v2"), ("/match/prefix/any", "v1"), ("/match/any", "v3")]:
        assert backend_of(vhost, Request(path)) == expected, path


def test_httproute_exact_path_matching() -> None:
    routes = [route("exact", gw_match(("Exact", "/one")), rule=0, backend="v1"),
              route("exact", gw_match(("Exact", "/two")), rule=1, backend="v2")]
    vhost = VirtualHost(("*",), order_routes(routes, OrderingModel.GATEWAY))
    for path, expected in [("/one", "v1"), ("/two", "v2"), ("/", None), ("/one/example", None),
                           ("/two/", None), ("/One", None)]:
        assert backend_of(vhost, Request(path)) == expected, path


def test_method_header_and_query_counts_order_equal_paths() -> None:
    plain = route("r", gw_match(), rule=0, backend="plain")
    method = route("r", gw_match(method="POST"), rule=1, backend="method")
    headers2 = route("r", gw_match(headers=[("a", "1"), ("b", "2")]), rule=2, backend="two-headers")
    headers1 = route("r", gw_match(headers=[("a", "1")]), rule=3, backend="one-header")
    query = route("r", gw_match(query=[("q", "1")]), rule=4, backend="query")
    ordered = order_routes([plain, query, headers1, headers2, method], OrderingModel.GATEWAY)
    assert [r.action.body for r in ordered if isinstance(r.action, DirectResponse)] == [
        "method", "two-headers", "one-header", "query", "plain"]
    vhost = VirtualHost(("*",), ordered)
    assert backend_of(vhost, Request("/", method="POST", headers={"a": "1", "b": "2"})) == "method"
    assert backend_of(vhost, Request("/", headers={"a": "1", "b": "2"}, query={"q": "1"})) == "two-headers"
    assert backend_of(vhost, Request("/", query={"q": "1"})) == "query"


def test_exact_regex_prefix_ranking() -> None:
    exact = route("r", gw_match(("Exact", "/a")), rule=0, backend="exact")
    regex = route("r", gw_match(("RegularExpression", "^/a.*")), rule=1, backend="regex")
    longer_regex = route("r", gw_match(("RegularExpression", "^/a/b.*")), rule=2, backend="longer-regex")
    prefix = route("r", gw_match(("PathPrefix", "/a/b/c/d")), rule=3, backend="prefix")
    ordered = order_routes([prefix, regex, exact, longer_regex], OrderingModel.GATEWAY)
    assert [r.provenance.rule_index for r in ordered] == [0, 2, 1, 3]


def test_creation_time_then_name_then_rule_order_break_ties() -> None:
    older = route("zzz", gw_match(), created="2026-01-01T00:00:00Z")
    newer = route("aaa", gw_match(), created="2026-01-02T00:00:00Z")
    same_time_b = route("b", gw_match(), created="2026-01-03T00:00:00Z")
    same_time_a = route("a", gw_match(), created="2026-01-03T00:00:00Z", namespace="other")
    unsaved = route("new", gw_match(), created="")
    second_rule = route("zzz", gw_match(), created="2026-01-01T00:00:00Z", rule=1)
    ordered = order_routes([unsaved, same_time_b, newer, second_rule, same_time_a, older], OrderingModel.GATEWAY)
    assert [(r.provenance.namespace, r.provenance.name, r.provenance.rule_index) for r in ordered] == [
        ("ns", "zzz", 0), ("ns", "zzz", 1), ("ns", "aaa", 0), ("ns", "b", 0), ("other", "a", 0), ("ns", "new", 0)]


def test_priority_overrides_everything() -> None:
    pinned_last = route("fallback", gw_match(("Exact", "/")), priority=1)
    pinned_first = route("first", gw_match(), priority=-1)
    normal = route("normal", gw_match(("Exact", "/x")))
    for model in OrderingModel:
        ordered = order_routes([pinned_last, normal, pinned_first], model)
        assert [r.provenance.name for r in ordered] == ["first", "normal", "fallback"], model


# ---------------------------------------------------------------------------------------------------------------
# Kubernetes Ingress precedence: the path-matching examples of the Kubernetes documentation


def ing_route(path: str, kind: PathKind, index: int, name: str = "ing", created: str = "2026-01-01T00:00:00Z"
              ) -> Route:
    return route(name, PathMatch(kind, path), index=index, kind="Ingress", created=created,
                 backend=f"{kind}:{path}")


KUBERNETES_PATH_EXAMPLES = [
    # (paths as (type, path), request, expected backend or None)
    ([("Prefix", "/")], "/anything/at/all", "prefix:/"),
    ([("Exact", "/foo")], "/foo", "exact:/foo"),
    ([("Exact", "/foo")], "/bar", None),
    ([("Exact", "/foo")], "/foo/", None),
    ([("Exact", "/foo/")], "/foo", None),
    ([("Prefix", "/foo")], "/foo", "prefix:/foo"),
    ([("Prefix", "/foo")], "/foo/", "prefix:/foo"),
    ([("Prefix", "/foo/")], "/foo", "prefix:/foo/"),
    ([("Prefix", "/foo/")], "/foo/", "prefix:/foo/"),
    ([("Prefix", "/aaa/bb")], "/aaa/bbb", None),
    ([("Prefix", "/aaa/bbb")], "/aaa/bbb", "prefix:/aaa/bbb"),
    ([("Prefix", "/aaa/bbb/")], "/aaa/bbb", "prefix:/aaa/bbb/"),
    ([("Prefix", "/aaa/bbb")], "/aaa/bbb/", "prefix:/aaa/bbb"),
    ([("Prefix", "/aaa/bbb")], "/aaa/bbb/ccc", "prefix:/aaa/bbb"),
    ([("Prefix", "/aaa/bbb")], "/aaa/bbbxyz", None),
    ([("Prefix", "/"), ("Prefix", "/aaa")], "/aaa/ccc", "prefix:/aaa"),
    ([("Prefix", "/"), ("Prefix", "/aaa"), ("Prefix", "/aaa/bbb")], "/aaa/bbb", "prefix:/aaa/bbb"),
    ([("Prefix", "/"), ("Prefix", "/aaa"), ("Prefix", "/aaa/bbb")], "/ccc", "prefix:/"),
    ([("Prefix", "/aaa")], "/ccc", None),
    ([("Prefix", "/foo"), ("Exact", "/foo")], "/foo", "exact:/foo"),
    ([("Exact", "/foo"), ("Prefix", "/foo")], "/foo/bar", "prefix:/foo"),
    ([("Exact", "/foo"), ("Prefix", "/foo")], "/FOO", None),
    ([("Prefix", "/foo"), ("Prefix", "/foobar")], "/foobar", "prefix:/foobar"),
    ([("Prefix", "/foo"), ("Prefix", "/foobar")], "/foobarbaz", None),
    ([("Prefix", "/aaa/bbb/"), ("Exact", "/aaa/bbb")], "/aaa/bbb", "exact:/aaa/bbb"),
]
_KINDS = {"Exact": PathKind.EXACT, "Prefix": PathKind.PREFIX}


@pytest.mark.parametrize(("paths", "request_path", "expected"), KUBERNETES_PATH_EXAMPLES)
def test_kubernetes_ingress_path_examples(paths: list[tuple[str, str]], request_path: str,
                                          expected: str | None) -> None:
    routes = [ing_route(p, _KINDS[t], i) for i, (t, p) in enumerate(paths)]
    for permutation in itertools.permutations(routes):
        vhost = VirtualHost(("*",), order_routes(list(permutation), OrderingModel.INGRESS))
        assert backend_of(vhost, Request(request_path)) == expected


def test_ingress_implementation_specific_orders_by_length_with_prefixes() -> None:
    # ingress-nginx: ImplementationSpecific is a character prefix (or a regex with use-regex), longest first,
    # after an Exact and an element-wise Prefix of the same length.
    starts = ing_route("/foo", PathKind.STARTS_WITH, 0)
    prefix = ing_route("/foo", PathKind.PREFIX, 1)
    exact = ing_route("/foo", PathKind.EXACT, 2)
    regex = ing_route("^/foo.*", PathKind.REGEX, 3)
    short = ing_route("/fo", PathKind.STARTS_WITH, 4)
    ordered = order_routes([short, regex, starts, prefix, exact], OrderingModel.INGRESS)
    assert [r.provenance.match_index for r in ordered] == [3, 2, 1, 0, 4]
    vhost = VirtualHost(("*",), order_routes([starts, prefix, short], OrderingModel.INGRESS))
    assert backend_of(vhost, Request("/foobar")) == "starts-with:/foo"
    assert backend_of(vhost, Request("/foo/x")) == "prefix:/foo"
    assert backend_of(vhost, Request("/fox")) == "starts-with:/fo"


def test_ingress_equal_length_regexes_in_descending_path_order() -> None:
    # ingress-nginx sorts locations by length, then by path descending; for regexes that is the try order.
    a = ing_route("^/a.", PathKind.REGEX, 0)
    b = ing_route("^/b.", PathKind.REGEX, 1)
    assert [r.provenance.match_index for r in order_routes([a, b], OrderingModel.INGRESS)] == [1, 0]


def test_ingress_oldest_wins_equal_paths() -> None:
    old = ing_route("/x", PathKind.PREFIX, 0, name="old", created="2025-01-01T00:00:00Z")
    new = ing_route("/x", PathKind.PREFIX, 0, name="new", created="2026-01-01T00:00:00Z")
    assert order_routes([new, old], OrderingModel.INGRESS)[0].provenance.name == "old"


# ---------------------------------------------------------------------------------------------------------------
# ALB


def test_alb_complexity_follows_the_alb_formula() -> None:
    host_exact = HostMatch("a.example.com")
    host_wild = HostMatch("*.example.com")
    assert alb_complexity(And((host_exact, PathMatch(PathKind.STARTS_WITH, "/app")))) == 50000 + 1000 + 4 + 2
    assert alb_complexity(And((host_wild, PathMatch(PathKind.EXACT, "/")))) == 10000 + 2000
    assert alb_complexity(And((PathMatch(PathKind.REGEX, "^/x"),))) == 1000 + 3
    assert alb_complexity(Or((PathMatch(PathKind.STARTS_WITH, "/a"), PathMatch(PathKind.STARTS_WITH, "/b")))) == (
        2 * (1000 + 2 + 2))
    assert alb_complexity(And((MethodMatch(("POST",)), Or((HeaderMatch("a"), HeaderMatch("b")))))) == 100 + 200
    assert alb_complexity(Or((HostMatch("a.com"), HostMatch("b.com")))) == 50000


def test_alb_order_priority_then_complexity_then_length_then_name() -> None:
    generic = route("b-generic", And((PathMatch(PathKind.STARTS_WITH, "/"),)), kind="Rule")
    with_host = route("z-host", And((HostMatch("a.com"), PathMatch(PathKind.STARTS_WITH, "/"))), kind="Rule")
    urgent = route("y-urgent", And((PathMatch(PathKind.STARTS_WITH, "/"),)), kind="Rule", priority=-1)
    twin = route("a-generic", And((PathMatch(PathKind.STARTS_WITH, "/"),)), kind="Rule")
    ordered = order_routes([generic, with_host, twin, urgent], OrderingModel.ALB)
    assert [r.provenance.name for r in ordered] == ["y-urgent", "z-host", "a-generic", "b-generic"]
    assert alb_key(generic) != alb_key(twin)


# ---------------------------------------------------------------------------------------------------------------
# Properties

PATH_SEGMENTS = st.sampled_from(["a", "b", "ab", "c"])
PATHS = st.lists(PATH_SEGMENTS, min_size=0, max_size=3).map(lambda s: "/" + "/".join(s))


@st.composite
def gateway_routes(draw: st.DrawFn) -> list[Route]:
    count = draw(st.integers(1, 7))
    routes = []
    for i in range(count):
        kind = draw(st.sampled_from(["Exact", "PathPrefix"]))
        headers = draw(st.lists(st.sampled_from([("h1", "1"), ("h2", "2")]), unique=True, max_size=2))
        query = draw(st.lists(st.sampled_from([("q1", "1"), ("q2", "2")]), unique=True, max_size=2))
        method = draw(st.sampled_from([None, "GET", "POST"]))
        routes.append(route(draw(st.sampled_from(["a", "b", "c"])), gw_match((kind, draw(PATHS)), method, headers,
                                                                             query),
                            rule=i, created=draw(st.sampled_from(["", "2026-01-01T00:00:00Z",
                                                                  "2026-01-02T00:00:00Z"])),
                            hostname=draw(st.sampled_from(["", "*.example.com", "a.example.com"]))))
    return routes


@settings(max_examples=200, deadline=None)
@given(gateway_routes(), st.randoms(use_true_random=False))
def test_ordering_is_a_total_order_independent_of_input_order(routes: list[Route], rnd: random.Random) -> None:
    for model in OrderingModel:
        keys = [{"gateway": gateway_key, "ingress": ingress_key, "alb": alb_key}[model](r) for r in routes]
        assert len(set(keys)) == len(routes)  # distinct ids → distinct keys: a strict total order
        shuffled = list(routes)
        rnd.shuffle(shuffled)
        assert order_routes(shuffled, model) == order_routes(routes, model)


def _refines(a: Route, b: Route) -> bool:
    """Whether every request ``a`` matches is matched by ``b`` too, and ``a`` asks for strictly more — judged
    from the Gateway API's notion of specificity, independently of the sort keys."""
    pa, pb = summarize(a.match).path, summarize(b.match).path
    assert pa is not None and pb is not None
    norm_a, norm_b = pa.value.rstrip("/"), pb.value.rstrip("/")
    if pb.kind is PathKind.EXACT:
        path_within = pa == pb
        stricter_path = False
    else:
        path_within = not norm_b or pa.value == norm_b or pa.value.startswith(norm_b + "/")
        stricter_path = pa.kind is PathKind.EXACT or norm_a != norm_b
    leaves_a = {m for m in (a.match.matches if isinstance(a.match, And) else ()) if not isinstance(m, PathMatch)}
    leaves_b = {m for m in (b.match.matches if isinstance(b.match, And) else ()) if not isinstance(m, PathMatch)}
    return path_within and leaves_b <= leaves_a and (stricter_path or leaves_b < leaves_a)


@settings(max_examples=300, deadline=None)
@given(gateway_routes())
def test_no_route_is_shadowed_by_a_less_specific_one(routes: list[Route]) -> None:
    ordered = order_routes(routes, OrderingModel.GATEWAY)
    position = {id(r): i for i, r in enumerate(ordered)}
    for a, b in itertools.permutations(routes, 2):
        if _refines(a, b):
            assert position[id(a)] < position[id(b)], (a, b)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["Exact", "Prefix"]), PATHS), min_size=1, max_size=6, unique=True),
       PATHS)
def test_ingress_first_match_is_the_longest_matching_path_exact_first(paths: list[tuple[str, str]],
                                                                      request_path: str) -> None:
    # Kubernetes: "precedence will be given first to the longest matching path; if two paths are still equally
    # matched, precedence will be given to paths with an exact path type over prefix path type".
    routes = [ing_route(p, _KINDS[t], i) for i, (t, p) in enumerate(paths)]
    vhost = VirtualHost(("*",), order_routes(routes, OrderingModel.INGRESS))
    chosen = first_match(vhost, Request(request_path))

    def matches(t: str, p: str) -> bool:
        if t == "Exact":
            return request_path == p
        prefix = p.rstrip("/")
        return not prefix or request_path == prefix or request_path.startswith(prefix + "/")

    candidates = [(t, p) for t, p in paths if matches(t, p)]
    if not candidates:
        assert chosen is None
        return
    best = max(candidates, key=lambda c: (len(c[1].rstrip("/")) if c[0] == "Prefix" else len(c[1]), c[0] == "Exact"))
    assert chosen is not None and isinstance(chosen.match, PathMatch)
    assert (chosen.match.kind, chosen.match.value.rstrip("/") or "/") == (_KINDS[best[0]], best[1].rstrip("/") or "/")
