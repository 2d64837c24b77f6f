"""How Kubernetes prints bad values of its internal struct types with Go's ``%#v``.

kubectl shows e.g. ``Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web"}, ...}``;
the renderings here are wrapped in :class:`netplane.api.gofmt.GoValue`, and built from the
generic ones (quoting, ``map[string]string``, ``[]string``) in :mod:`netplane.api.gofmt`.
"""

from __future__ import annotations

from typing import Any

from netplane.api.gofmt import quote, string_map, string_slice


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

