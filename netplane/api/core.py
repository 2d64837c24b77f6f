"""The API's verbs over stored objects: admission (defaults, validation, allocation) and storage.

Everything here is synchronous on purpose: a request reads, checks and writes
without yielding to the event loop, so requests never interleave between a read
and the write that depends on it (allocations and resourceVersion checks stay exact).
"""

from __future__ import annotations

import copy
import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from netplane.api import errors, gofmt
from netplane.api.admission import Admission
from netplane.api.errors import ApiError
from netplane.api.objects import Obj, decode, meta, new_uid, now, random_suffix
from netplane.api.registry import Registry
from netplane.api.resources import ResourceType
from netplane.api.selectors import FieldRequirement, Selector
from netplane.api.ssa import api as ssa
from netplane.api.storage import ObjectStore
from netplane.api.validation.defaults import drop_type_dependent_service_fields
from netplane.store import KeyExists, KeyNotFound, Record, RevisionMismatch


@dataclass
class WriteOptions:
    dry_run: bool = False
    field_validation: str = "Strict"
    field_manager: str = ""
    force: bool = False
    warnings: list[str] = field(default_factory=list)
    # Names the writer in managedFields when field_manager is empty, as Kubernetes does.
    user_agent: str = ""
    # Set by server-side apply, which has already worked out the object's managedFields.
    applied: bool = False
    # The subresource a write came through when it is carried out on the main resource
    # (scale), for its managedFields entry.
    tracked_subresource: str = ""


def _spec_of(obj: Obj) -> dict[str, Any]:
    """Everything that bumps metadata.generation when changed: all but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class ApiCore:
    def __init__(self, store: ObjectStore, registry: Registry, service_cidr: str = "10.96.0.0/12",
                 node_port_range: tuple[int, int] = (30000, 32767)):
        self.store = store
        self.registry = registry
        self.admission = Admission(store, registry, ipaddress.ip_network(service_cidr), node_port_range)
        # Graceful pod deletion (a kubelet's contract): only when node agents run pods and confirm their
        # end. Without a dataplane nothing would ever finish the deletion, so pods go at once.
        self.graceful_pod_deletion = False

    # --- reads ------------------------------------------------------------------

    def get_record(self, rt: ResourceType, namespace: str, name: str) -> Record:
        record = self.store.get(rt, namespace, name)
        if record is None:
            raise errors.not_found(rt.group_resource, name, rt.group, rt.plural)
        return record

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        return self.present(rt, decode(self.get_record(rt, namespace, name).value))

    def list(self, rt: ResourceType, namespace: str | None, labels: Selector,
             fields: tuple[FieldRequirement, ...]) -> tuple[list[Record], int]:
        return self.store.list(rt, namespace, labels, fields)

    def present(self, rt: ResourceType, obj: Obj) -> Obj:
        """Custom kinds are stored once and served in every version (conversion None)."""
        if not rt.builtin:
            obj["apiVersion"] = rt.api_version
        return obj

    # --- writes -----------------------------------------------------------------

    def create(self, rt: ResourceType, namespace: str, obj: Obj, opts: WriteOptions) -> Obj:
        self._check_body(rt, obj)
        m = meta(obj)
        if rt.namespaced:
            if m.get("namespace") and namespace and m["namespace"] != namespace:
                raise errors.bad_request("the namespace of the provided object does not match the "
                                         "namespace sent on the request")
            m["namespace"] = namespace or m.get("namespace") or "default"
            self._check_namespace_open(m["namespace"])
        else:
            m.pop("namespace", None)
        opts.warnings += self.admission.decode_check(rt, obj, opts.field_validation)
        if not m.get("name") and m.get("generateName"):
            m["name"] = str(m["generateName"]) + random_suffix()
        if m.get("resourceVersion"):
            raise errors.bad_request("resourceVersion should not be set on objects to be created")
        for system_field in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                             "selfLink"):
            m.pop(system_field, None)
        self.admission.default(rt, obj)
        if not opts.applied:
            # Tracked from the decoded, defaulted object, before system fields are set.
            ssa.record_write(rt, None, obj, ssa.manager_name(opts.field_manager, opts.user_agent))
        m["uid"] = new_uid()
        m["creationTimestamp"] = now()
        self.admission.prepare_for_create(rt, obj)
        if rt.kind != "Namespace" and ("spec" in obj or not rt.builtin):
            m["generation"] = 1
        if rt.has_status and not rt.builtin:
            obj.pop("status", None)
        release = self.admission.allocate(rt, obj, None)
        try:
            self.admission.validate(rt, obj, None)
            if opts.dry_run:
                release()
                return self.present(rt, obj)
            record = self.store.create(rt, obj)
        except KeyExists:
            release()
            raise errors.already_exists(rt.group_resource, m.get("name", ""), rt.group) from None
        except ApiError:
            release()
            raise
        self.admission.after_write(rt, obj, None)
        return self.present(rt, decode(record.value))

    def update(self, rt: ResourceType, namespace: str, name: str, new: Obj, opts: WriteOptions,
               subresource: str = "") -> Obj:
        record = self.get_record(rt, namespace, name)
        old = decode(record.value)
        self._check_body(rt, new)
        m = meta(new)
        if m.get("name") and m["name"] != name:
            raise errors.bad_request(f"the name of the object ({m['name']}) does not match the name on "
                                     f"the URL ({name})")
        if m.get("resourceVersion") and m["resourceVersion"] != str(record.revision):
            raise errors.stale(rt.group_resource, name)
        opts.warnings += self.admission.decode_check(rt, new, opts.field_validation)
        merged = self._merge_update(rt, old, new, subresource)
        if not subresource:
            # Subresource writes keep the stored spec; defaulting it again would, for a
            # namespace being finalized, put back the very finalizer being removed.
            if (rt.group, rt.kind) == ("", "Service"):
                drop_type_dependent_service_fields(merged.get("spec") or {}, old.get("spec") or {})
            self.admission.default(rt, merged)
        release = self.admission.allocate(rt, merged, old)
        try:
            self.admission.validate(rt, merged, old)
        except ApiError:
            release()
            raise
        if _spec_of(merged) != _spec_of(old) and "generation" in old["metadata"]:
            merged["metadata"]["generation"] = old["metadata"]["generation"] + 1
        merged["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if opts.applied:
            # A status apply merges into a copy of the stored object; its entries come with the apply.
            self._keep_applied_entries(merged, new)
        else:
            ssa.record_write(rt, old, merged, ssa.manager_name(opts.field_manager, opts.user_agent),
                              subresource or opts.tracked_subresource)
        if merged == old or opts.dry_run:
            release()
            return self.present(rt, merged)
        return self.present(rt, self._write(rt, merged, old, record.revision))

    def _write(self, rt: ResourceType, obj: Obj, old: Obj, revision: int) -> Obj:
        """Store an update; an object being deleted whose last finalizer went away is removed."""
        m = obj["metadata"]
        try:
            if m.get("deletionTimestamp") and not m.get("finalizers") and not self._namespace_finalizers(rt, obj) \
                    and not (rt.kind == "Pod" and m.get("deletionGracePeriodSeconds")):
                # (A pod in graceful deletion stays until its node agent deletes it with grace 0.)
                record = self.store.delete(rt, obj, revision)
                self.admission.release_all(rt, obj)
            else:
                record = self.store.update(rt, obj, revision)
        except RevisionMismatch:
            raise errors.stale(rt.group_resource, m["name"]) from None
        except KeyNotFound:
            raise errors.not_found(rt.group_resource, m["name"], rt.group, rt.plural) from None
        self.admission.after_write(rt, obj, old)
        return decode(record.value)

    @staticmethod
    def _keep_applied_entries(merged: Obj, applied: Obj) -> None:
        entries = applied.get("metadata", {}).get("managedFields")
        if entries:
            merged["metadata"]["managedFields"] = entries
        else:
            merged["metadata"].pop("managedFields", None)

    def _pod_grace_period(self, rt: ResourceType, obj: Obj, options: dict[str, Any]) -> int:
        """Seconds a pod deletion waits for its node agent; 0 deletes at once (unscheduled or finished
        pods, an explicit gracePeriodSeconds=0, or no dataplane)."""
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if not self.graceful_pod_deletion or rt.kind != "Pod" or rt.group != "" or not spec.get("nodeName") \
                or status.get("phase") in ("Succeeded", "Failed"):
            return 0
        grace = options.get("gracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds")
        try:
            return max(0, int(30 if grace is None else grace))
        except (TypeError, ValueError):
            return 30

    @staticmethod
    def _namespace_finalizers(rt: ResourceType, obj: Obj) -> bool:
        return rt.kind == "Namespace" and bool((obj.get("spec") or {}).get("finalizers"))

    def _merge_update(self, rt: ResourceType, old: Obj, new: Obj, subresource: str) -> Obj:
        """The object an update writes: system metadata kept, spec/status split by subresource."""
        if subresource == "status":
            merged = copy.deepcopy(old)
            merged["status"] = new.get("status")
            if merged["status"] is None:
                merged.pop("status")
            return merged
        merged = copy.deepcopy(new)
        m = merged["metadata"]
        om = old["metadata"]
        for system_field in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                             "generation", "namespace", "name"):
            if system_field in om:
                m[system_field] = om[system_field]
            else:
                m.pop(system_field, None)
        if rt.has_status and subresource != "status":
            if "status" in old:
                merged["status"] = copy.deepcopy(old["status"])
            else:
                merged.pop("status", None)
        if rt.kind == "Namespace":
            merged["spec"] = copy.deepcopy(old.get("spec", {})) if subresource != "finalize" else \
                merged.get("spec", {})
        return merged

    def delete(self, rt: ResourceType, namespace: str, name: str, options: dict[str, Any],
               dry_run: bool = False) -> Obj:
        record = self.get_record(rt, namespace, name)
        obj = decode(record.value)
        m = obj["metadata"]
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != m.get("uid"):
            raise errors.conflict(rt.group_resource, name, f"Precondition failed: UID in precondition: "
                                  f"{pre['uid']}, UID in object meta: {m.get('uid')}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != m.get("resourceVersion"):
            raise errors.conflict(rt.group_resource, name, "Precondition failed: ResourceVersion in "
                                  f"precondition: {pre['resourceVersion']}, ResourceVersion in object meta: "
                                  f"{m.get('resourceVersion')}")
        if dry_run:
            return self.present(rt, obj)
        policy = options.get("propagationPolicy")
        if policy is None and options.get("orphanDependents"):
            policy = "Orphan"
        finalizers = list(m.get("finalizers") or [])
        if policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        if rt.kind == "Namespace":
            obj.setdefault("status", {})["phase"] = "Terminating"
        grace = self._pod_grace_period(rt, obj, options)
        if grace:
            if m.get("deletionTimestamp"):
                return self.present(rt, obj)  # already terminating; its agent finishes the deletion
            # As kube-apiserver: the pod stays, marked, until its node agent has stopped it and
            # deletes it again with gracePeriodSeconds=0.
            m["deletionTimestamp"] = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=grace)).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
            m["deletionGracePeriodSeconds"] = grace
            return self.present(rt, self._write(rt, obj, decode(record.value), record.revision))
        if finalizers or self._namespace_finalizers(rt, obj):
            if m.get("deletionTimestamp"):
                return self.present(rt, obj)
            m["finalizers"] = finalizers
            if not finalizers:
                m.pop("finalizers")
            m["deletionTimestamp"] = now()
            m["deletionGracePeriodSeconds"] = 0
            return self.present(rt, self._write(rt, obj, decode(record.value), record.revision))
        m["deletionTimestamp"] = m.get("deletionTimestamp") or now()
        m["deletionGracePeriodSeconds"] = 0
        deleted = self.store.delete(rt, obj, record.revision)
        self.admission.release_all(rt, obj)
        self.admission.after_delete(rt, obj)
        return self.present(rt, decode(deleted.value))

    # --- checks -------------------------------------------------------------------

    def _check_body(self, rt: ResourceType, obj: Any) -> None:
        if not isinstance(obj, dict):
            raise errors.bad_request("the body of the request must be a JSON or YAML object")
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        for name, value in (("apiVersion", api_version), ("kind", kind)):
            if value is not None and not isinstance(value, str):
                raise errors.bad_request("couldn't get version/kind; json parse error: json: cannot unmarshal "
                                         f"{gofmt.json_kind(value)} into Go struct field .{name} of type string")
        if kind and kind != rt.kind:
            raise errors.bad_request(f"the kind of the object ({kind}) does not match the kind on the "
                                     f"URL ({rt.kind})")
        if api_version and api_version != rt.api_version:
            raise errors.bad_request(f"the API version in the data ({api_version}) does not match the "
                                     f"expected API version ({rt.api_version})")
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        if not isinstance(obj.get("metadata", {}), dict):
            raise errors.bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a '
                                     f'{rt.kind}: metadata must be an object')

    def _check_namespace_open(self, namespace: str) -> None:
        ns_type = self.registry.lookup("", "v1", "namespaces")
        assert ns_type is not None
        record = self.store.get(ns_type, "", namespace)
        if record is None:
            raise errors.not_found("namespaces", namespace, "", "namespaces")
        if decode(record.value)["metadata"].get("deletionTimestamp"):
            raise ApiError(403, "Forbidden", f"unable to create new content in namespace {namespace} "
                           "because it is being terminated",
                           {"name": namespace, "kind": "namespaces"})

