"""The parts of Kubernetes' CEL library (lists, strings) that cel-python lacks.

cel-python ships the standard CEL functions only; validation rules written for a
real cluster commonly call these extensions, so rules must find them here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celpy import celtypes
from celpy.evaluation import CELEvalError


def _is_sorted(items: Any) -> celtypes.BoolType:
    return celtypes.BoolType(all(items[i] <= items[i + 1] for i in range(len(items) - 1)))


def _sum(items: Any) -> Any:
    if not items:
        return celtypes.IntType(0)
    total = items[0]
    for x in items[1:]:
        total = total + x
    return total


def _min(items: Any) -> Any:
    if not items:
        return CELEvalError("min(list) called on an empty list")
    return min(items)


def _max(items: Any) -> Any:
    if not items:
        return CELEvalError("max(list) called on an empty list")
    return max(items)


def _index_of(target: Any, item: Any) -> celtypes.IntType:
    if isinstance(target, str):
        return celtypes.IntType(target.find(item))
    for i, x in enumerate(target):
        if x == item:
            return celtypes.IntType(i)
    return celtypes.IntType(-1)


def _last_index_of(target: Any, item: Any) -> celtypes.IntType:
    if isinstance(target, str):
        return celtypes.IntType(target.rfind(item))
    for i in range(len(target) - 1, -1, -1):
        if target[i] == item:
            return celtypes.IntType(i)
    return celtypes.IntType(-1)


def _replace(s: str, old: str, new: str, n: int = -1) -> celtypes.StringType:
    return celtypes.StringType(s.replace(old, new, int(n)))


def _split(s: str, sep: str, n: int = -1) -> celtypes.ListType:
    if int(n) == 0:
        return celtypes.ListType([])
    parts = s.split(sep, int(n) - 1) if int(n) > 0 else s.split(sep)
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


def _join(items: Any, sep: str = "") -> celtypes.StringType:
    return celtypes.StringType(str(sep).join(str(x) for x in items))


def _substring(s: str, start: int, end: int | None = None) -> Any:
    stop = len(s) if end is None else int(end)
    if not 0 <= int(start) <= stop <= len(s):
        return CELEvalError(f"index out of range: {int(start) if int(start) > len(s) else stop}")
    return celtypes.StringType(s[int(start) : stop])


def _char_at(s: str, i: int) -> Any:
    if not 0 <= int(i) <= len(s):
        return CELEvalError(f"index out of range: {int(i)}")
    return celtypes.StringType(s[int(i) : int(i) + 1])


def _dyn(value: Any) -> Any:
    return value


EXTENSIONS: dict[str, Callable[..., Any]] = {
    "isSorted": _is_sorted,
    "sum": _sum,
    "min": _min,
    "max": _max,
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "lowerAscii": lambda s: celtypes.StringType(str(s).lower()),
    "upperAscii": lambda s: celtypes.StringType(str(s).upper()),
    "trim": lambda s: celtypes.StringType(str(s).strip()),
    "replace": _replace,
    "split": _split,
    "join": _join,
    "substring": _substring,
    "charAt": _char_at,
    "reverse": lambda s: celtypes.StringType(str(s)[::-1]),
    "dyn": _dyn,
}
