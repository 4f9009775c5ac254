package cache

import (
	"encoding/json"
	"reflect"
	"testing"
)

func podObject(name, rv, uid string, labels map[string]string, node, namespace string) *Object {
	if uid == "" {
		uid = "uid-" + name
	}
	if labels == nil {
		labels = map[string]string{"app": "web"}
	}
	raw, _ := json.Marshal(map[string]interface{}{
		"kind": "Pod", "apiVersion": "v1",
		"metadata": map[string]interface{}{"name": name, "namespace": namespace,
			"resourceVersion": rv, "uid": uid, "labels": labels},
		"spec": map[string]interface{}{"nodeName": node},
	})
	o, err := NewObject(raw)
	if err != nil {
		panic(err)
	}
	return o
}

func names(objects []*Object) []string {
	out := []string{}
	for _, o := range objects {
		out = append(out, o.Name())
	}
	return out
}

func byNode(obj interface{}) ([]string, error) {
	if node := obj.(*Object).NestedString("spec", "nodeName"); node != "" {
		return []string{node}, nil
	}
	return nil, nil
}

func TestStoreListersAndIndexes(t *testing.T) {
	s, err := NewStore(Indexers{"by_node": byNode})
	if err != nil {
		t.Fatal(err)
	}
	s.put("a/p1", podObject("p1", "1", "", map[string]string{"app": "web", "tier": "fe"}, "n1", "a"))
	s.put("a/p2", podObject("p2", "2", "", map[string]string{"app": "db"}, "n2", "a"))
	s.put("b/p3", podObject("p3", "3", "", map[string]string{"app": "web"}, "n1", "b"))
	s.put("b/p4", podObject("p4", "4", "", map[string]string{}, "", "b"))
	list := func(ns, selector string) []string {
		t.Helper()
		sel, err := ParseSelector(selector)
		if err != nil {
			t.Fatal(err)
		}
		var objects []*Object
		if ns == "*" {
			objects, err = s.List(sel)
		} else {
			objects, err = s.Namespace(ns).List(sel)
		}
		if err != nil {
			t.Fatal(err)
		}
		return names(objects)
	}
	byIndex := func(value string) []string {
		t.Helper()
		objects, err := s.ByIndex("by_node", value)
		if err != nil {
			t.Fatal(err)
		}
		return names(objects)
	}
	check := func(what string, got, want interface{}) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v, want %v", what, got, want)
		}
	}
	check("all", list("*", ""), []string{"p1", "p2", "p3", "p4"})
	check("namespace a", list("a", ""), []string{"p1", "p2"})
	check("app=web", list("*", "app=web"), []string{"p1", "p3"})
	check("b, app in (web,db)", list("b", "app in (web,db)"), []string{"p3"})
	check("!app", list("*", "!app"), []string{"p4"})
	check("namespace c", list("c", ""), []string{})
	if o, err := s.Get("a", "p2"); err != nil || o.Name() != "p2" || o.Namespace() != "a" || o.ResourceVersion() != "2" || o.UID() != "uid-p2" {
		t.Errorf("Get a/p2: %v %v", o, err)
	}
	if o, err := s.Namespace("a").Get("p1"); err != nil || o.Name() != "p1" {
		t.Errorf("Namespace(a).Get(p1): %v %v", o, err)
	}
	if _, err := s.Get("b", "p2"); !IsNotFound(err) {
		t.Errorf("Get b/p2: %v, want not found", err)
	}
	check("by_node n1", byIndex("n1"), []string{"p1", "p3"})
	check("index values", s.ListIndexFuncValues("by_node"), []string{"n1", "n2"})
	// Moving an object moves it in every index; deleting removes it.
	s.put("a/p1", podObject("p1", "5", "", nil, "n2", "a"))
	check("n1 after the move", byIndex("n1"), []string{"p3"})
	check("n2 after the move", byIndex("n2"), []string{"p1", "p2"})
	s.remove("b/p3")
	check("n1 after the delete", byIndex("n1"), []string{})
	check("values after the delete", s.ListIndexFuncValues("by_node"), []string{"n2"})
	// An indexer added later indexes what is there.
	if err := s.AddIndexers(Indexers{"by_app": func(obj interface{}) ([]string, error) {
		var values []string
		for _, v := range obj.(*Object).Labels() {
			values = append(values, v)
		}
		return values, nil
	}}); err != nil {
		t.Fatal(err)
	}
	objects, _ := s.ByIndex("by_app", "web")
	check("by_app web", names(objects), []string{"p1"})
	if _, err := s.ByIndex("nope", "x"); err == nil {
		t.Error("ByIndex on a missing index: no error")
	}
	if err := s.AddIndexers(Indexers{"by_app": byNode}); err == nil {
		t.Error("AddIndexers twice: no error")
	}
	s.replace(map[string]*Object{"c/p9": podObject("p9", "9", "", nil, "n9", "c")})
	check("keys after replace", s.ListKeys(), []string{"c/p9"})
	check("n9", byIndex("n9"), []string{"p9"})
	check("n2 after replace", byIndex("n2"), []string{})
	check("namespace c after replace", list("c", ""), []string{"p9"})
}

func TestKeyFuncs(t *testing.T) {
	o := podObject("p", "1", "", nil, "", "ns")
	for _, obj := range []interface{}{o, DeletedFinalStateUnknown{Key: "ns/p", Obj: o}, "ns/p"} {
		if key, err := MetaNamespaceKeyFunc(obj); err != nil || key != "ns/p" {
			t.Errorf("%T: %q %v", obj, key, err)
		}
	}
	if _, err := MetaNamespaceKeyFunc(42); err == nil {
		t.Error("an int has a key")
	}
	if ns, name, err := SplitMetaNamespaceKey("ns/p"); ns != "ns" || name != "p" || err != nil {
		t.Error("SplitMetaNamespaceKey ns/p")
	}
	if ns, name, _ := SplitMetaNamespaceKey("node1"); ns != "" || name != "node1" {
		t.Error("SplitMetaNamespaceKey node1")
	}
	if _, err := NewObject([]byte("[1]")); err == nil {
		t.Error("a JSON array decoded as an object")
	}
}
