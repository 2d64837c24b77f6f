"""Job validation (batch/v1): the checks every Job meets, not the whole of Kubernetes' rules.

Indexed completion, pod failure and success policies are stored as given and not checked.
"""

from __future__ import annotations

from typing import Any

from netplane.api.errors import FieldError, invalid, not_supported

from .access import as_dict, as_str
from .apps import _MISMATCH, _labels_value, _nonnegative, _template_labels, _validate_selector
from .label_selectors import selector_matches
from .pod import validate_pod_template

_RESTART_POLICIES = ["OnFailure", "Never"]


def validate_job_spec(spec: Any) -> list[FieldError]:
    spec = as_dict(spec)
    errs: list[FieldError] = []
    for name in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit"):
        errs += _nonnegative(spec.get(name), f"spec.{name}")
    errs += _validate_selector(spec, "job")
    if isinstance(spec.get("selector"), dict):
        labels = _template_labels(spec)
        if not selector_matches(spec.get("selector"), labels):
            errs.append(invalid("spec.template.metadata.labels", _labels_value(labels), _MISMATCH))
    errs += validate_pod_template(spec.get("template"), "spec.template")
    restart = as_str(as_dict(as_dict(spec.get("template")).get("spec")).get("restartPolicy"))
    if restart not in _RESTART_POLICIES:
        errs.append(not_supported("spec.template.spec.restartPolicy", restart, _RESTART_POLICIES))
    return errs
