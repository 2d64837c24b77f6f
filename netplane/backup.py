"""`netplane backup` and `netplane restore`: a consistent copy of every API object.

A backup is a SQLite database file: the store's table as of one revision. SQLite's
online backup reads it inside one read transaction, so a backup taken while
`netplane up` is writing is still a consistent snapshot; WAL mode lets it run
without stopping the server. Restoring writes it as the store of a fresh data
directory, so every object comes back with the same uid and resourceVersion. The
cluster's CA, tokens and users are not part of a backup: a restored data directory
gets new credentials on first start.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from netplane import datadir

STATE_DB = "state.db"


class BackupError(Exception):
    pass


def _copy(source: sqlite3.Connection, dest_path: Path) -> None:
    tmp = dest_path.with_name(dest_path.name + ".partial")
    tmp.unlink(missing_ok=True)
    dest = sqlite3.connect(str(tmp))
    try:
        source.backup(dest)
    finally:
        dest.close()
    tmp.replace(dest_path)


def backup(data_dir: Path, target: Path) -> int:
    """Write a snapshot of ``data_dir``'s store to ``target``; returns the snapshot's revision."""
    db = data_dir / STATE_DB
    if not db.exists():
        raise BackupError(f"{data_dir} holds no netplane store ({STATE_DB} not found)")
    source = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        source.execute("PRAGMA busy_timeout=30000")
        _copy(source, target)
    finally:
        source.close()
    check = sqlite3.connect(str(target))
    try:
        revision = int(check.execute("SELECT COALESCE(MAX(id), 0) FROM kine").fetchone()[0])
    finally:
        check.close()
    return revision


def restore(data_dir: Path, source_file: Path) -> int:
    """Make ``data_dir`` a data directory holding the backup's objects; it must not hold a store."""
    if not source_file.exists():
        raise BackupError(f"{source_file}: no such file")
    if (data_dir / STATE_DB).exists():
        raise BackupError(f"{data_dir} already holds a store; restore into a new data directory")
    try:
        source = sqlite3.connect(f"file:{source_file}?mode=ro", uri=True)
        revision = int(source.execute("SELECT COALESCE(MAX(id), 0) FROM kine").fetchone()[0])
    except sqlite3.DatabaseError as e:
        raise BackupError(f"{source_file} is not a netplane backup: {e}") from None
    try:
        datadir.prepare(data_dir)
        _copy(source, data_dir / STATE_DB)
    finally:
        source.close()
    return revision
