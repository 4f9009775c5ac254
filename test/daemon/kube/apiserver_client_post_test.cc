// ApiServerClient as a ReviewClient (daemon/kube/review_client.h): POSTing TokenReviews and
// SubjectAccessReviews, against the fake apiserver's review endpoints and against a server that
// records the exact bytes it receives. Also holds the GET request's bytes fixed, as the request
// code is shared between Get() and Post().
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/access_review.h"
#include "core/user_info.h"
#include "daemon/kube/apiserver_client.h"
#include "daemon/kube/review_client.h"
#include "daemon/version.h"
#include "fmt/format.h"
#include "test/common/api_test_support.h"
#include "test/fakeapi/fake_api_server.h"
#include "test/fakeapi/review_api.h"

namespace informerd::test {
namespace {

namespace asio = boost::asio;
using daemon::ApiClientOptions;
using daemon::ApiServerClient;
using daemon::HttpResult;
using daemon::RestConfig;
using fakeapi::FakeApiServer;
using fakeapi::Fault;
using fakeapi::Verb;
using std::chrono::milliseconds;
using tcp = asio::ip::tcp;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

std::unique_ptr<ApiServerClient> MakeClient(IoThread& io, RestConfig config,
                                            ApiClientOptions options = {}) {
  absl::StatusOr<std::unique_ptr<ApiServerClient>> client =
      ApiServerClient::Create(io.io(), std::move(config), options);
  INFO(client.status().ToString());
  REQUIRE(client.ok());
  return *std::move(client);
}

std::shared_ptr<daemon::CredentialSource> Token(const std::string& token) {
  daemon::Credentials credentials;
  credentials.bearer_token = token;
  return std::make_shared<daemon::StaticCredentialSource>(credentials);
}

// Plain HTTP on 127.0.0.1, one connection at a time: records each request's bytes exactly as
// they arrived (headers and the Content-Length body), answers it with `response`, and closes.
class RecordingHttpServer {
 public:
  explicit RecordingHttpServer(std::string response)
      : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        response_(std::move(response)) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { Serve(); });
  }
  ~RecordingHttpServer() {
    // A blocking accept() does not notice a close from another thread: wake it with a
    // connection of our own.
    stopping_ = true;
    asio::io_context io;
    tcp::socket wake(io);
    boost::system::error_code ignored;
    wake.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ignored);
    thread_.join();
  }
  std::uint16_t port() const { return port_; }
  std::vector<std::string> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void Serve() {
    for (;;) {
      tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stopping_) return;
      asio::streambuf buffer;
      const std::size_t header_bytes = asio::read_until(socket, buffer, "\r\n\r\n", ec);
      if (ec) continue;
      std::string head(asio::buffers_begin(buffer.data()),
                       asio::buffers_begin(buffer.data()) + header_bytes);
      std::size_t content_length = 0;
      const std::size_t at = head.find("Content-Length: ");
      if (at != std::string::npos) content_length = std::stoul(head.substr(at + 16));
      const std::size_t have = buffer.size() - header_bytes;
      if (have < content_length)
        asio::read(socket, buffer, asio::transfer_exactly(content_length - have), ec);
      std::string all(asio::buffers_begin(buffer.data()), asio::buffers_end(buffer.data()));
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(std::move(all));
      }
      asio::write(socket, asio::buffer(response_), ec);
      socket.shutdown(tcp::socket::shutdown_both, ec);
    }
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  const std::string response_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

// ---------------------------------------------------------------------------------------------
// The bytes on the wire.

TEST_CASE("a Get's request bytes: request line, Host, User-Agent, Accept, Authorization, no body",
          "[client]") {
  RecordingHttpServer server(
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
      "Connection: close\r\n\r\n{}");
  IoThread io;
  auto client = MakeClient(
      io, MakeRestConfig(fmt::format("http://127.0.0.1:{}", server.port()), "", Token("t0k3n")));
  Awaited<HttpResult> result;
  client->Get("/api/v1/pods?limit=500", "", result.Callback());
  std::optional<HttpResult> got = result.Wait();
  REQUIRE(got.has_value());
  INFO(got->status.ToString());
  REQUIRE(got->status.ok());
  CHECK(got->body == "{}");
  const std::vector<std::string> requests = server.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0] == fmt::format("GET /api/v1/pods?limit=500 HTTP/1.1\r\n"
                                   "Host: 127.0.0.1:{}\r\n"
                                   "User-Agent: informerd/{}\r\n"
                                   "Accept: application/json\r\n"
                                   "Authorization: Bearer t0k3n\r\n"
                                   "\r\n",
                                   server.port(), kVersion));
}

TEST_CASE(
    "a Post's request bytes: POST, the same headers as a Get, then Content-Type, "
    "Content-Length and the body as given",
    "[client][review]") {
  RecordingHttpServer server(
      "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
      "Connection: close\r\n\r\n{}");
  IoThread io;
  auto client = MakeClient(
      io, MakeRestConfig(fmt::format("http://127.0.0.1:{}", server.port()), "", Token("t0k3n")));
  const std::string body = core::BuildTokenReview("caller-token", {"informerd"});
  Awaited<HttpResult> result;
  client->Post(fakeapi::kTokenReviewPath, body, result.Callback());
  std::optional<HttpResult> got = result.Wait();
  REQUIRE(got.has_value());
  INFO(got->status.ToString());
  REQUIRE(got->status.ok());
  CHECK(got->http_status == 201);
  const std::vector<std::string> requests = server.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0] == fmt::format("POST /apis/authentication.k8s.io/v1/tokenreviews HTTP/1.1\r\n"
                                   "Host: 127.0.0.1:{}\r\n"
                                   "User-Agent: informerd/{}\r\n"
                                   "Accept: application/json\r\n"
                                   "Authorization: Bearer t0k3n\r\n"
                                   "Content-Type: application/json\r\n"
                                   "Content-Length: {}\r\n"
                                   "\r\n{}",
                                   server.port(), kVersion, body.size(), body));
}

// ---------------------------------------------------------------------------------------------
// Against the fake apiserver's review endpoints, over TLS.

std::unique_ptr<FakeApiServer> StartFakeWithReviews() {
  auto fake = std::make_unique<FakeApiServer>();
  fakeapi::ServerOptions options;
  options.tls = true;
  options.review_apis = true;
  absl::Status started = fake->Start(options);
  INFO(started.ToString());
  REQUIRE(started.ok());
  // The daemon's own credentials: what it authenticates its reviews with.
  fake->RequireToken("daemon-token");
  return fake;
}

HttpResult PostNow(daemon::ReviewClient& client, const std::string& path, const std::string& body) {
  Awaited<HttpResult> result;
  client.Post(path, body, result.Callback());
  std::optional<HttpResult> got = result.Wait();
  REQUIRE(got.has_value());
  return *std::move(got);
}

std::vector<fakeapi::RequestRecord> RequestsTo(const FakeApiServer& fake, const std::string& path) {
  std::vector<fakeapi::RequestRecord> out;
  for (fakeapi::RequestRecord& r : fake.Requests()) {
    if (r.path == path) out.push_back(std::move(r));
  }
  return out;
}

TEST_CASE(
    "a TokenReview POSTed through the ReviewClient seam: the body arrives intact, the 201 "
    "answer comes back whole, on the client's strand",
    "[client][review]") {
  std::unique_ptr<FakeApiServer> fake = StartFakeWithReviews();
  fakeapi::TokenIdentity reader;
  reader.username = "system:serviceaccount:team-a:reader";
  reader.uid = "0f891e8c";
  reader.groups = {"system:serviceaccounts", "system:authenticated"};
  reader.audiences = {"informerd"};
  fake->reviews().AddToken("caller-token", reader);
  IoThread io;
  auto client =
      MakeClient(io, MakeRestConfig(fake->base_url(), fake->ca_pem(), Token("daemon-token")));
  daemon::ReviewClient& reviews = *client;

  const std::string body = core::BuildTokenReview("caller-token", {"informerd"});
  Awaited<HttpResult> result;
  Awaited<bool> on_strand;
  reviews.Post(fakeapi::kTokenReviewPath, body,
               [&, done = result.Callback(), strand_check = on_strand.Callback()](HttpResult r) {
                 strand_check(reviews.strand().running_in_this_thread());
                 done(std::move(r));
               });
  std::optional<HttpResult> got = result.Wait();
  REQUIRE(got.has_value());
  INFO(got->status.ToString());
  REQUIRE(got->status.ok());
  CHECK(got->http_status == 201);
  CHECK(on_strand.Wait() == std::optional<bool>(true));

  absl::StatusOr<core::TokenReviewResult> review = core::ParseTokenReview(got->body);
  INFO(review.status().ToString());
  REQUIRE(review.ok());
  CHECK(review->authenticated);
  CHECK(review->user.name == "system:serviceaccount:team-a:reader");
  CHECK(review->user.uid == "0f891e8c");
  CHECK(review->user.groups == reader.groups);
  CHECK(review->audiences == std::vector<std::string>{"informerd"});

  std::vector<fakeapi::RequestRecord> requests = RequestsTo(*fake, fakeapi::kTokenReviewPath);
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].method == "POST");
  CHECK(requests[0].body == body);
  CHECK(requests[0].Header("Content-Type") == "application/json");
  CHECK(requests[0].Header("Authorization") == "Bearer daemon-token");
  CHECK(requests[0].status == 201);
}

TEST_CASE("a SubjectAccessReview round trip: allowed with its reason, then denied once revoked",
          "[client][review]") {
  std::unique_ptr<FakeApiServer> fake = StartFakeWithReviews();
  fakeapi::AccessRule rule;
  rule.user = "alice";
  rule.verb = "list";
  rule.resource = "pods";
  rule.namespace_name = "team-a";
  fake->reviews().Allow(rule, "RBAC: allowed by RoleBinding \"pod-reader/team-a\"");
  IoThread io;
  auto client =
      MakeClient(io, MakeRestConfig(fake->base_url(), fake->ca_pem(), Token("daemon-token")));
  core::UserInfo alice;
  alice.name = "alice";
  alice.groups = {core::kAuthenticatedGroup};
  const core::ResourceAttributes list_pods{"list", "", "pods", "team-a", ""};
  const std::string body = core::BuildSubjectAccessReview(alice, list_pods);

  HttpResult allowed = PostNow(*client, fakeapi::kSubjectAccessReviewPath, body);
  INFO(allowed.status.ToString());
  REQUIRE(allowed.status.ok());
  absl::StatusOr<core::AccessReviewResult> decision = core::ParseSubjectAccessReview(allowed.body);
  REQUIRE(decision.ok());
  CHECK(decision->allowed);
  CHECK(decision->reason == "RBAC: allowed by RoleBinding \"pod-reader/team-a\"");

  REQUIRE(fake->reviews().RemoveAccess(rule));
  HttpResult denied = PostNow(*client, fakeapi::kSubjectAccessReviewPath, body);
  REQUIRE(denied.status.ok());
  decision = core::ParseSubjectAccessReview(denied.body);
  REQUIRE(decision.ok());
  CHECK_FALSE(decision->allowed);

  std::vector<fakeapi::RequestRecord> requests =
      RequestsTo(*fake, fakeapi::kSubjectAccessReviewPath);
  REQUIRE(requests.size() == 2);
  for (const fakeapi::RequestRecord& r : requests) CHECK(r.body == body);
}

TEST_CASE("review errors map to the documented codes", "[client][review]") {
  std::unique_ptr<FakeApiServer> fake = StartFakeWithReviews();
  IoThread io;
  auto client = MakeClient(io, MakeRestConfig(fake->base_url(), fake->ca_pem(),
                                              Token("daemon-token"), "user \"informerd\" (test)"));
  const std::string body = core::BuildTokenReview("caller-token", {});
  const std::string key = fakeapi::kTokenReviewsKey;

  SECTION("503 with Retry-After is Unavailable") {
    fake->InjectFault(key, Verb::kCreate, Fault::ServiceUnavailable(5));
    HttpResult r = PostNow(*client, fakeapi::kTokenReviewPath, body);
    CHECK(r.http_status == 503);
    CHECK(r.status.code() == absl::StatusCode::kUnavailable);
    CHECK(r.retry_after == std::optional<std::chrono::seconds>(5));
    CHECK(
        Contains(Message(r.status),
                 fmt::format("POST https://127.0.0.1:{}/apis/authentication.k8s.io/v1/tokenreviews",
                             fake->port())));
  }
  SECTION("500 is Internal, with the Status message") {
    fake->InjectFault(key, Verb::kCreate, Fault::HttpError(500, "InternalError", "etcd is down"));
    HttpResult r = PostNow(*client, fakeapi::kTokenReviewPath, body);
    CHECK(r.http_status == 500);
    CHECK(r.status.code() == absl::StatusCode::kInternal);
    CHECK(Contains(Message(r.status), "etcd is down"));
  }
  SECTION("403: the daemon itself may not create reviews (no system:auth-delegator)") {
    fake->InjectFault(
        key, Verb::kCreate,
        Fault::HttpError(403, "Forbidden",
                         "tokenreviews.authentication.k8s.io is forbidden: User \"informerd\" "
                         "cannot create resource \"tokenreviews\" in API group "
                         "\"authentication.k8s.io\" at the cluster scope"));
    HttpResult r = PostNow(*client, fakeapi::kTokenReviewPath, body);
    CHECK(r.status.code() == absl::StatusCode::kPermissionDenied);
    CHECK(Contains(Message(r.status), "cannot create resource \"tokenreviews\""));
    CHECK(Contains(Message(r.status), "authenticated as user \"informerd\" (test)"));
  }
  SECTION("an answer slower than the request timeout is DeadlineExceeded") {
    ApiClientOptions options;
    options.request_timeout = milliseconds(300);
    auto impatient = MakeClient(
        io, MakeRestConfig(fake->base_url(), fake->ca_pem(), Token("daemon-token")), options);
    fake->InjectFault(key, Verb::kCreate, Fault::Delay(milliseconds(3000)));
    const auto start = std::chrono::steady_clock::now();
    HttpResult r = PostNow(*impatient, fakeapi::kTokenReviewPath, body);
    CHECK(std::chrono::steady_clock::now() - start >= milliseconds(300));
    CHECK(std::chrono::steady_clock::now() - start < milliseconds(3000));
    CHECK(r.http_status == 0);
    CHECK(r.status.code() == absl::StatusCode::kDeadlineExceeded);
    CHECK(Contains(Message(r.status), "timed out after 300ms"));
  }
  SECTION("a connection dropped without an answer is Unavailable, and not sent twice") {
    fake->InjectFault(key, Verb::kCreate, Fault::DropConnection());
    HttpResult r = PostNow(*client, fakeapi::kTokenReviewPath, body);
    CHECK(r.http_status == 0);
    CHECK(r.status.code() == absl::StatusCode::kUnavailable);
    // A fresh connection: no retry (only a reused one may have been closed before the request).
    CHECK(RequestsTo(*fake, fakeapi::kTokenReviewPath).size() == 1);
  }
  SECTION("a garbage 201 body is the client's OK; parsing it is InvalidArgument") {
    fake->InjectFault(key, Verb::kCreate, Fault::MalformedJson());
    HttpResult r = PostNow(*client, fakeapi::kTokenReviewPath, body);
    REQUIRE(r.status.ok());
    CHECK(r.http_status == 201);
    CHECK(core::ParseTokenReview(r.body).status().code() == absl::StatusCode::kInvalidArgument);
  }
  SECTION("the daemon's own token rejected (401) is Unauthenticated") {
    fake->RequireToken("rotated");
    HttpResult r = PostNow(*client, fakeapi::kTokenReviewPath, body);
    CHECK(r.http_status == 401);
    CHECK(r.status.code() == absl::StatusCode::kUnauthenticated);
  }
}

TEST_CASE("an error body that is not a Status is not quoted for a POST: it may echo the token",
          "[client][review]") {
  const std::string page =
      "<html>bad gateway for {\"spec\":{\"token\":\"caller-secret-token\"}}</html>";
  CannedHttpServer server(
      fmt::format("HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: {}\r\n"
                  "Connection: close\r\n\r\n{}",
                  page.size(), page));
  IoThread io;
  auto client =
      MakeClient(io, MakeRestConfig(fmt::format("http://127.0.0.1:{}", server.port()), ""));
  HttpResult r = PostNow(*client, fakeapi::kTokenReviewPath,
                         core::BuildTokenReview("caller-secret-token", {}));
  CHECK(r.http_status == 502);
  CHECK(r.status.code() == absl::StatusCode::kUnavailable);
  CHECK(r.body == page);  // The caller still gets the body.
  const std::string message = Message(r.status);
  INFO(message);
  CHECK(Contains(message, "HTTP 502 Bad Gateway"));
  CHECK(
      Contains(message, fmt::format("not a Kubernetes Status; {} bytes, not quoted", page.size())));
  CHECK_FALSE(Contains(message, "caller-secret-token"));
  CHECK_FALSE(Contains(message, "bad gateway"));
}

TEST_CASE("reviews share the keep-alive pool with Gets", "[client][review]") {
  std::unique_ptr<FakeApiServer> fake = StartFakeWithReviews();
  CountingTcpProxy proxy(fake->port());
  IoThread io;
  auto client = MakeClient(io, MakeRestConfig(fmt::format("https://127.0.0.1:{}", proxy.port()),
                                              fake->ca_pem(), Token("daemon-token")));
  const std::string body = core::BuildTokenReview("t", {});
  for (int i = 0; i < 3; ++i) {
    Awaited<HttpResult> got;
    client->Get("/api/v1/pods", "", got.Callback());
    REQUIRE(got.Wait().has_value());
    REQUIRE(PostNow(*client, fakeapi::kTokenReviewPath, body).status.ok());
  }
  CHECK(proxy.connections() == 1);
}

// Reviews are reads in POST form: the server may or may not have seen the first attempt, and
// asking twice gives the same answer. (Catch2 indents a long name after its first ": ", so
// test names here keep that early or leave it out.)
TEST_CASE("a review on a pooled connection the server closed is sent again on a new one",
          "[client][review]") {
  std::unique_ptr<FakeApiServer> fake = StartFakeWithReviews();
  fakeapi::TokenIdentity alice;
  alice.username = "alice";
  fake->reviews().AddToken("alice-token", alice);
  CountingTcpProxy proxy(fake->port());
  IoThread io;
  auto client = MakeClient(io, MakeRestConfig(fmt::format("https://127.0.0.1:{}", proxy.port()),
                                              fake->ca_pem(), Token("daemon-token")));
  const std::string body = core::BuildTokenReview("alice-token", {});
  REQUIRE(PostNow(*client, fakeapi::kTokenReviewPath, body).status.ok());
  REQUIRE(proxy.connections() == 1);

  fake->DropAllConnections();
  std::this_thread::sleep_for(milliseconds(200));  // Let the close reach the client's socket.
  HttpResult r = PostNow(*client, fakeapi::kTokenReviewPath, body);
  INFO(r.status.ToString());
  REQUIRE(r.status.ok());
  CHECK(r.http_status == 201);
  CHECK(core::ParseTokenReview(r.body)->authenticated);
  CHECK(proxy.connections() == 2);
  // The closed connection never carried the second review to the server.
  CHECK(RequestsTo(*fake, fakeapi::kTokenReviewPath).size() == 2);
}

}  // namespace
}  // namespace informerd::test
