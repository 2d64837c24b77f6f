"""Name and format messages, word for word as the API server prints them."""

from __future__ import annotations

import pytest

from netplane.api.validation import formats, validate

pytestmark = pytest.mark.unit

LABEL_1123 = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
              "and must "
              "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
              "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
LABEL_1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
              "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
              "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
             "'.', and "
             "must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
             "validation "
             "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")


@pytest.mark.parametrize(("check", "value", "expected"), [
    (formats.dns1123_label, "my-name", []),
    (formats.dns1123_label, "My_Name", [LABEL_1123]),
    (formats.dns1123_label, "a.b", ["must not contain dots"]),
    (formats.dns1123_label, "a" * 64, ["must be no more than 63 characters"]),
    (formats.dns1035_label, "1abc", [LABEL_1035]),
    (formats.dns1123_subdomain, "Example.com", [SUBDOMAIN]),
    (formats.port_name, "HTTP", ["must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                                 "must contain at least one letter (a-z)"]),
    (formats.port_name, "-a--b", ["must not contain consecutive hyphens",
                                  "must not begin or end with a hyphen"]),
    (formats.port_name, "http-alternative", ["must be no more than 15 characters"]),
    (formats.port_num, 0, ["must be between 1 and 65535, inclusive"]),
    (formats.valid_cidr, "10.0.0.0/33", ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]),
    (formats.valid_ip, "10.0.0.256", ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]),
    (formats.non_special_ip, "127.0.0.1", ["may not be in the loopback range (127.0.0.0/8, ::1/128)"]),
    (formats.config_map_key, "..a", ["must not start with '..'"]),
])
def test_format_checks(check, value, expected) -> None:  # type: ignore[no-untyped-def]
    assert check(value) == expected


def test_label_key_messages() -> None:
    assert formats.qualified_name("example.com/app") == []
    assert formats.qualified_name("/app") == ["prefix part must be non-empty"]
    assert formats.qualified_name("a/b/c") == [
        "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
        "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
        "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix "
        "and '/' (e.g. 'example.com/MyName')"]
    assert formats.label_value("-x") == [
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
        "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
        "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]


@pytest.mark.parametrize(("group", "kind", "name", "message"), [
    ("", "Namespace", "Bad_NS", f'Invalid value: "Bad_NS": {LABEL_1123}'),
    ("", "Service", "1svc", f'Invalid value: "1svc": {LABEL_1035}'),
    ("", "ConfigMap", "Cfg", f'Invalid value: "Cfg": {SUBDOMAIN}'),
])
def test_name_rules_per_kind(group: str, kind: str, name: str, message: str) -> None:
    errs = validate(group, kind, {"metadata": {"name": name}}, None)
    assert (errs[0].field, errs[0].message) == ("metadata.name", message)


def test_generate_name_counts_as_name_and_may_end_in_dash() -> None:
    assert validate("", "ConfigMap", {"metadata": {"generateName": "cfg-"}}, None) == []
    errs = validate("", "ConfigMap", {"metadata": {}}, None)
    assert [(e.reason, e.field, e.message) for e in errs] == [
        ("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")]
