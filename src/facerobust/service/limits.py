"""Token-bucket rate limits, keyed (per API key, per claimed identity), thread-safe.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second; a request
takes one token or is refused with the seconds until one is available (``Retry-After``).
Buckets live in the gate process: with several instances behind a balancer, each enforces its
own share (the lock-out, counted in the shared decision log, is global).

>>> lim = RateLimiter(rate=1.0, burst=2)
>>> [lim.take("k", now=0.0) for _ in range(3)]
[0.0, 0.0, 1.0]
"""

from __future__ import annotations

import threading
import time

MAX_BUCKETS = 100_000  # idle buckets are dropped beyond this many keys


class RateLimiter:
    """``take(key)`` -> 0.0 when allowed, else the wait in seconds; ``rate=0`` = unlimited."""

    def __init__(self, rate: float, burst: int) -> None:
        if rate < 0 or burst < 1:
            raise ValueError(f"need rate >= 0 and burst >= 1, got rate={rate} burst={burst}")
        self.rate = float(rate)
        self.burst = int(burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last time)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str, now: float | None = None) -> float:
        if not self.enabled:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens = self._tokens(key, now)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > MAX_BUCKETS:
                self._prune(now)
            return (1.0 - tokens) / self.rate

    def wait(self, key: str, now: float | None = None) -> float:
        """Seconds until ``key`` has a token, without taking one (0.0 = it has one now)."""
        if not self.enabled:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens = self._tokens(key, now)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def _tokens(self, key: str, now: float) -> float:
        """``key``'s tokens at ``now`` (refilled since its last request; caller holds the
        lock)."""
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - last) * self.rate)

    def reset(self, key: str) -> None:
        """Refill ``key``'s bucket (an admin unlock)."""
        with self._lock:
            self._buckets.pop(key, None)

    def _prune(self, now: float) -> None:
        full = [k for k, (t, last) in self._buckets.items()
                if t + (now - last) * self.rate >= self.burst]
        for k in full:
            del self._buckets[k]


def time_at_rate(queries: int, rate: float, burst: int) -> float:
    """Seconds a client needs for ``queries`` requests through a bucket (``rate`` per second,
    ``burst`` tokens at the start); 0 when ``rate`` is 0 (unlimited)."""
    if rate <= 0 or queries <= burst:
        return 0.0
    return (queries - burst) / rate
