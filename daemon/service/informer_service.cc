// InformerService's own part: construction, Shutdown, admission (Admit: authentication →
// resolution → authorization → registry entry and selectors → on-demand start, the path Subscribe,
// List and Get share) and ToGrpcStatus. The RPCs themselves are in subscribe_stream.cc
// (Subscribe) and unary_calls.cc (List, Get, ListResources).
//
// Threads: the constructor and destructor run on the daemon's thread, Shutdown on any; Admit
// starts on the gRPC thread of the call and continues in place after a step that answers at once
// (cached, AlwaysAllow), and on the service's executor after one that answers later (a
// TokenReview or SubjectAccessReview on the review client's strand, the resolver), never on the
// thread that answered (Step).
#include "daemon/service/informer_service.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "core/object_filter.h"
#include "daemon/service/event_encoder.h"
#include "fmt/format.h"
#include "fmt/ranges.h"

namespace informerd::daemon {
namespace {

constexpr std::size_t kMaxStatusMessageBytes = 1024;

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

absl::Status InformerService::ShuttingDown() {
  return absl::UnavailableError("informerd is shutting down");
}

InformerService::InformerService(ResourceResolver& resolver, const ResourceRegistry& registry,
                                 AccessControl& access, InformerServiceOptions options)
    : resolver_(resolver),
      registry_(registry),
      access_(access),
      options_(std::move(options)),
      encoder_(options_.encoder ? options_.encoder : core::CacheEvent::Encoder(&EncodeEvent)),
      subscriptions_(options_.max_subscriptions, options_.max_subscriptions_per_user),
      selectors_(options_.max_selector_bytes, options_.max_selector_requirements),
      executor_(options_.rpc_threads, options_.rpc_thread_nice) {}

// The executor's tasks (posted Pumps, admission's continuations) run while everything they use
// exists; then the TimerThread stops, and what it posts is refused.
InformerService::~InformerService() { executor_.Shutdown(); }

void InformerService::Shutdown() {
  if (shutting_down_.exchange(true)) return;
  for (const std::shared_ptr<const ServedResource>& served : registry_.Entries()) {
    served->cache->Shutdown(ShuttingDown());
  }
}

ClientLimitStats InformerService::client_limit_stats() const {
  ClientLimitStats stats;
  subscriptions_.AddStats(stats);
  selectors_.AddStats(stats);
  return stats;
}

void InformerService::Admit(const CallCredentials& credentials, Ask ask, AuditRecord* audit,
                            AdmitCallback done) {
  audit->peer = credentials.peer;
  audit->method = ask.method;
  audit->resource = ask.resource;
  audit->namespace_name = ask.namespace_name;
  audit->decision = AuditDecision::kError;  // until a step decides
  // 1. Who is calling: before anything else, so that a caller without valid credentials learns
  // nothing, not even whether a resource exists.
  Step authentication(executor_);
  access_.Authenticate(
      credentials,
      authentication.Then<absl::StatusOr<core::UserInfo>>(
          [this, ask = std::move(ask), audit,
           done = std::move(done)](absl::StatusOr<core::UserInfo> user) mutable {
            if (!user.ok()) {
              audit->decision = AuditDecisionFor(user.status());
              return done(user.status());
            }
            audit->user = user->name;
            if (ask.name_required && ask.name.empty()) {
              return done(absl::InvalidArgumentError("name must not be empty"));
            }
            // 2. What the request names.
            const std::string name = ask.resource;
            Observe("resolve");
            Step resolution(executor_);
            resolver_.Resolve(
                name,
                resolution.Then<absl::StatusOr<core::ResolvedResource>>(
                    [this, ask = std::move(ask), user = *std::move(user), audit,
                     done =
                         std::move(done)](absl::StatusOr<core::ResolvedResource> resolved) mutable {
                      absl::StatusOr<NamedResource> named = NameResource(resolved, ask.resource);
                      if (!named.ok()) return done(named.status());
                      const core::ResolvedResource& resource = named->resource;
                      audit->resource = resource.QualifiedName();
                      // 3. May the user read it, as the apiserver would decide for the same read.
                      std::vector<core::ResourceAttributes> needed;
                      for (const std::string& verb : ask.verbs) {
                        core::ResourceAttributes attributes;
                        attributes.verb = verb;
                        attributes.group = resource.group;
                        attributes.resource = resource.resource;
                        // Cluster-scoped resources are authorized at the cluster scope whatever the
                        // request says (FindTarget refuses a namespace for them).
                        attributes.namespace_name = resource.namespaced ? ask.namespace_name : "";
                        attributes.name = ask.name;
                        needed.push_back(std::move(attributes));
                      }
                      std::vector<core::ResourceAttributes> checked = needed;
                      Step authorization(executor_);
                      access_.Authorize(
                          user, std::move(needed),
                          authorization.Then<absl::Status>(
                              [this, ask = std::move(ask), user, named = *std::move(named), audit,
                               checked = std::move(checked),
                               done = std::move(done)](absl::Status access) mutable {
                                audit->decision = AuditDecisionFor(access);
                                if (!access.ok()) return done(access);
                                // 4. What answers the request.
                                absl::StatusOr<ReadTarget> target =
                                    FindTarget(named, ask.namespace_name, ask.label_selector,
                                               ask.field_selector);
                                if (!target.ok()) return done(target.status());
                                // 5. A Subscribe's place under the subscription limits: before any
                                // snapshot is taken or on-demand informer started for it.
                                SubscriptionSlot slot;
                                if (ask.subscription) {
                                  absl::StatusOr<SubscriptionSlot> acquired =
                                      subscriptions_.Acquire(user.name);
                                  if (!acquired.ok()) return done(acquired.status());
                                  slot = *std::move(acquired);
                                }
                                if (!target->on_demand) {
                                  return done(Admitted{std::move(user), std::move(checked),
                                                       *std::move(target), std::move(slot)});
                                }
                                // 6. The on-demand informer.
                                const core::ResolvedResource resource = named.resource;
                                auto admitted = std::make_shared<Admitted>(
                                    Admitted{std::move(user), std::move(checked),
                                             *std::move(target), std::move(slot)});
                                AcquireOnDemand(admitted->user, resource, /*checked=*/false,
                                                [admitted, audit, done = std::move(done)](
                                                    absl::StatusOr<ServedLease> lease) mutable {
                                                  if (!lease.ok()) {
                                                    // The stream ends with this status: its place
                                                    // is free first.
                                                    admitted->slot.Release();
                                                    if (lease.status().code() ==
                                                        absl::StatusCode::kPermissionDenied) {
                                                      audit->decision = AuditDecision::kDeny;
                                                    }
                                                    return done(lease.status());
                                                  }
                                                  admitted->target.served =
                                                      std::move(lease->served);
                                                  admitted->target.lease = std::move(lease->lease);
                                                  done(std::move(*admitted));
                                                });
                              }));
                    }));
          }));
}

absl::StatusOr<InformerService::NamedResource> InformerService::NameResource(
    const absl::StatusOr<core::ResolvedResource>& resolved, const std::string& name) const {
  NamedResource named;
  if (resolved.ok()) {
    named.resource = *resolved;
    return named;
  }
  // Discovery no longer knows the name; a configured resource whose CRD was deleted is still
  // ours to answer for ("stopped being served": UNAVAILABLE, not NOT_FOUND).
  if (resolved.status().code() == absl::StatusCode::kNotFound)
    named.gone = registry_.FindGone(name);
  if (!named.gone) return resolved.status();
  named.resource = named.gone->resource;
  return named;
}

absl::StatusOr<InformerService::ReadTarget> InformerService::FindTarget(
    const NamedResource& named, const std::string& namespace_name,
    const std::string& label_selector, const std::string& field_selector) const {
  ReadTarget target;
  const core::ResolvedResource& resource = named.resource;
  if (named.gone) {
    target.served = named.gone;
  } else {
    absl::StatusOr<std::shared_ptr<const ServedResource>> served =
        registry_.Find(resource, namespace_name);
    if (served.ok() && !(*served)->on_demand) {
      target.served = std::move(*served);
    } else if (served.ok() || registry_.on_demand_enabled()) {
      target.on_demand = true;  // readers of an on-demand entry hold a lease: AcquireOnDemand
    } else {
      return served.status();
    }
  }

  // Length and number of requirements, before any parsing: a selector of thousands of clauses
  // costs one scan to refuse.
  if (absl::Status limit = selectors_.CheckLabelSelector(label_selector); !limit.ok()) return limit;
  if (absl::Status limit = selectors_.CheckFieldSelector(field_selector); !limit.ok()) return limit;
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
      target.on_demand ? std::vector<std::string>() : target.served->cache->extra_field_paths());
  if (!filter.ok()) return filter.status();
  target.label_selector = std::move(*labels);
  target.field_selector = std::move(*fields);
  return target;
}

void InformerService::AcquireOnDemand(const core::UserInfo& user,
                                      const core::ResolvedResource& resource, bool checked,
                                      std::function<void(absl::StatusOr<ServedLease>)> done) {
  const std::string name = resource.QualifiedName();
  if (options_.on_demand_resources) {
    const std::vector<ResourcePattern>& patterns = *options_.on_demand_resources;
    const bool listed = std::any_of(patterns.begin(), patterns.end(), [&](const auto& pattern) {
      return pattern.Matches(resource.group, resource.resource);
    });
    if (!listed) {
      std::vector<std::string> written;
      for (const ResourcePattern& pattern : patterns) written.push_back(pattern.ToString());
      return done(absl::PermissionDeniedError(fmt::format(
          "{} is not served by this informerd: no configured informer covers it and on-demand "
          "informers may be started only for onDemandResources ({})",
          name, fmt::join(written, ", "))));
    }
  }
  std::shared_ptr<const void> unchecked_lease;
  {
    std::unique_lock<std::mutex> lock(on_demand_mu_);
    std::shared_ptr<const ServedResource> running;
    std::size_t on_demand_running = 0;
    for (const std::shared_ptr<const ServedResource>& served : registry_.Entries()) {
      if (!served->on_demand) continue;
      ++on_demand_running;
      const core::ResolvedResource& candidate = served->resource;
      if (candidate.group == resource.group && candidate.version == resource.version &&
          candidate.resource == resource.resource) {
        running = served;
      }
    }
    if (running || checked) {
      if (!running && on_demand_running >= options_.max_on_demand_informers) {
        lock.unlock();
        return done(absl::ResourceExhaustedError(fmt::format(
            "cannot start an on-demand informer for {}: maxOnDemandInformers ({}) run already; "
            "retry once one has stopped (a grace period after its last reader leaves)",
            name, options_.max_on_demand_informers)));
      }
      Observe("on-demand");
      absl::StatusOr<ServedLease> lease = registry_.AcquireOnDemand(resource);
      if (checked || !lease.ok() || lease->served == running) {
        lock.unlock();
        return done(std::move(lease));
      }
      // The running informer stopped between the look and the lease (its grace period ended),
      // and the lease started another: a start, which needs the start's checks. The lease is
      // dropped (below, outside the lock) once they are asked for.
      unchecked_lease = std::move(lease->lease);
    }
  }
  core::ResourceAttributes list;
  list.verb = "list";
  list.group = resource.group;
  list.resource = resource.resource;
  core::ResourceAttributes watch = list;
  watch.verb = "watch";
  {
    Step authorization(executor_);
    access_.Authorize(
        user, {list, watch},
        authorization.Then<absl::Status>(
            [this, user, resource, name, done = std::move(done)](absl::Status access) {
              if (access.code() == absl::StatusCode::kPermissionDenied) {
                return done(absl::PermissionDeniedError(
                    fmt::format("starting an on-demand informer for {} needs list and watch at "
                                "the cluster scope: {}",
                                name, std::string(access.message()))));
              }
              if (!access.ok()) return done(access);
              AcquireOnDemand(user, resource, /*checked=*/true, done);
            }));
  }
  unchecked_lease.reset();
}

}  // namespace informerd::daemon
