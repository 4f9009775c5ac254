// The contract cases (see apiserver_client_contract.h): what ApiServerClient gets from an
// apiserver, the same whether the fake or a real kube-apiserver answers. Each case states what
// the product relies on in its name; the backend of the run comes from MakeContractBackend().
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include "test/daemon/kube/apiserver_client_contract.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/access_review.h"
#include "core/api_resources.h"
#include "core/list_decoder.h"
#include "core/object_scanner.h"
#include "core/user_info.h"
#include "core/watch_event_decoder.h"
#include "daemon/kube/apiserver_client.h"
#include "daemon/kube/discovery.h"
#include "fmt/format.h"
#include "test/common/api_test_support.h"
#include "test/common/watch_recorder.h"

namespace informerd::test {

const char* PluralOf(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::kPod:
      return "pods";
    case ObjectKind::kConfigMap:
      return "configmaps";
  }
  return "";
}

namespace {

using core::WatchEvent;
using core::WatchEventType;
using daemon::ApiServerClient;
using daemon::HttpResult;
using daemon::WatchHandle;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Long enough for a real apiserver: it waits up to 3 s before refusing a too-large
// resourceVersion, and kubectl takes a moment per change.
constexpr seconds kContractWait{60};

// ---------------------------------------------------------------------------------------------
// The backend of the run: made on first use, released when the run ends.

struct BackendSlot {
  bool tried = false;
  absl::Status error;
  std::unique_ptr<ContractBackend> backend;
};

BackendSlot& Slot() {
  static BackendSlot slot;
  return slot;
}

ContractBackend& Backend() {
  BackendSlot& slot = Slot();
  if (!slot.tried) {
    slot.tried = true;
    absl::StatusOr<std::unique_ptr<ContractBackend>> made = MakeContractBackend();
    if (made.ok()) {
      slot.backend = *std::move(made);
    } else {
      slot.error = made.status();
    }
  }
  INFO("the contract backend could not be made: " << slot.error.ToString());
  REQUIRE(slot.backend != nullptr);
  return *slot.backend;
}

// Stops the backend (a real cluster's processes) when the run ends, rather than during static
// destruction.
class ReleaseBackendAtEnd : public Catch::TestEventListenerBase {
 public:
  using TestEventListenerBase::TestEventListenerBase;
  void testRunEnded(const Catch::TestRunStats& stats) override {
    Slot().backend.reset();
    TestEventListenerBase::testRunEnded(stats);
  }
};
CATCH_REGISTER_LISTENER(ReleaseBackendAtEnd)

// ---------------------------------------------------------------------------------------------
// Helpers.

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

bool StartsWith(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

std::uint64_t Rv(std::string_view text) {
  INFO("resourceVersion \"" << text << "\"");
  REQUIRE(!text.empty());
  REQUIRE(std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }));
  return std::stoull(std::string(text));
}

// A namespace of the case's own, created on the backend.
std::string NewNamespace(ContractBackend& backend, const std::string& stem) {
  static int counter = 0;
  const std::string ns = fmt::format("contract-{}-{}", ++counter, stem);
  absl::Status created = backend.CreateNamespace(ns);
  INFO(created.ToString());
  REQUIRE(created.ok());
  return ns;
}

std::string CreateOk(ContractBackend& backend, ObjectKind kind, const std::string& ns,
                     const std::string& name, const LabelMap& labels = {}) {
  absl::StatusOr<std::string> rv = backend.Create(kind, ns, name, labels);
  INFO(fmt::format("create {} {}/{}: {}", PluralOf(kind), ns, name, rv.status().ToString()));
  REQUIRE(rv.ok());
  return *rv;
}

std::string SetLabelOk(ContractBackend& backend, ObjectKind kind, const std::string& ns,
                       const std::string& name, const std::string& key, const std::string& value) {
  absl::StatusOr<std::string> rv = backend.SetLabel(kind, ns, name, key, value);
  INFO(fmt::format("label {} {}/{}: {}", PluralOf(kind), ns, name, rv.status().ToString()));
  REQUIRE(rv.ok());
  return *rv;
}

void DeleteOk(ContractBackend& backend, ObjectKind kind, const std::string& ns,
              const std::string& name) {
  absl::Status deleted = backend.Delete(kind, ns, name);
  INFO(fmt::format("delete {} {}/{}: {}", PluralOf(kind), ns, name, deleted.ToString()));
  REQUIRE(deleted.ok());
}

std::shared_ptr<daemon::CredentialSource> Token(const std::string& token) {
  daemon::Credentials credentials;
  credentials.bearer_token = token;
  return std::make_shared<daemon::StaticCredentialSource>(std::move(credentials));
}

// A client of the backend on an I/O thread of its own (destroyed after the client).
struct Client {
  explicit Client(ContractBackend& backend,
                  std::shared_ptr<daemon::CredentialSource> credentials = nullptr,
                  const std::string& identity = "user \"contract\" (test)") {
    if (credentials == nullptr) credentials = Token(backend.valid_token());
    absl::StatusOr<std::unique_ptr<ApiServerClient>> created =
        ApiServerClient::Create(io.io(), backend.Config(std::move(credentials), identity));
    INFO(created.status().ToString());
    REQUIRE(created.ok());
    client = *std::move(created);
  }
  ApiServerClient* operator->() { return client.get(); }
  ApiServerClient& operator*() { return *client; }

  IoThread io;
  std::unique_ptr<ApiServerClient> client;
};

HttpResult GetNow(ApiServerClient& client, const std::string& path) {
  Awaited<HttpResult> result;
  client.Get(path, "", result.Callback());
  std::optional<HttpResult> got = result.Wait(kContractWait);
  REQUIRE(got.has_value());
  return *std::move(got);
}

core::ListPage ListOk(ApiServerClient& client, const std::string& path) {
  HttpResult result = GetNow(client, path);
  INFO(path << ": " << result.status.ToString());
  REQUIRE(result.status.ok());
  REQUIRE(result.http_status == 200);
  core::ListDecoder decoder(core::ScanOptions{});
  absl::StatusOr<core::ListPage> page = decoder.Decode(result.body);
  INFO(page.status().ToString());
  REQUIRE(page.ok());
  return *std::move(page);
}

std::vector<std::string> Names(const std::vector<core::ObjectRecord>& items) {
  std::vector<std::string> names;
  for (const core::ObjectRecord& item : items) names.push_back(item.name.str());
  return names;
}

// Sorted: lists served from a 1.20 apiserver's watch cache come in no particular order.
std::vector<std::string> SortedNames(const std::vector<core::ObjectRecord>& items) {
  std::vector<std::string> names = Names(items);
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<core::LabelSet::Entry> Entries(const LabelMap& labels) {
  return std::vector<core::LabelSet::Entry>(labels.begin(), labels.end());
}

std::string CollectionPath(ObjectKind kind, const std::string& ns) {
  return fmt::format("/api/v1/namespaces/{}/{}", ns, PluralOf(kind));
}

std::string WatchPath(ObjectKind kind, const std::string& ns, const std::string& rv,
                      const std::string& extra = "") {
  return fmt::format("{}?watch=1&resourceVersion={}{}", CollectionPath(kind, ns), rv, extra);
}

// "ADDED b", "DELETED a": for comparing event sequences.
std::vector<std::string> Describe(const std::vector<WatchEvent>& events) {
  std::vector<std::string> out;
  for (const WatchEvent& e : events) {
    out.push_back(
        e.type == WatchEventType::kBookmark
            ? "BOOKMARK"
            : fmt::format("{} {}", core::WatchEventTypeName(e.type), e.object.name.view()));
  }
  return out;
}

// The resourceVersion an event carries: its object's, or a bookmark's.
std::string EventRv(const WatchEvent& event) {
  return event.type == WatchEventType::kBookmark ? event.resource_version
                                                 : event.object.resource_version.str();
}

// ---------------------------------------------------------------------------------------------
// LIST.

TEST_CASE(
    "LIST pages through a namespace with limit and continue, every page at the first page's "
    "resourceVersion",
    "[contract][list]") {
  ContractBackend& backend = Backend();
  const std::string ns = NewNamespace(backend, "pages");
  std::map<std::string, std::string> rvs;
  for (const char* name : {"a", "b", "c"}) {
    rvs[name] = CreateOk(backend, ObjectKind::kPod, ns, name);
  }
  Client client(backend);
  const std::string path = CollectionPath(ObjectKind::kPod, ns);

  core::ListPage first = ListOk(*client, path + "?limit=2");
  CHECK(Names(first.items) == std::vector<std::string>{"a", "b"});
  REQUIRE(first.items.size() == 2);
  CHECK(first.items[0].resource_version == rvs["a"]);
  CHECK(first.items[1].resource_version == rvs["b"]);
  CHECK(first.items[0].namespace_name == ns);
  CHECK(Rv(first.metadata.resource_version) >= Rv(rvs["c"]));
  REQUIRE(!first.metadata.continue_token.empty());
  // etcd's count of the keys after the page, given when no selector filters the list.
  CHECK(first.metadata.remaining_item_count == std::optional<int64_t>(1));

  // Created after the first page and sorting before "c": the second page reads the first page's
  // snapshot, so it does not show up there.
  CreateOk(backend, ObjectKind::kPod, ns, "b2");
  const std::string token = first.metadata.continue_token;
  core::ListPage second = ListOk(*client, fmt::format("{}?limit=2&continue={}", path, token));
  CHECK(Names(second.items) == std::vector<std::string>{"c"});
  REQUIRE(second.items.size() == 1);
  CHECK(second.items[0].resource_version == rvs["c"]);
  CHECK(second.metadata.resource_version == first.metadata.resource_version);
  CHECK(second.metadata.continue_token.empty());
  CHECK_FALSE(second.metadata.remaining_item_count.has_value());

  // A continue request carries no resourceVersion (the reflector drops it): the server refuses
  // the two together.
  HttpResult both = GetNow(*client, fmt::format("{}?limit=2&resourceVersion={}&continue={}", path,
                                                first.metadata.resource_version, token));
  CHECK(both.http_status == 400);
  CHECK(both.status.code() == absl::StatusCode::kInvalidArgument);
  REQUIRE(both.kube_status.has_value());
  CHECK(both.kube_status->reason == "BadRequest");
  CHECK(both.kube_status->message ==
        "specifying resource version is not allowed when using continue");

  core::ListPage now = ListOk(*client, path + "?limit=500");
  CHECK(Names(now.items) == std::vector<std::string>{"a", "b", "b2", "c"});
  CHECK(now.metadata.continue_token.empty());
}

TEST_CASE(
    "LIST at a resourceVersion without limit is at least that fresh; at resourceVersion 0 the "
    "watch cache ignores limit",
    "[contract][list]") {
  ContractBackend& backend = Backend();
  const std::string ns = NewNamespace(backend, "rv0");
  std::string last;
  for (const char* name : {"a", "b", "c"}) last = CreateOk(backend, ObjectKind::kPod, ns, name);
  Client client(backend);
  const std::string path = CollectionPath(ObjectKind::kPod, ns);

  // How the reflector relists after a watch broke: the current state, no older than its RV.
  // Both lists here come from the watch cache, which in 1.20 keeps no order.
  core::ListPage fresh = ListOk(*client, fmt::format("{}?resourceVersion={}", path, last));
  CHECK(SortedNames(fresh.items) == std::vector<std::string>{"a", "b", "c"});
  CHECK(Rv(fresh.metadata.resource_version) >= Rv(last));
  CHECK(fresh.metadata.continue_token.empty());

  // How it lists first: "0" with a limit, which the watch cache ignores, so the first page is
  // the whole list (the reflector paginates later lists only if this one came in pages).
  core::ListPage whole = ListOk(*client, path + "?limit=1&resourceVersion=0");
  CHECK(SortedNames(whole.items) == std::vector<std::string>{"a", "b", "c"});
  CHECK(whole.metadata.continue_token.empty());
  CHECK(Rv(whole.metadata.resource_version) >= Rv(last));
}

TEST_CASE(
    "LIST with a limit at an older resourceVersion reads that revision; after a compaction it "
    "and earlier continue tokens are 410 Expired",
    "[contract][list][compaction]") {
  ContractBackend& backend = Backend();
  const std::string ns = NewNamespace(backend, "compact");
  const ObjectKind cm = ObjectKind::kConfigMap;
  const std::string a0 = CreateOk(backend, cm, ns, "a", {{"v", "0"}});
  CreateOk(backend, cm, ns, "b");
  Client client(backend);
  const std::string path = CollectionPath(cm, ns);
  core::ListPage first = ListOk(*client, path + "?limit=1");
  const std::string r0 = first.metadata.resource_version;
  const std::string token = first.metadata.continue_token;
  REQUIRE(!token.empty());

  const std::string a1 = SetLabelOk(backend, cm, ns, "a", "v", "1");
  CreateOk(backend, cm, ns, "c");

  // With a limit and no resourceVersionMatch, a resourceVersion other than "0" is an exact read
  // from etcd, as is resourceVersionMatch=Exact.
  for (const std::string& query : {"?limit=10&resourceVersion=" + r0,
                                   "?resourceVersion=" + r0 + "&resourceVersionMatch=Exact"}) {
    INFO(query);
    core::ListPage past = ListOk(*client, path + query);
    CHECK(past.metadata.resource_version == r0);
    CHECK(Names(past.items) == std::vector<std::string>{"a", "b"});
    REQUIRE(past.items.size() == 2);
    CHECK(past.items[0].resource_version == a0);
    CHECK(past.items[0].labels.entries() == Entries({{"v", "0"}}));
  }

  absl::Status compacted = backend.CompactStorage();
  INFO(compacted.ToString());
  REQUIRE(compacted.ok());

  for (const std::string& query : {"?limit=10&resourceVersion=" + r0,
                                   "?resourceVersion=" + r0 + "&resourceVersionMatch=Exact"}) {
    INFO(query);
    HttpResult expired = GetNow(*client, path + query);
    CHECK(expired.http_status == 410);
    CHECK(expired.status.code() == absl::StatusCode::kOutOfRange);
    REQUIRE(expired.kube_status.has_value());
    CHECK(expired.kube_status->reason == "Expired");
    CHECK(expired.kube_status->message == "The resourceVersion for the provided list is too old.");
    CHECK(Contains(Message(expired.status), expired.kube_status->message));
  }

  // The reflector's cue to restart a paginated list without limit.
  HttpResult continued = GetNow(*client, fmt::format("{}?limit=1&continue={}", path, token));
  CHECK(continued.http_status == 410);
  CHECK(continued.status.code() == absl::StatusCode::kOutOfRange);
  REQUIRE(continued.kube_status.has_value());
  CHECK(continued.kube_status->reason == "Expired");
  INFO(continued.kube_status->message);
  CHECK(StartsWith(continued.kube_status->message,
                   "The provided continue parameter is too old to display a consistent list "
                   "result. You can start a new list without the continue parameter"));

  core::ListPage now = ListOk(*client, path);
  CHECK(Names(now.items) == std::vector<std::string>{"a", "b", "c"});
  REQUIRE(!now.items.empty());
  CHECK(now.items[0].resource_version == a1);
}

TEST_CASE(
    "LIST at a resourceVersion newer than the server's is 504 Too large resource version, "
    "Retry-After 1",
    "[contract][list]") {
  ContractBackend& backend = Backend();
  const std::string ns = NewNamespace(backend, "toolarge");
  const std::string rv = CreateOk(backend, ObjectKind::kPod, ns, "a");
  Client client(backend);
  const std::string future = std::to_string(Rv(rv) + 1000000);
  const std::string path =
      fmt::format("{}?resourceVersion={}", CollectionPath(ObjectKind::kPod, ns), future);
  HttpResult result = GetNow(*client, path);
  CHECK(result.http_status == 504);
  CHECK(result.status.code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(result.retry_after == seconds(1));
  REQUIRE(result.kube_status.has_value());
  CHECK(result.kube_status->reason == "Timeout");
  const std::string& message = result.kube_status->message;
  INFO(message);
  // What the reflector recognises (client-go's isTooLargeResourceVersionError).
  CHECK(StartsWith(message,
                   fmt::format("Timeout: Too large resource version: {}, current: ", future)));
  CHECK(Contains(Message(result.status), message));
}

// ---------------------------------------------------------------------------------------------
// GET and 404.

TEST_CASE("GET returns one object; a missing one is 404 NotFound with the server's Status",
          "[contract][get]") {
  ContractBackend& backend = Backend();
  const std::string ns = NewNamespace(backend, "get");
  const std::string rv = CreateOk(backend, ObjectKind::kPod, ns, "a", {{"app", "a"}});
  Client client(backend);

  HttpResult got = GetNow(*client, CollectionPath(ObjectKind::kPod, ns) + "/a");
  INFO(got.status.ToString());
  REQUIRE(got.status.ok());
  CHECK(got.http_status == 200);
  core::ObjectScanner scanner(core::ScanOptions{});
  absl::StatusOr<core::ObjectRecord> record = scanner.Scan(got.body);
  INFO(record.status().ToString());
  REQUIRE(record.ok());
  CHECK(record->name == "a");
  CHECK(record->namespace_name == ns);
  CHECK(record->resource_version == rv);
  CHECK(!record->uid.empty());
  CHECK(record->labels.entries() == Entries({{"app", "a"}}));
  CHECK(Contains(got.body, "\"kind\":\"Pod\""));

  struct Missing {
    std::string path;
    std::string message;
  };
  const std::vector<Missing> missing = {
      {CollectionPath(ObjectKind::kPod, ns) + "/nope", "pods \"nope\" not found"},
      {CollectionPath(ObjectKind::kConfigMap, ns) + "/nope", "configmaps \"nope\" not found"},
      {"/api/v1/namespaces/contract-no-such-namespace/pods/x", "pods \"x\" not found"},
  };
  for (const Missing& m : missing) {
    INFO(m.path);
    HttpResult result = GetNow(*client, m.path);
    CHECK(result.http_status == 404);
    CHECK(result.status.code() == absl::StatusCode::kNotFound);
    REQUIRE(result.kube_status.has_value());
    CHECK(result.kube_status->code == 404);
    CHECK(result.kube_status->reason == "NotFound");
    CHECK(result.kube_status->message == m.message);
    const std::string message = Message(result.status);
    INFO(message);
    CHECK(Contains(message, m.message));
    CHECK(Contains(message, m.path));
    CHECK(Contains(message, "HTTP 404"));
  }
}

TEST_CASE(
    "a resource the server does not serve is 404: a Status for an unknown resource of a known "
    "group, plain text for an unknown group",
    "[contract][get]") {
  ContractBackend& backend = Backend();
  const std::string ns = NewNamespace(backend, "unserved");
  Client client(backend);

  for (const std::string& path :
       {"/api/v1/namespaces/" + ns + "/widgets", std::string("/apis/apps/v1/widgets")}) {
    INFO(path);
    HttpResult result = GetNow(*client, path);
    CHECK(result.http_status == 404);
    CHECK(result.status.code() == absl::StatusCode::kNotFound);
    REQUIRE(result.kube_status.has_value());
    CHECK(result.kube_status->reason == "NotFound");
    CHECK(result.kube_status->message == "the server could not find the requested resource");
  }

  // A deleted CRD's group is gone from the server's routes: no Status, just Go's text 404. The
  // reflector still sees a 404 (the resource is gone) and the message shows the body.
  const std::string unknown = "/apis/contract.example.com/v1/widgets";
  HttpResult listed = GetNow(*client, unknown);
  CHECK(listed.http_status == 404);
  CHECK(listed.status.code() == absl::StatusCode::kNotFound);
  CHECK_FALSE(listed.kube_status.has_value());
  CHECK(listed.body == "404 page not found\n");
  INFO(Message(listed.status));
  CHECK(Contains(Message(listed.status), "404 page not found"));

  WatchRecorder recorder{kContractWait};
  WatchHandle watch = client->Watch(unknown + "?watch=1", recorder.OnBytes(), recorder.OnEnd());
  std::optional<HttpResult> end = recorder.WaitForEnd();
  REQUIRE(end.has_value());
  CHECK(end->http_status == 404);
  CHECK(end->status.code() == absl::StatusCode::kNotFound);
  CHECK(recorder.events().empty());
}

// ---------------------------------------------------------------------------------------------
// WATCH.

TEST_CASE(
    "WATCH from a list's resourceVersion delivers the namespace's later changes in order, with "
    "increasing resourceVersions",
    "[contract][watch]") {
  ContractBackend& backend = Backend();
  const std::string ns = NewNamespace(backend, "watch");
  const std::string other = NewNamespace(backend, "watch-other");
  const ObjectKind cm = ObjectKind::kConfigMap;
  CreateOk(backend, cm, ns, "a");
  Client client(backend);
  const core::ListPage listed = ListOk(*client, CollectionPath(cm, ns));
  const std::string start = listed.metadata.resource_version;

  WatchRecorder recorder{kContractWait};
  WatchHandle watch = client->Watch(WatchPath(cm, ns, start), recorder.OnBytes(), recorder.OnEnd());
  const std::string b_added = CreateOk(backend, cm, ns, "b");
  const std::string b_labelled = SetLabelOk(backend, cm, ns, "b", "x", "1");
  CreateOk(backend, cm, other, "z");  // Another namespace: not on this watch.
  DeleteOk(backend, cm, ns, "b");
  const std::string a_labelled = SetLabelOk(backend, cm, ns, "a", "y", "2");

  REQUIRE(recorder.WaitForEvents(4));
  INFO(recorder.decode_status().ToString());
  CHECK(recorder.decode_status().ok());
  const std::vector<WatchEvent> events = recorder.events();
  CHECK(Describe(events) ==
        std::vector<std::string>{"ADDED b", "MODIFIED b", "DELETED b", "MODIFIED a"});
  REQUIRE(events.size() == 4);
  CHECK(EventRv(events[0]) == b_added);
  CHECK(EventRv(events[1]) == b_labelled);
  CHECK(events[1].object.labels.entries() == Entries({{"x", "1"}}));
  CHECK(EventRv(events[3]) == a_labelled);
  CHECK(events[3].object.labels.entries() == Entries({{"y", "2"}}));
  std::uint64_t previous = Rv(start);
  for (const WatchEvent& event : events) {
    INFO(core::WatchEventTypeName(event.type) << " " << event.object.name.view());
    CHECK(event.object.namespace_name == ns);
    const std::uint64_t rv = Rv(EventRv(event));
    CHECK(rv > previous);
    previous = rv;
  }

  watch.Cancel();
  std::this_thread::sleep_for(milliseconds(200));
  CHECK(recorder.ends() == 0);  // Cancelled: on_end is not called.
}

TEST_CASE("a watch the server ends after timeoutSeconds ends OK, between events",
          "[contract][watch]") {
  ContractBackend& backend = Backend();
  const std::string ns = NewNamespace(backend, "timeout");
  CreateOk(backend, ObjectKind::kPod, ns, "p1");
  Client admin(backend);
  const std::string pods_path = CollectionPath(ObjectKind::kPod, ns);
  HttpResult list = GetNow(*admin, pods_path);
  REQUIRE(list.status.ok());
  core::ListDecoder list_decoder(core::ScanOptions{});
  absl::StatusOr<core::ListPage> page = list_decoder.Decode(list.body);
  REQUIRE(page.ok());

  WatchRecorder recorder{kContractWait};
  WatchHandle watch = admin->Watch(fmt::format("{}?watch=1&resourceVersion={}&timeoutSeconds=3",
                                               pods_path, page->metadata.resource_version),
                                   recorder.OnBytes(), recorder.OnEnd());
  SetLabelOk(backend, ObjectKind::kPod, ns, "p1", "watched", "yes");

  std::optional<HttpResult> ended = recorder.WaitForEnd(seconds(30));
  REQUIRE(ended.has_value());
  INFO(ended->status.ToString());
  CHECK(ended->status.ok());
  CHECK(ended->http_status == 200);
  CHECK(recorder.decode_status().ok());
  const std::vector<WatchEvent> events = recorder.events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].type == WatchEventType::kModified);
  CHECK(events[0].object.name == "p1");
  CHECK(events[0].object.labels.size() == 1);
  CHECK(recorder.EndsBetweenEvents());
  CHECK(recorder.ends() == 1);
}

TEST_CASE(
    "with allowWatchBookmarks a watch gets a bookmark at its latest resourceVersion before "
    "timeoutSeconds ends it; without, none",
    "[contract][watch][bookmark]") {
  ContractBackend& backend = Backend();
  const std::string ns = NewNamespace(backend, "bookmark");
  const ObjectKind cm = ObjectKind::kConfigMap;
  CreateOk(backend, cm, ns, "a");
  Client client(backend);
  const std::string start = ListOk(*client, CollectionPath(cm, ns)).metadata.resource_version;

  // A real apiserver sends bookmarks only to watches with a deadline, from 2 s before it.
  WatchRecorder with{kContractWait};
  WatchHandle with_watch =
      client->Watch(WatchPath(cm, ns, start, "&allowWatchBookmarks=true&timeoutSeconds=5"),
                    with.OnBytes(), with.OnEnd());
  WatchRecorder without{kContractWait};
  WatchHandle without_watch = client->Watch(WatchPath(cm, ns, start, "&timeoutSeconds=5"),
                                            without.OnBytes(), without.OnEnd());
  const std::string labelled = SetLabelOk(backend, cm, ns, "a", "x", "1");

  for (const WatchRecorder* recorder : {&with, &without}) {
    std::optional<HttpResult> end = recorder->WaitForEnd(seconds(30));
    REQUIRE(end.has_value());
    INFO(end->status.ToString());
    CHECK(end->status.ok());
    CHECK(recorder->decode_status().ok());
  }
  const std::vector<WatchEvent> events = with.events();
  INFO(fmt::format("{}", fmt::join(Describe(events), ", ")));
  REQUIRE(events.size() >= 2);
  CHECK(Describe({events[0]}) == std::vector<std::string>{"MODIFIED a"});
  CHECK(EventRv(events[0]) == labelled);
  for (std::size_t i = 1; i < events.size(); ++i) {
    CHECK(events[i].type == WatchEventType::kBookmark);
    CHECK_FALSE(events[i].initial_events_end);
    CHECK(Rv(events[i].resource_version) >= Rv(labelled));
  }
  CHECK(Describe(without.events()) == std::vector<std::string>{"MODIFIED a"});
}

TEST_CASE(
    "label and field selectors filter LIST and WATCH; an object entering or leaving the "
    "selection is ADDED or DELETED",
    "[contract][watch][list][selectors]") {
  ContractBackend& backend = Backend();
  const std::string ns = NewNamespace(backend, "selectors");
  const ObjectKind cm = ObjectKind::kConfigMap;
  CreateOk(backend, cm, ns, "a", {{"tier", "web"}});
  CreateOk(backend, cm, ns, "b", {{"tier", "db"}});
  CreateOk(backend, cm, ns, "c", {{"tier", "web"}});
  Client client(backend);
  const std::string path = CollectionPath(cm, ns);

  struct Query {
    std::string query;
    std::vector<std::string> names;
  };
  const std::vector<Query> queries = {
      {"labelSelector=tier%3Dweb", {"a", "c"}},
      {"labelSelector=tier%21%3Dweb", {"b"}},
      {"labelSelector=tier+in+%28db%2Capi%29", {"b"}},
      {"labelSelector=tier", {"a", "b", "c"}},
      {"labelSelector=%21tier", {}},
      {"fieldSelector=metadata.name%3Db", {"b"}},
      {"fieldSelector=metadata.name%21%3Db", {"a", "c"}},
      {"labelSelector=tier%3Dweb&fieldSelector=metadata.name%3Da", {"a"}},
  };
  std::string start;
  for (const Query& q : queries) {
    INFO(q.query);
    core::ListPage page = ListOk(*client, path + "?" + q.query);
    CHECK(Names(page.items) == q.names);
    if (start.empty()) start = page.metadata.resource_version;
  }

  WatchRecorder by_label{kContractWait};
  WatchHandle label_watch = client->Watch(WatchPath(cm, ns, start, "&labelSelector=tier%3Dweb"),
                                          by_label.OnBytes(), by_label.OnEnd());
  WatchRecorder by_field{kContractWait};
  WatchHandle field_watch =
      client->Watch(WatchPath(cm, ns, start, "&fieldSelector=metadata.name%3Db"),
                    by_field.OnBytes(), by_field.OnEnd());
  const std::string b_in = SetLabelOk(backend, cm, ns, "b", "tier", "web");
  const std::string a_out = SetLabelOk(backend, cm, ns, "a", "tier", "db");
  CreateOk(backend, cm, ns, "d", {{"tier", "db"}});
  CreateOk(backend, cm, ns, "e", {{"tier", "web"}});
  SetLabelOk(backend, cm, ns, "b", "marker", "end");  // The last change: on both watches.

  REQUIRE(by_label.WaitForEvents(4));
  REQUIRE(by_field.WaitForEvents(2));
  const std::vector<WatchEvent> labelled = by_label.events();
  CHECK(Describe(labelled) ==
        std::vector<std::string>{"ADDED b", "DELETED a", "ADDED e", "MODIFIED b"});
  REQUIRE(labelled.size() == 4);
  CHECK(EventRv(labelled[0]) == b_in);
  // The object as it last matched, at the resourceVersion of the change that made it leave.
  CHECK(labelled[1].object.labels.entries() == Entries({{"tier", "web"}}));
  CHECK(EventRv(labelled[1]) == a_out);
  CHECK(Describe(by_field.events()) == std::vector<std::string>{"MODIFIED b", "MODIFIED b"});

  // Selectors the server cannot parse or does not support are 400 BadRequest.
  for (const char* query : {"labelSelector=tier+web", "fieldSelector=spec.bogus%3Dx"}) {
    INFO(query);
    HttpResult result = GetNow(*client, path + "?" + query);
    CHECK(result.http_status == 400);
    CHECK(result.status.code() == absl::StatusCode::kInvalidArgument);
    REQUIRE(result.kube_status.has_value());
    CHECK(result.kube_status->reason == "BadRequest");
  }
  // The wording for a field the server does not support depends on the kind: Pod (like Event,
  // Namespace, Node, Secret) has field labels of its own, ConfigMap only the metadata ones.
  const std::vector<std::pair<std::string, std::string>> unsupported = {
      {CollectionPath(ObjectKind::kPod, ns), "field label not supported: spec.bogus"},
      {path,
       "\"spec.bogus\" is not a known field selector: only \"metadata.name\", "
       "\"metadata.namespace\""},
  };
  for (const auto& [collection, message] : unsupported) {
    INFO(collection);
    HttpResult result = GetNow(*client, collection + "?fieldSelector=spec.bogus%3Dx");
    CHECK(result.http_status == 400);
    REQUIRE(result.kube_status.has_value());
    CHECK(result.kube_status->message == message);
  }
  HttpResult unparsable = GetNow(*client, path + "?labelSelector=tier+web");
  REQUIRE(unparsable.kube_status.has_value());
  CHECK(StartsWith(unparsable.kube_status->message, "unable to parse requirement: "));
}

TEST_CASE(
    "a WatchList request to a server without WatchList (1.19 to 1.26) is 422 Invalid on "
    "resourceVersionMatch",
    "[contract][watch]") {
  ContractBackend& backend = Backend();
  const std::string ns = NewNamespace(backend, "watchlist");
  const std::string rv = CreateOk(backend, ObjectKind::kPod, ns, "a");
  Client client(backend);
  const std::string prefix = "ListOptions.meta.k8s.io \"\" is invalid: ";
  const std::string forbidden =
      "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch";
  struct Case {
    std::string path;
    std::string message;
  };
  const std::string pods = CollectionPath(ObjectKind::kPod, ns);
  // What the reflector sends: at "" the first time, at its last resourceVersion later.
  const std::vector<Case> cases = {
      {pods + "?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
              "&allowWatchBookmarks=true&timeoutSeconds=300",
       prefix + "[" + forbidden +
           ", resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless "
           "resourceVersion is provided]"},
      {pods +
           "?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
           "&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=" +
           rv,
       prefix + forbidden},
  };
  for (const Case& c : cases) {
    INFO(c.path);
    WatchRecorder recorder{kContractWait};
    WatchHandle watch = client->Watch(c.path, recorder.OnBytes(), recorder.OnEnd());
    std::optional<HttpResult> end = recorder.WaitForEnd();
    REQUIRE(end.has_value());
    CHECK(end->http_status == 422);
    CHECK(end->status.code() == absl::StatusCode::kInvalidArgument);
    REQUIRE(end->kube_status.has_value());
    CHECK(end->kube_status->reason == "Invalid");
    CHECK(end->kube_status->message == c.message);
    CHECK(recorder.events().empty());
  }
}

// ---------------------------------------------------------------------------------------------
// Authentication.

TEST_CASE(
    "an unknown token is 401 naming our identity; the source is told and the rotated token "
    "works",
    "[contract][auth]") {
  ContractBackend& backend = Backend();
  const std::string ns = NewNamespace(backend, "auth");
  const std::string pods_path = CollectionPath(ObjectKind::kPod, ns);
  auto source = std::make_shared<RotatingTokenSource>(
      std::vector<std::string>{"not-a-valid-token", backend.valid_token()});
  Client client(backend, source, "user \"stale\"");
  HttpResult rejected = GetNow(*client, pods_path);
  CHECK(rejected.http_status == 401);
  CHECK(rejected.status.code() == absl::StatusCode::kUnauthenticated);
  CHECK(Contains(Message(rejected.status), "user \"stale\""));
  CHECK(Contains(Message(rejected.status), pods_path));
  CHECK(Contains(Message(rejected.status), "HTTP 401"));
  REQUIRE(rejected.kube_status.has_value());
  CHECK(rejected.kube_status->reason == "Unauthorized");
  CHECK(rejected.kube_status->message == "Unauthorized");
  CHECK(source->invalidations() == 1);
  CHECK(source->rejected_tokens() == std::vector<std::string>{"not-a-valid-token"});
  // The rotated token works.
  HttpResult accepted = GetNow(*client, pods_path);
  INFO(accepted.status.ToString());
  CHECK(accepted.status.ok());
  CHECK(source->invalidations() == 1);

  // A watch is refused the same way, before any byte of a stream.
  auto stale = std::make_shared<RotatingTokenSource>(
      std::vector<std::string>{"not-a-valid-token", backend.valid_token()});
  Client watcher(backend, stale, "user \"stale\"");
  WatchRecorder recorder{kContractWait};
  WatchHandle watch = watcher->Watch(pods_path + "?watch=1", recorder.OnBytes(), recorder.OnEnd());
  std::optional<HttpResult> end = recorder.WaitForEnd();
  REQUIRE(end.has_value());
  CHECK(end->http_status == 401);
  CHECK(end->status.code() == absl::StatusCode::kUnauthenticated);
  CHECK(Contains(Message(end->status), "user \"stale\""));
  CHECK(recorder.events().empty());
  CHECK(stale->invalidations() == 1);
}

// ---------------------------------------------------------------------------------------------
// Discovery.

absl::StatusOr<core::ResolvedResource> Resolve(daemon::Discovery& discovery,
                                               const std::string& name) {
  Awaited<absl::StatusOr<core::ResolvedResource>> result;
  discovery.Resolve(name, result.Callback());
  std::optional<absl::StatusOr<core::ResolvedResource>> got = result.Wait(kContractWait);
  REQUIRE(got.has_value());
  return *got;
}

TEST_CASE("discovery documents parse, and names resolve to the same resources",
          "[contract][discovery]") {
  ContractBackend& backend = Backend();
  Client client(backend);

  HttpResult api = GetNow(*client, "/api");
  REQUIRE(api.status.ok());
  absl::StatusOr<std::vector<std::string>> versions = core::ParseApiVersions(api.body);
  INFO(versions.status().ToString());
  REQUIRE(versions.ok());
  CHECK(*versions == std::vector<std::string>{"v1"});

  HttpResult apis = GetNow(*client, "/apis");
  REQUIRE(apis.status.ok());
  absl::StatusOr<std::vector<core::ApiGroupInfo>> groups = core::ParseApiGroupList(apis.body);
  INFO(groups.status().ToString());
  REQUIRE(groups.ok());
  auto apps = std::find_if(groups->begin(), groups->end(),
                           [](const core::ApiGroupInfo& g) { return g.name == "apps"; });
  REQUIRE(apps != groups->end());
  CHECK(apps->versions == std::vector<std::string>{"v1"});
  CHECK(apps->preferred_version == "v1");

  HttpResult core_v1 = GetNow(*client, "/api/v1");
  REQUIRE(core_v1.status.ok());
  absl::StatusOr<std::vector<core::ApiResourceInfo>> resources =
      core::ParseApiResourceList(core_v1.body, "", "v1");
  INFO(resources.status().ToString());
  REQUIRE(resources.ok());
  auto find = [&](const std::string& name) {
    auto it = std::find_if(resources->begin(), resources->end(),
                           [&](const core::ApiResourceInfo& r) { return r.name == name; });
    REQUIRE(it != resources->end());
    return *it;
  };
  const core::ApiResourceInfo pods = find("pods");
  CHECK(pods.kind == "Pod");
  CHECK(pods.namespaced);
  CHECK(pods.short_names == std::vector<std::string>{"po"});
  for (const char* verb : {"get", "list", "watch"}) {
    CHECK(std::count(pods.verbs.begin(), pods.verbs.end(), verb) == 1);
  }
  CHECK(find("configmaps").short_names == std::vector<std::string>{"cm"});
  CHECK_FALSE(find("namespaces").namespaced);

  ManualClock clock;
  daemon::DiscoveryOptions options;
  options.min_refresh_interval = std::chrono::seconds(30);
  daemon::Discovery discovery(*client, clock, options);
  const std::vector<std::pair<std::string, std::string>> table = {
      {"pods", "/api/v1/pods"},
      {"po", "/api/v1/pods"},
      {"pod", "/api/v1/pods"},
      {"v1/pods", "/api/v1/pods"},
      {"events", "/api/v1/events"},
      {"deployments.apps", "/apis/apps/v1/deployments"},
      {"deploy", "/apis/apps/v1/deployments"},
      {"apps/v1/deployments", "/apis/apps/v1/deployments"},
      {"namespaces", "/api/v1/namespaces"},
      {"crd", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"},
  };
  for (const auto& [name, path] : table) {
    INFO(name);
    absl::StatusOr<core::ResolvedResource> resolved = Resolve(discovery, name);
    INFO(resolved.status().ToString());
    REQUIRE(resolved.ok());
    CHECK(resolved->CollectionPath() == path);
  }
  absl::StatusOr<core::ResolvedResource> po = Resolve(discovery, "po");
  REQUIRE(po.ok());
  CHECK(po->kind == "Pod");
  CHECK(po->namespaced);
  CHECK(Resolve(discovery, "widgets").status().code() == absl::StatusCode::kNotFound);
}

// ---------------------------------------------------------------------------------------------
// Reviews: what daemon/security asks the apiserver.

constexpr char kTokenReviews[] = "/apis/authentication.k8s.io/v1/tokenreviews";
constexpr char kAccessReviews[] = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

HttpResult PostNow(ApiServerClient& client, const std::string& path, const std::string& body) {
  Awaited<HttpResult> result;
  client.Post(path, body, result.Callback());
  std::optional<HttpResult> got = result.Wait(kContractWait);
  REQUIRE(got.has_value());
  return *std::move(got);
}

core::TokenReviewResult TokenReviewOk(ApiServerClient& client, const std::string& token,
                                      const std::vector<std::string>& audiences) {
  HttpResult result = PostNow(client, kTokenReviews, core::BuildTokenReview(token, audiences));
  INFO(result.status.ToString());
  REQUIRE(result.status.ok());
  CHECK(result.http_status == 201);
  absl::StatusOr<core::TokenReviewResult> review = core::ParseTokenReview(result.body);
  INFO(review.status().ToString());
  REQUIRE(review.ok());
  return *std::move(review);
}

core::AccessReviewResult AccessReviewOk(ApiServerClient& client, const core::UserInfo& user,
                                        const core::ResourceAttributes& attributes) {
  HttpResult result =
      PostNow(client, kAccessReviews, core::BuildSubjectAccessReview(user, attributes));
  INFO(result.status.ToString());
  REQUIRE(result.status.ok());
  CHECK(result.http_status == 201);
  absl::StatusOr<core::AccessReviewResult> review = core::ParseSubjectAccessReview(result.body);
  INFO(review.status().ToString());
  REQUIRE(review.ok());
  return *std::move(review);
}

TEST_CASE("a TokenReview authenticates the server's own tokens, for its own audience only",
          "[contract][review]") {
  ContractBackend& backend = Backend();
  Client client(backend);

  const core::TokenReviewResult alice = TokenReviewOk(*client, backend.reader_token(), {});
  CHECK(alice.authenticated);
  CHECK(alice.user.name == "alice");
  CHECK(alice.user.uid == "uid-alice");
  CHECK(alice.user.groups == std::vector<std::string>{"system:authenticated"});
  CHECK(alice.user.extra.empty());
  CHECK(alice.audiences == std::vector<std::string>{"https://kubernetes.default.svc"});
  CHECK(alice.error.empty());

  const core::TokenReviewResult unknown = TokenReviewOk(*client, "not-a-token", {});
  CHECK_FALSE(unknown.authenticated);
  CHECK(unknown.user == core::UserInfo{});
  CHECK(unknown.error == "invalid bearer token");

  // A static token has no audience of its own: asked for another, it is not valid.
  const core::TokenReviewResult other =
      TokenReviewOk(*client, backend.reader_token(), {"informerd"});
  CHECK_FALSE(other.authenticated);
  CHECK(other.error == "invalid bearer token");
}

TEST_CASE("a SubjectAccessReview gives RBAC's decisions: a reader's grant, and nothing for bob",
          "[contract][review]") {
  ContractBackend& backend = Backend();
  Client client(backend);
  core::UserInfo alice;
  alice.name = "alice";
  alice.uid = "uid-alice";
  alice.groups = {core::kAuthenticatedGroup};
  core::UserInfo bob = alice;
  bob.name = "bob";
  bob.uid = "uid-bob";

  const core::AccessReviewResult list_pods =
      AccessReviewOk(*client, alice, {"list", "", "pods", "team-b", ""});
  CHECK(list_pods.allowed);
  CHECK_FALSE(list_pods.denied);
  INFO(list_pods.reason);
  CHECK(StartsWith(list_pods.reason,
                   "RBAC: allowed by ClusterRoleBinding "
                   "\"informerd-test-reader-alice\""));
  CHECK(AccessReviewOk(*client, alice, {"watch", "", "configmaps", "", ""}).allowed);
  CHECK(AccessReviewOk(*client, alice, {"get", "", "pods", "team-a", "web-1"}).allowed);

  // RBAC denies by saying nothing: no reason, no explicit denial.
  const core::AccessReviewResult secrets =
      AccessReviewOk(*client, alice, {"list", "", "secrets", "", ""});
  CHECK_FALSE(secrets.allowed);
  CHECK_FALSE(secrets.denied);
  CHECK(secrets.reason.empty());
  CHECK(secrets.evaluation_error.empty());
  CHECK_FALSE(AccessReviewOk(*client, bob, {"list", "", "pods", "team-b", ""}).allowed);
  CHECK_FALSE(AccessReviewOk(*client, core::AnonymousUser(), {"list", "", "pods", "", ""}).allowed);
}

TEST_CASE("a SubjectAccessReview for nobody (no user, no group) is 422 Invalid",
          "[contract][review]") {
  ContractBackend& backend = Backend();
  Client client(backend);
  HttpResult result =
      PostNow(*client, kAccessReviews,
              core::BuildSubjectAccessReview(core::UserInfo{}, {"list", "", "pods", "", ""}));
  CHECK(result.http_status == 422);
  CHECK(result.status.code() == absl::StatusCode::kInvalidArgument);
  CHECK(Contains(Message(result.status), "at least one of user or group must be specified"));
}

// ---------------------------------------------------------------------------------------------
// Last: on a real cluster, forgetting the watch history restarts the apiserver.

TEST_CASE(
    "a watch from a resourceVersion the server no longer has gets 410 Expired as an ERROR event "
    "and ends; from the current one it works",
    "[contract][watch][compaction]") {
  ContractBackend& backend = Backend();
  const std::string ns = NewNamespace(backend, "expired");
  const ObjectKind cm = ObjectKind::kConfigMap;
  const std::string old_rv = CreateOk(backend, cm, ns, "a");
  SetLabelOk(backend, cm, ns, "a", "step", "1");
  absl::Status forgot = backend.ForgetWatchHistory();
  INFO(forgot.ToString());
  REQUIRE(forgot.ok());

  Client client(backend);
  WatchRecorder expired{kContractWait};
  WatchHandle expired_watch =
      client->Watch(WatchPath(cm, ns, old_rv), expired.OnBytes(), expired.OnEnd());
  std::optional<HttpResult> end = expired.WaitForEnd();
  REQUIRE(end.has_value());
  INFO(end->status.ToString());
  // The answer is a 200 stream; the expiry is its only event, and then the stream ends.
  CHECK(end->status.ok());
  CHECK(end->http_status == 200);
  CHECK(expired.decode_status().ok());
  const std::vector<WatchEvent> events = expired.events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].type == WatchEventType::kError);
  CHECK(events[0].status.code == 410);
  CHECK(events[0].status.reason == "Expired");
  INFO(events[0].status.message);
  CHECK(
      StartsWith(events[0].status.message, fmt::format("too old resource version: {} (", old_rv)));

  // The recovery: relist and watch from the list's resourceVersion.
  const core::ListPage listed = ListOk(*client, CollectionPath(cm, ns));
  CHECK(Names(listed.items) == std::vector<std::string>{"a"});
  WatchRecorder current{kContractWait};
  WatchHandle current_watch = client->Watch(WatchPath(cm, ns, listed.metadata.resource_version),
                                            current.OnBytes(), current.OnEnd());
  const std::string step2 = SetLabelOk(backend, cm, ns, "a", "step", "2");
  REQUIRE(current.WaitForEvents(1));
  const std::vector<WatchEvent> live = current.events();
  CHECK(Describe(live) == std::vector<std::string>{"MODIFIED a"});
  CHECK(EventRv(live.at(0)) == step2);
}

}  // namespace
}  // namespace informerd::test
