// Specification of exec credential plugins (daemon/kube/auth/exec_plugin.*), driven through kubeconfigs
// as users write them: v1 and v1beta1, caching until expiry, re-runs on expiry and after a 401,
// the environment the plugin sees, and failures that explain themselves.
#include "daemon/kube/auth/exec_plugin.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "daemon/kube/auth/kubeconfig.h"
#include "daemon/kube/auth/pem.h"
#include "test/common/temp_dir.h"

namespace informerd::daemon {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::system_clock;
using testing::ReadAll;
using testing::TempDir;
using testing::TestData;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

// A settable wall clock.
struct FakeClock {
  std::shared_ptr<system_clock::time_point> now =
      std::make_shared<system_clock::time_point>(ParseRfc3339("2030-01-01T00:00:00Z").value());
  WallClock clock() const {
    return [now = now] { return *now; };
  }
  void Advance(system_clock::duration by) const { *now += by; }
};

// A kubeconfig whose user "u" authenticates with `exec_lines` (indented under exec:).
std::string ExecKubeconfig(const std::string& exec_lines, const std::string& cluster_extra = "") {
  return fmt::format(R"(clusters:
- name: c
  cluster:
    server: https://k.example:6443
    certificate-authority: {}
{}users:
- name: u
  user:
    exec:
{}
contexts:
- name: dev
  context:
    cluster: c
    user: u
current-context: dev
)",
                     TestData("ca.crt"), cluster_extra, exec_lines);
}

// The usual plugin section: exec_plugin.sh with `args`, counting runs in `runs_file`.
std::string PluginLines(const std::string& api_version, const std::string& args,
                        const std::string& runs_file, const std::string& extra = "") {
  return fmt::format(R"(      apiVersion: {}
      command: {}
      args: {}
      env:
      - name: RUNS_FILE
        value: {}
{})",
                     api_version, TestData("exec_plugin.sh"), args, runs_file, extra);
}

struct Loaded {
  RestConfig config;
  absl::StatusOr<std::shared_ptr<const Credentials>> Current() const {
    return config.credentials->Current();
  }
  std::shared_ptr<const Credentials> CurrentOk() const {
    absl::StatusOr<std::shared_ptr<const Credentials>> credentials = Current();
    INFO(credentials.status().ToString());
    REQUIRE(credentials.ok());
    return *credentials;
  }
};

absl::StatusOr<RestConfig> TryLoad(const std::string& path, const FakeClock& clock,
                                   Environment environment = {},
                                   std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  absl::StatusOr<Kubeconfig> kubeconfig = LoadKubeconfigFile(path);
  if (!kubeconfig.ok()) return kubeconfig.status();
  KubeconfigRestOptions options;
  options.clock = clock.clock();
  options.environment = std::move(environment);
  options.exec_timeout = timeout;
  return RestConfigFromKubeconfig(*kubeconfig, options);
}

Loaded Load(const std::string& path, const FakeClock& clock, Environment environment = {},
            std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  absl::StatusOr<RestConfig> config = TryLoad(path, clock, std::move(environment), timeout);
  INFO(config.status().ToString());
  REQUIRE(config.ok());
  return Loaded{*std::move(config)};
}

int Runs(const std::string& runs_file) {
  if (!std::filesystem::exists(runs_file)) return 0;
  const std::string text = ReadAll(runs_file);
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

TEST_CASE("a v1 plugin's token is used and cached; the plugin runs lazily, once") {
  TempDir dir;
  FakeClock clock;
  const std::string runs = dir.Path("runs");
  const std::string path =
      dir.Write("config", ExecKubeconfig(PluginLines(
                              kExecCredentialV1, fmt::format("[token, {}, tok]", kExecCredentialV1),
                              runs, "      interactiveMode: Never\n")));
  Loaded loaded = Load(path, clock);
  CHECK(Runs(runs) == 0);
  std::shared_ptr<const Credentials> first = loaded.CurrentOk();
  CHECK(first->bearer_token == "tok-1");
  CHECK_FALSE(first->expiry.has_value());
  // Without an expiry the credentials stay until the server rejects them.
  clock.Advance(hours(24 * 365));
  CHECK(loaded.CurrentOk() == first);
  CHECK(Runs(runs) == 1);
}

TEST_CASE("a v1beta1 plugin needs no interactiveMode; a v1 plugin does") {
  TempDir dir;
  FakeClock clock;
  const std::string runs = dir.Path("runs");
  const std::string beta = dir.Write(
      "beta",
      ExecKubeconfig(PluginLines(kExecCredentialV1beta1,
                                 fmt::format("[token, {}, beta]", kExecCredentialV1beta1), runs)));
  CHECK(Load(beta, clock).CurrentOk()->bearer_token == "beta-1");

  const std::string v1 = dir.Write(
      "v1", ExecKubeconfig(PluginLines(kExecCredentialV1,
                                       fmt::format("[token, {}, x]", kExecCredentialV1), runs)));
  absl::StatusOr<RestConfig> config = TryLoad(v1, clock);
  REQUIRE_FALSE(config.ok());
  CHECK(Message(config.status()) ==
        fmt::format("{}: users[0].user.exec.interactiveMode: is required with "
                    "client.authentication.k8s.io/v1 (Never or IfAvailable)",
                    v1));
  const std::string always =
      dir.Write("always", ExecKubeconfig(PluginLines(kExecCredentialV1beta1, "[]", runs,
                                                     "      interactiveMode: Always\n")));
  CHECK(Message(TryLoad(always, clock).status()) ==
        fmt::format("{}: users[0].user.exec.interactiveMode: Always needs a terminal, and "
                    "informerd runs without one",
                    always));
  const std::string alpha = dir.Write(
      "alpha", ExecKubeconfig(PluginLines("client.authentication.k8s.io/v1alpha1", "[]", runs)));
  CHECK_THAT(Message(TryLoad(alpha, clock).status()),
             Catch::Contains("users[0].user.exec.apiVersion: \"client.authentication.k8s.io/"
                             "v1alpha1\" is not supported"));
}

TEST_CASE("credentials are re-fetched once past expirationTimestamp, not before") {
  TempDir dir;
  FakeClock clock;
  const std::string runs = dir.Path("runs");
  const std::string path = dir.Write(
      "config", ExecKubeconfig(PluginLines(
                    kExecCredentialV1,
                    fmt::format("[token, {}, tok, \"2030-01-01T00:10:00Z\"]", kExecCredentialV1),
                    runs, "      interactiveMode: IfAvailable\n")));
  Loaded loaded = Load(path, clock);
  std::shared_ptr<const Credentials> first = loaded.CurrentOk();
  CHECK(first->bearer_token == "tok-1");
  REQUIRE(first->expiry.has_value());
  CHECK(*first->expiry == ParseRfc3339("2030-01-01T00:10:00Z").value());

  clock.Advance(minutes(10));  // exactly at the expiry: still valid (client-go: now.After(exp))
  CHECK(loaded.CurrentOk() == first);
  CHECK(Runs(runs) == 1);
  clock.Advance(std::chrono::seconds(1));
  std::shared_ptr<const Credentials> second = loaded.CurrentOk();
  CHECK(second->bearer_token == "tok-2");
  CHECK(Runs(runs) == 2);
}

TEST_CASE("Invalidate after a 401 re-runs the plugin once, however many requests failed") {
  TempDir dir;
  FakeClock clock;
  const std::string runs = dir.Path("runs");
  const std::string path = dir.Write(
      "config",
      ExecKubeconfig(PluginLines(kExecCredentialV1beta1,
                                 fmt::format("[token, {}, tok]", kExecCredentialV1beta1), runs)));
  Loaded loaded = Load(path, clock);
  std::shared_ptr<const Credentials> rejected = loaded.CurrentOk();
  loaded.config.credentials->Invalidate(rejected);
  std::shared_ptr<const Credentials> fresh = loaded.CurrentOk();
  CHECK(fresh->bearer_token == "tok-2");
  // A second request that had also been sent with the old token reports its 401 late.
  loaded.config.credentials->Invalidate(rejected);
  CHECK(loaded.CurrentOk() == fresh);
  CHECK(Runs(runs) == 2);
  loaded.config.credentials->Invalidate(nullptr);
  CHECK(loaded.CurrentOk()->bearer_token == "tok-3");
}

TEST_CASE("callers that ask at once wait for one run of the plugin") {
  TempDir dir;
  FakeClock clock;
  const std::string runs = dir.Path("runs");
  const std::string path = dir.Write(
      "config",
      ExecKubeconfig(PluginLines(kExecCredentialV1beta1,
                                 fmt::format("[token, {}, tok]", kExecCredentialV1beta1), runs)));
  Loaded loaded = Load(path, clock);
  std::vector<std::shared_ptr<const Credentials>> seen(4);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < seen.size(); ++i) {
    threads.emplace_back([&loaded, &seen, i] {
      absl::StatusOr<std::shared_ptr<const Credentials>> credentials = loaded.Current();
      if (credentials.ok()) seen[i] = *credentials;
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(Runs(runs) == 1);
  for (const auto& credentials : seen) {
    REQUIRE(credentials != nullptr);
    CHECK(credentials == seen[0]);
    CHECK(credentials->bearer_token == "tok-1");
  }
}

TEST_CASE("a plugin may return a client certificate and key") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.Write(
      "config",
      ExecKubeconfig(PluginLines(kExecCredentialV1,
                                 fmt::format("[cert, {}, {}, {}]", kExecCredentialV1,
                                             TestData("client.crt"), TestData("client.key")),
                                 dir.Path("runs"), "      interactiveMode: Never\n")));
  std::shared_ptr<const Credentials> credentials = Load(path, clock).CurrentOk();
  CHECK(credentials->client_cert_pem == ReadAll(TestData("client.crt")));
  CHECK(credentials->client_key_pem == ReadAll(TestData("client.key")));
  CHECK(credentials->bearer_token.empty());
}

TEST_CASE("the plugin gets the environment, exec.env and KUBERNETES_EXEC_INFO with the cluster") {
  TempDir dir;
  FakeClock clock;
  const std::string info_file = dir.Path("exec-info.json");
  const std::string greeting_file = dir.Path("greeting");
  const std::string path = dir.Write(
      "config", ExecKubeconfig(PluginLines(kExecCredentialV1,
                                           fmt::format("[token, {}, tok]", kExecCredentialV1),
                                           dir.Path("runs"),
                                           fmt::format("      - name: PLUGIN_GREETING\n"
                                                       "        value: from-exec-env\n"
                                                       "      interactiveMode: Never\n"
                                                       "      provideClusterInfo: true\n"
                                                       "      installHint: not used\n")),
                               "    tls-server-name: api.internal\n"
                               "    extensions:\n"
                               "    - name: client.authentication.k8s.io/exec\n"
                               "      extension:\n"
                               "        audience: \"06e3fbd18de8\"\n"
                               "        retries: 3\n"
                               "        verbose: true\n"
                               "    - name: unrelated\n"
                               "      extension: {ignored: 1}\n"));
  Environment environment({{"EXEC_INFO_FILE", info_file},
                           {"GREETING_FILE", greeting_file},
                           {"PLUGIN_GREETING", "from-daemon-env"}});
  REQUIRE(Load(path, clock, environment).CurrentOk()->bearer_token == "tok-1");

  CHECK(ReadAll(greeting_file) == "from-exec-env");
  const std::string info = ReadAll(info_file);
  INFO(info);
  rapidjson::Document document;
  document.Parse(info.c_str());
  REQUIRE(document.IsObject());
  CHECK(std::string(document["kind"].GetString()) == "ExecCredential");
  CHECK(std::string(document["apiVersion"].GetString()) == kExecCredentialV1);
  const rapidjson::Value& spec = document["spec"];
  CHECK(spec["interactive"].IsFalse());
  const rapidjson::Value& cluster = spec["cluster"];
  CHECK(std::string(cluster["server"].GetString()) == "https://k.example:6443");
  CHECK(std::string(cluster["tls-server-name"].GetString()) == "api.internal");
  CHECK_FALSE(cluster.HasMember("insecure-skip-tls-verify"));
  CHECK(DecodeBase64(cluster["certificate-authority-data"].GetString()).value() ==
        ReadAll(TestData("ca.crt")));
  CHECK(std::string(cluster["config"]["audience"].GetString()) == "06e3fbd18de8");
  CHECK(cluster["config"]["retries"].GetInt() == 3);
  CHECK(cluster["config"]["verbose"].IsTrue());
}

TEST_CASE("without provideClusterInfo the plugin gets no cluster") {
  ExecConfig exec;
  exec.api_version = kExecCredentialV1beta1;
  ExecClusterInfo cluster;
  cluster.server = "https://k";
  CHECK(ExecInfoJson(exec, cluster) ==
        R"({"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1",)"
        R"("spec":{"interactive":false}})");
}

TEST_CASE("a failing plugin: the error carries the exit code, its stderr and the installHint") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.Write(
      "config", ExecKubeconfig(fmt::format("      apiVersion: {}\n"
                                           "      command: {}\n"
                                           "      installHint: Install example-login from "
                                           "https://example.com/login\n",
                                           kExecCredentialV1beta1, TestData("failing_plugin.sh"))));
  Loaded loaded = Load(path, clock);
  absl::StatusOr<std::shared_ptr<const Credentials>> credentials = loaded.Current();
  REQUIRE_FALSE(credentials.ok());
  CHECK(Message(credentials.status()) ==
        fmt::format("user \"u\" (context \"dev\" in {}): exec plugin {} failed with exit code 3; "
                    "stderr: error: refreshing the SSO session: the session has expired; run "
                    "'example-login'; installHint: Install example-login from "
                    "https://example.com/login",
                    path, TestData("failing_plugin.sh")));
}

TEST_CASE("a plugin that is not installed: the error says so and shows the installHint") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.Write(
      "config", ExecKubeconfig(fmt::format("      apiVersion: {}\n"
                                           "      command: example-login-plugin\n"
                                           "      installHint: apt install example-login\n",
                                           kExecCredentialV1beta1)));
  Environment environment({{"PATH", dir.path() + ":/nonexistent"}});
  absl::StatusOr<std::shared_ptr<const Credentials>> credentials =
      Load(path, clock, environment).Current();
  REQUIRE_FALSE(credentials.ok());
  CHECK(Message(credentials.status()) ==
        fmt::format("user \"u\" (context \"dev\" in {}): exec plugin example-login-plugin not "
                    "found in $PATH; installHint: apt install example-login",
                    path));
}

TEST_CASE("a bare command is found through the environment's PATH") {
  TempDir dir;
  FakeClock clock;
  const std::string runs = dir.Path("runs");
  const std::string path = dir.Write(
      "config", ExecKubeconfig(fmt::format("      apiVersion: {0}\n"
                                           "      command: exec_plugin.sh\n"
                                           "      args: [token, {0}, via-path]\n"
                                           "      env: [{{name: RUNS_FILE, value: {1}}}]\n",
                                           kExecCredentialV1beta1, runs)));
  Environment environment(
      {{"PATH",
        fmt::format("/nonexistent::{}:/usr/bin:/bin",
                    std::filesystem::path(TestData("exec_plugin.sh")).parent_path().string())}});
  CHECK(Load(path, clock, environment).CurrentOk()->bearer_token == "via-path-1");
}

TEST_CASE("a relative command path resolves against the kubeconfig's directory") {
  TempDir dir;
  FakeClock clock;
  dir.Write("bin/plugin.sh", ReadAll(TestData("exec_plugin.sh")), 0755);
  const std::string path = dir.Write(
      "kube/config", ExecKubeconfig(fmt::format("      apiVersion: {0}\n"
                                                "      command: ../bin/plugin.sh\n"
                                                "      args: [token, {0}, relative]\n"
                                                "      env: [{{name: RUNS_FILE, value: {1}}}]\n",
                                                kExecCredentialV1beta1, dir.Path("runs"))));
  CHECK(Load(path, clock).CurrentOk()->bearer_token == "relative-1");
}

TEST_CASE("a token or client certificate beside exec wins; the plugin never runs") {
  TempDir dir;
  FakeClock clock;
  const std::string runs = dir.Path("runs");
  std::string yaml = ExecKubeconfig(PluginLines(
      kExecCredentialV1beta1, fmt::format("[token, {}, x]", kExecCredentialV1beta1), runs));
  yaml.replace(yaml.find("    exec:\n"), 10, "    token: static\n    exec:\n");
  const std::string path = dir.Write("config", yaml);
  CHECK(Load(path, clock).CurrentOk()->bearer_token == "static");
  CHECK(Runs(runs) == 0);
}

TEST_CASE("output that is not a valid ExecCredential is an error saying what is wrong") {
  TempDir dir;
  FakeClock clock;
  const auto error_for = [&](const std::string& output) {
    const std::string path = dir.Write(
        "config",
        ExecKubeconfig(fmt::format("      apiVersion: {}\n      command: {}\n"
                                   "      args: [raw, '{}']\n",
                                   kExecCredentialV1beta1, TestData("exec_plugin.sh"), output)));
    absl::StatusOr<std::shared_ptr<const Credentials>> credentials = Load(path, clock).Current();
    REQUIRE_FALSE(credentials.ok());
    return Message(credentials.status());
  };
  CHECK_THAT(error_for("not json"), Catch::Contains(": stdout is not JSON: Invalid value."));
  CHECK_THAT(
      error_for(R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",)"
                R"("status":{"token":"t"}})"),
      Catch::EndsWith(": the plugin returned apiVersion \"client.authentication.k8s.io/v1\"; the "
                      "kubeconfig asks for \"client.authentication.k8s.io/v1beta1\""));
}

TEST_CASE("ParseExecCredential checks kind, version, status and the certificate pair") {
  const std::string v1 = kExecCredentialV1;
  const auto error = [&](const std::string& json) {
    absl::StatusOr<Credentials> parsed = ParseExecCredential(json, v1);
    REQUIRE_FALSE(parsed.ok());
    return Message(parsed.status());
  };
  const std::string head =
      R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential")";
  CHECK(error(R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"Pod"})") ==
        "stdout has kind \"Pod\", not \"ExecCredential\"");
  CHECK(error(head + "}") == "the plugin returned no status");
  CHECK(error(head + R"(,"status":{}})") ==
        "the plugin returned neither a token nor a client certificate and key");
  CHECK(error(head + R"(,"status":{"clientKeyData":"k"}})") ==
        "the plugin returned only a client certificate or only a key, not both");
  CHECK(error(head + R"(,"status":{"token":5}})") == "status.token is not a string");
  CHECK(error(head + R"(,"status":{"token":"t","expirationTimestamp":"tomorrow"}})") ==
        "status.expirationTimestamp: \"tomorrow\" is not an RFC 3339 time such as "
        "2024-05-01T12:00:00Z");
  CHECK_THAT(error(head + R"(,"status":{"clientCertificateData":"x","clientKeyData":"y"}})"),
             Catch::StartsWith("status.clientCertificateData/clientKeyData: client certificate: "));

  absl::StatusOr<Credentials> ok = ParseExecCredential(
      head + R"(,"spec":{},"status":{"token":"t","expirationTimestamp":null}})", v1);
  REQUIRE(ok.ok());
  CHECK(ok->bearer_token == "t");
  CHECK_FALSE(ok->expiry.has_value());
}

TEST_CASE("ParseRfc3339 accepts what metav1.Time accepts") {
  const auto seconds = [](const std::string& text) {
    absl::StatusOr<system_clock::time_point> time = ParseRfc3339(text);
    INFO(text);
    REQUIRE(time.ok());
    return std::chrono::duration_cast<std::chrono::milliseconds>(time->time_since_epoch()).count();
  };
  CHECK(seconds("1970-01-01T00:00:00Z") == 0);
  CHECK(seconds("2024-02-29T12:00:00Z") == 1709208000000);
  CHECK(seconds("2024-02-29T14:30:00+02:30") == 1709208000000);
  CHECK(seconds("2024-02-29T11:00:00.250-01:00") == 1709208000250);
  for (const char* bad : {"2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "2024-01-01 00:00:00Z",
                          "2024-01-01T00:00:00", "2024-01-01T24:00:00Z", "2024-01-01T00:00:00.Z",
                          "2024-01-01T00:00:00+0100", "2024-01-01T00:00:00Zjunk"}) {
    INFO(bad);
    CHECK_FALSE(ParseRfc3339(bad).ok());
  }
}

TEST_CASE("a plugin that hangs is killed at the time limit") {
  TempDir dir;
  FakeClock clock;
  const std::string path =
      dir.Write("config", ExecKubeconfig(fmt::format("      apiVersion: {}\n"
                                                     "      command: /bin/sleep\n"
                                                     "      args: ['30']\n",
                                                     kExecCredentialV1beta1)));
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::shared_ptr<const Credentials>> credentials =
      Load(path, clock, {}, std::chrono::milliseconds(300)).Current();
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
  REQUIRE_FALSE(credentials.ok());
  CHECK(absl::IsDeadlineExceeded(credentials.status()));
  CHECK_THAT(Message(credentials.status()),
             Catch::EndsWith("exec plugin /bin/sleep did not finish within 300 ms and was killed"));
}

}  // namespace
}  // namespace informerd::daemon
