// informerd-peer: the alternative informerd is measured against. It does what every consumer that
// does not use informerd does: runs its own client-go SharedIndexInformer (client-go 1.20, the
// version vendored in Debian's kubernetes source package) against the apiserver, and prints what
// that costs: sync time, objects cached, CPU, resident memory and Go heap, and optionally the
// latency of later events.
//
// Built by bench/peer/build_peer.sh (GOPATH mode inside the kubernetes source tree, so that its
// vendor/ directory supplies client-go). Flags: see usage() below. Output on stdout is one JSON
// object per line and nothing else (client-go's own logs go to stderr):
//
//	{"phase":"synced","mode":"typed","informers":N,"objects":..,"sync_seconds":..,
//	 "cpu_seconds":..,"rss_bytes":..,"go_heap_inuse_bytes":..}
//	{"phase":"end","events":..,"latency_samples":..,"latency_p50_ms":..,"latency_p99_ms":..,
//	 "latency_max_ms":..,"cpu_seconds":..,"rss_bytes":..,"go_heap_inuse_bytes":..}
//
// The second line only with --run-seconds > 0. On an error: a message on stderr, exit status 1
// (2 for bad flags).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

type options struct {
	kubeconfig         string
	resource           string
	mode               string
	namespace          string
	informers          int
	stripManagedFields bool
	latencyAnnotation  string
	runSeconds         float64
	syncTimeout        float64
}

func usage() {
	fmt.Fprintf(os.Stderr, `usage: informerd-peer --kubeconfig PATH [flags]

Runs N client-go 1.20 SharedIndexInformers (resync 0) on one resource, each with its own clientset,
HTTP transport and therefore its own apiserver watch; prints JSON figure lines on stdout.

  --kubeconfig PATH          kubeconfig of the apiserver (required)
  --mode typed|dynamic       typed: the typed informer factory (default); dynamic: dynamicinformer
                             (unstructured objects)
  --resource R               typed: pods or configmaps; dynamic: a GVR, "v1/pods" or
                             "apps/v1/deployments" (default pods, or v1/pods in dynamic mode)
  --namespace NS             one namespace; default "" = all namespaces
  --informers N              informers in this process (default 1)
  --strip-managed-fields     drop metadata.managedFields before objects reach the store (wraps the
                             ListerWatcher: client-go 1.20 has no SetTransform)
  --latency-annotation KEY   for add/update events after the sync whose object has annotation KEY
                             holding a decimal Unix time in nanoseconds, record now minus that
  --run-seconds S            after all informers have synced, keep running S seconds, then print
                             the "end" line (default 0: exit after the "synced" line)
  --sync-timeout-seconds S   give up (exit 1) if not all informers have synced by then (default 600)
`)
}

func parseFlags() options {
	var o options
	fs := flag.NewFlagSet("informerd-peer", flag.ContinueOnError)
	fs.Usage = usage
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "")
	fs.StringVar(&o.resource, "resource", "", "")
	fs.StringVar(&o.mode, "mode", "typed", "")
	fs.StringVar(&o.namespace, "namespace", "", "")
	fs.IntVar(&o.informers, "informers", 1, "")
	fs.BoolVar(&o.stripManagedFields, "strip-managed-fields", false, "")
	fs.StringVar(&o.latencyAnnotation, "latency-annotation", "", "")
	fs.Float64Var(&o.runSeconds, "run-seconds", 0, "")
	fs.Float64Var(&o.syncTimeout, "sync-timeout-seconds", 600, "")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	bad := func(format string, args ...interface{}) {
		fmt.Fprintf(os.Stderr, "informerd-peer: "+format+"\n", args...)
		os.Exit(2)
	}
	if fs.NArg() != 0 {
		bad("unexpected argument %q", fs.Arg(0))
	}
	if o.kubeconfig == "" {
		bad("--kubeconfig is required")
	}
	if o.mode != "typed" && o.mode != "dynamic" {
		bad("--mode must be typed or dynamic, not %q", o.mode)
	}
	if o.resource == "" {
		o.resource = map[string]string{"typed": "pods", "dynamic": "v1/pods"}[o.mode]
	}
	if o.informers < 1 {
		bad("--informers must be at least 1")
	}
	if o.runSeconds < 0 || o.syncTimeout <= 0 {
		bad("--run-seconds must be >= 0 and --sync-timeout-seconds > 0")
	}
	return o
}

// parseGVR reads "v1/pods" (core group) or "apps/v1/deployments".
func parseGVR(s string) (schema.GroupVersionResource, error) {
	parts := strings.Split(s, "/")
	for _, p := range parts {
		if p == "" {
			return schema.GroupVersionResource{}, fmt.Errorf("bad resource %q", s)
		}
	}
	switch len(parts) {
	case 2:
		return schema.GroupVersionResource{Version: parts[0], Resource: parts[1]}, nil
	case 3:
		return schema.GroupVersionResource{Group: parts[0], Version: parts[1], Resource: parts[2]}, nil
	}
	return schema.GroupVersionResource{}, fmt.Errorf(
		"--resource in dynamic mode is VERSION/RESOURCE or GROUP/VERSION/RESOURCE, not %q", s)
}

// stripManagedFields wraps lw so that every listed and watched object loses
// metadata.managedFields before the informer (and so its store) sees it.
func stripManagedFields(lw cache.ListerWatcher) cache.ListerWatcher {
	strip := func(obj runtime.Object) {
		if m, err := meta.Accessor(obj); err == nil {
			m.SetManagedFields(nil)
		}
	}
	return &cache.ListWatch{
		ListFunc: func(o metav1.ListOptions) (runtime.Object, error) {
			list, err := lw.List(o)
			if err != nil {
				return nil, err
			}
			if err := meta.EachListItem(list, func(item runtime.Object) error {
				strip(item)
				return nil
			}); err != nil {
				return nil, err
			}
			return list, nil
		},
		WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) {
			w, err := lw.Watch(o)
			if err != nil {
				return nil, err
			}
			return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
				if e.Object != nil && e.Type != watch.Error && e.Type != watch.Bookmark {
					strip(e.Object)
				}
				return e, true
			}), nil
		},
	}
}

// ownTransport returns a copy of base that gets an HTTP transport of its own: client-go shares
// one transport (one HTTP/2 connection) among clients of equal TLS configuration unless a
// custom dialer makes the configuration uncacheable. Each informer then stands for one
// separate consumer process.
func ownTransport(base *rest.Config) *rest.Config {
	c := rest.CopyConfig(base)
	c.Dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return c
}

// newInformer makes one informer with its own clients. Never started here.
func newInformer(o options, base *rest.Config) (cache.SharedIndexInformer, error) {
	config := ownTransport(base)
	nsIndex := cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}
	if o.mode == "typed" {
		client, err := kubernetes.NewForConfig(config)
		if err != nil {
			return nil, err
		}
		factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(o.namespace))
		var example runtime.Object
		var lw *cache.ListWatch
		switch o.resource {
		case "pods":
			if !o.stripManagedFields {
				return factory.Core().V1().Pods().Informer(), nil
			}
			example = &corev1.Pod{}
			lw = &cache.ListWatch{
				ListFunc: func(opts metav1.ListOptions) (runtime.Object, error) {
					return client.CoreV1().Pods(o.namespace).List(context.TODO(), opts)
				},
				WatchFunc: func(opts metav1.ListOptions) (watch.Interface, error) {
					return client.CoreV1().Pods(o.namespace).Watch(context.TODO(), opts)
				},
			}
		case "configmaps":
			if !o.stripManagedFields {
				return factory.Core().V1().ConfigMaps().Informer(), nil
			}
			example = &corev1.ConfigMap{}
			lw = &cache.ListWatch{
				ListFunc: func(opts metav1.ListOptions) (runtime.Object, error) {
					return client.CoreV1().ConfigMaps(o.namespace).List(context.TODO(), opts)
				},
				WatchFunc: func(opts metav1.ListOptions) (watch.Interface, error) {
					return client.CoreV1().ConfigMaps(o.namespace).Watch(context.TODO(), opts)
				},
			}
		default:
			return nil, fmt.Errorf("--resource in typed mode is pods or configmaps, not %q", o.resource)
		}
		// The factory's hook for informers it does not generate: the same informer the factory
		// would make (resync 0, namespace index), fed through the stripping ListerWatcher.
		return factory.InformerFor(example, func(kubernetes.Interface, time.Duration) cache.SharedIndexInformer {
			return cache.NewSharedIndexInformer(stripManagedFields(lw), example, 0, nsIndex)
		}), nil
	}
	gvr, err := parseGVR(o.resource)
	if err != nil {
		return nil, err
	}
	client, err := dynamic.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	if !o.stripManagedFields {
		factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(client, 0, o.namespace, nil)
		return factory.ForResource(gvr).Informer(), nil
	}
	// What dynamicinformer.NewFilteredDynamicInformer makes, with the stripping ListerWatcher.
	lw := &cache.ListWatch{
		ListFunc: func(opts metav1.ListOptions) (runtime.Object, error) {
			return client.Resource(gvr).Namespace(o.namespace).List(context.TODO(), opts)
		},
		WatchFunc: func(opts metav1.ListOptions) (watch.Interface, error) {
			return client.Resource(gvr).Namespace(o.namespace).Watch(context.TODO(), opts)
		},
	}
	return cache.NewSharedIndexInformer(stripManagedFields(lw), &unstructured.Unstructured{}, 0, nsIndex), nil
}

// recorder counts the events that happen after an informer's initial sync and their latencies.
// An event is "after the sync" when its object's resourceVersion is newer than the one the
// informer had synced at (the initial list's objects are all at or below it), so the initial
// list's add notifications, which handlers may still receive after HasSynced, are not counted.
type recorder struct {
	annotation string
	events     int64 // atomic
	mu         sync.Mutex
	latencies  []float64 // milliseconds
}

type counted struct {
	rec    *recorder
	syncRV uint64 // atomic; math.MaxUint64 until the informer has synced
}

func resourceVersion(obj interface{}) (uint64, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return 0, false
	}
	rv, err := strconv.ParseUint(m.GetResourceVersion(), 10, 64)
	return rv, err == nil
}

func (c *counted) afterSync(obj interface{}) bool {
	rv, ok := resourceVersion(obj)
	return ok && rv > atomic.LoadUint64(&c.syncRV)
}

func (c *counted) addOrUpdate(obj interface{}) {
	now := time.Now().UnixNano()
	if !c.afterSync(obj) {
		return
	}
	atomic.AddInt64(&c.rec.events, 1)
	if c.rec.annotation == "" {
		return
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	sent, err := strconv.ParseInt(m.GetAnnotations()[c.rec.annotation], 10, 64)
	if err != nil {
		return
	}
	c.rec.mu.Lock()
	c.rec.latencies = append(c.rec.latencies, float64(now-sent)/1e6)
	c.rec.mu.Unlock()
}

func (c *counted) handler() cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: c.addOrUpdate,
		UpdateFunc: func(oldObj, newObj interface{}) {
			oldRV, _ := resourceVersion(oldObj)
			newRV, _ := resourceVersion(newObj)
			if oldRV != newRV { // equal: a relist's no-op update, not an event
				c.addOrUpdate(newObj)
			}
		},
		DeleteFunc: func(obj interface{}) {
			if _, ok := resourceVersion(obj); !ok || c.afterSync(obj) {
				atomic.AddInt64(&c.rec.events, 1)
			}
		},
	}
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// rssBytes is VmRSS from /proc/self/status.
func rssBytes() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 2 && fields[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// heapInuse is the Go heap in use after a full collection (what the cache really holds).
func heapInuse() uint64 {
	goruntime.GC()
	var m goruntime.MemStats
	goruntime.ReadMemStats(&m)
	return m.HeapInuse
}

// percentile by nearest rank over sorted values; 0 when there are none.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	return sorted[i]
}

func emit(v interface{}) {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "informerd-peer: %v\n", err)
		os.Exit(1)
	}
	os.Stdout.Write(append(b, '\n'))
}

type syncedLine struct {
	Phase            string  `json:"phase"`
	Mode             string  `json:"mode"`
	Informers        int     `json:"informers"`
	Objects          int     `json:"objects"`
	SyncSeconds      float64 `json:"sync_seconds"`
	CPUSeconds       float64 `json:"cpu_seconds"`
	RSSBytes         int64   `json:"rss_bytes"`
	GoHeapInuseBytes uint64  `json:"go_heap_inuse_bytes"`
}

type endLine struct {
	Phase            string  `json:"phase"`
	Events           int64   `json:"events"`
	LatencySamples   int     `json:"latency_samples"`
	LatencyP50Ms     float64 `json:"latency_p50_ms"`
	LatencyP99Ms     float64 `json:"latency_p99_ms"`
	LatencyMaxMs     float64 `json:"latency_max_ms"`
	CPUSeconds       float64 `json:"cpu_seconds"`
	RSSBytes         int64   `json:"rss_bytes"`
	GoHeapInuseBytes uint64  `json:"go_heap_inuse_bytes"`
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "informerd-peer: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	o := parseFlags()
	base, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		fail("loading --kubeconfig %s: %v", o.kubeconfig, err)
	}
	rec := &recorder{annotation: o.latencyAnnotation}
	infs := make([]cache.SharedIndexInformer, o.informers)
	counts := make([]*counted, o.informers)
	for i := range infs {
		if infs[i], err = newInformer(o, base); err != nil {
			fail("%v", err)
		}
		counts[i] = &counted{rec: rec, syncRV: math.MaxUint64}
		infs[i].AddEventHandler(counts[i].handler())
	}

	stop := make(chan struct{})
	start := time.Now()
	for _, inf := range infs {
		go inf.Run(stop)
	}
	// Polled every millisecond: cache.WaitForCacheSync polls every 100 ms, too coarse for a sync
	// of a few hundred milliseconds.
	deadline := start.Add(time.Duration(o.syncTimeout * float64(time.Second)))
	var pending []int
	for i := range infs {
		pending = append(pending, i)
	}
	for len(pending) > 0 {
		rest := pending[:0]
		for _, i := range pending {
			if infs[i].HasSynced() {
				rv, err := strconv.ParseUint(infs[i].LastSyncResourceVersion(), 10, 64)
				if err != nil {
					rv = 0
				}
				atomic.StoreUint64(&counts[i].syncRV, rv)
			} else {
				rest = append(rest, i)
			}
		}
		pending = rest
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			fail("%d of %d informers not synced after %.0f s (see the log above for list errors)",
				len(pending), len(infs), o.syncTimeout)
		}
		time.Sleep(time.Millisecond)
	}
	syncSeconds := time.Since(start).Seconds()
	cpu := cpuSeconds()
	rss := rssBytes()
	objects := 0
	for _, inf := range infs {
		objects += len(inf.GetStore().ListKeys())
	}
	emit(syncedLine{"synced", o.mode, o.informers, objects, syncSeconds, cpu, rss, heapInuse()})

	if o.runSeconds > 0 {
		time.Sleep(time.Duration(o.runSeconds * float64(time.Second)))
		rec.mu.Lock()
		lat := append([]float64(nil), rec.latencies...)
		rec.mu.Unlock()
		sort.Float64s(lat)
		max := 0.0
		if len(lat) > 0 {
			max = lat[len(lat)-1]
		}
		cpu, rss := cpuSeconds(), rssBytes()
		emit(endLine{"end", atomic.LoadInt64(&rec.events), len(lat), percentile(lat, 0.50),
			percentile(lat, 0.99), max, cpu, rss, heapInuse()})
	}
	close(stop)
}
