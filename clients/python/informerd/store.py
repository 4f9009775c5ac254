"""The informer's local cache: objects keyed by "namespace/name", with indexes and listers.

client-go's cache.Indexer (thread_safe_store.go) for Python: a thread-safe dict of objects plus
named indexes, each computed by an index function from an object to the values it is filed
under. A "namespace" index is always there (client-go's NamespaceIndex), so listing one
namespace does not scan the others. The Informer writes; any thread may read. Objects are shared,
not copied: treat what a lister returns as read-only, as client-go asks of its cache.
"""
import collections
import threading

from informerd.selectors import parse_label_selector

__all__ = ["DeletedFinalStateUnknown", "NAMESPACE_INDEX", "Store", "object_key", "split_key"]

NAMESPACE_INDEX = "namespace"

# What on_delete receives for an object whose deletion this client did not see (it happened while
# the client was away; a fresh snapshot no longer has it): its key and the last state the client
# knew, which may be stale. client-go's cache.DeletedFinalStateUnknown.
DeletedFinalStateUnknown = collections.namedtuple("DeletedFinalStateUnknown", ["key", "obj"])


def object_key(obj):
    """ "namespace/name", or "name" for a cluster-scoped object (client-go's
    MetaNamespaceKeyFunc). A tombstone's key is its own."""
    if isinstance(obj, DeletedFinalStateUnknown):
        return obj.key
    metadata = obj.get("metadata") or {}
    namespace, name = metadata.get("namespace", ""), metadata.get("name", "")
    return "%s/%s" % (namespace, name) if namespace else name


def split_key(key):
    """(namespace, name) of a key; namespace "" for a cluster-scoped object."""
    namespace, slash, name = key.partition("/")
    return (namespace, name) if slash else ("", namespace)


def _namespace_of(obj):
    return [(obj.get("metadata") or {}).get("namespace", "")]


class Store:
    """A thread-safe indexed store of objects (dicts)."""

    def __init__(self, indexers=None):
        self._lock = threading.RLock()
        self._items = {}                               # key -> object
        self._indexers = {NAMESPACE_INDEX: _namespace_of}
        self._indices = {NAMESPACE_INDEX: {}}          # index -> value -> set of keys
        if indexers:
            self.add_indexers(indexers)

    # -- Indexes ---------------------------------------------------------------------------

    def add_indexers(self, indexers):
        """Adds index functions: {"by_node": lambda pod: [pod["spec"].get("nodeName", "")]}.
        A function returns the values an object is filed under: a list, or one string (None or
        an empty list: not filed). Objects already stored are indexed at once."""
        with self._lock:
            for name in indexers:
                if name in self._indexers:
                    raise ValueError("indexer %r already exists" % name)
            for name, function in indexers.items():
                self._indexers[name] = function
                self._indices[name] = {}
                for key, obj in self._items.items():
                    self._file(name, key, obj)

    def by_index(self, index_name, value):
        """The objects filed under `value` in the index `index_name`."""
        with self._lock:
            keys = self._index(index_name).get(value, ())
            return [self._items[key] for key in sorted(keys)]

    def index_keys(self, index_name, value):
        with self._lock:
            return sorted(self._index(index_name).get(value, ()))

    def list_index_values(self, index_name):
        with self._lock:
            return sorted(self._index(index_name))

    def _index(self, index_name):
        if index_name not in self._indices:
            raise KeyError("no indexer %r (have: %s)" % (index_name,
                                                         ", ".join(sorted(self._indices))))
        return self._indices[index_name]

    # -- Listers ---------------------------------------------------------------------------

    def get(self, namespace, name):
        """The object, or None. For a cluster-scoped object pass namespace ""."""
        return self.get_by_key("%s/%s" % (namespace, name) if namespace else name)

    def get_by_key(self, key):
        with self._lock:
            return self._items.get(key)

    def list(self, namespace=None, label_selector=None):
        """The objects, ordered by key; only those in `namespace` (None: every namespace) whose
        labels match `label_selector` (a string in kubectl's syntax, or a parsed Selector;
        SelectorError if it does not parse)."""
        selector = parse_label_selector(label_selector)
        with self._lock:
            if namespace is None:
                keys = sorted(self._items)
            else:
                keys = sorted(self._indices[NAMESPACE_INDEX].get(namespace, ()))
            objects = [self._items[key] for key in keys]
        if selector.empty():
            return objects
        return [obj for obj in objects if selector.matches_object(obj)]

    def keys(self):
        with self._lock:
            return sorted(self._items)

    def items(self):
        """A copy of the key -> object mapping."""
        with self._lock:
            return dict(self._items)

    def __len__(self):
        with self._lock:
            return len(self._items)

    def __contains__(self, key):
        with self._lock:
            return key in self._items

    # -- Writes (by the Informer) ------------------------------------------------------------

    def put(self, key, obj):
        """Adds or replaces; returns the previous object or None."""
        with self._lock:
            old = self._items.get(key)
            if old is not None:
                self._unfile_all(key, old)
            self._items[key] = obj
            for name in self._indexers:
                self._file(name, key, obj)
            return old

    def delete(self, key):
        """Removes; returns the removed object or None."""
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._unfile_all(key, old)
            return old

    def replace(self, items):
        """Makes the store hold exactly `items` (key -> object)."""
        with self._lock:
            self._items = {}
            self._indices = {name: {} for name in self._indexers}
            for key, obj in items.items():
                self._items[key] = obj
                for name in self._indexers:
                    self._file(name, key, obj)

    def _values(self, name, obj):
        values = self._indexers[name](obj)
        if values is None:
            return ()
        if isinstance(values, str):
            return (values,)
        return tuple(values)

    def _file(self, name, key, obj):
        index = self._indices[name]
        for value in self._values(name, obj):
            index.setdefault(value, set()).add(key)

    def _unfile_all(self, key, obj):
        for name in self._indexers:
            index = self._indices[name]
            for value in self._values(name, obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
