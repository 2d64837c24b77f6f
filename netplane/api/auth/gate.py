"""The one object the HTTP layer talks to: authenticate, authorise, answer reviews, audit.

Order per request, as in kube-apiserver: authentication (401 for bad or missing credentials),
then authorisation (403 with Kubernetes' wording). Members of ``system:masters`` skip RBAC
entirely, which also keeps the admin's requests (the controllers', the benchmarks') free of
policy lookups.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from netplane.api import errors
from netplane.api.auth import nodes, projects, reviews
from netplane.api.auth.attributes import request_attributes
from netplane.api.auth.audit import AuditLog, timestamp
from netplane.api.auth.authn import MASTERS_GROUP, Authenticator, Unauthenticated
from netplane.api.auth.rbac import Attributes, Decision, RbacAuthorizer, UserInfo, forbidden_message
from netplane.api.auth.satokens import ServiceAccountTokens, load_or_create_key
from netplane.api.auth.store_policy import StorePolicy
from netplane.api.auth.users import USERS_FILE, UserStore
from netplane.api.core import ApiCore
from netplane.api.errors import ApiError
from netplane.api.objects import Obj, decode
from netplane.api.resources import ResourceType

AUDIT_FILE = "audit.log"
# What service-account tokens may be bound to, besides the service account itself.
_TOKEN_OBJECTS = {"ServiceAccount": "serviceaccounts", "Pod": "pods", "Secret": "secrets", "Node": "nodes"}


@dataclass(frozen=True)
class Admitted:
    user: UserInfo
    attrs: Attributes
    list_scope: str  # extra label selector a list/watch must apply ("" for none)


ADMITTED = web.RequestKey("netplane_admitted", Admitted)
# Why a request was turned away (for the audit log), set only when it was.
REJECTED = web.RequestKey("netplane_rejected", Attributes)


class AuthGate:
    def __init__(self, core: ApiCore, admin_token: str, data_dir: Path | None = None):
        # Without a data directory (in-process tests) tokens are signed with a key of this process only.
        key = load_or_create_key(data_dir / "pki") if data_dir else ec.generate_private_key(ec.SECP256R1())
        self.service_accounts = ServiceAccountTokens(key)
        self._core = core
        self.authenticator = Authenticator(admin_token, UserStore(data_dir / USERS_FILE if data_dir else None),
                                           self.service_accounts, self._token_object)
        self.policy = StorePolicy(core.store, core.registry)
        self.rbac = RbacAuthorizer(self.policy)
        self.audit = AuditLog(data_dir / AUDIT_FILE) if data_dir else None

    def _token_object(self, kind: str, namespace: str, name: str) -> Obj | None:
        rt = self._core.registry.lookup("", "v1", _TOKEN_OBJECTS[kind])
        assert rt is not None, kind
        return self._core.store.get_obj(rt, namespace, name)

    # --- lifecycle (aiohttp on_startup / on_cleanup) ---------------------------------------

    async def start(self, _app: web.Application) -> None:
        if self.audit is not None:
            self.audit.start()

    async def stop(self, _app: web.Application) -> None:
        if self.audit is not None:
            await self.audit.close()

    # --- decisions ---------------------------------------------------------------------------

    def _pods_rt(self) -> ResourceType:
        rt = self._core.registry.lookup("", "v1", "pods")
        assert rt is not None
        return rt

    def _pods_in(self, namespace: str) -> list[Obj]:
        return [decode(r.value) for r in self._core.store.list(self._pods_rt(), namespace)[0]]

    def _pod(self, namespace: str, name: str) -> Obj | None:
        return self._core.store.get_obj(self._pods_rt(), namespace, name)

    def authorize(self, user: UserInfo, attrs: Attributes) -> Decision:
        if MASTERS_GROUP in user.groups:
            return Decision(True)
        restricted = nodes.restriction(user, attrs, self._pod)
        if restricted is not None:
            return restricted
        by_node = nodes.secret_decision(user, attrs, self._pods_in)
        if by_node is not None:
            return by_node
        decision = self.rbac.authorize(user, attrs)
        if decision.allowed:
            return decision
        by_project = projects.project_decision(user, attrs, self.policy.namespace_labels,
                                               self.rbac.cluster_role_rules)
        return by_project or decision

    def admit(self, request: web.Request) -> Admitted:
        """Who is asking and whether they may; raises the 401/403 ApiError to answer with."""
        attrs = request_attributes(request.method, request.path, request.query)
        try:
            transport = request.transport
            ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
            user = self.authenticator.authenticate(request.headers.get("Authorization", ""), ssl_object)
        except Unauthenticated:
            user = None
        if user is None:
            request[REJECTED] = attrs
            raise errors.unauthorized()
        decision = self.authorize(user, attrs)
        if not decision.allowed:
            request[REJECTED] = attrs
            request[ADMITTED] = Admitted(user, attrs, "")
            raise _forbidden(user, attrs, decision.reason)
        admitted = Admitted(user, attrs, decision.list_scope)
        request[ADMITTED] = admitted
        return admitted

    # --- reviews -----------------------------------------------------------------------------

    def review(self, request: web.Request, rt: ResourceType, body: Any) -> dict[str, Any]:
        user = request[ADMITTED].user
        if (rt.group, rt.plural) == reviews.ACCESS_REVIEW:
            return reviews.access_review(rt, body, user, self.authorize)
        return reviews.self_review(rt, body, user)

    # --- audit -------------------------------------------------------------------------------

    def record(self, request: web.Request, code: int, body: Any = None) -> None:
        """Audit one request; ``body`` (the response's) names what a create created."""
        if self.audit is None:
            return
        admitted = request.get(ADMITTED)
        rejected = request.get(REJECTED)
        attrs = rejected or (admitted.attrs if admitted else request_attributes(
            request.method, request.path, request.query))
        outcome = "denied" if rejected is not None else "allowed" if code < 400 else "error"
        entry: dict[str, Any] = {
            "timestamp": timestamp(),
            "user": admitted.user.name if admitted else "",
            "groups": list(admitted.user.groups) if admitted else [],
            "verb": attrs.verb,
            "requestURI": request.path_qs,
            "code": code,
            "outcome": outcome,
            "sourceIP": request.remote or "",
        }
        if attrs.resource_request:
            name = attrs.name
            if not name and attrs.verb == "create" and code < 300 and isinstance(body, bytes):
                name = _created_name(body)
            entry.update(apiGroup=attrs.api_group, resource=attrs.resource, subresource=attrs.subresource,
                         namespace=attrs.namespace, name=name)
        self.audit.record(entry)


def _created_name(body: bytes) -> str:
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""


def _forbidden(user: UserInfo, attrs: Attributes, reason: str) -> ApiError:
    message = forbidden_message(user, attrs)
    if reason:
        message += ": " + reason
    if not attrs.resource_request:
        return ApiError(403, "Forbidden", f"forbidden: {message}", {})
    group_resource = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    subject = f'{group_resource} "{attrs.name}"' if attrs.name else group_resource
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {message}",
                    {"name": attrs.name, "group": attrs.api_group, "kind": attrs.resource} if attrs.name
                    else {"group": attrs.api_group, "kind": attrs.resource})
