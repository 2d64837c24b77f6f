"""users.json (hashes only, private, picked up while serving) and audit.log (flushed, rotated)."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest

from netplane.api.auth.audit import AuditLog
from netplane.api.auth.users import USERS_FILE, UserError, UserStore, add_user

pytestmark = pytest.mark.unit


def test_users_file_keeps_hashes_only_and_is_private(tmp_path: Path) -> None:
    add_user(tmp_path, "alice", ["project:p1"], "s3cret-token")
    path = tmp_path / USERS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "s3cret-token" not in path.read_text()
    assert json.loads(path.read_text())["users"]["alice"]["groups"] == ["project:p1"]
    with pytest.raises(UserError, match='user "alice" already exists'):
        add_user(tmp_path, "alice", [], "other")


def test_store_sees_users_added_after_it_loaded(tmp_path: Path) -> None:
    store = UserStore(tmp_path / USERS_FILE)
    assert store.by_token("t1") is None
    add_user(tmp_path, "alice", ["project:p1"], "t1")
    alice = store.by_token("t1")
    assert alice is not None and alice.name == "alice"
    assert alice.groups == ("project:p1", "system:authenticated")
    add_user(tmp_path, "bob", [], "t2")
    assert store.by_token("t2") is not None and store.by_token("t1") == alice
    assert store.by_token("t3") is None


def test_store_survives_a_corrupt_file(tmp_path: Path) -> None:
    add_user(tmp_path, "alice", [], "t1")
    store = UserStore(tmp_path / USERS_FILE)
    assert store.by_token("t1") is not None
    (tmp_path / USERS_FILE).write_text("{not json")
    assert store.by_token("unknown") is None
    assert store.by_token("t1") is not None


@pytest.mark.parametrize("name", ["Alice", "-x", "system:admin", "a/b", ""])
def test_bad_user_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UserError):
        add_user(tmp_path, name, [], "t")


def test_audit_log_flushes_and_rotates(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"

    async def scenario() -> None:
        audit = AuditLog(path, max_bytes=300, backups=2, interval=0.05)
        audit.start()
        for i in range(3):
            audit.record({"n": i, "pad": "x" * 80})
        await asyncio.sleep(0.3)
        assert [json.loads(line)["n"] for line in path.read_text().splitlines()] == [0, 1, 2]
        for i in range(3, 12):
            audit.record({"n": i, "pad": "x" * 80})
            await audit.flush()
        audit.record({"n": 12})
        await audit.close()

    asyncio.run(scenario())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text().splitlines()[-1])["n"] == 12
    assert path.stat().st_size <= 300
    assert (tmp_path / "audit.log.1").exists() and (tmp_path / "audit.log.2").exists()
    assert not (tmp_path / "audit.log.3").exists()
