// End-to-end: the real informerctl binary against an in-process fake Informer service.
//
// Each case starts a FakeInformer (test/common/fake_informer.h) on 127.0.0.1:0, runs
// cmd/informerctl/informerctl as a separate process, and checks its exact stdout, stderr and exit
// status, and the requests the fake received. Objects' creation times are set relative to now, a
// whole number of hours, minutes or days ago, so the AGE column is exact however slow the run.
#include <signal.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <ctime>
#include <string>
#include <vector>

#include "fmt/format.h"
#include "test/common/fake_informer.h"
#include "test/common/run_subprocess.h"
#include "test/common/subprocess.h"

namespace informerd::test {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using Clock = std::chrono::system_clock;

const char kInformerctl[] = "cmd/informerctl/informerctl";

SubprocessResult Run(std::vector<std::string> args,
                     std::vector<std::pair<std::string, std::string>> env = {}) {
  args.insert(args.begin(), kInformerctl);
  SubprocessOptions options;
  options.env = std::move(env);
  // Whatever the test's own environment says, the address comes from the case.
  const bool address_set =
      std::any_of(options.env.begin(), options.env.end(),
                  [](const auto& entry) { return entry.first == "INFORMERD_ADDRESS"; });
  if (!address_set) options.env.emplace_back("INFORMERD_ADDRESS", "");
  options.timeout = seconds(30);
  auto result = RunSubprocess(args, options);
  INFO(CommandLine(args));
  REQUIRE(result.ok());
  UNSCOPED_INFO("stdout:\n" << result->out << "stderr:\n" << result->err);
  return *result;
}

std::string Rfc3339(Clock::time_point time) {
  const std::time_t seconds_since_epoch = Clock::to_time_t(time);
  std::tm utc;
  gmtime_r(&seconds_since_epoch, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

// A pod's JSON as the apiserver sends it (abridged), created `age` ago.
std::string Pod(const std::string& namespace_name, const std::string& name, Clock::duration age) {
  return fmt::format(
      R"({{"kind":"Pod","apiVersion":"v1","metadata":{{"name":"{}","namespace":"{}",)"
      R"("resourceVersion":"7","creationTimestamp":"{}"}},"spec":{{"nodeName":"n1"}}}})",
      name, namespace_name, Rfc3339(Clock::now() - age));
}

v1::Event Event(v1::Event::Type type, const std::string& resource_version,
                const std::string& object = "", const std::string& namespace_name = "",
                const std::string& name = "") {
  v1::Event event;
  event.set_type(type);
  event.set_resource_version(resource_version);
  event.set_object(object);
  event.set_namespace_(namespace_name);
  event.set_name(name);
  return event;
}

v1::ListResponse ThreePods() {
  v1::ListResponse response;
  response.add_items(Pod("default", "web-1", hours(3)));
  response.add_items(Pod("default", "web-2", minutes(20)));
  response.add_items(Pod("kube-system", "coredns", hours(72)));
  response.set_resource_version("1234");
  return response;
}

v1::ListResourcesResponse ThreeResources() {
  v1::ListResourcesResponse response;
  v1::ResourceInfo* pods = response.add_resources();
  pods->set_version("v1");
  pods->set_resource("pods");
  pods->set_kind("Pod");
  pods->set_namespaced(true);
  pods->set_synced(true);
  pods->set_resource_version("1234");
  pods->set_object_count(3);
  pods->set_subscriber_count(2);
  v1::ResourceInfo* deployments = response.add_resources();
  deployments->set_group("apps");
  deployments->set_version("v1");
  deployments->set_resource("deployments");
  deployments->set_kind("Deployment");
  deployments->set_namespaced(true);
  deployments->set_namespace_("prod");
  deployments->set_label_selector("tier=web");
  deployments->set_condition("list failed: 403 Forbidden");
  v1::ResourceInfo* nodes = response.add_resources();
  nodes->set_version("v1");
  nodes->set_resource("nodes");
  nodes->set_kind("Node");
  nodes->set_synced(true);
  nodes->set_resource_version("1200");
  nodes->set_object_count(5);
  return response;
}

// The events of a watch that starts from scratch: snapshot, SYNCED, live changes.
std::vector<v1::Event> SnapshotThenChanges() {
  return {
      Event(v1::Event::ADDED, "10", Pod("default", "web-1", hours(3)), "default", "web-1"),
      Event(v1::Event::ADDED, "11", Pod("default", "web-2", minutes(20)), "default", "web-2"),
      Event(v1::Event::SYNCED, "12"),
      Event(v1::Event::MODIFIED, "13", Pod("default", "web-1", hours(3)), "default", "web-1"),
      Event(v1::Event::DELETED, "14", Pod("default", "web-2", minutes(20)), "default", "web-2"),
  };
}

TEST_CASE("resources prints a table of every informer") {
  FakeInformer fake;
  fake.service().SetResources(ThreeResources());
  const SubprocessResult result = Run({"--address", fake.address(), "resources"});
  CHECK(result.exit_code == 0);
  CHECK(result.err.empty());
  CHECK(result.out ==
        "RESOURCE           NAMESPACED   SCOPE                            SYNCED   RV       "
        "OBJECTS   SUBSCRIBERS   CONDITION\n"
        "pods               true         <all>                            true     1234     "
        "3         2             <none>\n"
        "deployments.apps   true         namespace=prod;labels=tier=web   false    <none>   "
        "0         0             list failed: 403 Forbidden\n"
        "nodes              false        <all>                            true     1200     "
        "5         0             <none>\n");
}

TEST_CASE("resources -o name and -o json") {
  FakeInformer fake;
  fake.service().SetResources(ThreeResources());
  const SubprocessResult names = Run({"--address", fake.address(), "resources", "-o", "name"});
  CHECK(names.exit_code == 0);
  CHECK(names.out == "pods\ndeployments.apps\nnodes\n");

  v1::ListResourcesResponse one;
  *one.add_resources() = ThreeResources().resources(1);
  fake.service().SetResources(one);
  const SubprocessResult json = Run({"resources", "--address", fake.address(), "-o", "json"});
  CHECK(json.exit_code == 0);
  CHECK(json.out ==
        R"({
    "resources": [
        {
            "group": "apps",
            "version": "v1",
            "resource": "deployments",
            "kind": "Deployment",
            "namespaced": true,
            "namespace": "prod",
            "labelSelector": "tier=web",
            "fieldSelector": "",
            "synced": false,
            "resourceVersion": "",
            "objectCount": 0,
            "subscriberCount": 0,
            "condition": "list failed: 403 Forbidden"
        }
    ]
}
)");
}

TEST_CASE("list across all namespaces shows a NAMESPACE column and sends no namespace") {
  FakeInformer fake;
  fake.service().SetList(ThreePods());
  // Without -n, and with -A: the same request.
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"--address", fake.address(), "list", "pods"},
                                             {"list", "pods", "-A", "--address", fake.address()}}) {
    const SubprocessResult result = Run(args);
    CHECK(result.exit_code == 0);
    CHECK(result.err.empty());
    CHECK(result.out ==
          "NAMESPACE     NAME      AGE\n"
          "default       web-1     3h\n"
          "default       web-2     20m\n"
          "kube-system   coredns   3d\n");
  }
  const auto requests = fake.service().list_requests();
  REQUIRE(requests.size() == 2);
  for (const v1::ListRequest& request : requests) {
    CHECK(request.resource() == "pods");
    CHECK(request.namespace_().empty());
    CHECK(request.label_selector().empty());
    CHECK(request.field_selector().empty());
    CHECK(request.min_resource_version().empty());
  }
}

TEST_CASE("list passes namespace and selectors through and drops the NAMESPACE column") {
  FakeInformer fake;
  v1::ListResponse response;
  response.add_items(Pod("default", "web-1", minutes(5) + seconds(30)));
  response.add_items(R"({"metadata":{"name":"no-timestamp","namespace":"default"}})");
  fake.service().SetList(response);
  const SubprocessResult result =
      Run({"--address", fake.address(), "list", "deployments.apps", "-n", "default", "-l",
           "app in (web,api),tier!=db", "--field-selector", "spec.nodeName=n1",
           "--min-resource-version", "42"});
  CHECK(result.exit_code == 0);
  // 5m30s is exact only within the second it was made; the prefix is not.
  REQUIRE(result.out.rfind("NAME           AGE\nweb-1          5m3", 0) == 0);
  CHECK(result.out.find("\nno-timestamp   <unknown>\n") != std::string::npos);
  const auto requests = fake.service().list_requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].resource() == "deployments.apps");
  CHECK(requests[0].namespace_() == "default");
  CHECK(requests[0].label_selector() == "app in (web,api),tier!=db");
  CHECK(requests[0].field_selector() == "spec.nodeName=n1");
  CHECK(requests[0].min_resource_version() == "42");
}

v1::ListResponse Page(std::vector<std::string> items, const std::string& token) {
  v1::ListResponse page;
  for (std::string& item : items) page.add_items(std::move(item));
  page.set_resource_version("77");
  page.set_continue_(token);
  return page;
}

TEST_CASE(
    "list reads a paged list to its end: limit 500, continue, min_resource_version only on "
    "the first page") {
  FakeInformer fake;
  fake.service().QueueList({{grpc::Status::OK, Page({Pod("a", "p1", hours(1))}, "t1")},
                            {grpc::Status::OK, Page({Pod("a", "p2", hours(2))}, "t2")},
                            {grpc::Status::OK, Page({Pod("b", "p3", hours(3))}, "")}});
  const SubprocessResult result =
      Run({"--address", fake.address(), "list", "pods", "--min-resource-version", "42"});
  CHECK(result.exit_code == 0);
  CHECK(result.err.empty());
  CHECK(result.out ==
        "NAMESPACE   NAME   AGE\n"
        "a           p1     60m\n"
        "a           p2     120m\n"
        "b           p3     3h\n");
  const auto requests = fake.service().list_requests();
  REQUIRE(requests.size() == 3);
  for (const v1::ListRequest& request : requests) {
    CHECK(request.resource() == "pods");
    CHECK(request.limit() == 500);
  }
  CHECK(requests[0].continue_().empty());
  CHECK(requests[0].min_resource_version() == "42");
  CHECK(requests[1].continue_() == "t1");
  CHECK(requests[1].min_resource_version().empty());
  CHECK(requests[2].continue_() == "t2");
}

TEST_CASE("list --chunk-size sets each page's limit; 0 asks for one answer") {
  FakeInformer fake;
  fake.service().SetList(ThreePods());
  CHECK(Run({"--address", fake.address(), "list", "pods", "--chunk-size", "2"}).exit_code == 0);
  CHECK(Run({"--address", fake.address(), "list", "pods", "--chunk-size", "0"}).exit_code == 0);
  const auto requests = fake.service().list_requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].limit() == 2);
  CHECK(requests[1].limit() == 0);
}

TEST_CASE("a list that expires while paging is read again from the start, twice at most") {
  const grpc::Status expired(grpc::StatusCode::OUT_OF_RANGE,
                             "continue: the list's state at resource version 77 is no longer "
                             "available (...); re-list from the start, without continue");
  FakeInformer fake;
  fake.service().QueueList({{grpc::Status::OK, Page({Pod("a", "old", hours(1))}, "t1")},
                            {expired, v1::ListResponse()},
                            {grpc::Status::OK, Page({Pod("a", "p1", hours(1))}, "t2")},
                            {grpc::Status::OK, Page({Pod("a", "p2", hours(2))}, "")}});
  const SubprocessResult result = Run({"--address", fake.address(), "list", "pods", "-o", "name"});
  CHECK(result.exit_code == 0);
  CHECK(result.out == "pods/p1\npods/p2\n");
  CHECK(result.err == "informerctl: the list expired while paging (" + expired.error_message() +
                          "); listing again from the start\n");
  const auto requests = fake.service().list_requests();
  REQUIRE(requests.size() == 4);
  CHECK(requests[2].continue_().empty());
  CHECK(requests[3].continue_() == "t2");

  // Expiring every time: the third expiry is the answer.
  FakeInformer unlucky;
  std::vector<std::pair<grpc::Status, v1::ListResponse>> answers;
  for (int i = 0; i < 3; ++i) {
    answers.push_back({grpc::Status::OK, Page({Pod("a", "p1", hours(1))}, "t")});
    answers.push_back({expired, v1::ListResponse()});
  }
  unlucky.service().QueueList(answers);
  const SubprocessResult failed = Run({"--address", unlucky.address(), "list", "pods"});
  CHECK(failed.exit_code == 1);
  CHECK(failed.out.empty());
  CHECK(failed.err.find("informerctl: OUT_OF_RANGE: continue: the list's state at resource "
                        "version 77 is no longer available") != std::string::npos);
  CHECK(unlucky.service().list_requests().size() == 6);
  // A first page is not retried: OUT_OF_RANGE there is not an expired list.
  FakeInformer first;
  first.service().FailWith(expired);
  CHECK(Run({"--address", first.address(), "list", "pods"}).exit_code == 1);
  CHECK(first.service().list_requests().size() == 1);
}

TEST_CASE("list of a cluster-scoped resource has no NAMESPACE column") {
  FakeInformer fake;
  v1::ListResponse response;
  response.add_items(fmt::format(R"({{"metadata":{{"name":"n1","creationTimestamp":"{}"}}}})",
                                 Rfc3339(Clock::now() - hours(50))));
  fake.service().SetList(response);
  const SubprocessResult result = Run({"--address", fake.address(), "list", "nodes"});
  CHECK(result.exit_code == 0);
  CHECK(result.out == "NAME   AGE\nn1     2d2h\n");
}

TEST_CASE("list -o json prints a List object with the objects' numbers verbatim") {
  FakeInformer fake;
  v1::ListResponse response;
  response.add_items(
      R"({"metadata":{"name":"a","namespace":"x"},"spec":{"replicas":3,"ratio":1.50,)"
      R"("big":18446744073709551615,"empty":{},"list":[],"text":"caf\u00e9 \"q\""}})");
  response.add_items(R"({"metadata":{"name":"b","namespace":"x"}})");
  response.set_resource_version("99");
  fake.service().SetList(response);
  const SubprocessResult result = Run({"--address", fake.address(), "list", "pods", "-o", "json"});
  CHECK(result.exit_code == 0);
  CHECK(result.out == R"({
    "apiVersion": "v1",
    "items": [
        {
            "metadata": {
                "name": "a",
                "namespace": "x"
            },
            "spec": {
                "replicas": 3,
                "ratio": 1.50,
                "big": 18446744073709551615,
                "empty": {},
                "list": [],
                "text": "café \"q\""
            }
        },
        {
            "metadata": {
                "name": "b",
                "namespace": "x"
            }
        }
    ],
    "kind": "List",
    "metadata": {
        "resourceVersion": "99"
    }
}
)");
}

TEST_CASE("list -o name, and an empty list") {
  FakeInformer fake;
  fake.service().SetList(ThreePods());
  const SubprocessResult names = Run({"--address", fake.address(), "list", "po", "-o", "name"});
  CHECK(names.exit_code == 0);
  CHECK(names.out == "po/web-1\npo/web-2\npo/coredns\n");

  v1::ListResponse empty;
  empty.set_resource_version("5");
  fake.service().SetList(empty);
  const SubprocessResult none = Run({"--address", fake.address(), "list", "pods", "-n", "dev"});
  CHECK(none.exit_code == 0);
  CHECK(none.out.empty());
  CHECK(none.err == "No resources found in dev namespace.\n");
  const SubprocessResult json = Run({"--address", fake.address(), "list", "pods", "-o", "json"});
  CHECK(json.out ==
        "{\n    \"apiVersion\": \"v1\",\n    \"items\": [],\n    \"kind\": \"List\",\n"
        "    \"metadata\": {\n        \"resourceVersion\": \"5\"\n    }\n}\n");
}

TEST_CASE("get prints one object as a table, JSON or name") {
  FakeInformer fake;
  fake.service().AddObject("default", "web-1", Pod("default", "web-1", hours(30)), "50");
  fake.service().AddObject("", "n1", R"({"metadata":{"name":"n1"},"status":{"cpu":0.5}})", "50");

  const SubprocessResult table =
      Run({"--address", fake.address(), "get", "pods", "web-1", "-n", "default"});
  CHECK(table.exit_code == 0);
  CHECK(table.out == "NAME    AGE\nweb-1   30h\n");

  const SubprocessResult json =
      Run({"--address", fake.address(), "get", "nodes", "n1", "-o", "json"});
  CHECK(json.exit_code == 0);
  CHECK(json.out == R"({
    "metadata": {
        "name": "n1"
    },
    "status": {
        "cpu": 0.5
    }
}
)");

  const SubprocessResult name = Run({"--address", fake.address(), "-n", "default", "-o", "name",
                                     "get", "pods", "web-1", "--min-resource-version", "49"});
  CHECK(name.out == "pods/web-1\n");

  const auto requests = fake.service().get_requests();
  REQUIRE(requests.size() == 3);
  CHECK(requests[0].resource() == "pods");
  CHECK(requests[0].namespace_() == "default");
  CHECK(requests[0].name() == "web-1");
  CHECK(requests[0].min_resource_version().empty());
  CHECK(requests[1].resource() == "nodes");
  CHECK(requests[1].namespace_().empty());
  CHECK(requests[1].name() == "n1");
  CHECK(requests[2].min_resource_version() == "49");
}

TEST_CASE("get of a missing object prints informerd's NOT_FOUND and exits 1") {
  FakeInformer fake;
  const SubprocessResult result =
      Run({"--address", fake.address(), "get", "pods", "nope", "-n", "default"});
  CHECK(result.exit_code == 1);
  CHECK(result.out.empty());
  CHECK(result.err == "informerctl: NOT_FOUND: pods \"nope\" not found in namespace \"default\"\n");
}

TEST_CASE("server errors: the code's name and informerd's message, exit 1") {
  FakeInformer fake;
  SECTION("NOT_FOUND for an unknown resource") {
    fake.service().FailWith(
        grpc::Status(grpc::StatusCode::NOT_FOUND, "resource \"foos\" is not served by informerd"));
    const SubprocessResult result = Run({"--address", fake.address(), "list", "foos"});
    CHECK(result.exit_code == 1);
    CHECK(result.out.empty());
    CHECK(result.err == "informerctl: NOT_FOUND: resource \"foos\" is not served by informerd\n");
  }
  SECTION("INVALID_ARGUMENT for a malformed selector") {
    fake.service().FailWith(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                         "label_selector: unexpected end after \"in (\""));
    const SubprocessResult result =
        Run({"--address", fake.address(), "list", "pods", "-l", "app in ("});
    CHECK(result.exit_code == 1);
    CHECK(result.err ==
          "informerctl: INVALID_ARGUMENT: label_selector: unexpected end after \"in (\"\n");
    REQUIRE(fake.service().list_requests().size() == 1);
    CHECK(fake.service().list_requests()[0].label_selector() == "app in (");
  }
  SECTION("UNAVAILABLE from a reachable informerd carries no connection hint") {
    fake.service().FailWith(
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "pods has not finished its initial sync"));
    const SubprocessResult result = Run({"--address", fake.address(), "resources"});
    CHECK(result.exit_code == 1);
    CHECK(result.err == "informerctl: UNAVAILABLE: pods has not finished its initial sync\n");
  }
  SECTION("a deadline that passes on a reachable informerd") {
    fake.service().FailWith(grpc::Status::OK, std::chrono::milliseconds(2000));
    const SubprocessResult result =
        Run({"--address", fake.address(), "--timeout", "300ms", "list", "pods"});
    CHECK(result.exit_code == 1);
    CHECK(result.err == "informerctl: DEADLINE_EXCEEDED: Deadline Exceeded\n");
  }
  SECTION("every code is printed by its canonical name") {
    const auto [code, name] = GENERATE(table<grpc::StatusCode, std::string>({
        {grpc::StatusCode::CANCELLED, "CANCELLED"},
        {grpc::StatusCode::UNKNOWN, "UNKNOWN"},
        {grpc::StatusCode::ALREADY_EXISTS, "ALREADY_EXISTS"},
        {grpc::StatusCode::PERMISSION_DENIED, "PERMISSION_DENIED"},
        {grpc::StatusCode::RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED"},
        {grpc::StatusCode::FAILED_PRECONDITION, "FAILED_PRECONDITION"},
        {grpc::StatusCode::ABORTED, "ABORTED"},
        {grpc::StatusCode::OUT_OF_RANGE, "OUT_OF_RANGE"},
        {grpc::StatusCode::UNIMPLEMENTED, "UNIMPLEMENTED"},
        {grpc::StatusCode::INTERNAL, "INTERNAL"},
        {grpc::StatusCode::DATA_LOSS, "DATA_LOSS"},
        {grpc::StatusCode::UNAUTHENTICATED, "UNAUTHENTICATED"},
    }));
    fake.service().FailWith(grpc::Status(code, "the message"));
    const SubprocessResult result =
        Run({"--address", fake.address(), "get", "pods", "x", "-n", "y"});
    CHECK(result.exit_code == 1);
    CHECK(result.err == fmt::format("informerctl: {}: the message\n", name));
  }
}

TEST_CASE("an object that is not JSON is an error, not garbage output") {
  FakeInformer fake;
  v1::ListResponse response;
  response.add_items(R"({"metadata":{"name":"ok"}})");
  response.add_items(R"({"metadata":)");
  fake.service().SetList(response);
  const SubprocessResult result = Run({"--address", fake.address(), "list", "pods"});
  CHECK(result.exit_code == 1);
  CHECK(result.out.empty());
  CHECK(result.err ==
        "informerctl: informerd sent list item 1 that is not JSON (at offset 12: Invalid "
        "value.)\n");
}

TEST_CASE("an unreachable address is a clear UNAVAILABLE naming the address") {
  const SubprocessResult result = Run({"--address", "127.0.0.1:1", "resources"});
  CHECK(result.exit_code == 1);
  CHECK(result.out.empty());
  CHECK(result.err.rfind("informerctl: UNAVAILABLE: ", 0) == 0);
  CHECK(result.err.find("(cannot reach informerd at 127.0.0.1:1; set --address or "
                        "INFORMERD_ADDRESS)\n") != std::string::npos);
  CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);

  // The same for watch, which has no deadline by default: it must not hang.
  const SubprocessResult watch = Run({"--address", "127.0.0.1:1", "watch", "pods"});
  CHECK(watch.exit_code == 1);
  CHECK(watch.err.find("cannot reach informerd at 127.0.0.1:1") != std::string::npos);
}

TEST_CASE("INFORMERD_ADDRESS is the default address; --address overrides it") {
  FakeInformer fake;
  fake.service().SetResources(ThreeResources());
  const SubprocessResult from_env =
      Run({"resources", "-o", "name"}, {{"INFORMERD_ADDRESS", fake.address()}});
  CHECK(from_env.exit_code == 0);
  CHECK(from_env.out == "pods\ndeployments.apps\nnodes\n");
  const SubprocessResult overridden = Run({"--address", fake.address(), "resources", "-o", "name"},
                                          {{"INFORMERD_ADDRESS", "127.0.0.1:1"}});
  CHECK(overridden.exit_code == 0);
  CHECK(overridden.out == from_env.out);
}

TEST_CASE("watch prints a table row per event, EVENT first, until the stream ends") {
  FakeInformer fake;
  fake.service().SetSubscribe({SnapshotThenChanges(), grpc::Status::OK, false});
  const SubprocessResult result = Run({"--address", fake.address(), "watch", "pods"});
  CHECK(result.exit_code == 0);
  CHECK(result.err.empty());
  CHECK(result.out ==
        "EVENT      NAMESPACE   NAME    AGE\n"
        "ADDED      default     web-1   3h\n"
        "ADDED      default     web-2   20m\n"
        "SYNCED\n"
        "MODIFIED   default     web-1   3h\n"
        "DELETED    default     web-2   20m\n");
  const auto requests = fake.service().subscribe_requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].resource() == "pods");
  CHECK(requests[0].namespace_().empty());
  CHECK(requests[0].resource_version().empty());
  CHECK_FALSE(requests[0].allow_bookmarks());
  CHECK(requests[0].max_events_per_message() == 256);
}

TEST_CASE("watch asks for batches and prints every event of a batch, in order") {
  FakeInformer fake;
  // The server's batching (Event.batch): the snapshot and SYNCED in one message, then a batch
  // of two changes, then a single event in a message of its own.
  const std::vector<v1::Event> events = SnapshotThenChanges();
  REQUIRE(events.size() == 5);
  v1::Event snapshot;
  for (int i = 0; i < 3; ++i) *snapshot.add_batch() = events[static_cast<std::size_t>(i)];
  v1::Event changes;
  *changes.add_batch() = events[3];
  *changes.add_batch() = events[4];
  const v1::Event later = Event(v1::Event::SYNCED, "15");
  fake.service().SetSubscribe({{snapshot, changes, later},
                               grpc::Status(grpc::StatusCode::UNAVAILABLE, "restarting"),
                               false});
  const SubprocessResult result = Run({"--address", fake.address(), "watch", "pods", "-o", "name"});
  CHECK(result.exit_code == 1);
  CHECK(result.out ==
        "ADDED pods/web-1\nADDED pods/web-2\nSYNCED\nMODIFIED pods/web-1\nDELETED pods/web-2\n"
        "SYNCED\n");
  // The resume point is the last event of all, inside or outside a batch.
  CHECK(result.err == "informerctl: UNAVAILABLE: restarting (resume with --resource-version 15)\n");
  REQUIRE(fake.service().subscribe_requests().size() == 1);
  CHECK(fake.service().subscribe_requests()[0].max_events_per_message() == 256);
}

TEST_CASE("watch passes namespace, selectors, resource version and bookmarks through") {
  FakeInformer fake;
  fake.service().SetSubscribe(
      {{Event(v1::Event::BOOKMARK, "40"),
        Event(v1::Event::ADDED, "41", Pod("prod", "api-0", minutes(20)), "prod", "api-0")},
       grpc::Status::OK,
       false});
  const SubprocessResult result =
      Run({"--address", fake.address(), "watch", "pods", "-n", "prod", "-l", "app=api",
           "--field-selector", "metadata.name=api-0", "--resource-version", "39", "--bookmarks"});
  CHECK(result.exit_code == 0);
  // Rows print as they arrive: NAME was sized by the header and a blank BOOKMARK row, and widens
  // for the first name, as kubectl's watch output does.
  CHECK(result.out ==
        "EVENT      NAME   AGE\n"
        "BOOKMARK\n"
        "ADDED      api-0   20m\n");
  const auto requests = fake.service().subscribe_requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].resource() == "pods");
  CHECK(requests[0].namespace_() == "prod");
  CHECK(requests[0].label_selector() == "app=api");
  CHECK(requests[0].field_selector() == "metadata.name=api-0");
  CHECK(requests[0].resource_version() == "39");
  CHECK(requests[0].allow_bookmarks());
}

TEST_CASE("watch -o json prints one JSON object per event per line") {
  FakeInformer fake;
  const std::string pod =
      R"({"metadata":{"name":"web-1","namespace":"default"},"spec":{"priority":1.0}})";
  fake.service().SetSubscribe(
      {{Event(v1::Event::ADDED, "10", pod, "default", "web-1"), Event(v1::Event::SYNCED, "12"),
        Event(v1::Event::DELETED, "14", pod, "default", "web-1")},
       grpc::Status::OK,
       false});
  const SubprocessResult result = Run({"--address", fake.address(), "watch", "pods", "-o", "json"});
  CHECK(result.exit_code == 0);
  CHECK(result.out ==
        R"({"type":"ADDED","resourceVersion":"10","object":{"metadata":{"name":"web-1",)"
        R"("namespace":"default"},"spec":{"priority":1.0}}})"
        "\n"
        R"({"type":"SYNCED","resourceVersion":"12"})"
        "\n"
        R"({"type":"DELETED","resourceVersion":"14","object":{"metadata":{"name":"web-1",)"
        R"("namespace":"default"},"spec":{"priority":1.0}}})"
        "\n");
}

TEST_CASE("watch -o name prints the event type and the object's name") {
  FakeInformer fake;
  fake.service().SetSubscribe({SnapshotThenChanges(), grpc::Status::OK, false});
  const SubprocessResult result = Run({"--address", fake.address(), "watch", "pods", "-o", "name"});
  CHECK(result.exit_code == 0);
  CHECK(result.out ==
        "ADDED pods/web-1\nADDED pods/web-2\nSYNCED\nMODIFIED pods/web-1\nDELETED pods/web-2\n");
}

TEST_CASE("watch ended by informerd: the events, then the error with where to resume") {
  FakeInformer fake;
  SECTION("RESOURCE_EXHAUSTED after SYNCED: resume from the last event's resource version") {
    fake.service().SetSubscribe(
        {SnapshotThenChanges(),
         grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "subscriber fell too far behind"),
         false});
    const SubprocessResult result =
        Run({"--address", fake.address(), "watch", "pods", "-o", "name"});
    CHECK(result.exit_code == 1);
    CHECK(result.out ==
          "ADDED pods/web-1\nADDED pods/web-2\nSYNCED\nMODIFIED pods/web-1\nDELETED pods/web-2\n");
    CHECK(result.err ==
          "informerctl: RESOURCE_EXHAUSTED: subscriber fell too far behind (resume with "
          "--resource-version 14)\n");
  }
  SECTION("UNAVAILABLE during the snapshot: no resume point (snapshot RVs are the objects')") {
    std::vector<v1::Event> events = SnapshotThenChanges();
    events.resize(2);
    fake.service().SetSubscribe(
        {events, grpc::Status(grpc::StatusCode::UNAVAILABLE, "informerd is shutting down"), false});
    const SubprocessResult result =
        Run({"--address", fake.address(), "watch", "pods", "-o", "name"});
    CHECK(result.exit_code == 1);
    CHECK(result.out == "ADDED pods/web-1\nADDED pods/web-2\n");
    CHECK(result.err == "informerctl: UNAVAILABLE: informerd is shutting down\n");
  }
  SECTION("OUT_OF_RANGE for a resource version older than the window") {
    fake.service().SetSubscribe(
        {{},
         grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                      "resource version 5 is older than the oldest event kept (900)"),
         false});
    const SubprocessResult result =
        Run({"--address", fake.address(), "watch", "pods", "--resource-version", "5"});
    CHECK(result.exit_code == 1);
    CHECK(result.out.empty());
    CHECK(result.err ==
          "informerctl: OUT_OF_RANGE: resource version 5 is older than the oldest event kept "
          "(900) (watch again without --resource-version to start from the current state)\n");
    REQUIRE(fake.service().subscribe_requests().size() == 1);
    CHECK(fake.service().subscribe_requests()[0].resource_version() == "5");
  }
  SECTION("INVALID_ARGUMENT before any event") {
    fake.service().FailWith(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                         "resource_version \"abc\" is not a decimal number"));
    const SubprocessResult result =
        Run({"--address", fake.address(), "watch", "pods", "--resource-version", "abc"});
    CHECK(result.exit_code == 1);
    CHECK(result.out.empty());
    CHECK(result.err ==
          "informerctl: INVALID_ARGUMENT: resource_version \"abc\" is not a decimal number\n");
  }
}

TEST_CASE("watch with an explicit --timeout ends normally when it runs out") {
  FakeInformer fake;
  fake.service().SetSubscribe({SnapshotThenChanges(), grpc::Status::OK, true});
  const auto start = std::chrono::steady_clock::now();
  const SubprocessResult result =
      Run({"--address", fake.address(), "--timeout", "1s", "watch", "pods", "-o", "name"});
  CHECK(std::chrono::steady_clock::now() - start >= seconds(1));
  CHECK(result.exit_code == 0);
  CHECK(result.err.empty());
  CHECK(result.out ==
        "ADDED pods/web-1\nADDED pods/web-2\nSYNCED\nMODIFIED pods/web-1\nDELETED pods/web-2\n");
}

TEST_CASE("watch stops cleanly on Ctrl-C (and SIGTERM): exit 0, stream cancelled") {
  const int signal_number = GENERATE(SIGINT, SIGTERM);
  FakeInformer fake;
  fake.service().SetSubscribe({SnapshotThenChanges(), grpc::Status::OK, true});
  // Subprocess captures only stderr: send informerctl's stdout there too, so that each event
  // line can be waited for (which also proves every event is flushed as it arrives).
  auto watch = Subprocess::Start({"/bin/sh", "-c", "exec \"$0\" \"$@\" >&2", kInformerctl,
                                  "--address", fake.address(), "watch", "pods", "-o", "name"});
  REQUIRE(watch.ok());
  REQUIRE(watch->WaitForLine("DELETED pods/web-2", seconds(20)).ok());
  watch->Signal(signal_number);
  const auto exit_code = watch->Wait(seconds(20));
  INFO(watch->stderr_text());
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 0);
  CHECK(watch->stderr_text() ==
        "ADDED pods/web-1\nADDED pods/web-2\nSYNCED\nMODIFIED pods/web-1\nDELETED pods/web-2\n");
  CHECK(fake.service().WaitForCancelledStreams(1, seconds(10)));
}

struct UsageCase {
  std::vector<std::string> args;
  std::string message;
};

TEST_CASE("usage errors print one line and exit 2 without calling informerd") {
  FakeInformer fake;
  const UsageCase usage = GENERATE(values<UsageCase>({
      {{}, "missing command: resources, get, list or watch (see informerctl --help)"},
      {{"lsit", "pods"},
       "unknown command \"lsit\": expected resources, get, list or watch (see informerctl "
       "--help)"},
      {{"get", "pods"},
       "usage: informerctl get RESOURCE NAME [-n NS] [--min-resource-version RV] (see "
       "informerctl --help)"},
      {{"list"},
       "usage: informerctl list RESOURCE [-n NS | -A] [-l SEL] [--field-selector SEL] "
       "[--min-resource-version RV] [--chunk-size N] (see informerctl --help)"},
      {{"watch", "pods", "--min-resource-version", "3"},
       "--min-resource-version does not apply to watch (see informerctl --help)"},
      {{"resources", "pods"}, "resources takes no arguments (see informerctl --help)"},
      {{"list", "pods", "-n", "a", "-A"}, "-n and -A exclude each other (see informerctl --help)"},
      {{"list", "pods", "--bookmarks"},
       "--bookmarks does not apply to list (see informerctl --help)"},
      {{"get", "pods", "x", "-l", "a=b"},
       "--selector does not apply to get (see informerctl --help)"},
      {{"resources", "-A"},
       "--all-namespaces does not apply to resources (see informerctl --help)"},
      {{"list", "pods", "-o", "yaml"},
       "-o: \"yaml\" is not one of json, name (the default is a table) (see informerctl --help)"},
      {{"--timeout", "10", "resources"},
       "--timeout: \"10\" is not a duration (for example 500ms, 10s, 2m, 0 for none) (see "
       "informerctl --help)"},
      {{"--frobnicate", "resources"},
       "unrecognised option '--frobnicate' (see informerctl --help)"},
      {{"--name", "x", "resources"}, "unrecognised option '--name' (see informerctl --help)"},
      {{"list", "pods", "-n"},
       "the required argument for option '--namespace' is missing (see informerctl --help)"},
  }));
  std::vector<std::string> args = {"--address", fake.address()};
  args.insert(args.end(), usage.args.begin(), usage.args.end());
  const SubprocessResult result = Run(args);
  CHECK(result.exit_code == 2);
  CHECK(result.out.empty());
  CHECK(result.err == "informerctl: " + usage.message + "\n");
  CHECK(fake.service().calls() == 0);
}

TEST_CASE("--help lists the commands and the flags and exits 0") {
  const SubprocessResult result = Run({"--help"});
  CHECK(result.exit_code == 0);
  CHECK(result.err.empty());
  for (const char* text :
       {"resources", "get RESOURCE NAME", "list RESOURCE", "watch RESOURCE", "--address",
        "--timeout", "-o [ --output ]", "-n [ --namespace ]", "-A [ --all-namespaces ]",
        "-l [ --selector ]", "--field-selector", "--resource-version", "--bookmarks",
        "INFORMERD_ADDRESS", "Exit status"}) {
    INFO(text);
    CHECK(result.out.find(text) != std::string::npos);
  }
  CHECK(Run({"watch", "pods", "-h"}).exit_code == 0);
}

}  // namespace
}  // namespace informerd::test
