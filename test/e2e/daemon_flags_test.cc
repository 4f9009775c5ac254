// End-to-end: the informerd binary's flags and log, as its README describes them: --version,
// --context, --metrics-listen none and --probe-listen none, --log-format json and --log-level,
// and the log lines that report readiness changes. (The default metrics and probe addresses are
// in daemon_default_metrics_port_test.cc, which needs ports 9090 and 9091 to itself.)
#include <rapidjson/document.h>
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "informerd/v1/informerd.grpc.pb.h"
#include "test/common/run_subprocess.h"
#include "test/common/wait_until.h"
#include "test/e2e/daemon_e2e.h"

namespace informerd::test {
namespace {

using grpc::health::v1::HealthCheckResponse;
using std::chrono::seconds;

// SIGTERM, then the exit status; fails the test if the daemon does not exit 0.
void StopDaemon(Subprocess& daemon) {
  daemon.Signal(SIGTERM);
  auto exit_code = daemon.Wait(seconds(15));
  INFO(daemon.stderr_text());
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 0);
}

// Opens a Subscribe stream to pods, reads its snapshot to SYNCED, and cancels it: the daemon
// logs the stream's end at debug level.
void SubscribeAndCancel(const std::string& address) {
  auto stub = informerd::v1::Informer::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(10));
  informerd::v1::SubscribeRequest request;
  request.set_resource("pods");
  auto reader = stub->Subscribe(&context, request);
  informerd::v1::Event event;
  while (reader->Read(&event) && event.type() != informerd::v1::Event::SYNCED) {
  }
  REQUIRE(event.type() == informerd::v1::Event::SYNCED);
  context.TryCancel();
  while (reader->Read(&event)) {
  }
  CHECK(reader->Finish().error_code() == grpc::StatusCode::CANCELLED);
}

// What the daemon listens on, less the fake apiserver's socket it inherited from the test.
std::set<std::string> DaemonListening(const Subprocess& daemon, Upstream& upstream) {
  std::set<std::string> addresses = ListeningAddresses(daemon.pid());
  addresses.erase("127.0.0.1:" + std::to_string(upstream.server().port()));
  return addresses;
}

// The level letter of a text-format line ("2024-01-02T03:04:05.123456Z I [grpc] ...").
char TextLevel(const std::string& line) {
  static const std::regex kLine(
      R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z ([TDIWEC]) \[[a-z]+\] .+$)");
  std::smatch match;
  if (!std::regex_match(line, match, kLine)) return '?';
  return match[1].str()[0];
}

TEST_CASE("--version prints the version the daemon runs as, on stdout, and exits 0") {
  auto result = RunSubprocess({kInformerdBinary, "--version"});
  REQUIRE(result.ok());
  CHECK(result->exit_code == 0);
  CHECK(result->err.empty());
  std::smatch match;
  REQUIRE(std::regex_match(result->out, match, std::regex(R"(^informerd (\d+\.\d+\.\d+)\n$)")));
  const std::string version = match[1];

  // The same version as the running daemon logs at start-up and /metrics reports.
  Upstream upstream;
  auto [daemon, address] = StartDaemon(upstream, PodsOnlyConfig());
  CHECK(daemon.stderr_text().find("informerd " + version + " starting") != std::string::npos);
  const HttpReply scrape = Get(MetricsAddress(daemon), "/metrics");
  CHECK(scrape.body.find("informerd_build_info{version=\"" + version + "\"} 1\n") !=
        std::string::npos);
  StopDaemon(daemon);
}

TEST_CASE("--context picks a kubeconfig context other than the current one") {
  Upstream upstream;
  // Two contexts: the current one points at an address where nothing listens, "fake" at the
  // fake apiserver.
  const std::string kubeconfig =
      WriteTempFile("two-contexts",
                    "apiVersion: v1\nkind: Config\nclusters:\n"
                    "- name: dead\n  cluster:\n    server: http://127.0.0.1:1\n"
                    "- name: fake\n  cluster:\n    server: " +
                        upstream.server().base_url() +
                        "\n"
                        "users:\n- name: tester\n  user:\n    token: t0ken\n"
                        "contexts:\n"
                        "- name: dead\n  context:\n    cluster: dead\n    user: tester\n"
                        "- name: fake\n  context:\n    cluster: fake\n    user: tester\n"
                        "current-context: dead\n");
  const std::vector<std::string> base = {kInformerdBinary,
                                         "--config",
                                         PodsOnlyConfig(),
                                         "--kubeconfig",
                                         kubeconfig,
                                         "--listen",
                                         "127.0.0.1:0",
                                         "--metrics-listen",
                                         "none",
                                         "--probe-listen",
                                         "none"};

  SECTION("with --context fake: the fake apiserver, whose pods sync") {
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), {"--context", "fake"});
    auto daemon = Subprocess::Start(argv);
    REQUIRE(daemon.ok());
    auto synced = daemon->WaitForLine("pods: synced 3 objects", seconds(20));
    INFO(daemon->stderr_text());
    REQUIRE(synced.ok());
    CHECK(daemon->stderr_text().find("apiserver " + upstream.server().base_url() +
                                     " as user \"tester\" (context \"fake\" in " + kubeconfig +
                                     ")") != std::string::npos);
    StopDaemon(*daemon);
  }
  SECTION("without --context: the current context, whose apiserver is not there") {
    auto daemon = Subprocess::Start(base);
    REQUIRE(daemon.ok());
    auto line = daemon->WaitForLine("apiserver http://127.0.0.1:1 ", seconds(20));
    INFO(daemon->stderr_text());
    REQUIRE(line.ok());
    CHECK(line->find("(context \"dead\" in " + kubeconfig + ")") != std::string::npos);
    StopDaemon(*daemon);
  }
  SECTION("with --context naming no context: a start-up error listing the contexts") {
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), {"--context", "nosuch"});
    SubprocessOptions options;
    options.timeout = seconds(15);
    auto result = RunSubprocess(argv, options);
    REQUIRE(result.ok());
    CHECK(result->exit_code == 1);
    CHECK(result->err.find("context \"nosuch\" not found (contexts: ") != std::string::npos);
  }
}

TEST_CASE("--metrics-listen none --probe-listen none: no HTTP port, the gRPC port only") {
  Upstream upstream;
  SECTION("none") {
    auto [daemon, address] = StartDaemon(upstream, PodsOnlyConfig(),
                                         {"--metrics-listen", "none", "--probe-listen", "none"});
    // The HTTP ports are bound before the gRPC port: had there been one, it would be logged.
    CHECK(daemon.stderr_text().find("metrics listening on") == std::string::npos);
    CHECK(daemon.stderr_text().find("probes listening on") == std::string::npos);
    CHECK(DaemonListening(daemon, upstream) == std::set<std::string>{address});
    StopDaemon(daemon);
  }
  SECTION("the probe port alone") {
    auto [daemon, address] = StartDaemon(upstream, PodsOnlyConfig(), {"--metrics-listen", "none"});
    CHECK(daemon.stderr_text().find("metrics listening on") == std::string::npos);
    const std::string probes = ProbeAddress(daemon);
    CHECK(DaemonListening(daemon, upstream) == std::set<std::string>{address, probes});
    CHECK(Get(probes, "/healthz").status == 200);
    StopDaemon(daemon);
  }
  SECTION("both ports (the same check sees them)") {
    auto [daemon, address] = StartDaemon(upstream, PodsOnlyConfig());
    const std::string metrics = MetricsAddress(daemon);
    const std::string probes = ProbeAddress(daemon);
    CHECK(DaemonListening(daemon, upstream) == std::set<std::string>{address, metrics, probes});
    StopDaemon(daemon);
  }
}

TEST_CASE("--log-format json: every line is one JSON object with time, level, component, msg") {
  Upstream upstream;
  // The example configuration names nodes, which this apiserver does not serve: a warning whose
  // message has quotes in it.
  auto [daemon, address] = StartDaemon(upstream, kExampleConfig, {"--log-format", "json"});
  REQUIRE(LogHas(daemon, "pods: synced 3 objects", seconds(20)));
  REQUIRE(LogHas(daemon, "looking again every 30 s", seconds(20)));
  StopDaemon(daemon);

  const std::regex time(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$)");
  const std::set<std::string> levels = {"trace", "debug", "info", "warning", "error", "critical"};
  std::set<std::string> seen;  // "level component msg"
  const std::vector<std::string> lines = Lines(daemon.stderr_text());
  CHECK(lines.size() >= 8);
  for (const std::string& line : lines) {
    INFO(line);
    rapidjson::Document doc;
    doc.Parse(line.c_str(), line.size());
    REQUIRE_FALSE(doc.HasParseError());
    REQUIRE(doc.IsObject());
    CHECK(doc.MemberCount() == 4);
    for (const char* key : {"time", "level", "component", "msg"}) {
      REQUIRE(doc.HasMember(key));
      REQUIRE(doc[key].IsString());
    }
    CHECK(std::regex_match(std::string(doc["time"].GetString()), time));
    CHECK(levels.count(doc["level"].GetString()) == 1);
    seen.insert(std::string(doc["level"].GetString()) + " " + doc["component"].GetString() + " " +
                doc["msg"].GetString());
  }
  CHECK(seen.count("info informerd received SIGTERM, shutting down") == 1);
  CHECK(seen.count("warning informer config resource \"nodes\": the server has no resource "
                   "\"nodes\"; looking again every 30 s") == 1);
  CHECK(seen.count("info informerd informerd stopped") == 1);
}

TEST_CASE("--log-level: warn hides info lines, info hides debug lines, debug shows them") {
  Upstream upstream;
  SECTION("warn") {
    // Without info lines there is no "gRPC listening on": wait for the warning instead.
    auto daemon =
        Subprocess::Start({kInformerdBinary, "--config", kExampleConfig, "--kubeconfig",
                           upstream.kubeconfig(), "--listen", "127.0.0.1:0", "--metrics-listen",
                           "127.0.0.1:0", "--probe-listen", "127.0.0.1:0", "--log-level", "warn"});
    REQUIRE(daemon.ok());
    REQUIRE(LogHas(*daemon, "looking again every 30 s", seconds(20)));
    // pods have synced too (an info line, not shown): the apiserver has had their watch.
    REQUIRE(upstream.server().WaitForOpenWatches("pods", 1, seconds(20)));
    StopDaemon(*daemon);
    std::string levels;
    for (const std::string& line : Lines(daemon->stderr_text())) levels += TextLevel(line);
    INFO(daemon->stderr_text());
    CHECK(levels == "W");
  }
  SECTION("info and debug") {
    const std::string level = GENERATE("info", "debug");
    INFO("--log-level " << level);
    auto [daemon, address] = StartDaemon(upstream, PodsOnlyConfig(), {"--log-level", level});
    REQUIRE(AwaitHealth(address, "", HealthCheckResponse::SERVING, seconds(20)) ==
            HealthCheckResponse::SERVING);
    SubscribeAndCancel(address);
    if (level == "debug") {
      CHECK(daemon.WaitForLine("Subscribe to pods ended: CANCELLED", seconds(10)).ok());
    }
    // The stream ended before the daemon stops, so its line, if any, is in the log by then.
    StopDaemon(daemon);
    std::set<char> letters;
    for (const std::string& line : Lines(daemon.stderr_text())) letters.insert(TextLevel(line));
    INFO(daemon.stderr_text());
    if (level == "debug") {
      CHECK(letters == std::set<char>{'D', 'I'});
    } else {
      CHECK(letters == std::set<char>{'I'});
      CHECK(daemon.stderr_text().find("Subscribe to pods ended") == std::string::npos);
    }
  }
}

TEST_CASE("readiness changes are logged: SERVING once synced, NOT_SERVING when it is lost") {
  Upstream upstream;
  auto [daemon, address] = StartDaemon(upstream, PodsOnlyConfig());
  auto ready = daemon.WaitForLine("health: ", seconds(20));
  INFO(daemon.stderr_text());
  REQUIRE(ready.ok());
  // The first readiness line is the change to ready (the initial NOT_SERVING is not a change).
  CHECK(ready->find("I [grpc] health: SERVING (ready)") != std::string::npos);
  CHECK(Health(address, "") == HealthCheckResponse::SERVING);

  // pods stop being served: the daemon is not ready any more, and says so once.
  REQUIRE(upstream.server().UnregisterResource("pods"));
  auto lost = daemon.WaitForLine("health: ", seconds(20));
  REQUIRE(lost.ok());
  CHECK(lost->find("I [grpc] health: NOT_SERVING (not ready)") != std::string::npos);
  CHECK(Health(address, "") == HealthCheckResponse::NOT_SERVING);
  StopDaemon(daemon);
}

// A Subscribe of pods from `resource_version` ("" for a snapshot), read to its end: the events
// received, the status, and how long it took.
struct SubscribeOutcome {
  std::vector<informerd::v1::Event> events;
  grpc::Status status;
  std::chrono::milliseconds took{0};
};
SubscribeOutcome SubscribeToEnd(const std::string& address, const std::string& resource_version) {
  auto stub = informerd::v1::Informer::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(20));
  informerd::v1::SubscribeRequest request;
  request.set_resource("pods");
  request.set_resource_version(resource_version);
  SubscribeOutcome outcome;
  const auto start = std::chrono::steady_clock::now();
  auto reader = stub->Subscribe(&context, request);
  informerd::v1::Event event;
  while (reader->Read(&event)) outcome.events.push_back(event);
  outcome.status = reader->Finish();
  outcome.took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  return outcome;
}

TEST_CASE(
    "--subscribe-sync-wait: a Subscribe to a resource that never syncs ends UNAVAILABLE "
    "with the apiserver's error") {
  Upstream upstream;
  const fakeapi::Fault forbidden = fakeapi::Fault::HttpError(
      403, "Forbidden", "pods is forbidden: User \"tester\" cannot list resource \"pods\"");
  upstream.server().InjectFault("pods", fakeapi::Verb::kList, forbidden, 1000);
  upstream.server().InjectFault("pods", fakeapi::Verb::kWatch, forbidden, 1000);
  auto [daemon, address] = StartDaemon(upstream, PodsOnlyConfig(), {"--subscribe-sync-wait=1s"});
  const SubscribeOutcome outcome = SubscribeToEnd(address, "");
  INFO(daemon.stderr_text());
  CHECK(outcome.events.empty());
  CHECK(outcome.status.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK_THAT(outcome.status.error_message(),
             Catch::StartsWith("pods has not synced within 1s: the initial list has not completed "
                               "(last error from the apiserver: "));
  CHECK_THAT(outcome.status.error_message(),
             Catch::Contains("pods is forbidden: User \"tester\" cannot list resource \"pods\""));
  CHECK(outcome.took.count() >= 1000);
  CHECK(outcome.took.count() < 10000);
  StopDaemon(daemon);
}

TEST_CASE(
    "--subscribe-future-version-wait: a Subscribe from a resource version the cache does not "
    "reach ends UNAVAILABLE \"too large resource version\"") {
  Upstream upstream;
  auto [daemon, address] =
      StartDaemon(upstream, PodsOnlyConfig(), {"--subscribe-future-version-wait=500ms"});
  // The cache's version: the SYNCED of a snapshot.
  std::string synced_at;
  {
    auto stub = informerd::v1::Informer::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + seconds(20));
    informerd::v1::SubscribeRequest request;
    request.set_resource("pods");
    auto reader = stub->Subscribe(&context, request);
    informerd::v1::Event event;
    while (reader->Read(&event) && event.type() != informerd::v1::Event::SYNCED) {
    }
    REQUIRE(event.type() == informerd::v1::Event::SYNCED);
    synced_at = event.resource_version();
    context.TryCancel();
    while (reader->Read(&event)) {
    }
    reader->Finish();
  }
  const std::string future = std::to_string(std::stoull(synced_at) + 1000);
  const SubscribeOutcome outcome = SubscribeToEnd(address, future);
  INFO(daemon.stderr_text());
  CHECK(outcome.events.empty());
  CHECK(outcome.status.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK_THAT(outcome.status.error_message(),
             Catch::StartsWith("too large resource version: " + future + ", current: "));
  CHECK_THAT(outcome.status.error_message(), Catch::Contains("within 500ms; retry"));
  CHECK(outcome.took.count() >= 500);
  StopDaemon(daemon);
}

}  // namespace
}  // namespace informerd::test
