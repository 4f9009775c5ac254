// ApiServerClient and Discovery against a real kube-apiserver 1.20 (test/cluster), for what only
// a real cluster has: token and client-certificate authentication, TLS verification with the
// cluster's CA, RBAC's 403 as the client reports it, and discovery of a CRD created during the
// test. What the fake apiserver does too (a 401, watch streams, discovery of built-in resources)
// is in the contract suite, apiserver_client_contract.cc, which runs against both.
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "core/list_decoder.h"
#include "daemon/kube/apiserver_client.h"
#include "daemon/kube/discovery.h"
#include "daemon/kube/auth/file_contents.h"
#include "fmt/format.h"
#include "test/cluster/cluster_fixture.h"
#include "test/common/api_test_support.h"
#include "test/fakeapi/tls_material.h"

namespace informerd::test {
namespace {

using daemon::ApiServerClient;
using daemon::HttpResult;
using core::ResolvedResource;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

std::unique_ptr<TestCluster> StartCluster() {
  absl::StatusOr<std::unique_ptr<TestCluster>> cluster = TestCluster::Start();
  INFO(cluster.status().ToString());
  REQUIRE(cluster.ok());
  return *std::move(cluster);
}

std::string ReadOrFail(const std::string& path) {
  absl::StatusOr<std::string> contents = daemon::ReadFileContents(path);
  INFO(contents.status().ToString());
  REQUIRE(contents.ok());
  return *contents;
}

std::shared_ptr<daemon::CredentialSource> Token(const std::string& token) {
  daemon::Credentials credentials;
  credentials.bearer_token = token;
  return std::make_shared<daemon::StaticCredentialSource>(std::move(credentials));
}

std::shared_ptr<daemon::CredentialSource> Certificate(const TestCluster& cluster,
                                                      Identity identity) {
  daemon::Credentials credentials;
  credentials.client_cert_pem = ReadOrFail(cluster.client_cert_file(identity));
  credentials.client_key_pem = ReadOrFail(cluster.client_key_file(identity));
  return std::make_shared<daemon::StaticCredentialSource>(std::move(credentials));
}

// A RestConfig built directly from what the harness reports (not through a kubeconfig).
daemon::RestConfig ConfigFor(const TestCluster& cluster,
                             std::shared_ptr<daemon::CredentialSource> credentials,
                             const std::string& identity) {
  return MakeRestConfig(cluster.url(), ReadOrFail(cluster.ca_file()), std::move(credentials),
                        identity);
}

std::unique_ptr<ApiServerClient> MakeClient(IoThread& io, daemon::RestConfig config) {
  absl::StatusOr<std::unique_ptr<ApiServerClient>> client =
      ApiServerClient::Create(io.io(), std::move(config));
  INFO(client.status().ToString());
  REQUIRE(client.ok());
  return *std::move(client);
}

HttpResult GetNow(ApiServerClient& client, const std::string& path) {
  Awaited<HttpResult> result;
  client.Get(path, "", result.Callback());
  std::optional<HttpResult> got = result.Wait(std::chrono::seconds(60));
  REQUIRE(got.has_value());
  return *std::move(got);
}

constexpr char kNamespaceAndPod[] = R"(apiVersion: v1
kind: Namespace
metadata:
  name: client-test
---
apiVersion: v1
kind: Pod
metadata:
  name: p1
  namespace: client-test
spec:
  containers:
  - name: c
    image: registry.invalid/never-pulled:1
)";

TEST_CASE("token and client-certificate identities list pods; wrong CA and 403 are clear",
          "[cluster]") {
  std::unique_ptr<TestCluster> cluster = StartCluster();
  absl::Status applied = cluster->ApplyYaml(kNamespaceAndPod);
  INFO(applied.ToString());
  REQUIRE(applied.ok());
  IoThread io;
  const std::string pods_path = "/api/v1/namespaces/client-test/pods";
  // One cluster for every part below (each start takes seconds), so blocks, not SECTIONs.

  {
    INFO("admin by token and alice by client certificate list the pod");
    auto admin = MakeClient(io, ConfigFor(*cluster, Token(cluster->token(Identity::kAdminToken)),
                                          "user \"admin\" (test)"));
    auto alice = MakeClient(
        io, ConfigFor(*cluster, Certificate(*cluster, Identity::kAliceCert), "user \"alice\""));
    for (ApiServerClient* client : {admin.get(), alice.get()}) {
      HttpResult result = GetNow(*client, pods_path + "?limit=500");
      INFO(result.status.ToString());
      REQUIRE(result.status.ok());
      CHECK(result.http_status == 200);
      core::ListDecoder decoder(core::ScanOptions{});
      absl::StatusOr<core::ListPage> page = decoder.Decode(result.body);
      INFO(page.status().ToString());
      REQUIRE(page.ok());
      REQUIRE(page->items.size() == 1);
      CHECK(page->items[0].name == "p1");
      CHECK(!page->metadata.resource_version.empty());
    }
  }

  {
    INFO("a CA that did not sign the apiserver's certificate fails the TLS handshake");
    absl::StatusOr<fakeapi::TlsMaterial> other = fakeapi::GenerateTlsMaterial();
    REQUIRE(other.ok());
    auto client = MakeClient(io, MakeRestConfig(cluster->url(), other->ca_pem,
                                                Token(cluster->token(Identity::kAdminToken))));
    HttpResult result = GetNow(*client, pods_path);
    CHECK(result.http_status == 0);
    const std::string message = Message(result.status);
    INFO(message);
    const std::string authority = cluster->url().substr(std::string("https://").size());
    CHECK(Contains(message, fmt::format("TLS handshake with {} failed: certificate verify failed",
                                        authority)));
    CHECK(Contains(message, "(unable to get local issuer certificate)"));
  }

  {
    INFO("bob may not list pods: 403 naming the user, the resource and our identity");
    auto bob = MakeClient(io, ConfigFor(*cluster, Token(cluster->token(Identity::kBobToken)),
                                        "user \"bob-token\" (context \"bob\" in /k/bob)"));
    HttpResult result = GetNow(*bob, pods_path);
    CHECK(result.http_status == 403);
    CHECK(result.status.code() == absl::StatusCode::kPermissionDenied);
    REQUIRE(result.kube_status.has_value());
    CHECK(result.kube_status->reason == "Forbidden");
    const std::string message = Message(result.status);
    INFO(message);
    CHECK(Contains(message, "User \"bob\" cannot list resource \"pods\""));
    CHECK(Contains(message, "user \"bob-token\" (context \"bob\" in /k/bob)"));
    CHECK(Contains(message, pods_path));
  }
}

constexpr char kCrd[] = R"(apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wdg]
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
)";

absl::StatusOr<core::ResolvedResource> Resolve(daemon::Discovery& discovery, const std::string& name) {
  Awaited<absl::StatusOr<core::ResolvedResource>> result;
  discovery.Resolve(name, result.Callback());
  std::optional<absl::StatusOr<core::ResolvedResource>> got = result.Wait(std::chrono::seconds(60));
  REQUIRE(got.has_value());
  return *got;
}

TEST_CASE("discovery resolves a CRD created during the test", "[cluster]") {
  std::unique_ptr<TestCluster> cluster = StartCluster();
  IoThread io;
  auto client = MakeClient(
      io, ConfigFor(*cluster, Token(cluster->token(Identity::kAliceToken)), "user \"alice\""));
  ManualClock clock;
  daemon::DiscoveryOptions options;
  options.min_refresh_interval = std::chrono::seconds(30);
  daemon::Discovery discovery(*client, clock, options);

  absl::StatusOr<core::ResolvedResource> before = Resolve(discovery, "widgets");
  CHECK(before.status().code() == absl::StatusCode::kNotFound);

  absl::Status applied = cluster->ApplyYaml(kCrd);
  INFO(applied.ToString());
  REQUIRE(applied.ok());
  absl::StatusOr<SubprocessResult> established = cluster->Kubectl(
      Identity::kAdminToken,
      {"wait", "--for=condition=established", "--timeout=60s", "crd/widgets.example.com"});
  REQUIRE(established.ok());
  INFO(established->err);
  REQUIRE(established->exit_code == 0);

  // Established means served; discovery documents follow within moments. Each attempt is a
  // refresh on a miss, allowed because the clock moves past the interval.
  absl::StatusOr<core::ResolvedResource> widgets = absl::NotFoundError("not tried");
  for (int attempt = 0; attempt < 40 && !widgets.ok(); ++attempt) {
    clock.Advance(std::chrono::seconds(31));
    widgets = Resolve(discovery, "widgets");
    if (!widgets.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  INFO(widgets.status().ToString());
  REQUIRE(widgets.ok());
  CHECK(widgets->group == "example.com");
  CHECK(widgets->version == "v1");
  CHECK(widgets->kind == "Widget");
  CHECK(widgets->namespaced);
  CHECK(widgets->CollectionPath("client-test") ==
        "/apis/example.com/v1/namespaces/client-test/widgets");
  for (const char* name : {"wdg", "widget", "widgets.example.com", "example.com/v1/widgets"}) {
    INFO(name);
    absl::StatusOr<core::ResolvedResource> resolved = Resolve(discovery, name);
    INFO(resolved.status().ToString());
    REQUIRE(resolved.ok());
    CHECK(*resolved == *widgets);
  }

  // And the resolved path really lists: alice's role covers the CRD? Admin's certainly does.
  auto admin = MakeClient(
      io, ConfigFor(*cluster, Token(cluster->token(Identity::kAdminToken)), "user \"admin\""));
  HttpResult listed = GetNow(*admin, widgets->CollectionPath());
  INFO(listed.status.ToString());
  CHECK(listed.status.ok());
  CHECK(Contains(listed.body, "\"kind\":\"WidgetList\""));
}

}  // namespace
}  // namespace informerd::test
