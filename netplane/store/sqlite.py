"""A kine-style revisioned store on SQLite.

One append-only table: every create, update and delete appends a row whose
autoincrement id is the global revision. The newest row of a key is its current
value (a tombstone row when deleted); ``(name, prev_revision)`` is unique for
updates and deletes, so two writes based on the same revision of a key cannot both
land (creates start a new chain at prev_revision 0 and are guarded by the key check). The current state of every
key is also kept in memory — reads and lists never touch the database — and
events fan out to in-process watchers as soon as their row is committed.

WAL with ``synchronous=NORMAL`` loses no committed transaction when the process is
killed (only on power loss), and each write is its own transaction, so every
acknowledged write survives ``kill -9``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from netplane.store.base import (
    Compacted,
    Event,
    EventType,
    KeyExists,
    KeyNotFound,
    Record,
    RevisionMismatch,
    Watch,
)

# Builds the encoded value for a write once its revision is known, plus its index attributes.
ValueBuilder = Callable[[int], tuple[bytes, Any]]
# Recomputes index attributes for a stored value (on start-up and history replay).
Indexer = Callable[[str, bytes], Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS kine_name_id ON kine (name, id);
CREATE UNIQUE INDEX IF NOT EXISTS kine_name_prev_revision ON kine (name, prev_revision) WHERE prev_revision > 0;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

WATCH_QUEUE_LIMIT = 10_000


def _bucket(key: str) -> str:
    """Keys look like ``/<group>/<resource>/<namespace>/<name>``; a bucket is one resource."""
    parts = key.split("/", 3)
    return "/".join(parts[:3])


class SqliteStore:
    def __init__(self, path: Path | str, indexer: Indexer):
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;")
        self._db.executescript(_SCHEMA)
        self._indexer = indexer
        self._buckets: dict[str, dict[str, Record]] = {}
        self._watches: set[Watch] = set()
        self.revision = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM kine").fetchone()[0]
        row = self._db.execute("SELECT value FROM meta WHERE key = 'compact_revision'").fetchone()
        self.compact_revision = int(row[0]) if row else 0
        self._load()

    def _load(self) -> None:
        rows = self._db.execute(
            "SELECT k.name, k.id, k.create_revision, k.value FROM kine k "
            "JOIN (SELECT MAX(id) AS id FROM kine GROUP BY name) m ON k.id = m.id WHERE k.deleted = 0")
        for name, rev, create_rev, value in rows:
            self._put(Record(name, rev, create_rev, value, self._indexer(name, value)))

    def close(self) -> None:
        for w in list(self._watches):
            w.close()
        self._db.close()

    # --- reads -----------------------------------------------------------------

    def get(self, key: str) -> Record | None:
        return self._buckets.get(_bucket(key), {}).get(key)

    def list(self, prefix: str) -> tuple[list[Record], int]:
        """Current records under ``prefix`` (sorted by key) and the revision they reflect."""
        bucket = self._buckets.get(_bucket(prefix), {})
        if prefix == _bucket(prefix) or prefix == _bucket(prefix) + "/":
            items = list(bucket.values())
        else:
            items = [r for k, r in bucket.items() if k.startswith(prefix)]
        items.sort(key=lambda r: r.key)
        return items, self.revision

    def count(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    # --- writes ----------------------------------------------------------------

    def create(self, key: str, build: ValueBuilder) -> Record:
        if self.get(key) is not None:
            raise KeyExists(key)
        return self._write(key, build, None, deleted=False)

    def update(self, key: str, expected_revision: int, build: ValueBuilder) -> Record:
        return self._write(key, build, self._current(key, expected_revision), deleted=False)

    def delete(self, key: str, expected_revision: int, build: ValueBuilder) -> Record:
        """Delete ``key``; the tombstone carries the object as last seen, at the new revision."""
        return self._write(key, build, self._current(key, expected_revision), deleted=True)

    def _write(self, key: str, build: ValueBuilder, current: Record | None, *, deleted: bool) -> Record:
        """Append the next revision of ``key`` (``current`` None for a create), apply it, tell the watchers."""
        rev = self.revision + 1
        value, attrs = build(rev)
        create_rev = current.create_revision if current is not None else rev
        self._append(rev, key, created=current is None, deleted=deleted, create_rev=create_rev,
                     prev_rev=current.revision if current is not None else 0, value=value)
        record = Record(key, rev, create_rev, value, attrs)
        if deleted:
            del self._buckets[_bucket(key)][key]
        else:
            self._put(record)
        kind: EventType = "DELETED" if deleted else "ADDED" if current is None else "MODIFIED"
        self._notify(Event(kind, record, current))
        return record

    def _current(self, key: str, expected_revision: int) -> Record:
        current = self.get(key)
        if current is None:
            raise KeyNotFound(key)
        if expected_revision and current.revision != expected_revision:
            raise RevisionMismatch(key)
        return current

    def _append(self, rev: int, key: str, *, created: bool, deleted: bool, create_rev: int,
                prev_rev: int, value: bytes) -> None:
        self._db.execute(
            "INSERT INTO kine (id, name, created, deleted, create_revision, prev_revision, value) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (rev, key, int(created), int(deleted), create_rev, prev_rev, value))
        self.revision = rev

    def _put(self, record: Record) -> None:
        self._buckets.setdefault(_bucket(record.key), {})[record.key] = record

    # --- watch -----------------------------------------------------------------

    def watch(self, prefix: str, from_revision: int, limit: int = WATCH_QUEUE_LIMIT) -> Watch:
        """Events under ``prefix`` after ``from_revision`` (replayed from history), then live ones."""
        if from_revision and from_revision < self.compact_revision:
            raise Compacted(from_revision, self.compact_revision)
        w = Watch(prefix, limit, self._watches.discard)
        # Replay and subscription happen in one synchronous step, so no live event
        # can slip between the last replayed revision and the first live one.
        if from_revision and from_revision < self.revision:
            for event in self._history(prefix, from_revision):
                w.push(event)
        self._watches.add(w)
        return w

    def _history(self, prefix: str, after: int) -> Iterable[Event]:
        rows = self._db.execute(
            "SELECT id, name, created, deleted, create_revision, prev_revision, value FROM kine "
            "WHERE id > ? AND name >= ? AND name < ? ORDER BY id", (after, prefix, prefix + "\uffff"))
        for rev, name, created, deleted, create_rev, prev_rev, value in rows.fetchall():
            record = Record(name, rev, create_rev, value, self._indexer(name, value))
            prev = self._row(prev_rev) if prev_rev else None
            kind: EventType = "DELETED" if deleted else "ADDED" if created else "MODIFIED"
            yield Event(kind, record, prev)

    def _row(self, rev: int) -> Record | None:
        row = self._db.execute("SELECT name, create_revision, value FROM kine WHERE id = ?", (rev,)).fetchone()
        if row is None:
            return None
        return Record(row[0], rev, row[1], row[2], self._indexer(row[0], row[2]))

    def _notify(self, event: Event) -> None:
        for w in list(self._watches):
            if event.record.key.startswith(w.prefix):
                w.push(event)

    @property
    def watch_count(self) -> int:
        return len(self._watches)

    # --- maintenance -------------------------------------------------------------

    def compact(self, revision: int) -> int:
        """Drop history at or below ``revision``: superseded rows and tombstones. Returns rows removed."""
        revision = min(revision, self.revision)
        if revision <= self.compact_revision:
            return 0
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.execute(
                "DELETE FROM kine WHERE id <= ? AND (deleted = 1 OR id IN "
                "(SELECT prev_revision FROM kine WHERE prev_revision > 0))", (revision,))
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('compact_revision', ?)",
                             (str(revision),))
        self.compact_revision = revision
        return cur.rowcount

    def snapshot_to(self, path: Path) -> None:
        """A consistent copy of the database (SQLite's online backup)."""
        dest = sqlite3.connect(str(path))
        with dest:
            self._db.backup(dest)
        dest.close()
