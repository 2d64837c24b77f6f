"""Table printing: the columns and cells a v1.32 API server returns for ``kubectl get``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from netplane.api import printers

pytestmark = pytest.mark.unit

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
HOUR = 3600
DAY = 24 * HOUR


def ts(seconds_ago: float) -> str:
    moment = NOW - timedelta(seconds=seconds_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{moment.microsecond:06d}Z" if moment.microsecond else "Z"
    )


def meta(name: str, age: float = 300, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "creationTimestamp": ts(age), **extra}


def running(name: str, restarts: int = 0, ready: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "ready": ready,
        "restartCount": restarts,
        "state": {"running": {"startedAt": ts(60)}},
        **extra,
    }


# --------------------------------------------------------------------------- human_duration


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-2, "<invalid>"),
        (-1.5, "0s"),
        (-1, "0s"),
        (0, "0s"),
        (0.9, "0s"),
        (59, "59s"),
        (119.9, "119s"),
        (120, "2m"),
        (123, "2m3s"),
        (300, "5m"),
        (599, "9m59s"),
        (600, "10m"),
        (10799, "179m"),
        (3 * HOUR, "3h"),
        (3 * HOUR + 240, "3h4m"),
        (8 * HOUR - 1, "7h59m"),
        (8 * HOUR, "8h"),
        (48 * HOUR - 1, "47h"),
        (48 * HOUR, "2d"),
        (51 * HOUR, "2d3h"),
        (8 * DAY - 1, "7d23h"),
        (8 * DAY, "8d"),
        (45 * DAY, "45d"),
        (730 * DAY - 1, "729d"),
        (730 * DAY, "2y"),
        (733 * DAY, "2y3d"),
        (8 * 365 * DAY - 1, "7y364d"),
        (8 * 365 * DAY, "8y"),
        (9 * 365 * DAY + 5 * DAY, "9y"),
    ],
)
def test_human_duration(seconds: float, expected: str) -> None:
    assert printers.human_duration(seconds) == expected


# --------------------------------------------------------------------------- built-in kinds

POD_INIT = {
    "metadata": meta("migrate", 700),
    "spec": {"initContainers": [{"name": "wait-db"}, {"name": "schema"}], "containers": [{"name": "app"}]},
    "status": {
        "phase": "Pending",
        "conditions": [{"type": "Initialized", "status": "False"}],
        "initContainerStatuses": [
            {
                "name": "wait-db",
                "restartCount": 1,
                "state": {"terminated": {"exitCode": 0}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": ts(600)}},
            },
            {"name": "schema", "restartCount": 0, "state": {"running": {}}},
        ],
        "containerStatuses": [
            {
                "name": "app",
                "restartCount": 0,
                "ready": False,
                "state": {"waiting": {"reason": "PodInitializing"}},
            }
        ],
    },
}

CASES: list[tuple[str, str, str, dict[str, Any], list[Any]]] = [
    (
        "namespace",
        "",
        "Namespace",
        {"metadata": meta("default", 45 * DAY), "status": {"phase": "Active"}},
        ["default", "Active", "45d"],
    ),
    (
        "node ready cordoned",
        "",
        "Node",
        {
            "metadata": meta(
                "cp-1",
                51 * HOUR,
                labels={
                    "node-role.kubernetes.io/control-plane": "",
                    "kubernetes.io/role": "worker",
                    "zone": "a",
                },
            ),
            "spec": {"unschedulable": True},
            "status": {
                "conditions": [
                    {"type": "MemoryPressure", "status": "False"},
                    {"type": "Ready", "status": "True"},
                ],
                "addresses": [
                    {"type": "Hostname", "address": "cp-1"},
                    {"type": "InternalIP", "address": "10.0.0.5"},
                ],
                "nodeInfo": {
                    "kubeletVersion": "v1.32.0",
                    "osImage": "Ubuntu 24.04 LTS",
                    "kernelVersion": "6.8.0",
                    "containerRuntimeVersion": "containerd://1.7.24",
                },
            },
        },
        [
            "cp-1",
            "Ready,SchedulingDisabled",
            "control-plane,worker",
            "2d3h",
            "v1.32.0",
            "10.0.0.5",
            "<none>",
            "Ubuntu 24.04 LTS",
            "6.8.0",
            "containerd://1.7.24",
        ],
    ),
    (
        "node bare",
        "",
        "Node",
        {
            "metadata": meta("n2", 30),
            "status": {
                "conditions": [{"type": "Ready", "status": "Unknown"}],
                "addresses": [{"type": "ExternalIP", "address": "203.0.113.9"}],
            },
        },
        [
            "n2",
            "NotReady",
            "<none>",
            "30s",
            "",
            "<none>",
            "203.0.113.9",
            "<unknown>",
            "<unknown>",
            "<unknown>",
        ],
    ),
    (
        "pod running",
        "",
        "Pod",
        {
            "metadata": meta("web", 300),
            "spec": {"nodeName": "node1", "containers": [{"name": "nginx"}]},
            "status": {
                "phase": "Running",
                "podIPs": [{"ip": "10.244.0.5"}, {"ip": "fd00::5"}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [running("nginx")],
            },
        },
        ["web", "1/1", "Running", "0", "5m", "10.244.0.5", "node1", "<none>", "<none>"],
    ),
    (
        "pod restarted",
        "",
        "Pod",
        {
            "metadata": meta("api", 2 * DAY),
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {
                "phase": "Running",
                "containerStatuses": [
                    running(
                        "a",
                        restarts=5,
                        ready=False,
                        lastState={"terminated": {"exitCode": 137, "finishedAt": ts(183)}},
                    ),
                    running(
                        "b", restarts=1, lastState={"terminated": {"exitCode": 1, "finishedAt": ts(4000)}}
                    ),
                ],
            },
        },
        ["api", "1/2", "Running", "6 (3m3s ago)", "2d", "<none>", "<none>", "<none>", "<none>"],
    ),
    (
        "pod crashloop",
        "",
        "Pod",
        {
            "metadata": meta("crash", 120),
            "spec": {"containers": [{"name": "c"}]},
            "status": {
                "phase": "Running",
                "containerStatuses": [
                    {
                        "name": "c",
                        "ready": False,
                        "restartCount": 2,
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                        "lastState": {"terminated": {"exitCode": 1, "finishedAt": ts(45)}},
                    }
                ],
            },
        },
        ["crash", "0/1", "CrashLoopBackOff", "2 (45s ago)", "2m", "<none>", "<none>", "<none>", "<none>"],
    ),
    (
        "pod initialising",
        "",
        "Pod",
        POD_INIT,
        ["migrate", "0/1", "Init:1/2", "1 (10m ago)", "11m", "<none>", "<none>", "<none>", "<none>"],
    ),
    (
        "pod init failed",
        "",
        "Pod",
        {
            "metadata": meta("bad-init", 60),
            "spec": {"initContainers": [{"name": "i"}], "containers": [{"name": "c"}]},
            "status": {
                "phase": "Pending",
                "initContainerStatuses": [
                    {"name": "i", "restartCount": 0, "state": {"terminated": {"exitCode": 3}}}
                ],
            },
        },
        ["bad-init", "0/1", "Init:ExitCode:3", "0", "60s", "<none>", "<none>", "<none>", "<none>"],
    ),
    (
        "pod with sidecar",
        "",
        "Pod",
        {
            "metadata": meta("mesh", 90),
            "spec": {
                "initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
                "containers": [{"name": "app"}],
                "readinessGates": [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}],
            },
            "status": {
                "phase": "Running",
                "conditions": [
                    {"type": "Initialized", "status": "True"},
                    {"type": "Ready", "status": "True"},
                    {"type": "example.com/lb", "status": "True"},
                    {"type": "example.com/dns", "status": "False"},
                ],
                "nominatedNodeName": "node2",
                "initContainerStatuses": [
                    {
                        "name": "proxy",
                        "started": True,
                        "ready": True,
                        "restartCount": 0,
                        "state": {"running": {}},
                    }
                ],
                "containerStatuses": [running("app")],
            },
        },
        ["mesh", "2/2", "Running", "0", "90s", "<none>", "<none>", "node2", "1/2"],
    ),
    (
        "pod completed",
        "",
        "Pod",
        {
            "metadata": meta("job-x", 3 * HOUR),
            "spec": {"containers": [{"name": "c"}]},
            "status": {
                "phase": "Succeeded",
                "containerStatuses": [
                    {
                        "name": "c",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                    }
                ],
            },
        },
        ["job-x", "0/1", "Completed", "0", "3h", "<none>", "<none>", "<none>", "<none>"],
    ),
    (
        "pod killed by signal",
        "",
        "Pod",
        {
            "metadata": meta("sig", 300),
            "spec": {"containers": [{"name": "c"}]},
            "status": {
                "phase": "Failed",
                "containerStatuses": [
                    {
                        "name": "c",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"terminated": {"exitCode": 0, "signal": 9}},
                    }
                ],
            },
        },
        ["sig", "0/1", "Signal:9", "0", "5m", "<none>", "<none>", "<none>", "<none>"],
    ),
    (
        "pod terminating",
        "",
        "Pod",
        {
            "metadata": meta("old", 600, deletionTimestamp=ts(5)),
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Running", "podIP": "10.1.1.1", "containerStatuses": [running("c")]},
        },
        ["old", "1/1", "Terminating", "0", "10m", "10.1.1.1", "<none>", "<none>", "<none>"],
    ),
    (
        "pod gated",
        "",
        "Pod",
        {
            "metadata": meta("gated", 10),
            "spec": {"containers": [{"name": "c"}]},
            "status": {
                "phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
            },
        },
        ["gated", "0/1", "SchedulingGated", "0", "10s", "<none>", "<none>", "<none>", "<none>"],
    ),
    (
        "service cluster ip",
        "",
        "Service",
        {
            "metadata": meta("kube-dns", 45 * DAY),
            "spec": {
                "type": "ClusterIP",
                "clusterIP": "10.96.0.10",
                "clusterIPs": ["10.96.0.10"],
                "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "tcp", "port": 53}],
                "selector": {"k8s-app": "kube-dns", "a": "b"},
            },
        },
        ["kube-dns", "ClusterIP", "10.96.0.10", "<none>", "53/UDP,53/TCP", "45d", "a=b,k8s-app=kube-dns"],
    ),
    (
        "service lb pending",
        "",
        "Service",
        {
            "metadata": meta("web", 300),
            "spec": {
                "type": "LoadBalancer",
                "clusterIPs": ["10.96.1.1"],
                "ports": [
                    {"port": 80, "nodePort": 30080, "protocol": "TCP"},
                    {"port": 443, "protocol": "TCP"},
                ],
            },
        },
        ["web", "LoadBalancer", "10.96.1.1", "<pending>", "80:30080/TCP,443/TCP", "5m", "<none>"],
    ),
    (
        "service lb ready",
        "",
        "Service",
        {
            "metadata": meta("edge", 300),
            "spec": {
                "type": "LoadBalancer",
                "clusterIPs": ["10.96.1.2"],
                "externalIPs": ["198.51.100.1"],
                "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}],
            },
            "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}, {"ip": "203.0.113.10"}]}},
        },
        [
            "edge",
            "LoadBalancer",
            "10.96.1.2",
            "203.0.113.10,lb.example.com,198.51.100.1",
            "443:31443/TCP",
            "5m",
            "<none>",
        ],
    ),
    (
        "service external name",
        "",
        "Service",
        {"metadata": meta("db", 300), "spec": {"type": "ExternalName", "externalName": "db.example.com"}},
        ["db", "ExternalName", "<none>", "db.example.com", "<none>", "5m", "<none>"],
    ),
    (
        "service headless nodeport ips",
        "",
        "Service",
        {
            "metadata": meta("hl", 300),
            "spec": {
                "type": "NodePort",
                "clusterIPs": ["None"],
                "externalIPs": ["1.2.3.4", "5.6.7.8"],
                "ports": [{"port": 8080, "nodePort": 30001, "protocol": "SCTP"}],
            },
        },
        ["hl", "NodePort", "None", "1.2.3.4,5.6.7.8", "8080:30001/SCTP", "5m", "<none>"],
    ),
    (
        "endpoints",
        "",
        "Endpoints",
        {
            "metadata": meta("web", 300),
            "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}]}],
        },
        ["web", "10.0.0.1:80,10.0.0.2:80", "5m"],
    ),
    (
        "endpoints more",
        "",
        "Endpoints",
        {
            "metadata": meta("big", 300),
            "subsets": [
                {"addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 4)], "ports": [{"port": 80}]},
                {"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}, {"port": 443}]},
            ],
        },
        ["big", "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more...", "5m"],
    ),
    (
        "endpoints headless and empty subsets",
        "",
        "Endpoints",
        {
            "metadata": meta("hl", 300),
            "subsets": [{"addresses": [{"ip": "fd00::2"}]}, {"notReadyAddresses": [{"ip": "10.0.0.9"}]}],
        },
        ["hl", "fd00::2", "5m"],
    ),
    ("endpoints none", "", "Endpoints", {"metadata": meta("empty", 300)}, ["empty", "<none>", "5m"]),
    (
        "secret",
        "",
        "Secret",
        {
            "metadata": meta("tls", 300),
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": "eA==", "tls.key": "eQ=="},
        },
        ["tls", "kubernetes.io/tls", 2, "5m"],
    ),
    (
        "configmap",
        "",
        "ConfigMap",
        {"metadata": meta("cfg", 300), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}},
        ["cfg", 3, "5m"],
    ),
    (
        "service account",
        "",
        "ServiceAccount",
        {"metadata": meta("builder", 300), "secrets": [{"name": "builder-token"}]},
        ["builder", 1, "5m"],
    ),
    (
        "event core",
        "",
        "Event",
        {
            "metadata": meta("web.17f2a", 3 * HOUR),
            "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{web}"},
            "reason": "Pulled",
            "message": 'Successfully pulled image "nginx"\n',
            "type": "Normal",
            "source": {"component": "kubelet", "host": "node1"},
            "firstTimestamp": ts(3 * HOUR),
            "lastTimestamp": ts(90),
            "count": 4,
        },
        [
            "90s",
            "Normal",
            "Pulled",
            "pod/web",
            "spec.containers{web}",
            "kubelet, node1",
            'Successfully pulled image "nginx"',
            "3h",
            4,
            "web.17f2a",
        ],
    ),
    (
        "event core series",
        "",
        "Event",
        {
            "metadata": meta("ev2", 600),
            "involvedObject": {"kind": "Node"},
            "reason": "Rebooted",
            "type": "Warning",
            "message": "x",
            "eventTime": "2025-01-01T11:50:00.000000Z",
            "reportingController": "kubelet",
            "reportingInstance": "node1",
            "series": {"count": 7, "lastObservedTime": "2025-01-01T11:59:50.000000Z"},
        },
        ["10s", "Warning", "Rebooted", "node", "", "kubelet, node1", "x", "10m", 7, "ev2"],
    ),
    (
        "event events.k8s.io",
        "events.k8s.io",
        "Event",
        {
            "metadata": meta("sync.1", 30),
            "eventTime": "2025-01-01T11:59:30.123456Z",
            "reportingController": "netplane-controller",
            "reportingInstance": "",
            "regarding": {"kind": "Service", "name": "web"},
            "note": "  Synced  ",
            "reason": "Sync",
            "type": "Normal",
            "action": "Sync",
        },
        ["29s", "Normal", "Sync", "service/web", "", "netplane-controller", "Synced", "29s", 1, "sync.1"],
    ),
    (
        "event events.k8s.io deprecated fields",
        "events.k8s.io",
        "Event",
        {
            "metadata": meta("old.1", 600),
            "regarding": {"kind": "Pod", "name": "p", "fieldPath": "spec"},
            "note": "n",
            "reason": "R",
            "type": "Normal",
            "deprecatedSource": {"component": "sched"},
            "deprecatedFirstTimestamp": ts(600),
            "deprecatedLastTimestamp": ts(60),
            "deprecatedCount": 3,
        },
        ["60s", "Normal", "R", "pod/p", "spec", "sched", "n", "10m", 3, "old.1"],
    ),
    (
        "deployment",
        "apps",
        "Deployment",
        {
            "metadata": meta("web", 300),
            "spec": {
                "replicas": 3,
                "selector": {
                    "matchLabels": {"app": "web"},
                    "matchExpressions": [
                        {"key": "tier", "operator": "In", "values": ["frontend", "backend"]}
                    ],
                },
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "nginx", "image": "nginx:1.27"},
                            {"name": "sidecar", "image": "busybox:1.36"},
                        ]
                    }
                },
            },
            "status": {"replicas": 3, "readyReplicas": 1, "updatedReplicas": 3, "availableReplicas": 1},
        },
        [
            "web",
            "1/3",
            3,
            1,
            "5m",
            "nginx,sidecar",
            "nginx:1.27,busybox:1.36",
            "app=web,tier in (backend,frontend)",
        ],
    ),
    (
        "deployment fresh",
        "apps",
        "Deployment",
        {
            "metadata": meta("new", 5),
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
        },
        ["new", "0/1", 0, 0, "5s", "c", "i", ""],
    ),
    (
        "replicaset",
        "apps",
        "ReplicaSet",
        {
            "metadata": meta("web-5d8f", 300),
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"pod-template-hash": "5d8f", "app": "web"}},
                "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}},
            },
            "status": {"replicas": 3, "readyReplicas": 2},
        },
        ["web-5d8f", 3, 3, 2, "5m", "nginx", "nginx:1.27", "app=web,pod-template-hash=5d8f"],
    ),
    (
        "statefulset",
        "apps",
        "StatefulSet",
        {
            "metadata": meta("db", 3 * DAY),
            "spec": {
                "replicas": 3,
                "template": {"spec": {"containers": [{"name": "pg", "image": "postgres:17"}]}},
            },
            "status": {"readyReplicas": 2},
        },
        ["db", "2/3", "3d", "pg", "postgres:17"],
    ),
    (
        "daemonset",
        "apps",
        "DaemonSet",
        {
            "metadata": meta("agent", 300),
            "spec": {
                "selector": {"matchLabels": {"name": "agent"}},
                "template": {
                    "spec": {
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                        "containers": [{"name": "agent", "image": "agent:2"}],
                    }
                },
            },
            "status": {
                "desiredNumberScheduled": 3,
                "currentNumberScheduled": 3,
                "numberReady": 2,
                "updatedNumberScheduled": 3,
                "numberAvailable": 2,
            },
        },
        ["agent", 3, 3, 2, 3, 2, "kubernetes.io/os=linux", "5m", "agent", "agent:2", "name=agent"],
    ),
    (
        "daemonset empty",
        "apps",
        "DaemonSet",
        {"metadata": meta("d", 300), "spec": {"template": {"spec": {"containers": []}}}},
        ["d", 0, 0, 0, 0, 0, "<none>", "5m", "", "", "<none>"],
    ),
    (
        "job complete",
        "batch",
        "Job",
        {
            "metadata": meta("pi", 300),
            "spec": {
                "completions": 1,
                "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}},
                "template": {"spec": {"containers": [{"name": "pi", "image": "perl:5.34"}]}},
            },
            "status": {
                "succeeded": 1,
                "startTime": ts(200),
                "completionTime": ts(150),
                "conditions": [
                    {"type": "SuccessCriteriaMet", "status": "True"},
                    {"type": "Complete", "status": "True"},
                ],
            },
        },
        ["pi", "Complete", "1/1", "50s", "5m", "pi", "perl:5.34", "batch.kubernetes.io/controller-uid=abc"],
    ),
    (
        "job running parallel",
        "batch",
        "Job",
        {
            "metadata": meta("work", 300),
            "spec": {"parallelism": 3, "template": {"spec": {"containers": [{"name": "w", "image": "w:1"}]}}},
            "status": {"startTime": ts(130)},
        },
        ["work", "Running", "0/1 of 3", "2m10s", "5m", "w", "w:1", "<none>"],
    ),
    (
        "job failed",
        "batch",
        "Job",
        {
            "metadata": meta("f", 300),
            "spec": {"completions": 2, "template": {"spec": {"containers": []}}},
            "status": {
                "failed": 1,
                "conditions": [{"type": "Complete", "status": "False"}, {"type": "Failed", "status": "True"}],
            },
        },
        ["f", "Failed", "0/2", "", "5m", "", "", "<none>"],
    ),
    (
        "endpointslice",
        "discovery.k8s.io",
        "EndpointSlice",
        {
            "metadata": meta("web-abc12", 300),
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "metrics"}, {}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}],
        },
        ["web-abc12", "IPv4", "80,metrics,*", "10.0.0.1,10.0.0.2", "5m"],
    ),
    (
        "endpointslice many",
        "discovery.k8s.io",
        "EndpointSlice",
        {
            "metadata": meta("big-1", 300),
            "addressType": "IPv6",
            "ports": [{"port": p} for p in (80, 81, 82, 83)],
            "endpoints": [{"addresses": [f"fd00::{i}"]} for i in range(1, 6)],
        },
        ["big-1", "IPv6", "80,81,82 + 1 more...", "fd00::1,fd00::2,fd00::3 + 2 more...", "5m"],
    ),
    (
        "endpointslice empty",
        "discovery.k8s.io",
        "EndpointSlice",
        {"metadata": meta("e", 300), "addressType": "IPv4", "endpoints": []},
        ["e", "IPv4", "<unset>", "<unset>", "5m"],
    ),
    (
        "ingress",
        "networking.k8s.io",
        "Ingress",
        {
            "metadata": meta("web", 300),
            "spec": {
                "ingressClassName": "nginx",
                "tls": [{"hosts": ["foo.example.com"]}],
                "rules": [{"host": "foo.example.com"}, {"host": "bar.example.com"}],
            },
            "status": {"loadBalancer": {"ingress": [{"ip": "192.168.49.2"}]}},
        },
        ["web", "nginx", "foo.example.com,bar.example.com", "192.168.49.2", "80, 443", "5m"],
    ),
    (
        "ingress catch-all",
        "networking.k8s.io",
        "Ingress",
        {"metadata": meta("all", 300), "spec": {"defaultBackend": {"service": {"name": "s"}}, "rules": [{}]}},
        ["all", "<none>", "*", "", "80", "5m"],
    ),
    (
        "ingress many hosts",
        "networking.k8s.io",
        "Ingress",
        {
            "metadata": meta("many", 300),
            "spec": {
                "rules": [{"host": "a"}, {}, {"host": "b"}, {"host": "c"}, {"host": "d"}, {"host": "e"}]
            },
        },
        ["many", "<none>", "a,b,c + 3 more...", "", "80", "5m"],
    ),
    (
        "ingress three hosts among four rules",
        "networking.k8s.io",
        "Ingress",
        {"metadata": meta("four", 300), "spec": {"rules": [{"host": "a"}, {}, {"host": "b"}, {"host": "c"}]}},
        ["four", "<none>", "a,b,c", "", "80", "5m"],
    ),
    (
        "ingressclass",
        "networking.k8s.io",
        "IngressClass",
        {
            "metadata": meta("external-lb", 300),
            "spec": {
                "controller": "example.com/ingress-controller",
                "parameters": {
                    "apiGroup": "k8s.example.com",
                    "kind": "IngressParameters",
                    "name": "external-lb",
                },
            },
        },
        [
            "external-lb",
            "example.com/ingress-controller",
            "IngressParameters.k8s.example.com/external-lb",
            "5m",
        ],
    ),
    (
        "ingressclass plain",
        "networking.k8s.io",
        "IngressClass",
        {"metadata": meta("nginx", 300), "spec": {"controller": "k8s.io/ingress-nginx"}},
        ["nginx", "k8s.io/ingress-nginx", "<none>", "5m"],
    ),
    (
        "networkpolicy",
        "networking.k8s.io",
        "NetworkPolicy",
        {"metadata": meta("db", 300), "spec": {"podSelector": {"matchLabels": {"role": "db"}}}},
        ["db", "role=db", "5m"],
    ),
    (
        "networkpolicy all pods",
        "networking.k8s.io",
        "NetworkPolicy",
        {"metadata": meta("deny", 300), "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}},
        ["deny", "<none>", "5m"],
    ),
    (
        "networkpolicy expressions",
        "networking.k8s.io",
        "NetworkPolicy",
        {
            "metadata": meta("ex", 300),
            "spec": {
                "podSelector": {
                    "matchExpressions": [
                        {"key": "env", "operator": "DoesNotExist"},
                        {"key": "app", "operator": "Exists"},
                        {"key": "tier", "operator": "NotIn", "values": ["cache"]},
                    ]
                }
            },
        },
        ["ex", "app,!env,tier notin (cache)", "5m"],
    ),
    (
        "lease",
        "coordination.k8s.io",
        "Lease",
        {
            "metadata": meta("node1", 45 * DAY),
            "spec": {"holderIdentity": "node1", "leaseDurationSeconds": 40},
        },
        ["node1", "node1", "45d"],
    ),
    (
        "lease unheld",
        "coordination.k8s.io",
        "Lease",
        {"metadata": meta("l", 300), "spec": {}},
        ["l", "", "5m"],
    ),
    (
        "rolebinding",
        "rbac.authorization.k8s.io",
        "RoleBinding",
        {
            "metadata": meta("admins", 300),
            "roleRef": {"kind": "ClusterRole", "name": "admin"},
            "subjects": [
                {"kind": "User", "name": "alice"},
                {"kind": "Group", "name": "devs"},
                {"kind": "ServiceAccount", "name": "builder", "namespace": "ci"},
                {"kind": "User", "name": "bob"},
            ],
        },
        ["admins", "ClusterRole/admin", "5m", "alice, bob", "devs", "ci/builder"],
    ),
    (
        "clusterrolebinding",
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        {"metadata": meta("view", 300), "roleRef": {"kind": "ClusterRole", "name": "view"}},
        ["view", "ClusterRole/view", "5m", "", "", ""],
    ),
    (
        "role default table",
        "rbac.authorization.k8s.io",
        "Role",
        {"metadata": meta("reader", DAY)},
        ["reader", "2024-12-31T12:00:00Z"],
    ),
    (
        "clusterrole default table",
        "rbac.authorization.k8s.io",
        "ClusterRole",
        {"metadata": {"name": "edit", "creationTimestamp": "2024-06-01T14:30:00+02:00"}},
        ["edit", "2024-06-01T12:30:00Z"],
    ),
    (
        "crd default table",
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        {"metadata": {"name": "widgets.example.com", "creationTimestamp": "2024-12-01T08:00:00Z"}},
        ["widgets.example.com", "2024-12-01T08:00:00Z"],
    ),
    (
        "unknown kind default table",
        "example.com",
        "Gadget",
        {"metadata": {"name": "g"}},
        ["g", "0001-01-01T00:00:00Z"],
    ),
]


@pytest.mark.parametrize(
    ("group", "kind", "obj", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_row_cells(group: str, kind: str, obj: dict[str, Any], expected: list[Any]) -> None:
    cells = printers.row_cells(group, kind, obj, NOW)
    assert cells == expected
    assert [type(c) for c in cells] == [type(e) for e in expected]
    assert len(cells) == len(printers.column_definitions(group, kind))


COLUMNS: dict[tuple[str, str], list[tuple[str, int]]] = {
    ("", "Namespace"): [("Name", 0), ("Status", 0), ("Age", 0)],
    ("", "Node"): [
        ("Name", 0),
        ("Status", 0),
        ("Roles", 0),
        ("Age", 0),
        ("Version", 0),
        ("Internal-IP", 1),
        ("External-IP", 1),
        ("OS-Image", 1),
        ("Kernel-Version", 1),
        ("Container-Runtime", 1),
    ],
    ("", "Pod"): [
        ("Name", 0),
        ("Ready", 0),
        ("Status", 0),
        ("Restarts", 0),
        ("Age", 0),
        ("IP", 1),
        ("Node", 1),
        ("Nominated Node", 1),
        ("Readiness Gates", 1),
    ],
    ("", "Service"): [
        ("Name", 0),
        ("Type", 0),
        ("Cluster-IP", 0),
        ("External-IP", 0),
        ("Port(s)", 0),
        ("Age", 0),
        ("Selector", 1),
    ],
    ("", "Endpoints"): [("Name", 0), ("Endpoints", 0), ("Age", 0)],
    ("", "Secret"): [("Name", 0), ("Type", 0), ("Data", 0), ("Age", 0)],
    ("", "ConfigMap"): [("Name", 0), ("Data", 0), ("Age", 0)],
    ("", "ServiceAccount"): [("Name", 0), ("Secrets", 0), ("Age", 0)],
    ("", "Event"): [
        ("Last Seen", 0),
        ("Type", 0),
        ("Reason", 0),
        ("Object", 0),
        ("Subobject", 1),
        ("Source", 1),
        ("Message", 0),
        ("First Seen", 1),
        ("Count", 1),
        ("Name", 1),
    ],
    ("apps", "Deployment"): [
        ("Name", 0),
        ("Ready", 0),
        ("Up-to-date", 0),
        ("Available", 0),
        ("Age", 0),
        ("Containers", 1),
        ("Images", 1),
        ("Selector", 1),
    ],
    ("apps", "ReplicaSet"): [
        ("Name", 0),
        ("Desired", 0),
        ("Current", 0),
        ("Ready", 0),
        ("Age", 0),
        ("Containers", 1),
        ("Images", 1),
        ("Selector", 1),
    ],
    ("apps", "StatefulSet"): [("Name", 0), ("Ready", 0), ("Age", 0), ("Containers", 1), ("Images", 1)],
    ("apps", "DaemonSet"): [
        ("Name", 0),
        ("Desired", 0),
        ("Current", 0),
        ("Ready", 0),
        ("Up-to-date", 0),
        ("Available", 0),
        ("Node Selector", 0),
        ("Age", 0),
        ("Containers", 1),
        ("Images", 1),
        ("Selector", 1),
    ],
    ("batch", "Job"): [
        ("Name", 0),
        ("Status", 0),
        ("Completions", 0),
        ("Duration", 0),
        ("Age", 0),
        ("Containers", 1),
        ("Images", 1),
        ("Selector", 1),
    ],
    ("discovery.k8s.io", "EndpointSlice"): [
        ("Name", 0),
        ("AddressType", 0),
        ("Ports", 0),
        ("Endpoints", 0),
        ("Age", 0),
    ],
    ("networking.k8s.io", "Ingress"): [
        ("Name", 0),
        ("Class", 0),
        ("Hosts", 0),
        ("Address", 0),
        ("Ports", 0),
        ("Age", 0),
    ],
    ("networking.k8s.io", "IngressClass"): [("Name", 0), ("Controller", 0), ("Parameters", 0), ("Age", 0)],
    ("networking.k8s.io", "NetworkPolicy"): [("Name", 0), ("Pod-Selector", 0), ("Age", 0)],
    ("coordination.k8s.io", "Lease"): [("Name", 0), ("Holder", 0), ("Age", 0)],
    ("rbac.authorization.k8s.io", "RoleBinding"): [
        ("Name", 0),
        ("Role", 0),
        ("Age", 0),
        ("Users", 1),
        ("Groups", 1),
        ("ServiceAccounts", 1),
    ],
    ("rbac.authorization.k8s.io", "Role"): [("Name", 0), ("Created At", 0)],
    ("apiextensions.k8s.io", "CustomResourceDefinition"): [("Name", 0), ("Created At", 0)],
}


@pytest.mark.parametrize(("key", "expected"), list(COLUMNS.items()), ids=[f"{g}/{k}" for g, k in COLUMNS])
def test_column_definitions(key: tuple[str, str], expected: list[tuple[str, int]]) -> None:
    columns = printers.column_definitions(*key)
    assert [(c["name"], c["priority"]) for c in columns] == expected
    for column in columns:
        assert set(column) == {"name", "type", "format", "description", "priority"}
        assert column["description"]
        assert column["format"] == ("name" if column["name"] == "Name" else "")


def test_column_types_match_cells() -> None:
    assert printers.column_definitions("apps", "ReplicaSet")[1]["type"] == "integer"
    assert printers.column_definitions("", "Pod")[3]["type"] == "string"
    assert printers.column_definitions("rbac.authorization.k8s.io", "ClusterRole")[1]["type"] == "date"
    assert printers.column_definitions("events.k8s.io", "Event") == printers.column_definitions("", "Event")
    assert printers.has_printer("", "Pod") and not printers.has_printer("rbac.authorization.k8s.io", "Role")


def test_naive_now_is_treated_as_utc() -> None:
    obj = {"metadata": meta("ns", 300), "status": {"phase": "Terminating"}}
    assert printers.row_cells("", "Namespace", obj, NOW.replace(tzinfo=None)) == ["ns", "Terminating", "5m"]


def test_missing_creation_timestamp_is_unknown_age() -> None:
    assert printers.row_cells("", "ConfigMap", {"metadata": {"name": "c"}}, NOW) == ["c", 0, "<unknown>"]


# --------------------------------------------------------------------------- custom resources

WIDGET = {
    "apiVersion": "example.com/v1",
    "kind": "Widget",
    "metadata": {
        "name": "demo",
        "creationTimestamp": ts(45 * DAY),
        "labels": {"app": "web", "app.kubernetes.io/name": "widget"},
    },
    "spec": {
        "replicas": 3,
        "hosts": ["a.example.com", "b.example.com"],
        "ratio": 2,
        "paused": False,
        "scale": 2.7,
        "count": "3",
        "items": [{"name": "x"}, {"name": "y"}],
        "nothing": None,
        "limits": {"mem": "1Gi", "cpu": 0.5},
        "flag": True,
    },
    "status": {
        "conditions": [{"type": "Synced", "status": "True"}, {"type": "Ready", "status": "False"}],
        "lastSync": "not-a-date",
        "observed": "",
        "syncedAt": ts(150),
    },
}


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ({"type": "integer", "jsonPath": ".spec.replicas"}, 3),
        ({"type": "integer", "jsonPath": ".spec.scale"}, 2),
        ({"type": "integer", "jsonPath": ".spec.count"}, None),
        ({"type": "integer", "jsonPath": ".spec.paused"}, None),
        ({"type": "number", "jsonPath": ".spec.ratio"}, 2.0),
        ({"type": "boolean", "jsonPath": ".spec.paused"}, False),
        ({"type": "boolean", "jsonPath": ".spec.replicas"}, None),
        ({"type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'}, "False"),
        ({"type": "string", "jsonPath": ".status.conditions[?(@.type == 'Synced')].status"}, "True"),
        ({"type": "string", "jsonPath": '.status.conditions[?(@.type=="Gone")].status'}, None),
        ({"type": "string", "jsonPath": ".metadata.labels.app"}, "web"),
        ({"type": "string", "jsonPath": r".metadata.labels.app\.kubernetes\.io/name"}, "widget"),
        ({"type": "string", "jsonPath": ".spec.hosts[0]"}, "a.example.com"),
        ({"type": "string", "jsonPath": ".spec.hosts[-1]"}, "b.example.com"),
        ({"type": "string", "jsonPath": ".spec.hosts[5]"}, None),
        ({"type": "string", "jsonPath": ".spec.hosts"}, '["a.example.com","b.example.com"]'),
        ({"type": "string", "jsonPath": ".spec.items[*].name"}, "x"),
        ({"type": "string", "jsonPath": ".spec.limits"}, '{"cpu":0.5,"mem":"1Gi"}'),
        ({"type": "string", "jsonPath": ".spec.replicas"}, "3"),
        ({"type": "string", "jsonPath": ".spec.flag"}, "true"),
        ({"type": "string", "jsonPath": ".spec.nothing"}, "<no value>"),
        ({"type": "string", "jsonPath": ".status.missing"}, None),
        ({"type": "string", "jsonPath": ".spec.replicas[0]"}, None),
        ({"type": "date", "jsonPath": ".metadata.creationTimestamp"}, "45d"),
        ({"type": "date", "jsonPath": ".status.syncedAt"}, "2m30s"),
        ({"type": "date", "jsonPath": ".status.lastSync"}, "<invalid>"),
        ({"type": "date", "jsonPath": ".status.observed"}, "<unknown>"),
        ({"type": "date", "jsonPath": ".spec.replicas"}, None),
        ({"type": "string", "jsonPath": ".spec["}, None),
    ],
)
def test_custom_row_cell(column: dict[str, Any], expected: Any) -> None:
    cells = printers.custom_row_cells([{"name": "C", **column}], WIDGET, NOW)
    assert cells == ["demo", expected]
    assert type(cells[1]) is type(expected)


def test_custom_columns_definitions() -> None:
    columns = [
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas", "description": "Wanted."},
        {"name": "App", "type": "string", "jsonPath": ".metadata.labels.app", "priority": 1},
        {"name": "Synced", "type": "date", "format": "date-time", "jsonPath": ".status.syncedAt"},
    ]
    definitions = printers.custom_column_definitions(columns)
    assert [(d["name"], d["type"], d["format"], d["priority"]) for d in definitions] == [
        ("Name", "string", "name", 0),
        ("Replicas", "integer", "", 0),
        ("App", "string", "", 1),
        ("Synced", "date", "date-time", 0),
    ]
    assert definitions[1]["description"] == "Wanted."
    assert ".metadata.labels.app" in definitions[2]["description"]
    assert printers.custom_row_cells(columns, WIDGET, NOW) == ["demo", 3, "web", "2m30s"]


@pytest.mark.parametrize("columns", [None, []])
def test_custom_columns_default_to_age(columns: list[dict[str, Any]] | None) -> None:
    definitions = printers.custom_column_definitions(columns)
    assert [(d["name"], d["type"], d["priority"]) for d in definitions] == [
        ("Name", "string", 0),
        ("Age", "date", 0),
    ]
    assert printers.custom_row_cells(columns, WIDGET, NOW) == ["demo", "45d"]


# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (None, "<none>"),
        ({}, "<none>"),
        ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
        ({"matchExpressions": [{"key": "k", "operator": "In", "values": []}]}, "<error>"),
        ({"matchExpressions": [{"key": "k", "operator": "Exists", "values": ["v"]}]}, "<error>"),
        ({"matchExpressions": [{"key": "k", "operator": "Bogus"}]}, "<error>"),
    ],
)
def test_format_label_selector(selector: Any, expected: str) -> None:
    assert printers.format_label_selector(selector) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-01-01T12:00:00Z", datetime(2025, 1, 1, 12, tzinfo=UTC)),
        ("2025-01-01T12:00:00.123456789Z", datetime(2025, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2025-01-01t13:00:00+01:00", datetime(2025, 1, 1, 12, tzinfo=UTC)),
        ("2025-01-01", None),
        ("", None),
        (None, None),
        (17, None),
    ],
)
def test_parse_time(value: Any, expected: datetime | None) -> None:
    assert printers.parse_time(value) == expected
