// List, Get and ListResources: the unary RPCs. UnaryCall is one call's reactor, which writes the
// call's audit line when it is done; WhenSynced makes a List or Get wait until its cache holds one
// complete state (the initial sync, a relist that is changing it) at least as new as the
// request's min_resource_version, looking again on the service's TimerThread. ListResources
// authorizes each registry entry for the caller, all at once, and answers with those allowed.
//
// Threads: each handler runs on a gRPC thread and returns at once. A call continues on that gRPC
// thread when every admission step answers at once, else on the service's executor (never on the
// review client's strand or the resolver's thread, which answer the steps: Step); when it waits
// for a sync, the TimerThread schedules each look again and hands it to the executor, which
// reads, copies the answer and finishes the call. OnCancel and OnDone run on gRPC's threads.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/list_continue.h"
#include "core/resource_version.h"
#include "daemon/service/call_credentials.h"
#include "daemon/service/informer_service.h"
#include "daemon/service/list_encoder.h"
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

// ---- List's pages and response bounds (informerd.proto, List) ----

// Room the response size bound keeps for a ListResponse's fields other than its items:
// resource_version (a number) and continue (a few hundred bytes: core/list_continue.h).
constexpr std::size_t kListResponseOverhead = 1024;

// A List request's paging.
struct ListPaging {
  // `limit` or `continue` given: the answer is a page, cut at the response bounds with a
  // continue token. Otherwise the whole list in one answer, or RESOURCE_EXHAUSTED.
  bool paged = false;
  // The most objects the answer may hold: the request's limit, at most the object bound.
  std::size_t limit = 0;
  // The decoded `continue`.
  std::optional<core::ListContinue> from;
};

absl::StatusOr<ListPaging> ParseListPaging(const v1::ListRequest& request,
                                           std::size_t max_objects) {
  if (request.limit() < 0) {
    return absl::InvalidArgumentError(
        fmt::format("limit: must not be negative, got {}", request.limit()));
  }
  ListPaging paging;
  paging.paged = request.limit() > 0 || !request.continue_().empty();
  paging.limit = request.limit() > 0 ? static_cast<std::size_t>(std::min<uint64_t>(
                                           static_cast<uint64_t>(request.limit()), max_objects))
                                     : max_objects;
  if (!request.continue_().empty()) {
    if (!request.min_resource_version().empty()) {
      return absl::InvalidArgumentError(
          "min_resource_version cannot be given with continue: every page of a list is read at "
          "its first page's resource version");
    }
    absl::StatusOr<core::ListContinue> token = core::DecodeListContinue(request.continue_());
    if (!token.ok()) return token.status();
    paging.from = *std::move(token);
  }
  return paging;
}

// Which list a continue token belongs to: the resource as resolved (whatever name the request
// used for it), the namespace and the selectors as sent.
uint64_t ListQuery(const core::ResolvedResource& resource, const v1::ListRequest& request) {
  return core::ListQueryHash({resource.group, resource.version, resource.resource,
                              request.namespace_(), request.label_selector(),
                              request.field_selector()});
}

// "pods (all namespaces)", "pods in namespace a": what a List read, for its refusals.
std::string ListDescription(const core::ResolvedResource& resource,
                            const std::string& namespace_name) {
  return namespace_name.empty()
             ? fmt::format("{} (all namespaces)", resource.QualifiedName())
             : fmt::format("{} in namespace {}", resource.QualifiedName(), namespace_name);
}

// What filling a ListResponse found.
enum class ListFill { kWhole, kCutAtBytes, kOverBytes, kOverObjects };

// Fills `response` (a ListResponse's bytes: list_encoder.h) with `result`'s items up to the byte
// bound. A page (`paged`) stops before the item that would take it over `max_bytes` (never
// before its first item) and gets a continue token after its last item when it stopped there or
// more follow. An unpaged answer holds everything or nothing: kOverObjects when more follow (the
// read stopped at the object bound), kOverBytes when the items do not fit; `*total_bytes` is then
// their encoded size. Takes `result`'s items.
ListFill FillListResponse(core::ListResult& result, bool paged, std::size_t max_bytes,
                          uint64_t query, grpc::ByteBuffer* response, std::size_t* total_bytes) {
  const std::size_t budget =
      max_bytes > kListResponseOverhead ? max_bytes - kListResponseOverhead : 0;
  std::size_t bytes = 0;
  std::size_t count = 0;
  for (const std::shared_ptr<const core::ObjectRecord>& item : result.items) {
    const std::size_t size = ListItemWireBytes(item->json.size());
    if (count > 0 && bytes + size > budget) break;
    bytes += size;
    ++count;
  }
  if (!paged) {
    if (result.more) return ListFill::kOverObjects;
    if (count < result.items.size() || bytes > budget) {
      *total_bytes = kListResponseOverhead;
      for (const auto& item : result.items) *total_bytes += ListItemWireBytes(item->json.size());
      return ListFill::kOverBytes;
    }
  }
  const bool cut = count < result.items.size();
  std::string continue_token;
  if (paged && count > 0 && (cut || result.more)) {
    const core::ObjectRecord& last = *result.items[count - 1];
    core::ListContinue token;
    token.cursor.state = result.state;
    token.cursor.after = core::ObjectKey{last.namespace_name.str(), last.name.str()};
    token.query = query;
    continue_token = core::EncodeListContinue(token);
  }
  result.items.resize(count);
  *response =
      ListResponseByteBuffer(std::move(result.items), result.resource_version, continue_token);
  return cut ? ListFill::kCutAtBytes : ListFill::kWhole;
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
// moment: the handler, an admission step's callback, or a look again (WhenSynced) that the
// TimerThread posted. OnCancel only raises a flag that the next look notices (a waiting call
// looks every sync_poll_interval), so the call is never finished by two threads and is never
// deleted (OnDone, after Finish) while a task still holds it. OnDone writes the audit line, which the steps filled in before FinishWith.
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
  // The look again reads and copies a whole answer: on the executor, so that it never delays
  // the other timers (stall checks, re-authorizations, bounded waits).
  timer_.RunAt(std::min(now + options_.sync_poll_interval, give_up_at),
               [this, call, served = std::move(served), give_up_at, min_version,
                attempt = std::move(attempt)]() mutable {
                 executor_.Post([this, call, served = std::move(served), give_up_at, min_version,
                                 attempt = std::move(attempt)]() mutable {
                   WhenSynced(call, std::move(served), give_up_at, min_version, std::move(attempt));
                 });
               });
}

grpc::ServerUnaryReactor* InformerService::List(grpc::CallbackServerContext* context,
                                                const grpc::ByteBuffer* raw_request,
                                                grpc::ByteBuffer* response) {
  auto* call = new UnaryCall(access_, "List");
  // Raw bytes in and out (list_encoder.h); the request, parsed, is shared by the steps below.
  auto request = std::make_shared<v1::ListRequest>();
  {
    // A copy of a ByteBuffer shares its slices; Deserialize consumes the copy, not the request.
    grpc::ByteBuffer copy(*raw_request);
    if (!grpc::SerializationTraits<v1::ListRequest>::Deserialize(&copy, request.get()).ok()) {
      call->FinishWith(absl::InvalidArgumentError(
          "the request is not a valid informerd.v1.ListRequest message"));
      return call;
    }
  }
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
  // `response` lives until OnDone, which follows Finish.
  Admit(
      ReadCallCredentials(*context), std::move(ask), &call->audit(),
      [this, call, request, response, give_up_at, min_version](absl::StatusOr<Admitted> admitted) {
        if (!admitted.ok()) return call->FinishWith(admitted.status());
        // Checked once the caller is admitted: an unauthenticated one learns nothing else.
        if (!min_version.ok()) return call->FinishWith(min_version.status());
        absl::StatusOr<ListPaging> paging =
            ParseListPaging(*request, options_.max_list_response_objects);
        if (!paging.ok()) return call->FinishWith(paging.status());
        auto target = std::make_shared<const ReadTarget>(std::move(admitted->target));
        const uint64_t query = ListQuery(target->served->resource, *request);
        if (paging->from && paging->from->query != query) {
          return call->FinishWith(absl::InvalidArgumentError(
              "continue: the token is of another list: pass it with the resource, namespace "
              "and selectors of the request whose response it came in"));
        }
        core::ListChunk page;
        page.limit = paging->limit;
        if (paging->from) page.from = paging->from->cursor;
        const bool paged = paging->paged;
        const uint64_t min = *min_version;
        // Reads and answers; false when a first page found the cache not synced after all.
        auto read = [this, call, request, response, target, page, paged, query, min]() {
          Observe("list");
          absl::StatusOr<core::ListResult> result = target->served->cache->List(
              request->namespace_(), target->label_selector, target->field_selector, page);
          if (!result.ok()) {
            if (result.status().code() == absl::StatusCode::kOutOfRange) {
              list_counters_.continues_expired.fetch_add(1, std::memory_order_relaxed);
            }
            call->FinishWith(result.status());
            return true;
          }
          if (!page.from && (!result->synced || !Reached(result->resource_version, min))) {
            return false;
          }
          std::size_t total_bytes = 0;
          const ListFill fill = FillListResponse(*result, paged, options_.max_list_response_bytes,
                                                 query, response, &total_bytes);
          const std::string what = ListDescription(target->served->resource, request->namespace_());
          switch (fill) {
            case ListFill::kOverObjects:
              list_counters_.refused_objects.fetch_add(1, std::memory_order_relaxed);
              call->FinishWith(absl::ResourceExhaustedError(fmt::format(
                  "the list of {} has more than {} objects, the most one answer may hold "
                  "(--max-list-response-objects={}); list it in pages with limit and continue",
                  what, options_.max_list_response_objects, options_.max_list_response_objects)));
              return true;
            case ListFill::kOverBytes:
              list_counters_.refused_bytes.fetch_add(1, std::memory_order_relaxed);
              call->FinishWith(absl::ResourceExhaustedError(fmt::format(
                  "the list of {} would take {} bytes, more than the {} one answer may hold "
                  "(--max-list-response-bytes={}); list it in pages with limit and continue",
                  what, total_bytes, options_.max_list_response_bytes,
                  options_.max_list_response_bytes)));
              return true;
            case ListFill::kCutAtBytes:
              list_counters_.pages_cut_at_bytes.fetch_add(1, std::memory_order_relaxed);
              break;
            case ListFill::kWhole:
              break;
          }
          if (paged) list_counters_.pages.fetch_add(1, std::memory_order_relaxed);
          call->FinishWith(absl::OkStatus());
          return true;
        };
        if (!page.from) {
          return WhenSynced(call, target->served, give_up_at, min, std::move(read));
        }
        // A continued page reads its list's own state from the cache's history, synced or not
        // at the moment, and never waits: a state the cache can no longer read is OUT_OF_RANGE
        // at once. A cache that stopped serving serves no page.
        const core::CacheStats stats = target->served->cache->Stats();
        if (stats.shut_down) return call->FinishWith(*stats.shut_down);
        const core::ReflectorStatus upstream =
            target->served->status ? target->served->status() : core::ReflectorStatus();
        if (upstream.resource_gone) {
          return call->FinishWith(absl::UnavailableError(
              fmt::format("{} is no longer served by the apiserver", target->served->Describe())));
        }
        read();
      });
  return call;
}

ListStats InformerService::list_stats() const {
  ListStats stats;
  stats.refused_bytes = list_counters_.refused_bytes.load(std::memory_order_relaxed);
  stats.refused_objects = list_counters_.refused_objects.load(std::memory_order_relaxed);
  stats.pages = list_counters_.pages.load(std::memory_order_relaxed);
  stats.pages_cut_at_bytes = list_counters_.pages_cut_at_bytes.load(std::memory_order_relaxed);
  stats.continues_expired = list_counters_.continues_expired.load(std::memory_order_relaxed);
  return stats;
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
        WhenSynced(call, served, give_up_at, min,
                   [this, call, request, response, served, min,
                    lease = std::move(admitted->target.lease)]() {
                     Observe("get");
                     core::GetResult result =
                         served->cache->Get(request->namespace_(), request->name());
                     if (!result.synced || !Reached(result.resource_version, min)) return false;
                     if (!result.object) {
                       call->FinishWith(absl::NotFoundError(NotFoundMessage(
                           served->resource, request->namespace_(), request->name())));
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
  Step authentication(executor_);
  access_.Authenticate(
      credentials,
      authentication.Then<absl::StatusOr<core::UserInfo>>([this, call, request, response](
                                                              absl::StatusOr<core::UserInfo> user) {
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
          Step authorization(executor_);
          access_.Authorize(
              *user, {list},
              authorization.Then<absl::Status>([checks, i, answer](absl::Status access) {
                if (checks->Answer(i, access)) answer();
              }));
        }
      }));
  return call;
}

}  // namespace informerd::daemon
