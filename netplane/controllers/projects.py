"""Projects: namespaces labelled `cpaas.io/project: <name>` make up project <name>.

Two controllers:
- `namespace-name-label` keeps the label `kubernetes.io/metadata.name` equal to each namespace's
  name (selectors in NetworkPolicies and elsewhere rely on it).
- `projects` keeps one cluster-scoped Project per project name in use, its status listing the
  member namespaces. It creates the Project (marked as its own) when the first namespace joins and
  deletes it when the last one leaves; a Project a user created is kept, with an empty list.
  Joins and leaves are recorded as Events on the Project. They are found by comparing the desired
  members with the persisted status, so a restart neither loses nor repeats one.

A namespace being deleted (Terminating) has already left its project.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from typing import Any

from netplane.controllers.kube.errors import AlreadyExists, NotFound
from netplane.controllers.kube.resources import NAMESPACES, Resource
from netplane.controllers.runtime.cache import by_label
from netplane.controllers.runtime.controller import Result, own_key
from netplane.controllers.runtime.events import EventRecorder
from netplane.controllers.runtime.informer import Informer
from netplane.controllers.runtime.manager import Manager
from netplane.model.projects import PROJECT, PROJECT_LABEL

log = logging.getLogger("netplane.projects")

Obj = dict[str, Any]
PROJECTS = Resource(PROJECT.group, PROJECT.version, PROJECT.plural, namespaced=False, kind=PROJECT.kind)
NAME_LABEL = "kubernetes.io/metadata.name"
MANAGED_BY = "app.kubernetes.io/managed-by"
CONTROLLER_NAME = "netplane-projects"
PROJECT_INDEX = "project"


def project_of(namespace: Obj) -> list[str]:
    value = ((namespace.get("metadata") or {}).get("labels") or {}).get(PROJECT_LABEL)
    return [str(value)] if value else []


def _terminating(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def desired_members(namespaces: list[Obj]) -> list[str]:
    return sorted(str(ns["metadata"]["name"]) for ns in namespaces if not _terminating(ns))


def membership_changes(before: list[str], after: list[str]) -> tuple[list[str], list[str]]:
    """(joined, left), each sorted."""
    return sorted(set(after) - set(before)), sorted(set(before) - set(after))


class NamespaceNameLabel:
    def __init__(self, mgr: Manager, namespaces: Informer):
        self.client = mgr.client
        self.namespaces = namespaces

    async def reconcile(self, name: str) -> Result:
        ns = self.namespaces.cache.get(name)
        if ns is None or _terminating(ns):
            return Result()
        if (ns["metadata"].get("labels") or {}).get(NAME_LABEL) != name:
            with contextlib.suppress(NotFound):
                await self.client.patch(NAMESPACES, name, {"metadata": {"labels": {NAME_LABEL: name}}})
        return Result()


class Projects:
    def __init__(self, mgr: Manager, namespaces: Informer, projects: Informer, recorder: EventRecorder):
        self.client = mgr.client
        self.namespaces = namespaces
        self.projects = projects
        self.recorder = recorder

    async def reconcile(self, name: str) -> Result:
        members = desired_members(self.namespaces.cache.by_index(PROJECT_INDEX, name))
        cached = self.projects.cache.get(name)
        project = copy.deepcopy(cached) if cached is not None else None
        if project is None:
            if not members:
                return Result()
            project = await self._create(name)
        if _terminating(project):
            return Result()  # being deleted: once it is gone, its deletion event brings us back
        status = project.get("status") or {}
        before = list(status.get("namespaces") or [])
        joined, left = membership_changes(before, members)
        if not members and (project["metadata"].get("labels") or {}).get(MANAGED_BY) == CONTROLLER_NAME:
            try:
                await self.client.delete(PROJECTS, name, uid=project["metadata"].get("uid"))
            except NotFound:
                return Result()  # a stale cache: somebody (an earlier run of ours) deleted it already
            log.info("project %s deleted: its last namespace left", name)
            await self._announce(project, [], left)
            return Result()
        wanted = {**status, "namespaces": members, "namespaceNames": ",".join(members)}
        if wanted != status:
            project["status"] = wanted
            project = await self.client.update_status(PROJECTS, project)
            await self._announce(project, joined, left)
        return Result()

    async def _create(self, name: str) -> Obj:
        body = {"apiVersion": PROJECTS.api_version, "kind": PROJECT.kind,
                "metadata": {"name": name, "labels": {MANAGED_BY: CONTROLLER_NAME}}, "spec": {}}
        try:
            created = await self.client.create(PROJECTS, body)
            log.info("project %s created: its first namespace joined", name)
            return created
        except AlreadyExists:
            # Our cache has not seen it yet (just created by us, or by a user): work on the real one.
            return await self.client.get(PROJECTS, name)

    async def _announce(self, project: Obj, joined: list[str], left: list[str]) -> None:
        name = project["metadata"]["name"]
        for ns in joined:
            await self.recorder.normal(project, "NamespaceJoined", f"Namespace {ns} joined project {name}")
        for ns in left:
            await self.recorder.normal(project, "NamespaceLeft", f"Namespace {ns} left project {name}")


def setup(mgr: Manager) -> None:
    namespaces = mgr.informer(NAMESPACES, indexers={PROJECT_INDEX: by_label(PROJECT_LABEL)})
    projects = mgr.informer(PROJECTS)

    labels = NamespaceNameLabel(mgr, namespaces)
    mgr.controller("namespace-name-label", labels.reconcile).watch(namespaces)

    controller = mgr.controller("projects", Projects(mgr, namespaces, projects, mgr.recorder).reconcile)
    controller.watch(namespaces, project_of)
    controller.watch(projects, own_key)
