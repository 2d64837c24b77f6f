"""Projects from labelled namespaces, driven with the real kubectl against `netplane up` (whose
controller child runs the projects controller)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest

from tests.conftest import Kubectl

pytestmark = pytest.mark.e2e


def eventually(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("not reached in time")
        time.sleep(0.2)


def projects(kubectl: Kubectl) -> dict[str, str]:
    """NAME → NAMESPACES column of `kubectl get projects`."""
    lines = kubectl("get", "projects").splitlines()
    if not lines:
        return {}
    assert lines[0].split() == ["NAME", "NAMESPACES", "AGE"]
    rows = [line.split() for line in lines[1:]]
    return {row[0]: row[1] if len(row) == 3 else "" for row in rows}


def test_labelled_namespaces_make_projects(kubectl: Kubectl) -> None:
    s = uuid.uuid4().hex[:6]
    x, y, p1, p2 = f"x-{s}", f"y-{s}", f"p1-{s}", f"p2-{s}"
    kubectl("create", "namespace", x)
    kubectl("create", "namespace", y)
    kubectl("label", "namespace", x, f"cpaas.io/project={p1}")
    eventually(lambda: projects(kubectl).get(p1) == x)
    kubectl("label", "namespace", y, f"cpaas.io/project={p1}")
    eventually(lambda: projects(kubectl).get(p1) == f"{x},{y}")
    assert kubectl("get", "namespace", x, "-o", "jsonpath={.metadata.labels.kubernetes\\.io/metadata\\.name}") == x

    kubectl("label", "namespace", x, f"cpaas.io/project={p2}", "--overwrite")   # moves x to p2
    eventually(lambda: projects(kubectl).get(p1) == y and projects(kubectl).get(p2) == x)
    events = kubectl("get", "events", "-n", "default", "--field-selector", f"involvedObject.name={p1}")
    assert f"Namespace {x} joined project {p1}" in events and f"Namespace {x} left project {p1}" in events

    kubectl("delete", "namespace", y)                                                # p1's last namespace
    eventually(lambda: p1 not in projects(kubectl))
    kubectl("label", "namespace", x, "cpaas.io/project-")                          # p2's last namespace
    eventually(lambda: p2 not in projects(kubectl))
    kubectl("delete", "namespace", x, "--wait=false")


def test_a_project_created_by_a_user_stays_when_its_last_namespace_leaves(kubectl: Kubectl) -> None:
    s = uuid.uuid4().hex[:6]
    ns, project = f"u-{s}", f"team-{s}"
    kubectl("apply", "-f", "-", input=f"apiVersion: netplane.io/v1alpha1\nkind: Project\n"
                                      f"metadata:\n  name: {project}\nspec:\n  displayName: Team\n")
    kubectl("create", "namespace", ns)
    kubectl("label", "namespace", ns, f"cpaas.io/project={project}")
    eventually(lambda: projects(kubectl).get(project) == ns)
    kubectl("delete", "namespace", ns)
    eventually(lambda: projects(kubectl).get(project) == "")
    assert kubectl("get", "project", project, "-o", "jsonpath={.status.namespaces}") == "[]"
    kubectl("delete", "project", project)
