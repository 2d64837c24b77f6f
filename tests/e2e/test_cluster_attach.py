"""The guide's interactive commands on a real cluster: `kubectl run --rm -it` with a terminal,
`kubectl attach -i`, and `kubectl exec <pod> -- ip a` showing the pod's address on eth0.

kubectl runs under a pseudo-terminal of the test's own, as a person at a shell would run it: it only
asks for a TTY (and puts its terminal in raw mode) when its stdin is one.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import shutil
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import kubectl_binaries
from tests.e2e.clusters import Cluster, running_cluster, wait_until

pytestmark = [
    pytest.mark.e2e, pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and cgroups"),
    pytest.mark.skipif(not (shutil.which("busybox") and kubectl_binaries()),
                       reason="needs busybox and kubectl (make setup installs them)"),
]

NODE_CIDR = "172.31.247.0/24"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(NODE_CIDR) as made:
        wait_until("2 nodes", lambda: len(made.json("get", "nodes")["items"]) == 2)
        yield made


def _set_size(terminal: int, width: int, height: int) -> None:
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


class Terminal:
    """kubectl with a pseudo-terminal as its stdin, stdout and stderr; everything it prints is kept."""

    def __init__(self, cluster: Cluster, *args: str, size: tuple[int, int] = (80, 24)) -> None:
        master, slave = pty.openpty()
        self.master = master
        _set_size(master, *size)  # what kubectl reads from its terminal and sends at the start
        self.proc = subprocess.Popen(
            [str(cluster.kubectl_bin), "--kubeconfig", str(cluster.data_dir / "kubeconfig"), *args],
            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        self.output = b""
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:  # EIO: kubectl has exited and closed the terminal
                return
            if not data:
                return
            with self.lock:
                self.output += data

    def text(self) -> str:
        with self.lock:
            return self.output.decode(errors="replace")

    def expect(self, pattern: str, timeout: float = 60) -> None:
        wait_until(f"{pattern!r} from kubectl", lambda: re.search(pattern, self.text()) or self.proc.poll() is not None,
                   timeout=timeout, interval=0.1)
        assert re.search(pattern, self.text()), f"kubectl exited ({self.proc.returncode}):\n{self.text()}"

    def resize(self, width: int, height: int) -> None:
        """As a terminal window being resized: a new size, and SIGWINCH to kubectl (the pty is not its
        controlling terminal, so the kernel would not send it)."""
        _set_size(self.master, width, height)
        self.proc.send_signal(signal.SIGWINCH)

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")  # the Enter key of a terminal in raw mode

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self.reader.join(5)
            os.close(self.master)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.wait()


def test_run_rm_it_gives_a_shell_and_removes_the_pod(cluster: Cluster) -> None:
    term = Terminal(cluster, "run", "test-pod", "--rm", "-it", "--image=busybox", "--", "/bin/sh")
    try:
        term.expect("If you don't see a command prompt, try pressing enter", timeout=120)
        term.type("")
        term.expect(r"# ")  # busybox sh's prompt (root, no PS1 in the environment)
        term.type("echo hello-$((6*7))")
        term.expect("hello-42")
        term.type("exit")
        assert term.wait() == 0, term.text()
    finally:
        term.kill()
    assert 'pod "test-pod" deleted' in term.text()
    wait_until("test-pod to be gone", lambda: cluster.kubectl("get", "pod", "test-pod", check=False).returncode != 0,
               timeout=90)


def test_attach_t_gives_the_container_the_terminals_size_and_its_changes(cluster: Cluster) -> None:
    term = Terminal(cluster, "run", "resize-me", "--rm", "-it", "--image=busybox", "--", "/bin/sh", size=(97, 31))
    try:
        term.expect("If you don't see a command prompt, try pressing enter", timeout=120)
        term.type("")
        term.expect(r"# ")
        term.type("echo size=$(stty size)")  # rows, then columns
        term.expect("size=31 97")
        term.resize(123, 45)
        term.type("echo size=$(stty size)")
        term.expect("size=45 123")
        term.type("exit")
        assert term.wait() == 0, term.text()
    finally:
        term.kill()
        cluster.kubectl("delete", "pod", "resize-me", "--wait=false", check=False)


def test_attach_i_writes_to_the_containers_stdin(cluster: Cluster) -> None:
    cluster.kubectl("run", "attach-me", "--image=busybox", "--restart=Never", "-i=true", "--attach=false",
                    "--", "/bin/sh")
    try:
        wait_until("attach-me to run", lambda: cluster.json("get", "pod", "attach-me")["status"].get("phase")
                   == "Running", timeout=120)
        # Nobody was attached until now: that is not the end of the shell's input.
        time.sleep(1)
        assert cluster.json("get", "pod", "attach-me")["status"].get("phase") == "Running"
        attached = subprocess.run(
            [str(cluster.kubectl_bin), "--kubeconfig", str(cluster.data_dir / "kubeconfig"), "attach", "-i",
             "attach-me"], input="echo attached-$((6*7))\nexit 0\n", capture_output=True, text=True, timeout=60)
        assert "attached-42" in attached.stdout, (attached.stdout, attached.stderr)
        wait_until("attach-me to succeed", lambda: cluster.json("get", "pod", "attach-me")["status"].get("phase")
                   == "Succeeded", timeout=60)
    finally:
        cluster.kubectl("delete", "pod", "attach-me", "--wait=false", check=False)


def test_exec_ip_a_shows_eth0_with_the_pod_ip(cluster: Cluster) -> None:
    cluster.kubectl("run", "ip-check", "--image=busybox", "--restart=Never", "--", "sleep", "3600")
    try:
        pod = wait_until("ip-check to run with an address", lambda: (
            p := cluster.json("get", "pod", "ip-check"))["status"].get("phase") == "Running"
            and p["status"].get("podIP") and p, timeout=120)
        out = cluster.kubectl("exec", "ip-check", "--", "ip", "a").stdout
        eth0 = re.search(r"^\d+: eth0@?\S*:.*?(?=^\d+: |\Z)", out, re.M | re.S)
        assert eth0, out
        assert f"inet {pod['status']['podIP']}/" in eth0.group(0), out
    finally:
        cluster.kubectl("delete", "pod", "ip-check", "--wait=false", check=False)
