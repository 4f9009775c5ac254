// Specification of the stall rules that act without events (Cache::CheckStalled, the daemon's
// periodic check) and of the head start's raise of the live limit (subscription.h, "Bounded
// memory"): a subscriber that reads nothing is ended within its stall budget even on a quiet
// resource (the longer head-start budget while its snapshot or replay waits), one whose snapshot
// pauses for seconds, as when the server writes hundreds of snapshots at once, is not, and one
// that reads a large snapshot at a reasonable pace on a busy resource is not ended by the hard
// limit. Time is a fake clock; the daemon's timer is simulated by calling
// CheckStalled every kPeriod.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/cache.h"
#include "fmt/format.h"
#include "test/common/cache_test_support.h"
#include "test/common/fake_clock.h"

namespace informerd::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Added;
using testing::Drain;
using testing::MakeObject;
using testing::Modified;
using testing::StreamState;

using Duration = std::chrono::steady_clock::duration;

// The simulated timer's period.
constexpr milliseconds kPeriod{100};

std::string Message(const absl::Status& status) { return std::string(status.message()); }

ObjectRecord Pod(const std::string& name, uint64_t rv) {
  return MakeObject("default", name, "u-" + name, rv);
}

std::string Name(uint64_t i) { return fmt::format("p{:05}", i); }

struct Harness {
  // `objects` pods p00000.. at their own versions 1..; the list at `objects` + 10.
  explicit Harness(uint64_t objects) {
    std::vector<ObjectRecord> items;
    items.reserve(objects);
    for (uint64_t i = 0; i < objects; ++i) items.push_back(Pod(Name(i), 1 + i));
    rv = objects + 10;
    cache->BeginList();
    cache->ListItems(std::move(items), std::to_string(rv));
    cache->EndList(std::to_string(rv));
  }

  std::shared_ptr<Subscription> Subscribe(SubscribeOptions options) {
    absl::StatusOr<std::shared_ptr<Subscription>> subscription =
        cache->Subscribe(std::move(options));
    REQUIRE(subscription.ok());
    return *subscription;
  }

  // A MODIFIED of object `i`, at the next version.
  void Modify(uint64_t i) { cache->ApplyWatchEvent(Modified(Pod(Name(i), ++rv))); }

  // Advances the clock a period and runs the check, until `sub` has a final status or `limit`
  // has passed; returns how long that took.
  Duration CheckUntilEnded(Subscription& sub, Duration limit) {
    Duration waited{};
    while (!sub.FinalStatus() && waited < limit) {
      clock.Advance(kPeriod);
      waited += kPeriod;
      cache->CheckStalled();
    }
    return waited;
  }

  FakeClock clock;
  std::shared_ptr<Cache> cache = Cache::Create(CacheOptions{}, clock);
  uint64_t rv = 0;
};

// ---- The stall check -------------------------------------------------------------------------

TEST_CASE(
    "a subscriber that reads nothing on a quiet resource is ended by the stall check within "
    "its budget, and what was queued for it is dropped",
    "[subscription][stall]") {
  Harness h(100);
  int ready_calls = 0;
  SubscribeOptions options;
  options.on_ready = [&ready_calls] { ++ready_calls; };
  auto sub = h.Subscribe(std::move(options));
  REQUIRE(sub->pending() == 101);  // 100 objects, then SYNCED
  CHECK(h.cache->StartStallChecks());
  CHECK_FALSE(h.cache->StartStallChecks());  // one caller runs the checks
  // Never popped, and no event ever comes: its snapshot waits, so the head start's budget.
  const Duration waited = h.CheckUntilEnded(*sub, seconds(60));
  REQUIRE(sub->FinalStatus().has_value());
  CHECK(waited >= seconds(10));                // never before the budget
  CHECK(waited <= seconds(10) + 2 * kPeriod);  // the budget plus at most two periods
  CHECK(sub->FinalStatus()->code() == absl::StatusCode::kResourceExhausted);
  CHECK(Message(*sub->FinalStatus()) ==
        "subscriber fell behind before its initial snapshot was complete: it read nothing for "
        "10000 ms while 101 items waited for it; subscribe again without a resource version");
  // The snapshot is released now, not when (if ever) the consumer pops.
  CHECK(sub->pending() == 0);
  CHECK_FALSE(sub->TryPop().has_value());
  CHECK(ready_calls == 1);  // told once that it ended
  const CacheStats stats = h.cache->Stats();
  CHECK(stats.subscribers_fell_behind == 1);
  CHECK(stats.subscriber_count == 0);
  // No subscriber left: the checks stop, and the next subscriber starts them again.
  CHECK_FALSE(h.cache->CheckStalled());
  auto next = h.Subscribe(SubscribeOptions{});
  CHECK(h.cache->StartStallChecks());
  next->Close();
}

TEST_CASE(
    "the stall check does not end a subscriber that reads, however slowly, nor one with "
    "nothing waiting",
    "[subscription][stall]") {
  Harness h(200);
  auto slow = h.Subscribe(SubscribeOptions{});
  auto caught_up = h.Subscribe(SubscribeOptions{});
  Drain(*caught_up);
  // One item every 900 ms for a minute, with a budget of 1 s: always some progress in time.
  for (int i = 0; i < 60000 / 100; ++i) {
    h.clock.Advance(kPeriod);
    if (i % 9 == 8) REQUIRE(slow->TryPop().has_value());
    REQUIRE(h.cache->CheckStalled());
  }
  CHECK_FALSE(slow->FinalStatus().has_value());
  CHECK(slow->pending() == 201 - 66);
  slow->Close();
  // Nothing waiting for it: it may read nothing for as long as it likes.
  h.clock.Advance(std::chrono::minutes(10));
  h.cache->CheckStalled();
  h.clock.Advance(std::chrono::minutes(10));
  h.cache->CheckStalled();
  CHECK_FALSE(caught_up->FinalStatus().has_value());
  CHECK(h.cache->Stats().subscribers_fell_behind == 0);
  // An event arrives and it still reads nothing: from then on the budget runs.
  h.Modify(3);
  CHECK(h.CheckUntilEnded(*caught_up, seconds(60)) <= seconds(1) + 2 * kPeriod);
  REQUIRE(caught_up->FinalStatus().has_value());
  CHECK(Message(*caught_up->FinalStatus()) ==
        "subscriber fell behind: it read nothing for 1000 ms while 1 items waited for it; the "
        "last event it was sent has resource version 210: resume from it");
}

TEST_CASE(
    "a subscriber the stall check ends after its snapshot resumes from the last event it took",
    "[subscription][stall]") {
  Harness h(3);
  auto sub = h.Subscribe(SubscribeOptions{});
  CHECK(Drain(*sub).size() == 4);                // 3 objects, SYNCED at 13
  for (uint64_t i = 0; i < 3; ++i) h.Modify(i);  // 14, 15, 16
  REQUIRE(sub->TryPop().has_value());            // 14
  h.CheckUntilEnded(*sub, seconds(60));
  REQUIRE(sub->FinalStatus().has_value());
  CHECK(Message(*sub->FinalStatus()) ==
        "subscriber fell behind: it read nothing for 1000 ms while 2 items waited for it; the "
        "last event it was sent has resource version 14: resume from it");
  // Resuming from it loses nothing.
  SubscribeOptions resume;
  resume.resource_version = "14";
  auto resumed = h.Subscribe(std::move(resume));
  CHECK(Drain(*resumed).size() == 2);
  resumed->Close();
}

TEST_CASE(
    "a subscriber that fell behind as events were pushed and does not read what was left for "
    "it has it dropped by the stall check",
    "[subscription][stall]") {
  Harness h(0);
  SubscribeOptions options;
  options.resource_version = "10";
  options.queue_capacity = 4;
  auto sub = h.Subscribe(std::move(options));
  for (int i = 0; i < 6; ++i) h.cache->ApplyWatchEvent(Added(Pod(Name(i), ++h.rv)));  // 11..16
  REQUIRE(sub->TryPop().has_value());                                                 // 11
  h.cache->ApplyWatchEvent(Added(Pod(Name(6), ++h.rv)));  // 17: over the capacity, read since
  // Nothing read for the budget: the next event ends it (Push), and what was queued, up to 17,
  // stays for it to read.
  h.clock.Advance(seconds(2));
  h.cache->ApplyWatchEvent(Added(Pod(Name(7), ++h.rv)));
  REQUIRE(h.cache->Stats().subscribers_fell_behind == 1);
  CHECK(sub->pending() == 6);
  CHECK_FALSE(sub->FinalStatus().has_value());
  // It still reads nothing: the check drops the rest, and the status names what it took.
  h.CheckUntilEnded(*sub, seconds(60));
  REQUIRE(sub->FinalStatus().has_value());
  CHECK(sub->pending() == 0);
  CHECK(Message(*sub->FinalStatus()) ==
        "subscriber fell behind: it read nothing for 1000 ms while 6 items waited for it; the "
        "last event it was sent has resource version 11: resume from it");
  CHECK(h.cache->Stats().subscribers_fell_behind == 1);  // counted once
  CHECK_FALSE(h.cache->CheckStalled());                  // nothing left to check
}

TEST_CASE(
    "a subscriber whose snapshot pauses for seconds at a time is not ended, and once its head "
    "start is read the one-second budget applies again",
    "[subscription][stall]") {
  Harness h(1000);
  auto sub = h.Subscribe(SubscribeOptions{});  // budgets 1 s, and 10 s for the head start
  StreamState state;
  // 64 items every 6 s, as a stream waiting its turn behind hundreds of others, while 20
  // events/s arrive (one every 50 ms): the check runs every period throughout.
  constexpr milliseconds kTick{50};
  Duration since_read{};
  uint64_t modified = 0;
  int64_t ticks = 0;
  while (!state.synced() && !sub->FinalStatus()) {
    h.clock.Advance(kTick);
    since_read += kTick;
    h.Modify(modified++ % 1000);
    if (since_read >= seconds(6)) {
      since_read = {};
      for (int i = 0; i < 64; ++i) {
        std::optional<Delivery> delivery = sub->TryPop();
        if (!delivery) break;
        if (std::optional<std::string> error = state.Apply(*delivery)) FAIL(*error);
        if (state.synced()) break;
      }
    }
    if (++ticks % (kPeriod / kTick) == 0) h.cache->CheckStalled();
  }
  if (sub->FinalStatus()) FAIL(Message(*sub->FinalStatus()));
  REQUIRE(state.synced());  // 16 pauses of 6 s: over a minute and a half, never ended
  CHECK(h.cache->Stats().subscribers_fell_behind == 0);
  // The live events that queued meanwhile are not the head start: stop reading them and the
  // one-second budget ends it.
  REQUIRE(sub->pending() > 1000);
  const Duration waited = h.CheckUntilEnded(*sub, seconds(60));
  REQUIRE(sub->FinalStatus().has_value());
  CHECK(waited <= seconds(1) + 2 * kPeriod);
  CHECK_THAT(Message(*sub->FinalStatus()),
             Catch::StartsWith("subscriber fell behind: it read nothing for 1000 ms while "));
}

TEST_CASE(
    "a resumed subscriber has the head start's budget while its replay waits, and the live "
    "push rule uses it too",
    "[subscription][stall]") {
  Harness h(10);
  const uint64_t from = h.rv;
  for (uint64_t i = 0; i < 20; ++i) h.Modify(i % 10);  // the window: 20 events
  SubscribeOptions options;
  options.resource_version = std::to_string(from);
  options.queue_capacity = 2;
  options.head_start_stall_budget = seconds(5);
  auto sub = h.Subscribe(std::move(options));
  REQUIRE(sub->pending() == 20);
  // Three live events: over the capacity of 2 from the third, whose push starts the budget.
  for (int i = 0; i < 3; ++i) h.Modify(0);
  // Nothing read for 4 s (the one-second budget would end it): the check and the next push
  // both leave it be.
  for (int i = 0; i < 4; ++i) {
    h.clock.Advance(seconds(1));
    h.cache->CheckStalled();
  }
  h.Modify(1);
  CHECK_FALSE(sub->FinalStatus().has_value());
  CHECK(h.cache->Stats().subscribers_fell_behind == 0);
  // At 5 s without a pop, the next push ends it.
  h.clock.Advance(seconds(1));
  h.Modify(2);
  CHECK(h.cache->Stats().subscribers_fell_behind == 1);
  Drain(*sub);
  REQUIRE(sub->FinalStatus().has_value());
  CHECK_THAT(Message(*sub->FinalStatus()), Catch::Contains("it read nothing for 5000 ms while "));
}

TEST_CASE("a head start budget below the stall budget counts as the stall budget",
          "[subscription][stall]") {
  Harness h(5);
  SubscribeOptions options;
  options.stall_budget = seconds(2);
  options.head_start_stall_budget = milliseconds(100);
  auto sub = h.Subscribe(std::move(options));
  CHECK(sub->head_start_stall_budget() == seconds(2));
  const Duration waited = h.CheckUntilEnded(*sub, seconds(60));
  CHECK(waited >= seconds(2));
  CHECK(waited <= seconds(2) + 2 * kPeriod);
  SubscribeOptions negative;
  negative.head_start_stall_budget = -seconds(1);
  CHECK(h.cache->Subscribe(std::move(negative)).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

// ---- The head start ----------------------------------------------------------------------------

// A reader of a snapshot of `objects` objects while events arrive at 200 per second (one every
// 5 ms): it takes `per_tick` items every 5 ms until `stop_after` (if any), and the stall check
// runs every kPeriod. What happened.
struct PaceRun {
  bool ended = false;
  Duration ended_at{};
  bool synced = false;
  bool caught_up = false;
  std::size_t items_read = 0;
};

PaceRun ReadAtPace(Harness& h, Subscription& sub, StreamState& state, int per_tick,
                   std::optional<Duration> stop_after, Duration limit, uint64_t objects) {
  constexpr milliseconds kTick{5};
  PaceRun run;
  Duration elapsed{};
  uint64_t next_object = 0;
  while (elapsed < limit) {
    h.Modify(next_object++ % objects);
    const bool reading = !stop_after || elapsed < *stop_after;
    for (int i = 0; reading && i < per_tick; ++i) {
      std::optional<Delivery> delivery = sub.TryPop();
      if (!delivery) break;
      ++run.items_read;
      if (std::optional<std::string> error = state.Apply(*delivery)) FAIL(*error);
    }
    run.synced = state.synced();
    h.clock.Advance(kTick);
    elapsed += kTick;
    if (elapsed % kPeriod == Duration::zero()) h.cache->CheckStalled();
    if (sub.FinalStatus() || (!reading && sub.pending() == 0)) {
      run.ended = sub.FinalStatus().has_value();
      run.ended_at = elapsed;
      break;
    }
    if (run.synced && sub.pending() == 0) {
      run.caught_up = true;
      break;
    }
  }
  return run;
}

TEST_CASE(
    "a steady reader of a 50,000-object snapshot while 200 events/s arrive is not ended by the "
    "hard limit, and completes and catches up",
    "[subscription][pace]") {
  constexpr uint64_t kObjects = 50000;
  Harness h(kObjects);
  auto sub = h.Subscribe(SubscribeOptions{});  // capacity 1024, hard limit 4096, budget 1 s
  StreamState state;
  // 400 items/s: the snapshot takes 125 s, 25,000 events pile up behind it meanwhile (six times
  // the hard limit), and it works them off at 200/s net.
  const PaceRun run = ReadAtPace(h, *sub, state, 2, std::nullopt, seconds(600), kObjects);
  const std::size_t most_live_waiting = h.cache->Stats().queue_high_water;
  INFO("most live events waiting " << most_live_waiting << ", items read " << run.items_read);
  CHECK_FALSE(run.ended);
  if (sub->FinalStatus()) FAIL(Message(*sub->FinalStatus()));
  CHECK(run.caught_up);
  CHECK(most_live_waiting > 5 * sub->hard_limit());
  // Back to the hard limit once caught up.
  CHECK(sub->live_limit() == sub->hard_limit());
  // What it holds is the cache's state.
  absl::StatusOr<ListResult> list = h.cache->List("", LabelSelector(), FieldSelector());
  REQUIRE(list.ok());
  const bool same = state.objects() == testing::ByKey(list->items);  // too large to print
  CHECK(same);
  CHECK(h.cache->Stats().subscribers_fell_behind == 0);
}

TEST_CASE(
    "a reader that stops in the middle of its snapshot is ended within the head start's stall "
    "budget",
    "[subscription][pace]") {
  constexpr uint64_t kObjects = 50000;
  Harness h(kObjects);
  auto sub = h.Subscribe(SubscribeOptions{});
  StreamState state;
  // Reads at 400/s for 10 s (4,000 of the 50,000 objects), then stops; the events go on.
  const PaceRun run = ReadAtPace(h, *sub, state, 2, seconds(10), seconds(600), kObjects);
  REQUIRE(run.ended);
  CHECK(run.ended_at >= seconds(10) + seconds(10));
  CHECK(run.ended_at <= seconds(10) + seconds(10) + 2 * kPeriod);
  CHECK_FALSE(run.synced);
  REQUIRE(sub->FinalStatus().has_value());
  CHECK(sub->FinalStatus()->code() == absl::StatusCode::kResourceExhausted);
  // Its snapshot is gone with it: it has to start again.
  CHECK(sub->pending() == 0);
  CHECK_THAT(Message(*sub->FinalStatus()),
             Catch::StartsWith("subscriber fell behind before its initial snapshot was complete: "
                               "it read nothing for 10000 ms while ") &&
                 Catch::EndsWith("subscribe again without a resource version"));
}

TEST_CASE(
    "a reader slower than the events is ended once it is the hard limit behind them, not "
    "before",
    "[subscription][pace]") {
  constexpr uint64_t kObjects = 5000;
  Harness h(kObjects);
  SubscribeOptions options;
  options.queue_capacity = 64;  // hard limit 256
  auto sub = h.Subscribe(std::move(options));
  StreamState state;
  // 100 items/s while 200 events/s arrive: one item and two events every 10 ms.
  constexpr milliseconds kTick{10};
  uint64_t ticks = 0;
  std::size_t read = 0;
  const auto ended = [&] { return h.cache->Stats().subscribers_fell_behind != 0; };
  while (!ended() && ticks < 100000) {
    h.Modify((2 * ticks) % kObjects);
    h.Modify((2 * ticks + 1) % kObjects);
    if (ended()) break;
    if (std::optional<Delivery> delivery = sub->TryPop()) {
      ++read;
      if (std::optional<std::string> error = state.Apply(*delivery)) FAIL(*error);
    }
    h.clock.Advance(kTick);
    ++ticks;
    if (ticks % 10 == 0) h.cache->CheckStalled();
  }
  REQUIRE(ended());
  // Live events: 2 per tick; read: 1 per tick, all from the snapshot. Ended when the live
  // events waiting reach 256 plus what it has read (2t + 1 = 256 + t): by the second event of
  // tick 255 (version 5522).
  CHECK(ticks == 255);
  CHECK(read == 255);
  CHECK(h.rv == 5010 + 2 * 255 + 2);
  Drain(*sub);
  REQUIRE(sub->FinalStatus().has_value());
  CHECK(Message(*sub->FinalStatus()) ==
        "subscriber fell behind: 511 events waited for it, 4 times its queue capacity of 64 plus "
        "the 255 items of its snapshot or replay it has read: it reads more slowly than the "
        "events arrive; the last event it was sent has resource version 5521: resume from it");
}

TEST_CASE("a resumed subscriber replaying the window at a steady pace is not ended either",
          "[subscription][pace]") {
  Harness h(100);
  const uint64_t from = h.rv;
  for (uint64_t i = 0; i < 2000; ++i) h.Modify(i % 100);  // the window: 2,000 events
  SubscribeOptions options;
  options.resource_version = std::to_string(from);
  options.queue_capacity = 4;  // hard limit 16
  auto sub = h.Subscribe(std::move(options));
  REQUIRE(sub->pending() == 2000);
  // Two items per event: the replay takes 1,000 events' time, 1,000 live events pile up.
  for (int i = 0; i < 3000 && sub->pending() > 0; ++i) {
    h.Modify(static_cast<uint64_t>(i) % 100);
    sub->TryPop();
    sub->TryPop();
  }
  if (sub->FinalStatus()) FAIL(Message(*sub->FinalStatus()));
  CHECK(sub->pending() == 0);
  CHECK(h.cache->Stats().queue_high_water > 500);
  CHECK(h.cache->Stats().subscribers_fell_behind == 0);
}

}  // namespace
}  // namespace informerd::core
