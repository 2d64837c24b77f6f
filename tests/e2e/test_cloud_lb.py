"""SVC-9: cloud load-balancer annotations through the real kubectl."""

from __future__ import annotations

import time

import pytest

from tests.conftest import Kubectl

pytestmark = pytest.mark.e2e

AWS = "service.beta.kubernetes.io/aws-load-balancer-"


def lb_service(name: str, ns: str, annotations: dict[str, str]) -> str:
    lines = "\n".join(f"    {key}: '{value}'" for key, value in annotations.items())
    return f"""apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {ns}
  annotations:
{lines}
spec:
  type: LoadBalancer
  selector: {{app: web}}
  ports: [{{port: 80}}]
"""


def test_valid_cloud_annotations_show_event_in_describe(kubectl: Kubectl, ns: str) -> None:
    manifest = lb_service("web", ns, {
        AWS + "scheme": "internal", AWS + "nlb-target-type": "ip",
        "kubernetes.io/elb.class": "union",
        "kubernetes.io/elb.autocreate": '{"type":"public","bandwidth_size":5,"available_zone":["cn-north-4b"]}',
        "service.beta.kubernetes.io/azure-load-balancer-internal": "true",
        "cloud.google.com/l4-rbs": "enabled",
    })
    kubectl("apply", "-f", "-", input=manifest)
    deadline = time.monotonic() + 15
    out = ""
    while "CloudProviderAnnotations" not in out:
        assert time.monotonic() < deadline, f"no CloudProviderAnnotations event in:\n{out}"
        time.sleep(0.5)
        out = kubectl("describe", "service", "web", "-n", ns)
    assert "service.beta.kubernetes.io/aws-load-balancer-scheme: internal" in out
    assert ("Service has cloud load-balancer annotations for AWS EKS, Huawei CCE, Azure AKS and Google GKE; "
            "no cloud provider acts on them in this cluster") in " ".join(out.split())
    # re-applying (and any resync) does not add a second event
    kubectl("annotate", "service", "web", "-n", ns, "note=touched")
    time.sleep(2)
    events = kubectl("get", "events", "-n", ns, "--field-selector", "reason=CloudProviderAnnotations",
                     "-o", "name", check=False)
    assert len(events.split()) == 1, events


def test_bad_cloud_annotation_is_rejected(kubectl: Kubectl, ns: str) -> None:
    manifest = lb_service("bad", ns, {AWS + "scheme": "public"})
    result = kubectl.run("apply", "-f", "-", input=manifest, check=False)
    assert result.returncode != 0
    assert ('metadata.annotations[service.beta.kubernetes.io/aws-load-balancer-scheme]: Unsupported value: '
            '"public": supported values: "internal", "internet-facing"') in result.stderr
