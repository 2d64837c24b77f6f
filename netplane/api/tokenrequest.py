"""`POST /api/v1/namespaces/NS/serviceaccounts/NAME/token`: the TokenRequest API.

`kubectl create token` and the node agents (for projected volumes) use it. Nothing is stored: the
answer is the request with its defaults and a freshly signed token (`auth/satokens.py`) in
``status``, as kube-apiserver returns it. Errors are kube-apiserver's: 404 for a missing service
account or bound object, 400 for a pod running as another service account, 409 for a stale uid,
422 for a lifetime out of range.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from netplane.api import errors, schemacheck, schemas
from netplane.api.auth.satokens import ServiceAccountTokens
from netplane.api.core import ApiCore
from netplane.api.errors import FieldError
from netplane.api.objects import Obj

GROUP = "authentication.k8s.io"
KIND = "TokenRequest"
QUALIFIED_KIND = f"{KIND}.{GROUP}"
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600
MAX_EXPIRATION = 1 << 32
# Kinds a token may be bound to (core/v1) and where they are stored.
_BOUND_KINDS = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}


def _stamp(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _decode(body: Any) -> Obj:
    if not isinstance(body, dict):
        raise errors.bad_request(f'{KIND} in version "v1" cannot be handled as a {KIND}: '
                                 "the body must be a JSON or YAML object")
    schema = schemas.kind_schema(GROUP, "v1", KIND)
    if schema is not None:
        _, type_errors = schemacheck.decode_errors(body, schema)
        if type_errors:
            raise errors.bad_request(schemacheck.type_error_message(KIND, "v1", type_errors[0]))
    kind = body.get("kind")
    if kind not in (None, "", KIND):
        raise errors.bad_request(f"the kind of the object ({kind}) does not match the kind on the URL ({KIND})")
    return body


def _type(core: ApiCore, plural: str) -> Any:
    rt = core.registry.lookup("", "v1", plural)
    assert rt is not None, plural
    return rt


def _bound_object(core: ApiCore, namespace: str, service_account: str, ref: Obj) -> tuple[str, Obj]:
    """The object a token is to be bound to, checked as kube-apiserver checks it."""
    api_version, kind, name = str(ref.get("apiVersion") or ""), str(ref.get("kind") or ""), str(ref.get("name") or "")
    group, _, version = api_version.rpartition("/")
    if group or kind not in _BOUND_KINDS:
        raise errors.bad_request(f"cannot bind token to object of type {group}/{version}, Kind={kind}")
    rt = _type(core, _BOUND_KINDS[kind])
    obj = core.get(rt, namespace if rt.namespaced else "", name)
    if kind == "Pod" and ((obj.get("spec") or {}).get("serviceAccountName") or "default") != service_account:
        raise errors.bad_request(f'cannot bind token for serviceaccount "{service_account}" to pod running with '
                                 "different serviceaccount name.")
    uid = (obj.get("metadata") or {}).get("uid")
    if ref.get("uid") and ref["uid"] != uid:
        raise errors.ApiError(409, "Conflict", f'Operation cannot be fulfilled on {kind} "{name}": the UID in '
                              f"the bound object reference ({ref['uid']}) does not match the UID in record. The "
                              "object might have been deleted and then recreated",
                              {"name": name, "group": "", "kind": kind})
    return kind, obj


def create_token(core: ApiCore, tokens: ServiceAccountTokens, namespace: str, name: str, body: Any) -> Obj:
    request = _decode(body)
    metadata = request.get("metadata") or {}
    causes: list[FieldError] = []
    if metadata.get("name") and metadata["name"] != name:
        causes.append(errors.invalid("metadata.name", metadata["name"], "must match the service account name if "
                                                                        "specified"))
    if metadata.get("namespace") and metadata["namespace"] != namespace:
        causes.append(errors.invalid("metadata.namespace", metadata["namespace"], "must match the service account "
                                                                                  "namespace if specified"))
    if causes:
        raise errors.unprocessable(QUALIFIED_KIND, name, GROUP, causes)
    account = core.get(_type(core, "serviceaccounts"), namespace, name)
    spec = request.get("spec") or {}
    audiences = list(spec.get("audiences") or tokens.audiences)
    expiration = spec.get("expirationSeconds")
    expiration = DEFAULT_EXPIRATION if expiration is None else int(expiration)
    if expiration < MIN_EXPIRATION:
        causes.append(errors.invalid("spec.expirationSeconds", expiration,
                                     "may not specify a duration less than 10 minutes"))
    if expiration > MAX_EXPIRATION:
        causes.append(errors.invalid("spec.expirationSeconds", expiration,
                                     "may not specify a duration larger than 2^32 seconds"))
    if causes:
        raise errors.unprocessable(QUALIFIED_KIND, "", GROUP, causes)
    bound: dict[str, Obj] = {}
    ref = spec.get("boundObjectRef")
    if ref:
        kind, obj = _bound_object(core, namespace, name, ref)
        bound[kind.lower()] = obj
        node_name = (obj.get("spec") or {}).get("nodeName") if kind == "Pod" else None
        node = core.store.get_obj(_type(core, "nodes"), "", node_name) if node_name else None
        if node is not None:
            bound["node"] = node  # the pod's node, named in the token for information
    issued_at = tokens.clock()
    token, _ = tokens.issue(account, audiences, expiration, **bound)
    return {
        "kind": KIND, "apiVersion": f"{GROUP}/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": _stamp(issued_at)},
        "spec": {"audiences": audiences, "expirationSeconds": expiration, "boundObjectRef": ref or None},
        "status": {"token": token, "expirationTimestamp": _stamp(issued_at + expiration)},
    }
