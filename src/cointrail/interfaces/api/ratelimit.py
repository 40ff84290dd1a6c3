"""Per-key token buckets: each key may send `burst` requests at once and `rate` per second."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass


class RateLimited(Exception):  # noqa: N818 — an HTTP answer (429), not a CointrailError
    """A key has spent its tokens; `retry_after` is whole seconds until the next one."""

    def __init__(self, key_id: str, retry_after: int) -> None:
        super().__init__(f"key {key_id} sent more requests than its rate limit allows; "
                         f"retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets by key id, refilled continuously; thread-safe."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key_id: str) -> None:
        """Spend one token of `key_id`, or raise RateLimited."""
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = _Bucket(float(self.burst), now)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait = (1.0 - bucket.tokens) / self.rate
        raise RateLimited(key_id, max(1, math.ceil(wait)))
