"""Deployments, ReplicaSets, StatefulSets, DaemonSets and the scheduler, driven with the real kubectl.

There are no node agents here: `FakeKubelet` registers two Ready nodes and marks pods bound to
them Running and Ready, so what kubectl shows depends on the controllers and the scheduler alone.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import Kubectl, Netplane
from tests.e2e.fake_kubelet import FakeKubelet
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def kubelet(netplane: Netplane) -> Iterator[FakeKubelet]:
    s = uuid.uuid4().hex[:5]
    with FakeKubelet(netplane.kubeconfig, {f"wl-{s}-a": {"labels": {"disk": "ssd"}}, f"wl-{s}-b": {}}) as k:
        yield k


@pytest.fixture
def nodes(kubelet: FakeKubelet) -> Iterator[list[str]]:
    kubelet.hold = False
    yield sorted(kubelet.nodes)
    kubelet.hold = False


def columns(kubectl: Kubectl, *args: str) -> dict[str, list[str]]:
    """NAME → the other columns of `kubectl get` (no headers)."""
    rows = [line.split() for line in kubectl("get", *args, "--no-headers").splitlines()]
    return {row[0]: row[1:] for row in rows}


def pod_nodes(kubectl: Kubectl, ns: str, selector: str) -> dict[str, str]:
    out = kubectl("get", "pods", "-n", ns, "-l", selector, "-o", "json")
    return {p["metadata"]["name"]: p["spec"].get("nodeName", "") for p in json.loads(out)["items"]}


def test_deployment_rolls_out_rolls_back_and_scales(kubectl: Kubectl, ns: str, nodes: list[str],
                                                    kubelet: FakeKubelet) -> None:
    kubelet.hold = True  # pods are bound but not started: nothing is ready yet
    kubectl("create", "deployment", "web", "--image=nginx", "--replicas=3", "-n", ns)
    eventually(lambda: len([n for n in pod_nodes(kubectl, ns, "app=web").values() if n]) == 3, what="3 bound")
    assert set(pod_nodes(kubectl, ns, "app=web").values()) == set(nodes)  # spread over both nodes
    assert columns(kubectl, "deploy", "-n", ns)["web"][:3] == ["0/3", "3", "0"]
    kubelet.hold = False
    eventually(lambda: columns(kubectl, "deploy", "-n", ns)["web"][:3] == ["3/3", "3", "3"], what="3/3")
    (rs1,) = columns(kubectl, "rs", "-n", ns)
    template_hash = kubectl("get", "rs", rs1, "-n", ns, "-o", "jsonpath={.metadata.labels.pod-template-hash}")
    assert rs1 == f"web-{template_hash}"
    owner = json.loads(kubectl("get", "rs", rs1, "-n", ns, "-o", "jsonpath={.metadata.ownerReferences}"))
    assert [(o["kind"], o["name"], o["controller"]) for o in owner] == [("Deployment", "web", True)]

    kubectl("set", "image", "deployment/web", "nginx=nginx:1.27", "-n", ns)
    status = kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    assert 'deployment "web" successfully rolled out' in status
    history = kubectl("rollout", "history", "deployment/web", "-n", ns).split()
    assert history[history.index("REVISION"):] == ["REVISION", "CHANGE-CAUSE", "1", "<none>", "2", "<none>"]
    sets = columns(kubectl, "rs", "-n", ns)
    assert sets[rs1][:3] == ["0", "0", "0"] and len(sets) == 2
    events = kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.kind=Deployment")
    assert f"Scaled down replica set {rs1} to 0 from 1" in events

    kubectl("rollout", "undo", "deployment/web", "-n", ns)
    kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    assert columns(kubectl, "rs", "-n", ns)[rs1][:3] == ["3", "3", "3"]  # the first ReplicaSet is back
    assert kubectl("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.template.spec.containers[0].image}") \
        == "nginx"
    assert kubectl("get", "rs", rs1, "-n", ns, "-o",
                   "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}") == "3"
    conditions = json.loads(kubectl("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.status.conditions}"))
    assert {c["type"]: c["reason"] for c in conditions} == {"Available": "MinimumReplicasAvailable",
                                                             "Progressing": "NewReplicaSetAvailable"}

    kubectl("scale", "deployment/web", "--replicas=0", "-n", ns)
    eventually(lambda: not pod_nodes(kubectl, ns, "app=web"), what="no pods")
    eventually(lambda: columns(kubectl, "deploy", "-n", ns)["web"][:3] == ["0/0", "0", "0"], what="0/0")
    kubectl("scale", "deployment/web", "--replicas=2", "-n", ns)
    eventually(lambda: columns(kubectl, "deploy", "-n", ns)["web"][:3] == ["2/2", "2", "2"], what="2/2")


def test_a_pod_no_node_accepts_stays_pending_and_says_why(kubectl: Kubectl, ns: str, nodes: list[str]) -> None:
    kubectl("taint", "node", nodes[0], "dedicated=db:NoSchedule")
    try:
        kubectl("run", "picky", "--image=nginx", "-n", ns, "--overrides",
                json.dumps({"spec": {"nodeSelector": {"disk": "nvme"}}}))
        expected = ("0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
                    "1 node(s) had untolerated taint {dedicated: db}.")
        eventually(lambda: expected in kubectl("describe", "pod", "picky", "-n", ns), what="FailedScheduling")
        described = kubectl("describe", "pod", "picky", "-n", ns)
        assert "FailedScheduling" in described and "Warning" in described
        phase, scheduled = kubectl("get", "pod", "picky", "-n", ns, "-o",
                                   "jsonpath={.status.phase} {.status.conditions[?(@.type=='PodScheduled')]"
                                   ".reason}").split()
        assert (phase, scheduled) == ("Pending", "Unschedulable")
        assert columns(kubectl, "pod", "picky", "-n", ns)["picky"][1] == "Pending"
    finally:
        kubectl("taint", "node", nodes[0], "dedicated-")
    kubectl("label", "node", nodes[1], "disk=nvme")  # now a node fits: the pod is scheduled there
    try:
        eventually(lambda: pod_nodes(kubectl, ns, "run=picky") == {"picky": nodes[1]}, what="scheduled")
    finally:
        kubectl("label", "node", nodes[1], "disk-")


def test_new_pods_avoid_a_cordoned_node(kubectl: Kubectl, ns: str, nodes: list[str]) -> None:
    kubectl("cordon", nodes[0])
    try:
        kubectl("create", "deployment", "web", "--image=nginx", "--replicas=4", "-n", ns)
        eventually(lambda: len([n for n in pod_nodes(kubectl, ns, "app=web").values() if n]) == 4, what="bound")
        assert set(pod_nodes(kubectl, ns, "app=web").values()) == {nodes[1]}
    finally:
        kubectl("uncordon", nodes[0])


STATEFULSET = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: nginx}]}
"""


def test_statefulset_pods_start_in_order_and_leave_from_the_top(kubectl: Kubectl, ns: str, nodes: list[str],
                                                                 kubelet: FakeKubelet) -> None:
    kubelet.hold = True
    kubectl("apply", "-n", ns, "-f", "-", input=STATEFULSET)
    eventually(lambda: pod_nodes(kubectl, ns, "app=db").get("web-0"), what="web-0 bound")
    time.sleep(1)
    assert list(pod_nodes(kubectl, ns, "app=db")) == ["web-0"]  # web-1 waits for web-0 to be Ready
    kubelet.hold = False
    eventually(lambda: columns(kubectl, "sts", "-n", ns)["web"][0] == "2/2", what="2/2")
    assert kubectl("get", "pod", "web-1", "-n", ns, "-o", "jsonpath={.spec.hostname}.{.spec.subdomain}") == "web-1.web"
    events = kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.kind=StatefulSet",
                     "--sort-by=.lastTimestamp")
    assert events.index("create Pod web-0 in StatefulSet web successful") < events.index(
        "create Pod web-1 in StatefulSet web successful")
    kubectl("scale", "sts", "web", "--replicas=3", "-n", ns)
    eventually(lambda: columns(kubectl, "sts", "-n", ns)["web"][0] == "3/3", what="3/3")
    kubectl("scale", "sts", "web", "--replicas=1", "-n", ns)
    eventually(lambda: list(pod_nodes(kubectl, ns, "app=db")) == ["web-0"], what="web-2 then web-1 gone")
    events = kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.kind=StatefulSet")
    assert events.index("delete Pod web-2") < events.index("delete Pod web-1")


DAEMONSET = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: busybox}]}
"""


def test_daemonset_runs_one_pod_per_matching_node(kubectl: Kubectl, ns: str, nodes: list[str]) -> None:
    kubectl("apply", "-n", ns, "-f", "-", input=DAEMONSET)
    eventually(lambda: sorted(pod_nodes(kubectl, ns, "app=agent").values()) == nodes, what="one per node")
    eventually(lambda: columns(kubectl, "ds", "-n", ns)["agent"][:5] == ["2", "2", "2", "2", "2"], what="2 ready")
    pod = json.loads(kubectl("get", "pods", "-n", ns, "-l", "app=agent", "-o", "json"))["items"][0]
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchFields"] == [
        {"key": "metadata.name", "operator": "In", "values": [pod["spec"]["nodeName"]]}]
    # Restricted to SSD nodes: the pod on the other node goes.
    kubectl("patch", "ds", "agent", "-n", ns, "-p", '{"spec":{"template":{"spec":{"nodeSelector":{"disk":"ssd"}}}}}')
    eventually(lambda: sorted(pod_nodes(kubectl, ns, "app=agent").values()) == [nodes[0]], what="ssd only")
    kubectl("rollout", "status", "ds/agent", "-n", ns, "--timeout=60s")
