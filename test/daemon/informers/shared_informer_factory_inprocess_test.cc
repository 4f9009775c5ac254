// SharedInformerFactory (daemon/informers/shared_informer_factory.*) in-process: discovery and
// the informers talk to a scripted ListWatchClient (test/common/scripted_list_watch_client.h),
// the retry, grace and backoff timers are fake timers on a fake clock, and the test runs the
// io_context itself (test/common/in_process_factory.h). The 30-second retry of an entry not
// served yet and the 5-minute grace period of an on-demand informer are therefore checked to the
// millisecond, without sleeping. The factory wired as the daemon runs it, against the fake
// apiserver and the gRPC service, is test/daemon/informers/shared_informer_factory_test.cc.

// Timer durations print as "1200 milliseconds" in failures.
#define CATCH_CONFIG_ENABLE_CHRONO_STRINGMAKER
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "daemon/informers/resource_registry.h"
#include "daemon/informers/shared_informer_factory.h"
#include "daemon/kube/discovery.h"
#include "test/common/captured_log.h"
#include "test/common/in_process_factory.h"
#include "test/common/scripted_list_watch_client.h"

namespace informerd::daemon {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using test::HttpOk;

constexpr char kEmptyPodList[] =
    R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[]})";

core::ResolvedResource Pods() {
  core::ResolvedResource pods;
  pods.version = "v1";
  pods.resource = "pods";
  pods.kind = "Pod";
  pods.namespaced = true;
  return pods;
}

ResourceConfig Entry(const std::string& resource) { return test::ConfigEntry(resource); }

using InProcess = test::InProcessFactory;

TEST_CASE("in-process factory: an entry not served yet is looked up again every retry_interval") {
  SharedInformerFactoryOptions options;
  options.retry_interval = seconds(30);
  InProcess f({Entry("widgets")}, options);
  f.factory_->Start();
  f.Run();
  f.ServeDiscovery(false);
  REQUIRE(f.factory_->Pending().size() == 1);
  CHECK(f.factory_->Entries().empty());
  CHECK(f.Armed() == std::vector<milliseconds>{seconds(30)});

  for (int round = 0; round < 2; ++round) {
    INFO("round " << round);
    const std::size_t before = f.client_.requests().size();
    f.Advance(seconds(30) - milliseconds(1));
    CHECK(f.client_.requests().size() == before);
    f.Advance(milliseconds(1));
    // The lookup misses, and discovery's last fetch is old enough: it fetches again.
    CHECK(f.client_.RequestLines(before) == std::vector<std::string>{"GET /api", "GET /apis"});
    if (round == 0) {
      f.ServeDiscovery(false);
      CHECK(f.factory_->Pending().size() == 1);
      CHECK(f.Armed() == std::vector<milliseconds>{seconds(30)});
    } else {
      // The CRD is there now: the entry starts, and no retry is armed any more.
      f.ServeDiscovery(true);
      CHECK(f.factory_->Pending().empty());
      REQUIRE(f.factory_->Entries().size() == 1);
      CHECK(
          f.client_.RequestLines(before + 2) ==
          std::vector<std::string>{"GET /api/v1", "GET /apis/example.com/v1",
                                   "GET /apis/example.com/v1/widgets?limit=500&resourceVersion=0"});
      CHECK(f.Armed().empty());
    }
  }
  f.client_.ScriptGet("/apis/example.com/v1/widgets", HttpOk(test::WidgetListJson("7")));
  f.Run();
  CHECK(f.factory_->AllSynced());
}

TEST_CASE(
    "in-process factory: with the daemon's defaults, a resource not served yet is looked up "
    "again after 30 s") {
  // daemon/app.cc leaves the factory's retry_interval and Discovery's options at their defaults:
  // the lookup waits the factory's 30 s, and discovery's own rate limit (30 s since its last
  // fetch) lets that lookup fetch the documents again, so a CRD installed meanwhile is found.
  CHECK(SharedInformerFactoryOptions().retry_interval == seconds(30));
  test::CapturedLog log;
  InProcess f({Entry("widgets")}, SharedInformerFactoryOptions(), DiscoveryOptions(), log.logger());
  f.factory_->Start();
  f.Run();
  f.ServeDiscovery(false);
  REQUIRE(f.factory_->Pending().size() == 1);
  CHECK(f.Armed() == std::vector<milliseconds>{seconds(30)});
  CHECK(log.Containing("looking again") ==
        std::vector<std::string>{"warning: config resource \"widgets\": the server has no "
                                 "resource \"widgets\"; looking again every 30 s"});

  const std::size_t before = f.client_.requests().size();
  f.Advance(seconds(30) - milliseconds(1));
  CHECK(f.client_.requests().size() == before);
  f.Advance(milliseconds(1));
  CHECK(f.client_.RequestLines(before) == std::vector<std::string>{"GET /api", "GET /apis"});
  f.ServeDiscovery(true);
  CHECK(f.factory_->Pending().empty());
  REQUIRE(f.factory_->Entries().size() == 1);
  CHECK(f.factory_->Entries()[0].resource.QualifiedName() == "widgets.example.com");
}

TEST_CASE("in-process factory: an on-demand informer stops grace_period after its last lease") {
  SharedInformerFactoryOptions options;
  options.allow_on_demand = true;
  options.on_demand_grace_period = minutes(5);
  InProcess f({}, options);
  f.factory_->Start();
  f.Run();

  std::optional<absl::StatusOr<ServedLease>> lease = f.factory_->Acquire(Pods());
  REQUIRE(lease->ok());
  f.Run();
  REQUIRE(f.client_.RequestLines() ==
          std::vector<std::string>{"GET /api/v1/pods?limit=500&resourceVersion=0"});
  f.client_.ScriptGet("/api/v1/pods", HttpOk(kEmptyPodList));
  f.Run();
  REQUIRE(f.client_.open_watches() == 1);
  REQUIRE(f.registry_.Entries().size() == 1);
  CHECK(f.registry_.Entries()[0]->on_demand);
  CHECK(f.Armed().empty());

  SECTION("it stops grace_period after the last lease is dropped") {
    lease.reset();
    f.Run();
    CHECK(f.Armed() == std::vector<milliseconds>{minutes(5)});
    f.Advance(minutes(5) - milliseconds(1));
    CHECK(f.client_.open_watches() == 1);
    CHECK(f.registry_.Entries().size() == 1);

    f.Advance(milliseconds(1));
    CHECK(f.client_.open_watches() == 0);
    CHECK(f.client_.LastWatch().cancelled());
    CHECK(f.registry_.Entries().empty());
    CHECK(f.factory_->Entries().empty());
    CHECK(f.client_.requests().size() == 2);
  }

  SECTION("a lease taken during the grace period cancels the stop") {
    lease.reset();
    f.Run();
    f.Advance(minutes(2));
    std::optional<absl::StatusOr<ServedLease>> again = f.factory_->Acquire(Pods());
    REQUIRE(again->ok());
    f.Run();
    // The same informer: no new LIST or WATCH.
    CHECK(f.client_.requests().size() == 2);

    f.Advance(minutes(3));
    f.Advance(minutes(10));
    CHECK(f.client_.open_watches() == 1);
    CHECK(f.registry_.Entries().size() == 1);

    // Its own last lease starts a full grace period again.
    again.reset();
    f.Run();
    CHECK(f.Armed() == std::vector<milliseconds>{minutes(5)});
    f.Advance(minutes(5) - milliseconds(1));
    CHECK(f.client_.open_watches() == 1);
    f.Advance(milliseconds(1));
    CHECK(f.client_.open_watches() == 0);
    CHECK(f.registry_.Entries().empty());
  }
}

}  // namespace
}  // namespace informerd::daemon
