// Discovery (daemon/kube/discovery.h) in-process: a scripted ListWatchClient
// (test/common/scripted_list_watch_client.h) serves the documents, a fake clock stands in for
// time, and the test runs the io_context itself, so the exact requests of a fetch and the
// refresh rate limit are checked without sockets or sleeps. The same fetching against the fake
// apiserver is test/daemon/kube/discovery_test.cc.
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/kube/discovery.h"
#include "test/common/discovery_documents.h"
#include "test/common/fake_clock.h"
#include "test/common/scripted_list_watch_client.h"

namespace informerd::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// `/apis` with apps/v1, and with example.com/v1 once the CRD is installed.
std::string Apis(bool with_crd) {
  std::string groups =
      R"({"name":"apps","versions":[{"groupVersion":"apps/v1","version":"v1"}],
          "preferredVersion":{"groupVersion":"apps/v1","version":"v1"}})";
  if (with_crd) {
    groups +=
        R"(,{"name":"example.com","versions":[{"groupVersion":"example.com/v1","version":"v1"}],
             "preferredVersion":{"groupVersion":"example.com/v1","version":"v1"}})";
  }
  return R"({"kind":"APIGroupList","apiVersion":"v1","groups":[)" + groups + "]}";
}

const std::string kAppsV1 =
    ResourceList("apps/v1", Resource("deployments", "Deployment", true, R"("deploy")"));
const std::string kExampleV1 =
    ResourceList("example.com/v1", Resource("widgets", "Widget", true, R"("wd")", "widget"));

class InProcess {
 public:
  InProcess() {
    daemon::DiscoveryOptions options;
    options.min_refresh_interval = seconds(30);
    discovery_ = std::make_unique<daemon::Discovery>(client_, clock_, options);
  }

  // Resolves `name`; the answer, once the io_context has run what it could.
  std::optional<absl::StatusOr<core::ResolvedResource>>& Resolve(const std::string& name) {
    results_.push_back(std::nullopt);
    auto* slot = &results_.back();
    discovery_->Resolve(name, [slot](absl::StatusOr<core::ResolvedResource> r) { *slot = r; });
    io_.poll();
    return *slot;
  }

  // Answers the fetch in progress: /api and /apis, then the group versions' resource lists.
  void ServeFetch(bool with_crd) {
    client_.ScriptGet("/api", HttpOk(kApi));
    client_.ScriptGet("/apis", HttpOk(Apis(with_crd)));
    io_.poll();
    client_.ScriptGet("/api/v1", HttpOk(kCoreV1));
    client_.ScriptGet("/apis/apps/v1", HttpOk(kAppsV1));
    if (with_crd) client_.ScriptGet("/apis/example.com/v1", HttpOk(kExampleV1));
    io_.poll();
  }

  boost::asio::io_context io_;
  ScriptedListWatchClient client_{io_};
  core::FakeClock clock_;
  std::unique_ptr<daemon::Discovery> discovery_;
  std::deque<std::optional<absl::StatusOr<core::ResolvedResource>>> results_;
};

TEST_CASE("in-process discovery: the first Resolve fetches /api, /apis and each group version") {
  InProcess d;
  auto& deploy = d.Resolve("deploy");
  CHECK_FALSE(deploy.has_value());
  // Both roots at once; the group versions only once both are known.
  CHECK(d.client_.RequestLines() == std::vector<std::string>{"GET /api", "GET /apis"});
  d.client_.ScriptGet("/api", HttpOk(kApi));
  d.client_.ScriptGet("/apis", HttpOk(Apis(false)));
  d.io_.poll();
  CHECK(d.client_.RequestLines(2) == std::vector<std::string>{"GET /api/v1", "GET /apis/apps/v1"});
  CHECK_FALSE(deploy.has_value());
  d.client_.ScriptGet("/apis/apps/v1", HttpOk(kAppsV1));
  d.client_.ScriptGet("/api/v1", HttpOk(kCoreV1));
  d.io_.poll();
  REQUIRE(deploy.has_value());
  REQUIRE(deploy->ok());
  CHECK(deploy->value().CollectionPath() == "/apis/apps/v1/deployments");

  // Later names are resolved from what was fetched: no more requests.
  auto& pods = d.Resolve("po");
  REQUIRE(pods.has_value());
  REQUIRE(pods->ok());
  CHECK(pods->value().CollectionPath() == "/api/v1/pods");
  CHECK(d.client_.requests().size() == 4);
  CHECK(d.client_.unused_scripts() == 0);
}

TEST_CASE("in-process discovery: an unknown name refreshes at most once per min_refresh_interval") {
  InProcess d;
  d.Resolve("pods");
  d.ServeFetch(false);
  REQUIRE(d.results_.back().has_value());
  REQUIRE(d.results_.back()->ok());
  const std::size_t fetched = d.client_.requests().size();

  // Just fetched: a miss is answered at once, saying when the next refresh may happen.
  auto& early = d.Resolve("widgets");
  REQUIRE(early.has_value());
  CHECK(early->status().code() == absl::StatusCode::kNotFound);
  CHECK(std::string(early->status().message()).find("the next refresh is allowed 30s after") !=
        std::string::npos);
  d.clock_.Advance(seconds(30) - milliseconds(1));
  auto& still_early = d.Resolve("widgets");
  REQUIRE(still_early.has_value());
  CHECK(still_early->status().code() == absl::StatusCode::kNotFound);
  CHECK(d.client_.requests().size() == fetched);

  // 30 s after the last fetch: a miss fetches again and finds the CRD installed meanwhile.
  d.clock_.Advance(milliseconds(1));
  auto& widgets = d.Resolve("wd");
  CHECK_FALSE(widgets.has_value());
  CHECK(d.client_.RequestLines(fetched) == std::vector<std::string>{"GET /api", "GET /apis"});
  d.ServeFetch(true);
  REQUIRE(widgets.has_value());
  REQUIRE(widgets->ok());
  CHECK(widgets->value().CollectionPath() == "/apis/example.com/v1/widgets");

  // And the limit starts again from that fetch.
  const std::size_t refetched = d.client_.requests().size();
  d.clock_.Advance(seconds(29));
  auto& gadgets = d.Resolve("gadgets");
  REQUIRE(gadgets.has_value());
  CHECK(gadgets->status().code() == absl::StatusCode::kNotFound);
  CHECK(d.client_.requests().size() == refetched);
}

}  // namespace
}  // namespace informerd::test
