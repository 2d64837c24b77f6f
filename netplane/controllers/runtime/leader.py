"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's timing semantics.

- A candidate tries every `retry_period` to take the lease. It may take it when nobody holds it, or
  when the holder has not renewed it for `lease_duration` — measured on this process's own clock,
  from when this candidate last saw the lease record change, so clocks need not agree.
- The leader renews every `retry_period`. If it cannot renew for `renew_deadline` it stops leading,
  and its controllers are stopped at once — before another candidate may take over
  (renew_deadline < lease_duration), so two leaders never act together.
- Writes use the lease's resourceVersion: of two candidates racing, one gets a Conflict and loses.
- On a clean shutdown the leader releases the lease (empty holder) so a successor starts at once.

The renew loop is its own task, independent of the controllers' workers: a slow reconcile never
delays renewal (as long as nothing blocks the event loop — see runtime/controller.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from netplane.controllers.kube.client import Client
from netplane.controllers.kube.errors import AlreadyExists, ApiError, Conflict, NotFound
from netplane.controllers.kube.resources import LEASES

log = logging.getLogger("netplane.leader")

Obj = dict[str, Any]


@dataclass(frozen=True)
class LeaseTiming:
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError("leader election needs 0 < retry period < renew deadline < lease duration, not "
                             f"{self.retry_period} / {self.renew_deadline} / {self.lease_duration}")


def micro_time(moment: dt.datetime | None = None) -> str:
    """metav1.MicroTime, as Leases carry it."""
    return (moment or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(self, client: Client, namespace: str, name: str, identity: str,
                 timing: LeaseTiming | None = None,
                 on_started_leading: Callable[[], Awaitable[None]] | None = None,
                 on_stopped_leading: Callable[[], Awaitable[None]] | None = None):
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timing = timing or LeaseTiming()
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.leading = False
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._lease: Obj | None = None

    async def run(self) -> None:
        """Campaign, lead until the lease is lost, campaign again; until cancelled (then release)."""
        try:
            while True:
                await self._acquire()
                self.leading = True
                log.info("%s became the leader (lease %s/%s)", self.identity, self.namespace, self.name)
                if self.on_started_leading is not None:
                    await self.on_started_leading()
                try:
                    await self._renew_until_lost()
                finally:
                    self.leading = False
                    if self.on_stopped_leading is not None:
                        await self.on_stopped_leading()
                log.warning("%s lost the lease %s/%s", self.identity, self.namespace, self.name)
        finally:
            if self._lease is not None and self._holder(self._lease) == self.identity:
                await self._release()

    async def _acquire(self) -> None:
        while not await self._try_acquire_or_renew():
            await asyncio.sleep(self.timing.retry_period * random.uniform(1.0, 1.2))

    async def _renew_until_lost(self) -> None:
        last_renew = time.monotonic()
        while True:
            await asyncio.sleep(self.timing.retry_period)
            remaining = self.timing.renew_deadline - (time.monotonic() - last_renew)
            while remaining > 0:
                try:
                    if await asyncio.wait_for(self._try_acquire_or_renew(), remaining):
                        last_renew = time.monotonic()
                        break
                except TimeoutError:
                    pass
                remaining = self.timing.renew_deadline - (time.monotonic() - last_renew)
                if remaining > 0:
                    await asyncio.sleep(min(self.timing.retry_period, remaining))
            else:
                return

    @staticmethod
    def _holder(lease: Obj) -> str:
        return str((lease.get("spec") or {}).get("holderIdentity") or "")

    async def _try_acquire_or_renew(self) -> bool:
        now = dt.datetime.now(dt.UTC)
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
        except NotFound:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": self._spec(now, acquire=True, transitions=0)}
            try:
                self._lease = await self.client.create(LEASES, body, self.namespace)
            except (AlreadyExists, Conflict):
                return False
            except (ApiError, aiohttp.ClientError, OSError) as e:
                log.warning("could not create lease %s/%s: %s", self.namespace, self.name, e)
                return False
            self._observe(self._lease)
            return True
        except (ApiError, aiohttp.ClientError, OSError) as e:
            log.warning("could not read lease %s/%s: %s", self.namespace, self.name, e)
            return False
        self._observe(lease)
        spec = lease.get("spec") or {}
        holder = self._holder(lease)
        duration = float(spec.get("leaseDurationSeconds") or self.timing.lease_duration)
        if holder and holder != self.identity and time.monotonic() < self._observed_at + duration:
            return False  # somebody else holds it and renewed it recently
        transitions = int(spec.get("leaseTransitions") or 0)
        acquiring = holder != self.identity
        lease["spec"] = {**spec, **self._spec(now, acquire=acquiring,
                                              transitions=transitions + 1 if acquiring and holder else transitions)}
        if not acquiring:
            lease["spec"]["acquireTime"] = spec.get("acquireTime") or micro_time(now)
        try:
            self._lease = await self.client.update(LEASES, lease)
        except (ApiError, aiohttp.ClientError, OSError) as e:
            if not isinstance(e, Conflict):
                log.warning("could not update lease %s/%s: %s", self.namespace, self.name, e)
            return False
        self._observe(self._lease)
        return True

    def _spec(self, now: dt.datetime, acquire: bool, transitions: int) -> Obj:
        spec: Obj = {"holderIdentity": self.identity,
                     "leaseDurationSeconds": max(1, round(self.timing.lease_duration)),
                     "renewTime": micro_time(now), "leaseTransitions": transitions}
        if acquire:
            spec["acquireTime"] = micro_time(now)
        return spec

    def _observe(self, lease: Obj) -> None:
        spec = lease.get("spec") or {}
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("acquireTime"),
                  spec.get("leaseTransitions"))
        if record != self._observed:
            self._observed = record
            self._observed_at = time.monotonic()

    async def _release(self) -> None:
        """Give the lease up so the next candidate need not wait for it to expire."""
        lease = self._lease
        if lease is None:
            return
        spec = dict(lease.get("spec") or {})
        spec.update({"holderIdentity": None, "leaseDurationSeconds": 1, "renewTime": micro_time()})
        lease = {**lease, "spec": spec}
        with contextlib.suppress(ApiError, aiohttp.ClientError, OSError, TimeoutError):
            await asyncio.wait_for(self.client.update(LEASES, lease), 5)
            log.info("%s released the lease %s/%s", self.identity, self.namespace, self.name)
