"""Workload validation (apps/v1): Deployment, ReplicaSet, StatefulSet, DaemonSet."""

from __future__ import annotations

from typing import Any

from netplane.api.errors import FieldError, forbidden, invalid, not_supported, required
from netplane.api.gofmt import GoValue, quote, string_map, struct_pointer

from . import formats
from .access import as_dict, as_int, as_str
from .causes import each
from .gorender import int_or_string, label_selector
from .label_selectors import selector_is_empty, selector_matches, validate_label_selector
from .meta import validate_annotations, validate_labels
from .pod import validate_pod_spec, validate_pod_template

_MISMATCH = "`selector` does not match template `labels`"


def _nonnegative(value: Any, path: str) -> list[FieldError]:
    num = as_int(value)
    return [invalid(path, num, formats.IS_NEGATIVE_MSG)] if num is not None and num < 0 else []


def _template_labels(spec: dict[str, Any]) -> Any:
    return as_dict(as_dict(spec.get("template")).get("metadata")).get("labels")


def _labels_value(labels: Any) -> GoValue:
    return GoValue(string_map(labels))


def _selector_value(selector: Any) -> GoValue:
    return GoValue(label_selector(selector))


def _validate_selector(spec: dict[str, Any], kind_word: str) -> list[FieldError]:
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        return [required("spec.selector")]
    errs = validate_label_selector(selector, "spec.selector")
    if selector_is_empty(selector):
        errs.append(invalid("spec.selector", _selector_value(selector),
                            f"empty selector is invalid for {kind_word}"))
    return errs


def _validate_template_for_replicas(spec: dict[str, Any], controller: str) -> list[FieldError]:
    """ValidatePodTemplateSpecForReplicaSet: the template must match the selector and always restart."""
    errs: list[FieldError] = []
    labels = _template_labels(spec)
    if not selector_matches(spec.get("selector"), labels):
        errs.append(invalid("spec.template.metadata.labels", _labels_value(labels), _MISMATCH))
    errs += validate_pod_template(spec.get("template"), "spec.template")
    errs += _always_restart(spec, controller)
    return errs


def _always_restart(spec: dict[str, Any], controller: str) -> list[FieldError]:
    pod_spec = as_dict(as_dict(spec.get("template")).get("spec"))
    errs: list[FieldError] = []
    restart = as_str(pod_spec.get("restartPolicy"))
    if restart != "Always":
        errs.append(not_supported("spec.template.spec.restartPolicy", restart, ["Always"]))
    deadline = as_int(pod_spec.get("activeDeadlineSeconds"))
    if deadline is not None:
        message = f"activeDeadlineSeconds in {controller} is not Supported"
        if controller == "StatefulSet":
            errs.append(forbidden("spec.template.spec.activeDeadlineSeconds", message))
        else:
            errs.append(invalid("spec.template.spec.activeDeadlineSeconds", deadline, message))
    return errs


def _percent_value(value: Any) -> tuple[int, bool]:
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return int(value[:-1]), True
    num = as_int(value)
    return (num or 0), False


def _positive_int_or_percent(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, str):
        return each(path, GoValue(int_or_string(value)), formats.percent(value))
    return _nonnegative(value, path)


def _not_over_100(value: Any, path: str) -> list[FieldError]:
    amount, is_percent = _percent_value(value)
    if is_percent and amount > 100:
        return [invalid(path, GoValue(int_or_string(value)), "must not be greater than 100%")]
    return []


def _validate_deployment_strategy(strategy: Any) -> list[FieldError]:
    strategy = as_dict(strategy)
    kind = as_str(strategy.get("type"))
    rolling = strategy.get("rollingUpdate")
    path = "spec.strategy"
    if kind == "Recreate":
        if rolling is not None:
            return [forbidden(f"{path}.rollingUpdate",
                              "may not be specified when strategy `type` is 'Recreate'")]
        return []
    if kind == "RollingUpdate":
        if not isinstance(rolling, dict):
            return [required(f"{path}.rollingUpdate", "this should be defaulted and never be nil")]
        errs: list[FieldError] = []
        unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
        errs += _positive_int_or_percent(unavailable, f"{path}.rollingUpdate.maxUnavailable")
        errs += _positive_int_or_percent(surge, f"{path}.rollingUpdate.maxSurge")
        if _percent_value(unavailable)[0] == 0 and _percent_value(surge)[0] == 0:
            errs.append(invalid(f"{path}.rollingUpdate.maxUnavailable", GoValue(int_or_string(unavailable)),
                                "may not be 0 when `maxSurge` is 0"))
        errs += _not_over_100(unavailable, f"{path}.rollingUpdate.maxUnavailable")
        return errs
    shown = (f"apps.DeploymentStrategy{{Type:{quote(kind)}, "
             f"RollingUpdate:{struct_pointer('apps.RollingUpdateDeployment', rolling is not None)}}}")
    return [not_supported(path, GoValue(shown), ["Recreate", "RollingUpdate"])]


def validate_deployment_spec(spec: Any) -> list[FieldError]:
    spec = as_dict(spec)
    errs = _nonnegative(spec.get("replicas"), "spec.replicas")
    errs += _validate_selector(spec, "deployment")
    errs += _validate_template_for_replicas(spec, "ReplicaSet")
    errs += _validate_deployment_strategy(spec.get("strategy"))
    errs += _nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    errs += _nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    deadline = as_int(spec.get("progressDeadlineSeconds"))
    if deadline is not None:
        errs += _nonnegative(deadline, "spec.progressDeadlineSeconds")
        if deadline <= (as_int(spec.get("minReadySeconds")) or 0):
            errs.append(invalid("spec.progressDeadlineSeconds", deadline,
                                "must be greater than minReadySeconds"))
    return errs


def validate_replica_set_spec(spec: Any) -> list[FieldError]:
    spec = as_dict(spec)
    errs = _nonnegative(spec.get("replicas"), "spec.replicas")
    errs += _nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    # Kubernetes says "deployment" for ReplicaSets too.
    errs += _validate_selector(spec, "deployment")
    errs += _validate_template_for_replicas(spec, "ReplicaSet")
    return errs


def validate_stateful_set_spec(spec: Any) -> list[FieldError]:
    spec = as_dict(spec)
    errs: list[FieldError] = []
    policy = as_str(spec.get("podManagementPolicy"))
    if not policy:
        errs.append(required("spec.podManagementPolicy"))
    elif policy not in ("OrderedReady", "Parallel"):
        errs.append(invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    strategy = as_dict(spec.get("updateStrategy"))
    kind = as_str(strategy.get("type"))
    rolling = strategy.get("rollingUpdate")
    if not kind:
        errs.append(required("spec.updateStrategy"))
    elif kind == "OnDelete":
        if rolling is not None:
            errs.append(invalid("spec.updateStrategy.rollingUpdate",
                                GoValue(struct_pointer("apps.RollingUpdateStatefulSetStrategy", True)),
                                "only allowed for updateStrategy 'RollingUpdate'"))
    elif kind == "RollingUpdate":
        partition = as_int(as_dict(rolling).get("partition"))
        errs += _nonnegative(partition, "spec.updateStrategy.rollingUpdate.partition")
    else:
        shown = (f"apps.StatefulSetUpdateStrategy{{Type:{quote(kind)}, RollingUpdate:"
                 f"{struct_pointer('apps.RollingUpdateStatefulSetStrategy', rolling is not None)}}}")
        errs.append(invalid("spec.updateStrategy", GoValue(shown), "must be 'RollingUpdate' or 'OnDelete'"))
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if isinstance(retention, dict):
        for key in ("whenDeleted", "whenScaled"):
            value = as_str(retention.get(key))
            if value not in ("Retain", "Delete"):
                errs.append(not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{key}", value,
                                          ["Retain", "Delete"]))
    errs += _nonnegative(spec.get("replicas"), "spec.replicas")
    errs += _nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    errs += _validate_selector(spec, "statefulset")
    labels = _template_labels(spec)
    template_meta = as_dict(as_dict(spec.get("template")).get("metadata"))
    if not selector_matches(spec.get("selector"), labels):
        errs.append(invalid("spec.template.metadata.labels", _labels_value(labels), _MISMATCH))
    errs += validate_labels(labels, "spec.template.labels")
    errs += validate_annotations(template_meta.get("annotations"), "spec.template.annotations")
    errs += validate_pod_spec(as_dict(spec.get("template")).get("spec"), "spec.template.spec")
    errs += _always_restart(spec, "StatefulSet")
    return errs


def _validate_daemon_set_strategy(strategy: Any) -> list[FieldError]:
    strategy = as_dict(strategy)
    kind = as_str(strategy.get("type"))
    rolling = strategy.get("rollingUpdate")
    path = "spec.updateStrategy"
    if kind == "OnDelete":
        return []
    if kind != "RollingUpdate":
        shown = (f"apps.DaemonSetUpdateStrategy{{Type:{quote(kind)}, "
                 f"RollingUpdate:{struct_pointer('apps.RollingUpdateDaemonSet', rolling is not None)}}}")
        return [not_supported(path, GoValue(shown), ["RollingUpdate", "OnDelete"])]
    if not isinstance(rolling, dict):
        return [required(f"{path}.rollingUpdate")]
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    rpath = f"{path}.rollingUpdate"
    errs = _positive_int_or_percent(unavailable, f"{rpath}.maxUnavailable")
    errs += _positive_int_or_percent(surge, f"{rpath}.maxSurge")
    errs += _not_over_100(unavailable, f"{rpath}.maxUnavailable")
    errs += _not_over_100(surge, f"{rpath}.maxSurge")
    has_unavailable = _percent_value(unavailable)[0] != 0
    has_surge = _percent_value(surge)[0] != 0
    if has_unavailable and has_surge:
        errs.append(invalid(f"{rpath}.maxSurge", GoValue(int_or_string(surge)),
                            "may not be set when maxUnavailable is non-zero"))
    elif not has_unavailable and not has_surge:
        errs.append(invalid(f"{rpath}.maxUnavailable", GoValue(int_or_string(unavailable)),
                            "cannot be 0 when maxSurge is 0"))
    return errs


def validate_daemon_set_spec(spec: Any) -> list[FieldError]:
    spec = as_dict(spec)
    selector = spec.get("selector")
    errs = validate_label_selector(selector, "spec.selector")
    labels = _template_labels(spec)
    if not selector_matches(selector, labels):
        errs.append(invalid("spec.template.metadata.labels", _labels_value(labels), _MISMATCH))
    if isinstance(selector, dict) and selector_is_empty(selector):
        errs.append(invalid("spec.selector", _selector_value(selector),
                            "empty selector is invalid for daemonset"))
    errs += validate_pod_template(spec.get("template"), "spec.template")
    errs += _always_restart(spec, "DaemonSet")
    errs += _nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    errs += _nonnegative(spec.get("templateGeneration"), "spec.templateGeneration")
    errs += _validate_daemon_set_strategy(spec.get("updateStrategy"))
    errs += _nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    return errs


def validate_selector_unchanged(spec: Any, old_spec: Any) -> list[FieldError]:
    """apps/v1 forbids changing a workload's selector after creation."""
    new_sel, old_sel = as_dict(spec).get("selector"), as_dict(old_spec).get("selector")
    if new_sel == old_sel:
        return []
    shown = _selector_value(new_sel) if isinstance(new_sel, dict) else None
    return [invalid("spec.selector", shown, "field is immutable")]


_STS_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                "minReadySeconds")


def validate_stateful_set_update(spec: Any, old_spec: Any) -> list[FieldError]:
    rest_new = {k: v for k, v in as_dict(spec).items() if k not in _STS_MUTABLE}
    rest_old = {k: v for k, v in as_dict(old_spec).items() if k not in _STS_MUTABLE}
    if rest_new == rest_old:
        return []
    return [forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                      "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                      "'minReadySeconds' are forbidden")]
