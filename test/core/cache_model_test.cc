// A randomized model test of core/cache.*: a simulated apiserver changes objects at random and
// the cache follows it through live events, bookmarks and relists (with changes it missed:
// updates, deletions, deletions and re-creations under a new UID; pages; aborted lists; lists
// whose version is known only at the end). Several clients with random selectors subscribe,
// some from the start, some midway, and some disconnect (or fall behind their small queues) and
// resume from the last version they saw. After every step:
//   * the cache holds exactly what the apiserver holds (when no change is pending),
//   * List with a filter returns what a full scan would,
//   * every connected client, having applied its stream to its own copy, holds exactly the
//     cache's objects that match its filter; and no stream ever ADDs a key the client has, or
//     MODIFIES or DELETEs one it lacks (a duplicate or a gap), or MODIFIES across a UID change;
//   * when a client receives SYNCED at version V, it holds exactly what the apiserver held at V.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/cache.h"
#include "fmt/format.h"
#include "test/common/cache_test_support.h"
#include "test/common/fake_clock.h"

namespace informerd::core {
namespace {

using testing::ByKey;
using testing::Key;
using testing::MakeObject;
using testing::StreamState;

const std::vector<std::string> kPaths = {"spec.nodeName"};

struct Selection {
  std::string namespace_name;
  std::string labels;
  std::string fields;
};

const std::vector<Selection> kSelections = {
    {"", "", ""},
    {"", "app=web", ""},
    {"a", "", ""},
    {"", "app in (web,db)", ""},
    {"", "tier!=fe", ""},
    {"", "", "spec.nodeName=n1"},
    {"b", "app=db", "spec.nodeName!=n2"},
    {"", "canary", ""},
    {"", "", "metadata.name=p3"},
    {"", "", "metadata.namespace=c"},
};

class Model {
 public:
  explicit Model(uint64_t seed) : rng_(seed) {
    CacheOptions options;
    options.extra_field_paths = kPaths;
    options.window_max_events = 1 + Pick(40);
    options.window_max_age = std::chrono::seconds(30);
    cache_ = Cache::Create(std::move(options), clock_);
  }

  void Run(int steps) {
    Relist();  // the initial list
    for (int step = 0; step < steps; ++step) {
      INFO("step " << step);
      const uint64_t dice = Pick(100);
      if (dice < 45) {
        LiveChange();
      } else if (dice < 52) {
        cache_->ApplyWatchEvent(testing::Bookmark(rv_ += Pick(3)));
        Record();
      } else if (dice < 58) {
        Relist();
      } else {
        ClientStep();
      }
      clock_.Advance(std::chrono::milliseconds(Pick(3000)));
      CheckCache();
      CheckClients();
    }
    for (Client& client : clients_) {
      if (client.subscription) client.subscription->Close();
    }
    CHECK(cache_->Stats().subscriber_count == 0);
  }

 private:
  struct Client {
    Selection selection;
    std::size_t capacity = 0;
    // Zero for some small-queue clients: as the model reads only between steps, they fall behind
    // when a step queues two events over their capacity; the others only at the hard limit.
    std::chrono::steady_clock::duration stall_budget = std::chrono::seconds(1);
    std::shared_ptr<Subscription> subscription;  // null while disconnected
    StreamState state;
    int resumes = 0;
    int snapshots = 0;
  };

  uint64_t Pick(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }

  ObjectRecord RandomObject(const std::string& key, const std::string& uid, uint64_t rv) {
    const std::size_t slash = key.find('/');
    static const char* kApps[] = {"web", "db", "api"};
    LabelSet labels;
    std::vector<LabelSet::Entry> entries = {{"app", kApps[Pick(3)]}};
    if (Pick(2)) entries.push_back({"tier", Pick(2) ? "fe" : "be"});
    if (Pick(5) == 0) entries.push_back({"canary", ""});
    std::optional<std::string> node;
    if (Pick(4)) node = fmt::format("n{}", 1 + Pick(3));
    return MakeObject(key.substr(0, slash), key.substr(slash + 1), uid, rv,
                      LabelSet(std::move(entries)), {node});
  }

  std::string RandomKey() {
    static const char* kNamespaces[] = {"a", "b", "c", ""};
    return fmt::format("{}/p{}", kNamespaces[Pick(4)], Pick(12));
  }

  // One change upstream; returns the watch event that reports it.
  WatchEvent UpstreamChange() {
    const std::string key = RandomKey();
    const auto it = upstream_.find(key);
    ++rv_;
    if (it == upstream_.end()) {
      upstream_[key] = RandomObject(key, fmt::format("uid-{}", ++uids_), rv_);
      return testing::Added(upstream_[key]);
    }
    if (Pick(4) == 0) {
      // The deleted object's last state, with the deletion's version, as the apiserver sends it.
      ObjectRecord last = it->second;
      last.resource_version = std::to_string(rv_);
      upstream_.erase(it);
      return testing::Deleted(std::move(last));
    }
    if (Pick(10) == 0) {
      // Deleted and re-created, but the watch reports only the new object (the cache must still
      // send DELETED, then ADDED). The deletion took a version of its own.
      ++rv_;
      it->second = RandomObject(key, fmt::format("uid-{}", ++uids_), rv_);
      return Pick(2) ? testing::Modified(it->second) : testing::Added(it->second);
    }
    it->second = RandomObject(key, it->second.uid.str(), rv_);
    return testing::Modified(it->second);
  }

  void LiveChange() {
    cache_->ApplyWatchEvent(UpstreamChange());
    Record();
  }

  // The apiserver's state at the current version, for checking SYNCED.
  void Record() { history_[rv_] = upstream_; }

  // Changes the cache does not hear about, including deletions followed by re-creations.
  void MissChanges() {
    const uint64_t count = Pick(8);
    for (uint64_t i = 0; i < count; ++i) {
      if (Pick(5) == 0) {
        const std::string key = RandomKey();
        if (upstream_.count(key)) {
          rv_ += 2;
          upstream_[key] = RandomObject(key, fmt::format("uid-{}", ++uids_), rv_);
          continue;
        }
      }
      UpstreamChange();
    }
  }

  void Relist() {
    MissChanges();
    const bool abort = Pick(5) == 0;
    const bool watch_list = Pick(3) == 0;
    cache_->BeginList();
    std::vector<ObjectRecord> page;
    std::size_t page_size = 1 + Pick(6);
    std::size_t sent = 0;
    for (const auto& [key, object] : upstream_) {
      page.push_back(object);
      if (page.size() == page_size) {
        cache_->ListItems(std::move(page), watch_list ? "" : std::to_string(rv_));
        page.clear();
        page_size = 1 + Pick(6);
        ++sent;
        if (Pick(3) == 0) ClientStep();
        CheckClients();
        if (abort && sent == 2) {
          cache_->AbortList();
          CheckClients();
          Relist();
          return;
        }
      }
    }
    if (!page.empty()) cache_->ListItems(std::move(page), watch_list ? "" : std::to_string(rv_));
    cache_->EndList(std::to_string(rv_));
    Record();
  }

  SubscribeOptions OptionsFor(const Client& client, std::string resource_version) {
    SubscribeOptions options;
    options.namespace_name = client.selection.namespace_name;
    options.label_selector = *LabelSelector::Parse(client.selection.labels);
    options.field_selector = *FieldSelector::Parse(client.selection.fields);
    options.resource_version = std::move(resource_version);
    options.allow_bookmarks = Pick(2) == 0;
    options.queue_capacity = client.capacity;
    options.stall_budget = client.stall_budget;
    // The same budget while reading the snapshot: the zero-budget clients fall behind then too.
    options.head_start_stall_budget = client.stall_budget;
    return options;
  }

  void Snapshot(Client& client) {
    client.state.Reset();
    auto subscription = cache_->Subscribe(OptionsFor(client, Pick(4) == 0 ? "0" : ""));
    REQUIRE(subscription.ok());
    client.subscription = *subscription;
    ++client.snapshots;
  }

  // Resumes from the last point received, or starts over when that is not possible.
  void Reconnect(Client& client) {
    if (client.state.resume_from().empty()) {
      Snapshot(client);
      return;
    }
    auto subscription = cache_->Subscribe(OptionsFor(client, client.state.resume_from()));
    if (!subscription.ok()) {
      INFO(std::string(subscription.status().message()));
      REQUIRE(subscription.status().code() == absl::StatusCode::kOutOfRange);
      Snapshot(client);
      return;
    }
    client.subscription = *subscription;
    client.state.ResumedFrom(client.state.resume_from());
    ++client.resumes;
  }

  void ClientStep() {
    const uint64_t dice = Pick(10);
    if (dice < 3 || clients_.empty()) {
      Client client;
      client.selection = kSelections[Pick(kSelections.size())];
      client.capacity = Pick(3) == 0 ? 1 + Pick(4) : 1000;
      if (client.capacity < 1000 && Pick(2) == 0) client.stall_budget = {};
      Snapshot(client);
      clients_.push_back(std::move(client));
    } else {
      Client& client = clients_[Pick(clients_.size())];
      if (client.subscription && dice < 6) {
        // Disconnect: drain what arrived, then go away.
        Apply(client);
        client.subscription->Close();
        client.subscription.reset();
      } else if (!client.subscription) {
        Reconnect(client);
      }
    }
  }

  void Apply(Client& client) {
    while (std::optional<Delivery> delivery = client.subscription->TryPop()) {
      const std::optional<std::string> error = client.state.Apply(*delivery);
      if (error)
        FAIL(*error << " (client " << client.selection.labels << "/" << client.selection.fields
                    << ")");
      if (delivery->type == EventType::kSynced) {
        const auto at = history_.find(std::stoull(delivery->resource_version()));
        REQUIRE(at != history_.end());
        std::map<std::string, std::string> expected;
        const ObjectFilter filter = FilterFor(client.selection);
        for (const auto& [key, object] : at->second) {
          if (filter.Matches(object)) expected[key] = object.json;
        }
        INFO("SYNCED at " << delivery->resource_version());
        REQUIRE(client.state.objects() == expected);
      }
    }
  }

  static ObjectFilter FilterFor(const Selection& selection) {
    auto filter =
        ObjectFilter::Create(selection.namespace_name, *LabelSelector::Parse(selection.labels),
                             *FieldSelector::Parse(selection.fields), kPaths);
    REQUIRE(filter.ok());
    return *std::move(filter);
  }

  using Objects = std::vector<std::shared_ptr<const ObjectRecord>>;

  static Objects Expected(const Selection& selection, const Objects& all) {
    const ObjectFilter filter = FilterFor(selection);
    Objects out;
    for (const auto& object : all) {
      if (filter.Matches(*object)) out.push_back(object);
    }
    return out;
  }

  Objects All() {
    auto all = cache_->List("", LabelSelector(), FieldSelector());
    REQUIRE(all.ok());
    return std::move(all->items);
  }

  void CheckClient(Client& client, const Objects& all) {
    if (!client.subscription) return;
    Apply(client);
    if (const std::optional<absl::Status> status = client.subscription->FinalStatus()) {
      INFO(std::string(status->message()));
      REQUIRE((status->code() == absl::StatusCode::kResourceExhausted ||
               status->code() == absl::StatusCode::kOutOfRange));
      client.subscription.reset();
      Reconnect(client);
      Apply(client);
      if (client.subscription->FinalStatus()) return;  // fell behind again at once
    }
    INFO("client " << client.selection.namespace_name << " | " << client.selection.labels << " | "
                   << client.selection.fields << " resumes=" << client.resumes
                   << " snapshots=" << client.snapshots);
    REQUIRE(client.state.objects() == ByKey(Expected(client.selection, all)));
  }

  void CheckClients() {
    const Objects all = All();
    for (Client& client : clients_) CheckClient(client, all);
  }

  void CheckCache() {
    const Objects all = All();
    std::map<std::string, std::string> upstream;
    for (const auto& [key, object] : upstream_) upstream[key] = object.json;
    REQUIRE(ByKey(all) == upstream);
    REQUIRE(cache_->Stats().object_count == upstream_.size());
    // Ordered by namespace, then name.
    for (std::size_t i = 1; i < all.size(); ++i) {
      const auto& a = *all[i - 1];
      const auto& b = *all[i];
      REQUIRE((a.namespace_name < b.namespace_name ||
               (a.namespace_name == b.namespace_name && a.name < b.name)));
    }
    // Index-planned lists agree with a full scan.
    for (const Selection& selection : kSelections) {
      const auto listed =
          cache_->List(selection.namespace_name, *LabelSelector::Parse(selection.labels),
                       *FieldSelector::Parse(selection.fields));
      REQUIRE(listed.ok());
      std::vector<std::string> got;
      std::vector<std::string> want;
      for (const auto& object : listed->items) got.push_back(Key(*object));
      for (const auto& object : Expected(selection, all)) want.push_back(Key(*object));
      REQUIRE(got == want);
    }
  }

  std::mt19937_64 rng_;
  FakeClock clock_;
  std::shared_ptr<Cache> cache_;
  std::map<std::string, ObjectRecord> upstream_;
  uint64_t rv_ = 100;
  uint64_t uids_ = 0;
  std::vector<Client> clients_;
  std::map<uint64_t, std::map<std::string, ObjectRecord>> history_;

 public:
  int total_resumes() const {
    int n = 0;
    for (const Client& c : clients_) n += c.resumes;
    return n;
  }
  std::size_t clients() const { return clients_.size(); }
  CacheStats stats() const { return cache_->Stats(); }
};

TEST_CASE("random upstream histories: cache and every client's view match the model") {
  int resumes = 0;
  uint64_t fell_behind = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    INFO("seed " << seed);
    Model model(seed);
    model.Run(300);
    resumes += model.total_resumes();
    fell_behind += model.stats().subscribers_fell_behind;
  }
  // The run exercised what it claims to.
  CHECK(resumes > 100);
  CHECK(fell_behind > 20);
}

}  // namespace
}  // namespace informerd::core
