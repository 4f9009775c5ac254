// ApiServerClient (daemon/kube/apiserver_client.h) and its TLS setup (daemon/kube/tls_context.h)
// against the fault-injecting fake apiserver over TLS: LIST with keep-alive reuse, watch streams
// cut into small chunks, and every fault a real apiserver or network produces, each surfaced as the
// client's contract says.
#include "daemon/kube/apiserver_client.h"

#include <boost/asio/post.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/http_status.h"
#include "core/list_decoder.h"
#include "core/reflector.h"
#include "core/watch_event_decoder.h"
#include "daemon/version.h"
#include "fmt/format.h"
#include "test/common/api_test_support.h"
#include "test/common/watch_recorder.h"
#include "test/fakeapi/fake_api_server.h"
#include "test/fakeapi/tls_material.h"

namespace informerd::test {
namespace {

using daemon::ApiClientOptions;
using daemon::ApiServerClient;
using daemon::HttpResult;
using daemon::RestConfig;
using daemon::WatchHandle;
using fakeapi::FakeApiServer;
using fakeapi::Fault;
using fakeapi::Verb;
using std::chrono::milliseconds;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

std::unique_ptr<FakeApiServer> StartFake() {
  auto fake = std::make_unique<FakeApiServer>();
  fakeapi::ServerOptions options;
  options.tls = true;
  absl::Status started = fake->Start(options);
  INFO(started.ToString());
  REQUIRE(started.ok());
  return fake;
}

std::unique_ptr<ApiServerClient> MakeClient(IoThread& io, RestConfig config,
                                            ApiClientOptions options = {}) {
  absl::StatusOr<std::unique_ptr<ApiServerClient>> client =
      ApiServerClient::Create(io.io(), std::move(config), options);
  INFO(client.status().ToString());
  REQUIRE(client.ok());
  return *std::move(client);
}

HttpResult GetNow(ApiServerClient& client, const std::string& path) {
  Awaited<HttpResult> result;
  client.Get(path, "", result.Callback());
  std::optional<HttpResult> got = result.Wait();
  REQUIRE(got.has_value());
  return *std::move(got);
}

std::string Authority(const FakeApiServer& fake) {
  return fmt::format("127.0.0.1:{}", fake.port());
}

std::string WatchPath(std::uint64_t resource_version, const std::string& extra = "") {
  return fmt::format("/api/v1/pods?watch=1&resourceVersion={}{}", resource_version, extra);
}

// ---------------------------------------------------------------------------------------------
// Get: LIST, keep-alive, headers, credentials.

TEST_CASE("Get lists pods over TLS and reuses one keep-alive connection", "[client]") {
  std::unique_ptr<FakeApiServer> fake = StartFake();
  for (const char* name : {"a", "b", "c"}) REQUIRE(fake->Upsert("pods", "default", name).ok());
  CountingTcpProxy proxy(fake->port());
  IoThread io;
  daemon::Credentials credentials;
  credentials.bearer_token = "t0k3n";
  auto client = MakeClient(
      io, MakeRestConfig(fmt::format("https://127.0.0.1:{}", proxy.port()), fake->ca_pem(),
                         std::make_shared<daemon::StaticCredentialSource>(credentials)));

  core::ListDecoder decoder(core::ScanOptions{});
  for (int i = 0; i < 5; ++i) {
    HttpResult result = GetNow(*client, "/api/v1/pods?limit=500");
    INFO(result.status.ToString());
    REQUIRE(result.status.ok());
    CHECK(result.http_status == 200);
    CHECK_FALSE(result.kube_status.has_value());
    absl::StatusOr<core::ListPage> page = decoder.Decode(result.body);
    REQUIRE(page.ok());
    REQUIRE(page->items.size() == 3);
    CHECK(page->items[0].name == "a");
    CHECK(page->items[2].name == "c");
  }
  // Five requests, one TCP connection (one TLS handshake) as seen from outside the client.
  CHECK(proxy.connections() == 1);

  std::vector<fakeapi::RequestRecord> requests = fake->Requests();
  REQUIRE(requests.size() == 5);
  for (const fakeapi::RequestRecord& r : requests) {
    CHECK(r.method == "GET");
    CHECK(r.target == "/api/v1/pods?limit=500");
    CHECK(r.Header("Authorization") == "Bearer t0k3n");
    CHECK(r.Header("Accept") == "application/json");
    CHECK(r.Header("User-Agent") == fmt::format("informerd/{}", kVersion));
    CHECK(r.Header("Host") == fmt::format("127.0.0.1:{}", proxy.port()));
  }
}

TEST_CASE("without an idle pool every Get opens a connection of its own", "[client]") {
  // The counterpart of the reuse test: the proxy's count does tell connections apart.
  std::unique_ptr<FakeApiServer> fake = StartFake();
  CountingTcpProxy proxy(fake->port());
  IoThread io;
  ApiClientOptions options;
  options.max_idle_connections = 0;
  auto client = MakeClient(
      io, MakeRestConfig(fmt::format("https://127.0.0.1:{}", proxy.port()), fake->ca_pem()),
      options);
  for (int i = 0; i < 3; ++i) REQUIRE(GetNow(*client, "/api/v1/pods").status.ok());
  CHECK(proxy.connections() == 3);
}

TEST_CASE("concurrent Gets each get a connection; later ones reuse them", "[client]") {
  std::unique_ptr<FakeApiServer> fake = StartFake();
  CountingTcpProxy proxy(fake->port());
  IoThread io;
  auto client = MakeClient(
      io, MakeRestConfig(fmt::format("https://127.0.0.1:{}", proxy.port()), fake->ca_pem()));
  std::vector<Awaited<HttpResult>> results(3);
  for (auto& result : results) client->Get("/api/v1/pods", "", result.Callback());
  for (auto& result : results) {
    std::optional<HttpResult> got = result.Wait();
    REQUIRE(got.has_value());
    CHECK(got->status.ok());
  }
  const int opened = proxy.connections();
  CHECK(opened >= 1);
  CHECK(opened <= 3);
  for (int i = 0; i < 4; ++i) REQUIRE(GetNow(*client, "/api/v1/pods").status.ok());
  CHECK(proxy.connections() == opened);
}

TEST_CASE("a pooled connection the server closed is replaced without failing the request",
          "[client]") {
  std::unique_ptr<FakeApiServer> fake = StartFake();
  CountingTcpProxy proxy(fake->port());
  IoThread io;
  auto client = MakeClient(
      io, MakeRestConfig(fmt::format("https://127.0.0.1:{}", proxy.port()), fake->ca_pem()));
  REQUIRE(GetNow(*client, "/api/v1/pods").status.ok());
  REQUIRE(proxy.connections() == 1);

  fake->DropAllConnections();
  std::this_thread::sleep_for(milliseconds(200));  // Let the close reach the client's socket.
  HttpResult result = GetNow(*client, "/api/v1/pods");
  INFO(result.status.ToString());
  CHECK(result.status.ok());
  CHECK(result.http_status == 200);
  CHECK(proxy.connections() == 2);
}

TEST_CASE("Accept is passed through when the caller sets it", "[client]") {
  std::unique_ptr<FakeApiServer> fake = StartFake();
  IoThread io;
  auto client = MakeClient(io, MakeRestConfig(fake->base_url(), fake->ca_pem()));
  Awaited<HttpResult> result;
  client->Get("/api/v1/pods", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
              result.Callback());
  REQUIRE(result.Wait().has_value());
  std::vector<fakeapi::RequestRecord> requests = fake->Requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].Header("Accept") ==
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json");
}

TEST_CASE(
    "401: the rejected credentials are invalidated and the next request uses the rotated "
    "token",
    "[client]") {
  std::unique_ptr<FakeApiServer> fake = StartFake();
  fake->RequireToken("new-token");
  auto source =
      std::make_shared<RotatingTokenSource>(std::vector<std::string>{"old-token", "new-token"});
  IoThread io;
  auto client = MakeClient(io, MakeRestConfig(fake->base_url(), fake->ca_pem(), source,
                                              "user \"robot\" (context \"ci\" in /k/config)"));

  HttpResult rejected = GetNow(*client, "/api/v1/pods");
  CHECK(rejected.http_status == 401);
  CHECK(rejected.status.code() == absl::StatusCode::kUnauthenticated);
  const std::string message = Message(rejected.status);
  INFO(message);
  CHECK(Contains(message, "user \"robot\" (context \"ci\" in /k/config)"));
  CHECK(Contains(message, "/api/v1/pods"));
  CHECK(Contains(message, "HTTP 401"));
  REQUIRE(rejected.kube_status.has_value());
  CHECK(rejected.kube_status->reason == "Unauthorized");
  CHECK(source->invalidations() == 1);
  CHECK(source->rejected_tokens() == std::vector<std::string>{"old-token"});

  HttpResult accepted = GetNow(*client, "/api/v1/pods");
  INFO(accepted.status.ToString());
  CHECK(accepted.status.ok());
  CHECK(source->invalidations() == 1);

  std::vector<fakeapi::RequestRecord> requests = fake->Requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].Header("Authorization") == "Bearer old-token");
  CHECK(requests[0].status == 401);
  CHECK(requests[1].Header("Authorization") == "Bearer new-token");
  CHECK(requests[1].status == 200);
}

TEST_CASE("credentials are fetched off the I/O thread, which keeps running meanwhile", "[client]") {
  std::unique_ptr<FakeApiServer> fake = StartFake();
  auto source = std::make_shared<BlockingCredentialSource>("slow-token");
  IoThread io;
  auto client = MakeClient(io, MakeRestConfig(fake->base_url(), fake->ca_pem(), source));
  Awaited<HttpResult> result;
  client->Get("/api/v1/pods", "", result.Callback());

  std::optional<std::thread::id> blocked = source->WaitUntilBlocked();
  REQUIRE(blocked.has_value());
  // While the "exec plugin" runs, the io_context still runs other work...
  Awaited<std::thread::id> io_work;
  boost::asio::post(io.io(), [done = io_work.Callback()] { done(std::this_thread::get_id()); });
  std::optional<std::thread::id> io_thread = io_work.Wait();
  REQUIRE(io_thread.has_value());
  // ...because the plugin runs elsewhere.
  CHECK(*blocked != *io_thread);
  CHECK(result.count() == 0);

  source->Release();
  std::optional<HttpResult> done = result.Wait();
  REQUIRE(done.has_value());
  CHECK(done->status.ok());
  REQUIRE(fake->Requests().size() == 1);
  CHECK(fake->Requests()[0].Header("Authorization") == "Bearer slow-token");
}

TEST_CASE("a credential source that fails fails the request with its message", "[client]") {
  std::unique_ptr<FakeApiServer> fake = StartFake();
  auto source = std::make_shared<FailingCredentialSource>(
      absl::UnavailableError("exec plugin aws: exit status 1"));
  IoThread io;
  auto client = MakeClient(io, MakeRestConfig(fake->base_url(), fake->ca_pem(), source));
  HttpResult result = GetNow(*client, "/api/v1/pods");
  CHECK(result.http_status == 0);
  CHECK(result.status.code() == absl::StatusCode::kUnavailable);
  CHECK(Contains(Message(result.status), "no credentials: exec plugin aws: exit status 1"));
  CHECK(fake->Requests().empty());
}

TEST_CASE("a path that cannot be a request target is refused without sending anything",
          "[client]") {
  std::unique_ptr<FakeApiServer> fake = StartFake();
  IoThread io;
  auto client = MakeClient(io, MakeRestConfig(fake->base_url(), fake->ca_pem()));
  for (const char* path :
       {"api/v1/pods", "", "/api/v1/pods?labelSelector=a b", "/api/v1/pods\r\nX-Injected: 1"}) {
    INFO(path);
    HttpResult result = GetNow(*client, path);
    CHECK(result.status.code() == absl::StatusCode::kInvalidArgument);
  }
  WatchRecorder recorder;
  WatchHandle watch = client->Watch("api/v1/pods?watch=1", recorder.OnBytes(), recorder.OnEnd());
  std::optional<HttpResult> end = recorder.WaitForEnd();
  REQUIRE(end.has_value());
  CHECK(end->status.code() == absl::StatusCode::kInvalidArgument);
  CHECK(fake->Requests().empty());
}

// ---------------------------------------------------------------------------------------------
// Get: error answers.

TEST_CASE("410 on a LIST is OutOfRange with the Status the server sent", "[client]") {
  std::unique_ptr<FakeApiServer> fake = StartFake();
  fake->InjectFault("pods", Verb::kList, Fault::Expired());
  IoThread io;
  auto client = MakeClient(io, MakeRestConfig(fake->base_url(), fake->ca_pem()));
  HttpResult result = GetNow(*client, "/api/v1/pods?limit=10");
  CHECK(result.http_status == 410);
  CHECK(result.status.code() == absl::StatusCode::kOutOfRange);
  REQUIRE(result.kube_status.has_value());
  CHECK(result.kube_status->code == 410);
  CHECK(result.kube_status->reason == "Expired");
  INFO(Message(result.status));
  CHECK(!result.kube_status->message.empty());
  CHECK(Contains(Message(result.status), result.kube_status->message));
  CHECK(Contains(Message(result.status), "HTTP 410"));
  CHECK(Contains(Message(result.status), "/api/v1/pods?limit=10"));

  // The connection stays usable after an error answer.
  CHECK(GetNow(*client, "/api/v1/pods").status.ok());
}

TEST_CASE("429 and 503 carry Retry-After", "[client]") {
  std::unique_ptr<FakeApiServer> fake = StartFake();
  fake->InjectFault("pods", Verb::kList, Fault::TooManyRequests(7));
  fake->InjectFault("pods", Verb::kList, Fault::ServiceUnavailable(3));
  IoThread io;
  auto client = MakeClient(io, MakeRestConfig(fake->base_url(), fake->ca_pem()));

  HttpResult throttled = GetNow(*client, "/api/v1/pods");
  CHECK(throttled.http_status == 429);
  CHECK(throttled.status.code() == absl::StatusCode::kResourceExhausted);
  CHECK(throttled.retry_after == std::chrono::seconds(7));
  REQUIRE(throttled.kube_status.has_value());
  CHECK(throttled.kube_status->reason == "TooManyRequests");

  HttpResult unavailable = GetNow(*client, "/api/v1/pods");
  CHECK(unavailable.http_status == 503);
  CHECK(unavailable.status.code() == absl::StatusCode::kUnavailable);
  CHECK(unavailable.retry_after == std::chrono::seconds(3));

  HttpResult ok = GetNow(*client, "/api/v1/pods");
  CHECK(ok.status.ok());
  CHECK_FALSE(ok.retry_after.has_value());
}

// One table (core/http_status.h) for the client and the reflector: the code of a Get()'s or a
// Watch()'s error answer is the code the reflector reports for the same answer.
TEST_CASE("an error answer's code is the table's, the same the reflector reports", "[client]") {
  const std::vector<int> codes = {400, 401, 403, 404, 405, 406, 409, 410, 413,
                                  415, 422, 429, 500, 501, 502, 503, 504, 507};
  std::unique_ptr<FakeApiServer> fake = StartFake();
  for (int code : codes) {
    fake->InjectFault("pods", Verb::kList, Fault::HttpError(code, "Scripted"));
    fake->InjectFault("pods", Verb::kWatch, Fault::HttpError(code, "Scripted"));
  }
  IoThread io;
  auto client = MakeClient(io, MakeRestConfig(fake->base_url(), fake->ca_pem()));
  for (int code : codes) {
    INFO(code);
    const std::string expected = absl::StatusCodeToString(core::StatusCodeForHttpError(code));
    HttpResult listed = GetNow(*client, "/api/v1/pods");
    CHECK(listed.http_status == code);
    CHECK(absl::StatusCodeToString(listed.status.code()) == expected);
    const core::ApiError error =
        core::ApiError::Http(listed.http_status, listed.kube_status, listed.retry_after);
    CHECK(absl::StatusCodeToString(error.ToStatus().code()) == expected);

    WatchRecorder recorder;
    WatchHandle watch = client->Watch("/api/v1/pods?watch=1", recorder.OnBytes(), recorder.OnEnd());
    std::optional<HttpResult> end = recorder.WaitForEnd();
    REQUIRE(end.has_value());
    CHECK(end->http_status == code);
    CHECK(absl::StatusCodeToString(end->status.code()) == expected);
  }
}

TEST_CASE("403 names the identity, the path and the server's reason", "[client]") {
  std::unique_ptr<FakeApiServer> fake = StartFake();
  fake->InjectFault(
      "pods", Verb::kList,
      Fault::HttpError(403, "Forbidden",
                       "pods is forbidden: User \"bob\" cannot list resource \"pods\" in API "
                       "group \"\" at the cluster scope"));
  IoThread io;
  auto client = MakeClient(io, MakeRestConfig(fake->base_url(), fake->ca_pem(), nullptr,
                                              "user \"bob\" (context \"b\" in /bob.yaml)"));
  HttpResult result = GetNow(*client, "/api/v1/pods");
  CHECK(result.http_status == 403);
  CHECK(result.status.code() == absl::StatusCode::kPermissionDenied);
  const std::string message = Message(result.status);
  INFO(message);
  CHECK(Contains(message, "User \"bob\" cannot list resource \"pods\""));
  CHECK(Contains(message, "user \"bob\" (context \"b\" in /bob.yaml)"));
  CHECK(Contains(message, fmt::format("GET https://{}/api/v1/pods", Authority(*fake))));
}

TEST_CASE("an error body that is not a Status is reported with the HTTP status and the body",
          "[client]") {
  const std::string html = "<html><body>502 upstream down</body></html>";
  CannedHttpServer server(
      fmt::format("HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: {}\r\n"
                  "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\nConnection: close\r\n\r\n{}",
                  html.size(), html));
  IoThread io;
  auto client =
      MakeClient(io, MakeRestConfig(fmt::format("http://127.0.0.1:{}", server.port()), ""));
  HttpResult result = GetNow(*client, "/api/v1/pods");
  CHECK(result.http_status == 502);
  // A gateway that could not reach the apiserver: the same as no answer at all.
  CHECK(result.status.code() == absl::StatusCode::kUnavailable);
  CHECK_FALSE(result.kube_status.has_value());
  CHECK(result.body == html);
  // An HTTP-date Retry-After is not understood: absent rather than wrong.
  CHECK_FALSE(result.retry_after.has_value());
  const std::string message = Message(result.status);
  INFO(message);
  CHECK(Contains(message, "HTTP 502 Bad Gateway"));
  CHECK(Contains(message, "not a Kubernetes Status"));
  CHECK(Contains(message, "502 upstream down"));
  CHECK(server.requests() == 1);
}

TEST_CASE("a LIST whose body is malformed JSON is still a 200 with the body for the decoder",
          "[client]") {
  std::unique_ptr<FakeApiServer> fake = StartFake();
  fake->InjectFault("pods", Verb::kList, Fault::MalformedJson());
  IoThread io;
  auto client = MakeClient(io, MakeRestConfig(fake->base_url(), fake->ca_pem()));
  HttpResult result = GetNow(*client, "/api/v1/pods");
  CHECK(result.status.ok());
  core::ListDecoder decoder(core::ScanOptions{});
  CHECK(decoder.Decode(result.body).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("a server that never answers hits the request timeout", "[client]") {
  std::unique_ptr<FakeApiServer> fake = StartFake();
  fake->InjectFault("pods", Verb::kList, Fault::Stall());
  IoThread io;
  ApiClientOptions options;
  options.request_timeout = milliseconds(300);
  auto client = MakeClient(io, MakeRestConfig(fake->base_url(), fake->ca_pem()), options);
  const auto start = std::chrono::steady_clock::now();
  HttpResult result = GetNow(*client, "/api/v1/pods");
  CHECK(std::chrono::steady_clock::now() - start >= milliseconds(300));
  CHECK(result.http_status == 0);
  CHECK(result.status.code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(Contains(Message(result.status), "timed out after 300ms"));
}

TEST_CASE("a refused connection names the server", "[client]") {
  const std::uint16_t port = UnusedPort();
  IoThread io;
  auto client = MakeClient(io, MakeRestConfig(fmt::format("https://127.0.0.1:{}", port), ""));
  HttpResult result = GetNow(*client, "/api/v1/pods");
  CHECK(result.http_status == 0);
  CHECK(result.status.code() == absl::StatusCode::kUnavailable);
  INFO(Message(result.status));
  CHECK(Contains(Message(result.status), fmt::format("connecting to 127.0.0.1:{}", port)));
}

// ---------------------------------------------------------------------------------------------
// TLS.

TEST_CASE("a CA that did not sign the server certificate fails the handshake, naming the host",
          "[client][tls]") {
  std::unique_ptr<FakeApiServer> fake = StartFake();
  absl::StatusOr<fakeapi::TlsMaterial> other = fakeapi::GenerateTlsMaterial();
  REQUIRE(other.ok());
  IoThread io;
  auto client = MakeClient(io, MakeRestConfig(fake->base_url(), other->ca_pem));
  HttpResult result = GetNow(*client, "/api/v1/pods");
  CHECK(result.http_status == 0);
  CHECK(result.status.code() == absl::StatusCode::kUnavailable);
  const std::string message = Message(result.status);
  INFO(message);
  CHECK(Contains(message, fmt::format("TLS handshake with {} failed: certificate verify failed "
                                      "(unable to get local issuer certificate)",
                                      Authority(*fake))));
  // Nothing was sent: no request reached the server with an unverified peer.
  CHECK(fake->Requests().empty());
}

TEST_CASE("without a CA the system trust store is used, which does not know the fake's CA",
          "[client][tls]") {
  std::unique_ptr<FakeApiServer> fake = StartFake();
  IoThread io;
  auto client = MakeClient(io, MakeRestConfig(fake->base_url(), ""));
  HttpResult result = GetNow(*client, "/api/v1/pods");
  INFO(Message(result.status));
  CHECK(Contains(Message(result.status), "certificate verify failed"));
  CHECK(fake->Requests().empty());
}

TEST_CASE("insecure-skip-tls-verify accepts any certificate, only when configured",
          "[client][tls]") {
  std::unique_ptr<FakeApiServer> fake = StartFake();
  IoThread io;
  RestConfig config = MakeRestConfig(fake->base_url(), "");
  config.tls.insecure_skip_tls_verify = true;
  auto client = MakeClient(io, std::move(config));
  CHECK(GetNow(*client, "/api/v1/pods").status.ok());

  RestConfig both = MakeRestConfig(fake->base_url(), fake->ca_pem());
  both.tls.insecure_skip_tls_verify = true;
  absl::StatusOr<std::unique_ptr<ApiServerClient>> refused =
      ApiServerClient::Create(io.io(), std::move(both));
  CHECK(refused.status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("tls-server-name overrides the name the certificate is checked against",
          "[client][tls]") {
  std::unique_ptr<FakeApiServer> fake = StartFake();
  IoThread io;
  // The fake's certificate is for localhost, 127.0.0.1 and ::1.
  RestConfig localhost = MakeRestConfig(fake->base_url(), fake->ca_pem());
  localhost.tls.server_name = "localhost";
  auto good = MakeClient(io, std::move(localhost));
  HttpResult ok = GetNow(*good, "/api/v1/pods");
  INFO(ok.status.ToString());
  CHECK(ok.status.ok());

  RestConfig other = MakeRestConfig(fake->base_url(), fake->ca_pem());
  other.tls.server_name = "apiserver.example.com";
  auto bad = MakeClient(io, std::move(other));
  HttpResult mismatch = GetNow(*bad, "/api/v1/pods");
  const std::string message = Message(mismatch.status);
  INFO(message);
  CHECK(Contains(message, fmt::format("TLS handshake with {} failed", Authority(*fake))));
  CHECK(Contains(message, "hostname mismatch"));

  // And the URL's host is what is checked by default: "localhost" in the URL works as well.
  auto by_name = MakeClient(
      io, MakeRestConfig(fmt::format("https://localhost:{}", fake->port()), fake->ca_pem()));
  HttpResult named = GetNow(*by_name, "/api/v1/pods");
  INFO(named.status.ToString());
  CHECK(named.status.ok());
}

TEST_CASE("an unparsable CA is rejected when the client is created", "[client][tls]") {
  IoThread io;
  absl::StatusOr<std::unique_ptr<ApiServerClient>> client = ApiServerClient::Create(
      io.io(), MakeRestConfig("https://127.0.0.1:6443", "-----BEGIN CERTIFICATE-----\nnope\n"));
  CHECK(client.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Contains(Message(client.status()), "certificate authority"));
}

// ---------------------------------------------------------------------------------------------
// Watch.

TEST_CASE("a watch hands over events cut into 7-byte chunks, in order, to the decoder",
          "[client][watch]") {
  std::unique_ptr<FakeApiServer> fake = StartFake();
  fake->SetWatchChunkBytes(7);
  const std::uint64_t start = fake->CurrentRevision();
  for (const char* name : {"p1", "p2", "p3"}) REQUIRE(fake->Upsert("pods", "default", name).ok());
  IoThread io;
  auto client = MakeClient(io, MakeRestConfig(fake->base_url(), fake->ca_pem()));

  WatchRecorder recorder;
  WatchHandle watch = client->Watch(WatchPath(start), recorder.OnBytes(), recorder.OnEnd());
  REQUIRE(recorder.WaitForEvents(3));
  REQUIRE(fake->Upsert("pods", "default", "p4").ok());  // A live event after the history.
  REQUIRE(recorder.WaitForEvents(4));
  INFO(recorder.decode_status().ToString());
  CHECK(recorder.decode_status().ok());
  std::vector<core::WatchEvent> events = recorder.events();
  REQUIRE(events.size() == 4);
  const char* names[] = {"p1", "p2", "p3", "p4"};
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK(events[i].type == core::WatchEventType::kAdded);
    CHECK(events[i].object.name == names[i]);
  }
  // Events of hundreds of bytes in 7-byte chunks cannot all have come in one piece.
  CHECK(recorder.pieces() > 4);
  CHECK(fake->OpenWatches("pods") == 1);

  watch.Cancel();
  CHECK(fake->WaitForOpenWatches("pods", 0, kWait));
  std::this_thread::sleep_for(milliseconds(100));
  CHECK(recorder.ends() == 0);  // Cancelled: on_end is not called.
}

TEST_CASE(
    "a watch says it is open, with an empty piece, as soon as its 200 headers arrive, before "
    "any event; a refused watch never does",
    "[client][watch]") {
  std::unique_ptr<FakeApiServer> fake = StartFake();
  IoThread io;
  auto client = MakeClient(io, MakeRestConfig(fake->base_url(), fake->ca_pem()));

  // Nothing happens to pods and no bookmarks are asked for: the body stays empty.
  WatchRecorder quiet;
  WatchHandle quiet_watch =
      client->Watch(WatchPath(fake->CurrentRevision()), quiet.OnBytes(), quiet.OnEnd());
  REQUIRE(quiet.WaitForOpen(kWait));
  CHECK(fake->OpenWatches("pods") == 1);
  CHECK(quiet.pieces() == 0);
  REQUIRE(fake->Upsert("pods", "default", "p1").ok());
  REQUIRE(quiet.WaitForEvents(1));
  CHECK(quiet.opens() == 1);

  fake->InjectFault("pods", Verb::kWatch,
                    Fault::HttpError(403, "Forbidden", "pods is forbidden: no watch for you"));
  WatchRecorder refused;
  WatchHandle refused_watch =
      client->Watch(WatchPath(fake->CurrentRevision()), refused.OnBytes(), refused.OnEnd());
  std::optional<HttpResult> end = refused.WaitForEnd();
  REQUIRE(end.has_value());
  CHECK(end->http_status == 403);
  CHECK(refused.opens() == 0);
  CHECK(refused.pieces() == 0);
}

// A watch the server ends after timeoutSeconds: in the contract suite
// (apiserver_client_contract.cc), against this fake and a real apiserver alike.

TEST_CASE("a watch cut in the middle of a chunk or of an event ends with an error",
          "[client][watch]") {
  const Fault fault = GENERATE(Fault::CloseMidChunk(1), Fault::CloseMidJson(1));
  std::unique_ptr<FakeApiServer> fake = StartFake();
  const std::uint64_t start = fake->CurrentRevision();
  for (const char* name : {"p1", "p2"}) REQUIRE(fake->Upsert("pods", "default", name).ok());
  fake->InjectFault("pods", Verb::kWatch, fault);
  IoThread io;
  auto client = MakeClient(io, MakeRestConfig(fake->base_url(), fake->ca_pem()));
  WatchRecorder recorder;
  WatchHandle watch = client->Watch(WatchPath(start), recorder.OnBytes(), recorder.OnEnd());
  std::optional<HttpResult> end = recorder.WaitForEnd();
  REQUIRE(end.has_value());
  const std::string message = Message(end->status);
  INFO(message);
  CHECK(end->http_status == 200);
  CHECK(end->status.code() == absl::StatusCode::kUnavailable);
  CHECK(Contains(message, "the watch stream was cut before its end"));
  CHECK(recorder.events().size() == 1);
}

TEST_CASE("a stalled watch is closed by the idle watchdog; a watch with bookmarks is not",
          "[client][watch]") {
  std::unique_ptr<FakeApiServer> fake = StartFake();
  const std::uint64_t start = fake->CurrentRevision();
  REQUIRE(fake->Upsert("pods", "default", "p1").ok());
  fake->SetBookmarkInterval(milliseconds(100));
  IoThread io;
  ApiClientOptions options;
  options.watch_idle_timeout = milliseconds(600);
  auto client = MakeClient(io, MakeRestConfig(fake->base_url(), fake->ca_pem()), options);

  // Bookmarks every 100 ms keep a quiet watch alive far beyond the idle timeout.
  WatchRecorder alive;
  WatchHandle alive_watch =
      client->Watch(WatchPath(start, "&allowWatchBookmarks=true"), alive.OnBytes(), alive.OnEnd());
  REQUIRE(alive.WaitForEvents(1));

  fake->InjectFault("pods", Verb::kWatch, Fault::Stall(1));
  WatchRecorder stalled;
  const auto opened = std::chrono::steady_clock::now();
  WatchHandle stalled_watch = client->Watch(WatchPath(start, "&allowWatchBookmarks=true"),
                                            stalled.OnBytes(), stalled.OnEnd());
  std::optional<HttpResult> end = stalled.WaitForEnd();
  REQUIRE(end.has_value());
  CHECK(std::chrono::steady_clock::now() - opened >= milliseconds(600));
  const std::string message = Message(end->status);
  INFO(message);
  CHECK(end->status.code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(Contains(message, "the watch stream stalled: no bytes for 600ms"));
  CHECK(stalled.events().size() == 1);

  std::this_thread::sleep_for(milliseconds(1500));
  CHECK(alive.ends() == 0);
  std::vector<core::WatchEvent> events = alive.events();
  CHECK(std::count_if(events.begin(), events.end(), [](const core::WatchEvent& e) {
          return e.type == core::WatchEventType::kBookmark;
        }) >= 5);
}

TEST_CASE("non-200 answers to a watch carry status, Status body and Retry-After",
          "[client][watch]") {
  std::unique_ptr<FakeApiServer> fake = StartFake();
  IoThread io;
  auto source = std::make_shared<RotatingTokenSource>(std::vector<std::string>{"a", "b"});
  auto client = MakeClient(io, MakeRestConfig(fake->base_url(), fake->ca_pem(), source));

  struct Case {
    Fault fault;
    int http_status;
    absl::StatusCode code;
    std::string reason;
    std::optional<std::chrono::seconds> retry_after;
  };
  const std::vector<Case> cases = {
      {Fault::TooManyRequests(5), 429, absl::StatusCode::kResourceExhausted, "TooManyRequests",
       std::chrono::seconds(5)},
      {Fault::ServiceUnavailable(2), 503, absl::StatusCode::kUnavailable, "ServiceUnavailable",
       std::chrono::seconds(2)},
      {Fault::Expired(), 410, absl::StatusCode::kOutOfRange, "Expired", std::nullopt},
      {Fault::HttpError(422, "Invalid", "resourceVersionMatch: Forbidden"), 422,
       absl::StatusCode::kInvalidArgument, "Invalid", std::nullopt},
      {Fault::HttpError(401, "Unauthorized", "Unauthorized"), 401,
       absl::StatusCode::kUnauthenticated, "Unauthorized", std::nullopt},
  };
  for (const Case& c : cases) {
    INFO(c.http_status);
    fake->InjectFault("pods", Verb::kWatch, c.fault);
    WatchRecorder recorder;
    WatchHandle watch = client->Watch(WatchPath(1), recorder.OnBytes(), recorder.OnEnd());
    std::optional<HttpResult> end = recorder.WaitForEnd();
    REQUIRE(end.has_value());
    INFO(end->status.ToString());
    CHECK(end->http_status == c.http_status);
    CHECK(end->status.code() == c.code);
    CHECK(end->retry_after == c.retry_after);
    REQUIRE(end->kube_status.has_value());
    CHECK(end->kube_status->reason == c.reason);
    CHECK(Contains(Message(end->status), end->kube_status->message));
    CHECK(recorder.pieces() == 0);
  }
  CHECK(source->invalidations() == 1);
  CHECK(source->rejected_tokens() == std::vector<std::string>{"a"});
}

TEST_CASE("destroying the client closes its watches and silences their callbacks",
          "[client][watch]") {
  std::unique_ptr<FakeApiServer> fake = StartFake();
  IoThread io;
  auto client = MakeClient(io, MakeRestConfig(fake->base_url(), fake->ca_pem()));
  WatchRecorder recorder;
  WatchHandle watch =
      client->Watch(WatchPath(fake->CurrentRevision()), recorder.OnBytes(), recorder.OnEnd());
  REQUIRE(fake->WaitForOpenWatches("pods", 1, kWait));
  client.reset();
  CHECK(fake->WaitForOpenWatches("pods", 0, kWait));
  REQUIRE(fake->Upsert("pods", "default", "late").ok());
  std::this_thread::sleep_for(milliseconds(200));
  CHECK(recorder.ends() == 0);
  CHECK(recorder.pieces() == 0);
}

}  // namespace
}  // namespace informerd::test
