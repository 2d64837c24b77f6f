"""A small HTTP/1.1 load generator: a fixed request rate over keep-alive connections, every answer checked.

Run as its own process (``python -m tests.e2e.loadgen``) so that the client does not compete for the test
process's GIL with the echo backends it measures. Each connection sends at ``rate / connections`` per second on
a fixed schedule (a late answer does not lower the offered rate until every connection is waiting). At the end
it prints one JSON line (after a first line saying it has started): requests, answers per status and per backend (the
``X-Backend`` header), and the first failures (anything but a 200 from a backend whose name starts with
``--expect``, or a connection error).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Tally:
    requests: int = 0
    ok: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    backends: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def fail(self, what: str) -> None:
        self.failures.append(what)


async def _answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    await reader.readexactly(int(headers.get("content-length", "0")))
    return int(lines[0].split(" ", 2)[1]), headers


async def _connection(args: argparse.Namespace, tally: Tally, start: float, offset: float) -> None:
    request = f"GET {args.path} HTTP/1.1\r\nHost: {args.host}\r\n\r\n".encode()
    interval = args.connections / args.rate
    loop = asyncio.get_running_loop()
    due = start + offset
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while due < start + args.duration:
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        due += interval
        tally.requests += 1
        try:
            if conn is None:
                conn = await asyncio.open_connection(args.address, args.port)
            reader, writer = conn
            writer.write(request)
            status, headers = await asyncio.wait_for(_answer(reader), args.timeout)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError) as e:
            tally.fail(f"{type(e).__name__}: {e}")
            if conn is not None:
                conn[1].close()
            conn = None
            continue
        backend = headers.get("x-backend", "")
        tally.statuses[str(status)] += 1
        if status == 200 and backend.startswith(args.expect):
            tally.ok += 1
            tally.backends[backend] += 1
        else:
            tally.fail(f"{status} from {backend or 'the proxy'}")
        if headers.get("connection", "").lower() == "close":
            conn[1].close()
            conn = None
    if conn is not None:
        conn[1].close()


async def run(args: argparse.Namespace) -> dict[str, object]:
    tally = Tally()
    print(json.dumps({"started": True}), flush=True)
    loop = asyncio.get_running_loop()
    start = loop.time()
    began = time.monotonic()
    await asyncio.gather(*(_connection(args, tally, start, i / args.rate) for i in range(args.connections)))
    elapsed = time.monotonic() - began
    return {"requests": tally.requests, "ok": tally.ok, "seconds": round(elapsed, 3),
            "rate": round(tally.requests / elapsed, 1), "statuses": dict(tally.statuses),
            "backends": dict(tally.backends), "failed": len(tally.failures), "failures": tally.failures[:20]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", required=True, help="the Host header")
    parser.add_argument("--path", default="/")
    parser.add_argument("--rate", type=float, default=1000.0, help="requests/s over all connections")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for one answer")
    parser.add_argument("--expect", default="", help="the answering backend's name starts with this")
    print(json.dumps(asyncio.run(run(parser.parse_args()))), flush=True)


if __name__ == "__main__":
    main()
