"""The instance's Prometheus metrics, under ingress-nginx's names where ingress-nginx has one.

ingress-nginx counts a "reload" for every configuration change; here nginx reloads only when the listener set
changes, so `nginx_ingress_controller_success` stays put while routes and endpoints move, and the netplane_*
series count the live pushes instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@dataclass
class InstanceMetrics:
    controller_class: str
    controller_namespace: str
    controller_pod: str
    last_reload_successful: bool = True
    last_reload_timestamp: float = field(default_factory=time.time)
    config_hash: int = 0
    reloads: int = 0
    reload_errors: int = 0
    syncs: int = 0
    generation: int = 0
    pushed: dict[str, int] = field(default_factory=dict)
    refused: int = 0

    def const_labels(self) -> dict[str, str]:
        """The labels ingress-nginx puts on every series of a controller pod."""
        return {"controller_class": self.controller_class, "controller_namespace": self.controller_namespace,
                "controller_pod": self.controller_pod}

    def render(self) -> bytes:
        labels = ",".join(f'{name}="{_escape(value)}"' for name, value in self.const_labels().items())
        series: list[tuple[str, str, str, list[tuple[str, float]]]] = [
            ("nginx_ingress_controller_config_last_reload_successful", "gauge",
             "Whether the last configuration reload attempt was successful",
             [("", float(self.last_reload_successful))]),
            ("nginx_ingress_controller_config_last_reload_successful_timestamp_seconds", "gauge",
             "Timestamp of the last successful configuration reload", [("", self.last_reload_timestamp)]),
            ("nginx_ingress_controller_config_hash", "gauge", "Running configuration hash actually running",
             [("", float(self.config_hash))]),
            ("nginx_ingress_controller_success", "counter",
             "Cumulative number of Ingress controller reload operations (nginx reloads: listener changes only)",
             [("", float(self.reloads))]),
            ("nginx_ingress_controller_errors", "counter",
             "Cumulative number of Ingress controller errors during reload operations",
             [("", float(self.reload_errors))]),
            ("netplane_ingress_syncs_total", "counter", "Configurations translated and pushed to the engine",
             [("", float(self.syncs))]),
            ("netplane_ingress_config_generation", "gauge",
             "The engine's configuration generation after the last push", [("", float(self.generation))]),
            ("netplane_ingress_documents_pushed_total", "counter",
             "Engine documents written or deleted, by kind",
             [(f',kind="{kind}"', float(n)) for kind, n in sorted(self.pushed.items())]),
            ("netplane_ingress_documents_refused_total", "counter", "Engine documents the engine refused",
             [("", float(self.refused))]),
        ]
        lines = []
        for name, kind, help_text, samples in series:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
            lines += [f"{name}{{{labels}{extra}}} {value:.17g}" for extra, value in samples]
        return ("\n".join(lines) + "\n").encode()
