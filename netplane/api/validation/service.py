"""Service validation (core/v1), in the order the API server reports its causes."""

from __future__ import annotations

import json
from typing import Any

from netplane.api.errors import FieldError, duplicate, forbidden, invalid, not_supported, required
from netplane.api.gofmt import GoValue, string_slice
from netplane.model import cloud_lb

from . import formats
from .access import as_dict, as_int, as_list, as_str
from .causes import each, one_of
from .gorender import service_port_key
from .meta import validate_labels
from .pod import PROTOCOLS, validate_port_num_or_name

SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
MAX_AFFINITY_SECONDS = 86400


def _cluster_ips(spec: dict[str, Any]) -> list[str]:
    return [ip for ip in as_list(spec.get("clusterIPs")) if isinstance(ip, str)]


def is_headless(spec: dict[str, Any]) -> bool:
    ips = _cluster_ips(spec)
    if not ips and as_str(spec.get("clusterIP")) == "None":
        return True
    return ips == ["None"]


def _externally_accessible(spec: dict[str, Any]) -> bool:
    kind = spec.get("type")
    return kind in ("LoadBalancer",
                    "NodePort") or (kind == "ClusterIP" and bool(as_list(spec.get("externalIPs"))))


def _validate_port(port: dict[str, Any], require_name: bool, names: set[str], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = as_str(port.get("name"))
    if require_name and not name:
        errs.append(required(f"{path}.name"))
    elif name:
        errs += each(f"{path}.name", name, formats.dns1123_label(name))
        if name in names:
            errs.append(duplicate(f"{path}.name", name))
        else:
            names.add(name)
    number = as_int(port.get("port")) or 0
    errs += each(f"{path}.port", number, formats.port_num(number))
    errs += one_of(f"{path}.protocol", port.get("protocol"), PROTOCOLS)
    errs += validate_port_num_or_name(port.get("targetPort"), f"{path}.targetPort")
    app_protocol = port.get("appProtocol")
    if isinstance(app_protocol, str):
        errs += each(f"{path}.appProtocol", app_protocol, formats.qualified_name(app_protocol))
    return errs


def _validate_affinity(spec: dict[str, Any]) -> list[FieldError]:
    affinity = as_str(spec.get("sessionAffinity"))
    if not affinity:
        return [required("spec.sessionAffinity")]
    if affinity not in ("ClientIP", "None"):
        return [not_supported("spec.sessionAffinity", affinity, ["ClientIP", "None"])]
    config = spec.get("sessionAffinityConfig")
    path = "spec.sessionAffinityConfig"
    if affinity == "None":
        return [forbidden(path,
                          "must not be set when session affinity is None")] if config is not None else []
    detail = "when session affinity type is ClientIP"
    if not isinstance(config, dict):
        return [required(path, detail)]
    client_ip = config.get("clientIP")
    if not isinstance(client_ip, dict):
        return [required(f"{path}.clientIP", detail)]
    timeout = as_int(client_ip.get("timeoutSeconds"))
    if timeout is None:
        return [required(f"{path}.clientIP.timeoutSeconds", detail)]
    if timeout <= 0 or timeout > MAX_AFFINITY_SECONDS:
        return [invalid(f"{path}.clientIP.timeoutSeconds", timeout,
                        f"must be greater than 0 and less than {MAX_AFFINITY_SECONDS}")]
    return []


def _validate_cluster_ips(spec: dict[str, Any]) -> list[FieldError]:
    if spec.get("type") == "ExternalName":
        return []
    errs: list[FieldError] = []
    path = "spec.clusterIPs"
    cluster_ip = as_str(spec.get("clusterIP"))
    ips = _cluster_ips(spec)
    shown = GoValue(string_slice(spec.get("clusterIPs")))
    if cluster_ip:
        if not ips:
            errs.append(required(path))
        elif ips[0] != cluster_ip:
            errs.append(invalid(path, shown, "first value must match `clusterIP`"))
    elif ips:
        errs.append(invalid(path, shown, "must be empty when `clusterIP` is not specified"))
    families = as_list(spec.get("ipFamilies"))
    seen: set[str] = set()
    for i, family in enumerate(families):
        if family not in ("IPv4", "IPv6"):
            errs.append(not_supported(f"spec.ipFamilies[{i}]", family, ["IPv4", "IPv6"]))
        if family in seen:
            errs.append(duplicate(f"spec.ipFamilies[{i}]", family))
        seen.add(family)
    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in ("PreferDualStack", "RequireDualStack", "SingleStack"):
        errs.append(not_supported("spec.ipFamilyPolicy", policy, ["PreferDualStack", "RequireDualStack",
                                                                  "SingleStack"]))
    bad_ips = False
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                bad_ips = True
                errs.append(invalid(path, shown, "'None' must be the first and only value"))
            continue
        msgs = formats.valid_ip(ip)
        bad_ips = bad_ips or bool(msgs)
        errs += [invalid(f"{path}[{i}]", ip, m) for m in msgs]
    if len(ips) > 2:
        errs.append(invalid(path, shown, "may only hold up to 2 values"))
    if bad_ips:
        return errs
    if len(ips) > 1 and len({":" in ip for ip in ips}) != len(ips):
        errs.append(invalid(path, shown, "may specify no more than one IP for each IP family"))
    if not is_headless(spec):
        for i, (ip, family) in enumerate(zip(ips, families, strict=False)):
            if family == "IPv4" and ":" in ip:
                errs.append(invalid(f"{path}[{i}]", ip,
                                    f"expected an IPv4 value as indicated by `ipFamilies[{i}]`"))
            if family == "IPv6" and ":" not in ip:
                errs.append(invalid(f"{path}[{i}]", ip,
                                    f"expected an IPv6 value as indicated by `ipFamilies[{i}]`"))
    return errs


def _validate_traffic_policies(spec: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    external = spec.get("externalTrafficPolicy")
    if not _externally_accessible(spec):
        if external:
            errs.append(invalid("spec.externalTrafficPolicy", external,
                                "may only be set for externally-accessible services"))
    elif not external:
        errs.append(required("spec.externalTrafficPolicy"))
    elif external not in ("Cluster", "Local"):
        errs.append(not_supported("spec.externalTrafficPolicy", external, ["Cluster", "Local"]))
    # healthCheckNodePort is allocated by the server when needed; only a set value is checked here.
    health = as_int(spec.get("healthCheckNodePort")) or 0
    needs_health = spec.get("type") == "LoadBalancer" and external == "Local"
    if health and not needs_health:
        errs.append(invalid("spec.healthCheckNodePort", health,
                            "may only be set when `type` is 'LoadBalancer' and "
                            "`externalTrafficPolicy` is 'Local'"))
    elif health:
        errs += each("spec.healthCheckNodePort", health, formats.port_num(health))
    internal = spec.get("internalTrafficPolicy")
    if internal is None:
        if spec.get("type") in ("NodePort", "LoadBalancer", "ClusterIP"):
            errs.append(required("spec.internalTrafficPolicy", "must be specified"))
    elif internal not in ("Cluster", "Local"):
        errs.append(not_supported("spec.internalTrafficPolicy", internal, ["Cluster", "Local"]))
    return errs


def validate_service_spec(spec: Any) -> list[FieldError]:
    spec = as_dict(spec)
    errs: list[FieldError] = []
    kind = spec.get("type")
    ports = as_list(spec.get("ports"))
    headless = is_headless(spec)
    if not ports and not headless and kind != "ExternalName":
        errs.append(required("spec.ports"))
    if kind in ("LoadBalancer", "NodePort") and headless:
        errs.append(invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {kind} services"))
    elif kind == "ExternalName":
        if spec.get("clusterIPs") or spec.get("clusterIP"):
            errs.append(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if as_list(spec.get("ipFamilies")):
            errs.append(forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            errs.append(forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        cname = as_str(spec.get("externalName")).removesuffix(".")
        if cname:
            errs += each("spec.externalName", cname, formats.dns1123_subdomain(cname))
        else:
            errs.append(required("spec.externalName"))
    names: set[str] = set()
    for i, port in enumerate(ports):
        errs += _validate_port(as_dict(port), len(ports) > 1, names, f"spec.ports[{i}]")
    if spec.get("selector") is not None:
        errs += validate_labels(spec.get("selector"), "spec.selector")
    errs += _validate_affinity(spec)
    errs += _validate_cluster_ips(spec)
    for i, ip in enumerate(as_list(spec.get("externalIPs"))):
        ip = as_str(ip)
        msgs = formats.valid_ip(ip)
        errs += [invalid(f"spec.externalIPs[{i}]", ip, m) for m in msgs or formats.non_special_ip(ip)]
    if not kind:
        errs.append(required("spec.type"))
    elif kind not in SERVICE_TYPES:
        errs.append(not_supported("spec.type", kind, SERVICE_TYPES))
    if kind == "ClusterIP":
        for i, port in enumerate(ports):
            if as_int(as_dict(port).get("nodePort")):
                errs.append(forbidden(f"spec.ports[{i}].nodePort",
                                      "may not be used when `type` is 'ClusterIP'"))
    node_ports: set[tuple[str, int]] = set()
    for i, port in enumerate(ports):
        port = as_dict(port)
        node_port = as_int(port.get("nodePort")) or 0
        if not node_port:
            continue
        key = (as_str(port.get("protocol")), node_port)
        if key in node_ports:
            errs.append(duplicate(f"spec.ports[{i}].nodePort", node_port))
        node_ports.add(key)
    seen_ports: set[tuple[str, int]] = set()
    for i, port in enumerate(ports):
        port = as_dict(port)
        pkey = (as_str(port.get("protocol")), as_int(port.get("port")) or 0)
        if pkey in seen_ports:
            errs.append(duplicate(f"spec.ports[{i}]", GoValue(service_port_key(*pkey))))
        seen_ports.add(pkey)
    ranges = as_list(spec.get("loadBalancerSourceRanges"))
    if ranges:
        # Kubernetes really spells this path with a capital L.
        if kind != "LoadBalancer":
            errs.append(forbidden("spec.LoadBalancerSourceRanges",
                                  "may only be used when `type` is 'LoadBalancer'"))
        for i, cidr in enumerate(ranges):
            cidr = as_str(cidr).strip()
            errs += [invalid(f"spec.LoadBalancerSourceRanges[{i}]", cidr,
                             m) for m in formats.valid_cidr(cidr)]
    if spec.get("allocateLoadBalancerNodePorts") is not None and kind != "LoadBalancer":
        errs.append(forbidden("spec.allocateLoadBalancerNodePorts",
                              "may only be used when `type` is 'LoadBalancer'"))
    if kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        errs.append(required("allocateLoadBalancerNodePorts"))
    lb_class = spec.get("loadBalancerClass")
    if lb_class is not None:
        if kind == "LoadBalancer":
            errs += each("spec.loadBalancerClass", lb_class, formats.qualified_name(as_str(lb_class)))
        else:
            errs.append(forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'"))
    errs += _validate_traffic_policies(spec)
    distribution = spec.get("trafficDistribution")
    if distribution is not None and distribution != "PreferClose":
        errs.append(not_supported("spec.trafficDistribution", distribution, ["PreferClose"]))
    return errs


def _autocreate_problems(raw: str) -> list[str]:
    try:
        value = json.loads(raw)
    except ValueError as e:
        return [f"must be a JSON object: {e}"]
    if not isinstance(value, dict):
        return ["must be a JSON object"]
    problems: list[str] = []
    types = ", ".join(f'"{t}"' for t in cloud_lb.AUTOCREATE_TYPES)
    if value.get("type") not in cloud_lb.AUTOCREATE_TYPES:
        problems.append(f'"type" must be one of {types}')
    for key in cloud_lb.AUTOCREATE_STRINGS:
        if key in value and not isinstance(value[key], str):
            problems.append(f'"{key}" must be a string')
    mode = value.get("bandwidth_chargemode")
    if isinstance(mode, str) and mode not in cloud_lb.AUTOCREATE_CHARGEMODES:
        modes = ", ".join(f'"{m}"' for m in cloud_lb.AUTOCREATE_CHARGEMODES)
        problems.append(f'"bandwidth_chargemode" must be one of {modes}')
    size = value.get("bandwidth_size")
    if "bandwidth_size" in value and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        problems.append('"bandwidth_size" must be a positive integer')
    zones = value.get("available_zone")
    if "available_zone" in value and not (isinstance(zones, list) and all(isinstance(z, str) for z in zones)):
        problems.append('"available_zone" must be a list of strings')
    return problems


def validate_cloud_annotations(metadata: Any, old_metadata: Any = None) -> list[FieldError]:
    """The cloud load-balancer annotations of the guide (SVC-9), on every Service type.

    Known keys have their values checked; other keys under a provider's prefix are accepted as is.
    On update a value left unchanged is not checked again, so a Service stored before a rule existed
    can still be edited.
    """
    annotations = as_dict(as_dict(metadata).get("annotations"))
    old = as_dict(as_dict(old_metadata).get("annotations"))
    errs: list[FieldError] = []
    for key in sorted(annotations):
        value = annotations[key]
        if cloud_lb.provider_of(key) is None or (key in old and old[key] == value) or not isinstance(value, str):
            continue
        path = f"metadata.annotations[{key}]"
        if key in cloud_lb.ENUMS:
            if value not in cloud_lb.ENUMS[key]:
                errs.append(not_supported(path, value, cloud_lb.ENUMS[key]))
        elif key in cloud_lb.NON_EMPTY:
            if not value.strip():
                errs.append(invalid(path, value, "must not be empty"))
        elif key == cloud_lb.ELB_AUTOCREATE:
            errs += [invalid(path, value, problem) for problem in _autocreate_problems(value)]
    return errs


def validate_service_update(spec: Any, old_spec: Any) -> list[FieldError]:
    """The dual-stack upgrade/downgrade rules: the primary cluster IP and family never change."""
    spec, old_spec = as_dict(spec), as_dict(old_spec)
    if "ExternalName" in (spec.get("type"), old_spec.get("type")):
        return []
    errs: list[FieldError] = []
    new_ips, old_ips = _cluster_ips(spec), _cluster_ips(old_spec)
    shown = GoValue(string_slice(spec.get("clusterIPs")))
    if not (is_headless(spec) and is_headless(old_spec)):
        if len(old_ips) == len(new_ips):
            errs += [invalid(f"spec.clusterIPs[{i}]", shown, "may not change once set")
                     for i, ip in enumerate(old_ips) if ip != new_ips[i]]
        elif len(old_ips) > len(new_ips):
            if not new_ips:
                errs.append(invalid("spec.clusterIPs[0]", shown, "primary clusterIP can not be unset"))
            elif new_ips[0] != old_ips[0]:
                errs.append(invalid("spec.clusterIPs[0]", shown, "may not change once set"))
            if len(new_ips) == 1 and spec.get("ipFamilyPolicy") != "SingleStack":
                errs.append(invalid("spec.ipFamilyPolicy", spec.get("ipFamilyPolicy"),
                                    "must be set to 'SingleStack' when releasing the secondary clusterIP"))
        elif old_ips and new_ips[0] != old_ips[0]:
            errs.append(invalid("spec.clusterIPs[0]", shown, "may not change once set"))
    if is_headless(spec) or is_headless(old_spec):
        return errs
    new_fams = as_list(spec.get("ipFamilies"))
    old_fams = as_list(old_spec.get("ipFamilies"))
    if len(new_fams) == len(old_fams):
        shown_fams = GoValue(string_slice(new_fams, "core.IPFamily"))
        errs += [invalid("spec.ipFamilies[0]", shown_fams, "may not change once set")
                 for new, old in zip(new_fams, old_fams, strict=True) if new != old]
    elif new_fams and old_fams and new_fams[0] != old_fams[0]:
        errs.append(invalid("spec.ipFamilies[0]", shown, "may not change once set"))
    old_class, new_class = old_spec.get("loadBalancerClass"), spec.get("loadBalancerClass")
    if spec.get("type") == old_spec.get("type") == "LoadBalancer" and old_class != new_class:
        errs.append(invalid("spec.loadBalancerClass", new_class, "may not change once set"))
    return errs
