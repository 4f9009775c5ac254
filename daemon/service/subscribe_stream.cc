// Subscribe: the server-streaming RPC. SubscribeStream is one call's reactor (gRPC's callback
// API); InformerService::Subscribe creates it and OpenSubscription turns the resolved request
// into a core::Subscription.
//
// Threads: Start runs on the gRPC thread that delivered the call; OnResolved (and so
// OpenSubscription) on the resolver's thread, or on that same gRPC thread when the resolution
// answers at once; OnWriteDone, OnCancel and OnDone on gRPC's threads; Pump on any of these and
// on the cache's (reflector's) thread, through the subscription's on_ready. The state machine in
// the class comment says how they share the stream.
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "core/subscription.h"
#include "daemon/service/event_encoder.h"
#include "daemon/service/informer_service.h"

namespace informerd::daemon {

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

}  // namespace informerd::daemon
