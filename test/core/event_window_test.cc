// Specification of core/event_window.*: which resource versions the replay window can serve.
#include "core/event_window.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "test/common/fake_clock.h"

namespace informerd::core {
namespace {

using std::chrono::seconds;

std::shared_ptr<const CacheEvent> At(uint64_t version) {
  return std::make_shared<const CacheEvent>(EventType::kModified, std::to_string(version), version,
                                            nullptr, nullptr);
}

// The versions replayed after `after`, or the error code.
std::vector<uint64_t> After(const EventWindow& window, uint64_t after,
                            absl::StatusCode* code = nullptr) {
  std::vector<uint64_t> versions;
  const absl::Status status = window.ForEachAfter(
      after, [&](const std::shared_ptr<const CacheEvent>& e) { versions.push_back(e->version()); });
  if (code != nullptr) *code = status.code();
  return versions;
}

std::string Refusal(const EventWindow& window, uint64_t after) {
  return std::string(window.ForEachAfter(after, [](const auto&) {}).message());
}

absl::StatusCode Code(const EventWindow& window, uint64_t after) {
  absl::StatusCode code;
  After(window, after, &code);
  return code;
}

TEST_CASE("the window replays the events after the requested version, in order") {
  FakeClock clock;
  EventWindow window(100, seconds(75));
  window.Reset(10, false);
  for (uint64_t v = 11; v <= 15; ++v) window.Append(At(v), clock.Now());
  CHECK(After(window, 10) == std::vector<uint64_t>{11, 12, 13, 14, 15});
  CHECK(After(window, 13) == std::vector<uint64_t>{14, 15});
  CHECK(After(window, 15).empty());
  // Beyond the newest event: nothing to replay (the cache decides about future versions).
  CHECK(After(window, 99).empty());
}

TEST_CASE("a version older than the window's start is OUT_OF_RANGE") {
  FakeClock clock;
  EventWindow window(100, seconds(75));
  window.Reset(10, false);
  window.Append(At(11), clock.Now());
  CHECK(Code(window, 9) == absl::StatusCode::kOutOfRange);
  CHECK(Code(window, 10) == absl::StatusCode::kOk);
  const absl::Status status = window.ForEachAfter(9, [](const auto&) {});
  CHECK(std::string(status.message()).find("too old resource version: 9") != std::string::npos);
}

TEST_CASE("a gap refuses the versions strictly inside it until the start passes it") {
  FakeClock clock;
  EventWindow window(2, seconds(75));
  window.Reset(10, false);
  window.Append(At(11), clock.Now());
  window.AddGap(11, 20);
  window.Append(At(21), clock.Now());
  CHECK(After(window, 10) == std::vector<uint64_t>{11, 21});
  CHECK(After(window, 11) == std::vector<uint64_t>{21});
  CHECK(Code(window, 12) == absl::StatusCode::kOutOfRange);
  CHECK(Code(window, 19) == absl::StatusCode::kOutOfRange);
  CHECK_THAT(Refusal(window, 15),
             Catch::Contains("too old resource version: 15 (the cache went from 11 to 20 by "
                             "relisting"));
  CHECK(After(window, 20) == std::vector<uint64_t>{21});
  // Adjacent versions leave nothing between them: no gap.
  window.AddGap(21, 22);
  CHECK(Code(window, 21) == absl::StatusCode::kOk);
  // Events expire past the gap: the start (21) is above it, the gap is gone with them.
  window.Append(At(22), clock.Now());
  window.Append(At(23), clock.Now());
  CHECK(window.start() == 21);
  CHECK(Refusal(window, 15).find("relisting") == std::string::npos);
  // A reset forgets gaps.
  window.AddGap(23, 40);
  window.Reset(50, false);
  window.Append(At(51), clock.Now());
  CHECK(After(window, 50) == std::vector<uint64_t>{51});
}

TEST_CASE("the window holds at most max_events: older versions expire by count") {
  FakeClock clock;
  EventWindow window(3, seconds(75));
  window.Reset(10, false);
  for (uint64_t v = 11; v <= 15; ++v) window.Append(At(v), clock.Now());
  CHECK(window.size() == 3);
  CHECK(window.start() == 12);
  CHECK(Code(window, 11) == absl::StatusCode::kOutOfRange);
  // Whoever received 12 (the last dropped) can still resume.
  CHECK(After(window, 12) == std::vector<uint64_t>{13, 14, 15});
}

TEST_CASE("events older than max_age expire") {
  FakeClock clock;
  EventWindow window(100, seconds(75));
  window.Reset(10, false);
  window.Append(At(11), clock.Now());
  clock.Advance(seconds(50));
  window.Append(At(12), clock.Now());
  clock.Advance(seconds(30));  // 11 is 80 s old, 12 is 30 s old
  window.Expire(clock.Now());
  CHECK(window.size() == 1);
  CHECK(Code(window, 10) == absl::StatusCode::kOutOfRange);
  CHECK(After(window, 11) == std::vector<uint64_t>{12});
  clock.Advance(seconds(46));
  window.Expire(clock.Now());
  CHECK(window.size() == 0);
  CHECK(After(window, 12).empty());
  CHECK(Code(window, 11) == absl::StatusCode::kOutOfRange);
}

TEST_CASE("an exclusive start refuses the start version itself") {
  FakeClock clock;
  EventWindow window(100, seconds(75));
  window.Reset(20, /*start_exclusive=*/true);
  CHECK(Code(window, 20) == absl::StatusCode::kOutOfRange);
  window.Append(At(21), clock.Now());
  CHECK(Code(window, 20) == absl::StatusCode::kOutOfRange);
  CHECK(After(window, 21).empty());
  window.Append(At(22), clock.Now());
  CHECK(After(window, 21) == std::vector<uint64_t>{22});
}

TEST_CASE("an invalid window serves nothing until it is reset") {
  FakeClock clock;
  EventWindow window(100, seconds(75));
  CHECK(Code(window, 0) == absl::StatusCode::kOutOfRange);  // never reset
  window.Reset(5, false);
  window.Append(At(6), clock.Now());
  window.Invalidate("the cache is being relisted");
  CHECK(window.size() == 0);
  window.Append(At(7), clock.Now());  // ignored while invalid
  CHECK(window.size() == 0);
  CHECK(Code(window, 6) == absl::StatusCode::kOutOfRange);
  window.Reset(7, false);
  CHECK(Code(window, 7) == absl::StatusCode::kOk);
}

TEST_CASE("a refusal says why the window covers nothing: no list yet, or what invalidated it") {
  FakeClock clock;
  EventWindow window(100, seconds(75));
  CHECK(Refusal(window, 5) ==
        "too old resource version: 5 (the cache cannot replay events before its first list "
        "completes); subscribe again without a resource version");
  window.Reset(5, false);
  window.Invalidate("the replay window was reset at resource version 5 because of X");
  CHECK(Refusal(window, 5) ==
        "too old resource version: 5 (the replay window was reset at resource version 5 because "
        "of X); subscribe again without a resource version");
}

TEST_CASE("a reset's reason is quoted for versions before its start until an event expires") {
  FakeClock clock;
  EventWindow window(2, seconds(75));
  window.Reset(10, /*start_exclusive=*/true, "the replay window was reset because of X");
  window.Append(At(11), clock.Now());
  CHECK(Refusal(window, 10) ==
        "too old resource version: 10 (oldest available: after 10; the replay window was reset "
        "because of X); subscribe again without a resource version");
  CHECK(After(window, 11).empty());
  window.Append(At(12), clock.Now());
  window.Append(At(13), clock.Now());  // 11 expires: the start is where events expired now
  CHECK(Refusal(window, 10) ==
        "too old resource version: 10 (oldest available: 11); subscribe again without a resource "
        "version");
  // A plain Reset (a relist's) has no reason to quote.
  window.Reset(20, false);
  CHECK(Refusal(window, 19) ==
        "too old resource version: 19 (oldest available: 20); subscribe again without a resource "
        "version");
}

}  // namespace
}  // namespace informerd::core
