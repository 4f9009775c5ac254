// The soak: the chaos run (test/e2e/chaos_run.h) for a long time at a steady rate, with faults
// and subscriber churn throughout, printing informerd's resident set and open descriptors as it
// goes and at the start and end. Not a test (it runs an hour by default); run it by hand:
//
//   export INFORMERD_KUBE_APISERVER=$(test/cluster/build_kube_apiserver.sh)
//   bazel run //test/soak:chaos_soak -- --duration=1h
//
// Flags (all optional): --duration=1h|90m|600s, --seed=N, --watch-cache (default off),
// --writes-per-second=N (per namespace, default 3), --fault-interval=SECONDS (default 15),
// --progress-interval=SECONDS (default 60). Exit status 0 when every check passed, 1 when one
// failed (the violations are printed), 2 for a bad flag.
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>

#include "test/e2e/chaos_run.h"

namespace {

using informerd::test::chaos::ChaosOptions;
using informerd::test::chaos::ChaosReport;

// "1h", "90m", "600s" or "600" (seconds); -1 if malformed.
long ParseSeconds(const std::string& text) {
  if (text.empty()) return -1;
  char* end = nullptr;
  const long value = std::strtol(text.c_str(), &end, 10);
  if (end == text.c_str() || value < 0) return -1;
  const std::string unit(end);
  if (unit.empty() || unit == "s") return value;
  if (unit == "m") return value * 60;
  if (unit == "h") return value * 3600;
  return -1;
}

int Usage(const std::string& why) {
  std::cerr << "chaos_soak: " << why
            << "\nusage: chaos_soak [--duration=1h] [--seed=N] [--watch-cache] "
               "[--writes-per-second=N] [--fault-interval=SECONDS] [--progress-interval=SECONDS]"
            << std::endl;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  ChaosOptions options;
  options.duration = std::chrono::hours(1);
  options.fault_interval = std::chrono::seconds(15);
  options.progress_interval = std::chrono::seconds(60);
  options.seed = static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch() /
                                            std::chrono::milliseconds(1));
  options.settle_timeout = std::chrono::seconds(180);
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const std::size_t equals = arg.find('=');
    const std::string name = arg.substr(0, equals);
    const std::string value = equals == std::string::npos ? "" : arg.substr(equals + 1);
    if (name == "--duration" || name == "--fault-interval" || name == "--progress-interval") {
      const long seconds = ParseSeconds(value);
      if (seconds < 0) return Usage("bad value for " + name + ": " + value);
      if (name == "--duration") options.duration = std::chrono::seconds(seconds);
      if (name == "--fault-interval") options.fault_interval = std::chrono::seconds(seconds);
      if (name == "--progress-interval") options.progress_interval = std::chrono::seconds(seconds);
    } else if (name == "--seed" && !value.empty()) {
      options.seed = std::strtoull(value.c_str(), nullptr, 10);
    } else if (name == "--watch-cache" && value.empty()) {
      options.watch_cache = true;
    } else if (name == "--writes-per-second" && !value.empty()) {
      options.writes_per_second = std::strtod(value.c_str(), nullptr);
      if (options.writes_per_second <= 0) return Usage("--writes-per-second must be positive");
    } else {
      return Usage("unknown argument: " + arg);
    }
  }
  options.progress = &std::cout;
  std::cout << "chaos soak: " << options.duration.count() << " s, seed " << options.seed
            << ", watch cache " << (options.watch_cache ? "on" : "off") << ", "
            << options.writes_per_second << " writes/s in each of " << options.namespaces
            << " namespaces, a fault every ~" << options.fault_interval.count() / 1000 << " s"
            << std::endl;
  const ChaosReport report = RunChaos(options);
  std::cout << report.Summary();
  if (!report.samples.empty()) {
    std::cout << "informerd RSS (KiB) and fds over the run:";
    for (const auto& sample : report.samples) {
      std::cout << " " << static_cast<long>(sample.seconds) << "s:" << sample.rss_kib << "/"
                << sample.fds;
    }
    std::cout << std::endl;
  }
  return report.violations.empty() ? 0 : 1;
}
