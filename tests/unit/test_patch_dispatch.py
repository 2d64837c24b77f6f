"""Choosing the patch type from the request's Content-Type."""

from __future__ import annotations

from typing import Any

import pytest

from netplane.api.patch import PatchError, apply_patch, patch_types
from netplane.api.schemas import kind_schema

pytestmark = pytest.mark.unit

ORIGINAL: dict[str, Any] = {"metadata": {"name": "c", "finalizers": ["a"]}, "data": {"k": "v"}}
CONFIGMAP = kind_schema("", "v1", "ConfigMap")


@pytest.mark.parametrize(("content_type", "body", "expected_finalizers"), [
    ("application/merge-patch+json", {"metadata": {"finalizers": ["b"]}}, ["b"]),
    ("application/json-patch+json", [{"op": "add", "path": "/metadata/finalizers/-", "value": "b"}],
     ["a", "b"]),
    ("application/strategic-merge-patch+json", {"metadata": {"finalizers": ["b"]}}, ["b", "a"]),
    ("Application/Merge-Patch+JSON; charset=utf-8", {"metadata": {"finalizers": ["b"]}}, ["b"]),
])
def test_dispatch_by_content_type(content_type: str, body: Any, expected_finalizers: list[str]) -> None:
    result = apply_patch(content_type, ORIGINAL, body, CONFIGMAP)
    assert result["metadata"]["finalizers"] == expected_finalizers
    assert ORIGINAL["metadata"]["finalizers"] == ["a"]


def test_strategic_without_schema_is_415() -> None:
    with pytest.raises(PatchError) as caught:
        apply_patch("application/strategic-merge-patch+json", ORIGINAL, {}, None)
    assert caught.value.code == 415
    assert caught.value.reason == "UnsupportedMediaType"
    assert "strategic merge patch format is not supported" in caught.value.message


def test_merge_and_json_patch_need_no_schema() -> None:
    assert apply_patch("application/merge-patch+json", ORIGINAL, {"data": None}, None) == {
        "metadata": {"name": "c", "finalizers": ["a"]}}


@pytest.mark.parametrize("content_type",
                         ["application/apply-patch+yaml", "application/json", "text/plain", ""])
def test_other_content_types_are_415(content_type: str) -> None:
    with pytest.raises(PatchError) as caught:
        apply_patch(content_type, ORIGINAL, {}, None)
    assert caught.value.code == 415
    assert caught.value.message.startswith("the body of the request was in an unknown format")
    assert "strategic" not in caught.value.message


def test_415_lists_strategic_only_when_it_applies() -> None:
    with pytest.raises(PatchError) as caught:
        apply_patch("text/plain", ORIGINAL, {}, CONFIGMAP)
    assert "application/strategic-merge-patch+json" in caught.value.message
    assert patch_types(strategic=False) == ["application/json-patch+json", "application/merge-patch+json"]


def test_strategic_body_must_be_an_object() -> None:
    with pytest.raises(PatchError) as caught:
        apply_patch("application/strategic-merge-patch+json", ORIGINAL, [1], CONFIGMAP)
    assert caught.value.code == 400
