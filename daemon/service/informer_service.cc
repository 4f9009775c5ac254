#include "daemon/service/informer_service.h"

#include <algorithm>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "core/object_filter.h"
#include "core/subscription.h"
#include "daemon/service/event_encoder.h"
#include "fmt/format.h"

namespace informerd::daemon {
namespace {

constexpr std::size_t kMaxStatusMessageBytes = 1024;

absl::Status ShuttingDown() { return absl::UnavailableError("informerd is shutting down"); }

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

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  std::string message(status.message());
  if (message.size() > kMaxStatusMessageBytes) {
    const std::size_t original = message.size();
    std::size_t cut = kMaxStatusMessageBytes;
    // Back up to the start of a UTF-8 sequence (continuation bytes are 10xxxxxx).
    while (cut > 0 && (static_cast<unsigned char>(message[cut]) & 0xC0) == 0x80) --cut;
    message.resize(cut);
    message += fmt::format("... ({} more bytes)", original - cut);
  }
  // absl::StatusCode and grpc::StatusCode share their numeric values by design.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), message);
}

// ---- Unary calls ---------------------------------------------------------------------------

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

// ---- Subscribe -----------------------------------------------------------------------------

// One Subscribe stream. The state machine, all under mu_:
//   starting   resolving and subscribing (starting_): until OnResolved's last Pump no thread
//              finishes the stream, since that could delete it while OnResolved still runs;
//              before subscription_ is set, OnCancel only records itself.
//   streaming  Pump() pops the next Delivery and starts its write, unless a write is in flight
//              (write_in_flight_) or the stream is finished. Pump runs from OnWriteDone (the
//              previous write completed), from on_ready (something arrived in an empty queue, or
//              the subscription ended: the cache's thread), and after subscribing. Whoever finds
//              the queue empty and the subscription not ended simply returns: the next arrival
//              calls on_ready, and the pop and the emptiness check happen under mu_, so an item
//              that arrives meanwhile is either popped or followed by an on_ready that waits for
//              mu_ and then pops it. Never two writes at once, no lost wake-up.
//   finished   FinalStatus() arrived once the queue was drained (or the start failed): Finish
//              was called, exactly once (finished_).
// OnCancel and a failed write Close the subscription, whose FinalStatus is then CANCELLED, and
// Pump finishes the stream (after the write in flight completes, if there is one). OnDone, after
// Finish, Closes the subscription again (a no-op unless it had ended by itself), which also waits
// for an on_ready call in progress, and then deletes the stream: no on_ready can follow.
// Subscription::Close is never called with mu_ held: it waits for on_ready, which takes mu_.
class InformerService::SubscribeStream final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit SubscribeStream(InformerService& service) : service_(service) {}

  void Start(const grpc::ByteBuffer& raw_request) {
    {
      // Publishes the constructed stream to the threads that lock mu_ later (OnCancel, the
      // resolver's): gRPC hands the reactor over inside libgrpc, where ThreadSanitizer cannot
      // see it.
      std::lock_guard<std::mutex> lock(mu_);
    }
    // A copy of a ByteBuffer shares its slices; Deserialize consumes the copy, not the request.
    grpc::ByteBuffer copy(raw_request);
    if (!grpc::SerializationTraits<v1::SubscribeRequest>::Deserialize(&copy, &request_).ok()) {
      return FinishEarly(absl::InvalidArgumentError(
          "the request is not a valid informerd.v1.SubscribeRequest message"));
    }
    if (service_.shutting_down_.load()) return FinishEarly(ShuttingDown());
    service_.resolver_.Resolve(
        request_.resource(),
        [this](absl::StatusOr<core::ResolvedResource> resolved) { OnResolved(resolved); });
  }

  void OnWriteDone(bool ok) override {
    std::shared_ptr<core::Subscription> broken;
    {
      std::lock_guard<std::mutex> lock(mu_);
      write_in_flight_ = false;
      buffer_.Clear();  // release the event now rather than at the next write
      // The stream is broken (the client went away): stop queueing for it.
      if (!ok) broken = subscription_;
    }
    if (broken) broken->Close();
    Pump();
  }

  void OnCancel() override {
    std::shared_ptr<core::Subscription> subscription;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled_ = true;
      subscription = subscription_;
    }
    // Still starting: OnResolved sees cancelled_ and finishes.
    if (!subscription) return;
    subscription->Close();
    Pump();
  }

  void OnDone() override {
    std::shared_ptr<core::Subscription> subscription;
    absl::Status final_status;
    {
      std::lock_guard<std::mutex> lock(mu_);
      subscription = std::move(subscription_);
      final_status = final_status_;
    }
    if (subscription) subscription->Close();
    if (service_.options_.logger) {
      service_.options_.logger->debug("Subscribe to {} ended: {}", description_,
                                      final_status.ToString());
    }
    delete this;
  }

 private:
  void OnResolved(const absl::StatusOr<core::ResolvedResource>& resolved) {
    bool cancelled = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled = cancelled_;
    }
    if (cancelled) return FinishEarly(absl::CancelledError("the call was cancelled"));
    absl::StatusOr<std::shared_ptr<core::Subscription>> subscription = service_.OpenSubscription(
        resolved, request_, [this] { Pump(); }, description_, lease_);
    if (!subscription.ok()) return FinishEarly(subscription.status());
    // Before any write (none can start while subscription_ is null): tells the client that the
    // subscription exists, even when nothing is delivered for a while.
    StartSendInitialMetadata();
    {
      std::lock_guard<std::mutex> lock(mu_);
      subscription_ = *subscription;
      cancelled = cancelled_;
    }
    // Cancelled while subscribing: OnCancel saw no subscription to close.
    if (cancelled) (*subscription)->Close();
    // Ends the starting state: until now no other thread could finish the stream (and so
    // delete it) under this function; from inside this call on, any may.
    Pump(/*ending_start=*/true);
  }

  void FinishEarly(const absl::Status& status) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      finished_ = true;
      final_status_ = status;
    }
    Finish(ToGrpcStatus(status));
  }

  void Pump(bool ending_start = false) {
    std::optional<core::Delivery> next;
    std::optional<absl::Status> final_status;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (ending_start) starting_ = false;
      if (finished_ || write_in_flight_ || !subscription_) return;
      next = subscription_->TryPop();
      if (next) {
        write_in_flight_ = true;
      } else {
        final_status = subscription_->FinalStatus();
        if (!final_status) return;  // wait for on_ready
        // OnResolved still runs on another thread and will Pump once more: finishing now could
        // delete the stream under it.
        if (starting_) return;
        finished_ = true;
        final_status_ = *final_status;
      }
    }
    if (final_status) {
      if (final_status->code() == absl::StatusCode::kResourceExhausted &&
          service_.options_.logger) {
        service_.options_.logger->warn("Subscribe to {}: {}", description_,
                                       std::string(final_status->message()));
      }
      Finish(ToGrpcStatus(*final_status));
      return;
    }
    // Encoding (once per event and delivered type, whoever comes first) happens outside mu_, so
    // on_ready never waits for it. Only this thread touches buffer_ until the write completes;
    // it is assigned under mu_ so that the next writer's access is ordered after this one's.
    grpc::ByteBuffer buffer = EventByteBuffer(*next, service_.encoder_);
    next.reset();
    {
      std::lock_guard<std::mutex> lock(mu_);
      buffer_.Swap(&buffer);
    }
    StartWrite(&buffer_);
  }

  InformerService& service_;
  v1::SubscribeRequest request_;  // written by Start, read until subscribed
  std::string description_;       // the served entry, for logs; written before subscribing
  // An on-demand entry's lease, held until the stream is deleted; written before subscribing.
  std::shared_ptr<const void> lease_;

  std::mutex mu_;
  // Guarded by mu_.
  std::shared_ptr<core::Subscription> subscription_;
  bool write_in_flight_ = false;
  bool finished_ = false;
  bool cancelled_ = false;
  // Until OnResolved's last Pump: the stream may start writes but not finish.
  bool starting_ = true;
  absl::Status final_status_;
  grpc::ByteBuffer buffer_;  // the message being written; see Pump
};

// ---- The service ---------------------------------------------------------------------------

InformerService::InformerService(ResourceResolver& resolver, const ResourceRegistry& registry,
                                 InformerServiceOptions options)
    : resolver_(resolver),
      registry_(registry),
      options_(std::move(options)),
      encoder_(options_.encoder ? options_.encoder : core::CacheEvent::Encoder(&EncodeEvent)) {}

InformerService::~InformerService() = default;

void InformerService::Shutdown() {
  if (shutting_down_.exchange(true)) return;
  for (const std::shared_ptr<const ServedResource>& served : registry_.Entries()) {
    served->cache->Shutdown(ShuttingDown());
  }
}

absl::StatusOr<InformerService::ReadTarget> InformerService::FindTarget(
    const absl::StatusOr<core::ResolvedResource>& resolved, const std::string& name,
    const std::string& namespace_name, const std::string& label_selector,
    const std::string& field_selector) const {
  ReadTarget target;
  core::ResolvedResource resource;
  bool on_demand = false;
  if (!resolved.ok()) {
    // Discovery no longer knows the name; a configured resource whose CRD was deleted is still
    // ours to answer for ("stopped being served": UNAVAILABLE, not NOT_FOUND).
    if (resolved.status().code() == absl::StatusCode::kNotFound) {
      target.served = registry_.FindGone(name);
    }
    if (!target.served) return resolved.status();
    resource = target.served->resource;
  } else {
    resource = *resolved;
    absl::StatusOr<std::shared_ptr<const ServedResource>> served =
        registry_.Find(resource, namespace_name);
    if (served.ok() && !(*served)->on_demand) {
      target.served = std::move(*served);
    } else if (served.ok() || registry_.on_demand_enabled()) {
      on_demand = true;  // readers of an on-demand entry hold a lease: see below
    } else {
      return served.status();
    }
  }

  const auto too_long = [&](const char* what, const std::string& text) {
    return absl::InvalidArgumentError(fmt::format("{} is {} bytes long; at most {} are accepted",
                                                  what, text.size(), options_.max_selector_bytes));
  };
  if (label_selector.size() > options_.max_selector_bytes) {
    return too_long("label selector", label_selector);
  }
  if (field_selector.size() > options_.max_selector_bytes) {
    return too_long("field selector", field_selector);
  }
  // The parsers' messages name the selector ("label selector \"a in (b\": ...").
  absl::StatusOr<core::LabelSelector> labels = core::LabelSelector::Parse(label_selector);
  if (!labels.ok()) return labels.status();
  absl::StatusOr<core::FieldSelector> fields = core::FieldSelector::Parse(field_selector);
  if (!fields.ok()) return fields.status();
  if (!resource.namespaced && !namespace_name.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("{} is cluster-scoped: namespace must be empty, got {:?}",
                    resource.QualifiedName(), namespace_name));
  }
  // Fields the cache cannot answer are refused now rather than after a wait for the sync (and,
  // on demand, before an informer is started for nothing: on-demand caches index no extra
  // fields).
  absl::StatusOr<core::ObjectFilter> filter = core::ObjectFilter::Create(
      namespace_name, *labels, *fields,
      on_demand ? std::vector<std::string>() : target.served->cache->extra_field_paths());
  if (!filter.ok()) return filter.status();
  if (on_demand) {
    absl::StatusOr<ServedLease> lease = registry_.AcquireOnDemand(resource);
    if (!lease.ok()) return lease.status();
    target.served = std::move(lease->served);
    target.lease = std::move(lease->lease);
  }
  target.label_selector = std::move(*labels);
  target.field_selector = std::move(*fields);
  return target;
}

absl::StatusOr<std::shared_ptr<core::Subscription>> InformerService::OpenSubscription(
    const absl::StatusOr<core::ResolvedResource>& resolved, const v1::SubscribeRequest& request,
    std::function<void()> on_ready, std::string& description,
    std::shared_ptr<const void>& lease) const {
  absl::StatusOr<ReadTarget> target =
      FindTarget(resolved, request.resource(), request.namespace_(), request.label_selector(),
                 request.field_selector());
  if (!target.ok()) return target.status();
  description = target->served->Describe();
  lease = std::move(target->lease);
  core::SubscribeOptions subscribe;
  subscribe.namespace_name = request.namespace_();
  subscribe.label_selector = std::move(target->label_selector);
  subscribe.field_selector = std::move(target->field_selector);
  subscribe.resource_version = request.resource_version();
  subscribe.allow_bookmarks = request.allow_bookmarks();
  subscribe.queue_capacity = options_.subscriber_queue_capacity;
  subscribe.on_ready = std::move(on_ready);
  // INVALID_ARGUMENT (a non-numeric resource version), OUT_OF_RANGE (older than the window) and
  // UNAVAILABLE (shut down) pass through with the cache's message.
  return target->served->cache->Subscribe(std::move(subscribe));
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* InformerService::Subscribe(
    grpc::CallbackServerContext* /*context*/, const grpc::ByteBuffer* request) {
  auto* stream = new SubscribeStream(*this);
  stream->Start(*request);
  return stream;
}

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
  resolver_.Resolve(request->resource(), [this, call, request, response,
                                          give_up_at](absl::StatusOr<core::ResolvedResource> resolved) {
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
  resolver_.Resolve(request->resource(), [this, call, request, response,
                                          give_up_at](absl::StatusOr<core::ResolvedResource> resolved) {
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
