"""The API server's own settings (rate limits, batch size, CORS); the store comes from Settings."""

from __future__ import annotations

from dataclasses import dataclass

from cointrail.errors import InputError

API_PREFIX = "/api/v1"


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """`rate_per_second` and `burst` shape each key's token bucket; `max_batch` bounds a batch
    screening request; `cors_origins` is empty (CORS off) unless an operator names origins;
    `web` serves the investigator at ``/``; `cache_bytes` bounds the response cache of the
    read routes (0: off). Rate limits and the cache are per process: with several uvicorn
    workers each worker keeps its own."""

    rate_per_second: float = 20.0
    burst: int = 60
    max_batch: int = 10_000
    max_page: int = 500
    cors_origins: tuple[str, ...] = ()
    web: bool = True
    cache_bytes: int = 64 << 20

    def __post_init__(self) -> None:
        if not self.rate_per_second > 0:
            raise InputError(f"rate {self.rate_per_second}: give more than 0 requests/s")
        if self.burst < 1:
            raise InputError(f"burst {self.burst}: give 1 or more")
        if self.max_batch < 1:
            raise InputError(f"max batch {self.max_batch}: give 1 or more")
        if self.cache_bytes < 0:
            raise InputError(f"cache size {self.cache_bytes}: give 0 (off) or more bytes")
        if self.max_page < 1:
            raise InputError(f"max page {self.max_page}: give 1 or more")

    @property
    def max_body_bytes(self) -> int:
        """Largest request body accepted: room for `max_batch` long addresses."""
        return max(1 << 20, self.max_batch * 160)
