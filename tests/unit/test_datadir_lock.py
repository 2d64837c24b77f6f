"""The data directory's locks: `up` holds `lock`, the API server process `store.lock`."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from netplane import datadir


def test_a_held_lock_is_refused_at_once_without_waiting(tmp_path: Path) -> None:
    held = datadir.hold_lock(tmp_path, datadir.STORE_LOCK)
    try:
        with pytest.raises(datadir.DataDirError, match="in use by another netplane process"):
            datadir.hold_lock(tmp_path, datadir.STORE_LOCK)
        # The other lock is independent: `up` and its API server each hold one.
        os.close(datadir.hold_lock(tmp_path))
    finally:
        os.close(held)


def test_a_restarted_holder_gets_the_lock_once_the_previous_one_lets_go(tmp_path: Path) -> None:
    held = datadir.hold_lock(tmp_path, datadir.STORE_LOCK)
    threading.Timer(0.2, os.close, (held,)).start()
    os.close(datadir.hold_lock(tmp_path, datadir.STORE_LOCK, wait=30.0))


def test_the_store_lock_does_not_make_an_empty_directory_foreign(tmp_path: Path) -> None:
    os.close(datadir.hold_lock(tmp_path, datadir.STORE_LOCK))
    datadir.prepare(tmp_path)
    assert (tmp_path / datadir.FORMAT_FILE).exists()
