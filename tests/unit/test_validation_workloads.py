"""Deployments, ReplicaSets, StatefulSets, DaemonSets and their pod templates."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from netplane.api.validation import apply_defaults, validate

pytestmark = pytest.mark.unit


def workload(kind: str, spec: dict[str, Any], template_labels: dict[str, str] | None = None,
             containers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    labels = {"app": "web"} if template_labels is None else template_labels
    full: dict[str, Any] = {"selector": {"matchLabels": {"app": "web"}},
                            "template": {"metadata": {"labels": labels},
                                         "spec": {"containers": containers if containers is not None else [
                                             {"name": "web", "image": "nginx:1.25"}]}}}
    full.update(copy.deepcopy(spec))
    obj = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "web", "namespace": "default"},
           "spec": full}
    apply_defaults("apps", kind, obj)
    return obj


def causes(kind: str, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    return [(e.field, e.message) for e in validate("apps", kind, obj, old)]


MISMATCH = ("spec.template.metadata.labels",
            'Invalid value: map[string]string{"app":"other"}: `selector` does not match template `labels`')


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"])
def test_valid_workloads(kind: str) -> None:
    assert causes(kind, workload(kind, {})) == []


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"])
def test_selector_must_match_template(kind: str) -> None:
    assert MISMATCH in causes(kind, workload(kind, {}, template_labels={"app": "other"}))


def test_deployment_without_selector() -> None:
    obj = workload("Deployment", {})
    del obj["spec"]["selector"]
    assert causes("Deployment", obj) == [
        ("spec.selector", "Required value"),
        ("spec.template.metadata.labels",
         'Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`')]


def test_empty_selector() -> None:
    obj = workload("Deployment", {"selector": {"matchLabels": {}}})
    assert causes("Deployment", obj)[0] == (
        "spec.selector", "Invalid value: v1.LabelSelector{MatchLabels:map[string]string{}, "
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment")


@pytest.mark.parametrize(("spec", "expected"), [
    ({"replicas": -1}, [("spec.replicas", "Invalid value: -1: must be greater than or equal to 0")]),
    ({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}},
     [("spec.strategy.rollingUpdate.maxUnavailable",
       'Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:""}: may not be 0 when `maxSurge` is 0')]),
    ({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "150%"}}},
     [("spec.strategy.rollingUpdate.maxUnavailable",
       'Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"150%"}: must not be greater than 100%')]),
    ({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "a lot"}}},
     [("spec.strategy.rollingUpdate.maxSurge",
       "Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"a lot\"}: a valid percent string "
       "must be a "
       "numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is "
       "'[0-9]+%')")]),
    ({"strategy": {"type": "Recreate", "rollingUpdate": {}}},
     [("spec.strategy.rollingUpdate", "Forbidden: may not be specified when strategy `type` is 'Recreate'")]),
    ({"strategy": {"type": "BlueGreen"}},
     [("spec.strategy", 'Unsupported value: apps.DeploymentStrategy{Type:"BlueGreen", '
                        'RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: "Recreate", '
                        '"RollingUpdate"')]),
    ({"progressDeadlineSeconds": 5, "minReadySeconds": 10},
     [("spec.progressDeadlineSeconds", "Invalid value: 5: must be greater than minReadySeconds")]),
])
def test_deployment_spec(spec: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert causes("Deployment", workload("Deployment", spec)) == expected


@pytest.mark.parametrize(("containers", "expected"), [
    ([], [("spec.template.spec.containers", "Required value")]),
    ([{"name": "Web", "image": "nginx"}],
     [("spec.template.spec.containers[0].name",
       'Invalid value: "Web": a lowercase RFC 1123 label must consist of '
       "lower case alphanumeric characters or '-', and must start and end with an alphanumeric "
       "character (e.g. "
       "'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")]),
    ([{"name": "a", "image": "x"}, {"name": "a", "image": "y"}],
     [("spec.template.spec.containers[1].name", 'Duplicate value: "a"')]),
    ([{"name": "a"}], [("spec.template.spec.containers[0].image", "Required value")]),
    ([{"name": "a", "image": "x", "ports": [{"containerPort": 0, "name": "http"}, {"containerPort": 8080,
                                                                                  "name": "http"}]}],
     [("spec.template.spec.containers[0].ports[0].containerPort", "Required value"),
      ("spec.template.spec.containers[0].ports[1].name", 'Duplicate value: "http"')]),
    ([{"name": "a", "image": "x", "ports": [{"containerPort": 99999, "protocol": "ICMP"}]}],
     [("spec.template.spec.containers[0].ports[0].containerPort",
       "Invalid value: 99999: must be between 1 and 65535, inclusive"),
      ("spec.template.spec.containers[0].ports[0].protocol",
       'Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"')]),
    ([{"name": "a", "image": "x", "env": [{"name": "A=B", "value": "1"}]}],
     [("spec.template.spec.containers[0].env[0].name",
       'Invalid value: "A=B": a valid environment variable name '
       "must consist only of printable ASCII characters other than '='")]),
    ([{"name": "a", "image": "x", "imagePullPolicy": "Sometimes"}],
     [("spec.template.spec.containers[0].imagePullPolicy",
       'Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"')]),
    ([{"name": "a", "image": "x", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
     [("spec.template.spec.containers[0].volumeMounts[0].name", 'Not found: "data"')]),
    ([{"name": "a", "image": "x", "livenessProbe": {"successThreshold": 2, "tcpSocket": {"port": 8080}}}],
     [("spec.template.spec.containers[0].livenessProbe.successThreshold", "Invalid value: 2: must be 1")]),
    ([{"name": "a", "image": "x", "readinessProbe": {}}],
     [("spec.template.spec.containers[0].readinessProbe", "Required value: must specify a handler type")]),
])
def test_pod_template(containers: list[dict[str, Any]], expected: list[tuple[str, str]]) -> None:
    assert causes("Deployment", workload("Deployment", {}, containers=containers)) == expected


def test_template_restart_policy_and_labels() -> None:
    obj = workload("Deployment", {})
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert causes("Deployment", obj) == [
        ("spec.template.spec.restartPolicy", 'Unsupported value: "Never": supported values: "Always"')]
    bad_label = workload("Deployment", {"selector": {"matchLabels": {"app": "web", "bad key!": "x"}}},
                         template_labels={"app": "web", "bad key!": "x"})
    fields = [f for f, _ in causes("Deployment", bad_label)]
    assert fields == ["spec.selector.matchLabels", "spec.template.labels"]


def test_selector_immutable_on_update() -> None:
    old = workload("Deployment", {})
    new = workload("Deployment", {"selector": {"matchLabels": {"app": "web2"}}},
                   template_labels={"app": "web2"})
    assert causes("Deployment", new, old) == [(
        "spec.selector", 'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web2"}, '
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable")]
    scaled = copy.deepcopy(old)
    scaled["spec"]["replicas"] = 5
    assert causes("Deployment", scaled, old) == []


def test_match_expressions() -> None:
    obj = workload("Deployment", {"selector": {"matchExpressions": [
        {"key": "app", "operator": "In", "values": ["web", "api"]},
        {"key": "tier", "operator": "DoesNotExist"}]}})
    assert causes("Deployment", obj) == []
    bad = workload("Deployment", {"selector": {"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "x", "operator": "In"}, {"key": "y", "operator": "Near"}]}})
    assert causes("Deployment", bad) == [
        ("spec.selector.matchExpressions[0].values",
         "Required value: must be specified when `operator` is 'In' or 'NotIn'"),
        ("spec.selector.matchExpressions[1].operator",
         'Invalid value: "Near": not a valid selector operator'),
        ("spec.template.metadata.labels",
         'Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`')]


def test_stateful_set_rules() -> None:
    obj = workload("StatefulSet", {"podManagementPolicy": "Random"})
    assert causes("StatefulSet", obj) == [
        ("spec.podManagementPolicy", "Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'")]
    old = workload("StatefulSet", {"serviceName": "web"})
    new = copy.deepcopy(old)
    new["spec"]["serviceName"] = "other"
    assert causes("StatefulSet", new, old) == [(
        "spec", "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                "'template', "
        "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")]


def test_daemon_set_strategy() -> None:
    obj = workload("DaemonSet", {"updateStrategy": {"type": "RollingUpdate",
                                                    "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}}})
    assert causes("DaemonSet", obj) == [(
        "spec.updateStrategy.rollingUpdate.maxSurge",
        'Invalid value: intstr.IntOrString{Type:0, IntVal:1, StrVal:""}: may not be set when '
        'maxUnavailable is '
        "non-zero")]
