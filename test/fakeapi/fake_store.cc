#include "test/fakeapi/fake_store.h"

#include "absl/status/status.h"
#include "fmt/format.h"

namespace informerd::fakeapi {
namespace {

absl::Status UnknownResource(const std::string& resource) {
  return absl::NotFoundError(fmt::format("resource \"{}\" is not registered", resource));
}

absl::Status UnknownObject(const std::string& resource, const std::string& ns,
                           const std::string& name) {
  return absl::NotFoundError(fmt::format("{} \"{}/{}\" not found", resource, ns, name));
}

std::string MakeKey(const std::string& ns, const std::string& name) { return ns + "/" + name; }

ObjectPtr WithRevision(const StoredObject& object, std::uint64_t revision) {
  auto copy = std::make_shared<StoredObject>(object);
  copy->resource_version = revision;
  return copy;
}

}  // namespace

const char* EventTypeName(EventType type) {
  switch (type) {
    case EventType::kAdded:
      return "ADDED";
    case EventType::kModified:
      return "MODIFIED";
    case EventType::kDeleted:
      return "DELETED";
  }
  return "ERROR";
}

FakeStore::FakeStore(std::uint64_t initial_revision, std::size_t history_limit)
    : history_limit_(history_limit == 0 ? 1 : history_limit),
      revision_(initial_revision),
      rng_(std::random_device{}()) {}

void FakeStore::AddResource(const std::string& resource) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (resources_.count(resource)) return;
  // A new resource (a CRD just created) has no history: RVs before now are too old for it.
  resources_[resource].compacted = revision_;
}

void FakeStore::RemoveResource(const std::string& resource) {
  std::lock_guard<std::mutex> lock(mutex_);
  resources_.erase(resource);
  for (auto& [id, sub] : subscriptions_) {
    if (sub.resource == resource && !sub.ended) {
      sub.ended = true;
      WakeLocked(sub);
    }
  }
}

bool FakeStore::HasResource(const std::string& resource) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return resources_.count(resource) != 0;
}

FakeStore::ResourceState* FakeStore::FindLocked(const std::string& resource) {
  auto it = resources_.find(resource);
  return it == resources_.end() ? nullptr : &it->second;
}

const FakeStore::ResourceState* FakeStore::FindLocked(const std::string& resource) const {
  auto it = resources_.find(resource);
  return it == resources_.end() ? nullptr : &it->second;
}

std::string FakeStore::NewUidLocked() {
  const std::uint64_t a = rng_();
  const std::uint64_t b = rng_();
  // A version 4 UUID.
  return fmt::format("{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xffff,
                     a & 0xfff, 0x8000 | ((b >> 48) & 0x3fff), b & 0xffffffffffffULL);
}

void FakeStore::WakeLocked(Subscription& sub) {
  if (sub.wake && !sub.wake_posted) {
    sub.wake_posted = true;
    sub.wake();
  }
}

void FakeStore::AppendHistoryLocked(ResourceState& state, EventPtr event) {
  state.history.push_back(std::move(event));
  while (state.history.size() > history_limit_) {
    state.compacted = state.history.front()->revision();
    state.history.pop_front();
  }
}

void FakeStore::CommitLocked(const std::string& resource, ResourceState& state, EventPtr event) {
  AppendHistoryLocked(state, event);
  for (auto& [id, sub] : subscriptions_) {
    if (sub.resource == resource && !sub.ended) {
      sub.pending.push_back(event);
      WakeLocked(sub);
    }
  }
}

absl::StatusOr<std::uint64_t> FakeStore::Upsert(const std::string& resource,
                                                const std::string& ns, const std::string& name,
                                                const Builder& build) {
  std::lock_guard<std::mutex> lock(mutex_);
  ResourceState* state = FindLocked(resource);
  if (!state) return UnknownResource(resource);
  const std::string key = MakeKey(ns, name);
  auto it = state->objects.find(key);
  ObjectPtr previous = it == state->objects.end() ? nullptr : it->second;
  const std::string uid = previous ? previous->uid : NewUidLocked();
  const std::string created = previous ? previous->creation_timestamp : NowRfc3339();
  auto built = build(uid, created, previous.get());
  if (!built.ok()) return built.status();
  auto object = std::make_shared<StoredObject>();
  object->namespace_name = ns;
  object->name = name;
  object->uid = uid;
  object->creation_timestamp = created;
  object->labels = std::make_shared<const Labels>(std::move(built->labels));
  object->resource_version = ++revision_;
  object->body = std::move(built->body);
  state->objects[key] = object;
  CommitLocked(resource, *state,
               std::make_shared<StoreEvent>(StoreEvent{
                   previous ? EventType::kModified : EventType::kAdded, object, previous}));
  return revision_;
}

absl::StatusOr<std::uint64_t> FakeStore::Recreate(const std::string& resource,
                                                  const std::string& ns, const std::string& name,
                                                  const Builder& build) {
  std::lock_guard<std::mutex> lock(mutex_);
  ResourceState* state = FindLocked(resource);
  if (!state) return UnknownResource(resource);
  const std::string key = MakeKey(ns, name);
  const std::string uid = NewUidLocked();
  const std::string created = NowRfc3339();
  auto built = build(uid, created, nullptr);
  if (!built.ok()) return built.status();
  auto it = state->objects.find(key);
  if (it != state->objects.end()) {
    ObjectPtr previous = it->second;
    state->objects.erase(it);
    CommitLocked(resource, *state,
                 std::make_shared<StoreEvent>(StoreEvent{
                     EventType::kDeleted, WithRevision(*previous, ++revision_), previous}));
  }
  auto object = std::make_shared<StoredObject>();
  object->namespace_name = ns;
  object->name = name;
  object->uid = uid;
  object->creation_timestamp = created;
  object->labels = std::make_shared<const Labels>(std::move(built->labels));
  object->resource_version = ++revision_;
  object->body = std::move(built->body);
  state->objects[key] = object;
  CommitLocked(resource, *state,
               std::make_shared<StoreEvent>(StoreEvent{EventType::kAdded, object, nullptr}));
  return revision_;
}

absl::StatusOr<std::uint64_t> FakeStore::Touch(const std::string& resource, const std::string& ns,
                                               const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  ResourceState* state = FindLocked(resource);
  if (!state) return UnknownResource(resource);
  auto it = state->objects.find(MakeKey(ns, name));
  if (it == state->objects.end()) return UnknownObject(resource, ns, name);
  ObjectPtr previous = it->second;
  it->second = WithRevision(*previous, ++revision_);
  CommitLocked(resource, *state,
               std::make_shared<StoreEvent>(
                   StoreEvent{EventType::kModified, it->second, std::move(previous)}));
  return revision_;
}

std::size_t FakeStore::TouchKeys(const std::string& resource, const std::vector<std::string>& keys,
                                 std::size_t first, std::size_t count,
                                 std::uint64_t sent_unix_nanos) {
  std::lock_guard<std::mutex> lock(mutex_);
  ResourceState* state = FindLocked(resource);
  if (!state || keys.empty()) return 0;
  // The resource's live subscribers, looked up once for the whole batch.
  std::vector<Subscription*> subscribers;
  for (auto& [id, sub] : subscriptions_) {
    if (sub.resource == resource && !sub.ended) subscribers.push_back(&sub);
  }
  std::size_t made = 0;
  for (std::size_t i = 0; i < count; ++i) {
    auto it = state->objects.find(keys[(first + i) % keys.size()]);
    if (it == state->objects.end()) continue;
    ObjectPtr previous = it->second;
    auto next = std::make_shared<StoredObject>(*previous);
    next->resource_version = ++revision_;
    if (sent_unix_nanos != 0) next->sent_unix_nanos = sent_unix_nanos;
    it->second = std::move(next);
    auto event = std::make_shared<StoreEvent>(
        StoreEvent{EventType::kModified, it->second, std::move(previous)});
    AppendHistoryLocked(*state, event);
    for (Subscription* sub : subscribers) sub->pending.push_back(event);
    ++made;
  }
  if (made > 0) {
    for (Subscription* sub : subscribers) WakeLocked(*sub);
  }
  return made;
}

absl::StatusOr<std::uint64_t> FakeStore::Delete(const std::string& resource,
                                                const std::string& ns, const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  ResourceState* state = FindLocked(resource);
  if (!state) return UnknownResource(resource);
  auto it = state->objects.find(MakeKey(ns, name));
  if (it == state->objects.end()) return UnknownObject(resource, ns, name);
  ObjectPtr previous = it->second;
  state->objects.erase(it);
  CommitLocked(resource, *state,
               std::make_shared<StoreEvent>(StoreEvent{
                   EventType::kDeleted, WithRevision(*previous, ++revision_), previous}));
  return revision_;
}

std::uint64_t FakeStore::Compact() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [name, state] : resources_) {
    state.history.clear();
    state.compacted = revision_;
  }
  return revision_;
}

std::uint64_t FakeStore::Revision() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return revision_;
}

absl::StatusOr<ObjectPtr> FakeStore::Get(const std::string& resource, const std::string& ns,
                                         const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const ResourceState* state = FindLocked(resource);
  if (!state) return UnknownResource(resource);
  auto it = state->objects.find(MakeKey(ns, name));
  if (it == state->objects.end()) return UnknownObject(resource, ns, name);
  return it->second;
}

std::size_t FakeStore::ObjectCount(const std::string& resource) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const ResourceState* state = FindLocked(resource);
  return state ? state->objects.size() : 0;
}

absl::StatusOr<FakeStore::ListResult> FakeStore::List(const std::string& resource,
                                                      const ListRequest& request) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const ResourceState* state = FindLocked(resource);
  if (!state) return UnknownResource(resource);
  ListResult result;
  result.revision = request.at_revision.value_or(revision_);
  if (result.revision < state->compacted) {
    return absl::OutOfRangeError(
        fmt::format("too old resource version: {} ({})", result.revision, state->compacted));
  }
  if (result.revision > revision_) {
    return absl::UnavailableError(fmt::format("Too large resource version: {}, current: {}",
                                              result.revision, revision_));
  }
  // The state at an older revision: current objects, with every key changed since then put
  // back as it was (absent, for keys created since). Walking the window newest to oldest, the
  // last assignment per key is the oldest event's `previous`: the state at the revision.
  std::map<std::string, ObjectPtr> overrides;
  for (auto it = state->history.rbegin();
       it != state->history.rend() && (*it)->revision() > result.revision; ++it) {
    const StoreEvent& event = **it;
    const StoredObject& any = event.previous ? *event.previous : *event.object;
    overrides[any.Key()] = event.previous;
  }

  std::string lower = request.start_key;
  std::string upper;  // Empty: unbounded.
  if (!request.namespace_name.empty()) {
    const std::string prefix = request.namespace_name + "/";
    if (lower < prefix) lower = prefix;
    upper = request.namespace_name + "0";  // '0' follows '/': the end of the namespace's keys.
  }
  auto in_range = [&](const std::string& key) { return upper.empty() || key < upper; };
  auto cur = state->objects.lower_bound(lower);
  auto ovr = overrides.lower_bound(lower);
  const std::size_t limit = request.limit;
  std::uint64_t remaining = 0;
  while (true) {
    // The next key of the merged view.
    const bool cur_ok = cur != state->objects.end() && in_range(cur->first);
    const bool ovr_ok = ovr != overrides.end() && in_range(ovr->first);
    if (!cur_ok && !ovr_ok) break;
    ObjectPtr object;
    std::string key;
    if (ovr_ok && (!cur_ok || ovr->first <= cur->first)) {
      key = ovr->first;
      object = ovr->second;
      if (cur_ok && cur->first == key) ++cur;
      ++ovr;
    } else {
      key = cur->first;
      object = cur->second;
      ++cur;
    }
    if (!object) continue;  // Did not exist at that revision.
    if (limit > 0 && result.items.size() == limit) {
      result.more = true;  // etcd reports more keys, whether or not they will match.
      if (request.filter) break;
      ++remaining;  // Counted to the end of the range, as etcd counts.
      continue;
    }
    if (request.filter && !request.filter(*object)) continue;
    result.items.push_back(object);
    result.last_key = key;
  }
  if (result.more && !request.filter) result.remaining = remaining;
  return result;
}

absl::StatusOr<FakeStore::WatchStart> FakeStore::Subscribe(
    const std::string& resource, std::optional<std::uint64_t> after_revision) {
  std::lock_guard<std::mutex> lock(mutex_);
  const ResourceState* state = FindLocked(resource);
  if (!state) return UnknownResource(resource);
  WatchStart start;
  start.revision = revision_;
  if (after_revision) {
    if (*after_revision < state->compacted) {
      return absl::OutOfRangeError(
          fmt::format("too old resource version: {} ({})", *after_revision, state->compacted));
    }
    for (const EventPtr& event : state->history) {
      if (event->revision() > *after_revision) start.initial.push_back(event);
    }
  } else {
    start.initial.reserve(state->objects.size());
    for (const auto& [key, object] : state->objects) {
      start.initial.push_back(
          std::make_shared<StoreEvent>(StoreEvent{EventType::kAdded, object, nullptr}));
    }
  }
  start.subscription = next_subscription_++;
  subscriptions_[start.subscription].resource = resource;
  return start;
}

void FakeStore::SetWaker(std::uint64_t subscription, std::function<void()> wake) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = subscriptions_.find(subscription);
  if (it == subscriptions_.end()) return;
  it->second.wake = std::move(wake);
  if (!it->second.pending.empty() || it->second.ended) WakeLocked(it->second);
}

FakeStore::Drained FakeStore::Drain(std::uint64_t subscription) {
  std::lock_guard<std::mutex> lock(mutex_);
  Drained drained;
  drained.revision = revision_;
  auto it = subscriptions_.find(subscription);
  if (it == subscriptions_.end()) {
    drained.ended = true;
    return drained;
  }
  Subscription& sub = it->second;
  sub.wake_posted = false;
  drained.events.assign(sub.pending.begin(), sub.pending.end());
  sub.pending.clear();
  drained.ended = sub.ended;
  return drained;
}

void FakeStore::Unsubscribe(std::uint64_t subscription) {
  std::lock_guard<std::mutex> lock(mutex_);
  subscriptions_.erase(subscription);
}

void FakeStore::EndSubscriptions(const std::string& resource) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [id, sub] : subscriptions_) {
    if (sub.resource == resource && !sub.ended) {
      sub.ended = true;
      WakeLocked(sub);
    }
  }
}

}  // namespace informerd::fakeapi
