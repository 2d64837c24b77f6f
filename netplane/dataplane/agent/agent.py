"""The node agent's loops: node heartbeat, pod network, pod lifecycle and status.

Level-triggered: every pass recomputes from the informers' caches and the files under
`<data-dir>/pods/`, so a restarted agent re-adopts running shims (they survive it) and never
starts a pod twice (a pod whose directory has a live shim is only watched). Blocking work
(netlink, starting or stopping shims) runs in threads; the event loop only decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import shutil
import socket
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from netplane.controllers.kube.client import Client
from netplane.controllers.kube.config import ClusterConfig
from netplane.controllers.kube.errors import ApiError, Conflict, NotFound
from netplane.controllers.kube.resources import Resource
from netplane.controllers.plugins import NODELOCALDNS
from netplane.controllers.plugins.manifests import CLUSTER_DOMAIN, NODELOCALDNS_DEFAULT_IP
from netplane.controllers.runtime import conditions
from netplane.controllers.runtime.informer import Informer
from netplane.dataplane import podnet
from netplane.dataplane.agent import podconfig, poddns
from netplane.dataplane.agent import status as st
from netplane.dataplane.agent.config import JOIN_CIDR, JOIN_GATEWAY, AgentConfig
from netplane.dataplane.agent.prober import Prober
from netplane.dataplane.agent.secrets import PodSecrets
from netplane.dataplane.agent.services import ENDPOINTSLICES, SERVICES, ServiceProxy
from netplane.dataplane.agent.tokens import TokenManager
from netplane.dataplane.proxy import NodeConfig, Proxy
from netplane.dataplane.runtime import client as runtime
from netplane.dataplane.runtime import images
from netplane.dataplane.runtime import spec as runtime_spec
from netplane.dataplane.streams import record as streams_record
from netplane.model.kubeovn import GROUP, VERSION

log = logging.getLogger("netplane.agent")

Obj = dict[str, Any]
PODS = Resource("", "v1", "pods", kind="Pod")
NODES = Resource("", "v1", "nodes", namespaced=False, kind="Node")
SUBNETS = Resource(GROUP, VERSION, "subnets", namespaced=False, kind="Subnet")
CONFIGMAPS = Resource("", "v1", "configmaps", kind="ConfigMap")
PLUGINS = Resource("netplane.io", "v1alpha1", "clusterplugins", namespaced=False, kind="ClusterPlugin")

HEARTBEAT = 5.0
STATUS_INTERVAL = 1.0  # how often shims' status files are read and reported
# The pod network is applied when its plan changes; the node namespace's part of it is verified (drift
# repaired) this often, and what is inside every pod namespace (only root on the host can change it) more
# rarely.
NETWORK_RESYNC = 30.0
POD_NETWORK_RESYNC = 300.0
POD_RESYNC = 60.0  # a running pod whose inputs did not change is looked at again this often
NODE_FILE = "node"  # in a pod directory: which node runs it (agents only touch their own)
LOGICAL_SWITCH_ANNOTATION = "ovn.kubernetes.io/logical_switch"


def _is_local_address(ip: str) -> bool:
    """Whether an address is on an interface of this (the node's) namespace: only then can it be bound."""
    try:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((ip, 0))
        return True
    except OSError:
        return False


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


class Agent:
    def __init__(self, config: AgentConfig, cluster: ClusterConfig, data_dir: Path):
        self.config = config
        self.data_dir = data_dir.resolve()
        self.pods_dir = self.data_dir / "pods"
        self.client = Client(cluster)
        self.pods = Informer(self.client, PODS, resync_period=60)
        self.nodes = Informer(self.client, NODES, resync_period=60)
        self.subnets = Informer(self.client, SUBNETS, resync_period=60)
        self.services = Informer(self.client, SERVICES, resync_period=60)
        self.endpoint_slices = Informer(self.client, ENDPOINTSLICES, resync_period=60)
        # ConfigMaps are watched like the kubelet's "Watch" strategy (here: the whole cluster's); Secrets are
        # fetched one by one (agent/secrets.py). A pod pass re-renders a running pod's config volumes when
        # one of them changed.
        self.configmaps = Informer(self.client, CONFIGMAPS, resync_period=60)
        self.secrets = PodSecrets(self.client)  # only those of this node's pods: all a node may read
        # The nodelocaldns plugin decides which nameserver new pods are given.
        self.plugins = Informer(self.client, PLUGINS, resync_period=60)
        self.node_resolv = poddns.parse_resolv_conf(_read_text("/etc/resolv.conf"))
        self.volume_files: dict[tuple[str, str], podconfig.Files] = {}  # (pod uid, volume) -> last written
        # Caches that keep an idle pass cheap (the pod files under pods_dir are written by the agent and
        # the shims only): pod directory -> its node, uid -> its shim status, uid -> its last synced
        # inputs and when, uid -> its resolv.conf nameservers.
        self.dir_nodes: dict[str, str] = {}
        self.shim_statuses: dict[str, tuple[tuple[int, int, int], Obj]] = {}
        self.pod_inputs: dict[str, tuple[Any, float]] = {}
        self.pod_nameservers: dict[str, tuple[str, ...]] = {}
        self.config_generation = 0  # counts ConfigMap events: their volumes are rendered again
        self.node_resources = self._read_node_resources()
        self.tokens = TokenManager(self.client, self.spawn)  # service-account tokens of projected volumes
        # The node's service proxy; subnets matter to it too (pod CIDRs decide what is masqueraded).
        self.proxy = ServiceProxy(self.services, self.endpoint_slices, self._proxy_config, Proxy(config.netns).sync,
                                  adjust_services=self._with_dns_fallback)
        self.subnets.add_handler(self.proxy.mark_dirty, self.proxy.mark_dirty, self.proxy.mark_dirty)
        # A node-local DNS cache starting or stopping moves its address between the cache and the fallback.
        self.plugins.add_handler(self.proxy.mark_dirty, self.proxy.mark_dirty, self.proxy.mark_dirty)
        self.configmaps.add_handler(self._config_changed, lambda _old, _new: self._config_changed(),
                                    self._config_changed)
        self.pods.add_handler(self._cache_pod_changed, lambda _old, new: self._cache_pod_changed(new),
                              self._cache_pod_changed)
        self.network_dirty = asyncio.Event()
        self.busy: set[str] = set()  # pod uids with a start or stop under way
        self.tasks: set[asyncio.Task[None]] = set()
        self.wired: set[str] = set()  # local pod uids whose network the last apply made
        self.applied_plan: podnet.NodePlan | None = None  # what the kernel was last made to match
        self.network_verified = -NETWORK_RESYNC  # loop times of the last verifications (see NETWORK_RESYNC)
        self.pods_verified = -POD_NETWORK_RESYNC
        self.reported_records: dict[str, str] = {}
        self.prober = Prober(self.client, config.node, self.pod_dir)  # probe tasks of running containers

    # ------------------------------------------------------------------ main

    async def run(self) -> None:
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        await self.register()
        for informer in (self.pods, self.nodes, self.subnets):
            informer.add_handler(lambda _o: self.network_dirty.set(), lambda _o, _n: self.network_dirty.set(),
                                 lambda _o: self.network_dirty.set())
            informer.start()
        for informer in (self.services, self.endpoint_slices, self.configmaps, self.plugins):
            informer.start()
        for informer in (self.pods, self.nodes, self.subnets, self.configmaps, self.plugins):
            await informer.wait_synced(60)
        log.info("node %s: registered, caches synced", self.config.node)
        heartbeat = asyncio.create_task(self.heartbeat_forever())
        # Waits for its own caches: pods need not wait for the proxy, nor the proxy for pods.
        proxy = asyncio.create_task(self.proxy.run(), name="service proxy")
        try:
            await self.sync_forever()
        finally:
            heartbeat.cancel()
            proxy.cancel()
            for task in list(self.tasks):
                task.cancel()
            await self.prober.close()
            for informer in (self.pods, self.nodes, self.subnets, self.services, self.endpoint_slices,
                             self.configmaps, self.plugins):
                await informer.stop()
            await self.client.close()

    def spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # ------------------------------------------------------------------ node

    async def register(self) -> None:
        c = self.config
        wanted = st.node_object(c.node, c.join_address, JOIN_CIDR, JOIN_GATEWAY, {})
        while True:
            try:
                try:
                    node = await self.client.get(NODES, c.node)
                    meta = node["metadata"]
                    meta["labels"] = {**(meta.get("labels") or {}), **wanted["metadata"]["labels"]}
                    meta["annotations"] = {**(meta.get("annotations") or {}), **wanted["metadata"]["annotations"]}
                    node = await self.client.update(NODES, node)
                except NotFound:
                    node = await self.client.create(NODES, wanted)
                node["status"] = st.node_status(c.node, c.fabric_address, node.get("status"))
                await self.client.update_status(NODES, node)
                return
            except (ApiError, OSError) as e:
                log.warning("registering node %s: %s; retrying", c.node, e)
                await asyncio.sleep(2)

    async def heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            try:
                node = await self.client.get(NODES, self.config.node)
                node["status"] = {**(node.get("status") or {}),
                                  **st.node_status(self.config.node, self.config.fabric_address, node.get("status"))}
                await self.client.update_status(NODES, node)
            except NotFound:
                await self.register()
            except (ApiError, OSError) as e:
                log.warning("node heartbeat: %s", e)

    # ------------------------------------------------------------------ loop

    async def sync_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self.network_dirty.is_set() or loop.time() - self.network_verified >= NETWORK_RESYNC:
                self.network_dirty.clear()
                try:
                    await self.sync_network()
                except Exception:
                    log.exception("pod network sync failed")
            try:
                await self.sync_pods()
            except Exception:
                log.exception("pod sync failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.network_dirty.wait(), STATUS_INTERVAL)

    def _cluster(self) -> podnet.Cluster:
        nodes = []
        for node in self.nodes.cache:
            annotations = node["metadata"].get("annotations") or {}
            internal = next((a["address"] for a in (node.get("status") or {}).get("addresses") or []
                             if a.get("type") == "InternalIP"), None)
            try:
                join = ipaddress.IPv4Address(annotations.get(st.IP_ANNOTATION, ""))
                fabric = ipaddress.IPv4Address(internal or "")
            except ValueError:
                continue  # not one of ours (or not registered yet): no overlay peer
            name = node["metadata"]["name"]
            nodes.append(podnet.Node(name, self.config.netns if name == self.config.node else "", fabric, join))
        if not any(n.name == self.config.node for n in nodes):
            # Our own Node may lag in the cache right after registering; we know our addresses.
            nodes.append(podnet.Node(self.config.node, self.config.netns,
                                     ipaddress.IPv4Address(self.config.fabric_address),
                                     ipaddress.IPv4Address(self.config.join_address)))
        return podnet.Cluster(self.config.cluster_id, tuple(nodes), self._subnets(),
                              join_cidr=ipaddress.IPv4Network(JOIN_CIDR))

    def _subnets(self) -> tuple[podnet.Subnet, ...]:
        subnets = []
        for subnet in self.subnets.cache:
            spec = subnet.get("spec") or {}
            try:
                cidr = ipaddress.ip_network(str(spec.get("cidrBlock", "")).split(",")[0], strict=False)
                gateway = ipaddress.ip_address(str(spec.get("gateway", "")).split(",")[0])
            except ValueError:
                continue
            if subnet["metadata"]["name"] == "join" or (spec.get("vpc") not in (None, "", "ovn-cluster")):
                continue  # the join subnet is the nodes'; custom VPCs are not wired by this agent
            subnets.append(podnet.Subnet(subnet["metadata"]["name"], cidr, gateway, bool(spec.get("natOutgoing"))))
        return tuple(subnets)

    def _proxy_config(self) -> NodeConfig:
        # NodePorts answer on the node's fabric address (kube-proxy's default: the node IPs).
        cidrs = tuple(s.cidr for s in self._subnets() if isinstance(s.cidr, ipaddress.IPv4Network))
        return NodeConfig(self.config.node, (ipaddress.IPv4Address(self.config.fabric_address),), cidrs)

    def _wanted_on_network(self, pod: Obj) -> bool:
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            return False
        if node == self.config.node:
            # Ours: wired while it may run, and until its shim is gone.
            return not self._finished(pod) or self._shim_alive(pod["metadata"]["uid"])
        return not self._finished(pod)

    @staticmethod
    def _finished(pod: Obj) -> bool:
        return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")

    async def sync_network(self) -> None:
        pods = []
        for pod in self.pods.cache:
            ip = st.pod_ipv4(pod)
            if ip is None or not self._wanted_on_network(pod):
                continue
            meta = pod["metadata"]
            pods.append(podnet.Pod(meta["uid"], f"{meta.get('namespace')}/{meta['name']}", ip, pod["spec"]["nodeName"]))
        plan = podnet.plan_node(self._cluster(), self.config.node, pods)
        now = asyncio.get_running_loop().time()
        verify = now - self.network_verified >= NETWORK_RESYNC
        verify_pods = now - self.pods_verified >= POD_NETWORK_RESYNC
        if plan == self.applied_plan and not verify:
            return  # most events (heartbeats, pod status) change nothing the network is made of
        if plan.problems != (self.applied_plan.problems if self.applied_plan else ()):
            for problem in plan.problems:
                log.warning("pod network: %s", problem)
        # Pods the last apply wired are not re-entered (a netlink socket in each pod namespace is the
        # costly part of a sync), except by the slower verification of every pod.
        previous = set(self.applied_plan.pods) if self.applied_plan and not verify_pods else set()
        # Times of attempts: a failing apply is retried on changes, not in a loop.
        if verify:
            self.network_verified = now
        if not previous:
            self.pods_verified = now
        self.applied_plan = None  # until this apply has succeeded: a failed one is followed by a full one
        changes = await asyncio.to_thread(podnet.apply, plan, previous & set(plan.pods))
        for change in changes:
            log.info("pod network: %s", change)
        self.applied_plan = plan
        self.wired = {p.uid for p in plan.pods}

    # ------------------------------------------------------------------ pods

    def pod_dir(self, uid: str) -> Path:
        return self.pods_dir / uid

    def _shim_alive(self, uid: str) -> bool:
        status = runtime.read_status(self.pod_dir(uid))
        return bool(status) and runtime.shim_alive(self.pod_dir(uid), int((status or {}).get("shimPid") or 0))

    def _my_dirs(self) -> dict[str, Path]:
        mine = {}
        paths = list(self.pods_dir.iterdir()) if self.pods_dir.is_dir() else []
        for path in paths:
            node = self.dir_nodes.get(path.name)
            if node is None:
                with contextlib.suppress(OSError):
                    # Written once when the pod starts, never changed: read once per directory.
                    node = self.dir_nodes[path.name] = (path / NODE_FILE).read_text().strip()
            if node == self.config.node:
                mine[path.name] = path
        for gone in self.dir_nodes.keys() - {p.name for p in paths}:
            del self.dir_nodes[gone]
        return mine

    def _shim_status(self, uid: str) -> tuple[tuple[int, int, int], Obj] | None:
        """The shim's status.json and a stamp of the file; parsed again only when the shim wrote a new
        one (it replaces the file, so a new write is a new inode)."""
        pod_dir = self.pod_dir(uid)
        try:
            info = (pod_dir / runtime_spec.STATUS_FILE).stat()
        except OSError:
            self.shim_statuses.pop(uid, None)
            return None
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        cached = self.shim_statuses.get(uid)
        if cached is None or cached[0] != stamp:
            status = runtime.read_status(pod_dir)
            if status is None:
                return None
            cached = self.shim_statuses[uid] = (stamp, status)
        return cached

    async def sync_pods(self) -> None:
        seen: set[str] = set()
        syncs: dict[str, Coroutine[Any, Any, None]] = {}
        await self.secrets.refresh(p for p in self.pods.cache if (p.get("spec") or {}).get("nodeName")
                                   == self.config.node and not self._finished(p))
        for pod in list(self.pods.cache):
            if (pod.get("spec") or {}).get("nodeName") != self.config.node:
                continue
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            if uid in self.busy:
                continue
            if pod["metadata"].get("deletionTimestamp"):
                self.busy.add(uid)
                self.spawn(self.stop_pod(pod, confirm=True))
            else:
                syncs[uid] = self.sync_pod(pod)
        # Side by side: their API calls (token requests, status reports) would add up one after the
        # other, which is what a burst of new pods waited for.
        for pod_uid, failed in zip(syncs, await asyncio.gather(*syncs.values(), return_exceptions=True), strict=True):
            if isinstance(failed, Exception):
                log.error("pod %s: sync failed", pod_uid, exc_info=failed)
        for uid, path in self._my_dirs().items():
            if uid not in seen and uid not in self.busy:
                # Gone from the API (forced deletion, or deleted while this agent was down).
                self.busy.add(uid)
                self.spawn(self.stop_orphan(uid, path))

    async def sync_pod(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        host_network = bool((pod.get("spec") or {}).get("hostNetwork"))
        ip = ipaddress.IPv4Address(self.config.fabric_address) if host_network else st.pod_ipv4(pod)
        stamped = self._shim_status(uid)
        shim = stamped[1] if stamped else None
        if shim is None and not self._finished(pod):
            if ip is None or (uid not in self.wired and not host_network):
                return  # IPAM or the pod network is not there yet; the next pass starts it
            built = await self._build_spec(pod, str(ip))
            if isinstance(built, dict):
                await self.report(pod, st.pod_status(pod, None, self.config.fabric_address, str(ip), built))
                return
            if isinstance(built, str):
                await self.report(pod, st.pod_status(pod, None, self.config.fabric_address, str(ip), message=built))
                return
            self.busy.add(uid)
            self.spawn(self.start_pod(pod, built))
            return
        if stamped is None or shim is None:
            return
        probed = self.prober.sync(pod, shim, str(ip) if ip else None)
        # What the rest depends on: a pass over a pod where none of it changed has nothing to do. Token
        # renewals are started from rendering, so that runs at least every POD_RESYNC anyway.
        inputs = (pod["metadata"].get("resourceVersion"), stamped[0], ip, sorted(probed.items()),
                  self.config_generation, self.secrets.version, self.tokens.version)
        now = asyncio.get_running_loop().time()
        last = self.pod_inputs.get(uid)
        if last is not None and last[0] == inputs and now - last[1] < POD_RESYNC:
            return
        if not self._finished(pod) and ip is not None:
            self._refresh_volumes(pod, str(ip))
        self._write_record(pod, shim)
        await self.report(pod, st.pod_status(pod, shim, self.config.fabric_address, str(ip) if ip else None,
                                             probed=probed))
        self.pod_inputs[uid] = (inputs, now)

    async def _build_spec(self, pod: Obj, ip: str) -> runtime_spec.PodRuntimeSpec | dict[str, Any] | str:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        pod_dir = self.pod_dir(meta["uid"])
        await self.secrets.ensure(pod)
        volume_dirs = {}
        for volume in spec.get("volumes") or []:
            path = pod_dir / "volumes" / volume["name"]
            if "emptyDir" in volume:
                path.mkdir(parents=True, exist_ok=True)
                volume_dirs[volume["name"]] = str(path)
                continue
            try:
                await self.tokens.ensure(pod, volume)
                files = podconfig.render_volume(pod, volume, self._lookup, ip, self.config.fabric_address,
                                                self.node_resources, self.tokens.token)
                if files is None:
                    continue
                podconfig.write_volume(path, files)
            except (podconfig.ConfigError, OSError) as e:
                # As the kubelet: the pod stays ContainerCreating until the volume can be set up.
                return f'MountVolume.SetUp failed for volume "{volume["name"]}" : {e}'
            self.volume_files[(meta["uid"], volume["name"])] = files
            volume_dirs[volume["name"]] = str(path)
        pod, config_errors = podconfig.with_resolved_env(pod, self._lookup, ip, self.config.fabric_address,
                                                         self.node_resources, self._services())
        if config_errors:
            images_of = {c["name"]: c.get("image", "") for c in [*(spec.get("initContainers") or []),
                                                                  *(spec.get("containers") or [])]}
            return {name: images.ImageError(images_of.get(name, ""), message, reason="CreateContainerConfigError")
                    for name, message in config_errors.items()}
        hostname = spec.get("hostname") or meta["name"]
        subdomain = spec.get("subdomain")
        resolv_conf = self._resolv_conf(pod)
        self.pod_nameservers[meta["uid"]] = tuple(poddns.parse_resolv_conf(resolv_conf).nameservers)
        etc = runtime_spec.write_etc_files(
            pod_dir / "etc", hostname, ip, resolv_conf, spec.get("hostAliases") or (),
            f"{hostname}.{subdomain}.{meta.get('namespace', 'default')}.svc.{CLUSTER_DOMAIN}" if subdomain else None)
        try:
            return runtime_spec.build_spec(pod, netns=f"/run/netns/{self._netns_of(pod)}", volume_dirs=volume_dirs,
                                           etc_files=etc, hidden=[str(self.data_dir)],
                                           pod_ip=ip)
        except runtime_spec.SpecError as e:
            # Volumes other than emptyDir and the config ones are not prepared here yet; say so on the pod.
            return f"cannot run this pod here: {e}"

    def _config_changed(self, *_objects: Obj) -> None:
        self.config_generation += 1

    def _cache_pod_changed(self, pod: Obj) -> None:
        if ((pod.get("metadata") or {}).get("labels") or {}).get("k8s-app") == "node-local-dns":
            self.proxy.mark_dirty()

    def _with_dns_fallback(self, services: list[Obj]) -> list[Obj]:
        """Pods started while a node-local DNS cache served them keep its address in resolv.conf. When no
        cache holds that address on this node (uninstalled, or restarting), the proxy sends it to kube-dns
        instead, as an external IP of that Service: running pods keep resolving."""
        orphaned = sorted(ip for ip in self._cache_addresses_in_use() if not _is_local_address(ip))
        if not orphaned:
            return services
        adjusted = []
        for service in services:
            meta = service.get("metadata") or {}
            if (meta.get("namespace"), meta.get("name")) == ("kube-system", "kube-dns"):
                spec = service.get("spec") or {}
                service = {**service, "spec": {**spec, "externalIPs": [*(spec.get("externalIPs") or []), *orphaned]}}
            adjusted.append(service)
        return adjusted

    def _cache_addresses_in_use(self) -> set[str]:
        addresses: set[str] = set()
        for uid, path in self._my_dirs().items():
            nameservers = self.pod_nameservers.get(uid)
            if nameservers is None:  # a pod an earlier agent started
                conf = poddns.parse_resolv_conf(_read_text(str(path / "etc" / "resolv.conf")))
                nameservers = self.pod_nameservers[uid] = tuple(conf.nameservers)
            addresses.update(n for n in nameservers if n != self.config.dns)
        return addresses - set(self.node_resolv.nameservers)

    def _netns_of(self, pod: Obj) -> str:
        if (pod.get("spec") or {}).get("hostNetwork"):
            return self.config.netns
        return podnet.pod_netns_name(self.config.cluster_id, pod["metadata"]["uid"])

    def _resolv_conf(self, pod: Obj) -> str:
        built = poddns.pod_resolv_conf(pod, [self._nameserver_for(pod)], self.node_resolv, CLUSTER_DOMAIN)
        if built.dropped:
            log.warning("pod %s/%s: resolv.conf limits dropped %s", pod["metadata"].get("namespace"),
                        pod["metadata"]["name"], ", ".join(built.dropped))
        return built.conf.render()

    def _nameserver_for(self, pod: Obj) -> str:
        """The node-local cache once its plugin is Ready, except for pods on underlay subnets (their
        traffic leaves through a VLAN, not this node's stack); the cluster DNS otherwise."""
        plugin = self.plugins.cache.get_by_name(NODELOCALDNS)
        if plugin is None or not conditions.is_true((plugin.get("status") or {}).get("conditions"), "Ready"):
            return self.config.dns
        subnet_name = (pod["metadata"].get("annotations") or {}).get(LOGICAL_SWITCH_ANNOTATION)
        subnet = self.subnets.cache.get_by_name(subnet_name) if subnet_name else None
        if subnet is not None and (subnet.get("spec") or {}).get("vlan"):
            return self.config.dns
        return str(((plugin.get("spec") or {}).get("config") or {}).get("ip") or NODELOCALDNS_DEFAULT_IP)

    def _lookup(self, kind: str, namespace: str, name: str) -> Obj | None:
        if kind == "configmap":
            return self.configmaps.cache.get_by_name(name, namespace)
        return self.secrets.get(namespace, name)

    @staticmethod
    def _read_node_resources() -> podconfig.NodeResources:
        allocatable = st.node_allocatable()
        return podconfig.NodeResources(cpu=allocatable["cpu"], memory=allocatable["memory"],
                                       ephemeral_storage=allocatable["ephemeral-storage"])

    def _services(self) -> list[Obj] | None:
        """Every Service, for containers' Service variables; None until the cache has been filled."""
        return list(self.services.cache) if self.services.has_synced else None

    def _refresh_volumes(self, pod: Obj, ip: str) -> None:
        """Brings a running pod's configMap/secret/downwardAPI volumes up to date (atomically), and its
        service-account tokens as they are renewed. A source that went missing leaves the files as
        they were, as the kubelet does."""
        uid = pod["metadata"]["uid"]
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            if not any(k in volume for k in podconfig.CONFIG_VOLUMES):
                continue
            try:
                files = podconfig.render_volume(pod, volume, self._lookup, ip, self.config.fabric_address,
                                                self.node_resources, self.tokens.token)
            except podconfig.ConfigError as e:
                log.debug("pod %s: volume %s not refreshed: %s", uid, volume["name"], e)
                continue
            if files is None or self.volume_files.get((uid, volume["name"])) == files:
                continue
            try:
                if podconfig.write_volume(self.pod_dir(uid) / "volumes" / volume["name"], files):
                    log.info("pod %s/%s: volume %s updated", pod["metadata"].get("namespace"),
                             pod["metadata"]["name"], volume["name"])
                self.volume_files[(uid, volume["name"])] = files
            except OSError as e:
                log.warning("pod %s: volume %s: %s", uid, volume["name"], e)

    async def start_pod(self, pod: Obj, spec: runtime_spec.PodRuntimeSpec) -> None:
        uid = pod["metadata"]["uid"]
        pod_dir = self.pod_dir(uid)
        try:
            runtime_spec.save(pod_dir, spec)
            (pod_dir / NODE_FILE).write_text(self.config.node)
            pid = await runtime.start_shim_async(pod_dir)
            # The shim writes its status file only after it has detached; until then the next pass would see
            # no shim and start a second one for the same pod.
            await runtime.wait_for_status(pod_dir)
            log.info("pod %s/%s: started (shim %d)", pod["metadata"].get("namespace"), pod["metadata"]["name"], pid)
        except Exception as e:
            log.exception("pod %s: start failed", uid)
            with contextlib.suppress(ApiError, OSError):
                await self.report(pod, st.pod_status(pod, None, self.config.fabric_address, None,
                                                     message=f"start failed: {e}"))
        finally:
            self.busy.discard(uid)

    async def stop_pod(self, pod: Obj, confirm: bool) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        pod_dir = self.pod_dir(uid)
        self.prober.forget(uid)
        try:
            if (pod_dir / runtime_spec.SPEC_FILE).exists():
                grace = float(meta.get("deletionGracePeriodSeconds") or 30)
                await asyncio.to_thread(runtime.terminate, pod_dir, grace + 10)
                await asyncio.to_thread(runtime.cleanup, pod_dir)
            with contextlib.suppress(FileNotFoundError):
                streams_record.record_path(self.pods_dir, uid).unlink()
            # Files first: once the pod is gone from the API, nothing of it is left on the node (a failed
            # delete is retried by the next pass, which finds the directory gone and only deletes).
            await asyncio.to_thread(shutil.rmtree, pod_dir, ignore_errors=True)
            if confirm:
                with contextlib.suppress(NotFound, Conflict):
                    await self.client.delete(PODS, meta["name"], meta.get("namespace"), uid=uid,
                                             grace_period_seconds=0)
            for key in [k for k in self.volume_files if k[0] == uid]:
                del self.volume_files[key]
            for cache in (self.shim_statuses, self.pod_inputs, self.pod_nameservers):
                cache.pop(uid, None)
            log.info("pod %s/%s: stopped and removed", meta.get("namespace"), meta["name"])
            self.network_dirty.set()
        except Exception:
            log.exception("pod %s: stop failed", uid)
            await asyncio.sleep(2)
        finally:
            self.busy.discard(uid)

    async def stop_orphan(self, uid: str, path: Path) -> None:
        await self.stop_pod({"metadata": {"uid": uid, "name": path.name, "namespace": ""}}, confirm=False)

    def _write_record(self, pod: Obj, shim: Obj) -> None:
        uid = pod["metadata"]["uid"]
        if not shim.get("pausePid"):
            return
        record = st.runtime_record(pod, shim, self.pod_dir(uid), self._netns_of(pod))
        text = json.dumps(record.to_json(), sort_keys=True)
        if self.reported_records.get(uid) != text or not streams_record.record_path(self.pods_dir, uid).exists():
            streams_record.write(self.pods_dir, record)
            self.reported_records[uid] = text

    async def report(self, pod: Obj, status: Obj) -> None:
        if st.same_status(pod.get("status") or {}, status):
            return
        updated = {**pod, "status": status}
        try:
            fresh = await self.client.update_status(PODS, updated)
            self.pods.cache.put(fresh)  # so the next pass compares with what we wrote
        except (NotFound, Conflict):
            pass  # the informer brings the newer object; the next pass reports again
