#include "daemon/resource_informers.h"

#include <boost/asio/post.hpp>
#include <utility>

#include "fmt/format.h"

namespace informerd::daemon {

std::shared_ptr<ResourceInformers> ResourceInformers::Create(
    ApiServerClient& client, Discovery& discovery, const core::Clock& clock,
    std::vector<ResourceConfig> entries, ResourceInformersOptions options,
    StartedCallback on_started, std::shared_ptr<spdlog::logger> logger) {
  return std::make_shared<ResourceInformers>(Token{}, client, discovery, clock, std::move(entries),
                                             std::move(options), std::move(on_started),
                                             std::move(logger));
}

ResourceInformers::ResourceInformers(Token, ApiServerClient& client, Discovery& discovery,
                                     const core::Clock& clock, std::vector<ResourceConfig> entries,
                                     ResourceInformersOptions options, StartedCallback on_started,
                                     std::shared_ptr<spdlog::logger> logger)
    : client_(client),
      discovery_(discovery),
      clock_(clock),
      entries_(std::move(entries)),
      options_(std::move(options)),
      on_started_(std::move(on_started)),
      logger_(std::move(logger)),
      retry_timer_(client.strand()),
      pending_reason_(entries_.size(), "not resolved yet") {}

void ResourceInformers::Start() {
  boost::asio::post(client_.strand(), [self = shared_from_this()] { self->ResolvePending(); });
}

void ResourceInformers::Stop() {
  boost::asio::post(client_.strand(), [self = shared_from_this()] {
    std::vector<RunningInformer> running;
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      if (self->stopped_) return;
      self->stopped_ = true;
      running = self->running_;
    }
    self->retry_timer_.cancel();
    for (RunningInformer& entry : running) {
      entry.informer->Stop();
      entry.cache->Shutdown(absl::UnavailableError("informerd is shutting down"));
    }
  });
}

void ResourceInformers::ResolvePending() {
  std::vector<std::size_t> todo;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      if (!pending_reason_[i].empty()) todo.push_back(i);
    }
  }
  resolving_ = todo.size();
  for (std::size_t index : todo) {
    discovery_.Resolve(entries_[index].resource,
                       [self = shared_from_this(), index](absl::StatusOr<ResolvedResource> r) {
                         self->OnResolved(index, std::move(r));
                       });
  }
}

void ResourceInformers::OnResolved(std::size_t index, absl::StatusOr<ResolvedResource> resolved) {
  const ResourceConfig& config = entries_[index];
  bool retry = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    if (!resolved.ok()) {
      pending_reason_[index] = std::string(resolved.status().message());
    } else if (!resolved->namespaced && !config.namespace_name.empty()) {
      // A configuration mistake that waiting will not fix; keep it visible in Pending().
      pending_reason_[index] =
          fmt::format("{} is cluster-scoped, but the configuration gives namespace \"{}\"",
                      resolved->QualifiedName(), config.namespace_name);
    }
    retry = --resolving_ == 0;
  }
  if (!resolved.ok() || (!resolved->namespaced && !config.namespace_name.empty())) {
    std::string reason;
    {
      std::lock_guard<std::mutex> lock(mu_);
      reason = pending_reason_[index];
    }
    logger_->warn(
        "config resource \"{}\": {}; looking again every {} s", config.resource, reason,
        std::chrono::duration_cast<std::chrono::seconds>(options_.retry_interval).count());
    if (retry) ScheduleRetry();
    return;
  }

  core::CacheOptions cache_options = options_.cache;
  cache_options.extra_field_paths = config.indexes;
  InformerOptions informer_options;
  informer_options.resource = *resolved;
  informer_options.namespace_name = config.namespace_name;
  informer_options.label_selector = config.label_selector;
  informer_options.field_selector = config.field_selector;
  informer_options.scan.strip_managed_fields = config.strip_managed_fields;
  informer_options.scan.extra_field_paths = config.indexes;
  informer_options.reflector = options_.reflector;
  informer_options.max_event_bytes = options_.max_event_bytes;

  RunningInformer running;
  running.config = config;
  running.resource = *resolved;
  running.cache = core::Cache::Create(std::move(cache_options), clock_);
  running.informer =
      Informer::Create(client_, std::move(informer_options), running.cache, clock_, logger_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_reason_[index].clear();
    running_.push_back(running);
  }
  logger_->info(
      "config resource \"{}\" is {} ({}, {})", config.resource, resolved->QualifiedName(),
      resolved->GroupVersion(),
      config.namespace_name.empty() ? "all namespaces" : "namespace " + config.namespace_name);
  if (on_started_) on_started_(running);
  running.informer->Start();
  if (retry) ScheduleRetry();
}

void ResourceInformers::ScheduleRetry() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    bool any_pending = false;
    for (const std::string& reason : pending_reason_) any_pending |= !reason.empty();
    if (!any_pending || stopped_) return;
  }
  retry_timer_.expires_after(options_.retry_interval);
  retry_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec) self->ResolvePending();
  });
}

std::vector<RunningInformer> ResourceInformers::Entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_;
}

std::vector<std::string> ResourceInformers::Pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (!pending_reason_[i].empty()) {
      out.push_back(fmt::format("{}: {}", entries_[i].resource, pending_reason_[i]));
    }
  }
  return out;
}

bool ResourceInformers::AllSynced() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& reason : pending_reason_) {
    if (!reason.empty()) return false;
  }
  for (const RunningInformer& entry : running_) {
    if (!entry.cache->Stats().synced) return false;
  }
  return true;
}

}  // namespace informerd::daemon
