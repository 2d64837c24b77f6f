"""OpenAPI value validation of custom resources, as kube-openapi does it for the API server.

Paths are built like kube-openapi builds them (``spec.items[0].name``, map keys
joined with a dot), and each failure is turned into the field error the API
server makes of it. Errors that kube-openapi reports without a field name (the
``anyOf``/``oneOf``/``allOf``/``not`` summaries, number range checks) land on
the nil root path, printed ``<nil>``.
"""

from __future__ import annotations

import math
from typing import Any

import re2

from netplane.api.errors import FieldError
from netplane.api.gofmt import format_float, json_marshal, openapi_type_name, quote
from netplane.api.schemacheck import causes
from netplane.api.schemacheck.formats import effective_format, string_format_ok
from netplane.api.schemacheck.jsonvalues import MISSING, canonical, json_equal, numeric_equal

Schema = dict[str, Any]

_INT_LIMITS = {"int32": (-(2**31), 2**31 - 1), "": (-(2**63), 2**63 - 1), "int64": (-(2**63), 2**63 - 1)}
_FLOAT32_MAX = 3.4028234663852886e38


def validate_values(obj: Any, schema: Schema, old: Any = MISSING, prefix: str = "") -> list[FieldError]:
    """All schema violations of ``obj``; with ``old``, unchanged values are not re-judged.

    ``prefix`` is the field path the API server passes in (empty for a whole
    custom resource, ``…default`` when checking a schema's default value).
    """
    return _Walker(prefix).check(obj, schema, "", old)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _schema_types(schema: Schema) -> list[str]:
    if schema.get("x-kubernetes-int-or-string"):
        return ["integer", "string"]
    t = schema.get("type")
    return [t] if t else []


def _float_text(x: float) -> str:
    """strconv.FormatFloat(x, 'f', -1, 64): plain decimal, shortest digits."""
    if x == int(x) and abs(x) < 1e300:
        return str(int(x))
    text = repr(x)
    if "e" in text:
        return format(x, "f").rstrip("0").rstrip(".")
    return text


class _Walker:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    # Error placement ---------------------------------------------------------------

    def _field(self, name: str) -> str:
        name = name[1:] if name.startswith(".") else name
        if not name:
            return self.prefix or causes.ROOT
        return causes.child(self.prefix, name) if self.prefix else name

    def _root(self) -> str:
        return self.prefix or causes.ROOT

    # Traversal ---------------------------------------------------------------------

    def check(self, value: Any, s: Schema, path: str, old: Any) -> list[FieldError]:
        if old is not MISSING and json_equal(value, old):
            return []  # ratcheting: an unchanged value keeps whatever it was accepted with
        errs: list[FieldError] = []
        types = _schema_types(s)
        fmt = effective_format(s)
        if value is None:
            if types and not s.get("nullable", False):
                errs.append(self._type_error(path, ",".join(types), "null"))
            errs += self._enum(value, s, path)
            return errs
        if types or fmt:
            errs += self._type(value, types, fmt, path)
        errs += self._junctors(value, s, path)
        if isinstance(value, str):
            errs += self._string(value, s, path)
            if fmt and not string_format_ok(fmt, value):
                errs.append(
                    causes.type_invalid(
                        self._field(path), value, f"{path} in body must be of type {fmt}: {quote(value)}"
                    )
                )
        if _is_number(value):
            errs += self._number(value, s, types, fmt, path)
        if isinstance(value, list):
            errs += self._array(value, s, path, old)
        errs += self._enum(value, s, path)
        if isinstance(value, dict):
            errs += self._object(value, s, path, old)
        return errs

    def _type_error(self, path: str, expected: str, got: str) -> FieldError:
        return causes.type_invalid(
            self._field(path), got, f"{path} in body must be of type {expected}: {quote(got)}"
        )

    def _type(self, value: Any, types: list[str], fmt: str, path: str) -> list[FieldError]:
        actual = openapi_type_name(value)
        actual_format = "int64" if actual == "integer" else ("float64" if actual == "number" else "")
        float_int = actual == "number" and float(value).is_integer() and "integer" in types
        int_float = actual == "integer" and "number" in types
        scalar_kind = not isinstance(value, str | list)
        if scalar_kind and fmt and not (actual in types or actual_format == fmt or float_int or int_float):
            return [self._type_error(path, fmt, actual_format)]
        if not ("number" in types or "integer" in types) and fmt and not scalar_kind:
            return []  # kube-openapi lets strings and arrays through when a format is set
        if not (actual in types or float_int or int_float):
            return [self._type_error(path, ",".join(types), actual)]
        return []

    def _junctors(self, value: Any, s: Schema, path: str) -> list[FieldError]:
        errs: list[FieldError] = []
        quoted = quote(path)
        if s.get("anyOf"):
            results = [self.check(value, sub, path, MISSING) for sub in s["anyOf"]]
            if not any(not r for r in results):
                errs.append(
                    causes.invalid(self._root(), "", f"{quoted} must validate at least one schema (anyOf)")
                )
                errs += _fewest(results)
        if s.get("oneOf"):
            results = [self.check(value, sub, path, MISSING) for sub in s["oneOf"]]
            valid = sum(1 for r in results if not r)
            if valid != 1:
                extra = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
                errs.append(
                    causes.invalid(
                        self._root(), "", f"{quoted} must validate one and only one schema (oneOf). {extra}"
                    )
                )
                if valid == 0:
                    errs += _fewest(results)
        if s.get("allOf"):
            results = [self.check(value, sub, path, MISSING) for sub in s["allOf"]]
            valid = sum(1 for r in results if not r)
            for r in results:
                errs += r
            if valid != len(results):
                extra = ". None validated" if valid == 0 else ""
                errs.append(
                    causes.invalid(self._root(), "", f"{quoted} must validate all the schemas (allOf){extra}")
                )
        if isinstance(s.get("not"), dict) and not self.check(value, s["not"], path, MISSING):
            errs.append(causes.invalid(self._root(), "", f"{quoted} must not validate the schema (not)"))
        return errs

    def _string(self, value: str, s: Schema, path: str) -> list[FieldError]:
        # kube-openapi stops at the first failing string constraint.
        length = len(value)
        if s.get("maxLength") is not None and length > s["maxLength"]:
            return [causes.too_long(self._field(path), int(s["maxLength"]))]
        if s.get("minLength") is not None and length < s["minLength"]:
            return [
                causes.invalid(
                    self._field(path), value, f"{path} in body should be at least {s['minLength']} chars long"
                )
            ]
        pattern = s.get("pattern")
        if pattern:
            try:
                matched = re2.search(pattern, value) is not None
            except re2.error as exc:
                return [
                    causes.invalid(
                        self._field(path),
                        value,
                        f"{path} in body should match '{pattern}, but pattern is invalid: {exc}'",
                    )
                ]
            if not matched:
                return [causes.invalid(self._field(path), value, f"{path} in body should match '{pattern}'")]
        return []

    def _number(
        self, value: int | float, s: Schema, types: list[str], fmt: str, path: str
    ) -> list[FieldError]:
        errs: list[FieldError] = []
        type_name = types[0] if len(types) == 1 and types[0] in ("integer", "number") else ""
        num_fmt = fmt if type_name else ""
        if not self._in_range(value, type_name, num_fmt):
            errs.append(
                causes.invalid(self._root(), "", self._range_message("Checked", type_name, num_fmt, path))
            )
        multiple = s.get("multipleOf")
        if multiple is not None:
            errs += self._multiple_of(value, multiple, type_name, num_fmt, path)
        for bound_key, excl_key, is_max in (
            ("maximum", "exclusiveMaximum", True),
            ("minimum", "exclusiveMinimum", False),
        ):
            bound = s.get(bound_key)
            if bound is None:
                continue
            exclusive = bool(s.get(excl_key))
            if isinstance(value, int) and self._in_range(bound, type_name, num_fmt):
                limit: int | float = math.trunc(bound)
            else:
                limit = float(bound)
            failed = (
                (value >= limit if exclusive else value > limit)
                if is_max
                else (value <= limit if exclusive else value < limit)
            )
            if failed:
                if is_max:
                    word = "less than" if exclusive else "less than or equal to"
                else:
                    word = "greater than" if exclusive else "greater than or equal to"
                shown = str(limit) if isinstance(limit, int) else format_float(limit)
                errs.append(
                    causes.invalid(self._field(path), value, f"{path} in body should be {word} {shown}")
                )
        return errs

    @staticmethod
    def _in_range(value: int | float, type_name: str, fmt: str) -> bool:
        if type_name == "integer":
            if isinstance(value, float) and not value.is_integer():
                return False
            low, high = _INT_LIMITS.get(fmt, _INT_LIMITS[""])
            return low <= int(value) <= high
        if type_name == "number" and fmt == "float":
            return abs(float(value)) <= _FLOAT32_MAX
        return True

    @staticmethod
    def _range_message(prefix: str, type_name: str, fmt: str, path: str) -> str:
        if fmt:
            return f"{prefix} value must be of type {type_name} with format {fmt} in {path}"
        return f"{prefix} value must be of type {type_name} (default format) in {path}"

    def _multiple_of(
        self, value: int | float, factor: int | float, type_name: str, fmt: str, path: str
    ) -> list[FieldError]:
        errs: list[FieldError] = []
        factor_ok = self._in_range(factor, type_name, fmt)
        if not factor_ok:
            errs.append(
                causes.invalid(self._root(), "", self._range_message("MultipleOf", type_name, fmt, path))
            )
        if isinstance(value, int) and factor_ok:
            f_int = math.trunc(factor)
            if f_int <= 0:
                return [
                    *errs,
                    causes.invalid(
                        self._field(path),
                        f_int,
                        f"factor MultipleOf declared for {path} must be positive: {f_int}",
                    ),
                ]
            if value % f_int != 0:
                errs.append(
                    causes.invalid(
                        self._field(path), value, f"{path} in body should be a multiple of {f_int}"
                    )
                )
            return errs
        f_float = float(factor)
        if f_float <= 0:
            return [
                *errs,
                causes.invalid(
                    self._field(path),
                    f_float,
                    f"factor MultipleOf declared for {path} must be positive: {format_float(f_float)}",
                ),
            ]
        mult = (1 / f_float * value) if f_float < 1 else (value / f_float)
        if not (math.isfinite(mult) and float(mult).is_integer()):
            errs.append(
                causes.invalid(
                    self._field(path), value, f"{path} in body should be a multiple of {format_float(f_float)}"
                )
            )
        return errs

    def _array(self, value: list[Any], s: Schema, path: str, old: Any) -> list[FieldError]:
        errs: list[FieldError] = []
        items = s.get("items")
        if isinstance(items, dict):
            olds = _correlate_items(value, s, old)
            for i, item in enumerate(value):
                errs += self.check(item, items, f"{path}[{i}]", olds[i])
        size = len(value)
        if s.get("minItems") is not None and size < s["minItems"]:
            errs.append(
                causes.invalid(
                    self._field(path), size, f"{path} in body should have at least {s['minItems']} items"
                )
            )
        if s.get("maxItems") is not None and size > s["maxItems"]:
            errs.append(causes.too_many(self._field(path), size, int(s["maxItems"])))
        if s.get("uniqueItems"):
            seen = [canonical(v) for v in value]
            if len(set(seen)) != len(seen):
                errs.append(
                    causes.invalid(self._field(path), "", f"{path} in body shouldn't contain duplicates")
                )
        return errs

    def _enum(self, value: Any, s: Schema, path: str) -> list[FieldError]:
        enum = s.get("enum")
        if not enum:
            return []
        if value is not None and any(numeric_equal(value, e) for e in enum):
            return []
        if value is None and any(e is None for e in enum):
            return []
        supported = [e if isinstance(e, str) else json_marshal(e) for e in enum]
        return [causes.not_supported(self._field(path), value, supported)]

    def _object(self, value: dict[str, Any], s: Schema, path: str, old: Any) -> list[FieldError]:
        errs: list[FieldError] = []
        size = len(value)
        props: dict[str, Schema] = s.get("properties") or {}
        old_map = old if isinstance(old, dict) else {}
        if s.get("minProperties") is not None and size < s["minProperties"]:
            errs.append(
                causes.invalid(
                    self._field(path),
                    size,
                    f"{path} in body should have at least {s['minProperties']} properties",
                )
            )
        if s.get("maxProperties") is not None and size > s["maxProperties"]:
            errs.append(causes.too_many(self._field(path), size, int(s["maxProperties"])))
        additional = s.get("additionalProperties")
        if additional is False:
            for k in value:
                if k not in props:
                    errs.append(
                        causes.invalid(self._field(path), k, f"{path}.{k} in body is a forbidden property")
                    )
        elif isinstance(additional, dict):
            for k, v in value.items():
                if k not in props:
                    errs += self.check(v, additional, f"{path}.{k}", old_map.get(k, MISSING))
        for name, sub in props.items():
            if name in value:
                child = f"{path}.{name}" if path else name
                errs += self.check(value[name], sub, child, old_map.get(name, MISSING))
        for name in s.get("required") or []:
            if name not in value:
                errs.append(causes.required(self._field(f"{path}.{name}")))
        return errs


def _fewest(results: list[list[FieldError]]) -> list[FieldError]:
    """The failing alternative to show: the one that came closest to passing."""
    best = results[0]
    for r in results[1:]:
        if len(r) < len(best):
            best = r
    return best


def _correlate_items(value: list[Any], s: Schema, old: Any) -> list[Any]:
    """Old counterparts of list items: only map-keyed and set lists can be matched up."""
    if not isinstance(old, list):
        return [MISSING] * len(value)
    list_type = s.get("x-kubernetes-list-type")
    if list_type == "map":
        keys = s.get("x-kubernetes-list-map-keys") or []

        def key_of(item: Any) -> Any:
            return canonical([item.get(k) for k in keys]) if isinstance(item, dict) else None

        by_key = {key_of(o): o for o in old if isinstance(o, dict)}
        return [by_key.get(key_of(v), MISSING) if isinstance(v, dict) else MISSING for v in value]
    if list_type == "set":
        present = {canonical(o) for o in old}
        return [v if canonical(v) in present else MISSING for v in value]
    return [MISSING] * len(value)


__all__ = ["validate_values"]
