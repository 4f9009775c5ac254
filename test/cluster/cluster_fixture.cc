#include "test/cluster/cluster_fixture.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "tools/cpp/runfiles/runfiles.h"

namespace informerd::test {
namespace {

using bazel::tools::cpp::runfiles::Runfiles;

constexpr char kKubectl[] = "/usr/bin/kubectl";
// Generous: `cluster.sh start` takes a few seconds, but a machine running two cluster tests and a
// build at once is slow.
constexpr auto kScriptTimeout = std::chrono::minutes(3);
constexpr auto kKubectlTimeout = std::chrono::minutes(2);

const char* EnvOrNull(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && value[0] != '\0' ? value : nullptr;
}

// A path next to cluster.sh in the runfiles (or relative to the runfiles root, the test's cwd).
absl::StatusOr<std::string> RunfilePath(const std::string& workspace_relative) {
  std::string error;
  std::unique_ptr<Runfiles> runfiles(Runfiles::CreateForTest(&error));
  std::string path;
  if (runfiles != nullptr) path = runfiles->Rlocation("informerd/" + workspace_relative);
  if (path.empty() || !std::filesystem::exists(path)) path = workspace_relative;
  if (!std::filesystem::exists(path)) {
    return absl::NotFoundError(
        fmt::format("{} not found in the runfiles{} (is it a data dependency of the test?)",
                    workspace_relative, error.empty() ? "" : fmt::format(" ({})", error)));
  }
  return std::filesystem::absolute(path).string();
}

// Makes a fresh directory for one cluster's state: under $TEST_TMPDIR (Bazel cleans it) or /tmp.
absl::StatusOr<std::string> MakeClusterDir() {
  const char* base = EnvOrNull("TEST_TMPDIR");
  std::string pattern = fmt::format("{}/cluster.XXXXXX", base != nullptr ? base : "/tmp");
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(fmt::format("mkdtemp({}): {}", pattern, std::strerror(errno)));
  }
  return pattern;
}

// DIR/env: KEY='value' lines, values without quotes (cluster.sh guarantees it).
absl::StatusOr<std::map<std::string, std::string>> ParseEnvFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) return absl::NotFoundError(fmt::format("cannot read {}", path));
  std::map<std::string, std::string> env;
  std::string line;
  int number = 0;
  while (std::getline(file, line)) {
    ++number;
    if (line.empty()) continue;
    size_t equals = line.find('=');
    if (equals == std::string::npos || line.size() < equals + 3 || line[equals + 1] != '\'' ||
        line.back() != '\'') {
      return absl::DataLossError(fmt::format("{}:{}: not KEY='value': {}", path, number, line));
    }
    env[line.substr(0, equals)] = line.substr(equals + 2, line.size() - equals - 3);
  }
  return env;
}

// "admin-token" -> "ADMIN_TOKEN", as cluster.sh names the env keys.
std::string IdentityKey(Identity identity) {
  std::string key(IdentityName(identity));
  for (char& c : key) c = c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return key;
}

absl::StatusOr<pid_t> ParsePid(const std::string& text) {
  char* end = nullptr;
  long pid = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || pid <= 1) {
    return absl::DataLossError(fmt::format("not a pid: '{}'", text));
  }
  return static_cast<pid_t>(pid);
}

}  // namespace

std::string_view IdentityName(Identity identity) {
  switch (identity) {
    case Identity::kAdminToken:
      return "admin-token";
    case Identity::kAdminCert:
      return "admin-cert";
    case Identity::kAliceToken:
      return "alice-token";
    case Identity::kAliceCert:
      return "alice-cert";
    case Identity::kBobToken:
      return "bob-token";
  }
  return "unknown";
}

absl::StatusOr<std::string> ClusterScriptPath() { return RunfilePath("test/cluster/cluster.sh"); }

absl::StatusOr<std::string> KubeApiserverBinary() {
  if (const char* path = EnvOrNull("INFORMERD_KUBE_APISERVER")) {
    if (access(path, X_OK) != 0) {
      return absl::FailedPreconditionError(fmt::format(
          "INFORMERD_KUBE_APISERVER={} is not an executable file; build kube-apiserver with\n"
          "  export INFORMERD_KUBE_APISERVER=$(test/cluster/build_kube_apiserver.sh)",
          path));
    }
    return std::string(path);
  }
  absl::StatusOr<std::string> build_script = RunfilePath("test/cluster/build_kube_apiserver.sh");
  if (!build_script.ok()) return build_script.status();
  // The cached build only: building takes minutes, more than a test may wait.
  SubprocessOptions options;
  options.timeout = kScriptTimeout;
  absl::StatusOr<SubprocessResult> cached = RunSubprocess({*build_script, "--check"}, options);
  if (!cached.ok()) return cached.status();
  std::string path = cached->out.substr(0, cached->out.find('\n'));
  if (cached->exit_code != 0 || path.empty()) {
    return absl::FailedPreconditionError(fmt::format(
        "INFORMERD_KUBE_APISERVER is unset and there is no cached kube-apiserver ({} --check "
        "exit {}):\n{}",
        *build_script, cached->exit_code, cached->err));
  }
  return path;
}

absl::StatusOr<std::unique_ptr<TestCluster>> TestCluster::Start(const ClusterOptions& options) {
  absl::StatusOr<std::string> script = ClusterScriptPath();
  if (!script.ok()) return script.status();
  absl::StatusOr<std::string> kube_apiserver = KubeApiserverBinary();
  if (!kube_apiserver.ok()) return kube_apiserver.status();
  absl::StatusOr<std::string> dir = MakeClusterDir();
  if (!dir.ok()) return dir.status();

  // The daemons outlive `cluster.sh start`; as a subreaper, this process inherits them and can
  // reap them when they stop (or they would linger as zombies of an init that may not reap).
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    return absl::InternalError(
        fmt::format("prctl(PR_SET_CHILD_SUBREAPER): {}", std::strerror(errno)));
  }
  std::unique_ptr<TestCluster> cluster(new TestCluster(*script, *kube_apiserver, *dir));
  std::vector<std::string> args = {
      fmt::format("--owner-pid={}", options.owner_pid != 0 ? options.owner_pid : getpid()),
      fmt::format("--watch-cache={}", options.watch_cache ? "true" : "false")};
  for (const std::string& arg : options.apiserver_args) args.push_back("--apiserver-arg=" + arg);
  absl::StatusOr<SubprocessResult> started = cluster->RunScript("start", args);
  // Whatever happened, nothing is left running (the script cleans up after a failed start).
  if (!started.ok()) {
    cluster->stopped_ = true;
    return started.status();
  }
  if (absl::Status loaded = cluster->LoadEnv(); !loaded.ok()) return loaded;
  return cluster;
}

TestCluster::~TestCluster() {
  if (absl::Status stopped = Stop(); !stopped.ok()) {
    std::cerr << "TestCluster: stopping the cluster in " << dir_
              << " failed: " << stopped.ToString() << std::endl;
  }
}

absl::Status TestCluster::Stop() {
  if (stopped_) return absl::OkStatus();
  absl::StatusOr<SubprocessResult> stopped = RunScript("stop");
  if (!stopped.ok()) return stopped.status();
  stopped_ = true;
  Reap(pids_);
  if (EnvOrNull("INFORMERD_KEEP_CLUSTER_DIR") == nullptr) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  } else {
    std::cerr << "TestCluster: keeping " << dir_ << " (INFORMERD_KEEP_CLUSTER_DIR)" << std::endl;
  }
  return absl::OkStatus();
}

absl::StatusOr<SubprocessResult> TestCluster::Kubectl(Identity identity,
                                                      const std::vector<std::string>& args,
                                                      const std::string& stdin_text) const {
  std::vector<std::string> argv = {kKubectl, "--kubeconfig=" + kubeconfig(identity),
                                   fmt::format("--cache-dir={}/kubectl-cache", dir_)};
  argv.insert(argv.end(), args.begin(), args.end());
  SubprocessOptions options;
  options.stdin_text = stdin_text;
  options.timeout = kKubectlTimeout;
  return RunSubprocess(argv, options);
}

absl::Status TestCluster::ApplyYaml(const std::string& yaml, Identity identity) const {
  absl::StatusOr<SubprocessResult> applied = Kubectl(identity, {"apply", "-f", "-"}, yaml);
  if (!applied.ok()) return applied.status();
  if (applied->exit_code != 0) {
    return absl::FailedPreconditionError(
        fmt::format("kubectl apply as {} failed (exit {}): {}\nYAML:\n{}", IdentityName(identity),
                    applied->exit_code, applied->err, yaml));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> TestCluster::CompactEtcd() {
  absl::StatusOr<SubprocessResult> compacted = RunScript("compact");
  if (!compacted.ok()) return compacted.status();
  char* end = nullptr;
  long long revision = std::strtoll(compacted->out.c_str(), &end, 10);
  if (end == compacted->out.c_str() || revision <= 0) {
    return absl::DataLossError(
        fmt::format("cluster.sh compact printed no revision: '{}'", compacted->out));
  }
  return static_cast<int64_t>(revision);
}

absl::Status TestCluster::RestartApiserver() {
  const pid_t old_pid = apiserver_pid();
  absl::StatusOr<SubprocessResult> restarted = RunScript("restart-apiserver");
  // The old apiserver is gone either way (the script stops it first).
  Reap({old_pid});
  if (!restarted.ok()) return restarted.status();
  return LoadEnv();
}

pid_t TestCluster::apiserver_pid() const { return ParsePid(Env("APISERVER_PID")).value_or(-1); }

pid_t TestCluster::etcd_pid() const { return ParsePid(Env("ETCD_PID")).value_or(-1); }

std::string TestCluster::kubeconfig(Identity identity) const {
  return IdentityEnv("KUBECONFIG_", identity);
}

std::string TestCluster::token(Identity identity) const { return IdentityEnv("TOKEN_", identity); }

std::string TestCluster::client_cert_file(Identity identity) const {
  return IdentityEnv("CLIENT_CERT_", identity);
}

std::string TestCluster::client_key_file(Identity identity) const {
  return IdentityEnv("CLIENT_KEY_", identity);
}

absl::StatusOr<SubprocessResult> TestCluster::RunScript(
    const std::string& command, const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {script_, command, dir_};
  argv.insert(argv.end(), args.begin(), args.end());
  SubprocessOptions options;
  options.env = {{"INFORMERD_KUBE_APISERVER", kube_apiserver_}};
  options.timeout = kScriptTimeout;
  absl::StatusOr<SubprocessResult> result = RunSubprocess(argv, options);
  if (!result.ok()) return result.status();
  if (result->exit_code != 0) {
    return absl::InternalError(fmt::format("`{}` failed (exit {}):\n{}", CommandLine(argv),
                                           result->exit_code, result->err));
  }
  return result;
}

absl::Status TestCluster::LoadEnv() {
  absl::StatusOr<std::map<std::string, std::string>> env = ParseEnvFile(dir_ + "/env");
  if (!env.ok()) return env.status();
  for (const char* key :
       {"APISERVER_URL", "APISERVER_PID", "ETCD_ENDPOINT", "ETCD_PID", "CA_FILE"}) {
    if (env->count(key) == 0 || env->at(key).empty()) {
      return absl::DataLossError(fmt::format("{}/env has no {}", dir_, key));
    }
  }
  for (const char* key : {"APISERVER_PID", "ETCD_PID", "WATCHDOG_PID"}) {
    if (env->count(key) == 0 || env->at(key).empty()) continue;
    absl::StatusOr<pid_t> pid = ParsePid(env->at(key));
    if (!pid.ok()) {
      return absl::DataLossError(fmt::format("{}/env: {}: {}", dir_, key, pid.status().ToString()));
    }
    if (std::find(pids_.begin(), pids_.end(), *pid) == pids_.end()) pids_.push_back(*pid);
  }
  env_ = *std::move(env);
  return absl::OkStatus();
}

const std::string& TestCluster::Env(const std::string& key) const {
  static const std::string kEmpty;
  auto it = env_.find(key);
  return it == env_.end() ? kEmpty : it->second;
}

std::string TestCluster::IdentityEnv(const std::string& prefix, Identity identity) const {
  return Env(prefix + IdentityKey(identity));
}

void TestCluster::Reap(const std::vector<pid_t>& pids) {
  // `cluster.sh stop` returns once the daemons are dead, but a dead child stays a zombie until
  // waited for. Not a child (ECHILD): not ours to reap, e.g. already reaped, or started by a
  // cluster.sh whose parent was not this process.
  for (pid_t pid : pids) {
    for (int attempt = 0; attempt < 200; ++attempt) {
      pid_t done = waitpid(pid, nullptr, WNOHANG);
      if (done == pid || (done < 0 && errno != EINTR)) break;
      if (done == 0 && kill(pid, 0) != 0) break;  // not a zombie and gone: nothing to do
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

}  // namespace informerd::test
