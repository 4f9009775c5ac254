// End-to-end: --ingest-threads. With 2, the informerd binary runs its two busy resources' informers
// on two threads (the main one and "ingest-1"), each with its own apiserver connections: both
// resources sync and stream their events to subscribers, /metrics says how the informers are
// spread, the extra thread does ingest work (CPU time), and SIGTERM still ends the daemon cleanly.
// With 1, everything stays on the main thread, as before the flag existed.
#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "informerd/v1/informerd.grpc.pb.h"
#include "test/e2e/daemon_e2e.h"
#include "test/fakeapi/fake_api_server.h"

namespace informerd::test {
namespace {

using std::chrono::seconds;

std::string TwoResourcesConfig() {
  return WriteTempFile("two-resources.yaml",
                       "resources:\n  - resource: pods\n  - resource: configmaps\n");
}

// The daemon's threads by name (/proc/PID/task/*/comm), each with its CPU time so far in clock
// ticks (utime + stime from /proc/PID/task/TID/stat).
std::map<std::string, long> ThreadCpuTicks(pid_t pid) {
  std::map<std::string, long> out;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = opendir(tasks.c_str());
  REQUIRE(dir != nullptr);
  while (const dirent* entry = readdir(dir)) {
    const std::string tid = entry->d_name;
    if (tid == "." || tid == "..") continue;
    std::ifstream comm_file(tasks + "/" + tid + "/comm");
    std::string name;
    std::getline(comm_file, name);
    std::ifstream stat_file(tasks + "/" + tid + "/stat");
    std::string stat;
    std::getline(stat_file, stat);
    // Fields after the ")" that closes the name: state is field 3, utime 14, stime 15.
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::vector<std::string> values;
    for (std::string value; fields >> value;) values.push_back(value);
    if (values.size() < 13) continue;  // the thread ended meanwhile
    out[name] += std::stol(values[11]) + std::stol(values[12]);
  }
  closedir(dir);
  return out;
}

// Reads `stream` until `count` MODIFIED events have arrived (after the snapshot); fails the test
// if it ends first.
void ReadModified(grpc::ClientReader<v1::Event>& stream, int count) {
  v1::Event event;
  int modified = 0;
  while (modified < count) {
    REQUIRE(stream.Read(&event));
    if (event.type() == v1::Event::MODIFIED) ++modified;
  }
}

bool Has(const std::string& text, const std::string& line) {
  return text.find(line) != std::string::npos;
}

TEST_CASE("--ingest-threads=2: two busy resources on two threads, both streaming; clean SIGTERM") {
  Upstream upstream;
  fakeapi::SyntheticLoad load;
  load.objects = 200;
  load.object_bytes = 2048;
  REQUIRE(upstream.server().Populate("pods", load).ok());
  REQUIRE(upstream.server().Populate("configmaps", load).ok());
  auto [daemon, address] = StartDaemon(upstream, TwoResourcesConfig(), {"--ingest-threads=2"});
  INFO(daemon.stderr_text());
  REQUIRE(LogHas(daemon, "ingest: 2 threads", seconds(5)));
  REQUIRE(LogHas(daemon, "pods: synced", seconds(30)));
  REQUIRE(LogHas(daemon, "configmaps: synced", seconds(30)));

  REQUIRE(upstream.server().StartModifications("pods", 200).ok());
  REQUIRE(upstream.server().StartModifications("configmaps", 200).ok());
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto stub = v1::Informer::NewStub(channel);
  grpc::ClientContext pods_context;
  grpc::ClientContext configmaps_context;
  pods_context.set_deadline(std::chrono::system_clock::now() + seconds(60));
  configmaps_context.set_deadline(std::chrono::system_clock::now() + seconds(60));
  v1::SubscribeRequest request;
  request.set_resource("pods");
  auto pods = stub->Subscribe(&pods_context, request);
  request.set_resource("configmaps");
  auto configmaps = stub->Subscribe(&configmaps_context, request);
  ReadModified(*pods, 400);
  ReadModified(*configmaps, 400);
  upstream.server().StopModifications();

  // Each thread carries one informer.
  const HttpReply metrics = Get(MetricsAddress(daemon), "/metrics");
  REQUIRE(metrics.status == 200);
  INFO(metrics.body);
  CHECK(Has(metrics.body, "\ninformerd_ingest_threads 2\n"));
  CHECK(Has(metrics.body, "\ninformerd_ingest_thread_informers{thread=\"0\"} 1\n"));
  CHECK(Has(metrics.body, "\ninformerd_ingest_thread_informers{thread=\"1\"} 1\n"));

  // The extra thread exists and has done work: its informer's LIST, watch and decoding.
  const std::map<std::string, long> threads = ThreadCpuTicks(daemon.pid());
  REQUIRE(threads.count("ingest-1") == 1);
  CHECK(threads.at("ingest-1") > 0);
  CHECK(threads.count("ingest-2") == 0);

  pods_context.TryCancel();
  configmaps_context.TryCancel();
  daemon.Signal(SIGTERM);
  auto exit_code = daemon.Wait(seconds(15));
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 0);
  CHECK(Has(daemon.stderr_text(), "informerd stopped"));
}

TEST_CASE("--ingest-threads=1: every informer on the main thread, no ingest thread") {
  Upstream upstream;
  auto [daemon, address] = StartDaemon(upstream, TwoResourcesConfig(), {"--ingest-threads=1"});
  INFO(daemon.stderr_text());
  REQUIRE(LogHas(daemon, "pods: synced", seconds(30)));
  REQUIRE(LogHas(daemon, "configmaps: synced", seconds(30)));
  const HttpReply metrics = Get(MetricsAddress(daemon), "/metrics");
  REQUIRE(metrics.status == 200);
  INFO(metrics.body);
  CHECK(Has(metrics.body, "\ninformerd_ingest_threads 1\n"));
  CHECK(Has(metrics.body, "\ninformerd_ingest_thread_informers{thread=\"0\"} 2\n"));
  CHECK(ThreadCpuTicks(daemon.pid()).count("ingest-1") == 0);
  daemon.Signal(SIGTERM);
  auto exit_code = daemon.Wait(seconds(15));
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 0);
}

}  // namespace
}  // namespace informerd::test
