"""Every kind netplane serves of its own."""

from __future__ import annotations

from netplane.model.crd import Kind
from netplane.model.ingress_nginx import INGRESS_NGINX
from netplane.model.kubeovn import KUBEOVN_KINDS
from netplane.model.plugins import CLUSTER_PLUGIN
from netplane.model.projects import PROJECT

ALL_KINDS: tuple[Kind, ...] = (CLUSTER_PLUGIN, PROJECT, INGRESS_NGINX, *KUBEOVN_KINDS)
