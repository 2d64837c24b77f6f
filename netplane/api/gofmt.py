"""Values printed the way Go prints them in Kubernetes 1.32 messages and output.

The one place that knows Go's ``fmt`` verbs (``%v``, ``%#v``, ``%T``, ``%q``), how a float64
prints, how ``encoding/json`` writes and names JSON values, and how kube-openapi names their
types: error texts built from these read exactly as a real API server's do, so kubectl users
see the familiar wording.

Values here are "decoded JSON": dict, list, str, int, float, bool and None, standing for what
Go's ``encoding/json`` decodes into ``interface{}``.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

# --- strings ----------------------------------------------------------------------

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


def quote(s: str) -> str:
    """Go's ``%q`` (strconv.Quote): printable runes stay, the rest are escaped."""
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


# --- numbers ----------------------------------------------------------------------


def _shortest(value: float) -> tuple[str, str, int]:
    """Sign, shortest round-trip digits and decimal-point position of a finite, non-zero float."""
    sign, digits_t, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(str(d) for d in digits_t)
    return ("-" if sign else ""), digits, len(digits) + exponent


def _fixed(prefix: str, digits: str, point: int) -> str:
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return prefix + digits + "0" * (point - len(digits))
    return f"{prefix}{digits[:point]}.{digits[point:]}"


def _exponent(prefix: str, digits: str, point: int, pad_negative: bool) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    exp10 = point - 1
    width = 2 if exp10 >= 0 or pad_negative else 1
    return f"{prefix}{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):0{width}d}"


def format_float(x: float) -> str:
    """``%v`` of a float64: shortest digits, exponent form from 1e+06 on or below 1e-04."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    prefix, digits, point = _shortest(x)
    if point - 1 < -4 or point - 1 >= 6:
        return _exponent(prefix, digits, point, pad_negative=True)
    return _fixed(prefix, digits, point)


def format_number(x: int | float) -> str:
    """``%v`` of a number: an int as its digits, a float as a float64."""
    return str(x) if isinstance(x, int) else format_float(x)


# --- fmt verbs on decoded JSON ----------------------------------------------------


def format_v(value: Any) -> str:
    """``%v`` of decoded JSON, numbers as written (a whole float loses its ``.0``)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        items = " ".join(f"{k}:{format_v(value[k])}" for k in sorted(value))
        return f"map[{items}]"
    if isinstance(value, list):
        return "[" + " ".join(format_v(v) for v in value) + "]"
    return str(value)


def format_sharp_v(value: Any) -> str:
    """``%#v`` of decoded JSON held in an ``interface{}``."""
    if value is None:
        return "interface {}(nil)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format_number(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, dict):
        inner = ", ".join(f"{quote(k)}:{format_sharp_v(value[k])}" for k in sorted(value))
        return "map[string]interface {}{" + inner + "}"
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(format_sharp_v(v) for v in value) + "}"
    return repr(value)


_GO_TYPES = {
    "null": "<nil>",
    "bool": "bool",
    "number": "float64",
    "string": "string",
    "array": "[]interface {}",
    "object": "map[string]interface {}",
}


def format_t(value: Any) -> str:
    """``%T`` of decoded JSON: the Go type it decodes to."""
    return _GO_TYPES[json_kind(value)]


def error_body_value(value: Any) -> str:
    """The bad value of a field error as ``field.Error.ErrorBody`` prints it: ``%q`` for a string,
    ``%v`` for a number or bool, ``%#v`` for the rest, but nil becomes the string "null"."""
    return '"null"' if value is None else format_sharp_v(value)


# --- %#v of typed Go values -------------------------------------------------------


class GoValue:
    """A value already rendered the way Go's ``%#v`` would print it.

    Field errors print anything that is not a plain scalar with ``str``, so wrapping a
    rendering in ``GoValue`` makes it appear verbatim.
    """

    def __init__(self, text: str):
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"GoValue({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GoValue) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def string_map(value: Any) -> str:
    """``%#v`` of a ``map[string]string`` (Go's fmt sorts map keys)."""
    if not isinstance(value, dict):
        return "map[string]string(nil)"
    body = ", ".join(f"{quote(str(k))}:{quote(str(v))}" for k, v in sorted(value.items()))
    return "map[string]string{" + body + "}"


def string_slice(value: Any, type_name: str = "string") -> str:
    """``%#v`` of a ``[]string`` (or a slice of another string type)."""
    if not isinstance(value, list):
        return f"[]{type_name}(nil)"
    return f"[]{type_name}{{" + ", ".join(quote(str(v)) for v in value) + "}"


def struct_pointer(type_name: str, present: bool) -> str:
    """``%#v`` of a struct pointer; a set one prints its address, for which any stable stand-in will do."""
    return f"(*{type_name})(0xc000000000)" if present else f"(*{type_name})(nil)"


# --- encoding/json ----------------------------------------------------------------


def json_kind(value: Any) -> str:
    """JSON's name for a value's type, as ``encoding/json`` reports it in an UnmarshalTypeError."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _json_float(value: float) -> str:
    # encoding/json switches to exponent form only outside [1e-6, 1e21) and trims "e-07" to "e-7".
    if value == 0:
        return "0" if not str(value).startswith("-") else "-0"
    prefix, digits, point = _shortest(value)
    if abs(value) < 1e-6 or abs(value) >= 1e21:
        return _exponent(prefix, digits, point, pad_negative=False)
    return _fixed(prefix, digits, point)


def _json_string(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        encoded = encoded.replace(raw, escaped)
    return encoded


def json_marshal(value: Any) -> str:
    """Compact JSON as Go's ``encoding/json`` writes it: sorted keys, HTML-safe escapes."""
    if isinstance(value, dict):
        items = (f"{_json_string(str(k))}:{json_marshal(v)}" for k, v in sorted(value.items()))
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(json_marshal(v) for v in value) + "]"
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, float):
        return _json_float(value)
    return json.dumps(value)


# --- kube-openapi -----------------------------------------------------------------


_OPENAPI_TYPES = {"null": "null", "bool": "boolean", "string": "string", "array": "array", "object": "object"}


def openapi_type_name(value: Any) -> str:
    """The OpenAPI type name kube-openapi reports for a decoded JSON value."""
    kind = json_kind(value)
    if kind == "number":
        return "integer" if isinstance(value, int) else "number"
    return _OPENAPI_TYPES[kind]
