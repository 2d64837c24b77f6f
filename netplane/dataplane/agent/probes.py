"""Container probes as the kubelet runs them: the pure part (what a probe says, when it runs, what follows).

One `ContainerProbes` per container *instance* (a run between two restarts): a restarted container
starts again from scratch, as the kubelet's workers do when they see a new container ID. Its rules:

- Until the startup probe succeeds, liveness and readiness do not run; the container is not
  `started` (and so not `ready`). Without a startup probe a running container is started.
- `initialDelaySeconds` counts from the container's start, for every probe.
- A probe's reported result changes only after a run of identical results reaches the threshold:
  `successThreshold` successes or `failureThreshold` failures in a row. Before its first reported
  result readiness says "not ready", liveness "alive" and startup "not yet".
- A failed liveness or startup probe (reported, so after the threshold) kills the container; from
  then on this instance is not probed again and is not ready.
- A probe that could not be carried out (`UNKNOWN`: no address yet, a handler this node cannot
  run) changes nothing; it is only reported, as the kubelet reports a probe that "errored".

Time is passed in (seconds, wall clock, the same base as the container's `startedAt`), so the
rules can be tested without sleeping; `prober.py` does the I/O and the waiting.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

DEFAULT_PERIOD = 10
DEFAULT_TIMEOUT = 1
DEFAULT_SUCCESS = 1
DEFAULT_FAILURE = 3
DEFAULT_GRACE = 30.0  # a pod's terminationGracePeriodSeconds when unset


class Kind(enum.Enum):
    STARTUP = "Startup"
    LIVENESS = "Liveness"
    READINESS = "Readiness"

    @property
    def field(self) -> str:
        return f"{self.value.lower()}Probe"


class Result(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class TCPSocket:
    port: int | str
    host: str = ""


@dataclass(frozen=True)
class HTTPGet:
    port: int | str
    path: str = "/"
    scheme: str = "HTTP"
    host: str = ""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Exec:
    command: tuple[str, ...]


@dataclass(frozen=True)
class GRPC:
    port: int
    service: str = ""


Handler = TCPSocket | HTTPGet | Exec | GRPC


@dataclass(frozen=True)
class Probe:
    kind: Kind
    handler: Handler
    initial_delay: float = 0
    period: float = DEFAULT_PERIOD
    timeout: float = DEFAULT_TIMEOUT
    success_threshold: int = DEFAULT_SUCCESS
    failure_threshold: int = DEFAULT_FAILURE
    termination_grace: float | None = None  # the probe's own terminationGracePeriodSeconds


@dataclass(frozen=True)
class Plan:
    """What one container's probes are and what a kill means for it."""
    container: str
    probes: Mapping[Kind, Probe]
    restart_policy: str = "Always"
    grace: float = DEFAULT_GRACE  # the pod's terminationGracePeriodSeconds
    ports: Mapping[str, int] = field(default_factory=dict)  # named containerPorts


def _positive(raw: Obj, key: str, default: int) -> int:
    # The API server defaults these; a zero or garbage value from elsewhere still gets the default.
    try:
        value = int(raw.get(key) or 0)
    except (TypeError, ValueError):
        return default
    return value if value > 0 else default


def _handler(raw: Obj) -> Handler | None:
    if isinstance(raw.get("exec"), dict):
        return Exec(tuple(str(a) for a in raw["exec"].get("command") or ()))
    if isinstance(raw.get("httpGet"), dict):
        h = raw["httpGet"]
        headers = tuple((str(x.get("name", "")), str(x.get("value", ""))) for x in h.get("httpHeaders") or ())
        return HTTPGet(h.get("port", 0), str(h.get("path") or "/"), str(h.get("scheme") or "HTTP").upper(),
                       str(h.get("host") or ""), headers)
    if isinstance(raw.get("tcpSocket"), dict):
        t = raw["tcpSocket"]
        return TCPSocket(t.get("port", 0), str(t.get("host") or ""))
    if isinstance(raw.get("grpc"), dict):
        g = raw["grpc"]
        return GRPC(int(g.get("port") or 0), str(g.get("service") or ""))
    return None


def parse(kind: Kind, raw: Any) -> Probe | None:
    """A container's probe field (with the API's defaults filled in where missing); None: no probe."""
    if not isinstance(raw, dict):
        return None
    handler = _handler(raw)
    if handler is None:
        return None
    grace = raw.get("terminationGracePeriodSeconds")
    return Probe(
        kind, handler,
        initial_delay=max(0, int(raw.get("initialDelaySeconds") or 0)),
        period=_positive(raw, "periodSeconds", DEFAULT_PERIOD),
        timeout=_positive(raw, "timeoutSeconds", DEFAULT_TIMEOUT),
        # The API refuses anything but 1 for liveness and startup; never let another value through.
        success_threshold=_positive(raw, "successThreshold", DEFAULT_SUCCESS) if kind is Kind.READINESS else 1,
        failure_threshold=_positive(raw, "failureThreshold", DEFAULT_FAILURE),
        termination_grace=float(grace) if isinstance(grace, int | float) and grace > 0 else None,
    )


def plan(pod: Obj, container: Obj) -> Plan | None:
    """The probes of one of the pod's containers; None when it has none."""
    found = {kind: p for kind in Kind if (p := parse(kind, container.get(kind.field))) is not None}
    if not found:
        return None
    spec = pod.get("spec") or {}
    grace = spec.get("terminationGracePeriodSeconds")
    ports = {str(p["name"]): int(p["containerPort"]) for p in container.get("ports") or []
             if p.get("name") and p.get("containerPort")}
    return Plan(str(container.get("name", "")), found, str(spec.get("restartPolicy") or "Always"),
                DEFAULT_GRACE if grace is None else float(grace), ports)


def resolve_port(port: int | str, named: Mapping[str, int]) -> int | None:
    """A handler's port: a number, a number written as a string, or a containerPort's name."""
    if isinstance(port, int):
        return port if 0 < port < 65536 else None
    if port.isdigit():
        return resolve_port(int(port), named)
    return named.get(port)


@dataclass(frozen=True)
class Event:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Kill:
    """Stop the container (SIGTERM, SIGKILL after `grace` seconds); the shim starts it again unless the
    pod's restartPolicy is Never."""
    grace: float


Action = Event | Kill


@dataclass
class _Track:
    reported: Result
    last: Result | None = None
    run: int = 0  # how many `last` results in a row


class ContainerProbes:
    """The probes of one container instance; `started_at` is when it started (seconds)."""

    def __init__(self, plan: Plan, started_at: float, *, started: bool = False, ready: bool = False):
        # `started`/`ready` carry over what was reported for this very instance before an agent
        # restart, so adopting a healthy container neither re-runs its startup probe nor pulls it
        # from its Services until the first readiness probe.
        self.plan = plan
        self.started_at = started_at
        self.held = False  # killed: nothing more to probe in this instance
        self.tracks = {
            Kind.STARTUP: _Track(Result.SUCCESS if started else Result.UNKNOWN),
            Kind.LIVENESS: _Track(Result.SUCCESS),
            Kind.READINESS: _Track(Result.SUCCESS if ready and started else Result.FAILURE),
        }

    @property
    def started(self) -> bool:
        return Kind.STARTUP not in self.plan.probes or self.tracks[Kind.STARTUP].reported is Result.SUCCESS

    @property
    def ready(self) -> bool:
        if not self.started or self.held:
            return False
        return Kind.READINESS not in self.plan.probes or self.tracks[Kind.READINESS].reported is Result.SUCCESS

    def done(self, kind: Kind) -> bool:
        """Whether this probe will never run again for this instance."""
        return kind not in self.plan.probes or self.held or (kind is Kind.STARTUP and self.started)

    def first_wait(self, kind: Kind, now: float) -> float:
        """Seconds until the probe may first run (its initial delay, counted from the container's start)."""
        probe = self.plan.probes.get(kind)
        return 0.0 if probe is None else max(0.0, self.started_at + probe.initial_delay - now)

    def due(self, kind: Kind, now: float) -> bool:
        """Whether the probe should run now (at one of its periodic ticks)."""
        probe = self.plan.probes.get(kind)
        if probe is None or self.done(kind):
            return False
        if kind is not Kind.STARTUP and not self.started:
            return False
        return now - self.started_at >= probe.initial_delay

    def record(self, kind: Kind, result: Result, output: str) -> list[Action]:
        """A probe's outcome (`output`: what it said, for the events); returns what must follow."""
        probe = self.plan.probes.get(kind)
        if probe is None or self.done(kind) or (kind is not Kind.STARTUP and not self.started):
            return []  # a probe that was under way when its container was killed, or gated again
        if result is Result.UNKNOWN:
            return [Event("Warning", "Unhealthy", f"{kind.value} probe errored: {output}")]
        actions: list[Action] = []
        if result is Result.FAILURE:
            actions.append(Event("Warning", "Unhealthy", f"{kind.value} probe failed: {output}"))
        track = self.tracks[kind]
        track.run = track.run + 1 if track.last is result else 1
        track.last = result
        threshold = probe.success_threshold if result is Result.SUCCESS else probe.failure_threshold
        if track.run >= threshold:
            track.reported = result
        if kind is not Kind.READINESS and track.reported is Result.FAILURE:
            self.held = True
            track.run = 0
            restart = self.plan.restart_policy != "Never"
            message = f"Container {self.plan.container} failed {kind.value.lower()} probe"
            grace = self.plan.grace if probe.termination_grace is None else probe.termination_grace
            actions += [Kill(grace), Event("Normal", "Killing", message + (", will be restarted" if restart else ""))]
        return actions
