"""The pod subresources that stream: ``exec``, ``attach``, ``portforward`` and ``log``.

Checks (pod, container, RBAC) and protocol negotiation happen here, before any upgrade, so a refusal
is an ordinary Status response; the bytes are then relayed to a node-side `StreamBackend`
(netplane.dataplane.streams) which runs, follows or connects to the pod's processes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from aiohttp import web

from netplane.api import errors
from netplane.api.auth.gate import ADMITTED, AuthGate, _forbidden
from netplane.api.core import ApiCore
from netplane.api.errors import ApiError
from netplane.api.resources import ResourceType
from netplane.api.streaming import portforward, remotecommand
from netplane.dataplane.streams import ExecOptions, LogOptions, PodRef, StreamBackend, StreamError
from netplane.dataplane.streams.crilog import parse_time

SUBRESOURCES = ("exec", "attach", "portforward", "log")
# kubectl ≥ 1.31 tunnels SPDY inside a WebSocket for port-forward (KEP-4006).
PORTFORWARD_TUNNEL = "SPDY/3.1+portforward.k8s.io"
MAX_MESSAGE = 16 * 1024 * 1024


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false")
    if value in ("true", "1", "True", "TRUE", "t", "T"):
        return True
    if value in ("false", "0", "False", "FALSE", "f", "F", ""):
        return False
    raise errors.bad_request(f'strconv.ParseBool: parsing "{value}": invalid syntax')


def _int(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f'strconv.ParseInt: parsing "{value}": invalid syntax') from None


def _container_names(pod: dict[str, Any], key: str) -> list[str]:
    return [c.get("name", "") for c in (pod.get("spec") or {}).get(key) or []]


def choose_container(pod: dict[str, Any], asked: str) -> str:
    """The container a request means, refused with kube-apiserver's texts."""
    name = pod["metadata"]["name"]
    containers = _container_names(pod, "containers")
    if not asked:
        if len(containers) == 1:
            return containers[0]
        if not containers:
            raise errors.bad_request(f"a container name must be specified for pod {name}")
        message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
        init = _container_names(pod, "initContainers")
        if init:
            message += f" or one of the init containers: [{' '.join(init)}]"
        raise errors.bad_request(message)
    every = containers + _container_names(pod, "initContainers") + _container_names(pod, "ephemeralContainers")
    if asked not in every:
        raise errors.bad_request(f"container {asked} is not valid for pod {name}")
    return asked


def _api_error(e: StreamError) -> ApiError:
    return ApiError(e.code, e.reason, e.message)


class StreamingApi:
    def __init__(self, core: ApiCore, auth: AuthGate, backend: StreamBackend | None):
        self.core = core
        self.auth = auth
        self.backend = backend

    async def serve(self, request: web.Request, rt: ResourceType, namespace: str, name: str,
                    subresource: str) -> web.StreamResponse:
        allowed = ("GET",) if subresource == "log" else ("GET", "POST")
        if request.method not in allowed:
            raise errors.method_not_allowed()
        pod = self.core.get(rt, namespace, name)
        ref = PodRef(pod["metadata"].get("uid", ""), namespace, name)
        if subresource == "log":
            return await self._logs(request, pod, ref)
        if request.method == "GET":
            self._require_create(request)
        if subresource == "portforward":
            return await self._portforward(request, ref)
        return await self._remotecommand(request, pod, ref, subresource)

    def _require_create(self, request: web.Request) -> None:
        """A WebSocket upgrade is a GET, but it starts something in the pod: like kube-apiserver
        (AuthorizePodWebsocketUpgradeCreatePermission) it also needs ``create`` on the subresource."""
        admitted = request.get(ADMITTED)
        if admitted is None:
            return
        attrs = dataclasses.replace(admitted.attrs, verb="create")
        decision = self.auth.authorize(admitted.user, attrs)
        if not decision.allowed:
            raise _forbidden(admitted.user, attrs, decision.reason)

    def _backend(self) -> StreamBackend:
        if self.backend is None:
            raise ApiError(503, "ServiceUnavailable", "no node serves pod streams on this server")
        return self.backend

    @staticmethod
    def _websocket(request: web.Request) -> None:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            # SPDY upgrades (kubectl's fallback) are not served: WebSocket is what kubectl uses
            # first, and it only falls back when the upgrade fails.
            raise errors.bad_request("Upgrade request required")

    async def _remotecommand(self, request: web.Request, pod: dict[str, Any], ref: PodRef,
                             subresource: str) -> web.StreamResponse:
        command = tuple(request.query.getall("command", []))
        options = ExecOptions(choose_container(pod, request.query.get("container", "")), command,
                              _flag(request, "stdin"), _flag(request, "stdout"), _flag(request, "stderr"),
                              _flag(request, "tty"))
        if not (options.stdin or options.stdout or options.stderr):
            raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
        if subresource == "exec" and not command:
            raise errors.bad_request("you must specify at least one command for the container")
        self._websocket(request)
        protocol = remotecommand.negotiate(request.headers.get("Sec-WebSocket-Protocol", "") or "channel.k8s.io")
        if protocol is None:
            raise errors.bad_request("unable to upgrade: no supported streaming protocol was requested")
        backend = self._backend()
        try:
            if subresource == "exec":
                session = await backend.exec(ref, options)
            else:
                session = await backend.attach(ref, options)
        except StreamError as e:
            raise _api_error(e) from None
        ws = web.WebSocketResponse(protocols=(protocol,), autoping=True, compress=False,
                                   max_msg_size=MAX_MESSAGE)
        try:
            await ws.prepare(request)
        except BaseException:
            await session.terminate()
            raise
        await remotecommand.serve(ws, session, command)
        return ws

    async def _portforward(self, request: web.Request, ref: PodRef) -> web.StreamResponse:
        self._websocket(request)
        offered = {p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")}
        if PORTFORWARD_TUNNEL not in offered:
            raise errors.bad_request(f"unable to upgrade: port-forward is served as {PORTFORWARD_TUNNEL} only")
        backend = self._backend()
        ws = web.WebSocketResponse(protocols=(PORTFORWARD_TUNNEL,), autoping=True, compress=False,
                                   max_msg_size=MAX_MESSAGE)
        await ws.prepare(request)

        async def connect(port: int) -> Any:
            return await backend.port_forward(ref, port)

        await portforward.PortForwardSession(ws, connect).run()
        return ws

    async def _logs(self, request: web.Request, pod: dict[str, Any], ref: PodRef) -> web.StreamResponse:
        options = self._log_options(request, pod)
        chunks = self._backend().logs(ref, options)
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            first = b""
        except StreamError as e:
            raise _api_error(e) from None
        response = web.StreamResponse(headers={"Content-Type": "text/plain", "Transfer-Encoding": "chunked"})
        await response.prepare(request)
        try:
            if first:
                await response.write(first)
            async for chunk in chunks:
                await response.write(chunk)
        except (ConnectionError, StreamError):
            pass
        finally:
            await chunks.aclose()
        return response

    @staticmethod
    def _log_options(request: web.Request, pod: dict[str, Any]) -> LogOptions:
        tail, since_seconds = _int(request, "tailLines"), _int(request, "sinceSeconds")
        limit = _int(request, "limitBytes")
        since_time = request.query.get("sinceTime", "")
        problems = []
        if tail is not None and tail < 0:
            problems.append(errors.invalid("tailLines", tail, "must be greater than or equal to 0"))
        if limit is not None and limit < 1:
            problems.append(errors.invalid("limitBytes", limit, "must be greater than 0"))
        if since_seconds is not None and since_seconds < 1:
            problems.append(errors.invalid("sinceSeconds", since_seconds, "must be greater than 0"))
        if since_seconds is not None and since_time:
            problems.append(errors.forbidden("", "at most one of `sinceTime` or `sinceSeconds` may be specified"))
        stream = request.query.get("stream", "All") or "All"
        if stream not in ("All", "Stdout", "Stderr"):
            problems.append(errors.not_supported("stream", stream, ["All", "Stderr", "Stdout"]))
        if problems:
            raise errors.unprocessable("PodLogOptions", pod["metadata"]["name"], "", problems)
        since = None
        if since_seconds is not None:
            since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=since_seconds)
        elif since_time:
            since = parse_time(since_time)
            if since is None:
                raise errors.bad_request(f'parsing time "{since_time}" as "2006-01-02T15:04:05Z07:00": cannot parse')
        return LogOptions(choose_container(pod, request.query.get("container", "")), _flag(request, "follow"),
                          _flag(request, "previous"), tail, since, _flag(request, "timestamps"), limit, stream)
