package cache

// Informer: client-go's SharedIndexInformer over one informerd Subscribe stream.
//
// Data flow: Run reads the stream (batches of up to MaxEventsPerMessage events per message,
// Event.batch) and hands each event to the reflector (reflector.go), which updates the Store
// and returns notifications; those queue, unbounded as in client-go's processorListener, and one
// goroutine calls the handlers, in order. So the store is never behind the handlers (a handler
// may read the store and see a newer state than its notification, as in client-go), and a slow
// handler does not stall the stream.
//
// Reconnection: after UNAVAILABLE, RESOURCE_EXHAUSTED, a normal end or a transport failure it
// resumes from the last resumable version after client-go's backoff (Backoff); after
// OUT_OF_RANGE it takes a fresh snapshot and notifies only the differences. Other errors end
// Run, returned as a *StreamError.
//
// Resync (Options.ResyncPeriod, as client-go's): every period after the first sync each handler
// gets OnUpdate(obj, obj) for every object in the store, in line with the other notifications.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	informerdv1 "informerd.io/client/api/v1"
)

// ResourceEventHandler is client-go's: OnDelete gets an *Object, or a DeletedFinalStateUnknown
// for a deletion that happened while the client was not connected.
type ResourceEventHandler interface {
	OnAdd(obj interface{})
	OnUpdate(oldObj, newObj interface{})
	OnDelete(obj interface{})
}

// ResourceEventHandlerFuncs is client-go's: any of the functions may be nil.
type ResourceEventHandlerFuncs struct {
	AddFunc    func(obj interface{})
	UpdateFunc func(oldObj, newObj interface{})
	DeleteFunc func(obj interface{})
}

func (r ResourceEventHandlerFuncs) OnAdd(obj interface{}) {
	if r.AddFunc != nil {
		r.AddFunc(obj)
	}
}

func (r ResourceEventHandlerFuncs) OnUpdate(oldObj, newObj interface{}) {
	if r.UpdateFunc != nil {
		r.UpdateFunc(oldObj, newObj)
	}
}

func (r ResourceEventHandlerFuncs) OnDelete(obj interface{}) {
	if r.DeleteFunc != nil {
		r.DeleteFunc(obj)
	}
}

// StreamError is a Subscribe stream that ended with an error. Action: "retry" (resumed after
// Delay), "resnapshot" (a fresh snapshot follows) or "fatal" (Run returns it).
type StreamError struct {
	Code    codes.Code
	Message string
	Action  streamAction
	Delay   time.Duration
}

func (e *StreamError) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// GRPCStatus lets status.Code(err) see the code.
func (e *StreamError) GRPCStatus() *status.Status { return status.New(e.Code, e.Message) }

// Options configure an Informer. Zero values are the defaults.
type Options struct {
	// Namespace ("" for all), LabelSelector and FieldSelector (kubectl's syntax), filtered by
	// informerd.
	Namespace, LabelSelector, FieldSelector string
	// ResyncPeriod: re-deliver OnUpdate(obj, obj) for every object this often; 0: never.
	ResyncPeriod time.Duration
	// MaxEventsPerMessage is SubscribeRequest.max_events_per_message: 0 means 64; 1 no batching.
	MaxEventsPerMessage uint32
	// Indexers besides the namespace index.
	Indexers Indexers
	// CallOptions go with every Subscribe (for example grpc.PerRPCCredentials(TokenCredentials{})).
	CallOptions []grpc.CallOption
	// ErrorHandler sees every stream end that was an error, retried or not.
	ErrorHandler func(*StreamError)
	// Logf logs reconnections (default log.Printf; func(string, ...interface{}) {} for none).
	Logf func(format string, args ...interface{})
	// For tests: the backoff, a sleep that honours ctx, and the clock resync uses.
	Backoff *Backoff
	Sleep   func(ctx context.Context, d time.Duration)
	Now     func() time.Time
}

type pendingItem struct {
	handlers []ResourceEventHandler // those registered when it was queued
	n        notification
}

// Informer follows one resource through informerd into a local Store.
type Informer struct {
	client   informerdv1.InformerClient
	resource string
	opts     Options
	store    *Store

	mu         sync.Mutex // guards reflector, handlers, pending, nextResync
	reflector  reflector
	handlers   []ResourceEventHandler
	pending    []pendingItem
	nextResync time.Time // zero: no resync scheduled
	wake       chan struct{}
	syncedCh   chan struct{}
	running    bool
}

// NewInformer makes an informer for resource (as kubectl names it: "pods", "deployments.apps")
// over conn, which stays the caller's to close. It does nothing until Run.
func NewInformer(conn *grpc.ClientConn, resource string, opts Options) (*Informer, error) {
	return NewInformerWithClient(informerdv1.NewInformerClient(conn), resource, opts)
}

// NewInformerWithClient is NewInformer over any InformerClient.
func NewInformerWithClient(client informerdv1.InformerClient, resource string, opts Options) (*Informer, error) {
	if opts.MaxEventsPerMessage == 0 {
		opts.MaxEventsPerMessage = 64
	}
	if opts.Backoff == nil {
		opts.Backoff = NewBackoff()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepContext
	}
	if opts.Logf == nil {
		opts.Logf = log.Printf
	}
	store, err := NewStore(opts.Indexers)
	if err != nil {
		return nil, err
	}
	inf := &Informer{client: client, resource: resource, opts: opts, store: store,
		wake: make(chan struct{}, 1), syncedCh: make(chan struct{})}
	inf.reflector.store = store
	return inf, nil
}

func sleepContext(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// GetStore is the store (client-go's GetStore/GetIndexer).
func (inf *Informer) GetStore() *Store { return inf.store }

// GetIndexer is the store as an Indexer.
func (inf *Informer) GetIndexer() Indexer { return inf.store }

// Lister is the store as a Lister.
func (inf *Informer) Lister() Lister { return inf.store }

// AddIndexers adds indexes (also after Run has started: objects stored are indexed at once).
func (inf *Informer) AddIndexers(indexers Indexers) error { return inf.store.AddIndexers(indexers) }

// AddEventHandler registers a handler. Added after the informer has synced, it first gets
// OnAdd for every object already in the store, as in client-go.
func (inf *Informer) AddEventHandler(handler ResourceEventHandler) {
	inf.mu.Lock()
	defer inf.mu.Unlock()
	inf.handlers = append(inf.handlers, handler)
	if inf.reflector.synced {
		only := []ResourceEventHandler{handler}
		for _, key := range inf.store.ListKeys() {
			if obj, ok := inf.store.GetByKey(key); ok {
				inf.pending = append(inf.pending, pendingItem{only, notification{kind: notifyAdd, obj: obj}})
			}
		}
		inf.signal()
	}
}

// LastSyncResourceVersion is the resource version the informer would resume from ("" before
// the first SYNCED, and after OUT_OF_RANGE until the fresh snapshot's SYNCED).
func (inf *Informer) LastSyncResourceVersion() string {
	inf.mu.Lock()
	defer inf.mu.Unlock()
	return inf.reflector.resumeFrom
}

// HasSynced reports whether the first snapshot is in the store.
func (inf *Informer) HasSynced() bool {
	select {
	case <-inf.syncedCh:
		return true
	default:
		return false
	}
}

// WaitForCacheSync waits until the informer has synced (true) or ctx is done (false).
func (inf *Informer) WaitForCacheSync(ctx context.Context) bool {
	select {
	case <-inf.syncedCh:
		return true
	case <-ctx.Done():
		return false
	}
}

// InformerSynced is client-go's: a HasSynced function.
type InformerSynced func() bool

// WaitForCacheSync is client-go's cache.WaitForCacheSync with a context: it polls every
// 100 ms until each function returns true (true) or ctx is done (false).
func WaitForCacheSync(ctx context.Context, synced ...InformerSynced) bool {
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		all := true
		for _, f := range synced {
			if !f() {
				all = false
				break
			}
		}
		if all {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-ticker.C:
		}
	}
}

func (inf *Informer) signal() {
	select {
	case inf.wake <- struct{}{}:
	default:
	}
}

// Run follows the resource until ctx is done (it returns nil) or a stream ends with an error
// retrying cannot fix (it returns the *StreamError, after the notifications already queued
// were delivered). It may run once.
func (inf *Informer) Run(ctx context.Context) error {
	inf.mu.Lock()
	if inf.running {
		inf.mu.Unlock()
		return errors.New("informer: Run called twice")
	}
	inf.running = true
	inf.mu.Unlock()

	finished := make(chan struct{})
	dispatcherDone := make(chan struct{})
	go func() {
		defer close(dispatcherDone)
		inf.dispatch(ctx, finished)
	}()
	err := inf.follow(ctx)
	close(finished)
	<-dispatcherDone
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (inf *Informer) follow(ctx context.Context) error {
	for ctx.Err() == nil {
		inf.mu.Lock()
		version := inf.reflector.beginStream()
		inf.mu.Unlock()
		code, message, err := inf.stream(ctx, version)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		delay, err := inf.afterStreamEnd(code, message, version)
		if err != nil {
			return err
		}
		if delay > 0 {
			inf.opts.Sleep(ctx, delay)
		}
	}
	return nil
}

// stream runs one Subscribe until it ends: its code and message (codes.OK: a normal end), or an
// error for an object that is not JSON.
func (inf *Informer) stream(ctx context.Context, version string) (codes.Code, string, error) {
	streamCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	call, err := inf.client.Subscribe(streamCtx, &informerdv1.SubscribeRequest{
		Resource: inf.resource, Namespace: inf.opts.Namespace,
		LabelSelector: inf.opts.LabelSelector, FieldSelector: inf.opts.FieldSelector,
		ResourceVersion: version, MaxEventsPerMessage: inf.opts.MaxEventsPerMessage,
	}, inf.opts.CallOptions...)
	for err == nil {
		var message *informerdv1.Event
		if message, err = call.Recv(); err == nil {
			if applyErr := inf.applyMessage(message); applyErr != nil {
				return codes.OK, "", &StreamError{Code: codes.DataLoss, Message: applyErr.Error(), Action: ActionFatal}
			}
		}
	}
	if err == io.EOF {
		return codes.OK, "the stream ended", nil
	}
	s := status.Convert(err)
	return s.Code(), s.Message(), nil
}

func (inf *Informer) applyMessage(message *informerdv1.Event) error {
	// A batch carries whole events in order and nothing else (informerd.proto, Event.batch).
	events := message.Batch
	if len(events) == 0 {
		events = []*informerdv1.Event{message}
	}
	inf.mu.Lock()
	defer inf.mu.Unlock()
	wasSynced := inf.reflector.synced
	handlers := append([]ResourceEventHandler(nil), inf.handlers...)
	var err error
	for _, e := range events {
		var notifications []notification
		if notifications, err = inf.reflector.apply(e); err != nil {
			break
		}
		for _, n := range notifications {
			inf.pending = append(inf.pending, pendingItem{handlers, n})
		}
	}
	if inf.reflector.indexErr != nil {
		inf.opts.Logf("informer %s: %v", inf.resource, inf.reflector.indexErr)
		inf.reflector.indexErr = nil
	}
	if !wasSynced && inf.reflector.synced {
		if inf.opts.ResyncPeriod > 0 {
			inf.nextResync = inf.opts.Now().Add(inf.opts.ResyncPeriod)
		}
		close(inf.syncedCh)
	}
	inf.signal()
	return err
}

func (inf *Informer) afterStreamEnd(code codes.Code, message, version string) (time.Duration, error) {
	action := classifyStreamEnd(code, message)
	var delay time.Duration
	switch action {
	case ActionResnapshot:
		inf.mu.Lock()
		inf.reflector.restartFromScratch()
		inf.mu.Unlock()
		// A fresh snapshot is never OUT_OF_RANGE; if one was, do not spin.
		if version == "" {
			delay = inf.opts.Backoff.Next()
		}
	case ActionRetry:
		delay = inf.opts.Backoff.Next()
	}
	e := &StreamError{Code: code, Message: message, Action: action, Delay: delay}
	if code == codes.OK {
		inf.opts.Logf("informer %s: the stream ended; resuming in %v", inf.resource, delay)
	} else {
		inf.opts.Logf("informer %s: %v (%s, in %v)", inf.resource, e, action, delay)
		if inf.opts.ErrorHandler != nil {
			inf.opts.ErrorHandler(e)
		}
	}
	if action == ActionFatal {
		return 0, e
	}
	return delay, nil
}

// dispatch calls the handlers, one notification at a time, until Run ends. What is pending when
// Run ends with an error is still delivered; once ctx is done, nothing more.
func (inf *Informer) dispatch(ctx context.Context, finished <-chan struct{}) {
	for {
		inf.mu.Lock()
		inf.maybeQueueResync()
		var item *pendingItem
		if len(inf.pending) > 0 {
			first := inf.pending[0]
			inf.pending[0] = pendingItem{}
			inf.pending = inf.pending[1:]
			item = &first
		}
		var timer *time.Timer
		var timeout <-chan time.Time
		if item == nil && !inf.nextResync.IsZero() {
			timer = time.NewTimer(inf.nextResync.Sub(inf.opts.Now()))
			timeout = timer.C
		}
		inf.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if item != nil {
			for _, h := range item.handlers {
				deliver(h, item.n, inf.resource, inf.opts.Logf)
			}
			continue
		}
		select {
		case <-finished:
			inf.mu.Lock()
			empty := len(inf.pending) == 0
			inf.mu.Unlock()
			if empty {
				return
			}
		case <-ctx.Done():
			return
		case <-inf.wake:
		case <-timeout:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

func deliver(h ResourceEventHandler, n notification, resource string, logf func(string, ...interface{})) {
	defer func() { // a handler's bug must not stop the others
		if r := recover(); r != nil {
			logf("informer %s: event handler panicked: %v", resource, r)
		}
	}()
	switch n.kind {
	case notifyAdd:
		h.OnAdd(n.obj)
	case notifyUpdate:
		h.OnUpdate(n.old, n.obj)
	case notifyDelete:
		h.OnDelete(n.obj)
	}
}

// maybeQueueResync queues OnUpdate(obj, obj) for every object when due (inf.mu held).
func (inf *Informer) maybeQueueResync() {
	if inf.nextResync.IsZero() || inf.opts.Now().Before(inf.nextResync) {
		return
	}
	handlers := append([]ResourceEventHandler(nil), inf.handlers...)
	for _, key := range inf.store.ListKeys() {
		if obj, ok := inf.store.GetByKey(key); ok {
			inf.pending = append(inf.pending, pendingItem{handlers, notification{kind: notifyUpdate, old: obj, obj: obj}})
		}
	}
	inf.nextResync = inf.opts.Now().Add(inf.opts.ResyncPeriod)
}
