// sync_bench: the whole upstream pipeline, end to end, against the fake apiserver's load mode:
// ApiServerClient (Beast, plain HTTP) → Informer → Reflector → ListDecoder → Cache. Prints
//  * initial-sync objects/s for 4 KB and 20 KB pods, by wall time and per CPU-second of this
//    process (getrusage: every thread, so the figure is per core used),
//  * resident bytes per cached object relative to the object's stored JSON size,
//  * peak resident memory during a forced relist (the fake expires the watch: 410) relative to
//    steady state.
// Prints figures; asserts nothing. Run with
//   bazel --output_base=/root/.cache/bazel_opt run -c opt //bench:sync_bench --
//       [--objects-4k N] [--objects-20k N] [--paging pages|whole|both]
//       [--parser default|rapidjson|simdjson] [--fakeapi PATH]
// --paging: "pages" lists in pages of 500; "whole" has the fake answer the first LIST
// (resourceVersion=0) in one response, as a watch cache before Kubernetes 1.27 does, which
// makes the reflector relist without pagination too (client-go's rule); "both" (default) runs
// each. --parser: which documents the object scanner gives simdjson (ScanOptions::fast_path):
// "default" the non-ASCII ones, "rapidjson" none, "simdjson" all it can judge.
//
// The fake runs as a separate process (test/fakeapi:fakeapi_server, found in the runfiles):
// its serving and JSON generation then use their own core and their own memory, so neither the
// CPU figure nor the resident figures of this process include the fake's work. SIGUSR1 makes it
// expire its watches.
//
// Memory is this process's resident set after malloc_trim, before the informer starts and
// after the initial sync; the relist peak is VmHWM, reset just before the relist
// (/proc/self/clear_refs), so it catches every page, not only sampled moments.
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_support.h"
#include "core/cache.h"
#include "core/clock.h"
#include "daemon/informers/informer.h"
#include "daemon/kube/apiserver_client.h"
#include "daemon/kube/auth/credentials.h"
#include "daemon/kube/auth/rest_config.h"
#include "daemon/kube/discovery.h"
#include "fmt/format.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/null_sink.h"

extern char** environ;

namespace informerd {
namespace {

using Clock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "sync_bench: %s\n", message.c_str());
  std::exit(1);
}

// The fake apiserver in load mode, as a child process.
class FakeApiProcess {
 public:
  FakeApiProcess(const std::string& binary, std::size_t objects, std::size_t object_bytes,
                 bool rv0_ignores_limit) {
    int out[2];
    if (pipe(out) != 0) Die("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    const std::string objects_arg = std::to_string(objects);
    const std::string bytes_arg = std::to_string(object_bytes);
    std::vector<std::string> args = {binary,    "--objects",    objects_arg, "--object-bytes",
                                     bytes_arg, "--namespaces", "40",        "--resource",
                                     "pods"};
    args.push_back(rv0_ignores_limit ? "--rv0-ignores-limit=true" : "--rv0-ignores-limit=false");
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ) != 0) {
      Die("cannot start " + binary);
    }
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    // The first line is the port.
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    close(out[0]);
    port_ = std::atoi(line.c_str());
    if (port_ <= 0) Die("fakeapi_server printed no port");
  }
  ~FakeApiProcess() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  int port() const { return port_; }
  void ExpireWatches() const { kill(pid_, SIGUSR1); }

 private:
  pid_t pid_ = 0;
  int port_ = 0;
};

class IoThread {
 public:
  IoThread() : work_(io_.get_executor()), thread_([this] { io_.run(); }) {}
  ~IoThread() {
    work_.reset();
    io_.stop();
    thread_.join();
  }
  boost::asio::io_context& io() { return io_; }

 private:
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread thread_;
};

// Minor page faults of this process so far (every thread): first touches of memory it had not
// used before, each a trap into the kernel and a zeroed 4 KiB page.
uint64_t MinorFaults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<uint64_t>(usage.ru_minflt);
}

uint64_t Relists(const core::ReflectorStatus& status) {
  return std::accumulate(status.relists.begin(), status.relists.end(), uint64_t{0});
}

template <typename Condition>
bool WaitFor(Condition condition, Seconds timeout) {
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(timeout);
  while (!condition()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

void RunSize(const std::string& fakeapi, std::size_t pod_bytes, std::size_t count, bool paginate,
             core::ScanOptions::FastPath fast_path) {
  std::printf("\n%zu pods of ~%zu KB as served (managedFields included); %s\n", count,
              pod_bytes / 1024,
              paginate ? "LIST pages of 500 (the fake paginates at resourceVersion=0)"
                       : "the first LIST (resourceVersion=0) is one response, as from a watch "
                         "cache before Kubernetes 1.27, and so is the relist after it");
  std::fflush(stdout);
  FakeApiProcess fake(fakeapi, count, pod_bytes, /*rv0_ignores_limit=*/!paginate);

  IoThread io;
  daemon::RestConfig config;
  absl::StatusOr<daemon::ServerUrl> url =
      daemon::ParseServerUrl(fmt::format("http://127.0.0.1:{}", fake.port()));
  if (!url.ok()) Die(std::string(url.status().message()));
  config.server = *url;
  config.credentials = std::make_shared<daemon::StaticCredentialSource>(daemon::Credentials{});
  config.identity = "sync_bench";
  absl::StatusOr<std::unique_ptr<daemon::ApiServerClient>> client =
      daemon::ApiServerClient::Create(io.io(), std::move(config));
  if (!client.ok()) Die(std::string(client.status().message()));

  daemon::InformerOptions options;
  options.resource.version = "v1";
  options.resource.resource = "pods";
  options.resource.kind = "Pod";
  options.resource.namespaced = true;
  options.scan.strip_managed_fields = true;
  options.scan.extra_field_paths = {"spec.nodeName", "status.phase"};
  options.scan.fast_path = fast_path;
  core::SteadyClock clock;
  core::CacheOptions cache_options;
  cache_options.extra_field_paths = options.scan.extra_field_paths;

  const std::size_t before = bench::TrimmedResidentBytes();
  std::shared_ptr<core::Cache> cache = core::Cache::Create(cache_options, clock);
  std::shared_ptr<daemon::Informer> informer = daemon::Informer::Create(
      **client, std::move(options), cache, clock,
      std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>()));

  // Initial sync.
  const double cpu_start = bench::CpuSeconds();
  const uint64_t faults_start = MinorFaults();
  const auto wall_start = Clock::now();
  informer->Start();
  if (!WaitFor([&] { return cache->Stats().synced; }, Seconds(600))) Die("no initial sync");
  const double wall = Seconds(Clock::now() - wall_start).count();
  const double cpu = bench::CpuSeconds() - cpu_start;
  const uint64_t faults = MinorFaults() - faults_start;
  const std::size_t cached = cache->Stats().object_count;
  if (cached != count) Die(fmt::format("cached {} objects, expected {}", cached, count));

  std::size_t json_bytes = 0;
  {
    absl::StatusOr<core::ListResult> all =
        cache->List("", core::LabelSelector(), core::FieldSelector());
    if (!all.ok()) Die(std::string(all.status().message()));
    for (const auto& object : all->items) json_bytes += object->json.size();
  }
  const std::size_t steady = bench::TrimmedResidentBytes();
  const double json_per_object = static_cast<double>(json_bytes) / count;
  const double resident_per_object = static_cast<double>(steady - before) / count;

  std::printf("  %-44s %9.0f objects/s  (%.2f s wall)\n", "initial sync, wall time", count / wall,
              wall);
  std::printf("  %-44s %9.0f objects/s  (%.2f s CPU, %.2f cores busy)\n",
              "initial sync, per CPU-second of this process", count / cpu, cpu, cpu / wall);
  std::printf("  %-44s %9.0f bytes/object = %.3f x JSON (%.0f B stored JSON + %.0f B)\n",
              "resident memory of the cache", resident_per_object,
              resident_per_object / json_per_object, json_per_object,
              resident_per_object - json_per_object);
  // Faults that only first-touch what the cache keeps are the floor (resident growth / 4 KiB);
  // more than that would be buffers freed and allocated afresh during the sync.
  std::printf("  %-44s %9.2f per object  (%.1f MB touched; the cache grew %.1f MB)\n",
              "minor page faults during the initial sync", static_cast<double>(faults) / count,
              static_cast<double>(faults) * 4096 / 1e6,
              (static_cast<double>(steady) - static_cast<double>(before)) / 1e6);

  // Relist: the fake expires the watch; the reflector relists (410 → LIST) into the same cache.
  const uint64_t relists_before = Relists(informer->status());
  const bool hwm = bench::ResetPeakResident();
  std::size_t sampled_peak = steady;
  const double relist_cpu_start = bench::CpuSeconds();
  const auto relist_start = Clock::now();
  fake.ExpireWatches();
  const bool relisted = WaitFor(
      [&] {
        sampled_peak = std::max(sampled_peak, bench::ResidentBytes());
        const core::ReflectorStatus status = informer->status();
        return Relists(status) > relists_before &&
               status.state == core::ReflectorState::kWatching && !cache->Stats().relisting &&
               status.synced;
      },
      Seconds(600));
  if (!relisted) Die("no relist after the watch expired");
  const double relist_wall = Seconds(Clock::now() - relist_start).count();
  const double relist_cpu = bench::CpuSeconds() - relist_cpu_start;
  const std::size_t peak = hwm ? std::max(bench::PeakResidentBytes(), sampled_peak) : sampled_peak;
  std::printf("  %-44s %9.0f objects/s  (%.2f s wall, %.2f s CPU)\n",
              "relist after 410 (objects unchanged)", count / relist_wall, relist_wall, relist_cpu);
  std::printf("  %-44s %9.3f x steady state (%.1f MB over %.1f MB; %s)\n",
              "peak resident during the relist", static_cast<double>(peak) / steady,
              (static_cast<double>(peak) - static_cast<double>(steady)) / 1e6, steady / 1e6,
              hwm ? "VmHWM" : "sampled every 2 ms");
  std::fflush(stdout);

  informer->Stop();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

}  // namespace
}  // namespace informerd

int main(int argc, char** argv) {
  std::size_t objects_4k = 50000;
  std::size_t objects_20k = 10000;
  std::string paging = "both";
  std::string fakeapi = std::string(argv[0]) + ".runfiles/informerd/test/fakeapi/fakeapi_server";
  using FastPath = informerd::core::ScanOptions::FastPath;
  FastPath fast_path = FastPath::kNonAscii;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--objects-4k") {
      objects_4k = std::strtoul(argv[i + 1], nullptr, 10);
    } else if (flag == "--objects-20k") {
      objects_20k = std::strtoul(argv[i + 1], nullptr, 10);
    } else if (flag == "--paging") {
      paging = argv[i + 1];
    } else if (flag == "--fakeapi") {
      fakeapi = argv[i + 1];
    } else if (flag == "--parser" && std::string(argv[i + 1]) == "rapidjson") {
      fast_path = FastPath::kOff;
    } else if (flag == "--parser" && std::string(argv[i + 1]) == "simdjson") {
      fast_path = FastPath::kAlways;
    } else if (flag == "--parser" && std::string(argv[i + 1]) == "default") {
      fast_path = FastPath::kNonAscii;
    } else {
      std::fprintf(
          stderr,
          "usage: sync_bench [--objects-4k N] [--objects-20k N] [--paging pages|whole|both] "
          "[--parser default|rapidjson|simdjson] [--fakeapi PATH]\n");
      return 2;
    }
  }
  std::printf(
      "sync_bench: Informer over ApiServerClient (plain HTTP) into a Cache, against "
      "fakeapi_server in a separate process; CPU time from getrusage (all threads of this "
      "process)\n");
  // Each configuration in a fresh child process, so that one run's heap (fragmentation, arenas)
  // does not weigh on the next one's resident figures.
  const auto run = [&](std::size_t pod_bytes, std::size_t count, bool paginate) {
    if (count == 0) return;
    std::fflush(stdout);
    const pid_t child = fork();
    if (child == 0) {
      informerd::RunSize(fakeapi, pod_bytes, count, paginate, fast_path);
      std::fflush(stdout);
      std::_Exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
  };
  for (const bool paginate : {true, false}) {
    if (paging != "both" && (paging == "pages") != paginate) continue;
    run(4 * 1024, objects_4k, paginate);
    run(20 * 1024, objects_20k, paginate);
  }
  return 0;
}
