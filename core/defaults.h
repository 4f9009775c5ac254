// Defaults that more than one layer carries (a config key, the option struct of the part that
// enforces it, and that part's own default): defined once here, so they cannot drift apart.
#pragma once

#include <cstddef>

namespace informerd::core {

// The largest single object accepted from the apiserver, as a LIST item or a watch event
// (config maxObjectBytes). etcd's default request limit is 1.5 MiB, so real objects are far
// smaller; this bounds what a broken or hostile server can make informerd buffer.
inline constexpr std::size_t kDefaultMaxObjectBytes = std::size_t{32} << 20;

// The largest List answer (--max-list-response-bytes, --max-list-response-objects): 4 MiB less
// 64 KiB, so that a client with gRPC's default 4 MiB receive limit (every gRPC library's, unless
// raised) can read any page; and as many objects as a page of small ones holds.
inline constexpr std::size_t kDefaultMaxListResponseBytes = (std::size_t{4} << 20) - (64 << 10);
inline constexpr std::size_t kDefaultMaxListResponseObjects = 10000;

// How many events may wait in one subscriber's queue before it counts as falling behind
// (config subscriberQueueCapacity).
inline constexpr std::size_t kDefaultSubscriberQueueCapacity = 1024;

// Subscribe streams open at once in one daemon (--max-subscriptions) and for one user
// (--max-subscriptions-per-user). A DaemonSet's pods usually share one ServiceAccount, so one
// user legitimately holds a stream per node: half the total fits one stream per node of a
// 5,000-node cluster (Kubernetes' largest supported) and leaves the other half to everyone else.
inline constexpr std::size_t kDefaultMaxSubscriptions = 10000;
inline constexpr std::size_t kDefaultMaxSubscriptionsPerUser = 5000;

// The longest label or field selector a request may carry, in bytes (--max-selector-bytes), and
// the most requirements (comma-separated terms) in one (--max-selector-requirements). kubectl's
// and controllers' selectors are a few hundred bytes and a handful of terms; every requirement is
// matched against every object listed and every event fanned out, under the cache's lock.
inline constexpr std::size_t kDefaultMaxSelectorBytes = 4096;
inline constexpr std::size_t kDefaultMaxSelectorRequirements = 64;

// Threads of the gRPC service's own executor (--rpc-threads), which runs the RPC work that must
// not run on the thread applying the watches: a call's work once admission answers, and the
// Subscribe streams' writes once events arrive.
inline constexpr std::size_t kDefaultRpcThreads = 2;

}  // namespace informerd::core
