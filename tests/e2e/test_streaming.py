"""exec, logs, port-forward and cp with the real kubectl against a pod whose runtime is faked.

The pod is an API object; its "runtime" is what the container runtime will provide: a network
namespace with an eth0, a process tree in its own PID/mount/UTS/IPC namespaces, a CRI log file and
the runtime record (netplane.dataplane.streams.record) that points at them.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from netplane.dataplane.streams.record import ContainerRecord, PodRecord, write
from tests.conftest import ROOT, Kubectl, Netplane, kubectl_binaries

pytestmark = pytest.mark.e2e
HTTP_PORT = 18080


@dataclass
class FakePod:
    namespace: str
    name: str
    netns: str
    log: Path
    workdir: Path


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def _wait_for(check: object, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def pod(netplane: Netplane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakePod]:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    admin = Kubectl(kubectl_binaries()[0], netplane.kubeconfig, tmp_path_factory.mktemp("admin-cache"))
    tag = uuid.uuid4().hex[:6]
    ns, netns, host_if = f"streams-{tag}", f"npst-{tag}", f"npst{tag}"
    workdir = tmp_path_factory.mktemp("pod")
    procs: list[subprocess.Popen[bytes]] = []
    admin("create", "namespace", ns)
    try:
        admin("run", "web", "-n", ns, "--image=busybox", "--restart=Never", "--", "sleep", "1d")
        admin("patch", "pod", "web", "-n", ns, "--subresource=status", "--type=merge",
              "-p", '{"status":{"phase":"Running"}}')
        uid = admin("get", "pod", "web", "-n", ns, "-o", "jsonpath={.metadata.uid}")
        subprocess.run(["ip", "netns", "add", netns], check=True)
        for cmd in (["ip", "-n", netns, "link", "set", "lo", "up"],
                    ["ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", netns],
                    ["ip", "-n", netns, "addr", "add", "10.244.77.7/24", "dev", "eth0"],
                    ["ip", "-n", netns, "link", "set", "eth0", "up"]):
            subprocess.run(cmd, check=True)
        tree = subprocess.Popen(["ip", "netns", "exec", netns, "unshare", "--pid", "--fork", "--mount-proc",
                                 "--uts", "--ipc", "sleep", "infinity"], start_new_session=True)
        procs.append(tree)
        _wait_for(lambda: _children(tree.pid), "the pod's init process")
        init = _children(tree.pid)[0]
        (workdir / "www").mkdir()
        (workdir / "www" / "index.html").write_text("served from inside the pod\n")
        procs.append(subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-m", "http.server",
                                       str(HTTP_PORT), "--bind", "127.0.0.1", "--directory", str(workdir / "www")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        _wait_for(lambda: subprocess.run(["ip", "netns", "exec", netns, "bash", "-c",
                                          f"</dev/tcp/127.0.0.1/{HTTP_PORT}"], capture_output=True).returncode == 0,
                  "the pod's web server")
        log_dir = workdir / "logs"
        log = log_dir / "web" / "0.log"
        log.parent.mkdir(parents=True)
        log.write_text("2026-11-26T04:00:00.000000001Z stdout F hello from web\n"
                       "2026-11-26T04:00:01.5Z stderr F an error line\n"
                       "2026-11-26T04:00:02Z stdout P first half, \n"
                       "2026-11-26T04:00:02Z stdout F second half\n")
        write(netplane.data_dir / "pods", PodRecord(uid, ns, "web", init, log_dir, f"/run/netns/{netns}",
                                                    {"web": ContainerRecord("web", init)}))
        yield FakePod(ns, "web", netns, log, workdir)
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the whole tree: each was started as its own group
            proc.wait()
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        admin.run("delete", "namespace", ns, "--wait=false", check=False)


def test_exec_output_exit_code_and_stdin(kubectl: Kubectl, pod: FakePod) -> None:
    assert kubectl("exec", pod.name, "-n", pod.namespace, "--", "echo", "hi") == "hi\n"
    failed = kubectl.run("exec", pod.name, "-n", pod.namespace, "--", "sh", "-c", "echo oops >&2; exit 3",
                         check=False)
    assert failed.returncode == 3
    assert "oops" in failed.stderr and "command terminated with exit code 3" in failed.stderr
    assert kubectl("exec", "-i", pod.name, "-n", pod.namespace, "--", "cat", input="line 1\nline 2\n") \
        == "line 1\nline 2\n"


def test_exec_runs_in_the_pods_namespaces(kubectl: Kubectl, pod: FakePod) -> None:
    interfaces = kubectl("exec", pod.name, "-n", pod.namespace, "--", "ip", "-br", "addr")
    assert "10.244.77.7/24" in interfaces
    # PID 1 of the pod's PID namespace is its init process, not the host's.
    assert kubectl("exec", pod.name, "-n", pod.namespace, "--", "cat", "/proc/1/comm").strip() == "sleep"


def test_logs(kubectl: Kubectl, pod: FakePod) -> None:
    assert kubectl("logs", pod.name, "-n", pod.namespace) == \
        "hello from web\nan error line\nfirst half, second half\n"
    assert kubectl("logs", pod.name, "-n", pod.namespace, "--tail", "1", "--timestamps") == \
        "2026-11-26T04:00:02Z first half, second half\n"
    previous = kubectl.run("logs", pod.name, "-n", pod.namespace, "--previous", check=False)
    assert previous.returncode == 1
    assert f'previous terminated container "web" in pod "{pod.name}" not found' in previous.stderr


def test_logs_follow_streams_new_lines(kubectl: Kubectl, pod: FakePod) -> None:
    cmd = [str(kubectl.binary), "--kubeconfig", str(kubectl.kubeconfig), "--cache-dir", str(kubectl.cache_dir),
           "logs", "-f", "--tail", "1", pod.name, "-n", pod.namespace]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        last = pod.log.read_text().splitlines()[-1]
        expected = last.split(" F ", 1)[1] if " F appended" in last else "first half, second half"
        assert _read_line(proc.stdout, 20) == f"{expected}\n".encode()
        marker = f"appended {uuid.uuid4().hex}"
        with pod.log.open("a") as f:
            f.write(f"2026-11-26T04:01:00Z stdout F {marker}\n")
        assert _read_line(proc.stdout, 10) == f"{marker}\n".encode()
    finally:
        proc.kill()
        proc.wait()


def _read_line(stream: object, timeout: float) -> bytes:
    fd = stream.fileno()  # type: ignore[attr-defined]
    line = b""
    deadline = time.monotonic() + timeout
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"no complete line within {timeout}s (got {line!r})")
        byte = os.read(fd, 1)
        if not byte:
            break
        line += byte
    return line


def test_port_forward(kubectl: Kubectl, pod: FakePod) -> None:
    cmd = [str(kubectl.binary), "--kubeconfig", str(kubectl.kubeconfig), "--cache-dir", str(kubectl.cache_dir),
           "port-forward", "-n", pod.namespace, pod.name, f":{HTTP_PORT}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        first = _read_line(proc.stdout, 20).decode()
        assert first.startswith("Forwarding from 127.0.0.1:"), first
        local = int(first.split("127.0.0.1:", 1)[1].split()[0])
        for _ in range(3):  # several connections over one forwarding session
            with urllib.request.urlopen(f"http://127.0.0.1:{local}/index.html", timeout=10) as response:
                assert response.read() == b"served from inside the pod\n"
    finally:
        proc.kill()
        proc.wait()


def test_cp_into_the_pod_and_back(kubectl: Kubectl, pod: FakePod, tmp_path: Path) -> None:
    payload = os.urandom(200_000).hex()
    source = tmp_path / "in.txt"
    source.write_text(payload)
    remote_dir = pod.workdir / f"cp-{uuid.uuid4().hex[:6]}"
    remote_dir.mkdir()
    kubectl("cp", str(source), f"{pod.namespace}/{pod.name}:{remote_dir}/copied.txt")
    assert (remote_dir / "copied.txt").read_text() == payload  # the pod's mount namespace shares this path
    kubectl("cp", f"{pod.namespace}/{pod.name}:{remote_dir}/copied.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_text() == payload


def test_wrong_container_is_refused(kubectl: Kubectl, pod: FakePod) -> None:
    result = kubectl.run("exec", pod.name, "-n", pod.namespace, "-c", "nope", "--", "echo", "hi", check=False)
    assert result.returncode == 1
    assert f"container nope is not valid for pod {pod.name}" in result.stderr
    logs = kubectl.run("logs", pod.name, "-n", pod.namespace, "-c", "nope", check=False)
    assert logs.returncode == 1
    assert f"container nope is not valid for pod {pod.name}" in logs.stderr


def test_exec_needs_rbac_on_pods_exec(netplane: Netplane, kubectl_bin: Path, pod: FakePod,
                                      tmp_path: Path) -> None:
    user = f"reader-{uuid.uuid4().hex[:6]}"
    added = subprocess.run([sys.executable, "-m", "netplane.cli", "user", "add", user, "--data-dir",
                            str(netplane.data_dir)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert added.returncode == 0, added.stderr
    kubeconfig = tmp_path / "reader.kubeconfig"
    kubeconfig.write_text(added.stdout)
    admin = Kubectl(kubectl_binaries()[0], netplane.kubeconfig, tmp_path / "admin-cache")
    admin("create", "role", f"{user}-pods", "-n", pod.namespace, "--verb=get,list", "--resource=pods,pods/log")
    admin("create", "rolebinding", f"{user}-pods", "-n", pod.namespace, f"--role={user}-pods", f"--user={user}")
    reader = Kubectl(kubectl_bin, kubeconfig, tmp_path / "cache")
    assert "hello from web" in reader("logs", pod.name, "-n", pod.namespace)
    result = reader.run("exec", pod.name, "-n", pod.namespace, "--", "echo", "hi", check=False)
    assert result.returncode == 1
    assert (f'pods "{pod.name}" is forbidden: User "{user}" cannot create resource "pods/exec" in API group "" '
            f'in the namespace "{pod.namespace}"') in result.stderr
    assert "hi" not in result.stdout
