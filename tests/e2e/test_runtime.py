"""The pod runtime end to end: real shims, namespaces, cgroups, nginx and busybox (root only)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from netplane.dataplane.runtime import client, criolog
from netplane.dataplane.runtime import spec as runtime_spec
from netplane.dataplane.runtime.cgroups import PodCgroup
from tests.conftest import ROOT

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and cgroups"),
    pytest.mark.skipif(not (shutil.which("nginx") and shutil.which("busybox")),
                       reason="needs nginx and busybox (make setup installs them)"),
]


@dataclass
class Pod:
    name: str
    dir: Path
    netns: str
    uid: str

    def status(self) -> dict[str, Any]:
        return client.read_status(self.dir) or {}

    def wait(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20) -> dict[str, Any]:
        return client.wait_for(self.dir, predicate, timeout)

    def running(self, timeout: float = 20) -> dict[str, Any]:
        return self.wait(lambda s: all("running" in c["state"] for c in s["containerStatuses"])
                         and bool(s["containerStatuses"]), timeout)

    def in_netns(self, *cmd: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.netns, *cmd], capture_output=True, text=True,
                              timeout=timeout)

    def exec(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(client.exec_argv(self.status(), list(cmd)), capture_output=True, text=True, timeout=10)


class Pods:
    """Creates pods in their own network namespaces under a throw-away data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.pods: list[Pod] = []

    def create(self, containers: list[dict[str, Any]], *, restart_policy: str = "Always", grace: float = 5,
               init_containers: list[dict[str, Any]] | None = None, start: bool = True,
               volumes: list[dict[str, Any]] | None = None, volume_dirs: dict[str, str] | None = None,
               **overrides: Any) -> Pod:
        uid = str(uuid.uuid4())
        name = f"p{uid[:6]}"
        netns = f"nprt-{uid[:8]}"
        subprocess.run(["ip", "netns", "add", netns], check=True)
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        pod = Pod(name, self.data_dir / "pods" / uid, netns, uid)
        self.pods.append(pod)
        manifest = {"metadata": {"name": name, "namespace": "team-a", "uid": uid},
                    "spec": {"containers": containers, "initContainers": init_containers or [],
                             "restartPolicy": restart_policy, "terminationGracePeriodSeconds": grace,
                             "volumes": volumes or []}}
        etc = runtime_spec.write_etc_files(pod.dir / "etc", name, "10.16.0.5", "nameserver 10.96.0.10\n")
        built = runtime_spec.build_spec(manifest, netns=f"/run/netns/{netns}", etc_files=etc,
                                        hidden=[str(self.data_dir)], volume_dirs=volume_dirs)
        assert isinstance(built, runtime_spec.PodRuntimeSpec), built
        built.backoff_initial = 0.2
        for key, value in overrides.items():
            setattr(built, key, value)
        runtime_spec.save(pod.dir, built)
        if start:
            client.start_shim(pod.dir)
        return pod

    def close(self) -> None:
        for pod in self.pods:
            if (pod.dir / "spec.json").exists():
                client.terminate(pod.dir, timeout=30)
            subprocess.run(["ip", "netns", "del", pod.netns], capture_output=True)
            assert not any(p.exists() for p in PodCgroup("netplane", pod.uid).paths.values())


@pytest.fixture
def pods() -> Iterator[Pods]:
    # Outside /tmp on purpose: pods get a private /tmp, so a data directory there would be
    # invisible anyway and hiding it would prove nothing.
    data_dir = Path(tempfile.mkdtemp(prefix="netplane-rt-", dir="/var/tmp"))
    made = Pods(data_dir)
    try:
        yield made
    finally:
        made.close()
        shutil.rmtree(data_dir, ignore_errors=True)


def busybox(command: str, name: str = "main", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox:1.36", "command": ["sh", "-c", command], **extra}


def curl(pod: Pod, url: str, *extra: str, attempts: int = 50) -> str:
    """curl inside the pod's network namespace, retrying while the server starts."""
    for _ in range(attempts):
        got = pod.in_netns("curl", "-sS", "--max-time", "2", *extra, url)
        if got.returncode == 0:
            return got.stdout
        time.sleep(0.1)
    raise AssertionError(f"{url} in {pod.netns}: {got.stderr}")


def test_nginx_pod_serves_the_welcome_page_in_its_network_namespace(pods: Pods) -> None:
    pod = pods.create([{"name": "web", "image": "nginx:1.27"}])
    pod.running()
    assert "Welcome to nginx!" in curl(pod, "http://127.0.0.1/")
    assert "pid" in pod.exec("cat", "/run/nginx/nginx.conf").stdout


def test_two_nginx_pods_run_side_by_side(pods: Pods) -> None:
    a = pods.create([{"name": "web", "image": "nginx"}])
    b = pods.create([{"name": "web", "image": "docker.io/library/nginx:latest"}])
    for pod in (a, b):
        pod.running()
    for pod in (a, b):
        assert "Welcome to nginx!" in curl(pod, "http://127.0.0.1/")
    pid_a = a.exec("cat", "/run/nginx/nginx.pid").stdout.strip()
    pid_b = b.exec("cat", "/run/nginx/nginx.pid").stdout.strip()
    assert pid_a and pid_b  # each has its own pid file in its own /run
    assert "GET / " in a.exec("cat", "/var/log/nginx/access.log").stdout
    # b's log is its own: a's request did not land there.
    assert a.exec("cat", "/var/log/nginx/access.log").stdout.count("GET /") == 1
    assert all(pod.status()["containerStatuses"][0]["restartCount"] == 0 for pod in (a, b))


def test_pods_are_isolated_from_the_data_dir_each_other_and_the_host(pods: Pods) -> None:
    secret = pods.data_dir / "admin.key"
    secret.write_text("top secret")
    a = pods.create([busybox("echo a-private > /tmp/mine; sleep 3600")])
    b = pods.create([busybox("sleep 3600")])
    a.running()
    b.running()
    a.wait(lambda s: a.exec("cat", "/tmp/mine").stdout == "a-private\n")
    read_secret = b.exec("cat", str(secret))
    assert read_secret.returncode != 0 and "top secret" not in read_secret.stdout
    assert b.exec("ls", "-A", str(pods.data_dir)).stdout == ""  # an empty tmpfs over it
    assert b.exec("cat", "/tmp/mine").returncode != 0
    assert b.exec("hostname").stdout.strip() == b.name
    assert b.exec("cat", "/proc/1/comm").stdout.strip() == "pause"
    assert b.exec("cat", "/etc/hostname").stdout.strip() == b.name
    assert "nameserver 10.96.0.10" in b.exec("cat", "/etc/resolv.conf").stdout
    pids = [p for p in b.exec("ls", "/proc").stdout.split() if p.isdigit()]
    assert "1" in pids and len(pids) < 10  # pause, sleep, the exec'd ls: not the host's processes
    # Writes go to the pod's own layer: the host's /etc does not change.
    assert b.exec("sh", "-c", "echo pod > /etc/netplane-test-file").returncode == 0
    assert not Path("/etc/netplane-test-file").exists()
    # Without CAP_SYS_ADMIN the pod cannot uncover what is hidden.
    assert b.exec("umount", str(pods.data_dir)).returncode != 0
    assert b.exec("ls", "/dev").stdout.split().count("null") == 1
    assert not [d for d in b.exec("ls", "/dev").stdout.split() if d.startswith(("sd", "vd", "nvme"))]


def test_echo_server_reports_the_request(pods: Pods) -> None:
    pod = pods.create([{
        "name": "echo", "image": "gcr.io/k8s-staging-gateway-api/echo-basic:v20240412",
        "ports": [{"containerPort": 3000}, {"containerPort": 8081}],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
    }])
    pod.running()
    got = json.loads(curl(pod, "http://127.0.0.1:3000/some/path?x=1", "-H", "Host: example.com",
                          "-H", "X-Test: yes", "-X", "PUT"))
    assert got["method"] == "PUT"
    assert got["path"] == "/some/path?x=1"
    assert got["host"] == "example.com"
    assert got["headers"]["X-Test"] == ["yes"]
    assert got["pod"] == pod.name and got["namespace"] == "team-a"
    assert got["remoteAddr"].rsplit(":", 1)[0].endswith("127.0.0.1")
    assert int(got["remoteAddr"].rsplit(":", 1)[1]) > 0
    assert json.loads(curl(pod, "http://127.0.0.1:8081/"))["localPort"] == 8081


def test_on_failure_restarts_with_counts_and_exit_codes(pods: Pods) -> None:
    pod = pods.create([busybox("echo attempt; exit 3")], restart_policy="OnFailure")
    status = pod.wait(lambda s: s["containerStatuses"][0]["restartCount"] >= 2
                      and "terminated" in s["containerStatuses"][0]["lastState"])
    container = status["containerStatuses"][0]
    assert container["lastState"]["terminated"]["exitCode"] == 3
    assert container["lastState"]["terminated"]["reason"] == "Error"
    assert (pod.dir / "logs" / "main" / "0.log").exists() and (pod.dir / "logs" / "main" / "1.log").exists()


def test_never_leaves_a_failed_container_and_init_containers_run_first(pods: Pods) -> None:
    pod = pods.create([busybox("cat /run/order; exit 7")], restart_policy="Never",
                      init_containers=[busybox("echo first > /run/order", name="init1"),
                                       busybox("echo second >> /run/order", name="init2")])
    status = pod.wait(lambda s: s["phase"] == "Failed")
    assert [c["state"]["terminated"]["exitCode"] for c in status["initContainerStatuses"]] == [0, 0]
    main = status["containerStatuses"][0]
    assert main["state"]["terminated"]["exitCode"] == 7 and main["restartCount"] == 0
    assert [e.content for e in criolog.read(main["logPath"])] == ["first", "second"]


def test_logs_are_in_the_cri_format(pods: Pods) -> None:
    pod = pods.create([busybox("echo hello; echo oops >&2; printf 'no newline'")], restart_policy="Never")
    status = pod.wait(lambda s: s["phase"] == "Succeeded")
    path = status["containerStatuses"][0]["logPath"]
    pod.wait(lambda s: "no newline" in Path(path).read_text())
    lines = Path(path).read_text().splitlines()
    assert lines and all(criolog.LINE.match(line) for line in lines), lines
    assert sorted((e.stream, e.content) for e in criolog.read(path)) == [
        ("stderr", "oops"), ("stdout", "hello"), ("stdout", "no newline")]


def test_volumes_are_mounted_read_only_where_kubernetes_says(pods: Pods) -> None:
    config = pods.data_dir / "volumes" / "config"
    config.mkdir(parents=True)
    (config / "greeting").write_text("hi")
    scratch = pods.data_dir / "volumes" / "scratch"
    scratch.mkdir()
    # /etc/config and /data do not exist on the host: the pod's own layer gets the mount points.
    pod = pods.create([busybox("sleep 3600", volumeMounts=[{"name": "config", "mountPath": "/etc/config"},
                                                           {"name": "scratch", "mountPath": "/data"}])],
                      volumes=[{"name": "config", "configMap": {"name": "c"}}, {"name": "scratch", "emptyDir": {}}],
                      volume_dirs={"config": str(config), "scratch": str(scratch)})
    pod.running()
    assert pod.exec("cat", "/etc/config/greeting").stdout == "hi"
    assert pod.exec("sh", "-c", "echo x > /etc/config/new").returncode != 0  # a configMap is always read-only
    assert pod.exec("sh", "-c", "echo written > /data/out").returncode == 0
    assert (scratch / "out").read_text() == "written\n"
    assert not Path("/etc/config").exists() and not Path("/data").exists()


def test_the_pod_outlives_the_process_that_started_it(pods: Pods) -> None:
    pod = pods.create([{"name": "web", "image": "nginx"}], start=False)
    starter = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from netplane.dataplane.runtime import client; "
         "print(client.start_shim(Path(sys.argv[1])), flush=True); time.sleep(600)", str(pod.dir)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert starter.stdout is not None
    shim_pid = int(starter.stdout.readline())
    pod.running()
    starter.send_signal(signal.SIGKILL)
    starter.wait()
    time.sleep(0.5)
    assert client.shim_alive(pod.dir, shim_pid)
    assert "Welcome to nginx!" in curl(pod, "http://127.0.0.1/")
    assert pod.status()["containerStatuses"][0]["restartCount"] == 0


def test_terminating_the_shim_kills_the_whole_tree_within_the_grace_period(pods: Pods) -> None:
    # The shell and its children ignore SIGTERM, so only the SIGKILL after the grace period ends them.
    pod = pods.create([busybox("trap '' TERM; sleep 1000 & sleep 1000 & wait; sleep 1000")], grace=1)
    status = pod.running()
    cgroup = PodCgroup("netplane", pod.uid)
    pod.wait(lambda s: len(cgroup.pids()) >= 4)  # pause, sh, two sleeps
    tree = cgroup.pids() | {status["shimPid"]}
    started = time.monotonic()
    final = client.terminate(pod.dir, timeout=20)
    took = time.monotonic() - started
    assert final is not None and final["shimExited"]
    # The SIGKILL waits for the grace period; the upper bound only catches a hang (CI machines are slow).
    assert 1 <= took < 15, took
    # The shim writes its final status just before it exits itself: give it a moment to be gone.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(pid) for pid in tree):
        time.sleep(0.05)
    assert not [pid for pid in tree if _alive(pid)]
    assert final["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except FileNotFoundError:
        return False


def test_a_graceful_container_stops_before_the_grace_period(pods: Pods) -> None:
    pod = pods.create([{"name": "web", "image": "nginx"}], grace=20)
    pod.running()
    curl(pod, "http://127.0.0.1/")  # nginx itself is up, not only its launcher
    started = time.monotonic()
    final = client.terminate(pod.dir)
    assert time.monotonic() - started < 15  # well under the 20 s grace period
    assert final is not None and final["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0


def test_the_agent_can_have_one_container_killed_and_restarted(pods: Pods) -> None:
    # What a failed liveness probe asks for: restarted even under OnFailure after a clean exit on SIGTERM,
    # and SIGKILLed when it ignores SIGTERM past the grace period; a request for another instance is ignored.
    pod = pods.create([busybox("trap 'exit 0' TERM; while true; do sleep 0.1; done", name="polite"),
                       busybox("trap '' TERM; while true; do sleep 0.1; done", name="stubborn")],
                      restart_policy="OnFailure")
    pod.running()
    assert client.kill_container(pod.dir, "polite", 7, grace=30)  # not the running instance (restartCount 0)
    time.sleep(1)
    assert [c["restartCount"] for c in pod.running()["containerStatuses"]] == [0, 0]
    started = time.monotonic()
    assert client.kill_container(pod.dir, "polite", 0, grace=30)
    assert client.kill_container(pod.dir, "stubborn", 0, grace=1)
    status = pod.wait(lambda s: all(c["restartCount"] == 1 and "running" in c["state"]
                                    for c in s["containerStatuses"]))
    polite, stubborn = (c["lastState"]["terminated"]["exitCode"] for c in status["containerStatuses"])
    assert (polite, stubborn) == (0, 137)
    assert time.monotonic() - started < 15
    assert not list((pod.dir / runtime_spec.CONTROL_DIR).iterdir())  # requests are consumed


def _write_stdin(status: dict[str, Any], data: bytes) -> None:
    """What `kubectl attach -i` does through the streams backend: open the fifo, write, detach."""
    fd = os.open(status["containerStatuses"][0]["stdin"], os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def test_stdin_waits_for_an_attached_client_and_once_ends_with_it(pods: Pods) -> None:
    pod = pods.create([busybox("cat; echo cat-done", stdin=True, stdinOnce=True)], restart_policy="Never")
    status = pod.running()
    time.sleep(0.5)  # nobody attached yet: not an end of input
    assert "running" in pod.status()["containerStatuses"][0]["state"]
    _write_stdin(status, b"from-attach\n")
    status = pod.wait(lambda s: s["phase"] == "Succeeded")
    path = status["containerStatuses"][0]["logPath"]
    assert [(e.stream, e.content) for e in criolog.read(path)] == [("stdout", "from-attach"), ("stdout", "cat-done")]


def test_a_tty_container_reads_its_terminal_and_logs_it_as_stdout(pods: Pods) -> None:
    pod = pods.create([busybox("[ -t 0 ] && [ -t 1 ] && echo on-a-tty; read line; echo got-$line", stdin=True,
                               tty=True)], restart_policy="Never")
    status = pod.running()
    _write_stdin(status, b"typed\n")
    status = pod.wait(lambda s: s["phase"] == "Succeeded")
    pod.wait(lambda s: "got-typed" in Path(s["containerStatuses"][0]["logPath"]).read_text())
    entries = [(e.stream, e.content.strip()) for e in criolog.read(status["containerStatuses"][0]["logPath"])]
    # The terminal echoes what is typed, as a shell at a terminal shows it (when it arrives, so in any order
    # with the first line).
    assert sorted(entries) == [("stdout", "got-typed"), ("stdout", "on-a-tty"), ("stdout", "typed")], entries
