"""The engine's static nginx.conf: rendered from listeners and settings only, never from user data."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from netplane.dataplane.gateway import observability
from netplane.dataplane.gateway.config import (
    CRS_FILES,
    MODSECURITY_MODULE,
    ConfigError,
    InstanceSettings,
    Listener,
    WafProfile,
    canonical_listeners,
    listeners_changed,
    render_nginx_conf,
    render_waf_base,
    render_waf_rules,
)
from netplane.dataplane.gateway.upstreams import (
    TLS_VERSIONS,
    L4Listener,
    Passthrough,
    StreamPeer,
    TLSProfile,
    UpstreamConfigError,
    Upstreams,
    named_locations,
)
from tests.certificates import self_signed

pytestmark = pytest.mark.unit

PREFIX = Path("/var/lib/netplane/gateway/gw-1")
SETTINGS = InstanceSettings(PREFIX)
V4 = ipaddress.ip_address("127.0.0.5")
V6 = ipaddress.ip_address("::1")

ports = st.integers(min_value=1, max_value=65535)
listeners = st.builds(Listener, port=ports, address=st.sampled_from([None, V4, V6]), tls=st.booleans())
waf_sets = st.lists(st.builds(WafProfile, blocking=st.booleans(), owasp_crs=st.booleans(), request_body=st.booleans()),
                    max_size=3)


def listener_sets() -> st.SearchStrategy[list[Listener]]:
    def valid(ls: list[Listener]) -> bool:
        try:
            canonical_listeners(ls)
        except ConfigError:
            return False
        return True
    return st.lists(listeners, max_size=6).filter(valid)


# What a user controls, at its most hostile: names, hostnames, paths, header values, addresses.
user_text = st.text(min_size=1, max_size=40).filter(lambda s: len(s.strip()) > 3)


@st.composite
def engine_input(draw: st.DrawFn) -> tuple[list[Listener], list[WafProfile], dict[str, Any], list[str]]:
    """A whole engine input: listeners and WAF profiles, plus virtual hosts (with rate limits and WAF filters),
    backends and certificates full of user strings."""
    ls = draw(listener_sets())
    waf = draw(waf_sets)
    strings = draw(st.lists(user_text, min_size=1, max_size=8))
    docs = {
        "vhosts": {s: {"ports": [lst.port for lst in ls], "hostnames": [s], "routes": [
            {"id": s, "match": {"path": {"type": "prefix", "value": "/" + s},
                                "headers": [{"name": s, "value": s}]},
             "filters": [{"type": "rate_limit", "zone": s, "rates": [{"limit": 1, "unit": "second"}],
                          "allowlist": [s]},
                         {"type": "waf", "mode": "blocking", "transaction_id": [{"text": s}, {"var": "header",
                                                                                              "name": s}]},
                         {"type": "redirect", "hostname": s}], "backend": {"backends": [{"name": s}]}}]}
            for s in strings},
        "backends": {s: {"endpoints": [{"address": s, "port": 80}]} for s in strings},
        "certificates": {s: {"hostnames": [s], "certificate": s, "key": s} for s in strings},
    }
    return ls, waf, docs, strings


ALL_WAF = [WafProfile(b, c, r) for b in (False, True) for c in (False, True) for r in (False, True)]


@settings(max_examples=200, deadline=None)
@given(engine_input())
def test_no_user_string_reaches_nginx_conf(
        drawn: tuple[list[Listener], list[WafProfile], dict[str, Any], list[str]]) -> None:
    ls, waf, _docs, strings = drawn
    # The renderer takes no documents at all: the rendered text (and every WAF rules file) is a function of
    # listeners, WAF profiles and settings.
    text = (render_nginx_conf(SETTINGS, ls, waf=waf) + render_waf_base(SETTINGS, any(p.owasp_crs for p in waf))
            + "".join(render_waf_rules(p) for p in waf))
    fixed_vocabulary = (render_nginx_conf(SETTINGS, [Listener(1, tls=True, http2=True)], waf=ALL_WAF)
                        + render_waf_base(SETTINGS, True) + render_waf_base(SETTINGS, False)
                        + render_nginx_conf(SETTINGS, [], waf=[WafProfile()])
                        + "".join(render_waf_rules(p) for p in ALL_WAF)
                        + "".join(lst.listen_target() for lst in ls))
    for s in strings:
        if s not in fixed_vocabulary:
            assert s not in text


def _without_log_format(text: str) -> str:
    # The log format and the route-key map are constant text (test_gateway_observability checks them).
    for line in observability.http_lines(SETTINGS.access_log, SETTINGS.metrics_memory_mb):
        text = text.replace(line + "\n", "")
    return text


@settings(max_examples=200, deadline=None)
@given(listener_sets(), waf_sets)
def test_rendered_text_uses_only_numbers_addresses_and_fixed_names(ls: list[Listener], waf: list[WafProfile]) -> None:
    text = _without_log_format(render_nginx_conf(SETTINGS, ls, waf=waf))
    # Any token outside this alphabet would have to come from somewhere other than our own templates.
    assert re.fullmatch(r"[A-Za-z0-9_./:;{}\[\]\"$?(),'#@\s=*+-]*", text)
    # Every quoted string is one of ours.
    profiles = {f'"{p.name}"' for p in ALL_WAF}
    assert set(re.findall(r'"[^"]*"', text)) <= {'"$prefix/lua/?.lua;;"', '""', '"netplane.router"',
                                                  '"netplane.balancer"', '"netplane.certs"', '"netplane.control"',
                                                  '"netplane.filters"', '"netplane.metrics"',
                                                  *profiles}
    for lst in ls:
        assert f"np_router.access({lst.port})" in text
    assert text.count("modsecurity on;") == len(set(waf)) * len(canonical_listeners(ls))


def test_structure() -> None:
    text = render_nginx_conf(SETTINGS, [Listener(8080, V4), Listener(8443, V4, tls=True, http2=True),
                                        Listener(9000, V6)])
    loads = re.findall(r"^load_module (\S+);", text, re.M)
    assert loads == ["/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so"]
    assert "listen 127.0.0.5:8080;" in text
    assert "listen 127.0.0.5:8443 ssl http2;" in text
    assert "listen [::1]:9000;" in text
    assert f"listen unix:{PREFIX}/control/control.sock;" in text
    assert text.count("server {") == 4
    assert "ssl_certificate_by_lua_block" in text and text.count("ssl_certificate_by_lua_block") == 1
    assert "balancer_by_lua_block" in text and "keepalive 64;" in text
    assert "lua_shared_dict np_config 128m;" in text and "lua_shared_dict np_limits 16m;" in text
    # Connection-limited routes continue in @np_conn, the only location with a log phase of its own (the others
    # inherit the server's, the metrics').
    assert text.count("location @np_conn {") == 3 and text.count("log_by_lua_block { np_router.log()") == 3
    assert "modsecurity" not in text
    assert text.count("{") == text.count("}")
    # A client's X-Forwarded-For is replaced unless the instance asks to append to it.
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in text
    appending = render_nginx_conf(dataclasses.replace(SETTINGS, forwarded_for_append=True), [Listener(8080, V4)])
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in appending


def test_waf_profiles_load_the_module_and_add_one_location_each() -> None:
    block, detect = WafProfile(blocking=True, owasp_crs=True), WafProfile(request_body=False)
    text = render_nginx_conf(SETTINGS, [Listener(80), Listener(443, tls=True)], waf=[detect, block, block])
    assert re.findall(r"^load_module (\S+);", text, re.M)[-1] == str(MODSECURITY_MODULE)
    assert [block.location, detect.location] == ["@np_waf_block_crs", "@np_waf_detect_nobody"]
    for profile in (block, detect):
        assert text.count(f"location {profile.location} {{") == 2
        assert text.count(f"modsecurity_rules_file {PREFIX}/conf/waf/{profile.name}.conf;") == 2
    # The shared rules (with the CRS, since one profile uses it) are loaded once, at the http level.
    assert text.count("modsecurity_rules_file") == 5
    assert f"\n    modsecurity_rules_file {PREFIX}/conf/waf/base-crs.conf;\n" in text
    assert f"{PREFIX}/conf/waf/base.conf" in render_nginx_conf(SETTINGS, [Listener(80)], waf=[detect])
    assert text.count("modsecurity_transaction_id $np_waf_txid;") == 4
    # Declared (and run) on the control server only; the listeners' common location is unchanged.
    assert text.count("set $np_waf_txid") == 1
    assert 'waf_profiles = { ["detect-nobody"] = true, ["block-crs"] = true }' in text
    plain = render_nginx_conf(SETTINGS, [Listener(80), Listener(443, tls=True)])
    common = re.compile(r"location / \{[^}]*\}")
    assert common.findall(text)[:2] == common.findall(plain)[:2]
    assert render_nginx_conf(SETTINGS, [Listener(80)], waf=[block, detect]) == render_nginx_conf(
        SETTINGS, [Listener(80)], waf=[detect, block])


def test_waf_rules_files() -> None:
    block = render_waf_rules(WafProfile(blocking=True, owasp_crs=True))
    detect = render_waf_rules(WafProfile(request_body=False))
    assert "SecRuleEngine On\n" in block and "SecRuleEngine DetectionOnly\n" in detect
    assert "SecRequestBodyAccess On\n" in block and "SecRequestBodyAccess Off\n" in detect
    # A profile without the CRS drops its rules, which the shared file holds when another profile needs them.
    assert "SecRuleRemoveById" not in block and "SecRuleRemoveById 900000-999999\n" in detect
    crs, bare = render_waf_base(SETTINGS, True), render_waf_base(SETTINGS, False)
    assert [line for line in crs.splitlines() if line.startswith("Include ")] == [f"Include {p}" for p in CRS_FILES]
    assert "Include" not in bare
    ids = [int(i) for i in re.findall(r"id:(\d+)", crs + bare)]
    assert ids and not [i for i in ids if 900000 <= i <= 999999], "netplane's rules must survive the CRS removal"
    assert f"SecAuditLog {PREFIX}/logs/waf_audit.log\n" in bare and f"SecTmpDir {PREFIX}/tmp/waf\n" in bare


def test_listener_order_does_not_matter_and_changes_are_detected() -> None:
    a, b = Listener(80), Listener(443, tls=True)
    assert render_nginx_conf(SETTINGS, [a, b]) == render_nginx_conf(SETTINGS, [b, a, a])
    assert not listeners_changed([a, b], [b, a])
    assert listeners_changed([a], [a, b])
    assert listeners_changed([a, b], [a])
    assert listeners_changed([Listener(80)], [Listener(80, V4)])
    assert listeners_changed([b], [Listener(443)])


@given(listener_sets(), listener_sets())
def test_change_detection_is_set_inequality(old: list[Listener], new: list[Listener]) -> None:
    assert listeners_changed(old, new) == (set(old) != set(new))
    assert listeners_changed(old, new) == (render_nginx_conf(SETTINGS, old) != render_nginx_conf(SETTINGS, new))


@given(waf_sets, waf_sets)
def test_the_text_changes_exactly_with_the_waf_profile_set(old: list[WafProfile], new: list[WafProfile]) -> None:
    ls = [Listener(80)]
    changed = render_nginx_conf(SETTINGS, ls, waf=old) != render_nginx_conf(SETTINGS, ls, waf=new)
    assert changed == (set(old) != set(new))


@pytest.mark.parametrize("listeners", [
    [Listener(80, V4), Listener(80, V4, tls=True)],
    [Listener(80), Listener(80, V4)],
    [Listener(443, V4, tls=True), Listener(443, V6)],
])
def test_conflicting_listeners_are_refused(listeners: list[Listener]) -> None:
    with pytest.raises(ConfigError):
        canonical_listeners(listeners)


@pytest.mark.parametrize("kwargs", [{"port": 0}, {"port": 70000}, {"port": True}, {"port": 80, "http2": True},
                                    {"port": 80, "address": "127.0.0.1"}])
def test_bad_listeners_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        Listener(**kwargs)


@pytest.mark.parametrize("prefix", ["relative/dir", "/tmp/with space", "/tmp/semi;colon", "/tmp/brace{",
                                    "/tmp/" + "x" * 100, "/tmp/quote\"", "/tmp/$var"])
def test_unsafe_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ConfigError):
        InstanceSettings(Path(prefix))


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError):
        InstanceSettings(PREFIX, worker_processes=0)
    with pytest.raises(ConfigError):
        InstanceSettings(PREFIX, config_memory_mb=True)


# -- the upstream side: TLS profiles, passthrough, TCP/UDP listeners -----------------------------------------------

CERT, KEY = self_signed("client.test")
CA, _ = self_signed("ca.test")
FULL_PROFILE = TLSProfile(verify=True, verify_depth=2, server_name="backend.test", sni=True,
                          protocols=("TLSv1.3",), ciphers="HIGH:!aNULL", ca_pem=CA, certificate_pem=CERT, key_pem=KEY)

dns_names = st.from_regex(r"(\*\.)?[a-z0-9]{1,8}(\.[a-z0-9]{1,8}){0,2}", fullmatch=True)
peers = st.builds(StreamPeer, address=st.sampled_from([V4, V6]), port=ports, weight=st.integers(1, 5))
profiles = st.builds(TLSProfile, verify_depth=st.integers(1, 5), server_name=st.none() | dns_names.filter(
    lambda s: not s.startswith("*")), sni=st.booleans(), protocols=st.lists(st.sampled_from(TLS_VERSIONS)).map(tuple))


@st.composite
def configurations(draw: st.DrawFn) -> tuple[list[Listener], Upstreams]:
    ls = draw(listener_sets())
    tls_ports = [lst.port for lst in ls if lst.tls]
    passthrough = draw(st.lists(st.builds(
        Passthrough, port=st.sampled_from(tls_ports) if tls_ports else ports,
        hostnames=st.lists(dns_names, min_size=1, max_size=3).map(tuple), peers=st.lists(peers, max_size=3).map(tuple),
        one_label=st.booleans(), proxy_protocol=st.booleans()), max_size=3))
    l4 = draw(st.lists(st.builds(L4Listener, port=ports, udp=st.booleans(), address=st.sampled_from([None, V4]),
                                 peers=st.lists(peers, max_size=3).map(tuple)), max_size=3))
    try:
        ups = Upstreams((*draw(st.lists(profiles, max_size=2)), FULL_PROFILE), tuple(passthrough), tuple(l4))
        render_nginx_conf(SETTINGS, ls, ups)
    except (UpstreamConfigError, ConfigError):
        assume(False)
    return ls, ups


@settings(max_examples=150, deadline=None)
@given(configurations(), engine_input())
def test_no_user_string_reaches_nginx_conf_with_upstreams(
        config: tuple[list[Listener], Upstreams], drawn: tuple[list[Listener], dict[str, Any], list[str]]) -> None:
    ls, ups = config
    text = render_nginx_conf(SETTINGS, ls, ups)
    # Documents never do (the renderer takes none); what the upstream side writes is validated names, digests,
    # addresses and ports; PEM material goes to files named by the profile's digest.
    vocabulary = (render_nginx_conf(SETTINGS, [], ups) + "\n".join(named_locations(ups))
                  + render_nginx_conf(SETTINGS, [Listener(1, tls=True, http2=True)])
                  + "".join(lst.listen_target() for lst in ls))
    for s in drawn[2]:
        if s not in vocabulary:
            assert s not in text
    for pem in (CERT, KEY, CA):
        assert pem.splitlines()[1] not in text
    if ls:
        assert f"proxy_ssl_trusted_certificate upstream-tls/{FULL_PROFILE.id}.ca;" in text
    assert re.fullmatch(r"[A-Za-z0-9_./:;{}\[\]\"$?(),'#@\s=*+~^\\!-]*", _without_log_format(text))
    # A function of the sets alone.
    assert text == render_nginx_conf(SETTINGS, list(reversed(ls)), Upstreams(
        tuple(reversed(ups.tls_profiles)), tuple(reversed(ups.passthrough)), tuple(reversed(ups.l4))))
    assert ("load_module /usr/lib/nginx/modules/ngx_stream_module.so;" in text) == ups.uses_stream


@settings(max_examples=300, deadline=None)
@given(user_text)
def test_user_text_becomes_a_name_only_when_it_is_a_dns_name(s: str) -> None:
    for build in (lambda: TLSProfile(server_name=s), lambda: Passthrough(443, (s,)),
                  lambda: TLSProfile(ciphers=s)):
        try:
            build()
        except UpstreamConfigError:
            continue
        assert re.fullmatch(r"(\*\.)?[a-z0-9.-]+|[A-Za-z0-9+:_!-]+", s)


def test_profiles_render_locations_and_upstreams_per_protocol() -> None:
    text = render_nginx_conf(SETTINGS, [Listener(8443, V4, tls=True, http2=True)], Upstreams((FULL_PROFILE,)))
    pid = FULL_PROFILE.id
    for name in ("https", "grpc", "grpcs", f"https_{pid}", f"grpcs_{pid}"):
        assert f"location @np_{name} {{" in text and f"upstream np_{name} {{" in text
    assert f"grpc_pass grpcs://np_grpcs_{pid};" in text and f"proxy_pass https://np_https_{pid};" in text
    assert "proxy_ssl_verify on;" in text and "grpc_ssl_verify_depth 2;" in text
    assert f"proxy_ssl_certificate_key upstream-tls/{pid}.key;" in text
    assert "proxy_ssl_name backend.test;" in text and "proxy_ssl_ciphers HIGH:!aNULL;" in text
    assert f'np_balancer.set_tls_profiles({{"{pid}"}})' in text
    assert "stream {" not in text
    assert set(FULL_PROFILE.files()) == {f"{pid}.ca", f"{pid}.crt", f"{pid}.key"}
    assert text.count("{") == text.count("}")


def test_passthrough_takes_the_port_and_moves_termination_inside() -> None:
    peer = StreamPeer(V4, 8443)
    text = render_nginx_conf(SETTINGS, [Listener(443, V4, tls=True)], Upstreams(
        passthrough=(Passthrough(443, ("a.test", "*.b.test"), (peer,), one_label=True, proxy_protocol=True),),
        l4=(L4Listener(53, True, None, (StreamPeer(V6, 5353, 2),)),)))
    assert "listen 127.0.0.5:443 ssl" not in text
    assert f"listen unix:{PREFIX}/internal/tls-443.sock ssl proxy_protocol;" in text
    assert "real_ip_header proxy_protocol;" in text
    stream = text[text.index("stream {"):]
    assert "listen 127.0.0.5:443;" in stream and "ssl_preread on;" in stream
    assert "a.test np_pt_0;" in stream and "~*^[^.]+\\.b\\.test$ np_pt_0;" in stream
    assert "default np_tls_443;" in stream and "server 127.0.0.5:8443;" in stream
    assert "listen 53 udp;" in stream and "server [::1]:5353 weight=2;" in stream
    assert "proxy_protocol on;" in stream


@pytest.mark.parametrize(("listeners", "upstreams", "message"), [
    ([Listener(80)], Upstreams(passthrough=(Passthrough(80, ("a.test",)),)), "without TLS"),
    ([Listener(80)], Upstreams(l4=(L4Listener(80),)), "already in use"),
    ([], Upstreams(passthrough=(Passthrough(443, ("a.test",)),), l4=(L4Listener(443),)), "already in use"),
])
def test_stream_ports_that_collide_are_refused(listeners: list[Listener], upstreams: Upstreams, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        render_nginx_conf(SETTINGS, listeners, upstreams)


@pytest.mark.parametrize(("build", "field"), [
    (lambda: TLSProfile(verify=True), "ca"),
    (lambda: TLSProfile(certificate_pem=CERT), "certificate"),
    (lambda: TLSProfile(certificate_pem=CERT, key_pem=self_signed("x.test")[1]), "key"),
    (lambda: TLSProfile(ca_pem="not pem"), "ca"),
    (lambda: TLSProfile(verify_depth=0), "verify_depth"),
    (lambda: TLSProfile(server_name="a b;"), "server_name"),
    (lambda: TLSProfile(protocols=("SSLv3",)), "protocols"),
    (lambda: TLSProfile(ciphers="HIGH; evil"), "ciphers"),
    (lambda: Passthrough(443, ()), "hostnames"),
    (lambda: Passthrough(443, ("A.test",)), "hostnames"),
    (lambda: Upstreams(passthrough=(Passthrough(443, ("a.test",)), Passthrough(443, ("a.test", "b.test")))),
     "hostnames"),
    (lambda: Upstreams(l4=(L4Listener(53, True), L4Listener(53, True, V4))), "two L4 listeners"),
    (lambda: L4Listener(53, True, proxy_protocol=True), "proxy_protocol"),
    (lambda: StreamPeer("10.0.0.1", 80), "peer address"),  # type: ignore[arg-type]
])
def test_bad_upstream_settings_are_refused_naming_the_field(build: Any, field: str) -> None:
    with pytest.raises(UpstreamConfigError, match=field):
        build()
