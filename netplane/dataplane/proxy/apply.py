"""Writing a `Ruleset` into a node's network namespace, one atomic `nft -f -` per sync.

The first sync of a `Proxy` (a fresh agent) is a full resync: the table is deleted and
defined again in the same transaction, so whatever a crashed or older agent left is
gone. Later syncs are incremental against what this process last wrote: only the map
elements of changed service ports are deleted and added, only changed chains flushed and
refilled, and affinity sets that still exist are never touched (they hold the kernel's
client -> endpoint memory). A sync whose rendering equals the last one writes nothing at
all. If a transaction fails, nft has applied none of it and the next sync is a full one again.

Removed UDP endpoints leave conntrack entries that would keep sending a client's
datagrams to a dead address (UDP has no close); they are deleted with the
`conntrack` tool (Debian package `conntrack`) when it is installed.
"""

from __future__ import annotations

import logging
import shutil

from netplane.dataplane.podnet.nsexec import netns_exists, netns_path, run_in
from netplane.dataplane.podnet.nsexec import nft as run_nft
from netplane.dataplane.proxy.render import FAMILY, TABLE, Chain, Fragment, NftSet, Ruleset, UdpFrontend, render_text

log = logging.getLogger(__name__)
T = f"{FAMILY} {TABLE}"


class ProxyApplyError(RuntimeError):
    pass


def full_transaction(rs: Ruleset) -> str:
    """Create-if-missing, delete, define: other tables are never named."""
    return f"add table {T}\ndelete table {T}\n" + render_text(rs)


def _fill(s: NftSet) -> list[str]:
    return [f"add element {T} {s.name} {{ {', '.join(s.elements)} }}"] if s.elements else []


def _rules(c: Chain) -> list[str]:
    return [f"add rule {T} {c.name} {r}" for r in c.rules]


def changed_fragments(old: Ruleset, new: Ruleset) -> list[tuple[Fragment | None, Fragment | None]]:
    """(before, after) for every service port whose fragment differs; None where it is absent."""
    was, now = old.fragments, new.fragments
    # Identity first: a renderer hands unchanged services' fragments on as they were.
    out: list[tuple[Fragment | None, Fragment | None]] = [
        (was.get(token), frag) for token, frag in now.items() if was.get(token) is not frag]
    out = [(before, after) for before, after in out if before != after]
    out += [(was[token], None) for token in sorted(was.keys() - now.keys())]
    return out


def _elements(frags: list[Fragment | None]) -> dict[str, dict[str, str]]:
    """map -> key -> element, over `frags` (whose keys never overlap)."""
    out: dict[str, dict[str, str]] = {}
    for f in frags:
        for name, elements in f.elements if f is not None else ():
            keyed = out.setdefault(name, {})
            for e in elements:
                keyed[e.split(" : ", 1)[0]] = e
    return out


def incremental_transaction(old: Ruleset, new: Ruleset) -> str:
    """Commands turning `old` (what the kernel has) into `new`; empty when they are equal.

    The cost follows the change: the fixed part is compared as a whole (it is small), service
    ports only where their fragments differ, and those by map element. Order matters inside the
    transaction: objects are created before anything refers to them, and references (map elements,
    rules) are gone before their targets are deleted."""
    changed = changed_fragments(old, new)
    before, after = [b for b, _ in changed], [a for _, a in changed]
    old_sets = {s.name: s for s in (*old.base_sets, *(s for f in before if f for s in f.sets))}
    new_sets = {s.name: s for s in (*new.base_sets, *(s for f in after if f for s in f.sets))}
    old_chains = {c.name: c for c in (*old.base_chains, *(c for f in before if f for c in f.chains))}
    new_chains = {c.name: c for c in (*new.base_chains, *(c for f in after if f for c in f.chains))}
    old_elements, new_elements = _elements(before), _elements(after)
    cmds: list[str] = []
    for name, s in new_sets.items():
        prev = old_sets.get(name)
        if prev is not None and prev.definition() != s.definition():
            raise ProxyApplyError(f"{s.kind} {name} changed its type; needs a full sync")
        if prev is None:
            cmds.append(f"add {s.kind} {T} {name} {s.definition()}")
    for name, c in new_chains.items():
        if name not in old_chains:
            cmds.append(f"add chain {T} {name}" + (f" {{ {c.base} }}" if c.base else ""))
        elif old_chains[name].base != c.base:
            raise ProxyApplyError(f"base chain {name} changed; needs a full sync")
    for name, elements in old_elements.items():
        fresh = new_elements.get(name, {})
        gone = [k for k, e in elements.items() if fresh.get(k) != e]
        if gone:
            cmds.append(f"delete element {T} {name} {{ {', '.join(gone)} }}")
    for name, s in new_sets.items():
        prev = old_sets.get(name)
        if not s.dynamic and (prev is None or prev.elements != s.elements):
            if prev is not None:
                cmds.append(f"flush {s.kind} {T} {name}")
            cmds += _fill(s)
    for name, c in new_chains.items():
        prev_chain = old_chains.get(name)
        if prev_chain is None or prev_chain.rules != c.rules:
            if prev_chain is not None:
                cmds.append(f"flush chain {T} {name}")
            cmds += _rules(c)
    for name, elements in new_elements.items():
        known = old_elements.get(name, {})
        added = [e for k, e in elements.items() if known.get(k) != e]
        if added:
            cmds.append(f"add element {T} {name} {{ {', '.join(added)} }}")
    gone = [n for n in old_chains if n not in new_chains]
    cmds += [f"flush chain {T} {n}" for n in gone]
    cmds += [f"delete chain {T} {n}" for n in gone]
    cmds += [f"delete {s.kind} {T} {n}" for n, s in old_sets.items() if n not in new_sets]
    return "".join(f"{c}\n" for c in cmds)


def _frontend_order(u: UdpFrontend) -> tuple[str, int]:
    return str(u.address), u.port


def stale_udp_flows(old: Ruleset | None, new: Ruleset) -> list[list[str]]:
    """`conntrack -D` argument lists: flows DNATed to endpoints a frontend no longer uses, and,
    for frontends that had no endpoints before, flows that were set up without NAT (rejected
    datagrams still leave an entry that would bypass the new DNAT)."""
    if old is None:
        return []
    changed = changed_fragments(old, new)
    before = {(u.address, u.port): u for f, _ in changed if f is not None for u in f.udp}
    out: list[list[str]] = []
    for u in sorted((u for _, f in changed if f is not None for u in f.udp), key=_frontend_order):
        dst = ["--orig-dst", str(u.address)] if u.address is not None else []
        prev = before.pop((u.address, u.port), None)
        had = prev.endpoints if prev is not None else frozenset()
        if u.endpoints and not had:
            out.append(["-p", "udp", *dst, "--orig-port-dst", str(u.port)])
        for ip, _ in sorted(had - u.endpoints):
            out.append(["-p", "udp", *dst, "--orig-port-dst", str(u.port), "--dst-nat", str(ip)])
    for u in sorted(before.values(), key=_frontend_order):  # the frontend itself is gone
        dst = ["--orig-dst", str(u.address)] if u.address is not None else []
        out += [["-p", "udp", *dst, "--orig-port-dst", str(u.port), "--dst-nat", str(ip)]
                for ip, _ in sorted(u.endpoints)]
    return out


class Proxy:
    """The service proxy of one node namespace; `sync` is called with each new rendering."""

    def __init__(self, netns: str) -> None:
        netns_path(netns)  # validates the name
        self.netns = netns
        self.applied: Ruleset | None = None  # None: the next sync is a full resync

    def sync(self, rs: Ruleset) -> list[str]:
        """Make the namespace's table match `rs`; returns what was done (empty: nothing)."""
        if self.applied is not None and self.applied == rs:
            return []
        changes: list[str] = []
        script = None
        if self.applied is not None:
            try:
                script = incremental_transaction(self.applied, rs)
                changes.append(f"table {T}: {script.count(chr(10))} incremental commands")
            except ProxyApplyError as e:
                log.info("proxy %s: %s", self.netns, e)
        if script is None:
            script = full_transaction(rs)
            changes.append(f"table {T}: full resync")
        done = run_nft(self.netns, script)
        if done.returncode != 0:
            self.applied = None
            raise ProxyApplyError(f"nft in {self.netns}: {done.stderr.strip()}")
        previous, self.applied = self.applied, rs
        changes += self._flush_conntrack(stale_udp_flows(previous, rs))
        for change in changes:
            log.info("proxy %s: %s", self.netns, change)
        return changes

    def _flush_conntrack(self, flows: list[list[str]]) -> list[str]:
        if not flows:
            return []
        if shutil.which("conntrack") is None:
            return ["conntrack tool missing: stale UDP flows kept (apt-get install conntrack)"]
        done = []
        for args in flows:
            # Exit status 1 with "0 flow entries" just means there was nothing to delete.
            run_in(self.netns, ["conntrack", "-D", *args], timeout=10)
            done.append("conntrack -D " + " ".join(args))
        return done

    def teardown(self) -> list[str]:
        """Remove the table (and forget it, so a later sync starts from scratch)."""
        self.applied = None
        if not netns_exists(self.netns):
            return []
        if run_nft(self.netns, None, "list", "table", FAMILY, TABLE).returncode != 0:
            return []
        done = run_nft(self.netns, f"add table {T}\ndelete table {T}\n")
        if done.returncode != 0:
            raise ProxyApplyError(f"nft in {self.netns}: {done.stderr.strip()}")
        return [f"table {T} removed"]


__all__ = ["Proxy", "ProxyApplyError", "UdpFrontend", "full_transaction", "incremental_transaction",
           "stale_udp_flows"]
