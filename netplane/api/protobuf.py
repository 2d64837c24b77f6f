"""Decode Kubernetes protobuf request bodies into the JSON-shaped dicts the server works on.

kubectl's typed clients (``kubectl create <generator>``, ``kubectl auth can-i|whoami``,
``kubectl create token``) send ``application/vnd.kubernetes.protobuf`` bodies::

    b"k8s\\x00" + runtime.Unknown{typeMeta(1){apiVersion(1), kind(2)}, raw(2),
                                 contentEncoding(3), contentType(4)}

where ``raw`` is the typed message. No Python package ships these message definitions, so
the few we need are described below in a compact declarative table (field numbers are
those of k8s.io/api and k8s.io/apimachinery ``generated.proto``, 1.32).

Go's gogo-protobuf marshaller writes every non-pointer field, so a decoded object is full of
explicit zero values (``hostPort: 0``, ``protocol: ""``) that a JSON body would not carry.
Fields Go tags ``omitempty`` are therefore dropped when they hold their zero value, so the
server's defaulting sees the same thing it sees for JSON input. Pointer fields are written
only when set, and keep their value even when it is zero (``replicas: 0`` is meaningful).
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

_MAGIC = b"k8s\x00"
_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
_INT64_WRAP = 1 << 64
_INT64_SIGN = 1 << 63


class ProtobufDecodeError(ValueError):
    """The body is not a well-formed Kubernetes protobuf object we know how to read."""


# --- the message table ------------------------------------------------------------------
#
# One entry per message: "<number> <jsonName> <type>[flags]; ...".
#   type:   str | int | bool | bytes (base64 in JSON) | time (meta.v1.Time, RFC 3339)
#           | intstr (IntOrString) | quantity | rawjson (FieldsV1) | strlist (ExtraValue)
#           | <MessageName>;  prefix "[]" = repeated, "{}" = map<string, type>
#   flags:  "?" = Go `omitempty` on a non-pointer field: drop the zero value
#           "^" = Go embedded struct with `json:",inline"`: merge into the parent (name "_")
# Fields not listed (statuses, cloud volume sources, affinity, ...) are skipped like
# unknown fields; kubectl's generators never send them.
_SCHEMA: dict[str, str] = {
    # meta.k8s.io/v1
    "ObjectMeta": "1 name str?; 2 generateName str?; 3 namespace str?; 4 selfLink str?; 5 uid str?; "
    "6 resourceVersion str?; 7 generation int?; 8 creationTimestamp time; 9 deletionTimestamp time; "
    "10 deletionGracePeriodSeconds int; 11 labels {}str; 12 annotations {}str; "
    "13 ownerReferences []OwnerReference; 14 finalizers []str; 17 managedFields []ManagedFieldsEntry",
    "OwnerReference": "5 apiVersion str; 1 kind str; 3 name str; 4 uid str; 6 controller bool; "
    "7 blockOwnerDeletion bool",
    "ManagedFieldsEntry": "1 manager str?; 2 operation str?; 3 apiVersion str?; 4 time time; "
    "6 fieldsType str?; 7 fieldsV1 rawjson; 8 subresource str?",
    "LabelSelector": "1 matchLabels {}str; 2 matchExpressions []LabelSelectorRequirement",
    "LabelSelectorRequirement": "1 key str; 2 operator str; 3 values []str",
    "FieldSelectorRequirement": "1 key str; 2 operator str; 3 values []str",
    "DeleteOptions": "1 gracePeriodSeconds int; 2 preconditions Preconditions; 3 orphanDependents bool; "
    "4 propagationPolicy str; 5 dryRun []str; 6 ignoreStoreReadErrorWithClusterBreakingPotential bool",
    "Preconditions": "1 uid str; 2 resourceVersion str",
    # core/v1
    "Namespace": "1 metadata ObjectMeta; 2 spec NamespaceSpec",
    "NamespaceSpec": "1 finalizers []str",
    "Pod": "1 metadata ObjectMeta; 2 spec PodSpec",
    "Service": "1 metadata ObjectMeta; 2 spec ServiceSpec",
    "ServiceSpec": "1 ports []ServicePort; 2 selector {}str; 3 clusterIP str?; 18 clusterIPs []str; "
    "4 type str?; 5 externalIPs []str; 7 sessionAffinity str?; 8 loadBalancerIP str?; "
    "9 loadBalancerSourceRanges []str; 10 externalName str?; 11 externalTrafficPolicy str?; "
    "12 healthCheckNodePort int?; 13 publishNotReadyAddresses bool?; "
    "14 sessionAffinityConfig SessionAffinityConfig; 19 ipFamilies []str; 17 ipFamilyPolicy str; "
    "20 allocateLoadBalancerNodePorts bool; 21 loadBalancerClass str; 22 internalTrafficPolicy str; "
    "23 trafficDistribution str",
    "ServicePort": "1 name str?; 2 protocol str?; 6 appProtocol str; 3 port int; 4 targetPort intstr?; "
    "5 nodePort int?",
    "SessionAffinityConfig": "1 clientIP ClientIPConfig",
    "ClientIPConfig": "1 timeoutSeconds int",
    "Secret": "1 metadata ObjectMeta; 5 immutable bool; 2 data {}bytes; 4 stringData {}str; 3 type str?",
    "ConfigMap": "1 metadata ObjectMeta; 4 immutable bool; 2 data {}str; 3 binaryData {}bytes",
    "ServiceAccount": "1 metadata ObjectMeta; 2 secrets []ObjectReference; "
    "3 imagePullSecrets []LocalObjectReference; 4 automountServiceAccountToken bool",
    "ObjectReference": "1 kind str?; 2 namespace str?; 3 name str?; 4 uid str?; 5 apiVersion str?; "
    "6 resourceVersion str?; 7 fieldPath str?",
    "LocalObjectReference": "1 name str?",
    "TypedLocalObjectReference": "1 apiGroup str; 2 kind str; 3 name str",
    "ResourceQuota": "1 metadata ObjectMeta; 2 spec ResourceQuotaSpec",
    "ResourceQuotaSpec": "1 hard {}quantity; 2 scopes []str; 3 scopeSelector ScopeSelector",
    "ScopeSelector": "1 matchExpressions []ScopedResourceSelectorRequirement",
    "ScopedResourceSelectorRequirement": "1 scopeName str; 2 operator str; 3 values []str",
    "PodTemplateSpec": "1 metadata ObjectMeta; 2 spec PodSpec",
    "PodSpec": "1 volumes []Volume; 20 initContainers []Container; 2 containers []Container; "
    "3 restartPolicy str?; 4 terminationGracePeriodSeconds int; 5 activeDeadlineSeconds int; "
    "6 dnsPolicy str?; 7 nodeSelector {}str; 8 serviceAccountName str?; 9 serviceAccount str?; "
    "21 automountServiceAccountToken bool; 10 nodeName str?; 11 hostNetwork bool?; 12 hostPID bool?; "
    "13 hostIPC bool?; 27 shareProcessNamespace bool; 14 securityContext PodSecurityContext; "
    "15 imagePullSecrets []LocalObjectReference; 16 hostname str?; 17 subdomain str?; "
    "19 schedulerName str?; 22 tolerations []Toleration; 23 hostAliases []HostAlias; "
    "24 priorityClassName str?; 25 priority int; 26 dnsConfig PodDNSConfig; 29 runtimeClassName str; "
    "30 enableServiceLinks bool; 31 preemptionPolicy str; 32 overhead {}quantity; "
    "35 setHostnameAsFQDN bool; 37 hostUsers bool; 40 resources ResourceRequirements",
    "Container": "1 name str; 2 image str?; 3 command []str; 4 args []str; 5 workingDir str?; "
    "6 ports []ContainerPort; 19 envFrom []EnvFromSource; 7 env []EnvVar; 8 resources ResourceRequirements; "
    "23 resizePolicy []ContainerResizePolicy; 24 restartPolicy str; 9 volumeMounts []VolumeMount; "
    "10 livenessProbe Probe; 11 readinessProbe Probe; 22 startupProbe Probe; 12 lifecycle Lifecycle; "
    "13 terminationMessagePath str?; 20 terminationMessagePolicy str?; 14 imagePullPolicy str?; "
    "15 securityContext SecurityContext; 16 stdin bool?; 17 stdinOnce bool?; 18 tty bool?",
    "ContainerPort": "1 name str?; 2 hostPort int?; 3 containerPort int; 4 protocol str?; 5 hostIP str?",
    "ContainerResizePolicy": "1 resourceName str; 2 restartPolicy str",
    "EnvVar": "1 name str; 2 value str?; 3 valueFrom EnvVarSource",
    "EnvVarSource": "1 fieldRef ObjectFieldSelector; 2 resourceFieldRef ResourceFieldSelector; "
    "3 configMapKeyRef ConfigMapKeySelector; 4 secretKeyRef SecretKeySelector",
    "ObjectFieldSelector": "1 apiVersion str?; 2 fieldPath str",
    "ResourceFieldSelector": "1 containerName str?; 2 resource str; 3 divisor quantity?",
    "ConfigMapKeySelector": "1 _ LocalObjectReference^; 2 key str; 3 optional bool",
    "SecretKeySelector": "1 _ LocalObjectReference^; 2 key str; 3 optional bool",
    "EnvFromSource": "1 prefix str?; 2 configMapRef ConfigMapEnvSource; 3 secretRef SecretEnvSource",
    "ConfigMapEnvSource": "1 _ LocalObjectReference^; 2 optional bool",
    "SecretEnvSource": "1 _ LocalObjectReference^; 2 optional bool",
    "ResourceRequirements": "1 limits {}quantity; 2 requests {}quantity; 3 claims []ResourceClaim",
    "ResourceClaim": "1 name str; 2 request str?",
    "VolumeMount": "1 name str; 2 readOnly bool?; 7 recursiveReadOnly str; 3 mountPath str; 4 subPath str?; "
    "5 mountPropagation str; 6 subPathExpr str?",
    "Volume": "1 name str; 2 _ VolumeSource^",
    "VolumeSource": "1 hostPath HostPathVolumeSource; 2 emptyDir EmptyDirVolumeSource; "
    "6 secret SecretVolumeSource; 10 persistentVolumeClaim PersistentVolumeClaimVolumeSource; "
    "16 downwardAPI DownwardAPIVolumeSource; 19 configMap ConfigMapVolumeSource; "
    "26 projected ProjectedVolumeSource",
    "HostPathVolumeSource": "1 path str; 2 type str",
    "EmptyDirVolumeSource": "1 medium str?; 2 sizeLimit quantity",
    "SecretVolumeSource": "1 secretName str?; 2 items []KeyToPath; 3 defaultMode int; 4 optional bool",
    "ConfigMapVolumeSource": "1 _ LocalObjectReference^; 2 items []KeyToPath; 3 defaultMode int; "
    "4 optional bool",
    "KeyToPath": "1 key str; 2 path str; 3 mode int",
    "PersistentVolumeClaimVolumeSource": "1 claimName str; 2 readOnly bool?",
    "DownwardAPIVolumeSource": "1 items []DownwardAPIVolumeFile; 2 defaultMode int",
    "DownwardAPIVolumeFile": "1 path str; 2 fieldRef ObjectFieldSelector; "
    "3 resourceFieldRef ResourceFieldSelector; 4 mode int",
    "ProjectedVolumeSource": "1 sources []VolumeProjection; 2 defaultMode int",
    "VolumeProjection": "1 secret SecretProjection; 2 downwardAPI DownwardAPIProjection; "
    "3 configMap ConfigMapProjection; 4 serviceAccountToken ServiceAccountTokenProjection",
    "SecretProjection": "1 _ LocalObjectReference^; 2 items []KeyToPath; 4 optional bool",
    "ConfigMapProjection": "1 _ LocalObjectReference^; 2 items []KeyToPath; 4 optional bool",
    "DownwardAPIProjection": "1 items []DownwardAPIVolumeFile",
    "ServiceAccountTokenProjection": "1 audience str?; 2 expirationSeconds int; 3 path str",
    "Probe": "1 _ ProbeHandler^; 2 initialDelaySeconds int?; 3 timeoutSeconds int?; 4 periodSeconds int?; "
    "5 successThreshold int?; 6 failureThreshold int?; 7 terminationGracePeriodSeconds int",
    "ProbeHandler": "1 exec ExecAction; 2 httpGet HTTPGetAction; 3 tcpSocket TCPSocketAction; "
    "4 grpc GRPCAction",
    "LifecycleHandler": "1 exec ExecAction; 2 httpGet HTTPGetAction; 3 tcpSocket TCPSocketAction; "
    "4 sleep SleepAction",
    "Lifecycle": "1 postStart LifecycleHandler; 2 preStop LifecycleHandler",
    "ExecAction": "1 command []str",
    "HTTPGetAction": "1 path str?; 2 port intstr; 3 host str?; 4 scheme str?; 5 httpHeaders []HTTPHeader",
    "HTTPHeader": "1 name str; 2 value str",
    "TCPSocketAction": "1 port intstr; 2 host str?",
    "GRPCAction": "1 port int; 2 service str",
    "SleepAction": "1 seconds int",
    "SecurityContext": "1 capabilities Capabilities; 2 privileged bool; 4 runAsUser int; 8 runAsGroup int; "
    "5 runAsNonRoot bool; 6 readOnlyRootFilesystem bool; 7 allowPrivilegeEscalation bool; "
    "9 procMount str; 11 seccompProfile SeccompProfile",
    "PodSecurityContext": "2 runAsUser int; 6 runAsGroup int; 3 runAsNonRoot bool; "
    "4 supplementalGroups []int; 12 supplementalGroupsPolicy str; 5 fsGroup int; "
    "9 fsGroupChangePolicy str; 10 seccompProfile SeccompProfile; 13 seLinuxChangePolicy str",
    "Capabilities": "1 add []str; 2 drop []str",
    "SeccompProfile": "1 type str; 2 localhostProfile str",
    "Toleration": "1 key str?; 2 operator str?; 3 value str?; 4 effect str?; 5 tolerationSeconds int",
    "HostAlias": "1 ip str; 2 hostnames []str",
    "PodDNSConfig": "1 nameservers []str; 2 searches []str; 3 options []PodDNSConfigOption",
    "PodDNSConfigOption": "1 name str?; 2 value str",
    # apps/v1
    "Deployment": "1 metadata ObjectMeta; 2 spec DeploymentSpec",
    "DeploymentSpec": "1 replicas int; 2 selector LabelSelector; 3 template PodTemplateSpec; "
    "4 strategy DeploymentStrategy; 5 minReadySeconds int?; 6 revisionHistoryLimit int; 7 paused bool?; "
    "9 progressDeadlineSeconds int",
    "DeploymentStrategy": "1 type str?; 2 rollingUpdate RollingUpdateDeployment",
    "RollingUpdateDeployment": "1 maxUnavailable intstr; 2 maxSurge intstr",
    # networking.k8s.io/v1
    "Ingress": "1 metadata ObjectMeta; 2 spec IngressSpec",
    "IngressSpec": "4 ingressClassName str; 1 defaultBackend IngressBackend; 2 tls []IngressTLS; "
    "3 rules []IngressRule",
    "IngressBackend": "4 service IngressServiceBackend; 3 resource TypedLocalObjectReference",
    "IngressServiceBackend": "1 name str; 2 port ServiceBackendPort",
    "ServiceBackendPort": "1 name str?; 2 number int?",
    "IngressTLS": "1 hosts []str; 2 secretName str?",
    "IngressRule": "1 host str?; 2 _ IngressRuleValue^",
    "IngressRuleValue": "1 http HTTPIngressRuleValue",
    "HTTPIngressRuleValue": "1 paths []HTTPIngressPath",
    "HTTPIngressPath": "1 path str?; 3 pathType str; 2 backend IngressBackend",
    # batch/v1
    "Job": "1 metadata ObjectMeta; 2 spec JobSpec",
    "JobSpec": "1 parallelism int; 2 completions int; 3 activeDeadlineSeconds int; 7 backoffLimit int; "
    "12 backoffLimitPerIndex int; 13 maxFailedIndexes int; 4 selector LabelSelector; "
    "5 manualSelector bool; 6 template PodTemplateSpec; 8 ttlSecondsAfterFinished int; "
    "9 completionMode str; 10 suspend bool; 14 podReplacementPolicy str; 15 managedBy str",
    "CronJob": "1 metadata ObjectMeta; 2 spec CronJobSpec",
    "CronJobSpec": "1 schedule str; 8 timeZone str; 2 startingDeadlineSeconds int; 3 concurrencyPolicy str?; "
    "4 suspend bool; 5 jobTemplate JobTemplateSpec; 6 successfulJobsHistoryLimit int; "
    "7 failedJobsHistoryLimit int",
    "JobTemplateSpec": "1 metadata ObjectMeta; 2 spec JobSpec",
    # rbac.authorization.k8s.io/v1
    "Role": "1 metadata ObjectMeta; 2 rules []PolicyRule",
    "ClusterRole": "1 metadata ObjectMeta; 2 rules []PolicyRule; 3 aggregationRule AggregationRule",
    "RoleBinding": "1 metadata ObjectMeta; 2 subjects []Subject; 3 roleRef RoleRef",
    "ClusterRoleBinding": "1 metadata ObjectMeta; 2 subjects []Subject; 3 roleRef RoleRef",
    "PolicyRule": "1 verbs []str; 2 apiGroups []str; 3 resources []str; 4 resourceNames []str; "
    "5 nonResourceURLs []str",
    "AggregationRule": "1 clusterRoleSelectors []LabelSelector",
    "Subject": "1 kind str; 2 apiGroup str?; 3 name str; 4 namespace str?",
    "RoleRef": "1 apiGroup str; 2 kind str; 3 name str",
    # authorization.k8s.io/v1
    "SelfSubjectAccessReview": "1 metadata ObjectMeta; 2 spec SelfSubjectAccessReviewSpec; "
    "3 status SubjectAccessReviewStatus",
    "SelfSubjectAccessReviewSpec": "1 resourceAttributes ResourceAttributes; "
    "2 nonResourceAttributes NonResourceAttributes",
    "ResourceAttributes": "1 namespace str?; 2 verb str?; 3 group str?; 4 version str?; 5 resource str?; "
    "6 subresource str?; 7 name str?; 8 fieldSelector FieldSelectorAttributes; "
    "9 labelSelector LabelSelectorAttributes",
    "NonResourceAttributes": "1 path str?; 2 verb str?",
    "FieldSelectorAttributes": "1 rawSelector str?; 2 requirements []FieldSelectorRequirement",
    "LabelSelectorAttributes": "1 rawSelector str?; 2 requirements []LabelSelectorRequirement",
    "SubjectAccessReviewStatus": "1 allowed bool; 4 denied bool?; 2 reason str?; 3 evaluationError str?",
    # authentication.k8s.io/v1
    "SelfSubjectReview": "1 metadata ObjectMeta; 2 status SelfSubjectReviewStatus",
    "SelfSubjectReviewStatus": "1 userInfo UserInfo",
    "UserInfo": "1 username str?; 2 uid str?; 3 groups []str; 4 extra {}strlist",
    "TokenRequest": "1 metadata ObjectMeta; 2 spec TokenRequestSpec; 3 status TokenRequestStatus",
    "TokenRequestSpec": "1 audiences []str; 4 expirationSeconds int; 3 boundObjectRef BoundObjectReference",
    "BoundObjectReference": "1 kind str?; 2 apiVersion str?; 3 name str?; 4 uid str?",
    "TokenRequestStatus": "1 token str; 2 expirationTimestamp time",
    # policy/v1
    "Eviction": "1 metadata ObjectMeta; 2 deleteOptions DeleteOptions",
    "PodDisruptionBudget": "1 metadata ObjectMeta; 2 spec PodDisruptionBudgetSpec",
    "PodDisruptionBudgetSpec": "1 minAvailable intstr; 2 selector LabelSelector; 3 maxUnavailable intstr; "
    "4 unhealthyPodEvictionPolicy str",
    # scheduling.k8s.io/v1
    "PriorityClass": "1 metadata ObjectMeta; 2 value int; 3 globalDefault bool?; 4 description str?; "
    "5 preemptionPolicy str",
}

# (apiVersion, kind) of a top-level object -> its message in _SCHEMA.
_KINDS: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "Namespace",
    ("v1", "Pod"): "Pod",
    ("v1", "Service"): "Service",
    ("v1", "Secret"): "Secret",
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "ServiceAccount"): "ServiceAccount",
    ("v1", "DeleteOptions"): "DeleteOptions",
    ("meta.k8s.io/v1", "DeleteOptions"): "DeleteOptions",
    ("apps/v1", "Deployment"): "Deployment",
    ("networking.k8s.io/v1", "Ingress"): "Ingress",
    ("batch/v1", "Job"): "Job",
    ("batch/v1", "CronJob"): "CronJob",
    ("v1", "ResourceQuota"): "ResourceQuota",
    ("policy/v1", "PodDisruptionBudget"): "PodDisruptionBudget",
    ("scheduling.k8s.io/v1", "PriorityClass"): "PriorityClass",
    ("rbac.authorization.k8s.io/v1", "Role"): "Role",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "ClusterRole",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "ClusterRoleBinding",
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): "SelfSubjectAccessReview",
    ("authentication.k8s.io/v1", "SelfSubjectReview"): "SelfSubjectReview",
    ("authentication.k8s.io/v1", "TokenRequest"): "TokenRequest",
    ("policy/v1", "Eviction"): "Eviction",
    ("policy/v1beta1", "Eviction"): "Eviction",
}

_SCALARS = frozenset({"str", "int", "bool", "bytes", "time", "intstr", "quantity", "rawjson", "strlist"})
_VARINT_TYPES = frozenset({"int", "bool"})


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    type: str
    repeated: bool = False
    is_map: bool = False
    omitempty: bool = False
    inline: bool = False


def _parse_field(spec: str) -> tuple[int, _Field]:
    number, name, type_ = spec.split()
    omitempty = type_.endswith("?")
    inline = type_.endswith("^")
    type_ = type_.rstrip("?^")
    repeated = type_.startswith("[]")
    is_map = type_.startswith("{}")
    type_ = type_[2:] if repeated or is_map else type_
    return int(number), _Field(name, type_, repeated, is_map, omitempty, inline)


def _parse_schema(schema: dict[str, str]) -> dict[str, dict[int, _Field]]:
    messages = {name: dict(_parse_field(f) for f in spec.split("; ")) for name, spec in schema.items()}
    for name, fields in messages.items():
        for field in fields.values():
            if field.type not in _SCALARS and field.type not in messages:
                raise AssertionError(f"protobuf table: {name}.{field.name} refers to unknown {field.type}")
    return messages


_MESSAGES = _parse_schema(_SCHEMA)


# --- wire format ------------------------------------------------------------------------


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    for shift in range(0, 70, 7):
        if pos >= len(data):
            raise ProtobufDecodeError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
    raise ProtobufDecodeError("varint longer than 10 bytes")


def _take(data: bytes, pos: int, size: int) -> tuple[bytes, int]:
    end = pos + size
    if end > len(data):
        have = len(data) - pos
        raise ProtobufDecodeError(f"truncated field: need {size} bytes at offset {pos}, have {have}")
    return data[pos:end], end


def _iter_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value): int for varints, raw bytes for the rest."""
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufDecodeError(f"invalid field number 0 at offset {pos}")
        value: int | bytes
        if wire == _VARINT:
            value, pos = _read_varint(data, pos)
        elif wire == _LEN:
            size, pos = _read_varint(data, pos)
            value, pos = _take(data, pos, size)
        elif wire == _FIXED64:
            value, pos = _take(data, pos, 8)
        elif wire == _FIXED32:
            value, pos = _take(data, pos, 4)
        else:
            # Groups (3, 4) are proto1 relics no Kubernetes type uses; 6 and 7 do not exist.
            raise ProtobufDecodeError(f"unsupported wire type {wire} for field {number}")
        yield number, wire, value


def _signed(value: int) -> int:
    # int32 and int64 negatives both travel as 64-bit two's complement varints.
    return value - _INT64_WRAP if value >= _INT64_SIGN else value


# --- values -----------------------------------------------------------------------------


def _expect(where: str, wire: int, want: int) -> None:
    if wire != want:
        raise ProtobufDecodeError(f"{where}: wire type {wire}, expected {want}")


def _text(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtobufDecodeError(f"{where}: invalid UTF-8 string") from exc


def _time(raw: bytes, where: str) -> str | None:
    fields = _fields_by_number(raw)
    seconds = _signed(_int_of(fields.get(1, 0), where))
    nanos = _int_of(fields.get(2, 0), where)
    if seconds == 0 and nanos == 0:
        return None  # Go's zero time, which JSON writes as null
    try:
        stamp = _dt.datetime.fromtimestamp(seconds, _dt.UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ProtobufDecodeError(f"{where}: time out of range ({seconds}s)") from exc
    # metav1.Time serialises at whole-second precision.
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def _int_or_string(raw: bytes, where: str) -> int | str:
    fields = _fields_by_number(raw)
    if _int_of(fields.get(1, 0), where) == 1:
        return _text(_bytes_of(fields.get(3, b""), where), where)
    return _signed(_int_of(fields.get(2, 0), where))


def _quantity(raw: bytes, where: str) -> str:
    return _text(_bytes_of(_fields_by_number(raw).get(1, b""), where), where)


def _raw_json(raw: bytes, where: str) -> Any:
    payload = _bytes_of(_fields_by_number(raw).get(1, b""), where)
    if not payload:
        return {}
    try:
        return json.loads(payload)
    except ValueError as exc:
        raise ProtobufDecodeError(f"{where}: FieldsV1 is not JSON") from exc


def _string_list(raw: bytes, where: str) -> list[str]:
    return [_text(_bytes_of(v, where), where) for n, _, v in _iter_fields(raw) if n == 1]


def _fields_by_number(raw: bytes) -> dict[int, int | bytes]:
    """Last-wins view of a small fixed message (Time, IntOrString, ...)."""
    return {number: value for number, _, value in _iter_fields(raw)}


def _int_of(value: int | bytes, where: str) -> int:
    if not isinstance(value, int):
        raise ProtobufDecodeError(f"{where}: expected a varint")
    return value


def _bytes_of(value: int | bytes, where: str) -> bytes:
    if not isinstance(value, bytes):
        raise ProtobufDecodeError(f"{where}: expected length-delimited bytes")
    return value


_LEN_DECODERS = {
    "str": _text,
    "bytes": lambda raw, where: base64.b64encode(raw).decode("ascii"),
    "time": _time,
    "intstr": _int_or_string,
    "quantity": _quantity,
    "rawjson": _raw_json,
    "strlist": _string_list,
}


def _value(type_: str, wire: int, raw: int | bytes, where: str) -> Any:
    if type_ in _VARINT_TYPES:
        _expect(where, wire, _VARINT)
        number = _int_of(raw, where)
        return number != 0 if type_ == "bool" else _signed(number)
    _expect(where, wire, _LEN)
    data = _bytes_of(raw, where)
    decoder = _LEN_DECODERS.get(type_)
    return decoder(data, where) if decoder else _message(data, type_)


def _packed(type_: str, raw: bytes, where: str) -> list[Any]:
    """proto3-style packed repeated numbers; gogo never writes them but the format allows it."""
    values, pos = [], 0
    while pos < len(raw):
        number, pos = _read_varint(raw, pos)
        values.append(_value(type_, _VARINT, number, where))
    return values


def _map_entry(field: _Field, raw: bytes, where: str) -> tuple[str, Any]:
    key, value = "", None
    for number, wire, item in _iter_fields(raw):
        if number == 1:
            _expect(f"{where} key", wire, _LEN)
            key = _text(_bytes_of(item, where), where)
        elif number == 2:
            value = _value(field.type, wire, item, f"{where}[{key!r}]")
    return key, (_zero(field.type) if value is None else value)


def _zero(type_: str) -> Any:
    zeros: dict[str, Any] = {"str": "", "bytes": "", "int": 0, "bool": False, "quantity": "0",
                             "intstr": 0, "strlist": []}
    return zeros.get(type_, {})


# --- messages ---------------------------------------------------------------------------


def _store(out: dict[str, Any], field: _Field, wire: int, raw: int | bytes, where: str) -> None:
    if field.is_map:
        _expect(where, wire, _LEN)
        key, value = _map_entry(field, _bytes_of(raw, where), where)
        out.setdefault(field.name, {})[key] = value
    elif field.repeated and wire == _LEN and field.type in _VARINT_TYPES:
        out.setdefault(field.name, []).extend(_packed(field.type, _bytes_of(raw, where), where))
    elif field.repeated:
        out.setdefault(field.name, []).append(_value(field.type, wire, raw, where))
    elif field.inline:
        out.update(_value(field.type, wire, raw, where))
    else:
        value = _value(field.type, wire, raw, where)
        if value is None:
            out.pop(field.name, None)  # a zero Time: absent, as for a JSON null
        else:
            out[field.name] = value


def _is_zero(field: _Field, value: Any) -> bool:
    # Go's `omitempty` test, per type; type-aware so that a string "0" survives.
    return type(value) is type(_zero(field.type)) and value == _zero(field.type)


def _message(data: bytes, type_name: str) -> dict[str, Any]:
    fields = _MESSAGES[type_name]
    out: dict[str, Any] = {}
    for number, wire, raw in _iter_fields(data):
        field = fields.get(number)
        if field is None:
            continue  # newer server/client field: ignore, as Go's unmarshaller does
        _store(out, field, wire, raw, f"{type_name}.{field.name}")
    for field in fields.values():
        if field.omitempty and field.name in out and _is_zero(field, out[field.name]):
            del out[field.name]
    return out


# --- envelope ---------------------------------------------------------------------------


def _str_at(fields: dict[int, int | bytes], number: int, where: str) -> str:
    return _text(_bytes_of(fields.get(number, b""), where), where)


def _envelope(body: bytes) -> tuple[str, str, bytes]:
    """Unwrap runtime.Unknown: (apiVersion, kind, raw message bytes)."""
    if not body.startswith(_MAGIC):
        raise ProtobufDecodeError("not a Kubernetes protobuf body: missing 'k8s\\x00' prefix")
    unknown: dict[int, int | bytes] = {}
    for number, wire, value in _iter_fields(body[len(_MAGIC):]):
        if number in (1, 2, 3, 4):
            _expect(f"runtime.Unknown field {number}", wire, _LEN)
            unknown[number] = value
    if 2 not in unknown:
        # A cut-off body can end cleanly after typeMeta; Go always writes raw.
        raise ProtobufDecodeError("protobuf envelope has no raw object")
    type_meta = _fields_by_number(_bytes_of(unknown.get(1, b""), "runtime.Unknown.typeMeta"))
    encoding = _str_at(unknown, 3, "runtime.Unknown.contentEncoding")
    if encoding:
        raise ProtobufDecodeError(f"unsupported contentEncoding {encoding!r}")
    content_type = _str_at(unknown, 4, "runtime.Unknown.contentType")
    if content_type not in ("", CONTENT_TYPE):
        raise ProtobufDecodeError(f"unsupported inner contentType {content_type!r}")
    api_version = _str_at(type_meta, 1, "TypeMeta.apiVersion")
    kind = _str_at(type_meta, 2, "TypeMeta.kind")
    return api_version, kind, _bytes_of(unknown[2], "runtime.Unknown.raw")


def decode(body: bytes) -> dict[str, Any]:
    """Decode a ``application/vnd.kubernetes.protobuf`` request body into a JSON-shaped dict.

    The result carries ``apiVersion`` and ``kind`` from the envelope's typeMeta. Raises
    ``ProtobufDecodeError`` for malformed bodies and for kinds missing from the table.
    """
    api_version, kind, raw = _envelope(bytes(body))
    if not kind or not api_version:
        raise ProtobufDecodeError("protobuf envelope has no apiVersion/kind")
    type_name = _KINDS.get((api_version, kind))
    if type_name is None:
        raise ProtobufDecodeError(f"protobuf decoding of {kind} in {api_version} is not supported")
    return {"apiVersion": api_version, "kind": kind, **_message(raw, type_name)}
