"""The workload controllers' pure decisions: rollout steps, scale-down order, StatefulSet and DaemonSet steps."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from netplane.controllers.workloads import daemons, progress, replicas
from netplane.controllers.workloads.ordinals import Member, Step, next_step, ordinal_of
from netplane.controllers.workloads.rollout import RS, fenceposts, proportional_scale, recreate_step, rolling_step
from netplane.controllers.workloads.templates import same_template, template_hash

Obj = dict[str, Any]
NOW = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("surge", "unavailable", "desired", "expected"), [
    ("25%", "25%", 3, (1, 0)), ("25%", "25%", 4, (1, 1)), ("25%", "25%", 10, (3, 2)),
    (0, 0, 3, (0, 1)), (2, "50%", 5, (2, 2)), ("0%", "0%", 0, (0, 1)),
])
def test_fenceposts(surge: Any, unavailable: Any, desired: int, expected: tuple[int, int]) -> None:
    assert fenceposts(surge, unavailable, desired) == expected


NEW0 = RS("new", 0, 0, "2")
OLD3 = RS("old", 3, 3, "1")


@pytest.mark.parametrize(("desired", "surge", "unavailable", "new", "olds", "step"), [
    (3, 1, 0, NEW0, [OLD3], {"new": 1}),                                 # surge first
    (3, 1, 0, RS("new", 1, 0, "2"), [OLD3], {}),                         # new pod not available: wait
    (3, 1, 0, RS("new", 1, 1, "2"), [OLD3], {"old": 2}),                 # it is: one old goes
    (3, 1, 0, RS("new", 1, 1, "2"), [RS("old", 2, 2, "1")], {"new": 2}),
    (3, 0, 1, NEW0, [OLD3], {"old": 2}),                                 # no surge: make room first
    (3, 1, 1, RS("new", 1, 0, "2"), [RS("old", 3, 1, "1")], {"old": 2}),  # unhealthy old pods go first
    (3, 1, 0, RS("new", 1, 0, "2"), [RS("old", 3, 1, "1")], {}),          # …but never below minAvailable
    (3, 1, 1, RS("new", 3, 3, "2"), [RS("old", 1, 1, "1")], {"old": 0}),
    (3, 1, 0, RS("new", 4, 0, "2"), [], {"new": 3}),                     # too many: down to desired
    (4, 1, 1, RS("new", 0, 0, "3"), [RS("a", 2, 2, "1"), RS("b", 2, 2, "2")], {"new": 1}),
    (4, 0, 1, RS("new", 0, 0, "3"), [RS("a", 2, 2, "1"), RS("b", 2, 2, "2")], {"a": 1}),  # oldest first
])
def test_rolling_step(desired: int, surge: int, unavailable: int, new: RS, olds: list[RS],
                      step: dict[str, int]) -> None:
    assert rolling_step(desired, surge, unavailable, new, olds) == step


@pytest.mark.parametrize(("new", "olds", "left", "step"), [
    (NEW0, [OLD3], 3, {"old": 0}),
    (NEW0, [RS("old", 0)], 2, {}),            # old pods still there: wait
    (NEW0, [RS("old", 0)], 0, {"new": 3}),
    (RS("new", 3), [RS("old", 0)], 0, {}),
])
def test_recreate_step(new: RS, olds: list[RS], left: int, step: dict[str, int]) -> None:
    assert recreate_step(3, new, olds, left) == step


@pytest.mark.parametrize(("desired", "surge", "sets", "expected"), [
    (20, 3, [RS("new", 5, created="2", max_replicas=13), RS("old", 8, created="1", max_replicas=13)],
     {"new": 9, "old": 14}),
    (5, 1, [RS("new", 4, created="2", max_replicas=11), RS("old", 7, created="1", max_replicas=11)],
     {"new": 2, "old": 4}),
    (0, 0, [RS("new", 2, created="2"), RS("old", 1, created="1")], {"new": 0, "old": 0}),
])
def test_proportional_scale(desired: int, surge: int, sets: list[RS], expected: dict[str, int]) -> None:
    result = proportional_scale(desired, surge, sets)
    assert result == expected
    assert sum(result.values()) == (desired + surge if desired else 0)


def pod(name: str, *, node: str = "", phase: str = "Running", ready_at: dt.datetime | None = None,
        created: str = "2025-01-01T10:00:00Z", restarts: int = 0) -> Obj:
    conditions = [{"type": "Ready", "status": "True",
                   "lastTransitionTime": ready_at.strftime("%Y-%m-%dT%H:%M:%SZ")}] if ready_at else []
    return {"metadata": {"name": name, "creationTimestamp": created, "labels": {"app": "web"}},
            "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": conditions,
                       "containerStatuses": [{"restartCount": restarts}]}}


def test_scale_down_deletes_the_least_useful_pods_first() -> None:
    early = NOW - dt.timedelta(hours=1)
    pods = [
        pod("ready-old", node="n1", ready_at=early),
        pod("ready-recent", node="n2", ready_at=NOW - dt.timedelta(minutes=1)),
        pod("not-ready", node="n2"),
        pod("pending", node="n1", phase="Pending"),
        pod("unscheduled", phase="Pending"),
        pod("crowded", node="n3", ready_at=early), pod("crowded2", node="n3", ready_at=early),
        pod("restarts", node="n1", ready_at=early, restarts=4),
    ]
    order = [p["metadata"]["name"] for p in replicas.plan(0, pods).delete]
    # Not running or not ready first; then pods on the most crowded node (n1: 3), more restarts first;
    # then the shorter-ready one.
    assert order == ["unscheduled", "pending", "not-ready", "restarts", "ready-old", "ready-recent",
                     "crowded", "crowded2"]
    assert replicas.plan(2, pods[:2]) == replicas.Plan()
    assert replicas.plan(5, pods[:2]).create == 3
    finished = pod("done", phase="Succeeded")
    assert replicas.plan(1, [finished]).create == 1  # a finished pod is no replica


def test_availability_waits_for_min_ready_seconds() -> None:
    pods = [pod("a", ready_at=NOW - dt.timedelta(seconds=30)), pod("b", ready_at=NOW - dt.timedelta(seconds=5)),
            pod("c")]
    counts = replicas.count(pods, {"app": "web"}, 10, NOW)
    assert (counts.replicas, counts.ready, counts.available, counts.recheck_after) == (3, 2, 1, 5.0)


def test_slow_start_batches() -> None:
    assert replicas.slow_start_batches(10) == [1, 2, 4, 3]
    assert replicas.slow_start_batches(0) == []


def test_template_hash_ignores_its_own_label_and_nulls() -> None:
    t = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    labelled = {"metadata": {"labels": {"app": "web", "pod-template-hash": "x"}, "creationTimestamp": None},
                "spec": t["spec"]}
    assert template_hash(t) == template_hash(labelled) and same_template(t, labelled)
    assert template_hash(t) != template_hash(t, collision_count=1)
    assert set(template_hash(t)) <= set("bcdfghjklmnpqrstvwxz2456789")


def spec(**kw: Any) -> progress.Spec:
    return progress.Spec(**{"replicas": 3, "generation": 2, "max_unavailable": 0, "progress_deadline": 600, **kw})


def test_deployment_conditions() -> None:
    counts = progress.counted_status(2, progress.Counts(3, 3, 3, 3), [])
    done = progress.next_status(spec(), {}, counts, "web-1", NOW)
    assert {c["type"]: (c["status"], c["reason"]) for c in done["conditions"]} == {
        "Available": ("True", "MinimumReplicasAvailable"), "Progressing": ("True", "NewReplicaSetAvailable")}
    rolling = progress.counted_status(2, progress.Counts(1, 1, 0, 0), [progress.Counts(3, 3, 3, 3)])
    assert rolling == {"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1, "readyReplicas": 3,
                       "availableReplicas": 3, "unavailableReplicas": 1}
    moved = progress.next_status(spec(), {}, rolling, "web-2", NOW)
    cond = progress.find(moved["conditions"], "Progressing")
    assert cond is not None and cond["reason"] == "ReplicaSetUpdated"
    assert cond["message"] == 'ReplicaSet "web-2" is progressing.'
    still = progress.next_status(spec(), rolling, rolling, "web-2", NOW)
    assert progress.find(still["conditions"], "Progressing") is None  # no progress seen, no deadline running
    stuck_since = NOW - dt.timedelta(seconds=601)
    previous = {**rolling, "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                                           "lastUpdateTime": stuck_since.strftime("%Y-%m-%dT%H:%M:%SZ")}]}
    timed_out = progress.next_status(spec(), previous, rolling, "web-2", NOW)
    cond = progress.find(timed_out["conditions"], "Progressing")
    assert cond is not None and (cond["status"], cond["reason"], cond["message"]) == (
        "False", "ProgressDeadlineExceeded", 'ReplicaSet "web-2" has timed out progressing.')
    unavailable = progress.next_status(spec(), {}, progress.counted_status(2, progress.Counts(3, 3, 1, 1), []),
                                       "web-1", NOW)
    available = progress.find(unavailable["conditions"], "Available")
    assert available is not None and available["reason"] == "MinimumReplicasUnavailable"


H = Member(healthy=True, revision="r2")


@pytest.mark.parametrize(("replicas_", "members", "parallel", "partition", "step"), [
    (3, {}, False, 0, Step(create=(0,))),
    (3, {0: Member(revision="r2")}, False, 0, Step()),                        # 0 not ready yet: wait
    (3, {0: H}, False, 0, Step(create=(1,))),
    (3, {}, True, 0, Step(create=(0, 1, 2))),
    (1, {0: H, 1: H, 2: H}, False, 0, Step(delete=(2,))),                     # highest first, one at a time
    (1, {0: H, 1: H, 2: Member(terminating=True)}, False, 0, Step()),
    (1, {0: H, 1: H, 2: H}, True, 0, Step(delete=(2, 1))),
    (2, {0: H, 1: Member(failed=True)}, False, 0, Step(delete=(1,))),
    (3, {0: H, 1: Member(healthy=True, revision="r1"), 2: Member(healthy=True, revision="r1")}, False, 0,
     Step(delete=(2,))),                                                      # rolling update from the top
    (3, {0: Member(healthy=True, revision="r1"), 1: H, 2: H}, False, 1, Step()),  # below the partition
    (3, {0: H, 1: H, 2: H}, False, None, Step()),
])
def test_statefulset_steps(replicas_: int, members: dict[int, Member], parallel: bool, partition: int | None,
                           step: Step) -> None:
    assert next_step(replicas_, 0, members, parallel=parallel, update_revision="r2", partition=partition) == step


def test_ordinals() -> None:
    assert [ordinal_of("web", n) for n in ("web-0", "web-12", "web-01", "web-x", "webby-1")] == [
        0, 12, None, None, None]


def n(name: str, labels: dict[str, str] | None = None, taints: list[Obj] | None = None,
      unschedulable: bool = False) -> Obj:
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"taints": taints or [], "unschedulable": unschedulable}}


@pytest.mark.parametrize(("template", "node", "runs"), [
    ({}, n("a"), True),
    ({}, n("a", unschedulable=True), True),                            # daemons run on cordoned nodes
    ({}, n("a", taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]), True),
    ({}, n("a", taints=[{"key": "gpu", "effect": "NoSchedule"}]), False),
    ({"tolerations": [{"key": "gpu", "operator": "Exists"}]}, n("a", taints=[{"key": "gpu", "effect": "NoSchedule"}]),
     True),
    ({"nodeSelector": {"role": "edge"}}, n("a"), False),
    ({"nodeSelector": {"role": "edge"}}, n("a", {"role": "edge"}), True),
])
def test_daemon_eligibility(template: Obj, node: Obj, runs: bool) -> None:
    assert daemons.should_run(daemons.daemon_pod_spec(template), node) is runs


def test_daemon_pods_stay_on_an_unreachable_node() -> None:
    unreachable = n("a", taints=[{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
                                 {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}])
    spec = daemons.daemon_pod_spec({})
    # No new daemon pod there (NoSchedule is not tolerated), but the one running stays (NoExecute is).
    assert not daemons.should_run(spec, unreachable) and daemons.may_stay(spec, unreachable)
    assert not daemons.may_stay(spec, n("a", taints=[{"key": "gpu", "effect": "NoExecute"}]))
    pods = [dpod("p1", "a"), dpod("p2", "b")]
    plan = daemons.plan(["b"], pods, {"p1": "r", "p2": "r"}, "r", 1, staying={"a"})
    assert plan.delete == () and plan.create == ()
    assert plan.status["numberMisscheduled"] == 1


def dpod(name: str, node: str, *, ready_: bool = True, bound: bool = True, created: str = "1") -> Obj:
    spec = {"nodeName": node} if bound else daemons.pinned({}, node)
    return {"metadata": {"name": name, "creationTimestamp": created}, "spec": spec,
            "status": {"phase": "Running" if ready_ else "Pending",
                       "conditions": [{"type": "Ready", "status": "True" if ready_ else "False"}]}}


def test_daemon_plan() -> None:
    pods = [dpod("p1", "a"), dpod("p1b", "a", created="2"), dpod("p3", "gone"), dpod("p4", "b", bound=False)]
    plan = daemons.plan(["a", "b", "c"], pods, {"p1": "r", "p1b": "r", "p4": "r"}, "r", 1)
    assert plan.create == ("c",)
    assert [p["metadata"]["name"] for p in plan.delete] == ["p1b", "p3"]
    assert plan.status["desiredNumberScheduled"] == 3 and plan.status["numberMisscheduled"] == 1


def test_daemon_rolling_update_respects_max_unavailable() -> None:
    pods = [dpod("p1", "a"), dpod("p2", "b"), dpod("p3", "c", ready_=False)]
    plan = daemons.plan(["a", "b", "c"], pods, {"p1": "old", "p2": "old", "p3": "old"}, "new", 2)
    # p3 is unavailable anyway (free); one more of the ready ones fits in maxUnavailable 2.
    assert [p["metadata"]["name"] for p in plan.delete] == ["p3", "p1"]
    assert daemons.plan(["a"], [dpod("p1", "a")], {"p1": "old"}, "new", None).delete == ()  # OnDelete
