"""Graceful pod deletion in the API core, which node agents rely on to stop pods before they go."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netplane.api.core import ApiCore, WriteOptions
from netplane.api.registry import storage_type
from netplane.apiserver_main import build
from netplane.up import UpOptions

pytestmark = pytest.mark.unit


def _core(tmp_path: Path, graceful: bool) -> tuple[ApiCore, Any]:
    core, _ = build(UpOptions(data_dir=tmp_path / "data", dataplane=False), 6443)
    core.graceful_pod_deletion = graceful
    pods = storage_type(core.registry, "", "pods")
    assert pods is not None
    return core, pods


def _pod(core: ApiCore, pods: Any, name: str, node: str = "node1", **spec: Any) -> None:
    core.create(pods, "default", {"metadata": {"name": name}, "spec": {
        "nodeName": node, "containers": [{"name": "c", "image": "busybox"}], **spec}}, WriteOptions())


def test_a_scheduled_pod_stays_terminating_until_deleted_with_grace_zero(tmp_path: Path) -> None:
    core, pods = _core(tmp_path, graceful=True)
    _pod(core, pods, "p", terminationGracePeriodSeconds=7)
    marked = core.delete(pods, "default", "p", {})
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 7 and marked["metadata"]["deletionTimestamp"]
    # The agent keeps reporting status while it stops the pod.
    current = core.get(pods, "default", "p")
    current["status"] = {"phase": "Running"}
    core.update(pods, "default", "p", current, WriteOptions(), subresource="status")
    assert core.store.get(pods, "default", "p") is not None
    core.delete(pods, "default", "p", {"gracePeriodSeconds": 0})
    assert core.store.get(pods, "default", "p") is None


def test_without_a_dataplane_or_node_pods_go_at_once(tmp_path: Path) -> None:
    core, pods = _core(tmp_path, graceful=False)
    _pod(core, pods, "p")
    core.delete(pods, "default", "p", {})
    assert core.store.get(pods, "default", "p") is None
    core.graceful_pod_deletion = True
    _pod(core, pods, "unscheduled", node="")
    core.delete(pods, "default", "unscheduled", {})
    assert core.store.get(pods, "default", "unscheduled") is None
