// The chaos run (chaos_run.h), bounded: about a minute of writes, apiserver restarts, etcd
// compactions (one behind an outage, forcing a relist), connections cut mid-stream, subscribers
// leaving, resuming, falling behind and re-snapshotting, and a reader polling List; then nothing
// lost, nothing duplicated, no List mixed, every subscriber's state equal to kubectl's.
//
// The seed (printed) picks the cut points, the writers' choices and the subscribers' timings;
// INFORMERD_CHAOS_SEED=N repeats a run's choices (the timing of the machine is never the same).
// The soak program (test/soak/chaos_soak.cc) runs the same for an hour.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>

#include "test/e2e/chaos_run.h"

namespace informerd::test::chaos {
namespace {

TEST_CASE("chaos: nothing lost, duplicated or mixed under restarts, compactions and cuts",
          "[cluster]") {
  ChaosOptions options;
  options.duration = std::chrono::seconds(55);
  options.seed = static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch() /
                                            std::chrono::milliseconds(1));
  if (const char* seed = std::getenv("INFORMERD_CHAOS_SEED"); seed != nullptr && seed[0] != 0) {
    options.seed = std::strtoull(seed, nullptr, 10);
  }
  options.progress = &std::cout;
  if (const char* outputs = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR")) options.log_dir = outputs;
  std::cout << "chaos seed " << options.seed << " (INFORMERD_CHAOS_SEED to repeat)" << std::endl;
  const auto started = std::chrono::steady_clock::now();

  const ChaosReport report = RunChaos(options);

  const std::string summary = report.Summary();
  std::cout << summary << "took "
            << std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                started)
                   .count()
            << " s" << std::endl;
  INFO("seed " << options.seed << "\n" << summary);
  CHECK(report.violations.empty());
  CHECK(report.lost == 0);
  CHECK(report.duplicated == 0);
  // The faults happened, and informerd went through what they force.
  CHECK(report.apiserver_restarts >= 1);
  CHECK(report.compaction_outages >= 1);
  CHECK(report.proxy.cut_mid_stream >= 1);
  CHECK(report.relists.at("expired") >= 1);
  CHECK(report.watch_restarts >= 1);
  // The subscribers did what clients do.
  CHECK(report.resumes >= 1);
  CHECK(report.fell_behind >= 1);
  CHECK(report.left >= 1);
  // And the checks had something to check.
  CHECK(report.lists_checked >= 50);
  CHECK(report.epochs_checked >= 5);
  CHECK(report.snapshots_checked >= 3);
  CHECK(report.writes_checked >= 50);
  CHECK(report.final_objects > 0);
}

}  // namespace
}  // namespace informerd::test::chaos
