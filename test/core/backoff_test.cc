// Specification of core/backoff.*: client-go's reflector backoff (800 ms doubling to a 30 s cap,
// jitter factor 1.0, reset after 2 minutes without a backoff).
#include "core/backoff.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <vector>

#include "test/common/fake_clock.h"
#include "test/common/fake_random_source.h"

namespace informerd::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::vector<int64_t> Waits(Backoff& backoff, int n) {
  std::vector<int64_t> waits;
  for (int i = 0; i < n; ++i) waits.push_back(backoff.Next().count());
  return waits;
}

TEST_CASE("without jitter the base doubles from 800 ms and stops at the 30 s cap") {
  FakeClock clock;
  ScriptedRandomSource random;
  BackoffOptions options;
  options.jitter = 0;
  Backoff backoff(options, clock, random);
  CHECK(Waits(backoff, 9) ==
        std::vector<int64_t>{800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000});
}

TEST_CASE("jitter 1.0 adds up to one more base: each wait lies in [base, 2 x base)") {
  FakeClock clock;
  ScriptedRandomSource random;
  Backoff backoff(BackoffOptions{}, clock, random);
  // The smallest and the largest draw at each step.
  random.Script({0.0, 0.999999, 0.0, 0.999999, 0.5});
  CHECK(backoff.Next() == milliseconds(800));
  CHECK(backoff.Next() == milliseconds(3199));  // base 1600, + 0.999999 x 1600
  CHECK(backoff.Next() == milliseconds(3200));
  CHECK(backoff.Next() == milliseconds(12799));  // base 6400
  CHECK(backoff.Next() == milliseconds(19200));  // base 12800 x 1.5
}

TEST_CASE("at the cap the waits settle in [30 s, 60 s), client-go's 0.22 QPS") {
  FakeClock clock;
  SeededRandomSource random(7);
  Backoff backoff(BackoffOptions{}, clock, random);
  for (int i = 0; i < 6; ++i) backoff.Next();
  for (int i = 0; i < 200; ++i) {
    const milliseconds wait = backoff.Next();
    CHECK(wait >= seconds(30));
    CHECK(wait < seconds(60));
  }
}

TEST_CASE("the jitter of one wait does not feed into the next base") {
  FakeClock clock;
  ScriptedRandomSource random(0.999999);
  Backoff backoff(BackoffOptions{}, clock, random);
  backoff.Next();
  CHECK(backoff.current_base() == milliseconds(1600));
}

TEST_CASE("more than 2 minutes without a backoff resets the base to 800 ms") {
  FakeClock clock;
  ScriptedRandomSource random(0.0);
  Backoff backoff(BackoffOptions{}, clock, random);
  CHECK(Waits(backoff, 4) == std::vector<int64_t>{800, 1600, 3200, 6400});
  clock.Advance(seconds(120) + milliseconds(1));
  CHECK(backoff.Next() == milliseconds(800));
  CHECK(backoff.Next() == milliseconds(1600));
}

TEST_CASE("failures closer than 2 minutes apart keep growing the backoff") {
  FakeClock clock;
  ScriptedRandomSource random(0.0);
  Backoff backoff(BackoffOptions{}, clock, random);
  backoff.Next();
  clock.Advance(seconds(119));
  CHECK(backoff.Next() == milliseconds(1600));
  // Exactly 2 minutes is not "more than": client-go compares with >.
  clock.Advance(seconds(120));
  CHECK(backoff.Next() == milliseconds(3200));
  // The window runs from the previous call, not from the first failure.
  clock.Advance(seconds(100));
  CHECK(backoff.Next() == milliseconds(6400));
}

TEST_CASE("the first failure long after construction starts at 800 ms") {
  FakeClock clock;
  ScriptedRandomSource random(0.0);
  Backoff backoff(BackoffOptions{}, clock, random);
  clock.Advance(std::chrono::hours(5));
  CHECK(backoff.Next() == milliseconds(800));
}

}  // namespace
}  // namespace informerd::core
