// InformerService's own part: construction, Shutdown, FindTarget (the resolution → registry
// entry → selectors path every RPC shares) and ToGrpcStatus. The RPCs themselves are in
// subscribe_stream.cc (Subscribe) and unary_calls.cc (List, Get, ListResources).
//
// Threads: the constructor and destructor run on the daemon's thread, Shutdown on any; FindTarget
// runs wherever the resolver answers an RPC's Resolve (its own thread, or the gRPC thread that
// called Resolve when it answers at once).
#include "daemon/service/informer_service.h"

#include <utility>
#include <vector>

#include "core/object_filter.h"
#include "daemon/service/event_encoder.h"
#include "fmt/format.h"

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

}  // namespace informerd::daemon
