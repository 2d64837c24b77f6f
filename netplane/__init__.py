"""netplane: the networking layer of a container platform."""

KUBERNETES_VERSION = "v1.32.4"
