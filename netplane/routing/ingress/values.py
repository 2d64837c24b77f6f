"""Parsers for the string values of ingress-nginx annotations and ConfigMap keys.

Each returns a typed value or raises ``SyntaxProblem`` whose text completes ``Invalid value: "<v>": ``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from netplane.routing.ingress.nginx_syntax import SyntaxProblem
from netplane.routing.validate import has_control, is_hostname, is_token

# Go's strconv.ParseBool, which ingress-nginx uses, accepts exactly these.
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_SIZE = re.compile(r"^(\d+)([bkmgBKMG]?)$")
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
# A URL path as annotations may spell it: unreserved and a few sub-delimiters, never '$', quotes, ';' or spaces.
SAFE_PATH = re.compile(r"^/[-._~A-Za-z0-9/:%@+!*=&]*$")
MAX_SECONDS = 2_147_483  # whole seconds that still fit in milliseconds as a 32-bit count


def parse_bool(value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SyntaxProblem("must be a boolean (true or false)")


# Above this an annotation's number is a mistake, and it would not fit the engine's 64-bit JSON integers once scaled.
INT_LIMIT = 2**31 - 1


def parse_int(value: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    if not re.fullmatch(r"\d+", value) or int(value) < minimum or (maximum is not None and int(value) > maximum):
        if maximum is not None:
            raise SyntaxProblem(f"must be an integer between {minimum} and {maximum}")
        raise SyntaxProblem("must be a positive integer" if minimum >= 1 else "must be a non-negative integer")
    if int(value) > INT_LIMIT:
        raise SyntaxProblem(f"must be at most {INT_LIMIT}")
    return int(value)


def parse_seconds(value: str, *, minimum: int = 1) -> int:
    """Whole seconds (ingress-nginx timeouts are unitless seconds)."""
    if not re.fullmatch(r"\d+", value) or not minimum <= int(value) <= MAX_SECONDS:
        lowest = "positive" if minimum >= 1 else "non-negative"
        raise SyntaxProblem(f"must be a {lowest} integer number of seconds (at most {MAX_SECONDS})")
    return int(value)


def parse_size(value: str) -> int:
    """nginx sizes: ``1024``, ``8k``, ``1m``, ``1g`` → bytes."""
    m = _SIZE.match(value)
    if not m:
        raise SyntaxProblem("must be a size such as 1024, 8k, 10m or 1g")
    return int(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]


def parse_options(value: str, options: Iterable[str], *, ignore_case: bool = False) -> str:
    """One of ``options``; with ``ignore_case`` the option's own spelling is returned."""
    for option in options:
        if value == option or (ignore_case and value.lower() == option.lower()):
            return option
    shown = ", ".join(options)
    raise SyntaxProblem(f"must be one of: {shown}")


def split_list(value: str, sep: str = ",") -> list[str]:
    return [item.strip() for item in value.split(sep) if item.strip()]


def parse_cidrs(value: str) -> tuple[str, ...]:
    """A comma-separated list of IP addresses and CIDRs, normalised (``10.0.0.1`` → ``10.0.0.1/32``)."""
    items = split_list(value)
    if not items:
        raise SyntaxProblem("must be a comma-separated list of IP addresses or CIDRs")
    out = []
    for item in items:
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise SyntaxProblem(f"{item!r} is not an IP address or CIDR") from None
    return tuple(out)


def parse_reference(value: str) -> tuple[str, str]:
    """``namespace/name`` of a Secret, ConfigMap or Service."""
    namespace, sep, name = value.partition("/")
    if not sep or not _NAME.match(namespace) or not _NAME.match(name) or len(namespace) > 63:
        raise SyntaxProblem("must be namespace/name")
    return namespace, name


def parse_header_names(value: str) -> tuple[str, ...]:
    names = split_list(value)
    for name in names:
        if not is_token(name):
            raise SyntaxProblem(f"{name!r} is not a valid HTTP header name")
    return tuple(names)


def parse_path(value: str) -> str:
    if not SAFE_PATH.match(value):
        raise SyntaxProblem("must be a path starting with '/' made of letters, digits and -._~/:%@+!*=&")
    return value


def parse_hostname(value: str) -> str:
    if not is_hostname(value.lower(), wildcard=False):
        raise SyntaxProblem("must be a DNS name")
    return value.lower()


def parse_visible(value: str, what: str) -> str:
    """Printable ASCII without quotes or backslashes, for values compared as plain strings."""
    if has_control(value) or not value.isascii() or any(c in "\"\\" for c in value):
        raise SyntaxProblem(f"must be a {what} of printable ASCII characters without quotes or backslashes")
    return value
