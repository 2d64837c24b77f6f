"""Namespace, Node, Lease and Event: kinds with little beyond their metadata to check."""

from __future__ import annotations

from typing import Any

from netplane.api.errors import FieldError, invalid, required

from . import formats
from .access import as_dict, as_int, as_list, as_str
from .causes import each, one_of

_STANDARD_FINALIZERS = ("kubernetes", "orphan", "foregroundDeletion")


def validate_namespace(obj: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    for name in as_list(as_dict(obj.get("spec")).get("finalizers")):
        name = as_str(name)
        errs += each("spec.finalizers", name, formats.qualified_name(name))
        if "/" not in name and name not in _STANDARD_FINALIZERS:
            errs.append(invalid("spec.finalizers", name,
                                "name is neither a standard finalizer name nor is it fully qualified"))
    return errs


_TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]


def validate_node(obj: dict[str, Any]) -> list[FieldError]:
    spec = as_dict(obj.get("spec"))
    errs: list[FieldError] = []
    cidrs = as_list(spec.get("podCIDRs"))
    for i, cidr in enumerate(cidrs):
        cidr = as_str(cidr)
        if formats.parse_cidr(cidr) is None:
            errs.append(invalid(f"spec.podCIDRs[{i}]", cidr, "must be a valid CIDR"))
    if len(cidrs) > 2:
        errs.append(invalid("spec.podCIDRs", len(cidrs), "may not contain more than 2 CIDRs"))
    for i, taint in enumerate(as_list(spec.get("taints"))):
        taint = as_dict(taint)
        tpath = f"spec.taints[{i}]"
        key = as_str(taint.get("key"))
        errs += each(f"{tpath}.key", key, formats.qualified_name(key))
        value = as_str(taint.get("value"))
        errs += each(f"{tpath}.value", value, formats.label_value(value))
        errs += one_of(f"{tpath}.effect", taint.get("effect"), _TAINT_EFFECTS)
    return errs


def validate_lease(obj: dict[str, Any]) -> list[FieldError]:
    spec = as_dict(obj.get("spec"))
    errs: list[FieldError] = []
    duration = as_int(spec.get("leaseDurationSeconds"))
    if duration is not None and duration <= 0:
        errs.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = as_int(spec.get("leaseTransitions"))
    if transitions is not None and transitions < 0:
        errs.append(invalid("spec.leaseTransitions", transitions, formats.IS_NEGATIVE_MSG))
    return errs


def validate_core_event(obj: dict[str, Any]) -> list[FieldError]:
    """Legacy (core/v1) events: the involved object must live in the event's namespace."""
    errs: list[FieldError] = []
    namespace = as_str(as_dict(obj.get("metadata")).get("namespace"))
    involved = as_str(as_dict(obj.get("involvedObject")).get("namespace"))
    if not obj.get("eventTime"):
        if not involved:
            if namespace not in ("", "default"):
                errs.append(invalid("involvedObject.namespace", involved, "does not match event.namespace"))
        elif namespace and namespace != involved:
            errs.append(invalid("involvedObject.namespace", involved, "does not match event.namespace"))
    return errs


def validate_events_event(obj: dict[str, Any]) -> list[FieldError]:
    """events.k8s.io/v1 events carry the fields the new API made mandatory."""
    errs: list[FieldError] = []
    if not obj.get("eventTime"):
        errs.append(required("eventTime"))
    kind = as_str(obj.get("type"))
    if kind not in ("Normal", "Warning"):
        errs.append(invalid("type", "", f"has invalid value: {kind}"))
    for key in ("reportingController", "reportingInstance", "action", "reason"):
        if not as_str(obj.get(key)):
            errs.append(required(key))
    return errs
