// Specification of the checks before an on-demand informer starts (InformerService::
// AcquireOnDemand): the caller may list and watch the resource cluster-wide (its own namespace is
// not enough to make informerd list a resource everywhere), the resource is in
// onDemandResources, and fewer than maxOnDemandInformers run; joining one that runs needs only
// the call's own permission. Over real gRPC with the daemon's access control and a fake
// on-demand source that counts starts (access_test_support.h has the policy: alice may read
// deployments.apps in team-a, admin everything).
#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/cache.h"
#include "daemon/config.h"
#include "daemon/service/informer_service.h"
#include "test/common/informer_service_test_support.h"
#include "test/daemon/service/access_test_support.h"

namespace informerd::daemon {
namespace {

using testing::AccessHarnessOptions;
using testing::Authorization;
using testing::Bearer;
using testing::Names;
using testing::Text;

const Authorization kAlice = Bearer("alice-token");
const Authorization kAdmin = Bearer("admin-token");

core::ResolvedResource WidgetsResource() {
  core::ResolvedResource widgets;
  widgets.group = "example.com";
  widgets.version = "v1";
  widgets.resource = "widgets";
  widgets.kind = "Widget";
  widgets.namespaced = true;
  return widgets;
}

// Starts "informers" at once: a synced cache with team-a/x1 and team-b/x2 (made beforehand on the
// test's thread, Catch being single-threaded), added to the registry as on-demand entries that
// stay. Counts starts by qualified name.
class FakeOnDemand final : public OnDemandSource {
 public:
  FakeOnDemand(ResourceRegistry& registry, const core::Clock& clock) : registry_(registry) {
    for (int i = 0; i < 4; ++i) {
      std::shared_ptr<core::Cache> cache = core::Cache::Create(core::CacheOptions(), clock);
      testing::Sync(*cache, {{"team-a", "x1", 3}, {"team-b", "x2", 4}}, 9);
      caches_.push_back(std::move(cache));
    }
  }

  absl::StatusOr<ServedLease> Acquire(const core::ResolvedResource& resource) override {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string key = resource.QualifiedName();
    auto it = running_.find(key);
    if (it == running_.end()) {
      ++starts_[key];
      if (caches_.empty()) return absl::InternalError("the test made too few caches");
      std::shared_ptr<core::Cache> cache = std::move(caches_.back());
      caches_.pop_back();
      ServedResource served;
      served.resource = resource;
      served.cache = cache;
      served.on_demand = true;
      if (absl::StatusOr<ResourceRegistry::Id> added = registry_.Add(std::move(served));
          !added.ok()) {
        return added.status();
      }
      for (const auto& entry : registry_.Entries()) {
        if (entry->cache == cache) it = running_.emplace(key, entry).first;
      }
    }
    return ServedLease{it->second, std::make_shared<int>(0)};
  }

  int starts(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    return starts_[key];
  }

 private:
  ResourceRegistry& registry_;
  std::mutex mu_;
  std::vector<std::shared_ptr<core::Cache>> caches_;  // guarded by mu_
  std::map<std::string, std::shared_ptr<const ServedResource>> running_;
  std::map<std::string, int> starts_;
};

ResourcePattern Pattern(const std::string& text) {
  absl::StatusOr<ResourcePattern> pattern = ParseResourcePattern(text);
  REQUIRE(pattern.ok());
  return *pattern;
}

struct OnDemand {
  explicit OnDemand(std::optional<std::vector<std::string>> patterns, std::size_t max = 16)
      : h([&] {
          AccessHarnessOptions options;
          if (patterns) {
            options.service.on_demand_resources.emplace();
            for (const std::string& text : *patterns) {
              options.service.on_demand_resources->push_back(Pattern(text));
            }
          }
          options.service.max_on_demand_informers = max;
          return options;
        }()) {
    h.harness->resolver.Add("widgets", WidgetsResource());
    source = std::make_shared<FakeOnDemand>(h.harness->registry, h.harness->clock);
    h.harness->registry.SetOnDemandSource(source);
  }

  testing::AccessHarness h;
  std::shared_ptr<FakeOnDemand> source;
};

TEST_CASE("starting an on-demand informer needs list and watch cluster-wide; joining does not") {
  OnDemand d(std::nullopt);
  // Alice may list deployments in team-a: enough to read them there, not to make informerd list
  // them everywhere.
  CHECK(Text(testing::List(d.h.stub(), kAlice, "deployments", "team-a")) ==
        "PERMISSION_DENIED: starting an on-demand informer for deployments.apps needs list and "
        "watch at the cluster scope: user \"alice\" cannot list deployments.apps at the cluster "
        "scope");
  std::vector<std::string> events;
  CHECK(Text(testing::SubscribeError(d.h.stub(), kAlice,
                                     testing::SubscribeTo("deployments", "team-a"), &events)) ==
        "PERMISSION_DENIED: starting an on-demand informer for deployments.apps needs list and "
        "watch at the cluster scope: user \"alice\" cannot list deployments.apps at the cluster "
        "scope");
  CHECK(events.empty());
  CHECK(d.source->starts("deployments.apps") == 0);

  // The admin may: it starts.
  v1::ListResponse all;
  CHECK(Text(testing::List(d.h.stub(), kAdmin, "deployments", "", &all)) == "OK: ");
  CHECK(Names(all) == std::vector<std::string>{"team-a/x1", "team-b/x2"});
  CHECK(d.source->starts("deployments.apps") == 1);

  // Now that it runs, alice reads team-a's from it (her own permission is checked, as always).
  v1::ListResponse team_a;
  CHECK(Text(testing::List(d.h.stub(), kAlice, "deployments", "team-a", &team_a)) == "OK: ");
  CHECK(Names(team_a) == std::vector<std::string>{"team-a/x1"});
  CHECK(Text(testing::List(d.h.stub(), kAlice, "deployments", "team-b")) ==
        "PERMISSION_DENIED: user \"alice\" cannot list deployments.apps in namespace \"team-b\"");
  CHECK(d.source->starts("deployments.apps") == 1);

  // (Lines are written as gRPC reports each call done: not necessarily in the calls' order.)
  const std::vector<std::string> audit = d.h.WaitForAuditLines(5);
  CHECK(std::count(audit.begin(), audit.end(),
                   "user=\"alice\" peer=\"ipv4:127.0.0.1:PORT\" method=\"List\" "
                   "resource=\"deployments.apps\" namespace=\"team-a\" decision=deny "
                   "code=PERMISSION_DENIED") == 1);
}

TEST_CASE("only resources in onDemandResources are started, whoever asks") {
  OnDemand d(std::vector<std::string>{"deployments.apps", "*.k8s.example.org"});
  CHECK(Text(testing::List(d.h.stub(), kAdmin, "widgets", "")) ==
        "PERMISSION_DENIED: widgets.example.com is not served by this informerd: no configured "
        "informer covers it and on-demand informers may be started only for onDemandResources "
        "(deployments.apps, *.k8s.example.org)");
  CHECK(d.source->starts("widgets.example.com") == 0);
  CHECK(Text(testing::List(d.h.stub(), kAdmin, "deployments", "")) == "OK: ");
  CHECK(d.source->starts("deployments.apps") == 1);
  const std::vector<std::string> audit = d.h.WaitForAuditLines(2);
  CHECK(std::count(audit.begin(), audit.end(),
                   "user=\"admin\" peer=\"ipv4:127.0.0.1:PORT\" method=\"List\" "
                   "resource=\"widgets.example.com\" namespace=\"\" decision=deny "
                   "code=PERMISSION_DENIED") == 1);
}

TEST_CASE("a group pattern allows the group's every resource") {
  OnDemand d(std::vector<std::string>{"*.example.com"});
  CHECK(Text(testing::List(d.h.stub(), kAdmin, "widgets", "")) == "OK: ");
  CHECK(Text(testing::List(d.h.stub(), kAdmin, "deployments", "")) ==
        "PERMISSION_DENIED: deployments.apps is not served by this informerd: no configured "
        "informer covers it and on-demand informers may be started only for onDemandResources "
        "(*.example.com)");
}

TEST_CASE(
    "past maxOnDemandInformers, a start is RESOURCE_EXHAUSTED naming the cap; joins are not") {
  OnDemand d(std::nullopt, /*max=*/1);
  CHECK(Text(testing::List(d.h.stub(), kAdmin, "deployments", "")) == "OK: ");
  CHECK(Text(testing::List(d.h.stub(), kAdmin, "widgets", "")) ==
        "RESOURCE_EXHAUSTED: cannot start an on-demand informer for widgets.example.com: "
        "maxOnDemandInformers (1) run already; retry once one has stopped (a grace period after "
        "its last reader leaves)");
  CHECK(d.source->starts("widgets.example.com") == 0);
  // The running one is still shared.
  CHECK(Text(testing::List(d.h.stub(), kAlice, "deployments", "team-a")) == "OK: ");
  CHECK(d.source->starts("deployments.apps") == 1);
  // The caller's own permission comes first: a caller who may not read it learns nothing of
  // the cap.
  CHECK(Text(testing::List(d.h.stub(), kAlice, "widgets", "team-a")) ==
        "PERMISSION_DENIED: user \"alice\" cannot list widgets.example.com in namespace "
        "\"team-a\"");
}

TEST_CASE("the cap holds however many start at once") {
  OnDemand d(std::nullopt, /*max=*/1);
  std::vector<std::thread> callers;
  std::mutex mu;
  std::vector<std::string> results;
  for (const char* resource : {"deployments", "widgets", "deployments", "widgets"}) {
    callers.emplace_back([&, resource] {
      const std::string result = Text(testing::List(d.h.stub(), kAdmin, resource, ""));
      std::lock_guard<std::mutex> lock(mu);
      results.push_back(result.substr(0, result.find(':')));
    });
  }
  for (std::thread& caller : callers) caller.join();
  CHECK(d.source->starts("deployments.apps") + d.source->starts("widgets.example.com") == 1);
  CHECK(std::count(results.begin(), results.end(), "OK") == 2);
  CHECK(std::count(results.begin(), results.end(), "RESOURCE_EXHAUSTED") == 2);
}

}  // namespace
}  // namespace informerd::daemon
