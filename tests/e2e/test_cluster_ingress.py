"""An Ingress serving traffic end to end on a real cluster (root only): the guide's IngressNginx instance
(netplane/ingress-nginx: informers → translate → render → the gateway engine in the controller pod), exposed
on fixed node ports, and requests from the external namespace.

One cluster and one instance for the module; the tests run in order and share the k-1 namespace, as the
guide's walkthrough does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.certificates import self_signed
from tests.conftest import ROOT, kubectl_binaries
from tests.e2e.clusters import NETPLANE, Cluster, running_cluster, running_pods, wait_until

pytestmark = [
    pytest.mark.e2e, pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and cgroups"),
    pytest.mark.skipif(not (shutil.which("nginx") and shutil.which("luajit") and shutil.which("curl")
                            and kubectl_binaries()),
                       reason="needs nginx with the lua module, luajit, curl and kubectl (make setup installs them)"),
]

NODE_CIDR = "172.31.248.0/24"
NODE_IP = "172.31.248.11"
HTTP_NODE_PORT = 30280
HTTPS_NODE_PORT = 30643
OPERATOR_NS = "ingress-nginx-operator"
GUIDE = ROOT / "tests/e2e/guide_examples"
SNIPPET = "nginx.ingress.kubernetes.io/configuration-snippet"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(NODE_CIDR) as made:
        yield made


def apply(cluster: Cluster, tmp_path: Path, *objects: dict[str, Any]) -> None:
    path = tmp_path / "objects.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    cluster.kubectl("apply", "-f", str(path))


def request(cluster: Cluster, host: str, path: str = "/") -> tuple[int, dict[str, str], str]:
    """(status, response headers with lower-case names, body) of a GET through the instance's node port."""
    done = subprocess.run([*NETPLANE, "external", "--data-dir", str(cluster.data_dir), "--", "curl", "-sS", "-i",
                           "-m", "3", "-H", f"Host: {host}", f"http://{NODE_IP}:{HTTP_NODE_PORT}{path}"],
                          capture_output=True, text=True, cwd=ROOT, timeout=30)
    if done.returncode != 0:
        return 0, {}, done.stderr
    return parse_answer(done.stdout)


def parse_answer(text: str) -> tuple[int, dict[str, str], str]:
    """(status, headers with lower-case names, body) of `curl -i` output."""
    head, _, body = text.replace("\r\n", "\n").partition("\n\n")
    lines = head.splitlines()
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def echoed(cluster: Cluster, host: str, path: str = "/") -> dict[str, Any] | None:
    status, headers, body = request(cluster, host, path)
    # The echo body's own "headers" are the request's as the backend saw them.
    return {**json.loads(body), "response_headers": headers} if status == 200 else None


def controller_pod(cluster: Cluster) -> str:
    pods = cluster.json("-n", OPERATOR_NS, "get", "pods", "-l", "app.kubernetes.io/component=controller")["items"]
    return str(pods[0]["metadata"]["name"])


def metrics_text(cluster: Cluster) -> str:
    return cluster.kubectl("-n", OPERATOR_NS, "exec", controller_pod(cluster), "--", "curl", "-s",
                           "http://127.0.0.1:10254/metrics").stdout


def metric(cluster: Cluster, name: str) -> float:
    text = metrics_text(cluster)
    found = re.search(rf"^{name}{{[^}}]*}} (\S+)$", text, re.M)
    assert found, text
    return float(found.group(1))


@pytest.fixture(scope="module")
def instance(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The guide's instance on fixed node ports, and the k-1 backend (netplane/echo) named nginx-service."""
    tmp = tmp_path_factory.mktemp("ingress")
    cluster.kubectl("create", "namespace", OPERATOR_NS)
    guide = yaml.safe_load((GUIDE / "ehc-ingress-nginx.yaml").read_text())
    guide["spec"]["controller"]["service"] = {"type": "NodePort",
                                              "nodePorts": {"http": HTTP_NODE_PORT, "https": HTTPS_NODE_PORT}}
    cluster.kubectl("create", "namespace", "k-1")
    labels = {"app": "echo"}
    apply(cluster, tmp, guide, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "echo", "namespace": "k-1"},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "echo", "image": "netplane/echo",
                                     "env": [{"name": "POD_NAME",
                                              "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                                     "ports": [{"name": "http", "containerPort": 8080}]}]}}}}, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx-service", "namespace": "k-1"},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    wait_until("the controller pod ready (nginx up, first sync pushed)", lambda: running_pods(
        cluster, OPERATOR_NS, "app.kubernetes.io/component=controller", 1), timeout=90)
    wait_until("the echo pod ready", lambda: running_pods(cluster, "k-1", "app=echo", 1), timeout=60)


def test_guide_ingress_serves_demo_local(cluster: Cluster, instance: None) -> None:
    cluster.kubectl("apply", "-f", str(GUIDE / "nginx-ingress.yaml"))
    answer = wait_until("demo.local through the instance", lambda: echoed(cluster, "demo.local", "/any/where?x=1"),
                        timeout=30)
    # rewrite-target: / (nginx's whole-path rewrite of the matched path), the query string kept.
    assert answer["path"] == "/?x=1" and answer["host"] == "demo.local", answer
    assert answer["pod"].startswith("echo-"), answer

    def published() -> Any:
        ingress = cluster.json("-n", "k-1", "get", "ingress", "nginx-ingress")
        return (ingress.get("status") or {}).get("loadBalancer", {}).get("ingress")

    addresses = wait_until("status.loadBalancer.ingress", published, timeout=20)
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", addresses[0]["ip"]), addresses
    assert metric(cluster, "nginx_ingress_controller_config_last_reload_successful") == 1
    # The engine's request series (ingress-nginx's names) and its JSON access log in the pod's log.
    requests = r'^nginx_ingress_controller_requests{[^}]*ingress="nginx-ingress"[^}]*status="200"[^}]*} (\S+)$'
    wait_until("the request counted", lambda: re.search(requests, metrics_text(cluster), re.M), timeout=10)

    def logged() -> list[dict[str, Any]]:
        out = cluster.kubectl("-n", OPERATOR_NS, "logs", controller_pod(cluster)).stdout
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        # Tries before the route was pushed answered 404 and are logged too.
        return [line for line in lines if line.get("uri") == "/any/where?x=1" and line.get("status") == 200]

    line = wait_until("the access log line", logged, timeout=10)[0]
    assert (line["host"], line["namespace"], line["ingress"], line["service"], line["route"]) == (
        "demo.local", "k-1", "nginx-ingress", "nginx-service", "ingress/k-1/nginx-ingress/0/0"), line


def test_request_level_routing(cluster: Cluster, instance: None, tmp_path: Path) -> None:
    def ingress(name: str, annotations: dict[str, str], paths: list[tuple[str, str]],
                host: str = "cases.local") -> dict[str, Any]:
        return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": name, "namespace": "k-1", "annotations": annotations},
                "spec": {"ingressClassName": "nginx", "rules": [{"host": host, "http": {"paths": [
                    {"path": path, "pathType": kind, "backend": {"service": {"name": "nginx-service",
                                                                             "port": {"number": 80}}}}
                    for path, kind in paths]}}]}}

    apply(cluster, tmp_path,
          ingress("exact", {SNIPPET: 'more_set_headers "X-Route: exact";'}, [("/x", "Exact")]),
          ingress("prefix", {SNIPPET: 'more_set_headers "X-Route: prefix";',
                             "nginx.ingress.kubernetes.io/enable-cors": "true",
                             "nginx.ingress.kubernetes.io/proxy-body-size": "8m"}, [("/x", "Prefix")]),
          ingress("rewrite", {"nginx.ingress.kubernetes.io/use-regex": "true",
                              "nginx.ingress.kubernetes.io/rewrite-target": "/v2/$2"},
                  [("/api(/|$)(.*)", "ImplementationSpecific")]))
    exact = wait_until("cases.local /x", lambda: echoed(cluster, "cases.local", "/x"), timeout=30)
    assert exact["response_headers"]["x-route"] == "exact" and exact["path"] == "/x", exact
    prefix = echoed(cluster, "cases.local", "/x/y")
    assert prefix is not None and prefix["response_headers"]["x-route"] == "prefix" and prefix["path"] == "/x/y", prefix
    assert prefix["response_headers"]["access-control-allow-origin"] == "*", prefix  # enable-cors, enforced
    status, _, _ = request(cluster, "cases.local", "/xy")  # element-wise Prefix: /xy is not under /x
    assert status == 404
    rewritten = echoed(cluster, "cases.local", "/api/items/7?q=1")
    assert rewritten is not None and rewritten["path"] == "/v2/items/7?q=1", rewritten
    # The first host is still served beside the second.
    assert (echoed(cluster, "demo.local") or {}).get("path") == "/"
    status, headers, _ = request(cluster, "unknown.local")
    assert status == 404 and headers.get("x-netplane-reason") == "no-route", headers

    def body_size_event() -> str | None:
        out = cluster.kubectl("-n", "k-1", "get", "events", "--field-selector", "involvedObject.name=prefix").stdout
        return out if "NotEnforced" in out and "proxy-body-size" in out else None

    wait_until("an event saying proxy-body-size is not enforced yet", body_size_event, timeout=20)


def test_endpoint_changes_need_no_reload(cluster: Cluster, instance: None) -> None:
    reloads = metric(cluster, "nginx_ingress_controller_success")
    cluster.kubectl("-n", "k-1", "scale", "deployment", "echo", "--replicas", "2")
    pods = {p["metadata"]["name"] for p in wait_until("two echo pods", lambda: running_pods(
        cluster, "k-1", "app=echo", 2), timeout=60)}

    def both_answer() -> set[str] | None:
        seen = {str((echoed(cluster, "demo.local") or {}).get("pod")) for _ in range(8)}
        return seen if seen == pods else None

    wait_until("both echo pods answering through the Ingress", both_answer, timeout=30)
    assert metric(cluster, "nginx_ingress_controller_success") == reloads


def test_https_with_certificates_chosen_by_sni(cluster: Cluster, instance: None, tmp_path: Path) -> None:
    """TLS hosts served with their own Secret's certificate (SNI), plain HTTP redirected to HTTPS with 308."""
    for host in ("secure.local", "other.local"):
        cert, key = self_signed(host)
        (tmp_path / f"{host}.crt").write_text(cert)
        (tmp_path / f"{host}.key").write_text(key)
        cluster.kubectl("-n", "k-1", "create", "secret", "tls", host, "--cert", str(tmp_path / f"{host}.crt"),
                        "--key", str(tmp_path / f"{host}.key"))
    backend = {"service": {"name": "nginx-service", "port": {"name": "http"}}}
    apply(cluster, tmp_path, {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "secure", "namespace": "k-1"},
        "spec": {"ingressClassName": "nginx",
                 "tls": [{"hosts": [host], "secretName": host} for host in ("secure.local", "other.local")],
                 "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
                                                              "backend": backend}]}}
                           for host in ("secure.local", "other.local")]}})

    def https(host: str) -> tuple[dict[str, str], dict[str, Any]] | None:
        done = subprocess.run([*NETPLANE, "external", "--data-dir", str(cluster.data_dir), "--", "curl", "-sS", "-i",
                               "-m", "3", "--cacert", str(tmp_path / f"{host}.crt"), "--resolve",
                               f"{host}:{HTTPS_NODE_PORT}:{NODE_IP}", f"https://{host}:{HTTPS_NODE_PORT}/tls?a=1"],
                              capture_output=True, text=True, cwd=ROOT, timeout=30)
        if done.returncode != 0:
            return None
        _, headers, body = parse_answer(done.stdout)
        return headers, json.loads(body)

    # curl verifies the chain against each host's own self-signed certificate: only the Secret of that
    # name can satisfy it, so a pass means the engine picked the certificate by SNI.
    headers, answer = wait_until("secure.local over HTTPS", lambda: https("secure.local"), timeout=30)
    assert answer["host"] == f"secure.local:{HTTPS_NODE_PORT}" and answer["path"] == "/tls?a=1", answer
    # ingress-nginx's default HSTS (ConfigMap hsts: true), on HTTPS answers only.
    assert headers["strict-transport-security"] == "max-age=31536000; includeSubDomains", headers
    other = https("other.local")
    assert other is not None and other[1]["host"] == f"other.local:{HTTPS_NODE_PORT}"
    status, headers, _ = request(cluster, "secure.local", "/page?x=1")
    assert status == 308 and headers["location"] == "https://secure.local/page?x=1", headers
    assert "strict-transport-security" not in headers


def test_a_host_network_instance_beside_the_first(cluster: Cluster, instance: None, tmp_path: Path) -> None:
    """A second instance of its own class listens on node2's own address (host network); each instance serves
    only the Ingresses of its class."""
    cluster.kubectl("label", "node", "node2", "edge=yes")
    apply(cluster, tmp_path, {
        "apiVersion": "ingress-nginx.alauda.io/v1", "kind": "IngressNginx",
        "metadata": {"name": "edge", "namespace": OPERATOR_NS},
        "spec": {"controller": {"hostNetwork": True, "nodeSelector": {"edge": "yes"},
                                "service": {"type": "ClusterIP"},
                                "ingressClassResource": {"name": "edge", "controllerValue": "netplane.io/edge"}}}}, {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "edge", "namespace": "k-1"},
        "spec": {"ingressClassName": "edge", "rules": [{"host": "edge.local", "http": {"paths": [
            {"path": "/", "pathType": "Prefix",
             "backend": {"service": {"name": "nginx-service", "port": {"number": 80}}}}]}}]}})
    node2 = next(a["address"] for n in cluster.json("get", "nodes")["items"] if n["metadata"]["name"] == "node2"
                 for a in n["status"]["addresses"] if a["type"] == "InternalIP")

    def through_node2() -> dict[str, Any] | None:
        done = subprocess.run([*NETPLANE, "external", "--data-dir", str(cluster.data_dir), "--", "curl", "-sS",
                               "-m", "3", "-H", "Host: edge.local", f"http://{node2}/hello"],
                              capture_output=True, text=True, cwd=ROOT, timeout=30)
        return json.loads(done.stdout) if done.returncode == 0 and done.stdout.startswith("{") else None

    answer = wait_until("edge.local on node2's port 80", through_node2, timeout=90)
    assert answer["path"] == "/hello" and answer["pod"].startswith("echo-"), answer
    # The first instance (class nginx) does not serve the edge class's host.
    assert request(cluster, "edge.local")[0] == 404


def test_deleting_the_ingress_stops_routing(cluster: Cluster, instance: None) -> None:
    cluster.kubectl("-n", "k-1", "delete", "ingress", "nginx-ingress")
    wait_until("demo.local gone", lambda: request(cluster, "demo.local")[0] == 404, timeout=20)
    assert echoed(cluster, "cases.local", "/x") is not None, "the other Ingresses keep serving"
