// List, Get and ListResources: the unary RPCs. UnaryCall is one call's reactor, which writes the
// call's audit line when it is done; WhenSynced makes a List or Get wait until its cache holds one
// complete state (the initial sync, a relist that is changing it) at least as new as the
// request's min_resource_version, looking again on the service's TimerThread. ListResources
// authorizes each registry entry for the caller, all at once, and answers with those allowed.
//
// Threads: each handler runs on a gRPC thread and returns at once. A call continues where its
// admission's steps answer (the review client's strand, the resolver's thread, or that gRPC
// thread when every step answers at once), and, when it waits for a sync, on the TimerThread,
// which finishes it. OnCancel and OnDone run on gRPC's threads.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/resource_version.h"
#include "daemon/service/call_credentials.h"
#include "daemon/service/informer_service.h"
#include "fmt/format.h"

namespace informerd::daemon {
namespace {

// A request's min_resource_version as a number: 0 for "" and "0" (answer at once), else the
// version the cache must have reached; INVALID_ARGUMENT when it is not a decimal number.
absl::StatusOr<uint64_t> ParseMinResourceVersion(const std::string& text) {
  if (text.empty()) return 0;
  absl::StatusOr<uint64_t> parsed = core::ParseResourceVersion(text);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("min_resource_version: {}", std::string(parsed.status().message())));
  }
  return *parsed;
}

// The cache's `resource_version` is at least `min_version` (0: any, even none yet).
bool Reached(const std::string& resource_version, uint64_t min_version) {
  if (min_version == 0) return true;
  const absl::StatusOr<uint64_t> version = core::ParseResourceVersion(resource_version);
  return version.ok() && *version >= min_version;
}

// Why a cache is not synced, for UNAVAILABLE: the cache's reason, and the upstream's last error
// while it keeps failing (a 403 explains a sync that never comes).
std::string UnsyncedReason(const ServedResource& served, const core::CacheStats& stats,
                           const core::ReflectorStatus& upstream) {
  return fmt::format("{} has not synced yet: {}", served.Describe(),
                     ServedResource::NotSyncedReason(stats, upstream));
}

// UNAVAILABLE's message when the cache has not reached a request's min_resource_version in time:
// the apiserver's words ("Too large resource version"), which clients retry on, with both
// versions, and why the cache is not synced when it is not.
std::string TooLargeMessage(const ServedResource& served, uint64_t min_version,
                            const core::CacheStats& stats, const core::ReflectorStatus& upstream) {
  std::string message = fmt::format(
      "too large resource version: {}, current: {}: the cache of {} has not reached it in time; "
      "retry",
      min_version, stats.resource_version.empty() ? "none" : stats.resource_version,
      served.Describe());
  if (!stats.synced) message += fmt::format(" ({})", UnsyncedReason(served, stats, upstream));
  return message;
}

// Get's NOT_FOUND for an object the cache does not hold.
std::string NotFoundMessage(const core::ResolvedResource& resource,
                            const std::string& namespace_name, const std::string& name) {
  if (!resource.namespaced) {
    return fmt::format("{} {:?} not found", resource.QualifiedName(), name);
  }
  if (namespace_name.empty()) {
    return fmt::format("{} {:?} not found: {} is namespaced and no namespace was given",
                       resource.QualifiedName(), name, resource.QualifiedName());
  }
  return fmt::format("{} {:?} not found in namespace {:?}", resource.QualifiedName(), name,
                     namespace_name);
}

// Adds `served` to a ListResources answer for a caller allowed to list its resource in
// `requested_namespace` ("": cluster-wide). An entry that covers more than that namespace (all
// namespaces, to a caller allowed one) is shown without its object and subscriber counts, which
// would tell about the other namespaces.
void Describe(const ServedResource& served, const std::string& requested_namespace,
              v1::ListResourcesResponse* response) {
  const core::CacheStats stats = served.cache->Stats();
  const core::ReflectorStatus upstream = served.status ? served.status() : core::ReflectorStatus();
  v1::ResourceInfo* info = response->add_resources();
  info->set_group(served.resource.group);
  info->set_version(served.resource.version);
  info->set_resource(served.resource.resource);
  info->set_kind(served.resource.kind);
  info->set_namespaced(served.resource.namespaced);
  info->set_namespace_(served.namespace_name);
  info->set_label_selector(served.label_selector);
  info->set_field_selector(served.field_selector);
  info->set_synced(stats.synced);
  info->set_resource_version(stats.resource_version);
  const bool wider_than_allowed =
      served.resource.namespaced && !requested_namespace.empty() && served.namespace_name.empty();
  if (!wider_than_allowed) {
    info->set_object_count(static_cast<int64_t>(stats.object_count));
    info->set_subscriber_count(static_cast<int64_t>(stats.subscriber_count));
  }
  info->set_on_demand(served.on_demand);
  if (upstream.staleness) {
    info->set_staleness_seconds(std::chrono::duration<double>(*upstream.staleness).count());
  }
  if (upstream.resource_gone) {
    info->set_condition("resource no longer served by the apiserver");
  } else if (!upstream.stale.empty()) {
    info->set_condition(upstream.stale);  // it names the upstream error
  } else if (const absl::Status error = upstream.current_error(); !error.ok()) {
    info->set_condition(std::string(error.message()));
  }
}

}  // namespace

// One List, Get or ListResources. Finished exactly once, by whoever holds the call at that
// moment: the handler, an admission step's callback, or a TimerThread task. OnCancel only raises
// a flag that the next look notices (a waiting call looks every sync_poll_interval), so the call
// is never finished by two threads and is never deleted (OnDone, after Finish) while a task
// still holds it. OnDone writes the audit line, which the steps filled in before FinishWith.
class InformerService::UnaryCall final : public grpc::ServerUnaryReactor {
 public:
  // An atomic store rather than an initializer, so that OnCancel's store on another thread is
  // never a plain write racing an atomic one (gRPC hands the reactor over inside libgrpc).
  UnaryCall(AccessControl& access, std::string method) : access_(access) {
    cancelled_.store(false, std::memory_order_release);
    audit_.method = std::move(method);
  }

  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  // The call's audit record: written by whoever holds the call, until FinishWith.
  AuditRecord& audit() { return audit_; }
  void FinishWith(const absl::Status& status) {
    // Orders everything done with the call, Finish's own writes included (a call finished before
    // gRPC has bound its reactor keeps the status in the reactor), before OnDone's delete, for
    // ThreadSanitizer: the real ordering is inside libgrpc, which it cannot see. gRPC never
    // runs this reactor's OnDone inside Finish (it is not inlineable), so holding the lock
    // across it cannot deadlock.
    std::lock_guard<std::mutex> lock(done_mu_);
    audit_.code = status.code();
    Finish(ToGrpcStatus(status));
  }

  void OnCancel() override { cancelled_.store(true, std::memory_order_release); }
  void OnDone() override {
    {
      std::lock_guard<std::mutex> lock(done_mu_);
      access_.Audit(audit_);
    }
    delete this;
  }

 private:
  AccessControl& access_;
  std::atomic<bool> cancelled_;
  std::mutex done_mu_;
  AuditRecord audit_;  // guarded by done_mu_ from FinishWith on
};

InformerService::Clock::time_point InformerService::SyncDeadline(
    const grpc::CallbackServerContext& context) const {
  const Clock::time_point now = Clock::now();
  const std::chrono::system_clock::time_point deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) {
    return now + options_.max_sync_wait;
  }
  const auto left =
      std::chrono::duration_cast<Clock::duration>(deadline - std::chrono::system_clock::now());
  if (left <= Clock::duration::zero()) return now;
  const Clock::duration margin = std::min<Clock::duration>(options_.deadline_margin, left / 4);
  return now + (left - margin);
}

InformerService::Clock::time_point InformerService::VersionDeadline(
    Clock::time_point sync_deadline, const absl::StatusOr<uint64_t>& min_version) const {
  if (!min_version.ok() || *min_version == 0) return sync_deadline;
  return std::min(sync_deadline, Clock::now() + options_.max_sync_wait);
}

void InformerService::WhenSynced(UnaryCall* call, std::shared_ptr<const ServedResource> served,
                                 Clock::time_point give_up_at, uint64_t min_version,
                                 std::function<bool()> attempt) {
  if (call->cancelled()) return call->FinishWith(absl::CancelledError("the call was cancelled"));
  if (shutting_down_.load()) return call->FinishWith(ShuttingDown());
  const core::CacheStats stats = served->cache->Stats();
  // The entry was replaced or stopped (its resource is gone, an on-demand informer ended): its
  // cache says why, and its objects must not be served.
  if (stats.shut_down) return call->FinishWith(*stats.shut_down);
  if (stats.synced && Reached(stats.resource_version, min_version) && attempt()) return;
  const core::ReflectorStatus upstream =
      served->status ? served->status() : core::ReflectorStatus();
  if (upstream.resource_gone) {
    return call->FinishWith(absl::UnavailableError(
        fmt::format("{} is no longer served by the apiserver", served->Describe())));
  }
  const Clock::time_point now = Clock::now();
  if (now >= give_up_at) {
    if (!Reached(stats.resource_version, min_version)) {
      return call->FinishWith(
          absl::UnavailableError(TooLargeMessage(*served, min_version, stats, upstream)));
    }
    return call->FinishWith(absl::UnavailableError(UnsyncedReason(*served, stats, upstream)));
  }
  timer_.RunAt(std::min(now + options_.sync_poll_interval, give_up_at),
               [this, call, served = std::move(served), give_up_at, min_version,
                attempt = std::move(attempt)]() mutable {
                 WhenSynced(call, std::move(served), give_up_at, min_version, std::move(attempt));
               });
}

grpc::ServerUnaryReactor* InformerService::List(grpc::CallbackServerContext* context,
                                                const v1::ListRequest* request,
                                                v1::ListResponse* response) {
  auto* call = new UnaryCall(access_, "List");
  if (shutting_down_.load()) {
    call->FinishWith(ShuttingDown());
    return call;
  }
  const absl::StatusOr<uint64_t> min_version =
      ParseMinResourceVersion(request->min_resource_version());
  const Clock::time_point give_up_at = VersionDeadline(SyncDeadline(*context), min_version);
  Ask ask;
  ask.method = "List";
  ask.resource = request->resource();
  ask.namespace_name = request->namespace_();
  ask.verbs = {"list"};
  ask.label_selector = request->label_selector();
  ask.field_selector = request->field_selector();
  // `request` and `response` live until OnDone, which follows Finish.
  Admit(
      ReadCallCredentials(*context), std::move(ask), &call->audit(),
      [this, call, request, response, give_up_at, min_version](absl::StatusOr<Admitted> admitted) {
        if (!admitted.ok()) return call->FinishWith(admitted.status());
        // Checked once the caller is admitted: an unauthenticated one learns nothing else.
        if (!min_version.ok()) return call->FinishWith(min_version.status());
        auto target = std::make_shared<const ReadTarget>(std::move(admitted->target));
        const uint64_t min = *min_version;
        WhenSynced(call, target->served, give_up_at, min, [call, request, response, target, min]() {
          absl::StatusOr<core::ListResult> result = target->served->cache->List(
              request->namespace_(), target->label_selector, target->field_selector);
          if (!result.ok()) {
            call->FinishWith(result.status());
            return true;
          }
          if (!result->synced || !Reached(result->resource_version, min)) return false;
          response->mutable_items()->Reserve(static_cast<int>(result->items.size()));
          for (const std::shared_ptr<const core::ObjectRecord>& item : result->items) {
            response->add_items(item->json.str());
          }
          response->set_resource_version(std::move(result->resource_version));
          call->FinishWith(absl::OkStatus());
          return true;
        });
      });
  return call;
}

grpc::ServerUnaryReactor* InformerService::Get(grpc::CallbackServerContext* context,
                                               const v1::GetRequest* request,
                                               v1::GetResponse* response) {
  auto* call = new UnaryCall(access_, "Get");
  if (shutting_down_.load()) {
    call->FinishWith(ShuttingDown());
    return call;
  }
  const absl::StatusOr<uint64_t> min_version =
      ParseMinResourceVersion(request->min_resource_version());
  const Clock::time_point give_up_at = VersionDeadline(SyncDeadline(*context), min_version);
  Ask ask;
  ask.method = "Get";
  ask.resource = request->resource();
  ask.namespace_name = request->namespace_();
  ask.name = request->name();
  ask.name_required = true;
  ask.verbs = {"get"};
  Admit(
      ReadCallCredentials(*context), std::move(ask), &call->audit(),
      [this, call, request, response, give_up_at, min_version](absl::StatusOr<Admitted> admitted) {
        if (!admitted.ok()) return call->FinishWith(admitted.status());
        if (!min_version.ok()) return call->FinishWith(min_version.status());
        std::shared_ptr<const ServedResource> served = std::move(admitted->target.served);
        const uint64_t min = *min_version;
        WhenSynced(
            call, served, give_up_at, min,
            [call, request, response, served, min, lease = std::move(admitted->target.lease)]() {
              core::GetResult result = served->cache->Get(request->namespace_(), request->name());
              if (!result.synced || !Reached(result.resource_version, min)) return false;
              if (!result.object) {
                call->FinishWith(absl::NotFoundError(
                    NotFoundMessage(served->resource, request->namespace_(), request->name())));
                return true;
              }
              response->set_object(result.object->json.str());
              response->set_resource_version(std::move(result.resource_version));
              call->FinishWith(absl::OkStatus());
              return true;
            });
      });
  return call;
}

namespace {

// ListResources: one check per registry entry, asked at once; the answer once the last is in.
struct ListResourcesChecks {
  explicit ListResourcesChecks(std::size_t count) : allowed(count, false), remaining(count) {}

  // Records entry `index`'s answer; true for the last one.
  bool Answer(std::size_t index, const absl::Status& access) {
    std::lock_guard<std::mutex> lock(mu);
    if (access.ok()) {
      allowed[index] = true;
    } else if (access.code() != absl::StatusCode::kPermissionDenied && failure.ok()) {
      failure = access;  // a check that could not be made: the whole answer would be a guess
    }
    return --remaining == 0;
  }

  std::mutex mu;
  std::vector<bool> allowed;  // guarded by mu until the last answer
  absl::Status failure;       // likewise
  std::size_t remaining;
};

}  // namespace

grpc::ServerUnaryReactor* InformerService::ListResources(grpc::CallbackServerContext* context,
                                                         const v1::ListResourcesRequest* request,
                                                         v1::ListResourcesResponse* response) {
  auto* call = new UnaryCall(access_, "ListResources");
  const CallCredentials credentials = ReadCallCredentials(*context);
  AuditRecord& audit = call->audit();
  audit.peer = credentials.peer;
  audit.namespace_name = request->namespace_();
  audit.decision = AuditDecision::kError;
  if (shutting_down_.load()) {
    call->FinishWith(ShuttingDown());
    return call;
  }
  access_.Authenticate(
      credentials, [this, call, request, response](absl::StatusOr<core::UserInfo> user) {
        AuditRecord& audit = call->audit();
        if (!user.ok()) {
          audit.decision = AuditDecisionFor(user.status());
          return call->FinishWith(user.status());
        }
        audit.user = user->name;
        const std::string& requested_namespace = request->namespace_();
        // The entries the caller could be shown: in another namespace than the one asked about, an
        // entry is never shown (its counts would tell about that namespace).
        std::vector<std::shared_ptr<const ServedResource>> entries;
        for (std::shared_ptr<const ServedResource>& served : registry_.Entries()) {
          if (!requested_namespace.empty() && served->resource.namespaced &&
              !served->namespace_name.empty() && served->namespace_name != requested_namespace) {
            continue;
          }
          entries.push_back(std::move(served));
        }
        auto checks = std::make_shared<ListResourcesChecks>(entries.size());
        const auto answer = [this, call, request, response, entries, checks]() {
          AuditRecord& audit = call->audit();
          if (!checks->failure.ok()) {
            audit.decision = AuditDecision::kError;
            return call->FinishWith(checks->failure);
          }
          audit.decision = AuditDecision::kAllow;
          for (std::size_t i = 0; i < entries.size(); ++i) {
            if (checks->allowed[i]) Describe(*entries[i], request->namespace_(), response);
          }
          call->FinishWith(absl::OkStatus());
        };
        if (entries.empty()) return answer();
        for (std::size_t i = 0; i < entries.size(); ++i) {
          const core::ResolvedResource& resource = entries[i]->resource;
          core::ResourceAttributes list;
          list.verb = "list";
          list.group = resource.group;
          list.resource = resource.resource;
          list.namespace_name = resource.namespaced ? requested_namespace : "";
          access_.Authorize(*user, {list}, [checks, i, answer](absl::Status access) {
            if (checks->Answer(i, access)) answer();
          });
        }
      });
  return call;
}

}  // namespace informerd::daemon
