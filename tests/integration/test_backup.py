"""Backup while writes go on, restore into a fresh data directory, and every object matches."""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, start_netplane
from tests.helpers import Client

pytestmark = pytest.mark.integration


def _netplane(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netplane.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)


def _objects(client: Client) -> dict[str, dict[str, Any]]:
    # Not kube-root-ca.crt: a restored cluster has a CA of its own and publishes that one.
    items = client.request("GET", "/api/v1/configmaps?fieldSelector=metadata.name!=kube-root-ca.crt")[1]["items"]
    return {i["metadata"]["namespace"] + "/" + i["metadata"]["name"]: i for i in items}


def test_backup_under_writes_restores_exactly(tmp_path: Path) -> None:
    source = start_netplane(tmp_path / "source")
    client = Client(source)
    stop = threading.Event()

    def writer(worker: int) -> None:
        i = 0
        while not stop.is_set():
            client.request("POST", "/api/v1/namespaces/default/configmaps",
                           {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"w{worker}-{i}"},
                            "data": {"i": str(i)}})
            i += 1

    try:
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(writer, w) for w in range(3)]
            time.sleep(1.0)
            result = _netplane("backup", "--data-dir", str(tmp_path / "source"), str(tmp_path / "snap.db"))
            time.sleep(0.5)
            stop.set()
            for f in futures:
                f.result()
        assert result.returncode == 0, result.stderr
        snapshot_rv = int(result.stdout.split("resourceVersion ")[1].split()[0])
        original = _objects(client)
    finally:
        source.stop()

    restored_run = _netplane("restore", "--data-dir", str(tmp_path / "restored"), str(tmp_path / "snap.db"))
    assert restored_run.returncode == 0, restored_run.stderr
    restored = start_netplane(tmp_path / "restored")
    try:
        after = _objects(Client(restored))
    finally:
        restored.stop()
    # Exactly the objects that existed at the snapshot's revision, byte for byte the same.
    expected = {k: v for k, v in original.items() if int(v["metadata"]["resourceVersion"]) <= snapshot_rv}
    assert len(expected) > 10
    assert after == expected


def test_restore_refuses_a_data_dir_with_a_store_and_a_bad_file(tmp_path: Path) -> None:
    server = start_netplane(tmp_path / "d")
    server.stop()
    assert _netplane("backup", "--data-dir", str(tmp_path / "d"), str(tmp_path / "b.db")).returncode == 0
    again = _netplane("restore", "--data-dir", str(tmp_path / "d"), str(tmp_path / "b.db"))
    assert again.returncode == 2 and "already holds a store" in again.stderr
    (tmp_path / "junk.db").write_text("not a database")
    junk = _netplane("restore", "--data-dir", str(tmp_path / "new"), str(tmp_path / "junk.db"))
    assert junk.returncode == 2 and "is not a netplane backup" in junk.stderr
    missing = _netplane("backup", "--data-dir", str(tmp_path / "nowhere"), str(tmp_path / "x.db"))
    assert missing.returncode == 2 and "holds no netplane store" in missing.stderr
