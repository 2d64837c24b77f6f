"""The engine's access log and request metrics with real nginx on loopback.

Reuses the engine and echo backends of test_gateway_engine (one engine for this module, two workers). Workers
add their counts to shared memory once a second, so each test waits until the expected count shows and then
checks that it is exact; counts are taken as differences, so tests do not depend on each other.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

from netplane.dataplane.gateway import ControlError, Engine, InstanceSettings, Listener
from netplane.dataplane.gateway.metrics import render
from netplane.dataplane.gateway.observability import ACCESS_LOG_FILE, AccessLog
from netplane.dataplane.ingress.instance import engine_metrics_text
from netplane.dataplane.ingress.metrics import InstanceMetrics
from tests.e2e import test_gateway_engine as engine_tests
from tests.e2e.gateway_harness import (
    ADDR,
    LOOPBACK,
    EchoServer,
    call,
    ep,
    free_port,
    port_of,
    prefix,
    to,
)

pytestmark = engine_tests.pytestmark
# The engine and backends of test_gateway_engine, one of each for this module (fixtures are found by name).
gateway = engine_tests.gateway
backends = engine_tests.backends

T = TypeVar("T")
Labels = dict[str, str]


def _until(probe: Callable[[], T], done: Callable[[T], bool], limit_s: float = 5.0) -> T:
    """Polls `probe` until `done` holds of its answer (workers flush once a second); answers the last value."""
    deadline = time.monotonic() + limit_s
    while True:
        value = probe()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def samples(engine: Engine) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the engine's Prometheus text, parsed by Prometheus' Python parser (which names a counter's
    samples <family>_total; they are kept under the name written too)."""
    text = render(engine.metrics(), {"controller_class": "nginx"})
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = tuple(sorted(s.labels.items()))
            out[s.name, labels] = s.value
            if family.type == "counter":
                out[family.name, labels] = s.value
    return out


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """The sum of `name` over the samples whose labels include `labels`."""
    return sum(v for (n, ls), v in found.items() if n == name and labels.items() <= dict(ls).items())


def counted(engine: Engine, name: str, **labels: str) -> float:
    return value(samples(engine), name, **labels)


def log_lines(engine: Engine) -> list[dict[str, Any]]:
    path = engine.prefix / ACCESS_LOG_FILE
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


SHOP_LABELS = {"namespace": "default", "ingress": "shop", "service": "shop-svc", "path": "/shop"}


def shop(engine: Engine, backends: dict[str, EchoServer], host: str, **route: Any) -> None:
    engine.put_backend(f"{host}-be", [ep(backends["a"])])
    engine.put_vhost(host, {"ports": [port_of(engine)], "hostnames": [host], "routes": [
        {"id": f"ingress/default/shop/0/0@{host}", "match": prefix("/shop"), "backend": to(f"{host}-be"),
         "labels": SHOP_LABELS, **route},
        {"id": f"fixed@{host}", "match": prefix("/fixed"), "filters": [
            {"type": "direct_response", "status": 418, "body": "teapot\n"}]},
    ]})


def test_requests_are_counted_per_route_and_status_with_histograms(gateway: Engine,
                                                                   backends: dict[str, EchoServer]) -> None:
    host = "count.obs.test"
    shop(gateway, backends, host)
    labels = {**SHOP_LABELS, "host": host, "method": "GET", "status": "200", "controller_class": "nginx"}
    before = samples(gateway)
    n = 7
    for _ in range(n):
        assert call(gateway, host, "/shop/item").status == 200
    for _ in range(2):
        assert call(gateway, host, "/shop/item", method="POST").status == 200
    assert call(gateway, host, "/fixed").status == 418

    def grown(found: dict[Any, float]) -> bool:
        return value(found, "nginx_ingress_controller_requests", **labels) - value(
            before, "nginx_ingress_controller_requests", **labels) >= n

    after = _until(lambda: samples(gateway), grown)
    time.sleep(1.2)  # one more flush: nothing beyond the requests made may show up
    after = samples(gateway)

    def delta(name: str, **extra: str) -> float:
        return value(after, name, **{**labels, **extra}) - value(before, name, **{**labels, **extra})

    assert delta("nginx_ingress_controller_requests") == n
    assert delta("nginx_ingress_controller_requests", method="POST") == 2
    for hist in ("request_duration_seconds", "response_duration_seconds", "request_size", "response_size"):
        name = "nginx_ingress_controller_" + hist
        assert delta(name + "_count") == n, hist
        assert delta(name + "_bucket", le="+Inf") == n, hist
        assert delta(name + "_sum") > 0, hist
    # A 200 with headers and a JSON body is longer than the largest size bucket (100 bytes).
    assert delta("nginx_ingress_controller_response_size_bucket", le="100") == 0
    # The route id is counted too, for routes that are not from an Ingress.
    assert value(after, "netplane_gateway_requests_total", route=f"fixed@{host}", status="418") - value(
        before, "netplane_gateway_requests_total", route=f"fixed@{host}", status="418") == 1
    # A direct response reached no upstream: no upstream time for it.
    fixed = {"host": host, "status": "418"}
    assert value(after, "nginx_ingress_controller_requests", **fixed) >= 1
    assert value(after, "nginx_ingress_controller_response_duration_seconds_count", **fixed) == 0


def test_latency_lands_in_the_right_buckets(gateway: Engine, backends: dict[str, EchoServer]) -> None:
    host = "slow.obs.test"
    shop(gateway, backends, host)
    labels = {"host": host, "status": "200"}
    name = "nginx_ingress_controller_response_duration_seconds_bucket"
    before = samples(gateway)
    for _ in range(3):
        assert call(gateway, host, "/shop?sleep_ms=150").status == 200
    after = _until(lambda: samples(gateway),
                   lambda f: value(f, name, le="+Inf", **labels) - value(before, name, le="+Inf", **labels) >= 3)
    # A backend that takes 150 ms cannot have answered within 0.1 s.
    assert value(after, name, le="+Inf", **labels) - value(before, name, le="+Inf", **labels) == 3
    assert value(after, name, le="0.1", **labels) - value(before, name, le="0.1", **labels) == 0
    assert value(after, "nginx_ingress_controller_request_duration_seconds_bucket", le="0.1", **labels) == 0


def test_requests_without_a_route_are_counted_with_empty_labels(gateway: Engine) -> None:
    labels = {"host": "", "ingress": "", "namespace": "", "service": "", "path": "", "status": "404"}
    before = counted(gateway, "nginx_ingress_controller_requests", **labels)
    for host in ("nobody-1.obs.test", "nobody-2.obs.test", "nobody-3.obs.test"):
        assert call(gateway, host, "/").status == 404
    after = _until(lambda: counted(gateway, "nginx_ingress_controller_requests", **labels),
                   lambda v: v - before >= 3)
    assert after - before == 3
    assert counted(gateway, "netplane_gateway_requests_total", route="", status="404") >= 3


def test_hosts_per_route_are_bounded_and_nothing_is_lost(gateway: Engine, backends: dict[str, EchoServer]) -> None:
    gateway.put_backend("many-be", [ep(backends["b"])])
    gateway.put_vhost("many", {"ports": [port_of(gateway)], "hostnames": ["*"], "routes": [
        {"id": "many", "match": prefix("/many"), "backend": to("many-be")}]})
    try:
        # 70 names over two workers: one of them sees more than its 32 per route. "n" is a name like any other.
        hosts = ["n", *(f"h{i}.many.test" for i in range(69))]
        for host in hosts:
            assert call(gateway, host, "/many").status == 200
        found = _until(lambda: samples(gateway),
                       lambda f: value(f, "netplane_gateway_requests_total", route="many") >= len(hosts))
        series = {dict(ls)["host"]: v for (n, ls), v in found.items()
                  if n == "nginx_ingress_controller_requests" and dict(ls)["host"] in {*hosts, "_other_"}}
        assert sum(series.values()) == len(hosts)
        assert "_other_" in series and len(series) <= 2 * 32 + 1
    finally:
        gateway.delete("vhosts", "many")


def test_one_json_log_line_per_request_names_the_route(gateway: Engine, backends: dict[str, EchoServer]) -> None:
    host = "log.obs.test"
    shop(gateway, backends, host, retries=1)  # a route with retries continues in @np_full
    marker = f"m{time.monotonic_ns()}"
    assert call(gateway, host, f"/shop/{marker}?q=\"x\"", headers={"User-Agent": 'ag"ent\\'}).status == 200
    assert call(gateway, host, f"/fixed/{marker}").status == 418
    assert call(gateway, "nobody.obs.test", f"/{marker}").status == 404

    def mine(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [line for line in lines if marker in line["uri"]]

    lines = mine(_until(lambda: log_lines(gateway), lambda ls: len(mine(ls)) >= 3))
    assert len(lines) == 3
    routed, lost, fixed = sorted(lines, key=lambda line: line["status"])
    assert routed["route"] == f"ingress/default/shop/0/0@{host}"
    assert (routed["namespace"], routed["ingress"], routed["service"]) == ("default", "shop", "shop-svc")
    assert (routed["method"], routed["host"], routed["status"]) == ("GET", host, 200)
    assert routed["uri"] == f"/shop/{marker}?q=\"x\""
    assert routed["upstream_addr"] == f"{ADDR}:{backends['a'].port}"
    assert routed["upstream_status"] == "200"
    assert routed["user_agent"] == 'ag"ent\\'
    assert routed["remote_addr"] == ADDR
    assert routed["bytes_sent"] > 0 and routed["request_time"] >= 0
    assert float(routed["upstream_response_time"]) >= 0
    assert (fixed["status"], fixed["route"], fixed["ingress"], fixed["upstream_addr"]) == (418, f"fixed@{host}", "",
                                                                                           "")
    assert (lost["status"], lost["route"], lost["namespace"], lost["host"]) == (404, "", "", "nobody.obs.test")


@pytest.mark.parametrize(("kind", "route"), [
    ("full", {"retries": 1}),  # continues in @np_full
    ("conn", {"filters": [{"type": "rate_limit", "zone": "obs-conn", "connections": 5}]}),  # in @np_conn
    ("canary", {"backend": {**to("hand-be"), "canaries": [{**to("hand-canary-be"), "header": "X-Canary",
                                                           "label": "default-shop-canary-80"}]}}),
])
def test_requests_handed_to_a_named_location_are_counted_and_logged_once(
        gateway: Engine, backends: dict[str, EchoServer], kind: str, route: dict[str, Any]) -> None:
    # @np_conn has a log phase of its own (it gives the connection slot back); the others inherit the server's.
    host = f"hand-{kind}.obs.test"
    gateway.put_backend("hand-be", [ep(backends["a"])])
    gateway.put_backend("hand-canary-be", [ep(backends["b"])])
    shop(gateway, backends, host, **route)
    canary = "default-shop-canary-80" if kind == "canary" else ""
    marker = f"m{time.monotonic_ns()}"
    for _ in range(3):
        reply = call(gateway, host, f"/shop/{marker}", headers={"X-Canary": "always"})
        assert (reply.status, reply.name) == (200, "b" if canary else "a")
    labels = {**SHOP_LABELS, "host": host, "canary": canary}
    assert _until(lambda: counted(gateway, "nginx_ingress_controller_requests", **labels),
                  lambda n: n >= 3) == 3
    time.sleep(1.5)  # a second flush: nothing counted twice
    assert counted(gateway, "nginx_ingress_controller_requests", host=host) == 3
    lines = [line for line in _until(lambda: log_lines(gateway), lambda ls: sum(marker in x["uri"] for x in ls) >= 3)
             if marker in line["uri"]]
    assert [(line["status"], line["service"], line["canary"]) for line in lines] == [(200, "shop-svc", canary)] * 3


def test_bad_labels_are_refused_naming_the_field(gateway: Engine, backends: dict[str, EchoServer]) -> None:
    host = "labels.obs.test"
    shop(gateway, backends, host)
    for labels, field in (({"service": "a\tb"}, "labels.service"), ({"color": "red"}, "labels.color"),
                          ({"ingress": 5}, "labels.ingress")):
        with pytest.raises(ControlError) as refused:
            gateway.put_vhost(host, {"ports": [port_of(gateway)], "hostnames": [host], "routes": [
                {"id": "r", "match": prefix("/"), "labels": labels}]})
        assert refused.value.status == 400 and field in refused.value.message
    assert call(gateway, host, "/shop").status == 200


def test_counts_survive_a_reload(gateway: Engine, backends: dict[str, EchoServer]) -> None:
    host = "reload.obs.test"
    shop(gateway, backends, host)
    labels = {"host": host, "status": "200"}
    port = port_of(gateway)  # listeners are kept sorted: the new one may come first
    for _ in range(4):
        assert call(gateway, host, "/shop").status == 200
    before = _until(lambda: counted(gateway, "nginx_ingress_controller_requests", **labels), lambda v: v >= 4)
    assert before == 4
    extra = Listener(free_port(), LOOPBACK)
    assert gateway.set_listeners([*gateway.listeners, extra])
    try:
        for _ in range(3):
            assert call(gateway, host, "/shop", port=port).status == 200
        after = _until(lambda: counted(gateway, "nginx_ingress_controller_requests", **labels), lambda v: v >= 7)
        assert after == 7
        found = gateway.metrics()
        assert found.reloads == gateway.reloads >= 1
        assert found.generation == gateway.status()["generation"]
        assert set(found.lua_memory) >= set(gateway.worker_pids())
        assert found.processes == 3 and found.resident_bytes > 0
    finally:
        gateway.set_listeners([lst for lst in gateway.listeners if lst != extra])


def test_the_instance_programs_metrics_contain_the_engines(gateway: Engine, backends: dict[str, EchoServer]) -> None:
    host = "instance.obs.test"
    shop(gateway, backends, host)
    assert call(gateway, host, "/shop").status == 200
    instance = InstanceMetrics("nginx", "ingress-nginx", "controller-0")
    text = _until(lambda: engine_metrics_text(instance, gateway).decode(), lambda t: f'host="{host}"' in t)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert "nginx_ingress_controller_config_last_reload_successful" in families
    requests = [s for s in families["nginx_ingress_controller_requests"].samples if s.labels.get("host") == host]
    assert [(s.labels["controller_pod"], s.labels["ingress"], s.value) for s in requests] == [
        ("controller-0", "shop", 1.0)]
    # Without a running engine the instance's own series still answer.
    assert b"nginx_ingress_controller_requests" not in engine_metrics_text(instance, None)



def test_stdout_access_log_reaches_the_engines_stdout(backends: dict[str, EchoServer],
                                                     tmp_path_factory: pytest.TempPathFactory,
                                                     capfd: pytest.CaptureFixture[str]) -> None:
    # What the IngressNginx instance program uses: nginx writes to the program's stdout, the pod's log.
    prefix = tmp_path_factory.mktemp("stdout-gw")
    prefix.chmod(0o755)
    engine = Engine(InstanceSettings(prefix, access_log=AccessLog.STDOUT), [Listener(free_port(), LOOPBACK)])
    engine.start()
    try:
        shop(engine, backends, "stdout.obs.test")
        for _ in range(3):
            assert call(engine, "stdout.obs.test", "/shop").status == 200
        seen: list[str] = []

        def read() -> list[str]:
            seen.extend(capfd.readouterr().out.splitlines())
            return seen

        lines = [json.loads(line) for line in _until(read, lambda ls: len(ls) >= 3) if line.startswith("{")]
        assert [(line["host"], line["status"], line["ingress"]) for line in lines] == [("stdout.obs.test", 200,
                                                                                         "shop")] * 3
        assert not (prefix / ACCESS_LOG_FILE).exists()
    finally:
        engine.stop()
