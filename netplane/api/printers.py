"""Server-side Table printing: the columns and cells ``kubectl get`` shows on a v1.32 cluster.

The API server always prints the wide variant and lets kubectl hide columns with
priority > 0 unless ``-o wide`` is asked for, so every row here carries every
column. Objects are the external (v1) JSON form; values the real server would
have defaulted before printing (replica counts, service type, port protocol)
are defaulted here too, so an undefaulted object still prints sensibly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from netplane.api import jsonpath

Obj = dict[str, Any]
Cells = list[Any]

_NAME_DOC = "Name of the object, unique within its namespace."
_AGE_DOC = "Time since the object was created (metadata.creationTimestamp)."
_CONTAINERS_DOC = "Names of the containers in the pod template."
_IMAGES_DOC = "Images used by the containers in the pod template."

# A list shows at most this many entries before collapsing the rest into "+ N more...".
_LIST_LIMIT = 3


# --------------------------------------------------------------------------- durations and time


def human_duration(seconds: float) -> str:
    """apimachinery's ``duration.HumanDuration``: two significant units, coarser as time grows."""
    nanos = round(seconds * 1_000_000_000)
    whole_seconds = int(nanos / 1_000_000_000)
    # Clocks may disagree by a second, so a tiny negative age still reads as "0s".
    if whole_seconds < -1:
        return "<invalid>"
    if whole_seconds < 0:
        return "0s"
    if whole_seconds < 120:
        return f"{whole_seconds}s"
    minutes = whole_seconds // 60
    if minutes < 10:
        return _two_units(minutes, "m", whole_seconds % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return _two_units(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return _two_units(days, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{days}d"
    if hours < 24 * 365 * 8:
        return _two_units(days // 365, "y", days % 365, "d")
    return f"{days // 365}y"


def _two_units(major: int, major_unit: str, minor: int, minor_unit: str) -> str:
    return f"{major}{major_unit}" if minor == 0 else f"{major}{major_unit}{minor}{minor_unit}"


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp as an aware datetime; ``None`` when absent or malformed."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        return None
    text = value.upper().replace("Z", "+00:00")
    # Python keeps microseconds only; Kubernetes MicroTime has exactly six digits anyway.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _since(timestamp: Any, now: datetime) -> str:
    moment = parse_time(timestamp)
    if moment is None:
        return "<unknown>"
    return human_duration((_aware(now) - moment).total_seconds())


def _age(obj: Obj, now: datetime) -> str:
    return _since(_meta(obj).get("creationTimestamp"), now)


# --------------------------------------------------------------------------- small accessors


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _name(obj: Obj) -> str:
    return str(_meta(obj).get("name", ""))


def _dig(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _template_containers(obj: Obj, *path: str) -> tuple[str, str]:
    containers = [c for c in _list(_dig(obj, *path, "spec", "containers")) if isinstance(c, dict)]
    names = ",".join(str(c.get("name", "")) for c in containers)
    images = ",".join(str(c.get("image", "")) for c in containers)
    return names, images


def _with_more(items: list[str], total: int) -> str:
    text = ",".join(items[:_LIST_LIMIT])
    if total > _LIST_LIMIT:
        return f"{text} + {total - _LIST_LIMIT} more..."
    return text


# --------------------------------------------------------------------------- label selectors


def format_labels(labels: Any) -> str:
    """``labels.FormatLabels``: sorted ``k=v`` pairs, ``<none>`` for an empty map."""
    pairs = [f"{k}={v}" for k, v in sorted(_dict(labels).items())]
    return ",".join(pairs) or "<none>"


class _SelectorError(ValueError):
    pass


def _requirement(expression: Obj) -> tuple[str, str]:
    key = str(expression.get("key", ""))
    operator = expression.get("operator")
    values = sorted(str(v) for v in _list(expression.get("values")))
    if operator in ("In", "NotIn"):
        if not values:
            raise _SelectorError(key)
        word = "in" if operator == "In" else "notin"
        return key, f"{key} {word} ({','.join(values)})"
    if operator in ("Exists", "DoesNotExist") and not values:
        return key, key if operator == "Exists" else f"!{key}"
    raise _SelectorError(key)


def _selector_string(selector: Any) -> str:
    """A LabelSelector in selector syntax; raises _SelectorError when it cannot be converted."""
    selector = _dict(selector)
    requirements = [(str(k), f"{k}={v}") for k, v in _dict(selector.get("matchLabels")).items()]
    requirements += [_requirement(_dict(e)) for e in _list(selector.get("matchExpressions"))]
    # The server sorts requirements by key, whatever order the user wrote them in.
    requirements.sort(key=lambda pair: pair[0])
    return ",".join(text for _, text in requirements)


def format_label_selector(selector: Any) -> str:
    """``metav1.FormatLabelSelector``: ``<none>`` when empty, ``<error>`` when malformed."""
    try:
        return _selector_string(selector) or "<none>"
    except _SelectorError:
        return "<error>"


# --------------------------------------------------------------------------- column definitions


@dataclass(frozen=True)
class _Column:
    name: str
    description: str
    type: str = "string"
    priority: int = 0
    format: str = ""

    def definition(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description, "priority": self.priority}


def _name_col(priority: int = 0) -> _Column:
    return _Column("Name", _NAME_DOC, priority=priority, format="name")


def _age_col() -> _Column:
    return _Column("Age", _AGE_DOC)


def _wide(name: str, description: str) -> _Column:
    return _Column(name, description, priority=1)


def _template_cols(selector_doc: str | None) -> list[_Column]:
    cols = [_wide("Containers", _CONTAINERS_DOC), _wide("Images", _IMAGES_DOC)]
    if selector_doc:
        cols.append(_wide("Selector", selector_doc))
    return cols


@dataclass(frozen=True)
class _Printer:
    columns: tuple[_Column, ...]
    cells: Callable[[Obj, datetime], Cells]


_DEFAULT_COLUMNS = (
    _name_col(),
    _Column("Created At", "When the object was created (metadata.creationTimestamp).", type="date"),
)


def _default_cells(obj: Obj, now: datetime) -> Cells:
    created = parse_time(_meta(obj).get("creationTimestamp"))
    moment = created.astimezone(UTC) if created else datetime(1, 1, 1, tzinfo=UTC)
    # strftime's %Y does not zero-pad year 1 on every libc; Go prints the zero time as 0001-01-01.
    return [_name(obj), f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}Z"]


# --------------------------------------------------------------------------- core/v1


def _namespace_cells(obj: Obj, now: datetime) -> Cells:
    return [_name(obj), str(_dig(obj, "status", "phase") or ""), _age(obj, now)]


def _node_status(obj: Obj) -> str:
    ready = [c for c in _list(_dig(obj, "status", "conditions")) if _dict(c).get("type") == "Ready"]
    status = ["Unknown"]
    if ready:
        status = ["Ready" if ready[-1].get("status") == "True" else "NotReady"]
    if _dig(obj, "spec", "unschedulable"):
        status.append("SchedulingDisabled")
    return ",".join(status)


def _node_roles(obj: Obj) -> str:
    roles: set[str] = set()
    for key, value in _dict(_meta(obj).get("labels")).items():
        if key.startswith("node-role.kubernetes.io/") and key != "node-role.kubernetes.io/":
            roles.add(key.removeprefix("node-role.kubernetes.io/"))
        elif key == "kubernetes.io/role" and value:
            roles.add(str(value))
    return ",".join(sorted(roles)) or "<none>"


def _node_address(obj: Obj, kind: str) -> str:
    for address in _list(_dig(obj, "status", "addresses")):
        if _dict(address).get("type") == kind:
            return str(address.get("address", ""))
    return "<none>"


def _node_cells(obj: Obj, now: datetime) -> Cells:
    info = _dict(_dig(obj, "status", "nodeInfo"))
    return [
        _name(obj), _node_status(obj), _node_roles(obj), _age(obj, now),
        str(info.get("kubeletVersion", "")),
        _node_address(obj, "InternalIP"), _node_address(obj, "ExternalIP"),
        info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


@dataclass
class _PodTally:
    """What the pod printer accumulates while walking container statuses."""

    reason: str
    ready: int = 0
    total: int = 0
    restarts: int = 0
    last_restart: datetime | None = None
    sidecar_restarts: int = 0
    sidecar_last_restart: datetime | None = None


def _later(current: datetime | None, status: Obj) -> datetime | None:
    finished = parse_time(_dig(status, "lastState", "terminated", "finishedAt"))
    if _dig(status, "lastState", "terminated") is None or finished is None:
        return current
    return finished if current is None or current < finished else current


def _terminated_reason(terminated: Obj, prefix: str) -> str:
    if terminated.get("reason"):
        return prefix + str(terminated["reason"])
    signal = _int(terminated.get("signal"))
    if signal:
        return f"{prefix}Signal:{signal}"
    return f"{prefix}ExitCode:{_int(terminated.get('exitCode'))}"


def _has_condition(obj: Obj, kind: str) -> bool:
    return any(_dict(c).get("type") == kind and c.get("status") == "True"
               for c in _list(_dig(obj, "status", "conditions")))


def _init_step(tally: _PodTally, index: int, status: Obj, sidecar: bool, init_count: int) -> bool:
    """Account for one init container; True when it blocks initialisation (stop scanning)."""
    state = _dict(status.get("state"))
    terminated, waiting = state.get("terminated"), state.get("waiting")
    if isinstance(terminated, dict) and _int(terminated.get("exitCode")) == 0:
        return False
    if sidecar and status.get("started") is True:
        tally.ready += 1 if status.get("ready") else 0
        return False
    if isinstance(terminated, dict):
        tally.reason = _terminated_reason(terminated, "Init:")
    elif isinstance(waiting, dict) and waiting.get("reason") and waiting["reason"] != "PodInitializing":
        tally.reason = f"Init:{waiting['reason']}"
    else:
        tally.reason = f"Init:{index}/{init_count}"
    return True


def _scan_init_containers(pod: Obj, tally: _PodTally) -> bool:
    specs = [_dict(c) for c in _list(_dig(pod, "spec", "initContainers"))]
    sidecars = {c.get("name") for c in specs if c.get("restartPolicy") == "Always"}
    tally.total += len(sidecars)
    for index, raw in enumerate(_list(_dig(pod, "status", "initContainerStatuses"))):
        status = _dict(raw)
        sidecar = status.get("name") in sidecars
        tally.restarts += _int(status.get("restartCount"))
        tally.last_restart = _later(tally.last_restart, status)
        if sidecar:
            tally.sidecar_restarts += _int(status.get("restartCount"))
            tally.sidecar_last_restart = _later(tally.sidecar_last_restart, status)
        if _init_step(tally, index, status, sidecar, len(specs)):
            return True
    return False


def _scan_containers(pod: Obj, tally: _PodTally) -> None:
    # Restarts of finished init containers no longer count once the pod is up.
    tally.restarts, tally.last_restart = tally.sidecar_restarts, tally.sidecar_last_restart
    running = False
    for raw in reversed(_list(_dig(pod, "status", "containerStatuses"))):
        status = _dict(raw)
        tally.restarts += _int(status.get("restartCount"))
        tally.last_restart = _later(tally.last_restart, status)
        state = _dict(status.get("state"))
        waiting, terminated = _dict(state.get("waiting")), state.get("terminated")
        if waiting.get("reason"):
            tally.reason = str(waiting["reason"])
        elif isinstance(terminated, dict):
            tally.reason = _terminated_reason(terminated, "")
        elif status.get("ready") and isinstance(state.get("running"), dict):
            running = True
            tally.ready += 1
    if tally.reason == "Completed" and running:
        tally.reason = "Running" if _has_condition(pod, "Ready") else "NotReady"


def _pod_reason(pod: Obj) -> str:
    phase = str(_dig(pod, "status", "phase") or "")
    reason = str(_dig(pod, "status", "reason") or "") or phase
    for condition in _list(_dig(pod, "status", "conditions")):
        if _dict(condition).get("type") == "PodScheduled" and condition.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    return reason


def _pod_tally(pod: Obj) -> _PodTally:
    tally = _PodTally(reason=_pod_reason(pod), total=len(_list(_dig(pod, "spec", "containers"))))
    initializing = _scan_init_containers(pod, tally)
    if not initializing or _has_condition(pod, "Initialized"):
        _scan_containers(pod, tally)
    if _meta(pod).get("deletionTimestamp"):
        phase = _dig(pod, "status", "phase")
        if _dig(pod, "status", "reason") == "NodeLost":
            tally.reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            tally.reason = "Terminating"
    return tally


def _readiness_gates(pod: Obj) -> str:
    gates = _list(_dig(pod, "spec", "readinessGates"))
    if not gates:
        return "<none>"
    conditions = [_dict(c) for c in _list(_dig(pod, "status", "conditions"))]
    passed = 0
    for gate in gates:
        match = next((c for c in conditions if c.get("type") == _dict(gate).get("conditionType")), None)
        passed += 1 if match is not None and match.get("status") == "True" else 0
    return f"{passed}/{len(gates)}"


def _pod_cells(pod: Obj, now: datetime) -> Cells:
    tally = _pod_tally(pod)
    restarts = str(tally.restarts)
    if tally.restarts and tally.last_restart is not None:
        ago = human_duration((_aware(now) - tally.last_restart).total_seconds())
        restarts = f"{tally.restarts} ({ago} ago)"
    ips = [_dict(ip).get("ip") for ip in _list(_dig(pod, "status", "podIPs"))]
    # Conversion to the internal type fills podIPs from a lone podIP, so honour either.
    ips = ips or [_dig(pod, "status", "podIP")]
    return [
        _name(pod), f"{tally.ready}/{tally.total}", tally.reason, restarts, _age(pod, now),
        (ips[0] if ips else None) or "<none>",
        _dig(pod, "spec", "nodeName") or "<none>",
        _dig(pod, "status", "nominatedNodeName") or "<none>",
        _readiness_gates(pod),
    ]


def _lb_ingress(status: Any) -> str:
    # A sorted set: duplicates collapse and the order is stable whatever the controller wrote.
    found = {str(i.get("ip") or i.get("hostname")) for i in _list(_dig(status, "ingress"))
             if isinstance(i, dict) and (i.get("ip") or i.get("hostname"))}
    return ",".join(sorted(found))


def _service_external_ip(svc: Obj) -> str:
    spec = _dict(svc.get("spec"))
    kind = spec.get("type") or "ClusterIP"
    external = [str(ip) for ip in _list(spec.get("externalIPs"))]
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if kind == "LoadBalancer":
        balancer = _lb_ingress(_dig(svc, "status", "loadBalancer"))
        joined = ([balancer] if balancer else []) + external
        return ",".join(joined) or "<pending>"
    if kind == "ExternalName":
        return str(spec.get("externalName", ""))
    return "<unknown>"


def _service_ports(spec: Obj) -> str:
    pieces = []
    for raw in _list(spec.get("ports")):
        port = _dict(raw)
        protocol = port.get("protocol") or "TCP"
        node_port = _int(port.get("nodePort"))
        middle = f":{node_port}" if node_port > 0 else ""
        pieces.append(f"{_int(port.get('port'))}{middle}/{protocol}")
    return ",".join(pieces) or "<none>"


def _service_cells(svc: Obj, now: datetime) -> Cells:
    spec = _dict(svc.get("spec"))
    cluster_ips = _list(spec.get("clusterIPs")) or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [
        _name(svc), spec.get("type") or "ClusterIP", cluster_ips[0] if cluster_ips else "<none>",
        _service_external_ip(svc), _service_ports(spec), _age(svc, now), format_labels(spec.get("selector")),
    ]


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _endpoints_text(obj: Obj) -> str:
    subsets = _list(obj.get("subsets"))
    if not subsets:
        return "<none>"
    shown: list[str] = []
    total = 0
    for subset in map(_dict, subsets):
        ips = [str(_dict(a).get("ip", "")) for a in _list(subset.get("addresses"))]
        ports = _list(subset.get("ports"))
        if not ports:
            total += len(ips)
            shown.extend(ips)
            continue
        for port in ports:
            total += len(ips)
            shown.extend(_host_port(ip, _int(_dict(port).get("port"))) for ip in ips)
    return _with_more(shown, total)


def _endpoints_cells(obj: Obj, now: datetime) -> Cells:
    return [_name(obj), _endpoints_text(obj), _age(obj, now)]


def _secret_cells(obj: Obj, now: datetime) -> Cells:
    return [_name(obj), str(obj.get("type") or "Opaque"), len(_dict(obj.get("data"))), _age(obj, now)]


def _configmap_cells(obj: Obj, now: datetime) -> Cells:
    count = len(_dict(obj.get("data"))) + len(_dict(obj.get("binaryData")))
    return [_name(obj), count, _age(obj, now)]


def _service_account_cells(obj: Obj, now: datetime) -> Cells:
    return [_name(obj), len(_list(obj.get("secrets"))), _age(obj, now)]


# --------------------------------------------------------------------------- events (core and events.k8s.io)


def _as_core_event(obj: Obj) -> Obj:
    """Map an events.k8s.io/v1 Event onto the core/v1 field names the printer reads."""
    renamed = {"regarding": "involvedObject", "note": "message", "deprecatedSource": "source",
               "deprecatedFirstTimestamp": "firstTimestamp", "deprecatedLastTimestamp": "lastTimestamp",
               "deprecatedCount": "count"}
    return {renamed.get(k, k): v for k, v in obj.items() if k not in renamed.values()}


def _event_source(event: Obj) -> str:
    source = _dict(event.get("source"))
    component = source.get("component") or event.get("reportingController") or ""
    host = source.get("host") or event.get("reportingInstance") or ""
    return f"{component}, {host}" if host else str(component)


def _event_times(event: Obj, now: datetime) -> tuple[str, str, int]:
    if parse_time(event.get("firstTimestamp")) is not None:
        first = _since(event.get("firstTimestamp"), now)
    else:
        first = _since(event.get("eventTime"), now)
    last = _since(event.get("lastTimestamp"), now)
    if parse_time(event.get("lastTimestamp")) is None:
        last = first
    count = _int(event.get("count"))
    series = event.get("series")
    if isinstance(series, dict):
        last = _since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        # Events written through the new API are singletons without a count.
        count = 1
    return last, first, count


def _event_cells(obj: Obj, now: datetime, *, events_api: bool = False) -> Cells:
    event = _as_core_event(obj) if events_api else obj
    involved = _dict(event.get("involvedObject"))
    kind = str(involved.get("kind", "")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    last, first, count = _event_times(event, now)
    return [
        last, str(event.get("type", "")), str(event.get("reason", "")), target,
        str(involved.get("fieldPath", "")), _event_source(event), str(event.get("message", "")).strip(),
        first, count, _name(obj),
    ]


_EVENT_COLUMNS = (
    _Column("Last Seen", "Time since the event was last observed."),
    _Column("Type", "Type of the event (Normal, Warning)."),
    _Column("Reason", "Short machine-readable reason for the event."),
    _Column("Object", "The object the event is about."),
    _wide("Subobject", "Field path of the part of the object the event is about."),
    _wide("Source", "Component that reported the event."),
    _Column("Message", "Human-readable description of the event."),
    _wide("First Seen", "Time since the event was first observed."),
    _wide("Count", "Number of times the event occurred."),
    _name_col(priority=1),
)


# --------------------------------------------------------------------------- apps/v1 and batch/v1


def _replicas(obj: Obj) -> int:
    return _int(_dig(obj, "spec", "replicas"), default=1)


def _status_int(obj: Obj, field: str) -> int:
    return _int(_dig(obj, "status", field))


def _deployment_cells(obj: Obj, now: datetime) -> Cells:
    names, images = _template_containers(obj, "spec", "template")
    try:
        selector = _selector_string(_dig(obj, "spec", "selector"))
    except _SelectorError:
        selector = "<invalid>"
    return [
        _name(obj), f"{_status_int(obj, 'readyReplicas')}/{_replicas(obj)}",
        _status_int(obj, "updatedReplicas"), _status_int(obj, "availableReplicas"), _age(obj, now),
        names, images, selector,
    ]


def _replicaset_cells(obj: Obj, now: datetime) -> Cells:
    names, images = _template_containers(obj, "spec", "template")
    return [
        _name(obj), _replicas(obj), _status_int(obj, "replicas"), _status_int(obj, "readyReplicas"),
        _age(obj, now), names, images, format_label_selector(_dig(obj, "spec", "selector")),
    ]


def _statefulset_cells(obj: Obj, now: datetime) -> Cells:
    names, images = _template_containers(obj, "spec", "template")
    ready = f"{_status_int(obj, 'readyReplicas')}/{_replicas(obj)}"
    return [_name(obj), ready, _age(obj, now), names, images]


def _daemonset_cells(obj: Obj, now: datetime) -> Cells:
    names, images = _template_containers(obj, "spec", "template")
    counts = [_status_int(obj, f) for f in ("desiredNumberScheduled", "currentNumberScheduled", "numberReady",
                                            "updatedNumberScheduled", "numberAvailable")]
    return [
        _name(obj), *counts, format_labels(_dig(obj, "spec", "template", "spec", "nodeSelector")),
        _age(obj, now), names, images, format_label_selector(_dig(obj, "spec", "selector")),
    ]


def _job_condition(obj: Obj, kind: str) -> bool:
    for condition in _list(_dig(obj, "status", "conditions")):
        if _dict(condition).get("type") == kind:
            return bool(condition.get("status") == "True")
    return False


def _job_status(obj: Obj) -> str:
    if _job_condition(obj, "Complete"):
        return "Complete"
    if _job_condition(obj, "Failed"):
        return "Failed"
    if _meta(obj).get("deletionTimestamp"):
        return "Terminating"
    if _job_condition(obj, "Suspended"):
        return "Suspended"
    if _job_condition(obj, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def _job_completions(obj: Obj) -> str:
    succeeded = _status_int(obj, "succeeded")
    completions = _dig(obj, "spec", "completions")
    if isinstance(completions, int):
        return f"{succeeded}/{completions}"
    parallelism = _int(_dig(obj, "spec", "parallelism"))
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def _job_duration(obj: Obj, now: datetime) -> str:
    start = parse_time(_dig(obj, "status", "startTime"))
    if start is None:
        return ""
    end = parse_time(_dig(obj, "status", "completionTime")) or _aware(now)
    return human_duration((end - start).total_seconds())


def _job_cells(obj: Obj, now: datetime) -> Cells:
    names, images = _template_containers(obj, "spec", "template")
    return [
        _name(obj), _job_status(obj), _job_completions(obj), _job_duration(obj, now), _age(obj, now),
        names, images, format_label_selector(_dig(obj, "spec", "selector")),
    ]


# --------------------------------------------------------------------------- networking, rbac, leases


def _slice_ports(obj: Obj) -> str:
    shown = []
    ports = [_dict(p) for p in _list(obj.get("ports"))]
    for port in ports:
        number = port.get("port")
        if isinstance(number, int):
            shown.append(str(number))
        else:
            name = port.get("name")
            shown.append(name if isinstance(name, str) else "*")
    return _with_more(shown, len(shown)) or "<unset>"


def _slice_endpoints(obj: Obj) -> str:
    addresses = [str(a) for e in _list(obj.get("endpoints")) for a in _list(_dict(e).get("addresses"))]
    return _with_more(addresses, len(addresses)) or "<unset>"


def _endpointslice_cells(obj: Obj, now: datetime) -> Cells:
    address_type = str(obj.get("addressType", ""))
    return [_name(obj), address_type, _slice_ports(obj), _slice_endpoints(obj), _age(obj, now)]


def _ingress_hosts(rules: list[Any]) -> str:
    # Hosts are gathered until three are found; "+ N more" then counts rules, with or without a host.
    hosts: list[str] = []
    more = False
    for rule in rules:
        if len(hosts) == _LIST_LIMIT:
            more = True
            break
        if _dict(rule).get("host"):
            hosts.append(str(rule["host"]))
    if not hosts:
        return "*"
    text = ",".join(hosts)
    return f"{text} + {len(rules) - _LIST_LIMIT} more..." if more else text


def _ingress_cells(obj: Obj, now: datetime) -> Cells:
    spec = _dict(obj.get("spec"))
    class_name = spec.get("ingressClassName")
    ports = "80, 443" if _list(spec.get("tls")) else "80"
    return [
        _name(obj), class_name if isinstance(class_name, str) else "<none>",
        _ingress_hosts(_list(spec.get("rules"))), _lb_ingress(_dig(obj, "status", "loadBalancer")),
        ports, _age(obj, now),
    ]


def _ingress_class_cells(obj: Obj, now: datetime) -> Cells:
    params = _dig(obj, "spec", "parameters")
    text = "<none>"
    if isinstance(params, dict):
        group = params.get("apiGroup")
        kind = str(params.get("kind", "")) + (f".{group}" if isinstance(group, str) else "")
        text = f"{kind}/{params.get('name', '')}"
    return [_name(obj), str(_dig(obj, "spec", "controller") or ""), text, _age(obj, now)]


def _network_policy_cells(obj: Obj, now: datetime) -> Cells:
    return [_name(obj), format_label_selector(_dig(obj, "spec", "podSelector") or {}), _age(obj, now)]


def _lease_cells(obj: Obj, now: datetime) -> Cells:
    return [_name(obj), str(_dig(obj, "spec", "holderIdentity") or ""), _age(obj, now)]


def _subjects(obj: Obj) -> tuple[str, str, str]:
    users: list[str] = []
    groups: list[str] = []
    accounts: list[str] = []
    for subject in map(_dict, _list(obj.get("subjects"))):
        kind, name = subject.get("kind"), str(subject.get("name", ""))
        if kind == "ServiceAccount":
            accounts.append(f"{subject.get('namespace', '')}/{name}")
        elif kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
    return ", ".join(users), ", ".join(groups), ", ".join(accounts)


def _binding_cells(obj: Obj, now: datetime) -> Cells:
    ref = _dict(obj.get("roleRef"))
    return [_name(obj), f"{ref.get('kind', '')}/{ref.get('name', '')}", _age(obj, now), *_subjects(obj)]


# --------------------------------------------------------------------------- the table of printers


def _binding_columns(noun: str) -> tuple[_Column, ...]:
    return (
        _name_col(), _Column("Role", "The role the binding grants."), _age_col(),
        _wide("Users", f"Users in the {noun}."), _wide("Groups", f"Groups in the {noun}."),
        _wide("ServiceAccounts", f"Service accounts in the {noun}."),
    )


def _cols(*columns: _Column) -> tuple[_Column, ...]:
    return columns


_PRINTERS: dict[tuple[str, str], _Printer] = {
    ("", "Namespace"): _Printer(_cols(
        _name_col(), _Column("Status", "Lifecycle phase of the namespace."), _age_col()), _namespace_cells),
    ("", "Node"): _Printer(_cols(
        _name_col(), _Column("Status", "Readiness of the node."), _Column("Roles", "Roles from node labels."),
        _age_col(), _Column("Version", "Kubelet version."),
        _wide("Internal-IP", "First internal address."), _wide("External-IP", "First external address."),
        _wide("OS-Image", "Operating system image."), _wide("Kernel-Version", "Kernel version."),
        _wide("Container-Runtime", "Container runtime and version.")), _node_cells),
    ("", "Pod"): _Printer(_cols(
        _name_col(), _Column("Ready", "Ready containers out of all containers."),
        _Column("Status", "Aggregate status of the pod's containers."),
        _Column("Restarts", "Container restarts, and how long ago the last one was."), _age_col(),
        _wide("IP", "Primary pod IP."), _wide("Node", "Node the pod is bound to."),
        _wide("Nominated Node", "Node nominated by preemption."),
        _wide("Readiness Gates", "Readiness gates that pass, out of all gates.")), _pod_cells),
    ("", "Service"): _Printer(_cols(
        _name_col(), _Column("Type", "How the service is exposed."),
        _Column("Cluster-IP", "Primary cluster IP."),
        _Column("External-IP", "External or load-balancer addresses."),
        _Column("Port(s)", "Service ports, with node ports when allocated."), _age_col(),
        _wide("Selector", "Pod label selector.")), _service_cells),
    ("", "Endpoints"): _Printer(_cols(
        _name_col(), _Column("Endpoints", "Ready addresses with their ports."), _age_col()),
        _endpoints_cells),
    ("", "Secret"): _Printer(_cols(
        _name_col(), _Column("Type", "Secret type."), _Column("Data", "Number of data keys."), _age_col()),
        _secret_cells),
    ("", "ConfigMap"): _Printer(_cols(
        _name_col(), _Column("Data", "Number of data and binaryData keys."), _age_col()), _configmap_cells),
    ("", "ServiceAccount"): _Printer(_cols(
        _name_col(), _Column("Secrets", "Number of referenced secrets."), _age_col()),
        _service_account_cells),
    ("", "Event"): _Printer(_EVENT_COLUMNS, _event_cells),
    ("events.k8s.io", "Event"): _Printer(_EVENT_COLUMNS, partial(_event_cells, events_api=True)),
    ("apps", "Deployment"): _Printer(_cols(
        _name_col(), _Column("Ready", "Ready replicas out of desired replicas."),
        _Column("Up-to-date", "Replicas running the latest template."),
        _Column("Available", "Replicas available to serve."), _age_col(),
        *_template_cols("Label selector of the deployment.")), _deployment_cells),
    ("apps", "ReplicaSet"): _Printer(_cols(
        _name_col(), _Column("Desired", "Desired replicas.", type="integer"),
        _Column("Current", "Observed replicas.", type="integer"),
        _Column("Ready", "Ready replicas.", type="integer"), _age_col(),
        *_template_cols("Label selector of the replica set.")), _replicaset_cells),
    ("apps", "StatefulSet"): _Printer(_cols(
        _name_col(), _Column("Ready", "Ready replicas out of desired replicas."), _age_col(),
        *_template_cols(None)), _statefulset_cells),
    ("apps", "DaemonSet"): _Printer(_cols(
        _name_col(), _Column("Desired", "Nodes that should run the pod.", type="integer"),
        _Column("Current", "Nodes running the pod.", type="integer"),
        _Column("Ready", "Nodes with a ready pod.", type="integer"),
        _Column("Up-to-date", "Nodes running the latest template.", type="integer"),
        _Column("Available", "Nodes with an available pod.", type="integer"),
        _Column("Node Selector", "Node selector of the pod template."), _age_col(),
        *_template_cols("Label selector of the daemon set.")), _daemonset_cells),
    ("batch", "Job"): _Printer(_cols(
        _name_col(), _Column("Status", "Job status."),
        _Column("Completions", "Succeeded out of wanted pods."),
        _Column("Duration", "How long the job ran or has been running."), _age_col(),
        *_template_cols("Label selector of the job.")), _job_cells),
    ("discovery.k8s.io", "EndpointSlice"): _Printer(_cols(
        _name_col(), _Column("AddressType", "Address family of the slice."),
        _Column("Ports", "Ports of the slice."), _Column("Endpoints", "Endpoint addresses."), _age_col()),
        _endpointslice_cells),
    ("networking.k8s.io", "Ingress"): _Printer(_cols(
        _name_col(), _Column("Class", "IngressClass handling this ingress."),
        _Column("Hosts", "Hosts the rules match."), _Column("Address", "Load-balancer addresses."),
        _Column("Ports", "Ports the ingress serves."), _age_col()), _ingress_cells),
    ("networking.k8s.io", "IngressClass"): _Printer(_cols(
        _name_col(), _Column("Controller", "Controller implementing the class."),
        _Column("Parameters", "Resource with extra configuration."), _age_col()), _ingress_class_cells),
    ("networking.k8s.io", "NetworkPolicy"): _Printer(_cols(
        _name_col(), _Column("Pod-Selector", "Pods the policy applies to."), _age_col()),
        _network_policy_cells),
    ("coordination.k8s.io", "Lease"): _Printer(_cols(
        _name_col(), _Column("Holder", "Current holder of the lease."), _age_col()), _lease_cells),
    ("rbac.authorization.k8s.io", "RoleBinding"): _Printer(_binding_columns("role binding"), _binding_cells),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _Printer(
        _binding_columns("cluster role binding"), _binding_cells),
}

_DEFAULT = _Printer(_DEFAULT_COLUMNS, _default_cells)


def has_printer(group: str, kind: str) -> bool:
    """Whether the kind has dedicated columns (otherwise it prints Name and Created At)."""
    return (group, kind) in _PRINTERS


def column_definitions(group: str, kind: str) -> list[dict[str, Any]]:
    """The Table columnDefinitions for a built-in kind; unknown kinds get Name and Created At."""
    printer = _PRINTERS.get((group, kind), _DEFAULT)
    return [c.definition() for c in printer.columns]


def row_cells(group: str, kind: str, obj: Obj, now: datetime) -> Cells:
    """One row of cells for ``obj``, aligned with ``column_definitions(group, kind)``."""
    printer = _PRINTERS.get((group, kind), _DEFAULT)
    return printer.cells(obj, now)


# --------------------------------------------------------------------------- custom resources


_DEFAULT_CRD_COLUMNS: tuple[dict[str, Any], ...] = (
    {"name": "Age", "type": "date", "description": _AGE_DOC, "jsonPath": ".metadata.creationTimestamp"},
)


def _effective(printer_columns: Iterable[dict[str, Any]] | None) -> list[dict[str, Any]]:
    columns = list(printer_columns or ())
    return columns or list(_DEFAULT_CRD_COLUMNS)


def custom_column_definitions(printer_columns: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Columns for a CRD version's ``additionalPrinterColumns`` (a lone Age column when none)."""
    columns = [_name_col().definition()]
    for col in _effective(printer_columns):
        path = str(col.get("jsonPath", ""))
        columns.append({
            "name": str(col.get("name", "")), "type": str(col.get("type", "")),
            "format": str(col.get("format") or ""),
            "description": col.get("description") or f"Custom resource column at JSONPath {path}",
            "priority": _int(col.get("priority")),
        })
    return columns


def custom_row_cells(printer_columns: list[dict[str, Any]] | None, obj: Obj, now: datetime) -> Cells:
    """Cells for a custom resource, matching ``custom_column_definitions(printer_columns)``."""
    return [_name(obj), *(_custom_cell(col, obj, now) for col in _effective(printer_columns))]


def _custom_cell(column: dict[str, Any], obj: Obj, now: datetime) -> Any:
    try:
        results = jsonpath.find(str(column.get("jsonPath", "")), obj)
    except jsonpath.JSONPathError:
        return None
    if not results:
        return None
    # Only the first match is shown, even when the path selects several (as upstream does).
    value = results[0]
    if column.get("type") == "string":
        return jsonpath.to_text(value)
    return _typed_cell(str(column.get("type", "")), value, now)


def _typed_cell(kind: str, value: Any, now: datetime) -> Any:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "integer" and numeric:
        return int(value)
    if kind == "number" and numeric:
        return float(value)
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "date" and isinstance(value, str):
        return _custom_date(value, now)
    return None


def _custom_date(value: str, now: datetime) -> str:
    if value in ("", "null"):
        return "<unknown>"
    moment = parse_time(value)
    if moment is None:
        return "<invalid>"
    return human_duration((_aware(now) - moment).total_seconds())
