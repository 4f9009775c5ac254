// List, Get and ListResources: the unary RPCs. UnaryCall is one List or Get call's reactor;
// WhenSynced makes a List or Get wait for its cache's initial sync, looking again on the
// service's TimerThread. ListResources answers at once with gRPC's default reactor.
//
// Threads: each handler runs on a gRPC thread and returns at once. A List or Get continues on
// the resolver's thread (or on that gRPC thread when the resolution answers at once), and, when
// it waits for a sync, on the TimerThread, which finishes it. OnCancel and OnDone run on gRPC's
// threads.
#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "daemon/service/informer_service.h"
#include "fmt/format.h"

namespace informerd::daemon {
namespace {

// Why a cache is not synced, for UNAVAILABLE: the cache's reason, and the upstream's last error
// while it keeps failing (a 403 explains a sync that never comes).
std::string UnsyncedReason(const ServedResource& served, const core::CacheStats& stats,
                           const core::ReflectorStatus& upstream) {
  std::string reason =
      stats.unsynced_reason.empty() ? "the cache is not synced" : stats.unsynced_reason;
  if (const absl::Status error = upstream.current_error(); !error.ok()) {
    reason += fmt::format(" (last error from the apiserver: {})", std::string(error.message()));
  }
  return fmt::format("{} has not synced yet: {}", served.Describe(), reason);
}

}  // namespace

// One List or Get. Finished exactly once, by whoever holds the call at that moment: the handler,
// the resolver's callback, or a TimerThread task. OnCancel only raises a flag that the next look
// notices (a waiting call looks every sync_poll_interval), so the call is never finished by two
// threads and is never deleted (OnDone, after Finish) while a task still holds it.
class InformerService::UnaryCall final : public grpc::ServerUnaryReactor {
 public:
  // An atomic store rather than an initializer, so that OnCancel's store on another thread is
  // never a plain write racing an atomic one (gRPC hands the reactor over inside libgrpc).
  UnaryCall() { cancelled_.store(false, std::memory_order_release); }

  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  void FinishWith(const absl::Status& status) {
    // Orders everything done with the call so far before OnDone's delete, for ThreadSanitizer:
    // the real ordering is inside libgrpc, which it cannot see.
    { std::lock_guard<std::mutex> lock(done_mu_); }
    Finish(ToGrpcStatus(status));
  }

  void OnCancel() override { cancelled_.store(true, std::memory_order_release); }
  void OnDone() override {
    { std::lock_guard<std::mutex> lock(done_mu_); }
    delete this;
  }

 private:
  std::atomic<bool> cancelled_;
  std::mutex done_mu_;
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

void InformerService::WhenSynced(UnaryCall* call, std::shared_ptr<const ServedResource> served,
                                 Clock::time_point give_up_at, std::function<bool()> attempt) {
  if (call->cancelled()) return call->FinishWith(absl::CancelledError("the call was cancelled"));
  if (shutting_down_.load()) return call->FinishWith(ShuttingDown());
  const core::CacheStats stats = served->cache->Stats();
  // The entry was replaced or stopped (its resource is gone, an on-demand informer ended): its
  // cache says why, and its objects must not be served.
  if (stats.shut_down) return call->FinishWith(*stats.shut_down);
  if (stats.synced && attempt()) return;
  const core::ReflectorStatus upstream =
      served->status ? served->status() : core::ReflectorStatus();
  if (upstream.resource_gone) {
    return call->FinishWith(absl::UnavailableError(
        fmt::format("{} is no longer served by the apiserver", served->Describe())));
  }
  const Clock::time_point now = Clock::now();
  if (now >= give_up_at) {
    return call->FinishWith(absl::UnavailableError(UnsyncedReason(*served, stats, upstream)));
  }
  timer_.RunAt(
      std::min(now + options_.sync_poll_interval, give_up_at),
      [this, call, served = std::move(served), give_up_at, attempt = std::move(attempt)]() mutable {
        WhenSynced(call, std::move(served), give_up_at, std::move(attempt));
      });
}

grpc::ServerUnaryReactor* InformerService::List(grpc::CallbackServerContext* context,
                                                const v1::ListRequest* request,
                                                v1::ListResponse* response) {
  auto* call = new UnaryCall();
  if (shutting_down_.load()) {
    call->FinishWith(ShuttingDown());
    return call;
  }
  const Clock::time_point give_up_at = SyncDeadline(*context);
  // `request` and `response` live until OnDone, which follows Finish.
  resolver_.Resolve(request->resource(), [this, call, request, response, give_up_at](
                                             absl::StatusOr<core::ResolvedResource> resolved) {
    absl::StatusOr<ReadTarget> found =
        FindTarget(resolved, request->resource(), request->namespace_(), request->label_selector(),
                   request->field_selector());
    if (!found.ok()) return call->FinishWith(found.status());
    auto target = std::make_shared<const ReadTarget>(std::move(*found));
    WhenSynced(call, target->served, give_up_at, [call, request, response, target]() {
      absl::StatusOr<core::ListResult> result = target->served->cache->List(
          request->namespace_(), target->label_selector, target->field_selector);
      if (!result.ok()) {
        call->FinishWith(result.status());
        return true;
      }
      if (!result->synced) return false;
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
  auto* call = new UnaryCall();
  if (shutting_down_.load()) {
    call->FinishWith(ShuttingDown());
    return call;
  }
  if (request->name().empty()) {
    call->FinishWith(absl::InvalidArgumentError("name must not be empty"));
    return call;
  }
  const Clock::time_point give_up_at = SyncDeadline(*context);
  resolver_.Resolve(request->resource(), [this, call, request, response, give_up_at](
                                             absl::StatusOr<core::ResolvedResource> resolved) {
    absl::StatusOr<ReadTarget> found =
        FindTarget(resolved, request->resource(), request->namespace_(), "", "");
    if (!found.ok()) return call->FinishWith(found.status());
    std::shared_ptr<const ServedResource> served = std::move(found->served);
    WhenSynced(
        call, served, give_up_at,
        [call, request, response, served, lease = std::move(found->lease)]() {
          core::GetResult result = served->cache->Get(request->namespace_(), request->name());
          if (!result.synced) return false;
          if (!result.object) {
            const core::ResolvedResource& resource = served->resource;
            std::string message;
            if (!resource.namespaced) {
              message = fmt::format("{} {:?} not found", resource.QualifiedName(), request->name());
            } else if (request->namespace_().empty()) {
              message =
                  fmt::format("{} {:?} not found: {} is namespaced and no namespace was given",
                              resource.QualifiedName(), request->name(), resource.QualifiedName());
            } else {
              message = fmt::format("{} {:?} not found in namespace {:?}", resource.QualifiedName(),
                                    request->name(), request->namespace_());
            }
            call->FinishWith(absl::NotFoundError(message));
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

grpc::ServerUnaryReactor* InformerService::ListResources(
    grpc::CallbackServerContext* context, const v1::ListResourcesRequest* /*request*/,
    v1::ListResourcesResponse* response) {
  for (const std::shared_ptr<const ServedResource>& served : registry_.Entries()) {
    const core::CacheStats stats = served->cache->Stats();
    const core::ReflectorStatus upstream =
        served->status ? served->status() : core::ReflectorStatus();
    v1::ResourceInfo* info = response->add_resources();
    info->set_group(served->resource.group);
    info->set_version(served->resource.version);
    info->set_resource(served->resource.resource);
    info->set_kind(served->resource.kind);
    info->set_namespaced(served->resource.namespaced);
    info->set_namespace_(served->namespace_name);
    info->set_label_selector(served->label_selector);
    info->set_field_selector(served->field_selector);
    info->set_synced(stats.synced);
    info->set_resource_version(stats.resource_version);
    info->set_object_count(static_cast<int64_t>(stats.object_count));
    info->set_subscriber_count(static_cast<int64_t>(stats.subscriber_count));
    info->set_on_demand(served->on_demand);
    if (upstream.resource_gone) {
      info->set_condition("resource no longer served by the apiserver");
    } else if (const absl::Status error = upstream.current_error(); !error.ok()) {
      info->set_condition(std::string(error.message()));
    }
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace informerd::daemon
