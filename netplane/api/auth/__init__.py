"""Who is asking, and may they: authentication, RBAC authorisation, access reviews and the audit log.

``gate.AuthGate`` is what the HTTP layer calls; the other modules are its parts:

- ``users``      the user database in the data directory (token hashes, never tokens)
- ``authn``      bearer tokens and client certificates signed by the cluster CA -> ``UserInfo``
- ``attributes`` an HTTP request -> Kubernetes' request attributes (verb, resource, namespace, ...)
- ``rbac``       Kubernetes' RBAC rule evaluation over Roles, ClusterRoles and their bindings
- ``projects``   the grants a project's members get in their project's namespaces (label-driven)
- ``bootstrap``  the built-in ClusterRoles and ClusterRoleBindings created at start-up
- ``reviews``    SelfSubjectAccessReview (`kubectl auth can-i`) and SelfSubjectReview (`whoami`)
- ``audit``      DIR/audit.log, buffered JSON lines with rotation
"""
