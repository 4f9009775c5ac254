// overload_bench: informerd under load from its clients, as separate processes: the informerd
// binary (//cmd/informerd) against fakeapi_server (the fake apiserver's load mode), driven by
// gRPC clients in this process. Prints figures; asserts nothing (except that the processes start
// and answer). Three measurements:
//
//  1. Ingest of one resource (pods) with no clients, then the same daemon while C clients (200)
//     hammer List/Get of it: each client alternates a Get of a random pod and a List of one
//     namespace's pods (objects / namespaces of them), one call in flight per client.
//  2. Ingest of 4 busy resources (pods, configmaps, deployments.apps, namespaces) versus the one
//     resource of (1): total events applied per second. When the daemon has --ingest-threads
//     (its --help says so), the 4 resources are measured with --ingest-threads=1 and with the
//     daemon's default, so the speed-up on the same mix is printed too.
//  3. The daemon's resident memory during a List flood: C clients list pods unfiltered, of which
//     S (50) are slow readers and the rest page through the whole list (limit 500, continue)
//     again and again. A slow reader is a raw HTTP/2 connection that sends one List (unfiltered,
//     limit = --max-list-response-objects, so its answer is as large as the byte bound allows)
//     and then reads nothing: the server may send 64 KiB (HTTP/2's initial window) and must hold
//     the rest. The configured List bounds are printed next to the figure.
//
// What "ingest" is: events applied to informerd's cache per second, the increase of
// informerd_events_applied_total (from its /metrics) over a fixed window after a warm-up,
// divided by the window. The fake generates MODIFIED events faster than informerd can apply
// them (a calibration first finds the unloaded rate C of one resource; later runs offer R = 1.25 C
// for one resource and R / 2 per resource for four: 2.5 C in all, above the 1.7x goal), so the
// figure is how fast ingest can go, not the offered rate. The fake starts its events only once
// informerd has synced (SIGUSR2, --events-on-signal), so none pile up before informerd watches.
// Each line also says whether informerd was behind: the gap between the fake's newest
// resourceVersion and informerd's (informerd_resource_version), at the window's start and end;
// a gap that grows means informerd was saturated (a figure from a window that was not is a lower
// bound). Events not yet written wait in the fake's memory (a few hundred bytes each), not in a
// socket; generating them costs the fake CPU all the same.
//
// All of it runs on the same machine: informerd, the fake (one I/O thread serving every watch
// and generating every event, about 3 us of CPU per event in an optimised build) and the
// clients (gRPC's threads in this process) compete for the same cores unless pinned
// (--cpus-informerd, --cpus-fakeapi, --cpus-bench: CPU lists as taskset takes them, e.g. 0-1,
// 2, 3). On 2 cores shared by all three, informerd cannot have both for ingest: a 4-resource
// figure there says what the machine allows, not what informerd could do. Each phase prints the
// CPU seconds each process used in its window (utime + stime from /proc/PID/stat, all threads),
// so that a figure can be read against what the others took.
// Memory is informerd's VmRSS and VmHWM from /proc/PID/status; VmHWM is reset (clear_refs 5)
// just before the flood, so the peak is the flood's.
//
// Clients: each of the C clients is its own gRPC channel with its own TCP connection (a local
// subchannel pool per channel), as each of a real deployment's clients has; their calls are
// asynchronous, on one completion queue polled by two threads of this process.
//
// Run (optimised; the full run takes about two minutes):
//   bazel run -c opt //bench:overload_bench -- [--clients 200] [--slow-readers 50]
//       [--objects 10000] [--object-bytes 4096] [--namespaces 40] [--window 10] [--warmup 3]
//       [--rate N] [--max-list-response-bytes N] [--max-list-response-objects N]
//       [--daemon-arg ARG]... [--cpus-informerd LIST --cpus-fakeapi LIST --cpus-bench LIST]
//       [--smoke]
// --rate: events per second the fake offers for (1), half of it per resource for (2), instead
// of calibrating. --daemon-arg: passed to every informerd started (repeatable), e.g.
// --daemon-arg=--audit-log=false. --smoke: small numbers and short windows (a few seconds
// altogether), for the test that checks every figure line is printed; flags given explicitly win
// over its numbers. --help lists the flags and their defaults.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/fakeapi_deployment.h"
#include "bench/flags.h"
#include "bench/process_support.h"
#include "fmt/format.h"
#include "informerd/v1/informerd.grpc.pb.h"

namespace informerd {
namespace {

using Clock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;
using bench::CpuSeconds;
using bench::Die;
using bench::HttpGet;
using bench::PortOf;
using bench::ResetPeak;
using bench::StatusBytes;

// The flags (bench/flags.h has those shared with fanout_bench).
struct Options : bench::FakeapiRunOptions {
  Options() {
    objects = 10000;
    namespaces = 40;
  }
  int clients = 200;
  int slow_readers = 50;
  double rate = 0;                       // 0: calibrate.
  std::size_t max_list_bytes = 4128768;  // informerd's defaults.
  std::size_t max_list_objects = 10000;
};

// ---- Processes, /proc and HTTP GETs: bench/process_support.h.

// ---- informerd's /metrics.

struct ResourceSample {
  double applied = 0;
  double resource_version = 0;
  double relists = 0;
  double objects = 0;
  double object_bytes = 0;
};

// Per resource (the `resource` label), the series the benchmark reads.
std::map<std::string, ResourceSample> ReadMetrics(int metrics_port) {
  const std::optional<std::string> text = HttpGet(metrics_port, "/metrics");
  if (!text) Die("no answer from informerd's /metrics");
  std::map<std::string, ResourceSample> samples;
  std::istringstream lines(*text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    const std::size_t brace = line.find('{');
    const std::size_t close = line.rfind('}');
    if (brace == std::string::npos || close == std::string::npos) continue;
    const std::string name = line.substr(0, brace);
    const std::string labels = line.substr(brace, close - brace);
    const std::size_t at = labels.find("resource=\"");
    if (at == std::string::npos) continue;
    const std::size_t end = labels.find('"', at + 10);
    const std::string resource = labels.substr(at + 10, end - at - 10);
    const double value = std::strtod(line.c_str() + close + 1, nullptr);
    ResourceSample& sample = samples[resource];
    if (name == "informerd_events_applied_total") sample.applied += value;
    if (name == "informerd_resource_version") sample.resource_version = value;
    if (name == "informerd_relists_total") sample.relists += value;
    if (name == "informerd_resource_objects") sample.objects = value;
    if (name == "informerd_resource_object_bytes") sample.object_bytes = value;
  }
  return samples;
}

// ---- The fake and the daemon.

struct ResourceInfo {
  std::string name;     // informerd's and the fake's key: "pods", "deployments.apps"
  std::string list;     // the fake's LIST path
  std::string metrics;  // the `resource` label in informerd's metrics
};

const std::vector<ResourceInfo>& AllResources() {
  static const std::vector<ResourceInfo> resources = {
      {"pods", "/api/v1/pods", "pods"},
      {"configmaps", "/api/v1/configmaps", "configmaps"},
      {"deployments.apps", "/apis/apps/v1/deployments", "deployments"},
      {"namespaces", "/api/v1/namespaces", "namespaces"},
  };
  return resources;
}

// The fake's newest resourceVersion (its revision is global): a LIST's metadata.resourceVersion.
double FakeRevision(int port) {
  const std::optional<std::string> list = HttpGet(port, "/api/v1/pods?limit=1");
  if (!list) return 0;
  const std::size_t at = list->find("\"resourceVersion\":\"");
  return at == std::string::npos ? 0 : std::strtod(list->c_str() + at + 19, nullptr);
}

// One fake apiserver and one informerd against it, for one set of resources.
class Deployment {
 public:
  Deployment(const Options& options, const std::vector<ResourceInfo>& resources, double rate,
             const std::vector<std::string>& extra_args, const std::string& tag)
      : resources_(resources),
        deployment_(options, Spec(options, resources, rate, extra_args, tag)) {}

  const std::string& grpc_address() const { return deployment_.grpc_address(); }
  pid_t daemon_pid() const { return deployment_.daemon_pid(); }
  pid_t fake_pid() const { return deployment_.fake_pid(); }
  int metrics_port() const { return deployment_.metrics_port(); }
  int fake_port() const { return deployment_.fake_port(); }
  const std::vector<ResourceInfo>& resources() const { return resources_; }

 private:
  static bench::FakeapiDeploymentSpec Spec(const Options& options,
                                           const std::vector<ResourceInfo>& resources, double rate,
                                           const std::vector<std::string>& extra_args,
                                           const std::string& tag) {
    bench::FakeapiDeploymentSpec spec;
    spec.resources.clear();
    for (const ResourceInfo& resource : resources) spec.resources.push_back(resource.name);
    spec.events_per_second = rate;
    spec.fake_args = {"--rv0-ignores-limit=false"};
    spec.daemon_args = {"--max-list-response-bytes", std::to_string(options.max_list_bytes),
                        "--max-list-response-objects", std::to_string(options.max_list_objects)};
    spec.daemon_args.insert(spec.daemon_args.end(), extra_args.begin(), extra_args.end());
    spec.tag = tag;
    // Synced: every resource's objects are cached.
    const auto objects = static_cast<double>(options.objects);
    spec.synced = [resources, objects](int metrics_port) {
      const auto samples = ReadMetrics(metrics_port);
      for (const ResourceInfo& resource : resources) {
        auto it = samples.find(resource.metrics);
        if (it == samples.end() || it->second.objects < objects) return false;
      }
      return true;
    };
    return spec;
  }

  std::vector<ResourceInfo> resources_;
  bench::FakeapiDeployment deployment_;
};

// ---- A measurement window.

struct Snapshot {
  Clock::time_point at;
  std::map<std::string, ResourceSample> metrics;
  double fake_revision = 0;
  double cpu_daemon = 0;
  double cpu_fake = 0;
  double cpu_bench = 0;
};

Snapshot Take(const Deployment& deployment) {
  Snapshot s;
  s.at = Clock::now();
  s.metrics = ReadMetrics(deployment.metrics_port());
  s.fake_revision = FakeRevision(deployment.fake_port());
  s.cpu_daemon = CpuSeconds(std::to_string(deployment.daemon_pid()));
  s.cpu_fake = CpuSeconds(std::to_string(deployment.fake_pid()));
  s.cpu_bench = CpuSeconds("self");
  return s;
}

struct Window {
  double seconds = 0;
  double total_rate = 0;                // events applied per second, every resource
  std::map<std::string, double> rates;  // per resource
  double gap_start = 0;                 // fake revision - informerd's, largest resource's
  double gap_end = 0;
  double relists = 0;
  double cpu_daemon = 0;
  double cpu_fake = 0;
  double cpu_bench = 0;
};

Window Measure(const Deployment& deployment, double seconds) {
  const Snapshot start = Take(deployment);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const Snapshot end = Take(deployment);
  Window w;
  w.seconds = Seconds(end.at - start.at).count();
  for (const ResourceInfo& resource : deployment.resources()) {
    const ResourceSample& a = start.metrics.at(resource.metrics);
    const ResourceSample& b = end.metrics.at(resource.metrics);
    const double rate = (b.applied - a.applied) / w.seconds;
    w.rates[resource.name] = rate;
    w.total_rate += rate;
    w.gap_start = std::max(w.gap_start, start.fake_revision - a.resource_version);
    w.gap_end = std::max(w.gap_end, end.fake_revision - b.resource_version);
    w.relists += b.relists - a.relists;
  }
  w.cpu_daemon = end.cpu_daemon - start.cpu_daemon;
  w.cpu_fake = end.cpu_fake - start.cpu_fake;
  w.cpu_bench = end.cpu_bench - start.cpu_bench;
  return w;
}

std::string Cpu(const Window& w) {
  return fmt::format("CPU s in {:.1f} s: informerd {:.2f}, fakeapi {:.2f}, bench {:.2f}", w.seconds,
                     w.cpu_daemon, w.cpu_fake, w.cpu_bench);
}

bool Saturated(const Window& w) { return w.gap_end > w.gap_start; }

std::string Behind(const Window& w) {
  return fmt::format("behind the fake by {:.0f} -> {:.0f} revisions ({}){}{}", w.gap_start,
                     w.gap_end, Saturated(w) ? "saturated" : "NOT saturated: it kept up",
                     w.relists > 0 ? fmt::format("; {:.0f} RELISTS in the window", w.relists) : "",
                     w.cpu_fake >= 0.9 * w.seconds
                         ? "; the fake used a whole core: it may have been the limit"
                         : "");
}

void Print(const std::string& tag, const std::string& text) {
  std::printf("[%s] %s\n", tag.c_str(), text.c_str());
  std::fflush(stdout);
}

// ---- gRPC clients.

struct CallCounts {
  std::atomic<uint64_t> gets{0};
  std::atomic<uint64_t> lists{0};
  std::atomic<uint64_t> pages{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> errors{0};
  std::mutex mutex;
  std::map<std::string, uint64_t> error_codes;  // by code and message start
};

enum class Mode { kListGet, kListFlood };

// C clients, each its own channel and connection, one call in flight each, until Stop.
class ClientPool {
 public:
  ClientPool(const std::string& address, int clients, Mode mode, const Options& options)
      : mode_(mode), options_(options) {
    for (int i = 0; i < clients; ++i) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // Its own connection.
      args.SetInt("informerd.bench.client", i);
      args.SetMaxReceiveMessageSize(64 << 20);
      auto client = std::make_unique<Client>();
      client->index = i;
      client->random.seed(static_cast<unsigned>(i + 1));
      client->stub = v1::Informer::NewStub(
          grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
      clients_.push_back(std::move(client));
    }
    for (auto& client : clients_) Next(*client);
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { Poll(); });
  }
  ~ClientPool() { Stop(); }

  void Stop() {
    if (stopping_.exchange(true)) return;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      idle_.wait(lock, [&] { return in_flight_ == 0; });
    }
    queue_.Shutdown();
    for (std::thread& thread : threads_) thread.join();
  }

  CallCounts& counts() { return counts_; }

 private:
  struct Client {
    int index = 0;
    std::minstd_rand random;
    std::unique_ptr<v1::Informer::Stub> stub;
    std::unique_ptr<grpc::ClientContext> context;
    bool get = false;
    v1::GetResponse get_response;
    v1::ListResponse list_response;
    std::unique_ptr<grpc::ClientAsyncResponseReader<v1::GetResponse>> get_reader;
    std::unique_ptr<grpc::ClientAsyncResponseReader<v1::ListResponse>> list_reader;
    grpc::Status status;
    std::string continue_token;
  };

  void Next(Client& client) {
    if (stopping_) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++in_flight_;
    }
    client.context = std::make_unique<grpc::ClientContext>();
    client.context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    if (mode_ == Mode::kListGet) {
      client.get = !client.get;  // Alternately.
      const std::size_t namespaces = std::max<std::size_t>(1, options_.namespaces);
      if (client.get) {
        const std::size_t index = client.random() % options_.objects;
        v1::GetRequest request;
        request.set_resource("pods");
        request.set_namespace_(fmt::format("load-{}", index % namespaces));
        request.set_name(fmt::format("pod-{:06}", index));
        client.get_reader = client.stub->AsyncGet(client.context.get(), request, &queue_);
        client.get_reader->Finish(&client.get_response, &client.status, &client);
      } else {
        v1::ListRequest request;
        request.set_resource("pods");
        request.set_namespace_(fmt::format("load-{}", client.random() % namespaces));
        client.list_reader = client.stub->AsyncList(client.context.get(), request, &queue_);
        client.list_reader->Finish(&client.list_response, &client.status, &client);
      }
    } else {
      // Unfiltered, in pages of 500 (informerctl's and kubectl's default), again and again.
      client.get = false;
      v1::ListRequest request;
      request.set_resource("pods");
      request.set_limit(500);
      request.set_continue_(client.continue_token);
      client.list_reader = client.stub->AsyncList(client.context.get(), request, &queue_);
      client.list_reader->Finish(&client.list_response, &client.status, &client);
    }
  }

  void Poll() {
    void* tag = nullptr;
    bool ok = false;
    while (queue_.Next(&tag, &ok)) {
      Client& client = *static_cast<Client*>(tag);
      if (client.status.ok()) {
        if (client.get) {
          ++counts_.gets;
          counts_.bytes += client.get_response.object().size();
        } else {
          ++counts_.pages;
          uint64_t bytes = 0;
          for (const std::string& item : client.list_response.items()) bytes += item.size();
          counts_.bytes += bytes;
          client.continue_token = client.list_response.continue_();
          if (client.continue_token.empty()) ++counts_.lists;
        }
      } else {
        ++counts_.errors;
        client.continue_token.clear();
        std::lock_guard<std::mutex> lock(counts_.mutex);
        ++counts_.error_codes[fmt::format("{} {}", static_cast<int>(client.status.error_code()),
                                          client.status.error_message().substr(0, 60))];
      }
      client.get_response.Clear();
      client.list_response.Clear();
      Next(client);
      std::lock_guard<std::mutex> lock(mutex_);
      if (--in_flight_ == 0) idle_.notify_all();
    }
  }

  const Mode mode_;
  const Options& options_;
  grpc::CompletionQueue queue_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::condition_variable idle_;
  int in_flight_ = 0;
  CallCounts counts_;
};

// " [code message x count]..." for the errors the clients got.
std::string ErrorCodes(CallCounts& counts) {
  std::string text;
  std::lock_guard<std::mutex> lock(counts.mutex);
  for (const auto& [code, n] : counts.error_codes) text += fmt::format(" [{} x{}]", code, n);
  return text;
}

std::string Calls(CallCounts& counts, double seconds) {
  return fmt::format(
      "clients' calls: {:.0f} Get/s, {:.0f} List pages/s ({:.0f} whole lists/s), {:.1f} MB/s of "
      "objects, {} errors{}",
      static_cast<double>(counts.gets) / seconds, static_cast<double>(counts.pages) / seconds,
      static_cast<double>(counts.lists) / seconds,
      static_cast<double>(counts.bytes) / seconds / 1e6, counts.errors.load(), ErrorCodes(counts));
}

// A slow reader: HTTP/2 over a raw socket, one List call, then nothing read (a gRPC client would
// read the answer). Returns the socket; closing it ends the call.
void AppendFrame(std::string& out, uint8_t type, uint8_t flags, uint32_t stream,
                 const std::string& payload) {
  const uint32_t length = static_cast<uint32_t>(payload.size());
  out.push_back(static_cast<char>(length >> 16));
  out.push_back(static_cast<char>(length >> 8));
  out.push_back(static_cast<char>(length));
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(flags));
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(stream >> shift));
  out += payload;
}

void AppendHeader(std::string& out, const std::string& name, const std::string& value) {
  out.push_back('\0');  // Literal without indexing, new name (RFC 7541, 6.2.2); short strings.
  out.push_back(static_cast<char>(name.size()));
  out += name;
  out.push_back(static_cast<char>(value.size()));
  out += value;
}

int SlowReader(const std::string& address, std::size_t limit) {
  const int port = PortOf(address);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Die("socket failed");
  // A small receive buffer, so that the kernel holds little of the answer for us either.
  const int buffer = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
  sockaddr_in peer{};
  peer.sin_family = AF_INET;
  peer.sin_port = htons(static_cast<uint16_t>(port));
  peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&peer), sizeof peer) != 0) {
    Die("slow reader: cannot connect to " + address);
  }
  std::string bytes = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  AppendFrame(bytes, 0x4, 0, 0, "");    // SETTINGS: the defaults (a 64 KiB window)
  AppendFrame(bytes, 0x4, 0x1, 0, "");  // SETTINGS ACK of the server's
  std::string headers;
  AppendHeader(headers, ":method", "POST");
  AppendHeader(headers, ":scheme", "http");
  AppendHeader(headers, ":path", "/informerd.v1.Informer/List");
  AppendHeader(headers, ":authority", address);
  AppendHeader(headers, "content-type", "application/grpc");
  AppendHeader(headers, "te", "trailers");
  AppendFrame(bytes, 0x1, 0x4, 1, headers);  // HEADERS, END_HEADERS
  v1::ListRequest request;
  request.set_resource("pods");
  request.set_limit(static_cast<int64_t>(limit));
  const std::string body = request.SerializeAsString();
  std::string message(1, '\0');  // not compressed
  const uint32_t length = static_cast<uint32_t>(body.size());
  for (int shift = 24; shift >= 0; shift -= 8)
    message.push_back(static_cast<char>(length >> shift));
  message += body;
  AppendFrame(bytes, 0x0, 0x1, 1, message);  // DATA, END_STREAM
  if (write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
    Die("slow reader: write failed");
  }
  return fd;
}

// ---- The phases.

// The informerd flag that sets ingest threads, if this informerd has it.
bool HasIngestThreads(const Options& options) {
  const std::string command = options.informerd + " --help 2>&1";
  FILE* help = popen(command.c_str(), "r");
  if (help == nullptr) return false;
  std::string text;
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, help)) > 0) text.append(buffer, n);
  pclose(help);
  return text.find("--ingest-threads") != std::string::npos;
}

// The unloaded ingest rate of one resource, roughly: offered rates doubling from 5,000/s until
// informerd falls behind (applies less than 85% of what is offered, the gap growing).
double Calibrate(const Options& options) {
  double applied = 0;
  for (double offered = 5000; offered <= 320000; offered *= 2) {
    Deployment deployment(options, {AllResources()[0]}, offered, {}, "calibrate");
    std::this_thread::sleep_for(Seconds(1));
    const Window w = Measure(deployment, 2);
    Print("calibration", fmt::format("pods alone, offered {:.0f} events/s: applied {:.0f}/s; {}",
                                     offered, w.total_rate, Behind(w)));
    applied = w.total_rate;
    if (Saturated(w) && w.total_rate < 0.85 * offered) break;
  }
  return applied;
}

// (1): returns the unloaded rate.
double IngestUnderListGet(const Options& options, double rate) {
  Deployment deployment(options, {AllResources()[0]}, rate, {}, "listget");
  std::this_thread::sleep_for(Seconds(options.warmup));
  const Window idle = Measure(deployment, options.window);
  Print("ingest-1-resource-no-clients",
        fmt::format("{:.0f} events/s applied (pods, {} objects of ~{} B, offered {:.0f}/s); {}; {}",
                    idle.total_rate, options.objects, options.object_bytes, rate, Behind(idle),
                    Cpu(idle)));

  ClientPool pool(deployment.grpc_address(), options.clients, Mode::kListGet, options);
  std::this_thread::sleep_for(Seconds(options.warmup));
  const uint64_t gets = pool.counts().gets;
  const uint64_t pages = pool.counts().pages;
  const uint64_t bytes = pool.counts().bytes;
  const Window loaded = Measure(deployment, options.window);
  const double calls_seconds = loaded.seconds;
  const double get_rate = static_cast<double>(pool.counts().gets - gets) / calls_seconds;
  const double list_rate = static_cast<double>(pool.counts().pages - pages) / calls_seconds;
  const double mb_rate = static_cast<double>(pool.counts().bytes - bytes) / calls_seconds / 1e6;
  pool.Stop();
  Print("ingest-1-resource-with-clients",
        fmt::format("{:.0f} events/s applied while {} clients (a channel and connection each) "
                    "alternate Get of a random pod and List of one namespace's pods; {}; {}",
                    loaded.total_rate, options.clients, Behind(loaded), Cpu(loaded)));
  Print("clients-list-get",
        fmt::format("{:.0f} Get/s, {:.0f} List/s, {:.1f} MB/s of objects received; {} errors in "
                    "all{}",
                    get_rate, list_rate, mb_rate, pool.counts().errors.load(),
                    ErrorCodes(pool.counts())));
  Print("ingest-ratio-with-clients",
        fmt::format("{:.1f}% of the unloaded rate (goal >= 90%)",
                    idle.total_rate > 0 ? 100 * loaded.total_rate / idle.total_rate : 0));
  return idle.total_rate;
}

// (2).
void IngestOfFourResources(const Options& options, double rate, double one_resource_rate) {
  const bool threads_flag = HasIngestThreads(options);
  std::vector<std::pair<std::string, std::vector<std::string>>> settings;
  if (threads_flag) settings.push_back({"--ingest-threads=1", {"--ingest-threads=1"}});
  settings.push_back(
      {threads_flag ? "default --ingest-threads (CPUs)" : "this informerd has no --ingest-threads",
       {}});
  std::optional<double> one_thread;
  for (const auto& [label, args] : settings) {
    Deployment deployment(options, AllResources(), rate, args,
                          args.empty() ? "four" : "four-one-thread");
    std::this_thread::sleep_for(Seconds(options.warmup));
    const Window w = Measure(deployment, options.window);
    std::string each;
    for (const auto& [name, r] : w.rates) each += fmt::format(" {} {:.0f}", name, r);
    const bool is_one_thread = !args.empty();
    Print(is_one_thread ? "ingest-4-resources-one-thread" : "ingest-4-resources",
          fmt::format("{:.0f} events/s applied in total ({}; each offered {:.0f}/s; per "
                      "resource:{}); {}; {}",
                      w.total_rate, label, rate, each, Behind(w), Cpu(w)));
    if (is_one_thread) {
      one_thread = w.total_rate;
    } else {
      Print("ingest-ratio-4-to-1",
            fmt::format("{:.2f}x the 1-resource rate ({:.0f}/s) on {} CPUs (goal >= 1.7x on 2 "
                        "cores){}",
                        one_resource_rate > 0 ? w.total_rate / one_resource_rate : 0,
                        one_resource_rate, std::thread::hardware_concurrency(),
                        one_thread ? fmt::format("; {:.2f}x the same 4 resources on one ingest "
                                                 "thread",
                                                 *one_thread > 0 ? w.total_rate / *one_thread : 0)
                                   : ""));
    }
  }
  Print("objects-by-resource",
        "the fake's objects are padded to --object-bytes except namespaces (about 2 KB at most), "
        "so a namespace event is cheaper than the others'");
}

// (3).
void ListFlood(const Options& options) {
  // A modest event rate: the figure is about the answers, not ingest.
  Deployment deployment(options, {AllResources()[0]}, 100, {}, "flood");
  std::this_thread::sleep_for(Seconds(options.warmup / 2));
  const pid_t pid = deployment.daemon_pid();
  const std::size_t before = StatusBytes(pid, "VmRSS");
  const bool peak_reset = ResetPeak(pid);
  const Snapshot start = Take(deployment);
  std::vector<int> slow;
  const int slow_readers = std::min(options.slow_readers, options.clients);
  for (int i = 0; i < slow_readers; ++i) {
    slow.push_back(SlowReader(deployment.grpc_address(), options.max_list_objects));
  }
  ClientPool pool(deployment.grpc_address(), options.clients - slow_readers, Mode::kListFlood,
                  options);
  // Sample the resident set through the flood; "steady" is the mean over its second half.
  const auto flood_start = Clock::now();
  const double flood_seconds = options.warmup + options.window;
  std::vector<std::size_t> samples;
  std::size_t sampled_peak = 0;
  while (Seconds(Clock::now() - flood_start).count() < flood_seconds) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const std::size_t rss = StatusBytes(pid, "VmRSS");
    sampled_peak = std::max(sampled_peak, rss);
    samples.push_back(rss);
  }
  const Snapshot end = Take(deployment);
  const std::size_t peak = peak_reset ? StatusBytes(pid, "VmHWM") : sampled_peak;
  double steady = 0;
  const std::size_t half = samples.size() / 2;
  for (std::size_t i = half; i < samples.size(); ++i) steady += static_cast<double>(samples[i]);
  steady /= static_cast<double>(std::max<std::size_t>(1, samples.size() - half));
  const double seconds = Seconds(end.at - start.at).count();
  const std::string calls = Calls(pool.counts(), seconds);
  pool.Stop();
  for (const int fd : slow) close(fd);

  const auto& metrics = end.metrics.at("pods");
  Print("list-flood-rss",
        fmt::format("informerd resident {:.1f} MB steady, {:.1f} MB peak ({}) during the flood; "
                    "{:.1f} MB before it, with {:.0f} pods cached ({:.1f} MB of JSON)",
                    steady / 1e6, peak / 1e6, peak_reset ? "VmHWM" : "sampled every 100 ms",
                    before / 1e6, metrics.objects, metrics.object_bytes / 1e6));
  Print("list-flood-clients",
        fmt::format("{} clients: {} paging through all pods (limit 500) again and again, {} "
                    "slow readers each holding one List (limit {}) unread; {}",
                    options.clients, options.clients - slow_readers, slow_readers,
                    options.max_list_objects, calls));
  Print("list-flood-limits",
        fmt::format("--max-list-response-bytes={} --max-list-response-objects={} (answers in "
                    "flight at once: at most {}, so at most {:.0f} MB if each were a copy; "
                    "answers point at the cached objects instead)",
                    options.max_list_bytes, options.max_list_objects, options.clients,
                    static_cast<double>(options.clients) * options.max_list_bytes / 1e6));
  Print("list-flood-cpu",
        fmt::format("CPU s in {:.1f} s: informerd {:.2f}, fakeapi {:.2f}, bench {:.2f}", seconds,
                    end.cpu_daemon - start.cpu_daemon, end.cpu_fake - start.cpu_fake,
                    end.cpu_bench - start.cpu_bench));
}

}  // namespace
}  // namespace informerd

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  using informerd::Die;
  using informerd::bench::SmokeDefault;
  informerd::Options options;
  // clang-format off
  po::options_description flags = informerd::bench::FlagsDescription(
      "usage: overload_bench [flags]\n"
      "informerd's ingest under clients' List/Get load, with 4 busy resources, and its memory in "
      "a List flood; flags");
  informerd::bench::AddFakeapiRunFlags(flags, options);
  flags.add_options()
      ("clients", po::value(&options.clients)->default_value(options.clients)->value_name("N"),
       "gRPC clients hammering List/Get, and listing in the flood")
      ("slow-readers",
       po::value(&options.slow_readers)->default_value(options.slow_readers)->value_name("N"),
       "of the flood's clients, those that send one List and read nothing")
      ("rate", po::value(&options.rate)->default_value(options.rate)->value_name("N"),
       "events per second the fake offers for one resource, half of it per resource for four; "
       "0: calibrate")
      ("max-list-response-bytes",
       po::value(&options.max_list_bytes)->default_value(options.max_list_bytes)->value_name("N"),
       "informerd's --max-list-response-bytes")
      ("max-list-response-objects",
       po::value(&options.max_list_objects)->default_value(options.max_list_objects)
           ->value_name("N"),
       "informerd's --max-list-response-objects, and the slow readers' List limit");
  // clang-format on
  const po::variables_map given = informerd::bench::ParseFlags(argc, argv, flags, options.smoke);
  if (options.smoke) {
    SmokeDefault(given, "clients", options.clients, 20);
    SmokeDefault(given, "slow-readers", options.slow_readers, 4);
    SmokeDefault(given, "objects", options.objects, 400);
    SmokeDefault(given, "namespaces", options.namespaces, 8);
    SmokeDefault(given, "window", options.window, 1);
    SmokeDefault(given, "warmup", options.warmup, 0.5);
    SmokeDefault(given, "rate", options.rate, 3000);
  }
  if (options.clients < 1 || options.objects < 1 || options.window <= 0) Die("bad numbers");
  informerd::bench::PrepareFakeapiRun(argv[0], "overload_bench", options);
  // A client whose connection the daemon closes must not kill the benchmark.
  signal(SIGPIPE, SIG_IGN);

  std::printf(
      "overload_bench: informerd and fakeapi_server as separate processes, gRPC clients in this "
      "one, on %u CPUs%s%s; logs in %s\n",
      std::thread::hardware_concurrency(), options.smoke ? " (--smoke: small numbers)" : "",
      informerd::bench::PinningText(options).c_str(), options.temp_dir.c_str());
  std::fflush(stdout);
  double rate = options.rate;
  if (rate <= 0) {
    const double calibrated = informerd::Calibrate(options);
    if (calibrated <= 0) Die("calibration applied nothing");
    rate = 1.25 * calibrated;
  }
  const double one = informerd::IngestUnderListGet(options, rate);
  informerd::IngestOfFourResources(options, rate * 0.5, one);
  informerd::ListFlood(options);
  return 0;
}
