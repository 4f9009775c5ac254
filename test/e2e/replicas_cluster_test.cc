// End-to-end against a real kube-apiserver: two informerd replicas on the same apiserver, as
// several replicas behind a Service run. A subscriber reading from the first is cut off when that
// replica stops, and resumes on the second from the resource version of the last event it
// received: it gets exactly the changes made meanwhile, in order, none twice and none missing,
// then live events. This works because resource versions are the apiserver's, so both replicas'
// replay windows speak the same language. A version from before the second replica's first list
// is older than its window: OUT_OF_RANGE, and a fresh snapshot from it is the cluster's state. A
// client balancing with gRPC's round_robin over both replicas spreads its streams over them, and
// the streams a stopped replica ended resume, through the same channel, on the other.
#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "test/e2e/cluster_e2e.h"

namespace informerd::test::e2e {
namespace {

constexpr char kConfig[] = "resources:\n  - resource: pods\n";
constexpr char kNamespace[] = "e2e-replicas";

std::string PodYaml(const std::string& name) {
  return fmt::format(R"(---
apiVersion: v1
kind: Pod
metadata: {{name: {}, namespace: {}}}
spec:
  containers:
  - {{name: c, image: registry.invalid/never-pulled:1}}
)",
                     name, kNamespace);
}

uint64_t Rv(const std::string& text) { return std::stoull(text); }

// Runs a kubectl command that prints the object it changed (-o json); returns that object's key.
ObjectKey Mutate(const TestCluster& cluster, std::vector<std::string> args,
                 const std::string& stdin_text = "") {
  args.insert(args.end(), {"-o", "json"});
  return KeyOf(KubectlOk(cluster, args, stdin_text));
}

ObjectKey CreatePod(const TestCluster& cluster, const std::string& name) {
  return Mutate(cluster, {"create", "-f", "-"}, PodYaml(name));
}

// Sets an annotation with `kubectl patch`, which prints the object as the server returned it.
ObjectKey Annotate(const TestCluster& cluster, const std::string& name, const std::string& value) {
  return Mutate(cluster,
                {"patch", "pod", name, "-n", kNamespace, "--type=merge", "-p",
                 fmt::format(R"({{"metadata":{{"annotations":{{"step":"{}"}}}}}})", value)});
}

// What a stream must show for one change made with kubectl.
struct Expected {
  v1::Event::Type type;
  std::string name;
  std::string resource_version;  // empty for a deletion's events: kubectl does not print them
};

// Checks `events` against `expected`, one for one and in order: types, names and the versions
// kubectl printed; every version strictly greater than the one before (starting from `after`),
// which also places each unknown deletion version between its neighbours.
void CheckChanges(const std::vector<v1::Event>& events, const std::vector<Expected>& expected,
                  const std::string& after) {
  std::vector<std::string> got;
  std::vector<std::string> want;
  for (const v1::Event& event : events) got.push_back(Describe(event));
  for (std::size_t i = 0; i < expected.size(); ++i) {
    // A deletion's version is taken from the event in its place if that is the same change.
    std::string version = expected[i].resource_version;
    if (version.empty()) {
      const bool same = i < events.size() && events[i].type() == expected[i].type &&
                        events[i].name() == expected[i].name;
      version = same ? events[i].resource_version() : "?";
    }
    want.push_back(fmt::format("{} {}/{} rv={}", v1::Event::Type_Name(expected[i].type), kNamespace,
                               expected[i].name, version));
  }
  CHECK(got == want);
  uint64_t previous = Rv(after);
  for (const v1::Event& event : events) {
    INFO(Describe(event));
    CHECK(Rv(event.resource_version()) > previous);
    previous = Rv(event.resource_version());
    CHECK(KeyOf(event.object()).name == event.name());
  }
}

TEST_CASE(
    "a subscriber cut off from one replica resumes on another from its last resource version and "
    "gets exactly the missed events, then live ones",
    "[cluster]") {
  std::unique_ptr<TestCluster> cluster = StartCluster();
  CreateOk(*cluster, fmt::format("---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {}}}\n",
                                 kNamespace) +
                         PodYaml("p1") + PodYaml("p2"));

  std::unique_ptr<Daemon> first = Daemon::Start(*cluster, kConfig);
  REQUIRE(AwaitSynced(first->stub(), {"pods"}, seconds(30)));
  auto subscriber =
      std::make_unique<Subscriber>(first->NewChannel(true), SubscribeTo("pods", kNamespace));
  REQUIRE(subscriber->WaitFor(HasSynced, seconds(20)));
  // Where a subscriber that heard nothing more from the first replica would resume.
  const std::string synced_rv = subscriber->events().back().resource_version();

  // A change only the first replica's window holds: the second one starts listing after it.
  const ObjectKey early = CreatePod(*cluster, "p0");
  REQUIRE(subscriber->WaitFor([](const auto& events) { return AfterSynced(events).size() == 1; },
                              seconds(20)));
  CHECK(Describe(AfterSynced(subscriber->events()).back()) ==
        fmt::format("ADDED {}/p0 rv={}", kNamespace, early.resource_version));

  std::unique_ptr<Daemon> second = Daemon::Start(*cluster, kConfig);
  REQUIRE(AwaitSynced(second->stub(), {"pods"}, seconds(30)));
  // "pods: synced N objects at resourceVersion V in ...": V is where its window starts.
  const std::optional<std::string> listed = second->WaitForLog("pods: synced ", seconds(1));
  REQUIRE(listed.has_value());
  const std::string marker = "at resourceVersion ";
  const std::size_t at = listed->find(marker);
  REQUIRE(at != std::string::npos);
  const uint64_t second_list_rv = Rv(listed->substr(at + marker.size()));
  REQUIRE(Rv(synced_rv) < Rv(early.resource_version));
  REQUIRE(Rv(early.resource_version) <= second_list_rv);
  // Connected to the second replica throughout: what it delivers is the reference, object bytes
  // included.
  Subscriber control(second->NewChannel(true), SubscribeTo("pods", kNamespace));
  REQUIRE(control.WaitFor(HasSynced, seconds(20)));

  // The last event the subscriber receives from the first replica.
  const ObjectKey last = Annotate(*cluster, "p1", "before");
  REQUIRE(subscriber->WaitFor([](const auto& events) { return AfterSynced(events).size() == 2; },
                              seconds(20)));
  const v1::Event last_event = AfterSynced(subscriber->events()).back();
  CHECK(Describe(last_event) ==
        fmt::format("MODIFIED {}/p1 rv={}", kNamespace, last.resource_version));
  const std::string last_rv = last_event.resource_version();

  // The first replica stops (killed, as a node failure would); its stream breaks with
  // UNAVAILABLE, the status a client resumes on.
  {
    const std::size_t seen = subscriber->count();
    first.reset();
    const std::optional<grpc::Status> cut = subscriber->WaitForEnd(seconds(20));
    REQUIRE(cut.has_value());
    INFO(cut->error_message());
    CHECK(cut->error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(subscriber->count() == seen);
    subscriber.reset();
  }

  // Changes made while the subscriber is away. Deleting a pod is two events: its
  // deletionTimestamp set, then gone.
  std::vector<Expected> expected;
  const ObjectKey p3 = CreatePod(*cluster, "p3");
  expected.push_back({v1::Event::ADDED, "p3", p3.resource_version});
  const ObjectKey p1 = Annotate(*cluster, "p1", "away");
  expected.push_back({v1::Event::MODIFIED, "p1", p1.resource_version});
  KubectlOk(*cluster, {"delete", "pod", "p2", "-n", kNamespace, "--grace-period=0", "--force"});
  expected.push_back({v1::Event::MODIFIED, "p2", ""});
  expected.push_back({v1::Event::DELETED, "p2", ""});
  const ObjectKey p3_again = Annotate(*cluster, "p3", "away");
  expected.push_back({v1::Event::MODIFIED, "p3", p3_again.resource_version});
  const ObjectKey p0 = Annotate(*cluster, "p0", "away");
  expected.push_back({v1::Event::MODIFIED, "p0", p0.resource_version});

  // Resumed on the second replica, with the version the first one sent.
  Subscriber resumed(second->NewChannel(true), SubscribeTo("pods", kNamespace, last_rv));
  // A count short of the expected one is reported by the comparison below, with the events.
  CHECK(resumed.WaitForCount(expected.size(), seconds(20)));
  std::this_thread::sleep_for(milliseconds(500));  // nothing more arrives
  {
    const std::vector<v1::Event> replayed = resumed.events();
    INFO(fmt::format("resumed after {}:\n{}", last_rv, fmt::join(Describe(replayed), "\n")));
    CheckChanges(replayed, expected, last_rv);
    // The same events, byte for byte, as the second replica's own subscriber received.
    REQUIRE(control.WaitFor(
        [&](const std::vector<v1::Event>& events) {
          return !events.empty() && Rv(events.back().resource_version()) >= Rv(p0.resource_version);
        },
        seconds(20)));
    std::vector<v1::Event> reference;
    for (const v1::Event& event : AfterSynced(control.events())) {
      if (Rv(event.resource_version()) > Rv(last_rv)) reference.push_back(event);
    }
    CHECK(Describe(replayed) == Describe(reference));
    if (Describe(replayed) == Describe(reference)) {
      for (std::size_t i = 0; i < replayed.size(); ++i) {
        CHECK(replayed[i].object() == reference[i].object());
      }
    }
  }

  // Then live, once each.
  const ObjectKey p4 = CreatePod(*cluster, "p4");
  REQUIRE(resumed.WaitForCount(expected.size() + 1, seconds(20)));
  std::this_thread::sleep_for(milliseconds(500));
  CHECK(
      Describe(resumed.EventsFrom(expected.size())) ==
      std::vector<std::string>{fmt::format("ADDED {}/p4 rv={}", kNamespace, p4.resource_version)});
  CHECK_FALSE(resumed.status().has_value());

  // A version from before the second replica's first list (the first replica's snapshot, before
  // p0) is older than its replay window: the documented OUT_OF_RANGE, and a fresh snapshot then is
  // the cluster's state.
  const grpc::Status too_old =
      SubscribeError(second->stub(), SubscribeTo("pods", kNamespace, synced_rv));
  INFO(too_old.error_message());
  CHECK(too_old.error_code() == grpc::StatusCode::OUT_OF_RANGE);
  CHECK(too_old.error_message().find("too old resource version: " + synced_rv) !=
        std::string::npos);
  Subscriber fresh(second->NewChannel(true), SubscribeTo("pods", kNamespace));
  REQUIRE(fresh.WaitFor(HasSynced, seconds(20)));
  std::vector<ObjectKey> snapshot;
  for (const v1::Event& event : fresh.events()) {
    if (event.type() == v1::Event::SYNCED) break;
    CHECK(event.type() == v1::Event::ADDED);
    snapshot.push_back(KeyOf(event.object()));
  }
  std::sort(snapshot.begin(), snapshot.end(), [](const ObjectKey& a, const ObjectKey& b) {
    return std::tie(a.namespace_name, a.name) < std::tie(b.namespace_name, b.name);
  });
  CHECK(Describe(snapshot) == Describe(KubectlKeys(*cluster, {"pods", "-n", kNamespace})));
}

// The pods informer's subscriber_count on one replica.
int64_t PodSubscribers(v1::Informer::Stub& stub) {
  const std::optional<v1::ResourceInfo> pods = FindInformer(ListResources(stub), "pods");
  REQUIRE(pods.has_value());
  return pods->subscriber_count();
}

TEST_CASE(
    "a client balancing with round_robin spreads its streams over the replicas and resumes the "
    "ones a stopped replica ended on the others",
    "[cluster]") {
  std::unique_ptr<TestCluster> cluster = StartCluster();
  CreateOk(*cluster, fmt::format("---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {}}}\n",
                                 kNamespace) +
                         PodYaml("q1"));
  std::unique_ptr<Daemon> first = Daemon::Start(*cluster, kConfig);
  std::unique_ptr<Daemon> second = Daemon::Start(*cluster, kConfig);
  REQUIRE(AwaitSynced(first->stub(), {"pods"}, seconds(30)));
  REQUIRE(AwaitSynced(second->stub(), {"pods"}, seconds(30)));

  // What a client of the headless Service does (README "Running several replicas"), with the
  // replicas' addresses given directly instead of through DNS.
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(R"({"loadBalancingConfig":[{"round_robin":{}}]})");
  const std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel("ipv4:" + first->address() + "," + second->address(),
                                grpc::InsecureChannelCredentials(), args);
  REQUIRE(channel->WaitForConnected(std::chrono::system_clock::now() + seconds(10)));
  // round_robin is READY as soon as one connection is; it alternates between the replicas once
  // both are. Until then, two streams in a row land on the same one.
  REQUIRE(WaitUntil(
      [&] {
        Subscriber a(channel, SubscribeTo("pods", kNamespace));
        Subscriber b(channel, SubscribeTo("pods", kNamespace));
        return a.WaitFor(HasSynced, seconds(5)) && b.WaitFor(HasSynced, seconds(5)) &&
               PodSubscribers(first->stub()) == 1 && PodSubscribers(second->stub()) == 1;
      },
      seconds(20), milliseconds(200)));
  REQUIRE(
      WaitUntil([&] { return PodSubscribers(first->stub()) + PodSubscribers(second->stub()) == 0; },
                seconds(10)));

  constexpr int kStreams = 6;
  std::vector<std::unique_ptr<Subscriber>> streams;
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(std::make_unique<Subscriber>(channel, SubscribeTo("pods", kNamespace)));
  }
  for (auto& stream : streams) REQUIRE(stream->WaitFor(HasSynced, seconds(20)));
  const int64_t on_first = PodSubscribers(first->stub());
  const int64_t on_second = PodSubscribers(second->stub());
  INFO("streams on the first replica: " << on_first << ", on the second: " << on_second);
  CHECK(on_first == kStreams / 2);
  CHECK(on_second == kStreams / 2);

  // The first replica stops: its streams end UNAVAILABLE, the others stay.
  first.reset();
  std::vector<std::size_t> ended;
  REQUIRE(WaitUntil(
      [&] {
        ended.clear();
        for (std::size_t i = 0; i < streams.size(); ++i) {
          if (streams[i]->status().has_value()) ended.push_back(i);
        }
        return static_cast<int64_t>(ended.size()) == on_first;
      },
      seconds(20)));
  for (std::size_t i : ended) {
    CHECK(streams[i]->status()->error_code() == grpc::StatusCode::UNAVAILABLE);
  }

  // A change while they are away; each ended stream resumes through the same channel, which now
  // picks the second replica, from the last version it received (its snapshot's).
  const ObjectKey q1 = Annotate(*cluster, "q1", "away");
  const std::string change = fmt::format("MODIFIED {}/q1 rv={}", kNamespace, q1.resource_version);
  std::vector<std::unique_ptr<Subscriber>> resumed;
  for (std::size_t i : ended) {
    resumed.push_back(std::make_unique<Subscriber>(
        channel, SubscribeTo("pods", kNamespace, streams[i]->events().back().resource_version())));
  }
  for (auto& stream : resumed) CHECK(stream->WaitForCount(1, seconds(20)));
  for (std::size_t i = 0; i < streams.size(); ++i) {
    if (streams[i]->status().has_value()) continue;
    CHECK(streams[i]->WaitFor(
        [](const std::vector<v1::Event>& events) { return !AfterSynced(events).empty(); },
        seconds(20)));
  }
  std::this_thread::sleep_for(milliseconds(500));  // nothing more arrives
  for (auto& stream : resumed) {
    CHECK(Describe(stream->events()) == std::vector<std::string>{change});
    CHECK_FALSE(stream->status().has_value());
  }
  for (auto& stream : streams) {
    if (stream->status().has_value()) continue;
    CHECK(Describe(AfterSynced(stream->events())) == std::vector<std::string>{change});
  }
  CHECK(PodSubscribers(second->stub()) == kStreams);
}

}  // namespace
}  // namespace informerd::test::e2e
