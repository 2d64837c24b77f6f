"""Server-side apply and the ownership bookkeeping of every other write, as pure functions.

Both follow structured-merge-diff's Updater:

- `apply`: merge the configuration into the live object; set the applier's fields
  to what the configuration sets; prune what it applied before and no longer does
  (unless another manager, or the new configuration, still owns it); then compare
  the live and resulting objects: a field another manager owns that the apply adds
  or modifies is a conflict (with ``force`` the applier takes it over instead), a
  removed field leaves every other manager.
- `update`: the writer takes every field its write added or modified, away from
  everyone else; removed fields leave every manager.

Managers left without fields are dropped. Paths Kubernetes never tracks (apiVersion,
kind, system metadata) are stripped, and ``ignored`` subtrees (the status of a
resource with a status subresource, written through the main resource; everything
but status when writing the subresource) are neither owned nor conflicting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netplane.api.ssa.fieldpath import FieldSet, Path, path_string
from netplane.api.ssa.managed import APPLY, UPDATE, Entry, Key, Managed, key_of
from netplane.api.ssa.merge import merge, prune
from netplane.api.ssa.schema import Type
from netplane.api.ssa.walk import compare, field_set

# Exact paths stripped from every manager's set (not their subtrees: a manager owns
# metadata.labels.x, but nobody owns `metadata` itself or metadata.name).
STRIPPED = FieldSet.of(
    ("f:apiVersion",), ("f:kind",), ("f:metadata",),
    *(("f:metadata", f"f:{name}") for name in (
        "name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName", "generation",
        "managedFields", "resourceVersion")),
)

BEFORE_FIRST_APPLY = "before-first-apply"


@dataclass
class Conflict:
    manager: Entry
    path: Path

    def __str__(self) -> str:
        return f"conflict with {self.manager.describe()}: {path_string(self.path)}"


class Conflicts(Exception):
    """An apply that would change fields other managers own."""

    def __init__(self, conflicts: list[Conflict]):
        self.conflicts = conflicts
        super().__init__(self.message())

    def message(self) -> str:
        """Kubernetes' text: one conflict inline, several grouped by manager."""
        if len(self.conflicts) == 1:
            return f"Apply failed with 1 conflict: {self.conflicts[0]}"
        by_manager: dict[str, list[Path]] = {}
        for c in self.conflicts:
            by_manager.setdefault(c.manager.describe(), []).append(c.path)
        lines = []
        for manager in sorted(by_manager):
            lines.append(f"conflicts with {manager}:")
            lines += [f"- {path_string(p)}" for p in by_manager[manager]]
        return f"Apply failed with {len(self.conflicts)} conflicts: " + "\n".join(lines)

    def causes(self) -> list[dict[str, str]]:
        return [{"type": "FieldManagerConflict", "message": f"conflict with {c.manager.describe()}",
                 "field": path_string(c.path)} for c in self.conflicts]


def _clean(s: FieldSet, ignored: FieldSet) -> FieldSet:
    """``s`` without stripped and ignored paths; ``s`` is a set this module just built."""
    s.remove_in_place(STRIPPED, recursive=False)
    if not ignored.empty():
        s.remove_in_place(ignored, recursive=True)
    return s


def apply(live: dict[str, Any], config: dict[str, Any], manager: str, managed: Managed, t: Type,
          force: bool, api_version: str, now: str, subresource: str = "",
          ignored: FieldSet | None = None, allowed_conflicts: FieldSet | None = None,
          ) -> tuple[dict[str, Any], Managed]:
    """The object and managers after ``manager`` applies ``config`` to ``live``.

    ``live`` and ``config`` carry no managedFields. ``allowed_conflicts``: fields whose
    conflicts are forced anyway (kubectl's own client-side-applied fields, see `api`).
    Raises `Conflicts`.
    """
    ignored = ignored or FieldSet()
    managed = {k: Entry(e.manager, e.operation, e.api_version, e.time, e.fields, e.subresource)
               for k, e in managed.items()}
    me = key_of(manager, APPLY, subresource, api_version)
    previous = managed.get(me)
    merged = merge(live, config, t)
    # The stripped paths stay in the new set until the end: metadata.name is what keeps
    # a configuration's `metadata` from being pruned.
    applied = field_set(config, t)
    if not ignored.empty():
        applied = applied.recursive_difference(ignored)
    if previous is not None and not previous.fields.empty():
        keep = applied
        for k, e in managed.items():
            if k != me:
                keep = keep.union(e.fields)
        merged = prune(merged, previous.fields, keep, t)
    changes = compare(live, merged, t)
    changed, removed = changes.changed(), changes.removed
    if not ignored.empty():
        changed, removed = changed.recursive_difference(ignored), removed.recursive_difference(ignored)
    conflicts: list[tuple[Key, FieldSet]] = []
    for k, e in managed.items():
        if k != me:
            owned = e.fields.intersection(changed)
            if not owned.empty():
                conflicts.append((k, owned))
    if conflicts and not force:
        unforced = [(k, s.difference(allowed_conflicts) if allowed_conflicts else s) for k, s in conflicts]
        unforced = [(k, s) for k, s in unforced if not s.empty()]
        if unforced:
            raise Conflicts([Conflict(managed[k], p) for k, s in unforced for p in s.paths()])
    for k, s in conflicts:
        managed[k].fields = managed[k].fields.difference(s)
    if not removed.empty():
        for k, e in managed.items():
            if k != me:
                e.fields = e.fields.difference(removed)
    time = previous.time if previous is not None and merged == live else now
    managed[me] = Entry(manager, APPLY, api_version, time, _clean(applied, ignored), subresource)
    return merged, _drop_empty(managed)


def update(old: dict[str, Any], new: dict[str, Any], manager: str, managed: Managed, t: Type,
           api_version: str, now: str, subresource: str = "", ignored: FieldSet | None = None) -> Managed:
    """The managers after ``manager`` wrote ``new`` over ``old`` (neither carries managedFields)."""
    ignored = ignored or FieldSet()
    changes = compare(old, new, t)
    changed = _clean(changes.changed(), ignored)
    removed = changes.removed
    out: Managed = {}
    for k, e in managed.items():
        fields = e.fields
        if not changed.empty():
            fields = fields.difference(changed)
        if not removed.empty():
            fields = fields.difference(removed)
        out[k] = e if fields is e.fields else Entry(e.manager, e.operation, e.api_version, e.time, fields,
                                                     e.subresource)
    if not changed.empty():
        me = key_of(manager, UPDATE, subresource, api_version)
        previous = out.get(me)
        fields = changed if previous is None else previous.fields.union(changed)
        out[me] = Entry(manager, UPDATE, api_version, now, fields, subresource)
    return _drop_empty(out)


def _drop_empty(managed: Managed) -> Managed:
    return {k: e for k, e in managed.items() if not e.fields.empty()}
