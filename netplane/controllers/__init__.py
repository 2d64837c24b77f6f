"""netplane's controllers (one module per capability) and the runtime they are built on.

    kube/      an asyncio Kubernetes client (kubeconfig, dynamic resources, typed errors)
    runtime/   informers, indexers, work queues, controllers, events, conditions, metrics, leader election
    process.py the `netplane controller` process: every controller, under leader election
    supervisor.py  how `netplane up` runs that process beside the API server
    projects.py    Projects from namespaces labelled cpaas.io/project

Controllers use only the Kubernetes API, so the same process runs against netplane's API server
and against a real cluster (`netplane controller --kubeconfig FILE`).
"""
