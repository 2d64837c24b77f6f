"""Label and field selectors, as the Kubernetes API parses and matches them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from netplane.api.errors import bad_request


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op == "=":
            return present and labels[self.key] == self.values[0]
        if self.op == "!=":
            return not present or labels[self.key] != self.values[0]
        if self.op == "in":
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values  # notin


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


_TERM = re.compile(r"""
    \s*(?:
      (?P<not>!)\s*(?P<nkey>[^\s!=,()]+)                                  # !key
    | (?P<skey>[^\s!=,()]+)\s+(?P<setop>in|notin)\s*\((?P<vals>[^)]*)\)   # key in (a,b)
    | (?P<key>[^\s!=,()]+)\s*(?P<op>==|=|!=)\s*(?P<val>[^\s,()]*)         # key=value
    | (?P<ekey>[^\s!=,()]+)                                               # key
    )\s*(?:,|$)""", re.VERBOSE)


def parse_label_selector(text: str | None) -> Selector:
    """Parse ``a=b,c!=d,e in (f,g),!h,i`` into a Selector; malformed input is a 400."""
    if not text or not text.strip():
        return Selector()
    reqs: list[Requirement] = []
    pos = 0
    while pos < len(text):
        m = _TERM.match(text, pos)
        if not m or m.end() == pos:
            raise bad_request(f'unable to parse requirement: found \'{text[pos:]}\', expected: key')
        pos = m.end()
        if m["not"]:
            reqs.append(Requirement(m["nkey"], "!"))
        elif m["setop"]:
            values = tuple(v.strip() for v in m["vals"].split(",") if v.strip())
            reqs.append(Requirement(m["skey"], m["setop"], values))
        elif m["op"]:
            reqs.append(Requirement(m["key"], "!=" if m["op"] == "!=" else "=", (m["val"],)))
        else:
            reqs.append(Requirement(m["ekey"], "exists"))
    return Selector(tuple(reqs))


def selector_from_label_selector(spec: Mapping | None) -> Selector:
    """A ``metav1.LabelSelector`` (matchLabels + matchExpressions) as a Selector."""
    if not spec:
        return Selector()
    reqs = [Requirement(k, "=", (str(v),)) for k, v in (spec.get("matchLabels") or {}).items()]
    op_names = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in spec.get("matchExpressions") or []:
        reqs.append(Requirement(expr["key"], op_names[expr["operator"]], tuple(expr.get("values") or ())))
    return Selector(tuple(reqs))


def format_label_selector(spec: Mapping | None) -> str:
    """Render a LabelSelector as kubectl shows it (``app=web,tier in (a,b)``)."""
    if not spec:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((spec.get("matchLabels") or {}).items())]
    for expr in spec.get("matchExpressions") or []:
        op = expr["operator"]
        if op == "Exists":
            parts.append(expr["key"])
        elif op == "DoesNotExist":
            parts.append("!" + expr["key"])
        else:
            parts.append(f"{expr['key']} {op.lower()} ({','.join(sorted(expr.get('values') or []))})")
    return ",".join(parts)


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    negate: bool
    value: str


def parse_field_selector(text: str | None, supported: frozenset[str]) -> tuple[FieldRequirement, ...]:
    if not text or not text.strip():
        return ()
    reqs = []
    for term in text.split(","):
        term = term.strip()
        if not term:
            continue
        m = re.fullmatch(r"([^!=]+)(==|=|!=)(.*)", term)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        field = m[1].strip()
        if field not in supported:
            raise bad_request(f"field label not supported: {field}")
        reqs.append(FieldRequirement(field, m[2] == "!=", m[3].strip()))
    return tuple(reqs)


def fields_match(reqs: tuple[FieldRequirement, ...], fields: Mapping[str, str]) -> bool:
    return all((fields.get(r.field, "") == r.value) != r.negate for r in reqs)
