"""The reconnection backoff of client-go's Reflector.

client-go waits between ListAndWatch attempts with
wait.NewExponentialBackoffManager(800ms, 30s, 2m, 2.0, 1.0, clock) (tools/cache/reflector.go):
each wait is the current step plus up to 100% jitter, so in [step, 2*step); the step doubles
from 800 ms until it reaches the 30 s cap, where it stays (waits of 30 to 60 s). When more than
2 minutes have passed since the previous wait began (a healthy stretch), the step starts over at
800 ms (apimachinery's exponentialBackoffManagerImpl.getNextBackoff and Backoff.Step).

The clock and the random source are injected so that tests check exact values.
"""
import random
import time

__all__ = ["ExponentialBackoff"]


class ExponentialBackoff:
    def __init__(self, initial=0.8, maximum=30.0, factor=2.0, jitter=1.0, reset_after=120.0,
                 clock=time.monotonic, random_fraction=random.random):
        self.initial, self.maximum, self.factor = initial, maximum, factor
        self.jitter, self.reset_after = jitter, reset_after
        self._clock, self._random = clock, random_fraction
        self._step = initial
        self._last_start = None

    def next_delay(self):
        """The seconds to wait before the next attempt."""
        now = self._clock()
        if self._last_start is None or now - self._last_start > self.reset_after:
            self._step = self.initial
        self._last_start = now
        delay = self._step
        self._step = min(self._step * self.factor, self.maximum)
        if self.jitter > 0:
            delay += self._random() * self.jitter * delay
        return delay

    def reset(self):
        self._step, self._last_start = self.initial, None
