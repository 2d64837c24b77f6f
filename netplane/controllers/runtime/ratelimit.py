"""How long a work item waits before its next try: per-item exponential backoff, and an overall rate.

`when(key)` is asked each time an item is re-queued for rate-limited retry; `forget(key)` after it
succeeded. These are pure (the clock is passed in where it matters) so they are tested exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class RateLimiter(Protocol):
    def when(self, key: str) -> float:
        """Seconds to wait before `key` is processed again; counts this as one more failure of it."""

    def forget(self, key: str) -> None:
        """`key` succeeded: its failures are cleared."""

    def retries(self, key: str) -> int:
        """How many times `key` has been rate-limited since it was last forgotten."""


class ItemExponentialBackoff:
    """base * 2**failures for each item, capped: 5 ms, 10 ms, 20 ms, … up to `cap` (client-go's defaults)."""

    def __init__(self, base: float = 0.005, cap: float = 1000.0):
        if base <= 0 or cap < base:
            raise ValueError(f"backoff needs 0 < base <= cap, not base={base} cap={cap}")
        self.base = base
        self.cap = cap
        self._failures: dict[str, int] = {}

    def when(self, key: str) -> float:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        # Past 2**64 the float would overflow long after reaching any sane cap.
        if failures > 64:
            return self.cap
        return min(self.base * 2.0 ** failures, self.cap)

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def retries(self, key: str) -> int:
        return self._failures.get(key, 0)


class TokenBucket:
    """An overall limit of `qps` items per second, with bursts of up to `burst` (not per item)."""

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Callable[[], float] = time.monotonic):
        if qps <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs qps > 0 and burst >= 1, not qps={qps} burst={burst}")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def when(self, key: str) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
        self._last = now
        # Reserve a token now even if it is only available later, so waiting callers queue up fairly.
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, key: str) -> None:
        pass

    def retries(self, key: str) -> int:
        return 0


class MaxOf:
    """The longest wait any of the limiters asks for (per-item backoff combined with an overall rate)."""

    def __init__(self, *limiters: RateLimiter):
        self.limiters = limiters

    def when(self, key: str) -> float:
        return max(limiter.when(key) for limiter in self.limiters)

    def forget(self, key: str) -> None:
        for limiter in self.limiters:
            limiter.forget(key)

    def retries(self, key: str) -> int:
        return max(limiter.retries(key) for limiter in self.limiters)


def default_rate_limiter() -> RateLimiter:
    """5 ms doubling to 1000 s per item, and 10 retries/s (bursts of 100) overall, as controller-runtime."""
    return MaxOf(ItemExponentialBackoff(0.005, 1000.0), TokenBucket(10.0, 100))
