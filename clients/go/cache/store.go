package cache

// The informer's local cache: client-go's thread-safe Indexer (thread_safe_store.go) for
// *Object: objects keyed by "namespace/name", plus named indexes, each computed by an IndexFunc
// from an object to the values it is filed under. A "namespace" index is always there
// (client-go's NamespaceIndex), so listing one namespace does not scan the others. The Informer
// writes; any goroutine may read.

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// NamespaceIndex is the index of objects by namespace, always present.
const NamespaceIndex = "namespace"

// IndexFunc computes the values an object (an *Object) is filed under, as client-go's.
type IndexFunc func(obj interface{}) ([]string, error)

// Indexers maps index names to their functions.
type Indexers map[string]IndexFunc

// MetaNamespaceIndexFunc files an object under its namespace.
func MetaNamespaceIndexFunc(obj interface{}) ([]string, error) {
	o, ok := obj.(*Object)
	if !ok {
		return nil, fmt.Errorf("not an *Object: %T", obj)
	}
	return []string{o.Namespace()}, nil
}

// ErrNotFound is what Lister.Get returns (wrapped) for a missing object.
var ErrNotFound = errors.New("not found")

// IsNotFound reports whether err says an object is not in the store.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// Lister reads the store (client-go's generated listers, for *Object).
type Lister interface {
	// Get is the object namespace/name (namespace "" for a cluster-scoped object), or an error
	// for which IsNotFound is true.
	Get(namespace, name string) (*Object, error)
	// List is every object whose labels match, ordered by key.
	List(selector Selector) ([]*Object, error)
	// Namespace narrows Get and List to one namespace.
	Namespace(namespace string) NamespaceLister
}

// NamespaceLister is a Lister for one namespace.
type NamespaceLister interface {
	Get(name string) (*Object, error)
	List(selector Selector) ([]*Object, error)
}

// Indexer is the store with its indexes (client-go's cache.Indexer, for *Object).
type Indexer interface {
	Lister
	GetByKey(key string) (obj *Object, exists bool)
	ListKeys() []string
	Len() int
	// AddIndexers adds index functions; objects already stored are indexed at once. A name
	// that exists already is an error.
	AddIndexers(indexers Indexers) error
	// ByIndex is the objects filed under value in the index, ordered by key.
	ByIndex(indexName, value string) ([]*Object, error)
	IndexKeys(indexName, value string) ([]string, error)
	ListIndexFuncValues(indexName string) []string
}

// Store is the thread-safe Indexer the Informer fills.
type Store struct {
	mu       sync.RWMutex
	items    map[string]*Object
	indexers Indexers
	indices  map[string]map[string]map[string]struct{} // index -> value -> keys
}

// NewStore makes an empty store with the namespace index and the given ones.
func NewStore(indexers Indexers) (*Store, error) {
	s := &Store{
		items:    map[string]*Object{},
		indexers: Indexers{NamespaceIndex: MetaNamespaceIndexFunc},
		indices:  map[string]map[string]map[string]struct{}{NamespaceIndex: {}},
	}
	if err := s.AddIndexers(indexers); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) AddIndexers(indexers Indexers) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range indexers {
		if _, ok := s.indexers[name]; ok {
			return fmt.Errorf("indexer %q already exists", name)
		}
	}
	for name, f := range indexers {
		s.indexers[name] = f
		s.indices[name] = map[string]map[string]struct{}{}
		for key, obj := range s.items {
			if err := s.file(name, key, obj); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) index(name string) (map[string]map[string]struct{}, error) {
	index, ok := s.indices[name]
	if !ok {
		var have []string
		for n := range s.indices {
			have = append(have, n)
		}
		sort.Strings(have)
		return nil, fmt.Errorf("no indexer %q (have: %s)", name, strings.Join(have, ", "))
	}
	return index, nil
}

func sortedKeys(set map[string]struct{}) []string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (s *Store) IndexKeys(indexName, value string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	index, err := s.index(indexName)
	if err != nil {
		return nil, err
	}
	return sortedKeys(index[value]), nil
}

func (s *Store) ByIndex(indexName, value string) ([]*Object, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	index, err := s.index(indexName)
	if err != nil {
		return nil, err
	}
	var objects []*Object
	for _, key := range sortedKeys(index[value]) {
		objects = append(objects, s.items[key])
	}
	return objects, nil
}

func (s *Store) ListIndexFuncValues(indexName string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var values []string
	for v := range s.indices[indexName] {
		values = append(values, v)
	}
	sort.Strings(values)
	return values
}

func (s *Store) GetByKey(key string) (*Object, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	obj, ok := s.items[key]
	return obj, ok
}

func (s *Store) Get(namespace, name string) (*Object, error) {
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	if obj, ok := s.GetByKey(key); ok {
		return obj, nil
	}
	return nil, fmt.Errorf("%q: %w", key, ErrNotFound)
}

func (s *Store) List(selector Selector) ([]*Object, error) {
	s.mu.RLock()
	keys := make([]string, 0, len(s.items))
	for k := range s.items {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	objects := make([]*Object, 0, len(keys))
	for _, k := range keys {
		objects = append(objects, s.items[k])
	}
	s.mu.RUnlock()
	return filter(objects, selector), nil
}

func filter(objects []*Object, selector Selector) []*Object {
	if selector.Empty() {
		return objects
	}
	matching := objects[:0:0]
	for _, o := range objects {
		if selector.MatchesObject(o) {
			matching = append(matching, o)
		}
	}
	return matching
}

func (s *Store) ListKeys() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	keys := make([]string, 0, len(s.items))
	for k := range s.items {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.items)
}

// Items is a copy of the key -> object map.
func (s *Store) Items() map[string]*Object {
	s.mu.RLock()
	defer s.mu.RUnlock()
	items := make(map[string]*Object, len(s.items))
	for k, v := range s.items {
		items[k] = v
	}
	return items
}

type namespaceLister struct {
	s         *Store
	namespace string
}

func (s *Store) Namespace(namespace string) NamespaceLister { return namespaceLister{s, namespace} }

func (l namespaceLister) Get(name string) (*Object, error) { return l.s.Get(l.namespace, name) }

func (l namespaceLister) List(selector Selector) ([]*Object, error) {
	objects, err := l.s.ByIndex(NamespaceIndex, l.namespace)
	if err != nil {
		return nil, err
	}
	return filter(objects, selector), nil
}

// Writes, by the informer.

// put adds or replaces; returns the previous object or nil.
func (s *Store) put(key string, obj *Object) (*Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.items[key]
	if old != nil {
		s.unfileAll(key, old)
	}
	s.items[key] = obj
	for name := range s.indexers {
		if err := s.file(name, key, obj); err != nil {
			return old, err
		}
	}
	return old, nil
}

// remove deletes; returns the removed object or nil.
func (s *Store) remove(key string) *Object {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.items[key]
	if old != nil {
		s.unfileAll(key, old)
		delete(s.items, key)
	}
	return old
}

// replace makes the store hold exactly items.
func (s *Store) replace(items map[string]*Object) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items = map[string]*Object{}
	for name := range s.indexers {
		s.indices[name] = map[string]map[string]struct{}{}
	}
	var firstErr error
	for key, obj := range items {
		s.items[key] = obj
		for name := range s.indexers {
			if err := s.file(name, key, obj); err != nil && firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

func (s *Store) file(name, key string, obj *Object) error {
	values, err := s.indexers[name](obj)
	if err != nil {
		return fmt.Errorf("index %q of %s: %v", name, key, err)
	}
	index := s.indices[name]
	for _, v := range values {
		if index[v] == nil {
			index[v] = map[string]struct{}{}
		}
		index[v][key] = struct{}{}
	}
	return nil
}

func (s *Store) unfileAll(key string, obj *Object) {
	for name, f := range s.indexers {
		values, err := f(obj)
		if err != nil {
			continue
		}
		index := s.indices[name]
		for _, v := range values {
			if keys := index[v]; keys != nil {
				delete(keys, key)
				if len(keys) == 0 {
					delete(index, v)
				}
			}
		}
	}
}
