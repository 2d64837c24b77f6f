"""The node agent's probe workers: the I/O of each probe handler, and one task per running container
and probe kind that runs it every period and acts on what `probes.ContainerProbes` decides.

Probes go from the node's network namespace, where the agent runs: the node reaches its pods'
addresses directly (a /32 route per pod), so TCP and HTTP probes connect to the pod IP as the
kubelet's do. Exec probes enter the container as `kubectl exec` does (`runtime.client.exec_argv`:
its namespaces, root, capabilities and environment). gRPC probes are not run: they report
"errored", which changes nothing (readiness stays false, liveness never kills).

State lives in memory only; a restarted agent starts its workers afresh, but takes over the
`started`/`ready` it had reported for a container instance that is still the same.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from netplane import KUBERNETES_VERSION
from netplane.controllers.kube.client import Client
from netplane.controllers.runtime.events import EventRecorder
from netplane.dataplane.agent import probes
from netplane.dataplane.agent.probes import Kind, Result
from netplane.dataplane.runtime import client as runtime
from netplane.dataplane.runtime import spec as runtime_spec
from netplane.dataplane.streams.local import container_env

log = logging.getLogger("netplane.agent.probes")

Obj = dict[str, Any]
USER_AGENT = "kube-probe/" + ".".join(KUBERNETES_VERSION.lstrip("v").split(".")[:2])
MAX_OUTPUT = 10 * 1024  # of a response body or a command's output kept for the events
MAX_REDIRECTS = 10


@dataclass(frozen=True)
class Target:
    """Where one container instance's probes go."""
    pod_ip: str | None
    pid: int  # the container's main process: exec probes enter its namespaces
    ports: Mapping[str, int] = field(default_factory=dict)  # named containerPorts
    capabilities: list[str] | None = None  # the container's; None: the runtime's default set


Outcome = tuple[Result, str]


async def run(handler: probes.Handler, target: Target, timeout: float,
              session: Callable[[], aiohttp.ClientSession]) -> Outcome:
    """One probe: its result and what it said (the events' text)."""
    if isinstance(handler, probes.Exec):
        return await run_exec(handler.command, target, timeout)
    if isinstance(handler, probes.GRPC):
        return Result.UNKNOWN, "gRPC probes are not supported by netplane"
    port = probes.resolve_port(handler.port, target.ports)
    host = handler.host or target.pod_ip
    if port is None:
        return Result.UNKNOWN, f"port {handler.port!r} is not a port number or a named containerPort"
    if not host:
        return Result.UNKNOWN, "the pod has no IP address yet"
    if isinstance(handler, probes.TCPSocket):
        return await run_tcp(host, port, timeout)
    return await run_http(session(), handler, host, port, timeout)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _reason(e: BaseException) -> str:
    # The errno's own text ("connection refused"): asyncio puts its "Connect call failed" in strerror.
    if isinstance(e, OSError) and e.errno:
        return os.strerror(e.errno).lower()
    return (str(e) or type(e).__name__).lower()


async def run_tcp(host: str, port: int, timeout: float) -> Outcome:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return Result.FAILURE, f"dial tcp {_hostport(host, port)}: i/o timeout"
    except OSError as e:
        return Result.FAILURE, f"dial tcp {_hostport(host, port)}: connect: {_reason(e)}"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return Result.SUCCESS, ""


async def run_http(session: aiohttp.ClientSession, handler: probes.HTTPGet, host: str, port: int,
                   timeout: float) -> Outcome:
    path = handler.path if handler.path.startswith("/") else "/" + handler.path
    url = URL(f"{handler.scheme.lower()}://{_hostport(host, port)}{path}", encoded=True)
    headers: CIMultiDict[str] = CIMultiDict(handler.headers)
    headers.setdefault("User-Agent", USER_AGENT)
    headers.setdefault("Accept", "*/*")
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        # Redirects within the same host are followed; one elsewhere ends the probe as a success
        # (3xx is), so a probe never leaves for another address.
        for _ in range(MAX_REDIRECTS + 1):
            remaining = max(0.001, deadline - asyncio.get_running_loop().time())
            async with session.get(url, headers=headers, allow_redirects=False, ssl=False,
                                   timeout=aiohttp.ClientTimeout(total=remaining)) as response:
                body = (await response.content.read(MAX_OUTPUT)).decode(errors="replace")
                location = response.headers.get("Location")
                status = response.status
            if 300 <= status < 400 and location:
                following = url.join(URL(location))
                if following.host == url.host:
                    url = following
                    continue
            break
    except TimeoutError:
        return Result.FAILURE, f'Get "{url}": timeout after {timeout:g}s'
    except aiohttp.ClientConnectorError as e:
        return Result.FAILURE, f'Get "{url}": dial tcp {_hostport(host, port)}: connect: {_reason(e.os_error)}'
    except (aiohttp.ClientError, OSError, ValueError) as e:
        return Result.FAILURE, f'Get "{url}": {_reason(e)}'
    if 200 <= status < 400:
        return Result.SUCCESS, body
    return Result.FAILURE, f"HTTP probe failed with statuscode: {status}"


async def run_exec(command: tuple[str, ...], target: Target, timeout: float) -> Outcome:
    if not command:
        return Result.UNKNOWN, "exec probe without a command"
    shown = " ".join(command)
    try:
        argv = runtime.exec_argv({"containerStatuses": [{"name": "", "pid": target.pid}]}, list(command),
                                 capabilities=target.capabilities, env=container_env(target.pid))
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    except OSError as e:
        return Result.UNKNOWN, f"cannot run {shown!r} in the container: {e}"
    assert proc.stdout is not None
    stdout = proc.stdout
    kept = bytearray()

    async def drain() -> None:
        # Read to the end (a command that writes much must not block), keep the first MAX_OUTPUT bytes.
        while chunk := await stdout.read(65536):
            kept.extend(chunk[:MAX_OUTPUT - len(kept)])
        await proc.wait()

    try:
        await asyncio.wait_for(drain(), timeout)
    except TimeoutError:
        return Result.FAILURE, f'command "{shown}" timed out'
    finally:
        if proc.returncode is None:
            # Its own session: the group holds nsenter and what it started inside the pod.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    output = kept.decode(errors="replace")
    return (Result.SUCCESS if proc.returncode == 0 else Result.FAILURE), output


def _epoch(stamp: str | None) -> float | None:
    try:
        return float(calendar.timegm(time.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


@dataclass
class _Instance:
    """One run of one container (between two restarts) and its probe tasks."""
    identity: tuple[int, int]  # (restartCount, pid)
    machine: probes.ContainerProbes
    target: Target
    pod: Obj  # the latest object, for the events
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def stop(self) -> None:
        for task in self.tasks:
            task.cancel()


class Prober:
    def __init__(self, client: Client, node: str, pod_dir: Callable[[str], Path]):
        self.recorder = EventRecorder(client, "kubelet", host=node)
        self.pod_dir = pod_dir
        self.instances: dict[tuple[str, str], _Instance] = {}  # (pod uid, container)
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # No keep-alive, as the kubelet's prober: each probe is a fresh connection.
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, limit=0))
        return self._session

    def sync(self, pod: Obj, shim: Obj, pod_ip: str | None) -> dict[str, tuple[bool, bool]]:
        """Keeps a probe task per running container and probe kind; returns (started, ready) of the
        pod's running containers that have probes, by name."""
        uid = pod["metadata"]["uid"]
        containers = {c.get("name"): c for c in (pod.get("spec") or {}).get("containers") or []}
        reported = {c.get("name"): c for c in (pod.get("status") or {}).get("containerStatuses") or []}
        out: dict[str, tuple[bool, bool]] = {}
        for status in shim.get("containerStatuses") or []:
            name = status.get("name")
            running = (status.get("state") or {}).get("running")
            plan = probes.plan(pod, containers[name]) if name in containers else None
            if plan is None or running is None or not status.get("pid"):
                continue
            identity = (int(status.get("restartCount") or 0), int(status["pid"]))
            instance = self.instances.get((uid, name))
            if instance is None or instance.identity != identity:
                if instance is not None:
                    instance.stop()
                instance = self._start(pod, plan, identity, running.get("startedAt"), reported.get(name), pod_ip)
                self.instances[(uid, name)] = instance
            instance.pod = pod
            out[name] = (instance.machine.started, instance.machine.ready)
        for key in [k for k in self.instances if k[0] == uid and k[1] not in out]:
            self.instances.pop(key).stop()
        return out

    def _start(self, pod: Obj, plan: probes.Plan, identity: tuple[int, int], started_at: str | None,
               reported: Obj | None, pod_ip: str | None) -> _Instance:
        reported = reported or {}
        same = (int(reported.get("restartCount") or 0) == identity[0]
                and ((reported.get("state") or {}).get("running") or {}).get("startedAt") == started_at)
        machine = probes.ContainerProbes(plan, _epoch(started_at) or time.time(),
                                         started=same and bool(reported.get("started")),
                                         ready=same and bool(reported.get("ready")))
        capabilities = None
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            spec = runtime_spec.load(self.pod_dir(pod["metadata"]["uid"]))
            capabilities = next((c.capabilities for c in spec.containers if c.name == plan.container), None)
        instance = _Instance(identity, machine, Target(pod_ip, identity[1], plan.ports, capabilities), pod)
        instance.tasks = [asyncio.create_task(self._work(instance, kind), name=f"probe {plan.container} {kind.value}")
                          for kind in plan.probes]
        return instance

    async def _work(self, instance: _Instance, kind: Kind) -> None:
        machine = instance.machine
        probe = machine.plan.probes[kind]
        loop = asyncio.get_running_loop()
        await asyncio.sleep(machine.first_wait(kind, time.time()))
        while not machine.done(kind):
            tick = loop.time()
            if machine.due(kind, time.time()):
                try:
                    result, output = await run(probe.handler, instance.target, probe.timeout, self.session)
                except Exception as e:  # a probe's own bug must not end the container's probing
                    log.exception("%s probe of %s", kind.value, machine.plan.container)
                    result, output = Result.UNKNOWN, str(e)
                for action in machine.record(kind, result, output.strip()):
                    await self._act(instance, action)
            await asyncio.sleep(max(0.0, tick + probe.period - loop.time()))

    async def _act(self, instance: _Instance, action: probes.Action) -> None:
        meta = instance.pod["metadata"]
        if isinstance(action, probes.Kill):
            log.info("pod %s/%s: killing container %s (restart %d) after a failed probe", meta.get("namespace"),
                     meta["name"], instance.machine.plan.container, instance.identity[0])
            await asyncio.to_thread(runtime.kill_container, self.pod_dir(meta["uid"]),
                                    instance.machine.plan.container, instance.identity[0], action.grace)
            return
        await self.recorder.event({"apiVersion": "v1", "kind": "Pod", "metadata": meta}, action.type,
                                  action.reason, action.message)

    def forget(self, uid: str) -> None:
        """The pod is stopping or gone: no more probes (a terminating container is never killed by one)."""
        for key in [k for k in self.instances if k[0] == uid]:
            self.instances.pop(key).stop()

    async def close(self) -> None:
        tasks = [t for i in self.instances.values() for t in i.tasks]
        for instance in self.instances.values():
            instance.stop()
        self.instances.clear()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
