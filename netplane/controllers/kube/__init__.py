"""A small asyncio Kubernetes client: kubeconfig loading, and dynamic access to any resource.

It speaks only the public Kubernetes REST API (JSON), so the controllers built on it run
unchanged against netplane's own API server and against a real cluster.
"""

from netplane.controllers.kube.client import Client, WatchEvent
from netplane.controllers.kube.config import ClusterConfig, KubeconfigError, load_kubeconfig
from netplane.controllers.kube.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Conflict,
    Expired,
    Forbidden,
    Invalid,
    NotFound,
    ServerTimeout,
    TooManyRequests,
    Unauthorized,
)
from netplane.controllers.kube.resources import Resource

__all__ = [
    "AlreadyExists", "ApiError", "BadRequest", "Client", "ClusterConfig", "Conflict", "Expired", "Forbidden",
    "Invalid", "KubeconfigError", "NotFound", "Resource", "ServerTimeout", "TooManyRequests", "Unauthorized",
    "WatchEvent", "load_kubeconfig",
]
