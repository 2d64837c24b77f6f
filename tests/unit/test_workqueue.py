"""The work queue: de-duplication, one worker per key, delayed and rate-limited adds, backoff."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from netplane.controllers.runtime.controller import Controller, Result
from netplane.controllers.runtime.ratelimit import ItemExponentialBackoff, MaxOf, TokenBucket
from netplane.controllers.runtime.workqueue import ShutDown, WorkQueue

pytestmark = pytest.mark.unit

KEYS = st.sampled_from(["a", "b", "c", "ns/d"])


def test_a_key_added_many_times_is_queued_once() -> None:
    q = WorkQueue()
    for key in ["a", "b", "a", "a", "b"]:
        q.add(key)
    assert q.queued() == ["a", "b"]


def test_a_key_added_while_processing_is_handed_out_again_only_after_done() -> None:
    q = WorkQueue()
    q.add("a")
    assert q.try_get() == "a"
    q.add("a")
    q.add("a")
    assert q.try_get() is None, "a second worker must not get a key that is being processed"
    q.done("a")
    assert q.try_get() == "a"
    q.done("a")
    assert q.try_get() is None


class QueueModel(RuleBasedStateMachine):
    """Against any interleaving of adds, gets and dones: never two holders of one key, never a lost add."""

    def __init__(self) -> None:
        super().__init__()
        self.q = WorkQueue()
        self.held: set[str] = set()
        # keys added since they were last handed out: each must be handed out again
        self.owed: set[str] = set()

    @rule(key=KEYS)
    def add(self, key: str) -> None:
        self.q.add(key)
        self.owed.add(key)

    @rule()
    def get(self) -> None:
        key = self.q.try_get()
        if key is None:
            assert self.owed <= self.held, "a key is owed, not being processed, yet nothing was handed out"
            return
        assert key not in self.held
        assert key in self.owed
        self.held.add(key)
        self.owed.discard(key)

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def done(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.held)))
        self.held.discard(key)
        self.q.done(key)

    @invariant()
    def queued_once_and_not_while_held(self) -> None:
        queued = self.q.queued()
        assert len(queued) == len(set(queued))
        assert not set(queued) & self.held
        assert set(queued) == self.owed - self.held


TestQueueModel = QueueModel.TestCase


def test_exponential_backoff_doubles_per_item_up_to_the_cap_and_forget_resets() -> None:
    b = ItemExponentialBackoff(base=0.01, cap=0.1)
    assert [b.when("a") for _ in range(6)] == pytest.approx([0.01, 0.02, 0.04, 0.08, 0.1, 0.1])
    assert b.when("b") == pytest.approx(0.01), "backoff is per item"
    assert b.retries("a") == 6
    b.forget("a")
    assert b.retries("a") == 0 and b.when("a") == pytest.approx(0.01)


@given(failures=st.integers(0, 2000))
def test_backoff_never_exceeds_the_cap(failures: int) -> None:
    b = ItemExponentialBackoff(base=0.005, cap=1000.0)
    for _ in range(failures):
        b.when("k")
    assert 0.005 <= b.when("k") <= 1000.0


def test_the_overall_bucket_allows_a_burst_then_spaces_items_at_qps() -> None:
    now = [0.0]
    bucket = TokenBucket(qps=10, burst=3, clock=lambda: now[0])
    assert [bucket.when(k) for k in "abc"] == [0, 0, 0]
    assert bucket.when("d") == pytest.approx(0.1)
    assert bucket.when("e") == pytest.approx(0.2)
    now[0] = 10.0
    assert bucket.when("f") == 0


def test_combined_limiter_takes_the_longest_wait() -> None:
    now = [0.0]
    limiter = MaxOf(ItemExponentialBackoff(0.5, 10), TokenBucket(100, 1, clock=lambda: now[0]))
    assert limiter.when("a") == pytest.approx(0.5)
    assert limiter.when("a") == pytest.approx(1.0)
    assert limiter.retries("a") == 2


def test_add_after_keeps_the_earliest_pending_add() -> None:
    async def scenario() -> list[str]:
        q = WorkQueue()
        q.add_after("late", 0.2)
        q.add_after("a", 5)
        q.add_after("a", 0.05)
        q.add_after("a", 3)
        got = [await asyncio.wait_for(q.get(), 1)]
        got.append(await asyncio.wait_for(q.get(), 1))
        q.shutdown()
        return got

    assert asyncio.run(scenario()) == ["a", "late"]


def test_get_raises_shutdown_for_waiting_workers() -> None:
    async def scenario() -> None:
        q = WorkQueue()
        waiter = asyncio.ensure_future(q.get())
        await asyncio.sleep(0)
        q.shutdown()
        with pytest.raises(ShutDown):
            await asyncio.wait_for(waiter, 1)

    asyncio.run(scenario())


@settings(max_examples=30, deadline=None)
@given(adds=st.lists(KEYS, min_size=1, max_size=40), workers=st.integers(1, 6))
def test_controller_workers_never_reconcile_one_key_concurrently(adds: list[str], workers: int) -> None:
    async def scenario() -> tuple[Counter[str], int]:
        running: set[str] = set()
        calls: Counter[str] = Counter()
        overlaps = 0

        async def reconcile(key: str) -> Result:
            nonlocal overlaps
            if key in running:
                overlaps += 1
            running.add(key)
            calls[key] += 1
            await asyncio.sleep(0.001)
            running.discard(key)
            return Result()

        controller = Controller("test", reconcile, workers=workers)
        controller.start()
        for key in adds:
            controller.queue.add(key)
            await asyncio.sleep(0)
        while len(controller.queue) or controller.queue.processing:
            await asyncio.sleep(0.002)
        await controller.stop()
        return calls, overlaps

    calls, overlaps = asyncio.run(scenario())
    assert overlaps == 0
    assert set(calls) == set(adds), "every added key is reconciled"
    assert all(calls[k] <= adds.count(k) for k in calls), "duplicates are folded, never multiplied"


def test_a_failing_reconcile_is_retried_with_backoff_and_success_forgets_it() -> None:
    async def scenario() -> tuple[list[float], int]:
        times: list[float] = []
        loop = asyncio.get_running_loop()

        async def reconcile(key: str) -> Result:
            times.append(loop.time())
            if len(times) < 4:
                raise RuntimeError("not yet")
            return Result()

        controller = Controller("retry", reconcile, workers=1,
                                rate_limiter=ItemExponentialBackoff(base=0.02, cap=1))
        controller.start()
        controller.queue.add("k")
        while len(times) < 4 or controller.queue.processing:
            await asyncio.sleep(0.005)
        retries = controller.queue.retries("k")
        await controller.stop()
        return [b - a for a, b in itertools.pairwise(times)], retries

    gaps, retries = asyncio.run(scenario())
    assert gaps[0] >= 0.02 and gaps[1] >= 0.04 and gaps[2] >= 0.08
    assert retries == 0, "success forgets the item's failures"


def test_requeue_after_reconciles_again_later() -> None:
    async def scenario() -> int:
        calls = 0

        async def reconcile(key: str) -> Result:
            nonlocal calls
            calls += 1
            return Result(requeue_after=0.02)

        controller = Controller("periodic", reconcile, workers=1)
        controller.start()
        controller.queue.add("k")
        await asyncio.sleep(0.2)
        await controller.stop()
        return calls

    assert 3 <= asyncio.run(scenario()) <= 11
