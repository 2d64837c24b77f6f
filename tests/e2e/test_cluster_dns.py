"""DNS-1..3 on a real cluster: pods resolve Services by name through the cluster DNS (the coredns
plugin's pods behind kube-dns), host aliases come and go, and NodeLocal DNSCache answers new pods.

The topology brings its own "Internet" resolver: tests/e2e/upstream_dns.py in the external
namespace, which the coredns plugin is told to forward to.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, kubectl_binaries
from tests.e2e.clusters import Cluster, running_cluster, running_pods, wait_until

pytestmark = [
    pytest.mark.e2e, pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and cgroups"),
    pytest.mark.skipif(not (shutil.which("nginx") and shutil.which("busybox") and kubectl_binaries()),
                       reason="needs nginx, busybox and kubectl (make setup installs them)"),
]

NODE_CIDR = "172.31.252.0/24"
UPSTREAM = "172.31.252.254"  # the external namespace
GUIDE = ROOT / "tests/e2e/guide_examples"


@dataclass
class Dns:
    cluster: Cluster
    ns: str
    upstream: subprocess.Popen[str]

    def sh(self, pod: str, script: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl("-n", self.ns, "exec", pod, "--", "sh", "-c", script, check=check)


def _plugin_ready(cluster: Cluster, name: str) -> bool:
    got = cluster.kubectl("get", "clusterplugin", name, "-o", "json", check=False)
    if got.returncode != 0:
        return False
    conditions = json.loads(got.stdout).get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


@pytest.fixture(scope="module")
def dns() -> Iterator[Dns]:
    with running_cluster(NODE_CIDR) as cluster:
        upstream = subprocess.Popen(["ip", "netns", "exec", cluster.netns("ext"), sys.executable,
                                     str(ROOT / "tests/e2e/upstream_dns.py")], stdout=subprocess.PIPE, text=True)
        try:
            assert upstream.stdout is not None and "ready" in upstream.stdout.readline()
            cluster.kubectl("patch", "clusterplugin", "coredns", "--type", "merge",
                            "-p", json.dumps({"spec": {"config": {"upstreams": [UPSTREAM]}}}))
            wait_until("the coredns plugin Ready", lambda: _plugin_ready(cluster, "coredns"), timeout=120)
            ns = f"dns-{uuid.uuid4().hex[:6]}"
            cluster.kubectl("create", "namespace", ns)
            cluster.kubectl("-n", ns, "apply", "-f", str(GUIDE / "access-internal-demo.yaml"),
                            "-f", str(GUIDE / "headless-service.yaml"))
            cluster.kubectl("apply", "-f", str(GUIDE / "external-service.yaml"))
            cluster.kubectl("-n", ns, "run", "client", "--image=busybox:1.36", "--restart=Never", "--",
                            "sleep", "3600")
            wait_until("two nginx pods", lambda: running_pods(cluster, ns, "app=nginx", 2), timeout=90)
            wait_until("the client pod", lambda: running_pods(cluster, ns, "run=client", 1), timeout=60)
            yield Dns(cluster, ns, upstream)
        finally:
            upstream.terminate()
            upstream.wait(10)


def test_pods_get_the_cluster_resolv_conf(dns: Dns) -> None:
    resolv = dns.sh("client", "cat /etc/resolv.conf").stdout
    assert resolv == (f"nameserver 10.96.0.10\nsearch {dns.ns}.svc.cluster.local svc.cluster.local "
                      "cluster.local\noptions ndots:5\n"), resolv


def test_wget_by_service_name(dns: Dns) -> None:
    for name in ("nginx-clusterip", f"nginx-clusterip.{dns.ns}.svc.cluster.local"):
        page = dns.sh("client", f"wget -qO- http://{name}").stdout
        assert "Welcome to nginx!" in page, (name, page)


def test_external_name_resolves_to_its_target(dns: Dns) -> None:
    out = dns.sh("client", "nslookup my-external-service.default.svc.cluster.local").stdout
    assert "canonical name = example.com" in out, out
    assert "192.0.2.80" in out, out  # the target chased through the upstream resolver


def test_headless_service_lists_each_ready_pod(dns: Dns) -> None:
    pods = running_pods(dns.cluster, dns.ns, "app=nginx", 2) or []
    out = dns.sh("client", f"nslookup nginx-headless.{dns.ns}.svc.cluster.local").stdout
    for pod in pods:
        assert pod["status"]["podIP"] in out, out


STATEFUL = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: nginx, image: nginx:1.25, ports: [{containerPort: 80, name: http}]}]
"""


def test_statefulset_pods_have_stable_names(dns: Dns, tmp_path: Path) -> None:
    manifest = tmp_path / "web.yaml"
    manifest.write_text(STATEFUL)
    dns.cluster.kubectl("-n", dns.ns, "apply", "-f", str(manifest))
    pods = wait_until("two web pods", lambda: running_pods(dns.cluster, dns.ns, "app=web", 2), timeout=90)
    for pod in pods:
        name = f"{pod['metadata']['name']}.web.{dns.ns}.svc.cluster.local"
        out = wait_until(f"{name} to resolve", lambda name=name: dns.sh("client", f"nslookup {name}",
                                                                         check=False).stdout, timeout=20)
        assert pod["status"]["podIP"] in out, out
    page = dns.sh("client", f"wget -qO- http://web-1.web.{dns.ns}.svc.cluster.local").stdout
    assert "Welcome to nginx!" in page, page
    hosts = dns.cluster.kubectl("-n", dns.ns, "exec", "web-0", "--", "cat", "/etc/hosts").stdout
    assert f"web-0.web.{dns.ns}.svc.cluster.local\tweb-0" in hosts, hosts


def test_srv_and_ptr(dns: Dns) -> None:
    srv = dns.sh("client", f"nslookup -type=srv _http._tcp.nginx-headless.{dns.ns}.svc.cluster.local").stdout
    assert f"nginx-headless.{dns.ns}.svc.cluster.local" in srv and " 80 " in srv, srv
    service_ip = dns.cluster.json("-n", dns.ns, "get", "service", "nginx-clusterip")["spec"]["clusterIP"]
    ptr = dns.sh("client", f"nslookup {service_ip}").stdout
    assert f"nginx-clusterip.{dns.ns}.svc.cluster.local" in ptr, ptr


def test_unknown_names_are_nxdomain_and_outside_names_are_forwarded(dns: Dns) -> None:
    missing = dns.sh("client", f"nslookup nope.{dns.ns}.svc.cluster.local", check=False)
    assert missing.returncode != 0 and "NXDOMAIN" in missing.stdout + missing.stderr, missing
    world = dns.sh("client", "nslookup www.example.com").stdout
    assert "192.0.2.81" in world, world


def test_host_aliases_come_and_go(dns: Dns) -> None:
    patch = {"spec": {"config": {"upstreams": [UPSTREAM], "hostAliases": [
        {"ip": "10.1.2.3", "domains": ["example.com", "test.example.com"]}]}}}
    dns.cluster.kubectl("patch", "clusterplugin", "coredns", "--type", "merge", "-p", json.dumps(patch))
    wait_until("the alias to resolve", lambda: "10.1.2.3" in dns.sh(
        "client", "nslookup test.example.com", check=False).stdout, timeout=30)
    dns.cluster.kubectl("patch", "clusterplugin", "coredns", "--type", "json",
                        "-p", '[{"op": "remove", "path": "/spec/config/hostAliases"}]')
    wait_until("the alias to disappear", lambda: "10.1.2.3" not in dns.sh(
        "client", "nslookup test.example.com", check=False).stdout, timeout=30)


def test_nodelocaldns_serves_new_pods_only(dns: Dns) -> None:
    cluster, ns = dns.cluster, dns.ns
    manifest = ROOT / "tests/e2e/manifests/nodelocaldns.yaml"
    cluster.kubectl("apply", "-f", str(manifest))
    try:
        wait_until("the nodelocaldns plugin Ready", lambda: _plugin_ready(cluster, "nodelocaldns"), timeout=90)
        cluster.kubectl("-n", ns, "run", "late", "--image=busybox:1.36", "--restart=Never", "--", "sleep", "3600")
        wait_until("the new pod", lambda: running_pods(cluster, ns, "run=late", 1), timeout=60)
        resolv = dns.sh("late", "cat /etc/resolv.conf").stdout
        assert resolv.startswith("nameserver 169.254.20.10\n"), (
            resolv, cluster.kubectl("get", "clusterplugin", "nodelocaldns", "-o", "yaml").stdout,
            cluster.kubectl("-n", ns, "get", "pod", "late", "-o", "yaml").stdout, cluster.log_tail(150))
        # Three lookups in one exec, milliseconds apart: separate execs on a loaded machine can take longer than
        # the answer's TTL, and then the cache never gets a hit.
        pages = dns.sh("late", "for i in 1 2 3; do wget -qO- http://nginx-clusterip; done").stdout
        assert pages.count("<h1>Welcome to nginx!</h1>") == 3, pages
        # The old pod still uses (and reaches) the cluster DNS.
        assert dns.sh("client", "cat /etc/resolv.conf").stdout.startswith("nameserver 10.96.0.10\n")
        assert "Welcome to nginx!" in dns.sh("client", "wget -qO- http://nginx-clusterip").stdout
        node = cluster.json("-n", ns, "get", "pod", "late")["status"]["hostIP"]
        metrics = dns.sh("late", f"wget -qO- http://169.254.20.10:9253/metrics || "
                                 f"wget -qO- http://{node}:9253/metrics", check=False).stdout
        hits = [line for line in metrics.splitlines() if line.startswith("coredns_cache_hits_total")]
        assert hits and any(float(line.rsplit(" ", 1)[1]) > 0 for line in hits), metrics[-2000:]
    finally:
        cluster.kubectl("delete", "clusterplugin", "nodelocaldns")
    wait_until("the caches to go", lambda: not cluster.json("-n", "kube-system", "get", "pods",
                                                            "-l", "k8s-app=node-local-dns")["items"], timeout=60)
    cluster.kubectl("-n", ns, "run", "after", "--image=busybox:1.36", "--restart=Never", "--", "sleep", "3600")
    wait_until("a pod after uninstall", lambda: running_pods(cluster, ns, "run=after", 1), timeout=60)
    assert dns.sh("after", "cat /etc/resolv.conf").stdout.startswith("nameserver 10.96.0.10\n")
    assert "Welcome to nginx!" in dns.sh("after", "wget -qO- http://nginx-clusterip").stdout
