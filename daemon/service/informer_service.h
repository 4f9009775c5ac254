// InformerService: the informerd.v1.Informer RPCs (proto/informerd/v1/informerd.proto, whose
// comments are the contract this class keeps), served from the caches alone: no RPC ever reads
// objects from the apiserver.
//
// Access: informerd must never widen what a caller may read, so every call is admitted before
// anything is read for it, in this order (Admit):
//   1. authentication: the call's credentials (call_credentials.h) → a user, or UNAUTHENTICATED
//      (UNAVAILABLE when the TokenReview could not be made), before the request's resource name
//      is even resolved;
//   2. resolution of the resource name (ResourceResolver);
//   3. authorization of what the request reads, as the apiserver would authorize the same read
//      (AccessControl: a SubjectAccessReview, or AlwaysAllow): Subscribe needs `list` and
//      `watch`, List `list`, Get `get` on the name, on the resolved group and resource in the
//      request's namespace ("": cluster-wide, for all-namespaces requests and cluster-scoped
//      resources) → PERMISSION_DENIED naming what was checked, or UNAVAILABLE;
//   4. the registry entry and the selectors (FindTarget; their length and number of
//      requirements are checked before they are parsed: SelectorLimits);
//   5. for a Subscribe, a place under the subscription limits (SubscriptionLimits: in total and
//      per user, RESOURCE_EXHAUSTED naming the limit), before any snapshot is taken or on-demand
//      informer started for it; the stream gives it back when it finishes, however it ends;
//   6. for a resource only an on-demand informer can serve, its start is checked too
//      (AcquireOnDemand).
// ListResources shows only the entries the caller may `list` (cluster-wide, or in the request's
// namespace). An open Subscribe is authorized again every AccessControl::recheck_interval() and
// ended with PERMISSION_DENIED (nothing more written) once its permission is gone. Every finished
// call writes one audit line (AccessControl::Audit) with the decision and the final status code.
//
// Data flow: client → gRPC → here: admission as above, then the ResourceRegistry's entry whose
// core::Cache answers for the request's namespace, and
//   Subscribe      opens a core::Subscription on the cache and streams what it delivers, each
//                  event encoded once and its bytes shared by every subscriber (event_encoder.h);
//                  a stream still waiting for its resource's sync after subscribe_sync_wait, or
//                  for a future resource version after future_version_wait, ends UNAVAILABLE;
//   List, Get      read the cache once it holds one complete state (synced, and no relist
//                  changing it) at least as new as the request's min_resource_version,
//                  waiting for that until the call's deadline;
//   ListResources  describes the registry entries the caller may see, from each cache's Stats
//                  and informer status.
// A resource no entry answers for is NOT_FOUND, unless on-demand informers are on (the
// registry has an OnDemandSource): then Subscribe, List and Get alike start one (or share the
// one running) and hold its lease until the call ends; it stops a grace period after the last.
// Starting one needs the caller to be allowed to list and watch the resource cluster-wide, the
// resource to be in on_demand_resources, and fewer than max_on_demand_informers running.
//
// Threads: gRPC's callback API, never a thread per call, and the service's own RpcExecutor
// (rpc_threads threads). The thread that applies the watches to the caches (the apiserver
// client's strand, which also answers the reviews and discovery) never does RPC work: it only
// queues it on the executor. Each Subscribe is a ServerWriteReactor with at most one write in
// flight, as the callback API requires: a reactor may not start a write before the previous
// one's OnWriteDone, and gRPC calls OnDone once, last, after which gRPC never touches the
// reactor. The next write is started by whichever comes first of OnWriteDone (a gRPC thread) and
// the subscription's on_ready, which arrives on the cache's (reflector's) thread and only posts
// the stream's Pump to the executor (at most one waiting per stream); see SubscribeStream in
// subscribe_stream.cc. Admission's steps that answer later (a review, the resolver) continue on
// the executor, never on the thread that answered (Step); steps that answer at once (AlwaysAllow,
// a cached review) continue in place, on the gRPC thread of the call. So the resolution, a
// Subscribe's snapshot, a List or Get's read and copy and an on-demand start run on a gRPC thread
// or the executor. List and Get that wait for a sync look again from one TimerThread shared by
// all of them, which hands each look to the executor (unary_calls.cc); the same thread schedules
// the Subscribe re-authorizations and bounded waits. Every handler returns at once.
//
// Ownership: the daemon owns the service beside the gRPC server (which must be shut down before
// the service is destroyed, as for any service) and lends it the resolver, the registry and the
// access control, which must outlive it (the access control also outlives every review it
// started). The destructor first shuts the executor down (every task already posted runs, with
// the service whole), then the TimerThread. Status codes cross into gRPC only here: everything
// below is absl::Status.
#pragma once

#include <grpcpp/grpcpp.h>
#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/cache.h"
#include "core/cache_event.h"
#include "core/defaults.h"
#include "core/field_selector.h"
#include "core/label_selector.h"
#include "core/user_info.h"
#include "daemon/config.h"
#include "daemon/informers/resource_registry.h"
#include "daemon/security/access_control.h"
#include "daemon/service/client_limits.h"
#include "daemon/service/rpc_executor.h"
#include "daemon/service/timer_thread.h"
#include "informerd/v1/informerd.grpc.pb.h"

namespace informerd::daemon {

struct InformerServiceOptions {
  // Each subscriber's soft bound on queued live events (core::SubscribeOptions::queue_capacity):
  // past it, one that stops reading (core::SubscribeOptions::stall_budget) or reaches 4x it is
  // ended with RESOURCE_EXHAUSTED.
  std::size_t subscriber_queue_capacity = core::kDefaultSubscriberQueueCapacity;
  // The same rule's budget while a subscriber's snapshot or replay waits
  // (core::SubscribeOptions::head_start_stall_budget).
  std::chrono::milliseconds subscriber_snapshot_stall_budget{std::chrono::seconds(10)};
  // How often a List or Get that waits for the initial sync looks again.
  std::chrono::milliseconds sync_poll_interval{50};
  // How long a List or Get without a deadline waits for the initial sync before UNAVAILABLE (a
  // resource that never syncs must not hold such calls forever); also the longest any List or
  // Get waits for its min_resource_version, deadline or not.
  std::chrono::milliseconds max_sync_wait{std::chrono::seconds(30)};
  // How long a Subscribe without a resource version waits for its resource's sync (its SYNCED
  // event) before it ends with UNAVAILABLE saying why the resource has not synced (the upstream
  // error, such as a 403): a resource that never syncs must not hold a stream silently forever.
  // A stream that got SYNCED is never ended by this. Zero: wait as long as it takes.
  std::chrono::milliseconds subscribe_sync_wait{std::chrono::seconds(30)};
  // How long a Subscribe from a resource version the cache has not reached waits for it before
  // it ends with UNAVAILABLE, "too large resource version ..." (nothing having been sent), as
  // the apiserver's watch cache does after 3 s. Zero: wait as long as it takes.
  std::chrono::milliseconds future_version_wait{std::chrono::seconds(3)};
  // A waiting List or Get gives up this long before the call's deadline (at most a quarter of the
  // time it had), so that the client reads UNAVAILABLE and why, not DEADLINE_EXCEEDED.
  std::chrono::milliseconds deadline_margin{200};
  // The longest label or field selector accepted, in bytes, and the most requirements in one
  // (--max-selector-bytes, --max-selector-requirements): checked before parsing, refused
  // INVALID_ARGUMENT naming the flag (client_limits.h). At least 1 each.
  std::size_t max_selector_bytes = core::kDefaultMaxSelectorBytes;
  std::size_t max_selector_requirements = core::kDefaultMaxSelectorRequirements;
  // Subscribe streams open at once, in total and for one user (--max-subscriptions,
  // --max-subscriptions-per-user; 0: no limit): past either, RESOURCE_EXHAUSTED naming it.
  std::size_t max_subscriptions = core::kDefaultMaxSubscriptions;
  std::size_t max_subscriptions_per_user = core::kDefaultMaxSubscriptionsPerUser;
  // The largest List answer, in encoded bytes and in objects (--max-list-response-bytes,
  // --max-list-response-objects): a page stops at either (with a continue token); a List
  // without limit or continue that would exceed one is RESOURCE_EXHAUSTED naming it
  // (informerd.proto, List). At least 1 each.
  std::size_t max_list_response_bytes = core::kDefaultMaxListResponseBytes;
  std::size_t max_list_response_objects = core::kDefaultMaxListResponseObjects;
  // Produces an event's wire bytes; empty means EncodeEvent. Tests wrap EncodeEvent to count
  // calls; anything else must produce the same bytes.
  core::CacheEvent::Encoder encoder;
  // Threads of the service's executor (--rpc-threads): what a call does once a review or the
  // resolver answers, and the Subscribe streams' writes once events arrive. At least 1.
  std::size_t rpc_threads = core::kDefaultRpcThreads;
  // The executor's threads run at this nice value (daemon/service/thread_priority.h), below
  // ingest's, so that RPC work gets the cores only after the watches are applied. 0: as ingest.
  int rpc_thread_nice = 0;
  // Test hook: called on the thread that does each piece of a call's work, as it starts it:
  // "resolve" (the resource name), "subscribe" (a Subscribe's subscription and snapshot),
  // "write" (a Subscribe's next message, encoded and written), "list" and "get" (the cache read
  // and the answer's copy), "on-demand" (an on-demand informer's start). Empty: none.
  std::function<void(const char* work)> observe_work;
  // Stream ends (debug) and subscribers that fell behind (warn). Optional.
  std::shared_ptr<spdlog::logger> logger;
  // On-demand informers (when the registry has an OnDemandSource): the resources one may be
  // started for (config onDemandResources; nullopt: any), and how many may run at once (config
  // maxOnDemandInformers). A running one is joined whatever these say.
  std::optional<std::vector<ResourcePattern>> on_demand_resources;
  std::size_t max_on_demand_informers = kDefaultMaxOnDemandInformers;
};

// What List's response bounds and paging have counted since the start, for /metrics.
struct ListStats {
  // Lists without limit or continue refused RESOURCE_EXHAUSTED: over the byte bound, over the
  // object bound.
  uint64_t refused_bytes = 0;
  uint64_t refused_objects = 0;
  // Answers to paged Lists (limit or continue), and those that stopped before the client's
  // limit (or the object bound) at the byte bound.
  uint64_t pages = 0;
  uint64_t pages_cut_at_bytes = 0;
  // Continued pages refused OUT_OF_RANGE: the list's state was no longer available.
  uint64_t continues_expired = 0;
};

class InformerService final
    : public v1::Informer::WithRawCallbackMethod_Subscribe<
          v1::Informer::WithRawCallbackMethod_List<v1::Informer::CallbackService>> {
 public:
  // `resolver`, `registry` and `access` must outlive the service.
  InformerService(ResourceResolver& resolver, const ResourceRegistry& registry,
                  AccessControl& access, InformerServiceOptions options = {});
  ~InformerService() override;
  InformerService(const InformerService&) = delete;
  InformerService& operator=(const InformerService&) = delete;

  // The daemon is stopping: every served cache ends its subscriptions with UNAVAILABLE and
  // refuses new ones, waiting List and Get calls end with UNAVAILABLE, and new calls are answered
  // UNAVAILABLE. Call before GrpcServer::Shutdown so that open streams end with a status telling
  // clients to retry rather than being cancelled at the grace period. Any thread; idempotent.
  void Shutdown();

  // What the client limits have counted (open subscriptions, refusals by limit), for /metrics.
  // Any thread.
  ClientLimitStats client_limit_stats() const;

  // List's counts (ListStats). Any thread.
  ListStats list_stats() const;

  // The RPCs; gRPC calls them. Subscribe's request and stream are raw bytes so that each event's
  // encoded bytes are written as they are, shared, without a per-subscriber copy; List's, so that
  // an answer points at the cached objects instead of holding two copies of them until the
  // client has read it (list_encoder.h).
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Subscribe(grpc::CallbackServerContext* context,
                                                        const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const grpc::ByteBuffer* request,
                                 grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context, const v1::GetRequest* request,
                                v1::GetResponse* response) override;
  grpc::ServerUnaryReactor* ListResources(grpc::CallbackServerContext* context,
                                          const v1::ListResourcesRequest* request,
                                          v1::ListResourcesResponse* response) override;

 private:
  class SubscribeStream;
  class UnaryCall;
  // What a request reads: the registry entry and the request's parsed selectors.
  struct ReadTarget {
    std::shared_ptr<const ServedResource> served;
    // For an on-demand entry: keeps its informer running while the call uses it.
    std::shared_ptr<const void> lease;
    core::LabelSelector label_selector;
    core::FieldSelector field_selector;
    // No entry answers and on-demand informers are on: `served` is empty until AcquireOnDemand.
    bool on_demand = false;
  };
  // What a call asks to read, for Admit.
  struct Ask {
    std::string method;  // "Subscribe", "List", "Get": the audit line's
    std::string resource;
    std::string namespace_name;
    std::string name;                // Get: the object
    bool name_required = false;      // Get: an empty name is INVALID_ARGUMENT
    std::vector<std::string> verbs;  // what the read needs: {"list", "watch"}, {"list"}, {"get"}
    std::string label_selector;
    std::string field_selector;
    // Subscribe: admission takes a place under the subscription limits (Admitted::slot).
    bool subscription = false;
  };
  // An admitted call: who, and what it reads.
  struct Admitted {
    core::UserInfo user;
    // The checks it passed (a Subscribe's are made again every recheck_interval()).
    std::vector<core::ResourceAttributes> checked;
    ReadTarget target;
    // A Subscribe's place under the subscription limits, for the stream to hold until it ends.
    SubscriptionSlot slot;
  };
  using AdmitCallback = std::function<void(absl::StatusOr<Admitted>)>;
  // The resource a request names: discovery's answer, or, when discovery no longer knows the
  // name, a configured entry whose resource is gone (`gone`, which answers UNAVAILABLE).
  struct NamedResource {
    core::ResolvedResource resource;
    std::shared_ptr<const ServedResource> gone;
  };
  using Clock = TimerThread::Clock;

  // UNAVAILABLE, "informerd is shutting down": what every call gets after Shutdown.
  static absl::Status ShuttingDown();

  // One asynchronous step of a call (an Authenticate, Authorize or Resolve it starts), for its
  // callback: Then(f) is a callback that runs f in place when the answer comes before the step
  // returns, on the thread that started it (the answer was known at once: cached, AlwaysAllow,
  // the fake resolver), and otherwise posts f to the executor, since the thread that answers
  // later is the apiserver client's strand, which applies every watch and must not do the call's
  // work. A Step lives on the stack around the call that starts the step.
  class Step {
   public:
    explicit Step(RpcExecutor& executor) : executor_(executor), state_(std::make_shared<State>()) {}
    ~Step() { state_->returned.store(true, std::memory_order_release); }
    Step(const Step&) = delete;
    Step& operator=(const Step&) = delete;

    template <typename Arg, typename F>
    std::function<void(Arg)> Then(F f) {
      return [executor = &executor_, state = state_, f = std::move(f)](Arg arg) mutable {
        if (!state->returned.load(std::memory_order_acquire) &&
            std::this_thread::get_id() == state->starter) {
          return f(std::move(arg));
        }
        executor->Post([f = std::move(f), arg = std::move(arg)]() mutable { f(std::move(arg)); });
      };
    }

   private:
    struct State {
      const std::thread::id starter = std::this_thread::get_id();
      std::atomic<bool> returned{false};
    };
    RpcExecutor& executor_;
    const std::shared_ptr<State> state_;
  };

  // options_.observe_work, if any.
  void Observe(const char* work) const {
    if (options_.observe_work) options_.observe_work(work);
  }

  // Authenticates `credentials`, resolves and authorizes `ask`, finds its target (starting an
  // on-demand informer if need be): the steps in the order the top of this file gives. Calls
  // `done` exactly once, on whichever thread answered last. `audit` belongs to the call: filled
  // in (user, peer, method, resource as resolved, namespace, decision) as the steps go, not read
  // by anyone else until `done` runs; its `code` is the caller's to set.
  void Admit(const CallCredentials& credentials, Ask ask, AuditRecord* audit, AdmitCallback done);
  absl::StatusOr<NamedResource> NameResource(const absl::StatusOr<core::ResolvedResource>& resolved,
                                             const std::string& name) const;
  // Registry entry → selectors (their limits, then parsing) → namespace check, in that order;
  // `on_demand` when no entry answers and on-demand informers are on. Selectors that on-demand
  // caches cannot answer are refused here, before an informer is started for nothing.
  absl::StatusOr<ReadTarget> FindTarget(const NamedResource& named,
                                        const std::string& namespace_name,
                                        const std::string& label_selector,
                                        const std::string& field_selector) const;
  // The on-demand entry for `resource`, with a lease: the running informer's, or a new one's
  // when `resource` matches on_demand_resources (else PERMISSION_DENIED), `user` may list and
  // watch it cluster-wide (checked unless `checked`; else PERMISSION_DENIED saying so, or
  // UNAVAILABLE) and fewer than max_on_demand_informers run (else RESOURCE_EXHAUSTED naming
  // the cap). Starts are serialized (on_demand_mu_), so the cap holds however many race.
  void AcquireOnDemand(const core::UserInfo& user, const core::ResolvedResource& resource,
                       bool checked, std::function<void(absl::StatusOr<ServedLease>)> done);
  // Subscribe's work after admission: the subscription, or why there is none.
  absl::StatusOr<std::shared_ptr<core::Subscription>> OpenSubscription(
      ReadTarget& target, const v1::SubscribeRequest& request, std::function<void()> on_ready,
      std::string& description) const;
  // When a waiting List or Get gives up.
  Clock::time_point SyncDeadline(const grpc::CallbackServerContext& context) const;
  // ... when it also waits for a min_resource_version (a number above 0): no later than
  // max_sync_wait from now either.
  Clock::time_point VersionDeadline(Clock::time_point sync_deadline,
                                    const absl::StatusOr<uint64_t>& min_version) const;
  // Calls `attempt` once `served`'s cache reports synced (one complete state: not during the
  // initial list, nor while a relist is changing it) at a resource version of at least
  // `min_version` (0: any); `attempt` reads, finishes `call` and returns true, or returns false
  // when the read found the cache not so after all. Looks again every sync_poll_interval;
  // finishes `call` with UNAVAILABLE at `give_up_at` ("too large resource version ..." when the
  // version was not reached, else why the cache is not synced), or at once when the resource is
  // gone upstream, and with CANCELLED when the client has gone.
  void WhenSynced(UnaryCall* call, std::shared_ptr<const ServedResource> served,
                  Clock::time_point give_up_at, uint64_t min_version,
                  std::function<bool()> attempt);

  ResourceResolver& resolver_;
  const ResourceRegistry& registry_;
  AccessControl& access_;
  const InformerServiceOptions options_;
  const core::CacheEvent::Encoder encoder_;
  std::atomic<bool> shutting_down_{false};
  // ListStats, counted by the List calls.
  struct ListCounters {
    std::atomic<uint64_t> refused_bytes{0};
    std::atomic<uint64_t> refused_objects{0};
    std::atomic<uint64_t> pages{0};
    std::atomic<uint64_t> pages_cut_at_bytes{0};
    std::atomic<uint64_t> continues_expired{0};
  };
  ListCounters list_counters_;
  SubscriptionLimits subscriptions_;
  // Mutable: FindTarget counts its refusals.
  mutable SelectorLimits selectors_;
  // Serializes on-demand starts: the look at what runs and the lease taken on it.
  std::mutex on_demand_mu_;
  // Its destructor stops the thread before anything its tasks use goes away.
  TimerThread timer_;
  // Last: shut down first (by the service's destructor), while everything its tasks use, the
  // TimerThread included, still exists. Tasks the TimerThread posts after that are dropped
  // (there is no call left by then: the gRPC server has stopped).
  RpcExecutor executor_;
};

// absl → gRPC at the RPC edge: the same code (the two enumerations share their values) and the
// message, cut to at most 1 KiB on a UTF-8 boundary so that it fits in the trailers whatever a
// client sent (parser messages quote the offending input).
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace informerd::daemon
