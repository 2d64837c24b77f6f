"""The IPAM controller: central pod address management, as Kube-OVN's controller does it.

One in-memory `IPAM` core (netplane/ipam) per leadership term, rebuilt at the term's start from
what is persisted, and three reconcilers around it:

    Subnet ──subnets──▶ normalise + validate, IPAM.set_subnet, spec fixes, status (conditions, counts)
    IPPool ──ippools──▶ IPAM.set_pool, status
    Pod    ──pods─────▶ IPAM.allocate ──▶ IP object <pod>.<namespace> ──▶ pod annotations
           (also woken by IP objects, StatefulSets, namespaces)       ◀── release on deletion

Start-up (`ensure_ready`, once per term, before any reconcile acts): create the default VPC and
the default and join subnets if missing; load every valid subnet (oldest first, so overlap
verdicts are stable) and pool; then `restore` every IP object, and every pod annotated
`allocated: "true"` whose IP object is missing (Kube-OVN rebuilds from pod annotations, so a lost
IP object never hands its address to someone else). Only then are new addresses handed out, so a
restart neither reallocates nor duplicates.

Timing: a pod gets its address as soon as it exists, scheduled or not, as with Kube-OVN, whose
controller allocates on the pod's creation and whose CNI then waits for `allocated: "true"`. The
IP object's nodeName follows the pod once it is scheduled.

Allocation rules, in the order Kube-OVN applies them (first match wins):
1. `allocated: "true"` already: keep what the pod has (re-taken from its annotations if the IP
   object was lost);
2. the pod's `logical_switch` annotation names the subnet for any of the following;
3. `ip_address`: that fixed address, in the namespace's subnet that contains it;
4. `ip_pool`: an IPPool's name, or a list of addresses (a StatefulSet pod takes the entry of its
   ordinal, other pods the first entry nobody holds);
5. IPPools bound to the namespace (`spec.namespaces`), without falling back to the subnet;
6. a subnet bound to the namespace, by `spec.namespaces` or `spec.namespaceSelectors` (a project
   is bound with `namespaceSelectors: [{matchLabels: {cpaas.io/project: <name>}}]`); several:
   a random one that still has room (the guide's allocation rules);
7. the default subnet.
A pod that already holds addresses and asks for nothing particular keeps them: that is how a
StatefulSet pod gets its address back when re-created.

Release: when a pod is deleted or has finished, its addresses return to the IPAM (quarantined:
not reused while never-used ones remain) and its IP object is deleted — except for a StatefulSet
pod the StatefulSet will re-create (it exists, is not being deleted and its replicas still cover
the ordinal). Scaling the StatefulSet down or deleting it releases the kept addresses.

IP objects carry no owner reference and no finalizer, as Kube-OVN's carry no owner (its
finalizer guards its OVN ports, which netplane does not have): deleting one by hand is repaired
from the controller's memory at the next reconcile of its pod.

Failures (AddressConflict, AddressOutOfRange, NoAvailableAddress, NoSubnet, ...) leave a Warning
Event on the pod with the core's reason and message, are retried every RETRY_AFTER seconds and
whenever addresses are released or subnets, pools or the namespace change; other pods go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ipaddress
import json
import logging
import random
from typing import Any

from netplane.controllers.ipam import pods as p
from netplane.controllers.ipam.defaults import NetworkDefaults
from netplane.controllers.ipam.subnets import VALIDATE_FAILED, VALIDATE_OK, Analysis, analyse, describe
from netplane.controllers.kube.errors import AlreadyExists, NotFound
from netplane.controllers.kube.resources import NAMESPACES, Resource
from netplane.controllers.runtime.cache import object_key, split_key
from netplane.controllers.runtime.conditions import find_condition, set_condition
from netplane.controllers.runtime.controller import Controller, Result, own_key
from netplane.controllers.runtime.manager import Manager
from netplane.ipam import IPAM, Allocation, IPAMError, NicKey, NoAvailableAddress, NoSubnet, PoolSpec, choose_subnet
from netplane.ipam.addresses import parse_ip
from netplane.model.kubeovn import GROUP, VERSION

log = logging.getLogger("netplane.ipam")

Obj = dict[str, Any]
PODS = Resource("", "v1", "pods", kind="Pod")
STATEFULSETS = Resource("apps", "v1", "statefulsets", kind="StatefulSet")
SUBNETS = Resource(GROUP, VERSION, "subnets", namespaced=False, kind="Subnet")
IPS = Resource(GROUP, VERSION, "ips", namespaced=False, kind="IP")
VPCS = Resource(GROUP, VERSION, "vpcs", namespaced=False, kind="Vpc")
IPPOOLS = Resource(GROUP, VERSION, "ippools", namespaced=False, kind="IPPool")

# Which user-written values the controller corrected, as {field: [written, corrected]}: kept on
# the Subnet so the explanation survives the rewrite (and restarts) while the value stays corrected.
NORMALISED = "netplane.io/normalised"
RETRY_AFTER = 30.0
STS_INDEX = "statefulset"
READY_OK = "SubnetReady"


def _meta(obj: Obj) -> Obj:
    meta: Obj = obj.get("metadata") or {}
    return meta


def _terminating(obj: Obj) -> bool:
    return bool(_meta(obj).get("deletionTimestamp"))


def ip_pod_key(ip: Obj) -> list[str]:
    """The pod key of a pod's primary-interface IP object (`<pod>.<namespace>`)."""
    spec = ip.get("spec") or {}
    pod, namespace = spec.get("podName"), spec.get("namespace")
    if pod and namespace and _meta(ip).get("name") == f"{pod}.{namespace}":
        return [f"{namespace}/{pod}"]
    return []


def ip_statefulset(ip: Obj) -> list[str]:
    spec = ip.get("spec") or {}
    if spec.get("podType") != p.STATEFULSET or not ip_pod_key(ip):
        return []
    owner = p.statefulset_of_name(str(spec["podName"]), "")
    return [f"{spec['namespace']}/{owner[0]}"] if owner else []


def _split(addresses: str) -> tuple[str | None, str | None]:
    v4 = v6 = None
    for text in filter(None, (a.strip().split("/", 1)[0] for a in addresses.split(","))):
        try:
            version, _ = parse_ip(text)
        except ValueError:
            continue
        if version == 4:
            v4 = text
        else:
            v6 = text
    return v4, v6


class IpamController:
    def __init__(self, mgr: Manager, defaults: NetworkDefaults, rng: random.Random | None = None):
        self.client = mgr.client
        self.recorder = mgr.recorder
        self.defaults = defaults
        self.rng = rng or random.Random()
        self.ipam = IPAM(self.rng)
        # Subnets deleted while addresses are in use: kept so those addresses stay held (the guide:
        # pods keep their IPs), closed to new allocations, forgotten once empty.
        self.closed: set[str] = set()
        self.pending: set[str] = set()  # pods whose allocation failed, retried when things change
        self._ready = False
        self._lock = asyncio.Lock()
        self.namespaces = mgr.informer(NAMESPACES)
        self.pods = mgr.informer(PODS)
        self.subnets = mgr.informer(SUBNETS)
        self.ips = mgr.informer(IPS, indexers={STS_INDEX: ip_statefulset})
        self.vpcs = mgr.informer(VPCS)
        self.pools = mgr.informer(IPPOOLS)
        self.statefulsets = mgr.informer(STATEFULSETS)
        self.pod_controller: Controller = mgr.controller("ipam-pods", self.reconcile_pod, workers=4)
        self.subnet_controller: Controller = mgr.controller("ipam-subnets", self.reconcile_subnet)
        self.pool_controller: Controller = mgr.controller("ipam-ippools", self.reconcile_pool)

    # ------------------------------------------------------------------ start-up

    async def ensure_ready(self) -> None:
        if self._ready:
            return
        async with self._lock:
            if self._ready:
                return
            created = await self._create_defaults()
            self._load(created)
            self._ready = True

    async def _create_defaults(self) -> list[Obj]:
        created = []
        if self.vpcs.cache.get(self.defaults.vpc) is None:
            with contextlib.suppress(AlreadyExists):
                await self.client.create(VPCS, self.defaults.vpc_object())
                log.info("created the default VPC %s", self.defaults.vpc)
        for name in self.defaults.protected:
            if self.subnets.cache.get(name) is None:
                obj = await self._create_subnet(name)
                if obj is not None:
                    created.append(obj)
        return created

    async def _create_subnet(self, name: str) -> Obj | None:
        try:
            obj = await self.client.create(SUBNETS, self.defaults.subnet_object(name))
        except AlreadyExists:
            return None
        log.info("created the built-in subnet %s", name)
        return obj

    def _load(self, created: list[Obj]) -> None:
        subnets = {object_key(o): o for o in [*created, *self.subnets.cache]}
        objs = sorted(subnets.values(), key=lambda o: (str(_meta(o).get("creationTimestamp") or ""), object_key(o)))
        for obj in objs:
            analysis = analyse(obj, objs, self.defaults, self._held())
            if analysis.spec is not None and not _terminating(obj):
                try:
                    self.ipam.set_subnet(analysis.spec)
                except IPAMError as err:
                    log.warning("subnet %s not loaded: %s", analysis.name, err.message)
        for pool in self.pools.cache:
            with contextlib.suppress(IPAMError):
                self.ipam.set_pool(self._pool_spec(pool))
        allocations: list[Allocation] = []
        persisted: set[str] = set()
        for ip in self.ips.cache:
            if not ip_pod_key(ip):
                continue
            spec = ip.get("spec") or {}
            name = str(_meta(ip)["name"])
            persisted.add(name)
            allocations.append(Allocation(NicKey(name), str(spec.get("subnet") or ""),
                                          spec.get("v4IpAddress") or None, spec.get("v6IpAddress") or None))
        for pod in self.pods.cache:
            ann = p.annotations_of(pod)
            name = f"{_meta(pod).get('name')}.{_meta(pod).get('namespace')}"
            if name in persisted or ann.get(p.ALLOCATED) != "true" or not ann.get(p.IP_ADDRESS):
                continue
            v4, v6 = _split(ann[p.IP_ADDRESS])
            allocations.append(Allocation(NicKey(name), ann.get(p.LOGICAL_SWITCH) or self.defaults.default_subnet,
                                          v4, v6))
        for rejected in self.ipam.restore(allocations):
            log.warning("persisted allocation %s of %s not restored: %s", rejected.allocation.ip_address,
                        rejected.allocation.key, rejected.error.message)
        log.info("IPAM restored: %d subnets, %d allocations", len(self.ipam.subnets()),
                 sum(1 for _ in self.ipam.allocations()))

    # ------------------------------------------------------------------ wake-ups

    def _wake_pending(self, namespace: str | None = None) -> None:
        for key in list(self.pending):
            if namespace is None or key.startswith(f"{namespace}/"):
                self.pod_controller.queue.add(key)

    def _changed(self, subnet: str) -> None:
        """Addresses of `subnet` were taken or released: its status and its pools' are stale."""
        self.subnet_controller.queue.add(subnet)
        for pool in self.pools.cache:
            if (pool.get("spec") or {}).get("subnet") == subnet:
                self.pool_controller.queue.add(object_key(pool))

    def pending_in_namespace(self, namespace: Obj) -> list[str]:
        self._wake_pending(str(_meta(namespace).get("name") or ""))
        return []

    def _held(self) -> dict[str, str]:
        return {name: self.ipam.subnet(name).cidr_block for name in self.ipam.subnets()}

    def _usable(self, subnet: str) -> bool:
        return subnet in self.ipam.subnets() and subnet not in self.closed

    # ------------------------------------------------------------------ subnets

    async def reconcile_subnet(self, name: str) -> Result:
        await self.ensure_ready()
        obj = self.subnets.cache.get(name)
        before = self._cidr(name)
        if obj is None or _terminating(obj):
            if obj is None and name in self.defaults.protected:
                # The guide: the default subnet cannot be deleted. Without a webhook to refuse it,
                # it is put back (the addresses it holds never left the IPAM).
                await self._create_subnet(name)
                return Result()
            self._close(name)
        else:
            obj = await self._reconcile_subnet(obj)
        if self._cidr(name) != before:
            # Another subnet's overlap verdict may depend on this one.
            for other in self.subnets.cache.list_keys():
                if other != name:
                    self.subnet_controller.queue.add(other)
        self._wake_pending()
        await self._sync_vpc()
        return Result()

    def _cidr(self, name: str) -> str | None:
        return self.ipam.subnet(name).cidr_block if self._usable(name) else None

    def _close(self, name: str) -> None:
        if name not in self.ipam.subnets():
            return
        try:
            self.ipam.remove_subnet(name)
            self.closed.discard(name)
            log.info("subnet %s deleted", name)
        except IPAMError:
            self.closed.add(name)
            log.info("subnet %s deleted while addresses are in use: they stay until released", name)

    async def _reconcile_subnet(self, obj: Obj) -> Obj:
        name = str(_meta(obj)["name"])
        analysis = analyse(obj, list(self.subnets.cache), self.defaults, self._held())
        error, reason = analysis.error, VALIDATE_FAILED
        if analysis.spec is not None:
            try:
                self.ipam.set_subnet(analysis.spec)
                self.closed.discard(name)
            except IPAMError as err:
                # Kube-OVN's webhook would have refused this update; the last valid spec stays in force.
                error, reason = err.message, err.reason
        if "cidrBlock" in analysis.normal:
            # Formatting comes before validation, as in Kube-OVN: an invalid subnet is normalised too.
            obj = await self._normalise(obj, analysis)
        await self._subnet_status(obj, analysis, error, reason)
        return obj

    def _corrections(self, obj: Obj, analysis: Analysis) -> dict[str, tuple[str, str]]:
        try:
            recorded = json.loads(p.annotations_of(obj).get(NORMALISED) or "{}")
        except ValueError:
            recorded = {}
        spec = obj.get("spec") or {}
        kept = {k: (str(v[0]), str(v[1])) for k, v in recorded.items()
                if isinstance(v, list) and len(v) == 2 and spec.get(k) == v[1] == analysis.normal.get(k)}
        return {**kept, **analysis.corrections}

    async def _normalise(self, obj: Obj, analysis: Analysis) -> Obj:
        corrections = self._corrections(obj, analysis)
        recorded = json.dumps({k: list(v) for k, v in sorted(corrections.items())}) if corrections else None
        spec_patch = analysis.patch(obj.get("spec") or {})
        if not spec_patch and p.annotations_of(obj).get(NORMALISED) == recorded:
            return obj
        body: Obj = {"metadata": {"resourceVersion": _meta(obj).get("resourceVersion"),
                                  "annotations": {NORMALISED: recorded}}}
        if spec_patch:
            body["spec"] = spec_patch
        updated = await self.client.patch(SUBNETS, str(_meta(obj)["name"]), body)
        if analysis.corrections:
            await self.recorder.normal(updated, "SpecNormalized", describe(analysis.corrections))
        return updated

    async def _subnet_status(self, obj: Obj, analysis: Analysis, error: str, reason: str) -> None:
        name = str(_meta(obj)["name"])
        old = obj.get("status") or {}
        status = copy.deepcopy(old)
        conditions: list[Obj] = status.setdefault("conditions", [])
        generation = _meta(obj).get("generation")
        if error:
            set_condition(conditions, "Validated", "False", reason, error, generation)
            set_condition(conditions, "Ready", "False", reason, error, generation)
        else:
            set_condition(conditions, "Validated", "True", VALIDATE_OK,
                          describe(self._corrections(obj, analysis)), generation)
            set_condition(conditions, "Ready", "True", READY_OK, "", generation)
        if name in self.ipam.subnets():
            usage = {u.version: u for u in self.ipam.usage(name)}
            ranges = self.ipam.usage_ranges(name)
            for version in (4, 6):
                u = usage.get(version)
                using_range, available_range = ranges.get(version, ("", ""))
                status[f"v{version}usingIPs"] = u.using if u else 0
                status[f"v{version}availableIPs"] = u.available if u else 0
                status[f"v{version}usingIPrange"] = using_range
                status[f"v{version}availableIPrange"] = available_range
        if status == old:
            return
        previous = find_condition(old.get("conditions"), "Validated")
        obj = {**obj, "status": status}
        try:
            await self.client.update_status(SUBNETS, obj)
        except NotFound:
            return
        if error and (previous is None or previous.get("message") != error):
            await self.recorder.warning(obj, reason, error)

    async def _sync_vpc(self) -> None:
        vpc = self.vpcs.cache.get(self.defaults.vpc)
        if vpc is None:
            with contextlib.suppress(AlreadyExists):
                await self.client.create(VPCS, self.defaults.vpc_object())
            return
        members = sorted(
            object_key(s) for s in self.subnets.cache
            if self._usable(object_key(s)) and str((s.get("spec") or {}).get("vpc") or self.defaults.vpc)
            == self.defaults.vpc)
        old = vpc.get("status") or {}
        status = {**old, "default": True, "defaultLogicalSwitch": self.defaults.default_subnet,
                  "router": self.defaults.vpc, "standby": True, "subnets": members}
        if status != old:
            with contextlib.suppress(NotFound):
                await self.client.update_status(VPCS, {**vpc, "status": status})

    # ------------------------------------------------------------------ pools

    def _pool_spec(self, pool: Obj) -> PoolSpec:
        spec = pool.get("spec") or {}
        return PoolSpec(str(_meta(pool)["name"]), str(spec.get("subnet") or ""), tuple(spec.get("ips") or ()),
                        tuple(spec.get("namespaces") or ()))

    async def reconcile_pool(self, name: str) -> Result:
        await self.ensure_ready()
        pool = self.pools.cache.get(name)
        if pool is None or _terminating(pool):
            self.ipam.remove_pool(name)
            self._wake_pending()
            return Result()
        spec = self._pool_spec(pool)
        error, reason = "", ""
        try:
            self.ipam.set_pool(spec)
        except IPAMError as err:
            error, reason = err.message, err.reason
        old = pool.get("status") or {}
        status = copy.deepcopy(old)
        conditions: list[Obj] = status.setdefault("conditions", [])
        if error:
            set_condition(conditions, "Ready", "False", reason, error)
        else:
            set_condition(conditions, "Ready", "True", "IPPoolReady", "")
            ranges = {u.version: u for u in self.ipam.usage(spec.subnet, name)}
            for version in (4, 6):
                u = ranges.get(version)
                status[f"v{version}UsingIPs"] = u.using if u else 0
                status[f"v{version}AvailableIPs"] = u.available if u else 0
        if status != old:
            with contextlib.suppress(NotFound):
                await self.client.update_status(IPPOOLS, {**pool, "status": status})
        self._wake_pending()
        # A pool waits for its subnet to become valid; a slow retry is enough for that.
        return Result(requeue_after=5.0) if reason == NoSubnet.reason else Result()

    # ------------------------------------------------------------------ pods

    async def reconcile_pod(self, key: str) -> Result:
        await self.ensure_ready()
        namespace, name = split_key(key)
        if namespace is None:
            return Result()
        nic = NicKey(f"{name}.{namespace}")
        pod = self.pods.cache.get(key)
        if pod is None or not p.alive(pod):
            self.pending.discard(key)
            await self._release(nic, namespace, name, pod)
            return Result()
        if p.host_network(pod):
            return Result()
        held = self.ipam.allocation(nic)
        try:
            allocation = self._allocate(pod, nic, namespace)
        except IPAMError as err:
            self.pending.add(key)
            log.info("pod %s: %s: %s", key, err.reason, err.message)
            await self.recorder.warning(pod, err.reason, err.message)
            return Result(requeue_after=RETRY_AFTER)
        self.pending.discard(key)
        if held != allocation:
            if held is not None and held.subnet != allocation.subnet:
                self._changed(held.subnet)
            self._changed(allocation.subnet)
        await self._persist(pod, nic, allocation)
        return Result()

    def _bound_subnets(self, namespace: str) -> list[str]:
        ns = self.namespaces.cache.get(namespace)
        labels = _meta(ns).get("labels") or {} if ns is not None else {}
        bound = []
        for subnet in self.subnets.cache:
            name = object_key(subnet)
            spec = subnet.get("spec") or {}
            if not self._usable(name):
                continue
            if namespace in (spec.get("namespaces") or []) or any(
                    p.selector_matches(sel or {}, labels) for sel in spec.get("namespaceSelectors") or []):
                bound.append(name)
        return sorted(bound)

    def _subnet_for(self, nic: NicKey, subnet: str) -> str:
        if not self._usable(subnet):
            raise NoSubnet(f"subnet {subnet} for {nic} does not exist or is not valid: see `kubectl get subnet "
                           f"{subnet} -o yaml`", subnet=subnet, key=nic.name)
        return subnet

    def _default_for(self, nic: NicKey, namespace: str) -> list[str]:
        """The subnets a pod of `namespace` may use: those bound to it, else the default subnet."""
        return self._bound_subnets(namespace) or [self._subnet_for(nic, self.defaults.default_subnet)]

    def _containing(self, nic: NicKey, address: str, candidates: list[str]) -> str:
        """Of the pod's subnets, the one whose CIDR holds `address` (the first, to be refused, if none)."""
        text = address.split(",")[0].strip().split("/", 1)[0]
        with contextlib.suppress(ValueError):
            ip = ipaddress.ip_address(text)
            for name in candidates:
                if any(ip in f.network for f in self.ipam.subnet(name).families.values()):
                    return name
        return candidates[0]

    def _allocate(self, pod: Obj, nic: NicKey, namespace: str) -> Allocation:
        ann = p.annotations_of(pod)
        held = self.ipam.allocation(nic)
        if ann.get(p.ALLOCATED) == "true" and ann.get(p.IP_ADDRESS):
            if held is not None:
                return held
            # Allocated before, but the IPAM lost it (its IP object was deleted): take the same back.
            subnet = ann.get(p.LOGICAL_SWITCH) or self.defaults.default_subnet
            return self.ipam.allocate(nic, self._subnet_for(nic, subnet), static=ann[p.IP_ADDRESS])
        explicit = ann.get(p.LOGICAL_SWITCH, "")
        static, pool = ann.get(p.IP_ADDRESS, ""), ann.get(p.IP_POOL, "")
        if held is not None and not (explicit or static or pool):
            return held
        candidates = [self._subnet_for(nic, explicit)] if explicit else None
        if static:
            candidates = candidates or self._default_for(nic, namespace)
            return self.ipam.allocate(nic, self._containing(nic, static, candidates), static=static)
        if pool:
            if self.pools.cache.get(pool) is not None:
                return self.ipam.allocate(nic, explicit or None, pools=[pool])
            choice = self._pool_entry(pod, nic, pool, candidates or self._default_for(nic, namespace))
            candidates = candidates or self._default_for(nic, namespace)
            return self.ipam.allocate(nic, self._containing(nic, choice, candidates), static=choice)
        bound_pools = self.ipam.pools_for_namespace(namespace)
        if bound_pools and not explicit:
            return self.ipam.allocate(nic, None, pools=bound_pools)
        candidates = candidates or self._default_for(nic, namespace)
        subnet = candidates[0] if len(candidates) == 1 else choose_subnet(self.ipam, candidates, self.rng,
                                                                          key=nic.name)
        return self.ipam.allocate(nic, subnet)

    def _pool_entry(self, pod: Obj, nic: NicKey, value: str, candidates: list[str]) -> str:
        entries = p.pool_entries(value)
        sts = p.statefulset_of(pod)
        if sts is not None:
            if sts[1] >= len(entries):
                raise NoAvailableAddress(f"the ip_pool annotation of {nic} lists {len(entries)} addresses; StatefulSet "
                                         f"ordinal {sts[1]} has none: list one address per replica", key=nic.name)
            return entries[sts[1]]
        for entry in entries:
            owners = set()
            for text in entry.split(","):
                subnet = self._containing(nic, text, candidates)
                with contextlib.suppress(ValueError, IPAMError):
                    owners.add(self.ipam.owner(subnet, text.strip().split("/", 1)[0]))
            if owners <= {None, nic}:
                return entry
        raise NoAvailableAddress(f"every address in the ip_pool annotation of {nic} ({value}) is held by another "
                                 "pod: add addresses to the annotation or delete a pod using one", key=nic.name)

    async def _persist(self, pod: Obj, nic: NicKey, allocation: Allocation) -> None:
        """Write the allocation: the IP object first, so a crash before the pod is annotated loses nothing."""
        meta = _meta(pod)
        namespace, name = str(meta["namespace"]), str(meta["name"])
        layout = self.ipam.subnet(allocation.subnet)
        subnet_obj = self.subnets.cache.get(allocation.subnet) or {}
        subnet_spec = subnet_obj.get("spec") or {}
        ip_obj = self.ips.cache.get(nic.name)
        ann = p.annotations_of(pod)
        mac = ((ip_obj or {}).get("spec") or {}).get("macAddress") or ann.get(p.MAC_ADDRESS) or p.stable_mac(nic.name)
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        sts = p.statefulset_of(pod)
        spec: Obj = {"podName": name, "namespace": namespace, "subnet": allocation.subnet, "nodeName": node,
                "ipAddress": allocation.ip_address, "v4IpAddress": allocation.v4 or "",
                "v6IpAddress": allocation.v6 or "", "macAddress": mac, "attachIps": [], "attachMacs": [],
                "attachSubnets": [], "containerID": "", "podType": p.STATEFULSET if sts else ""}
        labels = {p.SUBNET_LABEL: allocation.subnet, p.NODE_LABEL: node, allocation.subnet: "",
                  p.RESERVED_LABEL: "false"}
        await self._write_ip(nic.name, ip_obj, spec, labels)
        wanted = {p.ALLOCATED: "true", p.IP_ADDRESS: allocation.ip_address, p.MAC_ADDRESS: mac,
                  p.CIDR: layout.cidr_block,
                  p.GATEWAY: ",".join(f.text(f.gateway) for f in layout.families.values()),
                  p.LOGICAL_SWITCH: allocation.subnet, p.POD_NIC_TYPE: ann.get(p.POD_NIC_TYPE) or p.VETH_PAIR}
        if not subnet_spec.get("vlan"):
            wanted[p.LOGICAL_ROUTER] = str(subnet_spec.get("vpc") or self.defaults.vpc)
        changes = {k: v for k, v in wanted.items() if ann.get(k) != v}
        if changes:
            with contextlib.suppress(NotFound):  # deleted meanwhile: its deletion brings us back
                await self.client.patch(PODS, name, {"metadata": {"annotations": changes}}, namespace)

    async def _write_ip(self, name: str, current: Obj | None, spec: Obj, labels: dict[str, str]) -> None:
        body = {"apiVersion": IPS.api_version, "kind": "IP", "metadata": {"name": name, "labels": labels},
                "spec": spec}
        if current is not None and (current.get("spec") or {}).get("subnet") != spec["subnet"]:
            # spec.subnet is immutable: an address in another subnet is another IP object.
            with contextlib.suppress(NotFound):
                await self.client.delete(IPS, name, uid=_meta(current).get("uid"))
            current = None
        if current is None:
            try:
                await self.client.create(IPS, body)
                return
            except AlreadyExists:
                current = await self.client.get(IPS, name)  # our cache is behind
        current_labels = _meta(current).get("labels") or {}
        if current.get("spec") == spec and all(current_labels.get(k) == v for k, v in labels.items()):
            return
        updated = copy.deepcopy(current)
        updated["spec"] = spec
        updated["metadata"]["labels"] = {**current_labels, **labels}
        await self.client.update(IPS, updated)

    async def _release(self, nic: NicKey, namespace: str, name: str, pod: Obj | None) -> None:
        held = self.ipam.allocation(nic)
        ip_obj = self.ips.cache.get(nic.name)
        if held is None and ip_obj is None:
            return
        sts = p.statefulset_of(pod) if pod is not None else None
        if sts is None and ip_obj is not None and (ip_obj.get("spec") or {}).get("podType") == p.STATEFULSET:
            sts = p.statefulset_of_name(name, "")
        if sts is not None and p.statefulset_keeps(self.statefulsets.cache.get(f"{namespace}/{sts[0]}"), sts[1]):
            return  # the StatefulSet re-creates this pod, which gets the same address back
        released = self.ipam.release(nic)
        if ip_obj is not None:
            with contextlib.suppress(NotFound):
                await self.client.delete(IPS, nic.name)
        if released is not None:
            log.info("released %s of %s", released.ip_address, nic)
            self._changed(released.subnet)
            if released.subnet in self.closed:
                self._close(released.subnet)
        self._wake_pending()


def setup(mgr: Manager, defaults: NetworkDefaults | None = None) -> None:
    c = IpamController(mgr, defaults or NetworkDefaults())
    c.pod_controller.watch(c.pods, own_key)
    c.pod_controller.watch(c.ips, ip_pod_key)
    c.pod_controller.watch(c.statefulsets, lambda sts: [k for ip in c.ips.cache.by_index(STS_INDEX, object_key(sts))
                                                        for k in ip_pod_key(ip)])
    c.pod_controller.watch(c.namespaces, c.pending_in_namespace)
    c.subnet_controller.watch(c.subnets, own_key)
    c.subnet_controller.watch(c.vpcs, lambda _: [c.defaults.default_subnet])
    c.pool_controller.watch(c.pools, own_key)
    # Start-up work (the default networks, the restore) must not wait for a first event to arrive.
    c.subnet_controller.queue.add(c.defaults.default_subnet)
