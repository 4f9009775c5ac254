// Specification of kubeconfig loading (daemon/kube/auth/kubeconfig.*): kubectl's merge and resolution
// rules, each credential type, and errors that name file and field.
#include "daemon/kube/auth/kubeconfig.h"

#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "daemon/kube/auth/pem.h"
#include "test/common/temp_dir.h"

namespace informerd::daemon {
namespace {

using testing::ReadAll;
using testing::TempDir;
using testing::TestData;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

// A one-context kubeconfig: cluster "c" (server + `cluster_extra` lines), user "u"
// (`user_lines`), context "dev" as current-context.
std::string OneContext(const std::string& cluster_lines, const std::string& user_lines) {
  return fmt::format(R"(apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
{}
users:
- name: u
  user:
{}
contexts:
- name: dev
  context:
    cluster: c
    user: u
current-context: dev
)",
                     cluster_lines, user_lines);
}

absl::StatusOr<RestConfig> Load(const std::string& path, const std::string& context = "") {
  absl::StatusOr<Kubeconfig> kubeconfig = LoadKubeconfigFile(path);
  if (!kubeconfig.ok()) return kubeconfig.status();
  KubeconfigRestOptions options;
  options.context = context;
  return RestConfigFromKubeconfig(*kubeconfig, options);
}

RestConfig LoadOk(const std::string& path, const std::string& context = "") {
  absl::StatusOr<RestConfig> config = Load(path, context);
  INFO(config.status().ToString());
  REQUIRE(config.ok());
  REQUIRE(config->credentials != nullptr);
  return *std::move(config);
}

std::string LoadError(const std::string& path, const std::string& context = "") {
  absl::StatusOr<RestConfig> config = Load(path, context);
  REQUIRE_FALSE(config.ok());
  return Message(config.status());
}

Credentials CurrentCredentials(const RestConfig& config) {
  absl::StatusOr<std::shared_ptr<const Credentials>> credentials = config.credentials->Current();
  INFO(credentials.status().ToString());
  REQUIRE(credentials.ok());
  return **credentials;
}

TEST_CASE("a token user: server, CA file, token and identity") {
  TempDir dir;
  const std::string path = dir.Write(
      "config", OneContext(fmt::format("    server: https://api.example.com:6443/k8s/clusters/c1/\n"
                                       "    certificate-authority: {}\n"
                                       "    tls-server-name: kubernetes.default",
                                       TestData("ca.crt")),
                           "    token: abc.def"));
  RestConfig config = LoadOk(path);
  CHECK(config.server.scheme == "https");
  CHECK(config.server.host == "api.example.com");
  CHECK(config.server.port == 6443);
  CHECK(config.server.path_prefix == "/k8s/clusters/c1");
  CHECK(config.tls.ca_pem == ReadAll(TestData("ca.crt")));
  CHECK(config.tls.server_name == "kubernetes.default");
  CHECK_FALSE(config.tls.insecure_skip_tls_verify);
  CHECK(config.identity == fmt::format("user \"u\" (context \"dev\" in {})", path));
  Credentials credentials = CurrentCredentials(config);
  CHECK(credentials.bearer_token == "abc.def");
  CHECK(credentials.client_cert_pem.empty());
  CHECK_FALSE(credentials.expiry.has_value());
}

TEST_CASE("-data fields are base64-decoded PEM, the same bytes as the files") {
  TempDir dir;
  const std::string ca = ReadAll(TestData("ca.crt"));
  const std::string cert = ReadAll(TestData("client.crt"));
  const std::string key = ReadAll(TestData("client.key"));
  const std::string path =
      dir.Write("config", OneContext(fmt::format("    server: https://10.0.0.1\n"
                                                 "    certificate-authority-data: {}",
                                                 EncodeBase64(ca)),
                                     fmt::format("    client-certificate-data: {}\n"
                                                 "    client-key-data: {}",
                                                 EncodeBase64(cert), EncodeBase64(key))));
  RestConfig config = LoadOk(path);
  CHECK(config.server.port == 443);
  CHECK(config.tls.ca_pem == ca);
  Credentials credentials = CurrentCredentials(config);
  CHECK(credentials.client_cert_pem == cert);
  CHECK(credentials.client_key_pem == key);
  CHECK(credentials.bearer_token.empty());
}

TEST_CASE("client certificate and key files; relative paths resolve against the kubeconfig") {
  TempDir dir;
  dir.Write("kube/certs/ca.crt", ReadAll(TestData("ca.crt")));
  dir.Write("kube/certs/client.crt", ReadAll(TestData("client.crt")));
  dir.Write("keys/client.key", ReadAll(TestData("client.key")));
  dir.Write("kube/token", "from-file\n");
  const std::string path =
      dir.Write("kube/config", OneContext("    server: https://[fd00::1]:6443\n"
                                          "    certificate-authority: certs/ca.crt",
                                          "    client-certificate: certs/client.crt\n"
                                          "    client-key: ../keys/client.key\n"
                                          "    tokenFile: ./token"));
  RestConfig config = LoadOk(path);
  CHECK(config.server.host == "fd00::1");
  CHECK(config.server.Authority() == "[fd00::1]:6443");
  CHECK(config.tls.ca_pem == ReadAll(TestData("ca.crt")));
  Credentials credentials = CurrentCredentials(config);
  CHECK(credentials.client_cert_pem == ReadAll(TestData("client.crt")));
  CHECK(credentials.client_key_pem == ReadAll(TestData("client.key")));
  // A client certificate and a token together: both are sent, as by client-go.
  CHECK(credentials.bearer_token == "from-file");
}

TEST_CASE("tokenFile wins over token when readable and is re-read after a minute") {
  TempDir dir;
  const std::string token_file = dir.Write("token", "first\n");
  const std::string path = dir.Write(
      "config", OneContext("    server: https://k",
                           fmt::format("    token: inline\n    tokenFile: {}", token_file)));
  auto now = std::make_shared<std::chrono::system_clock::time_point>(
      std::chrono::system_clock::time_point(std::chrono::hours(24 * 365 * 50)));
  absl::StatusOr<Kubeconfig> kubeconfig = LoadKubeconfigFile(path);
  REQUIRE(kubeconfig.ok());
  KubeconfigRestOptions options;
  options.clock = [now] { return *now; };
  absl::StatusOr<RestConfig> config = RestConfigFromKubeconfig(*kubeconfig, options);
  REQUIRE(config.ok());
  CHECK(CurrentCredentials(*config).bearer_token == "first");
  dir.Write("token", "second");
  *now += std::chrono::seconds(59);
  CHECK(CurrentCredentials(*config).bearer_token == "first");
  *now += std::chrono::seconds(1);
  CHECK(CurrentCredentials(*config).bearer_token == "second");
}

TEST_CASE("a token file that cannot be read falls back to `token`, or else is an error") {
  TempDir dir;
  const std::string with_fallback = dir.Write(
      "a", OneContext("    server: https://k", "    token: inline\n    tokenFile: missing-token"));
  CHECK(CurrentCredentials(LoadOk(with_fallback)).bearer_token == "inline");

  const std::string without =
      dir.Write("b", OneContext("    server: https://k", "    tokenFile: missing-token"));
  CHECK(LoadError(without) ==
        fmt::format("{}: users[0].user.tokenFile: file {}/missing-token: No such file or "
                    "directory",
                    without, dir.path()));
}

// The two files of kubectl's own merge example, checked against kubectl v1.32: `u` comes whole
// from the first file (its client certificate in the second is dropped); current-context comes
// from the second, the only one that sets it; context "ca" from the first file wins over the
// second's broken one.
constexpr char kFileA[] = R"(apiVersion: v1
kind: Config
users:
- name: u
  user:
    token: from-a
contexts:
- name: ca
  context:
    cluster: c
    user: u
)";
constexpr char kFileB[] = R"(apiVersion: v1
kind: Config
current-context: cb
clusters:
- name: c
  cluster:
    server: https://b.example:1
users:
- name: u
  user:
    token: from-b
    client-certificate: does-not-exist.crt
    client-key: does-not-exist.key
contexts:
- name: cb
  context:
    cluster: c
    user: u
- name: ca
  context:
    cluster: zz
    user: zz
)";

TEST_CASE("merging: the first file to define a name wins with its whole entry") {
  TempDir dir;
  const std::string a = dir.Write("a", kFileA);
  const std::string b = dir.Write("b", kFileB);
  std::vector<std::string> missing;
  absl::StatusOr<Kubeconfig> merged =
      LoadKubeconfigFiles({dir.Path("missing"), a, "", b, a}, &missing);
  INFO(merged.status().ToString());
  REQUIRE(merged.ok());
  CHECK(merged->files == std::vector<std::string>{a, b});
  CHECK(missing == std::vector<std::string>{dir.Path("missing")});
  CHECK(merged->current_context == "cb");
  CHECK(merged->users.at("u").token == "from-a");
  CHECK(merged->users.at("u").client_certificate.empty());
  CHECK(merged->contexts.at("ca").cluster == "c");

  absl::StatusOr<RestConfig> config = RestConfigFromKubeconfig(*merged, {});
  REQUIRE(config.ok());
  CHECK(config->server.host == "b.example");
  CHECK(CurrentCredentials(*config).bearer_token == "from-a");
  CHECK(config->identity == fmt::format("user \"u\" (context \"cb\" in {})", b));

  // The other order: b's user, and its client certificate (which does not exist) is now used.
  absl::StatusOr<Kubeconfig> reversed = LoadKubeconfigFiles({b, a}, nullptr);
  REQUIRE(reversed.ok());
  CHECK(reversed->users.at("u").token == "from-b");
  CHECK(reversed->contexts.at("ca").cluster == "zz");
  absl::StatusOr<RestConfig> broken = RestConfigFromKubeconfig(*reversed, {});
  REQUIRE_FALSE(broken.ok());
  CHECK(Message(broken.status()) ==
        fmt::format("{}: users[0].user.client-certificate: file {}/does-not-exist.crt: No such "
                    "file or directory",
                    b, dir.path()));
}

TEST_CASE("current-context comes from the first file that sets it; --context overrides it") {
  TempDir dir;
  const std::string first = dir.Write("first", R"(current-context: one
clusters:
- name: c1
  cluster:
    server: https://one.example
- name: c2
  cluster:
    server: https://two.example
users:
- name: u
  user:
    token: t
contexts:
- name: one
  context:
    cluster: c1
    user: u
- name: two
  context:
    cluster: c2
    user: u
)");
  const std::string second = dir.Write("second", "current-context: two\n");
  absl::StatusOr<Kubeconfig> merged = LoadKubeconfigFiles({first, second}, nullptr);
  REQUIRE(merged.ok());
  CHECK(merged->current_context == "one");
  absl::StatusOr<Kubeconfig> other_order = LoadKubeconfigFiles({second, first}, nullptr);
  REQUIRE(other_order.ok());
  CHECK(other_order->current_context == "two");

  KubeconfigRestOptions options;
  CHECK(RestConfigFromKubeconfig(*merged, options)->server.host == "one.example");
  options.context = "two";
  absl::StatusOr<RestConfig> overridden = RestConfigFromKubeconfig(*merged, options);
  REQUIRE(overridden.ok());
  CHECK(overridden->server.host == "two.example");
  CHECK(overridden->identity == fmt::format("user \"u\" (context \"two\" in {})", first));
}

TEST_CASE("an explicit kubeconfig must exist; an empty file defines nothing") {
  TempDir dir;
  absl::StatusOr<Kubeconfig> missing = LoadKubeconfigFile(dir.Path("nope"));
  REQUIRE_FALSE(missing.ok());
  CHECK(absl::IsNotFound(missing.status()));
  CHECK(Message(missing.status()) ==
        fmt::format("kubeconfig given by --kubeconfig: file {}/nope: No such file or directory",
                    dir.path()));

  absl::StatusOr<Kubeconfig> empty = LoadKubeconfigFile(dir.Write("empty", ""));
  REQUIRE(empty.ok());
  CHECK(empty->empty());
  absl::StatusOr<Kubeconfig> comments = LoadKubeconfigFile(dir.Write("comments", "# nothing\n"));
  REQUIRE(comments.ok());
  CHECK(comments->empty());
  CHECK(Message(RestConfigFromKubeconfig(*empty, {}).status()) ==
        fmt::format("kubeconfig {}/empty: no context chosen: current-context is not set and "
                    "--context was not given (contexts: none defined)",
                    dir.path()));
}

TEST_CASE("malformed YAML and wrong types name file, line, column and field") {
  const auto parse_error = [](const std::string& yaml) {
    absl::StatusOr<Kubeconfig> parsed = ParseKubeconfig(yaml, "/k/config");
    REQUIRE_FALSE(parsed.ok());
    CHECK(absl::IsInvalidArgument(parsed.status()));
    return Message(parsed.status());
  };
  CHECK_THAT(parse_error("clusters:\n- name: c\n  cluster: {server: https://x\n"),
             Catch::StartsWith("/k/config:4:1: not valid YAML: "));
  CHECK(parse_error("clusters: 5\n") == "/k/config:1:11: clusters: must be a list");
  CHECK(parse_error("- a\n- b\n") == "/k/config:1:1: (top level): must be a map (a kubeconfig)");
  CHECK(parse_error("users:\n- name: u\n  user:\n    token: [a]\n") ==
        "/k/config:4:12: users[0].user.token: must be a string");
  CHECK(parse_error("clusters:\n- name: c\n  cluster:\n    insecure-skip-tls-verify: maybe\n") ==
        "/k/config:4:31: clusters[0].cluster.insecure-skip-tls-verify: must be true or false");
  CHECK(parse_error("users:\n- name: u\n  user:\n    client-key-data: '@@@@'\n") ==
        "/k/config:4:22: users[0].user.client-key-data: not valid base64 (unexpected character "
        "at offset 0)");
  CHECK(parse_error("users:\n- name: u\n  user:\n    exec:\n      args: x\n") ==
        "/k/config:5:13: users[0].user.exec.args: must be a list of strings");
  CHECK(parse_error("users:\n- name: u\n- name: u\n") ==
        "/k/config:3:9: users[1].name: duplicate name \"u\" (also users[0])");
  CHECK(parse_error("contexts:\n- dev\n") ==
        "/k/config:2:3: contexts[0]: must be a map with name and context");
  CHECK(parse_error("apiVersion: v2\n") ==
        "/k/config:1:13: apiVersion: \"v2\" is not v1 (not a kubeconfig?)");
  CHECK(parse_error("kind: Pod\n") ==
        "/k/config:1:7: kind: \"Pod\" is not Config (not a kubeconfig?)");
}

TEST_CASE("unknown keys are ignored, as kubectl ignores them") {
  TempDir dir;
  const std::string path =
      dir.Write("config", OneContext("    server: https://k\n    some-future-field: 1",
                                     "    token: t\n    another: [1, 2]") +
                              "preferences: {}\nextensions: []\nsomethingNew: true\n");
  CHECK(CurrentCredentials(LoadOk(path)).bearer_token == "t");
}

TEST_CASE("unknown context, user or cluster: the message lists what exists") {
  TempDir dir;
  const std::string path = dir.Write("config", R"(current-context: a
clusters:
- name: c
  cluster:
    server: https://k
users:
- name: u
  user:
    token: t
contexts:
- name: a
  context:
    cluster: c
    user: u
- name: b
  context:
    cluster: c
    user: nobody
- name: x
  context:
    cluster: nowhere
    user: u
- name: y
  context:
    user: u
)");
  CHECK(LoadError(path, "dev") ==
        fmt::format("kubeconfig {}: context \"dev\" not found (contexts: a, b, x, y)", path));
  CHECK(LoadError(path, "b") ==
        fmt::format("{}: contexts[1].context.user: user \"nobody\" not found (users: u)", path));
  CHECK(LoadError(path, "x") ==
        fmt::format("{}: contexts[2].context.cluster: cluster \"nowhere\" not found (clusters: c)",
                    path));
  CHECK(LoadError(path, "y") == fmt::format("{}: contexts[3].context.cluster: is not set", path));
  CHECK(LoadOk(path, "a").server.host == "k");
}

TEST_CASE("a referenced file that is missing names the kubeconfig, the field and the file") {
  TempDir dir;
  const std::string path = dir.Write(
      "config", OneContext("    server: https://k",
                           fmt::format("    client-certificate: {}\n    client-key: /x/key.pem",
                                       TestData("client.crt"))));
  CHECK(LoadError(path) == fmt::format("{}: users[0].user.client-key: file /x/key.pem: No such "
                                       "file or directory",
                                       path));
  const std::string ca = dir.Write(
      "ca",
      OneContext("    server: https://k\n    certificate-authority: nope.crt", "    token: t"));
  CHECK(LoadError(ca) == fmt::format("{}: clusters[0].cluster.certificate-authority: file {}/"
                                     "nope.crt: No such file or directory",
                                     ca, dir.path()));
}

TEST_CASE("TLS material is checked where it is read") {
  TempDir dir;
  const std::string mismatch =
      dir.Write("mismatch", OneContext("    server: https://k",
                                       fmt::format("    client-certificate: {}\n    client-key: {}",
                                                   TestData("client.crt"), TestData("other.key"))));
  CHECK(LoadError(mismatch) ==
        fmt::format("{}: users[0].user.client-key: file {}: the client key does not match the "
                    "client certificate",
                    mismatch, TestData("other.key")));
  const std::string not_a_cert = dir.Write(
      "not-a-cert",
      OneContext("    server: https://k\n    certificate-authority-data: " + EncodeBase64("hello"),
                 "    token: t"));
  CHECK(LoadError(not_a_cert) ==
        fmt::format("{}: clusters[0].cluster.certificate-authority-data: holds no PEM "
                    "certificate",
                    not_a_cert));
  const std::string no_key = dir.Write(
      "no-key",
      OneContext("    server: https://k",
                 "    client-certificate-data: " + EncodeBase64(ReadAll(TestData("client.crt")))));
  CHECK(LoadError(no_key) ==
        fmt::format("{}: users[0].user: client-certificate is set but neither client-key nor "
                    "client-key-data",
                    no_key));
}

TEST_CASE("conflicting settings are refused, as kubectl refuses them") {
  TempDir dir;
  const std::string both_ca = dir.Write(
      "both-ca",
      OneContext(fmt::format("    server: https://k\n    certificate-authority: {}\n"
                             "    certificate-authority-data: {}",
                             TestData("ca.crt"), EncodeBase64(ReadAll(TestData("ca.crt")))),
                 "    token: t"));
  CHECK(LoadError(both_ca) ==
        fmt::format("{}: clusters[0].cluster: certificate-authority and "
                    "certificate-authority-data are both set; kubectl refuses that too: keep one",
                    both_ca));
  const std::string insecure_ca = dir.Write(
      "insecure-ca", OneContext(fmt::format("    server: https://k\n    certificate-authority: {}\n"
                                            "    insecure-skip-tls-verify: true",
                                            TestData("ca.crt")),
                                "    token: t"));
  CHECK(LoadError(insecure_ca) ==
        fmt::format("{}: clusters[0].cluster.insecure-skip-tls-verify: cannot be combined with a "
                    "certificate authority (kubectl refuses that too): remove one",
                    insecure_ca));
  const std::string insecure = dir.Write(
      "insecure",
      OneContext("    server: https://k\n    insecure-skip-tls-verify: yes", "    token: t"));
  RestConfig config = LoadOk(insecure);
  CHECK(config.tls.insecure_skip_tls_verify);
  CHECK(config.tls.ca_pem.empty());
}

TEST_CASE("the server must be an http(s) URL") {
  TempDir dir;
  const std::string no_scheme =
      dir.Write("a", OneContext("    server: 10.0.0.1:6443", "    token: t"));
  CHECK(LoadError(no_scheme) ==
        fmt::format("{}: clusters[0].cluster.server: \"10.0.0.1:6443\" is not a URL such as "
                    "https://host:6443 (no scheme)",
                    no_scheme));
  const std::string no_server =
      dir.Write("b", OneContext("    tls-server-name: x", "    token: t"));
  CHECK(LoadError(no_server) ==
        fmt::format("{}: clusters[0].cluster.server: is required", no_server));
}

TEST_CASE("a plain-http server gets no credentials, as from kubectl") {
  TempDir dir;
  const std::string path =
      dir.Write("config", OneContext("    server: http://127.0.0.1:8001", "    token: secret"));
  RestConfig config = LoadOk(path);
  CHECK(config.server.scheme == "http");
  CHECK(config.server.port == 8001);
  CHECK(CurrentCredentials(config).empty());
}

TEST_CASE("auth methods informerd does not implement are errors, not silently ignored") {
  TempDir dir;
  const std::string provider =
      dir.Write("provider", OneContext("    server: https://k",
                                       "    auth-provider:\n      name: oidc\n      config: {}"));
  absl::StatusOr<RestConfig> config = Load(provider);
  REQUIRE_FALSE(config.ok());
  CHECK(absl::IsUnimplemented(config.status()));
  CHECK(Message(config.status()) ==
        fmt::format("{}: users[0].user.auth-provider: is not supported by informerd (use a "
                    "token, a client certificate or an exec plugin)",
                    provider));
  const std::string impersonate =
      dir.Write("as", OneContext("    server: https://k", "    token: t\n    as: admin"));
  CHECK_THAT(LoadError(impersonate), Catch::Contains("users[0].user.as: is not supported"));
  const std::string proxy = dir.Write(
      "proxy",
      OneContext("    server: https://k\n    proxy-url: http://proxy:3128", "    token: t"));
  CHECK(LoadError(proxy) ==
        fmt::format("{}: clusters[0].cluster.proxy-url: is not supported by informerd", proxy));
}

TEST_CASE("a user with nothing to authenticate with is anonymous") {
  TempDir dir;
  const std::string path = dir.Write("config", OneContext("    server: https://k", "    {}"));
  CHECK(CurrentCredentials(LoadOk(path)).empty());
}

}  // namespace
}  // namespace informerd::daemon
