"""netplane's own kinds are served from CRDs generated from their models."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from netplane.api import schemacheck
from netplane.model import ALL_KINDS, crd_manifest
from tests.conftest import ROOT, Kubectl

pytestmark = pytest.mark.e2e

PLUGIN = """\
apiVersion: netplane.io/v1alpha1
kind: ClusterPlugin
metadata:
  name: coredns-{suffix}
spec:
  config:
    hostAliases:
    - ip: 192.168.1.10
      domains: [app.example.com, www.example.com]
"""


@pytest.mark.unit
@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.kind)
def test_generated_crds_are_valid_structural_crds(kind: object) -> None:
    manifest = crd_manifest(kind)  # type: ignore[arg-type]
    schemacheck.crd_defaults(manifest)
    assert schemacheck.validate_crd(manifest, None) == []


def test_manifests_command_prints_the_crds() -> None:
    out = subprocess.run([sys.executable, "-m", "netplane.cli", "manifests"], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(out)]
    assert names == [k.crd_name for k in ALL_KINDS]


def test_cluster_plugins_are_served_with_columns_explain_and_validation(kubectl: Kubectl) -> None:
    suffix = kubectl.binary.parent.name.replace(".", "")
    assert "clusterplugins" in kubectl("api-resources", "--api-group=netplane.io", "-o", "name")
    kubectl("apply", "-f", "-", input=PLUGIN.format(suffix=suffix))
    header = kubectl("get", "clusterplugins").splitlines()[0].split()
    assert header == ["NAME", "READY", "REASON", "AGE"]
    assert "static host entries" in kubectl("explain", "clusterplugin.spec.config.hostAliases")
    bad = kubectl.run("apply", "-f", "-", check=False,
                      input=PLUGIN.format(suffix=suffix + "x").replace("domains: [app.example.com, www.example.com]",
                                                                       "domains: []"))
    assert bad.returncode != 0
    assert "spec.config.hostAliases[0].domains: Invalid value: 0: spec.config.hostAliases[0].domains in body " \
           "should have at least 1 items" in bad.stderr
    kubectl("delete", "clusterplugin", f"coredns-{suffix}")
