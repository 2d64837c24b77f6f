"""What admission checks for an Ingress of an ingress-nginx-compatible class, beyond Kubernetes' own validation:
annotations (names and reasons), paths as ingress-nginx validates them, the Ingress's own regular expressions and
rewrite captures, and duplicate access points (ING-3)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from netplane.api.errors import FieldError, invalid
from netplane.routing.ingress.annotations import PREFIX, AnnotationPolicy, parse_annotations
from netplane.routing.ingress.conflicts import find_conflicts
from netplane.routing.ingress.model import meta, paths
from netplane.routing.ingress.settings import ControllerSettings
from netplane.routing.regex import capture_references, group_count, pcre_problems

# ingress-nginx's strict-validate-path-type: Exact and Prefix paths are plain paths; regexes need
# ImplementationSpecific (with use-regex).
_PLAIN_PATH = re.compile(r"^/[A-Za-z0-9._\-/]*$")


@dataclass(frozen=True)
class AdmissionResult:
    errors: tuple[FieldError, ...]
    warnings: tuple[str, ...]


def review_ingress(ingress: Mapping[str, Any], existing: Iterable[Mapping[str, Any]],
                   settings: ControllerSettings | None = None, default_class: str | None = None) -> AdmissionResult:
    """Errors refuse the Ingress; warnings go back to the client (kubectl prints them)."""
    settings = settings or ControllerSettings()
    policy = AnnotationPolicy(allow_raw_snippets=settings.allow_snippet_annotations,
                              enable_ssl_passthrough=settings.enable_ssl_passthrough)
    parsed = parse_annotations(meta(ingress).annotations, policy)
    errors = list(parsed.errors)
    ann = parsed.values
    regex = ann.use_regex or ann.rewrite_target is not None
    for p in paths(ingress):
        if p.path_type in ("Exact", "Prefix"):
            if settings.strict_validate_path_type and not _PLAIN_PATH.match(p.path):
                errors.append(invalid(f"{p.field}.path", p.path,
                                      f"cannot be used with pathType {p.path_type}: only letters, digits and ._-/ are "
                                      "allowed (regular expressions need ImplementationSpecific with use-regex)"))
                continue
            pattern = "^" + re.escape(p.path)
        elif regex:
            pattern = "^" + p.path
            # Checked without the anchor so that positions in the message point into what the user wrote.
            problems = pcre_problems(p.path) or pcre_problems(pattern)
            if problems:
                errors.append(invalid(f"{p.field}.path", p.path, problems[0]))
                continue
        else:
            continue
        if ann.rewrite_target is not None:
            groups = group_count(pattern)
            beyond = [r for r in capture_references(ann.rewrite_target) if r > groups]
            if beyond:
                errors.append(invalid(f"metadata.annotations[{PREFIX}/rewrite-target]", ann.rewrite_target,
                                      f"refers to ${beyond[0]} but path {p.path!r} ({p.field}) has {groups} "
                                      "capture groups"))
    errors += [c.to_field_error() for c in find_conflicts(ingress, existing, default_class)]
    return AdmissionResult(tuple(errors), parsed.warnings)
