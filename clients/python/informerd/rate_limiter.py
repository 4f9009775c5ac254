"""Per-item and overall rate limiters for RateLimitingQueue, as client-go's
util/workqueue/default_rate_limiters.go defines them.

A limiter answers when(item): how long to wait before the item may be processed again; it
counts the item's failures until forget(item). The default, default_controller_rate_limiter(),
is client-go's DefaultControllerRateLimiter: the larger of a per-item exponential backoff
(5 ms, doubling on each failure, at most 1000 s) and an overall token bucket (10 per second,
bursts of 100) so that many failing items together cannot hammer the apiserver.

Times are seconds; clocks are injected for tests. Thread-safe.
"""
import threading
import time

__all__ = ["BucketRateLimiter", "ItemExponentialFailureRateLimiter", "MaxOfRateLimiter",
           "default_controller_rate_limiter"]


class ItemExponentialFailureRateLimiter:
    """base * 2^failures, at most `maximum`; failures counted per item until forget."""

    def __init__(self, base=0.005, maximum=1000.0):
        self.base, self.maximum = base, maximum
        self._failures = {}
        self._lock = threading.Lock()

    def when(self, item):
        with self._lock:
            exponent = self._failures.get(item, 0)
            self._failures[item] = exponent + 1
        if exponent > 1023:  # 2.0 ** 1024 overflows a float; long past the maximum anyway
            return self.maximum
        return min(self.base * 2.0 ** exponent, self.maximum)

    def num_requeues(self, item):
        with self._lock:
            return self._failures.get(item, 0)

    def forget(self, item):
        with self._lock:
            self._failures.pop(item, None)


class BucketRateLimiter:
    """A token bucket over all items (golang.org/x/time/rate's Limiter.Reserve): `burst` tokens,
    refilled at `qps` per second; each when() takes one, and when none is left the delay is until
    the token it took will have been refilled. Counts no per-item failures."""

    def __init__(self, qps=10.0, burst=100, clock=time.monotonic):
        self.qps, self.burst = float(qps), burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = None
        self._lock = threading.Lock()

    def when(self, item):
        with self._lock:
            now = self._clock()
            if self._last is not None and now > self._last:
                self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
            if self._last is None or now > self._last:
                self._last = now
            self._tokens -= 1.0
            return -self._tokens / self.qps if self._tokens < 0 else 0.0

    def num_requeues(self, item):
        return 0

    def forget(self, item):
        pass


class MaxOfRateLimiter:
    """The longest delay of its limiters; the largest requeue count; forget forgets in all."""

    def __init__(self, *limiters):
        self.limiters = limiters

    def when(self, item):
        return max(limiter.when(item) for limiter in self.limiters)

    def num_requeues(self, item):
        return max(limiter.num_requeues(item) for limiter in self.limiters)

    def forget(self, item):
        for limiter in self.limiters:
            limiter.forget(item)


def default_controller_rate_limiter(clock=time.monotonic):
    return MaxOfRateLimiter(ItemExponentialFailureRateLimiter(0.005, 1000.0),
                            BucketRateLimiter(10.0, 100, clock=clock))
