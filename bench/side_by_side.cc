// side_by_side: informerd and client-go's informer (the peer, bench/peer's informerd-peer) on the
// same real kube-apiserver (test/cluster's etcd + kube-apiserver 1.20), the same objects, in one
// run. Prints one line per figure,
//   [name] informerd X | client-go Y | ratio Z
// (Z = informerd's figure ÷ the other column's; for Get/List the other column is the apiserver
// answering the same requests over REST), then a Markdown table of the same figures.
//
// What it does, in order:
//   0. Starts a TestCluster and creates P pods (--pods, default 3,000) of about --pod-bytes
//      (4,096) as the apiserver returns them, spread over --namespaces namespaces: labels, two
//      containers with env, and an annotation padded to the size (measured on a probe pod first).
//      They are POSTed over HTTPS by 4 threads, each with its own keep-alive connection; the
//      time it took is printed. The JSON size of an object is measured from a LIST of all pods
//      (the body's bytes ÷ its items).
//   1. Initial sync, objects/s by wall time and per CPU-second. informerd: from spawning the
//      process to informerd_resource_synced = 1 on its /metrics (polled every 10 ms; process
//      start and discovery included), CPU from /proc/PID/stat at that moment. The peer prints
//      its own (from the start of its informers' Run, process start excluded).
//   2. Resident memory per cached object: (VmRSS synced - VmRSS of the same program caching an
//      empty namespace) ÷ P, and that ÷ the JSON size. informerd strips managedFields (its
//      default); the peer's typed informer keeps them, so it is shown with
//      --strip-managed-fields and in dynamic (unstructured) mode too.
//   3. N consumers of all pods (--consumers, default 1,10,100). client-go: ONE peer process
//      running N informers (--informers N), each with its own transport and watch. informerd:
//      a fresh informerd plus N gRPC Subscribe streams from this process, each on its own
//      channel and connection, reading the snapshot and counting events (they keep nothing);
//      one event per message, or with --batch N up to N (SubscribeRequest.max_events_per_message).
//      Measured once all N have synced and 1 s more: the apiserver's watches on pods (its
//      /metrics: apiserver_registered_watchers for Pod, and apiserver_longrunning_gauge for
//      WATCH on pods), the apiserver's CPU seconds from start to then, and the consumer side's
//      resident memory and CPU: the peer process's; informerd's plus this process's growth (RSS
//      after malloc_trim, CPU) while the subscribers ran.
//   5. Get and List latency p50/p99 with --callers (50) concurrent callers, each on its own
//      connection, for --window seconds each: informerd's gRPC Get of a random pod, List of one
//      namespace, List of all pods (unpaged; informerd runs with --max-list-response-bytes
//      raised to 64 MiB for it), against the apiserver's REST GET of the same pod / namespace /
//      all pods with resourceVersion=0 (served from the apiserver's watch cache, as informerd
//      answers from its cache; a read without it goes to etcd).
//   6. Relist peak ÷ steady resident memory: with a fresh informerd and a typed peer synced, a
//      configmap write moves etcd's revision past their pods watches, etcd is compacted and the
//      apiserver restarted: its new watch cache starts past their resourceVersion, so both
//      watches fail with 410 and relist. Peak is VmHWM, reset (clear_refs) just before. If
//      informerd does not relist within 60 s the line says so instead of a figure.
// Fan-out latency is fanout_bench's, not here.
//
// Everything shares the machine: the apiserver, etcd, informerd, the peer and this process. The
// figures are for comparing the two columns of one run, not absolute.
//
// Run (optimised; see bench/run_side_by_side.sh, which builds and runs it):
//   INFORMERD_KUBE_APISERVER=... INFORMERD_PEER=... bazel run -c opt //bench:side_by_side --
//       [--pods 3000] [--namespaces 4] [--pod-bytes 4096]
//       [--consumers 1,10,100] [--batch 1] [--callers 50] [--window 5] [--peer PATH] [--no-peer]
//       [--informerd PATH] [--smoke]
// --smoke: small numbers (under a minute), for the smoke test; flags given explicitly win over
// its numbers. --help lists the flags and their defaults.
// The peer: --peer, else $INFORMERD_PEER, else what `bench/peer/build_peer.sh --check` prints
// (from the runfiles, or the workspace under `bazel run`). Without one the program says how to
// build it and exits 3, unless --no-peer (informerd's column only).
#include <grpcpp/grpcpp.h>
#include <malloc.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "bench/flags.h"
#include "bench/process_support.h"
#include "fmt/format.h"
#include "informerd/v1/informerd.grpc.pb.h"
#include "test/cluster/cluster_fixture.h"

namespace informerd {
namespace {

using Clock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

// Processes, runfiles, /proc and HTTP GETs: bench/process_support.h. Die stops the processes
// started (informerd, peers) too; the cluster's own watchdog stops the cluster.
using bench::ConnectLoopback;
using bench::CpuSeconds;
using bench::Die;
using bench::Exists;
using bench::FindRunfile;
using bench::HttpGet;
using bench::LoggedAddress;
using bench::PortOf;
using bench::Process;
using bench::ReadFile;
using bench::ResetPeak;
using bench::StatusBytes;
using bench::WriteFile;

struct Options {
  bool smoke = false;
  bool no_peer = false;
  std::size_t pods = 3000;
  std::size_t namespaces = 4;
  std::size_t pod_bytes = 4096;
  std::vector<int> consumers = {1, 10, 100};
  int callers = 50;
  int batch = 1;  // the subscribers' max_events_per_message
  double window = 5;
  std::string peer;
  std::string informerd;
  std::string temp_dir;
};

std::string Tail(const std::string& path, std::size_t bytes = 2000) {
  const std::string text = ReadFile(path);
  return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}

// The sum of a Prometheus text exposition's samples named `name` whose labels contain every one
// of `labels` (each `key="value"`).
double MetricSum(const std::string& text, const std::string& name,
                 const std::vector<std::string>& labels = {}) {
  double sum = 0;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#' || line.rfind(name, 0) != 0) continue;
    const char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != '{' && next != ' ') continue;
    std::size_t value_at = name.size();
    if (next == '{') {
      const std::size_t close = line.find('}');
      if (close == std::string::npos) continue;
      const std::string label_text = line.substr(name.size(), close - name.size());
      bool all = true;
      for (const std::string& label : labels) {
        all = all && label_text.find(label) != std::string::npos;
      }
      if (!all) continue;
      value_at = close + 1;
    } else if (!labels.empty()) {
      continue;
    }
    sum += std::strtod(line.c_str() + value_at, nullptr);
  }
  return sum;
}

// ---- HTTPS to the apiserver: blocking HTTP/1.1 with keep-alive, one connection per object.

struct HttpResponse {
  int status = 0;
  std::string body;
};

class HttpsClient {
 public:
  // `ctx` (verifying the apiserver against its CA) outlives the client.
  HttpsClient(SSL_CTX* ctx, int port, std::string token)
      : ctx_(ctx), port_(port), token_(std::move(token)) {}
  ~HttpsClient() { Close(); }
  HttpsClient(const HttpsClient&) = delete;
  HttpsClient& operator=(const HttpsClient&) = delete;

  // Sends a request (reconnecting once if the kept-alive connection was closed); nullopt if no
  // answer came.
  std::optional<HttpResponse> Request(const std::string& method, const std::string& target,
                                      const std::string& body = "") {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (ssl_ == nullptr && !Connect()) continue;
      std::string request = fmt::format(
          "{} {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\n"
          "Accept: application/json\r\nUser-Agent: side_by_side\r\n",
          method, target, port_, token_);
      if (!body.empty()) {
        request +=
            fmt::format("Content-Type: application/json\r\nContent-Length: {}\r\n", body.size());
      }
      request += "\r\n";
      request += body;
      if (!WriteAll(request)) {
        Close();
        continue;
      }
      std::optional<HttpResponse> response = ReadResponse();
      if (!response) {
        Close();
        continue;
      }
      return response;
    }
    return std::nullopt;
  }

 private:
  bool Connect() {
    fd_ = ConnectLoopback(port_, /*read_timeout_seconds=*/60);
    if (fd_ < 0) return false;
    ssl_ = SSL_new(ctx_);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), "127.0.0.1");
    SSL_set_fd(ssl_, fd_);
    if (SSL_connect(ssl_) != 1) {
      Close();
      return false;
    }
    buffer_.clear();
    return true;
  }
  void Close() {
    if (ssl_ != nullptr) {
      SSL_free(ssl_);
      ssl_ = nullptr;
    }
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  bool WriteAll(const std::string& data) {
    std::size_t at = 0;
    while (at < data.size()) {
      const int n = SSL_write(ssl_, data.data() + at, static_cast<int>(data.size() - at));
      if (n <= 0) return false;
      at += static_cast<std::size_t>(n);
    }
    return true;
  }
  bool Fill() {
    char chunk[65536];
    const int n = SSL_read(ssl_, chunk, sizeof chunk);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  bool Need(std::size_t bytes) {
    while (buffer_.size() < bytes) {
      if (!Fill()) return false;
    }
    return true;
  }
  std::optional<std::size_t> FindLine() {
    std::size_t end;
    while ((end = buffer_.find("\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    return end;
  }
  std::optional<HttpResponse> ReadResponse() {
    std::size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    std::string head = buffer_.substr(0, end);
    buffer_.erase(0, end + 4);
    std::transform(head.begin(), head.end(), head.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    HttpResponse response;
    if (head.size() < 12) return std::nullopt;
    response.status = std::atoi(head.c_str() + 9);
    const bool chunked = head.find("transfer-encoding: chunked") != std::string::npos;
    const bool close_after = head.find("connection: close") != std::string::npos;
    const std::size_t length_at = head.find("content-length:");
    if (chunked) {
      for (;;) {
        const std::optional<std::size_t> line = FindLine();
        if (!line) return std::nullopt;
        const std::size_t size = std::strtoul(buffer_.c_str(), nullptr, 16);
        buffer_.erase(0, *line + 2);
        if (size == 0) {
          const std::optional<std::size_t> last = FindLine();  // No trailers expected.
          if (!last) return std::nullopt;
          buffer_.erase(0, *last + 2);
          break;
        }
        if (!Need(size + 2)) return std::nullopt;
        response.body.append(buffer_, 0, size);
        buffer_.erase(0, size + 2);
      }
    } else if (length_at != std::string::npos) {
      const std::size_t size = std::strtoul(head.c_str() + length_at + 15, nullptr, 10);
      if (!Need(size)) return std::nullopt;
      response.body = buffer_.substr(0, size);
      buffer_.erase(0, size);
    } else {
      while (Fill()) {
      }
      response.body = std::move(buffer_);
      buffer_.clear();
      Close();
    }
    if (close_after) Close();
    return response;
  }

  SSL_CTX* ctx_;
  int port_;
  std::string token_;
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  std::string buffer_;
};

// ---- Output.

struct Row {
  std::string figure;
  std::string informerd;
  std::string other;
  std::string ratio;
};
std::vector<Row> rows;
bool print_peer_column = true;

void Print(const std::string& tag, const std::string& text) {
  std::printf("[%s] %s\n", tag.c_str(), text.c_str());
  std::fflush(stdout);
}

// A figure line: "[tag] informerd X | client-go Y | ratio Z" (`other_name` says what the second
// column is: client-go or the apiserver); without the peer (and other_name client-go), only
// informerd's column. `ratio` is informerd ÷ other; nullopt prints "-".
void Figure(const std::string& tag, const std::string& description, const std::string& informerd,
            const std::string& other_name, const std::string& other, std::optional<double> ratio) {
  const bool other_column = print_peer_column || other_name != "client-go";
  const std::string ratio_text =
      ratio && std::isfinite(*ratio) ? fmt::format("{:.2f}x", *ratio) : "-";
  if (other_column) {
    Print(tag,
          fmt::format("informerd {} | {} {} | ratio {}", informerd, other_name, other, ratio_text));
  } else {
    Print(tag, fmt::format("informerd {}", informerd));
  }
  rows.push_back({description, informerd, other_column ? other_name + " " + other : "(not run)",
                  other_column ? ratio_text : "-"});
}

std::optional<double> Ratio(double a, double b) {
  if (b == 0) return std::nullopt;
  return a / b;
}

std::string Mb(double bytes) { return fmt::format("{:.1f} MB", bytes / 1e6); }

// ---- The cluster and its objects.

struct Cluster {
  std::unique_ptr<test::TestCluster> cluster;
  int port = 0;
  std::string token;
  SSL_CTX* ssl = nullptr;
  std::string kubeconfig;

  std::unique_ptr<HttpsClient> Client() const {
    return std::make_unique<HttpsClient>(ssl, port, token);
  }
  // The apiserver's /metrics.
  std::string Metrics() const {
    std::optional<HttpResponse> response = Client()->Request("GET", "/metrics");
    if (!response || response->status != 200) Die("cannot read the apiserver's /metrics");
    return response->body;
  }
  // Watches of pods the apiserver has open: apiserver_registered_watchers for Pod and
  // apiserver_longrunning_gauge for WATCH on pods.
  std::pair<double, double> PodWatches() const {
    const std::string text = Metrics();
    return {
        MetricSum(text, "apiserver_registered_watchers", {"kind=\"Pod\""}),
        MetricSum(text, "apiserver_longrunning_gauge", {"resource=\"pods\"", "verb=\"WATCH\""})};
  }
  double ApiserverCpu() const { return CpuSeconds(cluster->apiserver_pid()); }
};

std::string Namespace(std::size_t index) { return fmt::format("bench-{}", index); }
const char* const kEmptyNamespace = "bench-empty";

std::string PodName(std::size_t index) { return fmt::format("pod-{:06}", index); }

// A pod as this benchmark creates it: labels, two containers with env and resources, and an
// annotation of `padding` bytes.
std::string PodJson(const std::string& ns, const std::string& name, std::size_t index,
                    std::size_t padding) {
  std::string env;
  for (int i = 0; i < 6; ++i) {
    env += fmt::format("{}{{\"name\":\"SETTING_{}\",\"value\":\"value-{}-{}\"}}", i ? "," : "", i,
                       index, i);
  }
  const auto container = [&](const std::string& cname, int port) {
    return fmt::format(
        "{{\"name\":\"{}\",\"image\":\"registry.example.com/bench/{}:1.{}\","
        "\"args\":[\"--port={}\",\"--verbose\"],\"env\":[{}],"
        "\"ports\":[{{\"containerPort\":{}}}],"
        "\"resources\":{{\"requests\":{{\"cpu\":\"100m\",\"memory\":\"128Mi\"}},"
        "\"limits\":{{\"memory\":\"256Mi\"}}}}}}",
        cname, cname, index % 7, port, env, port);
  };
  return fmt::format(
      "{{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{{\"name\":\"{}\",\"namespace\":"
      "\"{}\",\"labels\":{{\"app\":\"bench\",\"tier\":\"backend\",\"shard\":\"{}\","
      "\"release\":\"r{}\",\"team\":\"perf\"}},\"annotations\":{{\"informerd.io/padding\":"
      "\"{}\"}}}},\"spec\":{{\"containers\":[{},{}]}}}}",
      name, ns, index % 16, index % 3, std::string(padding, 'x'), container("main", 8080),
      container("sidecar", 9090));
}

void CreateNamespace(HttpsClient& client, const std::string& name) {
  const std::optional<HttpResponse> response = client.Request(
      "POST", "/api/v1/namespaces",
      fmt::format(
          "{{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{{\"name\":\"{}\"}}}}",
          name));
  if (!response || (response->status != 201 && response->status != 409)) {
    Die(fmt::format("cannot create namespace {}: {}", name,
                    response ? response->body : "no answer"));
  }
}

// Creates the pods; returns the JSON bytes of one as a LIST returns it.
double CreatePods(const Cluster& cluster, const Options& options) {
  auto client = cluster.Client();
  for (std::size_t i = 0; i < options.namespaces; ++i) CreateNamespace(*client, Namespace(i));
  CreateNamespace(*client, kEmptyNamespace);
  // A probe pod without padding says how much padding makes --pod-bytes.
  const std::optional<HttpResponse> probe =
      client->Request("POST", fmt::format("/api/v1/namespaces/{}/pods", kEmptyNamespace),
                      PodJson(kEmptyNamespace, "probe", 0, 0));
  if (!probe || probe->status != 201) {
    Die("cannot create a pod: " + (probe ? probe->body : std::string("no answer")));
  }
  const std::size_t bare = probe->body.size();
  client->Request("DELETE", fmt::format("/api/v1/namespaces/{}/pods/probe?gracePeriodSeconds=0",
                                        kEmptyNamespace));
  const std::size_t padding = options.pod_bytes > bare ? options.pod_bytes - bare : 0;

  const auto start = Clock::now();
  std::atomic<std::size_t> failures{0};
  std::string failure;
  std::mutex mutex;
  std::vector<std::thread> threads;
  const std::size_t thread_count = 4;
  for (std::size_t t = 0; t < thread_count; ++t) {
    threads.emplace_back([&, t] {
      auto own = cluster.Client();
      for (std::size_t i = t; i < options.pods; i += thread_count) {
        const std::string ns = Namespace(i % options.namespaces);
        const std::optional<HttpResponse> response =
            own->Request("POST", fmt::format("/api/v1/namespaces/{}/pods", ns),
                         PodJson(ns, PodName(i), i, padding));
        if (!response || response->status != 201) {
          ++failures;
          std::lock_guard<std::mutex> lock(mutex);
          failure = response ? response->body.substr(0, 300) : "no answer";
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const double seconds = Seconds(Clock::now() - start).count();
  if (failures > 0)
    Die(fmt::format("{} pods not created; last error: {}", failures.load(), failure));

  const std::optional<HttpResponse> list = client->Request("GET", "/api/v1/pods");
  if (!list || list->status != 200) Die("cannot list pods");
  std::size_t items = 0;
  for (std::size_t at = 0;
       (at = list->body.find("{\"metadata\":{\"name\":\"", at)) != std::string::npos; ++at) {
    ++items;
  }
  if (items != options.pods) {
    Die(fmt::format("the LIST of pods has {} items, expected {}", items, options.pods));
  }
  const double json_bytes = static_cast<double>(list->body.size()) / static_cast<double>(items);
  Print("setup", fmt::format("created {} pods in {} namespaces in {:.1f} s ({:.0f}/s, 4 HTTPS "
                             "connections); {:.0f} B of JSON each as a LIST returns them "
                             "(managedFields included)",
                             options.pods, options.namespaces, seconds,
                             static_cast<double>(options.pods) / seconds, json_bytes));
  return json_bytes;
}

// ---- informerd.

class Informerd {
 public:
  // Starts informerd for pods (in `ns`, or all namespaces), with the cluster's admin kubeconfig.
  Informerd(const Options& options, const Cluster& cluster, const std::string& tag,
            const std::string& ns = "")
      : started_(Clock::now()) {
    const std::string config = options.temp_dir + "/config-" + tag + ".yaml";
    WriteFile(config, ns.empty() ? "resources:\n  - resource: pods\n"
                                 : "resources:\n  - resource: pods\n    namespace: " + ns + "\n");
    process_ = std::make_unique<Process>(
        std::vector<std::string>{options.informerd, "--config", config, "--kubeconfig",
                                 cluster.kubeconfig, "--listen", "127.0.0.1:0", "--metrics-listen",
                                 "127.0.0.1:0", "--probe-listen", "none", "--audit-log=false",
                                 "--max-list-response-bytes", "67108864",
                                 "--max-list-response-objects", "1000000"},
        options.temp_dir + "/informerd-" + tag + ".log", /*stdout_pipe=*/false);
    grpc_address_ = LoggedAddress(process_->log(), "gRPC listening on ");
    metrics_port_ = PortOf(LoggedAddress(process_->log(), "metrics listening on "));
  }

  // Waits for pods to be synced (polling /metrics every 10 ms); returns the seconds since the
  // process was started.
  double WaitSynced() {
    const auto deadline = Clock::now() + std::chrono::seconds(300);
    for (;;) {
      const std::optional<std::string> text = HttpGet(metrics_port_, "/metrics");
      if (text && MetricSum(*text, "informerd_resource_synced", {"resource=\"pods\""}) >= 1) {
        return Seconds(Clock::now() - started_).count();
      }
      if (Clock::now() > deadline) Die("informerd did not sync; its log: " + process_->log());
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  std::string Metrics() const {
    const std::optional<std::string> text = HttpGet(metrics_port_, "/metrics");
    if (!text) Die("no answer from informerd's /metrics; its log: " + process_->log());
    return *text;
  }
  pid_t pid() const { return process_->pid(); }
  const std::string& grpc_address() const { return grpc_address_; }

 private:
  Clock::time_point started_;
  std::unique_ptr<Process> process_;
  std::string grpc_address_;
  int metrics_port_ = 0;
};

// ---- The peer.

// A number in the peer's one-line JSON ("key":value); nullopt if absent.
std::optional<double> JsonNumber(const std::string& line, const std::string& key) {
  const std::string needle = "\"" + key + "\":";
  const std::size_t at = line.find(needle);
  if (at == std::string::npos) return std::nullopt;
  return std::strtod(line.c_str() + at + needle.size(), nullptr);
}

struct PeerSynced {
  double objects = 0;
  double sync_seconds = 0;
  double cpu_seconds = 0;
  double rss_bytes = 0;
  double heap_bytes = 0;
  double wall_seconds = 0;  // from spawning the process to its synced line
};

class Peer {
 public:
  Peer(const Options& options, const Cluster& cluster, const std::string& tag,
       const std::vector<std::string>& args)
      : started_(Clock::now()) {
    std::vector<std::string> argv = {options.peer, "--kubeconfig", cluster.kubeconfig,
                                     "--run-seconds", "3600"};
    argv.insert(argv.end(), args.begin(), args.end());
    process_ = std::make_unique<Process>(argv, options.temp_dir + "/peer-" + tag + ".log",
                                         /*stdout_pipe=*/true);
  }
  // Reads the "synced" line.
  PeerSynced WaitSynced() {
    const std::string line = process_->ReadLine();
    if (line.find("\"phase\":\"synced\"") == std::string::npos) {
      Die("the peer did not print its synced line (got '" + line + "'); its log " +
          process_->log() + ":\n" + Tail(process_->log()));
    }
    PeerSynced synced;
    synced.wall_seconds = Seconds(Clock::now() - started_).count();
    synced.objects = JsonNumber(line, "objects").value_or(0);
    synced.sync_seconds = JsonNumber(line, "sync_seconds").value_or(0);
    synced.cpu_seconds = JsonNumber(line, "cpu_seconds").value_or(0);
    synced.rss_bytes = JsonNumber(line, "rss_bytes").value_or(0);
    synced.heap_bytes = JsonNumber(line, "go_heap_inuse_bytes").value_or(0);
    return synced;
  }
  pid_t pid() const { return process_->pid(); }
  const std::string& log() const { return process_->log(); }

 private:
  Clock::time_point started_;
  std::unique_ptr<Process> process_;
};

// ---- gRPC subscribers: N streams, each its own channel, counting events until stopped.

std::shared_ptr<grpc::Channel> OwnChannel(const std::string& address, int index) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // Its own connection.
  args.SetInt("informerd.bench.client", index);
  args.SetMaxReceiveMessageSize(256 << 20);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

// A stream that informerd ends before its snapshot is complete (RESOURCE_EXHAUSTED: it fell
// behind, which happens when this process cannot read 100 snapshots as fast as informerd sends
// them on 2 shared cores) subscribes again from scratch, as a client would; restarts() counts
// those. An error after SYNCED, or any other, ends the stream and fails WaitSynced.
class Subscribers {
 public:
  // `batch`: SubscribeRequest.max_events_per_message (1: one event per message).
  Subscribers(const std::string& address, int count, int batch) : batch_(batch) {
    for (int i = 0; i < count; ++i) {
      auto s = std::make_unique<Stream>();
      s->stub = v1::Informer::NewStub(OwnChannel(address, i));
      streams_.push_back(std::move(s));
    }
    for (auto& s : streams_) Start(*s);
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { Poll(); });
  }
  ~Subscribers() { Stop(); }

  // Waits until every stream has received SYNCED; false after `timeout` or if one ended.
  bool WaitSynced(Seconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (synced_ < static_cast<int>(streams_.size())) {
      if (Clock::now() > deadline || ended_ > 0) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }
  uint64_t events() const { return events_; }
  int restarts() const { return restarts_; }
  std::string first_error() {
    std::lock_guard<std::mutex> lock(mutex_);
    return error_;
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopped_) return;
      stopped_ = true;
      for (auto& s : streams_) s->context->TryCancel();
    }
    while (ended_ < static_cast<int>(streams_.size())) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    queue_.Shutdown();
    for (std::thread& thread : threads_) thread.join();
  }

 private:
  struct Stream {
    std::unique_ptr<v1::Informer::Stub> stub;
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<grpc::ClientAsyncReader<v1::Event>> reader;
    v1::Event event;
    grpc::Status status;
    bool started = false;
    bool finishing = false;
    bool synced = false;
  };

  // Opens (or reopens) a stream's subscription. Under mutex_ once threads run.
  void Start(Stream& s) {
    // The reader lives in the call's arena, which the context frees: the reader goes first.
    s.reader.reset();
    s.context = std::make_unique<grpc::ClientContext>();
    s.started = false;
    s.finishing = false;
    s.status = grpc::Status();
    v1::SubscribeRequest request;
    request.set_resource("pods");
    request.set_max_events_per_message(static_cast<uint32_t>(batch_));
    s.reader = s.stub->PrepareAsyncSubscribe(s.context.get(), request, &queue_);
    s.reader->StartCall(&s);
  }

  void Poll() {
    void* tag = nullptr;
    bool ok = false;
    while (queue_.Next(&tag, &ok)) {
      Stream& s = *static_cast<Stream*>(tag);
      if (s.finishing) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!stopped_ && !s.synced &&
            s.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
          ++restarts_;
          Start(s);
          continue;
        }
        if (!stopped_ && error_.empty()) {
          error_ = fmt::format("{} {}", static_cast<int>(s.status.error_code()),
                               s.status.error_message());
        }
        ++ended_;
        continue;
      }
      if (s.started && ok) {
        // One event, or (with --batch) a message whose events are its `batch`.
        const bool batch = s.event.batch_size() > 0;
        const int count = batch ? s.event.batch_size() : 1;
        for (int i = 0; i < count; ++i) {
          const v1::Event& event = batch ? s.event.batch(i) : s.event;
          ++events_;
          if (event.type() == v1::Event::SYNCED) {
            s.synced = true;
            ++synced_;
          }
        }
      }
      s.started = true;
      if (ok) {
        s.reader->Read(&s.event, &s);
      } else {
        s.finishing = true;
        s.reader->Finish(&s.status, &s);
      }
    }
  }

  const int batch_;
  grpc::CompletionQueue queue_;
  std::vector<std::unique_ptr<Stream>> streams_;
  std::vector<std::thread> threads_;
  std::atomic<int> synced_{0};
  std::atomic<int> ended_{0};
  std::atomic<int> restarts_{0};
  std::atomic<uint64_t> events_{0};
  std::mutex mutex_;
  bool stopped_ = false;  // under mutex_
  std::string error_;
};

// ---- Latency under concurrent callers.

struct Latency {
  double p50_ms = 0;
  double p99_ms = 0;
  std::size_t calls = 0;
  std::size_t errors = 0;
  double per_second = 0;
};

// `callers` threads, each calling `call(caller, random)` (true when answered well) in a loop for
// `seconds`.
Latency Measure(int callers, double seconds,
                const std::function<std::function<bool(std::minstd_rand&)>(int)>& make_caller) {
  std::vector<std::vector<double>> samples(static_cast<std::size_t>(callers));
  std::atomic<std::size_t> errors{0};
  std::vector<std::function<bool(std::minstd_rand&)>> calls;
  for (int i = 0; i < callers; ++i) calls.push_back(make_caller(i));
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  Clock::time_point end;
  for (int i = 0; i < callers; ++i) {
    threads.emplace_back([&, i] {
      std::minstd_rand random(static_cast<unsigned>(i + 1));
      while (!go) std::this_thread::yield();
      while (Clock::now() < end) {
        const auto start = Clock::now();
        const bool ok = calls[static_cast<std::size_t>(i)](random);
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
        if (ok) {
          samples[static_cast<std::size_t>(i)].push_back(ms);
        } else {
          ++errors;
        }
      }
    });
  }
  const auto start = Clock::now();
  end = start + std::chrono::duration_cast<Clock::duration>(Seconds(seconds));
  go = true;
  for (std::thread& thread : threads) thread.join();
  const double elapsed = Seconds(Clock::now() - start).count();
  std::vector<double> all;
  for (const auto& s : samples) all.insert(all.end(), s.begin(), s.end());
  std::sort(all.begin(), all.end());
  Latency latency;
  latency.calls = all.size();
  latency.errors = errors;
  latency.per_second = static_cast<double>(all.size()) / elapsed;
  if (!all.empty()) {
    latency.p50_ms = all[all.size() / 2];
    latency.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  }
  return latency;
}

// "p99 first (the ratio's), then p50 and the rate": "4.62 ms p99, 1.54 ms p50 (gRPC, 2360/s)".
std::string LatencyText(const Latency& l, const std::string& how) {
  return fmt::format("{:.2f} ms p99, {:.2f} ms p50 ({}, {:.0f} calls/s{})", l.p99_ms, l.p50_ms, how,
                     l.per_second, l.errors ? fmt::format(", {} ERRORS", l.errors) : "");
}

// ---- The phases.

struct Baselines {
  double informerd_rss = 0;
  std::map<std::string, double> peer_rss;  // by mode: typed, typed-strip, dynamic
};

const std::vector<std::pair<std::string, std::vector<std::string>>>& PeerModes() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> modes = {
      {"typed", {"--mode", "typed", "--resource", "pods"}},
      {"typed-strip", {"--mode", "typed", "--resource", "pods", "--strip-managed-fields"}},
      {"dynamic", {"--mode", "dynamic", "--resource", "v1/pods"}},
  };
  return modes;
}

// The resident memory of each program caching an empty namespace (start-up and libraries).
Baselines MeasureBaselines(const Options& options, const Cluster& cluster) {
  Baselines b;
  {
    Informerd daemon(options, cluster, "empty", kEmptyNamespace);
    daemon.WaitSynced();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    b.informerd_rss = static_cast<double>(StatusBytes(daemon.pid(), "VmRSS"));
  }
  if (options.no_peer) return b;
  for (const auto& [mode, args] : PeerModes()) {
    std::vector<std::string> all = args;
    all.insert(all.end(), {"--namespace", kEmptyNamespace});
    Peer peer(options, cluster, "empty-" + mode, all);
    b.peer_rss[mode] = peer.WaitSynced().rss_bytes;
  }
  return b;
}

// (1) and (2).
void SyncAndMemory(const Options& options, const Cluster& cluster, double json_bytes,
                   const Baselines& baselines) {
  const double pods = static_cast<double>(options.pods);
  double informerd_wall = 0;
  double informerd_cpu = 0;
  double informerd_rss = 0;
  double stored = 0;
  {
    Informerd daemon(options, cluster, "sync");
    informerd_wall = daemon.WaitSynced();
    informerd_cpu = CpuSeconds(daemon.pid());
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    informerd_rss = static_cast<double>(StatusBytes(daemon.pid(), "VmRSS"));
    const std::string metrics = daemon.Metrics();
    const double objects = MetricSum(metrics, "informerd_resource_objects", {"resource=\"pods\""});
    if (objects != pods) Die(fmt::format("informerd cached {} pods, not {}", objects, pods));
    stored = MetricSum(metrics, "informerd_resource_object_bytes", {"resource=\"pods\""}) / pods;
  }
  std::map<std::string, PeerSynced> peer;
  if (!options.no_peer) {
    for (const auto& [mode, args] : PeerModes()) {
      Peer p(options, cluster, mode, args);
      peer[mode] = p.WaitSynced();
      if (peer[mode].objects != pods) {
        Die(fmt::format("the peer ({}) cached {} pods, not {}", mode, peer[mode].objects, pods));
      }
    }
  }
  const PeerSynced& typed = peer["typed"];
  const double informerd_rate = pods / informerd_wall;
  const double peer_rate = typed.sync_seconds > 0 ? pods / typed.sync_seconds : 0;
  Figure("sync-objects-per-second", "1. initial sync, objects/s (wall)",
         fmt::format("{:.0f}/s ({:.3f} s from process start)", informerd_rate, informerd_wall),
         "client-go",
         fmt::format("{:.0f}/s typed ({:.3f} s from Run; {:.3f} s from process start)", peer_rate,
                     typed.sync_seconds, typed.wall_seconds),
         Ratio(informerd_rate, peer_rate));
  const double informerd_per_cpu = pods / informerd_cpu;
  const double peer_per_cpu = typed.cpu_seconds > 0 ? pods / typed.cpu_seconds : 0;
  Figure("sync-objects-per-cpu-second", "1. initial sync, objects per CPU-second",
         fmt::format("{:.0f}/CPU-s ({:.2f} CPU-s)", informerd_per_cpu, informerd_cpu), "client-go",
         fmt::format("{:.0f}/CPU-s typed ({:.2f} CPU-s)", peer_per_cpu, typed.cpu_seconds),
         Ratio(informerd_per_cpu, peer_per_cpu));

  const double informerd_per_object = (informerd_rss - baselines.informerd_rss) / pods;
  for (const auto& [mode, args] : PeerModes()) {
    if (options.no_peer && mode != "typed") continue;  // informerd's column is the same.
    const PeerSynced& p = peer[mode];
    const double peer_per_object =
        options.no_peer ? 0 : (p.rss_bytes - baselines.peer_rss.at(mode)) / pods;
    Figure("rss-per-object-" + mode, "2. resident memory per cached object, client-go " + mode,
           fmt::format("{:.0f} B ({} resident, {} empty)", informerd_per_object, Mb(informerd_rss),
                       Mb(baselines.informerd_rss)),
           "client-go",
           fmt::format("{:.0f} B {} ({} resident, {} empty; Go heap in use {})", peer_per_object,
                       mode, Mb(p.rss_bytes), Mb(options.no_peer ? 0 : baselines.peer_rss.at(mode)),
                       Mb(p.heap_bytes)),
           Ratio(informerd_per_object, peer_per_object));
  }
  const double peer_typed_per_object =
      options.no_peer ? 0 : (typed.rss_bytes - baselines.peer_rss.at("typed")) / pods;
  Figure("rss-per-json-byte", "2. resident memory per object ÷ its JSON size",
         fmt::format("{:.2f}x of {:.0f} B (stored without managedFields: {:.0f} B, so {:.2f}x "
                     "of that)",
                     informerd_per_object / json_bytes, json_bytes, stored,
                     stored > 0 ? informerd_per_object / stored : 0),
         "client-go", fmt::format("{:.2f}x typed", peer_typed_per_object / json_bytes),
         Ratio(informerd_per_object, peer_typed_per_object));
}

// (3) for one N.
void Consumers(const Options& options, const Cluster& cluster, int n) {
  const auto timeout = Seconds(600);
  // informerd + N subscribers.
  int d_restarts = 0;
  double d_watchers0 = 0, d_longrunning0 = 0, d_watchers = 0, d_longrunning = 0,
         d_apiserver_cpu = 0, d_rss = 0, d_daemon_rss = 0, d_bench_rss = 0, d_cpu = 0,
         d_daemon_cpu = 0, d_bench_cpu = 0, d_wall = 0;
  {
    malloc_trim(0);
    const double bench_rss0 = static_cast<double>(StatusBytes("self", "VmRSS"));
    const double bench_cpu0 = CpuSeconds("self");
    std::tie(d_watchers0, d_longrunning0) = cluster.PodWatches();
    const double apiserver_cpu0 = cluster.ApiserverCpu();
    const auto start = Clock::now();
    Informerd daemon(options, cluster, fmt::format("consumers-{}", n));
    Subscribers subscribers(daemon.grpc_address(), n, options.batch);
    if (!subscribers.WaitSynced(timeout)) {
      Die(fmt::format("{} subscribers did not all sync: {}", n, subscribers.first_error()));
    }
    d_wall = Seconds(Clock::now() - start).count();
    d_restarts = subscribers.restarts();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    std::tie(d_watchers, d_longrunning) = cluster.PodWatches();
    d_apiserver_cpu = cluster.ApiserverCpu() - apiserver_cpu0;
    d_daemon_cpu = CpuSeconds(daemon.pid());
    d_bench_cpu = CpuSeconds("self") - bench_cpu0;
    d_daemon_rss = static_cast<double>(StatusBytes(daemon.pid(), "VmRSS"));
    malloc_trim(0);
    d_bench_rss = std::max(0.0, static_cast<double>(StatusBytes("self", "VmRSS")) - bench_rss0);
    d_rss = d_daemon_rss + d_bench_rss;
    d_cpu = d_daemon_cpu + d_bench_cpu;
    const double expected = static_cast<double>(n) * (static_cast<double>(options.pods) + 1);
    if (static_cast<double>(subscribers.events()) < expected) {
      Die(fmt::format("{} subscribers received {} events, expected at least {}", n,
                      subscribers.events(), expected));
    }
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));  // The apiserver ends the watch.
  double p_watchers0 = 0, p_longrunning0 = 0, p_watchers = 0, p_longrunning = 0,
         p_apiserver_cpu = 0, p_rss = 0, p_cpu = 0, p_wall = 0;
  if (!options.no_peer) {
    std::tie(p_watchers0, p_longrunning0) = cluster.PodWatches();
    const double apiserver_cpu0 = cluster.ApiserverCpu();
    const auto start = Clock::now();
    Peer peer(options, cluster, fmt::format("consumers-{}", n),
              {"--resource", "pods", "--informers", std::to_string(n)});
    const PeerSynced synced = peer.WaitSynced();
    p_wall = Seconds(Clock::now() - start).count();
    if (synced.objects != static_cast<double>(n) * static_cast<double>(options.pods)) {
      Die(fmt::format("the peer's {} informers hold {} objects", n, synced.objects));
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
    std::tie(p_watchers, p_longrunning) = cluster.PodWatches();
    p_apiserver_cpu = cluster.ApiserverCpu() - apiserver_cpu0;
    p_cpu = CpuSeconds(peer.pid());
    p_rss = static_cast<double>(StatusBytes(peer.pid(), "VmRSS"));
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const std::string tag = fmt::format("consumers-{}-", n);
  const std::string what = fmt::format("3. {} consumer{} of all pods, ", n, n == 1 ? "" : "s");
  // Watches added: the apiserver may count some before (one of its own, or one it has not yet
  // seen closed), so each side's figure is the increase over the count just before it started.
  const double d_added = d_watchers - d_watchers0;
  const double p_added = p_watchers - p_watchers0;
  Figure(tag + "apiserver-watches", what + "apiserver watches on pods",
         fmt::format("{:.0f} ({:.0f} -> {:.0f} registered, {:.0f} -> {:.0f} long-running WATCH)",
                     d_added, d_watchers0, d_watchers, d_longrunning0, d_longrunning),
         "client-go",
         fmt::format("{:.0f} ({:.0f} -> {:.0f} registered, {:.0f} -> {:.0f} long-running WATCH; "
                     "{} informer{} in one process)",
                     p_added, p_watchers0, p_watchers, p_longrunning0, p_longrunning, n,
                     n == 1 ? "" : "s"),
         Ratio(d_added, p_added));
  Figure(tag + "apiserver-cpu", what + "apiserver CPU seconds until all synced + 1 s",
         fmt::format("{:.2f} s (all synced in {:.2f} s{})", d_apiserver_cpu, d_wall,
                     d_restarts == 0
                         ? ""
                         : fmt::format("; {} snapshot{} ended by informerd (the subscriber fell "
                                       "behind) and subscribed again",
                                       d_restarts, d_restarts == 1 ? "" : "s")),
         "client-go", fmt::format("{:.2f} s (all synced in {:.2f} s)", p_apiserver_cpu, p_wall),
         Ratio(d_apiserver_cpu, p_apiserver_cpu));
  Figure(tag + "rss", what + "consumer-side resident memory",
         fmt::format("{} (informerd {} + subscribers {})", Mb(d_rss), Mb(d_daemon_rss),
                     Mb(d_bench_rss)),
         "client-go",
         fmt::format("{} (one process, {} informer{})", Mb(p_rss), n, n == 1 ? "" : "s"),
         Ratio(d_rss, p_rss));
  Figure(tag + "cpu", what + "consumer-side CPU seconds",
         fmt::format(
             "{:.2f} s (informerd {:.2f} + subscribers {:.2f}{})", d_cpu, d_daemon_cpu, d_bench_cpu,
             options.batch > 1 ? fmt::format(", up to {} events per message", options.batch) : ""),
         "client-go", fmt::format("{:.2f} s", p_cpu), Ratio(d_cpu, p_cpu));
}

// (5).
void Reads(const Options& options, const Cluster& cluster) {
  Informerd daemon(options, cluster, "reads");
  daemon.WaitSynced();
  const std::size_t pods = options.pods;
  const std::size_t per_namespace = pods / options.namespaces;
  const auto grpc_caller = [&](int kind) {
    return [&, kind](int index) -> std::function<bool(std::minstd_rand&)> {
      auto stub = std::shared_ptr<v1::Informer::Stub>(
          v1::Informer::NewStub(OwnChannel(daemon.grpc_address(), 1000 + index)));
      return [&, stub, kind](std::minstd_rand& random) {
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
        const std::size_t i = random() % pods;
        if (kind == 0) {
          v1::GetRequest request;
          request.set_resource("pods");
          request.set_namespace_(Namespace(i % options.namespaces));
          request.set_name(PodName(i));
          v1::GetResponse response;
          return stub->Get(&context, request, &response).ok() && !response.object().empty();
        }
        v1::ListRequest request;
        request.set_resource("pods");
        if (kind == 1) request.set_namespace_(Namespace(i % options.namespaces));
        v1::ListResponse response;
        const std::size_t want = kind == 1 ? per_namespace : pods;
        return stub->List(&context, request, &response).ok() &&
               static_cast<std::size_t>(response.items_size()) >= want;
      };
    };
  };
  const auto rest_caller = [&](int kind) {
    return [&, kind](int) -> std::function<bool(std::minstd_rand&)> {
      std::shared_ptr<HttpsClient> client = cluster.Client();
      return [&, client, kind](std::minstd_rand& random) {
        const std::size_t i = random() % pods;
        const std::string ns = Namespace(i % options.namespaces);
        const std::string target =
            kind == 0
                ? fmt::format("/api/v1/namespaces/{}/pods/{}?resourceVersion=0", ns, PodName(i))
            : kind == 1 ? fmt::format("/api/v1/namespaces/{}/pods?resourceVersion=0", ns)
                        : std::string("/api/v1/pods?resourceVersion=0");
        const std::optional<HttpResponse> response = client->Request("GET", target);
        return response && response->status == 200;
      };
    };
  };
  const std::vector<std::tuple<std::string, std::string, int>> reads = {
      {"get", "5. Get of one pod", 0},
      {"list-namespace", fmt::format("5. List of one namespace ({} pods)", per_namespace), 1},
      {"list-all", fmt::format("5. List of all pods ({}, unpaged)", pods), 2},
  };
  for (const auto& [tag, description, kind] : reads) {
    const Latency ours = Measure(options.callers, options.window, grpc_caller(kind));
    const Latency theirs = Measure(options.callers, options.window, rest_caller(kind));
    Figure(tag + "-latency",
           fmt::format("{}, {} concurrent callers, p99 / p50", description, options.callers),
           LatencyText(ours, "gRPC"), "apiserver", LatencyText(theirs, "REST, resourceVersion=0"),
           Ratio(ours.p99_ms, theirs.p99_ms));
  }
}

// (6): a fresh informerd and a typed peer relist together.
void Relist(const Options& options, Cluster& cluster) {
  Informerd daemon(options, cluster, "relist");
  daemon.WaitSynced();
  std::unique_ptr<Peer> peer;
  if (!options.no_peer) {
    peer = std::make_unique<Peer>(options, cluster, "relist",
                                  std::vector<std::string>{"--resource", "pods"});
    peer->WaitSynced();
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const double relists_before =
      MetricSum(daemon.Metrics(), "informerd_relists_total", {"resource=\"pods\""});
  const double steady = static_cast<double>(StatusBytes(daemon.pid(), "VmRSS"));
  const double peer_steady = peer ? static_cast<double>(StatusBytes(peer->pid(), "VmRSS")) : 0;
  ResetPeak(daemon.pid());
  if (peer) ResetPeak(peer->pid());
  {
    auto client = cluster.Client();
    const std::optional<HttpResponse> write = client->Request(
        "POST", fmt::format("/api/v1/namespaces/{}/configmaps", kEmptyNamespace),
        "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"generateName\":"
        "\"move-revision-\"}}");
    if (!write || write->status != 201) Die("cannot create a configmap");
  }
  if (absl::StatusOr<int64_t> compacted = cluster.cluster->CompactEtcd(); !compacted.ok()) {
    Die("cannot compact etcd: " + compacted.status().ToString());
  }
  if (absl::Status restarted = cluster.cluster->RestartApiserver(); !restarted.ok()) {
    Die("cannot restart the apiserver: " + restarted.ToString());
  }
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  bool relisted = false;
  while (Clock::now() < deadline) {
    const std::string metrics = daemon.Metrics();
    if (MetricSum(metrics, "informerd_relists_total", {"resource=\"pods\""}) > relists_before &&
        MetricSum(metrics, "informerd_resource_synced", {"resource=\"pods\""}) >= 1) {
      relisted = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!relisted) {
    Print("relist-peak",
          "informerd not measured: no relist within 60 s of compacting etcd and restarting the "
          "apiserver (its watch resumed)");
    rows.push_back(
        {"6. relist peak ÷ steady resident memory", "not measured (no relist)", "", "-"});
    return;
  }
  std::this_thread::sleep_for(std::chrono::seconds(3));  // The peer's reflector backs off 1 s.
  const double peak = static_cast<double>(StatusBytes(daemon.pid(), "VmHWM"));
  const double expired = MetricSum(daemon.Metrics(), "informerd_relists_total",
                                   {"resource=\"pods\"", "reason=\"expired\""});
  // The apiserver was restarted, so its request counters count from then: the LISTs of pods it
  // has answered are the relists' pages (informerd's and the peer's: client-go's reflector
  // logs the 410 only at verbosity 4).
  const double lists = MetricSum(cluster.Metrics(), "apiserver_request_total",
                                 {"resource=\"pods\"", "verb=\"LIST\""});
  std::string peer_text = "not run";
  std::optional<double> peer_ratio;
  if (peer) {
    const double peer_peak = static_cast<double>(StatusBytes(peer->pid(), "VmHWM"));
    peer_ratio = peer_peak / peer_steady;
    peer_text = fmt::format("{:.2f}x typed ({} steady, {} peak)", *peer_ratio, Mb(peer_steady),
                            Mb(peer_peak));
  }
  const double ours = peak / steady;
  Figure("relist-peak", "6. relist peak ÷ steady resident memory",
         fmt::format("{:.2f}x ({} steady, {} peak; {:.0f} expired relist{}; the restarted "
                     "apiserver answered {:.0f} LIST requests of pods)",
                     ours, Mb(steady), Mb(peak), expired, expired == 1 ? "" : "s", lists),
         "client-go", peer_text, peer_ratio ? Ratio(ours, *peer_ratio) : std::nullopt);
}

// The peer binary: --peer, $INFORMERD_PEER, or build_peer.sh --check (runfiles, then the
// workspace under `bazel run`); empty with the reason in `why`.
std::string FindPeer(const std::string& argv0, std::string& why) {
  if (const char* env = std::getenv("INFORMERD_PEER"); env != nullptr && env[0] != '\0') {
    if (access(env, X_OK) == 0) return env;
    why = fmt::format("$INFORMERD_PEER ({}) is not an executable file", env);
    return "";
  }
  std::optional<std::string> script = FindRunfile(argv0, "bench/peer/build_peer.sh");
  if (!script) {
    if (const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY")) {
      const std::string candidate = std::string(workspace) + "/bench/peer/build_peer.sh";
      if (Exists(candidate)) script = candidate;
    }
  }
  if (!script) {
    why = "no --peer, no $INFORMERD_PEER and no bench/peer/build_peer.sh to ask";
    return "";
  }
  const std::string command = *script + " --check 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    why = "cannot run " + command;
    return "";
  }
  std::string text;
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) text.append(buffer, n);
  const int status = pclose(pipe);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (status != 0 || access(text.c_str(), X_OK) != 0) {
    why = fmt::format("`{} --check` found no built peer:\n{}", *script, text);
    return "";
  }
  return text;
}

std::vector<int> ParseList(const std::string& text) {
  std::vector<int> values;
  std::istringstream items(text);
  std::string item;
  while (std::getline(items, item, ',')) {
    const int value = std::atoi(item.c_str());
    if (value < 1) Die("bad --consumers: " + text);
    values.push_back(value);
  }
  return values;
}

}  // namespace
}  // namespace informerd

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  using informerd::Die;
  using informerd::bench::SmokeDefault;
  informerd::Options options;
  std::string consumers = "1,10,100";
  // clang-format off
  po::options_description flags = informerd::bench::FlagsDescription(
      "usage: side_by_side [flags]\n"
      "informerd and the client-go peer side by side on one kube-apiserver (needs "
      "INFORMERD_KUBE_APISERVER); flags");
  flags.add_options()
      ("pods", po::value(&options.pods)->default_value(options.pods)->value_name("N"),
       "pods created")
      ("namespaces",
       po::value(&options.namespaces)->default_value(options.namespaces)->value_name("N"),
       "namespaces the pods are spread over")
      ("pod-bytes",
       po::value(&options.pod_bytes)->default_value(options.pod_bytes)->value_name("N"),
       "about how large each pod is, as the apiserver returns it")
      ("consumers", po::value(&consumers)->default_value(consumers)->value_name("LIST"),
       "consumer counts measured, comma-separated")
      ("batch", po::value(&options.batch)->default_value(options.batch)->value_name("N"),
       "informerd's subscribers ask for up to N events per message (max_events_per_message; 0 "
       "or 1: one per message)")
      ("callers", po::value(&options.callers)->default_value(options.callers)->value_name("N"),
       "concurrent Get/List callers")
      ("window", po::value(&options.window)->default_value(options.window)->value_name("S"),
       "seconds of each Get/List measurement")
      ("peer", po::value(&options.peer)->value_name("PATH"),
       "the client-go peer (default: $INFORMERD_PEER, else bench/peer/build_peer.sh --check)")
      ("informerd", po::value(&options.informerd)->value_name("PATH"),
       "the informerd binary (default: from the runfiles)")
      ("no-peer", po::bool_switch(&options.no_peer),
       "informerd's column only, without the peer");
  // clang-format on
  const po::variables_map given = informerd::bench::ParseFlags(argc, argv, flags, options.smoke);
  if (options.smoke) {
    SmokeDefault(given, "pods", options.pods, 60);
    SmokeDefault(given, "namespaces", options.namespaces, 3);
    SmokeDefault(given, "consumers", consumers, "1,3");
    SmokeDefault(given, "callers", options.callers, 4);
    SmokeDefault(given, "window", options.window, 0.3);
  }
  options.consumers = informerd::ParseList(consumers);
  if (options.pods < 1 || options.namespaces < 1 || options.namespaces > options.pods ||
      options.callers < 1 || options.batch < 0 || options.batch > 1024 || options.window <= 0) {
    Die("bad numbers: --pods, --namespaces (at most --pods) and --callers at least 1, --batch 0 "
        "to 1024, --window above 0");
  }
  if (options.informerd.empty()) {
    options.informerd = informerd::bench::Runfile(argv[0], "cmd/informerd/informerd");
  }
  if (!options.no_peer && options.peer.empty()) {
    std::string why;
    options.peer = informerd::FindPeer(argv[0], why);
    if (options.peer.empty()) {
      std::fprintf(stderr,
                   "side_by_side: the client-go peer (informerd-peer) is missing: %s\n"
                   "Build it with bench/peer/build_peer.sh (it prints the binary's path; "
                   "pass it as --peer PATH or INFORMERD_PEER), or run with --no-peer for "
                   "informerd's column only.\n",
                   why.c_str());
      return 3;
    }
  }
  informerd::print_peer_column = !options.no_peer;
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(tmp ? tmp : "/tmp") + "/side_by_side.XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) Die("mkdtemp failed");
  options.temp_dir = dir;
  signal(SIGPIPE, SIG_IGN);

  std::printf(
      "side_by_side: informerd and the client-go peer (%s) on one kube-apiserver, %zu "
      "pods of ~%zu B in %zu namespaces, on %u CPUs%s; ratio = informerd / the other "
      "column; logs in %s\n",
      options.no_peer ? "not run: --no-peer" : options.peer.c_str(), options.pods,
      options.pod_bytes, options.namespaces, std::thread::hardware_concurrency(),
      options.smoke ? " (--smoke: small numbers)" : "", dir.c_str());
  std::fflush(stdout);

  informerd::Cluster cluster;
  {
    absl::StatusOr<std::unique_ptr<informerd::test::TestCluster>> started =
        informerd::test::TestCluster::Start();
    if (!started.ok()) Die("cannot start the cluster: " + started.status().ToString());
    cluster.cluster = std::move(*started);
  }
  cluster.port = informerd::PortOf(cluster.cluster->url());
  cluster.token = cluster.cluster->token(informerd::test::Identity::kAdminToken);
  cluster.kubeconfig = cluster.cluster->kubeconfig(informerd::test::Identity::kAdminToken);
  cluster.ssl = SSL_CTX_new(TLS_client_method());
  if (cluster.ssl == nullptr ||
      SSL_CTX_load_verify_locations(cluster.ssl, cluster.cluster->ca_file().c_str(), nullptr) !=
          1) {
    Die("cannot load the cluster's CA " + cluster.cluster->ca_file());
  }
  SSL_CTX_set_verify(cluster.ssl, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_mode(cluster.ssl, SSL_MODE_AUTO_RETRY);

  const auto started = informerd::Clock::now();
  const double json_bytes = informerd::CreatePods(cluster, options);
  const informerd::Baselines baselines = informerd::MeasureBaselines(options, cluster);
  informerd::SyncAndMemory(options, cluster, json_bytes, baselines);
  for (const int n : options.consumers) informerd::Consumers(options, cluster, n);
  informerd::Reads(options, cluster);
  informerd::Relist(options, cluster);

  std::printf(
      "\n| figure | informerd | %s | ratio (informerd ÷ other) |\n| --- | --- | --- | --- |\n",
      options.no_peer ? "other" : "client-go / apiserver");
  for (const informerd::Row& row : informerd::rows) {
    std::printf("| %s | %s | %s | %s |\n", row.figure.c_str(), row.informerd.c_str(),
                row.other.c_str(), row.ratio.c_str());
  }
  std::printf("\nside_by_side: done in %.0f s\n",
              informerd::Seconds(informerd::Clock::now() - started).count());
  SSL_CTX_free(cluster.ssl);
  return 0;
}
