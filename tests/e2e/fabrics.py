"""A real two-node fabric for e2e tests, removed again whatever happens."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from netplane.dataplane.fabric import build_fabric, remove_fabric
from netplane.dataplane.fabric_plan import FabricPlan, plan_fabric


@contextmanager
def two_node_fabric(prefix: str, cidr: str) -> Iterator[FabricPlan]:
    """Build nodes `node1` and `node2` under a fresh cluster id starting with ``prefix``; remove them on exit."""
    plan = plan_fabric(prefix + uuid.uuid4().hex[:5], ["node1", "node2"], cidr)
    build_fabric(plan)
    try:
        yield plan
    finally:
        remove_fabric(plan.cluster_id)
