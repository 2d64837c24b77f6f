"""Former home of schemacheck's Go-style rendering; it now lives in :mod:`netplane.api.gofmt`.

Kept as names for what still imports them from here.
"""

from __future__ import annotations

from netplane.api.gofmt import error_body_value as go_value
from netplane.api.gofmt import format_float as go_float

__all__ = ["go_float", "go_value"]
