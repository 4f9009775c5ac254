// fakeapi_server: the fake kube-apiserver as a process, in load mode, for benchmarks.
//
// Serves N synthetic objects of each resource named by --resource (realistic JSON of about B
// bytes, managedFields included), then MODIFIED events at R per second per resource. The first
// line on stdout is the port; with --tls the CA certificate is written to --ca-file-out. Runs
// until SIGINT or SIGTERM.
// SIGUSR1 expires the resources' watches: each open watch ends and the next WATCH request gets
// 410 Expired, so clients relist (bench/sync_bench measures memory during that relist).
// With --events-on-signal the MODIFIED events start at SIGUSR2 instead (bench/overload_bench
// starts them once its client has synced, so that no backlog builds up before it watches).
// With --stamp-send-time every object carries the annotation informerd.io/bench-sent-unix-nanos,
// and each MODIFIED event's object the time (Unix ns) its batch was made (bench/fanout_bench
// measures latency from it).
#include <signal.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "fmt/format.h"
#include "test/fakeapi/fake_api_server.h"

namespace po = boost::program_options;
using informerd::fakeapi::FakeApiServer;
using informerd::fakeapi::ResourceType;
using informerd::fakeapi::ServerOptions;
using informerd::fakeapi::SyntheticLoad;

int main(int argc, char** argv) {
  // Block the stop signals before any thread starts, so that only sigwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGUSR1);
  sigaddset(&stop_signals, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  int port = 0;
  std::size_t objects = 1000;
  std::size_t object_bytes = 4096;
  std::size_t namespaces = 10;
  double events_per_second = 0;
  std::vector<std::string> resources = {"pods"};
  bool tls = false;
  bool managed_fields = true;
  std::string ca_file_out;
  int bookmark_ms = 60000;
  std::size_t history = 100000;
  bool rv0_ignores_limit = true;
  bool events_on_signal = false;
  bool stamp_send_time = false;

  po::options_description flags("fakeapi_server: a fake kube-apiserver in load mode");
  flags.add_options()("help", "print this help")("port", po::value(&port)->default_value(0),
                                                 "port on 127.0.0.1 (0: any free port)")(
      "objects", po::value(&objects)->default_value(1000), "synthetic objects to serve")(
      "object-bytes", po::value(&object_bytes)->default_value(4096),
      "approximate JSON size of each object (0: natural size)")(
      "namespaces", po::value(&namespaces)->default_value(10), "namespaces to spread them over")(
      "events-per-second", po::value(&events_per_second)->default_value(0),
      "MODIFIED events per second per resource after start-up (0: none)")(
      "events-on-signal", po::bool_switch(&events_on_signal),
      "start the MODIFIED events at SIGUSR2 instead of at start-up")(
      "stamp-send-time", po::bool_switch(&stamp_send_time),
      "objects carry the annotation informerd.io/bench-sent-unix-nanos: each MODIFIED event's "
      "the CLOCK_REALTIME time (Unix ns) its batch was made")(
      "resource", po::value(&resources)->multitoken()->default_value(resources, "pods"),
      "resource to serve: pods, configmaps, namespaces or deployments.apps; repeat it (or give "
      "several) to make several resources busy at once")(
      "managed-fields", po::value(&managed_fields)->default_value(true),
      "include metadata.managedFields")("tls", po::bool_switch(&tls), "serve HTTPS")(
      "ca-file-out", po::value(&ca_file_out), "with --tls: write the CA certificate here")(
      "bookmark-interval-ms", po::value(&bookmark_ms)->default_value(60000),
      "interval of BOOKMARK events for watches that allow them")(
      "history", po::value(&history)->default_value(100000), "watch events kept per resource")(
      "rv0-ignores-limit", po::value(&rv0_ignores_limit)->default_value(true),
      "a LIST at resourceVersion=0 returns everything in one response, as the watch cache "
      "before Kubernetes 1.27 did (false: it paginates)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, flags), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "fakeapi_server: " << e.what() << "\n" << flags;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << flags;
    return 0;
  }

  ServerOptions options;
  options.port = static_cast<std::uint16_t>(port);
  options.tls = tls;
  options.bookmark_interval = std::chrono::milliseconds(bookmark_ms);
  options.history_limit = history;
  options.rv0_ignores_limit = rv0_ignores_limit;
  FakeApiServer server;
  if (auto status = server.Start(options); !status.ok()) {
    std::cerr << "fakeapi_server: " << status.ToString() << "\n";
    return 1;
  }
  if (tls && !ca_file_out.empty()) {
    std::ofstream out(ca_file_out);
    out << server.ca_pem();
    if (!out) {
      std::cerr << "fakeapi_server: cannot write " << ca_file_out << "\n";
      return 1;
    }
  }
  SyntheticLoad load;
  load.objects = objects;
  load.object_bytes = object_bytes;
  load.namespaces = namespaces;
  load.managed_fields = managed_fields;
  load.stamp_send_time = stamp_send_time;
  const auto populate_start = std::chrono::steady_clock::now();
  for (const std::string& resource : resources) {
    if (auto status = server.Populate(resource, load); !status.ok()) {
      std::cerr << "fakeapi_server: " << status.ToString() << "\n";
      return 1;
    }
  }
  const double populate_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - populate_start).count();
  const auto start_modifications = [&]() -> bool {
    for (const std::string& resource : resources) {
      if (events_per_second <= 0) break;
      if (auto status = server.StartModifications(resource, events_per_second); !status.ok()) {
        std::cerr << "fakeapi_server: " << status.ToString() << "\n";
        return false;
      }
    }
    return true;
  };
  if (!events_on_signal && !start_modifications()) return 1;
  std::string resource;  // "pods,configmaps" for the log line.
  for (const std::string& name : resources) resource += (resource.empty() ? "" : ",") + name;
  // The port first, alone on its line, for whoever started us.
  std::cout << server.port() << std::endl;
  std::cerr << fmt::format(
      "fakeapi_server: {} on {} ({} {} of ~{} bytes, built in {:.2f} s; {} MODIFIED/s)\n", resource,
      server.base_url(), objects, resource, object_bytes, populate_seconds, events_per_second);

  int signal_number = 0;
  while (sigwait(&stop_signals, &signal_number) == 0 &&
         (signal_number == SIGUSR1 || signal_number == SIGUSR2)) {
    if (signal_number == SIGUSR2) {
      if (!start_modifications()) return 1;
      std::cerr << "fakeapi_server: SIGUSR2, MODIFIED events started\n";
      continue;
    }
    for (const std::string& expired : resources) {
      server.InjectFault(expired, informerd::fakeapi::Verb::kWatch,
                         informerd::fakeapi::Fault::Expired());
      server.EndWatches(expired);
    }
    std::cerr << "fakeapi_server: SIGUSR1, watches expired (next WATCH gets 410)\n";
  }
  std::cerr << fmt::format("fakeapi_server: signal {}, {} events generated, stopping\n",
                           signal_number, server.ModificationsGenerated());
  server.Stop();
  return 0;
}
