"""Fuzzing the API: mutated objects and patches must never yield a 5xx, and a rejected
write must leave the stored object exactly as it was."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netplane.api.server import ApiServer
from netplane.apiserver_main import build
from netplane.up import UpOptions

pytestmark = pytest.mark.integration

TOKEN = "fuzz-token"

BASES: dict[str, dict[str, Any]] = {
    "/api/v1/namespaces/default/services": {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "labels": {"app": "web"}},
        "spec": {"type": "NodePort", "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}},
    "/apis/apps/v1/namespaces/default/deployments": {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}},
                 "template": {"metadata": {"labels": {"app": "d"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx",
                                                       "ports": [{"containerPort": 80}]}]}}}},
    "/api/v1/namespaces/default/configmaps": {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}},
    "/apis/networking.k8s.io/v1/namespaces/default/ingresses": {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"},
        "spec": {"rules": [{"host": "a.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix",
             "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]}},
    "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies": {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "n"},
        "spec": {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}],
                                                 "ports": [{"port": 80}]}]}},
}

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False),
                      st.text(max_size=12), st.sampled_from(["", "None", "TCP", "../x", "*", "a" * 300]))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=8)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += _paths(v, (*prefix, i))
    return found


def _set(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = node
    for part in path[:-1]:
        parent = parent[part]
    if value is _DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return node


_DELETE = object()


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(obj) if p and p[0] not in ("apiVersion", "kind") and p[:2] != ("metadata", "name")]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        value = draw(st.one_of(json_value, st.just(_DELETE)))
        obj = _set(obj, path, value)
    return obj


class Api:
    def __init__(self, url: str):
        self.url = url

    def call(self, method: str, path: str, body: Any = None, ctype: str = "application/json") -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": ctype})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict[str, Any] = {}

    async def start() -> None:
        core, system = build(UpOptions(data_dir=Path(tmp_path_factory.mktemp("fuzz")) / "data"), 6443)
        system.start()
        runner = web.AppRunner(ApiServer(core, TOKEN).app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        state.update(runner=runner, core=core, system=system, port=runner.addresses[0][1])
        started.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    assert started.wait(30)
    api = Api(f"http://127.0.0.1:{state['port']}")
    for path, base in BASES.items():
        assert api.call("POST", path, base)[0] == 201
    yield api
    async def stop() -> None:
        await state["runner"].cleanup()
        await state["system"].stop()
        state["core"].store.raw.close()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(data=st.data(), path=st.sampled_from(sorted(BASES)))
def test_mutated_creates_never_fail_with_5xx(api: Api, data: st.DataObject, path: str) -> None:
    obj = data.draw(mutated(BASES[path]))
    if isinstance(obj.get("metadata"), dict):
        obj["metadata"]["name"] = "fz-" + str(abs(hash(json.dumps(obj, sort_keys=True, default=str))) % 10**8)
    status, body = api.call("POST", path, obj)
    assert status < 500, body
    assert body.get("kind") != "Status" or body.get("status") == "Failure"
    if status == 201:
        assert api.call("DELETE", f"{path}/{body['metadata']['name']}")[0] == 200


PATCH_TYPES = ["application/merge-patch+json", "application/strategic-merge-patch+json",
               "application/json-patch+json"]
json_patch_op = st.fixed_dictionaries({
    "op": st.sampled_from(["add", "remove", "replace", "test", "move", "copy", "bogus"]),
    "path": st.sampled_from(["/spec", "/spec/replicas", "/metadata/name", "/spec/ports/0", "/x/y", "", "/data/a",
                             "/metadata/labels/new", "/spec/ports/-"]),
}, optional={"value": json_value, "from": st.sampled_from(["/spec", "/metadata/labels", "/nope"])})


@FUZZ
@given(data=st.data(), path=st.sampled_from(sorted(BASES)), ctype=st.sampled_from(PATCH_TYPES))
def test_patches_never_5xx_and_rejections_change_nothing(api: Api, data: st.DataObject, path: str,
                                                         ctype: str) -> None:
    name = BASES[path]["metadata"]["name"]
    before = api.call("GET", f"{path}/{name}")[1]
    if ctype == "application/json-patch+json":
        body: Any = data.draw(st.lists(json_patch_op, min_size=1, max_size=3))
    else:
        body = data.draw(st.one_of(json_value, mutated(BASES[path])))
    status, answer = api.call("PATCH", f"{path}/{name}", body, ctype)
    assert status < 500, answer
    if status >= 400:
        after = api.call("GET", f"{path}/{name}")[1]
        assert after == before
