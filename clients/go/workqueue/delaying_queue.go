package workqueue

import (
	"container/heap"
	"sync"
	"time"
)

// DelayingInterface is client-go's: an Interface with AddAfter.
type DelayingInterface interface {
	Interface
	// AddAfter adds item once d has passed (at once if d <= 0). Of several pending delays for
	// one item, the earliest wins.
	AddAfter(item interface{}, d time.Duration)
}

type waitFor struct {
	item    interface{}
	readyAt time.Time
	index   int
}

type waitHeap []*waitFor

func (h waitHeap) Len() int            { return len(h) }
func (h waitHeap) Less(i, j int) bool  { return h[i].readyAt.Before(h[j].readyAt) }
func (h waitHeap) Swap(i, j int)       { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *waitHeap) Push(x interface{}) { w := x.(*waitFor); w.index = len(*h); *h = append(*h, w) }
func (h *waitHeap) Pop() interface{} {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return w
}

type delayingType struct {
	*Type
	mu      sync.Mutex
	waiting waitHeap
	entries map[interface{}]*waitFor
	wake    chan struct{}
	stop    chan struct{}
	stopped bool
}

// NewDelayingQueue makes a DelayingInterface; a goroutine adds items when due, until ShutDown.
func NewDelayingQueue() DelayingInterface { return newDelayingQueue() }

func newDelayingQueue() *delayingType {
	q := &delayingType{Type: New(), entries: map[interface{}]*waitFor{},
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
	go q.waitingLoop()
	return q
}

func (q *delayingType) AddAfter(item interface{}, d time.Duration) {
	if q.ShuttingDown() {
		return
	}
	if d <= 0 {
		q.Add(item)
		return
	}
	readyAt := time.Now().Add(d)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped {
		return
	}
	if w, ok := q.entries[item]; ok {
		if !readyAt.Before(w.readyAt) {
			return // already due sooner
		}
		w.readyAt = readyAt
		heap.Fix(&q.waiting, w.index)
	} else {
		w := &waitFor{item: item, readyAt: readyAt}
		q.entries[item] = w
		heap.Push(&q.waiting, w)
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Waiting is how many items wait for their delay.
func (q *delayingType) Waiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.entries)
}

func (q *delayingType) waitingLoop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		q.mu.Lock()
		now := time.Now()
		for len(q.waiting) > 0 && !q.waiting[0].readyAt.After(now) {
			w := heap.Pop(&q.waiting).(*waitFor)
			delete(q.entries, w.item)
			q.Type.Add(w.item)
		}
		next := time.Hour
		if len(q.waiting) > 0 {
			next = q.waiting[0].readyAt.Sub(now)
		}
		q.mu.Unlock()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
		select {
		case <-q.stop:
			return
		case <-q.wake:
		case <-timer.C:
		}
	}
}

func (q *delayingType) stopDelays() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.stopped {
		q.stopped = true
		q.waiting = nil
		q.entries = map[interface{}]*waitFor{}
		close(q.stop)
	}
}

func (q *delayingType) ShutDown() {
	q.Type.ShutDown()
	q.stopDelays()
}

func (q *delayingType) ShutDownWithDrain() {
	q.Type.ShutDownWithDrain()
	q.stopDelays()
}
