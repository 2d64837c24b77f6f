"""configuration-snippet and modsecurity-snippet: the guide's ``more_set_headers`` / ``more_clear_headers`` become
header operations; anything else is refused unless the instance allows raw snippets, and nothing a user writes can
reach nginx or Lua configuration."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netplane.routing.ingress.annotations import PREFIX, AnnotationPolicy, parse_annotations
from netplane.routing.ingress.nginx_syntax import SyntaxProblem, parse_header_snippet, parse_template
from netplane.routing.ir import HeaderOp, RequestValue, ResponseHeaders, Template, VarKind, WafMode
from netplane.routing.validate import has_control, is_token

pytestmark = pytest.mark.unit

SNIPPET = f"{PREFIX}/configuration-snippet"
FIELD = f"metadata.annotations[{SNIPPET}]"
DISABLED = "raw snippets are disabled on this instance (allow-snippet-annotations)"


def lit(name: str, value: str) -> HeaderOp:
    return HeaderOp(name, Template.literal(value))


@pytest.mark.parametrize(("snippet", "expected"), [
    ('more_set_headers "Foo1: Bar1";', ResponseHeaders(set=(lit("Foo1", "Bar1"),))),
    ("more_set_headers 'X-Frame-Options: DENY';", ResponseHeaders(set=(lit("X-Frame-Options", "DENY"),))),
    ('more_set_headers "A: 1" "B: 2";', ResponseHeaders(set=(lit("A", "1"), lit("B", "2")))),
    ('more_set_headers "A: 1";\nmore_set_headers "B:2";\n', ResponseHeaders(set=(lit("A", "1"), lit("B", "2")))),
    ('  more_set_headers   "Cache-Control: no-store, max-age=0"  ;  ',
     ResponseHeaders(set=(lit("Cache-Control", "no-store, max-age=0"),))),
    ('more_clear_headers "Server";', ResponseHeaders(remove=("Server",))),
    ('more_clear_headers Server "X-Powered-By";', ResponseHeaders(remove=("Server", "X-Powered-By"))),
    ('more_set_headers "A: 1"; more_clear_headers "a";', ResponseHeaders(remove=("a",))),
    ('more_clear_headers "A"; more_set_headers "A: 2";', ResponseHeaders(set=(lit("A", "2"),))),
    ('more_set_headers "A: 1"; more_set_headers "a: 2";', ResponseHeaders(set=(lit("a", "2"),))),
    ('more_set_headers "A:";', ResponseHeaders(remove=("A",))),
    ('# set the header\nmore_set_headers "A: 1"; # trailing comment\n', ResponseHeaders(set=(lit("A", "1"),))),
    ('more_set_headers "Q: say \\"hi\\"";', ResponseHeaders(set=(lit("Q", 'say "hi"'),))),
    ("more_set_headers 'P: back\\\\slash';", ResponseHeaders(set=(lit("P", "back\\slash"),))),
    ("more_set_headers X-Simple:value;", ResponseHeaders(set=(lit("X-Simple", "value"),))),
    ('more_set_headers "Request-Id: $req_id";',
     ResponseHeaders(set=(HeaderOp("Request-Id", Template.of(VarKind.REQUEST_ID)),))),
    ('more_set_headers "X-Start: t=${msec}";',
     ResponseHeaders(set=(HeaderOp("X-Start", Template(("t=", RequestValue(VarKind.MSEC)))),))),
    ('more_set_headers "X-User: $http_x_user";',
     ResponseHeaders(set=(HeaderOp("X-User", Template.of(VarKind.HEADER, "x-user")),))),
    ("", ResponseHeaders()),
])
def test_header_snippets(snippet: str, expected: ResponseHeaders) -> None:
    assert parse_header_snippet(snippet) == expected


def test_guide_snippet_through_annotations() -> None:
    parsed = parse_annotations({SNIPPET: 'more_set_headers "Foo1: Bar1";\nmore_clear_headers "X-Internal";'})
    assert parsed.errors == ()
    assert parsed.values.response_headers == ResponseHeaders(set=(lit("Foo1", "Bar1"),), remove=("X-Internal",))
    assert parsed.values.raw_snippet is None


INJECTIONS = [
    ('more_set_headers "X: y"; lua_need_request_body on;',
     "line 1: only more_set_headers and more_clear_headers statements are allowed, not 'lua_need_request_body'"),
    ('more_set_headers "X: y"; } location /evil { return 200; }', "line 1: blocks ('}') are not allowed"),
    ("location / { }", "line 1: blocks ('{') are not allowed"),
    ('more_set_headers "X: y\nZ: w";', "line 1: quoted strings must not contain line breaks or control characters"),
    ('more_set_headers "X: y\\nSet-Cookie: a=b";', "line 1: escape sequences other than \\\" and \\\\ are not "
                                                   "allowed"),
    ('more_set_headers "X: \x00";', "line 1: quoted strings must not contain line breaks or control characters"),
    ('more_set_headers "X: y\r";', "line 1: quoted strings must not contain line breaks or control characters"),
    ('more_set_headers "X: y', "line 1: unterminated quoted string"),
    ('more_set_headers "X: y"', "line 1: statement 'more_set_headers' is not terminated by ';'"),
    ('more_set_headers -s 404 "X: y";', "line 1: option '-s' is not supported"),
    ('more_set_headers -t text/html "X: y";', "line 1: option '-t' is not supported"),
    ('more_clear_headers "X-Hidden-*";', "line 1: header name wildcards are not supported"),
    ('more_set_headers "Bad Name: y";', "line 1: 'Bad Name' is not a valid HTTP header name"),
    ('more_set_headers "NoColon";', "line 1: 'NoColon' must be \"Name: value\""),
    ('more_set_headers "X: $upstream_addr";', "variable $upstream_addr is not allowed"),
    ('more_set_headers "X: $document_root";', "variable $document_root is not allowed"),
    ('more_set_headers "X: cost $ 5";', "'$' must start a variable name"),
    ('more_set_headers;', "line 1: more_set_headers needs at least one header"),
    ('more_set_headers "X: y";;', "empty statement (';' without a directive)"),
    ('"more_set_headers" "X: y";', "line 1: only more_set_headers and more_clear_headers statements are allowed"),
    ("proxy_pass http://evil.example;", "line 1: only more_set_headers and more_clear_headers statements are "
                                        "allowed, not 'proxy_pass'"),
    ('more_set_headers "A: 1";\ninclude /etc/passwd;', "line 2: only more_set_headers and more_clear_headers "
                                                       "statements are allowed, not 'include'"),
    ("content_by_lua_block { ngx.say(1) }", "line 1: blocks ('{') are not allowed"),
    ("set $x 1;", "line 1: only more_set_headers and more_clear_headers statements are allowed, not 'set'"),
    ("more_set_headers X:a\\b;", "line 1: unexpected character '\\\\'"),
    ('more_set_headers "X: y" # no semicolon', "line 1: statement 'more_set_headers' is not terminated by ';'"),
]


@pytest.mark.parametrize(("snippet", "reason"), INJECTIONS)
def test_snippet_injections_are_refused(snippet: str, reason: str) -> None:
    with pytest.raises(SyntaxProblem) as raised:
        parse_header_snippet(snippet)
    assert str(raised.value).startswith(reason)
    parsed = parse_annotations({SNIPPET: snippet})
    assert len(parsed.errors) == 1
    message = str(parsed.errors[0])
    assert message.startswith(f"{FIELD}: Invalid value: ")
    assert reason in message and message.endswith(f"; {DISABLED}")
    assert parsed.values.response_headers is None and parsed.values.raw_snippet is None


def test_refused_snippet_message_in_full() -> None:
    parsed = parse_annotations({SNIPPET: 'more_set_headers "X: y"; lua_need_request_body on;'})
    assert [str(e) for e in parsed.errors] == [
        f'{FIELD}: Invalid value: "more_set_headers "X: y"; lua_need_request_body on;": line 1: only more_set_headers '
        f"and more_clear_headers statements are allowed, not 'lua_need_request_body'; {DISABLED}"]


def test_raw_snippets_when_the_administrator_allows_them() -> None:
    policy = AnnotationPolicy(allow_raw_snippets=True)
    raw = 'more_set_headers "X: y"; proxy_set_header X-Real $remote_addr;'
    parsed = parse_annotations({SNIPPET: raw}, policy)
    assert parsed.errors == ()
    assert parsed.values.raw_snippet == raw and parsed.values.response_headers is None
    typed = parse_annotations({SNIPPET: 'more_set_headers "X: y";'}, policy)
    assert typed.values.response_headers == ResponseHeaders(set=(lit("X", "y"),)) and typed.values.raw_snippet is None
    server = parse_annotations({f"{PREFIX}/server-snippet": "x;"}, policy)
    assert [str(e) for e in server.errors] == [f'metadata.annotations[{PREFIX}/server-snippet]: Invalid value: "x;": '
                                               "is not supported by netplane (configuration-snippet is)"]


@pytest.mark.parametrize(("snippet", "mode", "body"), [
    ("SecRuleEngine On", WafMode.BLOCKING, None),
    ("SecRuleEngine DetectionOnly\nSecRequestBodyAccess Off", WafMode.DETECTION_ONLY, False),
    ("# comment\nSecRuleEngine Off\n", WafMode.OFF, None),
])
def test_modsecurity_switches(snippet: str, mode: WafMode, body: bool | None) -> None:
    parsed = parse_annotations({f"{PREFIX}/enable-modsecurity": "true", f"{PREFIX}/modsecurity-snippet": snippet})
    assert parsed.errors == ()
    assert parsed.values.modsecurity is not None
    assert (parsed.values.modsecurity.mode, parsed.values.modsecurity.request_body_access) == (mode, body)


def test_modsecurity_rules_need_raw_snippets() -> None:
    rules = 'SecRuleEngine On\nSecRule REQUEST_HEADERS:User-Agent "block-ua" "id:1,deny,status:403"'
    refused = parse_annotations({f"{PREFIX}/modsecurity-snippet": rules})
    assert len(refused.errors) == 1
    assert str(refused.errors[0]).endswith(
        "only 'SecRuleEngine On|Off|DetectionOnly' and 'SecRequestBodyAccess On|Off' are allowed, not 'SecRule "
        f"REQUEST_HEADERS:User-Agent \"block-ua\" \"id:1,deny,status:403\"'; {DISABLED}")
    allowed = parse_annotations({f"{PREFIX}/modsecurity-snippet": rules}, AnnotationPolicy(allow_raw_snippets=True))
    assert allowed.errors == ()
    assert allowed.values.modsecurity is not None and allowed.values.modsecurity.raw_rules == rules


# ---------------------------------------------------------------------------------------------------------------
# Templates


@pytest.mark.parametrize(("text", "parts"), [
    ("plain", ("plain",)),
    ("", ()),
    ("$remote_addr", (RequestValue(VarKind.SOURCE_IP),)),
    ("${host}:${server_port}", (RequestValue(VarKind.HOST), ":", RequestValue(VarKind.SERVER_PORT))),
    ("a-$arg_page-b", ("a-", RequestValue(VarKind.QUERY, "page"), "-b")),
    ("a-${arg_page}-b", ("a-", RequestValue(VarKind.QUERY, "page"), "-b")),
    ("$cookie_SESSION_id", (RequestValue(VarKind.COOKIE, "SESSION_id"),)),
    ("$scheme://$host$request_uri", (RequestValue(VarKind.SCHEME), "://", RequestValue(VarKind.HOST),
                                     RequestValue(VarKind.REQUEST_URI))),
])
def test_templates(text: str, parts: tuple[object, ...]) -> None:
    assert parse_template(text).parts == parts


@pytest.mark.parametrize("text", ["$http_", "${bad", "$", "a$", "$ x", "line\nbreak", "$upstream_status",
                                  "${proxy_add_x_forwarded_for}"])
def test_bad_templates(text: str) -> None:
    with pytest.raises(SyntaxProblem):
        parse_template(text)


SNIPPET_TEXT = st.lists(st.sampled_from([*'ab: ;"\'{}$\\#\n\t-_*', "more_set_headers ", "more_clear_headers ", "lua ",
                                         "${msec}", "$host"]), max_size=30).map("".join)


@settings(max_examples=500, deadline=None)
@given(SNIPPET_TEXT)
def test_whatever_a_snippet_says_only_safe_header_operations_come_out(snippet: str) -> None:
    try:
        headers = parse_header_snippet(snippet)
    except SyntaxProblem:
        return
    for op in headers.set:
        assert is_token(op.name)
        for part in op.value.parts:
            assert not isinstance(part, str) or (not has_control(part) and "$" not in part)
    assert all(is_token(name) for name in headers.remove)
