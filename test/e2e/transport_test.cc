// End-to-end: the informerd binary's gRPC transport. Plaintext on an address other hosts can reach
// is refused at start-up with one line and exit status 1 (and allowed with
// --insecure-allow-plaintext); broken TLS files are refused the same way; a unix socket and TLS
// serve. The daemon is pointed at an apiserver address where nothing listens: it starts and serves
// gRPC all the same (nothing is synced, which these tests do not need).
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "informerd/v1/informerd.grpc.pb.h"
#include "test/common/subprocess.h"
#include "test/common/test_pki.h"

namespace informerd::test {
namespace {

using std::chrono::seconds;

const char kBinary[] = "cmd/informerd/informerd";
const char kConfig[] = "deploy/config/informerd.yaml";
const char kListening[] = "gRPC listening on ";

std::string TempPath(const std::string& name) {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
}

std::string Write(const std::string& name, const std::string& text) {
  const std::string path = TempPath(name);
  std::ofstream(path) << text;
  return path;
}

// A kubeconfig for an apiserver that is not there: start-up does not connect to it.
std::string UnreachableKubeconfig() {
  return Write("kubeconfig",
               "apiVersion: v1\nkind: Config\nclusters:\n- name: none\n  cluster:\n"
               "    server: https://127.0.0.1:1\n"
               "users:\n- name: u\n  user:\n    token: t\n"
               "contexts:\n- name: none\n  context:\n    cluster: none\n    user: u\n"
               "current-context: none\n");
}

// Runs informerd with `flags` until it exits; returns its exit status and stderr.
std::pair<int, std::string> RunToExit(std::vector<std::string> flags) {
  flags.insert(flags.begin(), kBinary);
  auto daemon = Subprocess::Start(flags);
  REQUIRE(daemon.ok());
  auto exit_code = daemon->Wait(seconds(15));
  INFO(daemon->stderr_text());
  REQUIRE(exit_code.ok());
  return {*exit_code, daemon->stderr_text()};
}

// The daemon's address as logged once it is serving.
std::string WaitListening(Subprocess& daemon) {
  auto line = daemon.WaitForLine(kListening, seconds(20));
  INFO(daemon.stderr_text());
  REQUIRE(line.ok());
  return line->substr(line->find(kListening) + sizeof kListening - 1);
}

grpc::Status ListResources(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = v1::Informer::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(10));
  v1::ListResourcesResponse response;
  return stub->ListResources(&context, v1::ListResourcesRequest(), &response);
}

TEST_CASE("plaintext on 0.0.0.0 is refused at start-up: one line, exit 1") {
  const auto [code, stderr_text] = RunToExit({"--config", kConfig, "--listen", "0.0.0.0:50051"});
  CHECK(code == 1);
  CHECK(stderr_text.substr(stderr_text.find("informerd: --listen")) ==
        "informerd: --listen 0.0.0.0:50051: refusing plaintext gRPC on an address other hosts can "
        "reach; serve TLS with --tls-cert-file and --tls-private-key-file, or accept plaintext "
        "with --insecure-allow-plaintext\n");
}

TEST_CASE("--insecure-allow-plaintext lets plaintext on 0.0.0.0 through, with a warning") {
  Subprocess daemon =
      *Subprocess::Start({kBinary, "--config", kConfig, "--kubeconfig", UnreachableKubeconfig(),
                          "--listen", "0.0.0.0:0", "--insecure-allow-plaintext", "--metrics-listen",
                          "none", "--probe-listen", "none"});
  const std::string address = WaitListening(daemon);
  CHECK(daemon.stderr_text().find("gRPC transport: plaintext on an address other hosts can "
                                  "reach (--insecure-allow-plaintext)") != std::string::npos);
  const std::string port = address.substr(address.rfind(':') + 1);
  // The call gets through to the service, whose access control (Webhook by default on such an
  // address, anonymous calls refused) answers.
  const grpc::Status status =
      ListResources(grpc::CreateChannel("127.0.0.1:" + port, grpc::InsecureChannelCredentials()));
  CHECK(status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(status.error_message() ==
        "no credentials: send a bearer token (authorization: Bearer …) or a client certificate");
  daemon.Signal(SIGTERM);
  auto exit_code = daemon.Wait(seconds(15));
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 0);
}

TEST_CASE("a TLS file that is missing is refused at start-up: one line naming it, exit 1") {
  const std::string missing = TempPath("missing.crt");
  const std::string key = Write("some.key", "not a key\n");
  const auto [code, stderr_text] =
      RunToExit({"--config", kConfig, "--listen", "0.0.0.0:50051", "--tls-cert-file", missing,
                 "--tls-private-key-file", key});
  CHECK(code == 1);
  CHECK(stderr_text.substr(stderr_text.find("informerd: --tls")) ==
        "informerd: --tls-cert-file " + missing + ": cannot read it: No such file or directory\n");
}

TEST_CASE("a unix socket: served, the file 0660 (or --listen-socket-mode), gone after exit") {
  char pattern[] = "/tmp/informerd-e2e-XXXXXX";
  REQUIRE(mkdtemp(pattern) != nullptr);
  const std::string dir = pattern;
  const std::string path = dir + "/grpc.sock";
  for (const auto& [flags, mode] : std::vector<std::pair<std::vector<std::string>, unsigned>>{
           {{}, 0660u}, {{"--listen-socket-mode", "0600"}, 0600u}}) {
    std::vector<std::string> argv = {kBinary,
                                     "--config",
                                     kConfig,
                                     "--kubeconfig",
                                     UnreachableKubeconfig(),
                                     "--listen",
                                     "unix://" + path,
                                     "--metrics-listen",
                                     "none",
                                     "--probe-listen",
                                     "none"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    Subprocess daemon = *Subprocess::Start(argv);
    CHECK(WaitListening(daemon) == "unix://" + path);
    struct stat info {};
    REQUIRE(lstat(path.c_str(), &info) == 0);
    CHECK(S_ISSOCK(info.st_mode));
    CHECK((info.st_mode & 07777) == mode);
    CHECK(ListResources(grpc::CreateChannel("unix://" + path, grpc::InsecureChannelCredentials()))
              .ok());
    daemon.Signal(SIGTERM);
    auto exit_code = daemon.Wait(seconds(15));
    REQUIRE(exit_code.ok());
    CHECK(*exit_code == 0);
    CHECK_FALSE(std::filesystem::exists(path));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("TLS: served to a client trusting the CA, with no plaintext fallback") {
  daemon::testing::TestCa ca("e2e-ca");
  const daemon::testing::KeyAndCertificate server = ca.IssueServer("informerd-e2e", 2);
  const std::string cert = Write("tls.crt", server.certificate_pem);
  const std::string key = Write("tls.key", server.private_key_pem);
  Subprocess daemon = *Subprocess::Start({kBinary, "--config", kConfig, "--kubeconfig",
                                          UnreachableKubeconfig(), "--listen", "127.0.0.1:0",
                                          "--tls-cert-file", cert, "--tls-private-key-file", key,
                                          "--metrics-listen", "none", "--probe-listen", "none"});
  const std::string address = WaitListening(daemon);
  CHECK(daemon.stderr_text().find("gRPC transport: TLS with " + cert + " (CN=informerd-e2e, ") !=
        std::string::npos);
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca.certificate_pem();
  CHECK(ListResources(grpc::CreateChannel(address, grpc::SslCredentials(ssl))).ok());
  CHECK(ListResources(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))
            .error_code() == grpc::StatusCode::UNAVAILABLE);
  daemon.Signal(SIGTERM);
  auto exit_code = daemon.Wait(seconds(15));
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 0);
}

}  // namespace
}  // namespace informerd::test
