"""Refusals of the IPAM core, one class per Kube-OVN reason.

`reason` is the string Kube-OVN puts in events and conditions
(`AddressConflict`, `AddressOutOfRange`, `NoAvailableAddress`, ...), so the
controller can copy it into a status condition unchanged; `message` says which
subnet, which key and which address, and what to do about it.
"""

from __future__ import annotations


class IPAMError(Exception):
    reason = "IPAMError"

    def __init__(self, message: str, *, subnet: str = "", key: str = "", ip: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.subnet = subnet
        self.key = key
        self.ip = ip


class AddressConflict(IPAMError):
    """The address is held by another key, or is the subnet's gateway."""

    reason = "AddressConflict"


class AddressOutOfRange(IPAMError):
    """The address is outside the subnet's CIDR, or is its network or broadcast address."""

    reason = "AddressOutOfRange"


class NoAvailableAddress(IPAMError):
    """Every address the request may use is taken (or no bound pool has one)."""

    reason = "NoAvailableAddress"


class NoSubnet(IPAMError):
    reason = "NoSubnet"


class InvalidAddress(IPAMError):
    """A requested address is not parseable or names one family twice."""

    reason = "InvalidAddress"


class InvalidIPFamily(IPAMError):
    reason = "InvalidIPFamily"


class InvalidSubnet(IPAMError):
    """The Subnet spec itself is wrong (Kube-OVN's `CIDRInvalid` and validator messages)."""

    reason = "CIDRInvalid"


class SubnetUpdateRefused(IPAMError):
    """An update that would strand allocations: shrinking, moving the gateway while in use, deleting while in use."""

    reason = "SubnetUpdateRefused"


class InvalidPool(IPAMError):
    """The IPPool spec is wrong or overlaps another pool of the same subnet."""

    reason = "IPPoolInvalid"
