package cache_test

import (
	"context"
	"log"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"informerd.io/client/cache"
	"informerd.io/client/workqueue"
)

func reconcile(pod *cache.Object) error { return nil }

// The controller of the README's "Clients" section (compiled, not run).
func Example() {
	ctx := context.Background()
	tls, _ := credentials.NewClientTLSFromFile("ca.crt", "")
	conn, _ := grpc.Dial("informerd.informerd.svc:50051", grpc.WithTransportCredentials(tls),
		grpc.WithPerRPCCredentials(cache.TokenCredentials{TokenFile: "/var/run/secrets/kubernetes.io/serviceaccount/token"}))
	pods, _ := cache.NewInformer(conn, "pods", cache.Options{Namespace: "default", ResyncPeriod: 10 * time.Minute})
	queue := workqueue.NewRateLimitingQueue(workqueue.DefaultControllerRateLimiter())
	enqueue := func(obj interface{}) { // DeletedFinalStateUnknown too
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, o interface{}) { enqueue(o) }, DeleteFunc: enqueue})
	go func() {
		if err := pods.Run(ctx); err != nil { // a *StreamError retrying cannot fix
			log.Fatal(err)
		}
	}()
	cache.WaitForCacheSync(ctx, pods.HasSynced)
	for key, shutdown := queue.Get(); !shutdown; key, shutdown = queue.Get() {
		namespace, name, _ := cache.SplitMetaNamespaceKey(key.(string))
		pod, err := pods.Lister().Get(namespace, name) // also List(selector), ByIndex
		if cache.IsNotFound(err) || reconcile(pod) == nil {
			queue.Forget(key)
		} else {
			queue.AddRateLimited(key)
		}
		queue.Done(key)
	}
}
