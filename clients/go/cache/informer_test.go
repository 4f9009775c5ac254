package cache

// The Informer against an in-process fake Informer gRPC server (grpc-go on a loopback
// listener) that plays a script of Subscribe streams: each call takes the next (messages, end)
// and sends the messages, then ends with the status `end`, or normally, or stays open until
// the client cancels (hold), or ends with UNAVAILABLE once the test closes a channel. Handler
// calls are recorded as "add key rv", "update key oldrv newrv", "delete key rv" and
// "tombstone key lastrv" and compared exactly. The backoff's sleeps are recorded, not slept,
// with the jitter's random source fixed. The same cases as the Python client's tests.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	informerdv1 "informerd.io/client/api/v1"
)

type end struct {
	hold    bool
	code    codes.Code // codes.OK: a normal end
	message string
	release chan struct{} // UNAVAILABLE once closed
}

var hold = end{hold: true}

func fail(code codes.Code, message string) end { return end{code: code, message: message} }

type script struct {
	messages []*informerdv1.Event
	end      end
}

type scriptedServer struct {
	informerdv1.UnimplementedInformerServer
	mu       sync.Mutex
	streams  []script
	requests []*informerdv1.SubscribeRequest
	tokens   [][]string
}

func (s *scriptedServer) Subscribe(req *informerdv1.SubscribeRequest, stream informerdv1.Informer_SubscribeServer) error {
	s.mu.Lock()
	s.requests = append(s.requests, req)
	md, _ := metadata.FromIncomingContext(stream.Context())
	s.tokens = append(s.tokens, md.Get("authorization"))
	if len(s.streams) == 0 {
		s.mu.Unlock()
		return status.Error(codes.FailedPrecondition, "the script has no more streams")
	}
	sc := s.streams[0]
	s.streams = s.streams[1:]
	s.mu.Unlock()
	for _, m := range sc.messages {
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	switch {
	case sc.end.release != nil:
		select {
		case <-sc.end.release:
		case <-time.After(10 * time.Second):
		}
		return status.Error(codes.Unavailable, "released")
	case sc.end.hold:
		<-stream.Context().Done()
		return nil
	case sc.end.code != codes.OK:
		return status.Error(sc.end.code, sc.end.message)
	}
	return nil
}

func (s *scriptedServer) versions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var v []string
	for _, r := range s.requests {
		v = append(v, r.ResourceVersion)
	}
	return v
}

func (s *scriptedServer) requestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

func serve(t *testing.T, srv informerdv1.InformerServer, dialOptions ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer()
	informerdv1.RegisterInformerServer(server, srv)
	go server.Serve(listener)
	conn, err := grpc.Dial(listener.Addr().String(), append([]grpc.DialOption{grpc.WithInsecure()}, dialOptions...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); server.Stop() })
	return conn
}

type podOpts struct {
	uid, node string
	labels    map[string]string
}

func ev(typ informerdv1.Event_Type, rv, name string, o ...podOpts) *informerdv1.Event {
	return evObj(typ, rv, name, rv, o...)
}

// evObj is an event whose object's own resourceVersion is objRV.
func evObj(typ informerdv1.Event_Type, rv, name, objRV string, o ...podOpts) *informerdv1.Event {
	var opts podOpts
	if len(o) > 0 {
		opts = o[0]
	}
	obj := podObject(name, objRV, opts.uid, opts.labels, opts.node, "default")
	return &informerdv1.Event{Type: typ, ResourceVersion: rv, Object: string(obj.Raw),
		Namespace: "default", Name: name, Uid: obj.UID()}
}

func mark(typ informerdv1.Event_Type, rv string) *informerdv1.Event {
	return &informerdv1.Event{Type: typ, ResourceVersion: rv}
}

func batch(events ...*informerdv1.Event) *informerdv1.Event {
	return &informerdv1.Event{Batch: events}
}

const (
	ADDED    = informerdv1.Event_ADDED
	MODIFIED = informerdv1.Event_MODIFIED
	DELETED  = informerdv1.Event_DELETED
	BOOKMARK = informerdv1.Event_BOOKMARK
	SYNCED   = informerdv1.Event_SYNCED
)

type recorder struct {
	mu    sync.Mutex
	calls []string
	same  []bool // OnUpdate: old and new are the same object
}

func (r *recorder) record(call string) {
	r.mu.Lock()
	r.calls = append(r.calls, call)
	r.mu.Unlock()
}

func (r *recorder) OnAdd(obj interface{}) {
	o := obj.(*Object)
	r.record(fmt.Sprintf("add %s %s", o.Key(), o.ResourceVersion()))
}

func (r *recorder) OnUpdate(old, new interface{}) {
	o, n := old.(*Object), new.(*Object)
	r.mu.Lock()
	r.same = append(r.same, o == n)
	r.mu.Unlock()
	r.record(fmt.Sprintf("update %s %s %s", n.Key(), o.ResourceVersion(), n.ResourceVersion()))
}

func (r *recorder) OnDelete(obj interface{}) {
	switch o := obj.(type) {
	case DeletedFinalStateUnknown:
		r.record(fmt.Sprintf("tombstone %s %s", o.Key, o.Obj.(*Object).ResourceVersion()))
	case *Object:
		r.record(fmt.Sprintf("delete %s %s", o.Key(), o.ResourceVersion()))
	default:
		r.record(fmt.Sprintf("delete of a %T", obj))
	}
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func waitUntil(condition func() bool, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if condition() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return condition()
}

type running struct {
	t        *testing.T
	fake     *scriptedServer
	informer *Informer
	recorder *recorder
	mu       sync.Mutex
	sleeps   []time.Duration
	errors   []*StreamError
	cancel   context.CancelFunc
	done     chan struct{}
	err      error
}

// run starts an Informer for "pods" against a fake playing streams; opts may set anything but
// the backoff, Sleep and ErrorHandler, which record.
func run(t *testing.T, streams []script, opts Options, dialOptions ...grpc.DialOption) *running {
	r := &running{t: t, fake: &scriptedServer{streams: streams}, recorder: &recorder{}, done: make(chan struct{})}
	conn := serve(t, r.fake, dialOptions...)
	backoff := NewBackoff()
	backoff.Rand = func() float64 { return 0 }
	opts.Backoff = backoff
	opts.Sleep = func(ctx context.Context, d time.Duration) {
		r.mu.Lock()
		r.sleeps = append(r.sleeps, d)
		r.mu.Unlock()
	}
	opts.ErrorHandler = func(e *StreamError) {
		r.mu.Lock()
		r.errors = append(r.errors, e)
		r.mu.Unlock()
	}
	opts.Logf = func(string, ...interface{}) {}
	var err error
	if r.informer, err = NewInformer(conn, "pods", opts); err != nil {
		t.Fatal(err)
	}
	r.informer.AddEventHandler(r.recorder)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.err = r.informer.Run(ctx); close(r.done) }()
	t.Cleanup(func() { cancel(); r.wait(10 * time.Second) })
	return r
}

func (r *running) wait(timeout time.Duration) bool {
	select {
	case <-r.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

func (r *running) waitCalls(n int) []string {
	waitUntil(func() bool { return len(r.recorder.snapshot()) >= n }, 10*time.Second)
	time.Sleep(100 * time.Millisecond) // anything extra would show now
	return r.recorder.snapshot()
}

func (r *running) recordedSleeps() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.sleeps...)
}

func (r *running) recordedErrors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.errors {
		out = append(out, fmt.Sprintf("%s %s", e.Code, e.Action))
	}
	return out
}

func expect(t *testing.T, what string, got, want interface{}) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %#v\nwant %#v", what, got, want)
	}
}

func ms(values ...float64) []time.Duration {
	var out []time.Duration
	for _, v := range values {
		out = append(out, time.Duration(v*float64(time.Millisecond)))
	}
	return out
}

func TestFirstSyncThenLiveEventsCallTheHandlersInOrder(t *testing.T) {
	r := run(t, []script{{[]*informerdv1.Event{
		ev(ADDED, "5", "a"), ev(ADDED, "7", "b"), ev(ADDED, "6", "c"), mark(SYNCED, "10"),
		ev(MODIFIED, "11", "a"), ev(DELETED, "12", "b"), ev(ADDED, "13", "d"), mark(BOOKMARK, "14"),
	}, hold}}, Options{Namespace: "default", LabelSelector: "app=web", FieldSelector: "spec.nodeName=n1"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !r.informer.WaitForCacheSync(ctx) || !r.informer.HasSynced() {
		t.Fatal("not synced")
	}
	expect(t, "calls", r.waitCalls(6), []string{"add default/a 5", "add default/b 7", "add default/c 6",
		"update default/a 5 11", "delete default/b 12", "add default/d 13"})
	expect(t, "keys", r.informer.GetIndexer().ListKeys(), []string{"default/a", "default/c", "default/d"})
	if o, err := r.informer.Lister().Get("default", "a"); err != nil || o.ResourceVersion() != "11" {
		t.Fatalf("Get a: %v %v", o, err)
	}
	if _, err := r.informer.Lister().Get("default", "b"); !IsNotFound(err) {
		t.Fatalf("Get b: %v", err)
	}
	expect(t, "LastSyncResourceVersion", r.informer.LastSyncResourceVersion(), "14")
	q := r.fake.requests[0]
	expect(t, "request", []interface{}{q.Resource, q.Namespace, q.LabelSelector, q.FieldSelector, q.ResourceVersion, q.MaxEventsPerMessage},
		[]interface{}{"pods", "default", "app=web", "spec.nodeName=n1", "", uint32(64)})
}

type gatedServer struct {
	informerdv1.UnimplementedInformerServer
	gate chan struct{}
}

func (g *gatedServer) Subscribe(req *informerdv1.SubscribeRequest, stream informerdv1.Informer_SubscribeServer) error {
	stream.Send(ev(ADDED, "5", "a"))
	stream.Send(ev(ADDED, "6", "b"))
	<-g.gate
	stream.Send(mark(SYNCED, "9"))
	<-stream.Context().Done()
	return nil
}

func TestNothingIsVisibleOrNotifiedBeforeSynced(t *testing.T) {
	g := &gatedServer{gate: make(chan struct{})}
	conn := serve(t, g)
	informer, _ := NewInformer(conn, "pods", Options{})
	rec := &recorder{}
	informer.AddEventHandler(rec)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { informer.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	short, cancelShort := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelShort()
	if informer.WaitForCacheSync(short) || informer.HasSynced() {
		t.Fatal("synced before SYNCED")
	}
	if informer.GetStore().Len() != 0 || len(rec.snapshot()) != 0 {
		t.Fatalf("half a snapshot visible: %d objects, calls %v", informer.GetStore().Len(), rec.snapshot())
	}
	close(g.gate)
	long, cancelLong := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelLong()
	if !WaitForCacheSync(long, informer.HasSynced) {
		t.Fatal("not synced after SYNCED")
	}
	waitUntil(func() bool { return len(rec.snapshot()) == 2 }, 10*time.Second)
	expect(t, "keys", informer.GetStore().ListKeys(), []string{"default/a", "default/b"})
}

func TestBatchedMessagesAreAppliedEventByEventInOrder(t *testing.T) {
	r := run(t, []script{
		{[]*informerdv1.Event{
			batch(ev(ADDED, "5", "a"), ev(ADDED, "3", "b")),
			batch(ev(ADDED, "4", "c"), mark(SYNCED, "8"), ev(MODIFIED, "9", "a")),
			ev(DELETED, "10", "c"),
			batch(ev(ADDED, "11", "e"), ev(MODIFIED, "12", "e"), ev(DELETED, "13", "a")),
		}, fail(codes.Unavailable, "restarting")},
		{nil, hold},
	}, Options{MaxEventsPerMessage: 16})
	expect(t, "calls", r.waitCalls(8), []string{"add default/a 5", "add default/b 3", "add default/c 4",
		"update default/a 5 9", "delete default/c 10", "add default/e 11", "update default/e 11 12",
		"delete default/a 13"})
	waitUntil(func() bool { return r.fake.requestCount() == 2 }, 10*time.Second)
	// Resumed from the last event of the last batch.
	expect(t, "versions", r.fake.versions(), []string{"", "13"})
	expect(t, "batch size", []uint32{r.fake.requests[0].MaxEventsPerMessage, r.fake.requests[1].MaxEventsPerMessage}, []uint32{16, 16})
}

func TestResumeAfterUnavailableAndExhaustedFromTheLastResumableVersion(t *testing.T) {
	r := run(t, []script{
		// Breaks before SYNCED: a snapshot's events carry objects' own versions, no resume
		// point, and nothing of the half snapshot reaches the handlers.
		{[]*informerdv1.Event{ev(ADDED, "30", "a")}, fail(codes.Unavailable, "restarting")},
		{[]*informerdv1.Event{ev(ADDED, "30", "a"), ev(ADDED, "20", "b"), mark(SYNCED, "31")},
			fail(codes.Unavailable, "informerd is shutting down")},
		{[]*informerdv1.Event{ev(MODIFIED, "32", "a")}, fail(codes.ResourceExhausted, "subscriber fell too far behind")},
		{nil, fail(codes.Unavailable, "connection refused")},
		{[]*informerdv1.Event{ev(DELETED, "33", "b")}, end{}}, // a normal end resumes too
		{[]*informerdv1.Event{ev(ADDED, "34", "c")}, hold},
	}, Options{})
	expect(t, "calls", r.waitCalls(5), []string{"add default/a 30", "add default/b 20",
		"update default/a 30 32", "delete default/b 33", "add default/c 34"})
	expect(t, "versions", r.fake.versions(), []string{"", "", "31", "32", "32", "33"})
	// client-go's backoff (random fixed at 0: no jitter), doubling while failures come within
	// 2 minutes of each other.
	expect(t, "sleeps", r.recordedSleeps(), ms(800, 1600, 3200, 6400, 12800))
	expect(t, "errors", r.recordedErrors(), []string{"Unavailable retry", "Unavailable retry",
		"ResourceExhausted retry", "Unavailable retry"})
	expect(t, "keys", r.informer.GetStore().ListKeys(), []string{"default/a", "default/c"})
}

func TestOutOfRangeResnapshotsAndNotifiesExactlyTheDifferences(t *testing.T) {
	r := run(t, []script{
		{[]*informerdv1.Event{ev(ADDED, "5", "same"), ev(ADDED, "6", "changed"), ev(ADDED, "7", "gone"),
			ev(ADDED, "8", "recreated", podOpts{uid: "uid-old"}), mark(SYNCED, "10"),
			ev(MODIFIED, "11", "gone")}, fail(codes.Unavailable, "informerd restarting")},
		{nil, fail(codes.OutOfRange, "resource version 11 is older than the window")},
		// Meanwhile: "changed" changed, "gone" was deleted, "recreated" deleted and created
		// again (new UID), "new" created; "same" untouched.
		{[]*informerdv1.Event{batch(ev(ADDED, "5", "same"), ev(ADDED, "40", "changed"),
			ev(ADDED, "41", "recreated", podOpts{uid: "uid-new"}), ev(ADDED, "42", "new"),
			mark(SYNCED, "50")), ev(MODIFIED, "51", "new")}, hold},
	}, Options{})
	calls := r.waitCalls(11)
	expect(t, "calls", calls, []string{"add default/same 5", "add default/changed 6", "add default/gone 7",
		"add default/recreated 8", "update default/gone 7 11",
		// the re-snapshot's differences
		"update default/changed 6 40", "tombstone default/recreated 8", "add default/recreated 41",
		"add default/new 42", "tombstone default/gone 11",
		"update default/new 42 51"})
	expect(t, "versions", r.fake.versions(), []string{"", "11", ""})
	expect(t, "sleeps (a re-snapshot after OUT_OF_RANGE needs no backoff)", r.recordedSleeps(), ms(800))
	expect(t, "keys", r.informer.GetStore().ListKeys(), []string{"default/changed", "default/new", "default/recreated", "default/same"})
	if o, _ := r.informer.Lister().Get("default", "recreated"); o.UID() != "uid-new" {
		t.Fatalf("recreated's UID %q", o.UID())
	}
	errs := r.recordedErrors()
	expect(t, "last error", errs[len(errs)-1], "OutOfRange resnapshot")
}

func TestAResnapshotBrokenBeforeSyncedStartsOverAndChangesNothingMeanwhile(t *testing.T) {
	r := run(t, []script{
		{[]*informerdv1.Event{ev(ADDED, "5", "a"), ev(ADDED, "6", "b"), mark(SYNCED, "10")}, fail(codes.OutOfRange, "too old")},
		{[]*informerdv1.Event{ev(ADDED, "5", "a")}, fail(codes.Unavailable, "cut")},
		{[]*informerdv1.Event{ev(ADDED, "5", "a"), mark(SYNCED, "20")}, hold},
	}, Options{})
	expect(t, "calls", r.waitCalls(3), []string{"add default/a 5", "add default/b 6", "tombstone default/b 6"})
	expect(t, "versions", r.fake.versions(), []string{"", "", ""})
}

func TestRequestErrorsEndRunAndReachTheErrorHandlerWithoutRetries(t *testing.T) {
	for _, code := range []codes.Code{codes.NotFound, codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated} {
		t.Run(code.String(), func(t *testing.T) {
			r := run(t, []script{{nil, fail(code, "the message")}}, Options{})
			if !r.wait(10 * time.Second) {
				t.Fatal("Run did not return")
			}
			e, ok := r.err.(*StreamError)
			if !ok {
				t.Fatalf("Run returned %v (%T)", r.err, r.err)
			}
			expect(t, "error", []interface{}{e.Code, e.Message, e.Action}, []interface{}{code, "the message", ActionFatal})
			if status.Code(r.err) != code {
				t.Fatalf("status.Code: %v", status.Code(r.err))
			}
			expect(t, "error handler", r.recordedErrors(), []string{code.String() + " fatal"})
			expect(t, "requests", r.fake.requestCount(), 1)
			expect(t, "sleeps", len(r.recordedSleeps()), 0)
		})
	}
}

func TestAPermissionRevokedMidStreamIsReturnedAfterDeliveringWhatCame(t *testing.T) {
	r := run(t, []script{{[]*informerdv1.Event{ev(ADDED, "5", "a"), mark(SYNCED, "6"), ev(MODIFIED, "7", "a")},
		fail(codes.PermissionDenied, `user "alice" cannot list pods`)}}, Options{})
	if !r.wait(10 * time.Second) {
		t.Fatal("Run did not return")
	}
	expect(t, "calls", r.recorder.snapshot(), []string{"add default/a 5", "update default/a 5 7"})
	expect(t, "code", status.Code(r.err), codes.PermissionDenied)
}

func TestCancelEndsRunPromptlyWhileTheStreamIsIdle(t *testing.T) {
	r := run(t, []script{{[]*informerdv1.Event{ev(ADDED, "5", "a"), mark(SYNCED, "6")}, hold}}, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.informer.WaitForCacheSync(ctx)
	start := time.Now()
	r.cancel()
	if !r.wait(5 * time.Second) {
		t.Fatal("Run did not return after cancel")
	}
	if time.Since(start) > 2*time.Second || r.err != nil {
		t.Fatalf("took %v, returned %v", time.Since(start), r.err)
	}
}

func TestResyncRedeliversEveryObjectAsAnUpdateToItself(t *testing.T) {
	r := run(t, []script{{[]*informerdv1.Event{ev(ADDED, "5", "a"), ev(ADDED, "6", "b"), mark(SYNCED, "7")}, hold}},
		Options{ResyncPeriod: 300 * time.Millisecond})
	if !waitUntil(func() bool { return len(r.recorder.snapshot()) >= 6 }, 5*time.Second) {
		t.Fatalf("calls: %v", r.recorder.snapshot())
	}
	expect(t, "calls", r.recorder.snapshot()[:6], []string{"add default/a 5", "add default/b 6",
		"update default/a 5 5", "update default/b 6 6", "update default/a 5 5", "update default/b 6 6"})
	r.recorder.mu.Lock()
	defer r.recorder.mu.Unlock()
	for _, same := range r.recorder.same {
		if !same {
			t.Fatal("OnUpdate(obj, obj) got two different objects")
		}
	}
}

func TestNoResyncWithoutAPeriod(t *testing.T) {
	r := run(t, []script{{[]*informerdv1.Event{ev(ADDED, "5", "a"), mark(SYNCED, "7")}, hold}}, Options{})
	time.Sleep(500 * time.Millisecond)
	expect(t, "calls", r.recorder.snapshot(), []string{"add default/a 5"})
}

func TestAHandlerAddedAfterSyncFirstGetsTheCurrentObjects(t *testing.T) {
	r := run(t, []script{{[]*informerdv1.Event{ev(ADDED, "5", "a"), ev(ADDED, "6", "b"), mark(SYNCED, "7")}, hold}}, Options{})
	r.waitCalls(2)
	late := &recorder{}
	r.informer.AddEventHandler(ResourceEventHandlerFuncs{AddFunc: late.OnAdd, UpdateFunc: late.OnUpdate, DeleteFunc: late.OnDelete})
	waitUntil(func() bool { return len(late.snapshot()) == 2 }, 10*time.Second)
	time.Sleep(100 * time.Millisecond)
	expect(t, "late handler", late.snapshot(), []string{"add default/a 5", "add default/b 6"})
	expect(t, "the first handler got nothing again", len(r.recorder.snapshot()), 2)
}

func TestIndexersFollowTheObjects(t *testing.T) {
	r := run(t, []script{
		{[]*informerdv1.Event{ev(ADDED, "5", "a", podOpts{node: "n1"}), ev(ADDED, "6", "b", podOpts{node: "n2"}),
			mark(SYNCED, "7"), ev(ADDED, "8", "c", podOpts{node: "n1"})}, fail(codes.Unavailable, "x")},
		{[]*informerdv1.Event{ev(MODIFIED, "9", "a", podOpts{node: "n2"}), ev(DELETED, "10", "b", podOpts{node: "n2"})}, hold},
	}, Options{})
	if err := r.informer.AddIndexers(Indexers{"by_node": byNode}); err != nil {
		t.Fatal(err)
	}
	expect(t, "calls", len(r.waitCalls(5)), 5)
	for node, want := range map[string][]string{"n1": {"c"}, "n2": {"a"}, "n3": {}} {
		objects, err := r.informer.GetIndexer().ByIndex("by_node", node)
		if err != nil {
			t.Fatal(err)
		}
		expect(t, "by_node "+node, names(objects), want)
	}
}

func TestTheTokenIsSentOnEverySubscription(t *testing.T) {
	r := run(t, []script{
		{[]*informerdv1.Event{ev(ADDED, "5", "a"), mark(SYNCED, "6")}, fail(codes.Unavailable, "x")},
		{nil, hold},
	}, Options{CallOptions: []grpc.CallOption{grpc.PerRPCCredentials(TokenCredentials{Token: "secret", AllowInsecure: true})}})
	waitUntil(func() bool { return r.fake.requestCount() == 2 }, 10*time.Second)
	r.fake.mu.Lock()
	defer r.fake.mu.Unlock()
	expect(t, "tokens", r.fake.tokens, [][]string{{"Bearer secret"}, {"Bearer secret"}})
}

func TestAnObjectThatIsNotJSONEndsRun(t *testing.T) {
	r := run(t, []script{{[]*informerdv1.Event{{Type: ADDED, ResourceVersion: "5", Object: "{not json"}}, hold}}, Options{})
	if !r.wait(10 * time.Second) {
		t.Fatal("Run did not return")
	}
	expect(t, "code", status.Code(r.err), codes.DataLoss)
}

func TestBackoffClientGoValuesDoublingFrom800msTo30sWithJitterAndReset(t *testing.T) {
	now := time.Unix(0, 0)
	random := 0.0
	b := NewBackoff()
	b.Now = func() time.Time { return now }
	b.Rand = func() float64 { return random }
	step := func(after time.Duration) time.Duration {
		now = now.Add(after)
		return b.Next()
	}
	var got []time.Duration
	for i := 0; i < 8; i++ {
		got = append(got, step(time.Second))
	}
	expect(t, "steps", got, ms(800, 1600, 3200, 6400, 12800, 25600, 30000, 30000))
	random = 0.5 // jitter adds up to 100% of the step: here half
	expect(t, "with jitter", step(time.Second), 45*time.Second)
	now = now.Add(120 * time.Second) // exactly 2 minutes: not yet healthy long enough
	expect(t, "after exactly 2 minutes", step(0), 45*time.Second)
	expect(t, "reset after more than 2 minutes without a failure", step(120*time.Second+time.Millisecond), 1200*time.Millisecond)
	random = 0.999
	expect(t, "jitter below 100%", step(time.Second), time.Duration(1.999*float64(1600*time.Millisecond)))
}

func TestClassifyStreamEnd(t *testing.T) {
	cases := map[codes.Code]streamAction{
		codes.OK: ActionRetry, codes.Unavailable: ActionRetry, codes.ResourceExhausted: ActionRetry,
		codes.Internal: ActionRetry, codes.Unknown: ActionRetry, codes.DeadlineExceeded: ActionRetry,
		codes.OutOfRange: ActionResnapshot, codes.InvalidArgument: ActionFatal, codes.NotFound: ActionFatal,
		codes.PermissionDenied: ActionFatal, codes.Unauthenticated: ActionFatal, codes.Unimplemented: ActionFatal,
	}
	for code, want := range cases {
		expect(t, code.String(), classifyStreamEnd(code, "x"), want)
	}
	expect(t, "gRPC's own message limit", classifyStreamEnd(codes.ResourceExhausted,
		"grpc: received message larger than max (5000000 vs. 4194304)"), ActionFatal)
}

var _ = json.Marshal

// gRPC turns a per-RPC credentials error into INTERNAL (call option) or UNAUTHENTICATED (dial
// option, unless it is a status): TokenCredentials says UNAVAILABLE, so either way it is retried.
func TestAnUnreadableTokenFileIsRetriedNotFatalAndReadAgainForEachCall(t *testing.T) {
	for _, asDialOption := range []bool{false, true} {
		t.Run(fmt.Sprintf("dial option %v", asDialOption), func(t *testing.T) {
			tokenFile := t.TempDir() + "/token"
			creds := TokenCredentials{TokenFile: tokenFile, AllowInsecure: true}
			var opts Options
			var dial []grpc.DialOption
			if asDialOption {
				dial = append(dial, grpc.WithPerRPCCredentials(creds))
			} else {
				opts.CallOptions = []grpc.CallOption{grpc.PerRPCCredentials(creds)}
			}
			release := make(chan struct{})
			r := run(t, []script{
				{[]*informerdv1.Event{ev(ADDED, "5", "a"), mark(SYNCED, "6")}, end{release: release}},
				{nil, hold},
			}, opts, dial...)
			if !waitUntil(func() bool { return len(r.recordedErrors()) >= 2 }, 10*time.Second) {
				t.Fatalf("no retries while the token file is missing: %v", r.recordedErrors())
			}
			expect(t, "calls that reached the server without a token", r.fake.requestCount(), 0)
			if err := os.WriteFile(tokenFile, []byte("first\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if !r.informer.WaitForCacheSync(ctx) {
				t.Fatalf("did not sync once the token was there: %v", r.recordedErrors())
			}
			os.WriteFile(tokenFile+".new", []byte("second\n"), 0o600) // replaced atomically, as the kubelet does
			os.Rename(tokenFile+".new", tokenFile)
			close(release) // the stream ends: the next Subscribe reads the file again
			waitUntil(func() bool { return r.fake.requestCount() == 2 }, 10*time.Second)
			for _, e := range r.recordedErrors() {
				if !strings.HasSuffix(e, " retry") {
					t.Fatalf("not retried: %v", e)
				}
			}
			r.fake.mu.Lock()
			defer r.fake.mu.Unlock()
			expect(t, "tokens", r.fake.tokens, [][]string{{"Bearer first"}, {"Bearer second"}})
		})
	}
}
