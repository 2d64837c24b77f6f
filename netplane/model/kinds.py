"""Every kind netplane serves of its own."""

from __future__ import annotations

from netplane.model.crd import Kind
from netplane.model.plugins import CLUSTER_PLUGIN

ALL_KINDS: tuple[Kind, ...] = (CLUSTER_PLUGIN,)
