"""Node-side streams for exec, attach, logs and port-forward (see `backend` for the interface and
`record` for the pod runtime record the container runtime writes)."""

from netplane.dataplane.streams.backend import (
    ExecOptions,
    LogOptions,
    PodRef,
    Session,
    StreamBackend,
    StreamError,
)
from netplane.dataplane.streams.local import LocalStreamBackend

__all__ = ["ExecOptions", "LocalStreamBackend", "LogOptions", "PodRef", "Session", "StreamBackend", "StreamError"]
