"""Endpoints (core/v1) and EndpointSlice (discovery.k8s.io/v1)."""

from __future__ import annotations

from typing import Any

from netplane.api.errors import FieldError, duplicate, invalid, not_supported, required

from . import formats
from .access import as_dict, as_int, as_list, as_str
from .causes import each, one_of, too_many
from .meta import validate_labels
from .pod import PROTOCOLS

ADDRESS_TYPES = ["FQDN", "IPv4", "IPv6"]


def _endpoint_address(address: dict[str, Any], path: str) -> list[FieldError]:
    ip = as_str(address.get("ip"))
    errs = each(f"{path}.ip", ip, formats.valid_ip(ip))
    hostname = as_str(address.get("hostname"))
    if hostname:
        errs += each(f"{path}.hostname", hostname, formats.dns1123_label(hostname))
    node = address.get("nodeName")
    if isinstance(node, str):
        errs += each(f"{path}.nodeName", node, formats.dns1123_subdomain(node))
    errs += each(f"{path}.ip", ip, formats.non_special_ip(ip))
    return errs


def _endpoint_port(port: dict[str, Any], require_name: bool, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = as_str(port.get("name"))
    if require_name and not name:
        errs.append(required(f"{path}.name"))
    elif name:
        errs += each(f"{path}.name", name, formats.dns1123_label(name))
    number = as_int(port.get("port")) or 0
    errs += each(f"{path}.port", number, formats.port_num(number))
    errs += one_of(f"{path}.protocol", port.get("protocol"), PROTOCOLS)
    app_protocol = port.get("appProtocol")
    if isinstance(app_protocol, str):
        errs += each(f"{path}.appProtocol", app_protocol, formats.qualified_name(app_protocol))
    return errs


def validate_endpoints(obj: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, subset in enumerate(as_list(obj.get("subsets"))):
        subset = as_dict(subset)
        spath = f"subsets[{i}]"
        if not as_list(subset.get("addresses")) and not as_list(subset.get("notReadyAddresses")):
            errs.append(required(spath, "must specify `addresses` or `notReadyAddresses`"))
        for key in ("addresses", "notReadyAddresses"):
            for j, address in enumerate(as_list(subset.get(key))):
                errs += _endpoint_address(as_dict(address), f"{spath}.{key}[{j}]")
        ports = as_list(subset.get("ports"))
        for j, port in enumerate(ports):
            errs += _endpoint_port(as_dict(port), len(ports) > 1, f"{spath}.ports[{j}]")
    return errs


def _slice_address(address: str, address_type: str, path: str) -> list[FieldError]:
    if address_type in ("IPv4", "IPv6"):
        ip = formats.parse_ip(address)
        wanted = 4 if address_type == "IPv4" else 6
        if ip is None or ip.version != wanted:
            return [invalid(path, address, f"must be a valid {address_type} address")]
        return each(path, address, formats.non_special_ip(address))
    if address_type == "FQDN":
        return _fqdn(address, path)
    return []


def _fqdn(name: str, path: str) -> list[FieldError]:
    if not name:
        return [required(path)]
    name = name.removesuffix(".")
    msgs = formats.dns1123_subdomain(name)
    if msgs:
        return [invalid(path, name, ",".join(msgs))]
    if len(name.split(".")) < 2:
        return [invalid(path, name, "should be a domain with at least two segments separated by dots")]
    for label in name.split("."):
        msgs = formats.dns1123_label(label)
        if msgs:
            return [invalid(path, label, ",".join(msgs))]
    return []


def validate_endpoint_slice(obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    errs: list[FieldError] = []
    address_type = as_str(obj.get("addressType"))
    errs += one_of("addressType", address_type, ADDRESS_TYPES)
    endpoints = as_list(obj.get("endpoints"))
    if len(endpoints) > 1000:
        errs.append(too_many("endpoints", len(endpoints), 1000))
        endpoints = []
    for i, endpoint in enumerate(endpoints):
        endpoint = as_dict(endpoint)
        epath = f"endpoints[{i}]"
        addresses = as_list(endpoint.get("addresses"))
        if not addresses:
            errs.append(required(f"{epath}.addresses", "must contain at least 1 address"))
        elif len(addresses) > 100:
            errs.append(too_many(f"{epath}.addresses", len(addresses), 100))
        for j, address in enumerate(addresses):
            errs += _slice_address(as_str(address), address_type, f"{epath}.addresses[{j}]")
        node = endpoint.get("nodeName")
        if isinstance(node, str):
            errs += each(f"{epath}.nodeName", node, formats.dns1123_subdomain(node))
        topology = as_dict(endpoint.get("deprecatedTopology"))
        if len(topology) > 16:
            errs.append(too_many(f"{epath}.deprecatedTopology", len(topology), 16))
        errs += validate_labels(topology, f"{epath}.deprecatedTopology")
        hostname = endpoint.get("hostname")
        if isinstance(hostname, str):
            errs += each(f"{epath}.hostname", hostname, formats.dns1123_label(hostname))
    ports = as_list(obj.get("ports"))
    if len(ports) > 20000:
        return [*errs, too_many("ports", len(ports), 20000)]
    names: set[str] = set()
    for i, port in enumerate(ports):
        port = as_dict(port)
        ppath = f"ports[{i}]"
        name = as_str(port.get("name"))
        if name:
            errs += each(f"{ppath}.name", name, formats.dns1123_label(name))
        if name in names:
            errs.append(duplicate(f"{ppath}.name", name))
        names.add(name)
        protocol = port.get("protocol")
        if protocol is None:
            errs.append(required(f"{ppath}.protocol"))
        elif protocol not in PROTOCOLS:
            errs.append(not_supported(f"{ppath}.protocol", protocol, PROTOCOLS))
        app_protocol = port.get("appProtocol")
        if isinstance(app_protocol, str):
            errs += each(f"{ppath}.appProtocol", app_protocol, formats.qualified_name(app_protocol))
    if old is not None:
        old_type = as_str(old.get("addressType"))
        if address_type != old_type:
            errs.append(invalid("addressType", address_type, "field is immutable"))
    return errs
