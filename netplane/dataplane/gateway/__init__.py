"""The gateway engine: nginx with netplane's own Lua, configured live over a unix socket.

`config` renders the static nginx.conf (listeners, the WAF profiles routes may use, and the upstream side of
`upstreams`: TLS profiles towards backends, TLS passthrough, TCP/UDP listeners) and checks candidates;
`engine.Engine` runs an instance and pushes virtual hosts, backends and certificates as JSON. The engine's input
format is documented in docs/design/gateway-engine.md.
"""

from netplane.dataplane.gateway.config import CheckError, ConfigError, InstanceSettings, Listener, WafProfile
from netplane.dataplane.gateway.engine import BACKENDS, CERTIFICATES, VHOSTS, ControlError, Engine, EngineError
from netplane.dataplane.gateway.upstreams import (
    L4Listener,
    Passthrough,
    StreamPeer,
    TLSProfile,
    UpstreamConfigError,
    Upstreams,
)

__all__ = ["BACKENDS", "CERTIFICATES", "VHOSTS", "CheckError", "ConfigError", "ControlError", "Engine", "EngineError",
           "InstanceSettings", "L4Listener", "Listener", "Passthrough", "StreamPeer", "TLSProfile",
           "UpstreamConfigError", "Upstreams", "WafProfile"]
