// FakeApiServer: a fault-injecting fake kube-apiserver for tests of the API client and the
// informer engine, for what a real apiserver cannot be made to do on demand (410s at will, a
// connection cut in the middle of a chunk, a stalled stream, 429 with Retry-After, a rotated
// token, a CRD disappearing under a watch).
//
// It speaks the Kubernetes wire protocol over plain HTTP or TLS on 127.0.0.1 (a port picked at
// Start): discovery, GET, LIST with pagination and resourceVersion rules, WATCH with bookmarks,
// timeoutSeconds and WatchList, from an in-memory store with an etcd-like global revision; and,
// when asked (review_apis), the TokenReview and SubjectAccessReview POSTs of delegated
// authentication and authorization, answered from a table the test fills (review_table.h). The
// test scripts the store (Upsert/Delete/Compact) and queues faults per resource and verb, then
// inspects the request log and the number of open watches.
//
// Ownership and threads: the test owns the server. Start() runs an io_context on a thread of
// its own; every other method may be called from any thread while clients are connected.
// Stop() (also run by the destructor) closes every connection and joins that thread. No global
// state: several servers can run in one process.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "test/fakeapi/fault_script.h"
#include "test/fakeapi/list_options.h"
#include "test/fakeapi/request_log.h"
#include "test/fakeapi/resource_catalog.h"
#include "test/fakeapi/review_table.h"
#include "test/fakeapi/synthetic_objects.h"

namespace informerd::fakeapi {

struct ServerOptions {
  std::uint16_t port = 0;  // 0: any free port.
  bool tls = false;
  // With tls: serve these PEM files instead of generating a CA and certificate (all or none).
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // Registered at start; more can be registered (and removed) at run time.
  std::vector<ResourceType> resources = {ResourceType::Pods(), ResourceType::ConfigMaps(),
                                         ResourceType::Namespaces(),
                                         ResourceType::Deployments()};
  // The revision of the empty store. A large value (beyond 2^32) flushes out clients that keep
  // resourceVersions in 32 bits.
  std::uint64_t initial_revision = 1;
  // Events kept per resource for watch resumption and consistent continue tokens.
  std::size_t history_limit = 10000;
  // Bookmarks to watches that ask for them (allowWatchBookmarks), this often; a watch with
  // timeoutSeconds also gets them about once a second from 2 s before it ends, as from a real
  // apiserver.
  std::chrono::milliseconds bookmark_interval{5000};
  WatchListSupport watch_list = WatchListSupport::kEnabled;
  bool rv0_ignores_limit = true;
  // What /version reports.
  std::string git_version = "v1.29.0";
  // Serve POST tokenreviews (authentication.k8s.io/v1) and subjectaccessreviews
  // (authorization.k8s.io/v1), and list them in discovery (see review_api.h). Off by default:
  // discovery then lists the registered resources only.
  bool review_apis = false;
};

// What load mode generates.
struct SyntheticLoad {
  std::size_t objects = 1000;
  std::size_t object_bytes = 4096;  // Per object, managedFields included. 0: natural size.
  std::size_t namespaces = 10;
  bool managed_fields = true;
  // Objects carry the kSendTimeAnnotation, and each MODIFIED event's object the time its batch
  // was made (see load_generator.h); the annotation's bytes count in object_bytes.
  bool stamp_send_time = false;
};

class FakeApiServer {
 public:
  FakeApiServer();
  ~FakeApiServer();
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  // Binds 127.0.0.1, prepares TLS, starts the I/O thread. Once per server.
  absl::Status Start(const ServerOptions& options = {});
  // Closes every connection, stops accepting, joins the I/O thread. Idempotent.
  void Stop();

  std::uint16_t port() const { return port_; }
  // "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT".
  std::string base_url() const;
  // The CA that signed the server certificate (TLS only; empty otherwise).
  const std::string& ca_pem() const { return ca_pem_; }

  // ---- Resources (discovery changes on the next request; a removed resource's watches end).
  void RegisterResource(const ResourceType& type);
  bool UnregisterResource(const std::string& resource);

  // ---- The store. `resource` is ResourceType::Key(): "pods", "deployments.apps".
  // Create or update; returns the new resourceVersion. The uid is kept across updates.
  absl::StatusOr<std::uint64_t> Upsert(const std::string& resource, const std::string& ns,
                                       const std::string& name, const ObjectSpec& spec = {});
  // Upsert with ObjectSpec::json = `json` (merged over a generated object).
  absl::StatusOr<std::uint64_t> UpsertJson(const std::string& resource, const std::string& ns,
                                           const std::string& name, const std::string& json);
  // Delete and create again under a new uid (DELETED then ADDED); returns the ADDED's RV.
  absl::StatusOr<std::uint64_t> Recreate(const std::string& resource, const std::string& ns,
                                         const std::string& name, const ObjectSpec& spec = {});
  // MODIFIED with the same content and a new resourceVersion.
  absl::StatusOr<std::uint64_t> Touch(const std::string& resource, const std::string& ns,
                                      const std::string& name);
  absl::StatusOr<std::uint64_t> Delete(const std::string& resource, const std::string& ns,
                                       const std::string& name);
  // The object's JSON as a GET would return it.
  absl::StatusOr<std::string> GetObjectJson(const std::string& resource, const std::string& ns,
                                            const std::string& name) const;
  // History before now expires: older RVs and continue tokens get 410. Returns the revision.
  std::uint64_t Compact();
  std::uint64_t CurrentRevision() const;

  // ---- Load mode.
  // Adds synthetic objects named "<singular>-<index>" in namespaces "load-<k>".
  absl::Status Populate(const std::string& resource, const SyntheticLoad& load);
  // MODIFIED events at `events_per_second`, round-robin over the objects Populate created.
  // Each resource has its own generator, so several resources can be busy at once; calling it
  // again for the same resource replaces that resource's generator.
  absl::Status StartModifications(const std::string& resource, double events_per_second);
  // Stops every resource's generator.
  void StopModifications();
  // Events generated so far, every resource's together.
  std::uint64_t ModificationsGenerated() const;

  // ---- Faults, consumed in order by matching requests ("*": any resource).
  void InjectFault(const std::string& resource, Verb verb, const Fault& fault, int times = 1);
  std::size_t PendingFaults(const std::string& resource, Verb verb) const;
  void ClearFaults();

  // ---- Switches.
  // Every request must carry `Authorization: Bearer <token>` from now on, or gets 401.
  void RequireToken(const std::string& token);
  void AllowAnyToken();
  void SetWatchListSupport(WatchListSupport support);
  void SetBookmarkInterval(std::chrono::milliseconds interval);
  // Cut watch output into chunks of at most `bytes` (0: one chunk per batch of events).
  void SetWatchChunkBytes(std::size_t bytes);
  // Ends every open watch on `resource` cleanly, as an apiserver does when it shuts down.
  void EndWatches(const std::string& resource);
  // Closes every client connection abruptly (TCP close), as a crashing apiserver would.
  void DropAllConnections();

  // ---- Review APIs (ServerOptions::review_apis; switchable at run time). The answers come from
  // reviews(): tokens → identities, access rules → decisions (default: unauthenticated, denied).
  // Faults: InjectFault(kTokenReviewsKey or kSubjectAccessReviewsKey from review_api.h,
  // Verb::kCreate, ...): Fault::Delay, HttpError (a 5xx), MalformedJson (a garbage 201 body),
  // Stall, DropConnection. Each review is in Requests() (method POST, with its body).
  void SetReviewApis(bool on);
  ReviewTable& reviews();

  // ---- Observation.
  std::vector<RequestRecord> Requests() const;
  void ClearRequests();
  bool WaitForRequests(const std::function<bool(const RequestRecord&)>& predicate,
                       std::size_t count, std::chrono::milliseconds timeout) const;
  int OpenWatches(const std::string& resource) const;
  bool WaitForOpenWatches(const std::string& resource, int count,
                          std::chrono::milliseconds timeout) const;

 private:
  struct Runtime;
  absl::Status CheckStarted() const;

  std::unique_ptr<Runtime> runtime_;
  std::uint16_t port_ = 0;
  bool tls_ = false;
  std::string ca_pem_;
};

}  // namespace informerd::fakeapi
