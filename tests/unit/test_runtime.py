"""The runtime's pure parts: image catalogue, spec building, CRI logs, limits, restart rules."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from netplane.dataplane.runtime import client, criolog, images
from netplane.dataplane.runtime.cgroups import PodCgroup, pod_limits
from netplane.dataplane.runtime.shim import exit_code, next_backoff, should_restart
from netplane.dataplane.runtime.spec import (
    PodRuntimeSpec,
    SpecError,
    build_spec,
    expand,
    load,
    quantity,
    save,
    write_etc_files,
)

pytestmark = pytest.mark.unit


def pod(*containers: dict, **spec: object) -> dict:
    return {"metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1", "labels": {"app": "web"}},
            "spec": {"containers": list(containers), **spec}}


@pytest.mark.parametrize("image", ["nginx", "nginx:1.27", "docker.io/library/nginx:latest", "nginx@sha256:abc"])
def test_nginx_images_run_the_launcher_then_nginx(image: str) -> None:
    got = images.resolve(image)
    assert isinstance(got, images.ImageProgram)
    assert got.argv[1:3] == ["-m", "netplane.images.nginx"] and got.argv[3:] == ["nginx", "-g", "daemon off;"]


def test_echo_listens_on_each_container_port_or_8080() -> None:
    got = images.resolve("gcr.io/k8s-staging-gateway-api/echo-basic:v1", ports=[3000, 3001])
    assert isinstance(got, images.ImageProgram)
    assert got.argv == [sys.executable, "-m", "netplane.images.echo", "--port", "3000", "--port", "3001"]
    plain = images.resolve("netplane/echo")
    assert isinstance(plain, images.ImageProgram) and plain.argv[-2:] == ["--port", "8080"]


def test_command_replaces_the_entrypoint_and_args_replace_cmd() -> None:
    sleep = images.resolve("busybox:1.36", command=["sleep", "3600"])
    assert isinstance(sleep, images.ImageProgram)
    assert sleep.argv[-3:] == ["busybox", "sleep", "3600"]  # after the applet-linking launcher
    only_args = images.resolve("netplane/echo", args=["--port", "9"])
    assert isinstance(only_args, images.ImageProgram) and only_args.argv[-2:] == ["--port", "9"]
    assert "netplane.images.echo" in only_args.argv
    alpine = images.resolve("alpine:3.20")
    assert isinstance(alpine, images.ImageProgram) and alpine.argv[-1] == "sh"


def test_python_image_runs_an_interpreter() -> None:
    got = images.resolve("python:3.12-slim", command=["python", "-c", "print(1)"])
    assert isinstance(got, images.ImageProgram)
    assert os.path.isabs(got.argv[0]) and "python" in got.argv[0] and got.argv[1:] == ["-c", "print(1)"]


def test_unknown_image_is_an_err_image_pull_listing_the_catalogue() -> None:
    got = images.resolve("quay.io/example/redis:7")
    assert isinstance(got, images.ImageError)
    assert got.reason == "ErrImagePull"
    for name in ("nginx:*", "netplane/echo", "echo-basic", "busybox", "alpine", "python:*"):
        assert name in got.message
    errors = build_spec(pod({"name": "db", "image": "redis:7"}, {"name": "ok", "image": "nginx"}), netns=None)
    assert isinstance(errors, dict) and list(errors) == ["db"] and errors["db"].reason == "ErrImagePull"


def test_build_spec_env_expansion_volumes_and_resources() -> None:
    built = build_spec(pod({
        "name": "app", "image": "busybox", "command": ["sh", "-c", "echo $(GREETING) $(MISSING) $$(x)"],
        "env": [{"name": "GREETING", "value": "hi"},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
        "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}, {"name": "tmp", "mountPath": "/scratch"},
                         {"name": "tmp", "mountPath": "/ro", "readOnly": True, "subPath": "sub"}],
        "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}},
        "securityContext": {"capabilities": {"add": ["NET_ADMIN"], "drop": ["KILL"]}},
    }, volumes=[{"name": "cfg", "configMap": {"name": "c"}}, {"name": "tmp", "emptyDir": {}}],
        restartPolicy="OnFailure", terminationGracePeriodSeconds=3),
        netns="/run/netns/x", volume_dirs={"cfg": "/v/cfg", "tmp": "/v/tmp"}, pod_ip="10.16.0.9",
        resolved_env={"app": {"TOKEN": "s3cret"}})
    assert isinstance(built, PodRuntimeSpec)
    c = built.containers[0]
    assert c.argv[-1] == "echo hi $(MISSING) $(x)"
    assert c.env["POD"] == "web-1" and c.env["APP"] == "web" and c.env["IP"] == "10.16.0.9"
    assert c.env["TOKEN"] == "s3cret" and c.env["HOSTNAME"] == "web-1" and "PATH" in c.env
    assert [(m.source, m.target, m.read_only) for m in c.mounts] == [
        ("/v/cfg", "/etc/cfg", True), ("/v/tmp", "/scratch", False), ("/v/tmp/sub", "/ro", True)]
    assert (c.memory_limit, c.cpu_limit_milli, c.cpu_request_milli) == (64 * 2**20, 500, 500)
    assert "NET_ADMIN" in c.capabilities and "KILL" not in c.capabilities and "SYS_ADMIN" not in c.capabilities
    assert (built.restart_policy, built.grace_period, built.netns) == ("OnFailure", 3.0, "/run/netns/x")


def test_a_volume_mount_without_a_prepared_directory_is_refused() -> None:
    with pytest.raises(SpecError, match="no prepared directory"):
        build_spec(pod({"name": "a", "image": "nginx", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}),
                   netns=None)


def test_spec_round_trips_through_the_pod_directory(tmp_path: Path) -> None:
    etc = write_etc_files(tmp_path / "etc", "web-1", "10.16.0.9",
                          "nameserver 10.96.0.10\nsearch shop.svc.cluster.local\n",
                          [{"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]}],
                          "web-1.web.shop.svc.cluster.local")
    built = build_spec(pod({"name": "a", "image": "nginx"}, initContainers=[{"name": "i", "image": "busybox"}]),
                       netns=None, etc_files=etc, hidden=["/var/lib/netplane"])
    assert isinstance(built, PodRuntimeSpec)
    save(tmp_path, built)
    assert load(tmp_path) == built
    hosts = Path(etc["/etc/hosts"]).read_text()
    assert "10.16.0.9\tweb-1.web.shop.svc.cluster.local\tweb-1\n" in hosts
    assert "# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n" in hosts
    assert Path(etc["/etc/resolv.conf"]).read_text() == "nameserver 10.96.0.10\nsearch shop.svc.cluster.local\n"


@pytest.mark.parametrize(("text", "value"), [("128Mi", 128 * 2**20), ("1G", 10**9), ("250m", 0.25), ("2", 2)])
def test_quantity(text: str, value: float) -> None:
    assert quantity(text) == value


def test_quantity_rejects_garbage() -> None:
    with pytest.raises(SpecError):
        quantity("12 bananas")


def test_expand_leaves_unknown_references() -> None:
    assert expand("$(A)-$(B)-$$(A)", {"A": "1"}) == "1-$(B)-$(A)"


def test_cri_lines_full_partial_and_reading_back(tmp_path: Path) -> None:
    assert criolog.timestamp(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    path = tmp_path / "0.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    out, err = criolog.StreamLog(fd, "stdout"), criolog.StreamLog(fd, "stderr")
    out.feed(b"one\ntw")
    err.feed(b"bad\n")
    out.feed(b"o\n" + b"x" * (criolog.MAX_LINE + 10) + b"\nlast")
    out.close()
    err.close()
    os.close(fd)
    lines = path.read_text().splitlines()
    assert all(criolog.LINE.match(line) for line in lines)
    assert [line.split(" ", 3)[1:3] for line in lines] == [
        ["stdout", "F"], ["stderr", "F"], ["stdout", "F"], ["stdout", "P"], ["stdout", "F"], ["stdout", "F"]]
    assert [(e.stream, e.content) for e in criolog.read(str(path))] == [
        ("stdout", "one"), ("stderr", "bad"), ("stdout", "two"), ("stdout", "x" * (criolog.MAX_LINE + 10)),
        ("stdout", "last")]


def test_pod_limits_follow_the_kubelet_rules() -> None:
    def spec_of(*containers: dict, inits: tuple[dict, ...] = ()) -> PodRuntimeSpec:
        built = build_spec(pod(*containers, initContainers=list(inits)), netns=None)
        assert isinstance(built, PodRuntimeSpec)
        return built

    both = spec_of({"name": "a", "image": "nginx", "resources": {"limits": {"memory": "100Mi", "cpu": "1"}}},
                   {"name": "b", "image": "nginx", "resources": {"limits": {"memory": "50Mi", "cpu": "250m"},
                                                                 "requests": {"cpu": "100m"}}})
    limits = pod_limits(both)
    assert limits.memory == 150 * 2**20
    assert limits.cpu_shares == (1000 + 100) * 1024 // 1000
    assert limits.cpu_quota_us == 125_000
    one_unlimited = pod_limits(spec_of({"name": "a", "image": "nginx", "resources": {"limits": {"memory": "1Mi"}}},
                                       {"name": "b", "image": "nginx"}))
    assert (one_unlimited.memory, one_unlimited.cpu_quota_us) == (None, None)
    big_init = pod_limits(spec_of({"name": "a", "image": "nginx", "resources": {"limits": {"memory": "10Mi"}}},
                                  inits=({"name": "i", "image": "busybox",
                                          "resources": {"limits": {"memory": "30Mi"}}},)))
    assert big_init.memory == 30 * 2**20


def test_cgroup_paths_are_per_pod_under_the_parent(tmp_path: Path) -> None:
    for controller in ("memory", "cpu"):
        (tmp_path / controller).mkdir()
    cgroup = PodCgroup("netplane", "u-1", root=tmp_path)
    assert sorted(cgroup.paths) == ["cpu", "memory"]  # pids is not mounted in this fake root
    assert cgroup.paths["memory"] == tmp_path / "memory" / "netplane" / "u-1"


@pytest.mark.parametrize(("policy", "code", "init", "restart"), [
    ("Always", 0, False, True), ("Always", 1, False, True), ("OnFailure", 0, False, False),
    ("OnFailure", 3, False, True), ("Never", 3, False, False), ("Always", 0, True, False),
    ("Always", 1, True, True), ("Never", 1, True, False)])
def test_restart_policy(policy: str, code: int, init: bool, restart: bool) -> None:
    assert should_restart(policy, code, init) is restart


def test_backoff_doubles_to_the_cap_and_resets_after_a_long_run() -> None:
    assert next_backoff(10, 1, 10, 300, 600) == 20
    assert next_backoff(200, 1, 10, 300, 600) == 300
    assert next_backoff(300, 601, 10, 300, 600) == 10


def test_exit_codes_of_signals_are_128_plus_the_signal() -> None:
    assert exit_code(3 << 8) == 3
    assert exit_code(9) == 137  # raw wait status of a SIGKILLed process


def test_exec_argv_enters_the_chosen_container() -> None:
    status = {"containerStatuses": [{"name": "a", "pid": None}, {"name": "b", "pid": 4242}]}
    argv = client.exec_argv(status, ["ls", "/"], env={"X": "1"})
    assert argv[:11] == ["nsenter", "-t", "4242", "-n", "-m", "-u", "-i", "-p", "-r", "-w", "--"]
    assert argv[-5:] == ["env", "-i", "X=1", "ls", "/"]
    assert re.search(r"--bounding-set=-all,.*\+net_bind_service", " ".join(argv))
    with pytest.raises(LookupError):
        client.exec_argv(status, ["ls"], container="a")
