"""Shared fixtures: a running `netplane up`, the kubectl binaries to drive it with, a namespace."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV_KUBECTL = Path(sys.executable).parent / "kubectl"
SYSTEM_KUBECTL = Path("/usr/bin/kubectl")


def kubectl_binaries() -> list[Path]:
    """Every kubectl on the machine: the system's (v1.32 here) and the wheel's (v1.37)."""
    found = [p for p in (SYSTEM_KUBECTL, VENV_KUBECTL) if p.exists()]
    if not found and shutil.which("kubectl"):
        found.append(Path(shutil.which("kubectl") or "kubectl"))
    return found


@dataclass
class Netplane:
    process: subprocess.Popen[str]
    data_dir: Path
    kubeconfig: Path
    server: str
    ready_line: str

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_netplane(data_dir: Path, *extra: str) -> Netplane:
    cmd = [sys.executable, "-m", "netplane.cli", "up", "--no-dataplane", "--api-port", "0",
           "--data-dir", str(data_dir), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("netplane ready:"):
            server = line.split("API ", 1)[1].split(",", 1)[0]
            return Netplane(proc, data_dir, data_dir / "kubeconfig", server, line.strip())
    proc.wait()
    raise RuntimeError("netplane up exited before it was ready:\n" + "".join(lines))


@pytest.fixture(scope="session")
def netplane() -> Iterator[Netplane]:
    with tempfile.TemporaryDirectory(prefix="netplane-test-") as tmp:
        instance = start_netplane(Path(tmp) / "data")
        try:
            yield instance
        finally:
            instance.stop()


@pytest.fixture(params=kubectl_binaries(), ids=lambda p: str(p))
def kubectl_bin(request: pytest.FixtureRequest) -> Path:
    return Path(request.param)


class Kubectl:
    def __init__(self, binary: Path, kubeconfig: Path, cache_dir: Path):
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.cache_dir = cache_dir

    def run(self, *args: str, input: str | None = None, check: bool = True,
            env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.binary), "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.cache_dir), *args]
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, **(env or {})})
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return result

    def __call__(self, *args: str, **kwargs: object) -> str:
        return self.run(*args, **kwargs).stdout  # type: ignore[arg-type]


@pytest.fixture
def kubectl(netplane: Netplane, kubectl_bin: Path, tmp_path: Path) -> Kubectl:
    return Kubectl(kubectl_bin, netplane.kubeconfig, tmp_path / "kube-cache")


@pytest.fixture
def ns(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace for one test, deleted (without waiting) afterwards."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)
