#include "daemon/kube/discovery.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <cctype>
#include <deque>
#include <utility>

#include "fmt/format.h"

namespace informerd::daemon {

// ---- Fetching.

// Lives while Discovery or a fetch does; its fields are touched only on the client's strand,
// except `closed`.
class Discovery::State : public std::enable_shared_from_this<Discovery::State> {
 public:
  State(ListWatchClient& client, const core::Clock& clock, DiscoveryOptions options)
      : client(client), clock(clock), options(options) {
    if (this->options.max_parallel_requests == 0) this->options.max_parallel_requests = 1;
  }

  ListWatchClient& client;
  const core::Clock& clock;
  DiscoveryOptions options;
  std::atomic<bool> closed{false};

  // On the strand.
  std::optional<core::DiscoveryData> data;
  std::optional<core::Clock::TimePoint> last_fetch;
  bool fetching = false;
  std::vector<RefreshCallback> waiting;

  void Resolve(const std::string& name, ResolveCallback done) {
    if (!data) {
      return Fetch(AfterFetch(name, std::move(done)));
    }
    absl::StatusOr<core::ResolvedResource> resolved = core::ResolveResource(*data, name);
    if (resolved.ok() || resolved.status().code() != absl::StatusCode::kNotFound) {
      return done(std::move(resolved));
    }
    const core::Clock::TimePoint now = clock.Now();
    if (last_fetch && now - *last_fetch < options.min_refresh_interval && !fetching) {
      const auto age =
          std::chrono::duration_cast<std::chrono::milliseconds>(now - *last_fetch).count();
      return done(absl::NotFoundError(fmt::format(
          "{} (discovery was refreshed {}.{:03}s ago; the next refresh is allowed {}s after the "
          "last)",
          std::string(resolved.status().message()), age / 1000, age % 1000,
          std::chrono::duration_cast<std::chrono::seconds>(options.min_refresh_interval).count())));
    }
    // Perhaps a CRD created since the last fetch.
    Fetch(AfterFetch(name, std::move(done)));
  }

  void Fetch(RefreshCallback done);

  // Resolves `name` once the fetch in progress is done. Captures `this`, not a shared pointer:
  // the callback is kept and called only by this State, and a strong pointer would make a cycle
  // that leaks when a fetch never finishes (the client destroyed under it).
  RefreshCallback AfterFetch(std::string name, ResolveCallback done) {
    return [this, name = std::move(name), done = std::move(done)](absl::Status status) {
      if (!status.ok()) return done(status);
      done(core::ResolveResource(*data, name));
    };
  }

  void FetchDone(absl::Status status, std::optional<core::DiscoveryData> fetched) {
    fetching = false;
    if (fetched) data = std::move(fetched);
    std::vector<RefreshCallback> callbacks;
    callbacks.swap(waiting);
    if (closed.load(std::memory_order_acquire)) return;
    for (RefreshCallback& callback : callbacks) callback(status);
  }
};

namespace {

// One fetch of every document: /api and /apis, then each group version's resource list with at
// most max_parallel_requests in flight.
class DocumentFetch : public std::enable_shared_from_this<DocumentFetch> {
 public:
  explicit DocumentFetch(std::shared_ptr<Discovery::State> state) : state_(std::move(state)) {}

  void Start() {
    auto self = shared_from_this();
    state_->client.Get("/api", "", [self](HttpResult r) { self->OnRoot(true, std::move(r)); });
    state_->client.Get("/apis", "", [self](HttpResult r) { self->OnRoot(false, std::move(r)); });
  }

 private:
  void OnRoot(bool core, HttpResult result) {
    if (failed_) return;
    if (!result.status.ok()) return Fail(result.status);
    if (core) {
      absl::StatusOr<std::vector<std::string>> versions = core::ParseApiVersions(result.body);
      if (!versions.ok()) return Fail(versions.status());
      core_group_ = core::ApiGroupInfo{"", *versions, versions->front()};
    } else {
      absl::StatusOr<std::vector<core::ApiGroupInfo>> groups = core::ParseApiGroupList(result.body);
      if (!groups.ok()) return Fail(groups.status());
      groups_ = *std::move(groups);
    }
    if (!core_group_ || !groups_) return;
    data_.groups.push_back(*core_group_);
    for (core::ApiGroupInfo& g : *groups_) data_.groups.push_back(std::move(g));
    for (const core::ApiGroupInfo& g : data_.groups) {
      for (const std::string& v : g.versions) pending_.emplace_back(g.name, v);
    }
    lists_.resize(pending_.size());
    for (std::size_t i = 0; i < state_->options.max_parallel_requests; ++i) Next();
    if (pending_.empty() && in_flight_ == 0) Done();
  }

  void Next() {
    if (next_ >= pending_.size()) return;
    const std::size_t index = next_++;
    const auto& [group, version] = pending_[index];
    const std::string path = group.empty() ? fmt::format("/api/{}", version)
                                           : fmt::format("/apis/{}/{}", group, version);
    ++in_flight_;
    auto self = shared_from_this();
    state_->client.Get(path, "",
                       [self, index](HttpResult r) { self->OnList(index, std::move(r)); });
  }

  void OnList(std::size_t index, HttpResult result) {
    --in_flight_;
    const auto& [group, version] = pending_[index];
    const std::string gv = group.empty() ? version : fmt::format("{}/{}", group, version);
    if (!result.status.ok()) {
      // A group version that vanished in between (a CRD deleted) is simply gone.
      if (result.http_status != 404) {
        failed_lists_.push_back(fmt::format("{}: {}", gv, std::string(result.status.message())));
      }
    } else {
      absl::StatusOr<std::vector<core::ApiResourceInfo>> list =
          core::ParseApiResourceList(result.body, group, version);
      if (list.ok()) {
        lists_[index] = *std::move(list);
      } else {
        failed_lists_.push_back(fmt::format("{}: {}", gv, std::string(list.status().message())));
      }
    }
    Next();
    if (in_flight_ == 0 && next_ >= pending_.size()) Done();
  }

  void Done() {
    // Resources in group order, whatever order the answers came in.
    for (std::vector<core::ApiResourceInfo>& list : lists_) {
      for (core::ApiResourceInfo& info : list) data_.resources.push_back(std::move(info));
    }
    data_.failed_group_versions = std::move(failed_lists_);
    state_->FetchDone(absl::OkStatus(), std::move(data_));
  }

  void Fail(const absl::Status& status) {
    failed_ = true;
    state_->FetchDone(absl::Status(status.code(), fmt::format("discovery failed: {}",
                                                              std::string(status.message()))),
                      std::nullopt);
  }

  std::shared_ptr<Discovery::State> state_;
  bool failed_ = false;
  std::optional<core::ApiGroupInfo> core_group_;
  std::optional<std::vector<core::ApiGroupInfo>> groups_;
  core::DiscoveryData data_;
  std::vector<std::pair<std::string, std::string>> pending_;  // (group, version)
  std::vector<std::vector<core::ApiResourceInfo>> lists_;     // by index in pending_
  std::vector<std::string> failed_lists_;
  std::size_t next_ = 0;
  std::size_t in_flight_ = 0;
};

}  // namespace

void Discovery::State::Fetch(RefreshCallback done) {
  waiting.push_back(std::move(done));
  if (fetching) return;
  fetching = true;
  last_fetch = clock.Now();
  std::make_shared<DocumentFetch>(shared_from_this())->Start();
}

Discovery::Discovery(ListWatchClient& client, const core::Clock& clock, DiscoveryOptions options)
    : state_(std::make_shared<State>(client, clock, options)) {}

Discovery::~Discovery() { state_->closed.store(true, std::memory_order_release); }

void Discovery::Resolve(std::string name, ResolveCallback done) {
  boost::asio::post(state_->client.strand(), [state = state_, name = std::move(name),
                                              done = std::move(done)]() mutable {
    // Weak: the state keeps this callback while a fetch is pending, and a strong reference
    // would make a cycle that outlives the io_context when the daemon stops mid-fetch.
    ResolveCallback guarded = [weak = std::weak_ptr<State>(state),
                               done = std::move(done)](absl::StatusOr<core::ResolvedResource> r) {
      const std::shared_ptr<State> alive = weak.lock();
      if (alive && !alive->closed.load(std::memory_order_acquire)) done(std::move(r));
    };
    state->Resolve(name, std::move(guarded));
  });
}

void Discovery::Refresh(RefreshCallback done) {
  boost::asio::post(state_->client.strand(), [state = state_, done = std::move(done)]() mutable {
    state->Fetch(std::move(done));
  });
}

}  // namespace informerd::daemon
