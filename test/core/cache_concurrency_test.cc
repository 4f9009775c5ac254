// core/cache.* under concurrency: the reflector's thread applies a long random history (live
// events, bookmarks, relists) while consumer threads subscribe, read, disconnect, fall behind and
// resume, a reader thread lists, and a stall checker ends (dropping their queues) the dawdlers
// it finds with items waiting, as the daemon's timer does. Every subscriber must see a stream
// without a gap or a duplicate, ending in exactly the cache's final state under its filter; every
// (event, delivered type) must be encoded once. Run under --config=tsan to check the locking.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/cache.h"
#include "core/clock.h"
#include "core/object_filter.h"
#include "core/resource_version.h"
#include "fmt/format.h"
#include "test/common/cache_test_support.h"

namespace informerd::core {
namespace {

using testing::MakeObject;
using testing::StreamState;

const char* const kSelectors[] = {"", "app=web", "app=db", "tier=fe", "app in (web,db),tier"};

struct Consumer {
  Consumer(uint64_t seed, std::string labels, bool slow)
      : rng(seed), labels(std::move(labels)), slow(slow) {}

  std::mt19937_64 rng;
  std::string labels;
  // A slow consumer has a small queue and dawdles: it falls behind and resumes.
  bool slow;
  std::shared_ptr<Subscription> subscription;
  StreamState state;
  std::vector<std::string> errors;
  int snapshots = 0;
  int resumes = 0;
  int fell_behind = 0;
  uint64_t received = 0;
  uint64_t next_disconnect = 200;
  // (event, delivered type) pairs this consumer encoded, holding the events so that addresses
  // are not reused.
  std::set<std::pair<std::shared_ptr<const CacheEvent>, EventType>> encoded;

  // on_ready wakes the consumer thread.
  std::mutex mu;
  std::condition_variable ready;
  bool signaled = false;
};

class Applier {
 public:
  explicit Applier(Cache& cache) : cache_(cache), rng_(7) {}

  void Relist(bool watch_list) {
    cache_.BeginList();
    std::vector<ObjectRecord> page;
    for (const auto& [key, object] : upstream_) {
      page.push_back(object);
      if (page.size() == 7) {
        cache_.ListItems(std::move(page), watch_list ? "" : std::to_string(rv_));
        page.clear();
      }
    }
    cache_.ListItems(std::move(page), watch_list ? "" : std::to_string(rv_));
    cache_.EndList(std::to_string(rv_));
  }

  void Change(bool tell) {
    const std::string ns = fmt::format("ns{}", Pick(4));
    const std::string name = fmt::format("p{}", Pick(25));
    const std::string key = ns + "/" + name;
    ++rv_;
    const auto it = upstream_.find(key);
    if (it != upstream_.end() && Pick(5) == 0) {
      ObjectRecord last = it->second;
      last.resource_version = std::to_string(rv_);
      upstream_.erase(it);
      if (tell) cache_.ApplyWatchEvent(testing::Deleted(std::move(last)));
      return;
    }
    std::string uid = it == upstream_.end() ? fmt::format("uid-{}", rv_) : it->second.uid.str();
    if (it != upstream_.end() && Pick(10) == 0) {
      // Deleted and re-created; the watch reports only the new object. The deletion took a
      // version of its own.
      uid = fmt::format("uid-{}", ++rv_);
    }
    LabelSet labels{{"app", Pick(2) ? "web" : "db"}};
    if (Pick(2)) labels = LabelSet{{"app", Pick(2) ? "web" : "db"}, {"tier", "fe"}};
    ObjectRecord object = MakeObject(ns, name, uid, rv_, labels);
    const bool existed = it != upstream_.end();
    upstream_[key] = object;
    if (tell) {
      cache_.ApplyWatchEvent(existed ? testing::Modified(std::move(object))
                                     : testing::Added(std::move(object)));
    }
  }

  void Run(int events) {
    for (int i = 0; i < 60; ++i) Change(false);
    Relist(false);
    for (int i = 0; i < events; ++i) {
      const uint64_t dice = Pick(1000);
      if (dice < 3) {
        for (int j = 0; j < 10; ++j) Change(false);  // missed while the watch was down
        Relist(Pick(2) == 0);
      } else if (dice < 30) {
        cache_.ApplyWatchEvent(testing::Bookmark(++rv_));
      } else {
        Change(true);
      }
    }
  }

 private:
  uint64_t Pick(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }

  Cache& cache_;
  std::mt19937_64 rng_;
  std::map<std::string, ObjectRecord> upstream_;
  uint64_t rv_ = 1000;
};

SubscribeOptions OptionsFor(Consumer& consumer, std::string resource_version) {
  SubscribeOptions options;
  options.label_selector = *LabelSelector::Parse(consumer.labels);
  options.resource_version = std::move(resource_version);
  options.allow_bookmarks = true;
  options.queue_capacity = consumer.slow ? 8 : 64;
  // A slow consumer has no stall budget: it is ended by the second event pushed over its capacity
  // without a pop in between, which its dawdling makes frequent. The others get the default
  // budget, and keep their subscriptions through bursts unless they reach the hard limit.
  if (consumer.slow) {
    options.stall_budget = std::chrono::steady_clock::duration::zero();
    options.head_start_stall_budget = std::chrono::steady_clock::duration::zero();
  }
  options.on_ready = [&consumer] {
    std::lock_guard<std::mutex> lock(consumer.mu);
    consumer.signaled = true;
    consumer.ready.notify_one();
  };
  return options;
}

void Connect(Cache& cache, Consumer& consumer) {
  if (!consumer.state.resume_from().empty()) {
    auto resumed = cache.Subscribe(OptionsFor(consumer, consumer.state.resume_from()));
    if (resumed.ok()) {
      consumer.subscription = *resumed;
      consumer.state.ResumedFrom(consumer.state.resume_from());
      ++consumer.resumes;
      return;
    }
    if (resumed.status().code() != absl::StatusCode::kOutOfRange) {
      consumer.errors.push_back(std::string(resumed.status().message()));
    }
  }
  consumer.state.Reset();
  auto fresh = cache.Subscribe(OptionsFor(consumer, ""));
  if (!fresh.ok()) {
    consumer.errors.push_back(std::string(fresh.status().message()));
    return;
  }
  consumer.subscription = *fresh;
  ++consumer.snapshots;
}

// Pops what is there; returns false when the subscription has ended.
bool Consume(Consumer& consumer, const CacheEvent::Encoder& encode) {
  while (std::optional<Delivery> delivery = consumer.subscription->TryPop()) {
    delivery->Encoded(encode);
    consumer.encoded.emplace(delivery->event, delivery->type);
    if (std::optional<std::string> error = consumer.state.Apply(*delivery)) {
      consumer.errors.push_back(*error);
    }
    ++consumer.received;
  }
  if (std::optional<absl::Status> status = consumer.subscription->FinalStatus()) {
    if (status->code() != absl::StatusCode::kResourceExhausted &&
        status->code() != absl::StatusCode::kOutOfRange) {
      consumer.errors.push_back(std::string(status->message()));
    }
    ++consumer.fell_behind;
    return false;
  }
  return true;
}

TEST_CASE("concurrent subscribers see gap-free, duplicate-free streams while events apply") {
  SteadyClock clock;
  std::shared_ptr<Cache> cache = Cache::Create(CacheOptions(), clock);
  Applier applier(*cache);
  std::atomic<bool> done{false};
  std::atomic<uint64_t> encoder_calls{0};
  // Called concurrently from every consumer thread (std::function's const call is thread-safe).
  const CacheEvent::Encoder encode = [&encoder_calls](const CacheEvent& event,
                                                      EventType delivered) {
    encoder_calls.fetch_add(1);
    return std::string(EventTypeName(delivered)) + event.resource_version();
  };

  std::vector<std::unique_ptr<Consumer>> consumers;
  for (int i = 0; i < 6; ++i) {
    consumers.push_back(std::make_unique<Consumer>(100 + i, kSelectors[i % 5], i % 3 == 0));
  }
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    applier.Run(6000);
    done = true;
  });
  for (auto& each : consumers) {
    Consumer* consumer = each.get();
    threads.emplace_back([&, consumer] {
      // Join at different moments.
      std::this_thread::sleep_for(std::chrono::microseconds(consumer->rng() % 2000));
      Connect(*cache, *consumer);
      while (!done && consumer->subscription) {
        {
          std::unique_lock<std::mutex> lock(consumer->mu);
          consumer->ready.wait_for(lock, std::chrono::milliseconds(1),
                                   [&] { return consumer->signaled; });
          consumer->signaled = false;
        }
        if (consumer->slow) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        if (!Consume(*consumer, encode)) {
          Connect(*cache, *consumer);
        } else if (consumer->received >= consumer->next_disconnect) {
          // Disconnect and come back from where we were.
          consumer->next_disconnect = consumer->received + 100 + consumer->rng() % 300;
          consumer->subscription->Close();
          Connect(*cache, *consumer);
        }
      }
    });
  }
  // The daemon's stall check (Cache::CheckStalled), far more often than the daemon runs it: it
  // ends the slow consumers (no stall budget) that dawdle with items waiting and drops their
  // queues, concurrently with the applier and the consumers.
  std::atomic<int> stall_checks{0};
  threads.emplace_back([&] {
    while (!done) {
      cache->CheckStalled();
      ++stall_checks;
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  });
  // What the reader found wrong (read after the threads are joined).
  std::vector<std::string> reader_failures;
  int reads = 0;
  threads.emplace_back([&] {
    // Readers share the lock with each other, never with the applier. Each read is one
    // consistent snapshot; between reads the applier moves on, so what is compared across reads
    // is bounded by what it can have done in between (every change of the store is one applied
    // event, counted under the same lock).
    const auto web_filter =
        ObjectFilter::Create("", *LabelSelector::Parse("app=web"), FieldSelector(), {});
    uint64_t last_version = 0;
    bool seen_synced = false;
    // A version read by this thread: numeric once set, and never older than the last one.
    const auto check_version = [&](const std::string& what, const std::string& version) {
      if (version.empty()) {
        if (last_version != 0) reader_failures.push_back(what + ": version empty after a sync");
        return;
      }
      const absl::StatusOr<uint64_t> parsed = ParseResourceVersion(version);
      if (!parsed.ok()) {
        reader_failures.push_back(what + ": version " + version + " is not a number");
      } else if (*parsed < last_version) {
        reader_failures.push_back(
            fmt::format("{}: version went back from {} to {}", what, last_version, *parsed));
      } else {
        last_version = *parsed;
      }
    };
    // Once synced, a read is not synced only while a relist is replacing the cached objects.
    const auto check_synced = [&](const std::string& what, bool synced, const std::string& reason) {
      if (seen_synced && !synced &&
          reason.rfind("a relist is replacing the cached objects (since resource version ", 0) !=
              0) {
        reader_failures.push_back(what + ": synced, then not synced: " + reason);
      }
      seen_synced = seen_synced || synced;
    };
    // A synced List is one state of the cluster, the one at its version: no object in it is
    // newer (a relist's differences, applied page by page, would be).
    const auto check_not_newer = [&](const std::string& what, const ListResult& listed) {
      if (!listed.synced) return;
      const absl::StatusOr<uint64_t> version = ParseResourceVersion(listed.resource_version);
      if (!version.ok()) return;  // check_version reports it
      for (const auto& object : listed.items) {
        const absl::StatusOr<uint64_t> own = ParseResourceVersion(object->resource_version.view());
        if (own.ok() && *own > *version) {
          reader_failures.push_back(fmt::format("{}: {} at {} in a list at {}", what,
                                                testing::Key(*object), *own, *version));
          return;
        }
      }
    };
    // Items in order, each key once, each matching `filter` when given.
    const auto check_items = [&](const std::string& what, const ListResult& listed,
                                 const ObjectFilter* filter) {
      for (std::size_t i = 0; i < listed.items.size(); ++i) {
        const ObjectRecord& object = *listed.items[i];
        if (filter != nullptr && !filter->Matches(object)) {
          reader_failures.push_back(what + ": " + testing::Key(object) + " does not match");
        }
        if (i > 0) {
          const ObjectRecord& before = *listed.items[i - 1];
          if (std::make_pair(before.namespace_name.view(), before.name.view()) >=
              std::make_pair(object.namespace_name.view(), object.name.view())) {
            reader_failures.push_back(what + ": " + testing::Key(before) + " then " +
                                      testing::Key(object));
          }
        }
      }
    };
    // At least one read, however fast the applier is; stop recording after a few failures.
    do {
      ++reads;
      const CacheStats before = cache->Stats();
      check_version("Stats", before.resource_version);
      check_synced("Stats", before.synced, before.unsynced_reason);
      const auto web = cache->List("", *LabelSelector::Parse("app=web"), FieldSelector());
      if (!web.ok()) {
        reader_failures.push_back("List app=web: " + web.status().ToString());
        break;
      }
      check_version("List app=web", web->resource_version);
      check_synced("List app=web", web->synced, web->unsynced_reason);
      check_not_newer("List app=web", *web);
      check_items("List app=web", *web, &*web_filter);
      const auto all = cache->List("", LabelSelector(), FieldSelector());
      if (!all.ok()) {
        reader_failures.push_back("List: " + all.status().ToString());
        break;
      }
      check_version("List", all->resource_version);
      check_synced("List", all->synced, all->unsynced_reason);
      check_not_newer("List", *all);
      check_items("List", *all, nullptr);
      const GetResult got = cache->Get("ns1", "p1");
      check_version("Get", got.resource_version);
      check_synced("Get", got.synced, got.unsynced_reason);
      if (got.object && testing::Key(*got.object) != "ns1/p1") {
        reader_failures.push_back("Get ns1/p1 returned " + testing::Key(*got.object));
      }
      const CacheStats after = cache->Stats();
      check_version("Stats", after.resource_version);
      check_synced("Stats", after.synced, after.unsynced_reason);
      // Each count was read between the two Stats: it differs from either by at most the events
      // applied in between. The app=web objects are some of the objects.
      const uint64_t changes = after.events_applied - before.events_applied;
      for (const CacheStats* stats : {&before, &after}) {
        const uint64_t count = stats->object_count;
        if (all->items.size() > count + changes || count > all->items.size() + changes ||
            web->items.size() > count + changes) {
          reader_failures.push_back(
              fmt::format("counts: {} objects ({} app=web) listed, {} in Stats, {} events "
                          "applied between the two Stats",
                          all->items.size(), web->items.size(), count, changes));
        }
      }
    } while (!done && reader_failures.size() < 10);
  });
  for (std::thread& thread : threads) thread.join();
  INFO("reader: " << reads << " reads");
  for (const std::string& failure : reader_failures) FAIL_CHECK("reader: " << failure);
  CHECK(reads > 0);
  CHECK(stall_checks > 0);

  const auto all = cache->List("", LabelSelector(), FieldSelector());
  REQUIRE(all.ok());
  std::set<std::pair<std::shared_ptr<const CacheEvent>, EventType>> encoded;
  int snapshots = 0;
  int resumes = 0;
  int ended = 0;
  for (auto& consumer : consumers) {
    INFO("consumer " << consumer->labels);
    REQUIRE(consumer->subscription != nullptr);
    while (!Consume(*consumer, encode)) Connect(*cache, *consumer);
    for (const std::string& error : consumer->errors) FAIL_CHECK(error);
    auto filter =
        ObjectFilter::Create("", *LabelSelector::Parse(consumer->labels), FieldSelector(), {});
    std::map<std::string, std::string> expected;
    for (const auto& object : all->items) {
      if (filter->Matches(*object)) expected[testing::Key(*object)] = object->json;
    }
    CHECK(consumer->state.objects() == expected);
    CHECK(consumer->received > 0);
    UNSCOPED_INFO("consumer '" << consumer->labels << "': received " << consumer->received
                               << ", snapshots " << consumer->snapshots << ", resumes "
                               << consumer->resumes << ", ended " << consumer->fell_behind);
    snapshots += consumer->snapshots;
    resumes += consumer->resumes;
    ended += consumer->fell_behind;
    encoded.insert(consumer->encoded.begin(), consumer->encoded.end());
    consumer->subscription->Close();
  }
  CHECK(encoder_calls == encoded.size());
  CHECK(cache->Stats().subscriber_count == 0);
  // The run exercised resuming, not only snapshots.
  CHECK(resumes > 0);
  CHECK(ended > 0);
  CHECK(cache->Stats().subscribers_fell_behind > 0);
  INFO("snapshots " << snapshots << ", resumes " << resumes);
  CHECK(snapshots >= 6);
}

}  // namespace
}  // namespace informerd::core
