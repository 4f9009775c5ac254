// Specification of SharedInformerFactory (daemon/informers/shared_informer_factory.*) as the daemon
// runs it: the fault-injecting fake apiserver upstream, real discovery, the registry and the
// Informer gRPC service downstream. Two lifecycles: a resource (CRD) deleted upstream and created
// again, and informers started on demand for resources the configuration does not list.
#include "daemon/informers/shared_informer_factory.h"

#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "daemon/informers/discovery_resource_resolver.h"
#include "daemon/informers/resource_registry.h"
#include "daemon/kube/apiserver_client.h"
#include "daemon/kube/auth/credentials.h"
#include "daemon/kube/auth/rest_config.h"
#include "daemon/kube/discovery.h"
#include "daemon/service/informer_service.h"
#include "fmt/format.h"
#include "informerd/v1/informerd.grpc.pb.h"
#include "spdlog/sinks/null_sink.h"
#include "test/common/api_test_support.h"
#include "test/common/informer_service_test_support.h"
#include "test/fakeapi/fake_api_server.h"

namespace informerd::daemon {
namespace {

using fakeapi::FakeApiServer;
using fakeapi::ResourceType;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Describe;
using testing::Stream;
using testing::SubscribeError;
using testing::SubscribeTo;
using testing::WaitUntil;

constexpr char kGone[] = "resource no longer served by the apiserver";

ResourceType Widgets(const std::string& version = "v1") {
  return ResourceType::Custom("example.com", version, "widgets", "Widget");
}

// Reads `count` events; a stream that ends sooner fails the test here, before any of them is
// indexed.
std::vector<v1::Event> ReadEvents(Stream& stream, std::size_t count) {
  std::vector<v1::Event> events = stream.Read(count);
  REQUIRE(events.size() == count);
  return events;
}

ResourceConfig Entry(const std::string& resource) {
  ResourceConfig config;
  config.resource = resource;
  return config;
}

// The daemon's wiring (daemon/app.cc) around a fake apiserver, with short intervals.
class Daemon {
 public:
  Daemon(std::vector<ResourceConfig> entries, SharedInformerFactoryOptions options) {
    fakeapi::ServerOptions server_options;
    server_options.resources.push_back(Widgets());
    REQUIRE(server_.Start(server_options).ok());
    RestConfig config;
    auto url = ParseServerUrl(server_.base_url());
    REQUIRE(url.ok());
    config.server = *url;
    config.credentials = std::make_shared<StaticCredentialSource>(Credentials{});
    config.identity = "test";
    auto client = ApiServerClient::Create(io_.io(), std::move(config));
    REQUIRE(client.ok());
    client_ = std::move(*client);
    DiscoveryOptions discovery_options;
    discovery_options.min_refresh_interval = milliseconds(100);
    discovery_ = std::make_unique<Discovery>(*client_, clock_, discovery_options);
    resolver_ = std::make_unique<DiscoveryResourceResolver>(*discovery_);
    InformerServiceOptions service_options;
    service_options.max_sync_wait = seconds(10);
    service_ = std::make_unique<InformerService>(*resolver_, registry_, testing::AllowEveryone(),
                                                 service_options);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    grpc_server_ = builder.BuildAndStart();
    REQUIRE(grpc_server_);
    stub_ = v1::Informer::NewStub(
        grpc::CreateChannel(fmt::format("127.0.0.1:{}", port), grpc::InsecureChannelCredentials()));

    options.registry = &registry_;
    if (options.retry_interval == seconds(30)) options.retry_interval = milliseconds(200);
    options.reflector.gone_retry_interval = seconds(1);
    informers_ = SharedInformerFactory::Create(
        *client_, *discovery_, clock_, std::move(entries), options, nullptr,
        std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>()));
    informers_->Start();
  }

  ~Daemon() { Shutdown(); }

  // As the daemon stops: the service and the informers end every stream, then the server goes.
  void Shutdown() {
    if (!grpc_server_) return;
    service_->Shutdown();
    informers_->Stop();
    grpc_server_->Shutdown(std::chrono::system_clock::now() + seconds(5));
    grpc_server_.reset();
    std::this_thread::sleep_for(milliseconds(50));
    informers_.reset();
  }

  std::vector<v1::ResourceInfo> Resources() {
    grpc::ClientContext context;
    v1::ListResourcesResponse response;
    const grpc::Status status =
        stub_->ListResources(&context, v1::ListResourcesRequest(), &response);
    REQUIRE(status.ok());
    return {response.resources().begin(), response.resources().end()};
  }

  std::optional<v1::ResourceInfo> Resource(const std::string& plural) {
    for (const v1::ResourceInfo& info : Resources()) {
      if (info.resource() == plural) return info;
    }
    return std::nullopt;
  }
  // The same, when the test needs it listed: not listed fails the test here.
  v1::ResourceInfo ListedResource(const std::string& plural) {
    std::optional<v1::ResourceInfo> info = Resource(plural);
    INFO("resource " << plural);
    REQUIRE(info.has_value());
    return *info;
  }
  // Whether it is listed and `condition` holds for it (for WaitUntil).
  bool ResourceIs(const std::string& plural,
                  const std::function<bool(const v1::ResourceInfo&)>& condition) {
    std::optional<v1::ResourceInfo> info = Resource(plural);
    return info.has_value() && condition(*info);
  }

  grpc::Status List(const std::string& resource, v1::ListResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + seconds(10));
    v1::ListRequest request;
    request.set_resource(resource);
    return stub_->List(&context, request, response);
  }

  // LIST (not WATCH) requests whose path ends with `/plural`.
  std::size_t Lists(const std::string& plural) const {
    std::size_t count = 0;
    for (const fakeapi::RequestRecord& request : server_.Requests()) {
      const std::string suffix = "/" + plural;
      if (!request.IsWatch() && request.path.size() >= suffix.size() &&
          request.path.compare(request.path.size() - suffix.size(), suffix.size(), suffix) == 0) {
        ++count;
      }
    }
    return count;
  }
  // Every request (LIST or WATCH) for the resource's collection.
  std::size_t Requests(const std::string& plural) const {
    std::size_t count = 0;
    for (const fakeapi::RequestRecord& request : server_.Requests()) {
      if (request.path.find("/" + plural) != std::string::npos) ++count;
    }
    return count;
  }

  FakeApiServer server_;
  test::IoThread io_;
  core::SteadyClock clock_;
  std::unique_ptr<ApiServerClient> client_;
  std::unique_ptr<Discovery> discovery_;
  ResourceRegistry registry_;
  std::unique_ptr<DiscoveryResourceResolver> resolver_;
  std::unique_ptr<InformerService> service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<v1::Informer::Stub> stub_;
  std::shared_ptr<SharedInformerFactory> informers_;
};

// ---- A resource deleted upstream: stopped cleanly, served again when it comes back ---------

TEST_CASE("a CRD deleted upstream ends its subscribers, is reported, and serves again when back") {
  Daemon d({Entry("widgets")}, SharedInformerFactoryOptions());
  REQUIRE(d.server_.Upsert("widgets.example.com", "ns", "a").ok());
  REQUIRE(d.server_.Upsert("widgets.example.com", "ns", "b").ok());
  REQUIRE(WaitUntil([&] { return d.informers_->AllSynced(); }));
  Stream stream(*d.stub_, SubscribeTo("widgets"));
  const std::vector<v1::Event> snapshot = ReadEvents(stream, 3);
  CHECK(snapshot[2].type() == v1::Event::SYNCED);

  // The CRD goes: its objects and endpoints with it, and discovery no longer lists it.
  REQUIRE(d.server_.UnregisterResource("widgets.example.com"));
  const grpc::Status ended = stream.Finish();
  CHECK(ended.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(ended.error_message().find("stopped being served") != std::string::npos);

  // Reported, with nothing stale in it; reads answer UNAVAILABLE ("retry"), not NOT_FOUND.
  REQUIRE(WaitUntil([&] { return !d.informers_->AllSynced() && d.Resource("widgets"); }));
  std::optional<v1::ResourceInfo> info = d.Resource("widgets");
  REQUIRE(info.has_value());
  CHECK(info->condition() == kGone);
  CHECK_FALSE(info->synced());
  CHECK(info->object_count() == 0);
  CHECK(d.informers_->Pending() == std::vector<std::string>{std::string("widgets: ") + kGone});
  v1::ListResponse list;
  const grpc::Status listed = d.List("widgets", &list);
  CHECK(listed.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(list.items_size() == 0);
  const grpc::Status refused = SubscribeError(*d.stub_, SubscribeTo("widgets"));
  CHECK(refused.error_code() == grpc::StatusCode::UNAVAILABLE);

  // The informer has stopped: no more LIST or WATCH for the resource, only rediscovery.
  const std::size_t before = d.Requests("widgets");
  std::this_thread::sleep_for(milliseconds(1500));
  CHECK(d.Requests("widgets") == before);
  CHECK(d.server_.OpenWatches("widgets.example.com") == 0);

  // The CRD is created again, under another version; the informer relists and serves again.
  d.server_.RegisterResource(Widgets("v2"));
  REQUIRE(d.server_.Upsert("widgets.example.com", "ns", "c").ok());
  REQUIRE(WaitUntil([&] { return d.informers_->AllSynced(); }));
  info = d.Resource("widgets");
  REQUIRE(info.has_value());
  CHECK(info->version() == "v2");
  CHECK(info->synced());
  CHECK(info->condition().empty());
  CHECK(info->object_count() == 1);
  CHECK(d.Resources().size() == 1);
  Stream again(*d.stub_, SubscribeTo("widgets"));
  const std::vector<std::string> events = Describe(ReadEvents(again, 2));
  CHECK(events[0].rfind("ADDED ns/c", 0) == 0);
  CHECK(events[1].rfind("SYNCED", 0) == 0);
}

TEST_CASE("a 404 that discovery does not confirm keeps the informer, which heals by itself") {
  Daemon d({Entry("widgets")}, SharedInformerFactoryOptions());
  REQUIRE(d.server_.Upsert("widgets.example.com", "ns", "a").ok());
  REQUIRE(WaitUntil([&] { return d.informers_->AllSynced(); }));
  Stream stream(*d.stub_, SubscribeTo("widgets"));
  stream.Read(2);

  // LIST and WATCH answer 404 for a while, but discovery still lists the resource.
  d.server_.InjectFault("widgets.example.com", fakeapi::Verb::kWatch,
                        fakeapi::Fault::HttpError(404, "NotFound"), 1);
  d.server_.InjectFault("widgets.example.com", fakeapi::Verb::kList,
                        fakeapi::Fault::HttpError(404, "NotFound"), 1);
  d.server_.EndWatches("widgets.example.com");
  REQUIRE(WaitUntil([&] {
    return d.ResourceIs("widgets",
                        [](const v1::ResourceInfo& info) { return info.condition() == kGone; });
  }));
  REQUIRE(d.server_.Upsert("widgets.example.com", "ns", "b").ok());
  // Back within a gone_retry_interval; the subscriber kept its stream.
  REQUIRE(WaitUntil([&] {
    return d.ResourceIs("widgets", [](const v1::ResourceInfo& info) { return info.synced(); });
  }));
  CHECK(d.ListedResource("widgets").condition().empty());
  const std::vector<std::string> events = Describe(ReadEvents(stream, 1));
  CHECK(events[0].rfind("ADDED ns/b", 0) == 0);
}

// ---- On-demand informers (allowOnDemand): started by a reader, stopped after a grace -------

SharedInformerFactoryOptions OnDemand(milliseconds grace) {
  SharedInformerFactoryOptions options;
  options.allow_on_demand = true;
  options.on_demand_grace_period = grace;
  return options;
}

TEST_CASE("a resource the configuration does not list is NOT_FOUND without allowOnDemand") {
  Daemon d({Entry("pods")}, SharedInformerFactoryOptions());
  REQUIRE(d.server_.Upsert("configmaps", "ns", "a").ok());
  REQUIRE(WaitUntil([&] { return d.informers_->AllSynced(); }));
  const grpc::Status status = SubscribeError(*d.stub_, SubscribeTo("configmaps"));
  CHECK(status.error_code() == grpc::StatusCode::NOT_FOUND);
  v1::ListResponse list;
  CHECK(d.List("configmaps", &list).error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(d.Requests("configmaps") == 0);
  CHECK(d.Resources().size() == 1);
}

TEST_CASE("the first subscriber starts an on-demand informer; later ones share its watch") {
  Daemon d({Entry("pods")}, OnDemand(seconds(60)));
  REQUIRE(d.server_.Upsert("configmaps", "ns", "a").ok());
  REQUIRE(d.server_.Upsert("configmaps", "ns", "b").ok());
  REQUIRE(WaitUntil([&] { return d.informers_->AllSynced(); }));

  Stream first(*d.stub_, SubscribeTo("configmaps"));
  std::vector<std::string> events = Describe(ReadEvents(first, 3));
  CHECK(events[0].rfind("ADDED ns/a", 0) == 0);
  CHECK(events[1].rfind("ADDED ns/b", 0) == 0);
  CHECK(events[2].rfind("SYNCED", 0) == 0);
  std::optional<v1::ResourceInfo> info = d.Resource("configmaps");
  REQUIRE(info.has_value());
  CHECK(info->on_demand());
  CHECK(info->namespace_().empty());
  CHECK_FALSE(d.ListedResource("pods").on_demand());

  // The same snapshot (event versions may differ: the first subscriber's snapshot was still
  // being listed, and its events carry the list's version).
  Stream second(*d.stub_, SubscribeTo("cm", "ns"));
  const std::vector<std::string> shared = Describe(ReadEvents(second, 3));
  CHECK(shared[0].rfind("ADDED ns/a", 0) == 0);
  CHECK(shared[1].rfind("ADDED ns/b", 0) == 0);
  CHECK(shared[2] == events[2]);
  v1::ListResponse list;
  REQUIRE(d.List("configmaps", &list).ok());
  CHECK(list.items_size() == 2);
  REQUIRE(d.server_.WaitForOpenWatches("configmaps", 1, seconds(10)));
  CHECK(d.server_.OpenWatches("configmaps") == 1);
  CHECK(d.Lists("configmaps") == 1);
  CHECK(d.ListedResource("configmaps").subscriber_count() == 2);

  // Live events reach both through the one watch.
  REQUIRE(d.server_.Upsert("configmaps", "ns", "c").ok());
  CHECK(Describe(ReadEvents(first, 1))[0].rfind("ADDED ns/c", 0) == 0);
  CHECK(Describe(ReadEvents(second, 1))[0].rfind("ADDED ns/c", 0) == 0);
}

TEST_CASE("an on-demand informer stops a grace period after its last subscriber leaves") {
  Daemon d({Entry("pods")}, OnDemand(milliseconds(400)));
  REQUIRE(d.server_.Upsert("configmaps", "ns", "a").ok());
  {
    Stream first(*d.stub_, SubscribeTo("configmaps"));
    first.Read(2);
    Stream second(*d.stub_, SubscribeTo("configmaps"));
    second.Read(2);
    REQUIRE(d.server_.WaitForOpenWatches("configmaps", 1, seconds(10)));
    first.context().TryCancel();
    first.Finish();
    // One left: still running, past the grace period.
    std::this_thread::sleep_for(milliseconds(800));
    CHECK(d.server_.OpenWatches("configmaps") == 1);
    second.context().TryCancel();
    second.Finish();
  }
  const auto left = std::chrono::steady_clock::now();
  REQUIRE(d.server_.WaitForOpenWatches("configmaps", 0, seconds(10)));
  CHECK(std::chrono::steady_clock::now() - left >= milliseconds(300));
  CHECK_FALSE(d.Resource("configmaps").has_value());

  // A new subscriber starts it afresh.
  Stream again(*d.stub_, SubscribeTo("configmaps"));
  CHECK(Describe(ReadEvents(again, 2))[1].rfind("SYNCED", 0) == 0);
  CHECK(d.Lists("configmaps") == 2);
}

TEST_CASE("a subscriber arriving during the grace period keeps the on-demand informer") {
  Daemon d({Entry("pods")}, OnDemand(milliseconds(800)));
  REQUIRE(d.server_.Upsert("configmaps", "ns", "a").ok());
  {
    Stream first(*d.stub_, SubscribeTo("configmaps"));
    first.Read(2);
    first.context().TryCancel();
    first.Finish();
  }
  Stream second(*d.stub_, SubscribeTo("configmaps"));
  second.Read(2);
  std::this_thread::sleep_for(milliseconds(1500));
  CHECK(d.server_.OpenWatches("configmaps") == 1);
  CHECK(d.Lists("configmaps") == 1);
  REQUIRE(d.server_.Upsert("configmaps", "ns", "b").ok());
  CHECK(Describe(ReadEvents(second, 1))[0].rfind("ADDED ns/b", 0) == 0);
}

TEST_CASE("daemon shutdown with on-demand informers running ends their streams") {
  Daemon d({Entry("pods")}, OnDemand(seconds(60)));
  REQUIRE(d.server_.Upsert("configmaps", "ns", "a").ok());
  Stream stream(*d.stub_, SubscribeTo("configmaps"));
  stream.Read(2);
  REQUIRE(d.server_.WaitForOpenWatches("configmaps", 1, seconds(10)));
  d.service_->Shutdown();
  d.informers_->Stop();
  const grpc::Status status = stream.Finish();
  CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(d.server_.WaitForOpenWatches("configmaps", 0, seconds(10)));
  const grpc::Status refused = SubscribeError(*d.stub_, SubscribeTo("deployments"));
  CHECK(refused.error_code() == grpc::StatusCode::UNAVAILABLE);
  d.Shutdown();
}

}  // namespace
}  // namespace informerd::daemon
