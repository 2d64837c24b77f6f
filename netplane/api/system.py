"""What a fresh cluster has, and the in-process controllers the API relies on.

Kubernetes runs these in kube-controller-manager; netplane's API server runs them
itself so that deleting a namespace, foreground/background/orphan deletion, default
ServiceAccounts and the kube-root-ca.crt ConfigMap of every namespace (the
root-ca-cert-publisher: put back when deleted or changed) behave as on a cluster even
with no controller process. They react to store events (no polling, so an idle server
stays idle).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from netplane.api.core import ApiCore, WriteOptions
from netplane.api.errors import ApiError
from netplane.api.objects import Obj, decode
from netplane.api.registry import storage_type
from netplane.api.resources import ResourceType
from netplane.api.serviceaccounts import DEFAULT_SERVICE_ACCOUNT, ROOT_CA_CONFIGMAP, root_ca_configmap, with_root_ca
from netplane.store import Event, Record

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# What every namespace has, put back when deleted or changed.
_NAMESPACE_DEFAULTS = frozenset({("ServiceAccount", DEFAULT_SERVICE_ACCOUNT), ("ConfigMap", ROOT_CA_CONFIGMAP)})


def _parse_key(key: str) -> tuple[str, str, str, str]:
    _, group, plural, namespace, name = key.split("/", 4)
    return ("" if group == "core" else group), plural, namespace, name


class SystemControllers:
    def __init__(self, core: ApiCore, api_port: int, root_ca_pem: str):
        self.core = core
        self.api_port = api_port
        self.root_ca_pem = root_ca_pem
        self._owners: dict[str, set[str]] = {}  # owner uid -> dependent keys
        self._task: asyncio.Task[None] | None = None

    def _type(self, group: str, plural: str) -> ResourceType:
        rt = storage_type(self.core.registry, group, plural)
        assert rt is not None, (group, plural)
        return rt

    # --- bootstrap -------------------------------------------------------------------

    def fresh(self) -> bool:
        """Whether this is a new cluster (bootstrap has never run on this store)."""
        return self.core.store.get(self._type("", "namespaces"), "", "kube-system") is None

    def bootstrap(self) -> None:
        ns_type = self._type("", "namespaces")
        for name in SYSTEM_NAMESPACES:
            if self.core.store.get(ns_type, "", name) is None:
                self.core.create(ns_type, "", {"metadata": {"name": name}}, WriteOptions())
        # Every namespace: those made while the server was down, and a CA changed by a restore.
        for record in self.core.store.list(ns_type, None)[0]:
            self._ensure_namespace_defaults(decode(record.value)["metadata"]["name"])
        svc = self._type("", "services")
        if self.core.store.get(svc, "default", "kubernetes") is None:
            ip = self.core.admission.ips.kubernetes_ip
            self.core.create(svc, "default", {"metadata": {
                "name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"clusterIP": ip, "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                                      "targetPort": self.api_port}]}}, WriteOptions())

    def _ensure_namespace_defaults(self, namespace: str) -> None:
        """The default ServiceAccount and the kube-root-ca.crt ConfigMap, unless the namespace is going."""
        ns = self.core.store.get_obj(self._type("", "namespaces"), "", namespace)
        if ns is None or ns["metadata"].get("deletionTimestamp"):
            return
        sa = self._type("", "serviceaccounts")
        cm = self._type("", "configmaps")
        with contextlib.suppress(ApiError):
            if self.core.store.get(sa, namespace, DEFAULT_SERVICE_ACCOUNT) is None:
                self.core.create(sa, namespace, {"metadata": {"name": DEFAULT_SERVICE_ACCOUNT}}, WriteOptions())
        with contextlib.suppress(ApiError):
            existing = self.core.store.get_obj(cm, namespace, ROOT_CA_CONFIGMAP)
            if existing is None:
                self.core.create(cm, namespace, root_ca_configmap(self.root_ca_pem), WriteOptions())
            elif (fixed := with_root_ca(existing, self.root_ca_pem)) is not None:
                self.core.update(cm, namespace, ROOT_CA_CONFIGMAP, fixed, WriteOptions())

    # --- event loop --------------------------------------------------------------------

    def start(self) -> None:
        for _, record in self.core.store.all_records():
            self._index(record, None)
        watch = self.core.store.raw.watch("/", 0, limit=1 << 30)
        self._task = asyncio.get_running_loop().create_task(self._run(watch))
        # Deletions that were in progress when the server last stopped.
        for rt, record in list(self.core.store.all_records()):
            obj = decode(record.value)
            if obj["metadata"].get("deletionTimestamp"):
                self._handle_deleting(rt, obj)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, watch: object) -> None:
        from netplane.store import Watch

        assert isinstance(watch, Watch)
        while True:
            event = await watch.next()
            if event is None:
                return
            try:
                self._handle(event)
            except Exception:  # a controller bug must not stop the others
                log.exception("system controller failed on %s", event.record.key)

    def _unindex(self, record: Record | None) -> None:
        if record is not None and record.attrs is not None:
            for uid in record.attrs.owners:
                self._owners.get(uid, set()).discard(record.key)

    def _index(self, record: Record, prev: Record | None) -> None:
        self._unindex(prev)
        if record.attrs is not None:
            for uid in record.attrs.owners:
                self._owners.setdefault(uid, set()).add(record.key)

    def _handle(self, event: Event) -> None:
        group, plural, namespace, _ = _parse_key(event.record.key)
        rt = storage_type(self.core.registry, group, plural)
        if event.type == "DELETED":
            self._unindex(event.prev)
            self._unindex(event.record)
        else:
            self._index(event.record, event.prev)
        if rt is None:
            return
        obj = decode(event.record.value)
        if event.type == "ADDED" and rt.kind == "Namespace" and rt.group == "":
            self._ensure_namespace_defaults(obj["metadata"]["name"])
        elif rt.group == "" and (rt.kind, obj["metadata"]["name"]) in _NAMESPACE_DEFAULTS:
            self._ensure_namespace_defaults(namespace)
        if event.type == "DELETED":
            self._collect_dependents(obj["metadata"].get("uid", ""))
            self._recheck_owners(obj)
            if namespace:
                self._recheck_namespace(namespace)
        elif obj["metadata"].get("deletionTimestamp"):
            self._handle_deleting(rt, obj)
            self._recheck_owners(obj)

    # --- garbage collection -------------------------------------------------------------

    def _dependents(self, uid: str) -> list[tuple[ResourceType, Obj]]:
        result = []
        for key in sorted(self._owners.get(uid, ())):
            group, plural, _, _ = _parse_key(key)
            rt = storage_type(self.core.registry, group, plural)
            record = self.core.store.raw.get(key)
            if rt is not None and record is not None:
                result.append((rt, decode(record.value)))
        return result

    def _collect_dependents(self, owner_uid: str) -> None:
        """An owner is gone: dependents lose the reference, and those left with no owner are deleted."""
        for rt, obj in self._dependents(owner_uid):
            refs = obj["metadata"].get("ownerReferences") or []
            remaining = [r for r in refs if r.get("uid") != owner_uid]
            with contextlib.suppress(ApiError):
                if remaining:
                    obj["metadata"]["ownerReferences"] = remaining
                    self.core.update(rt, obj["metadata"].get("namespace", ""), obj["metadata"]["name"], obj,
                                     WriteOptions())
                else:
                    self.core.delete(rt, obj["metadata"].get("namespace", ""), obj["metadata"]["name"],
                                     {"propagationPolicy": "Background"})

    def _recheck_owners(self, dependent: Obj) -> None:
        """A dependent changed or went away: an owner waiting in foreground deletion may now finish."""
        ns = dependent["metadata"].get("namespace", "")
        for ref in dependent["metadata"].get("ownerReferences") or []:
            owner_type = self._owner_type(ref)
            if owner_type is None:
                continue
            record = self.core.store.get(owner_type, ns if owner_type.namespaced else "", ref.get("name", ""))
            if record is None:
                continue
            owner = decode(record.value)
            if owner["metadata"].get("deletionTimestamp"):
                self._handle_deleting(owner_type, owner)

    def _owner_type(self, ref: dict[str, str]) -> ResourceType | None:
        api_version = ref.get("apiVersion", "")
        group, _, version = api_version.rpartition("/")
        return self.core.registry.by_kind(group, version, ref.get("kind", ""))

    def _handle_deleting(self, rt: ResourceType, obj: Obj) -> None:
        m = obj["metadata"]
        finalizers = list(m.get("finalizers") or [])
        uid = m.get("uid", "")
        if rt.kind == "Namespace" and rt.group == "":
            self._recheck_namespace(m["name"])
            return
        if "orphan" in finalizers:
            for dep_rt, dep in self._dependents(uid):
                dep["metadata"]["ownerReferences"] = [r for r in dep["metadata"].get("ownerReferences") or []
                                                      if r.get("uid") != uid] or None
                if dep["metadata"]["ownerReferences"] is None:
                    del dep["metadata"]["ownerReferences"]
                with contextlib.suppress(ApiError):
                    self.core.update(dep_rt, dep["metadata"].get("namespace", ""), dep["metadata"]["name"],
                                     dep, WriteOptions())
            self._remove_finalizer(rt, obj, "orphan")
        elif "foregroundDeletion" in finalizers:
            dependents = self._dependents(uid)
            if not dependents:
                self._remove_finalizer(rt, obj, "foregroundDeletion")
                return
            for dep_rt, dep in dependents:
                if not dep["metadata"].get("deletionTimestamp"):
                    with contextlib.suppress(ApiError):
                        self.core.delete(dep_rt, dep["metadata"].get("namespace", ""), dep["metadata"]["name"],
                                         {"propagationPolicy": "Foreground"})

    def _remove_finalizer(self, rt: ResourceType, obj: Obj, finalizer: str) -> None:
        m = obj["metadata"]
        record = self.core.store.get(rt, m.get("namespace", ""), m["name"])
        if record is None:
            return
        current = decode(record.value)
        remaining = [f for f in current["metadata"].get("finalizers") or [] if f != finalizer]
        current["metadata"]["finalizers"] = remaining
        if not remaining:
            del current["metadata"]["finalizers"]
        with contextlib.suppress(ApiError):
            self.core.update(rt, m.get("namespace", ""), m["name"], current, WriteOptions())

    # --- namespaces -----------------------------------------------------------------------

    def _recheck_namespace(self, namespace: str) -> None:
        """A terminating namespace: delete its contents, then let the namespace go."""
        ns_type = self._type("", "namespaces")
        record = self.core.store.get(ns_type, "", namespace)
        if record is None:
            return
        ns = decode(record.value)
        if not ns["metadata"].get("deletionTimestamp"):
            return
        left = 0
        for rt in list(self.core.registry.all()):
            if not rt.namespaced or not rt.stored_as_served:
                continue
            for item in self.core.store.list(rt, namespace)[0]:
                left += 1
                obj = decode(item.value)
                if not obj["metadata"].get("deletionTimestamp"):
                    with contextlib.suppress(ApiError):
                        self.core.delete(rt, namespace, obj["metadata"]["name"], {"propagationPolicy": "Background"})
        if left == 0 and (ns.get("spec") or {}).get("finalizers"):
            ns["spec"]["finalizers"] = []
            with contextlib.suppress(ApiError):
                self.core.update(ns_type, "", namespace, ns, WriteOptions(), "finalize")
