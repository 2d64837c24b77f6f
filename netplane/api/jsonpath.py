"""The JSONPath dialect kubectl and the API server use for printer columns.

Only what a single ``{...}`` action can hold is supported: fields (with ``\\.``
escapes), ``..`` recursion, ``*``, array indexes and slices, unions, ``['key']``
and ``[?(@.a == "b")]`` filters. ``range``/``end`` templates are out of scope.

Evaluation follows client-go with missing keys allowed: an absent field yields
no result rather than an error, but type mistakes (indexing a map, comparing a
string with a number) are errors, because that is what turns a server-side
printer cell into ``<none>`` on a real cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from netplane.api.gofmt import format_float, json_marshal


class JSONPathError(ValueError):
    """The expression does not parse, or cannot be evaluated against the data."""


@dataclass(frozen=True)
class Field:
    name: str


@dataclass(frozen=True)
class Wildcard:
    pass


@dataclass(frozen=True)
class Recursive:
    pass


@dataclass(frozen=True)
class Slice:
    start: int | None
    end: int | None
    step: int | None
    # `[i]` is a slice of one element; its end is only known relative to the start.
    single: bool = False


@dataclass(frozen=True)
class Literal:
    value: str | int | float | bool


@dataclass(frozen=True)
class Union:
    branches: tuple[tuple[Node, ...], ...]


@dataclass(frozen=True)
class Filter:
    left: tuple[Node, ...]
    operator: str
    right: tuple[Node, ...]


Node = Field | Wildcard | Recursive | Slice | Literal | Union | Filter

_TERMINATORS = frozenset(" \t\r\n.,[]$@{}")
_SLICE_RE = re.compile(r"^(-?\d*)(:-?\d*)?(:-?\d*)?$")
_DICT_KEY_RE = re.compile(r"^'([^']*)'$")
_FILTER_RE = re.compile(r"^([^!<>=]+)([!<>=]+)(.+?)$", re.DOTALL)
_NUMBER_RE = re.compile(r"[+-]?[0-9.]*")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.nodes: list[Node] = []

    def parse(self) -> tuple[Node, ...]:
        while self.pos < len(self.text):
            self._step()
        return tuple(self.nodes)

    def _rest(self) -> str:
        return self.text[self.pos:]

    def _step(self) -> None:
        rest = self._rest()
        if rest.startswith("[?("):
            self._filter()
        elif rest.startswith(".."):
            self._recursive()
        elif rest[0] in " @$":
            self.pos += 1
        elif rest[0] == "[":
            self._array()
        elif rest[0] in "\"'":
            self._quoted(rest[0])
        elif rest[0] == ".":
            self.pos += 1
            self._field()
        elif rest[0] in "+-" or rest[0].isdigit():
            self._number()
        elif rest[0] == "_" or rest[0].isalnum():
            self._identifier()
        else:
            raise JSONPathError(f"unrecognized character in action: {rest[0]!r}")

    def _recursive(self) -> None:
        if self.nodes and isinstance(self.nodes[-1], Recursive):
            raise JSONPathError("invalid multiple recursive descent")
        self.pos += 2
        self.nodes.append(Recursive())
        nxt = self.text[self.pos:self.pos + 1]
        if nxt and (nxt == "_" or nxt.isalnum()):
            self._field()

    def _field(self) -> None:
        start = self.pos
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\":
                self.pos += 2
                continue
            if ch in _TERMINATORS:
                break
            self.pos += 1
        raw = self.text[start:self.pos]
        self.nodes.append(Wildcard() if raw == "*" else Field(raw.replace("\\", "")))

    def _number(self) -> None:
        match = _NUMBER_RE.match(self.text, self.pos)
        raw = match.group(0) if match else ""
        self.pos += len(raw)
        try:
            self.nodes.append(Literal(int(raw)))
        except ValueError:
            try:
                self.nodes.append(Literal(float(raw)))
            except ValueError as exc:
                raise JSONPathError(f"cannot parse number {raw}") from exc

    def _identifier(self) -> None:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _TERMINATORS:
            self.pos += 1
        word = self.text[start:self.pos]
        if word not in ("true", "false"):
            raise JSONPathError(f"unsupported identifier {word}")
        self.nodes.append(Literal(word == "true"))

    def _quoted(self, quote: str) -> None:
        end = self.pos + 1
        while True:
            end = self.text.find(quote, end)
            if end < 0:
                raise JSONPathError("unterminated quoted string")
            if self.text[end - 1] != "\\":
                break
            end += 1
        body = self.text[self.pos + 1:end]
        self.pos = end + 1
        self.nodes.append(Literal(_unquote(body)))

    def _array(self) -> None:
        end = self.text.find("]", self.pos)
        if end < 0:
            raise JSONPathError("unterminated array")
        inner = self.text[self.pos + 1:end]
        self.pos = end + 1
        if inner == "*":
            inner = ":"
        parts = inner.split(",")
        if len(parts) > 1:
            branches = tuple(_Parser(f"[{p.strip()}]").parse() for p in parts)
            self.nodes.append(Union(branches))
            return
        key = _DICT_KEY_RE.match(inner)
        if key:
            # client-go re-parses the key as a dotted field, so dots still split it.
            self.nodes.extend(_Parser("." + key.group(1)).parse())
            return
        self.nodes.append(_slice(inner))

    def _filter(self) -> None:
        self.pos += 3
        start = self.pos
        quote = ""
        while True:
            if self.pos >= len(self.text) or self.text[self.pos] == "\n":
                raise JSONPathError("unterminated filter")
            ch = self.text[self.pos]
            self.pos += 1
            if ch in "\"'" and (not quote or ch == quote) and self.text[self.pos - 2] != "\\":
                quote = "" if quote else ch
            elif ch == ")" and not quote:
                break
        if self.text[self.pos:self.pos + 1] != "]":
            raise JSONPathError("unclosed array expect ]")
        body = self.text[start:self.pos - 1]
        self.pos += 1
        self.nodes.append(_filter_node(body))


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


def _unquote(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        code = body[i + 1:i + 2]
        if code == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2:i + 6]):
            out.append(chr(int(body[i + 2:i + 6], 16)))
            i += 6
        elif code in _ESCAPES:
            out.append(_ESCAPES[code])
            i += 2
        else:
            raise JSONPathError(f"cannot unquote {body!r}")
    return "".join(out)


def _slice(inner: str) -> Slice:
    match = _SLICE_RE.match(inner)
    if not match:
        raise JSONPathError(f"invalid array index {inner}")
    first, second, third = match.groups()
    try:
        start = int(first) if first else None
        if second is None:
            return Slice(start if start is not None else 0, None, None, single=True)
        end = int(second[1:]) if second[1:] else None
        step = int(third[1:]) if third and third[1:] else None
    except ValueError as exc:
        raise JSONPathError(f"array index {inner} is not a number") from exc
    return Slice(start, end, step)


def _filter_node(body: str) -> Filter:
    match = _FILTER_RE.match(body)
    if not match:
        return Filter(_Parser(body).parse(), "exists", ())
    left, operator, right = match.groups()
    if operator not in ("==", "!=", "<", ">", "<=", ">="):
        raise JSONPathError(f"unrecognized filter operator {operator}")
    return Filter(_Parser(left).parse(), operator, _Parser(right).parse())


@lru_cache(maxsize=512)
def parse(expression: str) -> tuple[Node, ...]:
    """Parse one action; surrounding ``{}`` are optional (``{.spec.replicas}`` or ``.spec.replicas``)."""
    text = expression.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    return _Parser(text).parse()


def find(expression: str, data: Any) -> list[Any]:
    """Every value the expression selects, in document order; ``[]`` when nothing matches."""
    return _walk(parse(expression), [data])


def _walk(nodes: tuple[Node, ...], values: list[Any]) -> list[Any]:
    for node in nodes:
        values = _eval(node, values)
    return values


def _eval(node: Node, values: list[Any]) -> list[Any]:
    if isinstance(node, Field):
        return _eval_field(node.name, values)
    if isinstance(node, Wildcard):
        return [child for v in values if v is not None for child in _children(v)]
    if isinstance(node, Recursive):
        return _eval_recursive(values)
    if isinstance(node, Slice):
        return [item for v in values if v is not None for item in _eval_slice(node, v)]
    if isinstance(node, Literal):
        return [node.value for _ in values] if not isinstance(node.value, str) else [node.value]
    if isinstance(node, Union):
        return [item for branch in node.branches for item in _walk(branch, values)]
    return _eval_filter(node, values)


def _eval_field(name: str, values: list[Any]) -> list[Any]:
    if not name:
        return [v for v in values if v is not None]
    # A present key holding null still counts as found, as with a Go map lookup.
    return [v[name] for v in values if isinstance(v, dict) and name in v]


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list | str):
        return list(value)
    return []


def _eval_recursive(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        # Strings are leaves here: Go walks their bytes, which hold no fields.
        if not isinstance(value, dict | list) or not value:
            continue
        out.append(value)
        out.extend(_eval_recursive(_children(value)))
    return out


def _eval_slice(node: Slice, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise JSONPathError(f"{type(value).__name__} is not array or slice")
    length = len(value)
    start = node.start if node.start is not None else 0
    if start < 0:
        start += length
    if node.single:
        end = start + 1
    else:
        end = node.end if node.end is not None else length
        if end < 0:
            end += length
    if end != start and (start >= length or start < 0 or end > length):
        raise JSONPathError(f"array index out of bounds: index {start}, length {length}")
    step = node.step if node.step and node.step > 0 else 1
    return value[start:end:step]


def _eval_filter(node: Filter, values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if not isinstance(value, list):
            raise JSONPathError("value is not array or slice and cannot be filtered")
        out.extend(item for item in value if _filter_passes(node, item))
    return out


def _filter_passes(node: Filter, item: Any) -> bool:
    if node.operator == "exists":
        try:
            return bool(_walk(node.left, [item]))
        except JSONPathError:
            return False
    lefts = _walk(node.left, [item])
    rights = _walk(node.right, [item])
    if len(lefts) != 1 or len(rights) != 1:
        raise JSONPathError("can only compare one element at a time")
    return _compare(lefts[0], node.operator, rights[0])


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    raise JSONPathError("invalid type for comparison")


def _compare(left: Any, operator: str, right: Any) -> bool:
    # Go templates refuse to compare across kinds, even int with float.
    kind = _kind(left)
    if kind != _kind(right):
        raise JSONPathError("incompatible types for comparison")
    if operator == "==":
        return bool(left == right)
    if operator == "!=":
        return bool(left != right)
    if kind == "bool":
        raise JSONPathError("invalid type for comparison")
    ordered = {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}
    return ordered[operator]


def to_text(value: Any) -> str:
    """Render one result the way kubectl's jsonpath printer does."""
    if value is None:
        return "<no value>"
    if isinstance(value, dict | list):
        return json_marshal(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_float(value)
    return str(value)
