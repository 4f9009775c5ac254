#include "test/fakeapi/watch_feed.h"

#include <algorithm>
#include <optional>

#include "fmt/format.h"

namespace informerd::fakeapi {
namespace {

const char* EventPrefix(EventType type) {
  switch (type) {
    case EventType::kAdded:
      return "{\"type\":\"ADDED\",\"object\":";
    case EventType::kModified:
      return "{\"type\":\"MODIFIED\",\"object\":";
    case EventType::kDeleted:
      return "{\"type\":\"DELETED\",\"object\":";
  }
  return "";
}

void AppendEvent(BufferChain& out, EventType type, const ObjectPtr& object) {
  out.AppendCopy(EventPrefix(type));
  AppendObjectJson(out, *object, object->body);
  out.AppendCopy("}\n");
}

}  // namespace

void AppendObjectJson(BufferChain& out, const StoredObject& object,
                      const std::shared_ptr<const void>& owner) {
  const ObjectTemplate& body = *object.body;
  out.AppendShared(owner, body.head);
  out.AppendCopy(std::to_string(object.resource_version));
  if (!body.stamped() || object.sent_unix_nanos == 0) {
    out.AppendShared(owner, body.tail);
    return;
  }
  const std::string_view tail(body.tail);
  out.AppendShared(owner, tail.substr(0, body.stamp_at));
  char stamp[kSendTimeDigits];
  WriteSendTimeDigits(object.sent_unix_nanos, stamp);
  out.AppendCopy(std::string_view(stamp, sizeof(stamp)));
  out.AppendShared(owner, tail.substr(body.stamp_at + kSendTimeDigits));
}

bool WatchFilter::Matches(const StoredObject& object) const {
  if (!namespace_name.empty() && object.namespace_name != namespace_name) return false;
  if (!name.empty() && object.name != name) return false;
  if (!labels.empty() && !labels.Matches(*object.labels)) return false;
  if (!fields.empty() && !fields.Matches(object.namespace_name, object.name)) return false;
  return true;
}

WatchFeed::WatchFeed(FakeStore& store, ResourceType type, FakeStore::WatchStart start,
                     WatchFilter filter, bool initial_events_end_bookmark)
    : store_(store),
      type_(std::move(type)),
      subscription_(start.subscription),
      start_revision_(start.revision),
      filter_(std::move(filter)),
      progress_(start.revision),
      last_revision_(0) {
  for (EventPtr& event : start.initial) queue_.push_back(Item{std::move(event)});
  if (initial_events_end_bookmark) queue_.push_back(Item{nullptr});
}

WatchFeed::~WatchFeed() { store_.Unsubscribe(subscription_); }

void WatchFeed::SetWaker(std::function<void()> wake) {
  store_.SetWaker(subscription_, std::move(wake));
}

bool WatchFeed::Refill() {
  FakeStore::Drained drained = store_.Drain(subscription_);
  progress_ = std::max(progress_, drained.revision);
  ended_ = ended_ || drained.ended;
  for (EventPtr& event : drained.events) queue_.push_back(Item{std::move(event)});
  return !drained.events.empty();
}

std::size_t WatchFeed::AppendEvents(BufferChain& out, std::size_t max_events,
                                    std::size_t max_bytes) {
  std::size_t appended = 0;
  bool refilled = false;
  while (appended < max_events && out.size() < max_bytes) {
    if (queue_.empty()) {
      // One drain per call: what arrives later is the next batch's.
      if (refilled || !Refill()) break;
      refilled = true;
    }
    Item item = std::move(queue_.front());
    queue_.pop_front();
    if (!item.event) {
      AppendBookmark(out, start_revision_, true);
      continue;
    }
    const StoreEvent& event = *item.event;
    const bool now_matches = filter_.Matches(*event.object);
    const bool matched_before = event.previous && filter_.Matches(*event.previous);
    std::optional<EventType> type;
    ObjectPtr object = event.object;
    switch (event.type) {
      case EventType::kAdded:
        if (now_matches) type = EventType::kAdded;
        break;
      case EventType::kDeleted:
        if (now_matches) type = EventType::kDeleted;
        break;
      case EventType::kModified:
        if (now_matches && matched_before) {
          type = EventType::kModified;
        } else if (now_matches) {
          type = EventType::kAdded;
        } else if (matched_before) {
          // Stopped matching: DELETED carrying the last matching state at this revision.
          type = EventType::kDeleted;
          auto copy = std::make_shared<StoredObject>(*event.previous);
          copy->resource_version = event.revision();
          object = std::move(copy);
        }
        break;
    }
    // Snapshot ADDED events carry the objects' own (older) RVs; never step backwards.
    last_revision_ = std::max(last_revision_, event.revision());
    if (!type) continue;
    AppendEvent(out, *type, object);
    ++appended;
  }
  return appended;
}

bool WatchFeed::AppendBookmarkIfIdle(BufferChain& out) {
  if (!queue_.empty()) return false;
  if (Refill()) return false;
  AppendBookmark(out, std::max(progress_, last_revision_), false);
  return true;
}

void WatchFeed::AppendBookmark(BufferChain& out, std::uint64_t revision,
                               bool initial_events_end) const {
  // What the apiserver sends: an empty object of the kind with only metadata.resourceVersion
  // (Pods also show their zero-valued spec and status, as Go serializes them).
  std::string metadata = fmt::format("{{\"resourceVersion\":\"{}\",\"creationTimestamp\":null",
                                     revision);
  if (initial_events_end) metadata += ",\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}";
  metadata += "}";
  const bool pod = type_.group.empty() && type_.plural == "pods";
  out.AppendCopy(fmt::format(
      "{{\"type\":\"BOOKMARK\",\"object\":{{\"kind\":\"{}\",\"apiVersion\":\"{}\","
      "\"metadata\":{}{}}}}}\n",
      type_.kind, type_.GroupVersion(), metadata,
      pod ? ",\"spec\":{\"containers\":null},\"status\":{}" : ""));
}

std::string EncodeEventLine(EventType type, const StoredObject& object) {
  return fmt::format("{}{}}}\n", EventPrefix(type), object.Json());
}

std::string EncodeErrorEventLine(const ApiStatus& status) {
  return fmt::format("{{\"type\":\"ERROR\",\"object\":{}}}\n", status.ToJson());
}

std::string SyntheticEventLine(const ResourceType& type, EventType event_type,
                               std::uint64_t revision, std::size_t object_bytes) {
  ObjectIdentity identity{type.namespaced ? "default" : "",
                          object_bytes > 0 ? "huge-object" : "fault-payload",
                          "0f0f0f0f-0000-4000-8000-0000000000ff", NowRfc3339()};
  BuiltObject built;
  if (object_bytes > 0) {
    built = BuildHugeObject(type, identity, object_bytes);
  } else {
    auto regular = BuildObject(type, identity, ObjectSpec{});
    built = std::move(*regular);  // No overlay JSON: cannot fail.
  }
  StoredObject object;
  object.namespace_name = identity.namespace_name;
  object.name = identity.name;
  object.uid = identity.uid;
  object.labels = std::make_shared<const Labels>();
  object.resource_version = revision;
  object.body = std::move(built.body);
  return EncodeEventLine(event_type, object);
}

}  // namespace informerd::fakeapi
