package workqueue

import (
	"math"
	"sync"
	"time"
)

// RateLimiter is client-go's: When is how long item should wait before it is processed again
// (it counts a failure), Forget clears the item's failures, NumRequeues counts them.
type RateLimiter interface {
	When(item interface{}) time.Duration
	Forget(item interface{})
	NumRequeues(item interface{}) int
}

// RateLimitingInterface is client-go's.
type RateLimitingInterface interface {
	DelayingInterface
	// AddRateLimited adds item after the rate limiter says it may be.
	AddRateLimited(item interface{})
	// Forget: the item succeeded; its failures no longer count (its backoff starts over).
	Forget(item interface{})
	NumRequeues(item interface{}) int
}

type rateLimitingType struct {
	*delayingType
	rateLimiter RateLimiter
}

// NewRateLimitingQueue makes a RateLimitingInterface (DefaultControllerRateLimiter() for the
// usual one).
func NewRateLimitingQueue(rateLimiter RateLimiter) RateLimitingInterface {
	return &rateLimitingType{delayingType: newDelayingQueue(), rateLimiter: rateLimiter}
}

func (q *rateLimitingType) AddRateLimited(item interface{}) {
	q.AddAfter(item, q.rateLimiter.When(item))
}

func (q *rateLimitingType) Forget(item interface{})          { q.rateLimiter.Forget(item) }
func (q *rateLimitingType) NumRequeues(item interface{}) int { return q.rateLimiter.NumRequeues(item) }

// ItemExponentialFailureRateLimiter waits baseDelay * 2^failures, at most maxDelay; failures
// counted per item until Forget.
type ItemExponentialFailureRateLimiter struct {
	mu                  sync.Mutex
	failures            map[interface{}]int
	baseDelay, maxDelay time.Duration
}

func NewItemExponentialFailureRateLimiter(baseDelay, maxDelay time.Duration) *ItemExponentialFailureRateLimiter {
	return &ItemExponentialFailureRateLimiter{failures: map[interface{}]int{}, baseDelay: baseDelay, maxDelay: maxDelay}
}

func (r *ItemExponentialFailureRateLimiter) When(item interface{}) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	exp := r.failures[item]
	r.failures[item] = exp + 1
	backoff := float64(r.baseDelay.Nanoseconds()) * math.Pow(2, float64(exp))
	if backoff > math.MaxInt64 || time.Duration(backoff) > r.maxDelay {
		return r.maxDelay
	}
	return time.Duration(backoff)
}

func (r *ItemExponentialFailureRateLimiter) NumRequeues(item interface{}) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failures[item]
}

func (r *ItemExponentialFailureRateLimiter) Forget(item interface{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.failures, item)
}

// BucketRateLimiter is a token bucket over all items (golang.org/x/time/rate's
// Limiter.Reserve().Delay()): Burst tokens, refilled at QPS per second; each When takes one,
// and when none is left the delay is until the token it took will have been refilled. It
// counts no per-item failures. Now is injectable for tests.
type BucketRateLimiter struct {
	QPS   float64
	Burst int
	Now   func() time.Time

	mu     sync.Mutex
	tokens float64
	last   time.Time
	init   bool
}

func NewBucketRateLimiter(qps float64, burst int) *BucketRateLimiter {
	return &BucketRateLimiter{QPS: qps, Burst: burst, Now: time.Now}
}

func (r *BucketRateLimiter) When(item interface{}) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.Now()
	if !r.init {
		r.tokens, r.last, r.init = float64(r.Burst), now, true
	} else if now.After(r.last) {
		r.tokens = math.Min(float64(r.Burst), r.tokens+now.Sub(r.last).Seconds()*r.QPS)
		r.last = now
	}
	r.tokens--
	if r.tokens < 0 {
		return time.Duration(-r.tokens / r.QPS * float64(time.Second))
	}
	return 0
}

func (r *BucketRateLimiter) NumRequeues(item interface{}) int { return 0 }
func (r *BucketRateLimiter) Forget(item interface{})          {}

// MaxOfRateLimiter waits the longest of its limiters; NumRequeues is the largest count; Forget
// forgets in all.
type MaxOfRateLimiter struct{ limiters []RateLimiter }

func NewMaxOfRateLimiter(limiters ...RateLimiter) *MaxOfRateLimiter {
	return &MaxOfRateLimiter{limiters: limiters}
}

func (r *MaxOfRateLimiter) When(item interface{}) time.Duration {
	var longest time.Duration
	for _, l := range r.limiters {
		if d := l.When(item); d > longest {
			longest = d
		}
	}
	return longest
}

func (r *MaxOfRateLimiter) NumRequeues(item interface{}) int {
	most := 0
	for _, l := range r.limiters {
		if n := l.NumRequeues(item); n > most {
			most = n
		}
	}
	return most
}

func (r *MaxOfRateLimiter) Forget(item interface{}) {
	for _, l := range r.limiters {
		l.Forget(item)
	}
}

// DefaultControllerRateLimiter is client-go's: per-item exponential backoff from 5 ms to
// 1000 s, and at most 10 per second overall with bursts of 100.
func DefaultControllerRateLimiter() RateLimiter {
	return NewMaxOfRateLimiter(
		NewItemExponentialFailureRateLimiter(5*time.Millisecond, 1000*time.Second),
		NewBucketRateLimiter(10, 100))
}
