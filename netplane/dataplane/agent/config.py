"""What `netplane up` hands each node agent: one JSON file beside the agent's kubeconfig."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

JOIN_CIDR = "100.64.0.0/16"  # Kube-OVN's default join subnet; the IPAM defaults use the same
JOIN_GATEWAY = "100.64.0.1"


@dataclass(frozen=True)
class AgentConfig:
    node: str
    netns: str  # the node's network namespace, entered at start
    cluster_id: str
    fabric_address: str  # the node's eth0 address (InternalIP)
    join_address: str  # its address in the join subnet (VXLAN overlay, node -> pod source)
    dns: str = "10.96.0.10"  # written into pods' resolv.conf


def agent_dir(data_dir: Path, node: str) -> Path:
    return data_dir / "agents" / node


def config_path(data_dir: Path, node: str) -> Path:
    return agent_dir(data_dir, node) / "agent.json"


def kubeconfig_path(data_dir: Path, node: str) -> Path:
    return agent_dir(data_dir, node) / "kubeconfig"


def save(data_dir: Path, config: AgentConfig) -> Path:
    path = config_path(data_dir, config.node)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(config), indent=1))
    os.replace(tmp, path)
    return path


def load(data_dir: Path, node: str) -> AgentConfig:
    return AgentConfig(**json.loads(config_path(data_dir, node).read_text()))


def join_address(index: int) -> str:
    """Node i's join address: static, so a restarted cluster keeps its overlay addresses.
    .1 is the join gateway; nodes count from .2."""
    return f"100.64.0.{index + 2}"
