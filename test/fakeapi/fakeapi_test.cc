// Tests of the fake kube-apiserver itself: the wire protocol it speaks, and every scripted fault,
// observed from a tiny raw HTTP client written here with Boost.Beast (no production code), so
// that a test of the real client can trust what the fake does.
#include <rapidjson/document.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>

#include "fmt/format.h"
#include "test/fakeapi/fake_api_server.h"
#include "test/fakeapi/review_api.h"
#include "test/fakeapi/tls_material.h"
#include "test/common/subprocess.h"

namespace informerd::fakeapi {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr milliseconds kTimeout(10000);

struct Response {
  int status = 0;  // 0: no response header arrived.
  Headers headers;
  std::string body;
  beast::error_code error;

  std::string Header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
      if (beast::iequals(k, name)) return v;
    }
    return "";
  }
};

// A minimal HTTP/1.1 client over one connection (plain or TLS): synchronous calls driven by
// its own io_context, each bounded by a timeout (which, as with tcp_stream, closes the socket).
class RawClient {
 public:
  explicit RawClient(std::uint16_t port) : port_(port) {
    plain_ = std::make_unique<beast::tcp_stream>(io_);
  }
  RawClient(std::uint16_t port, const std::string& ca_pem) : port_(port) {
    tls_context_ = std::make_unique<ssl::context>(ssl::context::tls_client);
    beast::error_code ec;
    tls_context_->add_certificate_authority(net::buffer(ca_pem), ec);
    REQUIRE_FALSE(ec);
    tls_context_->set_verify_mode(ssl::verify_peer);
    tls_ = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(io_, *tls_context_);
    tls_->set_verify_callback(ssl::host_name_verification("localhost"));
    SSL_set_tlsext_host_name(tls_->native_handle(), "localhost");
  }

  beast::error_code Connect() {
    const tcp::endpoint endpoint(net::ip::address_v4::loopback(), port_);
    beast::error_code ec = Run(
        [&](auto done) { Lowest().async_connect(endpoint, [done](beast::error_code e) { done(e, 0); }); },
        kTimeout);
    if (ec || !tls_) return ec;
    return Run([&](auto done) {
      tls_->async_handshake(ssl::stream_base::client, [done](beast::error_code e) { done(e, 0); });
    }, kTimeout);
  }

  // A GET answered completely (Content-Length, or chunked to the last chunk).
  Response Get(const std::string& target, const Headers& headers = {},
               milliseconds timeout = kTimeout) {
    Response r = Send(target, headers, timeout);
    if (r.error) return r;
    r.error = Run([&](auto done) { WithStream([&](auto& s) { http::async_read(s, buffer_, *parser_, done); }); },
                  timeout);
    TakeHeader(r);
    r.body = parser_->chunked() ? received_ : parser_->get().body();
    return r;
  }

  // A POST of `body` (Content-Type application/json unless `headers` set one), answered
  // completely.
  Response Post(const std::string& target, const std::string& body, const Headers& headers = {},
                milliseconds timeout = kTimeout) {
    Response r = Send(target, headers, timeout, http::verb::post, &body);
    if (r.error) return r;
    r.error = Run(
        [&](auto done) {
          WithStream([&](auto& s) { http::async_read(s, buffer_, *parser_, done); });
        },
        timeout);
    TakeHeader(r);
    r.body = parser_->get().body();
    return r;
  }

  // A GET of which only the response header is read; the body follows through NextLine().
  Response StartStream(const std::string& target, const Headers& headers = {},
                       milliseconds timeout = kTimeout) {
    Response r = Send(target, headers, timeout);
    if (r.error) return r;
    r.error = Run([&](auto done) {
      WithStream([&](auto& s) { http::async_read_header(s, buffer_, *parser_, done); });
    }, timeout);
    TakeHeader(r);
    return r;
  }

  // The next complete line of the body; nullopt when the body ended, failed or timed out.
  std::optional<std::string> NextLine(milliseconds timeout = kTimeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      // Only the bytes that arrived since the last look are searched (lines can be 64 MiB).
      const std::size_t newline = received_.find('\n', scanned_);
      if (newline != std::string::npos) {
        std::string line = received_.substr(0, newline);
        received_.erase(0, newline + 1);
        scanned_ = 0;
        return line;
      }
      scanned_ = received_.size();
      if (parser_->is_done() || stream_error_) return std::nullopt;
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        stream_error_ = beast::error::timeout;
        return std::nullopt;
      }
      stream_error_ = Run([&](auto done) {
        WithStream([&](auto& s) { http::async_read_some(s, buffer_, *parser_, done); });
      }, left);
    }
  }

  bool stream_done() const { return parser_ && parser_->is_done(); }
  beast::error_code stream_error() const { return stream_error_; }
  // Body bytes received after the last complete line.
  const std::string& partial() const { return received_; }
  std::size_t largest_chunk() const { return largest_chunk_; }
  std::size_t chunks() const { return chunks_; }
  void Close() {
    beast::error_code ec;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    Lowest().socket().close(ec);
  }

 private:
  beast::tcp_stream& Lowest() { return tls_ ? beast::get_lowest_layer(*tls_) : *plain_; }

  template <class F>
  void WithStream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(*plain_);
    }
  }

  // Runs one asynchronous operation to completion on this thread, bounded by `timeout`.
  template <class Start>
  beast::error_code Run(Start&& start, milliseconds timeout) {
    Lowest().expires_after(timeout);
    beast::error_code result = net::error::would_block;
    auto done = [&result](beast::error_code ec, std::size_t) { result = ec; };
    start(done);
    io_.restart();
    io_.run();
    Lowest().expires_never();
    return result;
  }

  void TakeHeader(Response& r) {
    if (!parser_->is_header_done()) return;
    r.status = static_cast<int>(parser_->get().result_int());
    for (const auto& field : parser_->get()) {
      r.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
  }

  Response Send(const std::string& target, const Headers& headers, milliseconds timeout,
                http::verb method = http::verb::get, const std::string* body = nullptr) {
    parser_.emplace();
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    received_.clear();
    scanned_ = 0;
    stream_error_ = {};
    on_chunk_ = [this](std::uint64_t, beast::string_view body, beast::error_code&) {
      received_.append(body.data(), body.size());
      return body.size();
    };
    on_chunk_header_ = [this](std::uint64_t size, beast::string_view, beast::error_code&) {
      largest_chunk_ = std::max<std::size_t>(largest_chunk_, size);
      if (size > 0) ++chunks_;
    };
    parser_->on_chunk_body(on_chunk_);
    parser_->on_chunk_header(on_chunk_header_);
    request_ = http::request<http::string_body>(method, target, 11);
    request_.set(http::field::host, "127.0.0.1");
    request_.set(http::field::user_agent, "fakeapi-test/1.0");
    if (body) {
      request_.set(http::field::content_type, "application/json");
      request_.body() = *body;
    }
    for (const auto& [k, v] : headers) request_.set(k, v);
    if (body) request_.prepare_payload();
    Response r;
    r.error = Run([&](auto done) { WithStream([&](auto& s) { http::async_write(s, request_, done); }); },
                  timeout);
    return r;
  }

  std::uint16_t port_;
  net::io_context io_;
  std::unique_ptr<beast::tcp_stream> plain_;
  std::unique_ptr<ssl::context> tls_context_;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  std::optional<http::response_parser<http::string_body>> parser_;
  std::function<std::size_t(std::uint64_t, beast::string_view, beast::error_code&)> on_chunk_;
  std::function<void(std::uint64_t, beast::string_view, beast::error_code&)> on_chunk_header_;
  std::string received_;
  std::size_t scanned_ = 0;  // received_ holds no newline before this offset.
  beast::error_code stream_error_;
  std::size_t largest_chunk_ = 0;
  std::size_t chunks_ = 0;
};

std::unique_ptr<RawClient> Connect(const FakeApiServer& server) {
  auto client = std::make_unique<RawClient>(server.port());
  REQUIRE_FALSE(client->Connect());
  return client;
}

std::unique_ptr<FakeApiServer> StartServer(ServerOptions options = {}) {
  auto server = std::make_unique<FakeApiServer>();
  const absl::Status status = server->Start(options);
  INFO(status.ToString());
  REQUIRE(status.ok());
  return server;
}

rapidjson::Document Parse(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  INFO(text.substr(0, 500));
  REQUIRE_FALSE(doc.HasParseError());
  return doc;
}

bool ParsesAsJson(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  return !doc.HasParseError();
}

std::string Str(const rapidjson::Value& v, const char* key) {
  REQUIRE(v.IsObject());
  REQUIRE(v.HasMember(key));
  REQUIRE(v[key].IsString());
  return std::string(v[key].GetString(), v[key].GetStringLength());
}

std::uint64_t U64(const std::string& s) { return std::stoull(s); }

// One decoded watch event.
struct Event {
  std::string type;
  std::string name;
  std::string rv;
  std::string uid;
  rapidjson::Document doc;
};

Event ParseEvent(const std::string& line) {
  Event e;
  e.doc = Parse(line);
  e.type = Str(e.doc, "type");
  const rapidjson::Value& object = e.doc["object"];
  if (e.type != "ERROR") {
    const rapidjson::Value& metadata = object["metadata"];
    e.rv = Str(metadata, "resourceVersion");
    if (metadata.HasMember("name")) e.name = Str(metadata, "name");
    if (metadata.HasMember("uid")) e.uid = Str(metadata, "uid");
  }
  return e;
}

Event NextEvent(RawClient& client, milliseconds timeout = kTimeout) {
  auto line = client.NextLine(timeout);
  INFO("stream error: " << client.stream_error().message() << ", partial: " << client.partial().substr(0, 200));
  REQUIRE(line.has_value());
  return ParseEvent(*line);
}

std::vector<std::string> ItemNames(const rapidjson::Document& list) {
  std::vector<std::string> names;
  for (const auto& item : list["items"].GetArray()) names.push_back(Str(item["metadata"], "name"));
  return names;
}

ObjectSpec WithLabels(Labels labels) {
  ObjectSpec spec;
  spec.labels = std::move(labels);
  return spec;
}

void Put(FakeApiServer& server, const std::string& name, const ObjectSpec& spec = {}) {
  auto rv = server.Upsert("pods", "default", name, spec);
  INFO(rv.status().ToString());
  REQUIRE(rv.ok());
}

// ------------------------------------------------------------------------------------------
// Discovery.

TEST_CASE("discovery documents list registered resources, and a CRD appears and disappears") {
  auto server = StartServer();
  auto client = Connect(*server);

  Response api = client->Get("/api");
  REQUIRE(api.status == 200);
  auto versions = Parse(api.body);
  CHECK(Str(versions, "kind") == "APIVersions");
  CHECK(std::string(versions["versions"][0].GetString()) == "v1");

  Response core = client->Get("/api/v1");
  REQUIRE(core.status == 200);
  auto core_list = Parse(core.body);
  CHECK(Str(core_list, "kind") == "APIResourceList");
  CHECK(Str(core_list, "groupVersion") == "v1");
  bool saw_pods = false;
  for (const auto& r : core_list["resources"].GetArray()) {
    if (Str(r, "name") != "pods") continue;
    saw_pods = true;
    CHECK(Str(r, "singularName") == "pod");
    CHECK(Str(r, "kind") == "Pod");
    CHECK(r["namespaced"].GetBool());
    CHECK(std::string(r["shortNames"][0].GetString()) == "po");
    std::vector<std::string> verbs;
    for (const auto& v : r["verbs"].GetArray()) verbs.emplace_back(v.GetString());
    CHECK(std::find(verbs.begin(), verbs.end(), "watch") != verbs.end());
  }
  CHECK(saw_pods);

  // A CRD-like resource appears at run time.
  ResourceType widgets = ResourceType::Custom("example.com", "v1", "widgets", "Widget");
  widgets.short_names = {"wd"};
  widgets.namespaced = false;
  REQUIRE(client->Get("/apis/example.com/v1").status == 404);
  server->RegisterResource(widgets);
  auto groups = Parse(client->Get("/apis").body);
  CHECK(Str(groups, "kind") == "APIGroupList");
  std::vector<std::string> group_names;
  for (const auto& g : groups["groups"].GetArray()) group_names.push_back(Str(g, "name"));
  CHECK(group_names == std::vector<std::string>{"apps", "example.com"});
  CHECK(Str(groups["groups"][1]["preferredVersion"], "groupVersion") == "example.com/v1");
  auto group = Parse(client->Get("/apis/example.com").body);
  CHECK(Str(group, "kind") == "APIGroup");
  Response gv = client->Get("/apis/example.com/v1");
  REQUIRE(gv.status == 200);
  auto gv_list = Parse(gv.body);
  CHECK(Str(gv_list, "groupVersion") == "example.com/v1");
  REQUIRE(gv_list["resources"].Size() == 1);
  CHECK(Str(gv_list["resources"][0], "kind") == "Widget");
  CHECK(Str(gv_list["resources"][0], "singularName") == "widget");
  CHECK_FALSE(gv_list["resources"][0]["namespaced"].GetBool());
  REQUIRE(server->Upsert("widgets.example.com", "", "w1").ok());
  auto widget_list = Parse(client->Get("/apis/example.com/v1/widgets").body);
  CHECK(Str(widget_list, "kind") == "WidgetList");
  CHECK(ItemNames(widget_list) == std::vector<std::string>{"w1"});

  // ...and disappears: discovery, LIST and the open watch all notice.
  auto watcher = Connect(*server);
  REQUIRE(watcher->StartStream("/apis/example.com/v1/widgets?watch=1").status == 200);
  CHECK(NextEvent(*watcher).name == "w1");
  REQUIRE(server->WaitForOpenWatches("widgets.example.com", 1, kTimeout));
  REQUIRE(server->UnregisterResource("widgets.example.com"));
  CHECK_FALSE(watcher->NextLine().has_value());
  CHECK(watcher->stream_done());  // Ended cleanly, as when a CRD's handler is torn down.
  CHECK(server->WaitForOpenWatches("widgets.example.com", 0, kTimeout));
  CHECK(client->Get("/apis/example.com/v1").status == 404);
  Response gone = client->Get("/apis/example.com/v1/widgets");
  CHECK(gone.status == 404);
  // The group went with its only resource: the apiserver has no route left for it and answers
  // in plain text, not with a Status, as a real kube-apiserver does.
  CHECK(gone.body == "404 page not found\n");
  CHECK(gone.Header("Content-Type") == "text/plain; charset=utf-8");
  groups = Parse(client->Get("/apis").body);
  CHECK(groups["groups"].Size() == 1);
  CHECK(Parse(client->Get("/version").body).HasMember("gitVersion"));
}

// ------------------------------------------------------------------------------------------
// GET and LIST.

TEST_CASE("LIST serves the objects with the current revision; GET serves one or a NotFound Status") {
  ServerOptions options;
  options.initial_revision = std::uint64_t{1} << 33;  // resourceVersions beyond 32 bits.
  auto server = StartServer(options);
  Put(*server, "a");
  Put(*server, "b");
  REQUIRE(server->Upsert("pods", "other", "c").ok());
  auto client = Connect(*server);

  Response all = client->Get("/api/v1/pods");
  REQUIRE(all.status == 200);
  CHECK(all.Header("Content-Type") == "application/json");
  auto list = Parse(all.body);
  CHECK(Str(list, "kind") == "PodList");
  CHECK(Str(list, "apiVersion") == "v1");
  CHECK(U64(Str(list["metadata"], "resourceVersion")) == server->CurrentRevision());
  CHECK(server->CurrentRevision() == (std::uint64_t{1} << 33) + 3);
  CHECK_FALSE(list["metadata"].HasMember("continue"));
  CHECK(ItemNames(list) == std::vector<std::string>{"a", "b", "c"});
  CHECK(Str(list["items"][0]["metadata"], "resourceVersion") ==
        std::to_string((std::uint64_t{1} << 33) + 1));

  CHECK(ItemNames(Parse(client->Get("/api/v1/namespaces/default/pods").body)) ==
        std::vector<std::string>{"a", "b"});
  Response one = client->Get("/api/v1/namespaces/other/pods/c");
  REQUIRE(one.status == 200);
  auto pod = Parse(one.body);
  CHECK(Str(pod["metadata"], "name") == "c");
  CHECK(Str(pod["metadata"], "namespace") == "other");
  CHECK(one.body == *server->GetObjectJson("pods", "other", "c"));

  Response missing = client->Get("/api/v1/namespaces/default/pods/nope");
  CHECK(missing.status == 404);
  auto status = Parse(missing.body);
  CHECK(Str(status, "kind") == "Status");
  CHECK(Str(status, "reason") == "NotFound");
  CHECK(Str(status, "message") == "pods \"nope\" not found");
  CHECK(status["code"].GetInt() == 404);
}

TEST_CASE("pagination: continue pages are a consistent snapshot at the first page's revision") {
  auto server = StartServer();
  for (const char* name : {"p0", "p1", "p2", "p3", "p4"}) Put(*server, name);
  auto client = Connect(*server);

  auto page1 = Parse(client->Get("/api/v1/pods?limit=2").body);
  CHECK(ItemNames(page1) == std::vector<std::string>{"p0", "p1"});
  const std::string snapshot_rv = Str(page1["metadata"], "resourceVersion");
  const std::string token1 = Str(page1["metadata"], "continue");

  // Changes after the first page must not show in the following ones.
  const std::string p3_rv_before =
      Str(Parse(*server->GetObjectJson("pods", "default", "p3"))["metadata"], "resourceVersion");
  REQUIRE(server->Delete("pods", "default", "p2").ok());
  REQUIRE(server->Upsert("pods", "default", "p3", WithLabels({{"changed", "yes"}})).ok());
  Put(*server, "p5");

  Response second = client->Get("/api/v1/pods?limit=2&continue=" + token1);
  REQUIRE(second.status == 200);
  auto page2 = Parse(second.body);
  CHECK(ItemNames(page2) == std::vector<std::string>{"p2", "p3"});
  CHECK(Str(page2["metadata"], "resourceVersion") == snapshot_rv);
  CHECK(Str(page2["items"][1]["metadata"], "resourceVersion") == p3_rv_before);
  CHECK_FALSE(page2["items"][1]["metadata"].HasMember("labels"));
  auto page3 = Parse(client->Get("/api/v1/pods?limit=2&continue=" + Str(page2["metadata"], "continue")).body);
  CHECK(ItemNames(page3) == std::vector<std::string>{"p4"});
  CHECK_FALSE(page3["metadata"].HasMember("continue"));

  // A fresh list sees the present.
  CHECK(ItemNames(Parse(client->Get("/api/v1/pods").body)) ==
        std::vector<std::string>{"p0", "p1", "p3", "p4", "p5"});
}

TEST_CASE("LIST resourceVersion rules: 0 ignores limit, Exact reads the past, compaction expires it") {
  auto server = StartServer();
  for (const char* name : {"p0", "p1", "p2"}) Put(*server, name);
  auto client = Connect(*server);

  // resourceVersion=0 is served from the watch cache, which ignores limit (before 1.27).
  auto rv0 = Parse(client->Get("/api/v1/pods?resourceVersion=0&limit=1").body);
  CHECK(rv0["items"].Size() == 3);
  CHECK_FALSE(rv0["metadata"].HasMember("continue"));

  const std::uint64_t before = server->CurrentRevision();
  REQUIRE(server->Upsert("pods", "default", "p0", WithLabels({{"v", "2"}})).ok());
  auto exact = Parse(client->Get("/api/v1/pods?resourceVersion=" + std::to_string(before) +
                                 "&resourceVersionMatch=Exact").body);
  CHECK(U64(Str(exact["metadata"], "resourceVersion")) == before);
  CHECK_FALSE(exact["items"][0]["metadata"].HasMember("labels"));
  auto newer = Parse(client->Get("/api/v1/pods?resourceVersion=" + std::to_string(before) +
                                 "&resourceVersionMatch=NotOlderThan").body);
  CHECK(U64(Str(newer["metadata"], "resourceVersion")) == server->CurrentRevision());

  server->Compact();
  Response expired = client->Get("/api/v1/pods?resourceVersion=" + std::to_string(before) +
                                 "&resourceVersionMatch=Exact");
  CHECK(expired.status == 410);
  CHECK(Str(Parse(expired.body), "reason") == "Expired");

  Response future = client->Get("/api/v1/pods?resourceVersion=999999");
  CHECK(future.status == 504);
  Response invalid = client->Get("/api/v1/pods?resourceVersionMatch=Exact");
  CHECK(invalid.status == 422);
  CHECK(Str(Parse(invalid.body), "message").find("resourceVersionMatch is forbidden unless resourceVersion is provided") != std::string::npos);
  CHECK(client->Get("/api/v1/pods?limit=ten").status == 400);
  CHECK(client->Get("/api/v1/pods?resourceVersion=abc").status == 400);
}

TEST_CASE("a continue token taken before a compaction is answered with 410 Expired") {
  auto server = StartServer();
  for (const char* name : {"p0", "p1", "p2"}) Put(*server, name);
  auto client = Connect(*server);
  auto page1 = Parse(client->Get("/api/v1/pods?limit=1").body);
  const std::string token = Str(page1["metadata"], "continue");
  Put(*server, "p3");
  server->Compact();
  Response r = client->Get("/api/v1/pods?limit=1&continue=" + token);
  CHECK(r.status == 410);
  auto status = Parse(r.body);
  CHECK(Str(status, "reason") == "Expired");
  CHECK(status["code"].GetInt() == 410);
  CHECK(client->Get("/api/v1/pods?limit=1&continue=not-a-token").status == 400);
}

TEST_CASE("label and field selectors filter LIST; an unsupported field is rejected") {
  auto server = StartServer();
  Put(*server, "web", WithLabels({{"app", "web"}, {"tier", "front"}}));
  Put(*server, "db", WithLabels({{"app", "db"}}));
  Put(*server, "bare");
  auto client = Connect(*server);
  auto names = [&](const std::string& query) {
    Response r = client->Get("/api/v1/pods?" + query);
    INFO(query << " -> " << r.body);
    REQUIRE(r.status == 200);
    return ItemNames(Parse(r.body));
  };
  using V = std::vector<std::string>;
  CHECK(names("labelSelector=app%3Dweb") == V{"web"});
  CHECK(names("labelSelector=app%3D%3Dweb") == V{"web"});
  CHECK(names("labelSelector=app!%3Dweb") == V{"bare", "db"});
  CHECK(names("labelSelector=app%20in%20(web,db)") == V{"db", "web"});
  CHECK(names("labelSelector=app%20notin%20(web)") == V{"bare", "db"});
  CHECK(names("labelSelector=app") == V{"db", "web"});
  CHECK(names("labelSelector=!app") == V{"bare"});
  CHECK(names("labelSelector=app%3Dweb,tier%3Dfront") == V{"web"});
  CHECK(names("fieldSelector=metadata.name%3Ddb") == V{"db"});
  CHECK(names("fieldSelector=metadata.namespace%3Ddefault,metadata.name!%3Ddb") == V{"bare", "web"});
  CHECK(names("fieldSelector=metadata.namespace%3Dother") == V{});
  Response bad = client->Get("/api/v1/pods?fieldSelector=spec.nodeName%3Dn1");
  CHECK(bad.status == 400);
  CHECK(Str(Parse(bad.body), "message") == "field label not supported: spec.nodeName");
  // Worded per kind, as kube-apiserver words it: the core kinds with field labels of their own
  // and custom resources one way, the other built-in kinds another.
  server->RegisterResource(ResourceType::Custom("example.com", "v1", "widgets", "Widget"));
  const std::string only_metadata =
      "\"spec.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"";
  const std::vector<std::pair<std::string, std::string>> refusals = {
      {"/api/v1/namespaces", "field label not supported: spec.x"},
      {"/apis/example.com/v1/widgets", "field label not supported: spec.x"},
      {"/api/v1/configmaps", only_metadata},
      {"/apis/apps/v1/deployments", only_metadata},
  };
  for (const auto& [path, message] : refusals) {
    INFO(path);
    Response refused = client->Get(path + "?fieldSelector=spec.x%3D1");
    CHECK(refused.status == 400);
    CHECK(Str(Parse(refused.body), "message") == message);
  }
  CHECK(client->Get("/api/v1/pods?labelSelector=app%20in%20web").status == 400);
}

// ------------------------------------------------------------------------------------------
// WATCH.

TEST_CASE("WATCH streams ADDED, MODIFIED and DELETED with increasing resourceVersions") {
  auto server = StartServer();
  Put(*server, "a");
  auto client = Connect(*server);
  const std::string list_rv = Str(Parse(client->Get("/api/v1/pods").body)["metadata"], "resourceVersion");

  auto watcher = Connect(*server);
  Response start = watcher->StartStream("/api/v1/pods?watch=1&resourceVersion=" + list_rv);
  REQUIRE(start.status == 200);
  CHECK(beast::iequals(start.Header("Transfer-Encoding"), "chunked"));
  CHECK(start.Header("Content-Type") == "application/json");
  CHECK(server->WaitForOpenWatches("pods", 1, kTimeout));

  const std::uint64_t r_added = *server->Upsert("pods", "default", "b");
  const std::uint64_t r_modified = *server->Upsert("pods", "default", "a", WithLabels({{"x", "1"}}));
  const std::uint64_t r_deleted = *server->Delete("pods", "default", "b");
  Event added = NextEvent(*watcher);
  Event modified = NextEvent(*watcher);
  Event deleted = NextEvent(*watcher);
  CHECK(added.type == "ADDED");
  CHECK(added.name == "b");
  CHECK(U64(added.rv) == r_added);
  CHECK(modified.type == "MODIFIED");
  CHECK(modified.name == "a");
  CHECK(U64(modified.rv) == r_modified);
  CHECK(Str(modified.doc["object"]["metadata"]["labels"], "x") == "1");
  CHECK(deleted.type == "DELETED");
  CHECK(deleted.name == "b");
  CHECK(deleted.uid == added.uid);
  CHECK(U64(deleted.rv) == r_deleted);
  CHECK(U64(list_rv) < r_added);
  CHECK(r_added < r_modified);
  CHECK(r_modified < r_deleted);

  // Legacy path, and a watch from "0": the current state first, as ADDED events.
  auto legacy = Connect(*server);
  REQUIRE(legacy->StartStream("/api/v1/watch/namespaces/default/pods?resourceVersion=0").status == 200);
  Event initial = NextEvent(*legacy);
  CHECK(initial.type == "ADDED");
  CHECK(initial.name == "a");
  CHECK(U64(initial.rv) == r_modified);
  CHECK(server->WaitForOpenWatches("pods", 2, kTimeout));

  // A watch whose client goes away stops counting.
  watcher->Close();
  legacy->Close();
  CHECK(server->WaitForOpenWatches("pods", 0, kTimeout));
}

TEST_CASE("a selector watch sees objects entering as ADDED and leaving as DELETED") {
  auto server = StartServer();
  Put(*server, "a", WithLabels({{"app", "web"}}));
  Put(*server, "b", WithLabels({{"app", "db"}}));
  auto watcher = Connect(*server);
  REQUIRE(watcher->StartStream("/api/v1/pods?watch=true&labelSelector=app%3Dweb&resourceVersion=" +
                               std::to_string(server->CurrentRevision())).status == 200);
  Put(*server, "b", WithLabels({{"app", "web"}}));  // Starts matching.
  const std::uint64_t left = *server->Upsert("pods", "default", "a", WithLabels({{"app", "db"}}));
  Put(*server, "c", WithLabels({{"app", "other"}}));  // Never matches.
  Put(*server, "b", WithLabels({{"app", "web"}, {"v", "2"}}));  // Still matches.
  Event e1 = NextEvent(*watcher);
  Event e2 = NextEvent(*watcher);
  Event e3 = NextEvent(*watcher);
  CHECK((e1.type == "ADDED" && e1.name == "b"));
  CHECK((e2.type == "DELETED" && e2.name == "a"));
  CHECK(U64(e2.rv) == left);
  CHECK((e3.type == "MODIFIED" && e3.name == "b"));

  auto by_name = Connect(*server);
  REQUIRE(by_name->StartStream("/api/v1/pods?watch=1&fieldSelector=metadata.name%3Dc").status == 200);
  Event only = NextEvent(*by_name);
  CHECK(only.name == "c");
  Put(*server, "a");
  Put(*server, "c", WithLabels({{"v", "3"}}));
  CHECK(NextEvent(*by_name).name == "c");
}

TEST_CASE("a watch from a compacted resourceVersion gets an ERROR event with a 410 Expired Status") {
  auto server = StartServer();
  Put(*server, "a");
  const std::uint64_t old = server->CurrentRevision();
  Put(*server, "b");
  server->Compact();
  auto watcher = Connect(*server);
  REQUIRE(watcher->StartStream("/api/v1/pods?watch=1&resourceVersion=" + std::to_string(old)).status == 200);
  Event error = NextEvent(*watcher);
  CHECK(error.type == "ERROR");
  const rapidjson::Value& status = error.doc["object"];
  CHECK(Str(status, "kind") == "Status");
  CHECK(status["code"].GetInt() == 410);
  CHECK(Str(status, "reason") == "Expired");
  CHECK(Str(status, "message").find("too old resource version") != std::string::npos);
  CHECK_FALSE(watcher->NextLine().has_value());
  CHECK(watcher->stream_done());

  // The window itself: a watch from the compaction point is fine.
  auto resumed = Connect(*server);
  REQUIRE(resumed->StartStream("/api/v1/pods?watch=1&resourceVersion=" +
                               std::to_string(server->CurrentRevision())).status == 200);
  Put(*server, "c");
  CHECK(NextEvent(*resumed).name == "c");
}

TEST_CASE("history beyond the window limit expires like a compaction") {
  ServerOptions options;
  options.history_limit = 3;
  auto server = StartServer(options);
  const std::uint64_t start = server->CurrentRevision();
  for (const char* name : {"a", "b", "c", "d", "e"}) Put(*server, name);
  auto too_old = Connect(*server);
  REQUIRE(too_old->StartStream("/api/v1/pods?watch=1&resourceVersion=" + std::to_string(start)).status == 200);
  CHECK(NextEvent(*too_old).type == "ERROR");
  auto in_window = Connect(*server);
  REQUIRE(in_window->StartStream("/api/v1/pods?watch=1&resourceVersion=" + std::to_string(start + 2)).status == 200);
  CHECK(NextEvent(*in_window).name == "c");
  CHECK(NextEvent(*in_window).name == "d");
  CHECK(NextEvent(*in_window).name == "e");
}

TEST_CASE("allowWatchBookmarks brings periodic BOOKMARK events at the current revision") {
  ServerOptions options;
  options.bookmark_interval = milliseconds(100);
  auto server = StartServer(options);
  Put(*server, "a");
  const std::uint64_t start = server->CurrentRevision();
  auto watcher = Connect(*server);
  REQUIRE(watcher->StartStream("/api/v1/pods?watch=1&allowWatchBookmarks=true&resourceVersion=" +
                               std::to_string(start)).status == 200);
  Event first = NextEvent(*watcher, milliseconds(3000));
  CHECK(first.type == "BOOKMARK");
  CHECK(U64(first.rv) == start);
  CHECK(Str(first.doc["object"], "kind") == "Pod");
  CHECK(first.doc["object"]["metadata"].MemberCount() == 2);  // resourceVersion, creationTimestamp.
  const std::uint64_t changed = *server->Upsert("pods", "default", "a", WithLabels({{"v", "2"}}));
  Event next = NextEvent(*watcher);
  while (next.type == "BOOKMARK") {
    CHECK(U64(next.rv) <= changed);  // Never ahead of an event not yet sent.
    next = NextEvent(*watcher);
  }
  CHECK(next.type == "MODIFIED");
  Event after = NextEvent(*watcher, milliseconds(3000));
  CHECK(after.type == "BOOKMARK");
  CHECK(U64(after.rv) >= changed);

  // Without allowWatchBookmarks: none.
  auto quiet = Connect(*server);
  REQUIRE(quiet->StartStream("/api/v1/pods?watch=1&resourceVersion=" +
                             std::to_string(server->CurrentRevision())).status == 200);
  CHECK_FALSE(quiet->NextLine(milliseconds(600)).has_value());
  CHECK(quiet->stream_error() == beast::error::timeout);
}

TEST_CASE("timeoutSeconds ends the stream cleanly and the connection serves the next request") {
  auto server = StartServer();
  auto watcher = Connect(*server);
  const auto begin = std::chrono::steady_clock::now();
  REQUIRE(watcher->StartStream("/api/v1/pods?watch=1&timeoutSeconds=1&resourceVersion=" +
                               std::to_string(server->CurrentRevision())).status == 200);
  CHECK_FALSE(watcher->NextLine(milliseconds(5000)).has_value());
  const auto elapsed = std::chrono::steady_clock::now() - begin;
  CHECK(watcher->stream_done());
  CHECK_FALSE(watcher->stream_error());
  CHECK(elapsed >= milliseconds(900));
  CHECK(elapsed < milliseconds(4000));
  CHECK(server->WaitForOpenWatches("pods", 0, kTimeout));
  CHECK(watcher->Get("/api/v1/pods").status == 200);  // Keep-alive after a finished watch.
}

TEST_CASE("WatchList: current state as ADDED, a BOOKMARK marking its end, then live events") {
  auto server = StartServer();
  Put(*server, "a");
  Put(*server, "b");
  const std::uint64_t snapshot = server->CurrentRevision();
  auto watcher = Connect(*server);
  REQUIRE(watcher->StartStream("/api/v1/pods?watch=1&sendInitialEvents=true"
                               "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")
              .status == 200);
  Event a = NextEvent(*watcher);
  Event b = NextEvent(*watcher);
  Event end = NextEvent(*watcher);
  CHECK((a.type == "ADDED" && a.name == "a"));
  CHECK((b.type == "ADDED" && b.name == "b"));
  REQUIRE(end.type == "BOOKMARK");
  CHECK(U64(end.rv) == snapshot);
  CHECK(Str(end.doc["object"]["metadata"]["annotations"], "k8s.io/initial-events-end") == "true");
  const std::uint64_t live = *server->Upsert("pods", "default", "c");
  Event c = NextEvent(*watcher);
  CHECK((c.type == "ADDED" && c.name == "c"));
  CHECK(U64(c.rv) == live);

  // Invalid combinations, as a 1.27+ server validates them.
  auto client = Connect(*server);
  Response invalid = client->Get("/api/v1/pods?watch=1&sendInitialEvents=true");
  CHECK(invalid.status == 422);
  CHECK(Str(Parse(invalid.body), "message").find("sendInitialEvents requires setting resourceVersionMatch to NotOlderThan") != std::string::npos);
}

TEST_CASE("WatchList against an old server: 422 as 1.19-1.26 answer, or a plain watch as older ones") {
  auto server = StartServer();
  Put(*server, "a");
  const std::string watch_list = "/api/v1/pods?watch=1&sendInitialEvents=true"
                                 "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true";
  server->SetWatchListSupport(WatchListSupport::kRejectedLikeOldServer);
  auto client = Connect(*server);
  Response rejected = client->Get(watch_list);
  CHECK(rejected.status == 422);
  auto status = Parse(rejected.body);
  CHECK(Str(status, "reason") == "Invalid");
  CHECK(Str(status, "message") ==
        "ListOptions.meta.k8s.io \"\" is invalid: [resourceVersionMatch: Forbidden: "
        "resourceVersionMatch is forbidden for watch, resourceVersionMatch: Forbidden: "
        "resourceVersionMatch is forbidden unless resourceVersion is provided]");
  CHECK(Str(status["details"], "kind") == "ListOptions");
  CHECK(Str(status["details"], "group") == "meta.k8s.io");
  CHECK(Str(status["details"]["causes"][0], "field") == "resourceVersionMatch");
  CHECK(Str(status["details"]["causes"][0], "reason") == "FieldValueForbidden");
  // With a resourceVersion, only the watch rule remains.
  Response with_rv = client->Get(watch_list + "&resourceVersion=1");
  CHECK(Str(Parse(with_rv.body), "message") ==
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: "
        "resourceVersionMatch is forbidden for watch");
  // sendInitialEvents alone is an unknown parameter there: a plain watch.
  auto plain = Connect(*server);
  REQUIRE(plain->StartStream("/api/v1/pods?watch=1&sendInitialEvents=true").status == 200);
  CHECK(NextEvent(*plain).name == "a");

  server->SetWatchListSupport(WatchListSupport::kIgnoredLikeAncientServer);
  auto ancient = Connect(*server);
  REQUIRE(ancient->StartStream(watch_list).status == 200);
  CHECK(NextEvent(*ancient).type == "ADDED");
  Put(*server, "b");
  Event next = NextEvent(*ancient);
  CHECK(next.type == "ADDED");  // No initial-events-end bookmark in between.
  CHECK(next.name == "b");
}

TEST_CASE("watch output cut into small chunks still carries whole events") {
  auto server = StartServer();
  server->SetWatchChunkBytes(7);
  Put(*server, "a");
  Put(*server, "b");
  auto watcher = Connect(*server);
  REQUIRE(watcher->StartStream("/api/v1/pods?watch=1").status == 200);
  CHECK(NextEvent(*watcher).name == "a");
  CHECK(NextEvent(*watcher).name == "b");
  CHECK(watcher->largest_chunk() == 7);
  CHECK(watcher->chunks() > 100);
}

TEST_CASE("EndWatches ends open streams cleanly; DropAllConnections cuts them") {
  auto server = StartServer();
  auto w1 = Connect(*server);
  REQUIRE(w1->StartStream("/api/v1/pods?watch=1").status == 200);
  REQUIRE(server->WaitForOpenWatches("pods", 1, kTimeout));
  server->EndWatches("pods");
  CHECK_FALSE(w1->NextLine().has_value());
  CHECK(w1->stream_done());
  CHECK_FALSE(w1->stream_error());

  auto w2 = Connect(*server);
  REQUIRE(w2->StartStream("/api/v1/pods?watch=1").status == 200);
  REQUIRE(server->WaitForOpenWatches("pods", 1, kTimeout));
  server->DropAllConnections();
  CHECK_FALSE(w2->NextLine().has_value());
  CHECK_FALSE(w2->stream_done());
  CHECK(w2->stream_error());
  CHECK(server->WaitForOpenWatches("pods", 0, kTimeout));
}

// ------------------------------------------------------------------------------------------
// Faults.

TEST_CASE("fault: a watch closed in the middle of a chunk") {
  auto server = StartServer();
  Put(*server, "a");
  server->InjectFault("pods", Verb::kWatch, Fault::CloseMidChunk(/*after_events=*/1));
  auto watcher = Connect(*server);
  REQUIRE(watcher->StartStream("/api/v1/pods?watch=1").status == 200);
  CHECK(NextEvent(*watcher).name == "a");
  CHECK_FALSE(watcher->NextLine().has_value());
  CHECK_FALSE(watcher->stream_done());
  CHECK(watcher->stream_error() == http::error::partial_message);
  // What arrived is the start of an event line, cut short.
  CHECK(watcher->partial().rfind("{\"type\":\"MODIFIED\",\"object\":{", 0) == 0);
  CHECK_FALSE(ParsesAsJson(watcher->partial()));
  CHECK(server->PendingFaults("pods", Verb::kWatch) == 0);
  // Only the next watch was affected.
  auto next = Connect(*server);
  REQUIRE(next->StartStream("/api/v1/pods?watch=1").status == 200);
  CHECK(NextEvent(*next).name == "a");
}

TEST_CASE("fault: a watch closed in the middle of an event's JSON, at a chunk boundary") {
  auto server = StartServer();
  server->InjectFault("pods", Verb::kWatch, Fault::CloseMidJson());
  auto watcher = Connect(*server);
  REQUIRE(watcher->StartStream("/api/v1/pods?watch=1").status == 200);
  CHECK_FALSE(watcher->NextLine().has_value());
  CHECK(watcher->stream_error() == http::error::partial_message);
  CHECK(watcher->partial().size() > 100);
  CHECK(watcher->partial().find('\n') == std::string::npos);
  CHECK_FALSE(ParsesAsJson(watcher->partial()));
  CHECK(watcher->chunks() == 1);  // The chunk itself was complete.
}

TEST_CASE("fault: ERROR events with 410 Expired and the older reason Gone, after N events") {
  auto server = StartServer();
  Put(*server, "a");
  Put(*server, "b");
  server->InjectFault("pods", Verb::kWatch, Fault::ExpiredEvent(/*after_events=*/2));
  server->InjectFault("pods", Verb::kWatch, Fault::GoneEvent());
  auto first = Connect(*server);
  REQUIRE(first->StartStream("/api/v1/pods?watch=1").status == 200);
  CHECK(NextEvent(*first).name == "a");
  CHECK(NextEvent(*first).name == "b");
  Event expired = NextEvent(*first);
  CHECK(expired.type == "ERROR");
  CHECK(expired.doc["object"]["code"].GetInt() == 410);
  CHECK(Str(expired.doc["object"], "reason") == "Expired");
  CHECK_FALSE(first->NextLine().has_value());
  CHECK(first->stream_done());

  auto second = Connect(*server);
  REQUIRE(second->StartStream("/api/v1/pods?watch=1").status == 200);
  Event gone = NextEvent(*second);
  CHECK(gone.type == "ERROR");
  CHECK(gone.doc["object"]["code"].GetInt() == 410);
  CHECK(Str(gone.doc["object"], "reason") == "Gone");
}

TEST_CASE("fault: HTTP 410 on LIST and on a continue request") {
  auto server = StartServer();
  for (const char* name : {"p0", "p1", "p2"}) Put(*server, name);
  auto client = Connect(*server);
  server->InjectFault("pods", Verb::kList, Fault::Expired());
  Response expired = client->Get("/api/v1/pods?limit=1");
  CHECK(expired.status == 410);
  CHECK(Str(Parse(expired.body), "reason") == "Expired");

  server->InjectFault("pods", Verb::kListContinue, Fault::Expired());
  Response page1 = client->Get("/api/v1/pods?limit=1");  // A first page is not a continue.
  REQUIRE(page1.status == 200);
  const std::string token = Str(Parse(page1.body)["metadata"], "continue");
  CHECK(client->Get("/api/v1/pods?limit=1&continue=" + token).status == 410);
  CHECK(client->Get("/api/v1/pods?limit=1&continue=" + token).status == 200);
}

TEST_CASE("fault: 429 and 503 with Retry-After, queued per resource and verb") {
  auto server = StartServer();
  server->InjectFault("pods", Verb::kList, Fault::TooManyRequests(3));
  server->InjectFault("pods", Verb::kList, Fault::ServiceUnavailable(7), 2);
  server->InjectFault("configmaps", Verb::kList, Fault::ServiceUnavailable(1));
  CHECK(server->PendingFaults("pods", Verb::kList) == 3);
  auto client = Connect(*server);

  // Other verbs and resources are unaffected.
  CHECK(client->Get("/api/v1/namespaces/default/pods/x").status == 404);
  auto watcher = Connect(*server);
  CHECK(watcher->StartStream("/api/v1/pods?watch=1").status == 200);

  Response throttled = client->Get("/api/v1/pods");
  CHECK(throttled.status == 429);
  CHECK(throttled.Header("Retry-After") == "3");
  auto status = Parse(throttled.body);
  CHECK(Str(status, "reason") == "TooManyRequests");
  CHECK(status["details"]["retryAfterSeconds"].GetInt() == 3);
  for (int i = 0; i < 2; ++i) {
    Response unavailable = client->Get("/api/v1/pods");
    CHECK(unavailable.status == 503);
    CHECK(unavailable.Header("Retry-After") == "7");
  }
  CHECK(client->Get("/api/v1/pods").status == 200);
  CHECK(server->PendingFaults("configmaps", Verb::kList) == 1);
  CHECK(client->Get("/api/v1/configmaps").status == 503);

  // "*" matches any resource; discovery has its own queue.
  server->InjectFault("*", Verb::kList, Fault::HttpError(500, "InternalError"));
  CHECK(client->Get("/apis/apps/v1/deployments").status == 500);
  server->InjectFault("", Verb::kDiscovery, Fault::ServiceUnavailable(2));
  CHECK(client->Get("/apis").status == 503);
  CHECK(client->Get("/apis").status == 200);
}

TEST_CASE("fault: 401 until the required token is presented, and after it rotates") {
  auto server = StartServer();
  auto client = Connect(*server);
  server->RequireToken("old");
  Response anonymous = client->Get("/api/v1/pods");
  CHECK(anonymous.status == 401);
  CHECK(Str(Parse(anonymous.body), "reason") == "Unauthorized");
  CHECK(client->Get("/api/v1/pods", {{"Authorization", "Bearer old"}}).status == 200);
  server->RequireToken("new");
  CHECK(client->Get("/api/v1/pods", {{"Authorization", "Bearer old"}}).status == 401);
  CHECK(client->Get("/api", {{"Authorization", "Bearer new"}}).status == 200);
  auto watcher = Connect(*server);
  CHECK(watcher->StartStream("/api/v1/pods?watch=1", {{"Authorization", "Bearer old"}}).status == 401);
  server->AllowAnyToken();
  CHECK(client->Get("/api/v1/pods").status == 200);

  // The log shows what was presented, and what was answered.
  std::vector<RequestRecord> log = server->Requests();
  REQUIRE(log.size() == 6);
  CHECK(log[0].Header("Authorization").empty());
  CHECK(log[0].status == 401);
  CHECK(log[1].Header("authorization") == "Bearer old");
  CHECK(log[1].status == 200);
  CHECK(log[4].path == "/api/v1/pods");
  CHECK(log[4].Param("watch") == "1");
  CHECK(log[4].IsWatch());
}

TEST_CASE("fault: malformed JSON in a LIST body and in a watch stream") {
  auto server = StartServer();
  Put(*server, "a");
  auto client = Connect(*server);
  server->InjectFault("pods", Verb::kList, Fault::MalformedJson());
  Response broken = client->Get("/api/v1/pods");
  CHECK(broken.status == 200);
  CHECK(broken.body.rfind("{\"kind\":\"PodList\"", 0) == 0);
  CHECK_FALSE(ParsesAsJson(broken.body));
  CHECK(ParsesAsJson(client->Get("/api/v1/pods").body));

  server->InjectFault("pods", Verb::kWatch, Fault::MalformedJson(/*after_events=*/1));
  auto watcher = Connect(*server);
  REQUIRE(watcher->StartStream("/api/v1/pods?watch=1").status == 200);
  CHECK(NextEvent(*watcher).name == "a");
  auto garbage = watcher->NextLine();
  REQUIRE(garbage.has_value());
  CHECK_FALSE(ParsesAsJson(*garbage));
  Put(*server, "b");  // The stream goes on after the bad line.
  CHECK(NextEvent(*watcher).name == "b");
}

TEST_CASE("fault: an object of 64 MiB in a LIST and in a watch") {
  auto server = StartServer();
  Put(*server, "a");
  auto client = Connect(*server);
  server->InjectFault("pods", Verb::kList, Fault::HugeObject());
  Response list = client->Get("/api/v1/pods", {}, seconds(60));
  REQUIRE(list.status == 200);
  CHECK(list.body.size() > (std::size_t{64} << 20));
  auto doc = Parse(list.body);
  CHECK(ItemNames(doc) == std::vector<std::string>{"huge-object", "a"});

  server->InjectFault("pods", Verb::kWatch, Fault::HugeObject(std::size_t{64} << 20, 1));
  auto watcher = Connect(*server);
  REQUIRE(watcher->StartStream("/api/v1/pods?watch=1").status == 200);
  CHECK(NextEvent(*watcher).name == "a");
  auto line = watcher->NextLine(seconds(60));
  INFO("stream error: " << watcher->stream_error().message() << ", got " << watcher->partial().size());
  REQUIRE(line.has_value());
  CHECK(line->size() > (std::size_t{64} << 20));
  CHECK(ParseEvent(*line).name == "huge-object");
}

TEST_CASE("fault: a stalled stream sends headers, then nothing, not even bookmarks") {
  ServerOptions options;
  options.bookmark_interval = milliseconds(50);
  auto server = StartServer(options);
  Put(*server, "a");
  server->InjectFault("pods", Verb::kWatch, Fault::Stall(/*after_events=*/1));
  auto watcher = Connect(*server);
  REQUIRE(watcher->StartStream("/api/v1/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=1").status == 200);
  CHECK(NextEvent(*watcher).name == "a");
  Put(*server, "b");
  CHECK_FALSE(watcher->NextLine(milliseconds(1500)).has_value());  // Past timeoutSeconds, too.
  CHECK(watcher->stream_error() == beast::error::timeout);
  CHECK(watcher->partial().empty());
  CHECK(server->WaitForOpenWatches("pods", 0, kTimeout));  // The client gave up.

  server->InjectFault("pods", Verb::kList, Fault::Stall());
  auto client = Connect(*server);
  Response stalled = client->Get("/api/v1/pods", {}, milliseconds(500));
  CHECK(stalled.status == 200);  // The header came...
  CHECK(stalled.error == beast::error::timeout);  // ...the body never did.
  CHECK(stalled.body.empty());
}

TEST_CASE("fault: very short watches end at once without events; a dropped connection answers nothing") {
  auto server = StartServer();
  Put(*server, "a");
  server->InjectFault("pods", Verb::kWatch, Fault::EndWatch(), 2);
  for (int i = 0; i < 2; ++i) {
    auto watcher = Connect(*server);
    const auto begin = std::chrono::steady_clock::now();
    REQUIRE(watcher->StartStream("/api/v1/pods?watch=1").status == 200);
    CHECK_FALSE(watcher->NextLine().has_value());
    CHECK(watcher->stream_done());
    CHECK_FALSE(watcher->stream_error());
    CHECK(std::chrono::steady_clock::now() - begin < milliseconds(1000));
  }
  auto normal = Connect(*server);
  REQUIRE(normal->StartStream("/api/v1/pods?watch=1").status == 200);
  CHECK(NextEvent(*normal).name == "a");

  server->InjectFault("pods", Verb::kGet, Fault::DropConnection());
  auto client = Connect(*server);
  Response dropped = client->Get("/api/v1/namespaces/default/pods/a");
  CHECK(dropped.status == 0);
  CHECK(dropped.error);
}

TEST_CASE("fault: a LIST body cut short of its Content-Length") {
  auto server = StartServer();
  Put(*server, "a");
  Put(*server, "b");
  server->InjectFault("pods", Verb::kList, Fault::CloseMidJson());
  auto client = Connect(*server);
  Response cut = client->Get("/api/v1/pods");
  CHECK(cut.status == 200);
  CHECK(cut.error == http::error::partial_message);
}

// ------------------------------------------------------------------------------------------
// The store API.

TEST_CASE("Upsert keeps the uid, Recreate changes it; generated objects are realistic") {
  auto server = StartServer();
  ObjectSpec spec;
  spec.managed_fields = true;
  spec.labels = {{"app", "web"}};
  spec.annotations = {{"note", "x"}};
  Put(*server, "a", spec);
  auto first = Parse(*server->GetObjectJson("pods", "default", "a"));
  const std::string uid = Str(first["metadata"], "uid");
  CHECK(uid.size() == 36);
  REQUIRE(first["metadata"]["managedFields"].IsArray());
  CHECK(Str(first["metadata"]["managedFields"][0], "manager") == "kube-controller-manager");
  CHECK(Str(first["metadata"]["managedFields"][1], "subresource") == "status");
  CHECK(Str(first["status"], "phase") == "Running");
  CHECK(Str(first["metadata"]["annotations"], "note") == "x");

  REQUIRE(server->UpsertJson("pods", "default", "a",
                             R"({"spec":{"nodeName":"n7"},"metadata":{"labels":{"extra":"yes"},"name":"ignored"}})")
              .ok());
  auto second = Parse(*server->GetObjectJson("pods", "default", "a"));
  CHECK(Str(second["metadata"], "uid") == uid);
  CHECK(Str(second["metadata"], "name") == "a");
  CHECK(Str(second["spec"], "nodeName") == "n7");
  CHECK(Str(second["metadata"]["labels"], "extra") == "yes");
  auto client = Connect(*server);
  CHECK(ItemNames(Parse(client->Get("/api/v1/pods?labelSelector=extra%3Dyes").body)) ==
        std::vector<std::string>{"a"});
  CHECK_FALSE(server->UpsertJson("pods", "default", "a", "[1,2").ok());
  CHECK_FALSE(server->Upsert("pods", "", "no-namespace").ok());
  CHECK_FALSE(server->Upsert("namespaces", "default", "ns1").ok());
  CHECK(server->Upsert("namespaces", "", "ns1").ok());
  CHECK(absl::IsNotFound(server->Upsert("nothings", "default", "x").status()));
  CHECK(absl::IsNotFound(server->Delete("pods", "default", "nope").status()));

  auto watcher = Connect(*server);
  REQUIRE(watcher->StartStream("/api/v1/pods?watch=1&resourceVersion=" +
                               std::to_string(server->CurrentRevision())).status == 200);
  REQUIRE(server->Recreate("pods", "default", "a").ok());
  Event deleted = NextEvent(*watcher);
  Event added = NextEvent(*watcher);
  CHECK(deleted.type == "DELETED");
  CHECK(deleted.uid == uid);
  CHECK(added.type == "ADDED");
  CHECK(added.uid != uid);
  REQUIRE(server->Touch("pods", "default", "a").ok());
  Event touched = NextEvent(*watcher);
  CHECK(touched.type == "MODIFIED");
  CHECK(U64(touched.rv) == U64(added.rv) + 1);

  ObjectSpec big;
  big.managed_fields = true;
  big.pad_to_bytes = 20480;
  Put(*server, "big", big);
  const std::size_t size = server->GetObjectJson("pods", "default", "big")->size();
  CHECK(size >= 20480 - 16);
  CHECK(size <= 20480 + 16);
}

TEST_CASE("load mode: synthetic objects and MODIFIED events at a steady rate") {
  auto server = StartServer();
  SyntheticLoad load;
  load.objects = 50;
  load.object_bytes = 20480;
  load.namespaces = 5;
  REQUIRE(server->Populate("pods", load).ok());
  auto client = Connect(*server);
  auto list = Parse(client->Get("/api/v1/pods").body);
  REQUIRE(list["items"].Size() == 50);
  std::set<std::string> namespaces;
  for (const auto& item : list["items"].GetArray()) {
    namespaces.insert(Str(item["metadata"], "namespace"));
    CHECK(item["metadata"]["managedFields"].Size() == 2);
  }
  CHECK(namespaces.size() == 5);
  const std::size_t one = server->GetObjectJson("pods", "load-0", "pod-000000")->size();
  CHECK(one > 20000);
  CHECK(one < 21000);

  auto watcher = Connect(*server);
  REQUIRE(watcher->StartStream("/api/v1/pods?watch=1&resourceVersion=" +
                               Str(list["metadata"], "resourceVersion")).status == 200);
  REQUIRE(server->StartModifications("pods", 200).ok());
  std::size_t received = 0;
  std::uint64_t last_rv = 0;
  const auto until = std::chrono::steady_clock::now() + milliseconds(1000);
  while (std::chrono::steady_clock::now() < until) {
    Event e = NextEvent(*watcher);
    CHECK(e.type == "MODIFIED");
    CHECK(U64(e.rv) > last_rv);
    last_rv = U64(e.rv);
    ++received;
  }
  server->StopModifications();
  CHECK(received >= 100);  // 200/s for a second, minus start-up.
  CHECK(received <= 260);
  CHECK(server->ModificationsGenerated() >= received);
  CHECK_FALSE(server->StartModifications("configmaps", 10).ok());
}

// The send-time annotation's value in an object, 0 when absent or not 19 decimal digits.
std::uint64_t SendStamp(const rapidjson::Value& object) {
  const rapidjson::Value& metadata = object["metadata"];
  if (!metadata.HasMember("annotations")) return 0;
  const rapidjson::Value& annotations = metadata["annotations"];
  if (!annotations.HasMember(informerd::fakeapi::kSendTimeAnnotation)) return 0;
  const std::string value = Str(annotations, informerd::fakeapi::kSendTimeAnnotation);
  if (value.size() != 19) return 0;
  for (char c : value) {
    if (c < '0' || c > '9') return 0;
  }
  return U64(value);
}

std::uint64_t NowUnixNanos() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

TEST_CASE("load mode: stamped objects carry the time each MODIFIED event's batch was made") {
  auto server = StartServer();
  SyntheticLoad load;
  load.objects = 20;
  load.object_bytes = 4096;
  load.namespaces = 2;
  load.stamp_send_time = true;
  REQUIRE(server->Populate("pods", load).ok());
  SyntheticLoad plain = load;
  plain.stamp_send_time = false;
  REQUIRE(server->Populate("configmaps", plain).ok());
  // The stamp's bytes count in the object's size (to the padding's granularity, about one env
  // entry with its managedFields).
  const std::size_t one = server->GetObjectJson("pods", "load-0", "pod-000000")->size();
  CHECK(one >= 4096 - 400);
  CHECK(one <= 4096 + 400);
  auto client = Connect(*server);
  // Listed objects carry the time they were built; unstamped ones no annotation at all.
  auto list = Parse(client->Get("/api/v1/pods").body);
  REQUIRE(list["items"].Size() == 20);
  for (const auto& item : list["items"].GetArray()) {
    CHECK(SendStamp(item) > NowUnixNanos() - 60'000'000'000ULL);
  }
  auto configmaps = Parse(client->Get("/api/v1/configmaps").body);
  for (const auto& item : configmaps["items"].GetArray()) {
    CHECK_FALSE(item["metadata"].HasMember("annotations"));
  }

  auto watcher = Connect(*server);
  REQUIRE(watcher
              ->StartStream("/api/v1/pods?watch=1&resourceVersion=" +
                            Str(list["metadata"], "resourceVersion"))
              .status == 200);
  const std::uint64_t started = NowUnixNanos();
  REQUIRE(server->StartModifications("pods", 500).ok());
  std::size_t received = 0;
  std::uint64_t last_stamp = 0;
  std::set<std::uint64_t> batches;
  const auto until = std::chrono::steady_clock::now() + milliseconds(1000);
  while (std::chrono::steady_clock::now() < until) {
    Event e = NextEvent(*watcher);
    const std::uint64_t now = NowUnixNanos();
    REQUIRE(e.type == "MODIFIED");
    const std::uint64_t stamp = SendStamp(e.doc["object"]);
    INFO("event " << received << " stamp " << stamp << " now " << now << " started " << started);
    REQUIRE(stamp != 0);
    // Made after the modifications started, before it was read, within a second of now.
    REQUIRE(stamp >= started);
    REQUIRE(stamp <= now);
    REQUIRE(now - stamp < 1'000'000'000ULL);
    REQUIRE(stamp >= last_stamp);
    last_stamp = stamp;
    batches.insert(stamp);
    ++received;
  }
  server->StopModifications();
  CHECK(received >= 250);
  // One stamp per batch (a timer tick), several events per batch at 500/s.
  CHECK(batches.size() > 10);
  CHECK(batches.size() < received);
  // The same revision read back from the store renders the same stamp.
  auto stored = Parse(*server->GetObjectJson("pods", "load-0", "pod-000000"));
  CHECK(SendStamp(stored) >= started);
}

TEST_CASE("load mode: a backlog larger than the socket buffers arrives whole and in order") {
  auto server = StartServer();
  SyntheticLoad load;
  load.objects = 100;
  load.object_bytes = 4096;
  load.namespaces = 4;
  REQUIRE(server->Populate("pods", load).ok());
  const std::uint64_t from = server->CurrentRevision();
  auto watcher = Connect(*server);
  REQUIRE(watcher->StartStream("/api/v1/pods?watch=1&resourceVersion=" + std::to_string(from))
              .status == 200);
  // Tens of MB of events while the client reads nothing: the writes fill the socket buffers and
  // resume part-way through a batch (and through an object) as the client reads.
  REQUIRE(server->StartModifications("pods", 20000).ok());
  std::this_thread::sleep_for(milliseconds(300));
  server->StopModifications();
  std::this_thread::sleep_for(milliseconds(50));  // A tick already queued finishes.
  const std::uint64_t generated = server->ModificationsGenerated();
  REQUIRE(generated > 3000);
  std::vector<std::string> names;
  for (std::uint64_t i = 0; i < generated; ++i) {
    Event e = NextEvent(*watcher);
    REQUIRE(e.type == "MODIFIED");
    REQUIRE(U64(e.rv) == from + 1 + i);  // Every revision once, in order.
    names.push_back(e.name);
  }
  // Round-robin over the 100 objects.
  for (std::size_t i = 100; i < names.size(); ++i) REQUIRE(names[i] == names[i - 100]);
  CHECK(std::set<std::string>(names.begin(), names.end()).size() == 100);
  CHECK_FALSE(watcher->NextLine(milliseconds(200)).has_value());
}

TEST_CASE("load mode: several resources modified at once by generators of their own") {
  auto server = StartServer();
  SyntheticLoad load;
  load.objects = 20;
  load.object_bytes = 0;
  load.namespaces = 2;
  REQUIRE(server->Populate("pods", load).ok());
  REQUIRE(server->Populate("configmaps", load).ok());
  const std::string from = std::to_string(server->CurrentRevision());
  auto pods = Connect(*server);
  REQUIRE(pods->StartStream("/api/v1/pods?watch=1&resourceVersion=" + from).status == 200);
  auto configmaps = Connect(*server);
  REQUIRE(configmaps->StartStream("/api/v1/configmaps?watch=1&resourceVersion=" + from).status ==
          200);
  REQUIRE(server->StartModifications("pods", 200).ok());
  // Starting the configmaps' generator leaves the pods' running (it used to replace it).
  REQUIRE(server->StartModifications("configmaps", 200).ok());
  // Events of both for a second: 200/s each, alternately read.
  const auto start = std::chrono::steady_clock::now();
  std::size_t pod_events = 0;
  std::size_t configmap_events = 0;
  while (std::chrono::steady_clock::now() - start < milliseconds(1000)) {
    Event pod = NextEvent(*pods, milliseconds(1000));
    CHECK(pod.type == "MODIFIED");
    CHECK(pod.name.rfind("pod-", 0) == 0);
    ++pod_events;
    Event configmap = NextEvent(*configmaps, milliseconds(1000));
    CHECK(configmap.type == "MODIFIED");
    CHECK(configmap.name.rfind("configmap-", 0) == 0);
    ++configmap_events;
  }
  CHECK(pod_events >= 100);
  CHECK(configmap_events >= 100);
  server->StopModifications();
  // Both stop, and the count is every resource's.
  std::this_thread::sleep_for(milliseconds(100));
  const std::uint64_t generated = server->ModificationsGenerated();
  CHECK(generated >= pod_events + configmap_events);
  std::this_thread::sleep_for(milliseconds(200));
  CHECK(server->ModificationsGenerated() == generated);
}

// ------------------------------------------------------------------------------------------
// TLS and lifecycle.

TEST_CASE("TLS: a client verifying with the exposed CA connects; one trusting another CA cannot") {
  ServerOptions options;
  options.tls = true;
  auto server = StartServer(options);
  REQUIRE(server->ca_pem().find("BEGIN CERTIFICATE") != std::string::npos);
  CHECK(server->base_url().rfind("https://127.0.0.1:", 0) == 0);
  Put(*server, "a");

  RawClient trusted(server->port(), server->ca_pem());
  REQUIRE_FALSE(trusted.Connect());
  Response list = trusted.Get("/api/v1/pods");
  CHECK(list.status == 200);
  CHECK(ItemNames(Parse(list.body)) == std::vector<std::string>{"a"});
  REQUIRE(trusted.StartStream("/api/v1/pods?watch=1").status == 200);
  CHECK(NextEvent(trusted).name == "a");

  auto other = GenerateTlsMaterial();
  REQUIRE(other.ok());
  RawClient untrusted(server->port(), other->ca_pem);
  const beast::error_code ec = untrusted.Connect();
  CHECK(ec);
  CHECK(ec.category() == net::error::get_ssl_category());

  // The same material from PEM files.
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = tmp ? tmp : "/tmp";
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
    return dir + "/" + name;
  };
  ServerOptions from_files;
  from_files.tls = true;
  from_files.tls_ca_file = write("ca.pem", other->ca_pem);
  from_files.tls_cert_file = write("cert.pem", other->cert_pem);
  from_files.tls_key_file = write("key.pem", other->key_pem);
  auto second = StartServer(from_files);
  CHECK(second->ca_pem() == other->ca_pem);
  RawClient via_files(second->port(), other->ca_pem);
  REQUIRE_FALSE(via_files.Connect());
  CHECK(via_files.Get("/api").status == 200);
}

TEST_CASE("Stop closes connected clients promptly, stalled and streaming ones included") {
  auto server = StartServer();
  Put(*server, "a");
  server->InjectFault("pods", Verb::kWatch, Fault::Stall());
  auto stalled = Connect(*server);
  REQUIRE(stalled->StartStream("/api/v1/pods?watch=1").status == 200);
  auto streaming = Connect(*server);
  REQUIRE(streaming->StartStream("/api/v1/pods?watch=1&allowWatchBookmarks=1").status == 200);
  auto idle = Connect(*server);
  REQUIRE(idle->Get("/api").status == 200);
  REQUIRE(server->WaitForOpenWatches("pods", 2, kTimeout));
  const auto begin = std::chrono::steady_clock::now();
  server.reset();
  CHECK(std::chrono::steady_clock::now() - begin < seconds(5));
  CHECK(streaming->NextLine().has_value());  // The ADDED sent before the stop.
  CHECK_FALSE(streaming->NextLine().has_value());
  CHECK(streaming->stream_error());
  CHECK_FALSE(stalled->NextLine().has_value());
  CHECK(stalled->stream_error() != beast::error::timeout);
}

TEST_CASE("the request log records method, target and headers of interest") {
  auto server = StartServer();
  auto client = Connect(*server);
  REQUIRE(client->Get("/api/v1/pods?limit=5&labelSelector=a%3Db",
                      {{"Accept", "application/json"}, {"Authorization", "Bearer t"}})
              .status == 200);
  CHECK(client->Get("/api/v1/pods", {{"Accept", "application/vnd.kubernetes.protobuf"}}).status == 406);
  auto log = server->Requests();
  REQUIRE(log.size() == 2);
  CHECK(log[0].method == "GET");
  CHECK(log[0].target == "/api/v1/pods?limit=5&labelSelector=a%3Db");
  CHECK(log[0].Param("labelSelector") == "a=b");
  CHECK(log[0].Param("limit") == "5");
  CHECK(log[0].Header("Accept") == "application/json");
  CHECK(log[0].Header("User-Agent") == "fakeapi-test/1.0");
  CHECK(log[1].status == 406);
  CHECK(server->WaitForRequests([](const RequestRecord& r) { return r.status == 406; }, 1, kTimeout));
  server->ClearRequests();
  CHECK(server->Requests().empty());
}

// ------------------------------------------------------------------------------------------
// Review APIs: TokenReview and SubjectAccessReview, answered from the test's table.

ServerOptions WithReviews() {
  ServerOptions options;
  options.review_apis = true;
  return options;
}

std::string TokenReviewBody(const std::string& token,
                            const std::vector<std::string>& audiences = {}) {
  std::string body =
      R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":")" + token +
      "\"";
  if (!audiences.empty()) {
    body += R"(,"audiences":[)";
    for (std::size_t i = 0; i < audiences.size(); ++i)
      body += (i ? ",\"" : "\"") + audiences[i] + "\"";
    body += "]";
  }
  return body + "}}";
}

std::string AccessReviewBody(const std::string& user, const std::string& verb,
                             const std::string& resource, const std::string& ns = "",
                             const std::string& group = "", const std::string& name = "",
                             const std::string& groups = "") {
  std::string attributes = fmt::format(R"("verb":"{}","resource":"{}")", verb, resource);
  if (!ns.empty()) attributes += fmt::format(R"(,"namespace":"{}")", ns);
  if (!group.empty()) attributes += fmt::format(R"(,"group":"{}")", group);
  if (!name.empty()) attributes += fmt::format(R"(,"name":"{}")", name);
  std::string spec = fmt::format(R"("resourceAttributes":{{{}}})", attributes);
  if (!user.empty()) spec += fmt::format(R"(,"user":"{}")", user);
  if (!groups.empty()) spec += fmt::format(R"(,"groups":[{}])", groups);
  return fmt::format(
      R"({{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{{{}}}}})",
      spec);
}

std::vector<std::string> StrArray(const rapidjson::Value& v, const char* key) {
  std::vector<std::string> out;
  REQUIRE(v.HasMember(key));
  for (const auto& item : v[key].GetArray()) out.emplace_back(item.GetString());
  return out;
}

// The status of a 201 review answer.
rapidjson::Document Review(RawClient& client, const std::string& path, const std::string& body) {
  Response r = client.Post(path, body);
  INFO(r.body);
  REQUIRE(r.status == 201);
  CHECK(r.Header("Content-Type") == "application/json");
  return Parse(r.body);
}

TEST_CASE("review APIs are off by default: not served, not in discovery") {
  auto server = StartServer();
  auto client = Connect(*server);
  Response token = client->Post(kTokenReviewPath, TokenReviewBody("t"));
  CHECK(token.status == 404);
  CHECK(token.body == "404 page not found\n");
  CHECK(client->Post(kSubjectAccessReviewPath, AccessReviewBody("alice", "list", "pods")).status ==
        404);
  auto groups = Parse(client->Get("/apis").body);
  std::vector<std::string> names;
  for (const auto& g : groups["groups"].GetArray()) names.push_back(Str(g, "name"));
  CHECK(names == std::vector<std::string>{"apps"});
}

TEST_CASE("review APIs: discovery lists tokenreviews and subjectaccessreviews, create only") {
  auto server = StartServer(WithReviews());
  auto client = Connect(*server);
  auto groups = Parse(client->Get("/apis").body);
  std::vector<std::string> names;
  for (const auto& g : groups["groups"].GetArray()) names.push_back(Str(g, "name"));
  CHECK(names == std::vector<std::string>{"apps", "authentication.k8s.io", "authorization.k8s.io"});
  CHECK(Str(Parse(client->Get("/apis/authentication.k8s.io").body)["preferredVersion"],
            "groupVersion") == "authentication.k8s.io/v1");

  struct Expected {
    std::string group_version;
    std::string plural;
    std::string kind;
  };
  for (const Expected& e :
       {Expected{"authentication.k8s.io/v1", "tokenreviews", "TokenReview"},
        Expected{"authorization.k8s.io/v1", "subjectaccessreviews", "SubjectAccessReview"}}) {
    INFO(e.group_version);
    Response list = client->Get("/apis/" + e.group_version);
    REQUIRE(list.status == 200);
    auto doc = Parse(list.body);
    CHECK(Str(doc, "groupVersion") == e.group_version);
    REQUIRE(doc["resources"].Size() == 1);
    const auto& r = doc["resources"][0];
    CHECK(Str(r, "name") == e.plural);
    CHECK(Str(r, "kind") == e.kind);
    CHECK_FALSE(r["namespaced"].GetBool());
    CHECK(StrArray(r, "verbs") == std::vector<std::string>{"create"});
  }
  // Reviews are created, never read.
  CHECK(client->Get(kTokenReviewPath).status == 405);

  // Switched off at run time: gone from discovery and from the routes.
  server->SetReviewApis(false);
  CHECK(client->Get("/apis/authentication.k8s.io/v1").status == 404);
  CHECK(client->Post(kTokenReviewPath, TokenReviewBody("t")).status == 404);
}

TEST_CASE("TokenReview: a known token is its user; audiences as the apiserver checks them") {
  auto server = StartServer(WithReviews());
  TokenIdentity reader;
  reader.username = "system:serviceaccount:team-a:reader";
  reader.uid = "0f891e8c";
  reader.groups = {"system:serviceaccounts", "system:serviceaccounts:team-a",
                   "system:authenticated"};
  reader.extra = {{"authentication.kubernetes.io/pod-name", {"web-1"}}};
  reader.audiences = {"informerd", "other"};
  server->reviews().AddToken("sa-token", reader);
  TokenIdentity alice;
  alice.username = "alice";
  alice.groups = {"system:authenticated"};
  server->reviews().AddToken("alice-token", alice);
  auto client = Connect(*server);

  SECTION("authenticated for the audiences asked that the token has") {
    auto review =
        Review(*client, kTokenReviewPath, TokenReviewBody("sa-token", {"informerd", "third"}));
    CHECK(Str(review, "kind") == "TokenReview");
    CHECK(Str(review, "apiVersion") == "authentication.k8s.io/v1");
    // The spec comes back as sent, token included, as from the apiserver.
    CHECK(Str(review["spec"], "token") == "sa-token");
    const auto& status = review["status"];
    CHECK(status["authenticated"].GetBool());
    CHECK(Str(status["user"], "username") == "system:serviceaccount:team-a:reader");
    CHECK(Str(status["user"], "uid") == "0f891e8c");
    CHECK(StrArray(status["user"], "groups") == reader.groups);
    CHECK(StrArray(status["user"]["extra"], "authentication.kubernetes.io/pod-name") ==
          std::vector<std::string>{"web-1"});
    CHECK(StrArray(status, "audiences") == std::vector<std::string>{"informerd"});
    CHECK_FALSE(status.HasMember("error"));
  }
  SECTION("a review without audiences means the apiserver's own") {
    auto review = Review(*client, kTokenReviewPath, TokenReviewBody("alice-token"));
    CHECK(review["status"]["authenticated"].GetBool());
    CHECK(StrArray(review["status"], "audiences") == std::vector<std::string>{kApiServerAudience});
    // A token issued for other audiences is not the apiserver's.
    auto sa = Review(*client, kTokenReviewPath, TokenReviewBody("sa-token"));
    CHECK_FALSE(sa["status"].HasMember("authenticated"));
    CHECK(
        Str(sa["status"], "error") ==
        R"([invalid bearer token, token audiences ["informerd" "other"] is invalid for the target audiences ["https://kubernetes.default.svc"]])");
  }
  SECTION("the wrong audience is not authenticated, in the apiserver's words") {
    auto review = Review(*client, kTokenReviewPath, TokenReviewBody("sa-token", {"third"}));
    const auto& status = review["status"];
    CHECK_FALSE(status.HasMember("authenticated"));
    CHECK(status["user"].ObjectEmpty());
    CHECK(
        Str(status, "error") ==
        R"([invalid bearer token, token audiences ["informerd" "other"] is invalid for the target audiences ["third"]])");
    // A static token has no audiences of its own: for any other it is just not a valid token.
    auto agnostic =
        Review(*client, kTokenReviewPath, TokenReviewBody("alice-token", {"informerd"}));
    CHECK_FALSE(agnostic["status"].HasMember("authenticated"));
    CHECK(Str(agnostic["status"], "error") == "invalid bearer token");
  }
  SECTION("an unknown token, and a removed one, are invalid bearer tokens") {
    auto unknown = Review(*client, kTokenReviewPath, TokenReviewBody("nope"));
    CHECK(Str(unknown["status"], "error") == "invalid bearer token");
    CHECK(unknown["status"]["user"].ObjectEmpty());
    server->reviews().RemoveToken("alice-token");
    auto removed = Review(*client, kTokenReviewPath, TokenReviewBody("alice-token"));
    CHECK(Str(removed["status"], "error") == "invalid bearer token");
  }
  // Each review is in the request log, with its body.
  std::vector<RequestRecord> log = server->Requests();
  REQUIRE_FALSE(log.empty());
  for (const RequestRecord& r : log) {
    CHECK(r.method == "POST");
    CHECK(r.path == kTokenReviewPath);
    CHECK(r.status == 201);
    CHECK(r.body.find("\"kind\":\"TokenReview\"") != std::string::npos);
    CHECK(r.Header("Content-Type") == "application/json");
  }
}

TEST_CASE("TokenReview: what the apiserver refuses before reviewing") {
  auto server = StartServer(WithReviews());
  auto client = Connect(*server);
  Response yaml =
      client->Post(kTokenReviewPath, TokenReviewBody("t"), {{"Content-Type", "text/plain"}});
  CHECK(yaml.status == 415);
  CHECK(Str(Parse(yaml.body), "reason") == "UnsupportedMediaType");
  Response garbage = client->Post(kTokenReviewPath, "garbage");
  CHECK(garbage.status == 400);
  CHECK(Str(Parse(garbage.body), "message").find("couldn't get version/kind; json parse error") !=
        std::string::npos);
  Response wrong_kind = client->Post(kTokenReviewPath, AccessReviewBody("alice", "list", "pods"));
  CHECK(wrong_kind.status == 400);
  CHECK(Str(Parse(wrong_kind.body), "message")
            .find("the object provided is unrecognized (must be of type TokenReview)") !=
        std::string::npos);
  Response no_token =
      client->Post(kTokenReviewPath,
                   R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{}})");
  CHECK(no_token.status == 400);
  CHECK(Str(Parse(no_token.body), "message") ==
        "token is required for TokenReview in authentication");
  // A charset parameter is fine.
  CHECK(client
            ->Post(kTokenReviewPath, TokenReviewBody("t"),
                   {{"Content-Type", "application/json; charset=utf-8"}})
            .status == 201);
}

TEST_CASE("SubjectAccessReview: the first matching rule decides; no rule is a plain denial") {
  auto server = StartServer(WithReviews());
  ReviewTable& table = server->reviews();
  AccessRule alice_pods_a;
  alice_pods_a.user = "alice";
  alice_pods_a.resource = "pods";
  alice_pods_a.namespace_name = "team-a";
  table.Allow(alice_pods_a, "RBAC: allowed by RoleBinding \"pods/team-a\"");
  AccessRule alice_secrets;
  alice_secrets.user = "alice";
  alice_secrets.resource = "secrets";
  table.Deny(alice_secrets, "no secrets");
  AccessRule alice_anything;
  alice_anything.user = "alice";
  table.Allow(alice_anything);  // After the denial: secrets stay denied.
  AccessRule devs_deployments;
  devs_deployments.user = "group:devs";
  devs_deployments.verb = "list";
  devs_deployments.group = "apps";
  devs_deployments.resource = "deployments";
  devs_deployments.namespace_name = "";  // Cluster-wide only.
  table.Allow(devs_deployments);
  auto client = Connect(*server);

  auto decide = [&](const std::string& body) {
    auto review = Review(*client, kSubjectAccessReviewPath, body);
    CHECK(Str(review, "kind") == "SubjectAccessReview");
    CHECK(Str(review, "apiVersion") == "authorization.k8s.io/v1");
    CHECK(review["spec"].HasMember("resourceAttributes"));  // Echoed.
    return review;
  };

  auto allowed = decide(AccessReviewBody("alice", "list", "pods", "team-a"));
  CHECK(allowed["status"]["allowed"].GetBool());
  CHECK(Str(allowed["status"], "reason") == "RBAC: allowed by RoleBinding \"pods/team-a\"");
  auto secrets = decide(AccessReviewBody("alice", "get", "secrets", "team-a", "", "s1"));
  CHECK_FALSE(secrets["status"]["allowed"].GetBool());
  CHECK_FALSE(secrets["status"].HasMember("denied"));
  CHECK(Str(secrets["status"], "reason") == "no secrets");
  CHECK(decide(AccessReviewBody("alice", "watch", "configmaps", "team-b"))["status"]["allowed"]
            .GetBool());

  // Bob: no rule. RBAC's plain denial: allowed false and nothing else.
  auto bob = decide(AccessReviewBody("bob", "list", "pods", "team-a"));
  CHECK_FALSE(bob["status"]["allowed"].GetBool());
  CHECK(bob["status"].MemberCount() == 1);

  // Group subjects; "" matches only the cluster scope.
  CHECK(decide(AccessReviewBody("carol", "list", "deployments", "", "apps", "",
                                R"("devs")"))["status"]["allowed"]
            .GetBool());
  CHECK_FALSE(decide(AccessReviewBody("carol", "list", "deployments", "team-a", "apps", "",
                                      R"("devs")"))["status"]["allowed"]
                  .GetBool());
  CHECK_FALSE(
      decide(AccessReviewBody("carol", "list", "deployments", "", "apps"))["status"]["allowed"]
          .GetBool());

  // An explicit denial with an evaluation error, as a webhook authorizer answers.
  AccessRule bob_all;
  bob_all.user = "bob";
  AccessAnswer webhook;
  webhook.denied = true;
  webhook.reason = "denied by policy";
  webhook.evaluation_error = "policy \"x\" could not be evaluated";
  table.SetAccess(bob_all, webhook);
  auto explicit_denial = decide(AccessReviewBody("bob", "list", "pods", "team-a"));
  CHECK_FALSE(explicit_denial["status"]["allowed"].GetBool());
  CHECK(explicit_denial["status"]["denied"].GetBool());
  CHECK(Str(explicit_denial["status"], "reason") == "denied by policy");
  CHECK(Str(explicit_denial["status"], "evaluationError") == "policy \"x\" could not be evaluated");

  // Revoked at run time: the next review says so.
  REQUIRE(table.RemoveAccess(alice_pods_a));
  CHECK_FALSE(table.RemoveAccess(alice_pods_a));
  auto revoked = decide(AccessReviewBody("alice", "list", "pods", "team-a"));
  CHECK(revoked["status"]["allowed"].GetBool());  // alice_anything still allows, without reason.
  CHECK_FALSE(revoked["status"].HasMember("reason"));
  table.ClearAccess();
  CHECK_FALSE(
      decide(AccessReviewBody("alice", "list", "pods", "team-a"))["status"]["allowed"].GetBool());

  std::size_t reviews = 0;
  for (const RequestRecord& r : server->Requests())
    reviews += r.path == kSubjectAccessReviewPath ? 1 : 0;
  CHECK(reviews == 10);
}

TEST_CASE("SubjectAccessReview: 422 without a user or group, or without attributes") {
  auto server = StartServer(WithReviews());
  auto client = Connect(*server);
  Response nobody = client->Post(kSubjectAccessReviewPath, AccessReviewBody("", "list", "pods"));
  CHECK(nobody.status == 422);
  auto status = Parse(nobody.body);
  CHECK(Str(status, "reason") == "Invalid");
  CHECK(Str(status, "message").find("at least one of user or group must be specified") !=
        std::string::npos);
  Response nothing = client->Post(
      kSubjectAccessReviewPath,
      R"({"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"alice"}})");
  CHECK(nothing.status == 422);
  CHECK(Str(Parse(nothing.body), "message")
            .find("exactly one of nonResourceAttributes or resourceAttributes must be specified") !=
        std::string::npos);
}

TEST_CASE("review faults: a 5xx, a garbage body, a delay, a stall; queued per review") {
  auto server = StartServer(WithReviews());
  TokenIdentity alice;
  alice.username = "alice";
  server->reviews().AddToken("alice-token", alice);
  auto client = Connect(*server);

  server->InjectFault(kTokenReviewsKey, Verb::kCreate, Fault::ServiceUnavailable(3));
  server->InjectFault(kTokenReviewsKey, Verb::kCreate, Fault::HttpError(500, "InternalError"));
  server->InjectFault(kTokenReviewsKey, Verb::kCreate, Fault::MalformedJson());
  CHECK(server->PendingFaults(kTokenReviewsKey, Verb::kCreate) == 3);
  CHECK(server->PendingFaults(kSubjectAccessReviewsKey, Verb::kCreate) == 0);
  // Access reviews are not affected by token review faults.
  CHECK(client->Post(kSubjectAccessReviewPath, AccessReviewBody("alice", "list", "pods")).status ==
        201);

  Response unavailable = client->Post(kTokenReviewPath, TokenReviewBody("alice-token"));
  CHECK(unavailable.status == 503);
  CHECK(unavailable.Header("Retry-After") == "3");
  CHECK(client->Post(kTokenReviewPath, TokenReviewBody("alice-token")).status == 500);
  Response garbage = client->Post(kTokenReviewPath, TokenReviewBody("alice-token"));
  CHECK(garbage.status == 201);
  CHECK_FALSE(ParsesAsJson(garbage.body));
  // Used up: the next one is answered.
  CHECK(Review(*client, kTokenReviewPath, TokenReviewBody("alice-token"))["status"]["authenticated"]
            .GetBool());

  // A delay holds back this answer only; another connection is served meanwhile.
  server->InjectFault(kSubjectAccessReviewsKey, Verb::kCreate, Fault::Delay(milliseconds(700)));
  auto other = Connect(*server);
  const auto begin = std::chrono::steady_clock::now();
  Response delayed_response;
  std::chrono::steady_clock::duration delayed_took{};
  std::thread delayed([&] {
    delayed_response =
        client->Post(kSubjectAccessReviewPath, AccessReviewBody("alice", "list", "pods"));
    delayed_took = std::chrono::steady_clock::now() - begin;
  });
  REQUIRE(server->WaitForRequests(
      [](const RequestRecord& r) { return r.path == kSubjectAccessReviewPath; }, 2, kTimeout));
  CHECK(other->Post(kSubjectAccessReviewPath, AccessReviewBody("alice", "list", "pods")).status ==
        201);
  CHECK(std::chrono::steady_clock::now() - begin < milliseconds(700));
  delayed.join();
  CHECK(delayed_response.status == 201);
  CHECK(delayed_took >= milliseconds(700));

  // A stall: headers, then nothing; the client's own timeout ends it.
  server->InjectFault(kSubjectAccessReviewsKey, Verb::kCreate, Fault::Stall());
  Response stalled = other->Post(kSubjectAccessReviewPath,
                                 AccessReviewBody("alice", "list", "pods"), {}, milliseconds(300));
  CHECK(stalled.error == beast::error::timeout);
  // A dropped connection answers nothing.
  server->InjectFault(kSubjectAccessReviewsKey, Verb::kCreate, Fault::DropConnection());
  auto third = Connect(*server);
  Response dropped =
      third->Post(kSubjectAccessReviewPath, AccessReviewBody("alice", "list", "pods"));
  CHECK(dropped.status == 0);
  CHECK(dropped.error);
}

TEST_CASE("the load binary prints its port first on stdout, serves N objects and a stream of events") {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string stdout_file = std::string(tmp ? tmp : "/tmp") + "/fakeapi_server.out";
  auto process = informerd::test::Subprocess::Start(
      {"/bin/sh", "-c",
       "exec test/fakeapi/fakeapi_server --objects 300 --object-bytes 20480 "
       "--events-per-second 500 --namespaces 3 > " + stdout_file});
  REQUIRE(process.ok());
  auto ready = process->WaitForLine("fakeapi_server: pods on", seconds(30));
  INFO(process->stderr_text());
  REQUIRE(ready.ok());
  std::ifstream out(stdout_file);
  std::string first_line;
  REQUIRE(std::getline(out, first_line));
  const int port = std::stoi(first_line);
  REQUIRE(port > 0);
  CHECK(ready->find(fmt::format("127.0.0.1:{}", port)) != std::string::npos);

  RawClient client(static_cast<std::uint16_t>(port));
  REQUIRE_FALSE(client.Connect());
  Response page = client.Get("/api/v1/pods?limit=200");
  REQUIRE(page.status == 200);
  auto list = Parse(page.body);
  CHECK(list["items"].Size() == 200);
  CHECK(page.body.size() > 200 * 20000);
  CHECK(page.body.size() < 200 * 21000);
  Response rest = client.Get("/api/v1/pods?limit=200&continue=" + Str(list["metadata"], "continue"));
  CHECK(Parse(rest.body)["items"].Size() == 100);

  RawClient watcher(static_cast<std::uint16_t>(port));
  REQUIRE_FALSE(watcher.Connect());
  REQUIRE(watcher.StartStream("/api/v1/pods?watch=1&resourceVersion=" +
                              Str(list["metadata"], "resourceVersion")).status == 200);
  for (int i = 0; i < 50; ++i) CHECK(NextEvent(watcher).type == "MODIFIED");

  process->Signal(SIGTERM);
  auto code = process->Wait(seconds(20));
  REQUIRE(code.ok());
  CHECK(*code == 0);
}

TEST_CASE("the load binary: several resources, their events started by SIGUSR2") {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string stdout_file = std::string(tmp ? tmp : "/tmp") + "/fakeapi_server_usr2.out";
  auto process = informerd::test::Subprocess::Start(
      {"/bin/sh", "-c",
       "exec test/fakeapi/fakeapi_server --objects 20 --resource pods configmaps "
       "--events-per-second 500 --events-on-signal > " +
           stdout_file});
  REQUIRE(process.ok());
  auto ready = process->WaitForLine("fakeapi_server: pods,configmaps on", seconds(30));
  INFO(process->stderr_text());
  REQUIRE(ready.ok());
  std::ifstream out(stdout_file);
  std::string first_line;
  REQUIRE(std::getline(out, first_line));
  const auto port = static_cast<std::uint16_t>(std::stoi(first_line));

  std::vector<std::unique_ptr<RawClient>> watchers;
  std::string from;
  for (const char* path : {"/api/v1/pods", "/api/v1/configmaps"}) {
    auto lister = std::make_unique<RawClient>(port);
    REQUIRE_FALSE(lister->Connect());
    Response list = lister->Get(path);
    REQUIRE(list.status == 200);
    CHECK(Parse(list.body)["items"].Size() == 20);
    auto watcher = std::make_unique<RawClient>(port);
    REQUIRE_FALSE(watcher->Connect());
    from = Str(Parse(list.body)["metadata"], "resourceVersion");
    REQUIRE(watcher->StartStream(std::string(path) + "?watch=1&resourceVersion=" + from).status ==
            200);
    watchers.push_back(std::move(watcher));
  }
  // Nothing before the signal (a watcher of its own: a read that times out closes the socket).
  RawClient quiet(port);
  REQUIRE_FALSE(quiet.Connect());
  REQUIRE(quiet.StartStream("/api/v1/pods?watch=1&resourceVersion=" + from).status == 200);
  CHECK_FALSE(quiet.NextLine(milliseconds(300)).has_value());
  process->Signal(SIGUSR2);
  REQUIRE(process->WaitForLine("SIGUSR2, MODIFIED events started", seconds(10)).ok());
  for (int i = 0; i < 20; ++i) {
    CHECK(NextEvent(*watchers[0]).name.rfind("pod-", 0) == 0);
    CHECK(NextEvent(*watchers[1]).name.rfind("configmap-", 0) == 0);
  }
  process->Signal(SIGTERM);
  auto code = process->Wait(seconds(20));
  REQUIRE(code.ok());
  CHECK(*code == 0);
}

}  // namespace
}  // namespace informerd::fakeapi
