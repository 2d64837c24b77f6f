"""The revisioned store: list-then-watch equals current state, across restarts and compaction."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from netplane.store import Compacted, KeyExists, RevisionMismatch, SqliteStore

pytestmark = pytest.mark.unit

KEYS = [f"/core/configmaps/ns/{n}" for n in "abcde"]


def _index(key: str, value: bytes) -> Any:
    return None


def _build(payload: int):  # type: ignore[no-untyped-def]
    def build(rev: int) -> tuple[bytes, Any]:
        return orjson.dumps({"rv": rev, "payload": payload}), None

    return build


def _drain(watch: Any) -> list[Any]:
    events = []
    while not watch.queue.empty():
        e = watch.queue.get_nowait()
        if e is not None:
            events.append(e)
    return events


class StoreMachine(RuleBasedStateMachine):
    """Random writes, compactions and restarts; a list+watch replay must always equal the model."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory()
        self.path = Path(self.dir.name) / "s.db"
        self.store = SqliteStore(self.path, _index)
        self.model: dict[str, int] = {}
        self.snapshots: list[tuple[int, dict[str, int]]] = [(0, {})]
        self.loop = asyncio.new_event_loop()

    def teardown(self) -> None:
        self.store.close()
        self.loop.close()
        self.dir.cleanup()

    def _snapshot(self) -> None:
        self.snapshots.append((self.store.revision, dict(self.model)))

    @rule(key=st.sampled_from(KEYS), payload=st.integers(0, 100))
    def create(self, key: str, payload: int) -> None:
        if key in self.model:
            with pytest.raises(KeyExists):
                self.store.create(key, _build(payload))
            return
        record = self.store.create(key, _build(payload))
        assert record.revision == self.store.revision
        self.model[key] = payload
        self._snapshot()

    @rule(key=st.sampled_from(KEYS), payload=st.integers(0, 100), stale=st.booleans())
    def update(self, key: str, payload: int, stale: bool) -> None:
        current = self.store.get(key)
        if current is None:
            return
        if stale:
            with pytest.raises(RevisionMismatch):
                self.store.update(key, current.revision - 1 or 10**9, _build(payload))
            return
        self.store.update(key, current.revision, _build(payload))
        self.model[key] = payload
        self._snapshot()

    @rule(key=st.sampled_from(KEYS))
    def delete(self, key: str) -> None:
        current = self.store.get(key)
        if current is None:
            return
        self.store.delete(key, current.revision, lambda rev, v=current.value: (v, None))
        del self.model[key]
        self._snapshot()

    @rule()
    def restart(self) -> None:
        revision = self.store.revision
        self.store.close()
        self.store = SqliteStore(self.path, _index)
        assert self.store.revision == revision

    @precondition(lambda self: self.store.revision > 2)
    @rule(data=st.data())
    def compact(self, data: st.DataObject) -> None:
        target = data.draw(st.integers(1, self.store.revision - 1))
        self.store.compact(target)

    @invariant()
    def current_state_matches_model(self) -> None:
        records, _ = self.store.list("/core/configmaps/ns/")
        assert {r.key: orjson.loads(r.value)["payload"] for r in records} == self.model
        for r in records:
            assert orjson.loads(r.value)["rv"] == r.revision

    @invariant()
    def list_then_watch_from_any_kept_revision_replays_exactly(self) -> None:
        for rev, state in self.snapshots:
            if rev < self.store.compact_revision or rev == 0:
                continue
            watch = self.store.watch("/core/configmaps/", rev)
            replay = dict(state)
            seen_revisions = []
            for event in _drain(watch):
                seen_revisions.append(event.record.revision)
                if event.type == "DELETED":
                    replay.pop(event.record.key)
                else:
                    replay[event.record.key] = orjson.loads(event.record.value)["payload"]
            watch.close()
            assert seen_revisions == sorted(set(seen_revisions)), "duplicate or out-of-order event"
            assert all(r > rev for r in seen_revisions), "event from before the watch revision"
            assert replay == self.model

    @invariant()
    def watch_below_compaction_is_refused(self) -> None:
        if self.store.compact_revision > 1:
            with pytest.raises(Compacted):
                self.store.watch("/core/configmaps/", self.store.compact_revision - 1)


TestStoreMachine = StoreMachine.TestCase
TestStoreMachine.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)


def test_live_events_reach_watchers_in_order(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        store = SqliteStore(tmp_path / "s.db", _index)
        watch = store.watch("/core/configmaps/", 0)
        store.create(KEYS[0], _build(1))
        r = store.get(KEYS[0])
        assert r is not None
        store.update(KEYS[0], r.revision, _build(2))
        store.create("/core/secrets/ns/x", _build(3))  # another prefix: not delivered
        r = store.get(KEYS[0])
        assert r is not None
        store.delete(KEYS[0], r.revision, lambda rev: (r.value, None))
        kinds = []
        for _ in range(3):
            event = await watch.next()
            assert event is not None
            kinds.append(event.type)
        store.close()
        return kinds

    assert asyncio.run(scenario()) == ["ADDED", "MODIFIED", "DELETED"]


def test_slow_watcher_is_closed_not_blocking(tmp_path: Path) -> None:
    async def scenario() -> tuple[bool, bool]:
        store = SqliteStore(tmp_path / "s.db", _index)
        slow = store.watch("/core/", 0, limit=5)
        fast = store.watch("/core/", 0)
        for i in range(10):
            store.create(f"/core/configmaps/ns/k{i}", _build(i))
        result = (slow.overflowed and slow.closed, fast.queue.qsize() == 10)
        store.close()
        return result

    assert asyncio.run(scenario()) == (True, True)
