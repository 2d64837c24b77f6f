"""ObjectMeta rules shared by every kind: names, labels, annotations, finalizers, immutables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from netplane.api.errors import FieldError, forbidden, invalid, required, too_long
from netplane.api.gofmt import GoValue, string_slice

from . import formats
from .access import as_dict, as_list, as_str
from .causes import each

NameFn = Callable[[str, bool], list[str]]

TOTAL_ANNOTATION_SIZE = 256 * 1024
STANDARD_FINALIZERS = ("kubernetes", "orphan", "foregroundDeletion")


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for key, value in as_dict(labels).items():
        errs += each(path, key, formats.qualified_name(key))
        if not isinstance(value, str):
            continue
        errs += each(path, value, formats.label_value(value))
    return errs


def validate_annotations(annotations: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    total = 0
    for key, value in as_dict(annotations).items():
        # Annotation keys are label keys compared case-insensitively.
        errs += each(path, key, formats.qualified_name(key.lower()))
        total += len(key.encode()) + len(as_str(value).encode())
    if total > TOTAL_ANNOTATION_SIZE:
        errs.append(too_long(path, "", TOTAL_ANNOTATION_SIZE))
    return errs


def _validate_finalizers(finalizers: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    names = [f for f in as_list(finalizers) if isinstance(f, str)]
    for name in names:
        errs += each(path, name, formats.qualified_name(name))
    if "orphan" in names and "foregroundDeletion" in names:
        errs.append(invalid(path, _go_strings(names),
                            "finalizer orphan and foregroundDeletion cannot be both set"))
    for i, name in enumerate(as_list(finalizers)):
        if isinstance(name, str) and "/" not in name and name not in STANDARD_FINALIZERS:
            errs.append(invalid(f"{path}[{i}]", name,
                                "name is neither a standard finalizer name nor is it fully qualified"))
    return errs


def _go_strings(values: list[str]) -> GoValue:
    return GoValue(string_slice(values))


def _validate_owner_references(refs: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    controllers: list[str] = []
    for ref in as_list(refs):
        ref = as_dict(ref)
        api_version = as_str(ref.get("apiVersion"))
        if not api_version or api_version.endswith("/"):
            errs.append(invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
        for key in ("kind", "name", "uid"):
            if not as_str(ref.get(key)):
                errs.append(invalid(f"{path}.{key}", as_str(ref.get(key)), "must not be empty"))
        if ref.get("controller") is True:
            controllers.append(f"{as_str(ref.get('kind'))}/{as_str(ref.get('name'))}")
    if len(controllers) > 1:
        errs.append(invalid(path, GoValue("[]v1.OwnerReference{...}"),
                            "Only one reference can have Controller set to true. Found \"true\" in "
                            f"references for {controllers[0]} and {controllers[1]}"))
    return errs


def validate_object_meta(meta: Any, name_fn: NameFn, path: str = "metadata",
                         namespaced: bool = True) -> list[FieldError]:
    """Create-time metadata rules.

    The namespace comes from the request URL (the server fills it in), so it is only format-checked.
    """
    meta = as_dict(meta)
    errs: list[FieldError] = []
    generate_name = as_str(meta.get("generateName"))
    name = as_str(meta.get("name"))
    if generate_name:
        errs += each(f"{path}.generateName", generate_name, name_fn(generate_name, True))
    if not name:
        if not generate_name:
            errs.append(required(f"{path}.name", "name or generateName is required"))
    else:
        errs += each(f"{path}.name", name, name_fn(name, False))
    namespace = as_str(meta.get("namespace"))
    if namespaced and namespace:
        errs += each(f"{path}.namespace", namespace, formats.dns1123_label(namespace))
    generation = meta.get("generation")
    if isinstance(generation, int) and generation < 0:
        errs.append(invalid(f"{path}.generation", generation, formats.IS_NEGATIVE_MSG))
    errs += validate_labels(meta.get("labels"), f"{path}.labels")
    errs += validate_annotations(meta.get("annotations"), f"{path}.annotations")
    errs += _validate_owner_references(meta.get("ownerReferences"), f"{path}.ownerReferences")
    errs += _validate_finalizers(meta.get("finalizers"), f"{path}.finalizers")
    return errs


def validate_object_meta_update(new: Any, old: Any, path: str = "metadata") -> list[FieldError]:
    """Update-time metadata rules.

    A missing uid means "unchanged": the server copies it from the old object before validating.
    """
    new, old = as_dict(new), as_dict(old)
    errs: list[FieldError] = []
    if old.get("deletionTimestamp"):
        added = sorted(set(_strs(new.get("finalizers"))) - set(_strs(old.get("finalizers"))))
        if added:
            errs.append(forbidden(f"{path}.finalizers",
                                  "no new finalizers can be added if the object is being "
                                  "deleted, found new finalizers " + _go_strings(added).text))
    for key in ("name", "namespace", "uid"):
        new_value, old_value = as_str(new.get(key)), as_str(old.get(key))
        if key == "uid" and not new_value:
            continue
        if new_value != old_value:
            errs.append(invalid(f"{path}.{key}", new_value, "field is immutable"))
    errs += validate_labels(new.get("labels"), f"{path}.labels")
    errs += validate_annotations(new.get("annotations"), f"{path}.annotations")
    errs += _validate_owner_references(new.get("ownerReferences"), f"{path}.ownerReferences")
    errs += _validate_finalizers(new.get("finalizers"), f"{path}.finalizers")
    return errs


def _strs(value: Any) -> list[str]:
    return [v for v in as_list(value) if isinstance(v, str)]


def immutable(path: str, new: Any, old: Any, shown: Any = None) -> list[FieldError]:
    if new == old:
        return []
    return [invalid(path, new if shown is None else shown, "field is immutable")]
