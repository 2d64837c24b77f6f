"""The agent's side of service accounts: projected tokens (requested, cached, renewed at 80% of
their lifetime) and the Service variables every container gets."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Coroutine
from typing import Any

import pytest

from netplane.api.serviceaccounts import token_volume
from netplane.controllers.kube.errors import NotFound
from netplane.dataplane.agent.podconfig import ConfigError, render_volume, service_env, with_resolved_env
from netplane.dataplane.agent.tokens import TokenManager

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0
POD = {"metadata": {"name": "web", "namespace": "team", "uid": "pod-uid"},
       "spec": {"serviceAccountName": "bot", "containers": [{"name": "app", "image": "busybox"}]}}
VOLUME = token_volume("kube-api-access-abcde")


class FakeApi:
    def __init__(self) -> None:
        self.now = NOW
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.missing = False

    async def request(self, method: str, path: str, *, body: Any = None) -> dict[str, Any]:
        assert method == "POST"
        self.requests.append((path, body))
        if self.missing:
            raise NotFound({"message": 'serviceaccounts "bot" not found'})
        lifetime = body["spec"]["expirationSeconds"]
        expires = dt.datetime.fromtimestamp(self.now + lifetime, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"spec": {**body["spec"], "expirationSeconds": lifetime},
                "status": {"token": f"token-{len(self.requests)}", "expirationTimestamp": expires}}


class Harness:
    def __init__(self) -> None:
        self.api = FakeApi()
        self.spawned: list[Coroutine[Any, Any, None]] = []
        self.manager = TokenManager(self.api, self.spawned.append, clock=lambda: self.api.now)

    async def run_spawned(self) -> None:
        while self.spawned:
            await self.spawned.pop(0)


def test_tokens_are_requested_for_the_pod_and_renewed_at_80_percent() -> None:
    async def scenario() -> None:
        h = Harness()
        await h.manager.ensure(POD, VOLUME)
        path, body = h.api.requests[0]
        assert path == "/api/v1/namespaces/team/serviceaccounts/bot/token"
        assert body["spec"] == {"expirationSeconds": 3607, "boundObjectRef": {
            "apiVersion": "v1", "kind": "Pod", "name": "web", "uid": "pod-uid"}}
        files = render_volume(POD, VOLUME, lambda *_: {"data": {"ca.crt": "CA"}}, tokens=h.manager.token)
        assert files == {"token": (b"token-1", 0o644), "ca.crt": (b"CA", 0o644), "namespace": (b"team", 0o644)}
        await h.manager.ensure(POD, VOLUME)
        assert len(h.api.requests) == 1  # cached
        h.api.now = NOW + 0.79 * 3607
        assert h.manager.token(POD, {"expirationSeconds": 3607}) == b"token-1" and not h.spawned
        h.api.now = NOW + 0.81 * 3607
        assert h.manager.token(POD, {"expirationSeconds": 3607}) == b"token-1"  # still valid meanwhile
        assert h.manager.token(POD, {"expirationSeconds": 3607}) == b"token-1"
        assert len(h.spawned) == 1  # one renewal at a time
        await h.run_spawned()
        assert h.manager.token(POD, {"expirationSeconds": 3607}) == b"token-2"

    asyncio.run(scenario())


def test_audience_and_failures() -> None:
    async def scenario() -> None:
        h = Harness()
        await h.manager.ensure(POD, {"projected": {"sources": [
            {"serviceAccountToken": {"audience": "vault", "expirationSeconds": 600, "path": "vault-token"}}]}})
        assert h.api.requests[0][1]["spec"]["audiences"] == ["vault"]
        h.api.missing = True
        other = {**POD, "metadata": {**POD["metadata"], "uid": "other-uid"}}
        with pytest.raises(ConfigError, match='failed to fetch token: serviceaccounts "bot" not found'):
            await h.manager.ensure(other, VOLUME)
        # Rendering never waits: a token not fetched yet is fetched in the background.
        with pytest.raises(ConfigError, match="not found"):
            h.manager.token(other, {"expirationSeconds": 3607})
        h.api.missing = False
        await h.run_spawned()
        assert h.manager.token(other, {"expirationSeconds": 3607}) == b"token-3"

    asyncio.run(scenario())


def test_expired_tokens_of_gone_pods_are_forgotten() -> None:
    async def scenario() -> None:
        h = Harness()
        await h.manager.ensure(POD, VOLUME)
        h.api.now = NOW + 3607
        await h.manager.ensure({**POD, "metadata": {**POD["metadata"], "uid": "next"}}, VOLUME)
        assert len(h.manager._tokens) == 1

    asyncio.run(scenario())


# --- Service variables -------------------------------------------------------------------------

def svc(namespace: str, name: str, ip: str, *ports: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name}, "spec": {"clusterIP": ip, "ports": list(ports)}}


KUBERNETES = svc("default", "kubernetes", "10.96.0.1", {"name": "https", "port": 443, "protocol": "TCP"})
SERVICES = [
    KUBERNETES,
    svc("team", "redis-primary", "10.96.0.20", {"port": 6379}),
    svc("team", "dns", "10.96.0.10", {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"}),
    svc("team", "headless", "None", {"port": 80}),
    svc("other", "elsewhere", "10.96.0.30", {"port": 80}),
]


def test_the_kubernetes_service_variables() -> None:
    env = {e["name"]: e["value"] for e in service_env({**POD, "spec": {"enableServiceLinks": False}}, SERVICES)}
    assert env == {
        "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
        "KUBERNETES_SERVICE_PORT_HTTPS": "443", "KUBERNETES_PORT": "tcp://10.96.0.1:443",
        "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
        "KUBERNETES_PORT_443_TCP_PORT": "443", "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1"}


def test_service_links_of_the_pods_namespace() -> None:
    env = {e["name"]: e["value"] for e in service_env(POD, SERVICES)}
    assert env["REDIS_PRIMARY_SERVICE_HOST"] == "10.96.0.20" and env["REDIS_PRIMARY_PORT"] == "tcp://10.96.0.20:6379"
    assert env["DNS_SERVICE_PORT"] == "53" and env["DNS_SERVICE_PORT_DNS_TCP"] == "53"
    assert env["DNS_PORT"] == "udp://10.96.0.10:53" and env["DNS_PORT_53_UDP_PROTO"] == "udp"
    assert env["DNS_PORT_53_TCP_ADDR"] == "10.96.0.10"
    assert not any(k.startswith(("HEADLESS_", "ELSEWHERE_")) for k in env)
    # A Service named kubernetes in the pod's own namespace wins over the API's.
    own = service_env(POD, [KUBERNETES, svc("team", "kubernetes", "10.96.0.99", {"port": 80})])
    assert {"name": "KUBERNETES_SERVICE_HOST", "value": "10.96.0.99"} in own


def test_containers_get_service_variables_first_so_their_own_win() -> None:
    pod = {**POD, "spec": {**POD["spec"], "containers": [{"name": "app", "env": [
        {"name": "KUBERNETES_SERVICE_HOST", "value": "override"},
        {"name": "API", "value": "https://$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)"}]}]}}
    resolved, errors = with_resolved_env(pod, lambda *_: None, None, None, services=[KUBERNETES])
    names = [e["name"] for e in resolved["spec"]["containers"][0]["env"]]
    assert not errors and names[0] == "KUBERNETES_SERVICE_HOST" and names[-2:] == ["KUBERNETES_SERVICE_HOST", "API"]
    _, errors = with_resolved_env(pod, lambda *_: None, None, None, services=None)
    assert errors == {"app": "services have not yet been read at least once, cannot construct envvars"}
