// RecordingSink: a ReflectorSink for tests. It records every call as one readable line (so a
// test states the exact sequence the reflector must produce), keeps the state the calls imply
// (the contract of core/reflector_sink.h, applied to a plain map), and notes every call that
// breaks the sink's protocol, such as items outside BeginList/EndList or a watch event that does
// not move the resource version forward. Single-threaded.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/object_record.h"
#include "core/reflector_sink.h"
#include "core/watch_event_decoder.h"

namespace informerd::core {

class RecordingSink final : public ReflectorSink {
 public:
  // `record_calls` false keeps only state and violations (for long simulations).
  explicit RecordingSink(bool record_calls = true) : record_calls_(record_calls) {}

  void BeginList() override {
    Record("BeginList");
    if (in_list_) Violation("BeginList inside a list");
    in_list_ = true;
    listed_.clear();
  }

  void ListItems(std::vector<ObjectRecord> items, const std::string& list_rv) override {
    std::string names;
    for (const ObjectRecord& item : items) names += (names.empty() ? "" : ",") + item.name;
    Record(fmt::format("ListItems({}; rv={})", names, list_rv));
    if (!in_list_) Violation("ListItems outside a list");
    for (ObjectRecord& item : items) {
      std::string key = Key(item);
      listed_.insert(key);
      objects_[key] = std::move(item);
    }
  }

  void EndList(const std::string& rv) override {
    Record(fmt::format("EndList({})", rv));
    if (!in_list_) Violation("EndList outside a list");
    for (auto it = objects_.begin(); it != objects_.end();) {
      it = listed_.count(it->first) ? std::next(it) : objects_.erase(it);
    }
    in_list_ = false;
    synced_ = true;
    rv_ = rv;
  }

  void AbortList() override {
    Record("AbortList");
    if (!in_list_) Violation("AbortList outside a list");
    in_list_ = false;
  }

  void ApplyWatchEvent(WatchEvent event) override {
    if (event.type == WatchEventType::kBookmark) {
      Record(fmt::format("BOOKMARK {}", event.resource_version));
      if (Number(event.resource_version) < Number(rv_)) Violation("bookmark moves the RV back");
      rv_ = event.resource_version;
    } else {
      Record(fmt::format("{} {}@{}", WatchEventTypeName(event.type), event.object.name,
                         event.object.resource_version));
      if (Number(event.object.resource_version) <= Number(rv_)) {
        Violation(fmt::format("event at RV {} not after the sink's RV {}",
                              event.object.resource_version, rv_));
      }
      rv_ = event.object.resource_version;
      if (event.type == WatchEventType::kError) Violation("ERROR event reached the sink");
      if (event.type == WatchEventType::kDeleted) {
        objects_.erase(Key(event.object));
      } else {
        objects_[Key(event.object)] = std::move(event.object);
      }
    }
    if (in_list_) Violation("watch event inside a list");
  }

  void MarkUnsynced(const std::string& reason) override {
    Record(fmt::format("MarkUnsynced({})", reason));
    synced_ = false;
  }

  // Every call so far, one line each, and forgets them (so a test can check step by step).
  std::vector<std::string> TakeCalls() {
    std::vector<std::string> calls = std::move(calls_);
    calls_.clear();
    return calls;
  }
  const std::vector<std::string>& violations() const { return violations_; }

  // The state the calls imply, keyed "namespace/name".
  const std::map<std::string, ObjectRecord>& objects() const { return objects_; }
  const std::string& resource_version() const { return rv_; }
  bool synced() const { return synced_; }
  bool in_list() const { return in_list_; }

  static std::string Key(const ObjectRecord& object) {
    return object.namespace_name + "/" + object.name;
  }

 private:
  void Record(std::string call) {
    if (record_calls_) calls_.push_back(std::move(call));
  }
  void Violation(std::string what) { violations_.push_back(std::move(what)); }
  // RVs as the watch cache orders them (docs/kubernetes-semantics.md, "Resource versions"):
  // unsigned integers; "" sorts first.
  static uint64_t Number(std::string_view rv) {
    return rv.empty() ? 0 : std::stoull(std::string(rv));
  }

  bool record_calls_;
  std::vector<std::string> calls_;
  std::vector<std::string> violations_;
  std::map<std::string, ObjectRecord> objects_;
  std::set<std::string> listed_;
  std::string rv_;
  bool in_list_ = false;
  bool synced_ = false;
};

}  // namespace informerd::core
