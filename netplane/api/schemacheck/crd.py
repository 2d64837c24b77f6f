"""Defaulting and validation of ``apiextensions.k8s.io/v1`` CustomResourceDefinitions."""

from __future__ import annotations

import copy
import re
from typing import Any

from netplane.api.errors import FieldError
from netplane.api.gofmt import quote
from netplane.api.schemacheck import causes
from netplane.api.schemacheck.crdschema import version_schema_errors

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_PRINTER_TYPES = ["boolean", "date", "integer", "number", "string"]
_PRINTER_FORMATS = ["byte", "date", "date-time", "double", "float", "int32", "int64", "password"]

DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*"
    "[a-z0-9])?)*')"
)
DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


def crd_defaults(crd: dict[str, Any]) -> None:
    """Fill in what the API server defaults on a v1 CRD, in place."""
    spec = crd.setdefault("spec", {})
    names = spec.setdefault("names", {})
    kind = names.get("kind") or ""
    if kind and not names.get("listKind"):
        names["listKind"] = kind + "List"
    if kind and not names.get("singular"):
        names["singular"] = kind.lower()
    conversion = spec.setdefault("conversion", {})
    conversion.setdefault("strategy", "None")
    if conversion["strategy"] == "Webhook":
        conversion.setdefault("webhook", {}).setdefault("conversionReviewVersions", ["v1"])
    for version in spec.get("versions") or []:
        for column in version.get("additionalPrinterColumns") or []:
            column.setdefault("priority", 0)
    for version in spec.get("versions") or []:
        scale = (version.get("subresources") or {}).get("scale")
        if isinstance(scale, dict) and "labelSelectorPath" in scale and scale["labelSelectorPath"] is None:
            del scale["labelSelectorPath"]
    status = crd.setdefault("status", {})
    status.setdefault("acceptedNames", {"plural": "", "kind": ""})
    status.setdefault("storedVersions", [])
    status.setdefault("conditions", [])


def _dns1123_subdomain(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN.match(value):
        errs.append(DNS1123_SUBDOMAIN_MSG)
    return errs


def _dns1035_label(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _DNS1035_LABEL.match(value):
        errs.append(DNS1035_LABEL_MSG)
    return errs


def _go_versions(versions: list[Any]) -> str:
    """``%#v`` of the internal versions slice, minus what Go would print as pointer addresses."""
    shown = []
    for v in versions:
        v = v if isinstance(v, dict) else {}
        shown.append(
            "apiextensions.CustomResourceDefinitionVersion{"
            f"Name:{quote(str(v.get('name', '')))}, Served:{str(bool(v.get('served'))).lower()}, "
            f"Storage:{str(bool(v.get('storage'))).lower()}, "
            f"Deprecated:{str(bool(v.get('deprecated'))).lower()}, ...}}"
        )
    return "[]apiextensions.CustomResourceDefinitionVersion{" + ", ".join(shown) + "}"


def _versions_invalid(versions: list[Any], detail: str) -> FieldError:
    return FieldError(
        "FieldValueInvalid", "spec.versions", f"Invalid value: {_go_versions(versions)}: {detail}"
    )


def validate_crd(crd: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    """Everything the API server rejects a CRD for (create, or update when ``old`` is given).

    Server-side defaults are applied to a copy first, as the server validates
    the defaulted object.
    """
    crd = copy.deepcopy(crd)
    crd_defaults(crd)
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    errs = _metadata_name(crd, spec, names)
    errs += _group(spec.get("group") or "")
    errs += _enum("spec.scope", spec.get("scope") or "", ["Cluster", "Namespaced"])
    versions = spec.get("versions") or []
    seen: set[str] = set()
    unique = True
    for i, version in enumerate(versions):
        name = str(version.get("name") or "")
        unique = unique and name not in seen
        seen.add(name)
        errs += _version(version, f"spec.versions[{i}]")
    if not unique:
        errs.append(_versions_invalid(versions, "must contain unique version names"))
    if sum(1 for v in versions if v.get("storage")) != 1:
        errs.append(_versions_invalid(versions, "must have exactly one version marked as storage version"))
    errs += _names(names)
    errs += _conversion(spec.get("conversion"))
    if spec.get("preserveUnknownFields") and not ((old or {}).get("spec") or {}).get("preserveUnknownFields"):
        errs.append(
            causes.invalid(
                "spec.preserveUnknownFields",
                True,
                "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in "
                "spec.versions[*].schema instead",
            )
        )
    if old is not None and _established(old):
        old_spec = old.get("spec") or {}
        if spec.get("scope") != old_spec.get("scope"):
            errs.append(causes.invalid("spec.scope", spec.get("scope") or "", "field is immutable"))
        if names.get("kind") != (old_spec.get("names") or {}).get("kind"):
            errs.append(causes.invalid("spec.names.kind", names.get("kind") or "", "field is immutable"))
    return errs


def _established(crd: dict[str, Any]) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def _metadata_name(crd: dict[str, Any], spec: dict[str, Any], names: dict[str, Any]) -> list[FieldError]:
    name = str((crd.get("metadata") or {}).get("name") or "")
    if not name:
        return [causes.required("metadata.name", "name or generateName is required")]
    messages = _dns1123_subdomain(name)
    if name != f"{names.get('plural') or ''}.{spec.get('group') or ''}":
        messages.append('must be spec.names.plural+"."+spec.group')
    return [causes.invalid("metadata.name", name, m) for m in messages]


def _group(group: str) -> list[FieldError]:
    if not group:
        return [causes.required("spec.group")]
    problems = _dns1123_subdomain(group)
    if problems:
        return [causes.invalid("spec.group", group, ",".join(problems))]
    if "." not in group:
        return [causes.invalid("spec.group", group, "should be a domain with at least one dot")]
    return []


def _enum(path: str, value: str, accepted: list[str]) -> list[FieldError]:
    if not value:
        return [causes.required(path)]
    return [] if value in accepted else [causes.not_supported(path, value, accepted)]


def _version(version: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = str(version.get("name") or "")
    problems = _dns1035_label(name)
    if problems:
        errs.append(causes.invalid(f"{path}.name", name, ",".join(problems)))
    warning = version.get("deprecationWarning")
    if warning is not None:
        if not version.get("deprecated"):
            errs.append(
                causes.invalid(
                    f"{path}.deprecationWarning", warning, "can only be set for deprecated versions"
                )
            )
        elif len(warning) > 256:
            errs.append(
                causes.invalid(f"{path}.deprecationWarning", warning, "must be <= 256 characters long")
            )
        elif not warning:
            errs.append(causes.invalid(f"{path}.deprecationWarning", warning, "must not be an empty string"))
    subresources = version.get("subresources") or {}
    schema = (version.get("schema") or {}).get("openAPIV3Schema")
    if not isinstance(schema, dict):
        errs.append(causes.required(f"{path}.schema.openAPIV3Schema"))
    else:
        errs += version_schema_errors(schema, f"{path}.schema.openAPIV3Schema", "status" in subresources)
    errs += _scale(subresources.get("scale"), f"{path}.subresources")
    for i, column in enumerate(version.get("additionalPrinterColumns") or []):
        errs += _printer_column(column, f"{path}.additionalPrinterColumns[{i}]")
    return errs


def _simple_json_path(value: str, path: str) -> list[FieldError]:
    if not value:
        return [causes.invalid(path, value, "must not be empty")]
    if not value.startswith("."):
        return [causes.invalid(path, value, "must be a simple json path starting with .")]
    return []


def _scale(scale: Any, path: str) -> list[FieldError]:
    if not isinstance(scale, dict):
        return []
    errs: list[FieldError] = []
    for key, prefix, where in (
        ("specReplicasPath", (".spec.",), "under .spec"),
        ("statusReplicasPath", (".status.",), "under .status"),
    ):
        value = str(scale.get(key) or "")
        field = f"{path}.scale.{key}"
        if not value:
            errs.append(causes.required(field))
            continue
        problems = _simple_json_path(value, field)
        if problems:
            errs += problems
        elif not value.startswith(prefix):
            errs.append(causes.invalid(field, value, f"should be a json path {where}"))
    selector = scale.get("labelSelectorPath")
    if selector:
        field = f"{path}.scale.labelSelectorPath"
        problems = _simple_json_path(selector, field)
        if problems:
            errs += problems
        elif not selector.startswith((".spec.", ".status.")):
            errs.append(
                causes.invalid(field, selector, "should be a json path under either .spec or .status")
            )
    return errs


def _printer_column(column: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not column.get("name"):
        errs.append(causes.required(f"{path}.name"))
    ctype = column.get("type") or ""
    allowed = "must be one of " + ",".join(_PRINTER_TYPES)
    if not ctype:
        errs.append(causes.required(f"{path}.type", allowed))
    elif ctype not in _PRINTER_TYPES:
        errs.append(causes.invalid(f"{path}.type", ctype, allowed))
    fmt = column.get("format") or ""
    if fmt and fmt not in _PRINTER_FORMATS:
        errs.append(causes.invalid(f"{path}.format", fmt, "must be one of " + ",".join(_PRINTER_FORMATS)))
    json_path = column.get("jsonPath") or ""
    if not json_path:
        errs.append(causes.required(f"{path}.JSONPath"))
    else:
        errs += _simple_json_path(json_path, f"{path}.JSONPath")
    return errs


def _names(names: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    for key in ("plural", "singular", "kind", "listKind"):
        if not names.get(key):
            errs.append(causes.required(f"spec.names.{key}"))
    for key in ("plural", "singular"):
        value = str(names.get(key) or "")
        problems = _dns1035_label(value) if value else []
        if problems:
            errs.append(causes.invalid(f"spec.names.{key}", value, ",".join(problems)))
    for key in ("kind", "listKind"):
        value = str(names.get(key) or "")
        problems = _dns1035_label(value.lower()) if value else []
        if problems:
            errs.append(
                causes.invalid(
                    f"spec.names.{key}",
                    value,
                    "may have mixed case, but should otherwise match: " + ",".join(problems),
                )
            )
    for key in ("shortNames", "categories"):
        for i, value in enumerate(names.get(key) or []):
            problems = _dns1035_label(str(value))
            if problems:
                errs.append(causes.invalid(f"spec.names.{key}[{i}]", value, ",".join(problems)))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        errs.append(
            causes.invalid("spec.names.listKind", names["listKind"], "kind and listKind may not be the same")
        )
    return errs


def _conversion(conversion: Any) -> list[FieldError]:
    if not isinstance(conversion, dict):
        return []
    strategy = conversion.get("strategy") or ""
    errs = _enum("spec.conversion.strategy", strategy, ["None", "Webhook"])
    webhook = conversion.get("webhook")
    if strategy == "Webhook":
        client = (webhook or {}).get("clientConfig")
        if not isinstance(client, dict):
            errs.append(
                causes.required(
                    "spec.conversion.webhookClientConfig", "required when strategy is set to Webhook"
                )
            )
        elif ("url" in client) == ("service" in client):
            errs.append(
                causes.required(
                    "spec.conversion.webhookClientConfig", "exactly one of url or service is required"
                )
            )
        review = (webhook or {}).get("conversionReviewVersions") or []
        if not review:
            errs.append(causes.required("spec.conversion.conversionReviewVersions"))
        elif not any(v in ("v1", "v1beta1") for v in review):
            errs.append(
                causes.invalid(
                    "spec.conversion.conversionReviewVersions",
                    review,
                    "must include at least one of v1, v1beta1",
                )
            )
    elif webhook is not None and webhook.get("clientConfig") is not None:
        errs.append(
            causes.forbidden(
                "spec.conversion.webhookClientConfig", "should not be set when strategy is not set to Webhook"
            )
        )
    return errs
