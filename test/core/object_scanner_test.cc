// Specification of core/object_scanner.*: what one Kubernetes object's JSON becomes.
#include "core/object_scanner.h"

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace informerd::core {
namespace {

using Labels = std::vector<LabelSet::Entry>;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

// A pod as the apiserver sends it (compact, managedFields in the middle of metadata).
const std::string kManagedFields =
    R"("managedFields":[{"manager":"kubectl-client-side-apply","operation":"Update",)"
    R"("apiVersion":"v1","time":"2024-05-01T10:00:00Z","fieldsType":"FieldsV1",)"
    R"("fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":)"
    R"({"k:{\"name\":\"web\"}":{".":{},"f:image":{}}}}}}])";
const std::string kPodHead =
    R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-7d4b9c6f5-x2x9q",)"
    R"("generateName":"web-7d4b9c6f5-","namespace":"shop",)"
    R"("uid":"0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0","resourceVersion":"48213",)"
    R"("creationTimestamp":"2024-05-01T10:00:00Z",)"
    R"("labels":{"tier":"frontend","app":"web","pod-template-hash":"7d4b9c6f5"},)"
    R"("annotations":{"note":"say \"hi\" to caf\u00e9 \u65e5\u672c"},)";
const std::string kPodTail =
    R"("ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-7d4b9c6f5",)"
    R"("uid":"11111111-2222-3333-4444-555555555555","controller":true}]},)"
    R"("spec":{"containers":[{"name":"web","image":"nginx:1.25","ports":[{"containerPort":80}]}],)"
    R"("nodeName":"node-3","priority":0,"hostNetwork":false,"dnsPolicy":"ClusterFirst"},)"
    R"("status":{"phase":"Running","podIP":"10.0.3.17","conditions":[{"type":"Ready",)"
    R"("status":"True"}]}})";
const std::string kPod = kPodHead + kManagedFields + "," + kPodTail;
const std::string kPodStripped = kPodHead + kPodTail;

TEST_CASE("extracts the metadata fields and sorts the labels by key") {
  ObjectScanner scanner(ScanOptions{});
  auto record = scanner.Scan(kPod);
  REQUIRE(record.ok());
  CHECK(record->namespace_name == "shop");
  CHECK(record->name == "web-7d4b9c6f5-x2x9q");
  CHECK(record->uid == "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0");
  CHECK(record->resource_version == "48213");
  CHECK(record->deletion_timestamp.empty());
  CHECK(record->labels.entries() ==
        Labels{{"app", "web"}, {"pod-template-hash", "7d4b9c6f5"}, {"tier", "frontend"}});
  CHECK(record->extra_fields.empty());
  CHECK(scanner.side_fields().kind == "Pod");
}

TEST_CASE("strips metadata.managedFields and keeps every other byte as received") {
  ObjectScanner scanner(ScanOptions{true, {}});
  auto record = scanner.Scan(kPod);
  REQUIRE(record.ok());
  CHECK(record->json == kPodStripped);
}

TEST_CASE("keeps managedFields when stripping is off") {
  ObjectScanner scanner(ScanOptions{false, {}});
  auto record = scanner.Scan(kPod);
  REQUIRE(record.ok());
  CHECK(record->json == kPod);
}

TEST_CASE("cuts managedFields with exactly one comma wherever it sits in metadata") {
  ObjectScanner scanner(ScanOptions{});
  const std::string mf = R"("managedFields":[{"manager":"m","fieldsV1":{"f:a":{}}}])";
  const std::vector<std::pair<std::string, std::string>> cases = {
      // last member: the comma before it goes
      {R"({"metadata":{"name":"a",)" + mf + "},\"x\":1}", R"({"metadata":{"name":"a"},"x":1})"},
      // first member: the comma after it goes
      {R"({"metadata":{)" + mf + R"(,"name":"a"},"x":1})", R"({"metadata":{"name":"a"},"x":1})"},
      // the only member: no comma
      {R"({"metadata":{)" + mf + "}}", R"({"metadata":{}})"},
      // null value
      {R"({"metadata":{"name":"a","managedFields":null}})", R"({"metadata":{"name":"a"}})"},
      // whitespace outside the cut stays as it was
      {"{ \"metadata\" : { \"name\" : \"a\" , " + mf + " , \"uid\":\"u\" } }",
       "{ \"metadata\" : { \"name\" : \"a\"  , \"uid\":\"u\" } }"},
      {"{\"metadata\":{\n  " + mf + ",\n  \"name\":\"a\"\n}}",
       "{\"metadata\":{\n  \n  \"name\":\"a\"\n}}"},
      // a repeated key: both occurrences go, the result is still valid JSON
      {R"({"metadata":{)" + mf + "," + mf + R"(,"name":"a"}})", R"({"metadata":{"name":"a"}})"},
      {R"({"metadata":{"name":"a",)" + mf + "," + mf + "}}", R"({"metadata":{"name":"a"}})"},
      {R"({"metadata":{)" + mf + "," + mf + "}}", R"({"metadata":{}})"},
      // the key written with an escape is still the same key
      {R"({"metadata":{"name":"a","managed\u0046ields":[]}})", R"({"metadata":{"name":"a"}})"},
      // values of any type, including strings with escaped quotes and numbers
      {R"({"metadata":{"name":"a","managedFields":"x\"y\\"}})", R"({"metadata":{"name":"a"}})"},
      {R"({"metadata":{"managedFields":"x\"y\\" ,"name":"a"}})", R"({"metadata":{"name":"a"}})"},
      {R"({"metadata":{"name":"a","managedFields":-12.5e+3}})", R"({"metadata":{"name":"a"}})"},
      {R"({"metadata":{"managedFields":7,"name":"a"}})", R"({"metadata":{"name":"a"}})"},
      {R"({"metadata":{"managedFields":true,"name":"a"}})", R"({"metadata":{"name":"a"}})"},
      {R"({"metadata":{"name":"a","managedFields":false}})", R"({"metadata":{"name":"a"}})"},
      {R"({"metadata":{"managedFields":false,"name":"a"}})", R"({"metadata":{"name":"a"}})"},
      {R"({"metadata":{"name":"a","managedFields":{"k":["]","}"]}}})",
       R"({"metadata":{"name":"a"}})"},
      // raw multi-byte UTF-8 (the validating parse) around the cut
      {"{\"metadata\":{\"name\":\"a\",\"x\":\"\xC3\xA9\",\"managedFields\":[\"\xE2\x98\x95\"],"
       "\"y\":\"\xF0\x9F\x98\x80\"}}",
       "{\"metadata\":{\"name\":\"a\",\"x\":\"\xC3\xA9\",\"y\":\"\xF0\x9F\x98\x80\"}}"},
  };
  for (const auto& [input, expected] : cases) {
    INFO(input);
    auto record = scanner.Scan(input);
    REQUIRE(record.ok());
    CHECK(record->json == expected);
    CHECK((record->name == "a" || input.find("\"name\"") == std::string::npos));
  }
}

TEST_CASE("leaves managedFields alone outside the top-level metadata") {
  ObjectScanner scanner(ScanOptions{});
  for (const std::string input : {
           R"({"managedFields":[1],"metadata":{"name":"a"}})",
           R"({"spec":{"metadata":{"managedFields":[1]}},"metadata":{"name":"a"}})",
           R"({"metadata":{"annotations":{"managedFields":"x"},"name":"a"}})",
           R"({"metadata":{"name":"managedFields","labels":{"managedFields":"y"}}})",
           R"({"items":[{"metadata":{"managedFields":[1]}}],"metadata":{"name":"a"}})",
       }) {
    INFO(input);
    auto record = scanner.Scan(input);
    REQUIRE(record.ok());
    CHECK(record->json == input);
  }
}

TEST_CASE("decodes escapes in extracted fields but keeps them raw in the JSON") {
  ObjectScanner scanner(ScanOptions{});
  const std::string input =
      R"({"metadata":{"name":"caf\u00e9-\"q\"","namespace":"n\\s","labels":{"k":"v\/w"}}})";
  auto record = scanner.Scan(input);
  REQUIRE(record.ok());
  CHECK(record->name == "caf\xC3\xA9-\"q\"");
  CHECK(record->namespace_name == "n\\s");
  CHECK(record->labels.entries() == Labels{{"k", "v/w"}});
  CHECK(record->json == input);
}

TEST_CASE("accepts valid UTF-8 beyond ASCII and decodes it into the fields") {
  ObjectScanner scanner(ScanOptions{true, {"spec.note"}});
  const std::string input =
      "{\"metadata\":{\"name\":\"caf\xC3\xA9\",\"labels\":{\"k\":\"\xE2\x98\x95\"}},"
      "\"spec\":{\"note\":\"\xF0\x9F\x98\x80 \\ud83d\\ude00\"}}";
  auto record = scanner.Scan(input);
  REQUIRE(record.ok());
  CHECK(record->name == "caf\xC3\xA9");
  CHECK(record->labels.entries() == Labels{{"k", "\xE2\x98\x95"}});
  // The escaped surrogate pair decodes to the same 4 bytes as the raw emoji.
  CHECK(record->extra_fields ==
        std::vector<std::optional<std::string>>{"\xF0\x9F\x98\x80 \xF0\x9F\x98\x80"});
  CHECK(record->json == input);
}

TEST_CASE("reads extra field paths as text; missing, null and non-scalar values are absent") {
  ObjectScanner scanner(
      ScanOptions{true,
                  {"spec.nodeName", "spec.priority", "spec.hostNetwork", "status.phase",
                   "spec.missing", "spec.containers", "status.conditions.type", "metadata.name",
                   "metadata.labels.app", "spec.nodeName.deeper", "spec", "status.podIP"}});
  auto record = scanner.Scan(kPod);
  REQUIRE(record.ok());
  const std::vector<std::optional<std::string>> expected = {
      "node-3",               // a string: its value
      "0",                    // a number: its JSON text
      "false",                // a boolean: its JSON text
      "Running",              //
      std::nullopt,           // missing
      std::nullopt,           // an array
      std::nullopt,           // through an array: paths do not index arrays
      "web-7d4b9c6f5-x2x9q",  // also a built-in field
      "web",                  // inside labels
      std::nullopt,           // below a string
      std::nullopt,           // an object
      "10.0.3.17",
  };
  CHECK(record->extra_fields == expected);
}

TEST_CASE("keeps a number's exact JSON text and treats null as absent") {
  ObjectScanner scanner(ScanOptions{true, {"a", "b", "c", "d"}});
  auto record = scanner.Scan(R"({"a":-1.5e+3,"b":null,"c":12345678901234567890,"d":true})");
  REQUIRE(record.ok());
  CHECK(record->extra_fields == std::vector<std::optional<std::string>>{
                                    "-1.5e+3", std::nullopt, "12345678901234567890", "true"});
}

TEST_CASE("a repeated key's last value wins, as in Go") {
  ObjectScanner scanner(ScanOptions{true, {"spec.x"}});
  auto record = scanner.Scan(R"({"metadata":{"name":"a","name":"b","labels":{"k":"1","gone":"x"},)"
                             R"("labels":{"k":"2","j":"3","j":"4"}},)"
                             R"("spec":{"x":"first","x":{"not":"scalar"}}})");
  REQUIRE(record.ok());
  CHECK(record->name == "b");
  CHECK(record->labels.entries() == Labels{{"j", "4"}, {"k", "2"}});
  CHECK(record->extra_fields == std::vector<std::optional<std::string>>{std::nullopt});
}

TEST_CASE("reads deletionTimestamp when the object is being deleted") {
  ObjectScanner scanner(ScanOptions{});
  auto record = scanner.Scan(
      R"({"metadata":{"name":"a","deletionTimestamp":"2024-05-01T10:05:00Z","labels":null}})");
  REQUIRE(record.ok());
  CHECK(record->deletion_timestamp == "2024-05-01T10:05:00Z");
  CHECK(record->labels.empty());
}

TEST_CASE("a reused scanner starts every object from scratch") {
  ObjectScanner scanner(ScanOptions{true, {"spec.nodeName"}});
  REQUIRE(scanner.Scan(kPod).ok());
  auto second = scanner.Scan(R"({"kind":"ConfigMap","metadata":{"name":"cm"}})");
  REQUIRE(second.ok());
  CHECK(second->name == "cm");
  CHECK(second->namespace_name.empty());
  CHECK(second->uid.empty());
  CHECK(second->labels.empty());
  CHECK(second->extra_fields == std::vector<std::optional<std::string>>{std::nullopt});
  CHECK(second->json == R"({"kind":"ConfigMap","metadata":{"name":"cm"}})");
  CHECK(scanner.side_fields().kind == "ConfigMap");
}

// TakeRecord(members): what ListDecoder uses to give LIST items their kind and apiVersion.
class ScanOnly : public DocumentEnvelope {
 public:
  bool StartObject(ObjectStart& start) override {
    start = ObjectStart::kScan;
    return true;
  }
  bool EndObject() override { return true; }
  bool StartArray() override { return true; }
  bool EndArray() override { return true; }
  bool Key(std::string_view) override { return true; }
  bool Scalar(JsonScalar, std::string_view) override { return true; }
  bool ObjectScanned(ObjectScanner&) override { return true; }
};

TEST_CASE("TakeRecord(members) inserts members at the start; every view is of the final JSON") {
  const std::string members = R"("kind":"Pod","apiVersion":"v1")";
  ObjectScanner scanner(ScanOptions{true, {"spec.nodeName", "kind"}});
  ScanOnly envelope;
  const auto take = [&](const std::string& json) {
    REQUIRE(scanner.ParseDocument(json, envelope).ok());
    return scanner.TakeRecord(members);
  };

  CHECK(take("{}").json == R"({"kind":"Pod","apiVersion":"v1"})");
  CHECK(take(" { } ").json == R"({"kind":"Pod","apiVersion":"v1" })");  // the rest as received
  CHECK_FALSE(scanner.side_fields().has_kind);
  CHECK_FALSE(scanner.side_fields().has_api_version);

  // managedFields first in metadata (its comma after it is cut), escapes, labels, extra fields.
  const ObjectRecord record =
      take(R"({"metadata":{"managedFields":[{"manager":"m"}],"name":"a\u00e9","namespace":"ns",)"
           R"("labels":{"app":"web"}},"spec":{"nodeName":"n1"}})");
  CHECK(record.json ==
        R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":"a\u00e9","namespace":"ns",)"
        R"("labels":{"app":"web"}},"spec":{"nodeName":"n1"}})");
  CHECK(record.name == "a\xC3\xA9");
  CHECK(record.namespace_name == "ns");
  CHECK(record.labels.entries() == Labels{{"app", "web"}});
  // An inserted member is not scanned: extra fields are of the object as received.
  CHECK(record.extra_fields == std::vector<std::optional<std::string>>{"n1", std::nullopt});
  CHECK(record.compact());
  CHECK(record.namespace_name.data() > record.json.data());
  CHECK(record.namespace_name.data() < record.json.data() + record.json.size());

  // What the scan says about the object's own kind and apiVersion.
  take(R"({"kind":null,"metadata":{"kind":"x","apiVersion":"y"}})");
  CHECK(scanner.side_fields().has_kind);
  CHECK_FALSE(scanner.side_fields().has_api_version);
  take(R"({"apiVersion":"v1"})");
  CHECK_FALSE(scanner.side_fields().has_kind);
  CHECK(scanner.side_fields().has_api_version);
  // Without members, TakeRecord is the plain one.
  REQUIRE(scanner.ParseDocument(R"({"a":1})", envelope).ok());
  CHECK(scanner.TakeRecord("").json == R"({"a":1})");
}

TEST_CASE("reads a Status object's code, status, reason and message") {
  ObjectScanner scanner(ScanOptions{});
  auto record = scanner.Scan(
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",)"
      R"json("message":"too old resource version: 1 (2)","reason":"Expired","code":410})json");
  REQUIRE(record.ok());
  CHECK(scanner.side_fields().kind == "Status");
  CHECK(scanner.side_fields().status ==
        KubeStatus{410, "Failure", "Expired", "too old resource version: 1 (2)"});
}

TEST_CASE("ignores unexpected types outside metadata, where any schema is allowed") {
  ObjectScanner scanner(ScanOptions{});
  auto record = scanner.Scan(
      R"({"kind":7,"code":"x","status":{"phase":"Running"},"reason":[1],"message":{"a":1},)"
      R"("metadata":{"name":"a","annotations":{"k8s.io/initial-events-end":{"x":1}}}})");
  REQUIRE(record.ok());
  CHECK(scanner.side_fields().kind.empty());
  CHECK(scanner.side_fields().status == KubeStatus{});
  CHECK_FALSE(scanner.side_fields().initial_events_end);
}

TEST_CASE("rejects ill-typed metadata, naming the field") {
  ObjectScanner scanner(ScanOptions{});
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"metadata":{"name":5}})", "metadata.name must be a string, found a number"},
      {R"({"metadata":{"uid":true}})", "metadata.uid must be a string"},
      {R"({"metadata":{"namespace":{"a":1}}})", "metadata.namespace must be a string"},
      {R"({"metadata":{"resourceVersion":[1]}})", "metadata.resourceVersion must be a string"},
      {R"({"metadata":{"deletionTimestamp":1}})", "metadata.deletionTimestamp must be a string"},
      {R"({"metadata":"x"})", "metadata must be an object"},
      {R"({"metadata":[]})", "metadata must be an object, found an array"},
      {R"({"metadata":{"labels":["a"]}})", "metadata.labels must be an object"},
      {R"({"metadata":{"labels":{"a":1}}})", "metadata.labels values must be strings"},
      {R"({"metadata":{"labels":{"a":{"b":"c"}}}})", "metadata.labels values must be strings"},
      {R"({"metadata":{"labels":{"a":false}}})",
       "metadata.labels values must be strings, found a boolean (at byte 27)"},
      {R"({"metadata":{"labels":{"a":true}}})",
       "metadata.labels values must be strings, found a boolean (at byte 27)"},
      {R"({"metadata":{"labels":{"a":-1}}})",
       "metadata.labels values must be strings, found a number (at byte 27)"},
      {R"({"metadata":{"labels":{"a":[]}}})",
       "metadata.labels values must be strings, found an array (at byte 27)"},
      {R"({"metadata":{"uid":"u","name":false}})",
       "metadata.name must be a string, found a number or boolean (at byte 30)"},
  };
  for (const auto& [input, expected] : cases) {
    INFO(input);
    auto record = scanner.Scan(input);
    REQUIRE_FALSE(record.ok());
    CHECK(record.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(Message(record.status()), Catch::Contains(expected));
  }
}

TEST_CASE("rejects malformed JSON, naming the byte offset and RapidJSON's reason") {
  ObjectScanner scanner(ScanOptions{});
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "invalid JSON at byte 0: The document is empty."},
      {R"({"metadata":{"name":"a"})", "invalid JSON at byte 24: Missing a comma or '}'"},
      {R"({"metadata":{"name":"a"}} x)", "invalid JSON at byte 26: The document root must not"},
      {R"({"a":tru})", "invalid JSON at byte 8: Invalid value."},
      {"{\"a\":\"\xC3\x28\"}", "invalid JSON at byte 6: Invalid encoding in string."},
      {"{\"a\":\"x\xF0\x9F\x98\"}", "Invalid encoding in string."},  // cut-off 4-byte sequence
      {R"({"a":"\u12"})", "Incorrect hex digit after \\u escape in string."},
      {"{\"a\":\"line\nbreak\"}", "Invalid escape character in string."},
      {R"({"a":1,})", "Missing a name for object member."},
  };
  for (const auto& [input, expected] : cases) {
    INFO(input);
    auto record = scanner.Scan(input);
    REQUIRE_FALSE(record.ok());
    CHECK(record.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(Message(record.status()), Catch::Contains(expected));
  }
}

TEST_CASE(
    "a document that ends inside a multi-byte UTF-8 sequence is refused, read within bounds") {
  // RapidJSON's validation reads a sequence's continuation bytes without stopping at the end of
  // the buffer (a truncated watch event ends so). A fresh scanner each time, so that no earlier
  // document's larger buffer hides a read past this one's end (the ASan configuration sees it).
  for (const std::string input :
       {"{\"a\":\"\xF0", "{\"a\":\"x\xE6", "{\"metadata\":{\"name\":\"\xF4\x8F", "{\"a\":\"\xC3"}) {
    INFO(input);
    ObjectScanner scanner(ScanOptions{});
    auto record = scanner.Scan(input);
    REQUIRE_FALSE(record.ok());
    CHECK(record.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(Message(record.status()), Catch::Contains("Invalid encoding in string."));
  }
}

TEST_CASE("rejects a document that is not one JSON object") {
  ObjectScanner scanner(ScanOptions{});
  for (const std::string input : {"[]", "\"pod\"", "42", "null", "true"}) {
    INFO(input);
    auto record = scanner.Scan(input);
    REQUIRE_FALSE(record.ok());
    CHECK_THAT(Message(record.status()), Catch::Contains("not an object"));
  }
  const std::string with_nul("{\"a\":1}\0{}", 10);
  auto record = scanner.Scan(with_nul);
  REQUIRE_FALSE(record.ok());
  CHECK_THAT(Message(record.status()), Catch::Contains("byte 7: NUL byte"));
}

TEST_CASE("refuses nesting deeper than 1000 levels instead of exhausting the stack") {
  ObjectScanner scanner(ScanOptions{true, {"a.a.a"}});
  // 1000 levels in all (the object, then 999 arrays) is accepted, and paths still resolve.
  std::string deep = "{\"metadata\":{\"name\":\"deep\"},\"a\":{\"a\":{\"a\":\"v\"}},\"x\":";
  deep += std::string(999, '[') + std::string(999, ']') + "}";
  auto accepted = scanner.Scan(deep);
  REQUIRE(accepted.ok());
  CHECK(accepted->name == "deep");
  CHECK(accepted->extra_fields == std::vector<std::optional<std::string>>{"v"});
  CHECK(accepted->json == deep);
  // One more level is refused, and so is a hostile megabyte of '['.
  for (const std::string& input :
       {"{\"x\":" + std::string(1000, '[') + std::string(1000, ']') + "}",
        "{\"x\":" + std::string(1'000'000, '[')}) {
    auto refused = scanner.Scan(input);
    REQUIRE_FALSE(refused.ok());
    CHECK(Message(refused.status()) == "JSON nested more than 1000 levels deep at byte 1004");
  }
}

}  // namespace
}  // namespace informerd::core
