"""The engine's metrics text and access-log configuration (pure parts; real nginx in
tests/e2e/test_gateway_observability.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from netplane.dataplane.gateway.config import ConfigError, InstanceSettings, Listener, WafProfile, render_nginx_conf
from netplane.dataplane.gateway.metrics import (
    CellKey,
    EngineMetrics,
    RouteLabels,
    parse_dump,
    process_memory,
    render,
)
from netplane.dataplane.gateway.observability import LOG_FIELDS, AccessLog, http_lines, server_lines
from netplane.dataplane.ingress.instance import engine_settings
from netplane.dataplane.ingress.metrics import InstanceMetrics
from netplane.routing.ingress.settings import parse_settings
from netplane.routing.ingress.translate import IngressInputs, translate

pytestmark = pytest.mark.unit

SHOP = "default\tshop\tshop-svc\t/api\t\tingress/default/shop/0/0"
NONE = "\t\t\t\t\t"


def dump(*cells: tuple[str, str, str, str, str, float]) -> str:
    lines = ["generation\t12"]
    lines += ["\t".join((route, host, method, status, field, repr(value)))
              for route, host, method, status, field, value in cells]
    return "\n".join(lines) + "\n"


def families(text: str) -> dict[str, list[tuple[dict[str, str], float, str]]]:
    out: dict[str, list[tuple[dict[str, str], float, str]]] = {}
    for family in text_string_to_metric_families(text):
        out[family.name] = [(s.labels, s.value, s.name) for s in family.samples]
    return out


def test_dump_lines_become_cells_with_route_labels() -> None:
    found = parse_dump(dump(
        (SHOP, "shop.test", "GET", "200", "requests", 3),
        (SHOP, "shop.test", "GET", "200", "request_duration_seconds:0.005", 2),
        (SHOP, "shop.test", "GET", "200", "request_duration_seconds:+Inf", 1),
        (SHOP, "shop.test", "GET", "200", "request_duration_seconds:sum", 12.5),
        (NONE, "", "GET", "404", "requests", 1),
        ("a\tb\tc\td\t\tid\twith\ttabs", "h", "GET", "200", "requests", 1),
    ) + "lua_memory_bytes\t4242\t1000\nsomething new\tx\n")
    assert found.generation == 12
    assert found.lua_memory == {4242: 1000.0}
    shop = found.cells[CellKey(RouteLabels("default", "shop", "shop-svc", "/api", "ingress/default/shop/0/0"),
                               "shop.test", "GET", "200")]
    assert shop.requests == 3
    assert shop.buckets == {"request_duration_seconds": {0.005: 2.0, float("inf"): 1.0}}
    assert shop.sums == {"request_duration_seconds": 12.5}
    assert CellKey(RouteLabels("", "", "", "", ""), "", "GET", "404") in found.cells
    # A route id may hold tabs: labels are the first four parts, host/method/status/field the last four.
    assert CellKey(RouteLabels("a", "b", "c", "d", "id\twith\ttabs"), "h", "GET", "200") in found.cells


def test_histograms_are_cumulative_with_every_default_bucket() -> None:
    found = parse_dump(dump(
        (SHOP, "shop.test", "GET", "200", "requests", 4),
        (SHOP, "shop.test", "GET", "200", "response_duration_seconds:0.005", 1),
        (SHOP, "shop.test", "GET", "200", "response_duration_seconds:0.25", 2),
        (SHOP, "shop.test", "GET", "200", "response_duration_seconds:+Inf", 1),
        (SHOP, "shop.test", "GET", "200", "response_duration_seconds:sum", 20.3),
    ))
    text = render(found, {"controller_class": "nginx", "controller_pod": "p-0"})
    samples = families(text)["nginx_ingress_controller_response_duration_seconds"]
    buckets = {labels["le"]: v for labels, v, name in samples if name.endswith("_bucket")}
    # Written as ingress-nginx (Go) writes them.
    assert list(buckets) == ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
    assert [buckets[le] for le in ("0.005", "0.1", "0.25", "10", "+Inf")] == [1, 1, 3, 3, 4]
    count = [v for _, v, n in samples if n.endswith("_count")]
    total = [v for _, v, n in samples if n.endswith("_sum")]
    assert (count, total) == ([4], [20.3])
    # No upstream answered the requests of a cell without upstream times: no histogram series for it.
    assert "nginx_ingress_controller_request_size" in families(text)
    assert families(text)["nginx_ingress_controller_request_size"] == []


def test_requests_carry_ingress_nginx_labels_and_cells_differing_only_by_route_are_summed() -> None:
    other = "default\tshop\tshop-svc\t/api\t\tingress/default/shop/0/1"
    found = parse_dump(dump(
        (SHOP, "shop.test", "GET", "200", "requests", 3),
        (other, "shop.test", "GET", "200", "requests", 2),
        (NONE, "", "GET", "404", "requests", 1),
    ))
    text = render(found, {"controller_class": "nginx", "controller_namespace": "ingress-nginx",
                          "controller_pod": "p-0"})
    requests = families(text)["nginx_ingress_controller_requests"]
    assert [(labels, v) for labels, v, _ in requests] == [
        ({"controller_class": "nginx", "controller_namespace": "ingress-nginx", "controller_pod": "p-0",
          "canary": "", "host": "", "ingress": "", "method": "GET", "namespace": "", "path": "", "service": "",
          "status": "404"}, 1),
        ({"controller_class": "nginx", "controller_namespace": "ingress-nginx", "controller_pod": "p-0",
          "canary": "", "host": "shop.test", "ingress": "shop", "method": "GET", "namespace": "default",
          "path": "/api", "service": "shop-svc", "status": "200"}, 5),
    ]
    by_route = {labels["route"]: v for labels, v, _ in families(text)["netplane_gateway_requests"]}
    assert by_route == {"": 1, "ingress/default/shop/0/0": 3, "ingress/default/shop/0/1": 2}
    assert families(text)["netplane_gateway_config_generation"][0][1] == 12


def test_a_canarys_requests_carry_its_label_beside_the_routes() -> None:
    canary = "default\tshop\tshop-svc\t/api\tdefault-shop-canary-80\tingress/default/shop/0/0"
    text = render(parse_dump(dump((SHOP, "shop.test", "GET", "200", "requests", 3),
                                  (canary, "shop.test", "GET", "200", "requests", 2))))
    found = {(labels["canary"], labels["service"]): v for labels, v, _ in
             families(text)["nginx_ingress_controller_requests"]}
    assert found == {("", "shop-svc"): 3, ("default-shop-canary-80", "shop-svc"): 2}


def test_label_values_are_escaped() -> None:
    route = 'ns\ting\tsvc\t/a"b\\c\t\tid'
    text = render(parse_dump(dump((route, "h", "GET", "200", "requests", 1))))
    labels = families(text)["nginx_ingress_controller_requests"][0][0]
    assert labels["path"] == '/a"b\\c'
    assert 'path="/a\\"b\\\\c"' in text


def test_an_empty_engine_renders_valid_text() -> None:
    text = render(EngineMetrics(reloads=2, resident_bytes=4096, virtual_bytes=8192, processes=3))
    found = families(text)
    assert found["nginx_ingress_controller_requests"] == []
    assert found["netplane_gateway_reloads"][0][1] == 2
    assert found["nginx_ingress_controller_nginx_process_num_procs"][0][1] == 3
    assert found["nginx_ingress_controller_nginx_process_resident_memory_bytes"][0][1] == 4096


def test_process_memory_sums_statm_and_skips_processes_gone(tmp_path: Path) -> None:
    for pid, statm in ((10, "100 20 0 0 0 0 0"), (11, "50 5 0 0 0 0 0")):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "statm").write_text(statm)
    rss, vsz, count = process_memory([10, 11, 12], tmp_path)
    page = rss // 25
    assert (rss, vsz, count) == (25 * page, 150 * page, 2)


def test_the_instance_and_engine_share_controller_labels() -> None:
    m = InstanceMetrics("nginx", "ingress-nginx", "p-0")
    assert m.const_labels() == {"controller_class": "nginx", "controller_namespace": "ingress-nginx",
                                "controller_pod": "p-0"}
    assert 'controller_pod="p-0"' in m.render().decode()


def test_log_format_is_json_for_any_variable_values() -> None:
    # nginx's escape=json makes each variable a valid JSON string body; numbers are nginx's own.
    line = next(line for line in http_lines(AccessLog.FILE, 32) if "log_format" in line)
    template = re.search(r"'(.*)'", line)
    assert template is not None
    text = template.group(1)
    hostile = json.dumps('a"b\\c\n\x01')[1:-1]
    for _, var, quoted in LOG_FIELDS:
        text = text.replace(var, hostile if quoted else "12", 1)
    parsed = json.loads(text)
    assert list(parsed) == [name for name, _, _ in LOG_FIELDS]
    assert parsed["route"] == 'a"b\\c\n\x01' and parsed["status"] == 12


@pytest.mark.parametrize(("mode", "target"), [
    (AccessLog.FILE, "access_log logs/access.log np_json buffer=64k"),
    (AccessLog.STDOUT, "access_log /dev/stdout np_json buffer=4096 flush=1s;"),
    (AccessLog.OFF, None)])
def test_access_log_modes(mode: AccessLog, target: str | None) -> None:
    text = render_nginx_conf(InstanceSettings(Path("/srv/gw"), access_log=mode), [Listener(80), Listener(81)])
    # Listeners log and count; the control server does neither (its requests are not traffic).
    assert text.count("log_by_lua_block { np_metrics.log() }") == 2
    assert text.count("init_worker_by_lua_block") == 1
    control = text[text.index("listen unix:"):]
    assert "access_log" not in control and "log_by_lua" not in control and 'set $np_route "";' in control
    if target is None:
        assert "log_format" not in text and "access_log off;" in text
    else:
        assert text.count(target) == 2 and "log_format np_json escape=json" in text
    assert "log_by_lua" not in "".join(server_lines(mode, metrics=False))
    unmeasured = render_nginx_conf(InstanceSettings(Path("/srv/gw"), access_log=mode, metrics=False), [Listener(80)])
    assert "np_metrics.log" not in unmeasured and "np_metrics.init_worker()" in unmeasured


@pytest.mark.parametrize("metrics", [True, False])
def test_locations_with_their_own_log_phase_count_the_request_too(metrics: bool) -> None:
    # A location's log_by_lua replaces the server's: @np_conn and the WAF locations give a connection slot back
    # and must count the request as well; every other location inherits the server's.
    settings = InstanceSettings(Path("/srv/gw"), metrics=metrics)
    text = render_nginx_conf(settings, [Listener(80)], waf=[WafProfile(), WafProfile(blocking=True)])
    locations = re.findall(r"^        location (@\w+) \{\n(.*?)^        \}", text, re.M | re.S)
    own = {name: re.findall(r"log_by_lua_block \{ (.*) \}", body) for name, body in locations}
    assert {name for name, calls in own.items() if calls} == {"@np_conn", "@np_waf_block", "@np_waf_detect"}
    assert {tuple(calls) for calls in own.values() if calls} == {
        ("np_router.log() np_metrics.log()" if metrics else "np_router.log()",)}
    server = text[text.index("listen 80;"):text.index("location / {")]
    assert ("log_by_lua_block { np_metrics.log() }" in server) == metrics


def test_the_instance_logs_to_its_stdout_unless_disable_access_log() -> None:
    def mode(config: dict[str, str]) -> AccessLog:
        settings = translate(IngressInputs(), parse_settings(config).settings).config.settings
        return engine_settings(Path("/srv/gw"), settings, 1).access_log

    assert (mode({}), mode({"disable-access-log": "true"})) == (AccessLog.STDOUT, AccessLog.OFF)


def test_settings_refuse_unknown_access_log_modes() -> None:
    with pytest.raises(ConfigError):
        InstanceSettings(Path("/srv/gw"), access_log="syslog")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        InstanceSettings(Path("/srv/gw"), metrics_memory_mb=0)
