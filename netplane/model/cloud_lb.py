"""Cloud load-balancer annotations on Services (feature SVC-9), as the networking guide lists them.

Shared by the API server, which validates their values, and the controller process, which tells
users (an Event on LoadBalancer Services) that no cloud provider acts on them in this cluster.

A key listed here has its value checked; any other key that merely starts with one of a provider's
prefixes is accepted as is (providers add keys faster than we could follow).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Provider:
    name: str
    prefixes: tuple[str, ...]


AWS = Provider("AWS EKS", ("service.beta.kubernetes.io/aws-load-balancer-",))
HUAWEI = Provider("Huawei CCE", ("kubernetes.io/elb.",))
AZURE = Provider("Azure AKS", ("service.beta.kubernetes.io/azure-",))
GOOGLE = Provider("Google GKE", ("networking.gke.io/", "cloud.google.com/"))
PROVIDERS = (AWS, HUAWEI, AZURE, GOOGLE)

AWS_TYPE = "service.beta.kubernetes.io/aws-load-balancer-type"
AWS_TARGET_TYPE = "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"
AWS_SCHEME = "service.beta.kubernetes.io/aws-load-balancer-scheme"
AWS_IP_ADDRESS_TYPE = "service.beta.kubernetes.io/aws-load-balancer-ip-address-type"
ELB_ID = "kubernetes.io/elb.id"
ELB_AUTOCREATE = "kubernetes.io/elb.autocreate"
ELB_SUBNET_ID = "kubernetes.io/elb.subnet-id"
ELB_CLASS = "kubernetes.io/elb.class"
ELB_ENTERPRISE_ID = "kubernetes.io/elb.enterpriseID"
AZURE_INTERNAL = "service.beta.kubernetes.io/azure-load-balancer-internal"
GKE_LB_TYPE = "networking.gke.io/load-balancer-type"
GKE_L4_RBS = "cloud.google.com/l4-rbs"

# Keys whose value must be one of a fixed set (sorted, as Kubernetes lists supported values).
ENUMS: dict[str, list[str]] = {
    AWS_TYPE: ["external"],
    AWS_TARGET_TYPE: ["instance", "ip"],
    AWS_SCHEME: ["internal", "internet-facing"],
    AWS_IP_ADDRESS_TYPE: ["dualstack", "ipv4"],
    ELB_CLASS: ["performance", "union"],
    AZURE_INTERNAL: ["false", "true"],
    GKE_LB_TYPE: ["Internal"],
    GKE_L4_RBS: ["enabled"],
}
# Keys holding an identifier: any non-blank value.
NON_EMPTY = (ELB_ID, ELB_SUBNET_ID, ELB_ENTERPRISE_ID)

# kubernetes.io/elb.autocreate: a JSON object with a "type"; the guide's other keys are type-checked
# when present, unknown keys are accepted.
AUTOCREATE_TYPES = ["inner", "public"]
AUTOCREATE_STRINGS = ("bandwidth_name", "bandwidth_chargemode", "bandwidth_sharetype", "eip_type",
                      "l4_flavor_name", "l7_flavor_name", "name", "vip_subnet_cidr_id", "vip_address")
AUTOCREATE_CHARGEMODES = ["bandwidth", "traffic"]


def provider_of(key: str) -> Provider | None:
    for provider in PROVIDERS:
        if key.startswith(provider.prefixes):
            return provider
    return None


def providers_in(annotations: dict[str, str] | None) -> list[Provider]:
    """The providers (in the guide's order) whose annotations are present."""
    found = {provider_of(key) for key in annotations or {}}
    return [p for p in PROVIDERS if p in found]
