"""A StatefulSet's next step, over its pods by ordinal: pure.

OrderedReady (the default) does one thing at a time: create the lowest missing ordinal once
every lower one is Running and Ready; then delete the highest ordinal above the range (a scale
down), one at a time; then replace the highest pod of an old revision (at or above the rolling
update's partition). Parallel creates and deletes all at once, and still replaces old revisions
one by one, waiting for the set to be healthy in between. A Failed pod is deleted, to be created anew.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Member:
    healthy: bool = False      # Running and Ready
    terminating: bool = False
    failed: bool = False
    revision: str = ""


@dataclass(frozen=True)
class Step:
    create: tuple[int, ...] = ()
    delete: tuple[int, ...] = ()


def ordinal_of(set_name: str, pod_name: str) -> int | None:
    prefix = f"{set_name}-"
    if not pod_name.startswith(prefix) or not pod_name[len(prefix):].isdigit():
        return None
    text = pod_name[len(prefix):]
    return int(text) if text == str(int(text)) else None  # "web-01" is not ordinal 1's name


def next_step(replicas: int, start: int, members: Mapping[int, Member], *, parallel: bool,
              update_revision: str, partition: int | None) -> Step:
    wanted = range(start, start + replicas)
    failed = tuple(o for o in wanted if o in members and members[o].failed and not members[o].terminating)
    if failed:
        return Step(delete=failed)
    condemned = sorted((o for o in members if o not in wanted), reverse=True)
    if parallel:
        create = tuple(o for o in wanted if o not in members)
        delete = tuple(o for o in condemned if not members[o].terminating)
        if create or delete:
            return Step(create=create, delete=delete)
    else:
        for o in wanted:
            if o not in members:
                return Step(create=(o,))
            if not members[o].healthy:
                return Step()  # wait: the next ordinal starts once this one is Running and Ready
        for o in condemned:
            if members[o].terminating:
                return Step()  # wait for it to go before the next one
            return Step(delete=(o,))
    if partition is None or any(not members[o].healthy for o in wanted if o in members) or condemned:
        return Step()
    for o in reversed(wanted):
        if o >= partition and members[o].revision != update_revision:
            return Step(delete=(o,))
    return Step()
