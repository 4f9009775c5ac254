package workqueue

// client-go's workqueue rules, one test each, and many workers at once. The limiters run on a
// fake clock; the delaying queue on the real one with delays of tens of milliseconds.

import (
	"fmt"
	"math/rand"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func getAll(t *testing.T, q Interface, n int) []interface{} {
	t.Helper()
	var items []interface{}
	for i := 0; i < n; i++ {
		item, shutdown := q.Get()
		if shutdown {
			t.Fatalf("shut down after %d items", i)
		}
		items = append(items, item)
	}
	return items
}

func TestAnItemAddedTwiceBeforeProcessingIsQueuedOnce(t *testing.T) {
	q := New()
	for _, item := range []string{"a", "b", "a", "a", "c", "b"} {
		q.Add(item)
	}
	if q.Len() != 3 {
		t.Fatalf("Len %d, want 3", q.Len())
	}
	if got := getAll(t, q, 3); !reflect.DeepEqual(got, []interface{}{"a", "b", "c"}) {
		t.Fatalf("got %v", got)
	}
	if q.Len() != 0 {
		t.Fatalf("Len %d after getting all", q.Len())
	}
}

func TestItemsComeOutInTheOrderFirstAdded(t *testing.T) {
	q := New()
	for _, item := range []int{3, 1, 2, 1, 3} {
		q.Add(item)
	}
	if got := getAll(t, q, 3); !reflect.DeepEqual(got, []interface{}{3, 1, 2}) {
		t.Fatalf("got %v", got)
	}
}

func TestAnItemBeingProcessedIsNotHandedOutAgainUntilDone(t *testing.T) {
	q := New()
	q.Add("a")
	item, _ := q.Get()
	q.Add("a") // changed while a worker holds it
	if q.Len() != 0 {
		t.Fatalf("queued while processing: Len %d", q.Len())
	}
	got := make(chan interface{}, 1)
	go func() { item, _ := q.Get(); got <- item }()
	select {
	case g := <-got:
		t.Fatalf("a second worker got %v, the item being processed", g)
	case <-time.After(100 * time.Millisecond):
	}
	q.Done(item)
	select {
	case g := <-got:
		if g != "a" {
			t.Fatalf("got %v", g)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not re-added after Done")
	}
}

func TestDoneWithoutANewAddDoesNotRequeue(t *testing.T) {
	q := New()
	q.Add("a")
	item, _ := q.Get()
	q.Done(item)
	if q.Len() != 0 {
		t.Fatalf("Len %d after Done", q.Len())
	}
	q.Add("a")
	if got, _ := q.Get(); got != "a" {
		t.Fatalf("not addable again after Done: %v", got)
	}
}

func TestShutDownIgnoresAddsAndDrainsWhatIsQueued(t *testing.T) {
	q := New()
	q.Add("a")
	q.Add("b")
	q.ShutDown()
	q.Add("c")
	if !q.ShuttingDown() {
		t.Fatal("ShuttingDown false")
	}
	if got := getAll(t, q, 2); !reflect.DeepEqual(got, []interface{}{"a", "b"}) {
		t.Fatalf("got %v", got)
	}
	if item, shutdown := q.Get(); !shutdown || item != nil {
		t.Fatalf("Get after the queue emptied: %v, %v", item, shutdown)
	}
}

func TestShutDownWakesWaitingWorkers(t *testing.T) {
	q := New()
	var wg sync.WaitGroup
	var stopped int32
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, shutdown := q.Get(); shutdown {
				atomic.AddInt32(&stopped, 1)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	q.ShutDown()
	wg.Wait()
	if stopped != 4 {
		t.Fatalf("%d of 4 workers told to stop", stopped)
	}
}

func TestShutDownWithDrainWaitsForItemsBeingProcessed(t *testing.T) {
	q := New()
	q.Add("a")
	item, _ := q.Get()
	returned := make(chan struct{})
	go func() { q.ShutDownWithDrain(); close(returned) }()
	select {
	case <-returned:
		t.Fatal("ShutDownWithDrain returned while an item was being processed")
	case <-time.After(100 * time.Millisecond):
	}
	if !q.ShuttingDown() {
		t.Fatal("not shutting down while draining")
	}
	q.Done(item)
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("ShutDownWithDrain did not return after Done")
	}
}

func TestShutDownEndsAShutDownWithDrain(t *testing.T) {
	q := New()
	q.Add("a")
	q.Get()
	returned := make(chan struct{})
	go func() { q.ShutDownWithDrain(); close(returned) }()
	time.Sleep(50 * time.Millisecond)
	q.ShutDown()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("ShutDown did not end the drain")
	}
}

func TestAddAfterAddsOnceTheDelayHasPassed(t *testing.T) {
	q := NewDelayingQueue()
	defer q.ShutDown()
	start := time.Now()
	q.AddAfter("late", 80*time.Millisecond)
	q.AddAfter("now", 0)
	if q.Len() != 1 {
		t.Fatalf("Len %d, want 1 (only the undelayed item)", q.Len())
	}
	if got := getAll(t, q, 2); !reflect.DeepEqual(got, []interface{}{"now", "late"}) {
		t.Fatalf("got %v", got)
	}
	if elapsed := time.Since(start); elapsed < 80*time.Millisecond {
		t.Fatalf("the delayed item came after %v, before its 80ms", elapsed)
	}
}

func TestAddAfterTheEarliestDelayWins(t *testing.T) {
	q := newDelayingQueue()
	defer q.ShutDown()
	q.AddAfter("a", time.Hour)
	q.AddAfter("a", 30*time.Millisecond)
	q.AddAfter("a", time.Hour) // later: changes nothing
	if q.Waiting() != 1 {
		t.Fatalf("%d waiting, want 1", q.Waiting())
	}
	done := make(chan interface{})
	go func() { item, _ := q.Get(); done <- item }()
	select {
	case got := <-done:
		if got != "a" {
			t.Fatalf("got %v", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the earlier delay did not win")
	}
	time.Sleep(50 * time.Millisecond)
	if q.Waiting() != 0 || q.Len() != 0 {
		t.Fatalf("left over: %d waiting, %d queued", q.Waiting(), q.Len())
	}
}

func TestShutDownDropsDelayedItems(t *testing.T) {
	q := newDelayingQueue()
	q.AddAfter("a", 30*time.Millisecond)
	q.ShutDown()
	q.AddAfter("b", 10*time.Millisecond)
	time.Sleep(80 * time.Millisecond)
	if item, shutdown := q.Get(); !shutdown {
		t.Fatalf("a delayed item arrived after ShutDown: %v", item)
	}
}

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func TestItemExponentialFailureRateLimiter(t *testing.T) {
	r := NewItemExponentialFailureRateLimiter(5*time.Millisecond, 1000*time.Second)
	want := []time.Duration{5, 10, 20, 40, 80}
	for i, w := range want {
		if got := r.When("a"); got != w*time.Millisecond {
			t.Fatalf("failure %d: %v, want %v", i, got, w*time.Millisecond)
		}
	}
	if r.NumRequeues("a") != 5 || r.NumRequeues("b") != 0 {
		t.Fatalf("NumRequeues a=%d b=%d", r.NumRequeues("a"), r.NumRequeues("b"))
	}
	if got := r.When("b"); got != 5*time.Millisecond {
		t.Fatalf("items are counted apart: b's first %v", got)
	}
	for i := 0; i < 40; i++ {
		r.When("a")
	}
	if got := r.When("a"); got != 1000*time.Second {
		t.Fatalf("capped: %v, want 1000s", got)
	}
	for i := 0; i < 2000; i++ { // far past float64's range for 2^n: still the maximum
		r.When("a")
	}
	if got := r.When("a"); got != 1000*time.Second {
		t.Fatalf("after 2000 failures: %v", got)
	}
	r.Forget("a")
	if r.NumRequeues("a") != 0 || r.When("a") != 5*time.Millisecond {
		t.Fatal("Forget did not start the backoff over")
	}
}

func TestBucketRateLimiter(t *testing.T) {
	clock := &fakeClock{time.Unix(1000, 0)}
	r := NewBucketRateLimiter(10, 100)
	r.Now = clock.Now
	for i := 0; i < 100; i++ {
		if d := r.When(fmt.Sprint(i)); d != 0 {
			t.Fatalf("within the burst, item %d waits %v", i, d)
		}
	}
	for i, want := range []time.Duration{100, 200, 300} {
		if d := r.When("x"); d != want*time.Millisecond {
			t.Fatalf("past the burst, %d: %v, want %v", i, d, want*time.Millisecond)
		}
	}
	clock.now = clock.now.Add(time.Second) // 10 tokens back; 3 owed
	for i := 0; i < 7; i++ {
		if d := r.When("y"); d != 0 {
			t.Fatalf("after refilling, %d waits %v", i, d)
		}
	}
	if d := r.When("y"); d != 100*time.Millisecond {
		t.Fatalf("refill used up: %v", d)
	}
	if r.NumRequeues("x") != 0 {
		t.Fatal("the bucket counts no requeues")
	}
}

func TestDefaultControllerRateLimiterIsTheMaxOfBoth(t *testing.T) {
	clock := &fakeClock{time.Unix(1000, 0)}
	bucket := NewBucketRateLimiter(10, 100)
	bucket.Now = clock.Now
	r := NewMaxOfRateLimiter(NewItemExponentialFailureRateLimiter(5*time.Millisecond, 1000*time.Second), bucket)
	if d := r.When("a"); d != 5*time.Millisecond {
		t.Fatalf("first failure: %v", d)
	}
	for i := 0; i < 99; i++ {
		r.When(fmt.Sprint("other", i))
	}
	// The bucket is empty: the next item waits for it (100 ms), though its own backoff is 5 ms.
	if d := r.When("b"); d != 100*time.Millisecond {
		t.Fatalf("bucket-limited: %v", d)
	}
	if r.NumRequeues("a") != 1 {
		t.Fatalf("NumRequeues %d", r.NumRequeues("a"))
	}
	r.Forget("a")
	if r.NumRequeues("a") != 0 {
		t.Fatal("Forget did not reach the per-item limiter")
	}
	d := DefaultControllerRateLimiter()
	if got := d.When("z"); got != 5*time.Millisecond {
		t.Fatalf("DefaultControllerRateLimiter's first delay %v", got)
	}
}

func TestRateLimitingQueueAddRateLimitedForgetNumRequeues(t *testing.T) {
	q := NewRateLimitingQueue(NewItemExponentialFailureRateLimiter(20*time.Millisecond, time.Second))
	defer q.ShutDown()
	start := time.Now()
	q.AddRateLimited("a")
	q.AddRateLimited("a") // 40 ms: the earlier (20 ms) wins
	if q.NumRequeues("a") != 2 {
		t.Fatalf("NumRequeues %d", q.NumRequeues("a"))
	}
	if q.Len() != 0 {
		t.Fatal("added before its delay")
	}
	item, _ := q.Get()
	if item != "a" || time.Since(start) < 20*time.Millisecond {
		t.Fatalf("got %v after %v", item, time.Since(start))
	}
	q.Done(item)
	q.Forget("a")
	if q.NumRequeues("a") != 0 {
		t.Fatal("Forget kept the failures")
	}
}

// Many workers, many producers: no item is ever processed by two workers at once, and every
// item added is processed after its last add.
func TestManyWorkersNeverProcessOneItemTwiceAtOnce(t *testing.T) {
	q := NewRateLimitingQueue(DefaultControllerRateLimiter())
	const workers, producers, keys, addsPerProducer = 8, 4, 20, 500
	var mu sync.Mutex
	busy := map[interface{}]bool{}
	lastAdd := map[interface{}]int64{}   // sequence of the item's last Add
	lastStart := map[interface{}]int64{} // sequence when processing last started
	var seq int64
	var overlaps, processed int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				item, shutdown := q.Get()
				if shutdown {
					return
				}
				mu.Lock()
				if busy[item] {
					overlaps++
				}
				busy[item] = true
				seq++
				lastStart[item] = seq
				mu.Unlock()
				time.Sleep(time.Duration(rand.Intn(200)) * time.Microsecond)
				mu.Lock()
				busy[item] = false
				processed++
				mu.Unlock()
				if rand.Intn(10) == 0 {
					q.AddRateLimited(item)
				} else {
					q.Forget(item)
				}
				q.Done(item)
			}
		}()
	}
	var producersDone sync.WaitGroup
	for p := 0; p < producers; p++ {
		producersDone.Add(1)
		go func() {
			defer producersDone.Done()
			for i := 0; i < addsPerProducer; i++ {
				key := fmt.Sprintf("ns/key-%d", rand.Intn(keys))
				mu.Lock()
				seq++
				lastAdd[key] = seq
				mu.Unlock()
				q.Add(key)
				if i%50 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	producersDone.Wait()
	// Let the queue and the rate-limited re-adds settle, then drain.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		if q.Len() == 0 && q.(*rateLimitingType).Waiting() == 0 {
			mu.Lock()
			idle := true
			for _, b := range busy {
				idle = idle && !b
			}
			mu.Unlock()
			if idle {
				break
			}
		}
	}
	q.ShutDownWithDrain()
	wg.Wait()
	if overlaps != 0 {
		t.Fatalf("%d times an item was handed to a second worker while being processed", overlaps)
	}
	for key, added := range lastAdd {
		if lastStart[key] < added {
			t.Errorf("%v: added (seq %d) but not processed after that (last start %d)", key, added, lastStart[key])
		}
	}
	if processed < keys {
		t.Fatalf("only %d processed", processed)
	}
}
