"""Kubernetes v1.32 defaulting for built-in kinds, applied in place to JSON-shaped objects.

These mirror the API server's ``SetDefaults_*`` functions (plus the few strategy steps that
always run before validation, such as syncing ``clusterIP``/``clusterIPs``), so that stored
objects read back exactly like a real cluster's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from . import rbac as _rbac
from .access import as_dict, as_list, as_str, ensure

Obj = dict[str, Any]

_DIGEST = re.compile(r"@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
_TAG = re.compile(r"[\w][\w.-]{0,127}")


def image_pull_policy(image: str) -> str:
    """``Always`` when the image resolves to the ``latest`` tag, else ``IfNotPresent``."""
    name = image
    digest = _DIGEST.search(name)
    if digest:
        name = name[: digest.start()]
    last = name.rsplit("/", 1)[-1]
    tag = ""
    if ":" in last:
        last, tag = last.rsplit(":", 1)
        if not _TAG.fullmatch(tag):
            return "IfNotPresent"  # an unparsable reference has no tag, so it is not "latest"
    if last != last.lower():
        return "IfNotPresent"
    if not tag and not digest:
        tag = "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


# --- core/v1 -----------------------------------------------------------------------------

def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                       ("failureThreshold", 3)):
        if not probe.get(key):
            probe[key] = value
    _default_http_get(probe.get("httpGet"))


def _default_http_get(action: Any) -> None:
    if isinstance(action, dict):
        if not action.get("path"):
            action["path"] = "/"
        if not action.get("scheme"):
            action["scheme"] = "HTTP"


def _default_env(env: Any) -> None:
    for var in as_list(env):
        field_ref = as_dict(as_dict(as_dict(var).get("valueFrom")).get("fieldRef"))
        if field_ref and not field_ref.get("apiVersion"):
            field_ref["apiVersion"] = "v1"


def _default_container(c: Obj) -> None:
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = image_pull_policy(as_str(c.get("image")))
    if not c.get("terminationMessagePath"):
        c["terminationMessagePath"] = "/dev/termination-log"
    if not c.get("terminationMessagePolicy"):
        c["terminationMessagePolicy"] = "File"
    for port in as_list(c.get("ports")):
        if isinstance(port, dict) and not port.get("protocol"):
            port["protocol"] = "TCP"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(probe))
    lifecycle = as_dict(c.get("lifecycle"))
    for hook in ("postStart", "preStop"):
        _default_http_get(as_dict(lifecycle.get(hook)).get("httpGet"))
    _default_env(c.get("env"))


_MODE_SOURCES = ("secret", "configMap", "downwardAPI", "projected")


def _default_volume(v: Obj) -> None:
    sources = [k for k in v if k != "name"]
    if not sources:
        v["emptyDir"] = {}
        return
    for key in _MODE_SOURCES:
        source = v.get(key)
        if isinstance(source, dict) and source.get("defaultMode") is None:
            source["defaultMode"] = 420
    for item in as_list(as_dict(v.get("downwardAPI")).get("items")):
        ref = as_dict(as_dict(item).get("fieldRef"))
        if ref and not ref.get("apiVersion"):
            ref["apiVersion"] = "v1"
    host_path = v.get("hostPath")
    if isinstance(host_path, dict) and "type" not in host_path:
        host_path["type"] = ""


def default_pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec plus the per-container, per-volume and per-probe defaults."""
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if not isinstance(spec.get("securityContext"), dict):
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    if not spec.get("schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in as_list(spec.get(key)):
            if isinstance(c, dict):
                _default_container(c)
    for v in as_list(spec.get("volumes")):
        if isinstance(v, dict):
            _default_volume(v)


def default_pod_template(template: Any) -> None:
    if isinstance(template, dict):
        default_pod_spec(ensure(template, "spec"))


# The DefaultTolerationSeconds admission plugin's (on by default in Kubernetes): a pod rides out a node
# that is not ready or unreachable for five minutes before the taint-based eviction deletes it.
NODE_PROBLEM_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
DEFAULT_TOLERATION_SECONDS = 300


def _tolerates_no_execute(toleration: Any, key: str) -> bool:
    t = as_dict(toleration)
    return as_str(t.get("key")) in ("", key) and as_str(t.get("effect")) in ("", "NoExecute")


def default_toleration_seconds(spec: Obj) -> None:
    """Adds each node-problem NoExecute toleration the pod lacks, with DEFAULT_TOLERATION_SECONDS;
    a pod that says anything about that taint (a DaemonSet's, say: no limit) keeps its own."""
    if spec.get("tolerations") is not None and not isinstance(spec["tolerations"], list):
        return  # validation refuses it; nothing sensible to add to
    tolerations = as_list(spec.get("tolerations"))
    missing = [key for key in NODE_PROBLEM_TAINTS if not any(_tolerates_no_execute(t, key) for t in tolerations)]
    if missing:
        spec["tolerations"] = [*tolerations, *({"key": key, "operator": "Exists", "effect": "NoExecute",
                                                 "tolerationSeconds": DEFAULT_TOLERATION_SECONDS} for key in missing)]


def _default_pod(obj: Obj) -> None:
    spec = ensure(obj, "spec")
    default_pod_spec(spec)
    # Pods only, not templates: Kubernetes adds them at admission, so a Deployment's template stays as written.
    default_toleration_seconds(spec)
    # Only bare Pods get requests copied from limits and service links on; templates do not.
    for key in ("containers", "initContainers"):
        for c in as_list(spec.get(key)):
            resources = as_dict(as_dict(c).get("resources"))
            limits = resources.get("limits")
            if isinstance(limits, dict) and limits:
                requests = ensure(resources, "requests")
                for name, qty in limits.items():
                    requests.setdefault(name, qty)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    # A new pod is Pending until a kubelet reports otherwise (Kubernetes sets it on create).
    status = ensure(obj, "status")
    if not status.get("phase"):
        status["phase"] = "Pending"


def _externally_accessible(spec: Obj) -> bool:
    kind = spec.get("type")
    return kind in ("LoadBalancer",
                    "NodePort") or (kind == "ClusterIP" and bool(as_list(spec.get("externalIPs"))))


def _default_service(obj: Obj) -> None:
    spec = ensure(obj, "spec")
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        client_ip = as_dict(as_dict(spec.get("sessionAffinityConfig")).get("clientIP"))
        if client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    for port in as_list(spec.get("ports")):
        if not isinstance(port, dict):
            continue
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    if _externally_accessible(spec) and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and spec["type"] in ("NodePort", "LoadBalancer",
                                                                      "ClusterIP"):
        spec["internalTrafficPolicy"] = "Cluster"
    if spec["type"] == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    # The strategy keeps clusterIP and clusterIPs in step before validation runs.
    cluster_ip = as_str(spec.get("clusterIP"))
    cluster_ips = as_list(spec.get("clusterIPs"))
    if cluster_ip and not cluster_ips:
        spec["clusterIPs"] = [cluster_ip]
    elif cluster_ips and not cluster_ip and isinstance(cluster_ips[0], str):
        spec["clusterIP"] = cluster_ips[0]


def default_service_ip_families(obj: Obj) -> None:
    """The IP-family fields the allocator fills once the cluster IP is known (single-stack IPv4/IPv6).

    Call after the cluster IP was allocated (or set to ``None``); ExternalName services get none.
    """
    spec = ensure(obj, "spec")
    if spec.get("type") == "ExternalName":
        return
    cluster_ip = as_str(spec.get("clusterIP"))
    if cluster_ip and not as_list(spec.get("clusterIPs")):
        spec["clusterIPs"] = [cluster_ip]
    ips = [ip for ip in as_list(spec.get("clusterIPs")) if isinstance(ip, str)]
    if not ips:
        return
    headless = ips == ["None"]
    if spec.get("ipFamilyPolicy") is None:
        # A headless service without selector asks for every family the cluster has.
        no_selector = not as_dict(spec.get("selector"))
        spec["ipFamilyPolicy"] = "RequireDualStack" if headless and no_selector and not as_list(
            spec.get("ipFamilies")) else "SingleStack"
    if not as_list(spec.get("ipFamilies")):
        if headless:
            spec["ipFamilies"] = ["IPv4"]
        else:
            spec["ipFamilies"] = ["IPv6" if ":" in ip else "IPv4" for ip in ips]


def _default_endpoints(obj: Obj) -> None:
    for subset in as_list(obj.get("subsets")):
        for port in as_list(as_dict(subset).get("ports")):
            if isinstance(port, dict) and not port.get("protocol"):
                port["protocol"] = "TCP"


def _default_secret(obj: Obj) -> None:
    if not obj.get("type"):
        obj["type"] = "Opaque"


def _default_namespace(obj: Obj) -> None:
    name = as_str(as_dict(obj.get("metadata")).get("name"))
    if name:
        ensure(ensure(obj, "metadata"), "labels")["kubernetes.io/metadata.name"] = name
    spec = ensure(obj, "spec")
    if not as_list(spec.get("finalizers")):
        spec["finalizers"] = ["kubernetes"]
    status = ensure(obj, "status")
    if not status.get("phase"):
        status["phase"] = "Active"


def _default_node(obj: Obj) -> None:
    status = as_dict(obj.get("status"))
    if status.get("capacity") and status.get("allocatable") is None:
        status["allocatable"] = dict(status["capacity"])


# --- apps/v1 -----------------------------------------------------------------------------

def _default_deployment(obj: Obj) -> None:
    spec = ensure(obj, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = ensure(spec, "strategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = ensure(strategy, "rollingUpdate")
        for key in ("maxUnavailable", "maxSurge"):
            if rolling.get(key) is None:
                rolling[key] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    default_pod_template(spec.get("template"))


def _default_replica_set(obj: Obj) -> None:
    spec = ensure(obj, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    default_pod_template(spec.get("template"))


def _default_stateful_set(obj: Obj) -> None:
    spec = ensure(obj, "spec")
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = ensure(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        ensure(strategy, "rollingUpdate")
    rolling = strategy.get("rollingUpdate")
    if strategy["type"] == "RollingUpdate" and isinstance(rolling, dict) and rolling.get("partition") is None:
        rolling["partition"] = 0
    retention = ensure(spec, "persistentVolumeClaimRetentionPolicy")
    for key in ("whenDeleted", "whenScaled"):
        if not retention.get(key):
            retention[key] = "Retain"
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    default_pod_template(spec.get("template"))
    for claim in as_list(spec.get("volumeClaimTemplates")):
        if isinstance(claim, dict):
            claim_spec = ensure(claim, "spec")
            if not claim_spec.get("volumeMode"):
                claim_spec["volumeMode"] = "Filesystem"
            status = ensure(claim, "status")
            if not status.get("phase"):
                status["phase"] = "Pending"


def _default_daemon_set(obj: Obj) -> None:
    spec = ensure(obj, "spec")
    strategy = ensure(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = ensure(strategy, "rollingUpdate")
        if rolling.get("maxUnavailable") is None:
            rolling["maxUnavailable"] = 1
        if rolling.get("maxSurge") is None:
            rolling["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    default_pod_template(spec.get("template"))


# --- batch/v1 ----------------------------------------------------------------------------

def _default_job(obj: Obj) -> None:
    spec = ensure(obj, "spec")
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    template = as_dict(spec.get("template"))
    labels = as_dict(template.get("metadata")).get("labels")
    metadata = ensure(obj, "metadata")
    if isinstance(labels, dict) and labels and not metadata.get("labels"):
        metadata["labels"] = dict(labels)
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed"
    for rule in as_list(as_dict(spec.get("podFailurePolicy")).get("rules")):
        for cond in as_list(as_dict(rule).get("onPodConditions")):
            if isinstance(cond, dict) and not cond.get("status"):
                cond["status"] = "True"
    default_pod_template(template or None)


def _default_cron_job(obj: Obj) -> None:
    spec = ensure(obj, "spec")
    for key, value in (("concurrencyPolicy", "Allow"), ("suspend", False),
                       ("successfulJobsHistoryLimit", 3), ("failedJobsHistoryLimit", 1)):
        if spec.get(key) is None or spec.get(key) == "":
            spec[key] = value
    job_template = as_dict(spec.get("jobTemplate"))
    default_pod_template(as_dict(job_template.get("spec")).get("template"))


# --- networking, discovery ---------------------------------------------------------------

def _default_network_policy(obj: Obj) -> None:
    spec = ensure(obj, "spec")
    for direction in ("ingress", "egress"):
        for rule in as_list(spec.get(direction)):
            for port in as_list(as_dict(rule).get("ports")):
                if isinstance(port, dict) and not port.get("protocol"):
                    port["protocol"] = "TCP"
    if not as_list(spec.get("policyTypes")):
        # Any policy implies Ingress; Egress only once egress rules are given.
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if as_list(spec.get("egress")) else [])


def _default_ingress_class(obj: Obj) -> None:
    params = as_dict(as_dict(obj.get("spec")).get("parameters"))
    if params and not params.get("scope"):
        params["scope"] = "Cluster"


def _default_endpoint_slice(obj: Obj) -> None:
    for port in as_list(obj.get("ports")):
        if isinstance(port, dict):
            if port.get("name") is None:
                port["name"] = ""
            if port.get("protocol") is None:
                port["protocol"] = "TCP"


DEFAULTERS: dict[tuple[str, str], Callable[[Obj], None]] = {
    ("", "Pod"): _default_pod,
    ("", "PodTemplate"): lambda o: default_pod_template(o.get("template")),
    ("", "Service"): _default_service,
    ("", "Endpoints"): _default_endpoints,
    ("", "Secret"): _default_secret,
    ("", "Namespace"): _default_namespace,
    ("", "Node"): _default_node,
    ("apps", "Deployment"): _default_deployment,
    ("apps", "ReplicaSet"): _default_replica_set,
    ("apps", "StatefulSet"): _default_stateful_set,
    ("apps", "DaemonSet"): _default_daemon_set,
    ("batch", "Job"): _default_job,
    ("batch", "CronJob"): _default_cron_job,
    ("networking.k8s.io", "NetworkPolicy"): _default_network_policy,
    ("networking.k8s.io", "IngressClass"): _default_ingress_class,
    ("discovery.k8s.io", "EndpointSlice"): _default_endpoint_slice,
    ("rbac.authorization.k8s.io", "RoleBinding"): _rbac.default_subjects,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _rbac.default_subjects,
}


def apply_defaults(group: str, kind: str, obj: Obj) -> None:
    defaulter = DEFAULTERS.get((group, kind))
    if defaulter is not None:
        defaulter(obj)


def drop_type_dependent_service_fields(spec: Obj, old_spec: Obj) -> None:
    """What a Service update leaves behind when its type changes, cleared as the API server does — but only
    where the new object carries the old value unchanged (a value the client set anew is kept, and
    validated). Without this, turning a LoadBalancer into a NodePort by writing only `type` would fail on
    the defaulted allocateLoadBalancerNodePorts."""
    new_type, old_type = spec.get("type") or "ClusterIP", old_spec.get("type") or "ClusterIP"
    if new_type == old_type:
        return

    def unchanged(field: str) -> bool:
        return field in spec and spec.get(field) == old_spec.get(field)

    if new_type != "LoadBalancer":
        for field in ("allocateLoadBalancerNodePorts", "loadBalancerClass"):
            if unchanged(field):
                del spec[field]
    if new_type not in ("NodePort", "LoadBalancer"):
        old_ports = {(p.get("port"), p.get("protocol")): p.get("nodePort") for p in old_spec.get("ports") or []}
        for port in spec.get("ports") or []:
            if port.get("nodePort") and old_ports.get((port.get("port"), port.get("protocol"))) == port["nodePort"]:
                del port["nodePort"]
    if unchanged("healthCheckNodePort") and not (new_type == "LoadBalancer"
                                                 and spec.get("externalTrafficPolicy") == "Local"):
        del spec["healthCheckNodePort"]
    if new_type == "ExternalName":
        for field in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if unchanged(field):
                del spec[field]
