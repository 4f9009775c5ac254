// WaitUntil: polls a condition until it holds or a timeout passes, for tests that wait on another
// thread or process. Returns the condition's last value, so a REQUIRE(WaitUntil(...)) that fails
// has looked once more after the deadline.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace informerd::test {

inline bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                      std::chrono::milliseconds poll = std::chrono::milliseconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(poll);
  }
  return condition();
}

}  // namespace informerd::test
