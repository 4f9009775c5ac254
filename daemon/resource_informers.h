// ResourceInformers: turns the configuration's resource entries into running informers. For
// each entry it resolves the name through discovery (so "po", "deploy" or a CRD's short name
// work), creates the entry's Cache and Informer and starts it. An entry whose resource the
// apiserver does not serve yet (a CRD installed later) is not an error that stops the daemon: it
// is logged, reported by Pending(), and resolved again periodically until it appears.
//
// Data flow: config (daemon/config.h) → Discovery → ResolvedResource → Cache + Informer; each
// informer that starts is announced to `on_started`, which the daemon uses to make it servable
// over gRPC.
//
// Ownership and threads: the daemon owns it next to the ApiServerClient and Discovery it borrows
// (they must outlive it). Start() and Stop() may be called from any thread; everything else
// happens on the client's strand. Entries(), Pending() and AllSynced() may be called from any
// thread.
#pragma once

#include <spdlog/logger.h>

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/cache.h"
#include "core/clock.h"
#include "daemon/apiserver_client.h"
#include "daemon/config.h"
#include "daemon/discovery.h"
#include "daemon/informer.h"

namespace informerd::daemon {

// One running informer and the configuration entry it serves.
struct RunningInformer {
  ResourceConfig config;
  ResolvedResource resource;
  std::shared_ptr<core::Cache> cache;
  std::shared_ptr<Informer> informer;
};

struct ResourceInformersOptions {
  // How often unresolved entries are looked up again.
  std::chrono::milliseconds retry_interval{std::chrono::seconds(30)};
  core::CacheOptions cache;          // extra_field_paths is filled per entry
  core::ReflectorOptions reflector;  // shared by every informer
  std::size_t max_event_bytes = std::size_t{32} << 20;
};

class ResourceInformers : public std::enable_shared_from_this<ResourceInformers> {
 public:
  using StartedCallback = std::function<void(const RunningInformer&)>;

  // `client`, `discovery` and `clock` must outlive this object.
  static std::shared_ptr<ResourceInformers> Create(ApiServerClient& client, Discovery& discovery,
                                                   const core::Clock& clock,
                                                   std::vector<ResourceConfig> entries,
                                                   ResourceInformersOptions options,
                                                   StartedCallback on_started,
                                                   std::shared_ptr<spdlog::logger> logger);

  // Resolves every entry and starts what resolves. Any thread.
  void Start();
  // Stops every informer and ends every subscription with UNAVAILABLE. Any thread; idempotent.
  void Stop();

  // The informers started so far.
  std::vector<RunningInformer> Entries() const;
  // "name: why" for each configuration entry not running yet.
  std::vector<std::string> Pending() const;
  // Every configured entry runs and its cache has synced: the daemon is ready.
  bool AllSynced() const;

 private:
  struct Token {};

 public:
  ResourceInformers(Token, ApiServerClient& client, Discovery& discovery, const core::Clock& clock,
                    std::vector<ResourceConfig> entries, ResourceInformersOptions options,
                    StartedCallback on_started, std::shared_ptr<spdlog::logger> logger);

 private:
  // On the strand.
  void ResolvePending();
  void OnResolved(std::size_t index, absl::StatusOr<ResolvedResource> resolved);
  void ScheduleRetry();

  ApiServerClient& client_;
  Discovery& discovery_;
  const core::Clock& clock_;
  const std::vector<ResourceConfig> entries_;
  const ResourceInformersOptions options_;
  const StartedCallback on_started_;
  std::shared_ptr<spdlog::logger> logger_;
  boost::asio::steady_timer retry_timer_;

  mutable std::mutex mu_;
  // Guarded by mu_: indexed like entries_; an empty reason and a set cache mean running.
  std::vector<std::string> pending_reason_;
  std::vector<RunningInformer> running_;
  std::size_t resolving_ = 0;  // strand only
  bool stopped_ = false;
};

}  // namespace informerd::daemon
