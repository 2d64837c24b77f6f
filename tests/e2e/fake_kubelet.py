"""A test-only stand-in for node agents: Node objects that report Ready (with heartbeats), and pods bound
to them marked Running and Ready through the pods/status subresource, as a kubelet would.

It runs its own event loop in a thread and polls (the API is local and the numbers small), so a
test stays synchronous: `with FakeKubelet(kubeconfig, ["n1", "n2"]) as kubelet: ...`.
`kubelet.hold = True` stops it from starting new pods (they stay Pending on their node).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import threading
from pathlib import Path
from typing import Any

from netplane.controllers.kube.client import Client
from netplane.controllers.kube.config import load_kubeconfig
from netplane.controllers.kube.errors import ApiError, NotFound
from netplane.controllers.workloads.kinds import NODES, PODS

Obj = dict[str, Any]

HEARTBEAT = 5.0  # as often as netplane's node agents post theirs


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ready(now: str) -> Obj:
    return {"type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "fake kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now}


def node_object(name: str, labels: dict[str, str] | None = None, taints: list[Obj] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                                  **(labels or {})}},
            "spec": {"taints": taints} if taints else {}}


def running_status(pod: Obj) -> Obj:
    now = _now()
    containers = (pod.get("spec") or {}).get("containers") or []
    return {**(pod.get("status") or {}), "phase": "Running", "podIP": "10.16.0.10", "hostIP": "172.31.250.11",
            "startTime": now,
            "conditions": [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
                           for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
            "containerStatuses": [{"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": True,
                                   "started": True, "restartCount": 0, "state": {"running": {"startedAt": now}}}
                                  for c in containers]}


class FakeKubelet:
    def __init__(self, kubeconfig: Path, nodes: dict[str, dict[str, Any]], interval: float = 0.3):
        self.config = load_kubeconfig(kubeconfig)
        self.nodes = nodes  # name → {"labels": …, "taints": …}
        self.interval = interval
        self.hold = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._task: concurrent.futures.Future[None] | None = None

    def __enter__(self) -> FakeKubelet:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._register(), self._loop).result(30)
        self._task = asyncio.run_coroutine_threadsafe(self._run(), self._loop)
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
        asyncio.run_coroutine_threadsafe(self._unregister(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _register(self) -> None:
        async with Client(self.config) as client:
            for name, extra in self.nodes.items():
                with contextlib.suppress(NotFound):
                    await client.delete(NODES, name)
                node = await client.create(NODES, node_object(name, extra.get("labels"), extra.get("taints")))
                node["status"] = {"conditions": [_ready(_now())],
                                  "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"}}
                await client.update_status(NODES, node)

    async def _unregister(self) -> None:
        async with Client(self.config) as client:
            for name in self.nodes:
                with contextlib.suppress(NotFound):
                    await client.delete(NODES, name)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last_beat = loop.time()
        async with Client(self.config) as client:
            while True:
                if not self.hold:
                    with contextlib.suppress(ApiError, OSError):
                        await self._start_pods(client)
                if loop.time() - last_beat >= HEARTBEAT:
                    # Without heartbeats the node lifecycle controller would find these nodes unreachable.
                    last_beat = loop.time()
                    with contextlib.suppress(ApiError, OSError):
                        await self._heartbeat(client)
                await asyncio.sleep(self.interval)

    async def _heartbeat(self, client: Client) -> None:
        for name in self.nodes:
            node = await client.get(NODES, name)
            node["status"] = {**(node.get("status") or {}), "conditions": [_ready(_now())]}
            await client.update_status(NODES, node)

    async def _start_pods(self, client: Client) -> None:
        pods, _ = await client.list_all(PODS)
        for pod in pods:
            spec, status = pod.get("spec") or {}, pod.get("status") or {}
            if spec.get("nodeName") in self.nodes and status.get("phase", "Pending") == "Pending" \
                    and not pod["metadata"].get("deletionTimestamp"):
                pod["status"] = running_status(pod)
                with contextlib.suppress(ApiError):
                    await client.update_status(PODS, pod)
