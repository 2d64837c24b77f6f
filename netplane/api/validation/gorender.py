"""How Kubernetes prints non-scalar bad values: Go's ``%#v`` of its internal types.

kubectl shows e.g. ``Invalid value: map[string]string{"app":"web"}: ...``; to print the same
text we wrap such values in ``GoValue``, whose ``str()`` is the Go rendering (errors.py prints
anything that is not a plain scalar with ``str``).
"""

from __future__ import annotations

import json
from typing import Any


class GoValue:
    """A value already rendered the way Go's ``%#v`` would print it."""

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


def quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def string_map(value: Any) -> str:
    if not isinstance(value, dict):
        return "map[string]string(nil)"
    # Go's fmt sorts map keys when printing.
    body = ", ".join(f"{quote(str(k))}:{quote(str(v))}" for k, v in sorted(value.items()))
    return "map[string]string{" + body + "}"


def string_slice(value: Any, type_name: str = "string") -> str:
    if not isinstance(value, list):
        return f"[]{type_name}(nil)"
    return f"[]{type_name}{{" + ", ".join(quote(str(v)) for v in value) + "}"


def int_or_string(value: Any) -> str:
    if isinstance(value, str):
        return f"intstr.IntOrString{{Type:1, IntVal:0, StrVal:{quote(value)}}}"
    num = value if isinstance(value, int) and not isinstance(value, bool) else 0
    return f"intstr.IntOrString{{Type:0, IntVal:{num}, StrVal:\"\"}}"


def label_selector(sel: Any) -> str:
    sel = sel if isinstance(sel, dict) else {}
    exprs = sel.get("matchExpressions")
    if isinstance(exprs, list):
        items = []
        for e in exprs:
            e = e if isinstance(e, dict) else {}
            items.append(
                f"v1.LabelSelectorRequirement{{Key:{quote(str(e.get('key', '')))}, "
                f"Operator:{quote(str(e.get('operator', '')))}, Values:{string_slice(e.get('values'))}}}")
        rendered_exprs = "[]v1.LabelSelectorRequirement{" + ", ".join(items) + "}"
    else:
        rendered_exprs = "[]v1.LabelSelectorRequirement(nil)"
    return (f"v1.LabelSelector{{MatchLabels:{string_map(sel.get('matchLabels'))}, "
            f"MatchExpressions:{rendered_exprs}}}")


def service_port_key(protocol: str, port: Any) -> str:
    """The (protocol, port) key Kubernetes reports for a duplicate Service port."""
    return (f"core.ServicePort{{Name:\"\", Protocol:{quote(protocol)}, AppProtocol:(*string)(nil), "
            f"Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}")


def struct_pointer(type_name: str, present: bool) -> str:
    # A set pointer prints as its address, which we cannot reproduce; any stable stand-in will do.
    return f"(*{type_name})(0xc000000000)" if present else f"(*{type_name})(nil)"
