// End-to-end: the informerd binary enforcing access over TLS, against the fake apiserver with its
// review APIs on (TokenReview and SubjectAccessReview answered from a table the test fills, as
// the apiserver's authenticators and RBAC would). Tokens are verified and calls authorized exactly
// as the table says; a revoked permission ends an open stream within the cache TTL (shortened by
// the flag); the audit lines and the review metrics come out.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "informerd/v1/informerd.grpc.pb.h"
#include "test/common/http_client.h"
#include "test/common/run_subprocess.h"
#include "test/common/subprocess.h"
#include "test/common/test_pki.h"
#include "test/fakeapi/fake_api_server.h"

namespace informerd::test {
namespace {

using std::chrono::seconds;

const char kBinary[] = "cmd/informerd/informerd";
const char kInformerctl[] = "cmd/informerctl/informerctl";

std::string TempPath(const std::string& name) {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
}

std::string Write(const std::string& name, const std::string& text) {
  const std::string path = TempPath(name);
  std::ofstream(path) << text;
  return path;
}

std::string Text(const grpc::Status& status) {
  return std::to_string(static_cast<int>(status.error_code())) + " " + status.error_message();
}

constexpr int kPermissionDenied = 7;
constexpr int kUnauthenticated = 16;

// The fake apiserver: pods in team-a and team-b; alice may list, watch and get pods in team-a;
// bob is known but may do nothing.
class Upstream {
 public:
  Upstream() {
    fakeapi::ServerOptions options;
    options.review_apis = true;
    REQUIRE(server_.Start(options).ok());
    REQUIRE(server_.Upsert("pods", "team-a", "a1").ok());
    REQUIRE(server_.Upsert("pods", "team-b", "b1").ok());
    fakeapi::TokenIdentity alice;
    alice.username = "alice";
    alice.uid = "uid-alice";
    alice.groups = {"team-a-readers", "system:authenticated"};
    server_.reviews().AddToken("alice-token", alice);
    fakeapi::TokenIdentity bob;
    bob.username = "bob";
    bob.groups = {"system:authenticated"};
    server_.reviews().AddToken("bob-token", bob);
    for (const char* verb : {"list", "watch", "get"}) {
      server_.reviews().Allow(AliceReads(verb), "RBAC: allowed by RoleBinding \"readers\"");
    }
    kubeconfig_ = Write("kubeconfig-" + std::to_string(server_.port()),
                        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n"
                        "    server: " +
                            server_.base_url() +
                            "\nusers:\n- name: informerd\n  user:\n    token: informerd-token\n"
                            "contexts:\n- name: fake\n  context:\n    cluster: fake\n"
                            "    user: informerd\ncurrent-context: fake\n");
  }

  static fakeapi::AccessRule AliceReads(const std::string& verb) {
    fakeapi::AccessRule rule;
    rule.user = "alice";
    rule.verb = verb;
    rule.group = "";
    rule.resource = "pods";
    rule.namespace_name = "team-a";
    return rule;
  }

  fakeapi::FakeApiServer& server() { return server_; }
  const std::string& kubeconfig() const { return kubeconfig_; }

 private:
  fakeapi::FakeApiServer server_;
  std::string kubeconfig_;
};

// informerd serving TLS on loopback with --authorization-mode=Webhook, allowed decisions cached
// for 1 s (so a stream is authorized again every second).
struct Daemon {
  explicit Daemon(Upstream& upstream) : ca("access-test-ca") {
    const daemon::testing::KeyAndCertificate server = ca.IssueServer("informerd", 1);
    const std::string cert = Write("tls.crt", server.certificate_pem);
    const std::string key = Write("tls.key", server.private_key_pem);
    const std::string config = Write("pods.yaml", "resources:\n  - resource: pods\n");
    auto started = Subprocess::Start(
        {kBinary, "--config", config, "--kubeconfig", upstream.kubeconfig(), "--listen",
         "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--probe-listen", "127.0.0.1:0",
         "--tls-cert-file", cert, "--tls-private-key-file", key, "--authorization-mode=Webhook",
         "--authorization-webhook-cache-authorized-ttl", "1s"});
    REQUIRE(started.ok());
    process.emplace(std::move(*started));
    const std::string metrics_marker = "metrics listening on ";
    auto metrics_line = process->WaitForLine(metrics_marker, seconds(20));
    INFO(process->stderr_text());
    REQUIRE(metrics_line.ok());
    metrics_address =
        metrics_line->substr(metrics_line->find(metrics_marker) + metrics_marker.size());
    const std::string marker = "gRPC listening on ";
    auto line = process->WaitForLine(marker, seconds(20));
    INFO(process->stderr_text());
    REQUIRE(line.ok());
    const std::string address = line->substr(line->find(marker) + marker.size());
    target = "localhost:" + address.substr(address.rfind(':') + 1);
    ca_file = Write("ca.crt", ca.certificate_pem());
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ca.certificate_pem();
    stub = v1::Informer::NewStub(grpc::CreateChannel(target, grpc::SslCredentials(ssl)));
  }

  void Prepare(grpc::ClientContext& context, const std::string& token) {
    context.set_deadline(std::chrono::system_clock::now() + seconds(20));
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  }

  grpc::Status List(const std::string& token, const std::string& namespace_name,
                    v1::ListResponse* response = nullptr) {
    grpc::ClientContext context;
    Prepare(context, token);
    v1::ListRequest request;
    request.set_resource("pods");
    request.set_namespace_(namespace_name);
    v1::ListResponse ignored;
    return stub->List(&context, request, response ? response : &ignored);
  }

  grpc::Status Get(const std::string& token, const std::string& namespace_name,
                   const std::string& name) {
    grpc::ClientContext context;
    Prepare(context, token);
    v1::GetRequest request;
    request.set_resource("pods");
    request.set_namespace_(namespace_name);
    request.set_name(name);
    v1::GetResponse response;
    return stub->Get(&context, request, &response);
  }

  std::vector<std::string> ListResources(const std::string& token,
                                         const std::string& namespace_name) {
    grpc::ClientContext context;
    Prepare(context, token);
    v1::ListResourcesRequest request;
    request.set_namespace_(namespace_name);
    v1::ListResourcesResponse response;
    const grpc::Status status = stub->ListResources(&context, request, &response);
    REQUIRE(status.ok());
    std::vector<std::string> resources;
    for (const v1::ResourceInfo& info : response.resources()) resources.push_back(info.resource());
    return resources;
  }

  daemon::testing::TestCa ca;
  std::optional<Subprocess> process;
  std::string metrics_address;
  std::string target;   // localhost:PORT, the name the certificate is for
  std::string ca_file;  // the CA that signed informerd's certificate
  std::unique_ptr<v1::Informer::Stub> stub;
};

// The objects' names of a List answer.
std::vector<std::string> Names(const v1::ListResponse& response) {
  std::vector<std::string> names;
  for (const std::string& item : response.items()) {
    const std::size_t at = item.find("\"name\":\"");
    names.push_back(item.substr(at + 8, item.find('"', at + 8) - at - 8));
  }
  return names;
}

TEST_CASE("the binary authenticates with TokenReview and authorizes with SubjectAccessReview") {
  Upstream upstream;
  Daemon daemon(upstream);

  v1::ListResponse team_a;
  CHECK(Text(daemon.List("alice-token", "team-a", &team_a)) == "0 ");
  CHECK(Names(team_a) == std::vector<std::string>{"a1"});
  CHECK(Text(daemon.Get("alice-token", "team-a", "a1")) == "0 ");

  CHECK(Text(daemon.List("alice-token", "team-b")) ==
        std::to_string(kPermissionDenied) +
            " user \"alice\" cannot list pods in namespace \"team-b\"");
  CHECK(Text(daemon.List("alice-token", "")) ==
        std::to_string(kPermissionDenied) +
            " user \"alice\" cannot list pods at the cluster scope");
  CHECK(Text(daemon.Get("alice-token", "team-b", "b1")) ==
        std::to_string(kPermissionDenied) +
            " user \"alice\" cannot get pods \"b1\" in namespace \"team-b\"");
  CHECK(Text(daemon.List("bob-token", "team-a")) ==
        std::to_string(kPermissionDenied) +
            " user \"bob\" cannot list pods in namespace \"team-a\"");
  CHECK(Text(daemon.List("", "team-a")) ==
        std::to_string(kUnauthenticated) +
            " no credentials: send a bearer token (authorization: Bearer …) or a client "
            "certificate");
  CHECK(Text(daemon.List("not-a-token", "team-a")) ==
        std::to_string(kUnauthenticated) +
            " the bearer token was rejected by the apiserver: invalid bearer token");

  // A Subscribe to every namespace: refused before anything is sent.
  {
    grpc::ClientContext context;
    daemon.Prepare(context, "alice-token");
    v1::SubscribeRequest request;
    request.set_resource("pods");
    auto reader = daemon.stub->Subscribe(&context, request);
    v1::Event event;
    CHECK_FALSE(reader->Read(&event));
    CHECK(Text(reader->Finish()) == std::to_string(kPermissionDenied) +
                                        " user \"alice\" cannot list pods at the cluster scope");
  }

  CHECK(daemon.ListResources("alice-token", "team-a") == std::vector<std::string>{"pods"});
  CHECK(daemon.ListResources("alice-token", "").empty());
  CHECK(daemon.ListResources("bob-token", "team-a").empty());
  // informerctl asks the same way: -n for the resources the caller may list there.
  auto ctl = RunSubprocess({kInformerctl, "--address", daemon.target, "--cacert", daemon.ca_file,
                            "--token", "alice-token", "resources", "-n", "team-a", "-o", "name"});
  REQUIRE(ctl.ok());
  CHECK(ctl->exit_code == 0);
  CHECK(ctl->out == "pods\n");
  auto ctl_cluster_wide =
      RunSubprocess({kInformerctl, "--address", daemon.target, "--cacert", daemon.ca_file,
                     "--token", "alice-token", "resources", "-o", "name"});
  REQUIRE(ctl_cluster_wide.ok());
  CHECK(ctl_cluster_wide->exit_code == 0);
  CHECK(ctl_cluster_wide->out.empty());

  // Every call was audited; the denial of team-b names the caller, never the token.
  auto denied = daemon.process->WaitForLine(
      "method=\"List\" resource=\"pods\" namespace=\"team-b\" decision=deny "
      "code=PERMISSION_DENIED",
      seconds(10));
  REQUIRE(denied.ok());
  CHECK(denied->find("[audit] user=\"alice\" peer=\"ipv4:127.0.0.1:") != std::string::npos);
  auto unauthenticated = daemon.process->WaitForLine("decision=unauthenticated", seconds(10));
  REQUIRE(unauthenticated.ok());
  CHECK(daemon.process->stderr_text().find("alice-token") == std::string::npos);
  CHECK(daemon.process->stderr_text().find("not-a-token") == std::string::npos);

  // The reviews were the apiserver's, and /metrics counts them.
  auto metrics = HttpGet(daemon.metrics_address, "/metrics");
  REQUIRE(metrics.ok());
  CHECK(metrics->body.find("informerd_token_reviews_total{result=\"authenticated\"} 2\n") !=
        std::string::npos);
  CHECK(metrics->body.find("informerd_token_reviews_total{result=\"rejected\"} 1\n") !=
        std::string::npos);
  CHECK(metrics->body.find("informerd_access_reviews_total{result=\"denied\"}") !=
        std::string::npos);
  CHECK(metrics->body.find("informerd_access_review_duration_seconds_count") != std::string::npos);
}

TEST_CASE("the binary ends an open stream PERMISSION_DENIED once the RoleBinding is gone") {
  Upstream upstream;
  Daemon daemon(upstream);
  grpc::ClientContext context;
  daemon.Prepare(context, "alice-token");
  v1::SubscribeRequest request;
  request.set_resource("pods");
  request.set_namespace_("team-a");
  auto reader = daemon.stub->Subscribe(&context, request);
  v1::Event event;
  REQUIRE(reader->Read(&event));
  CHECK(event.type() == v1::Event::ADDED);
  CHECK(event.name() == "a1");
  REQUIRE(reader->Read(&event));
  CHECK(event.type() == v1::Event::SYNCED);

  for (const char* verb : {"list", "watch", "get"}) {
    REQUIRE(upstream.server().reviews().RemoveAccess(Upstream::AliceReads(verb)));
  }
  const auto revoked_at = std::chrono::steady_clock::now();
  // Within the cache TTL (1 s) and one re-authorization period (1 s), with room for a slow host.
  std::vector<std::string> after;
  while (reader->Read(&event)) after.push_back(event.name());
  const grpc::Status status = reader->Finish();
  CHECK(std::chrono::steady_clock::now() - revoked_at < seconds(10));
  CHECK(Text(status) == std::to_string(kPermissionDenied) +
                            " the stream's permission was revoked: user \"alice\" cannot list "
                            "pods in namespace \"team-a\"");
  CHECK(after.empty());
  auto audited = daemon.process->WaitForLine(
      "method=\"Subscribe\" resource=\"pods\" namespace=\"team-a\" decision=deny "
      "code=PERMISSION_DENIED",
      seconds(10));
  CHECK(audited.ok());
}

}  // namespace
}  // namespace informerd::test
