#include "test/e2e/chaos_run.h"

#include <dirent.h>
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "informerd/v1/informerd.grpc.pb.h"
#include "rapidjson/document.h"
#include "test/cluster/cluster_fixture.h"
#include "test/common/http_client.h"
#include "test/common/run_subprocess.h"
#include "test/common/subprocess.h"
#include "test/e2e/chaos_history.h"

namespace informerd::test::chaos {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kInformerd[] = "cmd/informerd/informerd";
constexpr char kResource[] = "configmaps";

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

uint64_t ParseVersion(const std::string& text) {
  if (text.empty()) return 0;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text.c_str(), &end, 10);
  return *end == '\0' ? value : 0;
}

// ---- What every thread shares ----------------------------------------------------------

struct Shared {
  explicit Shared(const ChaosOptions& run_options)
      : options(&run_options),
        findings(names, [this](const std::string& what) { Progress("VIOLATION " + what); }) {}

  const ChaosOptions* options;
  Names names;
  Findings findings;
  std::atomic<bool> final_phase{false};
  // Events the reference subscriber has received (the slow one's measure of time).
  std::atomic<uint64_t> reference_events{0};
  const Clock::time_point start = Clock::now();
  std::mutex progress_mu;

  void Violation(std::string what) { findings.Violation(std::move(what)); }
  void Progress(const std::string& line) {
    if (options->progress == nullptr) return;
    std::lock_guard<std::mutex> lock(progress_mu);
    *options->progress << fmt::format("[{:7.1f}s] {}\n", SecondsSince(start), line) << std::flush;
  }
  std::string Describe(uint32_t key, const Obj& obj) const { return findings.Describe(key, obj); }
};

// Reads namespace, name, uid, resourceVersion and the app label of an object's JSON.
struct ParsedObject {
  std::string namespace_name, name, uid;
  uint64_t rv = 0;
  uint8_t app = 0;
};
std::optional<ParsedObject> ParseObject(const rapidjson::Value& object) {
  if (!object.IsObject()) return std::nullopt;
  auto metadata = object.FindMember("metadata");
  if (metadata == object.MemberEnd() || !metadata->value.IsObject()) return std::nullopt;
  const rapidjson::Value& m = metadata->value;
  auto text = [&](const char* name) -> std::string {
    auto it = m.FindMember(name);
    return it != m.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
  };
  ParsedObject parsed;
  parsed.namespace_name = text("namespace");
  parsed.name = text("name");
  parsed.uid = text("uid");
  parsed.rv = ParseVersion(text("resourceVersion"));
  auto labels = m.FindMember("labels");
  if (labels != m.MemberEnd() && labels->value.IsObject()) {
    auto app = labels->value.FindMember("app");
    if (app != labels->value.MemberEnd() && app->value.IsString()) {
      parsed.app = AppCode(app->value.GetString());
    }
  }
  return parsed;
}
std::optional<ParsedObject> ParseObjectText(const std::string& json) {
  rapidjson::Document document;
  document.Parse(json.data(), json.size());
  if (document.HasParseError()) return std::nullopt;
  return ParseObject(document);
}

// ---- A REST client for the writers (HTTPS, bearer token, keep-alive) ------------------------

class RestClient {
 public:
  struct Reply {
    int status = 0;
    std::string body;
  };

  RestClient(std::uint16_t port, const std::string& ca_file, std::string token)
      : port_(port), token_(std::move(token)) {
    tls_.load_verify_file(ca_file);
    tls_.set_verify_mode(ssl::verify_peer);
  }

  // One request; nullopt when no answer came (the connection failed or broke, or 30 s passed):
  // the request may or may not have been applied.
  std::optional<Reply> Call(http::verb verb, const std::string& target,
                            const std::string& body = "",
                            const std::string& content_type = "application/json") {
    if (!stream_ && !Connect()) return std::nullopt;
    http::request<http::string_body> request(verb, target, 11);
    request.set(http::field::host, fmt::format("127.0.0.1:{}", port_));
    request.set(http::field::authorization, "Bearer " + token_);
    request.set(http::field::accept, "application/json");
    if (!body.empty()) request.set(http::field::content_type, content_type);
    request.body() = body;
    request.prepare_payload();
    request.keep_alive(true);
    http::response<http::string_body> response;
    beast::error_code result;
    beast::get_lowest_layer(*stream_).expires_after(seconds(30));
    http::async_write(*stream_, request, [&](beast::error_code ec, std::size_t) {
      if (ec) {
        result = ec;
        return;
      }
      http::async_read(*stream_, buffer_, response,
                       [&](beast::error_code ec, std::size_t) { result = ec; });
    });
    io_.restart();
    io_.run();
    if (result) {
      stream_.reset();
      buffer_.clear();
      return std::nullopt;
    }
    if (!response.keep_alive()) {
      stream_.reset();
      buffer_.clear();
    }
    return Reply{static_cast<int>(response.result_int()), std::move(response.body())};
  }

 private:
  bool Connect() {
    stream_.emplace(io_, tls_);
    beast::error_code result;
    beast::get_lowest_layer(*stream_).expires_after(seconds(10));
    stream_->set_verify_callback(ssl::host_name_verification("127.0.0.1"));
    beast::get_lowest_layer(*stream_).async_connect(
        tcp::endpoint(asio::ip::address_v4::loopback(), port_), [&](beast::error_code ec) {
          if (ec) {
            result = ec;
            return;
          }
          stream_->async_handshake(ssl::stream_base::client,
                                   [&](beast::error_code ec) { result = ec; });
        });
    io_.restart();
    io_.run();
    if (result) {
      stream_.reset();
      return false;
    }
    return true;
  }

  asio::io_context io_;
  ssl::context tls_{ssl::context::tls_client};
  const std::uint16_t port_;
  const std::string token_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream_;
  beast::flat_buffer buffer_;
};

// ---- The writers' record ----------------------------------------------------------------

class WriteLog {
 public:
  void Add(const Write& write) {
    std::lock_guard<std::mutex> lock(mu_);
    writes_.push_back(write);
  }
  std::vector<Write> writes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return writes_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Write> writes_;
};

// One namespace's writer: its own objects, one operation at a time.
class Writer {
 public:
  Writer(Shared& shared, WriteLog& log, const TestCluster& cluster, std::uint16_t apiserver_port,
         std::string namespace_name, std::uint64_t seed)
      : shared_(shared),
        log_(log),
        client_(apiserver_port, cluster.ca_file(), cluster.token(Identity::kAdminToken)),
        ns_(std::move(namespace_name)),
        ns_id_(shared.names.Id(ns_)),
        random_(seed) {}
  ~Writer() { Stop(); }

  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  // After Stop(): one more update, whose version the end waits for; its key and the object
  // written. nullopt if it failed.
  std::optional<std::pair<uint32_t, Obj>> FinalWrite() {
    if (objects_.empty()) Create();
    if (objects_.empty()) return std::nullopt;
    const std::string name = objects_.begin()->first;
    if (!Update(name, /*relabel=*/false)) return std::nullopt;
    return std::make_pair(shared_.names.Id(ns_ + "/" + name), objects_.at(name));
  }

  std::uint64_t creates = 0, updates = 0, relabels = 0, deletes = 0, resolved = 0;

 private:
  std::string Collection() const { return fmt::format("/api/v1/namespaces/{}/configmaps", ns_); }
  std::string Path(const std::string& name) const { return Collection() + "/" + name; }

  bool Stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_;
  }
  // Sleeps `duration` unless stopped first; false if stopped.
  bool Sleep(milliseconds duration) {
    std::unique_lock<std::mutex> lock(mu_);
    return !changed_.wait_for(lock, duration, [&] { return stop_; });
  }

  void Loop() {
    const auto interval = std::chrono::duration<double>(1.0 / shared_.options->writes_per_second);
    std::uniform_real_distribution<double> jitter(0.5, 1.5);
    std::uniform_real_distribution<double> pick(0, 1);
    while (!Stopping()) {
      const int population = static_cast<int>(objects_.size());
      const double p = pick(random_);
      if (population < shared_.options->min_objects ||
          (p < 0.3 && population < shared_.options->max_objects)) {
        Create();
      } else if (population > shared_.options->max_objects || p >= 0.8) {
        Delete();
      } else {
        Update(RandomName(), /*relabel=*/p >= 0.6);
      }
      if (!Sleep(std::chrono::duration_cast<milliseconds>(interval * jitter(random_)))) return;
    }
  }

  std::string RandomName() {
    std::uniform_int_distribution<std::size_t> index(0, objects_.size() - 1);
    auto it = objects_.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(index(random_)));
    return it->first;
  }

  // Sends until an answer comes; nullopt if stopped before (only while not Stopping-exempt).
  std::optional<RestClient::Reply> CallUntilAnswered(http::verb verb, const std::string& target,
                                                     const std::string& body,
                                                     const std::string& content_type,
                                                     bool* ambiguous) {
    for (int attempt = 0;; ++attempt) {
      std::optional<RestClient::Reply> reply = client_.Call(verb, target, body, content_type);
      if (reply && reply->status != 429 && reply->status < 500) return reply;
      // No answer, or the apiserver could not do it now (starting, etcd busy): it may have been
      // applied (a 5xx after etcd took it is possible too), so whoever retries must check.
      *ambiguous = true;
      if (attempt > 600) return std::nullopt;  // a minute or more: give up on this one
      std::this_thread::sleep_for(milliseconds(100));
    }
  }

  // Reads the object back (retrying until the apiserver answers): nullopt if it does not exist.
  std::optional<ParsedObject> ReadBack(const std::string& name, std::string* seq) {
    bool ignored = false;
    std::optional<RestClient::Reply> reply =
        CallUntilAnswered(http::verb::get, Path(name), "", "", &ignored);
    if (!reply || reply->status == 404) return std::nullopt;
    rapidjson::Document document;
    document.Parse(reply->body.data(), reply->body.size());
    if (document.HasParseError()) return std::nullopt;
    auto data = document.FindMember("data");
    if (data != document.MemberEnd() && data->value.IsObject()) {
      auto it = data->value.FindMember("seq");
      if (it != data->value.MemberEnd() && it->value.IsString()) *seq = it->value.GetString();
    }
    return ParseObject(document);
  }

  void Record(char op, const std::string& name, const ParsedObject& object) {
    Obj obj{ns_id_, shared_.names.Id(object.uid), object.rv, object.app};
    objects_[name] = obj;
    log_.Add(Write{op, shared_.names.Id(ns_ + "/" + name), obj});
  }

  // The applied object from a write's answer, or, when the answer was lost, from reading it
  // back (applied iff the object carries this write's sequence number).
  void Conclude(char op, const std::string& name, const std::optional<RestClient::Reply>& reply,
                bool ambiguous, const std::string& seq) {
    if (reply && (reply->status == 200 || reply->status == 201)) {
      if (std::optional<ParsedObject> object = ParseObjectText(reply->body)) {
        Record(op, name, *object);
        return;
      }
    }
    if (!ambiguous && reply) {
      shared_.Violation(fmt::format("writer {}: {} {} answered {}: {}", ns_, op, name,
                                    reply->status, reply->body.substr(0, 300)));
      return;
    }
    // 409 AlreadyExists after a lost answer, or no answer at all: look.
    ++resolved;
    std::string found_seq;
    std::optional<ParsedObject> object = ReadBack(name, &found_seq);
    if (object && found_seq == seq) Record(op, name, *object);
  }

  std::string NextSeq() { return std::to_string(++seq_); }

  void Create() {
    const std::string name = fmt::format("cm-{:05}", next_name_++);
    const std::string seq = NextSeq();
    const char* app = random_() % 2 == 0 ? "a" : "b";
    const std::string body = fmt::format(
        R"({{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{}","namespace":"{}",)"
        R"("labels":{{"chaos":"on","app":"{}"}}}},"data":{{"seq":"{}","filler":"{}"}}}})",
        name, ns_, app, seq, std::string(shared_.options->filler_bytes, 'x'));
    bool ambiguous = false;
    auto reply =
        CallUntilAnswered(http::verb::post, Collection(), body, "application/json", &ambiguous);
    if (reply && reply->status == 409) ambiguous = true;
    Conclude('C', name, reply, ambiguous, seq);
    ++creates;
  }

  bool Update(const std::string& name, bool relabel) {
    const std::string seq = NextSeq();
    const Obj before = objects_.at(name);
    const char* app = before.app == 1 ? "b" : "a";
    const std::string body =
        relabel ? fmt::format(R"({{"metadata":{{"labels":{{"app":"{}"}}}},"data":{{"seq":"{}"}}}})",
                              app, seq)
                : fmt::format(R"({{"data":{{"seq":"{}"}}}})", seq);
    bool ambiguous = false;
    auto reply = CallUntilAnswered(http::verb::patch, Path(name), body,
                                   "application/merge-patch+json", &ambiguous);
    Conclude(relabel ? 'L' : 'U', name, reply, ambiguous, seq);
    ++(relabel ? relabels : updates);
    return !(objects_.at(name) == before);
  }

  void Delete() {
    const std::string name = RandomName();
    const Obj before = objects_.at(name);
    bool ambiguous = false;
    auto reply = CallUntilAnswered(http::verb::delete_, Path(name), "", "", &ambiguous);
    bool deleted = reply && reply->status == 200;
    if (reply && reply->status == 404 && ambiguous) deleted = true;  // an earlier try did it
    if (!deleted && (ambiguous || !reply)) {
      ++resolved;
      std::string ignored;
      deleted = !ReadBack(name, &ignored).has_value();
    } else if (!deleted) {
      shared_.Violation(fmt::format("writer {}: delete {} answered {}: {}", ns_, name,
                                    reply->status, reply->body.substr(0, 300)));
    }
    if (deleted) {
      log_.Add(Write{'D', shared_.names.Id(ns_ + "/" + name), before});
      objects_.erase(name);
      ++deletes;
    }
  }

  Shared& shared_;
  WriteLog& log_;
  RestClient client_;
  const std::string ns_;
  const uint32_t ns_id_;
  std::mt19937_64 random_;
  std::map<std::string, Obj> objects_;  // what exists now, as this writer last wrote it
  int next_name_ = 0;
  std::uint64_t seq_ = 0;
  std::mutex mu_;
  std::condition_variable changed_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

// ---- informerd --------------------------------------------------------------------------

class InformerdProcess {
 public:
  static std::unique_ptr<InformerdProcess> Start(const std::vector<std::string>& argv,
                                                 std::string* error) {
    absl::StatusOr<Subprocess> process = Subprocess::Start(argv);
    if (!process.ok()) {
      *error = process.status().ToString();
      return nullptr;
    }
    absl::StatusOr<std::string> line = process->WaitForLine("gRPC listening on ", seconds(60));
    if (!line.ok()) {
      *error = fmt::format("informerd did not start: {}\n{}", line.status().ToString(),
                           process->stderr_text());
      return nullptr;
    }
    auto self = std::unique_ptr<InformerdProcess>(new InformerdProcess(*std::move(process)));
    self->grpc_address_ = AddressAfter(self->process_.stderr_text(), "gRPC listening on ");
    self->metrics_address_ = AddressAfter(self->process_.stderr_text(), "metrics listening on ");
    self->log_ = self->process_.stderr_text();
    self->copied_ = self->log_.size();
    self->drain_ = std::thread([raw = self.get()] { raw->Drain(); });
    return self;
  }
  ~InformerdProcess() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    drain_.join();
  }

  const std::string& grpc_address() const { return grpc_address_; }
  const std::string& metrics_address() const { return metrics_address_; }
  pid_t pid() const { return pid_; }
  std::string log() const {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }
  bool exited() const {
    std::lock_guard<std::mutex> lock(mu_);
    return exited_;
  }

  ProcessSample Sample(Clock::time_point start) const {
    ProcessSample sample;
    sample.seconds = SecondsSince(start);
    std::ifstream status(fmt::format("/proc/{}/status", pid_));
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0) sample.rss_kib = std::strtol(line.c_str() + 6, nullptr, 10);
    }
    if (DIR* dir = opendir(fmt::format("/proc/{}/fd", pid_).c_str())) {
      while (dirent* entry = readdir(dir)) {
        if (entry->d_name[0] != '.') ++sample.fds;
      }
      closedir(dir);
    }
    return sample;
  }

 private:
  explicit InformerdProcess(Subprocess process)
      : process_(std::move(process)), pid_(process_.pid()) {}

  static std::string AddressAfter(const std::string& log, const std::string& marker) {
    const std::size_t at = log.find(marker);
    if (at == std::string::npos) return "";
    const std::size_t start = at + marker.size();
    return log.substr(start, log.find_first_of(" \"\n", start) - start);
  }

  void Drain() {
    while (true) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return;
      }
      (void)process_.WaitForLine("\x01\x02", milliseconds(100));
      const bool exited = process_.Wait(milliseconds(0)).ok();
      const std::string& text = process_.stderr_text();
      {
        std::lock_guard<std::mutex> lock(mu_);
        log_.append(text, copied_, std::string::npos);
        copied_ = text.size();
        exited_ = exited;
      }
      std::this_thread::sleep_for(milliseconds(exited ? 200 : 20));
    }
  }

  Subprocess process_;  // touched by the drain thread only after construction
  const pid_t pid_;
  std::string grpc_address_, metrics_address_;
  mutable std::mutex mu_;
  std::string log_;         // guarded by mu_
  std::size_t copied_ = 0;  // guarded by mu_
  bool exited_ = false;     // guarded by mu_
  bool stop_ = false;       // guarded by mu_
  std::thread drain_;
};

// The sum of the samples of `name` whose labels include `labels`; 0 if none.
double MetricSum(const std::string& metrics, const std::string& name,
                 const std::vector<std::string>& labels) {
  double sum = 0;
  std::istringstream lines(metrics);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#' || line.compare(0, name.size(), name) != 0) continue;
    if (line.size() <= name.size() || (line[name.size()] != '{' && line[name.size()] != ' ')) {
      continue;
    }
    const std::size_t value_at = line.rfind(' ');
    const std::string head = line.substr(0, value_at);
    bool match = true;
    for (const std::string& label : labels) match &= head.find(label) != std::string::npos;
    if (match) sum += std::strtod(line.c_str() + value_at + 1, nullptr);
  }
  return sum;
}

// ---- Subscribers ------------------------------------------------------------------------

struct SubscriberCounts {
  uint64_t events = 0;
  int streams = 0, snapshots = 0, resumes = 0, out_of_range = 0, fell_behind = 0, left = 0,
      fresh_joins = 0, unavailable = 0;
};

// One client of Subscribe on its own thread and connection: its history (ClientHistory) and
// its behaviour (the reference stays; a churner leaves and comes back; the slow one stops
// reading now and then).
class Subscriber {
 public:
  enum class Role { kReference, kChurner, kSlow };

  Subscriber(Shared& shared, std::string name, Role role, Filter filter, std::string ns,
             std::string selector, const std::string& address, std::uint64_t seed)
      : shared_(shared),
        role_(role),
        ns_(std::move(ns)),
        selector_(std::move(selector)),
        random_(seed),
        history_(std::move(name), filter, shared.findings) {
    grpc::ChannelArguments args;
    args.SetInt("informerd.chaos.channel", static_cast<int>(seed));  // a connection of its own
    if (role == Role::kSlow) {
      // A small window, so that not reading soon stops the daemon's writes and its queue grows.
      args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
      args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 8 << 10);
    }
    stub_ = v1::Informer::NewStub(
        grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
  }
  ~Subscriber() { Stop(); }

  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      if (context_ != nullptr) context_->TryCancel();
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  // Ends the stream (or the absence) under way, so that the client reconnects at once, for good
  // once the final phase has begun.
  void Kick() {
    std::lock_guard<std::mutex> lock(mu_);
    kicked_ = true;
    if (context_ != nullptr) context_->TryCancel();
    changed_.notify_all();
  }

  const std::string& name() const { return history_.name(); }
  const Filter& filter() const { return history_.filter(); }
  bool Holds() const {
    std::lock_guard<std::mutex> lock(mu_);
    return history_.holds();
  }
  // Connected now, holding a complete state.
  bool Connected() const {
    std::lock_guard<std::mutex> lock(mu_);
    return history_.holds() && context_ != nullptr;
  }
  State state() const {
    std::lock_guard<std::mutex> lock(mu_);
    return history_.state();
  }
  std::vector<Epoch> epochs() const {
    std::lock_guard<std::mutex> lock(mu_);
    return history_.epochs();
  }
  SubscriberCounts counts() const {
    std::lock_guard<std::mutex> lock(mu_);
    SubscriberCounts counts = counts_;
    counts.events = history_.events();
    counts.snapshots = static_cast<int>(history_.epochs().size());
    return counts;
  }

 private:
  bool Stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_;
  }
  bool Kicked() {
    std::lock_guard<std::mutex> lock(mu_);
    return kicked_;
  }
  // Sleeps `duration`, or less if kicked; false if stopped.
  bool Sleep(milliseconds duration) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait_for(lock, duration, [&] { return stop_ || kicked_; });
    return !stop_;
  }
  milliseconds Uniform(milliseconds low, milliseconds high) {
    std::uniform_int_distribution<long> pick(low.count(), std::max(low.count(), high.count()));
    return milliseconds(pick(random_));
  }

  void Loop() {
    next_pause_ = Clock::now() + seconds(5);
    while (true) {
      const grpc::Status status = OneStream();
      bool away = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return;
        switch (status.error_code()) {
          case grpc::StatusCode::DEADLINE_EXCEEDED:  // its own time was up: it leaves
          case grpc::StatusCode::CANCELLED:          // kicked
            ++counts_.left;
            break;
          case grpc::StatusCode::OUT_OF_RANGE:
            ++counts_.out_of_range;
            history_.OutOfRange();
            break;
          case grpc::StatusCode::RESOURCE_EXHAUSTED:
            ++counts_.fell_behind;
            break;
          case grpc::StatusCode::UNAVAILABLE:
            ++counts_.unavailable;
            break;
          default:
            shared_.Violation(fmt::format("{}: stream ended {} {}", history_.name(),
                                          static_cast<int>(status.error_code()),
                                          status.error_message()));
        }
        away = role_ == Role::kChurner && !shared_.final_phase.load() && !kicked_ &&
               status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
        kicked_ = false;
      }
      if (!away) continue;
      // Left on its own: away for a while, then back, resuming or as a new client.
      if (!Sleep(Uniform(shared_.options->away_min, shared_.options->away_max))) return;
      std::uniform_real_distribution<double> pick(0, 1);
      if (pick(random_) < shared_.options->fresh_join_probability) {
        std::lock_guard<std::mutex> lock(mu_);
        ++counts_.fresh_joins;
        history_.Forget();
      }
    }
  }

  // One Subscribe call, from the resume point if there is one, else a snapshot.
  grpc::Status OneStream() {
    grpc::ClientContext context;
    v1::SubscribeRequest request;
    request.set_resource(kResource);
    request.set_namespace_(ns_);
    request.set_label_selector(selector_);
    request.set_allow_bookmarks(role_ == Role::kChurner);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return grpc::Status::CANCELLED;
      const bool leaves = role_ == Role::kChurner && !shared_.final_phase.load();
      const milliseconds stay = leaves
                                    ? Uniform(shared_.options->stay_min, shared_.options->stay_max)
                                    : milliseconds(std::chrono::hours(2));
      context.set_deadline(std::chrono::system_clock::now() + stay);
      request.set_resource_version(history_.BeginStream());
      if (!request.resource_version().empty()) ++counts_.resumes;
      ++counts_.streams;
      context_ = &context;
    }
    std::unique_ptr<grpc::ClientReader<v1::Event>> reader = stub_->Subscribe(&context, request);
    v1::Event event;
    while (reader->Read(&event)) {
      if (role_ == Role::kSlow && !shared_.final_phase.load() && Clock::now() >= next_pause_) {
        // Stops reading: the daemon's queue for it grows until it is ended.
        const uint64_t from = shared_.reference_events.load();
        const Clock::time_point give_up = Clock::now() + shared_.options->slow_pause;
        while (shared_.reference_events.load() - from <
                   static_cast<uint64_t>(shared_.options->slow_pause_events) &&
               Clock::now() < give_up && Sleep(milliseconds(100)) && !Kicked()) {
        }
        next_pause_ = Clock::now() + shared_.options->slow_period;
      }
      std::optional<Ev> parsed = Parse(event);
      std::lock_guard<std::mutex> lock(mu_);
      if (!parsed) {
        shared_.Violation(fmt::format("{}: an event that does not parse: type {} rv {} {}",
                                      history_.name(), static_cast<int>(event.type()),
                                      event.resource_version(), event.object().substr(0, 200)));
        continue;
      }
      const bool live = history_.holds();
      history_.Receive(*parsed);
      if (role_ == Role::kReference && live && parsed->type != 'B') {
        ++shared_.reference_events;
      }
    }
    const grpc::Status status = reader->Finish();
    std::lock_guard<std::mutex> lock(mu_);
    context_ = nullptr;
    return status;
  }

  std::optional<Ev> Parse(const v1::Event& event) {
    Ev ev;
    ev.rv = ParseVersion(event.resource_version());
    switch (event.type()) {
      case v1::Event::ADDED:
        ev.type = 'A';
        break;
      case v1::Event::MODIFIED:
        ev.type = 'M';
        break;
      case v1::Event::DELETED:
        ev.type = 'D';
        break;
      case v1::Event::BOOKMARK:
        ev.type = 'B';
        return ev.rv != 0 ? std::optional<Ev>(ev) : std::nullopt;
      case v1::Event::SYNCED:
        ev.type = 'S';
        return ev.rv != 0 ? std::optional<Ev>(ev) : std::nullopt;
      default:
        return std::nullopt;
    }
    std::optional<ParsedObject> object = ParseObjectText(event.object());
    if (!object || ev.rv == 0 || object->rv == 0 || object->name != event.name() ||
        object->namespace_name != event.namespace_() || object->uid != event.uid()) {
      return std::nullopt;
    }
    ev.key = shared_.names.Id(event.namespace_() + "/" + event.name());
    ev.obj = Obj{shared_.names.Id(event.namespace_()), shared_.names.Id(event.uid()), object->rv,
                 object->app};
    return ev;
  }

  Shared& shared_;
  const Role role_;
  const std::string ns_, selector_;
  std::mt19937_64 random_;
  std::unique_ptr<v1::Informer::Stub> stub_;
  Clock::time_point next_pause_;  // the slow one's next pause (its thread only)

  mutable std::mutex mu_;
  std::condition_variable changed_;
  bool stop_ = false;                       // guarded by mu_
  bool kicked_ = false;                     // guarded by mu_
  grpc::ClientContext* context_ = nullptr;  // guarded by mu_
  ClientHistory history_;                   // guarded by mu_
  SubscriberCounts counts_;                 // guarded by mu_
  std::thread thread_;
};

// ---- The List reader --------------------------------------------------------------------

class ListPoller {
 public:
  ListPoller(Shared& shared, const std::string& address, std::vector<std::string> namespaces)
      : shared_(shared), namespaces_(std::move(namespaces)) {
    stub_ = v1::Informer::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  }
  ~ListPoller() { Stop(); }
  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  std::vector<ListRecord> records() const {
    std::lock_guard<std::mutex> lock(mu_);
    return records_;
  }
  int ok() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ok_;
  }
  int unavailable() const {
    std::lock_guard<std::mutex> lock(mu_);
    return unavailable_;
  }
  int failed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return failed_;
  }
  // Calls that took 250 ms or more (waiting for a relist to complete, typically), and the
  // longest.
  int slow() const {
    std::lock_guard<std::mutex> lock(mu_);
    return slow_;
  }
  milliseconds longest() const {
    std::lock_guard<std::mutex> lock(mu_);
    return longest_;
  }

 private:
  void Loop() {
    for (std::size_t round = 0;; ++round) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (changed_.wait_for(lock, shared_.options->poll_interval, [&] { return stop_; })) return;
      }
      const std::size_t which = round % (namespaces_.size() + 1);
      const std::string ns = which == 0 ? "" : namespaces_[which - 1];
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + seconds(5));
      v1::ListRequest request;
      request.set_resource(kResource);
      request.set_namespace_(ns);
      v1::ListResponse response;
      const Clock::time_point asked = Clock::now();
      const grpc::Status status = stub_->List(&context, request, &response);
      const milliseconds took = std::chrono::duration_cast<milliseconds>(Clock::now() - asked);
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (took >= milliseconds(250)) ++slow_;
        longest_ = std::max(longest_, took);
      }
      if (!status.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
            status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
          ++unavailable_;  // waiting out a relist (or the start)
        } else {
          ++failed_;
          shared_.Violation(fmt::format("List {:?}: {} {}", ns,
                                        static_cast<int>(status.error_code()),
                                        status.error_message()));
        }
        continue;
      }
      ListRecord record;
      record.rv = ParseVersion(response.resource_version());
      record.filter.ns = ns.empty() ? kAllNamespaces : shared_.names.Id(ns);
      for (const std::string& item : response.items()) {
        std::optional<ParsedObject> object = ParseObjectText(item);
        if (!object) {
          shared_.Violation(fmt::format("List {:?}: an item that does not parse", ns));
          continue;
        }
        const uint32_t key = shared_.names.Id(object->namespace_name + "/" + object->name);
        const Obj obj{shared_.names.Id(object->namespace_name), shared_.names.Id(object->uid),
                      object->rv, object->app};
        if (obj.rv > record.rv) {
          shared_.Violation(fmt::format("List {:?} at {} holds {}, newer than the List", ns,
                                        record.rv, shared_.Describe(key, obj)));
        }
        if (!record.filter.Match(obj)) {
          shared_.Violation(fmt::format("List {:?} holds {} of another namespace", ns,
                                        shared_.Describe(key, obj)));
        }
        record.items[key] = obj;
      }
      std::lock_guard<std::mutex> lock(mu_);
      ++ok_;
      records_.push_back(std::move(record));
    }
  }

  Shared& shared_;
  const std::vector<std::string> namespaces_;
  std::unique_ptr<v1::Informer::Stub> stub_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  bool stop_ = false;
  std::vector<ListRecord> records_;
  int ok_ = 0, unavailable_ = 0, failed_ = 0, slow_ = 0;
  milliseconds longest_{0};
  std::thread thread_;
};

// Relists' versions: "…: synced N objects at resourceVersion V in …" in informerd's log.
std::set<uint64_t> ListVersions(const std::string& log) {
  std::set<uint64_t> versions;
  const std::string marker = " at resourceVersion ";
  for (std::size_t at = log.find(marker); at != std::string::npos; at = log.find(marker, at + 1)) {
    const std::size_t line_start = log.rfind('\n', at);
    const std::string line =
        log.substr(line_start == std::string::npos ? 0 : line_start + 1,
                   at - (line_start == std::string::npos ? 0 : line_start + 1));
    if (line.find(": synced ") == std::string::npos) continue;
    versions.insert(std::strtoull(log.c_str() + at + marker.size(), nullptr, 10));
  }
  return versions;
}

std::string ConfigYaml(const ChaosOptions& options) {
  // The slow subscriber's pauses last as long as the reference takes to receive
  // slow_pause_events events, often a few seconds, and often begin while its snapshot or a
  // replay is still being read, when the stall budget is subscriberSnapshotStallBudget (default
  // 10 s): a short one, so that such pauses end it too and its resumes are exercised.
  return fmt::format(
      "subscriberQueueCapacity: {}\nsubscriberSnapshotStallBudget: 2s\nresources:\n"
      "  - resource: {}\n",
      options.queue_capacity, kResource);
}

// kubectl's view: `kubectl get configmaps -A -o json`, and the apiserver's list version read
// right after it (kubectl's own List document carries none).
bool KubectlState(Shared& shared, const TestCluster& cluster, State* state, std::string* version) {
  auto run = [&](const std::vector<std::string>& args, rapidjson::Document* document) {
    absl::StatusOr<SubprocessResult> result = cluster.Kubectl(Identity::kAdminToken, args);
    if (!result.ok() || result->exit_code != 0) {
      shared.Violation(fmt::format("kubectl {}: {}", CommandLine(args),
                                   result.ok() ? result->err : result.status().ToString()));
      return false;
    }
    document->Parse(result->out.data(), result->out.size());
    if (document->HasParseError() || !document->IsObject() || !document->HasMember("items") ||
        !(*document)["items"].IsArray()) {
      shared.Violation(fmt::format("kubectl {}: the output does not parse", CommandLine(args)));
      return false;
    }
    return true;
  };
  rapidjson::Document listed;
  if (!run({"get", kResource, "-A", "-o", "json"}, &listed)) return false;
  for (const rapidjson::Value& item : listed["items"].GetArray()) {
    std::optional<ParsedObject> object = ParseObject(item);
    if (!object) continue;
    (*state)[shared.names.Id(object->namespace_name + "/" + object->name)] =
        Obj{shared.names.Id(object->namespace_name), shared.names.Id(object->uid), object->rv,
            object->app};
  }
  rapidjson::Document raw;
  if (!run({"get", "--raw", fmt::format("/api/v1/{}?limit=1", kResource)}, &raw)) return false;
  if (raw.HasMember("metadata") && raw["metadata"].IsObject() &&
      raw["metadata"].HasMember("resourceVersion") &&
      raw["metadata"]["resourceVersion"].IsString()) {
    *version = raw["metadata"]["resourceVersion"].GetString();
  }
  return !version->empty();
}

}  // namespace

std::string ChaosReport::Summary() const {
  std::string out;
  auto line = [&](const std::string& text) { out += text + "\n"; };
  line(
      fmt::format("writes: {} creates, {} updates, {} relabels, {} deletes ({} resolved by "
                  "reading back after a lost answer)",
                  creates, updates, relabels, deletes, writes_resolved));
  line(fmt::format(
      "faults: {} apiserver restarts, {} etcd compactions ({} behind an outage), "
      "{} mid-stream cut rounds, {} cut-all rounds",
      apiserver_restarts, compactions, compaction_outages, mid_stream_cut_rounds, cut_all_rounds));
  line(
      fmt::format("proxy: {} connections, {} cut mid-stream, {} idle ones cut, {} cut all at "
                  "once, {} refused; {} bytes to informerd, {} to the apiserver",
                  proxy.accepted, proxy.cut_mid_stream, proxy.cut_idle, proxy.cut_all,
                  proxy.refused, proxy.bytes_to_client, proxy.bytes_to_upstream));
  std::vector<std::string> reasons;
  for (const auto& [reason, count] : relists) {
    if (count > 0) reasons.push_back(fmt::format("{} {}", reason, count));
  }
  line(
      fmt::format("informerd: relists [{}], {} watch restarts, {} upstream events, {} changes "
                  "applied, {} events delivered, {} subscribers ended for falling behind",
                  fmt::join(reasons, ", "), watch_restarts, upstream_events, events_applied,
                  events_delivered, fell_behind_metric));
  line(
      fmt::format("subscribers: {} ({} streams: {} snapshots, {} resumes, {} OUT_OF_RANGE "
                  "re-snapshots, {} RESOURCE_EXHAUSTED, {} left, {} fresh joins, {} "
                  "UNAVAILABLE); {} events received, {} by the reference",
                  subscribers, streams, snapshots, resumes, out_of_range, fell_behind, left,
                  fresh_joins, unavailable, events_received, reference_events));
  line(
      fmt::format("List: {} answered, {} waited out (UNAVAILABLE/deadline), {} failed; {} took "
                  "250 ms or more (the longest {} ms)",
                  lists_ok, lists_unavailable, lists_failed, lists_slow, longest_list_ms));
  line(
      fmt::format("checked: {} Lists against the reference's state, {} subscriber histories "
                  "and {} snapshots against the reference's, {} writes in the reference",
                  lists_checked, epochs_checked, snapshots_checked, writes_checked));
  line(fmt::format("end: last write at {}, informerd's List at {}, kubectl's at {}, {} objects",
                   final_write_version, final_list_version, kubectl_version, final_objects));
  if (!samples.empty()) {
    line(fmt::format("informerd: RSS {} KiB, {} fds at {:.0f}s; RSS {} KiB, {} fds at {:.0f}s",
                     samples.front().rss_kib, samples.front().fds, samples.front().seconds,
                     samples.back().rss_kib, samples.back().fds, samples.back().seconds));
  }
  line(fmt::format("{} lost, {} duplicated, {} violations", lost, duplicated, violations.size()));
  for (std::size_t i = 0; i < violations.size() && i < 50; ++i) line("  " + violations[i]);
  return out;
}

ChaosReport RunChaos(const ChaosOptions& options) {
  ChaosReport report;
  Shared shared(options);
  std::function<void()> save_logs = [] {};
  auto fail = [&](const std::string& what) {
    save_logs();
    shared.Violation(what);
    report.violations = shared.findings.violations();
    return report;
  };

  ClusterOptions cluster_options;
  cluster_options.watch_cache = options.watch_cache;
  absl::StatusOr<std::unique_ptr<TestCluster>> started = TestCluster::Start(cluster_options);
  if (!started.ok()) return fail("the cluster did not start: " + started.status().ToString());
  TestCluster& cluster = **started;
  const std::uint16_t apiserver_port =
      static_cast<std::uint16_t>(std::stoi(cluster.url().substr(cluster.url().rfind(':') + 1)));
  shared.Progress(fmt::format("cluster up at {} (watch cache {})", cluster.url(),
                              options.watch_cache ? "on" : "off"));

  std::vector<std::string> namespaces;
  std::string setup;
  for (int i = 0; i < options.namespaces; ++i) {
    namespaces.push_back(fmt::format("chaos-{}", i));
    setup += fmt::format("---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {}}}\n",
                         namespaces.back());
  }
  if (absl::Status applied = cluster.ApplyYaml(setup); !applied.ok()) {
    return fail("creating the namespaces: " + applied.ToString());
  }

  if (options.ballast_objects > 0) {
    RestClient client(apiserver_port, cluster.ca_file(), cluster.token(Identity::kAdminToken));
    std::optional<RestClient::Reply> created = client.Call(
        http::verb::post, "/api/v1/namespaces",
        R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"chaos-ballast"}})");
    for (int i = 0; i < options.ballast_objects && created && created->status < 300; ++i) {
      created = client.Call(
          http::verb::post, "/api/v1/namespaces/chaos-ballast/configmaps",
          fmt::format(R"({{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"b-{:05}",)"
                      R"("labels":{{"chaos":"ballast"}}}},"data":{{"v":"{}"}}}})",
                      i, std::string(100, 'b')));
    }
    if (!created || created->status >= 300) {
      return fail(fmt::format("creating the ballast: {}",
                              created ? created->body : std::string("no answer")));
    }
  }

  // informerd, through the proxy.
  FaultProxy proxy(apiserver_port, options.seed);
  proxy.SetDownstreamRate(options.proxy_bytes_per_second);
  const std::string dir = cluster.dir();
  {
    std::ifstream in(cluster.kubeconfig(Identity::kAdminToken));
    std::stringstream text;
    text << in.rdbuf();
    std::string kubeconfig = text.str();
    const std::size_t at = kubeconfig.find(cluster.url());
    if (at == std::string::npos) return fail("the admin kubeconfig does not name the apiserver");
    kubeconfig.replace(at, cluster.url().size(), fmt::format("https://127.0.0.1:{}", proxy.port()));
    std::ofstream(dir + "/chaos-kubeconfig") << kubeconfig;
    std::ofstream(dir + "/chaos-config.yaml") << ConfigYaml(options);
  }
  std::string error;
  std::unique_ptr<InformerdProcess> informerd =
      InformerdProcess::Start({kInformerd, "--config", dir + "/chaos-config.yaml", "--kubeconfig",
                               dir + "/chaos-kubeconfig", "--listen", "127.0.0.1:0",
                               "--metrics-listen", "127.0.0.1:0", "--probe-listen", "127.0.0.1:0"},
                              &error);
  if (!informerd) return fail(error);
  save_logs = [&] {
    if (options.log_dir.empty()) return;
    std::ofstream(options.log_dir + "/informerd.log") << informerd->log();
    std::ifstream apiserver(cluster.apiserver_log());
    std::ofstream(options.log_dir + "/kube-apiserver.log") << apiserver.rdbuf();
  };
  const Clock::time_point informerd_started = Clock::now();
  auto metrics = [&] {
    absl::StatusOr<HttpReply> reply = HttpGet(informerd->metrics_address(), "/metrics");
    return reply.ok() ? reply->body : std::string();
  };
  {
    const auto deadline = Clock::now() + seconds(60);
    while (MetricSum(metrics(), "informerd_resource_synced", {}) < 1) {
      if (Clock::now() > deadline) return fail("informerd did not sync:\n" + informerd->log());
      std::this_thread::sleep_for(milliseconds(100));
    }
  }

  WriteLog write_log;
  std::set<uint32_t> our_namespaces;
  std::vector<std::unique_ptr<Writer>> writers;
  for (std::size_t i = 0; i < namespaces.size(); ++i) {
    our_namespaces.insert(shared.names.Id(namespaces[i]));
    writers.push_back(std::make_unique<Writer>(shared, write_log, cluster, apiserver_port,
                                               namespaces[i], options.seed * 1000 + i));
  }

  // Subscribers: the reference, churners of various filters, the slow one.
  std::vector<std::unique_ptr<Subscriber>> subscribers;
  std::uint64_t seed = options.seed * 7919;
  subscribers.push_back(std::make_unique<Subscriber>(shared, "reference",
                                                     Subscriber::Role::kReference, Filter{}, "", "",
                                                     informerd->grpc_address(), ++seed));
  for (int i = 0; i < options.churners; ++i) {
    Filter filter;
    std::string ns, selector;
    switch (i % 4) {
      case 0:
      case 1:
        ns = namespaces[static_cast<std::size_t>(i) % namespaces.size()];
        break;
      case 2:
        selector = "app=a";
        break;
      case 3:
        ns = namespaces.back();
        selector = "app=b";
        break;
    }
    if (!ns.empty()) filter.ns = shared.names.Id(ns);
    if (!selector.empty()) filter.app = AppCode(selector.substr(4));
    subscribers.push_back(std::make_unique<Subscriber>(
        shared, fmt::format("churner-{} ({:?} {:?})", i, ns, selector), Subscriber::Role::kChurner,
        filter, ns, selector, informerd->grpc_address(), ++seed));
  }
  subscribers.push_back(std::make_unique<Subscriber>(shared, "slow", Subscriber::Role::kSlow,
                                                     Filter{}, "", "", informerd->grpc_address(),
                                                     ++seed));
  for (auto& subscriber : subscribers) subscriber->Start();
  Subscriber& reference = *subscribers.front();
  {
    const auto deadline = Clock::now() + seconds(30);
    while (!reference.Holds()) {
      if (Clock::now() > deadline) return fail("the reference subscriber got no snapshot");
      std::this_thread::sleep_for(milliseconds(50));
    }
  }
  ListPoller poller(shared, informerd->grpc_address(), namespaces);
  poller.Start();
  report.samples.push_back(informerd->Sample(informerd_started));
  shared.Progress(fmt::format("informerd synced; RSS {} KiB, {} fds", report.samples.back().rss_kib,
                              report.samples.back().fds));
  for (auto& writer : writers) writer->Start();

  // The faults, until the end of the run.
  const Clock::time_point chaos_end = Clock::now() + options.duration;
  std::mt19937_64 random(options.seed);
  enum class Fault { kCut, kRestart, kCompactOutage, kCutAll, kCompact };
  const std::vector<Fault> rotation = {Fault::kCut,    Fault::kRestart, Fault::kCompactOutage,
                                       Fault::kCutAll, Fault::kCut,     Fault::kCompact,
                                       Fault::kCut,    Fault::kRestart, Fault::kCompactOutage};
  Clock::time_point next_progress = Clock::now() + options.progress_interval;
  auto progress_line = [&] {
    const ProcessSample sample = informerd->Sample(informerd_started);
    const std::string m = metrics();
    shared.Progress(fmt::format(
        "informerd RSS {} KiB, {} fds; relists {}, watch restarts {}, changes applied {}, "
        "Lists {} ok / {} waited; writes {}",
        sample.rss_kib, sample.fds, MetricSum(m, "informerd_relists_total", {}),
        MetricSum(m, "informerd_watch_restarts_total", {}),
        MetricSum(m, "informerd_events_applied_total", {}), poller.ok(), poller.unavailable(),
        write_log.writes().size()));
    report.samples.push_back(sample);
  };
  for (std::size_t round = 0;; ++round) {
    std::uniform_int_distribution<long> wait(options.fault_interval.count() / 2,
                                             options.fault_interval.count() * 3 / 2);
    const Clock::time_point at = Clock::now() + milliseconds(wait(random));
    while (Clock::now() < at && Clock::now() < chaos_end) {
      if (options.progress_interval.count() > 0 && Clock::now() >= next_progress) {
        progress_line();
        next_progress = Clock::now() + options.progress_interval;
      }
      std::this_thread::sleep_for(milliseconds(100));
    }
    if (Clock::now() >= chaos_end) break;
    if (informerd->exited()) return fail("informerd exited:\n" + informerd->log());
    switch (rotation[round % rotation.size()]) {
      case Fault::kCut: {
        const int armed = proxy.CutMidStream(64 << 10, seconds(5));
        ++report.mid_stream_cut_rounds;
        shared.Progress(fmt::format("fault: mid-stream cut of {} connections", armed));
        break;
      }
      case Fault::kCutAll:
        ++report.cut_all_rounds;
        shared.Progress(fmt::format("fault: cut all {} connections", proxy.CutAll()));
        break;
      case Fault::kRestart: {
        const auto began = Clock::now();
        absl::Status restarted = cluster.RestartApiserver();
        if (!restarted.ok()) return fail("restarting the apiserver: " + restarted.ToString());
        ++report.apiserver_restarts;
        shared.Progress(fmt::format("fault: apiserver restarted ({:.1f}s)", SecondsSince(began)));
        break;
      }
      case Fault::kCompact:
      case Fault::kCompactOutage: {
        const bool outage = rotation[round % rotation.size()] == Fault::kCompactOutage;
        if (outage) {
          proxy.SetRefusing(true);
          proxy.CutAll();
          std::this_thread::sleep_for(options.outage);
        }
        absl::StatusOr<int64_t> revision = cluster.CompactEtcd();
        if (outage) proxy.SetRefusing(false);
        if (!revision.ok()) return fail("compacting etcd: " + revision.status().ToString());
        ++report.compactions;
        if (outage) ++report.compaction_outages;
        shared.Progress(fmt::format("fault: etcd compacted at {}{}", *revision,
                                    outage ? " behind an outage" : ""));
        break;
      }
    }
  }

  // The end: writers stop, one last write, everyone converges on kubectl's state.
  for (auto& writer : writers) writer->Stop();
  // kubectl's state and the apiserver's list version, then one last write after it: informerd
  // reaching that write's version has reached kubectl's too (with the watch cache off, etcd's
  // revision also counts writes of other resources, which informerd's version never shows).
  State expected;
  if (!KubectlState(shared, cluster, &expected, &report.kubectl_version)) {
    return fail("no state from kubectl");
  }
  std::optional<std::pair<uint32_t, Obj>> last_write = writers.front()->FinalWrite();
  if (!last_write) return fail("the final write failed");
  expected[last_write->first] = last_write->second;
  report.final_write_version = std::to_string(last_write->second.rv);
  report.final_objects = expected.size();
  // One bound for all of the end: informerd reaching the last write, then every subscriber.
  const auto settle_deadline = Clock::now() + options.settle_timeout;
  shared.Progress(fmt::format("writers stopped; kubectl's list at {}, last write at {}",
                              report.kubectl_version, report.final_write_version));
  {
    auto stub = v1::Informer::NewStub(
        grpc::CreateChannel(informerd->grpc_address(), grpc::InsecureChannelCredentials()));
    v1::ListRequest request;
    request.set_resource(kResource);
    request.set_min_resource_version(report.final_write_version);
    v1::ListResponse response;
    grpc::Status status;
    const auto deadline = settle_deadline;
    do {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + seconds(20));
      status = stub->List(&context, request, &response);
    } while (!status.ok() && Clock::now() < deadline);
    if (!status.ok()) {
      shared.Violation(fmt::format("List with min_resource_version {}: {} {}",
                                   report.final_write_version,
                                   static_cast<int>(status.error_code()), status.error_message()));
    } else {
      report.final_list_version = response.resource_version();
      State listed;
      for (const std::string& item : response.items()) {
        if (std::optional<ParsedObject> object = ParseObjectText(item)) {
          listed[shared.names.Id(object->namespace_name + "/" + object->name)] =
              Obj{shared.names.Id(object->namespace_name), shared.names.Id(object->uid), object->rv,
                  object->app};
        }
      }
      if (ParseVersion(response.resource_version()) < last_write->second.rv ||
          ParseVersion(response.resource_version()) <= ParseVersion(report.kubectl_version)) {
        shared.Violation(fmt::format(
            "List at {} answered min_resource_version {} (kubectl's list was at {})",
            response.resource_version(), last_write->second.rv, report.kubectl_version));
      }
      if (listed != expected) {
        shared.Violation("informerd's final List differs from kubectl's: " +
                         shared.findings.DescribeDifference(listed, expected));
      }
    }
  }
  // Every subscriber reconnects for good and must reach kubectl's state.
  shared.final_phase = true;
  for (auto& subscriber : subscribers) subscriber->Kick();
  for (auto& subscriber : subscribers) {
    const State want = Filtered(expected, subscriber->filter());
    const auto deadline = settle_deadline;
    while (!(subscriber->Connected() && subscriber->state() == want) && Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(100));
    }
    if (subscriber->state() != want) {
      shared.Violation(fmt::format("{}: its final state is not kubectl's: {}", subscriber->name(),
                                   shared.findings.DescribeDifference(subscriber->state(), want)));
    }
  }
  report.samples.push_back(informerd->Sample(informerd_started));
  poller.Stop();
  for (auto& subscriber : subscribers) subscriber->Stop();
  shared.Progress("converged; checking histories");

  // The figures.
  const std::string m = metrics();
  for (const char* reason :
       {"initial", "expired", "watch-error", "list-error", "watch-list-fallback", "rediscovery"}) {
    report.relists[reason] =
        MetricSum(m, "informerd_relists_total", {fmt::format("reason=\"{}\"", reason)});
  }
  report.watch_restarts = MetricSum(m, "informerd_watch_restarts_total", {});
  report.upstream_events = MetricSum(m, "informerd_upstream_events_total", {});
  report.events_applied = MetricSum(m, "informerd_events_applied_total", {});
  report.events_delivered = MetricSum(m, "informerd_events_delivered_total", {});
  report.fell_behind_metric = MetricSum(m, "informerd_subscribers_fell_behind_total", {});
  report.proxy = proxy.counts();
  for (auto& writer : writers) {
    report.creates += writer->creates;
    report.updates += writer->updates;
    report.relabels += writer->relabels;
    report.deletes += writer->deletes;
    report.writes_resolved += writer->resolved;
  }
  report.subscribers = static_cast<int>(subscribers.size());
  for (auto& subscriber : subscribers) {
    const SubscriberCounts c = subscriber->counts();
    report.events_received += c.events;
    report.streams += c.streams;
    report.snapshots += c.snapshots;
    report.resumes += c.resumes;
    report.out_of_range += c.out_of_range;
    report.fell_behind += c.fell_behind;
    report.left += c.left;
    report.fresh_joins += c.fresh_joins;
    report.unavailable += c.unavailable;
  }
  report.reference_events = reference.counts().events;
  report.lists_ok = poller.ok();
  report.lists_unavailable = poller.unavailable();
  report.lists_failed = poller.failed();
  report.lists_slow = poller.slow();
  report.longest_list_ms = poller.longest().count();

  // The histories.
  Checker checker(reference.epochs(), ListVersions(informerd->log()), our_namespaces,
                  shared.findings);
  report.lists_checked = checker.CheckLists(poller.records());
  for (std::size_t i = 1; i < subscribers.size(); ++i) {
    const Checker::Compared compared = checker.CheckSubscriber(
        subscribers[i]->name(), subscribers[i]->filter(), subscribers[i]->epochs());
    report.epochs_checked += compared.epochs;
    report.snapshots_checked += compared.snapshots;
  }
  report.writes_checked = checker.CheckAgainstWrites(write_log.writes());
  if (report.fell_behind == 0) {
    shared.Violation("the slow subscriber was never ended with RESOURCE_EXHAUSTED");
  }
  if (informerd->exited()) shared.Violation("informerd exited:\n" + informerd->log());

  save_logs();
  report.violations = shared.findings.violations();
  report.lost = shared.findings.lost();
  report.duplicated = shared.findings.duplicated();
  return report;
}

}  // namespace informerd::test::chaos
