"""Cluster IP and node port allocation, as the Kubernetes API server does at Service create time.

Pure bookkeeping: the API server rebuilds these from stored Services on start and
calls them while handling a request, between reading and writing the store, with no
await in between — so two concurrent creates can never get the same address.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field

from netplane.api.errors import FieldError, invalid


@dataclass
class ClusterIPAllocator:
    cidr: ipaddress.IPv4Network | ipaddress.IPv6Network
    used: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        # The first address is the `kubernetes` Service's; it is handed out only on request.
        self._first = self.cidr.network_address + 1
        # Dynamic candidates start after it and stop before the broadcast address.
        self._size = min(self.cidr.num_addresses - 3, 1 << 20)
        # KEP-3070: the lowest addresses are kept for Services that ask for a fixed one (kube-dns
        # takes the tenth); automatic allocation uses them only once the rest is full.
        self._static_band = min(self._size, max(16, self._size // 16), 256)

    @property
    def kubernetes_ip(self) -> str:
        return str(self._first)

    def check(self, ip: str, field_path: str) -> FieldError | None:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return invalid(field_path, ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
        if addr not in self.cidr or addr in (self.cidr.network_address, self.cidr.broadcast_address):
            return invalid(field_path, ip, f"failed to allocate IP {ip}: the provided IP ({ip}) is not in "
                           f"the valid range. The range of valid IPs is {self.cidr}")
        if ip in self.used:
            return invalid(field_path, ip, f"failed to allocate IP {ip}: provided IP is already allocated")
        return None

    def allocate(self, ip: str | None = None) -> str:
        if ip is not None:
            self.used.add(ip)
            return ip
        for low, high in ((self._static_band, self._size), (0, self._static_band)):
            span = high - low
            if span <= 0:
                continue
            offset = random.randrange(span)
            # Linear probing from a random start keeps allocation O(1) on average.
            for step in range(span):
                candidate = str(self._first + 1 + low + (offset + step) % span)
                if candidate not in self.used:
                    self.used.add(candidate)
                    return candidate
        raise RuntimeError("range is full")

    def release(self, ip: str) -> None:
        self.used.discard(ip)


@dataclass
class NodePortAllocator:
    low: int = 30000
    high: int = 32767
    used: set[tuple[int, str]] = field(default_factory=set)

    def check(self, port: int, protocol: str, field_path: str) -> FieldError | None:
        if not self.low <= port <= self.high:
            return invalid(field_path, port, f"provided port is not in the valid range. "
                           f"The range of valid ports is {self.low}-{self.high}")
        if (port, protocol) in self.used:
            return invalid(field_path, port, "provided port is already allocated")
        return None

    def allocate(self, protocol: str, port: int | None = None) -> int:
        if port is not None:
            self.used.add((port, protocol))
            return port
        span = self.high - self.low + 1
        offset = random.randrange(span)
        for step in range(span):
            candidate = self.low + (offset + step) % span
            if (candidate, protocol) not in self.used:
                self.used.add((candidate, protocol))
                return candidate
        raise RuntimeError("range is full")

    def release(self, port: int, protocol: str) -> None:
        self.used.discard((port, protocol))
