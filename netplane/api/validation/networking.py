"""networking.k8s.io/v1: Ingress, IngressClass and NetworkPolicy."""

from __future__ import annotations

from typing import Any

from netplane.api.errors import FieldError, forbidden, invalid, not_supported, required, too_long
from netplane.api.gofmt import GoValue, string_slice

from . import formats
from .access import as_dict, as_int, as_list, as_str
from .causes import each
from .label_selectors import validate_label_selector

PATH_TYPES = ["Exact", "ImplementationSpecific", "Prefix"]
_INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_INVALID_PATH_SUFFIXES = ("/..", "/.")
_CLASS_ANNOTATION = "kubernetes.io/ingress.class"


def _typed_reference(ref: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    api_group = ref.get("apiGroup")
    if isinstance(api_group, str):
        errs += each(f"{path}.apiGroup", api_group, formats.dns1123_subdomain(api_group))
    for key in ("kind", "name"):
        value = as_str(ref.get(key))
        if not value:
            errs.append(required(f"{path}.{key}", f"{key} is required"))
        else:
            errs += each(f"{path}.{key}", value, formats.path_segment_name(value))
    return errs


def _validate_backend(backend: Any, path: str) -> list[FieldError]:
    backend = as_dict(backend)
    resource, service = backend.get("resource"), backend.get("service")
    if resource is not None and service is not None:
        return [invalid(path, "", "cannot set both resource and service backends")]
    if resource is not None:
        return _typed_reference(as_dict(resource), f"{path}.resource")
    if service is None:
        return [invalid(path, "", "resource or service backend is required")]
    service = as_dict(service)
    errs: list[FieldError] = []
    name = as_str(service.get("name"))
    if not name:
        errs.append(required(f"{path}.service.name"))
    else:
        errs += each(f"{path}.service.name", name, formats.dns1035_label(name))
    port = as_dict(service.get("port"))
    port_name, port_number = as_str(port.get("name")), as_int(port.get("number")) or 0
    if port_name and port_number:
        errs.append(invalid(path, "", "cannot set both port name & port number"))
    elif port_name:
        errs += each(f"{path}.service.port.name", port_name, formats.port_name(port_name))
    elif port_number:
        errs += each(f"{path}.service.port.number", port_number, formats.port_num(port_number))
    else:
        errs.append(required(path, "port name or number is required"))
    return errs


def _validate_path(entry: dict[str, Any], path: str) -> list[FieldError]:
    path_type = entry.get("pathType")
    if path_type is None:
        return [required(f"{path}.pathType", "pathType must be specified")]
    errs: list[FieldError] = []
    value = as_str(entry.get("path"))
    if path_type in ("Exact", "Prefix"):
        if not value.startswith("/"):
            errs.append(invalid(f"{path}.path", value, "must be an absolute path"))
        if value:
            errs += [invalid(f"{path}.path", value, f"must not contain '{seq}'")
                     for seq in _INVALID_PATH_SEQUENCES if seq in value]
            errs += [invalid(f"{path}.path", value, f"cannot end with '{suffix}'")
                     for suffix in _INVALID_PATH_SUFFIXES if value.endswith(suffix)]
    elif path_type == "ImplementationSpecific":
        if value and not value.startswith("/"):
            errs.append(invalid(f"{path}.path", value, "must be an absolute path"))
    else:
        errs.append(not_supported(f"{path}.pathType", path_type, PATH_TYPES))
    errs += _validate_backend(entry.get("backend"), f"{path}.backend")
    return errs


def _validate_host(host: str, path: str) -> list[FieldError]:
    if "*" in host:
        return each(path, host, formats.wildcard_dns1123_subdomain(host))
    return each(path, host, formats.dns1123_subdomain(host))


def _validate_rules(rules: list[Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, rule in enumerate(rules):
        rule = as_dict(rule)
        rpath = f"spec.rules[{i}]"
        host = as_str(rule.get("host"))
        if host:
            if formats.parse_ip(host) is not None:
                errs.append(invalid(f"{rpath}.host", host, "must be a DNS name, not an IP address"))
            errs += _validate_host(host, f"{rpath}.host")
        http = rule.get("http")
        if isinstance(http, dict):
            paths = as_list(http.get("paths"))
            if not paths:
                errs.append(required(f"{rpath}.http.paths"))
            for j, entry in enumerate(paths):
                errs += _validate_path(as_dict(entry), f"{rpath}.http.paths[{j}]")
    return errs


def validate_ingress(obj: dict[str, Any], create: bool) -> list[FieldError]:
    spec = as_dict(obj.get("spec"))
    errs: list[FieldError] = []
    rules = as_list(spec.get("rules"))
    if not rules and spec.get("defaultBackend") is None:
        shown = GoValue("[]networking.IngressRule{}" if isinstance(spec.get("rules"), list)
                        else "[]networking.IngressRule(nil)")
        errs.append(invalid("spec", shown, "either `defaultBackend` or `rules` must be specified"))
    if spec.get("defaultBackend") is not None:
        errs += _validate_backend(spec.get("defaultBackend"), "spec.defaultBackend")
    errs += _validate_rules(rules)
    for i, tls in enumerate(as_list(spec.get("tls"))):
        tls = as_dict(tls)
        for j, host in enumerate(as_list(tls.get("hosts"))):
            errs += _validate_host(as_str(host), f"spec.tls[{i}].hosts[{j}]")
        secret = as_str(tls.get("secretName"))
        if secret:
            errs += [invalid(f"spec.tls[{i}].secretName", secret,
                             m) for m in formats.dns1123_subdomain(secret)]
    class_name = spec.get("ingressClassName")
    if isinstance(class_name, str) and class_name:
        errs += each("spec.ingressClassName", class_name, formats.dns1123_subdomain(class_name))
    annotation = as_dict(as_dict(obj.get("metadata")).get("annotations")).get(_CLASS_ANNOTATION)
    if create and isinstance(annotation, str) and isinstance(class_name, str) and annotation != class_name:
        errs.append(invalid(f"annotations.{_CLASS_ANNOTATION}", annotation,
                            "must match `ingressClassName` when both are specified"))
    return errs


def validate_ingress_class(obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    spec = as_dict(obj.get("spec"))
    controller = as_str(spec.get("controller"))
    errs: list[FieldError] = []
    if old is not None:
        old_controller = as_str(as_dict(old.get("spec")).get("controller"))
        if controller != old_controller:
            errs.append(invalid("spec.controller", controller, "field is immutable"))
    if len(controller) > 250:
        errs.append(too_long("spec.controller", controller, 250))
    errs += _domain_prefixed_path(controller, "spec.controller")
    params = spec.get("parameters")
    if isinstance(params, dict):
        errs += _validate_class_parameters(params)
    return errs


def _domain_prefixed_path(value: str, path: str) -> list[FieldError]:
    if not value:
        return [required(path)]
    host, sep, rest = value.partition("/")
    if not sep or not host or not rest:
        return [invalid(path, value, 'must be a domain-prefixed path (such as "acme.io/foo")')]
    errs = each(path, host, formats.dns1123_subdomain(host))
    if not formats.http_path(rest):
        errs.append(invalid(path, rest, formats.regex_error("Invalid path", formats.HTTP_PATH_FMT)))
    return errs


def _validate_class_parameters(params: dict[str, Any]) -> list[FieldError]:
    path = "spec.parameters"
    errs = _typed_reference(params, path)
    scope = params.get("scope")
    if scope is None:
        return [*errs, required(f"{path}.scope")]
    if scope not in ("Cluster", "Namespace"):
        return [*errs, not_supported(f"{path}.scope", scope, ["Cluster", "Namespace"])]
    namespace = params.get("namespace")
    if scope == "Namespace":
        if namespace is None:
            errs.append(required(f"{path}.namespace", "`parameters.scope` is set to 'Namespace'"))
        else:
            errs += each(f"{path}.namespace", namespace, formats.dns1123_label(as_str(namespace)))
    elif namespace is not None:
        errs.append(forbidden(f"{path}.namespace", "`parameters.scope` is set to 'Cluster'"))
    return errs


def _validate_policy_port(port: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    protocol = port.get("protocol")
    if protocol is not None and protocol not in ("TCP", "UDP", "SCTP"):
        errs.append(not_supported(f"{path}.protocol", protocol, ["TCP", "UDP", "SCTP"]))
    value = port.get("port")
    end = as_int(port.get("endPort"))
    if value is None:
        if end is not None:
            errs.append(invalid(f"{path}.endPort", end, "may not be specified when `port` is not specified"))
    elif isinstance(value, str):
        if end is not None:
            errs.append(invalid(f"{path}.endPort", end, "may not be specified when `port` is non-numeric"))
        errs += each(f"{path}.port", value, formats.port_name(value))
    else:
        number = as_int(value) or 0
        errs += each(f"{path}.port", number, formats.port_num(number))
        if end is not None:
            if end < number:
                errs.append(invalid(f"{path}.endPort", number, "must be greater than or equal to `port`"))
            errs += each(f"{path}.endPort", end, formats.port_num(end))
    return errs


def _validate_ip_block(block: dict[str, Any], path: str) -> list[FieldError]:
    cidr = as_str(block.get("cidr"))
    if not cidr:
        return [required(f"{path}.cidr")]
    errs = each(f"{path}.cidr", cidr, formats.valid_cidr(cidr))
    network = formats.parse_cidr(cidr)
    if network is None:
        return errs
    for i, text in enumerate(as_list(block.get("except"))):
        text = as_str(text)
        epath = f"{path}.except[{i}]"
        errs += each(epath, text, formats.valid_cidr(text))
        excepted = formats.parse_cidr(text)
        if excepted is None:
            continue
        inside = excepted.version == network.version and excepted.network_address in network
        if not inside or network.prefixlen >= excepted.prefixlen:
            errs.append(invalid(epath, text, "must be a strict subset of `cidr`"))
    return errs


def _validate_peer(peer: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    count = 0
    for key in ("podSelector", "namespaceSelector"):
        if peer.get(key) is not None:
            count += 1
            errs += validate_label_selector(peer.get(key), f"{path}.{key}")
    block = peer.get("ipBlock")
    if block is not None:
        count += 1
        errs += _validate_ip_block(as_dict(block), f"{path}.ipBlock")
    if count == 0:
        errs.append(required(path, "must specify a peer"))
    elif count > 1 and block is not None:
        errs.append(forbidden(path, "may not specify both ipBlock and another peer"))
    return errs


def validate_network_policy(obj: dict[str, Any]) -> list[FieldError]:
    spec = as_dict(obj.get("spec"))
    errs = validate_label_selector(as_dict(spec.get("podSelector")), "spec.podSelector")
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(as_list(spec.get(direction))):
            rule = as_dict(rule)
            rpath = f"spec.{direction}[{i}]"
            for j, port in enumerate(as_list(rule.get("ports"))):
                errs += _validate_policy_port(as_dict(port), f"{rpath}.ports[{j}]")
            for j, peer in enumerate(as_list(rule.get(peers_key))):
                errs += _validate_peer(as_dict(peer), f"{rpath}.{peers_key}[{j}]")
    types = as_list(spec.get("policyTypes"))
    if len(types) > 2:
        shown = GoValue(string_slice(types, "networking.PolicyType"))
        return [*errs, invalid("spec.policyTypes", shown, "may not specify more than two policyTypes")]
    for i, kind in enumerate(types):
        if kind not in ("Ingress", "Egress"):
            errs.append(not_supported(f"spec.policyTypes[{i}]", kind, ["Ingress", "Egress"]))
    return errs
