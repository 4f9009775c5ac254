package clustertest

// The Go client (informerd.io/client/cache) against a real etcd + kube-apiserver
// (test/cluster/cluster.sh) and the real informerd binary, as test/clients/cluster_test.py
// does for the Python client:
//
//  1. Convergence: pods are created, updated, relabelled and deleted with kubectl while two
//     Informers run (all pods of a namespace; and only app=web, so relabelling moves pods in and
//     out). Each handler's calls are exactly the change history that kubectl's own watch of the
//     apiserver reports (each add, update and delete once, in order, resource versions
//     included), and each store equals `kubectl get pods -o json` (keys, versions, UIDs).
//  2. informerd restarted mid-run: while it is down a pod is deleted, one changed, one created,
//     one created and deleted again, one left alone. The Informers come back through
//     OUT_OF_RANGE and a fresh snapshot and notify only the real differences: the deletion as a
//     DeletedFinalStateUnknown, the change as one update, the creation as one add, nothing for
//     the rest; live events follow.
//  3. A client that falls behind (its stream reader stalls while 30 changes of 200 KiB pile up)
//     is ended with RESOURCE_EXHAUSTED and resumes with every change delivered once, in order.
//  4. Credentials: with informerd authorizing every call against the apiserver, alice's token
//     (read from a file) syncs; bob's is PERMISSION_DENIED and a bad or missing token
//     UNAUTHENTICATED, returned from Run at once, not retried.
//
// Without a kube-apiserver ($INFORMERD_KUBE_APISERVER, else build_kube_apiserver.sh --check's
// cached build) the test is skipped saying how to build one. Paths come from the environment
// (absolute; test/clients/go_cluster_test.sh sets them): INFORMERD_BIN, CLUSTER_SH, KUBECTL.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	informerdv1 "informerd.io/client/api/v1"
	"informerd.io/client/cache"
)

var (
	informerdBin = os.Getenv("INFORMERD_BIN")
	clusterSh    = os.Getenv("CLUSTER_SH")
	kubectlBin   = envOr("KUBECTL", "/usr/bin/kubectl")
)

func envOr(key, value string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return value
}

func kubeApiserver() string {
	if v := os.Getenv("INFORMERD_KUBE_APISERVER"); v != "" {
		return v
	}
	out, err := exec.Command(filepath.Join(filepath.Dir(clusterSh), "build_kube_apiserver.sh"), "--check").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func waitUntil(condition func() bool, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if condition() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return condition()
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type cluster struct {
	dir        string
	env        map[string]string
	kubeconfig string
}

func startCluster(t *testing.T, work string) *cluster {
	c := &cluster{dir: filepath.Join(work, "cluster"), env: map[string]string{}}
	cmd := exec.Command(clusterSh, "start", c.dir, fmt.Sprintf("--owner-pid=%d", os.Getpid()))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("cluster.sh start: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(c.dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if key, value, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			c.env[key] = strings.Trim(value, "'")
		}
	}
	c.kubeconfig = c.env["KUBECONFIG_ADMIN_TOKEN"]
	return c
}

func (c *cluster) stop() { exec.Command(clusterSh, "stop", c.dir).Run() }

func (c *cluster) kubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(kubectlBin, append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

type kobj = map[string]interface{}

func meta(o kobj, field string) string {
	m, _ := o["metadata"].(map[string]interface{})
	s, _ := m[field].(string)
	return s
}

func describe(o kobj) string { return meta(o, "namespace") + "/" + meta(o, "name") }

// state is `kubectl get pods` as key -> object.
func (c *cluster) state(t *testing.T, namespace, selector string) map[string]kobj {
	args := []string{"get", "pods", "-n", namespace, "-o", "json"}
	if selector != "" {
		args = append(args, "-l", selector)
	}
	var list struct{ Items []kobj }
	if err := json.Unmarshal([]byte(c.kubectl(t, "", args...)), &list); err != nil {
		t.Fatal(err)
	}
	out := map[string]kobj{}
	for _, o := range list.Items {
		out[describe(o)] = o
	}
	return out
}

// daemon is informerd on a fixed loopback port, so that a restart keeps the address.
type daemon struct {
	c       *cluster
	port    int
	config  string
	extra   []string
	mu      sync.Mutex
	log     strings.Builder
	process *exec.Cmd
}

func newDaemon(t *testing.T, c *cluster, work string, extra ...string) *daemon {
	d := &daemon{c: c, port: freePort(t), extra: extra}
	d.config = filepath.Join(work, fmt.Sprintf("informerd-%d.yaml", d.port))
	if err := os.WriteFile(d.config, []byte("resources:\n  - resource: pods\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *daemon) address() string { return fmt.Sprintf("127.0.0.1:%d", d.port) }

func (d *daemon) logText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

func (d *daemon) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(informerdBin, append([]string{"--config", d.config, "--kubeconfig", d.c.kubeconfig,
		"--listen", d.address(), "--metrics-listen", "none", "--probe-listen", "none"}, d.extra...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting informerd: %v", err)
	}
	d.process = cmd
	listening := make(chan bool, 1)
	go func() {
		scanner := bufio.NewScanner(stderr)
		scanner.Buffer(make([]byte, 1<<20), 1<<20)
		told := false
		for scanner.Scan() {
			d.mu.Lock()
			d.log.WriteString(scanner.Text() + "\n")
			d.mu.Unlock()
			if !told && strings.Contains(scanner.Text(), "gRPC listening on") {
				listening <- true
				told = true
			}
		}
		if !told {
			listening <- false
		}
	}()
	select {
	case ok := <-listening:
		if !ok {
			t.Fatalf("informerd exited:\n%s", d.logText())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("informerd did not listen:\n%s", d.logText())
	}
}

func (d *daemon) stop() {
	if d.process == nil {
		return
	}
	d.process.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.process.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		d.process.Process.Kill()
		<-done
	}
	d.process = nil
}

// recorder: handler calls as "add key rv", "update key oldrv newrv", "delete key rv",
// "tombstone key lastrv".
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) add(call string) { r.mu.Lock(); r.calls = append(r.calls, call); r.mu.Unlock() }
func (r *recorder) OnAdd(obj interface{}) {
	o := obj.(*cache.Object)
	r.add(fmt.Sprintf("add %s %s", o.Key(), o.ResourceVersion()))
}
func (r *recorder) OnUpdate(old, new interface{}) {
	o, n := old.(*cache.Object), new.(*cache.Object)
	r.add(fmt.Sprintf("update %s %s %s", n.Key(), o.ResourceVersion(), n.ResourceVersion()))
}
func (r *recorder) OnDelete(obj interface{}) {
	switch o := obj.(type) {
	case cache.DeletedFinalStateUnknown:
		r.add(fmt.Sprintf("tombstone %s %s", o.Key, o.Obj.(*cache.Object).ResourceVersion()))
	case *cache.Object:
		r.add(fmt.Sprintf("delete %s %s", o.Key(), o.ResourceVersion()))
	}
}
func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

// apiserverWatch is `kubectl get pods --watch --output-watch-events -o json`: the apiserver's
// own account of the changes (its initial ADDED events, then each change), as handler calls.
type apiserverWatch struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	events []struct {
		Type   string
		Object kobj
	}
}

func watchApiserver(t *testing.T, c *cluster, namespace, selector string) *apiserverWatch {
	args := []string{"--kubeconfig", c.kubeconfig, "get", "pods", "-n", namespace, "--watch", "--output-watch-events", "-o", "json"}
	if selector != "" {
		args = append(args, "-l", selector)
	}
	w := &apiserverWatch{cmd: exec.Command(kubectlBin, args...)}
	stdout, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		decoder := json.NewDecoder(stdout)
		for {
			var e struct {
				Type   string
				Object kobj
			}
			if decoder.Decode(&e) != nil {
				io.Copy(io.Discard, stdout)
				return
			}
			w.mu.Lock()
			w.events = append(w.events, e)
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() { w.cmd.Process.Kill(); w.cmd.Wait() })
	return w
}

// history is the calls so far, after settle without a new event.
func (w *apiserverWatch) history(settle time.Duration) []string {
	count := -1
	for {
		w.mu.Lock()
		n := len(w.events)
		w.mu.Unlock()
		if n == count {
			break
		}
		count = n
		time.Sleep(settle)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	state := map[string]kobj{}
	var calls []string
	for _, e := range w.events {
		key := describe(e.Object)
		switch e.Type {
		case "ADDED":
			calls = append(calls, fmt.Sprintf("add %s %s", key, meta(e.Object, "resourceVersion")))
		case "MODIFIED":
			calls = append(calls, fmt.Sprintf("update %s %s %s", key, meta(state[key], "resourceVersion"), meta(e.Object, "resourceVersion")))
		case "DELETED":
			calls = append(calls, fmt.Sprintf("delete %s %s", key, meta(e.Object, "resourceVersion")))
		}
		state[key] = e.Object
	}
	return calls
}

// expectedDiff is the handler calls a re-snapshot must make, from two states, sorted.
func expectedDiff(before, after map[string]kobj) []string {
	var calls []string
	for key, o := range after {
		if b, ok := before[key]; !ok {
			calls = append(calls, fmt.Sprintf("add %s %s", key, meta(o, "resourceVersion")))
		} else if meta(b, "resourceVersion") != meta(o, "resourceVersion") {
			calls = append(calls, fmt.Sprintf("update %s %s %s", key, meta(b, "resourceVersion"), meta(o, "resourceVersion")))
		}
	}
	for key, o := range before {
		if _, ok := after[key]; !ok {
			calls = append(calls, fmt.Sprintf("tombstone %s %s", key, meta(o, "resourceVersion")))
		}
	}
	sort.Strings(calls)
	return calls
}

func podManifest(namespace, name string, labels map[string]string) string {
	data, _ := json.Marshal(kobj{"apiVersion": "v1", "kind": "Pod",
		"metadata": kobj{"name": name, "namespace": namespace, "labels": labels},
		"spec":     kobj{"containers": []kobj{{"name": "c", "image": "nginx:1"}}}})
	return string(data)
}

type stalling struct {
	informerdv1.InformerClient
	gate *gate
}

// gate blocks stream reads while closed.
type gate struct {
	mu   sync.Mutex
	open chan struct{}
}

func newGate() *gate {
	g := &gate{open: make(chan struct{})}
	close(g.open)
	return g
}
func (g *gate) shut() { g.mu.Lock(); g.open = make(chan struct{}); g.mu.Unlock() }
func (g *gate) release() {
	g.mu.Lock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
	g.mu.Unlock()
}
func (g *gate) wait() {
	g.mu.Lock()
	ch := g.open
	g.mu.Unlock()
	<-ch
}

type stallingStream struct {
	informerdv1.Informer_SubscribeClient
	gate *gate
}

func (s stallingStream) Recv() (*informerdv1.Event, error) {
	s.gate.wait()
	return s.Informer_SubscribeClient.Recv()
}

func (s stalling) Subscribe(ctx context.Context, in *informerdv1.SubscribeRequest, opts ...grpc.CallOption) (informerdv1.Informer_SubscribeClient, error) {
	stream, err := s.InformerClient.Subscribe(ctx, in, opts...)
	if err != nil {
		return nil, err
	}
	return stallingStream{stream, s.gate}, nil
}

type running struct {
	informer *cache.Informer
	calls    *recorder
	mu       sync.Mutex
	errors   []*cache.StreamError
}

func (r *running) streamErrors() []*cache.StreamError {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*cache.StreamError(nil), r.errors...)
}

type env struct {
	t       *testing.T
	work    string
	cluster *cluster
	daemon  *daemon
}

func (e *env) startInformer(t *testing.T, namespace, selector string, g *gate) *running {
	conn, err := grpc.Dial(e.daemon.address(), grpc.WithInsecure(),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	r := &running{calls: &recorder{}}
	opts := cache.Options{Namespace: namespace, LabelSelector: selector,
		ErrorHandler: func(se *cache.StreamError) { r.mu.Lock(); r.errors = append(r.errors, se); r.mu.Unlock() },
		Logf:         t.Logf}
	var client informerdv1.InformerClient = informerdv1.NewInformerClient(conn)
	if g != nil {
		client = stalling{client, g}
	}
	if r.informer, err = cache.NewInformerWithClient(client, "pods", opts); err != nil {
		t.Fatal(err)
	}
	r.informer.AddEventHandler(r.calls)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.informer.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if g != nil {
			g.release()
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not return after cancel")
		}
		conn.Close()
	})
	syncCtx, cancelSync := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancelSync()
	if !r.informer.WaitForCacheSync(syncCtx) {
		t.Fatalf("did not sync:\n%s", e.daemon.logText())
	}
	return r
}

// waitCalls: the calls must be expected; the first unorderedPrefix (a snapshot's adds, in the
// order of whoever took the snapshot) in any order. deleteRV=false compares deletes by key only:
// for an object that stops matching a selector the apiserver's watch sends its new state,
// informerd the last state that matched.
func waitCalls(t *testing.T, r *recorder, expected []string, what string, unorderedPrefix int, deleteRV bool) {
	t.Helper()
	waitUntil(func() bool { return len(r.snapshot()) >= len(expected) }, 60*time.Second)
	time.Sleep(500 * time.Millisecond) // anything more would show now
	calls := r.snapshot()
	norm := func(in []string) []string {
		out := append([]string(nil), in...)
		if !deleteRV {
			for i, c := range out {
				if f := strings.Fields(c); f[0] == "delete" {
					out[i] = f[0] + " " + f[1]
				}
			}
		}
		if len(out) >= unorderedPrefix {
			sort.Strings(out[:unorderedPrefix])
		}
		return out
	}
	if got, want := norm(calls), norm(expected); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func assertStoreIsKubectls(t *testing.T, c *cluster, inf *cache.Informer, namespace, selector string) {
	t.Helper()
	expected := map[string]string{}
	for key, o := range c.state(t, namespace, selector) {
		expected[key] = meta(o, "resourceVersion") + " " + meta(o, "uid")
	}
	actual := map[string]string{}
	objects, _ := inf.Lister().List(cache.Everything())
	for _, o := range objects {
		actual[o.Key()] = o.ResourceVersion() + " " + o.UID()
	}
	if !reflect.DeepEqual(actual, expected) {
		t.Fatalf("store vs kubectl get pods -l %q:\n got %v\nwant %v", selector, actual, expected)
	}
}

func setUp(t *testing.T) *env {
	if informerdBin == "" || clusterSh == "" {
		t.Fatal("INFORMERD_BIN and CLUSTER_SH must be set (test/clients/go_cluster_test.sh sets them)")
	}
	binary := kubeApiserver()
	if binary == "" {
		t.Skip("no kube-apiserver: INFORMERD_KUBE_APISERVER is unset and none is cached; build one with: " +
			"export INFORMERD_KUBE_APISERVER=$(test/cluster/build_kube_apiserver.sh)")
	}
	os.Setenv("INFORMERD_KUBE_APISERVER", binary)
	e := &env{t: t, work: t.TempDir()}
	e.cluster = startCluster(t, e.work)
	t.Cleanup(e.cluster.stop)
	e.daemon = newDaemon(t, e.cluster, e.work)
	e.daemon.start(t)
	t.Cleanup(e.daemon.stop)
	return e
}

func TestCluster(t *testing.T) {
	e := setUp(t)
	t.Run("ConvergenceAndInformerdRestart", e.convergenceAndRestart)
	t.Run("AClientThatFallsBehindResumesWithoutLoss", e.fallsBehind)
	t.Run("TokensAreSentAndADenialIsReturnedNotRetried", e.tokens)
}

func (e *env) convergenceAndRestart(t *testing.T) {
	ns := "go-informer-a"
	k := e.cluster
	k.kubectl(t, "", "create", "namespace", ns)
	create := func(name string, labels map[string]string) {
		k.kubectl(t, podManifest(ns, name, labels), "create", "-f", "-")
	}
	create("p0", map[string]string{"app": "web"})
	create("p1", map[string]string{"app": "db"})
	// The change history as the apiserver tells it: kubectl's own watches, beside ours.
	truthAll := watchApiserver(t, k, ns, "")
	truthWeb := watchApiserver(t, k, ns, "app=web")
	every := e.startInformer(t, ns, "", nil)
	web := e.startInformer(t, ns, "app=web", nil)

	// Live changes: create, update, relabel (out of and into app=web), delete.
	create("p2", map[string]string{"app": "web"})
	k.kubectl(t, "", "label", "pod", "p2", "-n", ns, "tier=fe")
	k.kubectl(t, "", "label", "pod", "p0", "-n", ns, "app=db", "--overwrite")
	k.kubectl(t, "", "label", "pod", "p1", "-n", ns, "app=web", "--overwrite")
	k.kubectl(t, "", "annotate", "pod", "p1", "-n", ns, "note=hello")
	k.kubectl(t, "", "delete", "pod", "p2", "-n", ns, "--wait=true")
	expected := truthAll.history(time.Second)
	if len(expected) < 8 {
		t.Fatalf("the apiserver's history is short: %q", expected)
	}
	waitCalls(t, every.calls, expected, "all pods: the apiserver's change history", 2, true)
	expected = truthWeb.history(time.Second)
	if len(expected) < 6 {
		t.Fatalf("the apiserver's app=web history is short: %q", expected)
	}
	waitCalls(t, web.calls, expected, "app=web: the apiserver's change history", 1, false)
	assertStoreIsKubectls(t, k, every.informer, ns, "")
	assertStoreIsKubectls(t, k, web.informer, ns, "app=web")
	if errs := append(every.streamErrors(), web.streamErrors()...); len(errs) != 0 {
		t.Fatalf("stream errors: %v", errs)
	}

	// informerd restarted; changes made while it is down.
	beforeAll, beforeWeb := k.state(t, ns, ""), k.state(t, ns, "app=web")
	callsAll, callsWeb := len(every.calls.snapshot()), len(web.calls.snapshot())
	e.daemon.stop()
	k.kubectl(t, "", "delete", "pod", "p0", "-n", ns)           // gone while away
	k.kubectl(t, "", "label", "pod", "p1", "-n", ns, "tier=be") // changed
	create("p3", map[string]string{"app": "web"})               // created
	create("p4", map[string]string{"app": "web"})               // created and deleted again
	k.kubectl(t, "", "delete", "pod", "p4", "-n", ns)
	afterAll, afterWeb := k.state(t, ns, ""), k.state(t, ns, "app=web")
	e.daemon.start(t)
	expectedAll, expectedWeb := expectedDiff(beforeAll, afterAll), expectedDiff(beforeWeb, afterWeb)
	var kinds []string
	for _, c := range expectedAll {
		kinds = append(kinds, strings.Fields(c)[0])
	}
	if !reflect.DeepEqual(kinds, []string{"add", "tombstone", "update"}) {
		t.Fatalf("the scenario's differences: %q", expectedAll)
	}
	if !waitUntil(func() bool {
		return len(every.calls.snapshot()) >= callsAll+len(expectedAll) && len(web.calls.snapshot()) >= callsWeb+len(expectedWeb)
	}, 90*time.Second) {
		t.Fatalf("no re-snapshot: %q %q\n%s", every.calls.snapshot()[callsAll:], web.calls.snapshot()[callsWeb:], e.daemon.logText())
	}
	time.Sleep(500 * time.Millisecond)
	// A snapshot's order is the daemon's: the differences are compared as a set.
	gotAll, gotWeb := every.calls.snapshot()[callsAll:], web.calls.snapshot()[callsWeb:]
	sort.Strings(gotAll)
	sort.Strings(gotWeb)
	if !reflect.DeepEqual(gotAll, expectedAll) {
		t.Fatalf("all pods after the restart:\n got %q\nwant %q", gotAll, expectedAll)
	}
	if !reflect.DeepEqual(gotWeb, expectedWeb) {
		t.Fatalf("app=web after the restart:\n got %q\nwant %q", gotWeb, expectedWeb)
	}
	actions := map[string]bool{}
	for _, se := range every.streamErrors() {
		actions[string(se.Action)] = true
	}
	if !actions["resnapshot"] || !actions["retry"] {
		t.Fatalf("not through UNAVAILABLE (retry) and OUT_OF_RANGE (resnapshot): %v", every.streamErrors())
	}
	assertStoreIsKubectls(t, k, every.informer, ns, "")
	assertStoreIsKubectls(t, k, web.informer, ns, "app=web")

	// Live again after the re-snapshot.
	create("p5", map[string]string{"app": "web"})
	p5 := k.state(t, ns, "")[ns+"/p5"]
	want := append(every.calls.snapshot()[:callsAll+len(expectedAll)], fmt.Sprintf("add %s/p5 %s", ns, meta(p5, "resourceVersion")))
	waitCalls(t, every.calls, want, "live after the restart", 0, true)
	assertStoreIsKubectls(t, k, every.informer, ns, "")
}

// The informer stops reading its stream while large changes pile up: informerd ends the stream
// with RESOURCE_EXHAUSTED, and it resumes from its last version with every change delivered
// once, in order.
func (e *env) fallsBehind(t *testing.T) {
	ns := "go-behind"
	k := e.cluster
	k.kubectl(t, "", "create", "namespace", ns)
	k.kubectl(t, podManifest(ns, "big", map[string]string{"app": "web"}), "create", "-f", "-")
	truth := watchApiserver(t, k, ns, "")
	g := newGate()
	r := e.startInformer(t, ns, "", g)
	g.shut()
	filler := strings.Repeat("x", 200<<10) // 30 changes of 200 KiB: more than gRPC's windows buffer
	for i := 0; i < 30; i++ {              // replace from stdin: an argument may not be that long
		pod := k.state(t, ns, "")[ns+"/big"]
		m := pod["metadata"].(map[string]interface{})
		annotations, _ := m["annotations"].(map[string]interface{})
		if annotations == nil {
			annotations = map[string]interface{}{}
			m["annotations"] = annotations
		}
		annotations["filler"] = fmt.Sprintf("%d%s", i, filler)
		data, _ := json.Marshal(pod)
		k.kubectl(t, string(data), "replace", "-f", "-")
	}
	if !waitUntil(func() bool { return len(truth.history(200*time.Millisecond)) >= 31 }, 60*time.Second) {
		t.Fatal("the apiserver's watch did not see the 30 changes")
	}
	time.Sleep(3 * time.Second) // informerd gives a subscriber that reads nothing about a second
	g.release()
	waitCalls(t, r.calls, truth.history(time.Second), "the change history after falling behind", 1, true)
	errs := r.streamErrors()
	if len(errs) == 0 || errs[0].Code != codes.ResourceExhausted {
		t.Fatalf("informerd did not end the stalled stream with RESOURCE_EXHAUSTED: %v", errs)
	}
	for _, se := range errs {
		if se.Action == cache.ActionResnapshot {
			t.Fatalf("re-snapshotted: %v", errs)
		}
	}
	assertStoreIsKubectls(t, k, r.informer, ns, "")
}

// informerd authorizing each call with the apiserver (Webhook): alice's token may list and
// watch pods, bob's may not.
func (e *env) tokens(t *testing.T) {
	d := newDaemon(t, e.cluster, e.work, "--authorization-mode", "Webhook")
	d.start(t)
	defer d.stop()
	tokenFile := filepath.Join(e.work, "alice.token")
	if err := os.WriteFile(tokenFile, []byte(e.cluster.env["TOKEN_ALICE_TOKEN"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.cluster.kubectl(t, "", "create", "namespace", "go-tokens")
	e.cluster.kubectl(t, podManifest("go-tokens", "t1", nil), "create", "-f", "-")
	dial := func(creds cache.TokenCredentials) *grpc.ClientConn {
		opts := []grpc.DialOption{grpc.WithInsecure()}
		if creds.Token != "" || creds.TokenFile != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(creds))
		}
		conn, err := grpc.Dial(d.address(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
	conn := dial(cache.TokenCredentials{TokenFile: tokenFile, AllowInsecure: true})
	defer conn.Close()
	alice, _ := cache.NewInformer(conn, "pods", cache.Options{Namespace: "go-tokens", Logf: t.Logf})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- alice.Run(ctx) }()
	syncCtx, cancelSync := context.WithTimeout(ctx, 60*time.Second)
	synced := alice.WaitForCacheSync(syncCtx)
	cancelSync()
	keys := alice.GetIndexer().ListKeys()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("alice: Run returned %v", err)
	}
	if !synced || !reflect.DeepEqual(keys, []string{"go-tokens/t1"}) {
		t.Fatalf("alice: synced %v, keys %v\n%s", synced, keys, d.logText())
	}
	for _, c := range []struct {
		token string
		code  codes.Code
	}{{e.cluster.env["TOKEN_BOB_TOKEN"], codes.PermissionDenied}, {"not-a-token", codes.Unauthenticated}, {"", codes.Unauthenticated}} {
		conn := dial(cache.TokenCredentials{Token: c.token, AllowInsecure: true})
		var actions []string
		informer, _ := cache.NewInformer(conn, "pods", cache.Options{Namespace: "go-tokens", Logf: t.Logf,
			ErrorHandler: func(se *cache.StreamError) { actions = append(actions, string(se.Action)) }})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := informer.Run(ctx)
		cancel()
		conn.Close()
		if status.Code(err) != c.code || !reflect.DeepEqual(actions, []string{"fatal"}) || informer.HasSynced() {
			t.Errorf("token %.8q: Run returned %v (code %v, want %v), actions %v, synced %v",
				c.token, err, status.Code(err), c.code, actions, informer.HasSynced())
		}
	}
}
