"""Project: a group of namespaces, the unit a platform hands to a team.

A namespace belongs to project <name> when it carries the label `cpaas.io/project: <name>`. The
projects controller keeps a Project per name in use, listing its namespaces in its status; users
may also create a Project themselves (it then stays when its last namespace leaves).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from netplane.model.crd import Kind, PrinterColumn

PROJECT_LABEL = "cpaas.io/project"


class ProjectSpec(BaseModel):
    displayName: str | None = Field(None, description="A human-friendly name for the project.")
    description: str | None = Field(None, description="What the project is for.")


class ProjectStatus(BaseModel):
    namespaces: list[str] | None = Field(
        None, description=f"The namespaces labelled {PROJECT_LABEL}=<project name>, sorted.")
    # A printer column shows a list as JSON (["a","b"]), on Kubernetes as here; the comma-separated
    # copy is what `kubectl get projects` shows.
    namespaceNames: str | None = Field(None, description="The same namespaces, comma-separated, for display.")


PROJECT = Kind(
    group="netplane.io", version="v1alpha1", kind="Project", plural="projects",
    spec=ProjectSpec, status=ProjectStatus, namespaced=False, short_names=("proj",),
    description=f"A project: the namespaces labelled {PROJECT_LABEL}=<name>. Maintained by the projects "
                "controller, which creates it when the first namespace joins and deletes it when the last "
                "one leaves (unless it was created by a user).",
    printer_columns=(
        PrinterColumn("Namespaces", ".status.namespaceNames"),
        PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
    ),
)
