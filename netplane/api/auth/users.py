"""The user database: DIR/users.json, written by `netplane user add`, read by the API server.

Only SHA-256 hashes of tokens are kept. Tokens are 256-bit random strings, not passwords, so a
fast unsalted hash is enough to make a leaked file useless while keeping lookups O(1). The file is
replaced atomically (write, then rename) under an exclusive lock, so the server never reads half a
file and two concurrent `user add` calls never lose each other's user.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netplane.api.auth.rbac import UserInfo

USERS_FILE = "users.json"
ADMINS_GROUP = "netplane:admins"
PROJECT_GROUP_PREFIX = "project:"
AUTHENTICATED_GROUP = "system:authenticated"
# A name that is safe as a certificate CN, a kubeconfig entry and an RBAC subject.
_NAME = re.compile(r"[a-z0-9]([-a-z0-9._@]{0,251}[a-z0-9])?")


class UserError(Exception):
    pass


def token_hash(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def groups_for(projects: list[str], admin: bool) -> list[str]:
    groups = [ADMINS_GROUP] if admin else []
    return groups + [PROJECT_GROUP_PREFIX + p for p in dict.fromkeys(projects)]


def check_name(kind: str, name: str) -> None:
    if not _NAME.fullmatch(name) or name.startswith("system:"):
        raise UserError(f"{kind} {name!r} is not valid: use lowercase letters, digits, '-', '.', '_' and '@', "
                        "starting and ending with a letter or digit")


@dataclass(frozen=True)
class UserRecord:
    name: str
    uid: str
    groups: tuple[str, ...]
    token_hashes: tuple[str, ...]

    def info(self) -> UserInfo:
        return UserInfo(self.name, self.uid, (*self.groups, AUTHENTICATED_GROUP))


def _parse(raw: bytes) -> dict[str, UserRecord]:
    doc = json.loads(raw) if raw.strip() else {}
    users: dict[str, UserRecord] = {}
    for name, entry in (doc.get("users") or {}).items():
        users[name] = UserRecord(name, str(entry.get("uid", "")), tuple(entry.get("groups") or ()),
                                 tuple(entry.get("tokenHashes") or ()))
    return users


def _render(users: dict[str, UserRecord]) -> bytes:
    doc: dict[str, Any] = {"users": {
        u.name: {"uid": u.uid, "groups": list(u.groups), "tokenHashes": list(u.token_hashes)}
        for u in sorted(users.values(), key=lambda u: u.name)}}
    return json.dumps(doc, indent=2).encode() + b"\n"


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    lock = os.open(data_dir / ".users.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lock)


def add_user(data_dir: Path, name: str, groups: list[str], token: str | None) -> UserRecord:
    """Record a new user (with the hash of ``token`` if given); refuses a name already taken."""
    check_name("user name", name)
    path = data_dir / USERS_FILE
    with _locked(data_dir):
        users = _parse(path.read_bytes()) if path.exists() else {}
        if name in users:
            raise UserError(f'user "{name}" already exists')
        record = UserRecord(name, str(uuid.uuid4()), tuple(groups), (token_hash(token),) if token else ())
        users[name] = record
        tmp = path.with_name(USERS_FILE + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(_render(users))
            f.flush()
            os.fsync(f.fileno())
        tmp.chmod(0o600)
        tmp.replace(path)
    return record


class UserStore:
    """The server's view of users.json, re-read when the file changed (checked on an unknown token,
    so a user added while the server runs can log in at once, and known tokens cost no system call)."""

    def __init__(self, path: Path | None):
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._by_hash: dict[str, UserInfo] = {}

    def _reload_if_changed(self) -> None:
        if self.path is None:
            return
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._by_hash = None, {}
            return
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            users = _parse(self.path.read_bytes())
        except (OSError, ValueError, AttributeError):
            return  # keep serving the users we know; the next unknown token tries again
        self._stamp = stamp
        self._by_hash = {h: u.info() for u in users.values() for h in u.token_hashes}

    def by_token(self, token: str) -> UserInfo | None:
        digest = token_hash(token)
        user = self._by_hash.get(digest)
        if user is None:
            self._reload_if_changed()
            user = self._by_hash.get(digest)
        return user
