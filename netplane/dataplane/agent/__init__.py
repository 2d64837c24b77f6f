"""The node agent: one process per node namespace, playing the kubelet's part.

It registers its Node and keeps it Ready, wires the pod network of its node for every pod of
the cluster (`podnet`), runs the pods bound to it with the runtime's shims, keeps its node's
service proxy in step with Services and EndpointSlices (`services`), writes the streams record
the API server uses for exec/logs/port-forward, and reports pod status. `launcher` holds what
`netplane up` does around the agents (fabric, configs, supervision, shutdown).
"""
