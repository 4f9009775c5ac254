"""informerd's Python client: client-go's informer experience over informerd's gRPC API.

    from informerd import Informer, RateLimitingQueue

Informer (informer.py) follows one resource: event handlers, an indexed store with listers,
has_synced/wait_for_sync, resync, reconnection with resume and re-snapshot. RateLimitingQueue
(workqueue.py) is client-go's workqueue. See README.md.
"""
from informerd.backoff import ExponentialBackoff
from informerd.connection import Credentials
from informerd.informer import EventHandler, Informer, StreamError
from informerd.rate_limiter import (BucketRateLimiter, ItemExponentialFailureRateLimiter,
                                    MaxOfRateLimiter, default_controller_rate_limiter)
from informerd.selectors import Selector, SelectorError, parse_label_selector
from informerd.store import DeletedFinalStateUnknown, Store, object_key, split_key
from informerd.workqueue import DelayingQueue, RateLimitingQueue, WorkQueue

__all__ = [
    "BucketRateLimiter", "Credentials", "DelayingQueue", "DeletedFinalStateUnknown",
    "EventHandler", "ExponentialBackoff", "Informer", "ItemExponentialFailureRateLimiter",
    "MaxOfRateLimiter", "RateLimitingQueue", "Selector", "SelectorError", "Store",
    "StreamError", "WorkQueue", "default_controller_rate_limiter", "object_key",
    "parse_label_selector", "split_key",
]
