// Specification of core/reflector.* as a whole: plugged into a toy in-memory apiserver (no
// sockets), through a long random run of changes, compactions, disconnects, throttling and a
// resource that disappears and comes back, the sink ends up holding exactly the server's state
// at the server's resource version, and the sink's protocol is never broken on the way.
//
// The toy keeps every change (a numbered history, as etcd revisions) and answers as the
// apiserver does: LIST at RV "0" from its "watch cache" (ignoring limit, unless it plays a
// server without one), at "" consistently with continue tokens bound to a revision, at RV X
// not-older-than (or exactly X when a limit is given: the legacy rule client-go works around);
// 410 for continue tokens and exact reads behind the compaction point; 504 "Too large resource
// version" ahead of the head; WATCH from X replays the history after X, or 410 (as an HTTP
// status or as an ERROR event) behind the compaction point; WatchList streams the current
// state, then the initial-events-end bookmark, or is rejected with 422 like an old server.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "core/reflector.h"
#include "test/common/fake_clock.h"
#include "test/common/recording_sink.h"

namespace informerd::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

KubeStatus Failure(int32_t code, const std::string& reason, const std::string& message) {
  KubeStatus status;
  status.code = code;
  status.status = "Failure";
  status.reason = reason;
  status.message = message;
  return status;
}

class ToyApiServer {
 public:
  struct Change {
    uint64_t revision;
    WatchEventType type;
    ObjectRecord object;
  };
  struct OpenedWatch {
    std::optional<ApiError> error;   // the request was refused
    bool expired_on_stream = false;  // 200, then an ERROR 410 event
    uint64_t cursor = 0;             // events after this revision follow
    std::deque<WatchEvent> initial;  // WatchList: current state, then the end bookmark
  };

  ToyApiServer(bool watch_list_supported, bool paginate_at_zero)
      : watch_list_supported_(watch_list_supported), paginate_at_zero_(paginate_at_zero) {}

  uint64_t revision() const { return revision_; }
  const std::map<std::string, ObjectRecord>& objects() const { return objects_; }
  bool served() const { return served_; }
  void set_served(bool served) { served_ = served; }
  // etcd compaction: nothing at or before the current revision can be read exactly any more.
  void Compact() { compacted_ = revision_; }

  // One create, update or delete of one of a dozen names (a deleted name may come back with a
  // new UID).
  void Mutate(std::mt19937_64& rng) {
    const std::string name = fmt::format("obj-{}", rng() % 12);
    const std::string key = "sim/" + name;
    ++revision_;
    auto it = objects_.find(key);
    Change change{revision_, WatchEventType::kAdded, {}};
    if (it == objects_.end()) {
      change.object.uid = fmt::format("{}-uid-{}", name, revision_);
    } else {
      change.type = rng() % 3 == 0 ? WatchEventType::kDeleted : WatchEventType::kModified;
      change.object = it->second;
    }
    change.object.namespace_name = "sim";
    change.object.name = name;
    change.object.resource_version = std::to_string(revision_);
    change.object.json = fmt::format(R"({{"name":"{}","rv":{}}})", name, revision_);
    if (change.type == WatchEventType::kDeleted) {
      objects_.erase(key);
    } else {
      objects_[key] = change.object;
    }
    history_.push_back(change);
  }

  std::variant<ListPage, ApiError> List(const ListParams& params) const {
    if (!served_) return NotFound();
    uint64_t at = revision_;
    std::size_t offset = 0;
    int64_t limit = params.limit;
    if (!params.continue_token.empty()) {
      const std::size_t colon = params.continue_token.find(':');
      at = std::stoull(params.continue_token.substr(0, colon));
      offset = std::stoull(params.continue_token.substr(colon + 1));
      if (at < compacted_) {
        return ApiError::Http(410, Failure(410, "Expired",
                                           "The provided continue parameter is too old to "
                                           "display a consistent list result."));
      }
    } else if (params.resource_version == "0") {
      if (!paginate_at_zero_) limit = 0;  // the watch cache ignores limit at RV 0
    } else if (!params.resource_version.empty()) {
      const uint64_t rv = std::stoull(params.resource_version);
      if (rv > revision_) return TooLarge(rv);
      if (limit > 0) {
        // resourceVersion=X with a limit and no resourceVersionMatch reads exactly at X.
        if (rv < compacted_) return Expired(rv);
        at = rv;
      }
    }
    const std::map<std::string, ObjectRecord> state = StateAt(at);
    ListPage page;
    page.metadata.resource_version = std::to_string(at);
    auto it = state.begin();
    std::advance(it, std::min(offset, state.size()));
    for (; it != state.end(); ++it) {
      if (limit > 0 && static_cast<int64_t>(page.items.size()) == limit) {
        page.metadata.continue_token = fmt::format("{}:{}", at, offset + page.items.size());
        break;
      }
      page.items.push_back(it->second);
    }
    return page;
  }

  OpenedWatch Watch(const WatchParams& params, std::mt19937_64& rng) const {
    OpenedWatch opened;
    if (!served_) {
      opened.error = NotFound();
      return opened;
    }
    if (params.send_initial_events) {
      if (!watch_list_supported_) {
        opened.error = ApiError::Http(
            422, Failure(422, "Invalid",
                         "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: "
                         "Forbidden: resourceVersionMatch is forbidden for watch"));
        return opened;
      }
      if (!params.resource_version.empty() && std::stoull(params.resource_version) > revision_) {
        opened.error = TooLarge(std::stoull(params.resource_version));
        return opened;
      }
      for (const auto& [key, object] : objects_) {
        WatchEvent event;
        event.type = WatchEventType::kAdded;
        event.object = object;
        opened.initial.push_back(std::move(event));
      }
      WatchEvent end;
      end.type = WatchEventType::kBookmark;
      end.resource_version = std::to_string(revision_);
      end.initial_events_end = true;
      opened.initial.push_back(std::move(end));
      opened.cursor = revision_;
      return opened;
    }
    const uint64_t rv = std::stoull(params.resource_version);
    if (rv > revision_) {
      opened.error = TooLarge(rv);
    } else if (rv < compacted_) {
      // The apiserver says it both ways: the cacher with an ERROR event, etcd with HTTP 410.
      if (rng() % 2 == 0) {
        opened.error = Expired(rv);
      } else {
        opened.expired_on_stream = true;
      }
    }
    opened.cursor = rv;
    return opened;
  }

  // Up to `max` events after `cursor`, as the watch would send them.
  std::vector<WatchEvent> EventsAfter(uint64_t cursor, std::size_t max) const {
    std::vector<WatchEvent> events;
    // The first change has revision 2 and sits at index 0.
    for (uint64_t rev = cursor + 1; rev <= revision_ && events.size() < max; ++rev) {
      const Change& change = history_[rev - 2];
      WatchEvent event;
      event.type = change.type;
      event.object = change.object;
      events.push_back(std::move(event));
    }
    return events;
  }

 private:
  std::map<std::string, ObjectRecord> StateAt(uint64_t at) const {
    std::map<std::string, ObjectRecord> state;
    for (const Change& change : history_) {
      if (change.revision > at) break;
      const std::string key = "sim/" + change.object.name;
      if (change.type == WatchEventType::kDeleted) {
        state.erase(key);
      } else {
        state[key] = change.object;
      }
    }
    return state;
  }

  static ApiError NotFound() {
    return ApiError::Http(
        404, Failure(404, "NotFound", "the server could not find the requested resource"));
  }
  ApiError TooLarge(uint64_t rv) const {
    return ApiError::Http(
        504, Failure(504, "Timeout",
                     fmt::format("Too large resource version: {}, current: {}", rv, revision_)));
  }
  ApiError Expired(uint64_t rv) const {
    return ApiError::Http(
        410,
        Failure(410, "Expired", fmt::format("too old resource version: {} ({})", rv, compacted_)));
  }

  bool watch_list_supported_;
  bool paginate_at_zero_;
  bool served_ = true;
  uint64_t revision_ = 1;
  uint64_t compacted_ = 0;
  std::map<std::string, ObjectRecord> objects_;
  std::vector<Change> history_;
};

enum class Mode { kList, kWatchList, kWatchListRejected };

std::string Diff(const std::map<std::string, ObjectRecord>& sink,
                 const std::map<std::string, ObjectRecord>& server) {
  std::string diff;
  for (const auto& [key, object] : sink) {
    auto it = server.find(key);
    if (it == server.end()) {
      diff += fmt::format(" {}@{}:not-on-server", key, object.resource_version);
    } else if (it->second != object) {
      diff += fmt::format(" {}@{}:server-has@{}", key, object.resource_version,
                          it->second.resource_version);
    }
  }
  for (const auto& [key, object] : server) {
    if (!sink.count(key)) diff += fmt::format(" {}@{}:not-in-sink", key, object.resource_version);
  }
  return diff.empty() ? " none" : diff;
}

struct Totals {
  std::array<uint64_t, kRelistReasonCount> relists{};
  uint64_t watch_restarts = 0;
  uint64_t converged = 0;
  uint64_t still_watch_list = 0;
};

// Drives one reflector against one toy server: the daemon's role, with faults injected while
// `chaos` is on.
class Simulation {
 public:
  Simulation(uint64_t seed, Mode mode)
      : rng_(seed),
        random_(seed * 7919 + 1),
        sink_(/*record_calls=*/false),
        server_(mode == Mode::kWatchList, /*paginate_at_zero=*/seed % 2 == 0),
        reflector_(Options(mode), sink_, clock_, random_) {}

  void Run(int chaos_steps, int max_drain_steps, Totals& totals) {
    for (int i = 0; i < 8; ++i) server_.Mutate(rng_);
    ReflectorAction action = reflector_.Start();
    for (int step = 0; step < chaos_steps; ++step) action = Step(action, /*chaos=*/true);

    // Quiet: the resource is served, nothing changes, nothing fails. The reflector must catch
    // up and settle on a watch at the head.
    server_.set_served(true);
    bool converged = false;
    for (int step = 0; step < max_drain_steps && !converged; ++step) {
      action = Step(action, /*chaos=*/false);
      converged = std::holds_alternative<IdleAction>(action) && watch_ && watch_->initial.empty() &&
                  !watch_->expired_on_stream && watch_->cursor == server_.revision() &&
                  reflector_.state() == ReflectorState::kWatching;
    }
    INFO("last action: " << DescribeAction(action));
    REQUIRE(converged);
    for (const std::string& violation : sink_.violations()) FAIL_CHECK(violation);
    INFO("differences (sink vs server): " << Diff(sink_.objects(), server_.objects()));
    CHECK(sink_.objects() == server_.objects());
    CHECK(sink_.synced());
    CHECK(sink_.resource_version() == std::to_string(server_.revision()));
    CHECK(reflector_.resource_version() == std::to_string(server_.revision()));

    for (std::size_t i = 0; i < kRelistReasonCount; ++i)
      totals.relists[i] += reflector_.status().relists[i];
    totals.watch_restarts += reflector_.watch_restarts();
    if (reflector_.using_watch_list()) ++totals.still_watch_list;
    ++totals.converged;
  }

 private:
  struct OpenWatch {
    uint64_t cursor = 0;
    std::deque<WatchEvent> initial;
    bool expired_on_stream = false;
    bool received = false;
  };

  static ReflectorOptions Options(Mode mode) {
    ReflectorOptions options;
    options.page_size = 3;  // a dozen objects make several pages
    options.use_watch_list = mode != Mode::kList;
    return options;
  }

  bool Chance(int percent) { return static_cast<int>(rng_() % 100) < percent; }

  // Background activity on the server while the reflector is busy elsewhere.
  void Disturb(bool chaos, int mutate_percent, int compact_percent) {
    if (!chaos) return;
    while (Chance(mutate_percent)) server_.Mutate(rng_);
    if (Chance(compact_percent)) server_.Compact();
    if (server_.served() ? Chance(1) : Chance(25)) server_.set_served(!server_.served());
  }

  ReflectorAction Step(const ReflectorAction& action, bool chaos) {
    if (const auto* list = std::get_if<ListAction>(&action)) {
      watch_.reset();
      Disturb(chaos, 30, 5);
      if (chaos && Chance(3))
        return reflector_.OnListFailed(ApiError::Transport("connection reset by peer"));
      auto result = server_.List(list->params);
      if (auto* page = std::get_if<ListPage>(&result))
        return reflector_.OnListPage(std::move(*page));
      return reflector_.OnListFailed(std::get<ApiError>(result));
    }
    if (const auto* watch = std::get_if<WatchAction>(&action)) {
      watch_.reset();
      Disturb(chaos, 30, 5);
      if (chaos && Chance(3)) {
        return reflector_.OnWatchEnded(ApiError::Transport("connect: connection refused"), false);
      }
      if (chaos && Chance(2)) {
        return reflector_.OnWatchEnded(
            ApiError::Http(429, Failure(429, "TooManyRequests", "too many requests"), seconds(2)),
            false);
      }
      ToyApiServer::OpenedWatch opened = server_.Watch(watch->params, rng_);
      if (opened.error) return reflector_.OnWatchEnded(*opened.error, false);
      watch_ = OpenWatch{opened.cursor, std::move(opened.initial), opened.expired_on_stream, false};
      return reflector_.OnWatchStarted();
    }
    if (const auto* wait = std::get_if<WaitAction>(&action)) {
      watch_.reset();
      // Time passes with the reflector away: the likeliest moment for its RV to be compacted.
      Disturb(chaos, 60, 30);
      clock_.Advance(wait->duration);
      return reflector_.OnTimer();
    }
    if (std::holds_alternative<IdleAction>(action)) {
      REQUIRE(watch_);  // Idle only ever means "carry on with the open watch"
      return StepWatch(chaos);
    }
    FAIL("the reflector stopped: " << DescribeAction(action));
    return action;
  }

  ReflectorAction StepWatch(bool chaos) {
    if (watch_->expired_on_stream) {
      WatchEvent error;
      error.type = WatchEventType::kError;
      error.status = Failure(410, rng_() % 2 ? "Expired" : "Gone", "too old resource version");
      watch_.reset();
      std::vector<WatchEvent> events;
      events.push_back(std::move(error));
      return reflector_.OnWatchEvents(std::move(events));
    }
    if (chaos) {
      if (!server_.served()) {
        // The resource went away: the server closes its watches at once.
        const bool received = watch_->received;
        watch_.reset();
        clock_.Advance(milliseconds(100));
        return reflector_.OnWatchEnded(std::nullopt, received);
      }
      // The watch's timeoutSeconds (5 to 10 minutes) ran out; never during a WatchList's
      // initial burst, which takes moments.
      if (watch_->initial.empty() && Chance(5)) {
        const bool received = watch_->received;
        watch_.reset();
        clock_.Advance(seconds(400));
        return reflector_.OnWatchEnded(std::nullopt, received);
      }
      if (Chance(3)) {
        const bool received = watch_->received;
        watch_.reset();
        return reflector_.OnWatchEnded(ApiError::Transport("connection reset by peer"), received);
      }
      Disturb(chaos, 40, 3);
    }

    // Deliver what the stream has next, in a batch of random size.
    std::vector<WatchEvent> batch;
    const std::size_t max = 1 + rng_() % 6;
    while (!watch_->initial.empty() && batch.size() < max) {
      batch.push_back(std::move(watch_->initial.front()));
      watch_->initial.pop_front();
    }
    if (watch_->initial.empty() && batch.size() < max) {
      std::vector<WatchEvent> live = server_.EventsAfter(watch_->cursor, max - batch.size());
      for (WatchEvent& event : live) {
        watch_->cursor = std::stoull(event.object.resource_version.str());
        batch.push_back(std::move(event));
      }
      if (watch_->cursor == server_.revision() && Chance(25)) {
        WatchEvent bookmark;
        bookmark.type = WatchEventType::kBookmark;
        bookmark.resource_version = std::to_string(server_.revision());
        batch.push_back(std::move(bookmark));
      }
    }
    if (batch.empty()) return IdleAction{};
    watch_->received = true;
    return reflector_.OnWatchEvents(std::move(batch));
  }

  std::mt19937_64 rng_;
  FakeClock clock_;
  SeededRandomSource random_;
  RecordingSink sink_;
  ToyApiServer server_;
  Reflector reflector_;
  std::optional<OpenWatch> watch_;
};

uint64_t Count(const Totals& totals, RelistReason reason) {
  return totals.relists[static_cast<std::size_t>(reason)];
}

TEST_CASE(
    "through random changes, compactions, disconnects and a vanishing resource, LIST "
    "mode ends with the sink equal to the server") {
  Totals totals;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    INFO("seed " << seed);
    Simulation(seed, Mode::kList).Run(/*chaos_steps=*/1500, /*max_drain_steps=*/2000, totals);
  }
  CHECK(totals.converged == 40);
  // The run went through the paths it is meant to exercise.
  CHECK(Count(totals, RelistReason::kExpired) > 0);
  CHECK(Count(totals, RelistReason::kListError) > 0);
  CHECK(Count(totals, RelistReason::kWatchError) > 0);
  CHECK(Count(totals, RelistReason::kRediscovery) > 0);
  CHECK(totals.watch_restarts > 0);
}

TEST_CASE("the same run in WatchList mode ends with the sink equal to the server") {
  Totals totals;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    INFO("seed " << seed);
    Simulation(seed, Mode::kWatchList).Run(1500, 2000, totals);
  }
  CHECK(totals.converged == 40);
  CHECK(Count(totals, RelistReason::kExpired) > 0);
  CHECK(Count(totals, RelistReason::kRediscovery) > 0);
  // The resource vanishing mid-stream can end an initial burst early, which makes a reflector
  // give WatchList up; most must still be using it at the end.
  CHECK(totals.still_watch_list > 20);
}

TEST_CASE(
    "the same run against a server that rejects WatchList falls back to LIST and ends "
    "with the sink equal to the server") {
  Totals totals;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    INFO("seed " << seed);
    Simulation(seed, Mode::kWatchListRejected).Run(1500, 2000, totals);
  }
  CHECK(totals.converged == 20);
  // Once per reflector: the fallback is for good.
  CHECK(Count(totals, RelistReason::kWatchListFallback) == 20);
}

}  // namespace
}  // namespace informerd::core
