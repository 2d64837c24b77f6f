"""Values printed the way Go's fmt prints them in Kubernetes 1.32 error messages.

Field errors quote strings with ``%q``, print numbers and booleans with ``%v`` and
fall back to ``%#v`` for maps and slices, so that is what kubectl users see.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

_NAMED_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def go_quote(s: str) -> str:
    """Go's strconv.Quote: printable runes stay, the rest are escaped."""
    out = ['"']
    for ch in s:
        if ch in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[ch])
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def go_float(x: float) -> str:
    """``%v`` of a float64: shortest digits, exponent form from 1e+06 on or below 1e-4."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    sign = "-" if x < 0 else ""
    digits_t = Decimal(repr(abs(x))).normalize().as_tuple()
    digits = "".join(str(d) for d in digits_t.digits)
    exponent = int(digits_t.exponent)
    point = len(digits) + exponent  # position of the decimal point relative to the digits
    exp10 = point - 1
    if exp10 < -4 or exp10 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        esign = "+" if exp10 >= 0 else "-"
        return f"{sign}{mantissa}e{esign}{abs(exp10):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def go_number(x: int | float) -> str:
    return str(x) if isinstance(x, int) else go_float(x)


def go_sharp(value: Any) -> str:
    """``%#v`` of a value decoded from JSON into ``interface{}``."""
    if value is None:
        return "interface {}(nil)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return go_number(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, dict):
        inner = ", ".join(f"{go_quote(k)}:{go_sharp(value[k])}" for k in sorted(value))
        return "map[string]interface {}{" + inner + "}"
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(go_sharp(v) for v in value) + "}"
    return repr(value)


def go_value(value: Any) -> str:
    """The bad value of a field error as ``ErrorBody`` prints it (nil becomes the string "null")."""
    if value is None:
        return '"null"'
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return go_number(value)
    return go_sharp(value)


def go_type_name(value: Any) -> str:
    """The OpenAPI type name kube-openapi reports for a decoded JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
