// Package clientgo adapts informerd to client-go: ListWatch implements client-go's
// cache.ListerWatcher over informerd's List and Subscribe, so that an existing client-go
// controller switches with a one-line change:
//
//	informer := cache.NewSharedIndexInformer(clientgo.ListWatch(conn, "pods", namespace),
//		&v1.Pod{}, resyncPeriod, cache.Indexers{})
//
// Objects are decoded with client-go's scheme (typed, e.g. *v1.Pod); kinds the scheme does not
// know (custom resources) come as *unstructured.Unstructured. Mapping:
//   - List: informerd List (limit and continue passed through; a ResourceVersion other than ""
//     and "0" is min_resource_version, as the apiserver's NotOlderThan); the list's
//     resourceVersion is informerd's.
//   - Watch: Subscribe from options.ResourceVersion, batched; ADDED, MODIFIED, DELETED as
//     watch events. OUT_OF_RANGE is a watch.Error with a 410 Expired Status, on which
//     client-go's Reflector lists again (the apiserver's "too old resource version"); another
//     error code is a watch.Error with the matching HTTP status; UNAVAILABLE and
//     RESOURCE_EXHAUSTED end the watch (the Reflector watches again from its last version).
//     options.TimeoutSeconds bounds the stream as it bounds an apiserver watch.
//
// It builds against client-go 1.20 (the one vendored in the kubernetes source tree; see
// build_clientgo.sh), not in the module's normal GOPATH build.
package clientgo

import (
	"context"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	informerdv1 "informerd.io/client/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
)

// Options narrow what ListWatch lists and watches (informerd filters on the server).
type Options struct {
	LabelSelector, FieldSelector string
	// MaxEventsPerMessage: Subscribe batching; 0 means 64.
	MaxEventsPerMessage uint32
	// CallOptions go with every call (for example per-RPC credentials).
	CallOptions []grpc.CallOption
}

// ListWatch is a cache.ListerWatcher for resource (as kubectl names it) in namespace ("" for
// all) over informerd.
func ListWatch(conn grpc.ClientConnInterface, resource, namespace string, opts ...Options) *cache.ListWatch {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.MaxEventsPerMessage == 0 {
		o.MaxEventsPerMessage = 64
	}
	lw := &listWatch{client: informerdv1.NewInformerClient(conn), resource: resource, namespace: namespace, opts: o}
	return &cache.ListWatch{ListFunc: lw.list, WatchFunc: lw.watch}
}

type listWatch struct {
	client    informerdv1.InformerClient
	resource  string
	namespace string
	opts      Options
}

func orDefault(value, fallback string) string {
	if value != "" {
		return value
	}
	return fallback
}

// decode turns informerd's JSON into a typed object, or an Unstructured one.
func decode(text string) (runtime.Object, error) {
	obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(text), nil, nil)
	if err == nil {
		return obj, nil
	}
	u := &unstructured.Unstructured{}
	if uerr := u.UnmarshalJSON([]byte(text)); uerr != nil {
		return nil, err
	}
	return u, nil
}

func (lw *listWatch) list(options metav1.ListOptions) (runtime.Object, error) {
	minRV := options.ResourceVersion
	if minRV == "0" || options.Continue != "" {
		minRV = ""
	}
	resp, err := lw.client.List(context.Background(), &informerdv1.ListRequest{
		Resource: lw.resource, Namespace: lw.namespace,
		LabelSelector:      orDefault(options.LabelSelector, lw.opts.LabelSelector),
		FieldSelector:      orDefault(options.FieldSelector, lw.opts.FieldSelector),
		MinResourceVersion: minRV, Limit: options.Limit, Continue: options.Continue,
	}, lw.opts.CallOptions...)
	if err != nil {
		return nil, statusError(err)
	}
	list := &metav1.List{ListMeta: metav1.ListMeta{ResourceVersion: resp.ResourceVersion, Continue: resp.Continue}}
	for _, item := range resp.Items {
		obj, err := decode(item)
		if err != nil {
			return nil, err
		}
		list.Items = append(list.Items, runtime.RawExtension{Object: obj})
	}
	return list, nil
}

// statusError maps a gRPC error to the apiserver's error for the same condition, which
// client-go's Reflector knows how to handle.
func statusError(err error) error {
	s := status.Convert(err)
	code, reason := http.StatusInternalServerError, metav1.StatusReasonInternalError
	switch s.Code() {
	case codes.OutOfRange:
		code, reason = http.StatusGone, metav1.StatusReasonExpired
	case codes.NotFound:
		code, reason = http.StatusNotFound, metav1.StatusReasonNotFound
	case codes.PermissionDenied:
		code, reason = http.StatusForbidden, metav1.StatusReasonForbidden
	case codes.Unauthenticated:
		code, reason = http.StatusUnauthorized, metav1.StatusReasonUnauthorized
	case codes.InvalidArgument:
		code, reason = http.StatusBadRequest, metav1.StatusReasonBadRequest
	case codes.Unavailable, codes.ResourceExhausted:
		code, reason = http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable
	}
	return &apiStatusError{metav1.Status{Status: metav1.StatusFailure, Code: int32(code), Reason: reason,
		Message: s.Code().String() + ": " + s.Message()}}
}

// apiStatusError is apimachinery's StatusError shape (APIStatus), without importing
// k8s.io/apimachinery/pkg/api/errors' dependencies here.
type apiStatusError struct{ status metav1.Status }

func (e *apiStatusError) Error() string         { return e.status.Message }
func (e *apiStatusError) Status() metav1.Status { return e.status }

type watcher struct {
	cancel context.CancelFunc
	result chan watch.Event
}

func (w *watcher) Stop()                          { w.cancel() }
func (w *watcher) ResultChan() <-chan watch.Event { return w.result }

func (lw *listWatch) watch(options metav1.ListOptions) (watch.Interface, error) {
	ctx, cancel := context.WithCancel(context.Background())
	if options.TimeoutSeconds != nil {
		ctx, cancel = context.WithTimeout(context.Background(), time.Duration(*options.TimeoutSeconds)*time.Second)
	}
	version := options.ResourceVersion
	if version == "0" {
		version = "" // "any": a snapshot; its events arrive as ADDED, which the Reflector applies
	}
	stream, err := lw.client.Subscribe(ctx, &informerdv1.SubscribeRequest{
		Resource: lw.resource, Namespace: lw.namespace,
		LabelSelector:       orDefault(options.LabelSelector, lw.opts.LabelSelector),
		FieldSelector:       orDefault(options.FieldSelector, lw.opts.FieldSelector),
		ResourceVersion:     version,
		MaxEventsPerMessage: lw.opts.MaxEventsPerMessage,
	}, lw.opts.CallOptions...)
	if err != nil {
		cancel()
		return nil, statusError(err)
	}
	w := &watcher{cancel: cancel, result: make(chan watch.Event)}
	go func() {
		defer close(w.result)
		defer cancel()
		send := func(e watch.Event) bool {
			select {
			case w.result <- e:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			message, err := stream.Recv()
			if err != nil {
				if ctx.Err() != nil {
					return // stopped, or the watch's timeout
				}
				switch status.Code(err) {
				case codes.Unavailable, codes.ResourceExhausted, codes.OK:
					return // the Reflector watches again from its last version
				}
				if se, ok := statusError(err).(*apiStatusError); ok {
					s := se.status
					send(watch.Event{Type: watch.Error, Object: &s})
				}
				return
			}
			events := message.Batch
			if len(events) == 0 {
				events = []*informerdv1.Event{message}
			}
			for _, e := range events {
				var t watch.EventType
				switch e.Type {
				case informerdv1.Event_ADDED:
					t = watch.Added
				case informerdv1.Event_MODIFIED:
					t = watch.Modified
				case informerdv1.Event_DELETED:
					t = watch.Deleted
				default:
					continue // SYNCED (a snapshot's end) and BOOKMARK carry no object
				}
				obj, err := decode(e.Object)
				if err != nil {
					send(watch.Event{Type: watch.Error, Object: &metav1.Status{Status: metav1.StatusFailure,
						Code: http.StatusInternalServerError, Message: "decoding an object: " + err.Error()}})
					return
				}
				if !send(watch.Event{Type: t, Object: obj}) {
					return
				}
			}
		}
	}()
	return w, nil
}
