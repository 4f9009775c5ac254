// Package cache is client-go's informer machinery (tools/cache) over informerd: an Informer
// that follows one resource through informerd's Subscribe stream into a local indexed store,
// calling ResourceEventHandlers as objects are added, updated and deleted, with listers,
// indexers, HasSynced/WaitForCacheSync and resync. Objects are *Object: parsed JSON, as
// client-go's unstructured.Unstructured, plus the JSON text informerd sent.
package cache

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Object is one Kubernetes object as informerd sent it: Object holds the parsed JSON
// (unstructured.Unstructured's Object), Raw the text. Objects in the store are shared by the
// handlers and listers: treat them as read-only, as client-go asks of its cache.
type Object struct {
	Object map[string]interface{}
	Raw    []byte
}

// NewObject parses an object's JSON text.
func NewObject(raw []byte) (*Object, error) {
	var m map[string]interface{}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("decoding an object: %v", err)
	}
	if m == nil {
		return nil, fmt.Errorf("decoding an object: not a JSON object: %.80q", raw)
	}
	return &Object{Object: m, Raw: raw}, nil
}

func (o *Object) metadata() map[string]interface{} {
	if o == nil {
		return nil
	}
	m, _ := o.Object["metadata"].(map[string]interface{})
	return m
}

func (o *Object) metadataString(field string) string {
	s, _ := o.metadata()[field].(string)
	return s
}

// Namespace is metadata.namespace ("" for a cluster-scoped object).
func (o *Object) Namespace() string { return o.metadataString("namespace") }

// Name is metadata.name.
func (o *Object) Name() string { return o.metadataString("name") }

// ResourceVersion is metadata.resourceVersion.
func (o *Object) ResourceVersion() string { return o.metadataString("resourceVersion") }

// UID is metadata.uid.
func (o *Object) UID() string { return o.metadataString("uid") }

// Kind is the object's kind.
func (o *Object) Kind() string { s, _ := o.Object["kind"].(string); return s }

// Labels is metadata.labels (nil when there are none).
func (o *Object) Labels() map[string]string {
	m, _ := o.metadata()["labels"].(map[string]interface{})
	if m == nil {
		return nil
	}
	labels := make(map[string]string, len(m))
	for k, v := range m {
		if s, ok := v.(string); ok {
			labels[k] = s
		}
	}
	return labels
}

// NestedField is the value at a path of map keys (unstructured.NestedFieldNoCopy), or nil and
// false when a step is missing or not a map.
func (o *Object) NestedField(fields ...string) (interface{}, bool) {
	var value interface{} = o.Object
	for _, field := range fields {
		m, ok := value.(map[string]interface{})
		if !ok {
			return nil, false
		}
		if value, ok = m[field]; !ok {
			return nil, false
		}
	}
	return value, true
}

// NestedString is the string at a path, or "" (unstructured.NestedString without the error).
func (o *Object) NestedString(fields ...string) string {
	value, _ := o.NestedField(fields...)
	s, _ := value.(string)
	return s
}

// Key is the object's store key: "namespace/name", or "name" when cluster-scoped.
func (o *Object) Key() string {
	if ns := o.Namespace(); ns != "" {
		return ns + "/" + o.Name()
	}
	return o.Name()
}

// DeletedFinalStateUnknown is what OnDelete receives for an object whose deletion this client
// did not see (it happened while the client was away; a fresh snapshot no longer has it): its
// key and the last state the client knew (*Object), which may be stale. As client-go's.
type DeletedFinalStateUnknown struct {
	Key string
	Obj interface{}
}

// MetaNamespaceKeyFunc is client-go's: "namespace/name" (or "name") of an *Object, a
// DeletedFinalStateUnknown's own key, or a string as it is.
func MetaNamespaceKeyFunc(obj interface{}) (string, error) {
	switch o := obj.(type) {
	case *Object:
		if o == nil {
			return "", fmt.Errorf("object has no meta: nil *Object")
		}
		return o.Key(), nil
	case DeletedFinalStateUnknown:
		return o.Key, nil
	case *DeletedFinalStateUnknown:
		return o.Key, nil
	case string:
		return o, nil
	}
	return "", fmt.Errorf("object has no meta: %T", obj)
}

// DeletionHandlingMetaNamespaceKeyFunc is client-go's name for MetaNamespaceKeyFunc, which
// already handles DeletedFinalStateUnknown.
func DeletionHandlingMetaNamespaceKeyFunc(obj interface{}) (string, error) {
	return MetaNamespaceKeyFunc(obj)
}

// SplitMetaNamespaceKey is client-go's: (namespace, name) of a key; "" namespace for "name".
func SplitMetaNamespaceKey(key string) (namespace, name string, err error) {
	parts := strings.Split(key, "/")
	switch len(parts) {
	case 1:
		return "", parts[0], nil
	case 2:
		return parts[0], parts[1], nil
	}
	return "", "", fmt.Errorf("unexpected key format: %q", key)
}
