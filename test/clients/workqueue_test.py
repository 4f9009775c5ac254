#!/usr/bin/python3
"""clients/python/informerd/workqueue.py and rate_limiter.py: client-go's workqueue rules.

Each rule of k8s.io/client-go/util/workqueue is a test: stingy adds, no key to two workers at
once, re-added after done() when added while processing, fair order, shut_down and
shut_down_with_drain, add_after, add_rate_limited with the per-item exponential backoff (5 ms to
1000 s) max'd with the token bucket (10 qps, burst 100), forget, num_requeues; and many worker
threads at once. The limiters run on a fake clock; the delaying queue on the real one with
delays of tens of milliseconds.
"""
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "clients", "python"))

from informerd.rate_limiter import (  # noqa: E402
    BucketRateLimiter, ItemExponentialFailureRateLimiter, MaxOfRateLimiter,
    default_controller_rate_limiter)
from informerd.workqueue import DelayingQueue, RateLimitingQueue, WorkQueue  # noqa: E402


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


class WorkQueueTest(unittest.TestCase):
    def test_an_item_added_twice_before_processing_is_queued_once(self):
        q = WorkQueue()
        for item in ["a", "b", "a", "a", "c", "b"]:
            q.add(item)
        self.assertEqual(len(q), 3)
        self.assertEqual([q.get() for _ in range(3)], [("a", False), ("b", False), ("c", False)])
        self.assertEqual(len(q), 0)

    def test_items_come_out_in_the_order_first_added(self):
        q = WorkQueue()
        for item in [3, 1, 2, 1, 3]:
            q.add(item)
        self.assertEqual([q.get()[0] for _ in range(3)], [3, 1, 2])

    def test_an_item_being_processed_is_not_handed_out_again_until_done(self):
        q = WorkQueue()
        q.add("a")
        item, _ = q.get()
        q.add("a")  # changed while a worker holds it
        self.assertEqual(len(q), 0, "queued while processing")
        got = []
        worker = threading.Thread(target=lambda: got.append(q.get()), daemon=True)
        worker.start()
        worker.join(0.1)
        self.assertTrue(worker.is_alive(), "a second worker got the key being processed")
        q.done(item)
        worker.join(5)
        self.assertEqual(got, [("a", False)], "re-added after done")

    def test_done_without_a_new_add_does_not_requeue(self):
        q = WorkQueue()
        q.add("a")
        item, _ = q.get()
        q.done(item)
        self.assertEqual(len(q), 0)
        q.add("a")
        self.assertEqual(q.get(), ("a", False), "addable again after done")

    def test_added_several_times_while_processing_is_processed_once_more(self):
        q = WorkQueue()
        q.add("a")
        q.get()
        q.add("a")
        q.add("a")
        q.done("a")
        self.assertEqual(len(q), 1)
        self.assertEqual(q.get(), ("a", False))
        q.done("a")
        self.assertEqual(len(q), 0)

    def test_shut_down_ignores_adds_and_hands_out_what_is_queued_then_reports_shutdown(self):
        q = WorkQueue()
        q.add("a")
        q.add("b")
        q.shut_down()
        self.assertTrue(q.shutting_down())
        q.add("c")
        self.assertEqual(q.get(), ("a", False))
        self.assertEqual(q.get(), ("b", False))
        self.assertEqual(q.get(), (None, True))
        self.assertEqual(q.get(), (None, True))

    def test_shut_down_wakes_blocked_workers(self):
        q = WorkQueue()
        results = []
        workers = [threading.Thread(target=lambda: results.append(q.get()), daemon=True)
                   for _ in range(3)]
        for w in workers:
            w.start()
        time.sleep(0.05)
        q.shut_down()
        for w in workers:
            w.join(5)
            self.assertFalse(w.is_alive())
        self.assertEqual(results, [(None, True)] * 3)

    def test_shut_down_with_drain_waits_for_items_in_flight_to_be_done(self):
        q = WorkQueue()
        q.add("a")
        q.add("b")
        q.get()
        q.get()
        drained = threading.Event()
        shutter = threading.Thread(
            target=lambda: (q.shut_down_with_drain(), drained.set()), daemon=True)
        shutter.start()
        time.sleep(0.05)
        self.assertFalse(drained.is_set(), "returned with two items in flight")
        q.add("c")
        self.assertEqual(len(q), 0, "added during shutdown")
        q.done("a")
        time.sleep(0.05)
        self.assertFalse(drained.is_set(), "returned with one item in flight")
        q.done("b")
        self.assertTrue(drained.wait(5), "did not return once everything was done")
        self.assertEqual(q.get(), (None, True))

    def test_shut_down_with_drain_requeues_an_item_added_before_shutdown_while_processing(self):
        q = WorkQueue()
        q.add("a")
        q.get()
        q.add("a")  # dirty while processing, before the shutdown
        shutter = threading.Thread(target=q.shut_down_with_drain, daemon=True)
        shutter.start()
        time.sleep(0.05)
        q.done("a")  # queued again: a worker still gets it
        self.assertEqual(q.get(), ("a", False))
        q.done("a")
        shutter.join(5)
        self.assertFalse(shutter.is_alive())
        self.assertEqual(q.get(), (None, True))

    def test_shut_down_during_a_drain_ends_the_wait(self):
        q = WorkQueue()
        q.add("a")
        q.get()
        shutter = threading.Thread(target=q.shut_down_with_drain, daemon=True)
        shutter.start()
        time.sleep(0.05)
        self.assertTrue(shutter.is_alive())
        q.shut_down()
        shutter.join(5)
        self.assertFalse(shutter.is_alive(), "shut_down() did not end the drain")

    def test_many_workers_never_hold_one_key_at_once_and_every_add_is_processed(self):
        q = WorkQueue()
        keys = ["key-%d" % i for i in range(20)]
        lock = threading.Lock()
        holding = set()
        overlaps = []
        # For each key: the add count when a worker last took it. Every add must be followed by
        # a processing that starts after it (client-go's guarantee: no change is lost).
        added_at = {key: 0 for key in keys}
        processed_seen = {key: 0 for key in keys}
        processed = [0]

        def worker():
            while True:
                key, shutdown = q.get()
                if shutdown:
                    return
                with lock:
                    if key in holding:
                        overlaps.append(key)
                    holding.add(key)
                    processed_seen[key] = added_at[key]
                    processed[0] += 1
                time.sleep(0.0005)
                with lock:
                    holding.discard(key)
                q.done(key)

        workers = [threading.Thread(target=worker, daemon=True) for _ in range(16)]
        for w in workers:
            w.start()

        def producer(seed):
            for i in range(1500):
                key = keys[(i * 7 + seed) % len(keys)]
                with lock:
                    added_at[key] += 1
                q.add(key)

        producers = [threading.Thread(target=producer, args=(s,), daemon=True) for s in range(4)]
        for p in producers:
            p.start()
        for p in producers:
            p.join()
        self.assertTrue(wait_until(lambda: len(q) == 0 and not holding, 30))
        with lock:
            final_adds = dict(added_at)
        self.assertTrue(wait_until(lambda: processed_seen == final_adds, 30),
                        "adds not followed by a processing: %r" % {
                            k: (processed_seen[k], final_adds[k]) for k in keys
                            if processed_seen[k] != final_adds[k]})
        q.shut_down_with_drain()
        for w in workers:
            w.join(5)
            self.assertFalse(w.is_alive())
        self.assertEqual(overlaps, [], "keys processed by two workers at once")
        self.assertLess(processed[0], 4 * 1500, "stingy: adds of a waiting key were coalesced")
        self.assertGreaterEqual(processed[0], len(keys))


class DelayingQueueTest(unittest.TestCase):
    def test_add_after_adds_once_the_delay_has_passed(self):
        q = DelayingQueue()
        try:
            start = time.monotonic()
            q.add_after("a", 0.15)
            self.assertEqual(len(q), 0)
            self.assertEqual(q.waiting(), 1)
            self.assertEqual(q.get(), ("a", False))
            self.assertGreaterEqual(time.monotonic() - start, 0.14)
            self.assertEqual(q.waiting(), 0)
        finally:
            q.shut_down()

    def test_add_after_zero_or_negative_adds_at_once(self):
        q = DelayingQueue()
        try:
            q.add_after("a", 0)
            q.add_after("b", -1)
            self.assertEqual(len(q), 2)
        finally:
            q.shut_down()

    def test_the_earliest_of_several_delays_for_one_item_wins_and_it_is_added_once(self):
        q = DelayingQueue()
        try:
            q.add_after("a", 5.0)
            q.add_after("a", 0.05)
            q.add_after("a", 10.0)  # later: ignored
            self.assertEqual(q.waiting(), 1)
            self.assertTrue(wait_until(lambda: len(q) == 1, 2))
            time.sleep(0.1)
            self.assertEqual(len(q), 1)
            self.assertEqual(q.waiting(), 0, "the superseded later entries still wait")
        finally:
            q.shut_down()

    def test_items_come_out_in_the_order_they_become_due(self):
        q = DelayingQueue()
        try:
            q.add_after("late", 0.2)
            q.add_after("early", 0.05)
            q.add_after("middle", 0.1)
            self.assertEqual([q.get()[0] for _ in range(3)], ["early", "middle", "late"])
        finally:
            q.shut_down()

    def test_shut_down_drops_waiting_items_and_ignores_later_add_after(self):
        q = DelayingQueue()
        q.add_after("a", 0.05)
        q.shut_down()
        q.add_after("b", 0.01)
        time.sleep(0.15)
        self.assertEqual(q.get(), (None, True))
        self.assertEqual(q.waiting(), 0)


class RateLimiterTest(unittest.TestCase):
    def test_item_exponential_backoff_doubles_from_5ms_to_1000s_per_item(self):
        limiter = ItemExponentialFailureRateLimiter()
        delays = [limiter.when("a") for _ in range(20)]
        self.assertEqual(delays[:5], [0.005, 0.01, 0.02, 0.04, 0.08])
        self.assertAlmostEqual(delays[17], 0.005 * 2 ** 17)  # 655.36 s
        self.assertEqual(delays[18], 1000.0)
        self.assertEqual(delays[19], 1000.0)
        self.assertEqual(limiter.when("b"), 0.005, "another item has its own count")
        self.assertEqual(limiter.num_requeues("a"), 20)
        for _ in range(2000):
            limiter.when("c")
        self.assertEqual(limiter.when("c"), 1000.0, "no overflow after many failures")
        limiter.forget("a")
        self.assertEqual(limiter.num_requeues("a"), 0)
        self.assertEqual(limiter.when("a"), 0.005, "forget starts the backoff over")

    def test_token_bucket_allows_a_burst_of_100_then_10_per_second(self):
        clock = FakeClock()
        bucket = BucketRateLimiter(10, 100, clock=clock)
        self.assertEqual([bucket.when(i) for i in range(100)], [0.0] * 100)
        # Tokens taken beyond the burst are owed: each waits 0.1 s longer than the one before.
        self.assertAlmostEqual(bucket.when("x"), 0.1)
        self.assertAlmostEqual(bucket.when("y"), 0.2)
        clock.now += 0.2  # refills the two owed tokens
        self.assertAlmostEqual(bucket.when("z"), 0.1)
        clock.now += 100  # refills to the burst, no further
        self.assertEqual([bucket.when(i) for i in range(100)], [0.0] * 100)
        self.assertAlmostEqual(bucket.when("w"), 0.1)
        self.assertEqual(bucket.num_requeues("w"), 0)

    def test_default_controller_limiter_is_the_max_of_both(self):
        clock = FakeClock()
        limiter = default_controller_rate_limiter(clock=clock)
        self.assertIsInstance(limiter, MaxOfRateLimiter)
        # Per item: 5 ms, 10 ms, ... while the bucket still has tokens.
        self.assertEqual([limiter.when("a") for _ in range(3)], [0.005, 0.01, 0.02])
        self.assertEqual(limiter.num_requeues("a"), 3)
        # 97 more tokens spent on other items; then the bucket dominates a fresh item's 5 ms.
        for i in range(97):
            limiter.when("other-%d" % i)
        self.assertAlmostEqual(limiter.when("fresh"), 0.1)
        limiter.forget("a")
        self.assertEqual(limiter.num_requeues("a"), 0)


class RateLimitingQueueTest(unittest.TestCase):
    def test_add_rate_limited_waits_the_limiters_delay_and_forget_resets_it(self):
        limiter = ItemExponentialFailureRateLimiter(base=0.04, maximum=10)
        q = RateLimitingQueue(limiter)
        try:
            start = time.monotonic()
            q.add_rate_limited("a")  # 40 ms
            self.assertEqual(len(q), 0)
            self.assertEqual(q.get(), ("a", False))
            first = time.monotonic() - start
            q.done("a")
            self.assertEqual(q.num_requeues("a"), 1)
            start = time.monotonic()
            q.add_rate_limited("a")  # 80 ms
            self.assertEqual(q.get(), ("a", False))
            second = time.monotonic() - start
            q.done("a")
            self.assertGreaterEqual(first, 0.035)
            self.assertGreaterEqual(second, 0.075)
            self.assertEqual(q.num_requeues("a"), 2)
            q.forget("a")
            self.assertEqual(q.num_requeues("a"), 0)
        finally:
            q.shut_down()

    def test_the_default_limiter_is_clientgos(self):
        q = RateLimitingQueue()
        try:
            self.assertEqual([q.rate_limiter.when("a") for _ in range(3)], [0.005, 0.01, 0.02])
        finally:
            q.shut_down()

    def test_a_rate_limited_item_already_queued_is_not_queued_twice(self):
        q = RateLimitingQueue(ItemExponentialFailureRateLimiter(base=0.02))
        try:
            q.add("a")
            q.add_rate_limited("a")
            time.sleep(0.1)
            self.assertEqual(len(q), 1)
        finally:
            q.shut_down()


if __name__ == "__main__":
    unittest.main(verbosity=2)
