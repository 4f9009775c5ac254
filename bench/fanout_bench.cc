// fanout_bench: fan-out latency end to end, from the fake apiserver's making an event to each of
// N gRPC subscribers' receiving it. The informerd binary (//cmd/informerd) runs against
// fakeapi_server (load mode, --stamp-send-time), both as separate processes; the subscribers are
// in this process. Prints figures; asserts nothing (except that the processes start and answer).
//
// Each scenario starts a fresh fake (2,000 pods of 4 KB by default, MODIFIED events at R per
// second round-robin over them, each event's object stamped with the CLOCK_REALTIME time its
// batch was made, annotation informerd.io/bench-sent-unix-nanos) and a fresh informerd. Once
// informerd has synced, the events start; then N subscribers Subscribe to all pods at once, each
// on its own gRPC channel with its own TCP connection, their streams read asynchronously from
// one completion queue polled by --bench-threads (2) threads of this process. All three
// processes share the machine's cores and one cgroup, so nice values count between them:
// informerd serves its clients on threads at nice 10 (its --rpc-nice) while the subscribers here
// run at 0 (--bench-nice N lowers the polling threads' priority; --daemon-arg=--rpc-nice=0
// raises informerd's), which real subscribers in pods of their own, weighed by their cgroups,
// would not compete with. Once every
// subscriber's snapshot is complete (SYNCED) and a warm-up has passed, a window of --window
// seconds: for every event stamped inside the window and every subscriber, latency = the
// subscriber's CLOCK_REALTIME at receipt minus the stamp (all processes on one machine, one
// clock). Receipts are collected until a grace period after the window's end (the latest
// stamp's events may still be on the way); a (subscriber, event) pair not received by then is
// reported as missing, not as a latency.
//
// Figures of a scenario (tag T: fanout-<N>x<R>, or fanout-search-<N> for the search's steps):
//   [T-latency]   p50/p99/max over all (subscriber, event) pairs of the window, and the count
//   [T-spread]    per event, the last subscriber's receipt minus the first's: p50/p99/max, over
//                 the events every subscriber received
//   [T-snapshots] first Subscribe sent -> the last subscriber's SYNCED, and the median one
//   [T-snapshot-pauses] time to a subscriber's first message, and the longest gap inside a
//                 snapshot (median and max over subscribers)
//   [T-ended]     subscribers the server ended before the benchmark did, by status code
//   [T-cpu]       CPU seconds of informerd, the fake and this process in the window (utime +
//                 stime from /proc): on 2 cores shared by all three, who used them
// Scenarios: 100 x 200 ev/s, 1,000 x 20 ev/s, then the search: N = --search-start, doubling, at
// --search-rate ev/s while p99 <= --search-p99-ms (and no subscriber ended), up to --search-max;
// [fanout-search] names the largest N that stayed within the bound.
//
// Run (optimised; the full run takes a few minutes):
//   bazel run -c opt //bench:fanout_bench -- [--only 100x200|1000x20|search|N1xR1,...]
//       [--objects 2000] [--object-bytes 4096] [--window 10] [--warmup 3] [--grace 3]
//       [--search-start 100] [--search-max 6400] [--search-rate 20] [--search-p99-ms 100]
//       [--bench-threads 2] [--bench-nice 0] [--batch N] [--daemon-arg ARG]...
//       [--cpus-informerd LIST --cpus-fakeapi LIST --cpus-bench LIST] [--smoke]
// --only: the scenarios to run (comma-separated; "NxR" runs N subscribers at R ev/s).
// --batch N: subscribers ask for up to N events per message (max_events_per_message; informerd
// then sends what waits for a subscriber, its snapshot above all, in batches); 0: one per message.
// --smoke: small numbers and short windows (a few seconds altogether), for the test that checks
// every figure line is printed; flags given explicitly win over its numbers. --help lists the
// flags and their defaults.
#include <grpcpp/grpcpp.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bench/fakeapi_deployment.h"
#include "bench/flags.h"
#include "bench/process_support.h"
#include "fmt/format.h"
#include "informerd/v1/informerd.grpc.pb.h"

namespace informerd {
namespace {

using bench::CpuSeconds;
using bench::Die;
using bench::HttpGet;
using Clock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

constexpr std::string_view kStampKey = "\"informerd.io/bench-sent-unix-nanos\":\"";

struct Scenario {
  int subscribers = 0;
  double rate = 0;
};

// The flags (bench/flags.h has those shared with overload_bench).
struct Options : bench::FakeapiRunOptions {
  Options() {
    objects = 2000;
    namespaces = 10;
  }
  double grace = 3;
  std::vector<Scenario> scenarios = {{100, 200}, {1000, 20}};
  bool search = true;
  int search_start = 100;
  int search_max = 6400;
  double search_rate = 20;
  double search_p99_ms = 100;
  int bench_threads = 2;
  int bench_nice = 0;
  int batch = 0;  // SubscribeRequest.max_events_per_message; 0: one event per message.
};

std::int64_t RealtimeNanos() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

// The stamp in an object's JSON; 0 when it has none.
std::int64_t StampOf(const std::string& object) {
  const std::size_t at = object.find(kStampKey);
  if (at == std::string::npos || at + kStampKey.size() + 19 > object.size()) return 0;
  std::int64_t value = 0;
  for (std::size_t i = at + kStampKey.size(), end = i + 19; i < end; ++i) {
    const char c = object[i];
    if (c < '0' || c > '9') return 0;
    value = value * 10 + (c - '0');
  }
  return value;
}

// A status message with every run of digits as "N", so that the same reason counts once.
std::string WithoutNumbers(const std::string& message) {
  std::string out;
  for (char c : message) {
    if (c >= '0' && c <= '9') {
      if (out.empty() || out.back() != 'N') out += 'N';
    } else {
      out += c;
    }
  }
  return out;
}

// A value of informerd's /metrics for the pods resource (the first series of `name` whose labels
// include resource="pods"); -1 when absent.
double PodsMetric(const std::string& text, const std::string& name) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(name + "{", 0) != 0) continue;
    if (line.find("resource=\"pods\"") == std::string::npos) continue;
    const std::size_t close = line.rfind('}');
    return std::strtod(line.c_str() + close + 1, nullptr);
  }
  return -1;
}

// ---- The fake and the daemon.

// The fake with stamped events and informerd, synced on the fake's pods.
bench::FakeapiDeploymentSpec DeploymentSpec(const Options& options, double rate, int subscribers,
                                            const std::string& tag) {
  bench::FakeapiDeploymentSpec spec;
  spec.events_per_second = rate;
  spec.fake_args = {"--stamp-send-time"};
  // One connection per subscriber, and a few for the rest.
  spec.daemon_args = {"--grpc-max-connections", std::to_string(std::max(1000, subscribers + 16))};
  spec.tag = tag;
  const auto objects = static_cast<double>(options.objects);
  spec.synced = [objects](int metrics_port) {
    const std::optional<std::string> metrics = HttpGet(metrics_port, "/metrics");
    if (!metrics) Die("no answer from informerd's /metrics");
    return PodsMetric(*metrics, "informerd_resource_objects") >= objects;
  };
  return spec;
}

// ---- The subscribers.

// One receipt of a stamped event inside the window.
struct Receipt {
  std::uint64_t resource_version;
  std::int64_t stamp;
  std::int64_t received;
};

// N Subscribe streams on pods, each its own channel and connection, read from one completion
// queue. A subscriber's tags complete one at a time (one operation in flight per stream), so its
// own state needs no lock.
class Subscribers {
 public:
  // `nice`: the polling threads' nice value (they do the subscribers' network I/O and reading).
  // `batch`: SubscribeRequest.max_events_per_message (0: one event per message).
  Subscribers(const std::string& address, int count, int threads, int nice, int batch)
      : batch_(static_cast<std::uint32_t>(batch)) {
    for (int i = 0; i < count; ++i) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // Its own connection.
      args.SetInt("informerd.bench.subscriber", i);
      args.SetMaxReceiveMessageSize(64 << 20);
      auto s = std::make_unique<Subscriber>();
      s->stub = v1::Informer::NewStub(
          grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
      s->start_tag = {s.get(), Op::kStart};
      s->read_tag = {s.get(), Op::kRead};
      s->finish_tag = {s.get(), Op::kFinish};
      subscribers_.push_back(std::move(s));
    }
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this, nice] {
        // This thread only (Linux: a thread's own nice value); the children keep theirs.
        if (nice != 0) setpriority(PRIO_PROCESS, 0, nice);
        Poll();
      });
    }
  }
  ~Subscribers() { Stop(); }

  // Sends every Subscribe; returns when the last one is sent.
  Clock::time_point Start() {
    const Clock::time_point started = Clock::now();
    for (auto& s : subscribers_) {
      s->subscribe_sent = Clock::now();
      s->context.set_wait_for_ready(true);
      v1::SubscribeRequest request;
      request.set_resource("pods");
      request.set_max_events_per_message(batch_);
      s->reader = s->stub->PrepareAsyncSubscribe(&s->context, request, &queue_);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        ++open_;
      }
      s->reader->StartCall(&s->start_tag);
    }
    return started;
  }

  // Waits until every subscriber has its snapshot (or has ended); false on timeout.
  bool WaitSynced(std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(
        lock, timeout, [&] { return synced_ + ended_ >= static_cast<int>(subscribers_.size()); });
  }

  // Receipts of events stamped in [from, to] (Unix ns) are kept from now until StopRecording.
  void StartRecording(std::int64_t from, std::int64_t to) {
    window_from_ = from;
    window_to_ = to;
    recording_ = true;
  }
  void StopRecording() { recording_ = false; }

  // Cancels every stream and waits for them to finish.
  void Stop() {
    if (stopping_.exchange(true)) return;
    for (auto& s : subscribers_) s->context.TryCancel();
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return open_ == 0; });
    }
    queue_.Shutdown();
    for (std::thread& thread : threads_) thread.join();
  }

  struct Result {
    std::vector<double> snapshot_seconds;       // Per subscriber that synced: from its Subscribe.
    std::vector<double> first_message_seconds;  // Per subscriber: its Subscribe to its first.
    std::vector<double> longest_pauses;  // Per subscriber: between two messages before SYNCED.
    Clock::time_point last_synced{};
    std::map<std::string, int> ended;            // By the server, before Stop: by code and message.
    std::vector<std::vector<Receipt>> receipts;  // Per subscriber.
    int subscribers = 0;
  };
  // After Stop.
  Result Take() {
    Result r;
    r.subscribers = static_cast<int>(subscribers_.size());
    for (auto& s : subscribers_) {
      if (s->synced) {
        r.snapshot_seconds.push_back(Seconds(s->synced_at - s->subscribe_sent).count());
        r.last_synced = std::max(r.last_synced, s->synced_at);
      }
      if (s->first_message != Clock::time_point{}) {
        r.first_message_seconds.push_back(Seconds(s->first_message - s->subscribe_sent).count());
      }
      r.longest_pauses.push_back(s->longest_pause);
      r.receipts.push_back(std::move(s->receipts));
    }
    r.ended = ended_codes_;
    return r;
  }

 private:
  enum class Op { kStart, kRead, kFinish };
  struct Subscriber;
  struct Tag {
    Subscriber* subscriber;
    Op op;
  };
  struct Subscriber {
    std::unique_ptr<v1::Informer::Stub> stub;
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientAsyncReader<v1::Event>> reader;
    v1::Event event;
    grpc::Status status;
    Tag start_tag{}, read_tag{}, finish_tag{};
    Clock::time_point subscribe_sent{};
    Clock::time_point synced_at{};
    bool synced = false;
    // Until SYNCED: when its first message arrived, the last one, and the longest pause between
    // two (a subscriber the server does not write to for a second is ended as not reading).
    Clock::time_point first_message{};
    Clock::time_point last_message{};
    double longest_pause = 0;
    std::vector<Receipt> receipts;
  };

  void Poll() {
    void* tag = nullptr;
    bool ok = false;
    while (queue_.Next(&tag, &ok)) {
      const std::int64_t now = RealtimeNanos();
      Tag& t = *static_cast<Tag*>(tag);
      Subscriber& s = *t.subscriber;
      switch (t.op) {
        case Op::kStart:
        case Op::kRead:
          if (!ok) {
            s.reader->Finish(&s.status, &s.finish_tag);
            break;
          }
          if (t.op == Op::kRead) {
            if (!s.synced) {
              const Clock::time_point at = Clock::now();
              if (s.first_message == Clock::time_point{}) {
                s.first_message = at;
              } else {
                s.longest_pause = std::max(s.longest_pause, Seconds(at - s.last_message).count());
              }
              s.last_message = at;
            }
            if (s.event.batch_size() == 0) {
              OnEvent(s, s.event, now);
            } else {
              for (const v1::Event& event : s.event.batch()) OnEvent(s, event, now);
            }
          }
          s.event.Clear();
          s.reader->Read(&s.event, &s.read_tag);
          break;
        case Op::kFinish: {
          std::lock_guard<std::mutex> lock(mutex_);
          if (!stopping_) {
            ++ended_;
            ++ended_codes_[fmt::format("{} {}", static_cast<int>(s.status.error_code()),
                                       WithoutNumbers(s.status.error_message()))];
          }
          --open_;
          changed_.notify_all();
          break;
        }
      }
    }
  }

  void OnEvent(Subscriber& s, const v1::Event& event, std::int64_t now) {
    switch (event.type()) {
      case v1::Event::SYNCED: {
        s.synced = true;
        s.synced_at = Clock::now();
        std::lock_guard<std::mutex> lock(mutex_);
        ++synced_;
        changed_.notify_all();
        return;
      }
      case v1::Event::MODIFIED: {
        if (!recording_.load(std::memory_order_relaxed)) return;
        const std::int64_t stamp = StampOf(event.object());
        if (stamp < window_from_ || stamp > window_to_) return;
        s.receipts.push_back(
            Receipt{std::strtoull(event.resource_version().c_str(), nullptr, 10), stamp, now});
        return;
      }
      default:
        return;
    }
  }

  const std::uint32_t batch_;
  grpc::CompletionQueue queue_;
  std::vector<std::unique_ptr<Subscriber>> subscribers_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> recording_{false};
  std::atomic<std::int64_t> window_from_{0};
  std::atomic<std::int64_t> window_to_{0};
  std::mutex mutex_;
  std::condition_variable changed_;
  int open_ = 0;
  int synced_ = 0;
  int ended_ = 0;
  std::map<std::string, int> ended_codes_;
};

// ---- Figures.

double Quantile(std::vector<double>& values, double q) {
  if (values.empty()) return 0;
  const std::size_t index =
      std::min(values.size() - 1, static_cast<std::size_t>(q * static_cast<double>(values.size())));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index),
                   values.end());
  return values[index];
}

double Max(const std::vector<double>& values) {
  return values.empty() ? 0 : *std::max_element(values.begin(), values.end());
}

void Print(const std::string& tag, const std::string& text) {
  std::printf("[%s] %s\n", tag.c_str(), text.c_str());
  std::fflush(stdout);
}

struct Figures {
  double p50_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
  std::size_t pairs = 0;
  int ended = 0;
};

Figures RunScenario(const Options& options, const Scenario& scenario, const std::string& tag) {
  bench::FakeapiDeployment deployment(
      options, DeploymentSpec(options, scenario.rate, scenario.subscribers, tag));
  Subscribers subscribers(deployment.grpc_address(), scenario.subscribers, options.bench_threads,
                          options.bench_nice, options.batch);
  const std::string daemon = std::to_string(deployment.daemon_pid());
  const std::string fake = std::to_string(deployment.fake_pid());
  const double snapshot_cpu_daemon = CpuSeconds(daemon);
  const double snapshot_cpu_bench = CpuSeconds("self");
  const Clock::time_point started = subscribers.Start();
  const auto timeout = std::chrono::seconds(options.smoke ? 60 : 600);
  if (!subscribers.WaitSynced(timeout)) Die(tag + ": the snapshots did not complete in time");
  const double snapshot_seconds = Seconds(Clock::now() - started).count();
  const double snapshot_used_daemon = CpuSeconds(daemon) - snapshot_cpu_daemon;
  const double snapshot_used_bench = CpuSeconds("self") - snapshot_cpu_bench;
  std::this_thread::sleep_for(Seconds(options.warmup));

  // The window: events stamped from now for --window seconds.
  const double cpu_daemon = CpuSeconds(daemon);
  const double cpu_fake = CpuSeconds(fake);
  const double cpu_bench = CpuSeconds("self");
  const std::int64_t from = RealtimeNanos();
  const std::int64_t to = from + static_cast<std::int64_t>(options.window * 1e9);
  const Clock::time_point window_start = Clock::now();
  subscribers.StartRecording(from, to);
  std::this_thread::sleep_for(Seconds(options.window));
  const double window = Seconds(Clock::now() - window_start).count();
  const double used_daemon = CpuSeconds(daemon) - cpu_daemon;
  const double used_fake = CpuSeconds(fake) - cpu_fake;
  const double used_bench = CpuSeconds("self") - cpu_bench;
  std::this_thread::sleep_for(Seconds(options.grace));
  subscribers.StopRecording();
  subscribers.Stop();
  Subscribers::Result result = subscribers.Take();

  // Latency per (subscriber, event); per event, the first and last receipt and how many.
  struct PerEvent {
    std::int64_t first = INT64_MAX;
    std::int64_t last = INT64_MIN;
    int receipts = 0;
  };
  std::unordered_map<std::uint64_t, PerEvent> events;
  std::vector<double> latencies;
  for (const auto& receipts : result.receipts) {
    for (const Receipt& r : receipts) {
      latencies.push_back(static_cast<double>(r.received - r.stamp) / 1e6);
      PerEvent& e = events[r.resource_version];
      e.first = std::min(e.first, r.received);
      e.last = std::max(e.last, r.received);
      ++e.receipts;
    }
  }
  int ended = 0;
  for (const auto& [code, count] : result.ended) ended += count;
  const int alive = result.subscribers - ended;
  std::vector<double> spreads;
  std::size_t expected_pairs = 0;
  for (const auto& [rv, e] : events) {
    if (e.receipts >= alive) spreads.push_back(static_cast<double>(e.last - e.first) / 1e6);
    expected_pairs += static_cast<std::size_t>(alive);
  }
  Figures f;
  f.pairs = latencies.size();
  f.p50_ms = Quantile(latencies, 0.50);
  f.p99_ms = Quantile(latencies, 0.99);
  f.max_ms = Max(latencies);
  f.ended = ended;
  const std::size_t missing = expected_pairs > f.pairs ? expected_pairs - f.pairs : 0;
  Print(tag + "-latency",
        fmt::format("p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms from the fake's stamp to each "
                    "subscriber's receipt, over {} (subscriber, event) pairs: {} subscribers x "
                    "{} events in {:.1f} s at {:.0f} ev/s; {} pairs missing after a {:.0f} s grace",
                    f.p50_ms, f.p99_ms, f.max_ms, f.pairs, scenario.subscribers, events.size(),
                    window, scenario.rate, missing, options.grace));
  Print(
      tag + "-spread",
      fmt::format("p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms from the first subscriber's "
                  "receipt of an event to the last's, over {} events every subscriber received",
                  Quantile(spreads, 0.50), Quantile(spreads, 0.99), Max(spreads), spreads.size()));
  std::vector<double> snapshots = result.snapshot_seconds;
  // The last of those that completed (all of them, unless some were ended before).
  const double all = snapshots.empty() ? 0 : Seconds(result.last_synced - started).count();
  Print(tag + "-snapshots",
        fmt::format("{} of {} snapshots of {} objects complete {:.2f} s after the first Subscribe "
                    "was sent (median subscriber {:.2f} s; {:.0f} objects/s in all); CPU s "
                    "until then: informerd {:.2f}, bench {:.2f} in {:.1f} s",
                    snapshots.size(), result.subscribers, options.objects, all,
                    Quantile(snapshots, 0.5),
                    all > 0 ? static_cast<double>(snapshots.size() * options.objects) / all : 0,
                    snapshot_used_daemon, snapshot_used_bench, snapshot_seconds));
  Print(tag + "-snapshot-pauses",
        fmt::format("first message {:.2f} s after Subscribe (median), {:.2f} s (max); longest "
                    "pause between two messages of a snapshot {:.3f} s (median subscriber), "
                    "{:.3f} s (max)",
                    Quantile(result.first_message_seconds, 0.5), Max(result.first_message_seconds),
                    Quantile(result.longest_pauses, 0.5), Max(result.longest_pauses)));
  std::string codes;
  for (const auto& [code, count] : result.ended) codes += fmt::format("; {} x {}", count, code);
  Print(tag + "-ended",
        fmt::format("{} subscribers ended by the server{}", ended, codes.empty() ? "" : codes));
  Print(tag + "-cpu",
        fmt::format("CPU s in {:.1f} s: informerd {:.2f}, fakeapi {:.2f}, bench {:.2f}", window,
                    used_daemon, used_fake, used_bench));
  return f;
}

std::vector<Scenario> ParseScenarios(const std::string& list, bool& search) {
  std::vector<Scenario> scenarios;
  search = false;
  std::istringstream items(list);
  std::string item;
  while (std::getline(items, item, ',')) {
    if (item == "search") {
      search = true;
      continue;
    }
    const std::size_t x = item.find('x');
    if (x == std::string::npos) Die("--only: \"" + item + "\" is not NxR or search");
    Scenario s{std::atoi(item.substr(0, x).c_str()), std::strtod(item.c_str() + x + 1, nullptr)};
    if (s.subscribers < 1 || s.rate <= 0) Die("--only: \"" + item + "\" is not NxR or search");
    scenarios.push_back(s);
  }
  return scenarios;
}

}  // namespace
}  // namespace informerd

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  using informerd::bench::Die;
  using informerd::bench::SmokeDefault;
  informerd::Options options;
  std::string only = "100x200,1000x20,search";
  // clang-format off
  po::options_description flags = informerd::bench::FlagsDescription(
      "usage: fanout_bench [flags]\n"
      "Fan-out latency from the fake apiserver's event to N gRPC subscribers' receipt; flags");
  informerd::bench::AddFakeapiRunFlags(flags, options);
  flags.add_options()
      ("only", po::value(&only)->default_value(only)->value_name("LIST"),
       "the scenarios to run, comma-separated: NxR (N subscribers at R events/s) or search")
      ("grace", po::value(&options.grace)->default_value(options.grace)->value_name("S"),
       "seconds receipts are collected after the window")
      ("search-start",
       po::value(&options.search_start)->default_value(options.search_start)->value_name("N"),
       "the search's first subscriber count (doubled each step)")
      ("search-max",
       po::value(&options.search_max)->default_value(options.search_max)->value_name("N"),
       "the search's largest subscriber count")
      ("search-rate",
       po::value(&options.search_rate)->default_value(options.search_rate)->value_name("R"),
       "the search's events per second")
      ("search-p99-ms",
       po::value(&options.search_p99_ms)->default_value(options.search_p99_ms)->value_name("MS"),
       "the search's bound on p99 latency")
      ("bench-threads",
       po::value(&options.bench_threads)->default_value(options.bench_threads)->value_name("N"),
       "threads of this process polling the subscribers' streams")
      ("bench-nice",
       po::value(&options.bench_nice)->default_value(options.bench_nice)->value_name("N"),
       "nice value of the polling threads")
      ("batch", po::value(&options.batch)->default_value(options.batch)->value_name("N"),
       "subscribers ask for up to N events per message (max_events_per_message); 0: one per "
       "message");
  // clang-format on
  const po::variables_map given = informerd::bench::ParseFlags(argc, argv, flags, options.smoke);
  if (options.smoke) {
    SmokeDefault(given, "objects", options.objects, 200);
    SmokeDefault(given, "namespaces", options.namespaces, 4);
    SmokeDefault(given, "window", options.window, 1);
    SmokeDefault(given, "warmup", options.warmup, 0.5);
    SmokeDefault(given, "grace", options.grace, 1);
    SmokeDefault(given, "only", only, "10x200,40x20,search");
    SmokeDefault(given, "search-start", options.search_start, 10);
    SmokeDefault(given, "search-max", options.search_max, 20);
  }
  options.scenarios = informerd::ParseScenarios(only, options.search);
  if (options.objects < 1 || options.window <= 0 || options.bench_threads < 1 ||
      options.search_start < 1) {
    Die("bad numbers");
  }
  informerd::bench::PrepareFakeapiRun(argv[0], "fanout_bench", options);
  signal(SIGPIPE, SIG_IGN);
  std::printf(
      "fanout_bench: informerd and fakeapi_server as separate processes, %zu pods of ~%zu bytes, "
      "subscribers in this process (%d polling threads at nice %d, %s), on %u CPUs%s%s; logs "
      "in %s\n",
      options.objects, options.object_bytes, options.bench_threads, options.bench_nice,
      options.batch > 1 ? fmt::format("up to {} events per message", options.batch).c_str()
                        : "one event per message",
      std::thread::hardware_concurrency(), options.smoke ? " (--smoke: small numbers)" : "",
      informerd::bench::PinningText(options).c_str(), options.temp_dir.c_str());
  std::fflush(stdout);
  for (const informerd::Scenario& s : options.scenarios) {
    informerd::RunScenario(options, s, fmt::format("fanout-{}x{:.0f}", s.subscribers, s.rate));
  }
  if (options.search) {
    int largest = 0;
    double largest_p99 = 0;
    for (int n = options.search_start; n <= options.search_max; n *= 2) {
      const informerd::Figures f = informerd::RunScenario(options, {n, options.search_rate},
                                                          fmt::format("fanout-search-{}", n));
      if (f.pairs == 0 || f.ended > 0 || f.p99_ms > options.search_p99_ms) break;
      largest = n;
      largest_p99 = f.p99_ms;
    }
    informerd::Print(
        "fanout-search",
        fmt::format("largest subscriber count with p99 <= {:.0f} ms at {:.0f} ev/s (doubling from "
                    "{} up to {}): {} (p99 {:.2f} ms){}",
                    options.search_p99_ms, options.search_rate, options.search_start,
                    options.search_max, largest, largest_p99,
                    largest == 0                       ? "; none stayed within the bound"
                    : largest * 2 > options.search_max ? "; the most tried (raise --search-max)"
                                                       : ""));
  }
  return 0;
}
