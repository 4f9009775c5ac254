// Package workqueue is client-go's util/workqueue for controllers over informerd, with the
// same rules (and the same rules as the Python client's WorkQueue):
//
//   - Stingy: an item is queued at most once; adding it again while it waits changes nothing.
//   - Never two workers on one item: an item being processed (handed out by Get and not yet
//     Done) is not handed out again; if it is added meanwhile it is marked dirty and queued
//     again when its worker calls Done, so the change that came in during processing is not lost.
//   - Fair: items come out in the order they were first added.
//   - Shutdown: after ShutDown, Add is a no-op; Get still hands out what is queued, then
//     returns shutdown=true. ShutDownWithDrain also waits until every item handed out has been
//     marked Done (so workers must call Done for everything they got).
//
// DelayingInterface adds AddAfter(item, d): the item is added once d has passed (the earliest
// of several pending delays for one item wins). RateLimitingInterface adds AddRateLimited(item),
// delayed by a RateLimiter (DefaultControllerRateLimiter: per-item exponential backoff 5 ms to
// 1000 s, the larger of it and a 10 qps / burst 100 token bucket), Forget(item) when the item
// succeeded, and NumRequeues(item). Items must be comparable (usually "namespace/name" keys).
package workqueue

import "sync"

// Interface is client-go's workqueue.Interface.
type Interface interface {
	Add(item interface{})
	Len() int
	Get() (item interface{}, shutdown bool)
	Done(item interface{})
	ShutDown()
	ShutDownWithDrain()
	ShuttingDown() bool
}

// Type is the basic queue.
type Type struct {
	cond         *sync.Cond
	queue        []interface{}            // the order of work; each item also in dirty
	dirty        map[interface{}]struct{} // items that need processing
	processing   map[interface{}]struct{} // handed out by Get and not yet Done
	shuttingDown bool
	drain        bool
}

// New makes a queue (client-go's workqueue.New).
func New() *Type {
	return &Type{cond: sync.NewCond(&sync.Mutex{}), dirty: map[interface{}]struct{}{},
		processing: map[interface{}]struct{}{}}
}

func (q *Type) Add(item interface{}) {
	q.cond.L.Lock()
	defer q.cond.L.Unlock()
	if q.shuttingDown {
		return
	}
	if _, ok := q.dirty[item]; ok {
		return
	}
	q.dirty[item] = struct{}{}
	if _, ok := q.processing[item]; ok {
		return // queued again by Done
	}
	q.queue = append(q.queue, item)
	q.cond.Signal()
}

// Len is how many items wait (not those being processed).
func (q *Type) Len() int {
	q.cond.L.Lock()
	defer q.cond.L.Unlock()
	return len(q.queue)
}

// Get blocks until an item can be processed; shutdown is true (and item nil) once the queue is
// shut down and empty, when the worker should stop.
func (q *Type) Get() (item interface{}, shutdown bool) {
	q.cond.L.Lock()
	defer q.cond.L.Unlock()
	for len(q.queue) == 0 && !q.shuttingDown {
		q.cond.Wait()
	}
	if len(q.queue) == 0 {
		return nil, true
	}
	item = q.queue[0]
	q.queue[0] = nil
	q.queue = q.queue[1:]
	q.processing[item] = struct{}{}
	delete(q.dirty, item)
	return item, false
}

// Done marks an item from Get processed; it is queued again if it was added meanwhile.
func (q *Type) Done(item interface{}) {
	q.cond.L.Lock()
	defer q.cond.L.Unlock()
	delete(q.processing, item)
	if _, ok := q.dirty[item]; ok {
		q.queue = append(q.queue, item)
		q.cond.Signal()
	} else if len(q.processing) == 0 {
		q.cond.Broadcast() // a ShutDownWithDrain may wait for this
	}
}

// ShutDown ignores Add from now on; workers get what is queued, then shutdown=true.
func (q *Type) ShutDown() {
	q.cond.L.Lock()
	q.drain = false
	q.shuttingDown = true
	q.cond.Broadcast()
	q.cond.L.Unlock()
}

// ShutDownWithDrain is ShutDown, then waits until every item handed out has been marked Done
// (or ShutDown is called meanwhile).
func (q *Type) ShutDownWithDrain() {
	q.cond.L.Lock()
	q.drain = true
	q.shuttingDown = true
	q.cond.Broadcast()
	for len(q.processing) > 0 && q.drain {
		q.cond.Wait()
	}
	q.cond.L.Unlock()
}

func (q *Type) ShuttingDown() bool {
	q.cond.L.Lock()
	defer q.cond.L.Unlock()
	return q.shuttingDown
}
