"""Service accounts in pods: Kubernetes' ServiceAccount admission, and the kube-root-ca.crt ConfigMap.

On create, a pod runs as ``spec.serviceAccountName`` (default ``default``), which must exist.
Unless the pod or its service account turns ``automountServiceAccountToken`` off, every container
and init container gets the account's credentials at `TOKEN_MOUNT_PATH` from one projected volume
``kube-api-access-<suffix>``: a token the node agent requests and renews, the cluster CA from the
namespace's kube-root-ca.crt ConfigMap, and the namespace. This is what client libraries' in-cluster
configuration reads, together with the KUBERNETES_SERVICE_HOST/PORT variables the agent sets.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from netplane.api.errors import ApiError
from netplane.api.objects import Obj, random_suffix

DEFAULT_SERVICE_ACCOUNT = "default"
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_VOLUME_PREFIX = "kube-api-access-"
# kube-apiserver's value: a token requested for exactly this lifetime marks a projected volume.
TOKEN_EXPIRATION_SECONDS = 3607
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
ROOT_CA_KEY = "ca.crt"
_DESCRIPTION = "kubernetes.io/description"
# The root-ca-cert-publisher's annotation, word for word.
_ROOT_CA_DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
                        "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
                        "guaranteed across distributions of Kubernetes clusters.")


def token_volume(name: str) -> Obj:
    return {"name": name, "projected": {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": ROOT_CA_KEY, "path": ROOT_CA_KEY}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}}


def _automount(spec: dict[str, Any], account: Obj) -> bool:
    # The pod's choice wins over its account's; both unset means mount.
    for choice in (spec.get("automountServiceAccountToken"), account.get("automountServiceAccountToken")):
        if isinstance(choice, bool):
            return choice
    return True


def _unused_name(taken: set[Any]) -> str:
    while (name := TOKEN_VOLUME_PREFIX + random_suffix()) in taken:
        pass
    return name


def _mount_token(spec: dict[str, Any]) -> None:
    volumes = spec.get("volumes") or []
    if not isinstance(volumes, list):
        return  # validation refuses the pod
    names = {v.get("name") for v in volumes if isinstance(v, dict)}
    # A spec copied from a running pod brings its token volume along: mount that one.
    existing = next((n for n in names if isinstance(n, str) and n.startswith(TOKEN_VOLUME_PREFIX)), None)
    name = existing or _unused_name(names)
    needed = False
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            if not isinstance(container, dict):
                continue
            mounts = container.get("volumeMounts") or []
            if not isinstance(mounts, list) or any(isinstance(m, dict) and m.get("mountPath") == TOKEN_MOUNT_PATH
                                                   for m in mounts):
                continue  # a mount of the user's own at that path wins
            container["volumeMounts"] = [*mounts, {"name": name, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}]
            needed = True
    if needed and existing is None:
        spec["volumes"] = [*volumes, token_volume(name)]


def admit_pod(pod: Obj, namespace: str, service_account: Callable[[str], Obj | None]) -> None:
    """Kubernetes' ServiceAccount admission of a new pod; ``service_account`` looks one up by name."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    name = spec.get("serviceAccountName") or spec.get("serviceAccount") or DEFAULT_SERVICE_ACCOUNT
    if not isinstance(name, str):
        return  # a type error the decoder reports
    # The deprecated serviceAccount field mirrors serviceAccountName, as Kubernetes' conversion keeps it.
    spec["serviceAccountName"] = spec["serviceAccount"] = name
    account = service_account(name)
    if account is None:
        pod_name = (pod.get("metadata") or {}).get("name", "")
        raise ApiError(403, "Forbidden", f'pods "{pod_name}" is forbidden: error looking up service account '
                       f'{namespace}/{name}: serviceaccount "{name}" not found', {"name": pod_name, "kind": "pods"})
    if _automount(spec, account):
        _mount_token(spec)
    pull_secrets = account.get("imagePullSecrets")
    if not spec.get("imagePullSecrets") and isinstance(pull_secrets, list) and pull_secrets:
        spec["imagePullSecrets"] = copy.deepcopy(pull_secrets)


def root_ca_configmap(ca_pem: str) -> Obj:
    return {"metadata": {"name": ROOT_CA_CONFIGMAP, "annotations": {_DESCRIPTION: _ROOT_CA_DESCRIPTION}},
            "data": {ROOT_CA_KEY: ca_pem}}


def with_root_ca(configmap: Obj, ca_pem: str) -> Obj | None:
    """``configmap`` put back to the published CA (other labels and annotations kept), None if it is."""
    annotations = (configmap.get("metadata") or {}).get("annotations") or {}
    if configmap.get("data") == {ROOT_CA_KEY: ca_pem} and annotations.get(_DESCRIPTION) and \
            not configmap.get("binaryData"):
        return None
    fixed = copy.deepcopy(configmap)
    fixed["data"] = {ROOT_CA_KEY: ca_pem}
    fixed.pop("binaryData", None)
    fixed["metadata"]["annotations"] = {**annotations, _DESCRIPTION: _ROOT_CA_DESCRIPTION}
    return fixed
