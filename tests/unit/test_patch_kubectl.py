"""The strategic merge patches kubectl 1.32 sends, applied to realistic live objects.

Expected results are worked out by hand from the semantics, with the real v1.32 schemas.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from netplane.api.patch import PatchError, apply_patch, apply_strategic_merge_patch
from netplane.api.schemas import kind_schema

pytestmark = pytest.mark.unit

SMP = "application/strategic-merge-patch+json"


def _schema(group: str, version: str, kind: str) -> dict[str, Any]:
    schema = kind_schema(group, version, kind)
    assert schema is not None
    return schema


def _deployment(containers: list[dict[str, Any]], replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": "5b1f", "resourceVersion": "41",
                     "generation": 1, "labels": {"app": "web"},
                     "annotations": {"deployment.kubernetes.io/revision": "1",
                                     "kubectl.kubernetes.io/last-applied-configuration": "{old}\n"}},
        "spec": {
            "replicas": replicas, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": containers, "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                         "terminationGracePeriodSeconds": 30},
            },
        },
        "status": {"replicas": replicas, "readyReplicas": replicas},
    }


def _nginx(image: str = "nginx:1.26", env: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "nginx", "image": image, "imagePullPolicy": "IfNotPresent",
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
        "resources": {"limits": {"memory": "128Mi"}},
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
    }
    if env is not None:
        container["env"] = env
    return container


def _apply(original: dict[str, Any], body: str, kind: tuple[str, str, str]) -> dict[str, Any]:
    patch = json.loads(body)
    before = copy.deepcopy(original)
    result = apply_strategic_merge_patch(original, patch, _schema(*kind))
    assert original == before
    # The server goes through the dispatcher; it must agree.
    assert apply_patch(SMP + "; charset=utf-8", original, patch, _schema(*kind)) == result
    return result


DEPLOYMENT = ("apps", "v1", "Deployment")


def test_apply_changes_image_replicas_and_replaces_env() -> None:
    live = _deployment([_nginx(env=[{"name": "A", "value": "1"}])])
    body = ('{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{...}\\n"}},'
            '"spec":{"replicas":3,"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"}],'
            '"containers":[{"$setElementOrder/env":[{"name":"B"}],"env":[{"name":"B","value":"2"},'
            '{"$patch":"delete","name":"A"}],"image":"nginx:1.27","name":"nginx"}]}}}}')
    expected = copy.deepcopy(live)
    expected["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{...}\n"
    expected["spec"]["replicas"] = 3
    container = expected["spec"]["template"]["spec"]["containers"][0]
    container["image"] = "nginx:1.27"
    container["env"] = [{"name": "B", "value": "2"}]
    assert _apply(live, body, DEPLOYMENT) == expected


def test_apply_env_change_keeps_server_side_env_and_order() -> None:
    live = _deployment([_nginx(env=[{"name": "A", "value": "1"}, {"name": "INJECTED", "value": "x"},
                                    {"name": "C", "value": "3"}])])
    body = ('{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"}],'
            '"containers":[{"$setElementOrder/env":[{"name":"B"},{"name":"C"}],'
            '"env":[{"name":"B","value":"2"},{"$patch":"delete","name":"A"}],"name":"nginx"}]}}}}')
    env = _apply(live, body, DEPLOYMENT)["spec"]["template"]["spec"]["containers"][0]["env"]
    # B is new and ordered before C; INJECTED came before C on the server, so it stays before C.
    assert env == [{"name": "B", "value": "2"}, {"name": "INJECTED", "value": "x"},
                   {"name": "C", "value": "3"}]


def test_configmap_key_removal() -> None:
    live = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "default"},
            "data": {"a": "1", "b": "1", "c": "3"}}
    result = _apply(live, '{"data":{"a":null,"b":"2"}}', ("", "v1", "ConfigMap"))
    assert result == {"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "cfg", "namespace": "default"}, "data": {"b": "2", "c": "3"}}


def _service() -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "type": "ClusterIP", "clusterIP": "10.96.12.7", "clusterIPs": ["10.96.12.7"],
            "selector": {"app": "web"}, "sessionAffinity": "None", "ipFamilies": ["IPv4"],
            "ports": [
                {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
                {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443},
                {"name": "metrics", "port": 9090, "protocol": "TCP", "targetPort": 9090},
            ],
        },
    }


def test_service_ports_merged_by_port_reordered_and_one_deleted() -> None:
    body = ('{"spec":{"$setElementOrder/ports":[{"port":443},{"port":80},{"port":8081}],'
            '"ports":[{"port":443,"targetPort":9443},{"name":"admin","port":8081,"targetPort":8081},'
            '{"$patch":"delete","port":9090}]}}')
    result = _apply(_service(), body, ("", "v1", "Service"))
    assert result["spec"]["ports"] == [
        {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 9443},
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
        {"name": "admin", "port": 8081, "targetPort": 8081},
    ]
    assert {k: v for k, v in result["spec"].items() if k != "ports"} == {
        k: v for k, v in _service()["spec"].items() if k != "ports"}


def test_service_port_target_change_without_order() -> None:
    result = _apply(_service(), '{"spec":{"ports":[{"port":80,"targetPort":"web"}]}}', ("", "v1", "Service"))
    # targetPort changes type (int to string): the value is simply replaced.
    assert [p["port"] for p in result["spec"]["ports"]] == [80, 443, 9090]
    assert result["spec"]["ports"][0] == {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "web"}


EDIT_BODY = ('{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"}],'
             '"containers":[{"image":"nginx:1.28","name":"nginx"}]}}}}')


def test_edit_container_image() -> None:
    live = _deployment([_nginx()])
    expected = copy.deepcopy(live)
    expected["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    assert _apply(live, EDIT_BODY, DEPLOYMENT) == expected


def test_edit_container_image_keeps_an_injected_sidecar_after_it() -> None:
    sidecar = {"name": "proxy", "image": "envoy:1.31"}
    live = _deployment([_nginx(), sidecar])
    containers = _apply(live, EDIT_BODY, DEPLOYMENT)["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["nginx", "proxy"]
    assert containers[0]["image"] == "nginx:1.28"
    assert containers[0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert containers[1] == sidecar


RESTART_BODY = ('{"spec":{"template":{"metadata":{"annotations":'
                '{"kubectl.kubernetes.io/restartedAt":"2025-01-15T10:00:00Z"}}}}}')


def test_rollout_restart_adds_template_annotation() -> None:
    live = _deployment([_nginx()])
    expected = copy.deepcopy(live)
    expected["spec"]["template"]["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/restartedAt": "2025-01-15T10:00:00Z"}
    assert _apply(live, RESTART_BODY, DEPLOYMENT) == expected


def test_second_rollout_restart_updates_it_and_keeps_other_annotations() -> None:
    live = _deployment([_nginx()])
    live["spec"]["template"]["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/restartedAt": "2025-01-14T09:00:00Z", "prometheus.io/scrape": "true"}
    annotations = _apply(live, RESTART_BODY, DEPLOYMENT)["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"kubectl.kubernetes.io/restartedAt": "2025-01-15T10:00:00Z",
                           "prometheus.io/scrape": "true"}


@pytest.mark.parametrize("body", [
    # last-applied had rollingUpdate: kubectl nulls it as well.
    '{"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":null,"type":"Recreate"}}}',
    # rollingUpdate was only defaulted by the server: $retainKeys alone must clear it.
    '{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}}',
])
def test_retain_keys_switches_strategy_to_recreate(body: str) -> None:
    live = _deployment([_nginx()])
    expected = copy.deepcopy(live)
    expected["spec"]["strategy"] = {"type": "Recreate"}
    assert _apply(live, body, DEPLOYMENT) == expected


def test_without_retain_keys_the_defaulted_field_would_stay() -> None:
    # Control for the test above: a plain merge keeps rollingUpdate.
    live = _deployment([_nginx()])
    result = _apply(live, '{"spec":{"strategy":{"type":"Recreate"}}}', DEPLOYMENT)
    assert result["spec"]["strategy"] == {"type": "Recreate",
                                          "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}


def test_volumes_merge_with_retain_keys_per_element() -> None:
    live = _deployment([_nginx()])
    live["spec"]["template"]["spec"]["volumes"] = [
        {"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}}]
    body = ('{"spec":{"template":{"spec":{"$setElementOrder/volumes":[{"name":"data"},{"name":"cfg"}],'
            '"volumes":[{"$retainKeys":["name","persistentVolumeClaim"],"emptyDir":null,"name":"data",'
            '"persistentVolumeClaim":{"claimName":"data"}}]}}}}')
    volumes = _apply(live, body, DEPLOYMENT)["spec"]["template"]["spec"]["volumes"]
    assert volumes == [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                       {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}}]


def test_finalizers_are_a_merging_scalar_list() -> None:
    live = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["a/x", "b/y"]}}
    result = _apply(live, '{"metadata":{"$deleteFromPrimitiveList/finalizers":["a/x"],"finalizers":["c/z"]}}',
                    ("", "v1", "ConfigMap"))
    assert result["metadata"]["finalizers"] == ["c/z", "b/y"]


def test_pod_selector_is_replaced_for_pod_disruption_budget() -> None:
    live = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web", "tier": "fe"}}}}
    result = _apply(live, '{"spec":{"selector":{"matchLabels":{"app":"api"}}}}',
                    ("policy", "v1", "PodDisruptionBudget"))
    assert result["spec"]["selector"] == {"matchLabels": {"app": "api"}}


def test_strategic_patch_without_schema_is_unsupported() -> None:
    with pytest.raises(PatchError) as caught:
        apply_patch(SMP, {"spec": {}}, {"spec": {"a": 1}}, None)
    assert caught.value.code == 415
    assert "strategic merge patch" in caught.value.message
