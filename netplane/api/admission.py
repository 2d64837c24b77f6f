"""Admission: strict decoding, defaulting, allocation and validation of every write.

Built-in kinds are checked against their v1.32 schemas and Kubernetes' own rules
(`netplane.api.validation`); custom kinds against their CRD's structural schema
(`netplane.api.schemacheck`). Services get their cluster IP and node ports here,
as the Kubernetes API server allocates them at create time.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
from collections.abc import Callable
from typing import Any

from netplane.api import errors, ingressadmission, schemacheck, schemas, serviceaccounts, validation
from netplane.api.allocators import ClusterIPAllocator, NodePortAllocator
from netplane.api.errors import FieldError
from netplane.api.objects import Obj, decode, meta, now
from netplane.api.registry import Registry
from netplane.api.resources import ResourceType
from netplane.api.storage import ObjectStore
from netplane.api.validation.formats import name_is_dns_subdomain
from netplane.api.validation.meta import validate_object_meta, validate_object_meta_update

Release = Callable[[], None]

_NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


def _noop() -> None:
    return None


def _custom_object_meta(obj: Obj, namespaced: bool, old: Obj | None) -> list[FieldError]:
    metadata = obj.get("metadata") or {}
    if old is None:
        return validate_object_meta(metadata, name_is_dns_subdomain, namespaced=namespaced)
    return validate_object_meta_update(metadata, old.get("metadata") or {})


def _generate_job_selector(job: Obj) -> None:
    """The selector the Job registry generates unless ``spec.manualSelector``: the Job's own uid.

    Labels the user already put on the template are kept; a clash is left to validation.
    """
    spec = job.get("spec")
    if not isinstance(spec, dict) or spec.get("manualSelector") is True:
        return
    m = meta(job)
    template = spec.setdefault("template", {})
    if not isinstance(template, dict):
        return
    template_meta = template.setdefault("metadata", {})
    if not isinstance(template_meta, dict):
        return
    labels = template_meta.get("labels")
    if not isinstance(labels, dict):
        labels = template_meta["labels"] = {}
    for label in ("batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name", "controller-uid",
                  "job-name"):
        labels.setdefault(label, m.get("uid", "") if label.endswith("controller-uid") else m.get("name", ""))
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        selector = spec["selector"] = {}
    match = selector.get("matchLabels")
    if not isinstance(match, dict):
        match = selector["matchLabels"] = {}
    match.setdefault("batch.kubernetes.io/controller-uid", m.get("uid", ""))
    # The Job's own labels default to its template's (Kubernetes applies that default again on
    # every read, so a Job created without labels shows the generated ones).
    if not m.get("labels"):
        m["labels"] = dict(labels)


class Admission:
    def __init__(self, store: ObjectStore, registry: Registry,
                 service_cidr: ipaddress.IPv4Network | ipaddress.IPv6Network, node_ports: tuple[int, int]):
        self.store = store
        self.registry = registry
        self.ips = ClusterIPAllocator(service_cidr)
        self.ports = NodePortAllocator(*node_ports)

    # --- start-up ---------------------------------------------------------------

    def rebuild(self) -> None:
        """Allocations and served custom kinds, from what is stored."""
        svc = self._builtin("", "Service")
        for record in self.store.list(svc, None)[0]:
            spec = decode(record.value).get("spec") or {}
            for ip in spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []):
                if ip != "None":
                    self.ips.used.add(ip)
            for port in spec.get("ports") or []:
                if port.get("nodePort"):
                    self.ports.used.add((port["nodePort"], port.get("protocol", "TCP")))
            if spec.get("healthCheckNodePort"):
                self.ports.used.add((spec["healthCheckNodePort"], "TCP"))
        crd = self._builtin("apiextensions.k8s.io", "CustomResourceDefinition")
        for record in self.store.list(crd, None)[0]:
            self._serve_crd(decode(record.value))

    def _builtin(self, group: str, kind: str) -> ResourceType:
        rt = self.registry.by_kind(group, "v1", kind)
        assert rt is not None
        return rt

    # --- decoding -----------------------------------------------------------------

    def decode_check(self, rt: ResourceType, obj: Obj, field_validation: str) -> list[str]:
        """Unknown and mistyped fields: an error, warnings or nothing, per ``fieldValidation``."""
        if rt.builtin:
            schema = schemas.kind_schema(rt.group, rt.version, rt.kind)
            if schema is None:
                return []
            unknown, type_errors = schemacheck.decode_errors(obj, schema, drop_unknown=True)
            if type_errors:
                raise errors.bad_request(schemacheck.type_error_message(rt.kind, rt.version, type_errors[0]))
        else:
            unknown = schemacheck.prune(obj, self._crd_schema(rt))
        if not unknown or field_validation == "Ignore":
            return []
        if field_validation == "Warn":
            return [schemacheck.unknown_field_warning(path) for path in unknown]
        raise errors.bad_request(schemacheck.strict_decoding_message(rt.kind, rt.version, unknown))

    @staticmethod
    def _crd_schema(rt: ResourceType) -> dict[str, Any]:
        return ((rt.crd_version or {}).get("schema") or {}).get("openAPIV3Schema") or \
            {"type": "object", "x-kubernetes-preserve-unknown-fields": True}

    # --- defaulting and validation ----------------------------------------------------

    def default(self, rt: ResourceType, obj: Obj) -> None:
        if rt.builtin:
            if (rt.group, rt.kind) == ("", "Secret") and isinstance(obj.get("stringData"), dict):
                # Write-only convenience field: stored as base64 data, as the API server does.
                data = obj.setdefault("data", {})
                for k, v in obj.pop("stringData").items():
                    data[k] = base64.b64encode(str(v).encode()).decode()
            validation.apply_defaults(rt.group, rt.kind, obj)
            if rt.kind == "CustomResourceDefinition":
                schemacheck.crd_defaults(obj)
        else:
            schemacheck.apply_defaults(obj, self._crd_schema(rt))

    def prepare_for_create(self, rt: ResourceType, obj: Obj) -> None:
        """Create-only admission: a Job's generated selector (it needs the new uid), a Pod's service
        account and its token volume (Kubernetes' ServiceAccount plugin)."""
        if (rt.group, rt.kind) == ("batch", "Job"):
            _generate_job_selector(obj)
        elif (rt.group, rt.kind) == ("", "Pod"):
            accounts = self._builtin("", "ServiceAccount")
            namespace = meta(obj).get("namespace", "")
            serviceaccounts.admit_pod(obj, namespace, lambda name: self.store.get_obj(accounts, namespace, name))

    def validate(self, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        causes: list[FieldError]
        if rt.builtin:
            causes = validation.validate(rt.group, rt.kind, obj, old)
            if rt.kind == "CustomResourceDefinition":
                causes += schemacheck.validate_crd(obj, old)
            elif (rt.group, rt.kind) == ("networking.k8s.io", "Ingress") and not causes:
                causes = self._review_ingress(obj)
        else:
            causes = _custom_object_meta(obj, rt.namespaced, old)
            causes += schemacheck.validate(obj, self._crd_schema(rt), old)
        if causes:
            raise errors.unprocessable(rt.kind, meta(obj).get("name", ""), rt.group, causes)

    def _review_ingress(self, ingress: Obj) -> list[FieldError]:
        def objects(rt: ResourceType | None, namespace: str | None) -> list[Obj]:
            return [decode(r.value) for r in self.store.list(rt, namespace)[0]] if rt is not None else []

        instances = self.registry.lookup("ingress-nginx.alauda.io", "v1", "ingressnginxes")
        return ingressadmission.review(
            ingress,
            namespace_ingresses=lambda: objects(self._builtin("networking.k8s.io", "Ingress"),
                                                meta(ingress).get("namespace", "")),
            classes=lambda: objects(self._builtin("networking.k8s.io", "IngressClass"), None),
            instances=lambda: objects(instances, None))

    # --- allocation ---------------------------------------------------------------------

    def allocate(self, rt: ResourceType, obj: Obj, old: Obj | None) -> Release:
        """Allocate what a Service needs; the returned callable undoes exactly this call's work."""
        if (rt.group, rt.kind) != ("", "Service"):
            return _noop
        spec = obj.setdefault("spec", {})
        old_spec = (old or {}).get("spec") or {}
        taken_ips: list[str] = []
        taken_ports: list[tuple[int, str]] = []

        def release() -> None:
            for ip in taken_ips:
                self.ips.release(ip)
            for port, proto in taken_ports:
                self.ports.release(port, proto)

        causes: list[FieldError] = []
        self._allocate_cluster_ip(spec, old_spec, taken_ips, causes)
        self._allocate_node_ports(spec, old_spec, taken_ports, causes)
        if causes:
            release()
            raise errors.unprocessable("Service", meta(obj).get("name", ""), "", causes)
        if spec.get("clusterIP") and spec.get("type") != "ExternalName":
            validation.default_service_ip_families(obj)
        return release

    def _allocate_cluster_ip(self, spec: dict[str, Any], old_spec: dict[str, Any], taken: list[str],
                             causes: list[FieldError]) -> None:
        if spec.get("type") == "ExternalName":
            for k in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                spec.pop(k, None)
            return
        if old_spec.get("clusterIP") and old_spec.get("type") != "ExternalName":
            # Updates keep the allocated address unless they name another (validation refuses that).
            spec.setdefault("clusterIP", old_spec["clusterIP"])
            if not spec.get("clusterIPs"):
                spec["clusterIPs"] = list(old_spec.get("clusterIPs") or [old_spec["clusterIP"]])
            return
        requested = spec.get("clusterIP") or (spec.get("clusterIPs") or [None])[0]
        if requested == "None":
            spec["clusterIP"], spec["clusterIPs"] = "None", ["None"]
            return
        if requested:
            problem = self.ips.check(requested, "spec.clusterIPs")
            if problem:
                causes.append(problem)
                return
        ip = self.ips.allocate(requested or None)
        taken.append(ip)
        spec["clusterIP"], spec["clusterIPs"] = ip, [ip]

    def _allocate_node_ports(self, spec: dict[str, Any], old_spec: dict[str, Any],
                             taken: list[tuple[int, str]], causes: list[FieldError]) -> None:
        wants = spec.get("type") in _NODE_PORT_TYPES and not (
            spec.get("type") == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is False)
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                     for p in old_spec.get("ports") or [] if p.get("nodePort")}
        # What the Service holds already stays its own, whichever of its ports names it now (a changed
        # port number keeps its node port, as in Kubernetes).
        held = {(node_port, proto) for (_, proto), node_port in old_ports.items()}
        for i, port in enumerate(spec.get("ports") or []):
            if not isinstance(port, dict):
                continue
            proto = port.get("protocol", "TCP")
            if not wants:
                continue
            previous = old_ports.get((port.get("port"), proto))
            requested = port.get("nodePort")
            if requested and (requested == previous or (requested, proto) in held):
                continue
            if not requested and previous:
                port["nodePort"] = previous
                continue
            if requested:
                if not isinstance(requested, int):
                    continue
                problem = self.ports.check(requested, proto, f"spec.ports[{i}].nodePort")
                if problem:
                    causes.append(problem)
                    continue
            try:
                port["nodePort"] = self.ports.allocate(proto, requested or None)
            except RuntimeError:
                causes.append(errors.invalid(f"spec.ports[{i}].nodePort", requested or 0,
                                             "range is full"))
                continue
            taken.append((port["nodePort"], proto))

    def release_all(self, rt: ResourceType, obj: Obj) -> None:
        if (rt.group, rt.kind) != ("", "Service"):
            return
        self._release_service(obj.get("spec") or {}, {})

    def _release_service(self, spec: dict[str, Any], keep: dict[str, Any]) -> None:
        kept_ips = set(keep.get("clusterIPs") or [])
        for ip in spec.get("clusterIPs") or []:
            if ip != "None" and ip not in kept_ips:
                self.ips.release(ip)
        kept_ports = {(p.get("nodePort"), p.get("protocol", "TCP")) for p in keep.get("ports") or []}
        for p in spec.get("ports") or []:
            key = (p.get("nodePort"), p.get("protocol", "TCP"))
            if p.get("nodePort") and key not in kept_ports:
                self.ports.release(*key)

    # --- after a write --------------------------------------------------------------------

    def after_write(self, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        if (rt.group, rt.kind) == ("", "Service") and old is not None:
            self._release_service(old.get("spec") or {}, obj.get("spec") or {})
        if rt.kind == "CustomResourceDefinition" and rt.group == "apiextensions.k8s.io":
            if meta(obj).get("deletionTimestamp"):
                return
            self._serve_crd(obj)
            self._establish(rt, obj)

    def after_delete(self, rt: ResourceType, obj: Obj) -> None:
        if rt.kind == "CustomResourceDefinition" and rt.group == "apiextensions.k8s.io":
            name = meta(obj)["name"]
            for served in self.registry.crd_types(name)[:1]:
                # Its objects go with it, as the apiextensions finalizer does on a cluster.
                for record in self.store.list(served, None)[0]:
                    self.store.delete(served, decode(record.value), record.revision)
            self.registry.set_crd(name, [])

    def _serve_crd(self, crd: Obj) -> None:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        versions = spec.get("versions") or []
        storage = next((v["name"] for v in versions if v.get("storage")), "")
        types = []
        for v in versions:
            if not v.get("served", True):
                continue
            subs = v.get("subresources") or {}
            types.append(ResourceType(
                group=spec.get("group", ""), version=v["name"], kind=names.get("kind", ""),
                plural=names.get("plural", ""), namespaced=spec.get("scope") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()), categories=tuple(names.get("categories") or ()),
                subresources=tuple(s for s in ("status", "scale") if s in subs),
                builtin=False, crd_version=copy.deepcopy(v), storage_version=storage,
                singular_name=names.get("singular", "")))
        self.registry.set_crd(meta(crd)["name"], types)

    def _establish(self, rt: ResourceType, crd: Obj) -> None:
        """Accept the names and mark the CRD Established, as the apiextensions controllers do."""
        spec = crd.get("spec") or {}
        status = crd.get("status") or {}
        stored = list(status.get("storedVersions") or [])
        storage = next((v["name"] for v in spec.get("versions") or [] if v.get("storage")), None)
        if storage and storage not in stored:
            stored.append(storage)
        stamp = now()
        conditions = [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": stamp},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": stamp},
        ]
        old_conditions = {c["type"]: c for c in status.get("conditions") or []}
        for c in conditions:
            if old_conditions.get(c["type"], {}).get("status") == "True":
                c["lastTransitionTime"] = old_conditions[c["type"]].get("lastTransitionTime", stamp)
        new_status = {"acceptedNames": copy.deepcopy(spec.get("names") or {}), "conditions": conditions,
                      "storedVersions": stored}
        if new_status == status:
            return
        record = self.store.get(rt, "", meta(crd)["name"])
        if record is None:
            return
        current = decode(record.value)
        current["status"] = new_status
        self.store.update(rt, current, record.revision)
