// Defaults that more than one layer carries (a config key, the option struct of the part that
// enforces it, and that part's own default): defined once here, so they cannot drift apart.
#pragma once

#include <cstddef>

namespace informerd::core {

// The largest single object accepted from the apiserver, as a LIST item or a watch event
// (config maxObjectBytes). etcd's default request limit is 1.5 MiB, so real objects are far
// smaller; this bounds what a broken or hostile server can make informerd buffer.
inline constexpr std::size_t kDefaultMaxObjectBytes = std::size_t{32} << 20;

// How many events may wait in one subscriber's queue before it counts as falling behind
// (config subscriberQueueCapacity).
inline constexpr std::size_t kDefaultSubscriberQueueCapacity = 1024;

}  // namespace informerd::core
