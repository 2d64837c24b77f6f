"""Container probes' pure rules: parsing, thresholds, delays, startup gating, kills (no processes, no sleeps)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as s

from netplane.dataplane.agent import probes
from netplane.dataplane.agent import status as st
from netplane.dataplane.agent.probes import Event, Kill, Kind, Result
from netplane.dataplane.runtime.shim import should_restart

pytestmark = pytest.mark.unit

T0 = 1_000_000.0
OK, FAIL, UNKNOWN = Result.SUCCESS, Result.FAILURE, Result.UNKNOWN


def make(kinds: dict[Kind, dict[str, Any]], restart_policy: str = "Always", grace: float = 30,
         started_at: float = T0, **seed: bool) -> probes.ContainerProbes:
    found = {k: probes.Probe(k, probes.Exec(("true",)), **v) for k, v in kinds.items()}
    return probes.ContainerProbes(probes.Plan("app", found, restart_policy, grace), started_at, **seed)


def reasons(actions: list[probes.Action]) -> list[str]:
    return [a.reason if isinstance(a, Event) else "KILL" for a in actions]


# ------------------------------------------------------------------ parsing

def parsed(kind: Kind, raw: dict[str, Any]) -> probes.Probe:
    probe = probes.parse(kind, raw)
    assert probe is not None
    return probe


def test_parse_fills_the_kubelet_defaults_and_reads_every_handler() -> None:
    probe = parsed(Kind.READINESS, {"httpGet": {"port": "http", "path": "/healthz", "scheme": "https",
                                                "httpHeaders": [{"name": "X-A", "value": "1"}]}})
    assert probe == probes.Probe(Kind.READINESS, probes.HTTPGet("http", "/healthz", "HTTPS", "", (("X-A", "1"),)),
                                 initial_delay=0, period=10, timeout=1, success_threshold=1, failure_threshold=3)
    assert parsed(Kind.LIVENESS, {"tcpSocket": {"port": 80, "host": "10.0.0.1"}}).handler == \
        probes.TCPSocket(80, "10.0.0.1")
    assert parsed(Kind.LIVENESS, {"exec": {"command": ["cat", "/tmp/x"]}}).handler == probes.Exec(("cat", "/tmp/x"))
    assert parsed(Kind.STARTUP, {"grpc": {"port": 9000}}).handler == probes.GRPC(9000)
    assert probes.parse(Kind.LIVENESS, {"initialDelaySeconds": 5}) is None  # no handler: no probe
    assert probes.parse(Kind.LIVENESS, None) is None


def test_parse_keeps_set_values_and_forces_single_success_for_liveness_and_startup() -> None:
    raw = {"exec": {"command": ["true"]}, "initialDelaySeconds": 4, "periodSeconds": 2, "timeoutSeconds": 3,
           "successThreshold": 2, "failureThreshold": 5, "terminationGracePeriodSeconds": 7}
    ready = parsed(Kind.READINESS, raw)
    assert (ready.initial_delay, ready.period, ready.timeout, ready.success_threshold, ready.failure_threshold,
            ready.termination_grace) == (4, 2, 3, 2, 5, 7.0)
    for kind in (Kind.LIVENESS, Kind.STARTUP):
        assert parsed(kind, raw).success_threshold == 1


def test_plan_reads_the_pod_grace_policy_and_named_ports() -> None:
    pod = {"spec": {"restartPolicy": "OnFailure", "terminationGracePeriodSeconds": 5}}
    container = {"name": "web", "ports": [{"name": "http", "containerPort": 8080}, {"containerPort": 9090}],
                 "readinessProbe": {"httpGet": {"port": "http"}}, "livenessProbe": {"tcpSocket": {"port": 8080}}}
    plan = probes.plan(pod, container)
    assert plan is not None
    assert (plan.container, plan.restart_policy, plan.grace, dict(plan.ports)) == ("web", "OnFailure", 5.0,
                                                                                   {"http": 8080})
    assert set(plan.probes) == {Kind.READINESS, Kind.LIVENESS}
    assert probes.plan({"spec": {}}, {"name": "plain"}) is None
    only_startup = probes.plan({"spec": {}}, {"name": "a", "startupProbe": {"exec": {"command": ["x"]}}})
    assert only_startup is not None and only_startup.grace == 30


@pytest.mark.parametrize(("port", "expected"), [(80, 80), ("8080", 8080), ("http", 8080), ("nope", None),
                                                (0, None), (70000, None)])
def test_resolve_port(port: int | str, expected: int | None) -> None:
    assert probes.resolve_port(port, {"http": 8080}) == expected


# ------------------------------------------------------------------ the state machine

def test_without_probes_of_a_kind_a_running_container_is_started_and_ready() -> None:
    m = make({Kind.LIVENESS: {}})
    assert m.started and m.ready
    assert not m.due(Kind.READINESS, T0 + 100) and m.done(Kind.READINESS) and m.done(Kind.STARTUP)


def test_readiness_starts_unready_and_follows_its_thresholds() -> None:
    m = make({Kind.READINESS: {"success_threshold": 2, "failure_threshold": 2}})
    assert m.started and not m.ready
    assert m.record(Kind.READINESS, OK, "") == [] and not m.ready  # one success of two
    m.record(Kind.READINESS, OK, "")
    assert m.ready
    failed = m.record(Kind.READINESS, FAIL, "HTTP probe failed with statuscode: 500")
    assert failed == [Event("Warning", "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 500")]
    assert m.ready  # one failure of two
    m.record(Kind.READINESS, OK, "")
    m.record(Kind.READINESS, FAIL, "x")
    assert m.ready  # the run of failures started again
    m.record(Kind.READINESS, FAIL, "x")
    assert not m.ready
    assert not m.done(Kind.READINESS)  # a failing readiness probe never kills: it keeps probing


def test_initial_delay_counts_from_the_container_start() -> None:
    m = make({Kind.READINESS: {"initial_delay": 5}}, started_at=T0)
    assert not m.due(Kind.READINESS, T0 + 4.9)
    assert m.due(Kind.READINESS, T0 + 5)
    assert m.first_wait(Kind.READINESS, T0 + 2) == 3
    assert m.first_wait(Kind.READINESS, T0 + 9) == 0
    assert m.first_wait(Kind.LIVENESS, T0) == 0  # no such probe


def test_startup_gates_liveness_and_readiness() -> None:
    m = make({Kind.STARTUP: {"failure_threshold": 30}, Kind.LIVENESS: {}, Kind.READINESS: {}})
    assert not m.started and not m.ready
    assert m.due(Kind.STARTUP, T0) and not m.due(Kind.LIVENESS, T0) and not m.due(Kind.READINESS, T0)
    # Results of gated probes (one that was under way, say) change nothing.
    assert m.record(Kind.LIVENESS, FAIL, "x") == [] and m.record(Kind.READINESS, OK, "") == []
    assert m.record(Kind.STARTUP, FAIL, "not yet") == [Event("Warning", "Unhealthy", "Startup probe failed: not yet")]
    m.record(Kind.STARTUP, OK, "")
    assert m.started and not m.ready  # readiness has not said yes yet
    assert m.done(Kind.STARTUP) and not m.due(Kind.STARTUP, T0 + 60)
    assert m.due(Kind.LIVENESS, T0) and m.due(Kind.READINESS, T0)
    m.record(Kind.READINESS, OK, "")
    assert m.ready


def test_liveness_failure_kills_with_the_pod_grace_and_holds_the_instance() -> None:
    m = make({Kind.LIVENESS: {"failure_threshold": 2}, Kind.READINESS: {}}, grace=12)
    m.record(Kind.READINESS, OK, "")
    assert reasons(m.record(Kind.LIVENESS, FAIL, "cat: can't open '/tmp/healthy'")) == ["Unhealthy"]
    actions = m.record(Kind.LIVENESS, FAIL, "cat: can't open '/tmp/healthy'")
    assert actions == [Event("Warning", "Unhealthy", "Liveness probe failed: cat: can't open '/tmp/healthy'"),
                       Kill(12), Event("Normal", "Killing", "Container app failed liveness probe, will be restarted")]
    assert not m.ready and m.started
    assert all(m.done(k) and not m.due(k, T0 + 100) for k in Kind)
    assert m.record(Kind.LIVENESS, FAIL, "again") == []  # killed once only


def test_a_success_between_failures_resets_the_run() -> None:
    m = make({Kind.LIVENESS: {"failure_threshold": 2}})
    for result in (FAIL, OK, FAIL, OK, FAIL):
        assert "KILL" not in reasons(m.record(Kind.LIVENESS, result, ""))


def test_startup_failure_kills_with_the_probe_grace_and_never_says_restart_for_never() -> None:
    m = make({Kind.STARTUP: {"failure_threshold": 1, "termination_grace": 3}}, restart_policy="Never")
    actions = m.record(Kind.STARTUP, FAIL, "no")
    assert actions[1:] == [Kill(3), Event("Normal", "Killing", "Container app failed startup probe")]
    assert not m.started and not m.ready


def test_a_probe_that_could_not_run_changes_nothing() -> None:
    m = make({Kind.LIVENESS: {"failure_threshold": 1}, Kind.READINESS: {}})
    assert m.record(Kind.LIVENESS, UNKNOWN, "gRPC probes are not supported by netplane") == [
        Event("Warning", "Unhealthy", "Liveness probe errored: gRPC probes are not supported by netplane")]
    m.record(Kind.READINESS, UNKNOWN, "x")
    assert not m.ready and not m.held


def test_an_adopted_instance_keeps_what_was_reported() -> None:
    m = make({Kind.STARTUP: {}, Kind.READINESS: {}}, started=True, ready=True)
    assert m.started and m.ready and m.done(Kind.STARTUP)
    # Never ready without started, whatever was carried over.
    assert not make({Kind.STARTUP: {}, Kind.READINESS: {}}, started=False, ready=True).ready


# ------------------------------------------------------------------ invariants

KINDS = s.sampled_from(list(Kind))
RESULTS = s.sampled_from(list(Result))


@s.composite
def machines(draw: s.DrawFn) -> probes.ContainerProbes:
    kinds = draw(s.sets(KINDS, min_size=1))
    spec = {k: {"success_threshold": draw(s.integers(1, 3)) if k is Kind.READINESS else 1,
                "failure_threshold": draw(s.integers(1, 4)), "initial_delay": draw(s.integers(0, 5))} for k in kinds}
    return make(spec, started=draw(s.booleans()), ready=draw(s.booleans()))


def _tail(history: list[Result], n: int, value: Result) -> bool:
    return len(history) >= n and history[-n:] == [value] * n


@settings(max_examples=300)
@given(machines(), s.lists(s.tuples(KINDS, RESULTS, s.floats(0, 20)), max_size=40))
def test_invariants_over_any_sequence_of_results(m: probes.ContainerProbes,
                                                 steps: list[tuple[Kind, Result, float]]) -> None:
    history: dict[Kind, list[Result]] = {k: [] for k in Kind}  # the results that counted
    kills = 0
    for kind, result, offset in steps:
        before = (m.started, m.ready, m.held)
        counts = kind in m.plan.probes and not m.done(kind) and (kind is Kind.STARTUP or m.started)
        if m.due(kind, T0 + offset):
            assert counts and offset >= m.plan.probes[kind].initial_delay
        actions = m.record(kind, result, "out")
        if not counts:
            assert actions == [] and (m.started, m.ready, m.held) == before
        elif result is UNKNOWN:
            assert reasons(actions) == ["Unhealthy"] and (m.started, m.ready, m.held) == before
        else:
            history[kind].append(result)
        assert not m.ready or (m.started and not m.held)  # ready never before started, never once killed
        if before[2]:
            assert not any(m.due(k, T0 + offset) for k in Kind)
        killed = any(isinstance(a, Kill) for a in actions)
        kills += killed
        if counts and result is not UNKNOWN and kind is not Kind.READINESS:
            # Killed exactly when the last failureThreshold results of liveness or startup failed.
            assert killed == _tail(history[kind], m.plan.probes[kind].failure_threshold, FAIL)
        if counts and result is not UNKNOWN and kind is Kind.READINESS:
            probe = m.plan.probes[kind]
            if _tail(history[kind], probe.success_threshold, OK):
                assert m.ready
            if _tail(history[kind], probe.failure_threshold, FAIL):
                assert not m.ready
            if m.ready != before[1]:  # flips only at the end of a full run
                assert _tail(history[kind], probe.success_threshold if m.ready else probe.failure_threshold,
                             OK if m.ready else FAIL)
    assert kills <= 1


# ------------------------------------------------------------------ what follows: status and restarts

POD: dict[str, Any] = {"metadata": {"name": "web", "namespace": "demo", "uid": "u-1"},
                       "spec": {"containers": [{"name": "app", "image": "python:3"},
                                               {"name": "side", "image": "busybox"}]}}


def _shim(*running: str) -> dict[str, Any]:
    def one(name: str) -> dict[str, Any]:
        state = {"running": {"startedAt": "2026-01-01T00:00:00Z"}} if name in running else \
            {"waiting": {"reason": "CrashLoopBackOff"}}
        return {"name": name, "image": "x", "pid": 7, "state": state, "lastState": {}, "restartCount": 0,
                "started": name in running, "ready": name in running}

    return {"phase": "Running", "pausePid": 1, "containerStatuses": [one("app"), one("side")]}


def _conditions(status: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status["conditions"]}


def test_probes_decide_ready_and_started_and_the_pod_conditions_follow() -> None:
    unready = st.pod_status(POD, _shim("app", "side"), "172.31.250.11", "10.16.0.5", probed={"app": (True, False)})
    app, side = unready["containerStatuses"]
    assert (app["started"], app["ready"], side["started"], side["ready"]) == (True, False, True, True)
    assert _conditions(unready)["Ready"] == _conditions(unready)["ContainersReady"] == "False"
    ready = st.pod_status(POD, _shim("app", "side"), "172.31.250.11", "10.16.0.5", probed={"app": (True, True)})
    assert _conditions(ready)["Ready"] == _conditions(ready)["ContainersReady"] == "True"
    # A container that is not running is neither started nor ready, whatever the probes said last.
    down = st.pod_status(POD, _shim("side"), "172.31.250.11", "10.16.0.5", probed={"app": (True, True)})
    assert (down["containerStatuses"][0]["started"], down["containerStatuses"][0]["ready"]) == (False, False)


@pytest.mark.parametrize(("policy", "code", "restart"), [("Always", 0, True), ("OnFailure", 0, True),
                                                        ("OnFailure", 143, True), ("Never", 137, False)])
def test_a_container_killed_for_a_probe_restarts_unless_never(policy: str, code: int, restart: bool) -> None:
    assert should_restart(policy, code, init=False, killed=True) is restart
