"""Stage and method throttling, as API Gateway applies it: a token bucket per method.

The stage's default method settings (`ResourcePath: /*`, `HttpMethod: *`) give every method a bucket of its
own at that rate and burst; a method's own settings replace them for that method. A request that finds its
method's bucket empty is answered 429 (`THROTTLED`) before the authorizer or the integration runs. The
account-wide regional limit (10,000 requests per second across all APIs) is not emulated.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Throttle:
    rate: float  # tokens added per second
    burst: int  # bucket size


class TokenBucket:
    def __init__(self, throttle: Throttle, now: float) -> None:
        self.throttle = throttle
        self.tokens = float(throttle.burst)
        self.updated = now

    def take(self, now: float) -> bool:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.throttle.burst), self.tokens + elapsed * self.throttle.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


MethodKey = tuple[str, str]  # (HTTP method, resource path such as /callbacks/{provider}/{job_id})


class Throttling:
    """Buckets by method, made on first use from the stage's settings."""

    def __init__(
        self, default: Throttle | None, per_method: dict[MethodKey, Throttle], clock: Callable[[], float]
    ) -> None:
        self.default = default
        self.per_method = per_method
        self.clock = clock
        self.throttled: Counter[MethodKey] = Counter()
        self._buckets: dict[MethodKey, TokenBucket] = {}
        self._lock = threading.Lock()

    def limit_for(self, key: MethodKey) -> Throttle | None:
        """The method's own settings, else its resource's for every method (`*`), else the stage's."""
        return self.per_method.get(key, self.per_method.get(("*", key[1]), self.default))

    def admit(self, http_method: str, resource_path: str) -> bool:
        """Take a token from the method's bucket; False (and counted) when it is empty."""
        key = (http_method, resource_path)
        limit = self.limit_for(key)
        if limit is None:
            return True
        with self._lock:
            now = self.clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(limit, now)
            if bucket.take(now):
                return True
            self.throttled[key] += 1
            return False
