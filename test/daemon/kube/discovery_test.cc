// Discovery (daemon/kube/discovery.h): fetching the discovery documents from the fake apiserver
// (once, shared by concurrent first resolutions, again after a failure), a CRD registered after
// start-up found by a rate-limited refresh, and a group version whose list fails. The naming
// rules themselves are tested over literal documents in test/core/api_resources_test.cc.
#include "daemon/kube/discovery.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "daemon/kube/apiserver_client.h"
#include "fmt/format.h"
#include "test/common/api_test_support.h"
#include "test/common/discovery_documents.h"
#include "test/fakeapi/fake_api_server.h"

namespace informerd::test {
namespace {

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

// ---------------------------------------------------------------------------------------------
// Fetching from the fake apiserver.

struct FakeDiscoveryEnv {
  FakeDiscoveryEnv() {
    fakeapi::ServerOptions options;
    options.tls = true;
    absl::Status started = fake.Start(options);
    INFO(started.ToString());
    REQUIRE(started.ok());
    absl::StatusOr<std::unique_ptr<daemon::ApiServerClient>> created =
        daemon::ApiServerClient::Create(io.io(), MakeRestConfig(fake.base_url(), fake.ca_pem()));
    REQUIRE(created.ok());
    client = *std::move(created);
    daemon::DiscoveryOptions discovery_options;
    discovery_options.min_refresh_interval = std::chrono::seconds(30);
    discovery = std::make_unique<daemon::Discovery>(*client, clock, discovery_options);
  }

  absl::StatusOr<core::ResolvedResource> Resolve(const std::string& name) {
    Awaited<absl::StatusOr<core::ResolvedResource>> result;
    discovery->Resolve(name, result.Callback());
    std::optional<absl::StatusOr<core::ResolvedResource>> got = result.Wait();
    REQUIRE(got.has_value());
    return *got;
  }

  std::size_t RequestsFor(const std::string& path) const {
    std::size_t n = 0;
    for (const fakeapi::RequestRecord& r : fake.Requests()) n += r.path == path ? 1 : 0;
    return n;
  }

  fakeapi::FakeApiServer fake;
  ManualClock clock;
  IoThread io;
  std::unique_ptr<daemon::ApiServerClient> client;
  std::unique_ptr<daemon::Discovery> discovery;
};

TEST_CASE("Discovery fetches the documents once and resolves built-in names", "[discovery]") {
  FakeDiscoveryEnv env;
  const std::vector<std::pair<std::string, std::string>> table = {
      {"pods", "/api/v1/pods"},
      {"po", "/api/v1/pods"},
      {"configmaps", "/api/v1/configmaps"},
      {"deployments.apps", "/apis/apps/v1/deployments"},
      {"deploy", "/apis/apps/v1/deployments"},
      {"apps/v1/deployments", "/apis/apps/v1/deployments"},
      {"ns", "/api/v1/namespaces"},
  };
  for (const auto& [name, path] : table) {
    INFO(name);
    absl::StatusOr<core::ResolvedResource> resolved = env.Resolve(name);
    INFO(resolved.status().ToString());
    REQUIRE(resolved.ok());
    CHECK(resolved->CollectionPath() == path);
  }
  // One fetch served every name.
  CHECK(env.RequestsFor("/api") == 1);
  CHECK(env.RequestsFor("/apis") == 1);
  CHECK(env.RequestsFor("/api/v1") == 1);
  CHECK(env.RequestsFor("/apis/apps/v1") == 1);
}

TEST_CASE("concurrent first resolutions share one fetch", "[discovery]") {
  FakeDiscoveryEnv env;
  std::vector<Awaited<absl::StatusOr<core::ResolvedResource>>> results(4);
  const char* names[] = {"pods", "deploy", "cm", "nothing-like-this"};
  for (std::size_t i = 0; i < results.size(); ++i) {
    env.discovery->Resolve(names[i], results[i].Callback());
  }
  for (std::size_t i = 0; i < results.size(); ++i) {
    INFO(names[i]);
    std::optional<absl::StatusOr<core::ResolvedResource>> got = results[i].Wait();
    REQUIRE(got.has_value());
    CHECK(got->ok() == (i < 3));
  }
  CHECK(env.RequestsFor("/api") == 1);
  CHECK(env.RequestsFor("/apis") == 1);
}

TEST_CASE(
    "a CRD registered after start is found by a refresh on a miss, at most once per "
    "interval",
    "[discovery]") {
  FakeDiscoveryEnv env;
  absl::StatusOr<core::ResolvedResource> before = env.Resolve("widgets");
  CHECK(before.status().code() == absl::StatusCode::kNotFound);
  REQUIRE(env.RequestsFor("/apis") == 1);

  fakeapi::ResourceType widgets =
      fakeapi::ResourceType::Custom("example.com", "v1", "widgets", "Widget");
  widgets.short_names = {"wdg"};
  env.fake.RegisterResource(widgets);

  // Too soon after the last fetch: still not found, and no request was made.
  env.clock.Advance(std::chrono::seconds(10));
  absl::StatusOr<core::ResolvedResource> too_soon = env.Resolve("widgets");
  CHECK(too_soon.status().code() == absl::StatusCode::kNotFound);
  INFO(Message(too_soon.status()));
  CHECK(Contains(Message(too_soon.status()), "discovery was refreshed 10.000s ago"));
  CHECK(env.RequestsFor("/apis") == 1);

  env.clock.Advance(std::chrono::seconds(20));
  absl::StatusOr<core::ResolvedResource> found = env.Resolve("widgets");
  INFO(found.status().ToString());
  REQUIRE(found.ok());
  CHECK(found->group == "example.com");
  CHECK(found->version == "v1");
  CHECK(found->kind == "Widget");
  CHECK(found->CollectionPath("ns1") == "/apis/example.com/v1/namespaces/ns1/widgets");
  CHECK(env.RequestsFor("/apis") == 2);
  CHECK(env.RequestsFor("/apis/example.com/v1") == 1);

  // Names the new documents know resolve without another fetch.
  absl::StatusOr<core::ResolvedResource> short_name = env.Resolve("wdg");
  REQUIRE(short_name.ok());
  CHECK(short_name->resource == "widgets");
  absl::StatusOr<core::ResolvedResource> qualified = env.Resolve("widgets.example.com");
  REQUIRE(qualified.ok());
  CHECK(env.Resolve("gadgets").status().code() == absl::StatusCode::kNotFound);
  CHECK(env.RequestsFor("/apis") == 2);  // That miss came within the interval: no fetch.
}

TEST_CASE("a failed fetch is an error, and the next Resolve fetches again", "[discovery]") {
  FakeDiscoveryEnv env;
  env.fake.InjectFault("*", fakeapi::Verb::kDiscovery, fakeapi::Fault::ServiceUnavailable(1));
  absl::StatusOr<core::ResolvedResource> failed = env.Resolve("pods");
  CHECK(failed.status().code() == absl::StatusCode::kUnavailable);
  INFO(Message(failed.status()));
  CHECK(Contains(Message(failed.status()), "discovery failed"));
  CHECK(Contains(Message(failed.status()), "HTTP 503"));

  absl::StatusOr<core::ResolvedResource> retried = env.Resolve("pods");
  INFO(retried.status().ToString());
  CHECK(retried.ok());
}

TEST_CASE("a group version whose list fails is skipped and named when a name is not found",
          "[discovery]") {
  // The fake apiserver cannot fail one particular list, so a canned server plays an apiserver
  // whose aggregated metrics API is down.
  auto status_503 = [] {
    const std::string body =
        R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"service unavailable",)"
        R"("reason":"ServiceUnavailable","code":503})";
    return fmt::format(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.size(), body);
  };
  auto ok = [](const std::string& body) {
    return fmt::format(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
        "Connection: close\r\n\r\n{}",
        body.size(), body);
  };
  const std::string apis = R"({"kind":"APIGroupList","groups":[
    {"name":"apps","versions":[{"groupVersion":"apps/v1","version":"v1"}]},
    {"name":"metrics.k8s.io","versions":[{"groupVersion":"metrics.k8s.io/v1beta1",
      "version":"v1beta1"}]}]})";
  CannedHttpServer server([&](const std::string& target) {
    if (target == "/api") return ok(kApi);
    if (target == "/apis") return ok(apis);
    if (target == "/api/v1") return ok(kCoreV1);
    if (target == "/apis/apps/v1") {
      return ok(ResourceList("apps/v1", Resource("deployments", "Deployment", true)));
    }
    return status_503();
  });
  IoThread io;
  absl::StatusOr<std::unique_ptr<daemon::ApiServerClient>> client = daemon::ApiServerClient::Create(
      io.io(), MakeRestConfig(fmt::format("http://127.0.0.1:{}", server.port()), ""));
  REQUIRE(client.ok());
  ManualClock clock;
  daemon::Discovery discovery(**client, clock);

  Awaited<absl::StatusOr<core::ResolvedResource>> deployments;
  discovery.Resolve("deployments", deployments.Callback());
  std::optional<absl::StatusOr<core::ResolvedResource>> found = deployments.Wait();
  REQUIRE(found.has_value());
  INFO(found->status().ToString());
  REQUIRE(found->ok());
  CHECK((*found)->group == "apps");

  Awaited<absl::StatusOr<core::ResolvedResource>> nodes;
  discovery.Resolve("nodes.metrics.k8s.io", nodes.Callback());
  std::optional<absl::StatusOr<core::ResolvedResource>> missing = nodes.Wait();
  REQUIRE(missing.has_value());
  CHECK(missing->status().code() == absl::StatusCode::kNotFound);
  const std::string message = Message(missing->status());
  INFO(message);
  CHECK(Contains(message, "discovery failed: metrics.k8s.io/v1beta1:"));
  CHECK(Contains(message, "HTTP 503"));
  // /api, /apis and the three lists; the miss was rate-limited, so nothing more.
  CHECK(server.requests() == 5);
}

}  // namespace
}  // namespace informerd::test
