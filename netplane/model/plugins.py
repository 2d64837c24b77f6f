"""ClusterPlugin: install (create), configure (update spec.config), uninstall (delete) a cluster plugin.

The guide installs CoreDNS, NodeLocal DNSCache, the endpoint health checker and Multus
from a plugin marketplace; this is that marketplace's API. Which plugins exist and what
their configuration means is decided by their controllers.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from netplane.model.conditions import Condition
from netplane.model.crd import Kind, PrinterColumn
from netplane.model.kubeovn import IP

# A DNS name as the hosts plugin takes it: lower- or upper-case labels of letters, digits and
# hyphens, optionally a leading "*." (one extra label), optionally a trailing dot.
DOMAIN = r"^([*][.])?([A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?[.])*[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?[.]?$"
_IP_RULE: dict[str, Any] = {"x-kubernetes-validations": [{"rule": f"self.matches('^{IP}$')",
                                           "message": "must be an IPv4 or IPv6 address"}]}
_IP_ITEMS: dict[str, Any] = {"items": {"type": "string", "pattern": f"^{IP}$"}}


class HostAlias(BaseModel):
    ip: str = Field(description="The IP address the domains resolve to.", min_length=1, max_length=45,
                    json_schema_extra=_IP_RULE)
    domains: list[str] = Field(description="Domain names answered with ip, as CoreDNS's hosts plugin does "
                                           "(the console's space-separated list, one entry each).",
                               min_length=1, max_length=64,
                               json_schema_extra={"items": {"type": "string", "maxLength": 253, "pattern": DOMAIN}})


class PluginConfig(BaseModel):
    hostAliases: list[HostAlias] | None = Field(
        None, description="coredns: static host entries. A domain may appear once.", max_length=1000,
        json_schema_extra={"x-kubernetes-validations": [{
            "rule": "self.all(a, a.domains.all(d, self.map(b, b.domains.filter(e, e == d).size()).sum() == 1))",
            "message": "a domain may appear only once across hostAliases"}]})
    nodeSelector: dict[str, str] | None = Field(None, description="Nodes the plugin's workload may run on.")
    tolerations: list[dict[str, Any]] | None = Field(None, description="Taints the plugin's workload tolerates.")
    upstreams: list[str] | None = Field(
        None, description="coredns: resolvers asked for names outside the cluster (the node-local cache uses "
                          "them too). None: such names get SERVFAIL.", max_length=3, json_schema_extra=_IP_ITEMS)
    ip: str | None = Field(None, description="nodelocaldns: the address of the node-local cache "
                                             "(default 169.254.20.10; fd00::10 for IPv6).",
                           max_length=45, json_schema_extra=_IP_RULE)


class ClusterPluginSpec(BaseModel):
    config: PluginConfig | None = Field(None, description="The plugin's configuration.")


class ClusterPluginStatus(BaseModel):
    phase: Literal["Installing", "Ready", "Failed", "Uninstalling"] | None = Field(
        None, description="A summary of the conditions.")
    conditions: list[Condition] | None = Field(None, description="Ready, with a reason when it is not.")


CLUSTER_PLUGIN = Kind(
    group="netplane.io", version="v1alpha1", kind="ClusterPlugin", plural="clusterplugins",
    spec=ClusterPluginSpec, status=ClusterPluginStatus, namespaced=False, short_names=("cplugin",),
    description="A cluster plugin (coredns, nodelocaldns, endpoint-health-checker, multus): created to "
                "install, spec.config updated to configure, deleted to uninstall.",
    printer_columns=(
        PrinterColumn("Ready", '.status.conditions[?(@.type=="Ready")].status'),
        PrinterColumn("Reason", '.status.conditions[?(@.type=="Ready")].reason'),
        PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
    ),
)
