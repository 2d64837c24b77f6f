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


class HostAlias(BaseModel):
    ip: str = Field(description="The IP address the domains resolve to.", min_length=1)
    domains: list[str] = Field(description="Domain names answered with ip, as the hosts plugin does.",
                               min_length=1)


class PluginConfig(BaseModel):
    hostAliases: list[HostAlias] | None = Field(None, description="coredns: static host entries.")
    nodeSelector: dict[str, str] | None = Field(None, description="Nodes the plugin's workload may run on.")
    tolerations: list[dict[str, Any]] | None = Field(None, description="Taints the plugin's workload tolerates.")
    ip: str | None = Field(None, description="nodelocaldns: the address of the node-local cache "
                                             "(default 169.254.20.10).")


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
