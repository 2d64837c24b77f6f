"""netplane IPAM: Kube-OVN's central pod address management as a pure core.

Plain data in, plain data out; no Kubernetes, no I/O. The controller adapter
turns Subnet, IPPool and IP objects into `SubnetSpec`, `PoolSpec` and
`Allocation`, calls `IPAM`, and writes back `IP` objects and status.

    specs ──set_subnet/set_pool──▶ IPAM ──allocate/release──▶ Allocation
    IP objects ──restore (one call, at start)──▶ IPAM

Invariants anyone may rely on:

* no address is ever held by two keys; every held address lies in its
  subnet's usable range (never the network, broadcast or gateway address);
* random allocation never returns a reserved address (excludeIps, gateway) nor
  an address of a pool the request did not name; static requests may use
  reserved addresses (see `allocator`);
* a released address is not handed out at random while a never-released
  candidate remains (see `allocator` for the quarantine rule);
* every refusal is an `IPAMError` whose `reason` is Kube-OVN's and whose
  message names the subnet, the key and the address.

Modules: `ranges` (interval sets), `addresses` (text <-> int), `subnets`
(spec -> layout), `pools` (IPPool rules), `zones` (random picking),
`allocations` (keys and records), `allocator` (the state machine),
`selection` (choosing among a namespace's subnets), `errors`.
"""

from netplane.ipam.allocations import Allocation, NicKey
from netplane.ipam.allocator import IPAM, FamilyUsage, Rejected
from netplane.ipam.errors import (
    AddressConflict,
    AddressOutOfRange,
    InvalidAddress,
    InvalidIPFamily,
    InvalidPool,
    InvalidSubnet,
    IPAMError,
    NoAvailableAddress,
    NoSubnet,
    SubnetUpdateRefused,
)
from netplane.ipam.pools import PoolSpec
from netplane.ipam.selection import choose_subnet
from netplane.ipam.subnets import SubnetLayout, SubnetSpec

__all__ = [
    "IPAM",
    "AddressConflict",
    "AddressOutOfRange",
    "Allocation",
    "FamilyUsage",
    "IPAMError",
    "InvalidAddress",
    "InvalidIPFamily",
    "InvalidPool",
    "InvalidSubnet",
    "NicKey",
    "NoAvailableAddress",
    "NoSubnet",
    "PoolSpec",
    "Rejected",
    "SubnetLayout",
    "SubnetSpec",
    "SubnetUpdateRefused",
    "choose_subnet",
]
