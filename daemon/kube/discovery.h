// Discovery: turns the resource names users write in the configuration ("pods", "po",
// "deployments.apps", "deploy", "apps/v1/deployments", "v1/pods", a CRD's plural or short name)
// into the group, version, plural resource, kind and scope that LIST and WATCH paths need, the
// way kubectl resolves them through the apiserver's discovery documents.
//
// The naming rules and the document parsers are pure logic in core/api_resources.h, tested with
// literal documents. The Discovery class fetches those documents (/api, /api/VERSION,
// /apis, /apis/GROUP/VERSION) with ListWatchClient::Get() (ApiServerClient in the daemon), keeps
// the result, and resolves against it; a name it does not know triggers one refresh, at most once
// per min_refresh_interval, so that a CRD created after start-up is found without hammering the
// apiserver for a misspelt name.
//
// Data flow: at start-up (and when a CRD is missing) the daemon resolves each configured
// resource, then hands the core::ResolvedResource to the reflector, which lists and watches
// core::ResolvedResource::CollectionPath().
//
// Threads and ownership: the daemon owns Discovery beside the client it borrows (the client
// must outlive it). Resolve() and Refresh() may be called from any thread; callbacks run
// on the client's strand, where all of Discovery's state lives. After the destructor returns no
// callback runs, except one already running on another thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/api_resources.h"
#include "core/clock.h"
#include "daemon/kube/list_watch_client.h"

namespace informerd::daemon {

// ---- Fetching.

struct DiscoveryOptions {
  // A name not found triggers a refresh only if the last fetch is at least this old.
  std::chrono::milliseconds min_refresh_interval{std::chrono::seconds(30)};
  // Resource lists fetched at once (a cluster has dozens of group versions).
  std::size_t max_parallel_requests = 4;
};

class Discovery {
 public:
  using ResolveCallback = std::function<void(absl::StatusOr<core::ResolvedResource>)>;
  using RefreshCallback = std::function<void(absl::Status)>;

  // `client` and `clock` must outlive this object.
  Discovery(ListWatchClient& client, const core::Clock& clock, DiscoveryOptions options = {});
  ~Discovery();
  Discovery(const Discovery&) = delete;
  Discovery& operator=(const Discovery&) = delete;

  // Resolves against the documents fetched last, fetching them first if there are none, and
  // again (rate-limited, see DiscoveryOptions) when the name is not found. `done` runs once.
  void Resolve(std::string name, ResolveCallback done);

  // Fetches the documents now, whatever the rate limit, unless a fetch is already running (then
  // `done` waits for that one). Fails only if /api or /apis fails; a group version that fails is
  // recorded in core::DiscoveryData::failed_group_versions.
  void Refresh(RefreshCallback done);

  class State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace informerd::daemon
