// End-to-end: informerctl's connection flags, the real binary against an in-process fake Informer
// service that serves TLS and records who each call came from (its "authorization" metadata and
// the client certificate's CN). Certificates are made by the test (test/common/test_pki.h):
// informerd's CA signs the server certificate (SANs localhost, 127.0.0.1, ::1), a second CA signs
// client certificates, and the fake verifies those (mutual TLS, a client without one still
// connects).
// Files the flags name are written to a fresh directory per case.
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "fmt/format.h"
#include "test/common/fake_informer.h"
#include "test/common/run_subprocess.h"
#include "test/common/temp_dir.h"
#include "test/common/test_pki.h"

namespace informerd::test {
namespace {

using daemon::testing::KeyAndCertificate;
using daemon::testing::TempDir;
using daemon::testing::TestCa;

const char kInformerctl[] = "cmd/informerctl/informerctl";

SubprocessResult Run(std::vector<std::string> args,
                     std::vector<std::pair<std::string, std::string>> env = {}) {
  args.insert(args.begin(), kInformerctl);
  SubprocessOptions options;
  options.env = std::move(env);
  options.env.emplace_back("INFORMERD_ADDRESS", "");
  options.timeout = std::chrono::seconds(30);
  auto result = RunSubprocess(args, options);
  INFO(CommandLine(args));
  REQUIRE(result.ok());
  UNSCOPED_INFO("stdout:\n" << result->out << "stderr:\n" << result->err);
  return *result;
}

// informerd's CA, the client CA, and a fake serving TLS with a certificate from the first and
// verifying client certificates from the second.
class TlsFixture {
 public:
  TlsFixture()
      : server_ca_("informerd test CA"),
        client_ca_("client test CA"),
        server_(server_ca_.IssueServer("informerd", 1)),
        fake_(ServerCredentials(server_, client_ca_)) {
    ca_file_ = dir_.Write("ca.crt", server_ca_.certificate_pem());
  }

  FakeInformer& fake() { return fake_; }
  const std::string& address() const { return fake_.address(); }
  const std::string& ca_file() const { return ca_file_; }
  TempDir& dir() { return dir_; }
  const TestCa& client_ca() const { return client_ca_; }
  const TestCa& server_ca() const { return server_ca_; }

  // A client certificate for `user` from the client CA, written to files; returns {cert, key}.
  std::pair<std::string, std::string> ClientFiles(const std::string& user) {
    const KeyAndCertificate client = client_ca_.IssueClient(user, {"team-a"});
    return {dir_.Write(user + ".crt", client.certificate_pem),
            dir_.Write(user + ".key", client.private_key_pem, 0600)};
  }

 private:
  static std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const KeyAndCertificate& server,
                                                                    const TestCa& client_ca) {
    grpc::SslServerCredentialsOptions options(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
    options.pem_root_certs = client_ca.certificate_pem();
    options.pem_key_cert_pairs.push_back({server.private_key_pem, server.certificate_pem});
    return grpc::SslServerCredentials(options);
  }

  TempDir dir_;
  TestCa server_ca_;
  TestCa client_ca_;
  KeyAndCertificate server_;
  FakeInformer fake_;
  std::string ca_file_;
};

std::vector<std::string> Authorizations(const FakeInformerService& service) {
  std::vector<std::string> values;
  for (const CallerSeen& caller : service.callers()) {
    REQUIRE(caller.authorization.size() <= 1);
    values.push_back(caller.authorization.empty() ? "<none>" : caller.authorization[0]);
  }
  return values;
}

TEST_CASE("--token over TLS: every command sends exactly authorization: Bearer TOKEN") {
  TlsFixture tls;
  tls.fake().service().SetSubscribe({{}, grpc::Status::OK, false});
  tls.fake().service().AddObject("default", "web-1", R"({"metadata":{"name":"web-1"}})", "5");
  const std::string token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln-_~+/=";
  const std::vector<std::string> flags = {"--address",   tls.address(), "--cacert",
                                          tls.ca_file(), "--token",     token};
  for (const std::vector<std::string>& command :
       std::vector<std::vector<std::string>>{{"resources"},
                                             {"list", "pods"},
                                             {"get", "pods", "web-1", "-n", "default"},
                                             {"watch", "pods"}}) {
    std::vector<std::string> args = flags;
    args.insert(args.end(), command.begin(), command.end());
    const SubprocessResult result = Run(args);
    CHECK(result.exit_code == 0);
  }
  const std::vector<CallerSeen> callers = tls.fake().service().callers();
  REQUIRE(callers.size() == 4);
  CHECK(callers[0].method == "ListResources");
  CHECK(callers[3].method == "Subscribe");
  for (const CallerSeen& caller : callers) {
    INFO(caller.method);
    CHECK(caller.authorization == std::vector<std::string>{"Bearer " + token});
    CHECK(caller.client_common_name.empty());
  }
}

TEST_CASE("--token-file: the file's token, without surrounding whitespace") {
  TlsFixture tls;
  const std::string file = tls.dir().Write("token", "  \tsecret-token-1\n\n", 0600);
  const SubprocessResult result = Run(
      {"--address", tls.address(), "--cacert", tls.ca_file(), "--token-file", file, "resources"});
  CHECK(result.exit_code == 0);
  CHECK(Authorizations(tls.fake().service()) == std::vector<std::string>{"Bearer secret-token-1"});
}

TEST_CASE("--cert and --key present the client certificate (mutual TLS)") {
  TlsFixture tls;
  const auto [cert, key] = tls.ClientFiles("alice");
  const SubprocessResult result = Run({"--address", tls.address(), "--cacert", tls.ca_file(),
                                       "--cert", cert, "--key", key, "resources"});
  CHECK(result.exit_code == 0);
  const std::vector<CallerSeen> callers = tls.fake().service().callers();
  REQUIRE(callers.size() == 1);
  CHECK(callers[0].client_common_name == "alice");
  CHECK(callers[0].authorization.empty());
}

TEST_CASE("without credentials nothing is sent: no authorization, no certificate") {
  TlsFixture tls;
  const SubprocessResult result =
      Run({"--address", tls.address(), "--cacert", tls.ca_file(), "resources"});
  CHECK(result.exit_code == 0);
  const std::vector<CallerSeen> callers = tls.fake().service().callers();
  REQUIRE(callers.size() == 1);
  CHECK(callers[0].authorization.empty());
  CHECK(callers[0].client_common_name.empty());
}

TEST_CASE("a CA that did not sign informerd's certificate fails the handshake, clearly") {
  TlsFixture tls;
  const TestCa other("some other CA");
  const std::string other_ca = tls.dir().Write("other-ca.crt", other.certificate_pem());
  for (const std::vector<std::string>& command :
       std::vector<std::vector<std::string>>{{"resources"}, {"watch", "pods"}}) {
    std::vector<std::string> args = {"--address", tls.address(), "--cacert",
                                     other_ca,    "--token",     "must-not-arrive"};
    args.insert(args.end(), command.begin(), command.end());
    const SubprocessResult result = Run(args);
    CHECK(result.exit_code == 1);
    CHECK(result.out.empty());
    CHECK(result.err.rfind("informerctl: UNAVAILABLE: ", 0) == 0);
    CHECK(result.err.find(fmt::format(
              "(the TLS handshake with informerd at {} failed: is its certificate signed by the "
              "CA in --cacert and valid for the address's host (or --tls-server-name), and does "
              "it serve TLS?)\n",
              tls.address())) != std::string::npos);
  }
  CHECK(tls.fake().service().calls() == 0);
}

TEST_CASE("plaintext to a TLS server, TLS to a plaintext server: errors, no call") {
  TlsFixture tls;
  const SubprocessResult plaintext =
      Run({"--address", tls.address(), "--timeout", "3s", "resources"});
  CHECK(plaintext.exit_code == 1);
  CHECK(plaintext.err.find("cannot reach informerd at " + tls.address()) != std::string::npos);
  CHECK(tls.fake().service().calls() == 0);

  FakeInformer insecure;
  const SubprocessResult handshake =
      Run({"--address", insecure.address(), "--cacert", tls.ca_file(), "resources"});
  CHECK(handshake.exit_code == 1);
  CHECK(handshake.err.find("the TLS handshake with informerd at " + insecure.address() +
                           " failed") != std::string::npos);
  CHECK(insecure.service().calls() == 0);
}

TEST_CASE("--insecure-skip-tls-verify connects whoever signed the certificate") {
  TlsFixture tls;
  const auto [cert, key] = tls.ClientFiles("bob");
  // No CA given at all, and the server's CA is in no trust store.
  const SubprocessResult result = Run({"--address", tls.address(), "--insecure-skip-tls-verify",
                                       "--token", "t1", "--cert", cert, "--key", key, "resources"});
  CHECK(result.exit_code == 0);
  const std::vector<CallerSeen> callers = tls.fake().service().callers();
  REQUIRE(callers.size() == 1);
  CHECK(callers[0].authorization == std::vector<std::string>{"Bearer t1"});
  CHECK(callers[0].client_common_name == "bob");
  // And with a server name the certificate does not have.
  CHECK(Run({"--address", tls.address(), "--insecure-skip-tls-verify", "--tls-server-name",
             "not-informerd.example", "resources"})
            .exit_code == 0);
}

TEST_CASE("--tls, an https:// address and a client certificate turn TLS on, with default roots") {
  TlsFixture tls;
  // gRPC's default roots come from this variable when set (else the system's store).
  const std::vector<std::pair<std::string, std::string>> roots = {
      {"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", tls.ca_file()}};
  const std::string port = tls.address().substr(tls.address().rfind(':') + 1);
  const auto [cert, key] = tls.ClientFiles("carol");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--address", tls.address(), "--tls", "resources"},
           {"--address", "https://127.0.0.1:" + port, "resources"},
           {"--address", "https://localhost:" + port + "/", "resources"},
           {"--address", tls.address(), "--cert", cert, "--key", key, "resources"},
       }) {
    const SubprocessResult result = Run(args, roots);
    CHECK(result.exit_code == 0);
  }
  CHECK(tls.fake().service().calls() == 4);
  // Without the variable the system's store is used, which does not know the test CA.
  const SubprocessResult system = Run({"--address", tls.address(), "--tls", "resources"});
  CHECK(system.exit_code == 1);
  CHECK(system.err.find("the TLS handshake with informerd at " + tls.address() + " failed") !=
        std::string::npos);
  CHECK(tls.fake().service().calls() == 4);
}

TEST_CASE("--tls-server-name: the name the certificate is checked against") {
  TlsFixture tls;
  const SubprocessResult ok = Run({"--address", tls.address(), "--cacert", tls.ca_file(),
                                   "--tls-server-name", "localhost", "resources"});
  CHECK(ok.exit_code == 0);
  const SubprocessResult wrong = Run({"--address", tls.address(), "--cacert", tls.ca_file(),
                                      "--tls-server-name", "informerd.example", "resources"});
  CHECK(wrong.exit_code == 1);
  CHECK(wrong.err.find("the TLS handshake with informerd at " + tls.address() + " failed") !=
        std::string::npos);
  CHECK(tls.fake().service().calls() == 1);
}

TEST_CASE("a bearer token goes over plaintext only to loopback") {
  FakeInformer plaintext;
  const SubprocessResult local =
      Run({"--address", plaintext.address(), "--token", "local-token", "resources"});
  CHECK(local.exit_code == 0);
  CHECK(Authorizations(plaintext.service()) == std::vector<std::string>{"Bearer local-token"});

  // Refused before any connection (192.0.2.0/24 is reserved for documentation: nothing there).
  for (const char* address : {"192.0.2.1:50051", "dns:///informerd.example:50051"}) {
    const SubprocessResult remote = Run({"--address", address, "--token", "t", "resources"});
    CHECK(remote.exit_code == 1);
    CHECK(remote.err == fmt::format("informerctl: refusing to send a bearer token in plaintext "
                                    "to {}: use TLS (--cacert FILE, or --tls), or a loopback "
                                    "address or unix socket (for example through kubectl "
                                    "port-forward)\n",
                                    address));
  }
}

TEST_CASE("unreadable and unusable files: one line naming the flag and the file, exit 1") {
  TlsFixture tls;
  const std::string missing = tls.dir().Path("missing");
  const std::string not_pem = tls.dir().Write("not-pem", "hello\n");
  const std::string empty = tls.dir().Write("empty", " \n");
  const std::string spaced = tls.dir().Write("spaced", "two words\n");
  const auto [cert, key] = tls.ClientFiles("dave");
  struct Case {
    std::vector<std::string> flags;
    std::string message;
  };
  for (const Case& failure : std::vector<Case>{
           {{"--token-file", missing}, "--token-file " + missing + ": No such file or directory"},
           {{"--token-file", tls.dir().path()},
            "--token-file " + tls.dir().path() + ": Is a directory"},
           {{"--token-file", empty}, "--token-file " + empty + ": the token is empty"},
           {{"--token-file", spaced},
            "--token-file " + spaced +
                ": the token contains a space, a control character or non-ASCII, which a bearer "
                "token cannot carry"},
           {{"--token", "caf\xc3\xa9"},
            "--token: the token contains a space, a control character or non-ASCII, which a "
            "bearer token cannot carry"},
           {{"--cacert", missing}, "--cacert " + missing + ": No such file or directory"},
           {{"--cacert", not_pem}, "--cacert " + not_pem + ": no PEM certificate in it"},
           {{"--cert", missing, "--key", key}, "--cert " + missing + ": No such file or directory"},
           {{"--cert", cert, "--key", missing}, "--key " + missing + ": No such file or directory"},
           {{"--cert", cert, "--key", cert}, "--key " + cert + ": no PEM private key in it"},
           {{"--kubeconfig", missing},
            "kubeconfig given by --kubeconfig: file " + missing + ": No such file or directory"},
       }) {
    std::vector<std::string> args = {"--address", tls.address()};
    args.insert(args.end(), failure.flags.begin(), failure.flags.end());
    args.push_back("resources");
    const SubprocessResult result = Run(args);
    CHECK(result.exit_code == 1);
    CHECK(result.out.empty());
    CHECK(result.err == "informerctl: " + failure.message + "\n");
  }
  CHECK(tls.fake().service().calls() == 0);
}

// A kubeconfig with one user per kind of credential; its cluster's server is never contacted.
std::string WriteKubeconfig(TlsFixture& tls) {
  const KeyAndCertificate carol = tls.client_ca().IssueClient("carol", {"admins"});
  tls.dir().Write("kube/erin.token", "erin-token-from-file\n", 0600);
  const std::string plugin = tls.dir().Write(
      "kube/plugin.sh",
      "#!/bin/sh\n"
      "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\","
      "\"status\":{\"token\":\"frank-token-from-plugin\"}}'\n",
      0755);
  const std::string failing = tls.dir().Write(
      "kube/failing.sh", "#!/bin/sh\necho 'no cached login; run: login-tool' >&2\nexit 3\n", 0755);
  return tls.dir().Write("kube/config",
                         fmt::format(R"(apiVersion: v1
kind: Config
clusters:
- name: real
  cluster:
    server: https://apiserver.invalid:6443
    proxy-url: http://proxy.invalid:3128
- name: plain
  cluster:
    server: http://127.0.0.1:8001
users:
- name: dana
  user:
    token: dana-token
- name: erin
  user:
    tokenFile: erin.token
- name: carol
  user:
    client-certificate-data: {}
    client-key-data: {}
- name: frank
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: {}
      interactiveMode: Never
- name: gina
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: {}
      interactiveMode: Never
- name: nobody
  user: {{}}
contexts:
- {{name: dana, context: {{cluster: real, user: dana}}}}
- {{name: erin, context: {{cluster: real, user: erin}}}}
- {{name: carol, context: {{cluster: real, user: carol}}}}
- {{name: frank, context: {{cluster: real, user: frank}}}}
- {{name: gina, context: {{cluster: real, user: gina}}}}
- {{name: nobody, context: {{cluster: real, user: nobody}}}}
- {{name: proxy, context: {{cluster: plain, user: dana}}}}
current-context: dana
)",
                                     absl::Base64Escape(carol.certificate_pem),
                                     absl::Base64Escape(carol.private_key_pem), plugin, failing),
                         0600);
}

TEST_CASE("--kubeconfig: the context's user's token, token file, certificate or exec plugin") {
  TlsFixture tls;
  const std::string kubeconfig = WriteKubeconfig(tls);
  const std::vector<std::string> base = {"--address",   tls.address(),  "--cacert",
                                         tls.ca_file(), "--kubeconfig", kubeconfig};
  struct Case {
    std::vector<std::string> flags;
    std::string authorization;  // "<none>" when none
    std::string common_name;
  };
  for (const Case& c : std::vector<Case>{
           {{}, "Bearer dana-token", ""},  // current-context
           {{"--context", "erin"}, "Bearer erin-token-from-file", ""},
           {{"--context", "carol"}, "<none>", "carol"},
           {{"--context", "frank"}, "Bearer frank-token-from-plugin", ""},
       }) {
    std::vector<std::string> args = base;
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    args.push_back("resources");
    const SubprocessResult result = Run(args);
    CHECK(result.exit_code == 0);
    CHECK(result.err == "No resources found.\n");
    const std::vector<CallerSeen> callers = tls.fake().service().callers();
    REQUIRE(!callers.empty());
    CHECK((callers.back().authorization.empty() ? "<none>" : callers.back().authorization[0]) ==
          c.authorization);
    CHECK(callers.back().client_common_name == c.common_name);
  }
  // A client certificate from the kubeconfig turns TLS on by itself.
  const SubprocessResult certificate = Run(
      {"--address", tls.address(), "--kubeconfig", kubeconfig, "--context", "carol", "resources"},
      {{"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", tls.ca_file()}});
  CHECK(certificate.exit_code == 0);
  CHECK(tls.fake().service().callers().back().client_common_name == "carol");
}

TEST_CASE("--kubeconfig errors name the kubeconfig and what is missing") {
  TlsFixture tls;
  const std::string kubeconfig = WriteKubeconfig(tls);
  const std::vector<std::string> base = {"--address",   tls.address(),  "--cacert",
                                         tls.ca_file(), "--kubeconfig", kubeconfig};
  struct Case {
    std::string context;
    std::string message_start;
    std::string message_part;
  };
  for (const Case& c : std::vector<Case>{
           {"missing", "informerctl: --kubeconfig: kubeconfig " + kubeconfig,
            "context \"missing\" not found (contexts: "},
           {"nobody",
            "informerctl: --kubeconfig: user \"nobody\" (context \"nobody\" in " + kubeconfig +
                ") has no credentials: no token, token file, client certificate or exec plugin\n",
            ""},
           {"proxy",
            "informerctl: --kubeconfig: user \"dana\" (context \"proxy\" in " + kubeconfig +
                ") has no credentials: no token, token file, client certificate or exec plugin "
                "used (its cluster's server is plain http, to which kubectl sends none)\n",
            ""},
           {"gina", "informerctl: --kubeconfig: ", "no cached login; run: login-tool"},
       }) {
    INFO(c.context);
    std::vector<std::string> args = base;
    args.insert(args.end(), {"--context", c.context, "resources"});
    const SubprocessResult result = Run(args);
    CHECK(result.exit_code == 1);
    CHECK(result.err.rfind(c.message_start, 0) == 0);
    CHECK(result.err.find(c.message_part) != std::string::npos);
  }
  CHECK(tls.fake().service().calls() == 0);
}

struct UsageCase {
  std::vector<std::string> args;
  std::string message;
};

TEST_CASE("connection flags that cannot go together are usage errors (exit 2)") {
  const UsageCase usage = GENERATE(values<UsageCase>({
      {{"--token", "a", "--token-file", "f"}, "--token and --token-file exclude each other"},
      {{"--kubeconfig", "k", "--token", "a"},
       "--kubeconfig and --token exclude each other: the kubeconfig's user is the identity"},
      {{"--kubeconfig", "k", "--token-file", "f"},
       "--kubeconfig and --token-file exclude each other: the kubeconfig's user is the identity"},
      {{"--kubeconfig", "k", "--cert", "c", "--key", "k"},
       "--kubeconfig and --cert exclude each other: the kubeconfig's user is the identity"},
      {{"--context", "c"}, "--context needs --kubeconfig"},
      {{"--cert", "c"}, "--cert and --key go together"},
      {{"--key", "k"}, "--cert and --key go together"},
      {{"--cacert", "ca", "--insecure-skip-tls-verify"},
       "--cacert and --insecure-skip-tls-verify exclude each other"},
      {{"--token", ""}, "--token is empty"},
      {{"--cacert", ""}, "--cacert is empty"},
      {{"--kubeconfig", ""}, "--kubeconfig is empty"},
  }));
  std::vector<std::string> args = usage.args;
  args.push_back("resources");
  const SubprocessResult result = Run(args);
  CHECK(result.exit_code == 2);
  CHECK(result.err == "informerctl: " + usage.message + " (see informerctl --help)\n");
}

TEST_CASE("--help lists the connection flags and the TLS rule") {
  const SubprocessResult result = Run({"--help"});
  CHECK(result.exit_code == 0);
  for (const char* text :
       {"--tls ", "--cacert FILE", "--cert FILE", "--key FILE", "--insecure-skip-tls-verify",
        "--tls-server-name NAME", "--token TOKEN", "--token-file FILE", "--kubeconfig FILE",
        "--context NAME", "The connection is TLS when",
        "A bearer token is sent\nover plaintext only to a loopback address or a unix socket."}) {
    INFO(text);
    CHECK(result.out.find(text) != std::string::npos);
  }
}

}  // namespace
}  // namespace informerd::test
