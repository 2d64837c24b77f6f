"""Defaulting and validation never crash on oddly shaped input; they report, or ignore, it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netplane.api.errors import FieldError
from netplane.api.validation import apply_defaults, default_service_ip_families, validate
from netplane.api.validation.defaults import DEFAULTERS

pytestmark = pytest.mark.unit

KINDS = sorted({*DEFAULTERS, ("", "ConfigMap"), ("", "Event"), ("events.k8s.io", "Event"), ("",
                                                                                            "ServiceAccount"),
                ("coordination.k8s.io", "Lease"), ("networking.k8s.io", "Ingress")})
KEYS = st.sampled_from(["spec", "ports", "port", "targetPort", "selector", "template", "containers", "name",
                        "rules", "http", "paths", "data", "type", "clusterIP", "clusterIPs", "subsets",
                        "endpoints", "addresses", "matchLabels", "metadata", "labels", "ingress", "from"])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70000) | st.sampled_from(["", "None", "a", "10.0.0.1",
                                                                          "x/y"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(KINDS), body=st.dictionaries(KEYS, JSON, max_size=5), old=st.booleans())
def test_never_raises(kind: tuple[str, str], body: dict[str, Any], old: bool) -> None:
    obj = {"metadata": {"name": "x"}, **body}
    apply_defaults(*kind, obj)
    if kind == ("", "Service"):
        default_service_ip_families(obj)
    errs = validate(*kind, obj, dict(obj) if old else None)
    assert all(isinstance(e, FieldError) for e in errs)


def test_stateful_set_names_are_labels() -> None:
    errs = validate("apps", "StatefulSet", {"metadata": {"name": "db.v1"}}, None)
    assert (errs[0].field, errs[0].message) == ("metadata.name",
                                                'Invalid value: "db.v1": must not contain dots')
