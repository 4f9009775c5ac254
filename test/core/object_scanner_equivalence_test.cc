// The object scanner's two parsers (core/object_scanner.h): the simdjson path must give exactly
// what RapidJSON alone gives, for every document: the same records (JSON bytes kept, metadata
// views, labels, extra fields, managedFields cut), the same side fields, and for malformed input
// the same error with the same message. Each document of a varied corpus goes through
// ObjectScanner::Scan, ListDecoder and WatchEventDecoder twice, with ScanOptions::fast_path kAlways
// and kOff, and the results are compared.
#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "core/list_decoder.h"
#include "core/object_scanner.h"
#include "core/watch_event_decoder.h"

namespace informerd::core {
namespace {

const std::string kManagedFields =
    R"("managedFields":[{"manager":"kubectl","operation":"Update","apiVersion":"v1",)"
    R"("time":"2024-05-01T10:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":)"
    R"({"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":)"
    R"({".":{},"f:image":{}}}}}}])";

const std::string kPod =
    R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-1","namespace":"shop",)"
    R"("uid":"0b1c2d3e","resourceVersion":"48213","labels":{"tier":"frontend","app":"web"},)"
    R"("annotations":{"note":"say \"hi\" to caf\u00e9 \u65e5\u672c \/ \b\f\n\r\t"},)" +
    kManagedFields +
    R"(,"ownerReferences":[{"kind":"ReplicaSet","controller":true}]},"spec":{"containers":)"
    R"([{"name":"web","image":"nginx","ports":[{"containerPort":80}]}],"nodeName":"node-3",)"
    R"("priority":0,"hostNetwork":false,"ratio":1.5,"none":null,"neg":-7},"status":)"
    R"({"phase":"Running","conditions":[]}})";

std::vector<std::string> Corpus() {
  std::vector<std::string> corpus = {
      kPod,
      "{}",
      " \t{ }\n",
      R"({"metadata":{}})",
      R"({"metadata":null})",
      R"({"metadata":{"labels":null,"name":""}})",
      R"({"metadata":{"labels":{}}})",
      R"({"metadata":{"labels":{"a":null,"b":"","a":"again"}}})",
      // managedFields first, last, alone, repeated, with spaces, and not in metadata.
      R"({"metadata":{)" + kManagedFields + R"(,"name":"a"}})",
      R"({"metadata":{"name":"a",)" + kManagedFields + "}}",
      R"({"metadata":{)" + kManagedFields + "}}",
      R"({"metadata":{)" + kManagedFields + "," + kManagedFields + R"(,"name":"a"}})",
      R"({"metadata":{"name":"a" , "managedFields" : [ ] , "uid":"u"}})",
      R"({"metadata":{"managedFields":null,"managedFields":7,"managedFields":"x"}})",
      R"({"spec":{"managedFields":[1]},"metadata":{"name":"a","managedFields":true}})",
      // Escapes and Unicode.
      R"({"metadata":{"name":"\u0041\u00e9\u20ac","namespace":"a\\b\"c","labels":)"
      R"({"k\u00e9y":"v\u00e9","\/":"\t"}}})",
      "{\"metadata\":{\"name\":\"caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x98\x80\"}}",
      R"({"metadata":{"name":"\ud83d\ude00"}})",  // a surrogate pair
      R"({"metadata":{"name":"\ud83d"}})",        // a lone high surrogate
      R"({"metadata":{"name":"\ude00x"}})",       // a lone low surrogate
      R"({"metadata":{"name":"\u0000"}})",
      R"({"a\u0022b":1,"metadata":{"uid":"\u12"}})",
      R"({"metadata":{"name":"\x"}})",
      R"({"metadata":{"name":"tab	inside"}})",
      // Numbers and literals.
      R"({"n":[0,-0,1,-1,1.5,-0.25,123456789012345,1234567890123456789012,1e3,1E+3,2.5e-3]})",
      R"({"n":1e400})",
      R"({"n":-1e-400})",
      R"({"n":01})",
      R"({"n":1.})",
      R"({"n":.5})",
      R"({"n":-})",
      R"({"n":+1})",
      R"({"n":1e})",
      R"({"n":0x10})",
      R"({"n":[true,false,null]})",
      R"({"n":tru})",
      R"({"n":nul})",
      R"({"n":truex})",
      R"({"n":True})",
      // Ill-typed metadata.
      R"({"metadata":[]})",
      R"({"metadata":{"name":7}})",
      R"({"metadata":{"labels":{"a":1}}})",
      R"({"metadata":{"labels":{"a":{}}}})",
      R"({"metadata":{"labels":[]}})",
      R"({"metadata":{"namespace":{}}})",
      // Malformed structure.
      "",
      "   ",
      "[]",
      "[{}]",
      "7",
      "\"x\"",
      "null",
      R"({"a":1,})",
      R"({"a":1 "b":2})",
      R"({"a" 1})",
      R"({"a":[1,]})",
      R"({"a":[1 2]})",
      R"({"a":[1}})",
      R"({"a":{"b":1]})",
      R"({,})",
      R"({"a":1}})",
      R"({"a":1} x)",
      R"({"a":1}{"b":2})",
      R"({"a":1)",
      R"({"a":"unterminated)",
      R"({"a)",
      R"({1:2})",
      // A string value followed by a colon: On-Demand's skipping would take it for a key.
      R"({"a":"b":"c"})",
      R"({"a":["x":"y"]})",
      R"({"metadata":{"name":"a":"b","uid":"u"}})",
      R"({"":{"":"":""""{""""{""}}]}})",
      std::string("{\"a\":1}\0", 8),
      std::string("{\"a\":\"x\0y\"}", 11),
      "{\"a\":\"\xC3\x28\"}",
      "{\"a\":\"x\xF0\x9F\x98\"}",
      "{\"metadata\":{\"name\":\"\xC0\xAF\"}}",
      // Whitespace and pretty printing (control characters: RapidJSON's path).
      "{\n  \"metadata\": {\n    \"name\": \"a\",\n    \"managedFields\": [ {} ]\n  }\n}\n",
      "{\"metadata\":{\"name\":\"a\"}}\r\n",
      "  {\"metadata\" :  {\"name\" :\"a\" ,\"uid\": \"u\"}  }  ",
  };
  // Nesting around the depth limit.
  for (const int depth : {998, 999, 1000, 1001}) {
    corpus.push_back(R"({"deep":)" + std::string(depth, '[') + std::string(depth, ']') + "}");
  }
  // Every prefix of the pod (truncated bodies), and the pod with one byte removed here and there.
  for (std::size_t size = 0; size < kPod.size(); size += 7) corpus.push_back(kPod.substr(0, size));
  for (std::size_t at = 0; at < kPod.size(); at += 13) {
    corpus.push_back(kPod.substr(0, at) + kPod.substr(at + 1));
  }
  return corpus;
}

ScanOptions Options(bool strip, bool fast_path) {
  ScanOptions options;
  options.strip_managed_fields = strip;
  options.extra_field_paths = {"spec.nodeName",    "status.phase",    "spec.priority",
                               "spec.hostNetwork", "spec.ratio",      "spec.none",
                               "metadata.name",    "spec.containers", "n"};
  options.fast_path = fast_path ? ScanOptions::FastPath::kAlways : ScanOptions::FastPath::kOff;
  return options;
}

std::string Describe(const absl::Status& status) {
  return status.ok() ? "OK" : std::string(status.message());
}

void CheckSameSideFields(const ScanSideFields& fast, const ScanSideFields& reference) {
  CHECK(fast.kind == reference.kind);
  CHECK(fast.has_kind == reference.has_kind);
  CHECK(fast.has_api_version == reference.has_api_version);
  CHECK(fast.status == reference.status);
  CHECK(fast.initial_events_end == reference.initial_events_end);
}

TEST_CASE("Scan: the simdjson path and RapidJSON give the same record or the same error") {
  uint64_t fast_documents = 0;
  for (const bool strip : {true, false}) {
    for (const std::string& json : Corpus()) {
      INFO("strip=" << strip << " document: " << json);
      ObjectScanner fast(Options(strip, true));
      ObjectScanner reference(Options(strip, false));
      const absl::StatusOr<ObjectRecord> a = fast.Scan(json);
      const absl::StatusOr<ObjectRecord> b = reference.Scan(json);
      REQUIRE(Describe(a.status()) == Describe(b.status()));
      CHECK(a.status().code() == b.status().code());
      CHECK(reference.fast_path_documents() == 0);
      fast_documents += fast.fast_path_documents();
      if (!a.ok()) continue;
      CHECK(*a == *b);
      CHECK(a->compact());
      CheckSameSideFields(fast.side_fields(), reference.side_fields());
      CHECK(fast.object_bytes() == reference.object_bytes());
    }
  }
  // Most of the valid documents took the simdjson path: the comparison is not vacuous.
  CHECK(fast_documents >= 40);
}

TEST_CASE("the simdjson path takes compact Kubernetes JSON; RapidJSON what it cannot judge") {
  ObjectScanner scanner(Options(true, true));
  REQUIRE(scanner.Scan(kPod).ok());
  CHECK(scanner.fast_path_documents() == 1);
  CHECK(scanner.fallback_documents() == 0);
  // A surrogate pair, a control character, an exponent: RapidJSON's.
  for (const std::string& json : {std::string(R"({"a":"\ud83d\ude00"})"),
                                  std::string("{\"a\":1}\n"), std::string(R"({"a":1e3})")}) {
    REQUIRE(scanner.Scan(json).ok());
  }
  CHECK(scanner.fast_path_documents() == 2);  // the trailing newline is whitespace
  CHECK(scanner.fallback_documents() == 2);

  // By default only documents with non-ASCII bytes go to simdjson.
  ObjectScanner by_default(ScanOptions{});
  REQUIRE(by_default.Scan(kPod).ok());
  CHECK(by_default.fast_path_documents() == 0);
  REQUIRE(by_default.Scan("{\"metadata\":{\"name\":\"caf\xC3\xA9\"}}").ok());
  CHECK(by_default.fast_path_documents() == 1);
  CHECK(by_default.fallback_documents() == 1);
}

TEST_CASE("ListDecoder: the simdjson path and RapidJSON give the same page or the same error") {
  for (const std::string& json : Corpus()) {
    for (const std::string& page :
         {R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"5",)"
          R"("continue":"c","remainingItemCount":3},"items":[)" +
              json + "," + json + "]}",
          R"({"items":[)" + json + R"(],"kind":"PodList","metadata":{"resourceVersion":"6"}})"}) {
      INFO("page: " << page);
      ListDecoder fast(Options(true, true), 600, ItemType{"Pod", "v1"});
      ListDecoder reference(Options(true, false), 600, ItemType{"Pod", "v1"});
      const absl::StatusOr<ListPage> a = fast.Decode(page);
      const absl::StatusOr<ListPage> b = reference.Decode(page);
      REQUIRE(Describe(a.status()) == Describe(b.status()));
      if (!a.ok()) continue;
      CHECK(a->metadata.resource_version == b->metadata.resource_version);
      CHECK(a->metadata.continue_token == b->metadata.continue_token);
      CHECK(a->metadata.remaining_item_count == b->metadata.remaining_item_count);
      CHECK(a->items == b->items);
      CHECK(a->skipped == b->skipped);
    }
  }
}

TEST_CASE("WatchEventDecoder: the simdjson path and RapidJSON give the same events") {
  for (const std::string& json : Corpus()) {
    for (const char* type : {"ADDED", "BOOKMARK", "ERROR"}) {
      const std::string stream = std::string(R"({"type":")") + type + R"(","object":)" + json +
                                 "}\n" + R"({"type":"DELETED","object":)" + kPod + "}\n";
      INFO("stream: " << stream);
      WatchDecoderOptions fast_options;
      fast_options.scan = Options(true, true);
      fast_options.max_event_bytes = 700;
      WatchDecoderOptions reference_options = fast_options;
      reference_options.scan.fast_path = ScanOptions::FastPath::kOff;
      WatchEventDecoder fast(fast_options);
      WatchEventDecoder reference(reference_options);
      std::vector<WatchEvent> a;
      std::vector<WatchEvent> b;
      const absl::Status fed_a = fast.Feed(stream, a);
      const absl::Status fed_b = reference.Feed(stream, b);
      REQUIRE(Describe(fed_a) == Describe(fed_b));
      CHECK(a == b);
      CHECK(fast.resource_version() == reference.resource_version());
    }
  }
}

}  // namespace
}  // namespace informerd::core
