// ObjectJson: what informerctl needs from an object's JSON text, and re-serializing it.
//
// Objects arrive from informerd as the apiserver's JSON text (one string per object). The table
// printers read three metadata fields from it; the JSON printers re-emit it, pretty (get, list)
// or on one line (watch), inside informerctl's own JSON. Re-emitting goes through RapidJSON's SAX
// reader and writer with numbers kept as the exact text received, so a quantity such as
// 1.50 or a 64-bit integer comes out byte for byte as the apiserver wrote it. Pure functions; any
// thread.
#pragma once

#include <rapidjson/prettywriter.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace informerd::ctl {

struct ObjectMeta {
  std::string namespace_name;      // metadata.namespace; empty for cluster-scoped objects
  std::string name;                // metadata.name
  std::string creation_timestamp;  // metadata.creationTimestamp, as written (RFC 3339)
};

// Reads metadata.namespace, .name and .creationTimestamp (absent fields are empty).
// InvalidArgument when the text is not a JSON object.
absl::StatusOr<ObjectMeta> ReadObjectMeta(std::string_view json);

// Checks that `json` is one well-formed JSON value (UTF-8 validated), so that it can be
// streamed into a writer without leaving it half-written. The message says where it breaks.
absl::Status ValidateJson(std::string_view json);

// Writes the JSON value `json` into `writer` (a rapidjson::Writer or PrettyWriter over a
// StringBuffer) at the writer's current position: as a whole document, an array element or the
// value after a Key(). Call ValidateJson first; on malformed input the writer is left unusable.
template <typename Writer>
bool WriteJsonValue(std::string_view json, Writer& writer);

// --- implementation ---

namespace internal {

// Forwards SAX events to a writer, except that numbers (parsed as strings) are written raw:
// rapidjson 1.1's Writer::RawNumber would quote them.
template <typename Writer>
class VerbatimNumbers {
 public:
  explicit VerbatimNumbers(Writer& writer) : writer_(writer) {}
  bool Null() { return writer_.Null(); }
  bool Bool(bool b) { return writer_.Bool(b); }
  bool Int(int i) { return writer_.Int(i); }
  bool Uint(unsigned u) { return writer_.Uint(u); }
  bool Int64(int64_t i) { return writer_.Int64(i); }
  bool Uint64(uint64_t u) { return writer_.Uint64(u); }
  bool Double(double d) { return writer_.Double(d); }
  bool RawNumber(const char* text, rapidjson::SizeType length, bool) {
    return writer_.RawValue(text, length, rapidjson::kNumberType);
  }
  bool String(const char* text, rapidjson::SizeType length, bool copy) {
    return writer_.String(text, length, copy);
  }
  bool StartObject() { return writer_.StartObject(); }
  bool Key(const char* text, rapidjson::SizeType length, bool copy) {
    return writer_.Key(text, length, copy);
  }
  bool EndObject(rapidjson::SizeType members) { return writer_.EndObject(members); }
  bool StartArray() { return writer_.StartArray(); }
  bool EndArray(rapidjson::SizeType elements) { return writer_.EndArray(elements); }

 private:
  Writer& writer_;
};

inline constexpr unsigned kVerbatimParseFlags =
    rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseValidateEncodingFlag;

}  // namespace internal

template <typename Writer>
bool WriteJsonValue(std::string_view json, Writer& writer) {
  // A MemoryStream-like view without copying: StringStream needs NUL termination, so copy once
  // (objects are a few KB; this is a CLI, not the daemon's hot path).
  const std::string text(json);
  rapidjson::StringStream stream(text.c_str());
  rapidjson::Reader reader;
  internal::VerbatimNumbers<Writer> handler(writer);
  return !reader.Parse<internal::kVerbatimParseFlags>(stream, handler).IsError();
}

}  // namespace informerd::ctl
