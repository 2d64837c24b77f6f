"""The create-only review kinds: SelfSubjectAccessReview (`kubectl auth can-i`) and
SelfSubjectReview (`kubectl auth whoami`). Nothing is stored; the answer is the request's body
with its status filled in, as kube-apiserver returns it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from netplane.api import errors
from netplane.api.auth.rbac import Attributes, Decision, UserInfo
from netplane.api.resources import ResourceType

ACCESS_REVIEW = ("authorization.k8s.io", "selfsubjectaccessreviews")
SELF_REVIEW = ("authentication.k8s.io", "selfsubjectreviews")
REVIEW_TYPES = frozenset({ACCESS_REVIEW, SELF_REVIEW})

Authorize = Callable[[UserInfo, Attributes], Decision]


def is_review(rt: ResourceType) -> bool:
    return (rt.group, rt.plural) in REVIEW_TYPES


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _base(rt: ResourceType, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.bad_request("the body of the request must be a JSON or YAML object")
    kind = body.get("kind")
    if kind not in (None, rt.kind):
        raise errors.bad_request(f"the kind of the object ({kind}) does not match the kind on the URL ({rt.kind})")
    metadata = body.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
    return {"kind": rt.kind, "apiVersion": rt.api_version,
            "metadata": {**metadata, "creationTimestamp": None}}


def access_review(rt: ResourceType, body: Any, user: UserInfo, authorize: Authorize) -> dict[str, Any]:
    out = _base(rt, body)
    spec = body.get("spec")
    if not isinstance(spec, dict):
        spec = {}
    resource = spec.get("resourceAttributes")
    non_resource = spec.get("nonResourceAttributes")
    if isinstance(resource, dict) == isinstance(non_resource, dict):
        raise errors.unprocessable(rt.kind, "", rt.group, [errors.required(
            "spec.resourceAttributes", "exactly one of resourceAttributes or nonResourceAttributes must be specified")])
    if isinstance(resource, dict):
        attrs = Attributes(verb=_str(resource.get("verb")), namespace=_str(resource.get("namespace")),
                           api_group=_str(resource.get("group")), api_version=_str(resource.get("version")),
                           resource=_str(resource.get("resource")),
                           subresource=_str(resource.get("subresource")), name=_str(resource.get("name")))
    else:
        assert isinstance(non_resource, dict)
        attrs = Attributes(verb=_str(non_resource.get("verb")), resource_request=False,
                           path=_str(non_resource.get("path")))
    decision = authorize(user, attrs)
    status: dict[str, Any] = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    out["spec"] = spec
    out["status"] = status
    return out


def self_review(rt: ResourceType, body: Any, user: UserInfo) -> dict[str, Any]:
    out = _base(rt, body)
    info: dict[str, Any] = {"username": user.name, "groups": list(user.groups)}
    if user.uid:
        info["uid"] = user.uid
    if user.extra:
        info["extra"] = {key: list(values) for key, values in user.extra}
    out["status"] = {"userInfo": info}
    return out
