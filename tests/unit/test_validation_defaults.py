"""Defaulting: whole objects compared with what a v1.32 API server stores."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from netplane.api.validation import apply_defaults, default_service_ip_families
from netplane.api.validation.defaults import drop_type_dependent_service_fields, image_pull_policy

pytestmark = pytest.mark.unit

CONTAINER_DEFAULTS = {"imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log",
                      "terminationMessagePolicy": "File"}
POD_SPEC_DEFAULTS = {"restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                     "schedulerName": "default-scheduler",
                     "terminationGracePeriodSeconds": 30, "securityContext": {}}


def defaulted(group: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    apply_defaults(group, kind, out)
    return out


def test_cluster_ip_service() -> None:
    svc = defaulted("", "Service", {"metadata": {"name": "web"},
                                    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    assert svc["spec"] == {
        "selector": {"app": "web"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
        "type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster"}
    svc["spec"]["clusterIP"] = "10.96.0.7"
    default_service_ip_families(svc)
    assert svc["spec"]["clusterIPs"] == ["10.96.0.7"]
    assert svc["spec"]["ipFamilyPolicy"] == "SingleStack"
    assert svc["spec"]["ipFamilies"] == ["IPv4"]


def test_load_balancer_service_with_client_ip_affinity() -> None:
    svc = defaulted("", "Service", {"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP",
                                             "ports": [{"port": 443, "targetPort": "https",
                                                        "protocol": "UDP"}]}})
    assert svc["spec"] == {
        "type": "LoadBalancer", "sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
        "ports": [{"port": 443, "targetPort": "https", "protocol": "UDP"}],
        "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster",
        "allocateLoadBalancerNodePorts": True}


def test_external_name_and_headless_services() -> None:
    ext = defaulted("", "Service", {"spec": {"type": "ExternalName", "externalName": "example.com"}})
    default_service_ip_families(ext)
    assert ext["spec"] == {"type": "ExternalName", "externalName": "example.com", "sessionAffinity": "None"}
    headless = defaulted("", "Service", {"spec": {"clusterIP": "None", "ports": [{"port": 80}]}})
    default_service_ip_families(headless)
    assert headless["spec"]["clusterIPs"] == ["None"]
    assert headless["spec"]["ipFamilyPolicy"] == "RequireDualStack"  # no selector
    assert headless["spec"]["ipFamilies"] == ["IPv4"]


def test_session_affinity_config_dropped_when_none() -> None:
    svc = defaulted("", "Service", {"spec": {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}}})
    assert "sessionAffinityConfig" not in svc["spec"]


def test_deployment() -> None:
    dep = defaulted("apps", "Deployment", {
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.25",
                                                       "ports": [{"containerPort": 80}]}]}}}})
    assert dep["spec"] == {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
            **POD_SPEC_DEFAULTS,
            "containers": [{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80,
                                                                             "protocol": "TCP"}],
                            **CONTAINER_DEFAULTS}]}}}


def test_recreate_deployment_gets_no_rolling_update() -> None:
    dep = defaulted("apps", "Deployment", {"spec": {"strategy": {"type": "Recreate"}}})
    assert dep["spec"]["strategy"] == {"type": "Recreate"}


def test_stateful_set() -> None:
    sts = defaulted("apps", "StatefulSet", {"spec": {"template": {"spec": {"containers": []}},
                                                     "volumeClaimTemplates": [
        {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}})
    assert sts["spec"] == {
        "podManagementPolicy": "OrderedReady",
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
        "replicas": 1, "revisionHistoryLimit": 10,
        "template": {"spec": {"containers": [], **POD_SPEC_DEFAULTS}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"},
                                  "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"},
                                  "status": {"phase": "Pending"}}]}


def test_daemon_set_and_replica_set() -> None:
    ds = defaulted("apps", "DaemonSet", {"spec": {"template": {"spec": {}}}})
    assert ds["spec"] == {"updateStrategy": {"type": "RollingUpdate",
                                             "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                          "revisionHistoryLimit": 10, "template": {"spec": POD_SPEC_DEFAULTS}}
    rs = defaulted("apps", "ReplicaSet", {"spec": {}})
    assert rs["spec"] == {"replicas": 1}


def test_pod_with_probe_volume_and_limits() -> None:
    pod = defaulted("", "Pod", {"spec": {
        "containers": [{"name": "c", "image": "busybox",
                        "resources": {"limits": {"cpu": "1"}},
                        "readinessProbe": {"httpGet": {"port": 8080}},
                        "env": [{"name": "NODE",
                                 "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}],
        "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "scratch"}]}})
    assert pod["spec"] == {
        **POD_SPEC_DEFAULTS, "enableServiceLinks": True,
        "containers": [{
            "name": "c", "image": "busybox", **CONTAINER_DEFAULTS, "imagePullPolicy": "Always",
            "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}},
            "readinessProbe": {"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                               "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
            "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName",
                                                                "apiVersion": "v1"}}}],
        }],
        "volumes": [{"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}},
                    {"name": "scratch", "emptyDir": {}}],
        # DefaultTolerationSeconds (admission in Kubernetes): bare pods only, templates keep what they say.
        "tolerations": [{"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
                        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")]}


@pytest.mark.parametrize(("image", "policy"), [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("registry:5000/team/nginx", "Always"),
    ("nginx:1.25", "IfNotPresent"), ("registry:5000/nginx:v1", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"), ("nginx:latest@sha256:" + "b" * 64, "Always"),
])
def test_image_pull_policy(image: str, policy: str) -> None:
    assert image_pull_policy(image) == policy


def test_secret_namespace_network_policy_slice() -> None:
    assert defaulted("", "Secret", {"data": {}})["type"] == "Opaque"
    ns = defaulted("", "Namespace", {"metadata": {"name": "team-a"}})
    assert ns == {"metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "team-a"}},
                  "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
    np = defaulted("networking.k8s.io", "NetworkPolicy", {"spec": {"podSelector": {}, "egress": [
        {"ports": [{"port": 53}]}]}})
    assert np["spec"] == {"podSelector": {}, "egress": [{"ports": [{"port": 53, "protocol": "TCP"}]}],
                          "policyTypes": ["Ingress", "Egress"]}
    only_ingress = defaulted("networking.k8s.io", "NetworkPolicy", {"spec": {"podSelector": {}}})
    assert only_ingress["spec"]["policyTypes"] == ["Ingress"]
    eps = defaulted("discovery.k8s.io", "EndpointSlice", {"addressType": "IPv4", "ports": [{"port": 80}]})
    assert eps["ports"] == [{"port": 80, "name": "", "protocol": "TCP"}]


def test_ingress_path_type_is_not_defaulted() -> None:
    ing = {"spec": {"rules": [{"http": {"paths": [{"path": "/", "backend": {}}]}}]}}
    assert defaulted("networking.k8s.io", "Ingress", ing) == ing


def test_job_basics() -> None:
    job = defaulted("batch", "Job", {"spec": {"template": {"metadata": {"labels": {"app": "j"}},
                                                           "spec": {"restartPolicy": "Never"}}}})
    assert job["metadata"] == {"labels": {"app": "j"}}
    spec = dict(job["spec"])
    spec.pop("template")
    assert spec == {"completions": 1, "parallelism": 1, "backoffLimit": 6, "completionMode": "NonIndexed",
                    "suspend": False, "podReplacementPolicy": "TerminatingOrFailed"}


def test_type_changes_drop_what_the_old_type_left_behind() -> None:
    old = {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": True, "clusterIP": "10.96.0.5",
           "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}], "healthCheckNodePort": 31000,
           "externalTrafficPolicy": "Local"}
    to_node_port = {**old, "type": "NodePort", "ports": [dict(p) for p in old["ports"]]}
    drop_type_dependent_service_fields(to_node_port, old)
    assert "allocateLoadBalancerNodePorts" not in to_node_port and "healthCheckNodePort" not in to_node_port
    assert to_node_port["ports"][0]["nodePort"] == 30080  # still needed by a NodePort Service
    to_cluster_ip = {**old, "type": "ClusterIP", "ports": [dict(p) for p in old["ports"]]}
    drop_type_dependent_service_fields(to_cluster_ip, old)
    assert "nodePort" not in to_cluster_ip["ports"][0] and to_cluster_ip["clusterIP"] == "10.96.0.5"
    to_external = {**old, "type": "ExternalName", "externalName": "example.com"}
    drop_type_dependent_service_fields(to_external, old)
    assert "clusterIP" not in to_external
    # A value the client wrote anew is kept (and then validated).
    explicit = {**old, "type": "NodePort", "allocateLoadBalancerNodePorts": False}
    drop_type_dependent_service_fields(explicit, old)
    assert explicit["allocateLoadBalancerNodePorts"] is False
