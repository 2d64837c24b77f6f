"""Where a pod may run and where it should: kube-scheduler's filters and a spreading score, as a pure core.

    pod + nodes + pods per node ──filter──▶ feasible nodes ──score──▶ one node
                                   └─ none feasible ─▶ FitError (Kubernetes' "0/N nodes are available: …")

Plain dicts (Kubernetes objects as decoded JSON) in, plain answers out; no I/O. The scheduler
controller (`netplane.controllers.scheduler`) feeds it from informer caches and binds the result;
the DaemonSet controller uses `matching` to decide which nodes should run a daemon pod.

Modules: `matching` (node selectors, node affinity, taints and tolerations), `placement` (filters in
kube-scheduler's order, the spreading score, the failure message), `lifecycle` (where a pod may keep
running: node heartbeats, the taints they decide, NoExecute eviction; fed by
`netplane.controllers.nodelifecycle`).
"""
