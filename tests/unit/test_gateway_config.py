"""The engine's static nginx.conf: rendered from listeners and settings only, never from user data."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netplane.dataplane.gateway import observability
from netplane.dataplane.gateway.config import (
    ConfigError,
    InstanceSettings,
    Listener,
    canonical_listeners,
    listeners_changed,
    render_nginx_conf,
)

pytestmark = pytest.mark.unit

PREFIX = Path("/var/lib/netplane/gateway/gw-1")
SETTINGS = InstanceSettings(PREFIX)
V4 = ipaddress.ip_address("127.0.0.5")
V6 = ipaddress.ip_address("::1")

ports = st.integers(min_value=1, max_value=65535)
listeners = st.builds(Listener, port=ports, address=st.sampled_from([None, V4, V6]), tls=st.booleans())


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
def engine_input(draw: st.DrawFn) -> tuple[list[Listener], dict[str, Any], list[str]]:
    """A whole engine input: listeners plus virtual hosts, backends and certificates full of user strings."""
    ls = draw(listener_sets())
    strings = draw(st.lists(user_text, min_size=1, max_size=8))
    docs = {
        "vhosts": {s: {"ports": [lst.port for lst in ls], "hostnames": [s], "routes": [
            {"id": s, "match": {"path": {"type": "prefix", "value": "/" + s},
                                "headers": [{"name": s, "value": s}]},
             "filters": [{"type": "redirect", "hostname": s}], "backend": {"backends": [{"name": s}]}}]}
            for s in strings},
        "backends": {s: {"endpoints": [{"address": s, "port": 80}]} for s in strings},
        "certificates": {s: {"hostnames": [s], "certificate": s, "key": s} for s in strings},
    }
    return ls, docs, strings


@settings(max_examples=200, deadline=None)
@given(engine_input())
def test_no_user_string_reaches_nginx_conf(drawn: tuple[list[Listener], dict[str, Any], list[str]]) -> None:
    ls, _docs, strings = drawn
    # The renderer takes no documents at all: the rendered text is a function of listeners and settings.
    text = render_nginx_conf(SETTINGS, ls)
    fixed_vocabulary = (render_nginx_conf(SETTINGS, [Listener(1, tls=True, http2=True)])
                        + "".join(lst.listen_target() for lst in ls))
    for s in strings:
        if s not in fixed_vocabulary:
            assert s not in text


@settings(max_examples=200, deadline=None)
@given(listener_sets())
def test_rendered_text_uses_only_numbers_addresses_and_fixed_names(ls: list[Listener]) -> None:
    text = render_nginx_conf(SETTINGS, ls)
    # The log format and the route-key map are constant text (test_gateway_observability checks them).
    for line in observability.http_lines(SETTINGS.access_log, SETTINGS.metrics_memory_mb):
        text = text.replace(line + "\n", "")
    # Any token outside this alphabet would have to come from somewhere other than our own templates.
    assert re.fullmatch(r"[A-Za-z0-9_./:;{}\[\]\"$?(),'#@\s=*+-]*", text)
    # Every quoted string is one of ours.
    assert set(re.findall(r'"[^"]*"', text)) <= {'"$prefix/lua/?.lua;;"', '""', '"netplane.router"',
                                                  '"netplane.balancer"', '"netplane.certs"', '"netplane.control"',
                                                  '"netplane.metrics"'}
    for lst in ls:
        assert f"np_router.access({lst.port})" in text


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
    assert "lua_shared_dict np_config 128m;" in text
    assert text.count("{") == text.count("}")


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
