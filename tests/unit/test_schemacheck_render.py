"""Go-style rendering of bad values in field errors."""

from __future__ import annotations

from typing import Any

import pytest

from netplane.api.schemacheck.render import go_float, go_value

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.5, "1.5"),
        (3.0, "3"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.5, "-2.5"),
    ],
)
def test_go_float(value: float, text: str) -> None:
    assert go_float(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ('a"b\n', '"a\\"b\\n"'),
        (None, '"null"'),
        (True, "true"),
        (7, "7"),
        (
            {"b": [1, "x"], "a": None},
            'map[string]interface {}{"a":interface {}(nil), "b":[]interface {}{1, "x"}}',
        ),
    ],
)
def test_go_value(value: Any, text: str) -> None:
    assert go_value(value) == text
