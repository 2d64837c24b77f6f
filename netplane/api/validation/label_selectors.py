"""Label selectors: their validation and what they match."""

from __future__ import annotations

from typing import Any

from netplane.api.errors import FieldError, forbidden, invalid, required

from . import formats
from .access import as_dict, as_list, as_str
from .causes import each
from .meta import validate_labels


def validate_label_selector(selector: Any, path: str) -> list[FieldError]:
    if not isinstance(selector, dict):
        return []
    errs = validate_labels(selector.get("matchLabels"), f"{path}.matchLabels")
    for i, expr in enumerate(as_list(selector.get("matchExpressions"))):
        errs += _validate_requirement(as_dict(expr), f"{path}.matchExpressions[{i}]")
    return errs


def _validate_requirement(expr: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    operator = as_str(expr.get("operator"))
    values = as_list(expr.get("values"))
    if operator in ("In", "NotIn"):
        if not values:
            errs.append(required(f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
    elif operator in ("Exists", "DoesNotExist"):
        if values:
            errs.append(forbidden(f"{path}.values",
                                  "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
    else:
        errs.append(invalid(f"{path}.operator", operator, "not a valid selector operator"))
    key = as_str(expr.get("key"))
    errs += each(f"{path}.key", key, formats.qualified_name(key))
    for i, value in enumerate(values):
        if isinstance(value, str):
            errs += [invalid(f"{path}.values[{i}]", value, m) for m in formats.label_value(value)]
    return errs


def selector_is_empty(selector: Any) -> bool:
    sel = as_dict(selector)
    return not as_dict(sel.get("matchLabels")) and not as_list(sel.get("matchExpressions"))


def selector_matches(selector: Any, labels: Any) -> bool:
    """Whether a present selector selects ``labels``; a missing (null) selector selects nothing."""
    if not isinstance(selector, dict):
        return False
    labels = as_dict(labels)
    for key, value in as_dict(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for expr in as_list(selector.get("matchExpressions")):
        expr = as_dict(expr)
        key, operator = as_str(expr.get("key")), as_str(expr.get("operator"))
        values = as_list(expr.get("values"))
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True
