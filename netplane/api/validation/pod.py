"""Pod specs, as found in Pods and in every workload's pod template."""

from __future__ import annotations

from typing import Any

from netplane.api.errors import (
    FieldError,
    duplicate,
    forbidden,
    invalid,
    not_supported,
    required,
)

from . import formats
from .access import as_dict, as_int, as_list, as_str
from .causes import each, not_found, one_of
from .meta import validate_annotations, validate_labels

PROTOCOLS = ["SCTP", "TCP", "UDP"]
_VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs", "iscsi",
    "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "downwardAPI",
    "fc",
    "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "projected",
    "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral", "image",
)
_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc", "sleep")


def validate_port_num_or_name(port: Any, path: str) -> list[FieldError]:
    if isinstance(port, str):
        return each(path, port, formats.port_name(port))
    num = as_int(port)
    num = 0 if num is None else num
    return each(path, num, formats.port_num(num))


def _nonnegative(value: Any, path: str) -> list[FieldError]:
    num = as_int(value)
    return [invalid(path, num, formats.IS_NEGATIVE_MSG)] if num is not None and num < 0 else []


def _validate_volumes(volumes: Any, path: str) -> tuple[set[str], list[FieldError]]:
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, vol in enumerate(as_list(volumes)):
        vol = as_dict(vol)
        vpath = f"{path}[{i}]"
        el: list[FieldError] = []
        sources = [k for k in _VOLUME_SOURCES if vol.get(k) is not None]
        if not sources:
            el.append(required(vpath, "must specify a volume type"))
        for extra in sources[1:]:
            el.append(forbidden(f"{vpath}.{extra}", "may not specify more than 1 volume type"))
        if sources and sources[0] == "configMap" and not as_str(as_dict(vol["configMap"]).get("name")):
            el.append(required(f"{vpath}.configMap.name"))
        if sources and sources[0] == "secret" and not as_str(as_dict(vol["secret"]).get("secretName")):
            el.append(required(f"{vpath}.secret.secretName"))
        if sources and sources[0] == "persistentVolumeClaim" and not as_str(
                as_dict(vol["persistentVolumeClaim"]).get("claimName")):
            el.append(required(f"{vpath}.persistentVolumeClaim.claimName"))
        name = as_str(vol.get("name"))
        if not name:
            el.append(required(f"{vpath}.name"))
        else:
            el += each(f"{vpath}.name", name, formats.dns1123_label(name))
        if name in names:
            el.append(duplicate(f"{vpath}.name", name))
        if not el:
            names.add(name)
        errs += el
    return names, errs


def _validate_ports(ports: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, port in enumerate(as_list(ports)):
        port = as_dict(port)
        ppath = f"{path}[{i}]"
        name = as_str(port.get("name"))
        if name:
            msgs = formats.port_name(name)
            if msgs:
                errs += each(f"{ppath}.name", name, msgs)
            elif name in names:
                errs.append(duplicate(f"{ppath}.name", name))
            else:
                names.add(name)
        container_port = as_int(port.get("containerPort")) or 0
        if container_port == 0:
            errs.append(required(f"{ppath}.containerPort"))
        else:
            errs += each(f"{ppath}.containerPort", container_port, formats.port_num(container_port))
        host_port = as_int(port.get("hostPort")) or 0
        if host_port:
            errs += each(f"{ppath}.hostPort", host_port, formats.port_num(host_port))
        errs += one_of(f"{ppath}.protocol", port.get("protocol"), PROTOCOLS)
    return errs


def _validate_env(env: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, var in enumerate(as_list(env)):
        var = as_dict(var)
        vpath = f"{path}[{i}]"
        name = as_str(var.get("name"))
        if not name:
            errs.append(required(f"{vpath}.name"))
        errs += each(f"{vpath}.name", name, formats.relaxed_env_var_name(name))
        value_from = var.get("valueFrom")
        if isinstance(value_from, dict):
            sources = [k for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
                       if value_from.get(k) is not None]
            fpath = f"{vpath}.valueFrom"
            if not sources:
                errs.append(invalid(fpath, "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                    "`configMapKeyRef` or `secretKeyRef`"))
            elif as_str(var.get("value")):
                errs.append(invalid(fpath, "", "may not be specified when `value` is not empty"))
            elif len(sources) > 1:
                errs.append(invalid(fpath, "", "may not have more than one field specified at a time"))
    return errs


def _validate_mounts(mounts: Any, volumes: set[str], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, mount in enumerate(as_list(mounts)):
        mount = as_dict(mount)
        mpath = f"{path}[{i}]"
        name = as_str(mount.get("name"))
        if not name:
            errs.append(required(f"{mpath}.name"))
        if name not in volumes:
            errs.append(not_found(f"{mpath}.name", name))
        mount_path = as_str(mount.get("mountPath"))
        if not mount_path:
            errs.append(required(f"{mpath}.mountPath"))
        if mount_path in seen:
            errs.append(invalid(f"{mpath}.mountPath", mount_path, "must be unique"))
        seen.add(mount_path)
    return errs


def _validate_handler(handler: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    count = 0
    for kind in _HANDLERS:
        action = handler.get(kind)
        if action is None:
            continue
        if count:
            errs.append(forbidden(f"{path}.{kind}", "may not specify more than 1 handler type"))
            continue
        count += 1
        action = as_dict(action)
        apath = f"{path}.{kind}"
        if kind == "exec" and not as_list(action.get("command")):
            errs.append(required(f"{apath}.command"))
        elif kind == "httpGet":
            if not as_str(action.get("path")):
                errs.append(required(f"{apath}.path"))
            errs += validate_port_num_or_name(action.get("port"), f"{apath}.port")
            scheme = as_str(action.get("scheme"))
            if scheme not in ("HTTP", "HTTPS"):
                errs.append(not_supported(f"{apath}.scheme", scheme, ["HTTP", "HTTPS"]))
        elif kind == "tcpSocket":
            errs += validate_port_num_or_name(action.get("port"), f"{apath}.port")
        elif kind == "grpc":
            port = as_int(action.get("port")) or 0
            errs += each(f"{apath}.port", port, formats.port_num(port))
    if count == 0:
        errs.append(required(path, "must specify a handler type"))
    return errs


def _validate_probe(probe: Any, path: str, single_success: bool) -> list[FieldError]:
    if not isinstance(probe, dict):
        return []
    errs = _validate_handler(probe, path)
    for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold",
                "failureThreshold"):
        errs += _nonnegative(probe.get(key), f"{path}.{key}")
    grace = as_int(probe.get("terminationGracePeriodSeconds"))
    if grace is not None and grace <= 0:
        errs.append(invalid(f"{path}.terminationGracePeriodSeconds", grace, "must be greater than 0"))
    success = as_int(probe.get("successThreshold"))
    if single_success and success != 1:
        errs.append(invalid(f"{path}.successThreshold", success or 0, "must be 1"))
    return errs


def _validate_container_common(c: dict[str, Any], volumes: set[str], names: set[str],
                               path: str) -> list[FieldError]:
    """What init and regular containers share; ``names`` (the pod's container names so far) gains this one."""
    errs: list[FieldError] = []
    name = as_str(c.get("name"))
    if not name:
        errs.append(required(f"{path}.name"))
    else:
        errs += each(f"{path}.name", name, formats.dns1123_label(name))
    if not as_str(c.get("image")):
        errs.append(required(f"{path}.image"))
    errs += one_of(f"{path}.terminationMessagePolicy", c.get("terminationMessagePolicy"),
                   ["File", "FallbackToLogsOnError"])
    errs += _validate_ports(c.get("ports"), f"{path}.ports")
    errs += _validate_env(c.get("env"), f"{path}.env")
    errs += _validate_mounts(c.get("volumeMounts"), volumes, f"{path}.volumeMounts")
    errs += one_of(f"{path}.imagePullPolicy", c.get("imagePullPolicy"), ["Always", "IfNotPresent", "Never"])
    if name in names:
        errs.append(duplicate(f"{path}.name", name))
    names.add(name)
    return errs


def _validate_containers(containers: Any, volumes: set[str], path: str) -> tuple[set[str], list[FieldError]]:
    names: set[str] = set()
    if not as_list(containers):
        return names, [required(path)]
    errs: list[FieldError] = []
    for i, c in enumerate(as_list(containers)):
        c = as_dict(c)
        cpath = f"{path}[{i}]"
        errs += _validate_container_common(c, volumes, names, cpath)
        errs += _validate_probe(c.get("livenessProbe"), f"{cpath}.livenessProbe", True)
        errs += _validate_probe(c.get("readinessProbe"), f"{cpath}.readinessProbe", False)
        errs += _validate_probe(c.get("startupProbe"), f"{cpath}.startupProbe", True)
        if c.get("restartPolicy") is not None:
            errs.append(forbidden(f"{cpath}.restartPolicy", "may not be set for non-init containers"))
    return names, errs


def _validate_init_containers(containers: Any, taken: set[str], volumes: set[str],
                              path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    names = set(taken)
    for i, c in enumerate(as_list(containers)):
        c = as_dict(c)
        cpath = f"{path}[{i}]"
        errs += _validate_container_common(c, volumes, names, cpath)
        restart = c.get("restartPolicy")
        if restart is not None and restart != "Always":
            errs.append(not_supported(f"{cpath}.restartPolicy", restart, ["Always"]))
    return errs


def validate_pod_spec(spec: Any, path: str) -> list[FieldError]:
    spec = as_dict(spec)
    errs: list[FieldError] = []
    if spec.get("terminationGracePeriodSeconds") is None:
        errs.append(required(f"{path}.terminationGracePeriodSeconds"))
    volumes, verrs = _validate_volumes(spec.get("volumes"), f"{path}.volumes")
    errs += verrs
    names, cerrs = _validate_containers(spec.get("containers"), volumes, f"{path}.containers")
    errs += cerrs
    errs += _validate_init_containers(spec.get("initContainers"), names, volumes, f"{path}.initContainers")
    errs += one_of(f"{path}.restartPolicy", spec.get("restartPolicy"), ["Always", "OnFailure", "Never"])
    dns_policy = spec.get("dnsPolicy")
    errs += one_of(f"{path}.dnsPolicy", dns_policy, ["ClusterFirstWithHostNet", "ClusterFirst", "Default",
                                                    "None"])
    errs += validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    if dns_policy == "None" and spec.get("dnsConfig") is None:
        errs.append(required(f"{path}.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None"))
    for i, gate in enumerate(as_list(spec.get("readinessGates"))):
        condition = as_str(as_dict(gate).get("conditionType"))
        errs += [invalid(f"{path}.readinessGates[{i}].conditionType", condition, m)
                 for m in formats.qualified_name(condition)]
    for key, check in (("serviceAccountName", formats.dns1123_subdomain), ("nodeName",
                                                                           formats.dns1123_subdomain)):
        value = as_str(spec.get(key))
        if value:
            errs += each(f"{path}.{key}", value, check(value))
    deadline = as_int(spec.get("activeDeadlineSeconds"))
    if deadline is not None and not 1 <= deadline <= 2147483647:
        errs.append(invalid(f"{path}.activeDeadlineSeconds", deadline, formats.inclusive_range_error(1,
                                                                                                     2147483647)))
    for key in ("hostname", "subdomain"):
        value = as_str(spec.get(key))
        if value:
            errs += each(f"{path}.{key}", value, formats.dns1123_label(value))
    return errs


def validate_pod_template(template: Any, path: str) -> list[FieldError]:
    """ValidatePodTemplateSpec.

    Kubernetes reports template labels at ``<path>.labels``, without ``metadata``.
    """
    template = as_dict(template)
    meta = as_dict(template.get("metadata"))
    errs = validate_labels(meta.get("labels"), f"{path}.labels")
    errs += validate_annotations(meta.get("annotations"), f"{path}.annotations")
    errs += validate_pod_spec(template.get("spec"), f"{path}.spec")
    if as_list(as_dict(template.get("spec")).get("ephemeralContainers")):
        errs.append(forbidden(f"{path}.spec.ephemeralContainers",
                              "ephemeral containers not allowed in pod template"))
    return errs
