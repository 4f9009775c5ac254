// Test support for daemon/service/informer_service.*: a real gRPC server on 127.0.0.1:0 serving an
// InformerService over core::Caches that the test feeds directly through the ReflectorSink
// interface, with a fake ResourceResolver; objects built from JSON by core::ObjectScanner, the way
// the decoders build them; and small synchronous client helpers.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/cache.h"
#include "core/cache_event.h"
#include "core/clock.h"
#include "core/object_record.h"
#include "core/reflector.h"
#include "core/watch_event_decoder.h"
#include "daemon/informers/resource_registry.h"
#include "daemon/kube/discovery.h"
#include "daemon/security/access_control.h"
#include "daemon/service/informer_service.h"
#include "informerd/v1/informerd.grpc.pb.h"

namespace informerd::daemon::testing {

// The extra field path a test cache indexes unless the test names others (usable in field
// selectors).
inline const char kNodeNamePath[] = "spec.nodeName";

// Cache options indexing spec.nodeName: CacheSpec's default.
core::CacheOptions NodeNameIndexed();

core::ResolvedResource PodsResource();
core::ResolvedResource DeploymentsResource();
core::ResolvedResource NodesResource();

struct ObjectSpec {
  ObjectSpec(std::string namespace_name_in, std::string name_in, uint64_t resource_version_in,
             std::map<std::string, std::string> labels_in = {}, std::string node_name_in = "")
      : namespace_name(std::move(namespace_name_in)),
        name(std::move(name_in)),
        resource_version(resource_version_in),
        labels(std::move(labels_in)),
        node_name(std::move(node_name_in)) {}

  std::string namespace_name;
  std::string name;
  uint64_t resource_version = 1;
  std::map<std::string, std::string> labels;
  std::string node_name;
  // Defaults to "uid-<name>".
  std::string uid;
  // Bytes of filler in the JSON, to make objects as large as a test needs.
  std::size_t padding = 0;
};

// The object's JSON, with managedFields (which the scanner strips, as the daemon does).
std::string ObjectJson(const ObjectSpec& spec);
// Scanned from ObjectJson with `extra_field_paths` (spec.nodeName by default), as the daemon
// scans with the configuration's indexes: a cache must be fed records scanned with its own
// extra_field_paths, in the same order. Fails the test if it does not scan.
core::ObjectRecord Object(const ObjectSpec& spec,
                          const std::vector<std::string>& extra_field_paths = {kNodeNamePath});

core::WatchEvent Added(const ObjectSpec& spec);
core::WatchEvent Modified(const ObjectSpec& spec);
core::WatchEvent Deleted(const ObjectSpec& spec);
core::WatchEvent Bookmark(uint64_t resource_version);

// Feeds a complete list: BeginList, ListItems, EndList at `resource_version`. The objects are
// scanned with the cache's own extra field paths.
void Sync(core::Cache& cache, const std::vector<ObjectSpec>& objects, uint64_t resource_version);

// An access control that lets every call without credentials through, as system:anonymous, to
// read anything (AlwaysAllow; a bearer token is refused), writing no audit lines: for the tests
// of everything but access. Process-wide, never destroyed.
AccessControl& AllowEveryone();

// Resolves names from a table; unknown names are NOT_FOUND and "ambiguous" is INVALID_ARGUMENT,
// as discovery answers. Inline by default (done runs inside Resolve); deferred, callbacks wait
// until Release() runs them on another thread.
class FakeResolver final : public ResourceResolver {
 public:
  FakeResolver();
  void Resolve(std::string name,
               std::function<void(absl::StatusOr<core::ResolvedResource>)> done) override;

  void Add(const std::string& name, core::ResolvedResource resource);
  void set_deferred(bool deferred);
  std::size_t pending() const;
  // Runs every waiting callback on a new thread and waits for them.
  void Release();
  int calls() const { return calls_.load(); }

 private:
  mutable std::mutex mu_;
  std::map<std::string, core::ResolvedResource> names_;
  bool deferred_ = false;
  std::vector<std::function<void()>> waiting_;
  std::atomic<int> calls_{0};
};

// What the counting encoder saw: one entry per call.
struct EncodeCall {
  core::EventType type;
  std::string resource_version;
  const core::CacheEvent* event;
};

struct HarnessOptions {
  InformerServiceOptions service;
  // Serve this registry instead of the harness's own (for a SharedInformerFactory's, say); it
  // must outlive the harness. AddCache still adds to the harness's own.
  const ResourceRegistry* registry = nullptr;
  // Who may do what; null: AllowEveryone(). Must outlive the harness.
  AccessControl* access_control = nullptr;
  // Raise gRPC's 4 MiB receive limit, for requests larger than it.
  int max_receive_message_bytes = 0;
};

// The server, the service, the registry and a stub. Destruction shuts the server down (open
// calls are cancelled), then destroys the service.
class Harness {
 public:
  explicit Harness(HarnessOptions options = {});
  ~Harness();
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  struct CacheSpec {
    core::ResolvedResource resource = PodsResource();
    std::string namespace_name;
    std::string label_selector;
    std::string field_selector;
    std::function<core::ReflectorStatus()> status;
    // extra_field_paths are the indexes, as the daemon sets them from the configuration's
    // `indexes:` (Sync scans objects with them).
    core::CacheOptions cache = NodeNameIndexed();
  };
  // A new cache with spec.cache's options, registered.
  std::shared_ptr<core::Cache> AddCache(CacheSpec spec);
  std::shared_ptr<core::Cache> AddCache() { return AddCache(CacheSpec()); }

  std::shared_ptr<grpc::Channel> NewChannel(const grpc::ChannelArguments& args = {}) const;
  void ShutdownServer();

  std::vector<EncodeCall> encode_calls() const;

  core::SteadyClock clock;
  FakeResolver resolver;
  ResourceRegistry registry;
  std::map<std::shared_ptr<core::Cache>, ResourceRegistry::Id> ids;
  std::unique_ptr<InformerService> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Informer::Stub> stub;

 private:
  mutable std::mutex encode_mu_;
  std::vector<EncodeCall> encode_calls_;
};

// A Subscribe stream read synchronously. The call has a deadline (default 60 s) so that a test
// that waits for something that never comes fails instead of hanging.
class Stream {
 public:
  Stream(v1::Informer::Stub& stub, const v1::SubscribeRequest& request,
         std::chrono::milliseconds deadline = std::chrono::seconds(60));
  // Waits for the response headers: once they arrive, the server has subscribed (or failed).
  void WaitSubscribed();
  std::optional<v1::Event> Next();
  // Reads `count` events; fails the test if the stream ends first. Once it has ended, Next()
  // returns nothing.
  std::vector<v1::Event> Read(std::size_t count);
  // Reads to the end and returns the status.
  grpc::Status Finish(std::vector<v1::Event>* rest = nullptr);
  grpc::ClientContext& context() { return context_; }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::Event>> reader_;
  // The call's status once read (gRPC's Finish may be called only once): later reads find the
  // stream ended, and Finish returns it again.
  std::optional<grpc::Status> status_;
};

v1::SubscribeRequest SubscribeTo(const std::string& resource,
                                 const std::string& namespace_name = "",
                                 const std::string& label_selector = "",
                                 const std::string& field_selector = "",
                                 const std::string& resource_version = "");

// "ADDED default/a rv=5", "SYNCED rv=10": for comparisons.
std::string Describe(const v1::Event& event);
std::vector<std::string> Describe(const std::vector<v1::Event>& events);

// The status of a Subscribe call that fails before any event.
grpc::Status SubscribeError(v1::Informer::Stub& stub, const v1::SubscribeRequest& request);

bool WaitUntil(const std::function<bool()>& condition,
               std::chrono::milliseconds timeout = std::chrono::seconds(20));

}  // namespace informerd::daemon::testing
