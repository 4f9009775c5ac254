// From the configuration file to what is served, as the daemon wires it: config text →
// ParseConfig (daemon/config.*) → the resource entries and InformerFactoryOptions (daemon/app.h)
// → SharedInformerFactory, which builds each informer's scan and cache options and its limit on
// one object → the registry the gRPC service serves. Upstream is scripted
// (test/common/in_process_factory.h: discovery, LIST and WATCH answered by the test, fake
// timers); the service is the real one over a real gRPC server
// (test/common/informer_service_test_support.h). So a key that stops reaching the part it
// configures fails here, not only in the end-to-end tests against a real apiserver.
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "daemon/app.h"
#include "daemon/config.h"
#include "fmt/format.h"
#include "informerd/v1/informerd.grpc.pb.h"
#include "test/common/in_process_factory.h"
#include "test/common/informer_service_test_support.h"

namespace informerd::daemon {
namespace {

using std::chrono::milliseconds;
using test::HttpOk;
using test::InProcessFactory;
using test::PodListJson;
using test::WatchEventLine;
using testing::Describe;
using testing::Harness;
using testing::HarnessOptions;
using testing::Stream;
using testing::SubscribeError;
using testing::SubscribeTo;
using Strings = std::vector<std::string>;

constexpr char kPodsList[] = "/api/v1/pods?limit=500&resourceVersion=0";

// A pod in namespace "ns" with a node, a phase, and `padding` bytes of filler.
std::string Pod(const std::string& name, const std::string& resource_version,
                const std::string& node, const std::string& phase, std::size_t padding = 0) {
  return fmt::format(
      R"({{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{}","namespace":"ns","uid":"uid-{}",)"
      R"("resourceVersion":"{}"}},"spec":{{"nodeName":"{}","schedulerName":"default-scheduler",)"
      R"("filler":"{}"}},"status":{{"phase":"{}"}}}})",
      name, name, resource_version, node, std::string(padding, 'x'), phase);
}

Config Parse(const std::string& text) {
  absl::StatusOr<Config> config = ParseConfig(text, "informerd.yaml");
  INFO(config.status().ToString());
  REQUIRE(config.ok());
  return *std::move(config);
}

// The factory built from `config` as the daemon builds it, and the service serving its registry.
// Declared in this order, the server goes before the registry it serves.
struct Wired {
  explicit Wired(const Config& config)
      : upstream(config.resources, InformerFactoryOptions(config)), harness([this] {
          HarnessOptions options;
          options.registry = &upstream.registry_;
          return options;
        }()) {}

  // Starts the factory, answers discovery and the pods LIST with `items` at resourceVersion 10.
  void Sync(const std::vector<std::string>& items) {
    upstream.factory_->Start();
    upstream.Run();
    upstream.ServeDiscovery(false);
    upstream.client_.ScriptGet(kPodsList, HttpOk(PodListJson("10", "", items)));
    upstream.Run();
  }

  core::ReflectorStatus PodsStatus() {
    const std::vector<RunningInformer> entries = upstream.factory_->Entries();
    REQUIRE(entries.size() == 1);
    return entries[0].informer->status();
  }

  InProcessFactory upstream;
  Harness harness;
};

struct ListOutcome {
  grpc::Status status;
  Strings names;
};

ListOutcome List(v1::Informer::Stub& stub, const std::string& field_selector) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ListRequest request;
  request.set_resource("pods");
  request.set_field_selector(field_selector);
  v1::ListResponse response;
  ListOutcome outcome;
  outcome.status = stub.List(&context, request, &response);
  // Each item's first "name" is its metadata.name.
  for (const std::string& json : response.items()) {
    const std::size_t at = json.find(R"("name":")") + 8;
    outcome.names.push_back(json.substr(at, json.find('"', at) - at));
  }
  return outcome;
}

TEST_CASE("config: indexes make field selectors on those paths work in List and Subscribe") {
  Wired wired(Parse(R"(
resources:
  - resource: pods
    indexes: [status.phase, spec.nodeName]
)"));
  wired.Sync({Pod("a", "7", "n1", "Running"), Pod("b", "8", "n2", "Pending"),
              Pod("c", "9", "n2", "Running")});
  REQUIRE(wired.upstream.client_.open_watches() == 1);
  v1::Informer::Stub& stub = *wired.harness.stub;

  SECTION("List: on each configured path, and both at once") {
    ListOutcome running = List(stub, "status.phase=Running");
    REQUIRE(running.status.ok());
    CHECK(running.names == Strings{"a", "c"});
    ListOutcome on_n2 = List(stub, "spec.nodeName=n2");
    REQUIRE(on_n2.status.ok());
    CHECK(on_n2.names == Strings{"b", "c"});
    ListOutcome both = List(stub, "spec.nodeName=n2,status.phase!=Running");
    REQUIRE(both.status.ok());
    CHECK(both.names == Strings{"b"});
  }
  SECTION("Subscribe: the snapshot and live events are filtered on the configured path") {
    Stream stream(stub, SubscribeTo("pods", "", "", "status.phase=Pending"));
    CHECK(Describe(stream.Read(2)) == Strings{"ADDED ns/b rv=8", "SYNCED rv=10"});
    // Upstream, c stops running and a stops being pending (it never was): only c is news.
    wired.upstream.client_.LastWatch().Push(
        WatchEventLine("MODIFIED", Pod("c", "11", "n2", "Pending")) +
        WatchEventLine("MODIFIED", Pod("a", "12", "n1", "Succeeded")) +
        WatchEventLine("MODIFIED", Pod("b", "13", "n1", "Running")));
    wired.upstream.Run();
    CHECK(Describe(stream.Read(2)) == Strings{"ADDED ns/c rv=11", "DELETED ns/b rv=13"});
  }
  SECTION("a path the configuration does not index is refused, naming the ones it does") {
    const std::string expected =
        "field selector: field \"spec.schedulerName\" is not supported (supported: "
        "metadata.name, metadata.namespace, status.phase, spec.nodeName)";
    const ListOutcome list = List(stub, "spec.schedulerName=default-scheduler");
    CHECK(list.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(list.status.error_message() == expected);
    const grpc::Status subscribe =
        SubscribeError(stub, SubscribeTo("pods", "", "", "spec.schedulerName=default-scheduler"));
    CHECK(subscribe.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(subscribe.error_message() == expected);
  }
}

TEST_CASE("config: without indexes, only metadata.name and metadata.namespace are selectable") {
  Wired wired(Parse("resources:\n  - resource: pods\n"));
  wired.Sync({Pod("a", "7", "n1", "Running")});
  const ListOutcome by_name = List(*wired.harness.stub, "metadata.name=a");
  REQUIRE(by_name.status.ok());
  CHECK(by_name.names == Strings{"a"});
  const ListOutcome by_node = List(*wired.harness.stub, "spec.nodeName=n1");
  CHECK(by_node.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(by_node.status.error_message() ==
        "field selector: field \"spec.nodeName\" is not supported (supported: metadata.name, "
        "metadata.namespace)");
}

TEST_CASE("config: maxObjectBytes limits each LIST item and each watch event") {
  constexpr std::size_t kLimit = 65536;  // the least the configuration accepts
  Wired wired(Parse(fmt::format("maxObjectBytes: {}\nresources:\n  - resource: pods\n", kLimit)));
  const std::string large = Pod("big", "8", "n1", "Running", kLimit);
  REQUIRE(large.size() > kLimit);

  // A LIST item over it: skipped, and the list completes without it; no retry.
  wired.Sync({Pod("a", "7", "n1", "Running"), large, Pod("b", "9", "n1", "Running")});
  REQUIRE(wired.PodsStatus().synced);
  CHECK(wired.upstream.client_.open_watches() == 1);
  CHECK(wired.upstream.Armed().empty());
  CHECK(wired.PodsStatus().skipped_object ==
        fmt::format("skipping ns/big: a LIST item of {} bytes, larger than the 65536-byte limit "
                    "on one object (maxObjectBytes)",
                    large.size()));
  ListOutcome cached = List(*wired.harness.stub, "");
  REQUIRE(cached.status.ok());
  CHECK(cached.names == Strings{"a", "b"});

  // A watch event over it: skipped, and the cached object it would replace is deleted; the
  // watch stays open.
  const std::shared_ptr<test::ScriptedWatch> watch = wired.upstream.client_.watches().back();
  const std::string event = WatchEventLine("MODIFIED", Pod("a", "11", "n1", "Running", kLimit));
  watch->Push(event);
  wired.upstream.Run();
  CHECK(watch->open());
  CHECK(wired.PodsStatus().skipped_object ==
        fmt::format("skipping ns/a: a watch event of {} bytes, larger than the 65536-byte limit "
                    "on one object (maxObjectBytes)",
                    event.size() - 1));
  cached = List(*wired.harness.stub, "");
  REQUIRE(cached.status.ok());
  CHECK(cached.names == Strings{"b"});
}

TEST_CASE("config: the top-level keys' defaults and values reach the informers' options") {
  const SharedInformerFactoryOptions defaults =
      InformerFactoryOptions(Parse("resources:\n  - resource: pods\n"));
  CHECK(defaults.max_event_bytes == core::kDefaultMaxObjectBytes);
  CHECK_FALSE(defaults.allow_on_demand);
  CHECK(defaults.on_demand_grace_period == std::chrono::minutes(5));
  CHECK(defaults.registry == nullptr);

  const SharedInformerFactoryOptions set = InformerFactoryOptions(Parse(
      "maxObjectBytes: 1048576\nallowOnDemand: true\nonDemandGracePeriod: 90s\nresources: []\n"));
  CHECK(set.max_event_bytes == 1048576);
  CHECK(set.allow_on_demand);
  CHECK(set.on_demand_grace_period == std::chrono::seconds(90));
}

}  // namespace
}  // namespace informerd::daemon
