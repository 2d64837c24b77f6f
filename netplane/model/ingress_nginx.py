"""IngressNginx (ingress-nginx.alauda.io/v1): one ingress-nginx controller instance, as the guide's
ingress-nginx-operator deploys it.

The spec is the ingress-nginx Helm chart's values (`spec.controller.replicaCount`,
`.podAnnotations`, …). The fields netplane acts on are typed and validated here; any other chart value
is kept as written (the operator passes unknown values through to the chart), so a values file
copied from an existing installation applies.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from netplane.model.conditions import Condition
from netplane.model.crd import Kind, PrinterColumn

# An IngressClass name is a DNS subdomain.
_CLASS_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class IngressClassResource(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field("nginx", description="The IngressClass this instance serves (spec.ingressClassName of the "
                                          "Ingresses it picks up).", max_length=253, pattern=_CLASS_NAME)
    default: bool = Field(False, description="Mark the IngressClass as the cluster's default: Ingresses without "
                                             "ingressClassName go to this instance.")
    controllerValue: str = Field("k8s.io/ingress-nginx", description="spec.controller of the IngressClass.",
                                 max_length=250)


class ServicePorts(BaseModel):
    http: int | None = Field(None, ge=1, le=65535)
    https: int | None = Field(None, ge=1, le=65535)


class ControllerService(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        "LoadBalancer", description="How the instance is exposed, as the chart's controller.service.type.")
    nodePorts: ServicePorts | None = Field(None, description="Fixed node ports for http and https.")


class Controller(BaseModel):
    model_config = ConfigDict(extra="allow")
    replicaCount: int = Field(1, ge=0, le=100, description="How many instances (pods) serve the class.")
    kind: Literal["Deployment", "DaemonSet"] = Field("Deployment", description="Run as a Deployment or on every "
                                                                              "selected node.")
    hostNetwork: bool = Field(False, description="Listen on the nodes' own addresses (ports 80 and 443).")
    podAnnotations: dict[str, str] | None = Field(None, description="Annotations of the instance's pods (e.g. "
                                                                    "endpoint-health-checker.io/enabled).")
    nodeSelector: dict[str, str] | None = Field(None, description="Nodes the instance's pods may run on.")
    tolerations: list[dict[str, Any]] | None = Field(None, description="Taints the instance's pods tolerate.")
    service: ControllerService | None = Field(None, description="The Service in front of the instance.")
    config: dict[str, str] | None = Field(None, description="Global settings in ingress-nginx's ConfigMap keys "
                                                            "(e.g. max-worker-connections, hsts, proxy-read-timeout).")
    ingressClassResource: IngressClassResource | None = Field(None, description="The IngressClass to create.")
    allowSnippetAnnotations: bool = Field(False, description="Accept raw nginx snippets in annotations. Off: only "
                                                             "more_set_headers/more_clear_headers are accepted.")


class IngressNginxSpec(BaseModel):
    model_config = ConfigDict(extra="allow")
    controller: Controller | None = Field(None, description="The controller's chart values.")


class IngressNginxStatus(BaseModel):
    phase: Literal["Deploying", "Running", "Failed"] | None = None
    readyReplicas: int | None = None
    ingressClass: str | None = None
    conditions: list[Condition] | None = None


INGRESS_NGINX = Kind(
    group="ingress-nginx.alauda.io", version="v1", kind="IngressNginx", plural="ingressnginxes",
    spec=IngressNginxSpec, status=IngressNginxStatus, short_names=("ingnginx",),
    description="An ingress-nginx controller instance (the ingress-nginx-operator's custom resource): its "
                "spec is the chart's values.",
    printer_columns=(
        PrinterColumn("Class", ".status.ingressClass"),
        PrinterColumn("Ready", ".status.readyReplicas", "integer"),
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
    ),
)
