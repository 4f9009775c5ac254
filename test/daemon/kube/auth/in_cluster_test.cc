// Specification of in-cluster configuration (daemon/kube/auth/in_cluster.*), with a temporary directory
// standing in for /var/run/secrets/kubernetes.io/serviceaccount.
#include "daemon/kube/auth/in_cluster.h"

#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "test/common/temp_dir.h"

namespace informerd::daemon {
namespace {

using std::chrono::seconds;
using testing::ReadAll;
using testing::TempDir;
using testing::TestData;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

struct Pod {
  TempDir dir;
  std::shared_ptr<std::chrono::system_clock::time_point> now =
      std::make_shared<std::chrono::system_clock::time_point>(std::chrono::hours(24 * 365 * 60));
  std::vector<std::string> warnings;

  Pod() {
    dir.Write("ca.crt", ReadAll(TestData("ca.crt")));
    dir.Write("token", "token-1\n");
  }
  InClusterOptions Options(const std::string& host = "10.96.0.1", const std::string& port = "443") {
    InClusterOptions options;
    options.environment =
        Environment({{"KUBERNETES_SERVICE_HOST", host}, {"KUBERNETES_SERVICE_PORT", port}});
    options.service_account_dir = dir.path();
    options.clock = [now = now] { return *now; };
    options.on_warning = [this](const absl::Status& warning) {
      warnings.push_back(Message(warning));
    };
    return options;
  }
  static std::string Token(const RestConfig& config) {
    absl::StatusOr<std::shared_ptr<const Credentials>> credentials = config.credentials->Current();
    REQUIRE(credentials.ok());
    return (*credentials)->bearer_token;
  }
};

TEST_CASE("in-cluster: server from the service variables, CA and token from the directory") {
  Pod pod;
  absl::StatusOr<RestConfig> config = LoadInClusterConfig(pod.Options());
  INFO(config.status().ToString());
  REQUIRE(config.ok());
  CHECK(config->server.ToString() == "https://10.96.0.1:443");
  CHECK(config->tls.ca_pem == ReadAll(TestData("ca.crt")));
  CHECK_FALSE(config->tls.insecure_skip_tls_verify);
  CHECK(config->identity == "service account (in-cluster)");
  CHECK(Pod::Token(*config) == "token-1");
}

TEST_CASE("in-cluster: an IPv6 service host is bracketed") {
  Pod pod;
  absl::StatusOr<RestConfig> config = LoadInClusterConfig(pod.Options("fd00:10:96::1", "6443"));
  REQUIRE(config.ok());
  CHECK(config->server.host == "fd00:10:96::1");
  CHECK(config->server.port == 6443);
  CHECK(config->server.ToString() == "https://[fd00:10:96::1]:6443");
}

TEST_CASE("in-cluster: the rotated token is picked up a minute later; a lost file keeps the last") {
  Pod pod;
  absl::StatusOr<RestConfig> config = LoadInClusterConfig(pod.Options());
  REQUIRE(config.ok());
  pod.dir.Write("token", "token-2\n");
  *pod.now += seconds(30);
  CHECK(Pod::Token(*config) == "token-1");
  *pod.now += seconds(30);
  CHECK(Pod::Token(*config) == "token-2");

  std::filesystem::remove(pod.dir.Path("token"));
  *pod.now += seconds(60);
  CHECK(Pod::Token(*config) == "token-2");
  REQUIRE(pod.warnings.size() == 1);
  CHECK(pod.warnings[0] ==
        fmt::format("in-cluster service-account token: cannot re-read the token (file {}: No "
                    "such file or directory); still using the last one",
                    pod.dir.Path("token")));

  // After a 401 the file is read again at once, without waiting for the minute.
  pod.dir.Write("token", "token-3");
  absl::StatusOr<std::shared_ptr<const Credentials>> rejected = config->credentials->Current();
  REQUIRE(rejected.ok());
  config->credentials->Invalidate(*rejected);
  CHECK(Pod::Token(*config) == "token-3");
}

TEST_CASE("in-cluster errors name the variable or the file") {
  Pod pod;
  InClusterOptions no_port = pod.Options();
  no_port.environment =
      Environment(std::map<std::string, std::string>{{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}});
  CHECK_FALSE(InClusterEnvironmentSet(no_port.environment));
  CHECK(Message(LoadInClusterConfig(no_port).status()) ==
        "in-cluster configuration: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must both "
        "be set");
  CHECK_THAT(Message(LoadInClusterConfig(pod.Options("10.96.0.1", "https")).status()),
             Catch::StartsWith("in-cluster configuration: KUBERNETES_SERVICE_HOST=10.96.0.1 "
                               "KUBERNETES_SERVICE_PORT=https: "));

  std::filesystem::remove(pod.dir.Path("token"));
  CHECK(Message(LoadInClusterConfig(pod.Options()).status()) ==
        fmt::format("in-cluster service-account token: file {}/token: No such file or directory",
                    pod.dir.path()));
  std::filesystem::remove(pod.dir.Path("ca.crt"));
  CHECK(Message(LoadInClusterConfig(pod.Options()).status()) ==
        fmt::format("in-cluster configuration: file {}/ca.crt: No such file or directory",
                    pod.dir.path()));
}

}  // namespace
}  // namespace informerd::daemon
