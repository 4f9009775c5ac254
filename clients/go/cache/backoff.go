package cache

import (
	"math/rand"
	"sync"
	"time"
)

// Backoff is client-go's Reflector backoff between attempts,
// wait.NewExponentialBackoffManager(800ms, 30s, 2m, 2.0, 1.0, clock) (tools/cache/reflector.go):
// each wait is the current step plus up to 100% jitter, so in [step, 2*step); the step doubles
// from 800 ms until it reaches the 30 s cap, where it stays (waits of 30 to 60 s). When more than
// 2 minutes have passed since the previous wait began (a healthy stretch), the step starts over
// at 800 ms. Now and Rand are injectable for tests.
type Backoff struct {
	Initial, Max, ResetAfter time.Duration
	Factor, Jitter           float64
	Now                      func() time.Time
	Rand                     func() float64 // in [0, 1)

	mu        sync.Mutex
	step      time.Duration
	lastStart time.Time
	started   bool
}

// NewBackoff is client-go's reflector backoff, on the real clock.
func NewBackoff() *Backoff {
	return &Backoff{Initial: 800 * time.Millisecond, Max: 30 * time.Second,
		ResetAfter: 2 * time.Minute, Factor: 2.0, Jitter: 1.0, Now: time.Now, Rand: rand.Float64}
}

// Next is the time to wait before the next attempt.
func (b *Backoff) Next() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.Now()
	if !b.started || now.Sub(b.lastStart) > b.ResetAfter {
		b.step = b.Initial
	}
	b.started, b.lastStart = true, now
	delay := b.step
	b.step = time.Duration(float64(b.step) * b.Factor)
	if b.step > b.Max {
		b.step = b.Max
	}
	if b.Jitter > 0 {
		delay += time.Duration(b.Rand() * b.Jitter * float64(delay))
	}
	return delay
}
