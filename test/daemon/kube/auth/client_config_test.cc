// Specification of where connection settings come from (daemon/kube/auth/client_config.*): --kubeconfig,
// $KUBECONFIG, ~/.kube/config, in-cluster, in kubectl's order.
#include "daemon/kube/auth/client_config.h"

#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <string>

#include "test/common/temp_dir.h"

namespace informerd::daemon {
namespace {

using testing::ReadAll;
using testing::TempDir;
using testing::TestData;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

std::string Kubeconfig(const std::string& server) {
  return fmt::format(R"(clusters:
- name: c
  cluster:
    server: {}
users:
- name: u
  user:
    token: t
contexts:
- name: dev
  context:
    cluster: c
    user: u
current-context: dev
)",
                     server);
}

struct Machine {
  TempDir dir;
  std::map<std::string, std::string> variables;

  Machine() {
    dir.Write("serviceaccount/ca.crt", ReadAll(TestData("ca.crt")));
    dir.Write("serviceaccount/token", "sa-token");
  }
  ClientConfigOptions Options(const std::string& kubeconfig = "", const std::string& context = "") {
    ClientConfigOptions options;
    options.kubeconfig_path = kubeconfig;
    options.context = context;
    options.environment = Environment(variables);
    options.service_account_dir = dir.Path("serviceaccount");
    return options;
  }
  std::string Server(const ClientConfigOptions& options) {
    absl::StatusOr<RestConfig> config = LoadRestConfig(options);
    INFO(config.status().ToString());
    REQUIRE(config.ok());
    return config->server.host;
  }
  std::string Error(const ClientConfigOptions& options) {
    absl::StatusOr<RestConfig> config = LoadRestConfig(options);
    REQUIRE_FALSE(config.ok());
    return Message(config.status());
  }
};

TEST_CASE("--kubeconfig beats $KUBECONFIG, which beats ~/.kube/config") {
  Machine m;
  const std::string explicit_file = m.dir.Write("explicit", Kubeconfig("https://explicit"));
  const std::string listed = m.dir.Write("listed", Kubeconfig("https://listed"));
  m.dir.Write("home/.kube/config", Kubeconfig("https://home"));
  m.variables["HOME"] = m.dir.Path("home");
  m.variables["KUBECONFIG"] = fmt::format("{}:{}", m.dir.Path("missing"), listed);
  m.variables["KUBERNETES_SERVICE_HOST"] = "10.96.0.1";
  m.variables["KUBERNETES_SERVICE_PORT"] = "443";
  CHECK(m.Server(m.Options(explicit_file)) == "explicit");
  CHECK(m.Server(m.Options()) == "listed");
  m.variables.erase("KUBECONFIG");
  CHECK(m.Server(m.Options()) == "home");
}

TEST_CASE("with no kubeconfig anywhere, the in-cluster service account is used") {
  Machine m;
  m.variables["HOME"] = m.dir.Path("home");
  m.variables["KUBERNETES_SERVICE_HOST"] = "10.96.0.1";
  m.variables["KUBERNETES_SERVICE_PORT"] = "443";
  absl::StatusOr<RestConfig> config = LoadRestConfig(m.Options());
  REQUIRE(config.ok());
  CHECK(config->identity == "service account (in-cluster)");
  CHECK(config->server.ToString() == "https://10.96.0.1:443");
  // $KUBECONFIG files that exist but define nothing count as no kubeconfig, as for kubectl.
  m.variables["KUBECONFIG"] = m.dir.Write("empty", "");
  CHECK(m.Server(m.Options()) == "10.96.0.1");
}

TEST_CASE("an explicit kubeconfig or --context never falls back to in-cluster") {
  Machine m;
  m.variables["KUBERNETES_SERVICE_HOST"] = "10.96.0.1";
  m.variables["KUBERNETES_SERVICE_PORT"] = "443";
  m.variables["KUBECONFIG"] = m.dir.Path("missing");
  CHECK(m.Error(m.Options(m.dir.Path("nope"))) ==
        fmt::format("kubeconfig given by --kubeconfig: file {}: No such file or directory",
                    m.dir.Path("nope")));
  CHECK(m.Error(m.Options("", "prod")) ==
        fmt::format("context \"prod\" was asked for, but no kubeconfig was found; tried "
                    "$KUBECONFIG={0} (missing: {0})",
                    m.dir.Path("missing")));
}

TEST_CASE("nothing found and not in a cluster: the error says what was tried") {
  Machine m;
  m.variables["HOME"] = m.dir.Path("home");
  CHECK(m.Error(m.Options()) ==
        fmt::format("no kubeconfig found and not running in a cluster: tried {0}/.kube/config "
                    "(missing: {0}/.kube/config); KUBERNETES_SERVICE_HOST and "
                    "KUBERNETES_SERVICE_PORT are not set. Pass --kubeconfig, set KUBECONFIG, or "
                    "run in a pod",
                    m.dir.Path("home")));
  m.variables.clear();
  CHECK_THAT(m.Error(m.Options()),
             Catch::StartsWith("no kubeconfig found and not running in a cluster: tried "
                               "$KUBECONFIG and $HOME are not set;"));
}

TEST_CASE("a broken file in $KUBECONFIG is an error, not skipped") {
  Machine m;
  const std::string broken = m.dir.Write("broken", "clusters: {\n");
  m.variables["KUBECONFIG"] =
      fmt::format("{}:{}", broken, m.dir.Write("ok", Kubeconfig("https://ok")));
  CHECK_THAT(m.Error(m.Options()), Catch::StartsWith(broken + ":2:1: not valid YAML: "));
}

}  // namespace
}  // namespace informerd::daemon
