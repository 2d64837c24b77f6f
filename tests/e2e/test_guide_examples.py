"""Every YAML example of the product guide whose kinds are served: apply, read back, delete."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
import yaml

from netplane.api.resources import BUILTIN_TYPES
from netplane.model import ALL_KINDS
from tests.conftest import Kubectl

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).parent / "guide_examples"
# Built-in kinds, and netplane's own kinds, registered from their models at start-up.
# An example with any other kind (say a NetworkAttachmentDefinition next to a Subnet)
# waits until that kind is served too.
OWN = {(f"{k.group}/{k.version}", k.kind) for k in ALL_KINDS}
SERVED = {(rt.api_version, rt.kind) for rt in BUILTIN_TYPES} | OWN


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _served_examples() -> list[Path]:
    return sorted(p for p in EXAMPLES.glob("*.y*ml")
                  if all((d.get("apiVersion"), d.get("kind")) in SERVED for d in _docs(p)))


def test_the_served_set_is_not_empty() -> None:
    names = {p.name for p in _served_examples()}
    assert {"simple-service.yaml", "headless-service.yaml", "external-service.yaml"} <= names


def test_examples_of_own_kinds_are_covered_and_mixed_ones_are_not() -> None:
    names = {p.name for p in _served_examples()}
    assert {"subnet.yml", "test-overlay-subnet.yaml", "test-calico-subnet.yaml", "test-underlay-network.yaml",
            "test-vlan.yaml", "test-provider-network.yaml", "ippool.yaml", "vpc-bfd-port.yaml"} <= names
    # A served Subnet next to a NetworkAttachmentDefinition, and a kind netplane does not serve yet.
    for mixed in ("egress-gateway-nad-and-subnet.yaml", "vpc-egress-gateway.yaml"):
        kinds = {(d.get("apiVersion"), d.get("kind")) for d in _docs(EXAMPLES / mixed)}
        assert not kinds <= SERVED, mixed
        assert mixed not in names


def _read_back(kubectl: Kubectl, ns: str, example: Path, docs: list[dict]) -> list[dict]:
    """The example's objects, once the IPAM controller has seen its Subnets (it reports in their status)."""
    deadline = time.monotonic() + 30
    while True:
        got = json.loads(kubectl("get", "-n", ns, "-f", str(example), "-o", "json"))
        live: list[dict] = got["items"] if got.get("kind") == "List" else [got]
        if all(o["kind"] != "Subnet" or (o.get("status") or {}).get("conditions") for o in live):
            return live
        assert time.monotonic() < deadline, "the Subnets were not reconciled"
        time.sleep(0.2)


@pytest.mark.parametrize("example", _served_examples(), ids=lambda p: p.name)
def test_guide_example_applies_reads_back_and_deletes(kubectl: Kubectl, example: Path) -> None:
    docs = _docs(example)
    # Examples that name their namespace are applied there, as a user would; the others
    # go to a fresh namespace of their own.
    named = {d["metadata"]["namespace"] for d in docs if d["metadata"].get("namespace")}
    ns = named.pop() if named else f"ex-{uuid.uuid4().hex[:8]}"
    created_ns = kubectl.run("get", "namespace", ns, check=False).returncode != 0
    if created_ns:
        kubectl("create", "namespace", ns)
    # Built-in objects an example modifies (vpc-bfd-port.yaml configures the default VPC, which the
    # IPAM controller creates at start-up, as Kube-OVN does): configured, not created, and put back after.
    builtin = {}
    for doc in docs:
        found = kubectl.run("get", doc["kind"].lower(), doc["metadata"]["name"], "-n", ns, "-o", "json", check=False)
        if found.returncode == 0:
            builtin[doc["metadata"]["name"]] = json.loads(found.stdout)
    try:
        out = kubectl("apply", "-n", ns, "-f", str(example))
        assert out.count(" created") == len(docs) - len(builtin), out
        assert out.count(" configured") == len(builtin), out
        live = _read_back(kubectl, ns, example, docs)
        assert [(o["kind"], o["metadata"]["name"]) for o in live] == \
            [(d["kind"], d["metadata"]["name"]) for d in docs]
        rewritten = 0
        for doc, obj in zip(docs, live, strict=True):
            assert obj["metadata"]["uid"]
            # What the IPAM controller normalised (Kube-OVN's formatSubnet), as it records it.
            normalised = json.loads(obj["metadata"].get("annotations", {}).get("netplane.io/normalised") or "{}")
            for key, value in (doc.get("spec") or {}).items():
                if isinstance(value, (str, int, bool)):
                    assert obj["spec"][key] == (normalised[key][1] if key in normalised else value), key
            # Re-applying puts back what the controller rewrote, so kubectl reports those as configured.
            if obj["kind"] == "Subnet":
                rewritten += any(obj["spec"].get(k) != v for k, v in (doc.get("spec") or {}).items())
        again = kubectl("apply", "-n", ns, "-f", str(example))
        assert again.count(" unchanged") == len(docs) - rewritten and again.count(" configured") == rewritten, again
        if builtin:
            for original in builtin.values():
                for key in ("resourceVersion", "managedFields", "generation", "uid", "creationTimestamp"):
                    original["metadata"].pop(key, None)
                kubectl("replace", "-f", "-", input=json.dumps(original))
            return
        kubectl("delete", "-n", ns, "-f", str(example), "--timeout=30s")
        gone = kubectl.run("get", "-n", ns, "-f", str(example), check=False)
        assert gone.returncode != 0 and "NotFound" in gone.stderr
    finally:
        if created_ns:
            kubectl("delete", "namespace", ns, "--wait=false")
