"""Work queues for controllers, with client-go's semantics (k8s.io/client-go/util/workqueue).

Event handlers put keys ("namespace/name") on a queue; worker threads take them, reconcile,
and mark them done. The queue guarantees what makes that safe:

  * Stingy: a key is queued at most once; adding it again while it waits changes nothing
    (the `dirty` set).
  * Never two workers on one key: a key being processed (the `processing` set) is not handed
    out again; if it is added meanwhile it is marked dirty and queued again when its worker
    calls done(key), so the change that came in during processing is not lost.
  * Fair: keys come out in the order they were first added.
  * Shutdown: shut_down() makes add() a no-op; get() still hands out what is queued, then
    returns (None, True). shut_down_with_drain() also waits until every key handed out has been
    marked done (so workers must call done() for everything they got).

DelayingQueue adds add_after(key, seconds): the key is added once the delay has passed (the
earliest of several pending delays for one key wins). RateLimitingQueue adds
add_rate_limited(key), delayed by a rate limiter (default: per-key exponential backoff 5 ms to
1000 s, at most 10 per second overall with bursts of 100; see rate_limiter.py), forget(key) when
the key succeeded, and num_requeues(key).

Any thread may call any method. Items must be hashable.
"""
import collections
import heapq
import itertools
import threading
import time

from informerd.rate_limiter import default_controller_rate_limiter

__all__ = ["DelayingQueue", "RateLimitingQueue", "WorkQueue"]


class WorkQueue:
    def __init__(self):
        self._cond = threading.Condition()
        self._queue = collections.deque()  # the order of work; each item also in _dirty
        self._dirty = set()                # items that need processing
        self._processing = set()           # items handed out by get() and not yet done()
        self._shutting_down = False
        self._drain = False

    def add(self, item):
        with self._cond:
            if self._shutting_down or item in self._dirty:
                return
            self._dirty.add(item)
            if item in self._processing:
                return  # queued again by done()
            self._queue.append(item)
            self._cond.notify()

    def __len__(self):
        with self._cond:
            return len(self._queue)

    def get(self):
        """Blocks until an item can be processed: (item, False); or (None, True) once the queue
        is shut down and empty, when the worker should stop."""
        with self._cond:
            while not self._queue and not self._shutting_down:
                self._cond.wait()
            if not self._queue:
                return None, True
            item = self._queue.popleft()
            self._processing.add(item)
            self._dirty.discard(item)
            return item, False

    def done(self, item):
        """Marks an item from get() processed; queues it again if it was added meanwhile."""
        with self._cond:
            self._processing.discard(item)
            if item in self._dirty:
                self._queue.append(item)
                self._cond.notify()
            elif not self._processing:
                self._cond.notify_all()  # a shut_down_with_drain() may wait for this

    def shut_down(self):
        """add() is ignored from now on; workers get what is queued, then (None, True)."""
        with self._cond:
            self._drain = False
            self._shutting_down = True
            self._cond.notify_all()
        self._stop_delays()

    def shut_down_with_drain(self):
        """As shut_down(), then waits until every item handed out has been marked done (or
        shut_down() is called meanwhile)."""
        with self._cond:
            self._drain = True
            self._shutting_down = True
            self._cond.notify_all()
            while self._processing and self._drain:
                self._cond.wait()
        self._stop_delays()

    def shutting_down(self):
        with self._cond:
            return self._shutting_down

    def _stop_delays(self):
        pass


class DelayingQueue(WorkQueue):
    """A WorkQueue with add_after(item, seconds); a background thread adds items when due."""

    def __init__(self, clock=time.monotonic):
        super().__init__()
        self._clock = clock
        self._waiting_cond = threading.Condition()
        self._waiting = []                 # heap of (ready_at, sequence, item)
        self._ready_at = {}                # item -> its earliest ready_at (the live heap entry)
        self._sequence = itertools.count()
        self._stopped = False
        self._thread = threading.Thread(target=self._waiting_loop, name="workqueue-delays",
                                        daemon=True)
        self._thread.start()

    def add_after(self, item, seconds):
        if self.shutting_down():
            return
        if seconds <= 0:
            self.add(item)
            return
        ready_at = self._clock() + seconds
        with self._waiting_cond:
            if self._stopped:
                return
            current = self._ready_at.get(item)
            if current is not None and current <= ready_at:
                return  # already due sooner
            self._ready_at[item] = ready_at
            heapq.heappush(self._waiting, (ready_at, next(self._sequence), item))
            self._waiting_cond.notify()

    def waiting(self):
        """How many items wait for their delay."""
        with self._waiting_cond:
            return len(self._ready_at)

    def _waiting_loop(self):
        with self._waiting_cond:
            while not self._stopped:
                now = self._clock()
                while self._waiting and self._waiting[0][0] <= now:
                    ready_at, _, item = heapq.heappop(self._waiting)
                    if self._ready_at.get(item) == ready_at:  # else superseded by a sooner one
                        del self._ready_at[item]
                        self.add(item)
                timeout = self._waiting[0][0] - now if self._waiting else None
                self._waiting_cond.wait(timeout)

    def _stop_delays(self):
        with self._waiting_cond:
            self._stopped = True
            self._waiting.clear()
            self._ready_at.clear()
            self._waiting_cond.notify_all()


class RateLimitingQueue(DelayingQueue):
    """A DelayingQueue whose add_rate_limited(item) waits as the rate limiter says."""

    def __init__(self, rate_limiter=None, clock=time.monotonic):
        super().__init__(clock=clock)
        self.rate_limiter = rate_limiter or default_controller_rate_limiter()

    def add_rate_limited(self, item):
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item):
        """The item succeeded: its failures no longer count (its backoff starts over)."""
        self.rate_limiter.forget(item)

    def num_requeues(self, item):
        return self.rate_limiter.num_requeues(item)
