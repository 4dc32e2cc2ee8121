"""How long a key waits before it is retried: per-key exponential backoff and an overall token bucket, combined
as client-go's DefaultControllerRateLimiter does (the larger delay wins).

A limiter's `when(key)` is called once per failure and returns seconds to wait; `forget(key)` after a success
resets the key's history; `retries(key)` says how many failures it has had since.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Protocol


class RateLimiter(Protocol):
    def when(self, key: Hashable) -> float: ...

    def forget(self, key: Hashable) -> None: ...

    def retries(self, key: Hashable) -> int: ...


class ExponentialBackoff:
    """base * 2**failures seconds, capped; per key. Defaults as client-go: 5 ms doubling up to 1000 s."""

    def __init__(self, base: float = 0.005, cap: float = 1000.0):
        if base <= 0 or cap < base:
            raise ValueError(f"ExponentialBackoff: need 0 < base <= cap (base={base}, cap={cap})")
        self.base, self.cap = base, cap
        self._failures: dict[Hashable, int] = {}

    def when(self, key: Hashable) -> float:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        if failures >= 64:  # 2**64 overflows any useful float comparison long before: already capped
            return self.cap
        return min(self.cap, self.base * 2 ** failures)

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def retries(self, key: Hashable) -> int:
        return self._failures.get(key, 0)


class TokenBucket:
    """At most `qps` retries per second overall after a burst of `burst` (defaults as client-go: 10 qps, burst
    100). Each `when` reserves the next token and returns how long until it is available."""

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Callable[[], float] = time.monotonic):
        if qps <= 0 or burst < 1:
            raise ValueError(f"TokenBucket: need qps > 0 and burst >= 1 (qps={qps}, burst={burst})")
        self.qps, self.burst, self._clock = qps, burst, clock
        self._tokens, self._updated = float(burst), clock()

    def when(self, key: Hashable) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.qps) - 1
        self._updated = now
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, key: Hashable) -> None:
        pass

    def retries(self, key: Hashable) -> int:
        return 0


class MaxOf:
    """The longest delay of several limiters."""

    def __init__(self, *limiters: RateLimiter):
        self.limiters = limiters

    def when(self, key: Hashable) -> float:
        return max(limiter.when(key) for limiter in self.limiters)

    def forget(self, key: Hashable) -> None:
        for limiter in self.limiters:
            limiter.forget(key)

    def retries(self, key: Hashable) -> int:
        return max(limiter.retries(key) for limiter in self.limiters)


def default_controller_rate_limiter() -> RateLimiter:
    return MaxOf(ExponentialBackoff(0.005, 1000.0), TokenBucket(10.0, 100))
