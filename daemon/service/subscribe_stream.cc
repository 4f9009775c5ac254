// Subscribe: the server-streaming RPC. SubscribeStream is one call's reactor (gRPC's callback
// API); InformerService::Subscribe creates it, InformerService::Admit admits the call, and
// OpenSubscription turns the admitted request into a core::Subscription. An admitted stream is
// authorized again every AccessControl::recheck_interval() (Recheck, on the service's
// TimerThread) and ended when the answer is no longer "allowed". Two bounded waits, also on the
// TimerThread, end a stream that cannot progress with UNAVAILABLE: a snapshot stream whose
// resource has not synced within subscribe_sync_wait (SyncWaitOver), and a stream from a
// resource version the cache has not reached within future_version_wait (FutureWaitOver).
//
// Threads: Start runs on the gRPC thread that delivered the call; OnAdmitted (and so
// OpenSubscription, the snapshot) on the service's executor when an admission step answered
// later (a review, the resolver), or on that same gRPC thread when every step answers at once;
// OnWriteDone, OnCancel and OnDone on gRPC's threads; the subscription's on_ready on the cache's
// (reflector's) thread, or on the TimerThread (the bounded waits, SyncWaitOver and
// FutureWaitOver, and the ends of the caches' stall checks, ScheduleStallCheck, end
// subscriptions there), where it only posts a Pump to the executor (SchedulePump); so Pump, and
// every StartWrite and Finish, runs on gRPC's threads, the executor, or where OnRechecked runs.
// Recheck runs on the TimerThread and OnRechecked where the review answers (it starts no write:
// at most it closes the subscription and finishes the stream). The thread that applies watches
// never encodes or writes for a subscriber. The state machine in the class comment says how they
// share the stream.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/subscription.h"
#include "daemon/service/call_credentials.h"
#include "daemon/service/event_encoder.h"
#include "daemon/service/informer_service.h"
#include "fmt/format.h"

namespace informerd::daemon {
namespace {

// "30s", "1500ms": a wait, for messages.
std::string FormatWait(std::chrono::milliseconds wait) {
  if (wait % std::chrono::seconds(1) == std::chrono::milliseconds::zero()) {
    return fmt::format("{}s", wait.count() / 1000);
  }
  return fmt::format("{}ms", wait.count());
}

// UNAVAILABLE for a snapshot stream whose resource has not synced within `wait`: the cache's
// reason, and the upstream's last error while it keeps failing (a 403 explains a sync that never
// comes), as List and Get say it.
absl::Status NotSyncedWithin(const ServedResource& served, std::chrono::milliseconds wait) {
  return absl::UnavailableError(fmt::format(
      "{} has not synced within {}: {}; retry", served.Describe(), FormatWait(wait),
      ServedResource::NotSyncedReason(served.cache->Stats(),
                                      served.status ? served.status() : core::ReflectorStatus())));
}

// How often a cache with subscribers is checked for subscribers that read nothing
// (core::Cache::CheckStalled): one is ended within its stall budget (1 s) plus twice this. One
// recurring task per cache that has subscribers, on the service's TimerThread (never the
// reflector's thread, which serves every informer).
constexpr std::chrono::milliseconds kStallCheckPeriod{250};

// Batching (SubscribeRequest.max_events_per_message): at most this many events in one message,
// and no more added once the objects in it reach kBatchBytes. The check comes before each event
// is added, so a batch holds less than kBatchBytes plus one event: a client's receive limit must
// allow its largest object plus 1 MiB (gRPC's default 4 MiB does for objects up to 3 MiB).
constexpr std::size_t kMaxEventsPerMessage = 1024;
constexpr std::size_t kBatchBytes = 1 << 20;

// Checks `cache` every kStallCheckPeriod until it has no subscriber left (or is gone). The task
// runs on `timer`'s own thread, so `timer` exists whenever it runs.
void ScheduleStallCheck(TimerThread& timer, std::weak_ptr<core::Cache> cache) {
  timer.RunAt(TimerThread::Clock::now() + kStallCheckPeriod,
              [&timer, cache = std::move(cache)]() mutable {
                const std::shared_ptr<core::Cache> locked = cache.lock();
                if (locked && locked->CheckStalled()) ScheduleStallCheck(timer, std::move(cache));
              });
}

}  // namespace

// One Subscribe stream. The state machine, all under mu_:
//   starting   admitting and subscribing (starting_): until OnAdmitted's last Pump no thread
//              finishes the stream, since that could end it while OnAdmitted still runs;
//              before subscription_ is set, OnCancel only records itself.
//   streaming  Pump() pops the next Delivery and starts its write, unless a write is in flight
//              (write_in_flight_) or the stream is finished. Pump runs from OnWriteDone (the
//              previous write completed), from a task that on_ready posted to the executor
//              (something arrived in an empty queue, or the subscription ended), and after
//              subscribing. on_ready posts at most one such task at a time (pump_posted_, cleared
//              by the task before it Pumps). Whoever finds the queue empty and the subscription
//              not ended simply returns: the next arrival calls on_ready, and the pop and the
//              emptiness check happen under mu_, so an item that arrives meanwhile is either
//              popped or followed by an on_ready whose task (posted then, or one already posted
//              that has not cleared the flag yet, and so Pumps after the arrival) pops it. Never
//              two writes at once, no lost wake-up.
//   revoked    a re-authorization said no (revoked_): from that decision on nothing is popped
//              (the subscription is closed, its queue dropped); once the write in flight, if
//              any, completes, Pump finishes the stream with revoked_.
//   finished   FinalStatus() arrived once the queue was drained, or the start failed, or the
//              stream was revoked: Finish was called, exactly once (finished_).
// OnCancel and a failed write Close the subscription, whose FinalStatus is then CANCELLED, and
// Pump finishes the stream (after the write in flight completes, if there is one). The bounded
// waits end the subscription itself, in the cache, only while it still waits (so never after
// SYNCED, or an event after the version asked for, has been queued): it then ends like any other
// (on_ready, what was queued is written, then FinalStatus), with no state of the stream's. OnDone,
// after Finish, Closes the subscription again (a no-op unless it had ended by itself), which also
// waits for an on_ready call in progress, writes the audit line and lets go of the stream's
// reference to itself: no on_ready can follow, but a Pump task it posted may still wait on the
// executor. Subscription::Close is never called with mu_ held (it waits for on_ready).
//
// Lifetime: the stream owns itself (self_) from Start to OnDone. A Pump task on the executor
// holds it strongly (taken by on_ready, while OnDone has not let go of it), so it may outlive
// OnDone until the task has run: Pump then finds it finished and touches neither gRPC nor the
// service; the service shuts its executor down, running every task, before its own state goes.
// Re-authorization tasks and their review callbacks hold it weakly and may keep it alive past
// OnDone for a moment; they then find it finished and touch neither gRPC nor the service (which
// may be gone by then).
class InformerService::SubscribeStream final
    : public grpc::ServerWriteReactor<grpc::ByteBuffer>,
      public std::enable_shared_from_this<SubscribeStream> {
 public:
  explicit SubscribeStream(InformerService& service)
      : service_(service), access_(service.access_) {}

  // `self` is this stream: held until OnDone.
  void Start(std::shared_ptr<SubscribeStream> self, const CallCredentials& credentials,
             const grpc::ByteBuffer& raw_request) {
    {
      // Also publishes the constructed stream to the threads that lock mu_ later (OnCancel, the
      // admission's): gRPC hands the reactor over inside libgrpc, where ThreadSanitizer cannot
      // see it.
      std::lock_guard<std::mutex> lock(mu_);
      self_ = std::move(self);
      audit_.method = "Subscribe";
      audit_.peer = credentials.peer;
    }
    // A copy of a ByteBuffer shares its slices; Deserialize consumes the copy, not the request.
    grpc::ByteBuffer copy(raw_request);
    if (!grpc::SerializationTraits<v1::SubscribeRequest>::Deserialize(&copy, &request_).ok()) {
      return FinishEarly(absl::InvalidArgumentError(
          "the request is not a valid informerd.v1.SubscribeRequest message"));
    }
    batch_limit_ =
        std::clamp<std::size_t>(request_.max_events_per_message(), 1, kMaxEventsPerMessage);
    if (service_.shutting_down_.load()) return FinishEarly(ShuttingDown());
    Ask ask;
    ask.method = "Subscribe";
    ask.resource = request_.resource();
    ask.namespace_name = request_.namespace_();
    ask.verbs = {"list", "watch"};
    ask.label_selector = request_.label_selector();
    ask.field_selector = request_.field_selector();
    ask.subscription = true;
    // Nothing after this call: admission may finish the stream before it returns.
    service_.Admit(credentials, std::move(ask), &audit_,
                   [this](absl::StatusOr<Admitted> admitted) { OnAdmitted(std::move(admitted)); });
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
    // Still starting: OnAdmitted sees cancelled_ and finishes.
    if (!subscription) return;
    subscription->Close();
    Pump();
  }

  void OnDone() override {
    std::shared_ptr<core::Subscription> subscription;
    absl::Status final_status;
    AuditRecord audit;
    std::shared_ptr<const void> lease;
    std::shared_ptr<SubscribeStream> self;  // last: may destroy the stream when it goes
    {
      std::lock_guard<std::mutex> lock(mu_);
      subscription = std::move(subscription_);
      final_status = final_status_;
      audit_.code = final_status.code();
      audit = audit_;
      lease = std::move(lease_);
      self = std::move(self_);
    }
    if (subscription) subscription->Close();
    {
      // Released when the stream finished (FinishLocked); this only makes sure.
      std::lock_guard<std::mutex> lock(mu_);
      slot_.Release();
    }
    if (service_.options_.logger) {
      service_.options_.logger->debug("Subscribe to {} ended: {}", description_,
                                      final_status.ToString());
    }
    access_.Audit(audit);
  }

 private:
  void OnAdmitted(absl::StatusOr<Admitted> admitted) {
    bool cancelled = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled = cancelled_;
      // Held by the stream from now on, so that however it finishes, the place is given back
      // before the client can read the status.
      if (admitted.ok()) slot_ = std::move(admitted->slot);
    }
    if (cancelled) return FinishEarly(absl::CancelledError("the call was cancelled"));
    if (!admitted.ok()) return FinishEarly(admitted.status());
    user_ = std::move(admitted->user);
    checked_ = std::move(admitted->checked);
    served_ = admitted->target.served;
    {
      std::lock_guard<std::mutex> lock(mu_);
      lease_ = admitted->target.lease;
    }
    service_.Observe("subscribe");
    absl::StatusOr<std::shared_ptr<core::Subscription>> subscription = service_.OpenSubscription(
        admitted->target, request_, [this] { SchedulePump(); }, description_);
    if (!subscription.ok()) return FinishEarly(subscription.status());
    // A subscriber that stops reading is ended even when no event reaches it (the first
    // subscriber of a cache with none starts the cache's checks).
    if (served_->cache->StartStallChecks()) ScheduleStallCheck(service_.timer_, served_->cache);
    // Before any write (none can start while subscription_ is null): tells the client that the
    // subscription exists, even when nothing is delivered for a while.
    StartSendInitialMetadata();
    {
      std::lock_guard<std::mutex> lock(mu_);
      subscription_ = *subscription;
      cancelled = cancelled_;
      ScheduleRecheckLocked();
      ScheduleWaitLocked();
    }
    // Cancelled while subscribing: OnCancel saw no subscription to close.
    if (cancelled) (*subscription)->Close();
    // Ends the starting state: until now no other thread could finish the stream under this
    // function; from inside this call on, any may.
    Pump(/*ending_start=*/true);
  }

  // With mu_ held, on a stream not finished (so the service exists: the server waits for this
  // stream's OnDone before the service may go): authorize again after recheck_interval().
  void ScheduleRecheckLocked() {
    const std::chrono::milliseconds interval = access_.recheck_interval();
    if (interval <= std::chrono::milliseconds::zero()) return;  // decisions never change
    service_.timer_.RunAt(Clock::now() + interval, [weak = weak_from_this()] {
      if (std::shared_ptr<SubscribeStream> self = weak.lock()) self->Recheck();
    });
  }

  // With mu_ held, once subscribed, on a stream not finished: the bounded wait for what the
  // subscription waits for (core::Subscription::EndIfAwaitingSynced, EndIfAheadOfCache). Always
  // scheduled (unless the wait is zero): at its time the subscription itself says whether it
  // still waits. The task reads the service's options only here, while the service exists.
  void ScheduleWaitLocked() {
    const std::string& version = request_.resource_version();
    const bool snapshot = version.empty() || version == "0";
    const std::chrono::milliseconds wait =
        snapshot ? service_.options_.subscribe_sync_wait : service_.options_.future_version_wait;
    if (wait <= std::chrono::milliseconds::zero()) return;  // as long as it takes
    service_.timer_.RunAt(Clock::now() + wait, [weak = weak_from_this(), snapshot, wait] {
      if (std::shared_ptr<SubscribeStream> self = weak.lock()) {
        if (snapshot) {
          self->SyncWaitOver(wait);
        } else {
          self->FutureWaitOver(wait);
        }
      }
    });
  }

  // The subscription while the stream streams it; null once finished or revoked.
  std::shared_ptr<core::Subscription> StreamingSubscription() {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_ || revoked_) return nullptr;
    return subscription_;
  }

  // On the TimerThread, `wait` after subscribing without a resource version: a subscription whose
  // SYNCED has not been queued ends with why the resource has not synced. Its on_ready Pumps the
  // end out.
  void SyncWaitOver(std::chrono::milliseconds wait) {
    const std::shared_ptr<core::Subscription> subscription = StreamingSubscription();
    if (!subscription) return;
    // served_ was written before subscription_ (under mu_), never after.
    subscription->EndIfAwaitingSynced(NotSyncedWithin(*served_, wait));
  }

  // On the TimerThread, `wait` after subscribing from a resource version: a subscription still
  // ahead of the cache (nothing sent) ends with the apiserver's "too large resource version".
  void FutureWaitOver(std::chrono::milliseconds wait) {
    const std::shared_ptr<core::Subscription> subscription = StreamingSubscription();
    if (!subscription) return;
    // description_ was written before subscription_ (under mu_), never after.
    subscription->EndIfAheadOfCache([&](uint64_t version, const std::string& current) {
      return absl::UnavailableError(fmt::format(
          "too large resource version: {}, current: {}: the cache of {} has not reached it "
          "within {}; retry",
          version, current.empty() ? "none" : current, description_, FormatWait(wait)));
    });
  }

  // On the TimerThread.
  void Recheck() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_ || revoked_) return;
    }
    // user_ and checked_ were written before subscription_ was set (under mu_), never after.
    access_.Authorize(user_, checked_, [weak = weak_from_this()](absl::Status access) {
      if (std::shared_ptr<SubscribeStream> self = weak.lock()) self->OnRechecked(access);
    });
  }

  void OnRechecked(const absl::Status& access) {
    if (access.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!finished_ && !revoked_) ScheduleRecheckLocked();
      return;
    }
    const absl::Status ending =
        access.code() == absl::StatusCode::kPermissionDenied
            ? absl::PermissionDeniedError(fmt::format("the stream's permission was revoked: {}",
                                                      std::string(access.message())))
            : absl::Status(access.code(),
                           fmt::format("the stream could not be authorized again: {}",
                                       std::string(access.message())));
    std::shared_ptr<core::Subscription> subscription;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_ || revoked_) return;
      revoked_ = ending;
      audit_.decision = AuditDecisionFor(access);
      subscription = subscription_;
    }
    // Nothing more is queued for the stream, and what was queued is dropped: no event reaches
    // the client after this decision (a write already in flight completes).
    if (subscription) subscription->Close();
    Pump();
  }

  // The subscription's on_ready (the cache's thread, the TimerThread): posts one Pump to the
  // service's executor unless one is posted and has not started, so that the thread applying
  // events only sets a flag and queues a task, whatever the client does. on_ready runs only
  // before OnDone's Close returns, so the stream (held by self_ or by OnDone) and the service
  // exist here; the task holds the stream until it has run.
  void SchedulePump() {
    if (pump_posted_.exchange(true, std::memory_order_acq_rel)) return;
    service_.executor_.Post([self = shared_from_this()] {
      // Cleared before the pop: an item arriving from now on posts again.
      self->pump_posted_.store(false, std::memory_order_release);
      self->Pump();
    });
  }

  void FinishEarly(const absl::Status& status) {
    std::lock_guard<std::mutex> lock(mu_);
    finished_ = true;
    final_status_ = status;
    FinishLocked(status);
  }

  // With mu_ held, once finished_ is set: Finish. Under mu_ so that Finish's own writes (a stream
  // finished before gRPC has bound its reactor keeps the status in the reactor) are ordered
  // before OnDone, which takes mu_, for ThreadSanitizer. gRPC never runs OnDone inside Finish
  // for this reactor (it is not inlineable), so this cannot deadlock.
  //
  // The stream ends here, however it ends (cancelled, failed, ended by the cache, revoked, shut
  // down): its place under the subscription limits is given back before the status is sent, so
  // that a client that reads it and subscribes again finds the place free.
  void FinishLocked(const absl::Status& status) {
    slot_.Release();
    Finish(ToGrpcStatus(status));
  }

  void Pump(bool ending_start = false) {
    std::vector<core::Delivery> next;  // One, or up to batch_limit_ when the client opted in.
    std::optional<absl::Status> final_status;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (ending_start) starting_ = false;
      if (finished_ || write_in_flight_ || !subscription_) return;
      if (revoked_) {
        // OnAdmitted still runs on another thread and will Pump once more.
        if (starting_) return;
        finished_ = true;
        final_status_ = *revoked_;
        final_status = *revoked_;
      } else {
        std::optional<core::Delivery> first = subscription_->TryPop();
        if (first) {
          write_in_flight_ = true;
          std::size_t bytes = ApproximateEventBytes(*first);
          next.push_back(std::move(*first));
          // What else is waiting goes in the same message, if the client asked for batches.
          while (next.size() < batch_limit_ && bytes < kBatchBytes) {
            std::optional<core::Delivery> more = subscription_->TryPop();
            if (!more) break;
            bytes += ApproximateEventBytes(*more);
            next.push_back(std::move(*more));
          }
        } else {
          final_status = subscription_->FinalStatus();
          if (!final_status) return;  // wait for on_ready
          // OnAdmitted still runs on another thread and will Pump once more: finishing now could
          // end the stream under it.
          if (starting_) return;
          finished_ = true;
          final_status_ = *final_status;
        }
      }
    }
    if (final_status) {
      if (final_status->code() == absl::StatusCode::kResourceExhausted &&
          service_.options_.logger) {
        service_.options_.logger->warn("Subscribe to {}: {}", description_,
                                       std::string(final_status->message()));
      }
      std::lock_guard<std::mutex> lock(mu_);
      FinishLocked(*final_status);
      return;
    }
    // Encoding (once per event and delivered type, whoever comes first) happens outside mu_, so
    // on_ready never waits for it. Only this thread touches buffer_ until the write completes;
    // it is assigned under mu_ so that the next writer's access is ordered after this one's.
    service_.Observe("write");
    grpc::ByteBuffer buffer = next.size() == 1 ? EventByteBuffer(next.front(), service_.encoder_)
                                               : BatchByteBuffer(next, service_.encoder_);
    next.clear();
    {
      std::lock_guard<std::mutex> lock(mu_);
      buffer_.Swap(&buffer);
    }
    StartWrite(&buffer_);
  }

  InformerService& service_;
  AccessControl& access_;
  v1::SubscribeRequest request_;  // written by Start, read until subscribed
  std::string description_;       // the served entry, for logs; written before subscribing
  // Who subscribed and what they were allowed: written once admitted, before subscription_.
  core::UserInfo user_;
  std::vector<core::ResourceAttributes> checked_;
  // The served entry, for the sync wait's message: written like user_.
  std::shared_ptr<const ServedResource> served_;

  std::mutex mu_;
  // Guarded by mu_.
  std::shared_ptr<SubscribeStream> self_;
  // An on-demand entry's lease, held until OnDone.
  std::shared_ptr<const void> lease_;
  // The stream's place under the subscription limits: from admission until it finishes.
  SubscriptionSlot slot_;
  std::shared_ptr<core::Subscription> subscription_;
  bool write_in_flight_ = false;
  // Events per message (SubscribeRequest.max_events_per_message, 1 to kMaxEventsPerMessage):
  // written by Start before admission, read by Pump.
  std::size_t batch_limit_ = 1;
  // Not guarded: a Pump task is on the executor and has not started (SchedulePump).
  std::atomic<bool> pump_posted_{false};
  bool finished_ = false;
  bool cancelled_ = false;
  // Until OnAdmitted's last Pump: the stream may start writes but not finish.
  bool starting_ = true;
  // Why a re-authorization ended the stream (PERMISSION_DENIED, or UNAVAILABLE when it could
  // not be made).
  std::optional<absl::Status> revoked_;
  absl::Status final_status_;
  // The audit line: filled in by admission (before OnAdmitted takes mu_), then under mu_.
  AuditRecord audit_;
  grpc::ByteBuffer buffer_;  // the message being written; see Pump
};

absl::StatusOr<std::shared_ptr<core::Subscription>> InformerService::OpenSubscription(
    ReadTarget& target, const v1::SubscribeRequest& request, std::function<void()> on_ready,
    std::string& description) const {
  description = target.served->Describe();
  core::SubscribeOptions subscribe;
  subscribe.namespace_name = request.namespace_();
  subscribe.label_selector = std::move(target.label_selector);
  subscribe.field_selector = std::move(target.field_selector);
  subscribe.resource_version = request.resource_version();
  subscribe.allow_bookmarks = request.allow_bookmarks();
  subscribe.queue_capacity = options_.subscriber_queue_capacity;
  subscribe.head_start_stall_budget = options_.subscriber_snapshot_stall_budget;
  subscribe.on_ready = std::move(on_ready);
  // INVALID_ARGUMENT (a non-numeric resource version), OUT_OF_RANGE (older than the window) and
  // UNAVAILABLE (shut down) pass through with the cache's message.
  return target.served->cache->Subscribe(std::move(subscribe));
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* InformerService::Subscribe(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  auto stream = std::make_shared<SubscribeStream>(*this);
  SubscribeStream* reactor = stream.get();
  // gRPC calls OnDone, which releases the stream, only after this returns the reactor.
  reactor->Start(std::move(stream), ReadCallCredentials(*context), *request);
  return reactor;
}

}  // namespace informerd::daemon
