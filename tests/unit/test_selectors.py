from __future__ import annotations

import pytest

from netplane.api.errors import ApiError
from netplane.api.selectors import (
    fields_match,
    format_label_selector,
    parse_field_selector,
    parse_label_selector,
    selector_from_label_selector,
)

pytestmark = pytest.mark.unit

LABELS = {"app": "web", "tier": "front", "env": "prod"}


@pytest.mark.parametrize("text, expected", [
    ("", True),
    ("app=web", True),
    ("app==web", True),
    ("app!=web", False),
    ("app=db", False),
    ("missing!=x", True),
    ("tier in (front,back)", True),
    ("tier in (back)", False),
    ("tier notin (back)", True),
    ("missing notin (a)", True),
    ("app", True),
    ("!app", False),
    ("!missing", True),
    ("app=web,tier=front", True),
    ("app=web, tier in (back)", False),
    ("app=web,!missing,env", True),
])
def test_label_selector_matching(text: str, expected: bool) -> None:
    assert parse_label_selector(text).matches(LABELS) is expected


@pytest.mark.parametrize("text", ["a=b,,", "=x", "a in b"])
def test_malformed_label_selector_is_a_bad_request(text: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_label_selector(text)
    assert err.value.code == 400


def test_label_selector_objects_and_rendering() -> None:
    spec = {"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "back"]},
                                 {"key": "legacy", "operator": "DoesNotExist"}]}
    assert selector_from_label_selector(spec).matches(LABELS)
    assert not selector_from_label_selector(spec).matches({**LABELS, "legacy": "1"})
    assert format_label_selector(spec) == "app=web,tier in (back,front),!legacy"


def test_field_selectors() -> None:
    supported = frozenset({"metadata.name", "metadata.namespace", "spec.nodeName"})
    reqs = parse_field_selector("metadata.name=a,spec.nodeName!=n1", supported)
    assert fields_match(reqs, {"metadata.name": "a", "spec.nodeName": "n2"})
    assert not fields_match(reqs, {"metadata.name": "a", "spec.nodeName": "n1"})
    with pytest.raises(ApiError) as err:
        parse_field_selector("spec.bogus=1", supported)
    assert "field label not supported: spec.bogus" in err.value.message
