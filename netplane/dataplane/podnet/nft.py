"""The node's nftables table for the pod network, as text (pure; `apply` runs `nft`).

Every value in the rule text comes from an `ipaddress` object or a constant of
this package, never from a user-supplied string, so no object name or label can
inject nft syntax.

The table is written in the form `nft list table` prints it, so a sync can
compare the kernel's listing with the rendering and skip the transaction when
they match: applying the same plan twice changes nothing, not even handles.
If a future `nft` prints differently, the only cost is a (still atomic)
rewrite per sync.
"""

from __future__ import annotations

import ipaddress

from netplane.dataplane.podnet.plan import NFT_FAMILY, NFT_TABLE, NatPlan

SOURCES_SET = "nat-outgoing-sources"
CLUSTER_SET = "cluster-ranges"


def _element(net: ipaddress.IPv4Network) -> str:
    # nft lists a /32 interval element as a bare address.
    return str(net.network_address) if net.prefixlen == 32 else str(net)


def _set(name: str, nets: tuple[ipaddress.IPv4Network, ...]) -> list[str]:
    lines = [f"\tset {name} {{", "\t\ttype ipv4_addr", "\t\tflags interval"]
    if nets:  # nft rejects `elements = { }` and lists an empty set without the line
        lines.append("\t\telements = { " + ", ".join(_element(n) for n in sorted(nets)) + " }")
    return [*lines, "\t}"]


def render_table(nat: NatPlan) -> str:
    """The table as `nft list table inet netplane-podnet` shows it."""
    lines = [
        f"table {NFT_FAMILY} {NFT_TABLE} {{",
        '\tcomment "netplane pod network (natOutgoing)"',
        *_set(SOURCES_SET, nat.sources),
        "",
        *_set(CLUSTER_SET, nat.cluster_ranges),
        "",
        "\tchain postrouting {",
        "\t\ttype nat hook postrouting priority srcnat; policy accept;",
        # Only the underlay: traffic into vxlan0 or a pod veth keeps the pod's address.
        f'\t\toifname "{nat.underlay}" ip saddr @{SOURCES_SET} ip daddr != @{CLUSTER_SET} masquerade',
        "\t}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def transaction(nat: NatPlan) -> str:
    """One atomic `nft -f -` script: create-if-missing, delete, define. Either the whole new
    table is in place or (on error) the old one still is; other tables are never named."""
    return f"add table {NFT_FAMILY} {NFT_TABLE}\ndelete table {NFT_FAMILY} {NFT_TABLE}\n" + render_table(nat)


def delete_script() -> str:
    return f"add table {NFT_FAMILY} {NFT_TABLE}\ndelete table {NFT_FAMILY} {NFT_TABLE}\n"


def normalize(listing: str) -> str:
    """Whitespace-insensitive form: nft wraps long element lists and indents with tabs."""
    return " ".join(listing.split())
