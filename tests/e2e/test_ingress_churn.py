"""Churn under load: ~1,000 requests/s for ~20 s against stable routes while, once a second, an Ingress is added and
another removed and the stable Service's endpoints are scaled up and down. Zero failed requests, no nginx reload.

Endpoints come and go as an endpoint controller moves them: a new echo server is started before its EndpointSlice
is added; a removed one leaves its slice first and is stopped (its connections closed) only after a grace moment,
as a terminating pod finishes what it has in flight.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.conftest import ROOT
from tests.e2e.gateway_harness import needs_engine
from tests.e2e.ingress_harness import (
    Backend,
    IngressHarness,
    endpoint_slice,
    running_harness,
    service,
    simple,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, needs_engine]

RATE = 1000  # requests/s offered
DURATION = 20.0
GRACE = 1.0  # seconds a removed endpoint keeps serving before it stops
STABLE = "stable.churn.test"


@pytest.fixture
def harness() -> Iterator[IngressHarness]:
    with running_harness() as h:
        yield h


def test_churn_under_load_fails_no_request_and_never_reloads(harness: IngressHarness) -> None:
    h = harness
    spare = Backend("spare")  # the churned Ingresses' backend
    serving = [Backend(f"stable-{i}") for i in range(3)]
    stopped: list[Backend] = []
    h.apply(service("stable"), [endpoint_slice("stable", b) for b in serving], service("spare"),
            endpoint_slice("spare", spare), simple("stable", STABLE, "stable"))
    assert h.get(STABLE, "/").backend is not None
    master, workers = h.engine.master_pid, h.engine.worker_pids()

    # The load runs in its own process: the echo backends keep this process's GIL to themselves.
    loader = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.loadgen", "--port", str(h.http_port), "--host", STABLE, "--path", "/load",
         "--rate", str(RATE), "--duration", str(DURATION), "--connections", "64", "--expect", "stable-"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert loader.stdout is not None and json.loads(loader.stdout.readline()) == {"started": True}
    draining: list[tuple[float, Backend]] = []
    started = time.monotonic()
    changes = 0
    try:
        tick = 0
        while tick + 1 < DURATION - 1:
            tick += 1
            time.sleep(max(0.0, started + tick - time.monotonic()))
            # Routes: one Ingress added, the one added two seconds ago removed; the new one answers at once.
            h.apply(simple(f"churn-{tick}", f"churn-{tick}.test", "spare"))
            if tick > 2:
                h.delete("Ingress", f"churn-{tick - 2}")
            assert h.get(f"churn-{tick}.test", "/").backend == "spare", tick
            # Endpoints: up on even ticks (started before it is published), down on odd ones (unpublished first).
            if tick % 2 == 0 or len(serving) < 2:
                new = Backend(f"stable-{tick + 2}")
                serving.append(new)
                h.apply(endpoint_slice("stable", new))
            else:
                gone = serving.pop(0)
                h.delete("EndpointSlice", f"stable-{gone.name}")
                draining.append((time.monotonic(), gone))
            changes += 1
            now = time.monotonic()
            while draining and now - draining[0][0] >= GRACE:
                _, gone = draining.pop(0)
                gone.stop()
                stopped.append(gone)
        out, _ = loader.communicate(timeout=DURATION + 30)
    finally:
        if loader.poll() is None:
            loader.kill()
        for b in [spare, *serving, *(b for _, b in draining)]:
            b.stop()
    tally = json.loads(out)
    print(f"\nchurn: {tally['ok']} ok, {tally['failed']} failed of {tally['requests']} in {tally['seconds']} s = "
          f"{tally['rate']} req/s; {changes} endpoint changes, {len(stopped)} endpoints stopped; "
          f"per backend {tally['backends']}")
    assert tally["failed"] == 0, tally["failures"]
    assert tally["rate"] > 700, f"the load generator reached only {tally['rate']} req/s"
    assert len(stopped) >= 5 and changes >= DURATION - 2
    # Stopped endpoints served before they went; endpoints added late got traffic too.
    assert all(tally["backends"].get(b.name, 0) > 0 for b in stopped)
    assert tally["backends"].get(serving[-1].name, 0) > 0
    assert h.engine.reloads == 0
    assert (h.engine.master_pid, h.engine.worker_pids()) == (master, workers)
