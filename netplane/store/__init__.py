"""Revisioned key-value storage for API objects.

The contract every backend honours (an etcd backend can implement it later without
touching anything above it):

- every write gets the next global revision, which becomes the object's
  ``metadata.resourceVersion``; values are stored already encoded, with that
  revision inside, so a value is encoded once and never rewritten for readers;
- ``create`` fails if the key exists, ``update``/``delete`` fail unless the caller's
  expected revision is the key's current one (optimistic concurrency);
- a list at revision R followed by a watch from R yields the current state with
  no gap and no duplicate; a watch from below the compaction point is refused.
"""

from netplane.store.base import (
    Compacted,
    Event,
    KeyExists,
    KeyNotFound,
    Record,
    RevisionMismatch,
    StoreError,
    Watch,
)
from netplane.store.sqlite import SqliteStore

__all__ = [
    "Compacted", "Event", "KeyExists", "KeyNotFound", "Record", "RevisionMismatch",
    "SqliteStore", "StoreError", "Watch",
]
