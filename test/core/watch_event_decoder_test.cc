// Specification of core/watch_event_decoder.*: a WATCH body, cut anywhere, becomes events.
#include "core/watch_event_decoder.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace informerd::core {
namespace {

using Labels = std::vector<LabelSet::Entry>;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

WatchDecoderOptions Options(std::vector<std::string> extra_paths = {}) {
  WatchDecoderOptions options;
  options.scan.strip_managed_fields = true;
  options.scan.extra_field_paths = std::move(extra_paths);
  return options;
}

// Raw (unescaped) multi-byte UTF-8 in names and values: "é" is 2 bytes, "☕" 3, "😀" 4.
const std::string kManagedFields =
    R"("managedFields":[{"manager":"kubelet","operation":"Update","apiVersion":"v1",)"
    R"("time":"2024-05-01T10:00:01Z","fieldsType":"FieldsV1","fieldsV1":{"f:status":)"
    R"({"f:conditions":{"k:{\"type\":\"Ready\"}":{".":{},"f:status":{}}}}},"subresource":"status"}])";
std::string PodHead(const std::string& resource_version) {
  return R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":"caf)"
         "\xC3\xA9"
         R"(-1","namespace":"default","uid":"9f8e7d6c-0000-4000-8000-000000000001",)"
         R"("resourceVersion":")" +
         resource_version +
         R"(","labels":{"app":"caf)"
         "\xC3\xA9"
         R"(","z":"\"quoted\" \\ back\/slash"},)"
         R"("annotations":{"mood":")"
         "\xE2\x98\x95 \xF0\x9F\x98\x80"
         R"( \ud83d\ude00 say \"hi\""},)";
}
const std::string kPodTail =
    R"("creationTimestamp":"2024-05-01T10:00:00Z"},"spec":{"nodeName":"node-\"7\"",)"
    R"("containers":[{"name":"app","image":"nginx"}]},"status":{"phase":"Running"}})";

std::string Pod(const std::string& resource_version) {
  return PodHead(resource_version) + kManagedFields + "," + kPodTail;
}
std::string StrippedPod(const std::string& resource_version) {
  return PodHead(resource_version) + kPodTail;
}

const std::string kDeletedPod =
    R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":"gone","namespace":"default",)"
    R"("uid":"9f8e7d6c-0000-4000-8000-000000000002","resourceVersion":"130",)"
    R"("deletionTimestamp":"2024-05-01T10:09:00Z",)" +
    kManagedFields + R"(},"spec":{"nodeName":"node-1"}})";
const std::string kDeletedPodStripped =
    R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":"gone","namespace":"default",)"
    R"("uid":"9f8e7d6c-0000-4000-8000-000000000002","resourceVersion":"130",)"
    R"("deletionTimestamp":"2024-05-01T10:09:00Z"},"spec":{"nodeName":"node-1"}})";

const std::string kInitialEventsEndBookmark =
    R"({"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":)"
    R"({"resourceVersion":"120","creationTimestamp":null,)"
    R"("annotations":{"k8s.io/initial-events-end":"true"}},"spec":{"containers":null},)"
    R"("status":{}}})";
const std::string kExpired =
    R"({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},)"
    R"json("status":"Failure","message":"too old resource version: 100 (150)",)json"
    R"("reason":"Expired","code":410}})";

// Five events of every kind, each followed by a newline, as the apiserver writes them.
std::string Stream() {
  return R"({"type":"ADDED","object":)" + Pod("110") + "}\n" + R"({"type":"MODIFIED","object":)" +
         Pod("115") + "}\n" + kInitialEventsEndBookmark + "\n" + R"({"type":"DELETED","object":)" +
         kDeletedPod + "}\n" + kExpired + "\n";
}

std::vector<WatchEvent> ExpectedEvents() {
  std::vector<WatchEvent> events(5);
  ObjectRecord pod;
  pod.name = "caf\xC3\xA9-1";
  pod.namespace_name = "default";
  pod.uid = "9f8e7d6c-0000-4000-8000-000000000001";
  pod.labels = LabelSet({{"app", "caf\xC3\xA9"}, {"z", "\"quoted\" \\ back/slash"}});
  pod.extra_fields = {"node-\"7\""};

  events[0].type = WatchEventType::kAdded;
  events[0].object = pod;
  events[0].object.resource_version = "110";
  events[0].object.json = StrippedPod("110");

  events[1].type = WatchEventType::kModified;
  events[1].object = pod;
  events[1].object.resource_version = "115";
  events[1].object.json = StrippedPod("115");

  events[2].type = WatchEventType::kBookmark;
  events[2].resource_version = "120";
  events[2].initial_events_end = true;

  events[3].type = WatchEventType::kDeleted;
  events[3].object.name = "gone";
  events[3].object.namespace_name = "default";
  events[3].object.uid = "9f8e7d6c-0000-4000-8000-000000000002";
  events[3].object.resource_version = "130";
  events[3].object.deletion_timestamp = "2024-05-01T10:09:00Z";
  events[3].object.extra_fields = {"node-1"};
  events[3].object.json = kDeletedPodStripped;

  events[4].type = WatchEventType::kError;
  events[4].status = KubeStatus{410, "Failure", "Expired", "too old resource version: 100 (150)"};
  return events;
}

// Feeds `pieces` in order, then ends the body; fails the test on any error.
std::vector<WatchEvent> DecodeAll(const std::vector<std::string>& pieces) {
  WatchEventDecoder decoder(Options({"spec.nodeName"}));
  std::vector<WatchEvent> events;
  for (const std::string& piece : pieces) REQUIRE(decoder.Feed(piece, events).ok());
  REQUIRE(decoder.Finish(events).ok());
  REQUIRE(decoder.buffered_bytes() == 0);
  return events;
}

TEST_CASE("decodes a stream holding several events in one piece") {
  WatchEventDecoder decoder(Options({"spec.nodeName"}));
  std::vector<WatchEvent> events;
  REQUIRE(decoder.Feed(Stream(), events).ok());
  const std::vector<WatchEvent> expected = ExpectedEvents();
  REQUIRE(events.size() == expected.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    INFO("event " << i << " " << WatchEventTypeName(expected[i].type));
    CHECK(events[i].type == expected[i].type);
    CHECK(events[i].object.json == expected[i].object.json);
    CHECK(events[i].object.labels.entries() == expected[i].object.labels.entries());
    CHECK(events[i] == expected[i]);
  }
  CHECK(decoder.events_decoded() == 5);
  CHECK(decoder.resource_version() == "130");
  CHECK_FALSE(decoder.broken());
}

TEST_CASE("the stream test data really contains the cases the split tests are about") {
  const std::string stream = Stream();
  CHECK(stream.find("\xF0\x9F\x98\x80") != std::string::npos);  // 4-byte UTF-8
  CHECK(stream.find("\xE2\x98\x95") != std::string::npos);      // 3-byte UTF-8
  CHECK(stream.find("\\\"quoted\\\"") != std::string::npos);    // escaped quotes
  CHECK(stream.find("\\ud83d\\ude00") != std::string::npos);    // surrogate-pair escape
}

TEST_CASE("gives identical events when the stream is split at every byte boundary") {
  const std::string stream = Stream();
  const std::vector<WatchEvent> expected = ExpectedEvents();
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    INFO("split at byte " << cut);
    const std::vector<WatchEvent> events = DecodeAll({stream.substr(0, cut), stream.substr(cut)});
    REQUIRE(events == expected);
  }
}

TEST_CASE("gives identical events when fed one byte at a time") {
  const std::string stream = Stream();
  std::vector<std::string> pieces;
  for (char c : stream) pieces.emplace_back(1, c);
  CHECK(DecodeAll(pieces) == ExpectedEvents());
}

TEST_CASE("gives identical events for random piece sizes") {
  const std::string stream = Stream() + Stream();
  std::vector<WatchEvent> expected = ExpectedEvents();
  const std::vector<WatchEvent> once = ExpectedEvents();
  expected.insert(expected.end(), once.begin(), once.end());
  std::mt19937 random(20240501);  // fixed seed: failures reproduce
  for (int round = 0; round < 200; ++round) {
    std::vector<std::string> pieces;
    for (std::size_t at = 0; at < stream.size();) {
      const std::size_t size = std::uniform_int_distribution<std::size_t>(0, 700)(random);
      pieces.push_back(stream.substr(at, size));
      at += size;
    }
    INFO("round " << round);
    REQUIRE(DecodeAll(pieces) == expected);
  }
}

TEST_CASE("keeps an incomplete event until its newline arrives") {
  WatchEventDecoder decoder(Options());
  std::vector<WatchEvent> events;
  const std::string event = R"({"type":"ADDED","object":{"metadata":{"name":"a"}}})";
  REQUIRE(decoder.Feed(event, events).ok());
  CHECK(events.empty());
  CHECK(decoder.buffered_bytes() == event.size());
  REQUIRE(decoder.Feed("\n", events).ok());
  REQUIRE(events.size() == 1);
  CHECK(events[0].object.name == "a");
  CHECK(decoder.buffered_bytes() == 0);
}

TEST_CASE("accepts members in any order, unknown members, blank lines and CRLF") {
  WatchEventDecoder decoder(Options());
  std::vector<WatchEvent> events;
  REQUIRE(
      decoder
          .Feed(
              "\n\r\n"
              R"({"object":{"metadata":{"name":"a","resourceVersion":"7"}},"extra":[{"type":1}],"type":"ADDED"})"
              "\r\n  \n",
              events)
          .ok());
  REQUIRE(events.size() == 1);
  CHECK(events[0].type == WatchEventType::kAdded);
  CHECK(events[0].object.json == R"({"metadata":{"name":"a","resourceVersion":"7"}})");
  CHECK(decoder.resource_version() == "7");
}

TEST_CASE("ERROR events carry the Status: 410 Expired, and Gone from older servers") {
  WatchEventDecoder decoder(Options());
  std::vector<WatchEvent> events;
  REQUIRE(decoder.Feed(kExpired + "\n", events).ok());
  REQUIRE(
      decoder
          .Feed(R"({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},)"
                R"("status":"Failure","message":"401: The event in requested index is outdated )"
                R"(and cleared (the requested history has been cleared [3/1]) [2]",)"
                R"("reason":"Gone","code":410}})"
                "\n",
                events)
          .ok());
  REQUIRE(events.size() == 2);
  CHECK(events[0].type == WatchEventType::kError);
  CHECK(events[0].status.code == 410);
  CHECK(events[0].status.reason == "Expired");
  CHECK(events[0].status.message == "too old resource version: 100 (150)");
  CHECK(events[1].type == WatchEventType::kError);
  CHECK(events[1].status.code == 410);
  CHECK(events[1].status.reason == "Gone");
  CHECK_THAT(events[1].status.message, Catch::StartsWith("401: The event in requested index"));
  // An ERROR event is a well-formed event: the decoder is not broken by it.
  CHECK_FALSE(decoder.broken());
}

TEST_CASE("BOOKMARK carries the resource version and marks the end of initial events") {
  WatchDecoderOptions options = Options();
  options.start_resource_version = "100";
  WatchEventDecoder decoder(options);
  CHECK(decoder.resource_version() == "100");
  std::vector<WatchEvent> events;
  REQUIRE(decoder.Feed(kInitialEventsEndBookmark + "\n", events).ok());
  REQUIRE(decoder
              .Feed(R"({"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1",)"
                    R"("metadata":{"resourceVersion":"125","creationTimestamp":null},)"
                    R"("spec":{"containers":null},"status":{}}})"
                    "\n"
                    R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"126",)"
                    R"("annotations":{"k8s.io/initial-events-end":"false"}}}})"
                    "\n",
                    events)
              .ok());
  REQUIRE(events.size() == 3);
  CHECK(events[0].type == WatchEventType::kBookmark);
  CHECK(events[0].resource_version == "120");
  CHECK(events[0].initial_events_end);
  CHECK(events[0].object == ObjectRecord{});  // a bookmark carries no object to cache
  CHECK(events[1].resource_version == "125");
  CHECK_FALSE(events[1].initial_events_end);
  CHECK(events[2].resource_version == "126");
  CHECK_FALSE(events[2].initial_events_end);
  CHECK(decoder.resource_version() == "126");
}

TEST_CASE("garbage breaks the decoder with a message naming where and the resource version") {
  WatchEventDecoder decoder(Options());
  std::vector<WatchEvent> events;
  const std::string good =
      R"({"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"41"}}})"
      "\n";
  const absl::Status status = decoder.Feed(good + "<html>502 Bad Gateway</html>\n", events);
  REQUIRE_FALSE(status.ok());
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK(Message(status) == "watch event #2 at stream byte " + std::to_string(good.size()) +
                               " is malformed: invalid JSON at byte 0: Invalid value.; "
                               "resume from resourceVersion \"41\"");
  // The event before the garbage was delivered.
  REQUIRE(events.size() == 1);
  CHECK(events[0].object.name == "a");
  CHECK(decoder.broken());
  CHECK(decoder.status() == status);
  // Broken for good: later bytes, even valid ones, get the same error.
  CHECK(decoder.Feed(good, events) == status);
  CHECK(decoder.Finish(events) == status);
  CHECK(events.size() == 1);
}

TEST_CASE("an incomplete line is judged only when its newline arrives") {
  WatchEventDecoder decoder(Options());
  std::vector<WatchEvent> events;
  REQUIRE(decoder.Feed(R"({"type":"ADDED","obj)", events).ok());
  CHECK_FALSE(decoder.broken());
  const absl::Status status = decoder.Feed("\n", events);
  REQUIRE_FALSE(status.ok());
  CHECK_THAT(Message(status), Catch::Contains("invalid JSON at byte 20: Missing a "
                                              "closing quotation mark in string."));
  CHECK_THAT(Message(status), Catch::Contains("no resourceVersion known yet"));
}

TEST_CASE("rejects malformed events of every kind") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"type":"ADDED"})", "it has no \"object\""},
      {R"({"object":{"metadata":{}}})", "it has no \"type\""},
      {R"({"type":"SYNC","object":{}})", "unknown event type \"SYNC\""},
      {R"({"type":"added","object":{}})", "unknown event type \"added\""},
      {R"({"type":1,"object":{}})", "\"type\" is a number, not a string"},
      {R"({"type":"ADDED","object":"pod"})", "\"object\" is a string, not a JSON object"},
      {R"({"type":"ADDED","object":[{}]})", "\"object\" is an array, not a JSON object"},
      {R"({"type":"ADDED","object":null})", "\"object\" is null, not a JSON object"},
      {R"(["ADDED",{}])", "the event is an array, not a JSON object"},
      {R"({"type":"BOOKMARK","object":{"metadata":{}}})",
       "BOOKMARK without metadata.resourceVersion"},
      {R"({"type":"ADDED","object":{"metadata":{"name":1}}})", "metadata.name must be a string"},
      {"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"\xFF\"}}}",
       "Invalid encoding in string."},
      {R"({"type":"ADDED","object":{}} {})", "The document root must not be followed"},
      {std::string("{\"type\":\"ADDED\",\"object\":{}}\0", 29), "NUL byte"},
      // Nesting is bounded in the envelope too, not only inside the object.
      {R"({"type":"ADDED","x":)" + std::string(2000, '[') + std::string(2000, ']') +
           R"(,"object":{}})",
       "JSON nested more than 1000 levels deep at byte 1019"},
  };
  for (const auto& [line, expected] : cases) {
    INFO(line);
    WatchEventDecoder decoder(Options());
    std::vector<WatchEvent> events;
    const absl::Status status = decoder.Feed(line + "\n", events);
    REQUIRE_FALSE(status.ok());
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(Message(status), Catch::Contains(expected));
    CHECK(events.empty());
    CHECK(decoder.broken());
  }
}

// A watch event whose object is `padding` bytes of data after its metadata, as the apiserver
// writes a large ConfigMap or Secret.
std::string BigEvent(const std::string& type, const std::string& name, const std::string& rv,
                     std::size_t padding) {
  return R"({"type":")" + type +
         R"(","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":")" + name +
         R"(","namespace":"shop","uid":"uid-)" + name + R"(","resourceVersion":")" + rv +
         R"("},"data":{"blob":")" + std::string(padding, 'x') + R"("}}})";
}

TEST_CASE("an event longer than the limit is skipped, named, and the stream goes on") {
  const std::string small = BigEvent("ADDED", "a", "9", 0);
  const std::string large = BigEvent("MODIFIED", "big", "10", 4096);
  const std::string after = BigEvent("MODIFIED", "a", "11", 0);
  WatchDecoderOptions options = Options();
  options.max_event_bytes = 1024;
  options.start_resource_version = "5";
  REQUIRE(small.size() <= 1024);
  REQUIRE(large.size() > 1024);
  const std::string stream = small + "\n" + large + "\n" + after + "\n";

  SkippedObject expected_skip;
  expected_skip.namespace_name = "shop";
  expected_skip.name = "big";
  expected_skip.uid = "uid-big";
  expected_skip.resource_version = "10";
  expected_skip.bytes = large.size();
  expected_skip.limit = 1024;
  CHECK(expected_skip.Describe() == "shop/big");

  const auto check = [&](const std::vector<WatchEvent>& events) {
    REQUIRE(events.size() == 3);
    CHECK(events[0].object.name == "a");
    CHECK(events[0].object.resource_version == "9");
    CHECK_FALSE(events[0].skipped.has_value());
    // The skipped event keeps its type and names its object; it has no JSON.
    CHECK(events[1].type == WatchEventType::kModified);
    REQUIRE(events[1].skipped.has_value());
    CHECK(*events[1].skipped == expected_skip);
    CHECK(events[1].object == ObjectRecord());
    // The next one is decoded as usual.
    CHECK(events[2].object.name == "a");
    CHECK(events[2].object.resource_version == "11");
    CHECK(events[2].object.json ==
          R"({"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a","namespace":"shop",)"
          R"("uid":"uid-a","resourceVersion":"11"},"data":{"blob":""}})");
  };

  SECTION("in one piece") {
    WatchEventDecoder decoder(options);
    std::vector<WatchEvent> events;
    REQUIRE(decoder.Feed(stream, events).ok());
    check(events);
    CHECK_FALSE(decoder.broken());
    CHECK(decoder.events_decoded() == 3);
    CHECK(decoder.resource_version() == "11");
    CHECK(decoder.buffered_bytes() == 0);
  }
  SECTION("fed one byte at a time, never holding more than the limit") {
    WatchEventDecoder decoder(options);
    std::vector<WatchEvent> events;
    std::size_t most = 0;
    for (char c : stream) {
      REQUIRE(decoder.Feed(std::string_view(&c, 1), events).ok());
      most = std::max(most, decoder.buffered_bytes());
    }
    REQUIRE(decoder.Finish(events).ok());
    check(events);
    CHECK(most == 1024);
  }
  SECTION("in pieces that straddle the limit and the newlines") {
    for (std::size_t piece : {7u, 100u, 1000u, 1023u, 1024u, 1025u, 3000u}) {
      INFO(piece);
      WatchEventDecoder decoder(options);
      std::vector<WatchEvent> events;
      for (std::size_t at = 0; at < stream.size(); at += piece) {
        REQUIRE(decoder.Feed(std::string_view(stream).substr(at, piece), events).ok());
        CHECK(decoder.buffered_bytes() <= 1024);
      }
      REQUIRE(decoder.Finish(events).ok());
      check(events);
    }
  }
  SECTION("its resource version is where the watch resumes") {
    WatchEventDecoder decoder(options);
    std::vector<WatchEvent> events;
    REQUIRE(decoder.Feed(small + "\n" + large + "\n", events).ok());
    CHECK(decoder.resource_version() == "10");
  }
  SECTION("stream bytes after it are counted right") {
    WatchEventDecoder decoder(options);
    std::vector<WatchEvent> events;
    const absl::Status status = decoder.Feed(small + "\n" + large + "\n" + "garbage\n", events);
    REQUIRE_FALSE(status.ok());
    CHECK(Message(status) == "watch event #3 at stream byte " +
                                 std::to_string(small.size() + large.size() + 2) +
                                 " is malformed: invalid JSON at byte 0: Invalid value.; resume "
                                 "from resourceVersion \"10\"");
    CHECK(events.size() == 2);
  }
  SECTION("an event exactly at the limit is decoded") {
    WatchDecoderOptions at_limit = options;
    at_limit.max_event_bytes = large.size();
    WatchEventDecoder decoder(at_limit);
    std::vector<WatchEvent> events;
    REQUIRE(decoder.Feed(stream, events).ok());
    REQUIRE(events.size() == 3);
    CHECK_FALSE(events[1].skipped.has_value());
    CHECK(events[1].object.name == "big");
  }
  SECTION("a DELETED, and one whose kept bytes do not reach the name") {
    WatchDecoderOptions tiny = options;
    tiny.max_event_bytes = 40;  // {"type":"DELETED","object":{"kind":"Conf
    WatchEventDecoder decoder(tiny);
    std::vector<WatchEvent> events;
    REQUIRE(decoder.Feed(BigEvent("DELETED", "big", "12", 10) + "\n", events).ok());
    REQUIRE(events.size() == 1);
    CHECK(events[0].type == WatchEventType::kDeleted);
    REQUIRE(events[0].skipped.has_value());
    CHECK(events[0].skipped->name.empty());
    CHECK(events[0].skipped->Describe() == "an object with no name");
    CHECK(events[0].skipped->bytes == BigEvent("DELETED", "big", "12", 10).size());
    CHECK(decoder.resource_version() == "5");  // not known: unchanged
  }
  SECTION("a cluster-scoped object is named by its name") {
    SkippedObject node;
    node.name = "node-1";
    CHECK(node.Describe() == "node-1");
  }
  SECTION("the body ending inside it is an error, as for any event") {
    WatchEventDecoder decoder(options);
    std::vector<WatchEvent> events;
    REQUIRE(decoder.Feed(small + "\n" + large.substr(0, 2000), events).ok());
    const absl::Status status = decoder.Finish(events);
    REQUIRE_FALSE(status.ok());
    CHECK(Message(status) == "the watch body ended inside event #2 at stream byte " +
                                 std::to_string(small.size() + 1) +
                                 ", 2000 bytes so far (over the 1024-byte limit); resume from "
                                 "resourceVersion \"9\"");
    CHECK(decoder.broken());
    CHECK(events.size() == 1);
  }
  SECTION("the default limit is 32 MiB") {
    CHECK(WatchDecoderOptions{}.max_event_bytes == 32u * 1024 * 1024);
  }
}

TEST_CASE("Finish: a clean end, a last event without newline, and a body cut mid-event") {
  const std::string event = R"({"type":"ADDED","object":{"metadata":{"name":"a"}}})";
  SECTION("clean") {
    WatchEventDecoder decoder(Options());
    std::vector<WatchEvent> events;
    REQUIRE(decoder.Feed(event + "\n  ", events).ok());
    CHECK(decoder.Finish(events).ok());
    CHECK(events.size() == 1);
  }
  SECTION("last event without its newline") {
    WatchEventDecoder decoder(Options());
    std::vector<WatchEvent> events;
    REQUIRE(decoder.Feed(event, events).ok());
    REQUIRE(decoder.Finish(events).ok());
    REQUIRE(events.size() == 1);
    CHECK(events[0].object.name == "a");
  }
  SECTION("cut") {
    WatchEventDecoder decoder(Options());
    std::vector<WatchEvent> events;
    REQUIRE(decoder.Feed(event.substr(0, 30), events).ok());
    const absl::Status status = decoder.Finish(events);
    REQUIRE_FALSE(status.ok());
    CHECK_THAT(Message(status), Catch::StartsWith("the watch body ended inside an event: "));
    CHECK(decoder.broken());
    CHECK(events.empty());
  }
}

TEST_CASE("event type names are the wire names") {
  CHECK(std::string(WatchEventTypeName(WatchEventType::kAdded)) == "ADDED");
  CHECK(std::string(WatchEventTypeName(WatchEventType::kModified)) == "MODIFIED");
  CHECK(std::string(WatchEventTypeName(WatchEventType::kDeleted)) == "DELETED");
  CHECK(std::string(WatchEventTypeName(WatchEventType::kBookmark)) == "BOOKMARK");
  CHECK(std::string(WatchEventTypeName(WatchEventType::kError)) == "ERROR");
}

}  // namespace
}  // namespace informerd::core
