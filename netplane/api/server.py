"""The HTTP(S) front of the API: routing, content negotiation, watch streams, auth."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import yaml
from aiohttp import web
from multidict import CIMultiDict
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from netplane import KUBERNETES_VERSION
from netplane.api import discovery, errors, patch, podactions, protobuf, schemacheck, schemas, tables, tokenrequest
from netplane.api.auth import reviews
from netplane.api.auth.gate import ADMITTED, AuthGate
from netplane.api.core import ApiCore, WriteOptions
from netplane.api.errors import ApiError
from netplane.api.objects import Obj, decode, selectable_fields
from netplane.api.resources import ResourceType
from netplane.api.selectors import parse_field_selector, parse_label_selector
from netplane.api.ssa import api as ssa
from netplane.api.storage import matches
from netplane.api.streaming import StreamingApi
from netplane.api.subresources import get_scale, scale_to_replicas
from netplane.dataplane.streams import StreamBackend
from netplane.store import Compacted, Event

log = logging.getLogger(__name__)

# What a request turned out to be, for metrics.
VERB = web.RequestKey("verb", str)
RESOURCE = web.RequestKey("resource", str)

MAX_BODY = 3 * 1024 * 1024
PUBLIC_PATHS = frozenset({"/version", "/healthz", "/livez", "/readyz"})
BOOKMARK_INTERVAL = 5.0
DEFAULT_WATCH_TIMEOUT = 1800.0
MAX_WATCHES_PER_USER = 1000
MAX_WATCHES = 20_000

VERSION_INFO = {
    "major": "1", "minor": KUBERNETES_VERSION.split(".")[1], "gitVersion": KUBERNETES_VERSION + "+netplane",
    "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
    "buildDate": "2026-11-26T00:00:00Z", "goVersion": "go1.23.4", "compiler": "gc", "platform": "linux/amd64",
}


def _json(body: Any, status: int = 200, content_type: str = "application/json",
          headers: CIMultiDict[str] | dict[str, str] | None = None) -> web.Response:
    all_headers = CIMultiDict(headers or {})
    all_headers["Content-Type"] = content_type
    return web.Response(body=orjson.dumps(body), status=status, headers=all_headers)


def _warning_headers(warnings: list[str]) -> CIMultiDict[str]:
    """One RFC 7234 ``Warning`` header per message; kubectl drops a header whose quoting is broken."""
    headers: CIMultiDict[str] = CIMultiDict()
    for w in warnings:
        text = w.replace("\\", "\\\\").replace('"', '\\"')
        headers.add("Warning", f'299 - "{text}"')
    return headers


def _int_param(request: web.Request, name: str) -> int | None:
    """An integer query parameter, refused as the API server's parameter codec refuses it."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.bad_request(f'strconv.ParseInt: parsing "{raw}": invalid syntax') from None


def _error(e: ApiError) -> web.Response:
    return _json(e.status(), e.code)


def _typed_body(body: Any, group: str, version: str, kind: str) -> dict[str, Any]:
    """A request body that must decode as ``kind`` (DeleteOptions, Scale): 400 with Go's wording if not."""
    if not isinstance(body, dict):
        json_kind = "array" if isinstance(body, list) else "string" if isinstance(body, str) else "number"
        raise errors.bad_request(f"json: cannot unmarshal {json_kind} into Go value of type v1.{kind}")
    schema = schemas.kind_schema(group, version, kind)
    if schema is not None:
        _, type_errors = schemacheck.decode_errors(body, schema)
        if type_errors:
            raise errors.bad_request(type_errors[0])
    return body


@dataclass
class Target:
    rt: ResourceType
    namespace: str | None  # None: every namespace (or cluster-scoped)
    name: str
    subresource: str


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("apiserver_request_total", "Requests by verb, resource and code",
                                ["verb", "resource", "code"], registry=self.registry)
        self.latency = Histogram("apiserver_request_duration_seconds", "Request latency by verb and resource",
                                 ["verb", "resource"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.watches = Gauge("apiserver_registered_watchers", "Open watches", registry=self.registry)
        self.objects = Gauge("apiserver_storage_objects", "Stored objects", registry=self.registry)


class ApiServer:
    def __init__(self, core: ApiCore, token: str, server_address: str = "127.0.0.1:6443",
                 auth: AuthGate | None = None, streams: StreamBackend | None = None):
        self.core = core
        self.token = token
        self.server_address = server_address
        self.metrics = Metrics()
        self._watches_by_user: dict[str, int] = {}
        # Without a data directory (in-process tests) only the admin token exists and nothing is audited.
        self.auth = auth or AuthGate(core, token)
        # exec, attach, log and portforward, relayed to the node side (none: answered 503).
        self.streaming = StreamingApi(core, self.auth, streams)
        from netplane.api.openapi import OpenAPICache

        self.openapi = OpenAPICache(core.registry)
        self.app = web.Application(middlewares=[self._middleware], client_max_size=MAX_BODY)
        self.app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self.app.on_startup.append(self.auth.start)
        self.app.on_cleanup.append(self.auth.stop)

    # --- plumbing -----------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        public = request.path in PUBLIC_PATHS
        if not public:
            try:
                self.auth.admit(request)
            except ApiError as e:
                self.auth.record(request, e.code)
                return _error(e)
        started = time.perf_counter()
        verb, resource = request.method, "other"
        try:
            response = await handler(request)
        except ApiError as e:
            response = _error(e)
        except web.HTTPRequestEntityTooLarge:
            response = _error(errors.too_large())
        except web.HTTPException as e:
            if not public:
                self.auth.record(request, e.status)
            raise
        except Exception:
            log.exception("internal error serving %s %s", request.method, request.path_qs)
            response = _error(ApiError(500, "InternalError", "an internal error occurred; see the server log"))
        if not public:
            self.auth.record(request, response.status, getattr(response, "body", None))
        code = str(response.status)
        resource = request.get(RESOURCE, resource)
        verb = request.get(VERB, verb)
        self.metrics.requests.labels(verb, resource, code).inc()
        if verb != "WATCH":
            self.metrics.latency.labels(verb, resource).observe(time.perf_counter() - started)
        return response

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        if path == "/version":
            return _json(VERSION_INFO)
        if path == "/metrics":
            self.metrics.watches.set(self.core.store.raw.watch_count)
            self.metrics.objects.set(self.core.store.raw.count())
            return web.Response(body=generate_latest(self.metrics.registry),
                                headers={"Content-Type": "text/plain; version=0.0.4"})
        if path.startswith("/openapi/v3"):
            return self._openapi(request, path)
        parts = path.strip("/").split("/")
        if parts[0] == "api":
            if len(parts) == 1:
                return self._discovery_root(request, core=True)
            return await self._group_version(request, "", parts[1], parts[2:])
        if parts[0] == "apis":
            if len(parts) == 1:
                return self._discovery_root(request, core=False)
            if len(parts) == 2:
                doc = discovery.api_group(self.core.registry, parts[1])
                if doc is None:
                    raise errors.no_route()
                return _json(doc)
            return await self._group_version(request, parts[1], parts[2], parts[3:])
        raise errors.no_route()

    # --- discovery and OpenAPI --------------------------------------------------------

    def _discovery_root(self, request: web.Request, core: bool) -> web.Response:
        media = discovery.negotiate(request.headers.get("Accept", ""))
        if media:
            return _json(discovery.aggregated(self.core.registry, core, media), content_type=media)
        if core:
            return _json(discovery.api_versions(self.server_address))
        return _json(discovery.api_group_list(self.core.registry))

    def _openapi(self, request: web.Request, path: str) -> web.Response:
        if path == "/openapi/v3":
            return _json(self.openapi.index())
        gv_path = path[len("/openapi/v3/"):]
        entry = self.openapi.document(gv_path)
        if entry is None:
            raise errors.no_route()
        raw, digest = entry
        asked = request.query.get("hash")
        if asked and asked != digest:
            raise web.HTTPMovedPermanently(f"/openapi/v3/{gv_path}?hash={digest}")
        headers = {"ETag": f'"{digest}"'}
        if asked:
            headers["Cache-Control"] = "public, immutable"
            headers["Expires"] = "Fri, 26 Nov 2027 00:00:00 GMT"
        return web.Response(body=raw, headers={"Content-Type": "application/json", **headers})

    # --- resources ------------------------------------------------------------------

    def _target(self, group: str, version: str, rest: list[str]) -> Target | None:
        registry = self.core.registry
        if len(rest) >= 3 and rest[0] == "namespaces":
            rt = registry.lookup(group, version, rest[2])
            if rt is not None and rt.namespaced and len(rest) <= 5:
                return Target(rt, rest[1], rest[3] if len(rest) > 3 else "", rest[4] if len(rest) > 4 else "")
            if rt is None and group == "" and rest[2] in ("status", "finalize") and len(rest) == 3:
                ns = registry.lookup("", "v1", "namespaces")
                assert ns is not None
                return Target(ns, None, rest[1], rest[2])
            return None
        rt = registry.lookup(group, version, rest[0])
        if rt is None or len(rest) > 3:
            return None
        return Target(rt, None, rest[1] if len(rest) > 1 else "", rest[2] if len(rest) > 2 else "")

    async def _group_version(self, request: web.Request, group: str, version: str,
                             rest: list[str]) -> web.StreamResponse:
        if not rest:
            doc = discovery.resource_list(self.core.registry, group, version)
            if doc is None:
                raise errors.no_route()
            return _json(doc)
        target = self._target(group, version, rest)
        if target is None:
            raise errors.no_route()
        if target.subresource and target.subresource in target.rt.connect:
            request[RESOURCE] = f"{target.rt.plural}/{target.subresource}"
            request[VERB] = "CONNECT"
            return await self.streaming.serve(request, target.rt, target.namespace or "", target.name,
                                              target.subresource)
        if target.subresource and target.subresource not in target.rt.subresources:
            raise errors.no_route()
        request[RESOURCE] = target.rt.plural
        method = request.method
        if reviews.is_review(target.rt):
            request[VERB] = method
            if method != "POST" or target.name:
                raise errors.method_not_allowed()
            return _json(self.auth.review(request, target.rt, await self._body(request)), 201)
        if target.subresource in ("binding", "eviction", "token") and method != "POST":
            raise errors.method_not_allowed()
        if method == "GET":
            if target.name:
                request[VERB] = "GET"
                return self._get(request, target)
            if request.query.get("watch") in ("1", "true"):
                request[VERB] = "WATCH"
                return await self._watch(request, target)
            request[VERB] = "LIST"
            return self._list(request, target)
        if not target.name and method != "POST" and method != "DELETE":
            raise errors.method_not_allowed()
        request[VERB] = method
        if method == "POST" and target.subresource in ("binding", "eviction"):
            body = await self._body(request)
            ns = target.namespace or ""
            if target.subresource == "binding":
                return _json(podactions.bind(self.core, target.rt, ns, target.name, body,
                                             self._write_options(request, "CreateOptions")), 201)
            return _json(podactions.evict(self.core, target.rt, ns, target.name, body), 201)
        if method == "POST" and target.subresource == "token":
            return _json(tokenrequest.create_token(self.core, self.auth.service_accounts, target.namespace or "",
                                                   target.name, await self._body(request)), 201)
        if method == "POST":
            return await self._create(request, target)
        if method == "PUT":
            return await self._update(request, target)
        if method == "PATCH":
            return await self._patch(request, target)
        if method == "DELETE":
            if not target.name:
                return await self._delete_collection(request, target)
            return await self._delete(request, target)
        raise errors.method_not_allowed()

    def _respond(self, request: web.Request, rt: ResourceType, obj: Obj, status: int = 200,
                 warnings: list[str] | None = None) -> web.Response:
        headers = _warning_headers(warnings or [])
        if tables.wants_table(request.headers.get("Accept", "")):
            body = tables.table(rt, [obj], obj["metadata"].get("resourceVersion", ""),
                                request.query.get("includeObject", "Metadata"))
            return _json(body, status, headers=headers)
        return _json(obj, status, headers=headers)

    def _wire(self, rt: ResourceType, value: bytes) -> bytes:
        """A stored value as served. Only built-in objects are stored exactly as served, so their
        bytes are spliced as they are; a custom object keeps the version it was written in."""
        if rt.stored_as_served:
            return value
        return orjson.dumps(self.core.present(rt, decode(value)))

    def _get(self, request: web.Request, target: Target) -> web.Response:
        ns = target.namespace or ""
        if target.subresource == "scale":
            return _json(get_scale(target.rt, self.core.get(target.rt, ns, target.name)))
        rt = target.rt
        if tables.wants_table(request.headers.get("Accept", "")):
            return self._respond(request, rt, self.core.get(rt, ns, target.name))
        record = self.core.get_record(rt, ns, target.name)
        return web.Response(body=self._wire(rt, record.value), headers={"Content-Type": "application/json"})

    def _selectors(self, request: web.Request, rt: ResourceType) -> tuple[Any, Any]:
        raw_labels = request.query.get("labelSelector")
        admitted = request.get(ADMITTED)
        if admitted is not None and admitted.list_scope:
            # The caller may see only part of the collection (a project member listing namespaces).
            raw_labels = ",".join(s for s in (raw_labels, admitted.list_scope) if s)
        labels = parse_label_selector(raw_labels)
        fields = parse_field_selector(request.query.get("fieldSelector"), selectable_fields(rt))
        return labels, fields

    def _list(self, request: web.Request, target: Target) -> web.Response:
        rt = target.rt
        labels, fields = self._selectors(request, rt)
        records, rev = self.core.list(rt, target.namespace, labels, fields)
        start_key, list_rev = "", str(rev)
        token = request.query.get("continue")
        if token:
            try:
                state = orjson.loads(base64.urlsafe_b64decode(token))
                start_key, list_rev = state["start"], state["rv"]
            except Exception:
                raise errors.bad_request("continue key is not valid: incorrect encoded start resourceVersion "
                                         "(version meta.k8s.io/v1)") from None
            records = [r for r in records if r.key > start_key]
        limit = _int_param(request, "limit") or 0
        next_token = ""
        if 0 < limit < len(records):
            records = records[:limit]
            next_token = base64.urlsafe_b64encode(
                orjson.dumps({"start": records[-1].key, "rv": list_rev})).decode()
        if tables.wants_table(request.headers.get("Accept", "")):
            objs = [self.core.present(rt, decode(r.value)) for r in records]
            return _json(tables.table(rt, objs, list_rev, request.query.get("includeObject", "Metadata"),
                                      continue_token=next_token))
        list_meta: dict[str, Any] = {"resourceVersion": list_rev}
        if next_token:
            list_meta["continue"] = next_token
        items = b",".join(self._wire(rt, r.value) for r in records)
        head = orjson.dumps({"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": list_meta})
        return web.Response(body=head[:-1] + b',"items":[' + items + b"]}",
                            headers={"Content-Type": "application/json"})

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        if len(raw) > MAX_BODY:
            raise errors.too_large()
        ctype = request.headers.get("Content-Type", "application/json").split(";")[0].strip()
        try:
            if ctype == protobuf.CONTENT_TYPE:
                return protobuf.decode(raw)
            if ctype in ("application/yaml", "application/apply-patch+yaml"):
                return yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            if ctype in ("application/json", "application/merge-patch+json", "application/json-patch+json",
                         "application/strategic-merge-patch+json", ""):
                return orjson.loads(raw) if raw else None
        except protobuf.ProtobufDecodeError as e:
            raise errors.bad_request(f"failed to decode protobuf body: {e}") from None
        except (orjson.JSONDecodeError, yaml.YAMLError) as e:
            raise errors.bad_request(f"the body of the request could not be decoded: {e}") from None
        raise errors.unsupported_media_type(ctype)

    @staticmethod
    def _options(request: web.Request) -> WriteOptions:
        validation = request.query.get("fieldValidation", "Strict") or "Strict"
        if validation not in ("Strict", "Warn", "Ignore"):
            raise errors.bad_request(f"fieldValidation parameter unsupported: {validation}")
        return WriteOptions(dry_run=request.query.get("dryRun") == "All", field_validation=validation,
                            field_manager=request.query.get("fieldManager", ""),
                            force=request.query.get("force") == "true")

    async def _create(self, request: web.Request, target: Target) -> web.Response:
        if target.name:
            raise errors.method_not_allowed()
        body = await self._body(request)
        opts = self._write_options(request, "CreateOptions")
        obj = self.core.create(target.rt, target.namespace or "", body, opts)
        return self._respond(request, target.rt, obj, 201, opts.warnings)

    async def _update(self, request: web.Request, target: Target) -> web.Response:
        body = await self._body(request)
        opts = self._write_options(request, "UpdateOptions")
        ns = target.namespace or ""
        if target.subresource == "scale":
            opts.tracked_subresource = "scale"
            current = self.core.get(target.rt, ns, target.name)
            obj = self.core.update(target.rt, ns, target.name,
                                   scale_to_replicas(target.rt, current, body), opts)
            return _json(get_scale(target.rt, obj))
        obj = self.core.update(target.rt, ns, target.name, body, opts, target.subresource)
        return self._respond(request, target.rt, obj, 200, opts.warnings)

    async def _patch(self, request: web.Request, target: Target) -> web.Response:
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
        body = await self._body(request)
        apply = ctype == "application/apply-patch+yaml"
        opts = self._write_options(request, "PatchOptions", apply)
        rt, ns = target.rt, target.namespace or ""
        if apply:
            return self._apply(request, target, body, opts)
        if "force" in request.query:
            raise ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be '
                           "specified for non-apply patch", {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
                               {"reason": "FieldValueForbidden", "field": "force",
                                "message": "Forbidden: may not be specified for non-apply patch"}]})
        record = self.core.store.get(rt, ns, target.name)
        if record is None:
            raise errors.not_found(rt.group_resource, target.name, rt.group, rt.plural)
        current = self.core.present(rt, decode(record.value))
        original = get_scale(rt, current) if target.subresource == "scale" else current
        schema = None
        if target.subresource == "scale":
            schema = schemas.kind_schema("autoscaling", "v1", "Scale")
        elif rt.builtin:
            schema = schemas.kind_schema(rt.group, rt.version, rt.kind)
        if ctype == "application/strategic-merge-patch+json" and (schema is None or not rt.builtin):
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                           "accepted media types include: application/json-patch+json, "
                           "application/merge-patch+json, application/apply-patch+yaml")
        try:
            patched = patch.apply_patch(ctype, original, body, schema)
        except patch.PatchError as e:
            raise ApiError(e.code, e.reason, e.message) from None
        if target.subresource == "scale":
            opts.tracked_subresource = "scale"
            patched = scale_to_replicas(rt, current, patched)
            obj = self.core.update(rt, ns, target.name, patched, opts)
            return _json(get_scale(rt, obj))
        meta = patched.setdefault("metadata", {}) if isinstance(patched, dict) else {}
        if isinstance(meta, dict) and not meta.get("resourceVersion"):
            meta["resourceVersion"] = str(record.revision)
        obj = self.core.update(rt, ns, target.name, patched, opts, target.subresource)
        return self._respond(request, rt, obj, 200, opts.warnings)

    def _write_options(self, request: web.Request, options_kind: str, apply: bool = False) -> WriteOptions:
        """The write's options, with the fieldManager checked and the user agent kept to name
        the writer in managedFields when there is no fieldManager."""
        opts = self._options(request)
        ssa.check_field_manager(opts.field_manager, options_kind, apply)
        opts.user_agent = request.headers.get("User-Agent", "")
        return opts

    def _apply(self, request: web.Request, target: Target, body: Any, opts: WriteOptions) -> web.Response:
        """Server-side apply: merge the configuration into the object (created from nothing
        if absent) with field ownership and conflicts (`netplane.api.ssa`)."""
        rt, ns = target.rt, target.namespace or ""
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be an object")
        if not isinstance(body.get("metadata", {}), dict):
            raise errors.bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a '
                                     f'{rt.kind}: metadata must be an object')
        name = body.setdefault("metadata", {}).setdefault("name", target.name)
        if name != target.name:
            raise errors.bad_request(f"the name of the object ({name}) does not match the name on the URL "
                                     f"({target.name})")
        record = self.core.store.get(rt, ns, target.name)
        opts.applied = True
        if record is None:
            if target.subresource:
                raise errors.not_found(rt.group_resource, target.name, rt.group, rt.plural)
            obj = ssa.apply_config(rt, None, body, opts.field_manager, opts.force)
            obj = self.core.create(rt, ns, obj, opts)
            return self._respond(request, rt, obj, 201, opts.warnings)
        current = self.core.present(rt, decode(record.value))
        obj = ssa.apply_config(rt, current, body, opts.field_manager, opts.force, target.subresource)
        obj["metadata"]["resourceVersion"] = str(record.revision)
        obj = self.core.update(rt, ns, target.name, obj, opts, target.subresource)
        return self._respond(request, rt, obj, 200, opts.warnings)

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if request.can_read_body:
            body = await self._body(request)
            if body is not None:
                # A body that is not DeleteOptions must not turn into "no options": for a
                # collection that would delete everything the selector was meant to protect.
                options = _typed_body(body, "", "v1", "DeleteOptions")
        if "propagationPolicy" in request.query:
            options["propagationPolicy"] = request.query["propagationPolicy"]
        policy = options.get("propagationPolicy")
        if policy is not None and policy not in ("Background", "Foreground", "Orphan"):
            raise errors.unprocessable("DeleteOptions", "", "", [errors.not_supported(
                "propagationPolicy", policy, ["Foreground", "Background", "Orphan", "nil"])])
        return options

    @staticmethod
    def _delete_dry_run(request: web.Request, options: dict[str, Any]) -> bool:
        return request.query.get("dryRun") == "All" or options.get("dryRun") == ["All"]

    async def _delete(self, request: web.Request, target: Target) -> web.Response:
        options = await self._delete_options(request)
        dry_run = self._delete_dry_run(request, options)
        obj = self.core.delete(target.rt, target.namespace or "", target.name, options, dry_run)
        return self._respond(request, target.rt, obj)

    async def _delete_collection(self, request: web.Request, target: Target) -> web.Response:
        options = await self._delete_options(request)
        dry_run = self._delete_dry_run(request, options)
        labels, fields = self._selectors(request, target.rt)
        records, _ = self.core.list(target.rt, target.namespace, labels, fields)
        deleted = []
        for record in records:
            obj = decode(record.value)
            with contextlib.suppress(ApiError):
                deleted.append(self.core.delete(target.rt, obj["metadata"].get("namespace", ""),
                                                obj["metadata"]["name"], dict(options), dry_run))
        return _json({"kind": f"{target.rt.kind}List", "apiVersion": target.rt.api_version,
                      "metadata": {}, "items": deleted})

    # --- watch ---------------------------------------------------------------------

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        rt = target.rt
        labels, fields = self._selectors(request, rt)
        rv_param = request.query.get("resourceVersion", "")
        try:
            from_rev = int(rv_param) if rv_param not in ("", "0") else 0
        except ValueError:
            raise errors.bad_request(f'invalid resource version: "{rv_param}"') from None
        as_table = tables.wants_table(request.headers.get("Accept", ""))
        include = request.query.get("includeObject", "Metadata")
        bookmarks = request.query.get("allowWatchBookmarks") in ("true", "1")
        timeout_param = _int_param(request, "timeoutSeconds")
        timeout = float(timeout_param) if timeout_param is not None else DEFAULT_WATCH_TIMEOUT
        admitted = request.get(ADMITTED)
        user = admitted.user.name if admitted is not None else ""
        with self._watch_slot(user):
            return await self._stream_watch(request, target, labels, fields, from_rev, as_table, include,
                                            bookmarks, timeout)

    @contextlib.contextmanager
    def _watch_slot(self, user: str) -> Iterator[None]:
        """Hold one of the limited watch slots; a flood of watches from one user (or from all)
        is answered 429 instead of starving everyone else of memory and file descriptors."""
        held = self._watches_by_user.get(user, 0)
        if held >= MAX_WATCHES_PER_USER or sum(self._watches_by_user.values()) >= MAX_WATCHES:
            raise ApiError(429, "TooManyRequests", "Too many requests, please try again later.",
                           {"retryAfterSeconds": 1})
        self._watches_by_user[user] = held + 1
        try:
            yield
        finally:
            self._watches_by_user[user] -= 1
            if not self._watches_by_user[user]:
                del self._watches_by_user[user]

    async def _stream_watch(self, request: web.Request, target: Target, labels: Any, fields: Any, from_rev: int,
                            as_table: bool, include: str, bookmarks: bool, timeout: float) -> web.StreamResponse:
        rt = target.rt
        response = web.StreamResponse(headers={"Content-Type": "application/json",
                                               "Transfer-Encoding": "chunked"})
        await response.prepare(request)
        initial_events = request.query.get("sendInitialEvents") == "true"
        try:
            # With sendInitialEvents the resourceVersion is only a lower bound (NotOlderThan) and
            # the current state always satisfies it, so even a compacted one is served.
            watch = self.core.store.watch(rt, target.namespace, 0 if initial_events else from_rev)
        except Compacted as e:
            status = errors.gone(str(e)).status()
            await response.write(orjson.dumps({"type": "ERROR", "object": status}) + b"\n")
            return response
        first = True
        last_rev = self.core.store.raw.revision

        def encode(kind: str, value: bytes) -> bytes:
            nonlocal first
            if as_table:
                obj = self.core.present(rt, decode(value))
                table = tables.table(rt, [obj], obj["metadata"].get("resourceVersion", ""), include, first)
                first = False
                return orjson.dumps({"type": kind, "object": table}) + b"\n"
            return b'{"type":"' + kind.encode() + b'","object":' + self._wire(rt, value) + b"}\n"

        try:
            if not from_rev or initial_events:
                # With sendInitialEvents (watch-list, kubectl 1.35+) the current state comes first,
                # then a bookmark marking its end, instead of a separate LIST.
                records, list_rev = self.core.store.list(rt, target.namespace, labels, fields)
                for record in records:
                    await response.write(encode("ADDED", record.value))
                if initial_events:
                    mark = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": {
                        "resourceVersion": str(list_rev),
                        "annotations": {"k8s.io/initial-events-end": "true"}}}
                    await response.write(orjson.dumps({"type": "BOOKMARK", "object": mark}) + b"\n")
            deadline = time.monotonic() + timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    event = await asyncio.wait_for(watch.next(), min(remaining, BOOKMARK_INTERVAL))
                except TimeoutError:
                    if bookmarks:
                        mark = {"kind": rt.kind, "apiVersion": rt.api_version,
                                "metadata": {"resourceVersion": str(max(last_rev, from_rev))}}
                        await response.write(orjson.dumps({"type": "BOOKMARK", "object": mark}) + b"\n")
                    continue
                if event is None:
                    break
                last_rev = event.record.revision
                out = self._filter(event, labels, fields)
                if out:
                    await response.write(encode(out, event.record.value))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            watch.close()
        return response

    @staticmethod
    def _filter(event: Event, labels: Any, fields: Any) -> str | None:
        """The event type a filtered watcher sees, including objects entering or leaving the selection."""
        now_in = matches(event.record.attrs, labels, fields)
        if event.type == "DELETED":
            was_in = event.prev is None or matches(event.prev.attrs, labels, fields)
            return "DELETED" if was_in or now_in else None
        was_in = event.prev is not None and matches(event.prev.attrs, labels, fields)
        if now_in:
            return "MODIFIED" if was_in else "ADDED"
        return "DELETED" if was_in else None
