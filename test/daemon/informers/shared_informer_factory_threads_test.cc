// SharedInformerFactory with several ingest clients (SharedInformerFactoryOptions::ingest_clients),
// as the daemon runs it with --ingest-threads: two ApiServerClients, each on an io_context run by
// a thread of its own, against the fake apiserver. Every informer, configured or on demand, is
// placed on the client running the fewest informers, and all of its requests and callbacks
// (LIST pages, watch bytes, watch ends: the decoding and the cache updates they carry) happen on
// that client, on that client's thread.
#include <boost/asio/post.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "daemon/informers/resource_registry.h"
#include "daemon/informers/shared_informer_factory.h"
#include "daemon/kube/apiserver_client.h"
#include "daemon/kube/auth/credentials.h"
#include "daemon/kube/auth/rest_config.h"
#include "daemon/kube/discovery.h"
#include "spdlog/sinks/null_sink.h"
#include "test/common/api_test_support.h"
#include "test/common/wait_until.h"
#include "test/fakeapi/fake_api_server.h"

namespace informerd::daemon {
namespace {

using fakeapi::FakeApiServer;
using std::chrono::milliseconds;
using test::Awaited;
using test::IoThread;
using test::kWait;
using test::WaitUntil;

// "pods" from "/api/v1/pods?limit=500" or "/apis/apps/v1/deployments?watch=1&...".
std::string ResourceOf(const std::string& path_and_query) {
  const std::string path = path_and_query.substr(0, path_and_query.find('?'));
  return path.substr(path.rfind('/') + 1);
}

// A ListWatchClient in front of an ApiServerClient that notes which resources it was asked for
// and whether every callback ran on the thread that runs the client's io_context.
class ThreadRecordingClient final : public ListWatchClient {
 public:
  ThreadRecordingClient(ApiServerClient& inner, std::thread::id io_thread)
      : inner_(inner), io_thread_(io_thread) {}

  void Get(std::string path_and_query, std::string accept, GetCallback done) override {
    Note(path_and_query);
    inner_.Get(path_and_query, std::move(accept),
               [this, done = std::move(done)](HttpResult result) {
                 Called();
                 done(std::move(result));
               });
  }

  WatchHandle Watch(std::string path_and_query, BytesCallback on_bytes,
                    EndCallback on_end) override {
    Note(path_and_query);
    return inner_.Watch(
        path_and_query,
        [this, on_bytes = std::move(on_bytes)](std::string_view bytes) {
          Called();
          on_bytes(bytes);
        },
        [this, on_end = std::move(on_end)](HttpResult result) {
          Called();
          on_end(std::move(result));
        });
  }

  Strand strand() const override { return inner_.strand(); }

  std::set<std::string> resources() const {
    std::lock_guard<std::mutex> lock(mu_);
    return resources_;
  }
  std::size_t callbacks() const {
    std::lock_guard<std::mutex> lock(mu_);
    return callbacks_;
  }
  std::size_t callbacks_on_other_threads() const {
    std::lock_guard<std::mutex> lock(mu_);
    return wrong_thread_;
  }

 private:
  void Note(const std::string& path_and_query) {
    std::lock_guard<std::mutex> lock(mu_);
    resources_.insert(ResourceOf(path_and_query));
  }
  void Called() {
    std::lock_guard<std::mutex> lock(mu_);
    ++callbacks_;
    if (std::this_thread::get_id() != io_thread_) ++wrong_thread_;
  }

  ApiServerClient& inner_;
  const std::thread::id io_thread_;
  mutable std::mutex mu_;
  std::set<std::string> resources_;  // guarded by mu_
  std::size_t callbacks_ = 0;        // guarded by mu_
  std::size_t wrong_thread_ = 0;     // guarded by mu_
};

// The thread that runs `io`.
std::thread::id ThreadOf(IoThread& io) {
  Awaited<std::thread::id> id;
  boost::asio::post(io.io(), [callback = id.Callback()] { callback(std::this_thread::get_id()); });
  const std::optional<std::thread::id> got = id.Wait();
  REQUIRE(got.has_value());
  return *got;
}

std::unique_ptr<ApiServerClient> ClientOf(IoThread& io, const FakeApiServer& server,
                                          const std::shared_ptr<CredentialSource>& credentials) {
  RestConfig config;
  auto url = ParseServerUrl(server.base_url());
  REQUIRE(url.ok());
  config.server = *url;
  config.credentials = credentials;  // one source for every client, as the daemon shares it
  config.identity = "test";
  auto client = ApiServerClient::Create(io.io(), std::move(config));
  REQUIRE(client.ok());
  return *std::move(client);
}

ResourceConfig Entry(const std::string& resource) {
  ResourceConfig config;
  config.resource = resource;
  return config;
}

// Two ingest clients on two threads; client 0 is also the factory's (discovery's) client.
struct TwoThreads {
  TwoThreads() {
    REQUIRE(server.Start().ok());
    auto credentials = std::make_shared<StaticCredentialSource>(Credentials{});
    raw0 = ClientOf(io0, server, credentials);
    raw1 = ClientOf(io1, server, credentials);
    client0 = std::make_unique<ThreadRecordingClient>(*raw0, ThreadOf(io0));
    client1 = std::make_unique<ThreadRecordingClient>(*raw1, ThreadOf(io1));
    discovery = std::make_unique<Discovery>(*client0, clock);
  }

  std::shared_ptr<SharedInformerFactory> Factory(std::vector<ResourceConfig> entries) {
    SharedInformerFactoryOptions options;
    options.registry = &registry;
    options.allow_on_demand = true;
    options.ingest_clients = {client0.get(), client1.get()};
    return SharedInformerFactory::Create(
        *client0, *discovery, clock, std::move(entries), options, nullptr,
        std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>()));
  }

  core::ResolvedResource Resolve(const std::string& name) {
    Awaited<absl::StatusOr<core::ResolvedResource>> resolved;
    discovery->Resolve(name, resolved.Callback());
    const auto got = resolved.Wait();
    REQUIRE(got.has_value());
    REQUIRE(got->ok());
    return **got;
  }

  // Destroyed in reverse: the factory (held by the test) first, then discovery, the clients,
  // the threads, the server.
  FakeApiServer server;
  const core::SteadyClock clock;
  IoThread io0;
  IoThread io1;
  std::unique_ptr<ApiServerClient> raw0;
  std::unique_ptr<ApiServerClient> raw1;
  std::unique_ptr<ThreadRecordingClient> client0;
  std::unique_ptr<ThreadRecordingClient> client1;
  std::unique_ptr<Discovery> discovery;
  ResourceRegistry registry;
};

// The running informer for `plural`, or nullptr.
const RunningInformer* Find(const std::vector<RunningInformer>& running,
                            const std::string& plural) {
  for (const RunningInformer& entry : running) {
    if (entry.resource.resource == plural) return &entry;
  }
  return nullptr;
}

bool Holds(const std::shared_ptr<SharedInformerFactory>& factory, const std::string& plural,
           std::size_t objects) {
  const std::vector<RunningInformer> running = factory->Entries();
  const RunningInformer* entry = Find(running, plural);
  if (!entry) return false;
  const core::CacheStats stats = entry->cache->Stats();
  return stats.synced && stats.object_count == objects;
}

void Stop(std::shared_ptr<SharedInformerFactory>& factory) {
  factory->Stop();
  // Let the posted stops run on both threads before the factory goes.
  std::this_thread::sleep_for(milliseconds(100));
  factory.reset();
}

TEST_CASE("configured informers are spread over the ingest clients, each on its own thread") {
  TwoThreads setup;
  REQUIRE(setup.server.Upsert("pods", "default", "pod-a").ok());
  REQUIRE(setup.server.Upsert("configmaps", "default", "cm-a").ok());
  auto factory = setup.Factory({Entry("pods"), Entry("configmaps")});
  factory->Start();

  REQUIRE(WaitUntil([&] { return Holds(factory, "pods", 1) && Holds(factory, "configmaps", 1); },
                    kWait));
  // Events stream to both, each through its own client.
  REQUIRE(setup.server.Upsert("pods", "default", "pod-b").ok());
  REQUIRE(setup.server.Upsert("configmaps", "default", "cm-b").ok());
  REQUIRE(WaitUntil([&] { return Holds(factory, "pods", 2) && Holds(factory, "configmaps", 2); },
                    kWait));

  const std::vector<RunningInformer> running = factory->Entries();
  REQUIRE(running.size() == 2);
  CHECK(Find(running, "pods")->ingest_client == 0);
  CHECK(Find(running, "configmaps")->ingest_client == 1);
  // Client 0 also carries discovery ("api", "apis", "v1" ...): only the informers' resources
  // are looked at.
  const std::set<std::string> on0 = setup.client0->resources();
  const std::set<std::string> on1 = setup.client1->resources();
  CHECK(on0.count("pods") == 1);
  CHECK(on0.count("configmaps") == 0);
  CHECK(on1 == std::set<std::string>{"configmaps"});
  CHECK(setup.client1->callbacks() > 0);
  CHECK(setup.client0->callbacks_on_other_threads() == 0);
  CHECK(setup.client1->callbacks_on_other_threads() == 0);
  Stop(factory);
}

TEST_CASE("on-demand informers go to the least loaded ingest client, on its thread") {
  TwoThreads setup;
  REQUIRE(setup.server.Upsert("pods", "default", "pod-a").ok());
  REQUIRE(setup.server.Upsert("namespaces", "", "ns-a").ok());
  REQUIRE(setup.server.Upsert("deployments.apps", "default", "deploy-a").ok());
  auto factory = setup.Factory({Entry("pods")});
  factory->Start();
  REQUIRE(WaitUntil([&] { return Holds(factory, "pods", 1); }, kWait));

  // pods is on client 0: the first on-demand informer goes to client 1, the next to client 0
  // (one each then; the first on a tie).
  auto namespaces = factory->Acquire(setup.Resolve("namespaces"));
  REQUIRE(namespaces.ok());
  auto deployments = factory->Acquire(setup.Resolve("deployments"));
  REQUIRE(deployments.ok());
  REQUIRE(WaitUntil(
      [&] { return Holds(factory, "namespaces", 1) && Holds(factory, "deployments", 1); }, kWait));
  REQUIRE(setup.server.Upsert("namespaces", "", "ns-b").ok());
  REQUIRE(setup.server.Upsert("deployments.apps", "default", "deploy-b").ok());
  REQUIRE(WaitUntil(
      [&] { return Holds(factory, "namespaces", 2) && Holds(factory, "deployments", 2); }, kWait));

  const std::vector<RunningInformer> running = factory->Entries();
  CHECK(Find(running, "pods")->ingest_client == 0);
  CHECK(Find(running, "namespaces")->ingest_client == 1);
  CHECK(Find(running, "deployments")->ingest_client == 0);
  const std::set<std::string> on0 = setup.client0->resources();
  CHECK(on0.count("pods") == 1);
  CHECK(on0.count("deployments") == 1);
  CHECK(on0.count("namespaces") == 0);
  CHECK(setup.client1->resources() == std::set<std::string>{"namespaces"});
  CHECK(setup.client0->callbacks_on_other_threads() == 0);
  CHECK(setup.client1->callbacks_on_other_threads() == 0);
  Stop(factory);
}

}  // namespace
}  // namespace informerd::daemon
