"""A pod's resolv.conf from its dnsPolicy and dnsConfig, as the kubelet builds it (pure).

- ClusterFirst (the default): the cluster DNS (or the node-local cache when one serves this
  pod), the search list `<ns>.svc.<zone> svc.<zone> <zone>` followed by the node's own search
  domains, `options ndots:5`. A host-network pod with ClusterFirst gets the node's file instead,
  since the cluster DNS may not be reachable from the node (that is what ClusterFirstWithHostNet
  is for).
- Default: the node's file.
- None: nothing but dnsConfig.
dnsConfig is merged last: nameservers and searches appended without duplicates, options replaced
by name. Kubernetes' limits then apply: 3 nameservers (glibc reads no more), 32 search domains
and 2048 characters of search line; the kubelet drops the rest and says so in an Event, so the
dropped part is returned too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_NAMESERVERS = 3
MAX_SEARCHES = 32
MAX_SEARCH_CHARS = 2048


@dataclass(frozen=True)
class ResolvConf:
    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def render(self) -> str:
        lines = [f"nameserver {n}" for n in self.nameservers]
        if self.searches:
            lines.append("search " + " ".join(self.searches))
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "".join(line + "\n" for line in lines)


@dataclass(frozen=True)
class PodDns:
    conf: ResolvConf
    dropped: list[str] = field(default_factory=list)  # what the limits cut off, for an Event


def parse_resolv_conf(text: str) -> ResolvConf:
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        key, values = words[0], words[1:]
        if key == "nameserver" and values:
            nameservers.append(values[0])
        elif key in ("search", "domain"):
            searches = list(values)  # the last search/domain line wins, as in glibc
        elif key == "options":
            options.extend(values)
    return ResolvConf(tuple(nameservers), tuple(searches), tuple(options))


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _merge_options(base: Sequence[str], extra: Sequence[dict[str, Any]]) -> list[str]:
    merged: dict[str, str] = {}
    for option in base:
        merged[option.split(":", 1)[0]] = option
    for item in extra:
        name = str(item.get("name") or "")
        if not name:
            continue
        value = item.get("value")
        merged[name] = f"{name}:{value}" if value not in (None, "") else name
    return list(merged.values())


def pod_resolv_conf(pod: dict[str, Any], cluster_dns: Sequence[str], node: ResolvConf,
                    domain: str = "cluster.local") -> PodDns:
    spec = pod.get("spec") or {}
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        policy = "Default"
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet") and cluster_dns:
        nameservers = list(cluster_dns)
        searches = [f"{namespace}.svc.{domain}", f"svc.{domain}", domain, *node.searches]
        options = ["ndots:5"]
    elif policy == "None":
        nameservers, searches, options = [], [], []
    else:
        nameservers, searches, options = list(node.nameservers), list(node.searches), list(node.options)
    config = spec.get("dnsConfig") or {}
    nameservers = _unique([*nameservers, *(str(n) for n in config.get("nameservers") or [])])
    searches = _unique([*searches, *(str(s) for s in config.get("searches") or [])])
    options = _merge_options(options, config.get("options") or [])

    dropped = [f"nameserver {n}" for n in nameservers[MAX_NAMESERVERS:]]
    nameservers = nameservers[:MAX_NAMESERVERS]
    kept: list[str] = []
    for search in searches:
        if len(kept) == MAX_SEARCHES or len(" ".join([*kept, search])) > MAX_SEARCH_CHARS:
            dropped.append(f"search {search}")
        else:
            kept.append(search)
    return PodDns(ResolvConf(tuple(nameservers), tuple(kept), tuple(options)), dropped)
