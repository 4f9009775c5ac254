// Limits on what one client can make the Informer service hold: how many Subscribe streams are
// open (in total, and per user), and how large a request's selectors may be. Each is a number the
// daemon's flags set; a request over one is refused with a status that names the flag and its
// value, and counted, before the service does any work for it that grows with the request.
//
// Subscriptions: InformerService::Admit takes a SubscriptionSlot for an admitted Subscribe once
// its request has been checked, before any snapshot is taken or on-demand informer started, and
// the stream gives it back the moment it finishes, however it ends (the client cancelled, an
// error, the daemon ended it), so that a client that reads the final status and subscribes
// again finds its slot free. RESOURCE_EXHAUSTED, since waiting for a stream to end is what
// helps: clients retry it with backoff.
//
// Selectors: the length in bytes, then the number of requirements (counted in one pass without
// parsing: LabelSelector::CountRequirements, FieldSelector::CountRequirements), both checked
// before a selector is parsed, so that a 20,000-clause selector is refused at the cost of one
// scan of at most max_selector_bytes. INVALID_ARGUMENT, not RESOURCE_EXHAUSTED: the same request
// is refused however often it is sent, and clients resume or retry on RESOURCE_EXHAUSTED.
//
// Threads: every member is safe to call from any thread (gRPC's, admission's, the metrics
// endpoint's). A slot may outlive the SubscriptionLimits that gave it (they share the counts).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace informerd::daemon {

// What the limits have seen, for /metrics.
struct ClientLimitStats {
  // Subscribe streams holding a slot now: admitted and not finished.
  uint64_t subscriptions_open = 0;
  // The most slots any one user holds now.
  uint64_t subscriptions_largest_user = 0;
  // Subscribes refused because --max-subscriptions / --max-subscriptions-per-user were reached.
  uint64_t refused_max_subscriptions = 0;
  uint64_t refused_max_subscriptions_per_user = 0;
  // Selectors refused for their length / their number of requirements.
  uint64_t refused_max_selector_bytes = 0;
  uint64_t refused_max_selector_requirements = 0;
};

// One open Subscribe's place under the subscription limits. Move-only; gives the place back when
// Released or destroyed, once. A default-constructed slot holds nothing.
class SubscriptionSlot {
 public:
  SubscriptionSlot() = default;
  ~SubscriptionSlot() { Release(); }
  SubscriptionSlot(SubscriptionSlot&& other) noexcept;
  SubscriptionSlot& operator=(SubscriptionSlot&& other) noexcept;
  SubscriptionSlot(const SubscriptionSlot&) = delete;
  SubscriptionSlot& operator=(const SubscriptionSlot&) = delete;

  // Gives the place back now; later calls do nothing.
  void Release();
  bool held() const { return counts_ != nullptr; }

 private:
  friend class SubscriptionLimits;
  struct Counts;
  SubscriptionSlot(std::shared_ptr<Counts> counts, std::string user)
      : counts_(std::move(counts)), user_(std::move(user)) {}

  std::shared_ptr<Counts> counts_;
  std::string user_;
};

// Subscribe streams open at once: at most `max_total`, at most `max_per_user` for one user name
// (0: no limit). A user is keyed by name alone (core::UserInfo::name, as authentication gave it):
// every caller without credentials is system:anonymous, one user.
class SubscriptionLimits {
 public:
  SubscriptionLimits(std::size_t max_total, std::size_t max_per_user);

  // A slot for `user`, or RESOURCE_EXHAUSTED naming the limit reached, its flag and value:
  //   too many subscriptions for user "alice": 100 open (--max-subscriptions-per-user=100);
  //   close one or retry later
  // The total is checked first: when both are reached, the message names --max-subscriptions.
  absl::StatusOr<SubscriptionSlot> Acquire(const std::string& user);

  // Fills in the subscription fields of `stats`.
  void AddStats(ClientLimitStats& stats) const;

 private:
  const std::size_t max_total_;
  const std::size_t max_per_user_;
  std::shared_ptr<SubscriptionSlot::Counts> counts_;
};

// The selector limits: at most `max_bytes` bytes and `max_requirements` requirements, for label
// and field selectors alike.
class SelectorLimits {
 public:
  SelectorLimits(std::size_t max_bytes, std::size_t max_requirements)
      : max_bytes_(max_bytes), max_requirements_(max_requirements) {}

  // OK, or INVALID_ARGUMENT naming the limit, its flag and value (and counted):
  //   label selector is 40000 bytes long; at most 4096 are accepted (--max-selector-bytes=4096)
  //   field selector has 65 requirements; at most 64 are accepted
  //   (--max-selector-requirements=64)
  // Never parses: one scan of at most max_bytes bytes.
  absl::Status CheckLabelSelector(std::string_view text);
  absl::Status CheckFieldSelector(std::string_view text);

  // Fills in the selector fields of `stats`.
  void AddStats(ClientLimitStats& stats) const;

 private:
  absl::Status Check(std::string_view what, std::string_view text,
                     std::size_t (*count_requirements)(std::string_view));

  const std::size_t max_bytes_;
  const std::size_t max_requirements_;
  std::atomic<uint64_t> refused_bytes_{0};
  std::atomic<uint64_t> refused_requirements_{0};
};

}  // namespace informerd::daemon
