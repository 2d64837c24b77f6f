"""Every built-in object in the shared examples validates cleanly after defaulting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from netplane.api.validation import apply_defaults, default_service_ip_families, validate

pytestmark = pytest.mark.unit

EXAMPLES = Path("/work/shared/spec/examples")
KINDS = {("", "Service"), ("", "ConfigMap"), ("", "Pod"), ("apps", "Deployment"),
         ("networking.k8s.io", "Ingress"), ("networking.k8s.io", "IngressClass"),
         ("networking.k8s.io", "NetworkPolicy")}


def _documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(EXAMPLES.glob("*.y*ml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict):
                group = str(doc.get("apiVersion", "")).rpartition("/")[0]
                if (group, doc.get("kind")) in KINDS:
                    found.append((f"{path.name}:{doc['kind']}", doc))
    return found


DOCS = _documents()


def test_examples_present() -> None:
    kinds = {doc["kind"] for _, doc in DOCS}
    assert {"Service", "Deployment", "Ingress", "NetworkPolicy"} <= kinds


@pytest.mark.parametrize(("label", "doc"), DOCS, ids=[label for label, _ in DOCS])
def test_example_validates_after_defaulting(label: str, doc: dict[str, Any]) -> None:
    group = str(doc["apiVersion"]).rpartition("/")[0]
    kind = doc["kind"]
    apply_defaults(group, kind, doc)
    spec = doc.get("spec", {})
    if kind == "Service" and spec.get("type") != "ExternalName" and not spec.get("clusterIP"):
        spec["clusterIP"] = "10.96.0.20"  # what the allocator would do
    if kind == "Service":
        default_service_ip_families(doc)
    assert [str(e) for e in validate(group, kind, doc, None)] == []
