"""What a node may do beyond its role and what it may not (the gate's decisions), and the agent fetching its Secrets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from netplane.api.auth.nodes import referenced_secrets, restriction, secret_decision
from netplane.api.auth.rbac import Attributes, UserInfo
from netplane.controllers.kube.errors import NotFound
from netplane.controllers.kube.resources import Resource
from netplane.dataplane.agent.secrets import PodSecrets

pytestmark = pytest.mark.unit

NODE1 = UserInfo("system:node:node1", "", ("system:nodes", "system:authenticated"))


def pod(name: str, node: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "app"}, "spec": {"nodeName": node, **spec}}


USES_ALL = pod("web", "node1", imagePullSecrets=[{"name": "pull"}], volumes=[
    {"name": "a", "secret": {"secretName": "vol"}},
    {"name": "b", "projected": {"sources": [{"secret": {"name": "projected"}}, {"configMap": {"name": "cm"}}]}}],
    initContainers=[{"name": "i", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "init-env"}}}]}],
    containers=[{"name": "c", "envFrom": [{"secretRef": {"name": "env-from"}}, {"configMapRef": {"name": "cm"}}],
                 "env": [{"name": "Y", "value": "plain"}]}])


def read(verb: str, name: str, namespace: str = "app") -> Attributes:
    return Attributes(verb=verb, namespace=namespace, api_group="", api_version="v1", resource="secrets",
                      name=name)


def test_every_place_a_pod_names_a_secret_is_found() -> None:
    assert referenced_secrets(USES_ALL) == {"pull", "vol", "projected", "init-env", "env-from"}


def test_a_node_reads_by_name_the_secrets_of_its_own_pods_only() -> None:
    pods = {"app": [USES_ALL, pod("other", "node2", volumes=[{"name": "s", "secret": {"secretName": "theirs"}}])]}

    def decide(attrs: Attributes, user: UserInfo = NODE1) -> bool | None:
        decision = secret_decision(user, attrs, lambda ns: pods.get(ns, []))
        return None if decision is None else decision.allowed

    assert decide(read("get", "vol")) is True
    assert decide(read("watch", "env-from")) is True  # a watch pinned by metadata.name
    # No opinion otherwise: RBAC decides, and the system:node role grants no Secrets (403 in test_cluster).
    assert decide(read("get", "theirs")) is None  # used by a pod of another node
    assert decide(read("get", "vol", namespace="elsewhere")) is None
    assert decide(read("list", "")) is None  # every Secret
    assert decide(read("delete", "vol")) is None
    assert decide(read("get", "vol"), UserInfo("alice", "", ("system:authenticated",))) is None
    configmap = Attributes(verb="get", namespace="app", api_group="", api_version="v1", resource="configmaps",
                           name="cm")
    assert decide(configmap) is None


class FakeClient:
    def __init__(self) -> None:
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.gets: list[str] = []

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> dict[str, Any]:
        self.gets.append(name)
        found = self.secrets.get((str(namespace), name))
        if found is None:
            raise NotFound({"kind": "Status", "code": 404, "reason": "NotFound", "message": "not found"})
        return found


def test_the_agent_fetches_what_its_pods_use_and_again_when_due() -> None:
    client, now = FakeClient(), [0.0]
    client.secrets[("app", "vol")] = {"data": {"k": "MQ=="}}
    secrets = PodSecrets(client, clock=lambda: now[0], refresh=30)
    web = pod("web", "node1", volumes=[{"name": "a", "secret": {"secretName": "vol"}},
                                       {"name": "b", "secret": {"secretName": "missing"}}])

    async def scenario() -> None:
        await secrets.ensure(web)
        assert secrets.get("app", "vol") == {"data": {"k": "MQ=="}} and secrets.get("app", "missing") is None
        version, fetched = secrets.version, len(client.gets)
        await secrets.refresh([web])
        assert len(client.gets) == fetched  # not due yet
        client.secrets[("app", "vol")] = {"data": {"k": "Mg=="}}
        now[0] = 31
        await secrets.refresh([web])
        assert secrets.get("app", "vol") == {"data": {"k": "Mg=="}} and secrets.version == version + 1
        await secrets.refresh([])  # no pod uses them any more
        assert secrets.get("app", "vol") is None

    asyncio.run(scenario())


def test_a_node_changes_only_its_own_node_and_the_pods_bound_to_it() -> None:
    pods = {("app", "mine"): pod("mine", "node1"), ("app", "theirs"): pod("theirs", "node2")}

    def refused(verb: str, resource: str, name: str, subresource: str = "") -> bool:
        attrs = Attributes(verb=verb, namespace="" if resource == "nodes" else "app", api_group="",
                           api_version="v1", resource=resource, subresource=subresource, name=name)
        decision = restriction(NODE1, attrs, lambda ns, n: pods.get((ns, n)))
        return decision is not None and not decision.allowed

    assert not refused("update", "nodes", "node1", "status") and not refused("patch", "nodes", "node1")
    assert refused("update", "nodes", "node2", "status") and refused("delete", "nodes", "node2")
    assert not refused("update", "pods", "mine", "status") and not refused("delete", "pods", "mine")
    assert refused("update", "pods", "theirs", "status") and refused("delete", "pods", "theirs")
    assert not refused("get", "nodes", "node2")  # reading is the role's business
