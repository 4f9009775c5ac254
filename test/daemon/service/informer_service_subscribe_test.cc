// Specification of InformerService.Subscribe (daemon/service/informer_service.*) over a real gRPC
// server: the stream a client reads for each way of subscribing, how streams end, and that events
// are encoded once whatever the number of subscribers.
#include <grpcpp/generic/generic_stub.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daemon/service/informer_service.h"
#include "fmt/format.h"
#include "test/common/informer_service_test_support.h"

namespace informerd::daemon {
namespace {

using testing::Added;
using testing::Bookmark;
using testing::Deleted;
using testing::Describe;
using testing::Harness;
using testing::HarnessOptions;
using testing::Modified;
using testing::ObjectJson;
using testing::ObjectSpec;
using testing::Stream;
using testing::SubscribeError;
using testing::SubscribeTo;
using testing::Sync;
using testing::WaitUntil;
using Strings = std::vector<std::string>;

TEST_CASE("without a resource version: the snapshot as ADDED, then SYNCED, then live events",
          "[subscribe]") {
  Harness harness;
  auto cache = harness.AddCache();
  const ObjectSpec a{"default", "a", 5, {{"app", "web"}}, "n1"};
  const ObjectSpec b{"default", "b", 7};
  const ObjectSpec c{"kube-system", "c", 3};
  Sync(*cache, {c, b, a}, 10);

  Stream stream(*harness.stub, SubscribeTo("pods"));
  const std::vector<v1::Event> snapshot = stream.Read(4);
  CHECK(Describe(snapshot) == Strings{"ADDED default/a rv=5", "ADDED default/b rv=7",
                                      "ADDED kube-system/c rv=3", "SYNCED rv=10"});
  // Objects are the JSON as cached: managedFields stripped, everything else verbatim.
  CHECK(snapshot[0].object() == testing::Object(a).json);
  CHECK(snapshot[0].object().find("managedFields") == std::string::npos);
  CHECK(snapshot[0].uid() == "uid-a");
  CHECK(snapshot[3].object().empty());
  CHECK(snapshot[3].namespace_().empty());
  CHECK(snapshot[3].name().empty());
  CHECK(snapshot[3].uid().empty());

  const ObjectSpec d{"default", "d", 11};
  ObjectSpec a2 = a;
  a2.resource_version = 12;
  a2.node_name = "n2";
  ObjectSpec b_deleted = b;
  b_deleted.resource_version = 13;
  cache->ApplyWatchEvent(Added(d));
  cache->ApplyWatchEvent(Modified(a2));
  cache->ApplyWatchEvent(Deleted(b_deleted));
  const std::vector<v1::Event> live = stream.Read(3);
  CHECK(Describe(live) ==
        Strings{"ADDED default/d rv=11", "MODIFIED default/a rv=12", "DELETED default/b rv=13"});
  CHECK(live[1].object() == testing::Object(a2).json);
  CHECK(live[2].object() == testing::Object(b_deleted).json);
  CHECK(live[2].uid() == "uid-b");
}

// The events of a stream's messages in order: a batch's entries, or the message itself.
std::vector<v1::Event> Flatten(const std::vector<v1::Event>& messages) {
  std::vector<v1::Event> events;
  for (const v1::Event& message : messages) {
    if (message.batch_size() == 0) {
      events.push_back(message);
      continue;
    }
    for (const v1::Event& event : message.batch()) events.push_back(event);
  }
  return events;
}

// Reads messages until they hold `count` events (fails the test if the stream ends first).
std::vector<v1::Event> ReadEvents(Stream& stream, std::size_t count) {
  std::vector<v1::Event> messages;
  while (Flatten(messages).size() < count) {
    std::optional<v1::Event> message = stream.Next();
    REQUIRE(message.has_value());
    messages.push_back(*message);
  }
  return messages;
}

TEST_CASE(
    "max_events_per_message: waiting events come several to a message, in order; streams "
    "that did not ask get one event per message",
    "[subscribe]") {
  Harness harness;
  auto cache = harness.AddCache();
  std::vector<ObjectSpec> objects;
  for (uint64_t i = 0; i < 50; ++i) objects.push_back({"default", fmt::format("o{:02}", i), i + 1});
  Sync(*cache, objects, 100);

  v1::SubscribeRequest batched_request = SubscribeTo("pods");
  batched_request.set_max_events_per_message(16);
  Stream batched(*harness.stub, batched_request);
  Stream plain(*harness.stub, SubscribeTo("pods"));
  // The snapshot (50 objects and SYNCED) waits whole from the start: full batches.
  const std::vector<v1::Event> messages = ReadEvents(batched, 51);
  const std::vector<v1::Event> one_each = plain.Read(51);
  for (const v1::Event& message : one_each) CHECK(message.batch_size() == 0);
  const std::vector<v1::Event> events = Flatten(messages);
  REQUIRE(events.size() == 51);
  CHECK(Describe(events) == Describe(one_each));
  CHECK(events[7].object() == one_each[7].object());
  CHECK(events[7].uid() == "uid-o07");
  CHECK(messages.size() == 4);  // 16 + 16 + 16 + 3
  for (const v1::Event& message : messages) {
    CHECK(message.batch_size() <= 16);
    if (message.batch_size() == 0) continue;
    // A batch carries nothing but its events, and no entry is a batch itself.
    CHECK(message.type() == v1::Event::TYPE_UNSPECIFIED);
    CHECK(message.resource_version().empty());
    CHECK(message.object().empty());
    for (const v1::Event& event : message.batch()) CHECK(event.batch_size() == 0);
  }

  // Live events: whatever is waiting when a write completes goes out together, in order.
  for (uint64_t i = 0; i < 40; ++i) {
    ObjectSpec changed = objects[i];
    changed.resource_version = 101 + i;
    cache->ApplyWatchEvent(testing::Modified(changed));
  }
  const std::vector<v1::Event> live = Flatten(ReadEvents(batched, 40));
  const std::vector<v1::Event> live_plain = plain.Read(40);
  CHECK(Describe(live) == Describe(live_plain));
  for (const v1::Event& message : live_plain) CHECK(message.batch_size() == 0);
}

TEST_CASE("resource version \"0\" is a snapshot too", "[subscribe]") {
  Harness harness;
  auto cache = harness.AddCache();
  Sync(*cache, {{"default", "a", 5}}, 10);
  Stream stream(*harness.stub, SubscribeTo("pods", "", "", "", "0"));
  CHECK(Describe(stream.Read(2)) == Strings{"ADDED default/a rv=5", "SYNCED rv=10"});
}

TEST_CASE("resuming from a resource version delivers exactly the events after it", "[subscribe]") {
  Harness harness;
  auto cache = harness.AddCache();
  Sync(*cache, {}, 10);
  for (uint64_t rv = 11; rv <= 15; ++rv) {
    cache->ApplyWatchEvent(Added({"default", fmt::format("p{}", rv), rv}));
  }

  Stream stream(*harness.stub, SubscribeTo("pods", "", "", "", "12"));
  CHECK(Describe(stream.Read(3)) ==
        Strings{"ADDED default/p13 rv=13", "ADDED default/p14 rv=14", "ADDED default/p15 rv=15"});
  cache->ApplyWatchEvent(Added({"default", "p16", 16}));
  CHECK(Describe(stream.Read(1)) == Strings{"ADDED default/p16 rv=16"});

  SECTION("no SYNCED on a resumed stream, and nothing before the first event after X") {
    Stream latest(*harness.stub, SubscribeTo("pods", "", "", "", "16"));
    latest.WaitSubscribed();
    cache->ApplyWatchEvent(Added({"default", "p17", 17}));
    CHECK(Describe(latest.Read(1)) == Strings{"ADDED default/p17 rv=17"});
  }
}

TEST_CASE("resource versions the cache cannot serve", "[subscribe][errors]") {
  Harness harness;
  Harness::CacheSpec spec;
  spec.cache.window_max_events = 2;
  auto cache = harness.AddCache(spec);
  Sync(*cache, {}, 10);
  for (uint64_t rv = 11; rv <= 15; ++rv) {
    cache->ApplyWatchEvent(Added({"default", fmt::format("p{}", rv), rv}));
  }

  SECTION("older than the replay window: OUT_OF_RANGE") {
    const grpc::Status status =
        SubscribeError(*harness.stub, SubscribeTo("pods", "", "", "", "11"));
    CHECK(status.error_code() == grpc::StatusCode::OUT_OF_RANGE);
    CHECK_THAT(status.error_message(), Catch::Contains("11"));
  }
  SECTION("not a number: INVALID_ARGUMENT") {
    const grpc::Status status =
        SubscribeError(*harness.stub, SubscribeTo("pods", "", "", "", "abc"));
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(status.error_message(), Catch::Contains("\"abc\""));
  }
  SECTION("beyond 64 bits: INVALID_ARGUMENT") {
    const grpc::Status status =
        SubscribeError(*harness.stub, SubscribeTo("pods", "", "", "", "99999999999999999999999"));
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(status.error_message(), Catch::Contains("99999999999999999999999"));
  }
  // The server goes on serving.
  Stream stream(*harness.stub, SubscribeTo("pods", "", "", "", "14"));
  CHECK(Describe(stream.Read(1)) == Strings{"ADDED default/p15 rv=15"});
}

TEST_CASE("selectors: an object that starts matching is ADDED, one that stops matching DELETED",
          "[subscribe]") {
  Harness harness;
  auto cache = harness.AddCache();
  const ObjectSpec web{"default", "a", 5, {{"app", "web"}}, "n1"};
  Sync(*cache,
       {web, {"default", "b", 6, {{"app", "db"}}, "n1"}, {"other", "c", 7, {{"app", "web"}}}}, 10);

  Stream labels(*harness.stub, SubscribeTo("pods", "default", "app=web"));
  Stream fields(*harness.stub, SubscribeTo("pods", "", "", "spec.nodeName=n1"));
  CHECK(Describe(labels.Read(2)) == Strings{"ADDED default/a rv=5", "SYNCED rv=10"});
  CHECK(Describe(fields.Read(3)) ==
        Strings{"ADDED default/a rv=5", "ADDED default/b rv=6", "SYNCED rv=10"});

  ObjectSpec moved = web;  // stops matching app=web, moves to n2
  moved.labels = {{"app", "db"}};
  moved.node_name = "n2";
  moved.resource_version = 11;
  cache->ApplyWatchEvent(Modified(moved));
  ObjectSpec back = moved;  // matches app=web again, still on n2
  back.labels = {{"app", "web"}};
  back.resource_version = 12;
  cache->ApplyWatchEvent(Modified(back));

  const std::vector<v1::Event> by_labels = labels.Read(2);
  CHECK(Describe(by_labels) == Strings{"DELETED default/a rv=11", "ADDED default/a rv=12"});
  // DELETED carries the last state that matched, at the change's resource version.
  CHECK(by_labels[0].object() == testing::Object(web).json);
  CHECK(by_labels[1].object() == testing::Object(back).json);
  const std::vector<v1::Event> by_fields = fields.Read(1);
  CHECK(Describe(by_fields) == Strings{"DELETED default/a rv=11"});
  // Nothing more for the field selector: rv 12 is still on n2. The next event it sees is rv 13.
  cache->ApplyWatchEvent(Added({"default", "z", 13, {}, "n1"}));
  CHECK(Describe(fields.Read(1)) == Strings{"ADDED default/z rv=13"});
}

TEST_CASE("bookmarks reach only the subscribers that asked for them", "[subscribe]") {
  Harness harness;
  auto cache = harness.AddCache();
  Sync(*cache, {}, 10);
  v1::SubscribeRequest with = SubscribeTo("pods", "", "", "", "10");
  with.set_allow_bookmarks(true);
  Stream bookmarks(*harness.stub, with);
  Stream plain(*harness.stub, SubscribeTo("pods", "", "", "", "10"));
  bookmarks.WaitSubscribed();
  plain.WaitSubscribed();

  cache->ApplyWatchEvent(Bookmark(20));
  cache->ApplyWatchEvent(Added({"default", "a", 21}));
  const std::vector<v1::Event> received = bookmarks.Read(2);
  CHECK(Describe(received) == Strings{"BOOKMARK rv=20", "ADDED default/a rv=21"});
  CHECK(received[0].object().empty());
  CHECK(received[0].name().empty());
  CHECK(Describe(plain.Read(1)) == Strings{"ADDED default/a rv=21"});
}

TEST_CASE("each event is encoded once per delivered type, whatever the number of subscribers",
          "[subscribe]") {
  Harness harness;
  auto cache = harness.AddCache();
  Sync(*cache, {{"default", "old", 3}}, 10);
  std::vector<std::unique_ptr<Stream>> all;
  std::vector<std::unique_ptr<Stream>> web;
  for (int i = 0; i < 5; ++i) {
    all.push_back(std::make_unique<Stream>(*harness.stub, SubscribeTo("pods")));
    web.push_back(std::make_unique<Stream>(*harness.stub, SubscribeTo("pods", "", "app=web")));
  }
  for (auto& stream : all) CHECK(Describe(stream->Read(2))[1] == "SYNCED rv=10");
  for (auto& stream : web) CHECK(Describe(stream->Read(1)) == Strings{"SYNCED rv=10"});

  cache->ApplyWatchEvent(Added({"default", "x", 11, {{"app", "web"}}}));
  cache->ApplyWatchEvent(Modified({"default", "x", 12, {{"app", "db"}}}));
  for (auto& stream : all) {
    CHECK(Describe(stream->Read(2)) ==
          Strings{"ADDED default/x rv=11", "MODIFIED default/x rv=12"});
  }
  for (auto& stream : web) {
    CHECK(Describe(stream->Read(2)) == Strings{"ADDED default/x rv=11", "DELETED default/x rv=12"});
  }

  std::map<std::string, int> live;  // "TYPE rv" → encoder calls, for the live events
  std::set<std::pair<const core::CacheEvent*, core::EventType>> distinct;
  for (const testing::EncodeCall& call : harness.encode_calls()) {
    if (call.resource_version == "11" || call.resource_version == "12") {
      ++live[fmt::format("{} {}", core::EventTypeName(call.type), call.resource_version)];
      // Never the same (event, type) twice; these events are still alive in the replay window,
      // so their addresses identify them.
      CHECK(distinct.insert({call.event, call.type}).second);
    }
  }
  CHECK(live == std::map<std::string, int>{{"ADDED 11", 1}, {"MODIFIED 12", 1}, {"DELETED 12", 1}});
}

TEST_CASE("a subscriber that stops reading ends with RESOURCE_EXHAUSTED; the others get everything",
          "[subscribe][slow]") {
  HarnessOptions options;
  options.service.subscriber_queue_capacity = 16;
  Harness harness(options);
  auto cache = harness.AddCache();
  Sync(*cache, {}, 1);
  constexpr int kReaders = 50;
  constexpr int kEvents = 120;
  constexpr std::size_t kObjectBytes = 8 << 10;

  // The slow client has its own connection, with a fixed 64 KiB stream window (no BDP probing),
  // and never reads until the end: the server's writes to it stall.
  grpc::ChannelArguments slow_args;
  slow_args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  auto slow_channel = harness.NewChannel(slow_args);
  auto slow_stub = v1::Informer::NewStub(slow_channel);
  Stream slow(*slow_stub, SubscribeTo("pods"));
  slow.WaitSubscribed();

  std::vector<std::unique_ptr<Stream>> streams;
  std::vector<std::atomic<int>> progress(kReaders);
  std::vector<Strings> received(kReaders);
  std::vector<grpc::Status> ends(kReaders);
  for (int i = 0; i < kReaders; ++i) {
    streams.push_back(std::make_unique<Stream>(*harness.stub, SubscribeTo("pods")));
    streams.back()->WaitSubscribed();
  }
  std::vector<std::thread> readers;
  for (int i = 0; i < kReaders; ++i) {
    readers.emplace_back([&, i] {
      while (std::optional<v1::Event> event = streams[i]->Next()) {
        received[i].push_back(Describe(*event));
        if (event->type() == v1::Event::ADDED) ++progress[i];
        if (progress[i] == kEvents) break;
      }
    });
  }
  const auto slowest = [&] {
    int least = kEvents;
    for (const std::atomic<int>& p : progress) least = std::min(least, p.load());
    return least;
  };
  Strings expected{"SYNCED rv=1"};
  for (int i = 1; i <= kEvents; ++i) {
    // Paced so that the readers stay well within their queue (8 of 16), even under sanitizers.
    REQUIRE(WaitUntil([&] { return slowest() >= i - 8; }));
    ObjectSpec object{"default", fmt::format("p{:03}", i), static_cast<uint64_t>(1 + i)};
    object.padding = kObjectBytes;
    cache->ApplyWatchEvent(Added(object));
    expected.push_back(fmt::format("ADDED default/{} rv={}", object.name, 1 + i));
  }
  for (std::thread& reader : readers) reader.join();
  for (int i = 0; i < kReaders; ++i) {
    INFO("reader " << i);
    CHECK(received[i] == expected);
  }
  const core::CacheStats stats = cache->Stats();
  CHECK(stats.subscribers_fell_behind == 1);
  CHECK(stats.subscriber_count == kReaders);

  // The slow client, reading at last: a prefix of the stream, then RESOURCE_EXHAUSTED naming the
  // resource version of the last event it received.
  std::vector<v1::Event> got;
  const grpc::Status status = slow.Finish(&got);
  CHECK(status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  REQUIRE(got.size() >= 2);
  CHECK(got.size() < expected.size());
  const Strings got_text = Describe(got);
  CHECK(got_text == Strings(expected.begin(), expected.begin() + got.size()));
  CHECK_THAT(status.error_message(),
             Catch::Contains(fmt::format("resource version {}", got.back().resource_version())));
  for (auto& stream : streams) stream->context().TryCancel();
  CHECK(WaitUntil([&] { return cache->Stats().subscriber_count == 0; }));
}

TEST_CASE("a stream whose client goes away is cleaned up", "[subscribe]") {
  Harness harness;
  auto cache = harness.AddCache();
  Sync(*cache, {{"default", "a", 5}}, 10);

  SECTION("the client cancels") {
    Stream stream(*harness.stub, SubscribeTo("pods"));
    CHECK(stream.Read(2).size() == 2);
    CHECK(cache->Stats().subscriber_count == 1);
    stream.context().TryCancel();
    CHECK(stream.Finish().error_code() == grpc::StatusCode::CANCELLED);
    CHECK(WaitUntil([&] { return cache->Stats().subscriber_count == 0; }));
  }
  SECTION("the client's deadline passes") {
    Stream stream(*harness.stub, SubscribeTo("pods"), std::chrono::milliseconds(1000));
    CHECK(stream.Read(2).size() == 2);
    CHECK(stream.Finish().error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
    CHECK(WaitUntil([&] { return cache->Stats().subscriber_count == 0; }));
  }
  SECTION("the client's connection goes, with the stream in the middle of a write") {
    auto channel = harness.NewChannel();
    auto stub = v1::Informer::NewStub(channel);
    {
      auto stream = std::make_unique<Stream>(*stub, SubscribeTo("pods"));
      stream->WaitSubscribed();
      for (uint64_t rv = 11; rv < 60; ++rv) {
        ObjectSpec object{"default", fmt::format("p{}", rv), rv};
        object.padding = 16 << 10;
        cache->ApplyWatchEvent(Added(object));
      }
      stream.reset();  // the context cancels the call
    }
    stub.reset();
    channel.reset();
    CHECK(WaitUntil([&] { return cache->Stats().subscriber_count == 0; }));
  }
  SECTION("the server shuts down with the stream open") {
    Stream stream(*harness.stub, SubscribeTo("pods"));
    CHECK(stream.Read(2).size() == 2);
    harness.ShutdownServer();
    // gRPC cancels every call at shutdown and tells the client UNAVAILABLE (retry elsewhere):
    // the stream was open until then, and nothing the service did ended it first.
    const grpc::Status status = stream.Finish();
    CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(status.error_message() == "Cancelling all calls");
    CHECK(WaitUntil([&] { return cache->Stats().subscriber_count == 0; }));
  }
}

TEST_CASE("cancelled while the resource name is being resolved", "[subscribe]") {
  Harness harness;
  auto cache = harness.AddCache();
  Sync(*cache, {}, 10);
  harness.resolver.set_deferred(true);
  // From the current version: nothing to write, so only the cancellation can end the stream.
  Stream stream(*harness.stub, SubscribeTo("pods", "", "", "", "10"));
  REQUIRE(WaitUntil([&] { return harness.resolver.pending() == 1; }));
  stream.context().TryCancel();
  CHECK(stream.Finish().error_code() == grpc::StatusCode::CANCELLED);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the server sees the cancel
  harness.resolver.Release();
  CHECK(WaitUntil([&] { return cache->Stats().subscriber_count == 0; },
                  std::chrono::milliseconds(2000)));
  // The resolver answering from another thread is fine otherwise.
  Stream next(*harness.stub, SubscribeTo("pods"));
  REQUIRE(WaitUntil([&] { return harness.resolver.pending() == 1; }));
  harness.resolver.Release();
  CHECK(Describe(next.Read(1)) == Strings{"SYNCED rv=10"});
}

TEST_CASE("streams end with UNAVAILABLE when the resource stops being served", "[subscribe]") {
  Harness harness;
  auto cache = harness.AddCache();
  Sync(*cache, {}, 10);
  Stream stream(*harness.stub, SubscribeTo("pods"));
  CHECK(Describe(stream.Read(1)) == Strings{"SYNCED rv=10"});

  SECTION("its informer is removed (a CRD deleted)") {
    REQUIRE(harness.registry.Remove(harness.ids[cache]));
    cache->Shutdown(absl::UnavailableError("pods is no longer served by the apiserver"));
    const grpc::Status status = stream.Finish();
    CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(status.error_message() == "pods is no longer served by the apiserver");
    const grpc::Status again = SubscribeError(*harness.stub, SubscribeTo("pods"));
    CHECK(again.error_code() == grpc::StatusCode::NOT_FOUND);
  }
  SECTION("informerd shuts down") {
    harness.service->Shutdown();
    const grpc::Status status = stream.Finish();
    CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(status.error_message() == "informerd is shutting down");
    const grpc::Status again = SubscribeError(*harness.stub, SubscribeTo("pods"));
    CHECK(again.error_code() == grpc::StatusCode::UNAVAILABLE);
  }
}

TEST_CASE("Subscribe's request errors", "[subscribe][errors]") {
  HarnessOptions options;
  options.max_receive_message_bytes = 32 << 20;
  Harness harness(options);
  Sync(*harness.AddCache(), {}, 10);
  Harness::CacheSpec nodes;
  nodes.resource = testing::NodesResource();
  harness.AddCache(nodes);
  const auto error = [&](const v1::SubscribeRequest& request) {
    return SubscribeError(*harness.stub, request);
  };

  SECTION("a name that names nothing: NOT_FOUND from the resolver") {
    const grpc::Status status = error(SubscribeTo("gadgets"));
    CHECK(status.error_code() == grpc::StatusCode::NOT_FOUND);
    CHECK(status.error_message() == "the server doesn't have a resource type \"gadgets\"");
  }
  SECTION("an ambiguous name: INVALID_ARGUMENT from the resolver") {
    const grpc::Status status = error(SubscribeTo("ambiguous"));
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(status.error_message(), Catch::Contains("ambiguous.a.example.com"));
  }
  SECTION("a resource this informerd does not serve: NOT_FOUND listing what it does") {
    const grpc::Status status = error(SubscribeTo("deployments"));
    CHECK(status.error_code() == grpc::StatusCode::NOT_FOUND);
    CHECK(status.error_message() ==
          "deployments.apps is not served by this informerd (configured: pods, nodes)");
  }
  SECTION("a malformed label selector") {
    const grpc::Status status = error(SubscribeTo("pods", "", "app in (web"));
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(status.error_message(), Catch::StartsWith("label selector \"app in (web\""));
  }
  SECTION("a malformed field selector") {
    const grpc::Status status = error(SubscribeTo("pods", "", "", "metadata.name"));
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(status.error_message(), Catch::StartsWith("field selector \"metadata.name\""));
  }
  SECTION("a field the cache does not index") {
    const grpc::Status status = error(SubscribeTo("pods", "", "", "status.phase=Running"));
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(status.error_message(), Catch::Contains("status.phase"));
    CHECK_THAT(status.error_message(), Catch::Contains("spec.nodeName"));
  }
  SECTION("a namespace for a cluster-scoped resource") {
    const grpc::Status status = error(SubscribeTo("nodes", "default"));
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(status.error_message() ==
          "nodes is cluster-scoped: namespace must be empty, got \"default\"");
  }
  SECTION("a 10 MB selector") {
    const grpc::Status status = error(SubscribeTo("pods", "", std::string(10 << 20, 'a')));
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(status.error_message() ==
          "label selector is 10485760 bytes long; at most 4096 are accepted "
          "(--max-selector-bytes=4096)");
  }
  SECTION("a selector that is long but allowed: the message quoting it is cut") {
    const grpc::Status status = error(SubscribeTo("pods", "", "", std::string(4000, 'a')));
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(status.error_message().size() < 1100);
    CHECK_THAT(status.error_message(), Catch::StartsWith("field selector \"aaaa"));
    CHECK_THAT(status.error_message(), Catch::EndsWith("more bytes)"));
  }
  SECTION("bytes that are not a SubscribeRequest") {
    grpc::GenericStub generic(harness.channel);
    grpc::CompletionQueue queue;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    auto call = generic.PrepareCall(&context, "/informerd.v1.Informer/Subscribe", &queue);
    void* tag = nullptr;
    bool ok = false;
    const auto step = [&](intptr_t expected) {
      REQUIRE(queue.Next(&tag, &ok));
      CHECK(reinterpret_cast<intptr_t>(tag) == expected);
      return ok;
    };
    call->StartCall(reinterpret_cast<void*>(1));
    step(1);
    // Field 1 (resource) claims 16 bytes; 3 follow.
    const std::string garbage(
        "\x0a\x10"
        "abc",
        5);
    grpc::Slice slice(garbage);
    call->WriteLast(grpc::ByteBuffer(&slice, 1), grpc::WriteOptions(), reinterpret_cast<void*>(2));
    step(2);
    grpc::ByteBuffer response;
    call->Read(&response, reinterpret_cast<void*>(3));
    CHECK_FALSE(step(3));
    grpc::Status status;
    call->Finish(&status, reinterpret_cast<void*>(4));
    step(4);
    CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(status.error_message() ==
          "the request is not a valid informerd.v1.SubscribeRequest message");
    queue.Shutdown();
    while (queue.Next(&tag, &ok)) {
    }
  }
  // Whatever came before, the server still serves.
  Stream stream(*harness.stub, SubscribeTo("pods"));
  CHECK(Describe(stream.Read(1)) == Strings{"SYNCED rv=10"});
}

}  // namespace
}  // namespace informerd::daemon
