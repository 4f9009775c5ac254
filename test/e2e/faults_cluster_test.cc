// End-to-end against a real kube-apiserver, under faults: the apiserver restarts while
// subscribers stay connected; an etcd compaction while informerd cannot watch forces a relist
// whose differences (deletions included) reach subscribers once each; a subscriber that stops
// reading is ended with RESOURCE_EXHAUSTED while 50 others keep receiving promptly.
#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test/e2e/cluster_e2e.h"

namespace informerd::test::e2e {
namespace {

std::string PodYaml(const std::string& ns, const std::string& name) {
  return fmt::format(R"(---
apiVersion: v1
kind: Pod
metadata: {{name: {}, namespace: {}}}
spec:
  containers:
  - {{name: c, image: registry.invalid/never-pulled:1}}
)",
                     name, ns);
}

std::string NamespaceYaml(const std::string& name) {
  return fmt::format("---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {}}}\n", name);
}

// "TYPE ns/name" without versions: for comparing what arrived with what was done.
std::vector<std::string> Changes(const std::vector<v1::Event>& events) {
  std::vector<std::string> out;
  for (const v1::Event& event : events) {
    out.push_back(fmt::format("{} {}/{}", v1::Event::Type_Name(event.type()), event.namespace_(),
                              event.name()));
  }
  return out;
}

uint64_t Rv(const std::string& text) { return std::stoull(text); }

// No version goes backwards or repeats.
bool StrictlyIncreasing(const std::vector<v1::Event>& events) {
  for (std::size_t i = 1; i < events.size(); ++i) {
    if (Rv(events[i].resource_version()) <= Rv(events[i - 1].resource_version())) return false;
  }
  return true;
}

bool Synced(const std::vector<v1::Event>& events) { return HasSynced(events); }

TEST_CASE("subscribers stay connected across an apiserver restart and see each later change once",
          "[cluster]") {
  std::unique_ptr<TestCluster> cluster = StartCluster();
  CreateOk(*cluster, NamespaceYaml("e2e-restart") + PodYaml("e2e-restart", "a1") +
                         PodYaml("e2e-restart", "a2"));
  std::unique_ptr<Daemon> daemon = Daemon::Start(*cluster, "resources:\n  - resource: pods\n");
  REQUIRE(AwaitSynced(daemon->stub(), {"pods"}, seconds(30)));

  std::vector<std::unique_ptr<Subscriber>> subscribers;
  for (int i = 0; i < 3; ++i) {
    subscribers.push_back(
        std::make_unique<Subscriber>(daemon->NewChannel(true), SubscribeTo("pods", "e2e-restart")));
  }
  for (auto& subscriber : subscribers) {
    REQUIRE(subscriber->WaitFor(Synced, seconds(20)));
    CHECK(Changes(subscriber->events()) ==
          std::vector<std::string>{"ADDED e2e-restart/a1", "ADDED e2e-restart/a2", "SYNCED /"});
  }

  const std::size_t log_mark = daemon->log_size();
  const absl::Status restarted = cluster->RestartApiserver();
  INFO(restarted.ToString());
  REQUIRE(restarted.ok());
  // Right after the restart, racing informerd's reconnection.
  KubectlOk(*cluster, {"create", "-f", "-"}, PodYaml("e2e-restart", "a3"));
  KubectlOk(*cluster, {"patch", "pod", "a1", "-n", "e2e-restart", "--type=merge", "-p",
                       R"({"metadata":{"labels":{"after":"restart"}}})"});
  KubectlOk(*cluster, {"delete", "pod", "a2", "-n", "e2e-restart", "--grace-period=0", "--force"});
  // A pod's deletion is two events: deletionTimestamp set, then gone.
  const std::vector<std::string> expected = {"ADDED e2e-restart/a3", "MODIFIED e2e-restart/a1",
                                             "MODIFIED e2e-restart/a2", "DELETED e2e-restart/a2"};

  for (auto& subscriber : subscribers) {
    CHECK(subscriber->WaitForCount(3 + expected.size(), seconds(60)));
  }
  std::this_thread::sleep_for(seconds(2));  // nothing twice: no more events arrive
  INFO(daemon->log().substr(log_mark));
  for (auto& subscriber : subscribers) {
    const std::vector<v1::Event> live = subscriber->EventsFrom(3);
    INFO(fmt::format("{}", fmt::join(Describe(live), "\n")));
    CHECK(Changes(live) == expected);
    CHECK(StrictlyIncreasing(live));
    CHECK_FALSE(subscriber->status().has_value());  // still connected
  }
  // The restart did reach informerd: its watch broke and it came back.
  CHECK(daemon->WaitForLog("pods: watch: ", seconds(1), log_mark).has_value());
  CHECK(Describe(ListKeys(daemon->stub(), "pods", "e2e-restart")) ==
        Describe(KubectlKeys(*cluster, {"pods", "-n", "e2e-restart"})));
  // Versions in the stream are the apiserver's: MODIFIED carries a1's current version.
  const ObjectKey a1 =
      KeyOf(KubectlOk(*cluster, {"get", "pod", "a1", "-n", "e2e-restart", "-o", "json"}));
  CHECK(subscribers[0]->EventsFrom(4).at(0).resource_version() == a1.resource_version);
}

TEST_CASE(
    "a compaction while informerd cannot watch forces a relist; subscribers get the "
    "differences, deletions included, once each",
    "[cluster]") {
  // Without the watch cache, watches read etcd: a compacted resource version is gone for good.
  ClusterOptions options;
  options.watch_cache = false;
  std::unique_ptr<TestCluster> cluster = StartCluster(options);
  // informerd runs as bob, whose only grant is this binding: deleting it keeps informerd out.
  const std::string binding = R"(apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: e2e-bob-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: informerd-test-reader}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}
)";
  const auto bob_can_list = [&] {
    absl::StatusOr<SubprocessResult> result =
        cluster->Kubectl(Identity::kBobToken, {"get", "pods", "-n", "e2e-gap"});
    return result.ok() && result->exit_code == 0;
  };
  ApplyOk(*cluster, binding);
  CreateOk(*cluster, NamespaceYaml("e2e-gap") + PodYaml("e2e-gap", "g1") +
                         PodYaml("e2e-gap", "g2") + PodYaml("e2e-gap", "g3"));
  REQUIRE(WaitUntil(bob_can_list, seconds(20), milliseconds(200)));

  std::unique_ptr<Daemon> daemon =
      Daemon::Start(*cluster, "resources:\n  - resource: pods\n", Identity::kBobToken);
  REQUIRE(AwaitSynced(daemon->stub(), {"pods"}, seconds(30)));
  Subscriber subscriber(daemon->NewChannel(), SubscribeTo("pods", "e2e-gap"));
  REQUIRE(subscriber.WaitFor(Synced, seconds(20)));
  REQUIRE(subscriber.count() == 4);
  const std::string before_gap = subscriber.events().back().resource_version();

  // The gap: no grant, and the apiserver restarts so that informerd's watch ends.
  KubectlOk(*cluster, {"delete", "clusterrolebinding", "e2e-bob-reader"});
  REQUIRE(WaitUntil([&] { return !bob_can_list(); }, seconds(20), milliseconds(200)));
  const std::size_t log_mark = daemon->log_size();
  REQUIRE(cluster->RestartApiserver().ok());
  {
    // informerd is refused now (403).
    const std::optional<std::string> refused =
        daemon->WaitForLog("forbidden", seconds(30), log_mark);
    INFO(daemon->log().substr(log_mark));
    REQUIRE(refused.has_value());
  }
  // Changes informerd cannot see, then the history that would let a watch replay them is gone.
  KubectlOk(*cluster, {"delete", "pod", "g1", "-n", "e2e-gap", "--grace-period=0", "--force"});
  const ObjectKey g2 =
      KeyOf(KubectlOk(*cluster, {"patch", "pod", "g2", "-n", "e2e-gap", "--type=merge", "-p",
                                 R"({"metadata":{"labels":{"during":"gap"}}})", "-o", "json"}));
  const ObjectKey g4 =
      KeyOf(KubectlOk(*cluster, {"create", "-f", "-", "-o", "json"}, PodYaml("e2e-gap", "g4")));
  const absl::StatusOr<int64_t> compacted = cluster->CompactEtcd();
  INFO(compacted.status().ToString());
  REQUIRE(compacted.ok());
  REQUIRE(*compacted >= static_cast<int64_t>(Rv(g4.resource_version)));
  CHECK(subscriber.count() == 4);  // informerd really saw nothing of it
  ApplyOk(*cluster, binding);

  // informerd gets back in, cannot resume its watch (compacted), relists, and sends the
  // differences: g2 changed, g4 is new, g1 is gone.
  const bool arrived = subscriber.WaitForCount(4 + 3, seconds(90));
  INFO(daemon->log().substr(log_mark));
  REQUIRE(arrived);
  std::this_thread::sleep_for(seconds(2));
  const std::vector<v1::Event> differences = subscriber.EventsFrom(4);
  INFO(fmt::format("{}", fmt::join(Describe(differences), "\n")));
  const std::vector<std::string> changes = Changes(differences);
  const std::multiset<std::string> got(changes.begin(), changes.end());
  CHECK(got == std::multiset<std::string>{"DELETED e2e-gap/g1", "MODIFIED e2e-gap/g2",
                                          "ADDED e2e-gap/g4"});
  CHECK(daemon->WaitForLog("pods: relisting", seconds(1), log_mark).has_value());
  for (const v1::Event& event : differences) {
    INFO(Describe(event));
    // Each carries the object (for DELETED, the last state informerd knew) and a version no
    // older than the change.
    const ObjectKey key = KeyOf(event.object());
    CHECK(key.name == event.name());
    if (event.name() == "g2") CHECK(key.resource_version == g2.resource_version);
    if (event.name() == "g4") CHECK(key.resource_version == g4.resource_version);
    if (event.type() == v1::Event::DELETED) {
      CHECK(Rv(key.resource_version) <= Rv(before_gap));  // g1 as it was before the gap
      CHECK(Rv(event.resource_version()) > Rv(before_gap));
    }
  }
  CHECK(Describe(ListKeys(daemon->stub(), "pods", "e2e-gap")) ==
        Describe(KubectlKeys(*cluster, {"pods", "-n", "e2e-gap"})));
  // The replay window restarted at the relist: the version from before the gap is too old.
  const grpc::Status old =
      SubscribeError(daemon->stub(), SubscribeTo("pods", "e2e-gap", before_gap));
  INFO(old.error_message());
  CHECK(old.error_code() == grpc::StatusCode::OUT_OF_RANGE);
  CHECK_FALSE(subscriber.status().has_value());

  // Reading one's own write: a List with min_resource_version = the write's version, sent right
  // after it, waits until informerd's watch has delivered it.
  const ObjectKey g5 =
      KeyOf(KubectlOk(*cluster, {"create", "-f", "-", "-o", "json"}, PodYaml("e2e-gap", "g5")));
  v1::ListRequest request;
  request.set_resource("pods");
  request.set_namespace_("e2e-gap");
  request.set_min_resource_version(g5.resource_version);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + seconds(20));
  v1::ListResponse response;
  const grpc::Status read = daemon->stub().List(&context, request, &response);
  INFO(read.error_message());
  REQUIRE(read.ok());
  CHECK(Rv(response.resource_version()) >= Rv(g5.resource_version));
  std::vector<std::string> listed;
  for (const std::string& item : response.items()) listed.push_back(KeyOf(item).name);
  CHECK(std::count(listed.begin(), listed.end(), "g5") == 1);
  // A version the cluster has not reached: informerd waits, then answers in the apiserver's words.
  const std::string ahead = std::to_string(Rv(g5.resource_version) + 1000000);
  request.set_min_resource_version(ahead);
  grpc::ClientContext ahead_context;
  ahead_context.set_deadline(std::chrono::system_clock::now() + seconds(2));
  const grpc::Status too_large = daemon->stub().List(&ahead_context, request, &response);
  CHECK(too_large.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(too_large.error_message().rfind("too large resource version: " + ahead + ", current: ",
                                        0) == 0);
}

TEST_CASE("a subscriber that stops reading is ended with RESOURCE_EXHAUSTED; 50 others keep up",
          "[cluster]") {
  // The queue must hold the largest burst the daemon applies at once: informerd reads the
  // upstream watch in chunks and fans out everything it decoded before any stream writes, so a
  // reader that keeps up still finds up to a chunk's worth of events queued (dozens on a loaded
  // machine, where 16 ended every reader). 100 keeps the slow subscriber's overflow cheap.
  constexpr int kCapacity = 100;
  std::unique_ptr<TestCluster> cluster = StartCluster();
  CreateOk(*cluster, NamespaceYaml("e2e-flood"));
  std::unique_ptr<Daemon> daemon = Daemon::Start(
      *cluster, fmt::format("subscriberQueueCapacity: {}\nresources:\n  - resource: configmaps\n",
                            kCapacity));
  REQUIRE(AwaitSynced(daemon->stub(), {"configmaps"}, seconds(30)));

  // The slow one: a connection of its own with HTTP/2 windows kept small (no BDP probing), and a
  // stream nobody reads. Its window (64 KiB) fills after ~16 events; the daemon ends it once its
  // queue is over the capacity with nothing read for 1 s, or at 4 × the capacity (~420 events).
  grpc::ChannelArguments slow_args;
  slow_args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  auto slow_stub = v1::Informer::NewStub(daemon->NewChannel(true, slow_args));
  grpc::ClientContext slow_context;
  slow_context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(3));
  std::unique_ptr<grpc::ClientReader<v1::Event>> slow =
      slow_stub->Subscribe(&slow_context, SubscribeTo("configmaps", "e2e-flood"));
  slow->WaitForInitialMetadata();

  constexpr int kFast = 50;
  auto fast_channel = daemon->NewChannel(true);
  std::vector<std::unique_ptr<Subscriber>> fast;
  for (int i = 0; i < kFast; ++i) {
    fast.push_back(
        std::make_unique<Subscriber>(fast_channel, SubscribeTo("configmaps", "e2e-flood")));
  }
  for (auto& subscriber : fast) REQUIRE(subscriber->WaitFor(Synced, seconds(30)));
  REQUIRE(WaitUntil(
      [&] {
        return FindInformer(ListResources(daemon->stub()), "configmaps")->subscriber_count() ==
               kFast + 1;
      },
      seconds(10)));

  // 600 objects of 4 KiB in one kubectl call: about 2.5 MiB of events for every subscriber.
  constexpr int kObjects = 600;
  static_assert(kObjects > 5 * kCapacity, "the slow subscriber must pass the hard limit by far");
  std::string yaml = "apiVersion: v1\nkind: List\nitems:\n";
  const std::string filler(4 << 10, 'x');
  for (int i = 0; i < kObjects; ++i) {
    yaml += fmt::format(
        "- {{apiVersion: v1, kind: ConfigMap, metadata: {{name: cm-{:03}, namespace: e2e-flood}}, "
        "data: {{filler: {}}}}}\n",
        i, filler);
  }
  const auto created_at = Clock::now();
  CreateOk(*cluster, yaml);
  const auto kubectl_done = Clock::now();

  // The daemon ends the slow subscription by itself: the slow client has still read nothing.
  CHECK(WaitUntil(
      [&] {
        return FindInformer(ListResources(daemon->stub()), "configmaps")->subscriber_count() ==
               kFast;
      },
      seconds(30)));

  // Every fast subscriber gets all of them, none is ended, and promptly.
  for (auto& subscriber : fast) CHECK(subscriber->WaitForCount(1 + kObjects, seconds(30)));
  std::map<std::string, Clock::time_point> first_arrival;
  std::map<std::string, Clock::time_point> last_arrival;
  Clock::time_point all_done = created_at;
  for (auto& subscriber : fast) {
    const std::vector<v1::Event> events = subscriber->events();
    const std::vector<Clock::time_point> arrivals = subscriber->arrivals();
    INFO(fmt::format("a fast subscriber ended after {} events: {}", events.size(),
                     subscriber->status().value_or(grpc::Status::OK).error_message()));
    CHECK_FALSE(subscriber->status().has_value());
    REQUIRE(events.size() == static_cast<std::size_t>(1 + kObjects));
    CHECK(Changes(events) == Changes(fast[0]->events()));
    for (std::size_t i = 1; i < events.size(); ++i) {
      const std::string& rv = events[i].resource_version();
      if (!first_arrival.count(rv) || arrivals[i] < first_arrival[rv])
        first_arrival[rv] = arrivals[i];
      if (!last_arrival.count(rv) || arrivals[i] > last_arrival[rv]) last_arrival[rv] = arrivals[i];
      all_done = std::max(all_done, arrivals[i]);
    }
  }
  milliseconds worst_spread(0);
  for (const auto& [rv, first] : first_arrival) {
    worst_spread =
        std::max(worst_spread, std::chrono::duration_cast<milliseconds>(last_arrival[rv] - first));
  }
  const auto tail = std::chrono::duration_cast<milliseconds>(all_done - kubectl_done);
  INFO(
      fmt::format("kubectl create took {} ms; the slowest of the 50 lagged the fastest by at most "
                  "{} ms per event; the last event arrived {} ms after kubectl returned",
                  std::chrono::duration_cast<milliseconds>(kubectl_done - created_at).count(),
                  worst_spread.count(), tail.count()));
  WARN(fmt::format("fast subscribers: worst per-event spread {} ms, tail after kubectl {} ms",
                   worst_spread.count(), tail.count()));
  CHECK(worst_spread < seconds(2));
  CHECK(tail < seconds(3));

  // Now the slow client reads: what was queued for it, then RESOURCE_EXHAUSTED naming the version
  // to resume from.
  std::vector<v1::Event> received;
  v1::Event event;
  while (slow->Read(&event)) received.push_back(event);
  const grpc::Status ended = slow->Finish();
  INFO(ended.error_message());
  CHECK(ended.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  WARN(fmt::format("the slow subscriber was sent {} events before it was ended", received.size()));
  REQUIRE(received.size() >= 2);
  CHECK(received.size() < static_cast<std::size_t>(1 + kObjects));
  const std::vector<v1::Event> reference = fast[0]->events();
  // What it got is a prefix of everyone's stream...
  CHECK(Changes(received) ==
        Changes(std::vector<v1::Event>(reference.begin(), reference.begin() + received.size())));
  const std::string last_rv = received.back().resource_version();
  CHECK(ended.error_message().find(last_rv) != std::string::npos);
  // ...and resuming from its last version delivers exactly the rest.
  Subscriber resumed(daemon->NewChannel(), SubscribeTo("configmaps", "e2e-flood", last_rv));
  const std::size_t rest = reference.size() - received.size();
  CHECK(resumed.WaitForCount(rest, seconds(30)));
  std::this_thread::sleep_for(milliseconds(500));
  CHECK(Describe(resumed.events()) ==
        Describe(std::vector<v1::Event>(reference.begin() + received.size(), reference.end())));
  CHECK(daemon->WaitForLog("Subscribe to configmaps", seconds(5)).has_value());
}

}  // namespace
}  // namespace informerd::test::e2e
