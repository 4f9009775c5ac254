// ExpiringCache: a bounded map whose entries expire, for the decisions informerd asks the
// apiserver for (TokenReview results by token hash, SubjectAccessReview decisions by user and
// attributes). Bounded so that a client sending a stream of distinct invalid tokens costs a fixed
// amount of memory: past `max_entries`, the least recently used entry goes.
//
// Threads: every member may be called from any thread (one mutex). Time comes from the Clock
// passed in (core/clock.h), which must outlive the cache.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

#include "core/clock.h"

namespace informerd::core {

template <typename Key, typename Value, typename Hash = std::hash<Key>>
class ExpiringCache {
 public:
  ExpiringCache(const Clock& clock, std::size_t max_entries)
      : clock_(clock), max_entries_(max_entries == 0 ? 1 : max_entries) {}

  // The value stored under `key`, unless absent or expired (an expired entry is removed).
  std::optional<Value> Get(const Key& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto found = index_.find(key);
    if (found == index_.end()) return std::nullopt;
    if (clock_.Now() >= found->second->expires) {
      entries_.erase(found->second);
      index_.erase(found);
      return std::nullopt;
    }
    entries_.splice(entries_.begin(), entries_, found->second);
    return found->second->value;
  }

  // Stores `value` under `key` for `ttl` (replacing any entry). A ttl <= 0 stores nothing and
  // drops any entry under `key`: the newest answer for a key, even one not to be cached (a
  // denial with caching of denials turned off), never leaves an older one in force.
  void Put(const Key& key, Value value, std::chrono::nanoseconds ttl) {
    std::lock_guard<std::mutex> lock(mu_);
    if (ttl <= std::chrono::nanoseconds::zero()) {
      if (auto found = index_.find(key); found != index_.end()) {
        entries_.erase(found->second);
        index_.erase(found);
      }
      return;
    }
    const Clock::TimePoint expires = clock_.Now() + ttl;
    auto found = index_.find(key);
    if (found != index_.end()) {
      found->second->value = std::move(value);
      found->second->expires = expires;
      entries_.splice(entries_.begin(), entries_, found->second);
      return;
    }
    entries_.push_front(Entry{key, std::move(value), expires});
    index_.emplace(key, entries_.begin());
    while (index_.size() > max_entries_) {
      index_.erase(entries_.back().key);
      entries_.pop_back();
      ++evictions_;
    }
  }

  std::size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return index_.size();
  }
  // Entries dropped to stay within max_entries.
  std::size_t evictions() const {
    std::lock_guard<std::mutex> lock(mu_);
    return evictions_;
  }

 private:
  struct Entry {
    Key key;
    Value value;
    Clock::TimePoint expires;
  };

  const Clock& clock_;
  const std::size_t max_entries_;
  mutable std::mutex mu_;
  std::list<Entry> entries_;  // most recently used first
  std::unordered_map<Key, typename std::list<Entry>::iterator, Hash> index_;
  std::size_t evictions_ = 0;
};

}  // namespace informerd::core
