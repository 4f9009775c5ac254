// Support for the end-to-end tests that run the informerd binary against a real kube-apiserver
// (test/cluster/cluster_fixture.h): the daemon as a subprocess whose log is followed, Subscribe
// streams read on their own threads so that a test can wait for events with a timeout and check
// that nothing more arrives, and parsers for what kubectl and the apiserver's /metrics print.
//
// Only public interfaces: the binary, its flags and configuration file, the generated gRPC stubs
// (//proto:informerd_cc_grpc) and kubectl. Nothing here links the daemon's code.
//
// Threads: a Daemon and each Subscriber own one background thread; their accessors may be called
// from any thread. Everything else is called from the test's thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "informerd/v1/informerd.grpc.pb.h"
#include "test/cluster/cluster_fixture.h"
#include "test/common/subprocess.h"
#include "test/common/wait_until.h"

namespace informerd::test::e2e {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// ---- The cluster --------------------------------------------------------------------------

// Starts a cluster; fails the test if it does not come up.
std::unique_ptr<TestCluster> StartCluster(const ClusterOptions& options = {});

// Runs kubectl as admin and requires exit code 0; returns stdout.
std::string KubectlOk(const TestCluster& cluster, const std::vector<std::string>& args,
                      const std::string& stdin_text = "");

// `kubectl apply -f -` as admin; fails the test on error.
void ApplyOk(const TestCluster& cluster, const std::string& yaml);

// `kubectl create -f -` as admin (no last-applied annotation: half the bytes of apply for big
// objects); fails the test on error.
void CreateOk(const TestCluster& cluster, const std::string& yaml);

// What kubectl or informerd says about one object.
struct ObjectKey {
  std::string namespace_name;
  std::string name;
  std::string resource_version;
  std::string uid;
  bool operator==(const ObjectKey& other) const {
    return namespace_name == other.namespace_name && name == other.name &&
           resource_version == other.resource_version && uid == other.uid;
  }
};
// "ns/name rv=5 uid=...", for messages and comparisons.
std::string Describe(const ObjectKey& key);
std::vector<std::string> Describe(const std::vector<ObjectKey>& keys);

// The metadata of one object's JSON text; fails the test if it is not an object with metadata.
ObjectKey KeyOf(const std::string& object_json);
// `kubectl get ARGS -o json` (a List), as keys sorted by namespace then name.
std::vector<ObjectKey> KubectlKeys(const TestCluster& cluster,
                                   const std::vector<std::string>& args);
// The items of a List document (kubectl's or informerctl's), sorted by namespace then name.
std::vector<ObjectKey> ListDocumentKeys(const std::string& list_json);

// A CRD "PLURAL.example.com" (group example.com, version v1, namespaced, kind KIND, any fields),
// created and Established.
void CreateCrd(const TestCluster& cluster, const std::string& plural, const std::string& kind);

// The sum of the Prometheus samples named `name` in `metrics` whose labels include all of
// `labels` (others may differ); nullopt when there is none.
std::optional<double> MetricValue(const std::string& metrics, const std::string& name,
                                  const std::map<std::string, std::string>& labels);
// The apiserver's /metrics, read as admin.
std::string ApiserverMetrics(const TestCluster& cluster);

// ---- The daemon ---------------------------------------------------------------------------

// informerd started with --config (a file written from `config_yaml`), --kubeconfig of
// `identity`, --listen 127.0.0.1:0, then `extra_args` (TLS, access control). Its stderr is drained
// continuously by a background thread (a daemon blocked on a full pipe would stall every informer)
// and kept for WaitForLog. The destructor kills it.
class Daemon {
 public:
  static std::unique_ptr<Daemon> Start(const TestCluster& cluster, const std::string& config_yaml,
                                       Identity identity = Identity::kAdminToken,
                                       const std::vector<std::string>& extra_args = {});
  ~Daemon();

  const std::string& address() const { return address_; }
  // A new channel to the daemon. Channels with equal arguments share one connection; `own` makes
  // this one's arguments unique, so it gets a connection (and HTTP/2 flow control) of its own.
  std::shared_ptr<grpc::Channel> NewChannel(bool own = false,
                                            grpc::ChannelArguments args = {}) const;
  v1::Informer::Stub& stub() { return *stub_; }

  // Waits until a log line written after `from` (an offset from log_size()) contains `needle`;
  // returns that line or nullopt on timeout.
  std::optional<std::string> WaitForLog(const std::string& needle, milliseconds timeout,
                                        std::size_t from = 0) const;
  std::size_t log_size() const;
  std::string log() const;
  // Whether the process is still running.
  bool running() const;

 private:
  Daemon(Subprocess process, std::string address);
  void DrainLoop();

  mutable std::mutex mu_;
  Subprocess process_;   // touched only by the drain thread after construction
  std::string log_;      // guarded by mu_
  bool exited_ = false;  // guarded by mu_
  bool stop_ = false;    // guarded by mu_
  std::string address_;
  std::unique_ptr<v1::Informer::Stub> stub_;
  std::thread drain_;
};

// The configured informers, or fails the test.
v1::ListResourcesResponse ListResources(v1::Informer::Stub& stub);
// The informer of `resource` (plural) whose configured namespace is `namespace_name`.
std::optional<v1::ResourceInfo> FindInformer(const v1::ListResourcesResponse& resources,
                                             const std::string& resource,
                                             const std::string& namespace_name = "");
// Waits until every informer in `resources` (plurals) is reported synced.
bool AwaitSynced(v1::Informer::Stub& stub, const std::vector<std::string>& resources,
                 milliseconds timeout);

struct ListOutcome {
  grpc::Status status;
  v1::ListResponse response;
};
ListOutcome List(v1::Informer::Stub& stub, const std::string& resource,
                 const std::string& namespace_name = "", const std::string& label_selector = "",
                 const std::string& field_selector = "");
// List that must succeed: the items' keys, sorted.
std::vector<ObjectKey> ListKeys(v1::Informer::Stub& stub, const std::string& resource,
                                const std::string& namespace_name = "",
                                const std::string& label_selector = "");

struct GetOutcome {
  grpc::Status status;
  v1::GetResponse response;
};
GetOutcome Get(v1::Informer::Stub& stub, const std::string& resource,
               const std::string& namespace_name, const std::string& name);

// The gRPC health status of service "" (kHealthServing, kHealthNotServing, ...), or -1 if the
// call failed.
int Health(const std::shared_ptr<grpc::Channel>& channel);
// grpc.health.v1.HealthCheckResponse.ServingStatus values, as Health() returns them.
constexpr int kHealthServing = 1;
constexpr int kHealthNotServing = 2;

// ---- Subscribe streams --------------------------------------------------------------------

v1::SubscribeRequest SubscribeTo(const std::string& resource,
                                 const std::string& namespace_name = "",
                                 const std::string& resource_version = "",
                                 const std::string& label_selector = "",
                                 const std::string& field_selector = "");

// "ADDED ns/name rv=5", "SYNCED rv=10".
std::string Describe(const v1::Event& event);
std::vector<std::string> Describe(const std::vector<v1::Event>& events);

// One Subscribe call read on its own thread, so that tests wait with timeouts. The call has a
// deadline (default 5 minutes) so that nothing hangs forever; the destructor cancels it.
class Subscriber {
 public:
  Subscriber(const std::shared_ptr<grpc::Channel>& channel, const v1::SubscribeRequest& request,
             milliseconds deadline = std::chrono::minutes(5));
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  // Waits until at least `count` events have arrived (true), or the stream ended or `timeout`
  // passed (false).
  bool WaitForCount(std::size_t count, milliseconds timeout);
  // Waits until `done` holds for the events so far (true), or the stream ended or `timeout`
  // passed (false).
  bool WaitFor(const std::function<bool(const std::vector<v1::Event>&)>& done,
               milliseconds timeout);
  // Waits for the end of the stream; its status, or nullopt on timeout.
  std::optional<grpc::Status> WaitForEnd(milliseconds timeout);

  std::vector<v1::Event> events() const;
  std::size_t count() const;
  // When each event arrived, in the order of events().
  std::vector<Clock::time_point> arrivals() const;
  // Events from index `from` on.
  std::vector<v1::Event> EventsFrom(std::size_t from) const;
  // The stream's status once it has ended.
  std::optional<grpc::Status> status() const;
  // Cancels the call (the reader thread then ends).
  void Cancel();

 private:
  void ReadLoop();

  grpc::ClientContext context_;
  std::unique_ptr<v1::Informer::Stub> stub_;
  std::unique_ptr<grpc::ClientReader<v1::Event>> reader_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::vector<v1::Event> events_;            // guarded by mu_
  std::vector<Clock::time_point> arrivals_;  // guarded by mu_
  std::optional<grpc::Status> status_;       // guarded by mu_
  std::thread thread_;
};

// The events after the first SYNCED (all of them if there is none).
std::vector<v1::Event> AfterSynced(const std::vector<v1::Event>& events);
// Whether a SYNCED event has arrived.
bool HasSynced(const std::vector<v1::Event>& events);

// The status of a Subscribe that must fail before any event (fails the test if events arrive).
grpc::Status SubscribeError(v1::Informer::Stub& stub, const v1::SubscribeRequest& request);

using ::informerd::test::WaitUntil;  // test/common/wait_until.h

// "$TEST_TMPDIR/name" (or /tmp/name).
std::string TempPath(const std::string& name);

// Runs informerctl (a data dependency) against `address`; returns exit code and output.
SubprocessResult Informerctl(const std::string& address, const std::vector<std::string>& args);

}  // namespace informerd::test::e2e
