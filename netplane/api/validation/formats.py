"""String-format checks shared by every kind (apimachinery's util/validation).

Each check returns the list of problem descriptions Kubernetes reports for the value; an
empty list means the value is fine. Callers wrap each description in a field error, so the
wording here is exactly the API server's.
"""

from __future__ import annotations

import ipaddress
import re

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
WILDCARD_SUBDOMAIN_FMT = "\\*\\." + DNS1123_SUBDOMAIN_FMT
QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_FMT = "(" + QUALIFIED_NAME_FMT + ")?"
CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
PERCENT_FMT = "[0-9]+%"
HTTP_PATH_FMT = "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+"

_DNS1123_LABEL = re.compile(DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN = re.compile(DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL = re.compile(DNS1035_LABEL_FMT)
_WILDCARD_SUBDOMAIN = re.compile(WILDCARD_SUBDOMAIN_FMT)
_QUALIFIED_NAME = re.compile(QUALIFIED_NAME_FMT)
_LABEL_VALUE = re.compile(LABEL_VALUE_FMT)
_CONFIG_KEY = re.compile(CONFIG_KEY_FMT)
_PERCENT = re.compile(PERCENT_FMT)
_HTTP_PATH = re.compile(HTTP_PATH_FMT)
_PORT_NAME_CHARSET = re.compile("[-a-z0-9]+")
_ONE_LETTER = re.compile("[a-z]")

DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                         "'-' or '.', and must start and end with an alphanumeric character")
DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                     "and must start and end with an alphanumeric character")
DNS1035_LABEL_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                     "start with an alphabetic character, and end with an alphanumeric character")
WILDCARD_MSG = ("a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, "
                "which must consist of lower case alphanumeric characters, '-' or '.' and end with an "
                "alphanumeric character")
QUALIFIED_NAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', "
                      "and must start and end with an alphanumeric character")
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, "
                   "'-', '_' or '.', and must start and end with an alphanumeric character")
CONFIG_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
PERCENT_MSG = "a valid percent string must be a numeric string followed by an ending '%'"
RELAXED_ENV_MSG = ("a valid environment variable name must consist only of printable ASCII characters "
                   "other than '='")
IS_NEGATIVE_MSG = "must be greater than or equal to 0"


def full(pattern: re.Pattern[str], value: str) -> bool:
    return pattern.fullmatch(value) is not None


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    # Kubernetes joins its examples as "'a', " + " or " + "'b', ", hence the doubled space.
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    listed = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {listed}regex used for validation is '{fmt}')"


def max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


def inclusive_range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


def dns1123_label(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not full(_DNS1123_LABEL, value):
        if full(_DNS1123_SUBDOMAIN, value):
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(DNS1123_LABEL_MSG, DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def dns1123_subdomain(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not full(_DNS1123_SUBDOMAIN, value):
        errs.append(regex_error(DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def dns1035_label(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not full(_DNS1035_LABEL, value):
        errs.append(regex_error(DNS1035_LABEL_MSG, DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def wildcard_dns1123_subdomain(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not full(_WILDCARD_SUBDOMAIN, value):
        errs.append(regex_error(WILDCARD_MSG, WILDCARD_SUBDOMAIN_FMT, "*.example.com"))
    return errs


def qualified_name(value: str) -> list[str]:
    """Label keys, annotation keys, finalizers, appProtocol: ``[prefix/]name``."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in dns1123_subdomain(prefix))
    else:
        return ["a qualified name " + regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name",
                                                  "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + max_len_error(63))
    if not full(_QUALIFIED_NAME, name):
        errs.append("name part " + regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name",
                                               "123-abc"))
    return errs


def label_value(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not full(_LABEL_VALUE, value):
        errs.append(regex_error(LABEL_VALUE_MSG, LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def config_map_key(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not full(_CONFIG_KEY, value):
        errs.append(regex_error(CONFIG_KEY_MSG, CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    errs.extend(_chdir_prefix(value))
    return errs


def _chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def relaxed_env_var_name(value: str) -> list[str]:
    # v1.32 runs with RelaxedEnvironmentVariableValidation on (beta, enabled by default).
    errs = []
    if not value:
        errs.append("environment variable name must be non-empty")
    if any(ord(c) > 126 or ord(c) < 32 or c == "=" for c in value):
        errs.append(RELAXED_ENV_MSG)
    return errs


def port_num(port: int) -> list[str]:
    return [] if 1 <= port <= 65535 else [inclusive_range_error(1, 65535)]


def port_name(port: str) -> list[str]:
    """IANA_SVC_NAME, as Kubernetes checks it."""
    errs = []
    if len(port) > 15:
        errs.append(max_len_error(15))
    if not full(_PORT_NAME_CHARSET, port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _ONE_LETTER.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def percent(value: str) -> list[str]:
    return [] if full(_PERCENT, value) else [regex_error(PERCENT_MSG, PERCENT_FMT, "1%", "93%")]


def http_path(value: str) -> bool:
    return full(_HTTP_PATH, value)


def parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Go's ParseIPSloppy: IPv4 octets may carry leading zeros."""
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        pass
    parts = value.split(".")
    if len(parts) == 4 and all(p.isdigit() and 0 < len(p) <= 3 and int(p) < 256 for p in parts):
        return ipaddress.IPv4Address(".".join(str(int(p)) for p in parts))
    return None


def parse_cidr(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if "/" not in value:
        return None
    addr, _, bits = value.partition("/")
    ip = parse_ip(addr)
    if ip is None or not bits.isdigit() or int(bits) > ip.max_prefixlen:
        return None
    return ipaddress.ip_network(f"{ip}/{int(bits)}", strict=False)


def valid_ip(value: str) -> list[str]:
    if parse_ip(value) is not None:
        return []
    return ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]


def valid_cidr(value: str) -> list[str]:
    return [] if parse_cidr(value) is not None else [
        "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]


def non_special_ip(value: str) -> list[str]:
    """Endpoints and external IPs may not point at loopback, link-local or unspecified addresses."""
    ip = parse_ip(value)
    if ip is None:
        return ["must be a valid IP address"]
    errs = []
    if ip.is_unspecified:
        errs.append(f"may not be unspecified ({value})")
    if ip.is_loopback:
        errs.append("may not be in the loopback range (127.0.0.0/8, ::1/128)")
    if ip.is_link_local:
        errs.append("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
    if _link_local_multicast(ip):
        errs.append("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")
    return errs


def _link_local_multicast(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv4Address):
        return ip in ipaddress.ip_network("224.0.0.0/24")
    return ip.packed[0] == 0xFF and ip.packed[1] & 0x0F == 0x02


def path_segment_name(value: str) -> list[str]:
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


def _mask_trailing_dash(name: str) -> str:
    # generateName prefixes may end in '-': the random suffix follows, so check as if it did not.
    return name[:-1] + "a" if len(name) > 1 and name.endswith("-") else name


def name_is_dns_subdomain(name: str, prefix: bool = False) -> list[str]:
    return dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool = False) -> list[str]:
    return dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool = False) -> list[str]:
    return dns1035_label(_mask_trailing_dash(name) if prefix else name)
