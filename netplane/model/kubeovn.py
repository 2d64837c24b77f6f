"""Kube-OVN's network kinds (group kubeovn.io, v1, cluster-scoped): Subnet, IP, Vpc, Vlan,
ProviderNetwork, IPPool.

Field names, JSON casing, short names and printer columns follow Kube-OVN's own CRDs so that
the guide's YAML, `kubectl get subnets` and objects exported from a Kube-OVN cluster work
unchanged. The Subnet kind also carries the fields the guide documents for Calico-mode
clusters (ipipMode, vxlanMode, v4blockSize, v6blockSize), which Kube-OVN itself does not have.

What the schema checks is what can be judged from one object's shape: enums, address
syntax, ranges, fields that contradict each other, immutability. It deliberately does NOT
reject what Kube-OVN accepts and normalises, because the guide's own examples rely on it:
- `protocol` is derived from `cidrBlock` (a Dual subnet with only an IPv4 CIDR becomes IPv4);
- `cidrBlock` with host bits set (10.1.1.1/24) is rewritten to its network address (10.1.1.0/24).
The subnet controller (a later issue) does that normalisation and reports it in a
`Validated` status condition. The rules that need the rest of the cluster or more
arithmetic than a schema holds are the controller's too; see SUBNET_CONTROLLER_RULES.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from netplane.model.conditions import Condition
from netplane.model.crd import Kind, PrinterColumn

GROUP = "kubeovn.io"
VERSION = "v1"

# --- address syntax -------------------------------------------------------------------
# Regular expressions are shared by OpenAPI `pattern` (items of lists) and CEL `matches`
# (scalars, where a rule can carry a readable message). Both run RE2 on a real API server,
# so only RE2 syntax is used, and no backslashes (a literal dot is [.]) so that the
# expressions embed in CEL string literals unchanged. IPv6 is checked loosely (hex digits, colons, an optional
# dotted tail); the controller parses it properly. Kube-OVN refuses upper-case IPv6 in
# gateways and address lists, so those accept lower case only.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
V4 = rf"{_OCTET}([.]{_OCTET}){{3}}"
V6 = r"[0-9a-f]*:[0-9a-f:]*(:[0-9.]+)?"
_V6_ANY_CASE = r"[0-9a-fA-F]*:[0-9a-fA-F:]*(:[0-9.]+)?"
# A subnet of one address has no room for a gateway: Kube-OVN refuses /32 and /128, and the
# guide says prefixes above 31 are unsupported.
V4_SUBNET = rf"{V4}/(3[01]|[12]?[0-9])"
V6_SUBNET = rf"{_V6_ANY_CASE}/(12[0-7]|1[01][0-9]|[1-9]?[0-9])"
V4_CIDR = rf"{V4}/(3[0-2]|[12]?[0-9])"
V6_CIDR = rf"{V6}/(12[0-8]|1[01][0-9]|[1-9]?[0-9])"
IP = rf"({V4}|{V6})"
CIDR_BLOCK = rf"^({V4_SUBNET}|{V6_SUBNET})(,({V4_SUBNET}|{V6_SUBNET}))?$"
GATEWAY = rf"^{IP}(,{IP})?$"
EXCLUDE_IP = rf"^{IP}([.][.]{IP})?$"
POOL_ENTRY = rf"^({IP}|{V4_CIDR}|{V6_CIDR}|{IP}[.][.]{IP})$"
ALLOW_SUBNET = rf"^({V4_CIDR}|{V6_CIDR})$"
MAC = r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$"
# Linux interface names: at most 15 bytes, no slash, no white space.
INTERFACE_NAME = r"^[^/\s]+$"


def _rule(rule: str, message: str, **extra: str) -> dict[str, str]:
    return {"rule": rule, "message": message, **extra}


def _rules(*rules: dict[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules)}


def _immutable(field: str) -> dict[str, Any]:
    # Kube-OVN documents these as fixed after creation; its controller cannot move an existing
    # logical switch, VLAN or bridge, so a change would silently not take effect.
    return _rules(_rule("self == oldSelf", f"{field} is immutable"))


# --- shared shapes --------------------------------------------------------------------

class KubeOvnCondition(Condition):
    """metav1.Condition plus the probe time Kube-OVN's controllers also record."""

    lastUpdateTime: str | None = Field(None, description="When the condition was last checked (RFC 3339).",
                                       json_schema_extra={"format": "date-time"})


class LabelSelectorRequirement(BaseModel):
    key: str = Field(description="The label key the requirement applies to.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="How the key relates to the values.")
    values: list[str] | None = Field(None, description="Values for In and NotIn; empty for Exists and "
                                                       "DoesNotExist.")


class LabelSelector(BaseModel):
    matchLabels: dict[str, str] | None = Field(None, description="Labels that must all be present with these "
                                                                 "values.")
    matchExpressions: list[LabelSelectorRequirement] | None = Field(None, description="Requirements that must "
                                                                                      "all hold.")


def _count(description: str) -> Any:
    # Kube-OVN stores address counts as big integers written as JSON numbers (an IPv6 /64 holds
    # 2^64 addresses), hence `number` rather than `integer`.
    return Field(None, description=description)


# --- Subnet ---------------------------------------------------------------------------

class SubnetAcl(BaseModel):
    direction: Literal["from-lport", "to-lport"] | None = Field(
        None, description="from-lport: traffic leaving the subnet's ports; to-lport: traffic reaching them.")
    priority: int | None = Field(None, ge=0, le=32767, description="OVN ACL priority; higher wins.")
    match: str | None = Field(None, description="An OVN match expression, e.g. ip4.src == 10.16.0.0/16.")
    action: Literal["allow", "allow-related", "allow-stateless", "drop", "reject", "pass"] | None = Field(
        None, description="What OVN does with matching packets.")


class NatOutgoingPolicyMatch(BaseModel):
    srcIPs: str | None = Field(None, description="Source addresses or CIDRs, comma separated.")
    dstIPs: str | None = Field(None, description="Destination addresses or CIDRs, comma separated.")


class NatOutgoingPolicyRule(BaseModel):
    match: NatOutgoingPolicyMatch = Field(description="Which outbound packets the rule applies to.")
    action: Literal["nat", "forward"] = Field(description="nat: masquerade as the node; forward: keep the "
                                                          "pod address.")


class NatOutgoingPolicyRuleStatus(NatOutgoingPolicyRule):
    ruleID: str = Field(description="The identifier the controller gave the rule.")


class U2OFeatures(BaseModel):
    overlayOnlyRouting: bool | None = Field(
        None, description="Route only overlay CIDRs through the underlay-to-overlay interconnection. Needs "
                          "u2oInterconnection and vlan.")


_ENCAP_ON = "['Always', 'CrossSubnet']"


class SubnetSpec(BaseModel):
    model_config = ConfigDict(json_schema_extra=_rules(
        _rule("!(has(self.logicalGateway) && self.logicalGateway && "
              "has(self.u2oInterconnection) && self.u2oInterconnection)",
              "logicalGateway and u2oInterconnection cannot both be enabled"),
        _rule("!has(self.u2oFeatures) || !has(self.u2oFeatures.overlayOnlyRouting) || "
              "!self.u2oFeatures.overlayOnlyRouting || "
              "(has(self.u2oInterconnection) && self.u2oInterconnection && has(self.vlan) && self.vlan != '')",
              "u2oFeatures.overlayOnlyRouting needs u2oInterconnection: true on an underlay subnet (vlan set)",
              fieldPath=".u2oFeatures.overlayOnlyRouting"),
        _rule("!(self.natOutgoing && has(self.externalEgressGateway) && self.externalEgressGateway != '')",
              "natOutgoing and externalEgressGateway cannot both be set: outbound traffic is either "
              "masqueraded or sent to the external gateway"),
        _rule(f"!(has(self.ipipMode) && self.ipipMode in {_ENCAP_ON} && "
              f"has(self.vxlanMode) && self.vxlanMode in {_ENCAP_ON})",
              "choose one encapsulation: ipipMode and vxlanMode cannot both be Always or CrossSubnet"),
        _rule(f"!(has(self.ipipMode) && self.ipipMode in {_ENCAP_ON}) || "
              "self.cidrBlock.split(',').exists(c, !c.contains(':'))",
              "IPIP encapsulates IPv4 only; an IPv6 Calico subnet uses vxlanMode", fieldPath=".ipipMode"),
        # The guide's blockSize table never gives a block larger than the subnet: a block is
        # carved out of the CIDR, so its prefix cannot be shorter than the CIDR's.
        _rule("!has(self.v4blockSize) || !self.cidrBlock.matches('" + CIDR_BLOCK + "') || "
              "self.cidrBlock.split(',').all(c, c.contains(':') || "
              "int(c.split('/')[1]) <= self.v4blockSize)",
              "v4blockSize must not be smaller than the prefix length of the IPv4 cidrBlock",
              fieldPath=".v4blockSize"),
        _rule("!has(self.v6blockSize) || !self.cidrBlock.matches('" + CIDR_BLOCK + "') || "
              "self.cidrBlock.split(',').all(c, !c.contains(':') || "
              "int(c.split('/')[1]) <= self.v6blockSize)",
              "v6blockSize must not be smaller than the prefix length of the IPv6 cidrBlock",
              fieldPath=".v6blockSize"),
    ))

    default: bool = Field(False, description="Whether pods of namespaces bound to no subnet get addresses "
                                             "here. One subnet per cluster is the default; the controller "
                                             "clears the flag on others. In Calico mode the guide ties it to "
                                             "VXLAN encapsulation.")
    vpc: str | None = Field(None, description="The Vpc the subnet belongs to; ovn-cluster (the default VPC) "
                                              "when empty. Only the change from empty to ovn-cluster is "
                                              "allowed later.")
    protocol: Literal["IPv4", "IPv6", "Dual"] | None = Field(
        None, description="Address families: IPv4, IPv6 or Dual. Derived from cidrBlock by the controller; "
                          "a value that disagrees with cidrBlock is corrected and reported, not rejected.")
    namespaces: list[str] | None = Field(None, description="Namespaces whose pods take addresses from this "
                                                           "subnet.")
    namespaceSelectors: list[LabelSelector] | None = Field(None, description="Namespaces bound by label "
                                                                             "instead of by name.")
    cidrBlock: str = Field(
        description="The subnet's address range: one CIDR (10.16.0.0/16), or an IPv4 and an IPv6 CIDR "
                    "separated by a comma for dual stack. Host bits are cleared by the controller "
                    "(10.1.1.1/24 becomes 10.1.1.0/24). Prefixes /32 and /128 are not supported.",
        max_length=100, json_schema_extra=_rules(
            _rule(f"self.matches('{CIDR_BLOCK}')",
                  "cidrBlock must be a CIDR such as 10.16.0.0/16 with a prefix of at most /31 (/127 for "
                  "IPv6), or an IPv4 and an IPv6 CIDR separated by a comma"),
            _rule("self.split(',').size() == 1 || "
                  "self.split(',')[0].contains(':') != self.split(',')[1].contains(':')",
                  "a dual-stack cidrBlock needs one IPv4 and one IPv6 CIDR")))
    gateway: str | None = Field(
        None, description="The gateway address (one per family, comma separated). The controller uses the "
                          "first usable address of each CIDR when empty; underlay subnets name the physical "
                          "gateway.", max_length=100, json_schema_extra=_rules(
            _rule(f"self == '' || self.matches('{GATEWAY}')",
                  "gateway must be an IP address, or an IPv4 and an IPv6 address separated by a comma "
                  "(IPv6 in lower case)")))
    excludeIps: list[str] | None = Field(
        None, description="Reserved addresses never handed out automatically (static assignments may still "
                          "use them): single addresses or ranges written first..last. The gateway is "
                          "always reserved.", json_schema_extra={"items": {"type": "string",
                                                                           "pattern": EXCLUDE_IP}})
    provider: str = Field("ovn", description="Which network the subnet serves: ovn for the primary pod "
                                             "network, <attachment>.<namespace>[.ovn] for a secondary "
                                             "interface defined by a NetworkAttachmentDefinition.")
    gatewayType: Literal["distributed", "centralized"] | None = Field(
        None, description="How pods reach outside the cluster: distributed (through their own node) or "
                          "centralized (through gatewayNode). Subnets of the default VPC get distributed "
                          "when empty.")
    gatewayNode: str = Field("", description="Gateway nodes of a centralized subnet, comma separated, each "
                                             "optionally node:ip (node1,node2:172.18.0.2).")
    gatewayNodeSelectors: list[LabelSelector] | None = Field(None, description="Gateway nodes chosen by label "
                                                                               "instead of by name.")
    natOutgoing: bool = Field(False, description="Masquerade traffic leaving the cluster behind the node "
                                                 "address; when false pod addresses are seen outside.")
    externalEgressGateway: str | None = Field(None, description="Send outbound traffic to these addresses "
                                                                "(at most one per family) instead of "
                                                                "masquerading it.")
    policyRoutingPriority: int | None = Field(None, ge=0, le=32767, description="Priority of the policy route "
                                                                              "for externalEgressGateway.")
    policyRoutingTableID: int | None = Field(None, ge=0, le=4294967295, description="Routing table of the "
                                                                                  "policy route for "
                                                                                  "externalEgressGateway.")
    mtu: int | None = Field(None, ge=0, le=65535, description="MTU of pod interfaces; IPv6 needs at least "
                                                              "1280.")
    private: bool = Field(False, description="Accept traffic only from this subnet and allowSubnets.")
    allowSubnets: list[str] | None = Field(
        None, description="CIDRs a private subnet accepts traffic from.",
        json_schema_extra={"items": {"type": "string", "pattern": ALLOW_SUBNET}})
    vlan: str | None = Field(None, description="The Vlan of an underlay subnet; empty for overlay.")
    vips: list[str] | None = Field(None, description="Virtual addresses reserved in the subnet.")
    logicalGateway: bool | None = Field(None, description="Underlay: let OVN act as the gateway instead of a "
                                                          "physical router.")
    disableGatewayCheck: bool | None = Field(None, description="Do not wait for the gateway to answer before a "
                                                               "pod is ready.")
    disableInterConnection: bool | None = Field(None, description="Keep the subnet out of cluster "
                                                                  "interconnection.")
    enableDHCP: bool | None = Field(None, description="Serve DHCP on the subnet.")
    dhcpV4Options: str | None = Field(None, description="DHCPv4 options.")
    dhcpV6Options: str | None = Field(None, description="DHCPv6 options.")
    enableIPv6RA: bool | None = Field(None, description="Send IPv6 router advertisements.")
    ipv6RAConfigs: str | None = Field(None, description="IPv6 router advertisement settings.")
    acls: list[SubnetAcl] | None = Field(None, description="OVN ACLs applied to the subnet.")
    allowEWTraffic: bool | None = Field(None, description="With acls, still allow traffic inside the subnet.")
    natOutgoingPolicyRules: list[NatOutgoingPolicyRule] | None = Field(
        None, description="Exceptions to natOutgoing by source and destination.")
    u2oInterconnectionIP: str | None = Field(None, description="The underlay address used to join the overlay "
                                                               "router; chosen by the controller when empty.")
    u2oInterconnection: bool | None = Field(None, description="Underlay: connect this subnet with the overlay "
                                                              "subnets automatically (ignored without vlan).")
    u2oFeatures: U2OFeatures | None = Field(None, description="Options of the underlay-to-overlay "
                                                              "interconnection.")
    enableLb: bool | None = Field(None, description="Load-balance Services for pods of this subnet in OVN; the "
                                                    "controller's setting when empty.")
    enableEcmp: bool | None = Field(None, description="Centralized gateway: spread outbound traffic over all "
                                                      "gateway nodes instead of one active node.")
    enableMulticastSnoop: bool | None = Field(None, description="Enable IGMP/MLD snooping.")
    enableExternalLBAddress: bool | None = Field(None, description="Allow LoadBalancer Service addresses from "
                                                                   "this subnet.")
    routeTable: str | None = Field(None, description="The VPC route table the subnet uses.")
    nodeNetwork: str | None = Field(None, description="Underlay: the node network the subnet is bound to.")
    # Calico mode (guide: "Calico Network"); Kube-OVN ignores these.
    ipipMode: Literal["Always", "CrossSubnet", "Never"] | None = Field(
        None, description="Calico: IPIP encapsulation. Always; CrossSubnet (only between nodes in different "
                          "host subnets); Never. IPv4 only, and not for dual stack.")
    vxlanMode: Literal["Always", "CrossSubnet", "Never"] | None = Field(
        None, description="Calico: VXLAN encapsulation (UDP port 4789), with the same modes as ipipMode. The "
                          "default for IPv6 subnets.")
    v4blockSize: int | None = Field(
        None, ge=20, le=32, description="Calico: prefix length of the per-node address blocks carved out of the "
                                        "IPv4 CIDR. Chosen from the CIDR when empty: /16 or shorter 26, /17-/19 "
                                        "27, /20 28, /21 29, /22-/25 30, /26-/31 31.")
    v6blockSize: int | None = Field(None, ge=116, le=128, description="Calico: prefix length of the per-node "
                                                                      "address blocks of the IPv6 CIDR (122 "
                                                                      "when empty).")


class SubnetStatus(BaseModel):
    conditions: list[KubeOvnCondition] | None = Field(
        None, description="Validated, Ready and Error, with reasons; Validated also reports values the "
                          "controller normalised (protocol, cidrBlock).")
    v4availableIPs: float | None = _count("IPv4 addresses still free.")
    v4availableIPrange: str | None = Field(None, description="The free IPv4 addresses as ranges.")
    v4usingIPs: float | None = _count("IPv4 addresses in use.")
    v4usingIPrange: str | None = Field(None, description="The IPv4 addresses in use as ranges.")
    v6availableIPs: float | None = _count("IPv6 addresses still free.")
    v6availableIPrange: str | None = Field(None, description="The free IPv6 addresses as ranges.")
    v6usingIPs: float | None = _count("IPv6 addresses in use.")
    v6usingIPrange: str | None = Field(None, description="The IPv6 addresses in use as ranges.")
    activateGateway: str | None = Field(None, description="The centralized gateway node now carrying traffic.")
    dhcpV4OptionsUUID: str | None = Field(None, description="The OVN DHCPv4 options row.")
    dhcpV6OptionsUUID: str | None = Field(None, description="The OVN DHCPv6 options row.")
    u2oInterconnectionIP: str | None = Field(None, description="The underlay-to-overlay interconnection "
                                                               "address in use.")
    u2oInterconnectionMAC: str | None = Field(None, description="Its MAC address.")
    u2oInterconnectionVPC: str | None = Field(None, description="The VPC it connects to.")
    natOutgoingPolicyRules: list[NatOutgoingPolicyRuleStatus] | None = Field(
        None, description="natOutgoingPolicyRules as applied.")
    mcastQuerierIP: str | None = Field(None, description="The multicast querier address.")
    mcastQuerierMAC: str | None = Field(None, description="The multicast querier MAC address.")


# Rules the subnet controller checks because a schema cannot (they need other objects, the
# cluster's configuration, or address arithmetic). Kept here, next to the fields, so the
# controller issue has one list to implement; tests assert the schema does NOT check them.
SUBNET_CONTROLLER_RULES: tuple[str, ...] = (
    "protocol is derived from cidrBlock; a different value is overwritten and reported",
    "cidrBlock host bits are cleared (10.1.1.1/24 -> 10.1.1.0/24) and reported",
    "cidrBlock must not be a zero, broadcast, loopback, link-local or multicast range",
    "gateway must lie inside cidrBlock and not be its network or IPv4 broadcast address; "
    "empty -> first usable address of each family",
    "excludeIps ranges must run low to high; the gateway is always added",
    "u2oInterconnectionIP must lie inside cidrBlock and differ from the gateway",
    "vips must lie inside cidrBlock",
    "externalEgressGateway's address family must match cidrBlock unless dual stack",
    "mtu below 1280 is refused for IPv6 and dual-stack subnets",
    "vpc must not equal the subnet's name; subnets in one vpc and vlan must not overlap",
    "a default-VPC subnet must not contain the API server's Service address or a node address",
    "only one subnet is default",
    "v4blockSize/v6blockSize default from the CIDR prefix (guide table); IPIP is unsupported for dual stack",
    "vlan must name an existing, non-conflicting Vlan",
)


SUBNET = Kind(
    group=GROUP, version=VERSION, kind="Subnet", plural="subnets", spec=SubnetSpec, status=SubnetStatus,
    namespaced=False, short_names=("subnet",),
    description="A range of pod addresses (a logical switch): overlay, underlay (with vlan), a secondary "
                "interface's network (provider), or a Calico IP pool.",
    printer_columns=(
        PrinterColumn("Provider", ".spec.provider"),
        PrinterColumn("Vpc", ".spec.vpc"),
        PrinterColumn("Vlan", ".spec.vlan"),
        PrinterColumn("Protocol", ".spec.protocol"),
        PrinterColumn("CIDR", ".spec.cidrBlock"),
        PrinterColumn("Private", ".spec.private", "boolean"),
        PrinterColumn("NAT", ".spec.natOutgoing", "boolean"),
        PrinterColumn("Default", ".spec.default", "boolean"),
        PrinterColumn("GatewayType", ".spec.gatewayType"),
        PrinterColumn("V4Used", ".status.v4usingIPs", "number"),
        PrinterColumn("V4Available", ".status.v4availableIPs", "number"),
        PrinterColumn("V6Used", ".status.v6usingIPs", "number"),
        PrinterColumn("V6Available", ".status.v6availableIPs", "number"),
        PrinterColumn("ExcludeIPs", ".spec.excludeIps"),
        PrinterColumn("U2OInterconnectionIP", ".status.u2oInterconnectionIP"),
    ),
)


# --- IP -------------------------------------------------------------------------------

class IPSpec(BaseModel):
    # Kube-OVN writes every field, empty ones as "" and [], so each pattern accepts "".
    podName: str | None = Field(None, description="The pod (or VM) holding the address.")
    namespace: str | None = Field(None, description="The pod's namespace.")
    subnet: str | None = Field(None, description="The subnet the address comes from.",
                               json_schema_extra=_immutable("subnet"))
    attachSubnets: list[str] | None = Field(None, description="Subnets of the pod's other interfaces.")
    nodeName: str | None = Field(None, description="The node the pod runs on.")
    ipAddress: str | None = Field(None, description="Deprecated: the address(es), comma separated; use "
                                                    "v4IpAddress and v6IpAddress.")
    v4IpAddress: str | None = Field(None, description="The IPv4 address.", pattern=rf"^$|^{V4}$")
    v6IpAddress: str | None = Field(None, description="The IPv6 address.", pattern=rf"^$|^{V6}$")
    attachIps: list[str] | None = Field(None, description="Addresses of the pod's other interfaces.")
    macAddress: str | None = Field(None, description="The MAC address.", pattern=rf"^$|{MAC}")
    attachMacs: list[str] | None = Field(None, description="MAC addresses of the pod's other interfaces.")
    containerID: str | None = Field(None, description="The pod sandbox's container ID.")
    podType: str | None = Field(None, description="What holds the address: empty for a pod, VirtualMachine "
                                                  "for a KubeVirt VM, StatefulSet for a stateful pod.")


IP_KIND = Kind(
    group=GROUP, version=VERSION, kind="IP", plural="ips", spec=IPSpec, namespaced=False, short_names=("ip",),
    description="An address allocated to a pod or VM interface, named <pod>.<namespace>[.<provider>]. "
                "Written by the controller.",
    printer_columns=(
        PrinterColumn("V4IP", ".spec.v4IpAddress"),
        PrinterColumn("V6IP", ".spec.v6IpAddress"),
        PrinterColumn("Mac", ".spec.macAddress"),
        PrinterColumn("Node", ".spec.nodeName"),
        PrinterColumn("Subnet", ".spec.subnet"),
    ),
)


# --- Vpc ------------------------------------------------------------------------------

class BfdPort(BaseModel):
    enabled: bool = Field(False, description="Create the BFD port on the VPC's router.")
    ip: str | None = Field(None, description="The BFD port's address(es).")
    nodeSelector: LabelSelector | None = Field(None, description="Nodes that host the BFD port; at most three "
                                                                 "are chosen when empty.")


class StaticRoute(BaseModel):
    policy: Literal["policySrc", "policyDst"] | None = Field(None, description="Match on the source or the "
                                                                               "destination (default).")
    cidr: str = Field(description="The destination (or source) CIDR.")
    nextHopIP: str = Field(description="The next hop address.")
    ecmpMode: str | None = Field(None, description="How equal-cost routes are chosen.")
    bfdId: str | None = Field(None, description="The BFD session guarding this route.")
    routeTable: str | None = Field(None, description="The route table; the main table when empty.")


class PolicyRoute(BaseModel):
    priority: int | None = Field(None, ge=0, le=32767, description="Higher priorities are matched first.")
    match: str | None = Field(None, description="An OVN match expression.")
    action: Literal["allow", "drop", "reroute"] | None = Field(None, description="What to do with matching "
                                                                                 "packets.")
    nextHopIP: str | None = Field(None, description="Where reroute sends packets.")


class VpcPeering(BaseModel):
    remoteVpc: str | None = Field(None, description="The peer VPC.")
    localConnectIP: str | None = Field(None, description="This VPC's address on the peering link (CIDR).")


class VpcSpec(BaseModel):
    defaultSubnet: str | None = Field(None, description="The subnet pods of the VPC's namespaces use when "
                                                        "they name none.")
    namespaces: list[str] | None = Field(None, description="Namespaces that belong to the VPC.")
    staticRoutes: list[StaticRoute] | None = Field(None, description="Static routes of the VPC's router.")
    policyRoutes: list[PolicyRoute] | None = Field(None, description="Policy routes of the VPC's router.")
    vpcPeerings: list[VpcPeering] | None = Field(None, description="Connections to other VPCs.")
    enableExternal: bool | None = Field(None, description="Connect the VPC to the default external subnet.")
    extraExternalSubnets: list[str] | None = Field(None, description="Further external (underlay) subnets to "
                                                                     "connect.")
    enableBfd: bool | None = Field(None, description="Use BFD to detect failed external gateways.")
    bfdPort: BfdPort | None = Field(None, description="A BFD port on the VPC's router, e.g. for VPC egress "
                                                      "gateways.")


class BfdPortStatus(BaseModel):
    name: str | None = Field(None, description="The BFD port.")
    ip: str | None = Field(None, description="Its address.")
    nodes: list[str] | None = Field(None, description="Nodes hosting it.")


class VpcStatus(BaseModel):
    conditions: list[KubeOvnCondition] | None = Field(None, description="Ready and Error, with reasons.")
    standby: bool | None = Field(None, description="Whether the VPC's router has been created.")
    default: bool | None = Field(None, description="Whether this is the default VPC (ovn-cluster).")
    defaultLogicalSwitch: str | None = Field(None, description="The VPC's default subnet.")
    router: str | None = Field(None, description="The OVN logical router.")
    tcpLoadBalancer: str | None = Field(None, description="The OVN TCP load balancer.")
    udpLoadBalancer: str | None = Field(None, description="The OVN UDP load balancer.")
    sctpLoadBalancer: str | None = Field(None, description="The OVN SCTP load balancer.")
    tcpSessionLoadBalancer: str | None = Field(None, description="The OVN TCP session-affinity load balancer.")
    udpSessionLoadBalancer: str | None = Field(None, description="The OVN UDP session-affinity load balancer.")
    sctpSessionLoadBalancer: str | None = Field(None, description="The OVN SCTP session-affinity load "
                                                                  "balancer.")
    subnets: list[str] | None = Field(None, description="The VPC's subnets.")
    vpcPeerings: list[str] | None = Field(None, description="Peered VPCs.")
    enableExternal: bool | None = Field(None, description="Whether the external connection is in place.")
    extraExternalSubnets: list[str] | None = Field(None, description="Connected extra external subnets.")
    enableBfd: bool | None = Field(None, description="Whether BFD is in use.")
    bfdPort: BfdPortStatus | None = Field(None, description="The BFD port as created.")


VPC = Kind(
    group=GROUP, version=VERSION, kind="Vpc", plural="vpcs", spec=VpcSpec, status=VpcStatus, namespaced=False,
    short_names=("vpc",),
    description="An isolated virtual network with its own router; ovn-cluster is the default one.",
    printer_columns=(
        PrinterColumn("EnableExternal", ".status.enableExternal", "boolean"),
        PrinterColumn("EnableBfd", ".status.enableBfd", "boolean"),
        PrinterColumn("Standby", ".status.standby", "boolean"),
        PrinterColumn("Subnets", ".status.subnets"),
        PrinterColumn("ExtraExternalSubnets", ".status.extraExternalSubnets"),
        PrinterColumn("Namespaces", ".spec.namespaces"),
        PrinterColumn("DefaultSubnet", ".status.defaultLogicalSwitch"),
        PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
    ),
)


# --- Vlan -----------------------------------------------------------------------------

class VlanSpec(BaseModel):
    id: int = Field(0, ge=0, le=4095, description="The VLAN ID, 0-4095; 0 means untagged.",
                    json_schema_extra=_immutable("id"))
    provider: str = Field(description="The ProviderNetwork (bridge network) the VLAN is carried on.",
                          min_length=1, json_schema_extra=_immutable("provider"))
    vlanId: int | None = Field(None, ge=0, le=4095, description="Deprecated: use id.")
    providerInterfaceName: str | None = Field(None, description="Deprecated: use provider.")


class VlanStatus(BaseModel):
    subnets: list[str] | None = Field(None, description="Subnets using the VLAN.")
    conflict: bool | None = Field(None, description="Another Vlan uses the same non-zero ID on the same "
                                                    "provider; subnets of a conflicting Vlan are not set up.")
    conditions: list[KubeOvnCondition] | None = Field(None, description="Ready and Error, with reasons.")


VLAN = Kind(
    group=GROUP, version=VERSION, kind="Vlan", plural="vlans", spec=VlanSpec, status=VlanStatus,
    namespaced=False, short_names=("vlan",),
    description="A VLAN on a bridge network (ProviderNetwork) that underlay subnets attach to.",
    printer_columns=(
        PrinterColumn("ID", ".spec.id"),
        PrinterColumn("Provider", ".spec.provider"),
        PrinterColumn("conflict", ".status.conflict", "boolean"),
    ),
)


# --- ProviderNetwork ------------------------------------------------------------------

class CustomInterface(BaseModel):
    interface: str = Field(description="The NIC to bridge on these nodes.", max_length=15,
                           pattern=INTERFACE_NAME)
    nodes: list[str] = Field(description="Nodes that use this NIC instead of defaultInterface.")


class ProviderNetworkSpec(BaseModel):
    defaultInterface: str = Field(
        description="The NIC bridged to the physical network on every node not listed in customInterfaces. "
                    "It must carry no other traffic (such as SSH).",
        max_length=15, pattern=INTERFACE_NAME, json_schema_extra=_immutable("defaultInterface"))
    customInterfaces: list[CustomInterface] | None = Field(None, description="Per-node NICs that replace "
                                                                             "defaultInterface.")
    nodeSelector: LabelSelector | None = Field(None, description="Nodes the bridge network is set up on.")
    excludeNodes: list[str] | None = Field(None, description="Nodes without the bridge network; their pods "
                                                             "cannot reach the physical network.")
    exchangeLinkName: bool | None = Field(None, description="Swap the names of the NIC and the bridge.")
    autoCreateVlanSubinterfaces: bool | None = Field(None, description="Create the VLAN subinterfaces that "
                                                                       "vlanInterfaces names.")
    preserveVlanInterfaces: bool | None = Field(None, description="Keep existing VLAN subinterfaces of the "
                                                                  "NIC working.")
    vlanInterfaces: list[str] | None = Field(
        None, description="VLAN subinterfaces to preserve, written <nic>.<vlan-id> (eth0.10).",
        json_schema_extra={"items": {"type": "string", "pattern": r"^[a-zA-Z0-9_-]+\.[0-9]{1,4}$"}})


class ProviderNetworkCondition(KubeOvnCondition):
    node: str | None = Field(None, description="The node the condition is about.")


class ProviderNetworkStatus(BaseModel):
    ready: bool | None = Field(None, description="Whether the bridge is up on every selected node.")
    readyNodes: list[str] | None = Field(None, description="Nodes where the bridge is up.")
    notReadyNodes: list[str] | None = Field(None, description="Nodes where it is not.")
    vlans: list[str] | None = Field(None, description="Vlans carried on the bridge network.")
    conditions: list[ProviderNetworkCondition] | None = Field(None, description="Per-node Ready conditions.")


PROVIDER_NETWORK = Kind(
    group=GROUP, version=VERSION, kind="ProviderNetwork", plural="provider-networks",
    singular="provider-network", spec=ProviderNetworkSpec, status=ProviderNetworkStatus, namespaced=False,
    short_names=("pn",),
    description="A bridge network: the host NIC on each node that underlay subnets reach the physical "
                "network through.",
    printer_columns=(
        PrinterColumn("DefaultInterface", ".spec.defaultInterface"),
        PrinterColumn("Ready", ".status.ready", "boolean"),
    ),
)


# --- IPPool ---------------------------------------------------------------------------

class IPPoolSpec(BaseModel):
    subnet: str = Field(description="The subnet the pool's addresses belong to.", min_length=1,
                        json_schema_extra=_immutable("subnet"))
    ips: list[str] = Field(
        description="The pool's addresses: single addresses, CIDRs, or ranges written first..last. Only the "
                    "part inside the subnet is used, and pools of one subnet must not overlap.",
        min_length=1, json_schema_extra={"items": {"type": "string", "pattern": POOL_ENTRY}})
    namespaces: list[str] | None = Field(None, description="Namespaces whose pods take addresses only from "
                                                           "this pool.")
    enableAddressSet: bool = Field(False, description="Publish the pool as an OVN address set for policy "
                                                      "routes and ACLs.")


class IPPoolStatus(BaseModel):
    v4AvailableIPs: float | None = _count("IPv4 addresses still free.")
    v4AvailableIPRange: str | None = Field(None, description="The free IPv4 addresses as ranges.")
    v4UsingIPs: float | None = _count("IPv4 addresses in use.")
    v4UsingIPRange: str | None = Field(None, description="The IPv4 addresses in use as ranges.")
    v6AvailableIPs: float | None = _count("IPv6 addresses still free.")
    v6AvailableIPRange: str | None = Field(None, description="The free IPv6 addresses as ranges.")
    v6UsingIPs: float | None = _count("IPv6 addresses in use.")
    v6UsingIPRange: str | None = Field(None, description="The IPv6 addresses in use as ranges.")
    conditions: list[KubeOvnCondition] | None = Field(None, description="Ready and Error, with reasons.")


IPPOOL = Kind(
    group=GROUP, version=VERSION, kind="IPPool", plural="ippools", spec=IPPoolSpec, status=IPPoolStatus,
    namespaced=False, short_names=("ippool",),
    description="A set of a subnet's addresses reserved for some namespaces or workloads.",
    printer_columns=(
        PrinterColumn("Subnet", ".spec.subnet"),
        PrinterColumn("enableAddressSet", ".spec.enableAddressSet", "boolean"),
        PrinterColumn("IPs", ".spec.ips"),
        PrinterColumn("V4Used", ".status.v4UsingIPs", "number"),
        PrinterColumn("V4Available", ".status.v4AvailableIPs", "number"),
        PrinterColumn("V6Used", ".status.v6UsingIPs", "number"),
        PrinterColumn("V6Available", ".status.v6AvailableIPs", "number"),
    ),
)


KUBEOVN_KINDS: tuple[Kind, ...] = (SUBNET, IP_KIND, VPC, VLAN, PROVIDER_NETWORK, IPPOOL)
