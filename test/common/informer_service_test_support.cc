#include "test/common/informer_service_test_support.h"

#include <catch2/catch.hpp>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "core/object_scanner.h"
#include "daemon/security/always_allow_authorizer.h"
#include "daemon/security/request_authenticator.h"
#include "daemon/service/event_encoder.h"
#include "fmt/format.h"
#include "test/common/wait_until.h"

namespace informerd::daemon::testing {

core::ResolvedResource PodsResource() {
  core::ResolvedResource pods;
  pods.version = "v1";
  pods.resource = "pods";
  pods.kind = "Pod";
  pods.namespaced = true;
  return pods;
}

core::ResolvedResource DeploymentsResource() {
  core::ResolvedResource deployments;
  deployments.group = "apps";
  deployments.version = "v1";
  deployments.resource = "deployments";
  deployments.kind = "Deployment";
  deployments.namespaced = true;
  return deployments;
}

core::ResolvedResource NodesResource() {
  core::ResolvedResource nodes;
  nodes.version = "v1";
  nodes.resource = "nodes";
  nodes.kind = "Node";
  nodes.namespaced = false;
  return nodes;
}

std::string ObjectJson(const ObjectSpec& spec) {
  std::string labels;
  for (const auto& [key, value] : spec.labels) {
    labels += fmt::format("{}\"{}\":\"{}\"", labels.empty() ? "" : ",", key, value);
  }
  const std::string uid = spec.uid.empty() ? "uid-" + spec.name : spec.uid;
  std::string namespace_member;
  if (!spec.namespace_name.empty()) {
    namespace_member = fmt::format("\"namespace\":\"{}\",", spec.namespace_name);
  }
  return fmt::format(
      R"({{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{}",{}"uid":"{}",)"
      R"("resourceVersion":"{}","labels":{{{}}},"managedFields":[{{"manager":"kubectl"}}]}},)"
      R"("spec":{{"nodeName":"{}"}},"filler":"{}"}})",
      spec.name, namespace_member, uid, spec.resource_version, labels, spec.node_name,
      std::string(spec.padding, 'x'));
}

core::CacheOptions NodeNameIndexed() {
  core::CacheOptions options;
  options.extra_field_paths = {kNodeNamePath};
  return options;
}

core::ObjectRecord Object(const ObjectSpec& spec,
                          const std::vector<std::string>& extra_field_paths) {
  core::ScanOptions options;
  options.extra_field_paths = extra_field_paths;
  core::ObjectScanner scanner(options);
  absl::StatusOr<core::ObjectRecord> record = scanner.Scan(ObjectJson(spec));
  INFO(record.status().ToString());
  REQUIRE(record.ok());
  return std::move(*record);
}

namespace {
core::WatchEvent MakeEvent(core::WatchEventType type, const ObjectSpec& spec) {
  core::WatchEvent event;
  event.type = type;
  event.object = Object(spec);
  return event;
}
}  // namespace

core::WatchEvent Added(const ObjectSpec& spec) {
  return MakeEvent(core::WatchEventType::kAdded, spec);
}
core::WatchEvent Modified(const ObjectSpec& spec) {
  return MakeEvent(core::WatchEventType::kModified, spec);
}
core::WatchEvent Deleted(const ObjectSpec& spec) {
  return MakeEvent(core::WatchEventType::kDeleted, spec);
}
core::WatchEvent Bookmark(uint64_t resource_version) {
  core::WatchEvent event;
  event.type = core::WatchEventType::kBookmark;
  event.resource_version = fmt::format("{}", resource_version);
  return event;
}

void Sync(core::Cache& cache, const std::vector<ObjectSpec>& objects, uint64_t resource_version) {
  std::vector<core::ObjectRecord> records;
  for (const ObjectSpec& spec : objects) {
    records.push_back(Object(spec, cache.extra_field_paths()));
  }
  const std::string version = fmt::format("{}", resource_version);
  cache.BeginList();
  cache.ListItems(std::move(records), version);
  cache.EndList(version);
}

// ---- FakeResolver --------------------------------------------------------------------------

FakeResolver::FakeResolver() {
  Add("pods", PodsResource());
  Add("po", PodsResource());
  Add("v1/pods", PodsResource());
  Add("deployments", DeploymentsResource());
  Add("deployments.apps", DeploymentsResource());
  Add("nodes", NodesResource());
}

void FakeResolver::Add(const std::string& name, core::ResolvedResource resource) {
  std::lock_guard<std::mutex> lock(mu_);
  names_[name] = std::move(resource);
}

void FakeResolver::set_deferred(bool deferred) {
  std::lock_guard<std::mutex> lock(mu_);
  deferred_ = deferred;
}

std::size_t FakeResolver::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waiting_.size();
}

void FakeResolver::Resolve(std::string name,
                           std::function<void(absl::StatusOr<core::ResolvedResource>)> done) {
  ++calls_;
  absl::StatusOr<core::ResolvedResource> result;
  bool deferred = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    deferred = deferred_;
    if (name == "ambiguous") {
      result = absl::InvalidArgumentError(
          "resource \"ambiguous\" is ambiguous: it matches ambiguous.a.example.com, "
          "ambiguous.b.example.com");
    } else if (const auto it = names_.find(name); it != names_.end()) {
      result = it->second;
    } else {
      result =
          absl::NotFoundError(fmt::format("the server doesn't have a resource type \"{}\"", name));
    }
    if (deferred) {
      waiting_.push_back([done = std::move(done), result] { done(result); });
      return;
    }
  }
  done(std::move(result));
}

void FakeResolver::Release() {
  std::vector<std::function<void()>> waiting;
  {
    std::lock_guard<std::mutex> lock(mu_);
    waiting.swap(waiting_);
  }
  std::thread([&waiting] {
    for (auto& callback : waiting) callback();
  }).join();
}

// ---- Harness -------------------------------------------------------------------------------

AccessControl& AllowEveryone() {
  static AlwaysAllowAuthorizer* const authorizer = new AlwaysAllowAuthorizer;
  static RequestAuthenticator* const authenticator =
      new RequestAuthenticator(nullptr, /*allow_anonymous=*/true);
  static AccessControl* const access = new AccessControl(*authenticator, *authorizer, nullptr);
  return *access;
}

Harness::Harness(HarnessOptions options) {
  InformerServiceOptions service_options = std::move(options.service);
  if (!service_options.encoder) {
    service_options.encoder = [this](const core::CacheEvent& event, core::EventType delivered) {
      {
        std::lock_guard<std::mutex> lock(encode_mu_);
        encode_calls_.push_back(EncodeCall{delivered, event.resource_version(), &event});
      }
      return EncodeEvent(event, delivered);
    };
  }
  AccessControl& access = options.access_control ? *options.access_control : AllowEveryone();
  service = std::make_unique<InformerService>(
      resolver, options.registry ? *options.registry : registry, access, std::move(service_options));
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  if (options.max_receive_message_bytes > 0) {
    builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  }
  builder.RegisterService(service.get());
  server = builder.BuildAndStart();
  REQUIRE(server);
  REQUIRE(port != 0);
  channel = NewChannel();
  stub = v1::Informer::NewStub(channel);
}

Harness::~Harness() {
  ShutdownServer();
  stub.reset();
  channel.reset();
  service.reset();
}

void Harness::ShutdownServer() {
  if (!server) return;
  // Open calls are cancelled at once; Wait returns when every call has finished. A call the
  // service never finishes would hang here: fail loudly instead of at the test timeout.
  std::mutex mu;
  std::condition_variable stopped_cv;
  bool stopped = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(mu);
    if (!stopped_cv.wait_for(lock, std::chrono::seconds(30), [&] { return stopped; })) {
      std::fprintf(stderr, "the gRPC server did not stop within 30 s: a call was never finished\n");
      std::abort();
    }
  });
  server->Shutdown(std::chrono::system_clock::now());
  server->Wait();
  {
    std::lock_guard<std::mutex> lock(mu);
    stopped = true;
  }
  stopped_cv.notify_one();
  watchdog.join();
  server.reset();
}

std::shared_ptr<core::Cache> Harness::AddCache(CacheSpec spec) {
  std::shared_ptr<core::Cache> cache = core::Cache::Create(spec.cache, clock);
  ServedResource served;
  served.resource = spec.resource;
  served.namespace_name = spec.namespace_name;
  served.label_selector = spec.label_selector;
  served.field_selector = spec.field_selector;
  served.cache = cache;
  served.status = spec.status;
  absl::StatusOr<ResourceRegistry::Id> id = registry.Add(std::move(served));
  REQUIRE(id.ok());
  ids[cache] = *id;
  return cache;
}

std::shared_ptr<grpc::Channel> Harness::NewChannel(const grpc::ChannelArguments& args) const {
  return grpc::CreateCustomChannel(fmt::format("127.0.0.1:{}", port),
                                   grpc::InsecureChannelCredentials(), args);
}

std::vector<EncodeCall> Harness::encode_calls() const {
  std::lock_guard<std::mutex> lock(encode_mu_);
  return encode_calls_;
}

// ---- Client helpers ------------------------------------------------------------------------

Stream::Stream(v1::Informer::Stub& stub, const v1::SubscribeRequest& request,
               std::chrono::milliseconds deadline) {
  context_.set_deadline(std::chrono::system_clock::now() + deadline);
  reader_ = stub.Subscribe(&context_, request);
}

void Stream::WaitSubscribed() { reader_->WaitForInitialMetadata(); }

std::optional<v1::Event> Stream::Next() {
  if (status_) return std::nullopt;
  v1::Event event;
  if (!reader_->Read(&event)) return std::nullopt;
  return event;
}

std::vector<v1::Event> Stream::Read(std::size_t count) {
  std::vector<v1::Event> events;
  while (events.size() < count) {
    std::optional<v1::Event> event = Next();
    if (!event) {
      if (!status_) status_ = reader_->Finish();
      const grpc::Status status = *status_;
      FAIL_CHECK(fmt::format("the stream ended after {} of {} events: {} {}", events.size(), count,
                             static_cast<int>(status.error_code()), status.error_message()));
      break;
    }
    events.push_back(std::move(*event));
  }
  return events;
}

grpc::Status Stream::Finish(std::vector<v1::Event>* rest) {
  while (std::optional<v1::Event> event = Next()) {
    if (rest) rest->push_back(std::move(*event));
  }
  if (!status_) status_ = reader_->Finish();
  return *status_;
}

v1::SubscribeRequest SubscribeTo(const std::string& resource, const std::string& namespace_name,
                                 const std::string& label_selector,
                                 const std::string& field_selector,
                                 const std::string& resource_version) {
  v1::SubscribeRequest request;
  request.set_resource(resource);
  request.set_namespace_(namespace_name);
  request.set_label_selector(label_selector);
  request.set_field_selector(field_selector);
  request.set_resource_version(resource_version);
  return request;
}

std::string Describe(const v1::Event& event) {
  const std::string type = v1::Event::Type_Name(event.type());
  if (event.type() == v1::Event::BOOKMARK || event.type() == v1::Event::SYNCED) {
    return fmt::format("{} rv={}", type, event.resource_version());
  }
  const std::string key = event.namespace_().empty()
                              ? event.name()
                              : fmt::format("{}/{}", event.namespace_(), event.name());
  return fmt::format("{} {} rv={}", type, key, event.resource_version());
}

std::vector<std::string> Describe(const std::vector<v1::Event>& events) {
  std::vector<std::string> out;
  for (const v1::Event& event : events) out.push_back(Describe(event));
  return out;
}

grpc::Status SubscribeError(v1::Informer::Stub& stub, const v1::SubscribeRequest& request) {
  Stream stream(stub, request, std::chrono::seconds(60));
  std::vector<v1::Event> events;
  grpc::Status status = stream.Finish(&events);
  CHECK(events.empty());
  return status;
}

bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  return test::WaitUntil(condition, timeout, std::chrono::milliseconds(5));
}

}  // namespace informerd::daemon::testing
