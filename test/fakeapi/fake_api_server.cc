#include "test/fakeapi/fake_api_server.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/strand.hpp>

#include <cstdio>
#include <future>
#include <map>
#include <mutex>

#include "fmt/format.h"
#include "test/fakeapi/api_handler.h"
#include "test/fakeapi/fake_http_session.h"
#include "test/fakeapi/fake_store.h"
#include "test/fakeapi/load_generator.h"
#include "test/fakeapi/server_settings.h"
#include "test/fakeapi/tls_material.h"

namespace informerd::fakeapi {

namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

// Everything the server owns. Declaration order is destruction order reversed: the io_context
// (and with it any session it still holds) goes before the store, log and settings sessions use.
struct FakeApiServer::Runtime {
  ResourceCatalog catalog;
  ServerSettings settings;
  ReviewTable reviews;
  FaultScript faults;
  RequestLog log;
  std::unique_ptr<FakeStore> store;
  std::unique_ptr<ApiHandler> handler;
  SessionRegistry registry;
  std::unique_ptr<ssl::context> tls;
  std::unique_ptr<net::io_context> io;
  std::shared_ptr<HttpListener> listener;
  std::thread thread;
  std::future<void> thread_done;
  bool started = false;
  bool stopped = false;

  std::mutex load_mutex;
  std::map<std::string, std::shared_ptr<LoadGenerator>> loads;  // By resource.
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> populated;
};

FakeApiServer::FakeApiServer() : runtime_(std::make_unique<Runtime>()) {}

FakeApiServer::~FakeApiServer() { Stop(); }

absl::Status FakeApiServer::CheckStarted() const {
  if (!runtime_->store) return absl::FailedPreconditionError("FakeApiServer::Start was not called");
  return absl::OkStatus();
}

absl::Status FakeApiServer::Start(const ServerOptions& options) {
  Runtime& rt = *runtime_;
  if (rt.started) return absl::FailedPreconditionError("FakeApiServer already started");
  rt.store = std::make_unique<FakeStore>(options.initial_revision, options.history_limit);
  for (const ResourceType& type : options.resources) rt.catalog.Register(type);
  for (const ResourceType& type : rt.catalog.All()) rt.store->AddResource(type.Key());
  rt.settings.set_bookmark_interval(options.bookmark_interval);
  rt.settings.set_watch_list_support(options.watch_list);
  rt.settings.set_rv0_ignores_limit(options.rv0_ignores_limit);
  rt.settings.set_git_version(options.git_version);
  rt.settings.set_review_apis(options.review_apis);
  rt.handler = std::make_unique<ApiHandler>(rt.catalog, *rt.store, rt.faults, rt.log, rt.settings,
                                            rt.reviews);

  if (options.tls) {
    const bool from_files = !options.tls_cert_file.empty() || !options.tls_key_file.empty() ||
                            !options.tls_ca_file.empty();
    auto material = from_files ? LoadTlsMaterial(options.tls_ca_file, options.tls_cert_file,
                                                 options.tls_key_file)
                               : GenerateTlsMaterial();
    if (!material.ok()) return material.status();
    rt.tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    boost::system::error_code ec;
    rt.tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                            ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                            ssl::context::no_tlsv1_1,
                        ec);
    if (!ec) rt.tls->use_certificate_chain(net::buffer(material->cert_pem), ec);
    if (!ec) rt.tls->use_private_key(net::buffer(material->key_pem), ssl::context::pem, ec);
    if (ec) return absl::InvalidArgumentError(fmt::format("TLS set-up failed: {}", ec.message()));
    ca_pem_ = material->ca_pem;
    tls_ = true;
  }

  rt.io = std::make_unique<net::io_context>(1);
  tcp::acceptor acceptor(net::make_strand(*rt.io));
  const tcp::endpoint endpoint(net::ip::address_v4::loopback(), options.port);
  boost::system::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        fmt::format("cannot listen on 127.0.0.1:{}: {}", options.port, ec.message()));
  }
  port_ = acceptor.local_endpoint().port();
  rt.settings.set_server_address(fmt::format("127.0.0.1:{}", port_));
  rt.listener = std::make_shared<HttpListener>(*rt.io, std::move(acceptor), rt.tls.get(),
                                               SessionContext{*rt.handler, rt.log}, rt.registry);
  rt.listener->Run();

  std::promise<void> done;
  rt.thread_done = done.get_future();
  rt.thread = std::thread([io = rt.io.get(), done = std::move(done)]() mutable {
    // No exception may leave the thread; a handler that throws is reported and the loop resumes.
    while (true) {
      try {
        io->run();
        break;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "fakeapi: I/O handler threw: %s\n", e.what());
      }
    }
    done.set_value();
  });
  rt.started = true;
  return absl::OkStatus();
}

void FakeApiServer::Stop() {
  Runtime& rt = *runtime_;
  if (!rt.started || rt.stopped) return;
  rt.stopped = true;
  StopModifications();
  rt.listener->Stop();  // Then every session closes; the loop runs out of work.
  if (rt.thread_done.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    std::fprintf(stderr, "fakeapi: connections did not close within 10 s; stopping the loop\n");
    rt.io->stop();
  }
  rt.thread.join();
  rt.listener.reset();
  {
    std::lock_guard<std::mutex> lock(rt.load_mutex);
    rt.loads.clear();
  }
  rt.io.reset();  // Destroys what handlers remain, while the store still exists.
}

std::string FakeApiServer::base_url() const {
  return fmt::format("{}://127.0.0.1:{}", tls_ ? "https" : "http", port_);
}

void FakeApiServer::RegisterResource(const ResourceType& type) {
  runtime_->catalog.Register(type);
  if (runtime_->store) runtime_->store->AddResource(type.Key());
}

bool FakeApiServer::UnregisterResource(const std::string& resource) {
  const bool known = runtime_->catalog.Unregister(resource);
  if (runtime_->store) runtime_->store->RemoveResource(resource);
  return known;
}

namespace {

absl::Status CheckNamespace(const ResourceType& type, const std::string& ns) {
  if (type.namespaced && ns.empty()) {
    return absl::InvalidArgumentError(fmt::format("{} is namespaced: give a namespace", type.Key()));
  }
  if (!type.namespaced && !ns.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("{} is cluster-scoped: the namespace must be empty", type.Key()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::uint64_t> FakeApiServer::Upsert(const std::string& resource,
                                                    const std::string& ns,
                                                    const std::string& name,
                                                    const ObjectSpec& spec) {
  if (auto s = CheckStarted(); !s.ok()) return s;
  auto type = runtime_->catalog.FindByKey(resource);
  if (!type) return absl::NotFoundError(fmt::format("resource {} is not registered", resource));
  if (auto s = CheckNamespace(*type, ns); !s.ok()) return s;
  return runtime_->store->Upsert(
      resource, ns, name,
      [&](const std::string& uid, const std::string& created, const StoredObject*) {
        return BuildObject(*type, ObjectIdentity{ns, name, uid, created}, spec);
      });
}

absl::StatusOr<std::uint64_t> FakeApiServer::UpsertJson(const std::string& resource,
                                                        const std::string& ns,
                                                        const std::string& name,
                                                        const std::string& json) {
  ObjectSpec spec;
  spec.json = json;
  return Upsert(resource, ns, name, spec);
}

absl::StatusOr<std::uint64_t> FakeApiServer::Recreate(const std::string& resource,
                                                      const std::string& ns,
                                                      const std::string& name,
                                                      const ObjectSpec& spec) {
  if (auto s = CheckStarted(); !s.ok()) return s;
  auto type = runtime_->catalog.FindByKey(resource);
  if (!type) return absl::NotFoundError(fmt::format("resource {} is not registered", resource));
  if (auto s = CheckNamespace(*type, ns); !s.ok()) return s;
  return runtime_->store->Recreate(
      resource, ns, name,
      [&](const std::string& uid, const std::string& created, const StoredObject*) {
        return BuildObject(*type, ObjectIdentity{ns, name, uid, created}, spec);
      });
}

absl::StatusOr<std::uint64_t> FakeApiServer::Touch(const std::string& resource,
                                                   const std::string& ns,
                                                   const std::string& name) {
  if (auto s = CheckStarted(); !s.ok()) return s;
  return runtime_->store->Touch(resource, ns, name);
}

absl::StatusOr<std::uint64_t> FakeApiServer::Delete(const std::string& resource,
                                                    const std::string& ns,
                                                    const std::string& name) {
  if (auto s = CheckStarted(); !s.ok()) return s;
  return runtime_->store->Delete(resource, ns, name);
}

absl::StatusOr<std::string> FakeApiServer::GetObjectJson(const std::string& resource,
                                                         const std::string& ns,
                                                         const std::string& name) const {
  if (auto s = CheckStarted(); !s.ok()) return s;
  auto object = runtime_->store->Get(resource, ns, name);
  if (!object.ok()) return object.status();
  return (*object)->Json();
}

std::uint64_t FakeApiServer::Compact() {
  return runtime_->store ? runtime_->store->Compact() : 0;
}

std::uint64_t FakeApiServer::CurrentRevision() const {
  return runtime_->store ? runtime_->store->Revision() : 0;
}

absl::Status FakeApiServer::Populate(const std::string& resource, const SyntheticLoad& load) {
  if (auto s = CheckStarted(); !s.ok()) return s;
  auto type = runtime_->catalog.FindByKey(resource);
  if (!type) return absl::NotFoundError(fmt::format("resource {} is not registered", resource));
  auto factory =
      SyntheticObjectFactory::Create(*type, load.object_bytes, load.managed_fields,
                                     {{"app", "load"}, {"tier", "backend"}}, load.stamp_send_time);
  if (!factory.ok()) return factory.status();
  std::vector<std::pair<std::string, std::string>> created;
  created.reserve(load.objects);
  const std::size_t namespaces = std::max<std::size_t>(1, load.namespaces);
  for (std::size_t i = 0; i < load.objects; ++i) {
    const std::string ns = type->namespaced ? fmt::format("load-{}", i % namespaces) : "";
    const std::string name = fmt::format("{}-{:06}", type->singular, i);
    auto revision = runtime_->store->Upsert(
        resource, ns, name,
        [&](const std::string& uid, const std::string& created_at,
            const StoredObject*) -> absl::StatusOr<BuiltObject> {
          return factory->Build(ObjectIdentity{ns, name, uid, created_at});
        });
    if (!revision.ok()) return revision.status();
    created.emplace_back(ns, name);
  }
  std::lock_guard<std::mutex> lock(runtime_->load_mutex);
  auto& list = runtime_->populated[resource];
  list.insert(list.end(), created.begin(), created.end());
  return absl::OkStatus();
}

absl::Status FakeApiServer::StartModifications(const std::string& resource,
                                               double events_per_second) {
  if (auto s = CheckStarted(); !s.ok()) return s;
  Runtime& rt = *runtime_;
  std::lock_guard<std::mutex> lock(rt.load_mutex);
  auto it = rt.populated.find(resource);
  if (it == rt.populated.end() || it->second.empty()) {
    return absl::FailedPreconditionError(
        fmt::format("no objects of {} to modify: call Populate first", resource));
  }
  std::shared_ptr<LoadGenerator>& load = rt.loads[resource];
  if (load) load->Stop();
  load =
      std::make_shared<LoadGenerator>(*rt.io, *rt.store, resource, it->second, events_per_second);
  load->Start();
  return absl::OkStatus();
}

void FakeApiServer::StopModifications() {
  std::lock_guard<std::mutex> lock(runtime_->load_mutex);
  for (auto& entry : runtime_->loads) entry.second->Stop();
}

std::uint64_t FakeApiServer::ModificationsGenerated() const {
  std::lock_guard<std::mutex> lock(runtime_->load_mutex);
  std::uint64_t generated = 0;
  for (const auto& entry : runtime_->loads) generated += entry.second->events_generated();
  return generated;
}

void FakeApiServer::InjectFault(const std::string& resource, Verb verb, const Fault& fault,
                                int times) {
  runtime_->faults.Add(resource, verb, fault, times);
}

std::size_t FakeApiServer::PendingFaults(const std::string& resource, Verb verb) const {
  return runtime_->faults.Pending(resource, verb);
}

void FakeApiServer::ClearFaults() { runtime_->faults.Clear(); }

void FakeApiServer::RequireToken(const std::string& token) {
  runtime_->settings.RequireToken(token);
}

void FakeApiServer::AllowAnyToken() { runtime_->settings.RequireToken(std::nullopt); }

void FakeApiServer::SetWatchListSupport(WatchListSupport support) {
  runtime_->settings.set_watch_list_support(support);
}

void FakeApiServer::SetBookmarkInterval(std::chrono::milliseconds interval) {
  runtime_->settings.set_bookmark_interval(interval);
}

void FakeApiServer::SetWatchChunkBytes(std::size_t bytes) {
  runtime_->settings.set_watch_chunk_bytes(bytes);
}

void FakeApiServer::EndWatches(const std::string& resource) {
  if (runtime_->store) runtime_->store->EndSubscriptions(resource);
}

void FakeApiServer::DropAllConnections() { runtime_->registry.ShutdownAll(); }

void FakeApiServer::SetReviewApis(bool on) { runtime_->settings.set_review_apis(on); }

ReviewTable& FakeApiServer::reviews() { return runtime_->reviews; }

std::vector<RequestRecord> FakeApiServer::Requests() const { return runtime_->log.Snapshot(); }

void FakeApiServer::ClearRequests() { runtime_->log.Clear(); }

bool FakeApiServer::WaitForRequests(const std::function<bool(const RequestRecord&)>& predicate,
                                    std::size_t count, std::chrono::milliseconds timeout) const {
  return runtime_->log.WaitForRequests(predicate, count, timeout);
}

int FakeApiServer::OpenWatches(const std::string& resource) const {
  return runtime_->log.OpenWatches(resource);
}

bool FakeApiServer::WaitForOpenWatches(const std::string& resource, int count,
                                       std::chrono::milliseconds timeout) const {
  return runtime_->log.WaitForOpenWatches(resource, count, timeout);
}

}  // namespace informerd::fakeapi
