"""The service proxy of one node (kube-proxy's nftables semantics): `render` / `Renderer` turn Services and
EndpointSlices into a `Ruleset` (pure), `Proxy.sync` writes it atomically into a namespace."""

from netplane.dataplane.proxy.apply import Proxy, ProxyApplyError, incremental_transaction, stale_udp_flows
from netplane.dataplane.proxy.render import NodeConfig, Renderer, Ruleset, render, render_text

__all__ = ["NodeConfig", "Proxy", "ProxyApplyError", "Renderer", "Ruleset", "incremental_transaction", "render",
           "render_text", "stale_udp_flows"]
