// Shared checks of the libFuzzer targets in test/fuzz/.
//
// Each target checks more than "no crash": what it decoded must agree with an independent reading
// of the same bytes. The independent reader is RapidJSON's DOM (a different code path from the
// SAX scanner under test): an ObjectRecord's JSON must be a JSON object, scanning that JSON again
// must give the same record, and where the document has no repeated keys (so that "which
// occurrence wins" cannot differ) the record's metadata, labels and extra fields must be what the
// DOM finds at those paths. A failed check prints what differed and aborts, which libFuzzer
// reports as a crash with the input saved.
#pragma once

#include <rapidjson/document.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/object_record.h"
#include "core/object_scanner.h"

namespace informerd::fuzz {

[[noreturn]] inline void Fail(const char* file, int line, const char* what,
                              const std::string& detail) {
  std::fprintf(stderr, "%s:%d: check failed: %s\n%s\n", file, line, what, detail.c_str());
  std::fflush(stderr);
  std::abort();
}

#define FUZZ_CHECK(cond, detail)                                             \
  do {                                                                       \
    if (!(cond)) ::informerd::fuzz::Fail(__FILE__, __LINE__, #cond, detail); \
  } while (0)

// Numbers as their text (as the scanner reports them), UTF-8 validated (as the scanner does for
// any document that is not pure ASCII).
constexpr unsigned kDomParseFlags =
    rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseValidateEncodingFlag;

// The DOM of `json`, or nullopt when RapidJSON's DOM parser refuses it.
inline std::optional<rapidjson::Document> ParseDom(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse<kDomParseFlags>(json.data(), json.size());
  if (doc.HasParseError()) return std::nullopt;
  return doc;
}

// Whether any object in `value`, at any depth, has the same key twice.
inline bool HasRepeatedKeys(const rapidjson::Value& value) {
  if (value.IsObject()) {
    std::map<std::string, int> seen;
    for (const auto& member : value.GetObject()) {
      std::string key(member.name.GetString(), member.name.GetStringLength());
      if (++seen[key] > 1) return true;
      if (HasRepeatedKeys(member.value)) return true;
    }
  } else if (value.IsArray()) {
    for (const auto& element : value.GetArray()) {
      if (HasRepeatedKeys(element)) return true;
    }
  }
  return false;
}

inline const rapidjson::Value* Member(const rapidjson::Value& object, std::string_view key) {
  if (!object.IsObject()) return nullptr;
  for (const auto& member : object.GetObject()) {
    if (std::string_view(member.name.GetString(), member.name.GetStringLength()) == key) {
      return &member.value;
    }
  }
  return nullptr;
}

// A metadata string as the scanner reports it: the string's value; "" when absent or null.
inline std::string MetadataString(const rapidjson::Value& root, std::string_view key) {
  const rapidjson::Value* metadata = Member(root, "metadata");
  if (metadata == nullptr) return "";
  const rapidjson::Value* value = Member(*metadata, key);
  if (value == nullptr || !value->IsString()) return "";
  return std::string(value->GetString(), value->GetStringLength());
}

// The value at a dotted path as ObjectRecord::extra_fields holds it: a string's value, a
// number's text, "true"/"false"; nullopt when missing, null, an object or an array.
inline std::optional<std::string> ExtraField(const rapidjson::Value& root, std::string_view path) {
  const rapidjson::Value* at = &root;
  while (true) {
    const std::size_t dot = path.find('.');
    const std::string_view segment = path.substr(0, dot);
    if (segment.empty()) return std::nullopt;
    at = Member(*at, segment);
    if (at == nullptr) return std::nullopt;
    if (dot == std::string_view::npos) break;
    path.remove_prefix(dot + 1);
  }
  if (at->IsString()) return std::string(at->GetString(), at->GetStringLength());
  if (at->IsBool()) return std::string(at->GetBool() ? "true" : "false");
  return std::nullopt;  // numbers arrive as strings with kParseNumbersAsStringsFlag
}

inline std::string Show(const core::ObjectRecord& record) {
  std::string out = "record: ns=\"" + std::string(record.namespace_name) + "\" name=\"" +
                    std::string(record.name) + "\" uid=\"" + std::string(record.uid) + "\" rv=\"" +
                    std::string(record.resource_version) + "\" labels={";
  for (const auto& [key, value] : record.labels) {
    out += std::string(key) + "=" + std::string(value) + ",";
  }
  out += "} extra_fields=[";
  for (std::size_t i = 0; i < record.extra_fields.size(); ++i) {
    const std::optional<std::string_view> value = record.extra_fields[i];
    out += value ? "\"" + std::string(*value) + "\"," : "(none),";
  }
  out += "]\njson: " + std::string(record.json);
  return out;
}

// The checks every decoded object must pass (see the file comment). `scanner` is a scanner
// with the options the record was made with, used to scan its JSON again.
inline void CheckRecord(const core::ObjectRecord& record, core::ObjectScanner& scanner) {
  const std::string_view json = record.json;
  std::optional<rapidjson::Document> dom = ParseDom(json);
  FUZZ_CHECK(dom.has_value(), "the record's JSON does not parse\n" + Show(record));
  FUZZ_CHECK(dom->IsObject(), "the record's JSON is not an object\n" + Show(record));

  // Scanning the record's JSON again is a fixed point: same fields, same JSON.
  absl::StatusOr<core::ObjectRecord> again = scanner.Scan(json);
  FUZZ_CHECK(again.ok(), "the record's JSON does not scan again: " +
                             std::string(again.status().message()) + "\n" + Show(record));
  FUZZ_CHECK(*again == record, "scanning the record's JSON again differs\nfirst " + Show(record) +
                                   "\nagain " + Show(*again));

  if (scanner.options().strip_managed_fields) {
    const rapidjson::Value* metadata = Member(*dom, "metadata");
    FUZZ_CHECK(metadata == nullptr || !metadata->IsObject() ||
                   Member(*metadata, "managedFields") == nullptr,
               "managedFields left in a stripped record\n" + Show(record));
  }

  if (HasRepeatedKeys(*dom)) return;  // which occurrence counts is the scanner's rule
  FUZZ_CHECK(record.name == MetadataString(*dom, "name"), Show(record));
  FUZZ_CHECK(record.namespace_name == MetadataString(*dom, "namespace"), Show(record));
  FUZZ_CHECK(record.uid == MetadataString(*dom, "uid"), Show(record));
  FUZZ_CHECK(record.resource_version == MetadataString(*dom, "resourceVersion"), Show(record));
  FUZZ_CHECK(record.deletion_timestamp == MetadataString(*dom, "deletionTimestamp"), Show(record));
  std::vector<core::LabelSet::Entry> labels;
  if (const rapidjson::Value* metadata = Member(*dom, "metadata")) {
    if (const rapidjson::Value* map = Member(*metadata, "labels"); map && map->IsObject()) {
      for (const auto& member : map->GetObject()) {
        // A null value is the empty string, as Go decodes null into a map[string]string entry.
        FUZZ_CHECK(member.value.IsString() || member.value.IsNull(),
                   "a label that is not a string was accepted\n" + Show(record));
        labels.emplace_back(std::string(member.name.GetString(), member.name.GetStringLength()),
                            member.value.IsNull() ? std::string()
                                                  : std::string(member.value.GetString(),
                                                                member.value.GetStringLength()));
      }
    }
  }
  FUZZ_CHECK(record.labels == core::LabelSet(labels),
             "labels differ from the DOM's\n" + Show(record));
  const std::vector<std::string>& paths = scanner.options().extra_field_paths;
  FUZZ_CHECK(record.extra_fields.size() == paths.size(), Show(record));
  for (std::size_t i = 0; i < paths.size(); ++i) {
    const std::optional<std::string_view> got = record.extra_fields[i];
    const std::optional<std::string> want = ExtraField(*dom, paths[i]);
    FUZZ_CHECK(got.has_value() == want.has_value() && (!got || *got == *want),
               "extra field " + paths[i] + ": got " + (got ? std::string(*got) : "(none)") +
                   ", DOM has " + want.value_or("(none)") + "\n" + Show(record));
  }
}

// Extra field paths the targets scan with: nested, top-level, metadata, an object (never a
// value), and one with an empty segment (never matches). `with_kind` adds the top-level "kind"
// and "apiVersion", which the list decoder target leaves out: the decoder inserts them into items
// after the scan, so a LIST item's extra fields at those paths are empty while its JSON (and the
// same object from a watch event) has them.
inline std::vector<std::string> FuzzExtraFieldPaths(bool with_kind = true) {
  std::vector<std::string> paths = {"spec.nodeName", "status.phase", "metadata.name", "spec",
                                    "a..b"};
  if (with_kind) {
    paths.push_back("kind");
    paths.push_back("apiVersion");
  }
  return paths;
}

}  // namespace informerd::fuzz
