"""The node lifecycle rules (`netplane.scheduling.lifecycle`), the controller's writes against a fake API
(`netplane.controllers.nodelifecycle`, clock injected), the DefaultTolerationSeconds defaults, and the
`--node-monitor-grace-period` option."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from netplane.api.validation import apply_defaults
from netplane.cli import _parser
from netplane.controllers.nodelifecycle import NODE_INDEX, NodeLifecycle, _node_of
from netplane.controllers.runtime.informer import Informer
from netplane.controllers.runtime.manager import Manager
from netplane.controllers.workloads.kinds import NODES, PODS
from netplane.scheduling.lifecycle import (
    Health,
    check_heartbeat,
    condition_taints,
    eviction_delay,
    must_mark_not_ready,
    parse_rfc3339,
    rfc3339,
)

Obj = dict[str, Any]

T0 = parse_rfc3339("2025-01-01T00:00:00Z") or 0.0
GRACE = 40.0
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"


def node(ready: str | None = "True", beat: float = T0, taints: list[Obj] | None = None) -> Obj:
    conditions = [] if ready is None else [{"type": "Ready", "status": ready, "reason": "KubeletReady",
                                            "message": "posting", "lastHeartbeatTime": rfc3339(beat),
                                            "lastTransitionTime": rfc3339(T0 - 100)}]
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "n1", "uid": "u-n1", "resourceVersion": "1", "creationTimestamp": rfc3339(T0 - 100)},
            "spec": {"taints": list(taints or [])}, "status": {"conditions": conditions}}


def pod(name: str, tolerations: list[Obj] | None = None, ready: bool = True, node_name: str = "n1") -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "ns", "uid": f"u-{name}", "resourceVersion": "5"},
            "spec": {"nodeName": node_name, "tolerations": list(tolerations or [])},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def tolerate(key: str, seconds: int | None = None, effect: str = "NoExecute") -> Obj:
    return {"key": key, "operator": "Exists", "effect": effect,
            **({"tolerationSeconds": seconds} if seconds is not None else {})}


def taint(key: str, effect: str, added: float | None = None) -> Obj:
    return {"key": key, "effect": effect, **({"timeAdded": rfc3339(added)} if added is not None else {})}


# ----------------------------------------------------------------------------------- heartbeat

def test_a_fresh_heartbeat_leaves_the_status_alone_and_says_when_it_goes_stale() -> None:
    assert check_heartbeat(node(beat=T0), T0 + 15, T0 - 600, GRACE) == Health(None, 25.0)


def test_a_stale_heartbeat_turns_ready_unknown_and_keeps_the_heartbeat_time() -> None:
    health = check_heartbeat(node(beat=T0), T0 + 41, T0 - 600, GRACE)
    assert health.stale_in is None
    assert health.conditions == [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                                  "message": "Kubelet stopped posting node status.",
                                  "lastHeartbeatTime": rfc3339(T0), "lastTransitionTime": rfc3339(T0 + 41)}]


def test_an_unknown_node_is_not_written_again() -> None:
    stale = node(beat=T0)
    stale["status"]["conditions"] = check_heartbeat(stale, T0 + 41, T0 - 600, GRACE).conditions
    assert check_heartbeat(stale, T0 + 90, T0 - 600, GRACE) == Health(None, None)


def test_a_new_controller_gives_every_node_a_full_grace_period() -> None:
    # Heartbeat an hour old, but this controller only started watching 10 s ago.
    assert check_heartbeat(node(beat=T0 - 3600), T0, T0 - 10, GRACE) == Health(None, 30.0)
    assert check_heartbeat(node(beat=T0 - 3600), T0 + 31, T0 - 10, GRACE).conditions is not None


def test_a_node_that_never_posted_its_status() -> None:
    silent = node(ready=None)
    assert check_heartbeat(silent, T0 - 80, T0 - 600, GRACE).stale_in == 20.0  # counted from its creation
    [condition] = check_heartbeat(silent, T0, T0 - 600, GRACE).conditions or []
    assert condition == {"type": "Ready", "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                         "message": "Kubelet never posted node status.", "lastHeartbeatTime": rfc3339(T0 - 100),
                         "lastTransitionTime": rfc3339(T0)}


# ----------------------------------------------------------------------------------- taints

USER_TAINT = {"key": "dedicated", "value": "db", "effect": "NoExecute"}


def test_an_unknown_node_gets_both_unreachable_taints_beside_the_users() -> None:
    assert condition_taints(node("Unknown", taints=[USER_TAINT]), T0) == [
        USER_TAINT, taint(UNREACHABLE, "NoSchedule", T0), taint(UNREACHABLE, "NoExecute", T0)]


def test_taints_that_stay_keep_their_time_added() -> None:
    kept = [taint(UNREACHABLE, "NoSchedule", T0 - 50), taint(UNREACHABLE, "NoExecute", T0 - 50)]
    assert condition_taints(node("Unknown", taints=kept), T0) == kept


def test_a_not_ready_node_trades_unreachable_for_not_ready() -> None:
    unreachable = [taint(UNREACHABLE, "NoSchedule", T0 - 50), taint(UNREACHABLE, "NoExecute", T0 - 50)]
    assert condition_taints(node("False", taints=unreachable), T0) == [
        taint(NOT_READY, "NoSchedule", T0), taint(NOT_READY, "NoExecute", T0)]


def test_a_ready_node_loses_the_controllers_taints_only() -> None:
    mine = [taint(UNREACHABLE, "NoSchedule", T0 - 50), taint(NOT_READY, "NoExecute", T0 - 50)]
    # PreferNoSchedule with the same key is not a taint this controller sets: someone else's.
    theirs = [USER_TAINT, {"key": UNREACHABLE, "effect": "PreferNoSchedule"}]
    assert condition_taints(node("True", taints=[*mine, *theirs]), T0) == theirs


def test_a_node_without_a_ready_condition_keeps_its_taints() -> None:
    assert condition_taints(node(None, taints=[USER_TAINT]), T0) == [USER_TAINT]


def test_pods_are_marked_not_ready_on_nodes_that_are_not_ready() -> None:
    assert must_mark_not_ready(node("Unknown"), pod("a"))
    assert must_mark_not_ready(node("False"), pod("a"))
    assert not must_mark_not_ready(node("Unknown"), pod("a", ready=False))
    assert not must_mark_not_ready(node("True"), pod("a"))
    assert not must_mark_not_ready(node(None), pod("a"))


# ----------------------------------------------------------------------------------- eviction

NO_EXECUTE = [taint(UNREACHABLE, "NoSchedule", T0), taint(UNREACHABLE, "NoExecute", T0)]


@pytest.mark.parametrize(("tolerations", "taints", "now", "delay"), [
    ([], [taint(UNREACHABLE, "NoSchedule", T0)], T0, None),                      # NoSchedule never evicts
    ([], NO_EXECUTE, T0, 0.0),                                                    # untolerated: at once
    ([tolerate(NOT_READY, 300)], NO_EXECUTE, T0, 0.0),                            # tolerates another taint
    ([tolerate(UNREACHABLE)], NO_EXECUTE, T0 + 3600, None),                       # no limit: never
    ([{"operator": "Exists"}], NO_EXECUTE, T0, None),                             # tolerates everything
    ([tolerate(UNREACHABLE, 5)], NO_EXECUTE, T0 + 2, 3.0),                        # counted from timeAdded
    ([tolerate(UNREACHABLE, 5)], NO_EXECUTE, T0 + 9, 0.0),                        # overdue
    ([tolerate(UNREACHABLE, 5), tolerate(UNREACHABLE)], NO_EXECUTE, T0, 5.0),     # the limit wins
    ([tolerate(UNREACHABLE, 300), tolerate(UNREACHABLE, 5)], NO_EXECUTE, T0, 5.0),  # the shortest limit
    ([tolerate(UNREACHABLE, -3)], NO_EXECUTE, T0, 0.0),                           # negative: at once
    ([{"key": UNREACHABLE, "operator": "Exists", "tolerationSeconds": 5}], NO_EXECUTE, T0, 5.0),  # any effect
    ([tolerate(UNREACHABLE, 30), tolerate("dedicated", 10)],                      # the earliest deadline
     [taint(UNREACHABLE, "NoExecute", T0), {**USER_TAINT, "timeAdded": rfc3339(T0 - 8)}], T0, 2.0),
    ([tolerate(UNREACHABLE, 5)], [taint(UNREACHABLE, "NoExecute")], T0, 5.0),     # no timeAdded: from now
])
def test_eviction_delay(tolerations: list[Obj], taints: list[Obj], now: float, delay: float | None) -> None:
    assert eviction_delay(pod("a", tolerations), taints, now) == delay


# ----------------------------------------------------------------------------------- defaults

def _defaulted_pod(tolerations: list[Obj] | None) -> list[Obj]:
    obj: Obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}],
                         **({"tolerations": tolerations} if tolerations is not None else {})}}
    apply_defaults("", "Pod", obj)
    return list(obj["spec"]["tolerations"])


def test_pods_tolerate_node_problems_for_five_minutes_by_default() -> None:
    assert _defaulted_pod(None) == [tolerate(NOT_READY, 300), tolerate(UNREACHABLE, 300)]


def test_a_pod_that_says_something_about_a_node_problem_keeps_its_word() -> None:
    own = [tolerate(UNREACHABLE, 5), {"key": "gpu", "operator": "Exists"}]
    assert _defaulted_pod(own) == [*own, tolerate(NOT_READY, 300)]
    daemon = [tolerate(NOT_READY), tolerate(UNREACHABLE)]  # a DaemonSet's: no limit
    assert _defaulted_pod(daemon) == daemon
    assert _defaulted_pod([{"operator": "Exists"}]) == [{"operator": "Exists"}]
    # A NoSchedule toleration says nothing about eviction.
    assert _defaulted_pod([tolerate(UNREACHABLE, effect="NoSchedule")]) == [
        tolerate(UNREACHABLE, effect="NoSchedule"), tolerate(NOT_READY, 300), tolerate(UNREACHABLE, 300)]


def test_templates_are_not_given_the_tolerations() -> None:
    deployment: Obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                       "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                           "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    apply_defaults("apps", "Deployment", deployment)
    assert "tolerations" not in deployment["spec"]["template"]["spec"]


# ----------------------------------------------------------------------------------- the controller

class FakeApi:
    """Just enough of the client for the controller and its event recorders; every write is recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.version = 10

    def _stored(self, obj: Obj) -> Obj:
        self.version += 1
        out = copy.deepcopy(obj)
        out["metadata"]["resourceVersion"] = str(self.version)
        return out

    async def update_status(self, res: Any, obj: Obj) -> Obj:
        self.calls.append(("status", copy.deepcopy(obj)))
        return self._stored(obj)

    async def update(self, res: Any, obj: Obj) -> Obj:
        self.calls.append(("update", copy.deepcopy(obj)))
        return self._stored(obj)

    async def patch(self, res: Any, name: str, body: Any, namespace: str | None = None, **_: Any) -> Obj:
        self.calls.append(("patch", (res.plural, name, body)))
        return {}

    async def delete(self, res: Any, name: str, namespace: str | None = None, **_: Any) -> Obj:
        self.calls.append(("delete", name))
        return {}

    async def create(self, res: Any, body: Obj, namespace: str | None = None) -> Obj:
        if res.plural == "events":
            self.calls.append(("event", (body["involvedObject"]["name"], body["reason"], body["message"],
                                         body["source"]["component"])))
        return {"metadata": {"name": body["metadata"]["name"]}}

    def of(self, kind: str) -> list[Any]:
        return [value for what, value in self.calls if what == kind]


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def _controller(api: FakeApi, clock: Clock, nodes: list[Obj], pods: list[Obj]) -> NodeLifecycle:
    mgr = Manager(api)  # type: ignore[arg-type]
    node_informer = Informer(api, NODES)  # type: ignore[arg-type]
    pod_informer = Informer(api, PODS, indexers={NODE_INDEX: _node_of})  # type: ignore[arg-type]
    for obj in nodes:
        node_informer.cache.put(obj)
    for obj in pods:
        pod_informer.cache.put(obj)
    return NodeLifecycle(mgr, node_informer, pod_informer, GRACE, clock)


def test_the_controller_marks_a_silent_node_and_evicts_on_schedule() -> None:
    api, clock = FakeApi(), Clock(T0 - 60)
    plain = pod("plain")
    patient = pod("patient", [tolerate(UNREACHABLE, 5)])
    daemon = pod("daemon", [tolerate(UNREACHABLE), tolerate(NOT_READY)])
    elsewhere = pod("elsewhere", node_name="n2")
    controller = _controller(api, clock, [node(beat=T0 - 60)], [plain, patient, daemon, elsewhere])

    async def scenario() -> None:
        # Watched from T0-60 with a heartbeat from then: stale at T0-20, and nothing written before.
        assert (await controller.reconcile("n1")).requeue_after == 40.0
        assert api.calls == []
        clock.now = T0
        result = await controller.reconcile("n1")
        [written] = api.of("status")
        assert [(c["type"], c["status"], c["reason"]) for c in written["status"]["conditions"]] == [
            ("Ready", "Unknown", "NodeStatusUnknown")]
        [tainted] = api.of("update")
        assert tainted["spec"]["taints"] == [taint(UNREACHABLE, "NoSchedule", T0), taint(UNREACHABLE, "NoExecute", T0)]
        assert tainted["metadata"]["resourceVersion"] == "11"  # the status write's: guarded by what it saw
        # Every pod on the node is marked not ready, guarded by its resourceVersion; pods elsewhere are not.
        marked = sorted((name, body["metadata"]["resourceVersion"], body["status"]["conditions"][0]["status"])
                        for plural, name, body in api.of("patch") if body["status"]["conditions"][0]["type"] == "Ready")
        assert marked == [("daemon", "5", "False"), ("patient", "5", "False"), ("plain", "5", "False")]
        assert api.of("delete") == ["plain"]  # untolerated: at once
        assert result.requeue_after == 5.0    # the patient one's turn
        events = api.of("event")
        assert ("n1", "NodeNotReady", "Node n1 status is now: NodeNotReady", "node-controller") in events
        assert ("plain", "NodeNotReady", "Node is not ready", "node-controller") in events
        assert ("plain", "TaintManagerEviction", "Marking for deletion Pod ns/plain",
                "taint-eviction-controller") in events
        disruption = [body["status"]["conditions"][0] for plural, name, body in api.of("patch")
                      if name == "plain" and body["status"]["conditions"][0]["type"] == "DisruptionTarget"]
        assert disruption and disruption[0]["reason"] == "DeletionByTaintManager"

        # What the informers would bring back: the node as written, the pods marked, "plain" Terminating.
        stored = copy.deepcopy(tainted)
        controller.nodes.cache.put(stored)
        for obj in (patient, daemon):
            controller.pods.cache.put({**obj, "status": {"conditions": [{"type": "Ready", "status": "False"}]}})
        controller.pods.cache.put({**plain, "metadata": {**plain["metadata"], "deletionTimestamp": rfc3339(T0)}})
        api.calls.clear()
        clock.now = T0 + 5
        assert (await controller.reconcile("n1")).requeue_after is None
        assert api.of("delete") == ["patient"]
        assert api.of("status") == [] and api.of("update") == []  # already Unknown and tainted

        # The agent is back: its own Ready status, and the controller's taints go.
        api.calls.clear()
        back = copy.deepcopy(stored)
        back["status"]["conditions"] = [{"type": "Ready", "status": "True", "lastHeartbeatTime": rfc3339(T0 + 6)}]
        controller.nodes.cache.put(back)
        clock.now = T0 + 7
        assert (await controller.reconcile("n1")).requeue_after == 39.0
        [untainted] = api.of("update")
        assert untainted["spec"]["taints"] == []
        assert api.of("status") == [] and api.of("delete") == []

    asyncio.run(scenario())


def test_pod_events_wake_only_sick_or_no_execute_tainted_nodes() -> None:
    api, clock = FakeApi(), Clock(T0)
    tainted = {**node("True", taints=[USER_TAINT]), "metadata": {"name": "n3"}}
    controller = _controller(api, clock, [node("True"), {**node("Unknown"), "metadata": {"name": "n2"}}, tainted],
                             [])
    assert controller.needs_pod_events(pod("a")) == []
    assert controller.needs_pod_events(pod("a", node_name="n2")) == ["n2"]
    assert controller.needs_pod_events(pod("a", node_name="n3")) == ["n3"]
    assert controller.needs_pod_events(pod("a", node_name="")) == []


# ----------------------------------------------------------------------------------- the option

@pytest.mark.parametrize(("text", "seconds"), [("10s", 10.0), ("40", 40.0), ("1m30s", 90.0), ("500ms", 0.5),
                                               ("2.5s", 2.5), ("1h", 3600.0)])
def test_the_grace_period_option_takes_durations(text: str, seconds: float) -> None:
    for command in ("up", "controller"):
        assert _parser().parse_args([command, "--node-monitor-grace-period", text]).node_monitor_grace_period \
            == seconds


@pytest.mark.parametrize("text", ["", "10x", "s", "10s5", "-5s", "0"])
def test_the_grace_period_option_refuses_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["up", "--node-monitor-grace-period", text])


def test_the_default_grace_period_is_kubernetes_40s() -> None:
    assert _parser().parse_args(["up"]).node_monitor_grace_period == 40.0
