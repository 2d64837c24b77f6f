"""The networks every cluster starts with, as Kube-OVN's controller creates them at start-up.

Kube-OVN takes these from its command line (`--default-ls`, `--default-cidr`, `--node-switch`,
`--node-switch-cidr`, `--cluster-router`); netplane keeps them in one `NetworkDefaults` value that
`setup` receives, so a later `netplane up` option (or a config file) only has to build a different
one. Until then the values below are the cluster's, and match Kube-OVN's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class NetworkDefaults:
    vpc: str = "ovn-cluster"
    default_subnet: str = "ovn-default"
    default_cidr: str = "10.16.0.0/16"
    default_gateway: str = "10.16.0.1"
    join_subnet: str = "join"
    join_cidr: str = "100.64.0.0/16"
    join_gateway: str = "100.64.0.1"

    @property
    def protected(self) -> tuple[str, ...]:
        """Subnets the controller re-creates if deleted (Kube-OVN's webhook refuses to delete them)."""
        return (self.default_subnet, self.join_subnet)

    def vpc_object(self) -> Obj:
        return {"apiVersion": "kubeovn.io/v1", "kind": "Vpc", "metadata": {"name": self.vpc}, "spec": {}}

    def subnet_object(self, name: str) -> Obj:
        default = name == self.default_subnet
        cidr, gateway = (self.default_cidr, self.default_gateway) if default else (self.join_cidr, self.join_gateway)
        return {
            "apiVersion": "kubeovn.io/v1", "kind": "Subnet", "metadata": {"name": name},
            "spec": {"cidrBlock": cidr, "gateway": gateway, "excludeIps": [gateway], "protocol": "IPv4",
                     "provider": "ovn", "vpc": self.vpc, "gatewayType": "distributed",
                     # Pods leave the cluster masqueraded; the join network only carries node↔pod traffic.
                     "default": default, "natOutgoing": default},
        }
