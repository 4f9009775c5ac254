#include "test/e2e/cluster_e2e.h"

#include <fmt/format.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "grpc/health/v1/health.grpc.pb.h"
#include "rapidjson/document.h"

namespace informerd::test::e2e {
namespace {

constexpr char kInformerd[] = "cmd/informerd/informerd";
constexpr char kInformerctl[] = "cmd/informerctl/informerctl";
constexpr char kListeningMarker[] = "gRPC listening on ";

std::string MemberString(const rapidjson::Value& object, const char* name) {
  if (!object.IsObject()) return "";
  auto it = object.FindMember(name);
  if (it == object.MemberEnd() || !it->value.IsString()) return "";
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

ObjectKey KeyOfValue(const rapidjson::Value& object) {
  REQUIRE(object.IsObject());
  auto metadata = object.FindMember("metadata");
  REQUIRE(metadata != object.MemberEnd());
  ObjectKey key;
  key.namespace_name = MemberString(metadata->value, "namespace");
  key.name = MemberString(metadata->value, "name");
  key.resource_version = MemberString(metadata->value, "resourceVersion");
  key.uid = MemberString(metadata->value, "uid");
  return key;
}

void SortKeys(std::vector<ObjectKey>& keys) {
  std::sort(keys.begin(), keys.end(), [](const ObjectKey& a, const ObjectKey& b) {
    return std::tie(a.namespace_name, a.name) < std::tie(b.namespace_name, b.name);
  });
}

// Parses "a=\"x\",b=\"y\"" (the inside of a sample's braces).
std::map<std::string, std::string> ParseLabels(const std::string& text) {
  std::map<std::string, std::string> labels;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t equals = text.find('=', i);
    if (equals == std::string::npos || equals + 1 >= text.size() || text[equals + 1] != '"') break;
    const std::string name = text.substr(i, equals - i);
    std::string value;
    std::size_t j = equals + 2;
    for (; j < text.size() && text[j] != '"'; ++j) {
      if (text[j] == '\\' && j + 1 < text.size()) ++j;
      value += text[j];
    }
    labels[name] = value;
    i = j + 1;
    if (i < text.size() && text[i] == ',') ++i;
  }
  return labels;
}

}  // namespace

// ---- The cluster --------------------------------------------------------------------------

std::unique_ptr<TestCluster> StartCluster(const ClusterOptions& options) {
  absl::StatusOr<std::unique_ptr<TestCluster>> cluster = TestCluster::Start(options);
  INFO(cluster.status().ToString());
  REQUIRE(cluster.ok());
  return *std::move(cluster);
}

std::string KubectlOk(const TestCluster& cluster, const std::vector<std::string>& args,
                      const std::string& stdin_text) {
  absl::StatusOr<SubprocessResult> result =
      cluster.Kubectl(Identity::kAdminToken, args, stdin_text);
  INFO(fmt::format("kubectl {}", CommandLine(args)));
  INFO(result.status().ToString());
  REQUIRE(result.ok());
  INFO(fmt::format("exit {}\nstdout: {}\nstderr: {}", result->exit_code, result->out, result->err));
  REQUIRE(result->exit_code == 0);
  return result->out;
}

void ApplyOk(const TestCluster& cluster, const std::string& yaml) {
  absl::Status applied = cluster.ApplyYaml(yaml);
  INFO(applied.ToString());
  REQUIRE(applied.ok());
}

void CreateOk(const TestCluster& cluster, const std::string& yaml) {
  KubectlOk(cluster, {"create", "-f", "-"}, yaml);
}

std::string Describe(const ObjectKey& key) {
  return fmt::format("{}/{} rv={} uid={}", key.namespace_name, key.name, key.resource_version,
                     key.uid);
}

std::vector<std::string> Describe(const std::vector<ObjectKey>& keys) {
  std::vector<std::string> out;
  for (const ObjectKey& key : keys) out.push_back(Describe(key));
  return out;
}

ObjectKey KeyOf(const std::string& object_json) {
  rapidjson::Document document;
  document.Parse(object_json.data(), object_json.size());
  INFO(object_json);
  REQUIRE(!document.HasParseError());
  return KeyOfValue(document);
}

std::vector<ObjectKey> ListDocumentKeys(const std::string& list_json) {
  rapidjson::Document document;
  document.Parse(list_json.data(), list_json.size());
  INFO(list_json);
  REQUIRE(!document.HasParseError());
  REQUIRE(document.IsObject());
  auto items = document.FindMember("items");
  REQUIRE(items != document.MemberEnd());
  REQUIRE(items->value.IsArray());
  std::vector<ObjectKey> keys;
  for (const rapidjson::Value& item : items->value.GetArray()) keys.push_back(KeyOfValue(item));
  SortKeys(keys);
  return keys;
}

std::vector<ObjectKey> KubectlKeys(const TestCluster& cluster,
                                   const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"get"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"-o", "json"});
  return ListDocumentKeys(KubectlOk(cluster, argv));
}

void CreateCrd(const TestCluster& cluster, const std::string& plural, const std::string& kind) {
  std::string singular = kind;
  std::transform(singular.begin(), singular.end(), singular.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  ApplyOk(cluster, fmt::format(R"(apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {0}.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: {0}
    singular: {1}
    kind: {2}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
)",
                               plural, singular, kind));
  KubectlOk(cluster, {"wait", "--for=condition=Established", "--timeout=60s",
                      fmt::format("crd/{}.example.com", plural)});
}

std::optional<double> MetricValue(const std::string& metrics, const std::string& name,
                                  const std::map<std::string, std::string>& labels) {
  std::optional<double> sum;
  std::istringstream lines(metrics);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line.compare(0, name.size(), name) != 0) continue;
    std::size_t rest = name.size();
    std::map<std::string, std::string> sample_labels;
    if (rest < line.size() && line[rest] == '{') {
      const std::size_t close = line.find('}', rest);
      if (close == std::string::npos) continue;
      sample_labels = ParseLabels(line.substr(rest + 1, close - rest - 1));
      rest = close + 1;
    } else if (rest >= line.size() || line[rest] != ' ') {
      continue;  // a longer metric name with this one as its prefix
    }
    bool match = true;
    for (const auto& [label, value] : labels) {
      auto it = sample_labels.find(label);
      match &= it != sample_labels.end() && it->second == value;
    }
    if (!match) continue;
    sum = sum.value_or(0) + std::strtod(line.c_str() + rest, nullptr);
  }
  return sum;
}

std::string ApiserverMetrics(const TestCluster& cluster) {
  return KubectlOk(cluster, {"get", "--raw", "/metrics"});
}

// ---- The daemon ---------------------------------------------------------------------------

std::unique_ptr<Daemon> Daemon::Start(const TestCluster& cluster, const std::string& config_yaml,
                                      Identity identity,
                                      const std::vector<std::string>& extra_args) {
  static std::atomic<int> counter{0};
  const std::string config_path = TempPath(fmt::format("informerd-{}.yaml", counter++));
  std::ofstream(config_path) << config_yaml;
  std::vector<std::string> argv = {
      kInformerd,   "--config",    config_path,        "--kubeconfig", cluster.kubeconfig(identity),
      "--listen",   "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",  "--probe-listen",
      "127.0.0.1:0"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  absl::StatusOr<Subprocess> process = Subprocess::Start(argv);
  INFO(process.status().ToString());
  REQUIRE(process.ok());
  absl::StatusOr<std::string> line = process->WaitForLine(kListeningMarker, seconds(30));
  INFO(process->stderr_text());
  REQUIRE(line.ok());
  std::string address = line->substr(line->find(kListeningMarker) + sizeof kListeningMarker - 1);
  return std::unique_ptr<Daemon>(new Daemon(*std::move(process), std::move(address)));
}

Daemon::Daemon(Subprocess process, std::string address)
    : process_(std::move(process)), address_(std::move(address)) {
  log_ = process_.stderr_text();
  stub_ = v1::Informer::NewStub(NewChannel());
  drain_ = std::thread([this] { DrainLoop(); });
}

Daemon::~Daemon() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  drain_.join();
  // process_'s destructor kills the daemon's process group.
}

void Daemon::DrainLoop() {
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    // A needle that never occurs: reads whatever arrives for 100 ms.
    (void)process_.WaitForLine("\x01\x02", milliseconds(100));
    const bool exited = process_.Wait(milliseconds(0)).ok();
    {
      std::lock_guard<std::mutex> lock(mu_);
      log_ = process_.stderr_text();
      exited_ = exited;
    }
    std::this_thread::sleep_for(milliseconds(exited ? 100 : 10));
  }
}

std::shared_ptr<grpc::Channel> Daemon::NewChannel(bool own, grpc::ChannelArguments args) const {
  static std::atomic<int> counter{0};
  if (own) args.SetInt("informerd.e2e.channel", counter++);
  return grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args);
}

std::optional<std::string> Daemon::WaitForLog(const std::string& needle, milliseconds timeout,
                                              std::size_t from) const {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      const std::size_t at = log_.find(needle, std::min(from, log_.size()));
      if (at != std::string::npos) {
        const std::size_t begin = log_.rfind('\n', at);
        const std::size_t end = log_.find('\n', at);
        const std::size_t first = begin == std::string::npos ? 0 : begin + 1;
        return log_.substr(first, end == std::string::npos ? std::string::npos : end - first);
      }
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(milliseconds(20));
  }
}

std::size_t Daemon::log_size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return log_.size();
}

std::string Daemon::log() const {
  std::lock_guard<std::mutex> lock(mu_);
  return log_;
}

bool Daemon::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !exited_;
}

v1::ListResourcesResponse ListResources(v1::Informer::Stub& stub) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(10));
  v1::ListResourcesResponse response;
  const grpc::Status status = stub.ListResources(&context, {}, &response);
  INFO(status.error_message());
  REQUIRE(status.ok());
  return response;
}

std::optional<v1::ResourceInfo> FindInformer(const v1::ListResourcesResponse& resources,
                                             const std::string& resource,
                                             const std::string& namespace_name) {
  for (const v1::ResourceInfo& info : resources.resources()) {
    if (info.resource() == resource && info.namespace_() == namespace_name) return info;
  }
  return std::nullopt;
}

bool AwaitSynced(v1::Informer::Stub& stub, const std::vector<std::string>& resources,
                 milliseconds timeout) {
  return WaitUntil(
      [&] {
        const v1::ListResourcesResponse response = ListResources(stub);
        for (const std::string& resource : resources) {
          bool synced = false;
          for (const v1::ResourceInfo& info : response.resources()) {
            synced |= info.resource() == resource && info.synced();
          }
          if (!synced) return false;
        }
        return true;
      },
      timeout, milliseconds(100));
}

ListOutcome List(v1::Informer::Stub& stub, const std::string& resource,
                 const std::string& namespace_name, const std::string& label_selector,
                 const std::string& field_selector) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(10));
  v1::ListRequest request;
  request.set_resource(resource);
  request.set_namespace_(namespace_name);
  request.set_label_selector(label_selector);
  request.set_field_selector(field_selector);
  ListOutcome outcome;
  outcome.status = stub.List(&context, request, &outcome.response);
  return outcome;
}

std::vector<ObjectKey> ListKeys(v1::Informer::Stub& stub, const std::string& resource,
                                const std::string& namespace_name,
                                const std::string& label_selector) {
  ListOutcome outcome = List(stub, resource, namespace_name, label_selector);
  INFO(fmt::format("List {} in {:?}: {} {}", resource, namespace_name,
                   static_cast<int>(outcome.status.error_code()), outcome.status.error_message()));
  REQUIRE(outcome.status.ok());
  std::vector<ObjectKey> keys;
  for (const std::string& item : outcome.response.items()) keys.push_back(KeyOf(item));
  // The contract: ordered by namespace, then name. Checked here, for every List of the suite.
  std::vector<ObjectKey> sorted = keys;
  SortKeys(sorted);
  CHECK(Describe(keys) == Describe(sorted));
  return sorted;
}

GetOutcome Get(v1::Informer::Stub& stub, const std::string& resource,
               const std::string& namespace_name, const std::string& name) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(10));
  v1::GetRequest request;
  request.set_resource(resource);
  request.set_namespace_(namespace_name);
  request.set_name(name);
  GetOutcome outcome;
  outcome.status = stub.Get(&context, request, &outcome.response);
  return outcome;
}

int Health(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(10));
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  if (!stub->Check(&context, request, &response).ok()) return -1;
  return static_cast<int>(response.status());
}

// ---- Subscribe streams --------------------------------------------------------------------

v1::SubscribeRequest SubscribeTo(const std::string& resource, const std::string& namespace_name,
                                 const std::string& resource_version,
                                 const std::string& label_selector,
                                 const std::string& field_selector) {
  v1::SubscribeRequest request;
  request.set_resource(resource);
  request.set_namespace_(namespace_name);
  request.set_resource_version(resource_version);
  request.set_label_selector(label_selector);
  request.set_field_selector(field_selector);
  return request;
}

std::string Describe(const v1::Event& event) {
  const std::string type = v1::Event::Type_Name(event.type());
  if (event.type() == v1::Event::BOOKMARK || event.type() == v1::Event::SYNCED) {
    return fmt::format("{} rv={}", type, event.resource_version());
  }
  return fmt::format("{} {}/{} rv={}", type, event.namespace_(), event.name(),
                     event.resource_version());
}

std::vector<std::string> Describe(const std::vector<v1::Event>& events) {
  std::vector<std::string> out;
  for (const v1::Event& event : events) out.push_back(Describe(event));
  return out;
}

Subscriber::Subscriber(const std::shared_ptr<grpc::Channel>& channel,
                       const v1::SubscribeRequest& request, milliseconds deadline)
    : stub_(v1::Informer::NewStub(channel)) {
  context_.set_deadline(std::chrono::system_clock::now() + deadline);
  reader_ = stub_->Subscribe(&context_, request);
  thread_ = std::thread([this] { ReadLoop(); });
}

Subscriber::~Subscriber() {
  context_.TryCancel();
  thread_.join();
}

void Subscriber::ReadLoop() {
  v1::Event event;
  while (reader_->Read(&event)) {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(event);
    arrivals_.push_back(Clock::now());
    changed_.notify_all();
  }
  grpc::Status status = reader_->Finish();
  std::lock_guard<std::mutex> lock(mu_);
  status_ = std::move(status);
  changed_.notify_all();
}

bool Subscriber::WaitForCount(std::size_t count, milliseconds timeout) {
  return WaitFor([count](const std::vector<v1::Event>& events) { return events.size() >= count; },
                 timeout);
}

bool Subscriber::WaitFor(const std::function<bool(const std::vector<v1::Event>&)>& done,
                         milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait_for(lock, timeout, [&] { return done(events_) || status_.has_value(); });
  return done(events_);
}

std::optional<grpc::Status> Subscriber::WaitForEnd(milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait_for(lock, timeout, [&] { return status_.has_value(); });
  return status_;
}

std::vector<v1::Event> Subscriber::events() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_;
}

std::size_t Subscriber::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_.size();
}

std::vector<Clock::time_point> Subscriber::arrivals() const {
  std::lock_guard<std::mutex> lock(mu_);
  return arrivals_;
}

std::vector<v1::Event> Subscriber::EventsFrom(std::size_t from) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (from >= events_.size()) return {};
  return std::vector<v1::Event>(events_.begin() + static_cast<std::ptrdiff_t>(from), events_.end());
}

std::optional<grpc::Status> Subscriber::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

void Subscriber::Cancel() { context_.TryCancel(); }

std::vector<v1::Event> AfterSynced(const std::vector<v1::Event>& events) {
  auto synced = std::find_if(events.begin(), events.end(), [](const v1::Event& event) {
    return event.type() == v1::Event::SYNCED;
  });
  if (synced == events.end()) return events;
  return std::vector<v1::Event>(synced + 1, events.end());
}

bool HasSynced(const std::vector<v1::Event>& events) {
  return std::any_of(events.begin(), events.end(),
                     [](const v1::Event& event) { return event.type() == v1::Event::SYNCED; });
}

grpc::Status SubscribeError(v1::Informer::Stub& stub, const v1::SubscribeRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(20));
  std::unique_ptr<grpc::ClientReader<v1::Event>> reader = stub.Subscribe(&context, request);
  std::vector<v1::Event> events;
  v1::Event event;
  while (reader->Read(&event)) events.push_back(event);
  const grpc::Status status = reader->Finish();
  INFO(fmt::format("Subscribe {{resource {:?}, namespace {:?}, rv {:?}}}: {} {}",
                   request.resource().substr(0, 100), request.namespace_(),
                   request.resource_version().substr(0, 100), static_cast<int>(status.error_code()),
                   status.error_message()));
  CHECK(Describe(events).empty());
  return status;
}

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return fmt::format("{}/{}", dir != nullptr && dir[0] != '\0' ? dir : "/tmp", name);
}

SubprocessResult Informerctl(const std::string& address, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kInformerctl, "--address", address};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<SubprocessResult> result = RunSubprocess(argv);
  INFO(CommandLine(argv));
  INFO(result.status().ToString());
  REQUIRE(result.ok());
  return *std::move(result);
}

}  // namespace informerd::test::e2e
