package clientgo

// client-go's own SharedIndexInformer (client-go 1.20), typed (*v1.Pod), over ListWatch against
// an in-process fake informerd: the first List and Subscribe, live events, a watch ended with
// OUT_OF_RANGE (client-go lists again, from its last version, and carries on), and the store.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	informerdv1 "informerd.io/client/api/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"
)

func podJSON(name, rv string) string {
	data, _ := json.Marshal(map[string]interface{}{"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]interface{}{"name": name, "namespace": "default", "resourceVersion": rv, "uid": "uid-" + name}})
	return string(data)
}

func ev(t informerdv1.Event_Type, rv, name string) *informerdv1.Event {
	return &informerdv1.Event{Type: t, ResourceVersion: rv, Object: podJSON(name, rv), Namespace: "default", Name: name}
}

type fake struct {
	informerdv1.UnimplementedInformerServer
	mu        sync.Mutex
	lists     []*informerdv1.ListResponse
	listReqs  []*informerdv1.ListRequest
	streams   [][]*informerdv1.Event
	ends      []error
	watchReqs []*informerdv1.SubscribeRequest
}

func (f *fake) List(ctx context.Context, req *informerdv1.ListRequest) (*informerdv1.ListResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listReqs = append(f.listReqs, req)
	if len(f.lists) == 0 {
		return nil, status.Error(codes.Unavailable, "no more lists")
	}
	resp := f.lists[0]
	f.lists = f.lists[1:]
	return resp, nil
}

func (f *fake) Subscribe(req *informerdv1.SubscribeRequest, stream informerdv1.Informer_SubscribeServer) error {
	f.mu.Lock()
	f.watchReqs = append(f.watchReqs, req)
	if len(f.streams) == 0 {
		f.mu.Unlock()
		<-stream.Context().Done()
		return nil
	}
	events, end := f.streams[0], f.ends[0]
	f.streams, f.ends = f.streams[1:], f.ends[1:]
	f.mu.Unlock()
	stream.Send(&informerdv1.Event{Batch: events})
	return end
}

type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) add(s string) { r.mu.Lock(); r.calls = append(r.calls, s); r.mu.Unlock() }
func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func TestSharedIndexInformerOverListWatch(t *testing.T) {
	f := &fake{
		lists: []*informerdv1.ListResponse{
			{Items: []string{podJSON("a", "5"), podJSON("b", "6")}, ResourceVersion: "10"},
			{Items: []string{podJSON("a", "11"), podJSON("c", "13"), podJSON("d", "20")}, ResourceVersion: "20"},
		},
		streams: [][]*informerdv1.Event{{ev(informerdv1.Event_MODIFIED, "11", "a"), ev(informerdv1.Event_DELETED, "12", "b"), ev(informerdv1.Event_ADDED, "13", "c")}},
		ends:    []error{status.Error(codes.OutOfRange, "too old resource version: 13")},
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer()
	informerdv1.RegisterInformerServer(server, f)
	go server.Serve(listener)
	defer server.Stop()
	conn, err := grpc.Dial(listener.Addr().String(), grpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	informer := cache.NewSharedIndexInformer(ListWatch(conn, "pods", "default", Options{LabelSelector: "app=web"}),
		&v1.Pod{}, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	rec := &recorder{}
	describe := func(obj interface{}) string {
		if pod, ok := obj.(*v1.Pod); ok {
			return pod.Name + "@" + pod.ResourceVersion
		}
		return fmt.Sprintf("%T", obj)
	}
	informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj interface{}) { rec.add("add " + describe(obj)) },
		UpdateFunc: func(old, new interface{}) { rec.add("update " + describe(old) + " " + describe(new)) },
		DeleteFunc: func(obj interface{}) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				rec.add("tombstone " + d.Key)
				return
			}
			rec.add("delete " + describe(obj))
		},
	})
	stop := make(chan struct{})
	defer close(stop)
	go informer.Run(stop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		t.Fatal("not synced")
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && len(rec.get()) < 6 {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	calls := rec.get()
	want := []string{"add a@5", "add b@6", "update a@5 a@11", "delete b@12", "add c@13"}
	if len(calls) < 6 || !reflect.DeepEqual(calls[:5], want) {
		t.Fatalf("calls %q, want %q then the relist's", calls, want)
	}
	// client-go's Replace after the relist: d is new; a and c are re-delivered as updates.
	relist := append([]string(nil), calls[5:]...)
	sort.Strings(relist)
	if !reflect.DeepEqual(relist, []string{"add d@20", "update a@11 a@11", "update c@13 c@13"}) {
		t.Fatalf("after the relist: %q", relist)
	}
	keys := informer.GetStore().ListKeys()
	sort.Strings(keys)
	if !reflect.DeepEqual(keys, []string{"default/a", "default/c", "default/d"}) {
		t.Fatalf("store keys %q", keys)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listReqs[0].LabelSelector != "app=web" || f.watchReqs[0].LabelSelector != "app=web" || f.listReqs[0].Resource != "pods" {
		t.Fatalf("selectors not sent: %v %v", f.listReqs[0], f.watchReqs[0])
	}
	var watchRVs []string
	for _, r := range f.watchReqs {
		watchRVs = append(watchRVs, r.ResourceVersion)
	}
	// Watched from the first list's version, then (after OUT_OF_RANGE and the relist) the second's.
	if len(watchRVs) < 2 || watchRVs[0] != "10" || watchRVs[1] != "20" {
		t.Fatalf("watch versions %q", watchRVs)
	}
	// The relist asks for a state at least as new as the last version seen.
	if f.listReqs[1].MinResourceVersion != "13" {
		t.Fatalf("relist min_resource_version %q", f.listReqs[1].MinResourceVersion)
	}
}
