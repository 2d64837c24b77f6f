"""Cluster DNS (the kube-dns Service's server) and the node-local DNS cache."""

from __future__ import annotations

import ipaddress

KUBE_DNS_OFFSET = 10  # kubeadm's choice: the service range's tenth address (10.96.0.10)


def cluster_dns_ip(service_cidr: str) -> str:
    """The kube-dns Service's fixed cluster IP for a service range."""
    return str(ipaddress.ip_network(service_cidr, strict=False).network_address + KUBE_DNS_OFFSET)


def cluster_dns_ip_from_kubernetes_ip(kubernetes_ip: str) -> str:
    """The same address, found from the `kubernetes` Service (the range's first address) by
    components that are not told the range."""
    return str(ipaddress.ip_address(kubernetes_ip) + KUBE_DNS_OFFSET - 1)
