"""The kubectl JSONPath dialect used by CRD printer columns."""

from __future__ import annotations

from typing import Any

import pytest

from netplane.api import jsonpath

pytestmark = pytest.mark.unit

DATA: dict[str, Any] = {
    "metadata": {"labels": {"app": "web", "app.kubernetes.io/name": "x"}},
    "spec": {"items": [{"n": 1, "k": "a"}, {"n": 2, "k": "b"}, {"n": 3}], "f": 1.5, "none": None},
    "status": {"conditions": [{"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}]},
}


@pytest.mark.parametrize(("path", "expected"), [
    (".metadata.labels.app", ["web"]),
    ("{.metadata.labels.app}", ["web"]),
    (r".metadata.labels.app\.kubernetes\.io/name", ["x"]),
    ("['metadata']['labels'].app", ["web"]),
    (".status.conditions[?(@.type==\"Ready\")].status", ["True"]),
    (".status.conditions[?(@.status)].type", ["A", "Ready"]),
    (".spec.items[?(@.k)].n", [1, 2]),
    (".spec.items[-1].n", [3]),
    (".spec.items[*].n", [1, 2, 3]),
    (".spec.items[0:2].n", [1, 2]),
    (".spec.items[0,2].n", [1, 3]),
    (".spec.items[::2].n", [1, 3]),
    ("..n", [1, 2, 3]),
    (".spec.missing.deeper", []),
    (".spec.none", [None]),
    (".spec.none.deeper", []),
])
def test_find(path: str, expected: list[Any]) -> None:
    assert jsonpath.find(path, DATA) == expected


@pytest.mark.parametrize("path", [
    ".spec.items[3]",                          # out of bounds
    ".spec.f[0]",                              # not a list
    ".spec.items[?(@.n==\"1\")]",              # int compared with a string
    ".spec.items[?(@.k==\"a\")]",              # third item has no k: nothing to compare
    ".spec[",                                  # unterminated
    ".spec.items[x]",                          # not an index
    "{range .spec.items[*]}{.n}{end}",         # templates are out of scope
])
def test_errors(path: str) -> None:
    with pytest.raises(jsonpath.JSONPathError):
        jsonpath.find(path, DATA)


@pytest.mark.parametrize(("value", "expected"), [
    ("text", "text"), (3, "3"), (True, "true"), (None, "<no value>"), (1.5, "1.5"), (1e6, "1e+06"),
    (123456.0, "123456"), (0.0001, "0.0001"), (0.00001, "1e-05"),
    (["a", "<b>"], '["a","\\u003cb\\u003e"]'),
    ({"z": 1, "a": [2.0, 0.000001, 1e-7, 1e21]}, '{"a":[2,0.000001,1e-7,1e+21],"z":1}'),
])
def test_to_text(value: Any, expected: str) -> None:
    assert jsonpath.to_text(value) == expected
