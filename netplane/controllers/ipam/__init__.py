"""The IPAM controller (Kube-OVN's central pod address management); see `controller`."""

from netplane.controllers.ipam.controller import IpamController, setup
from netplane.controllers.ipam.defaults import NetworkDefaults

__all__ = ["IpamController", "NetworkDefaults", "setup"]
