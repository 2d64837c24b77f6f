"""What `netplane up` does for the dataplane: the fabric, a listening socket on the control-plane
address, one supervised agent per node, and an orderly stop (agents, pods, fabric)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from netplane import certs
from netplane.api.auth.issue import client_certificate
from netplane.api.auth.nodes import NODE_USER_PREFIX, NODES_GROUP
from netplane.controllers.supervisor import ControllerProcess
from netplane.dataplane import fabric
from netplane.dataplane.agent import config as agent_config
from netplane.dataplane.fabric_plan import FabricPlan, cluster_id, control_plane_address, plan_fabric
from netplane.dataplane.runtime import client as runtime
from netplane.dataplane.runtime import linux
from netplane.dataplane.runtime.spec import STATUS_FILE
from netplane.dataplane.streams.record import RECORD_FILE

log = logging.getLogger("netplane")

STOP_TIMEOUT = 40.0  # pods get their grace period, but shutdown must end


def default_node_names(count: int) -> list[str]:
    return [f"node{i + 1}" for i in range(count)]


def listen_in_netns(netns: str, host: str, port: int) -> socket.socket:
    """A listening TCP socket that lives in ``netns`` while the process stays where it is.

    The socket is created and bound by `linux.in_netns`'s short-lived thread and keeps its namespace."""
    def bind() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
        return sock

    return linux.in_netns(f"/run/netns/{netns}", bind)


def stop_pods(data_dir: Path) -> list[str]:
    """Stop every pod shim of this data directory (concurrently, within their grace periods) and
    forget their run state, so the next `up` starts them again; returns the pod uids stopped."""
    pods_dir = data_dir / "pods"
    dirs = [d for d in pods_dir.iterdir() if (d / "spec.json").exists()] if pods_dir.is_dir() else []

    def stop(pod_dir: Path) -> str | None:
        status = runtime.read_status(pod_dir) or {}
        alive = runtime.shim_alive(pod_dir, int(status.get("shimPid") or 0))
        with contextlib.suppress(Exception):
            runtime.terminate(pod_dir, timeout=STOP_TIMEOUT)
        with contextlib.suppress(Exception):
            runtime.cleanup(pod_dir)
        for name in (STATUS_FILE, RECORD_FILE):
            with contextlib.suppress(FileNotFoundError):
                (pod_dir / name).unlink()
        return pod_dir.name if alive else None

    if not dirs:
        return []
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(dirs))) as pool:
        return [uid for uid in pool.map(stop, dirs) if uid]


def down(data_dir: Path) -> list[str]:
    """Remove whatever a run (even a crashed one) left: pod shims, namespaces, the host link."""
    stopped = stop_pods(data_dir)
    return [*(f"pod {uid}" for uid in stopped), *fabric.remove_fabric(cluster_id(data_dir))]


@dataclass
class ClusterOptions:
    node_names: list[str]
    node_cidr: str
    host_access: bool = False
    cluster_dns: str = "10.96.0.10"  # written into pods' resolv.conf (the kube-dns Service)
    service_cidr: str = "10.96.0.0/12"


class Dataplane:
    def __init__(self, data_dir: Path, options: ClusterOptions):
        self.data_dir = data_dir.resolve()
        self.options = options
        self.plan: FabricPlan = plan_fabric(cluster_id(self.data_dir), options.node_names, options.node_cidr)
        self.agents: list[ControllerProcess] = []
        from netplane.dataplane.agent.__main__ import quiet_pyroute2_children

        quiet_pyroute2_children()  # the API server's signal handlers must not hear pyroute2's helpers either

    @property
    def control_plane_ip(self) -> str:
        return str(control_plane_address(self.plan).ip)

    def build(self) -> None:
        """Leftovers of a previous run first (shims, namespaces), then a fresh fabric."""
        down(self.data_dir)
        fabric.build_fabric(self.plan, host_access=self.options.host_access, routed=(self.options.service_cidr,))

    def write_agent_configs(self, port: int, pki: Path) -> None:
        """Each agent logs in as its node, as a kubelet does: a client certificate for
        `system:node:<name>` in group `system:nodes` (the built-in `system:node` role's rights),
        issued anew at every start."""
        ca_pem = (pki / "ca.crt").read_bytes()
        for i, node in enumerate(self.plan.nodes):
            agent_config.save(self.data_dir, agent_config.AgentConfig(
                node=node.name, netns=node.netns, cluster_id=self.plan.cluster_id,
                fabric_address=str(node.address.ip), join_address=agent_config.join_address(i),
                dns=self.options.cluster_dns))
            user = f"{NODE_USER_PREFIX}{node.name}"
            certs.write_kubeconfig(agent_config.kubeconfig_path(self.data_dir, node.name),
                                   f"https://{self.control_plane_ip}:{port}", ca_pem, "", user=user,
                                   client_cert=client_certificate(pki, user, [NODES_GROUP]))

    def start_agents(self) -> None:
        for node in self.plan.nodes:
            kubeconfig = agent_config.kubeconfig_path(self.data_dir, node.name)
            agent = ControllerProcess(
                kubeconfig, prefix=f"[{node.name}] ", name=f"agent {node.name}",
                argv=("-m", "netplane.dataplane.agent", "--node", node.name, "--kubeconfig", str(kubeconfig),
                      "--data-dir", str(self.data_dir)))
            agent.start()
            self.agents.append(agent)

    async def stop(self) -> None:
        for agent in self.agents:
            await agent.stop()
        stopped = await asyncio.to_thread(stop_pods, self.data_dir)
        removed = await asyncio.to_thread(fabric.remove_fabric, self.plan.cluster_id)
        log.info("dataplane stopped: %d pods, removed %s", len(stopped), ", ".join(removed) or "nothing")


def run_external(data_dir: Path, command: list[str]) -> int:
    """Replace this process by ``command`` inside the cluster's external namespace."""
    netns = f"{plan_fabric(cluster_id(data_dir.resolve()), ['x']).external.netns}"
    if not os.path.exists(f"/run/netns/{netns}"):
        print(f"netplane external: {netns} does not exist (is `netplane up` running for {data_dir}?)",
              file=sys.stderr)
        return 2
    linux.setns_path(f"/run/netns/{netns}", linux.CLONE_NEWNET)
    try:
        os.execvp(command[0], command)
    except OSError as e:
        print(f"netplane external: {command[0]}: {e}", file=sys.stderr)
    return 127
