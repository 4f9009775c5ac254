#include "core/object_scanner.h"

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <iterator>
#include <utility>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace informerd::core {

namespace {

// The longest UTF-8 sequence's continuation bytes: 3.
constexpr std::size_t kUtf8Padding = 3;
// What follows the document in scratch_: RapidJSON's terminator and UTF-8 padding, and the
// bytes simdjson may read past the end of its input (it reads in SIMD blocks).
constexpr std::size_t kScratchPadding =
    std::max<std::size_t>(kUtf8Padding + 1, simdjson::SIMDJSON_PADDING);

// Every decoder in core/ parses through ParseDocument(), so all accept exactly the same JSON.
// - Insitu: RapidJSON decodes strings in place in scratch_ instead of copying each one to a
//   side buffer; the single memcpy into scratch_ is far cheaper.
// - NumbersAsStrings: extra field values keep a number's exact JSON text ("1e3" stays "1e3").
// - ValidateEncoding, only when the document has a byte >= 0x80: a Go server never sends
//   invalid UTF-8, so invalid UTF-8 means corruption and is rejected; but pure ASCII, which
//   nearly every Kubernetes object is, cannot be invalid UTF-8, and RapidJSON's byte-by-byte
//   validation would otherwise be the largest single cost of decoding.
// The parser is RapidJSON's recursive one (about 1.4x faster than its iterative one here);
// ScannerSax bounds the nesting depth so that a hostile body cannot exhaust the stack.
constexpr unsigned kParseFlags =
    rapidjson::kParseInsituFlag | rapidjson::kParseNumbersAsStringsFlag;
constexpr unsigned kValidatingParseFlags = kParseFlags | rapidjson::kParseValidateEncodingFlag;

// Far deeper than real objects go (a few dozen levels; the apiserver's decoder, Go's
// encoding/json, would stop at 10,000); low enough that RapidJSON's recursion, a few hundred
// bytes of stack per level, stays well inside any thread's stack, sanitizers included.
constexpr int kMaxDepth = 1000;

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::size_t SkipSpace(std::string_view text, std::size_t pos) {
  while (pos < text.size() && IsJsonSpace(text[pos])) ++pos;
  return pos;
}

// Whether every byte is < 0x80, eight at a time.
bool IsAscii(std::string_view text) {
  uint64_t seen = 0;
  std::size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, text.data() + i, 8);
    seen |= word;
  }
  for (; i < text.size(); ++i) seen |= static_cast<unsigned char>(text[i]);
  return (seen & 0x8080808080808080ULL) == 0;
}

// Offset just past a JSON string or number that starts at `at` in a document already parsed.
std::size_t EndOfString(std::string_view text, std::size_t at) {
  std::size_t i = at + 1;  // past the opening quote
  while (text[i] != '"') i += text[i] == '\\' ? 2 : 1;
  return i + 1;
}
std::size_t EndOfNumber(std::string_view text, std::size_t at) {
  const auto in_number = [](char c) {
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
  };
  std::size_t i = at;
  while (i < text.size() && in_number(text[i])) ++i;
  return i;
}

const char* ValueKindName(bool is_string) { return is_string ? "a string" : "a number or boolean"; }

// Whether `text` has a byte below 0x20 (a control character), eight at a time. JSON allows
// them only as whitespace between tokens, and the apiserver's compact JSON has none.
bool HasControlByte(std::string_view text) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  uint64_t found = 0;
  std::size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, text.data() + i, 8);
    // A byte < 0x20 and < 0x80 sets its high bit here; bytes >= 0x80 are masked by ~word.
    found |= (word - 0x20 * kOnes) & ~word & kHigh;
  }
  for (; i < text.size(); ++i) {
    if (static_cast<unsigned char>(text[i]) < 0x20) return true;
  }
  return found != 0;
}

// Scan()'s envelope: the document is the object.
class StandaloneEnvelope : public DocumentEnvelope {
 public:
  bool CanRestart() const override { return true; }
  bool StartObject(ObjectStart& start) override {
    start = ObjectStart::kScan;
    return true;
  }
  bool EndObject() override { return true; }
  bool StartArray() override { return Fail("the JSON value is an array, not an object"); }
  bool EndArray() override { return true; }
  bool Key(std::string_view) override { return true; }
  bool Scalar(JsonScalar kind, std::string_view) override {
    return Fail(fmt::format("the JSON value is {}, not an object", Describe(kind)));
  }
  bool ObjectScanned(ObjectScanner&) override { return true; }
};

}  // namespace

// RapidJSON's handler for ParseDocument(): events inside a scanned object go to the scanner
// (non-virtual: the hot path), the rest to the envelope.
//
// Offsets come from the stream's Tell(), and what Tell() means depends on the callback, because
// of how RapidJSON's recursive parser drives an InsituStringStream:
// - StartObject/StartArray come after the bracket is consumed: it is at Tell() - 1;
//   EndObject/EndArray likewise: Tell() is just past the bracket.
// - Key/String/RawNumber come while the parser works on a local copy of the stream (its
//   copy optimization for InsituStringStream), so Tell() is still at the token's first byte.
// - Bool/Null come after the literal is consumed: it starts at Tell() - 4 or - 5.
// The byte-exact managedFields tests (test/core/object_scanner_test.cc) pin all of this down.
class ScannerSax {
 public:
  using Envelope = DocumentEnvelope;

  ScannerSax(ObjectScanner& scanner, DocumentEnvelope& envelope,
             rapidjson::InsituStringStream& stream)
      : scanner_(scanner), envelope_(envelope), stream_(stream) {}

  bool Null() {
    if (in_object_) return scanner_.Null(stream_.Tell() - 4);
    return envelope_.Scalar(Envelope::JsonScalar::kNull, "null");
  }
  bool Bool(bool value) {
    if (in_object_) return scanner_.Bool(value, stream_.Tell() - (value ? 4 : 5));
    return envelope_.Scalar(Envelope::JsonScalar::kBool, value ? "true" : "false");
  }
  // With kParseNumbersAsStringsFlag every number arrives through RawNumber.
  bool Int(int) { return false; }
  bool Uint(unsigned) { return false; }
  bool Int64(int64_t) { return false; }
  bool Uint64(uint64_t) { return false; }
  bool Double(double) { return false; }
  bool RawNumber(const char* str, rapidjson::SizeType length, bool) {
    if (in_object_) return scanner_.Number(str, length, stream_.Tell());
    return envelope_.Scalar(Envelope::JsonScalar::kNumber, std::string_view(str, length));
  }
  bool String(const char* str, rapidjson::SizeType length, bool) {
    if (in_object_) return scanner_.String(str, length, stream_.Tell());
    return envelope_.Scalar(Envelope::JsonScalar::kString, std::string_view(str, length));
  }
  bool StartObject() {
    if (!Deeper()) return false;
    if (in_object_) return scanner_.StartObject(stream_.Tell() - 1);
    Envelope::ObjectStart start = Envelope::ObjectStart::kDescend;
    if (!envelope_.StartObject(start)) return false;
    if (start == Envelope::ObjectStart::kScan) {
      in_object_ = true;
      scanner_.Begin();
      return scanner_.StartObject(stream_.Tell() - 1);
    }
    return true;
  }
  bool Key(const char* str, rapidjson::SizeType length, bool) {
    if (in_object_) return scanner_.Key(str, length, stream_.Tell());
    return envelope_.Key(std::string_view(str, length));
  }
  bool EndObject(rapidjson::SizeType) {
    --depth_;
    if (!in_object_) return envelope_.EndObject();
    if (!scanner_.EndObject(stream_.Tell())) return false;
    if (!scanner_.done_) return true;
    in_object_ = false;
    return envelope_.ObjectScanned(scanner_);
  }
  bool StartArray() {
    if (!Deeper()) return false;
    if (in_object_) return scanner_.StartArray(stream_.Tell() - 1);
    return envelope_.StartArray();
  }
  bool EndArray(rapidjson::SizeType) {
    --depth_;
    if (in_object_) return scanner_.EndArray(stream_.Tell());
    return envelope_.EndArray();
  }

  bool in_object() const { return in_object_; }
  const std::string& error() const { return error_; }

 private:
  bool Deeper() {
    if (++depth_ <= kMaxDepth) return true;
    error_ = fmt::format("JSON nested more than {} levels deep at byte {}", kMaxDepth,
                         stream_.Tell() - 1);
    return false;
  }

  ObjectScanner& scanner_;
  DocumentEnvelope& envelope_;
  rapidjson::InsituStringStream& stream_;
  bool in_object_ = false;
  int depth_ = 0;
  std::string error_;
};

// The simdjson parser of one scanner, and the buffer for strings that need decoding.
struct ObjectScanner::FastParser {
  simdjson::ondemand::parser parser;
  std::string decoded;
};

namespace {

bool IsHexDigit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
unsigned HexValue(char c) {
  return c <= '9' ? static_cast<unsigned>(c - '0') : static_cast<unsigned>((c | 0x20) - 'a' + 10);
}

// Whether every backslash in `raw` starts an escape that RapidJSON decodes as DecodeEscapes()
// does: false if one is invalid, or is a \u escape of a surrogate (RapidJSON's handling of those
// is left to RapidJSON). Checked over the whole document at once: in valid JSON every backslash
// is inside a string and escapes pair up the same way from the start of the document as from the
// start of each string; a document that is not valid JSON goes to RapidJSON anyway.
bool CheckEscapes(std::string_view raw) {
  const char* at = raw.data();
  const char* const end = raw.data() + raw.size();
  while ((at = static_cast<const char*>(std::memchr(at, '\\', end - at))) != nullptr) {
    if (end - at < 2) return false;
    switch (at[1]) {
      case '"':
      case '\\':
      case '/':
      case 'b':
      case 'f':
      case 'n':
      case 'r':
      case 't':
        at += 2;
        break;
      case 'u': {
        if (end - at < 6) return false;
        unsigned code = 0;
        for (int k = 2; k < 6; ++k) {
          if (!IsHexDigit(at[k])) return false;
          code = code * 16 + HexValue(at[k]);
        }
        if (code >= 0xD800 && code <= 0xDFFF) return false;
        at += 6;
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

// Decodes the content of a JSON string whose escapes CheckEscapes() accepted into `out`
// (replacing it), as RapidJSON does.
void DecodeEscapes(std::string_view raw, std::string& out) {
  out.clear();
  const char* at = raw.data();
  const char* const end = raw.data() + raw.size();
  while (true) {
    const auto* slash = static_cast<const char*>(std::memchr(at, '\\', end - at));
    if (slash == nullptr) {
      out.append(at, end - at);
      return;
    }
    out.append(at, slash - at);
    const char kind = slash[1];
    at = slash + 2;
    switch (kind) {
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'u': {
        unsigned code = 0;
        for (int k = 0; k < 4; ++k) code = code * 16 + HexValue(at[k]);
        at += 4;
        if (code < 0x80) {
          out.push_back(static_cast<char>(code));
        } else if (code < 0x800) {
          out.push_back(static_cast<char>(0xC0 | (code >> 6)));
          out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
        } else {
          out.push_back(static_cast<char>(0xE0 | (code >> 12)));
          out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
          out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
        }
        break;
      }
      default:  // '"', '\\', '/'
        out.push_back(kind);
        break;
    }
  }
}

// Whether `text` is a number RapidJSON reads exactly as simdjson's walk does: JSON's grammar
// without an exponent, at most 15 digits before and after the point (so no overflow question).
bool IsPlainNumber(std::string_view text) {
  std::size_t i = 0;
  if (i < text.size() && text[i] == '-') ++i;
  const std::size_t int_start = i;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  const std::size_t int_digits = i - int_start;
  if (int_digits == 0 || int_digits > 15 || (int_digits > 1 && text[int_start] == '0')) {
    return false;
  }
  if (i == text.size()) return true;
  if (text[i] != '.') return false;
  const std::size_t frac_start = ++i;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  const std::size_t frac_digits = i - frac_start;
  return frac_digits > 0 && frac_digits <= 15 && i == text.size();
}

std::string_view TrimTrailingSpace(std::string_view text) {
  while (!text.empty() && IsJsonSpace(text.back())) text.remove_suffix(1);
  return text;
}

}  // namespace

// Walks a document with simdjson's On-Demand API and drives the scanner and the envelope with
// the same events, offsets and decoded strings as ScannerSax does under RapidJSON. Every value is
// visited and checked (On-Demand itself checks only what is read), so a document the walk
// accepts is one RapidJSON accepts. Any doubt returns false, and RapidJSON parses the document.
class FastWalker {
 public:
  using Envelope = DocumentEnvelope;

  FastWalker(ObjectScanner& scanner, DocumentEnvelope& envelope,
             simdjson::ondemand::document& document, const char* base, std::size_t size,
             std::string& decoded)
      : scanner_(scanner),
        envelope_(envelope),
        document_(document),
        base_(base),
        size_(size),
        decoded_(decoded) {}

  bool Run() {
    simdjson::ondemand::object root;
    if (document_.get_object().get(root) != simdjson::SUCCESS) return false;
    const std::size_t at = SkipSpace(std::string_view(base_, size_), 0);
    if (at >= size_ || base_[at] != '{') return false;
    if (!Object(root, at)) return false;
    // Nothing but whitespace may follow the root: the iterator is at its end.
    const char* next = nullptr;
    return document_.current_location().get(next) == simdjson::OUT_OF_BOUNDS;
  }

 private:
  bool Deeper() { return ++depth_ <= kMaxDepth; }

  // Offset just past the container that has just been iterated: the token the iterator is at
  // now, less the whitespace before it.
  std::size_t EndOfContainer() const {
    const char* next = nullptr;
    std::size_t end = size_;
    if (document_.current_location().get(next) == simdjson::SUCCESS) {
      end = static_cast<std::size_t>(next - base_);
    }
    while (end > 0 && IsJsonSpace(base_[end - 1])) --end;
    return end;
  }
  // Whether the scanner needs the end offset of the container ending now: the scanned object's
  // own end, or the end of a managedFields value being cut.
  bool NeedsEnd() const {
    return scanner_.frames_.size() == 1 || (scanner_.cutting_ && scanner_.frames_.size() == 3);
  }

  // The content of the string whose opening quote is at `quote` and whose closing quote is at
  // `close`, decoded when `decode`; else, with escapes, it is left as it is (the scanner does not
  // read a string it has no use for). ParseDocument() has checked every escape in the document.
  std::string_view Content(const char* quote, const char* close, bool decode) {
    std::string_view out(quote + 1, static_cast<std::size_t>(close - quote - 1));
    if (decode && std::memchr(out.data(), '\\', out.size()) != nullptr) {
      DecodeEscapes(out, decoded_);
      out = decoded_;
    }
    return out;
  }
  // Whether the scanner reads the key or the string value that comes next (ObjectScanner::Key
  // and ObjectScanner::String): in a tracked object or metadata.labels, or at a tracked path.
  bool ScannerReadsKey() const {
    const ObjectScanner::Frame& frame = scanner_.frames_.back();
    return frame.labels || frame.node >= 0;
  }
  bool ScannerReadsString() const {
    return scanner_.frames_.back().labels || scanner_.pending_ >= 0;
  }

  bool Object(simdjson::ondemand::object& object, std::size_t at) {
    if (!Deeper()) return false;
    if (in_object_) {
      if (!scanner_.StartObject(at)) return false;
    } else {
      Envelope::ObjectStart start = Envelope::ObjectStart::kDescend;
      if (!envelope_.StartObject(start)) return false;
      if (start == Envelope::ObjectStart::kScan) {
        in_object_ = true;
        scanner_.Begin();
        if (!scanner_.StartObject(at)) return false;
      }
    }
    for (auto member : object) {
      simdjson::ondemand::field field;
      if (std::move(member).get(field) != simdjson::SUCCESS) return false;
      const char* quote = reinterpret_cast<const char*>(field.key().raw()) - 1;
      simdjson::ondemand::value& value = field.value();
      // The key's closing quote: back from the value over whitespace, the colon, whitespace.
      const std::string_view token = value.raw_json_token();
      const char* close = token.data();
      do {
        --close;
      } while (close > quote && IsJsonSpace(*close));
      if (close <= quote || *close != ':') return false;
      do {
        --close;
      } while (close > quote && IsJsonSpace(*close));
      if (close <= quote || *close != '"') return false;
      const std::string_view key = Content(quote, close, !in_object_ || ScannerReadsKey());
      const auto key_at = static_cast<std::size_t>(quote - base_);
      if (in_object_) {
        if (!scanner_.Key(key.data(), key.size(), key_at)) return false;
      } else if (!envelope_.Key(key)) {
        return false;
      }
      if (!Value(value, token)) return false;
    }
    --depth_;
    if (!in_object_) return envelope_.EndObject();
    const std::size_t end = NeedsEnd() ? EndOfContainer() : 0;
    if (!scanner_.EndObject(end)) return false;
    if (!scanner_.done_) return true;
    in_object_ = false;
    return envelope_.ObjectScanned(scanner_);
  }

  bool Array(simdjson::ondemand::array& array, std::size_t at) {
    if (!Deeper()) return false;
    if (in_object_) {
      if (!scanner_.StartArray(at)) return false;
    } else if (!envelope_.StartArray()) {
      return false;
    }
    for (auto element : array) {
      simdjson::ondemand::value value;
      if (std::move(element).get(value) != simdjson::SUCCESS) return false;
      if (!Value(value, value.raw_json_token())) return false;
    }
    --depth_;
    if (!in_object_) return envelope_.EndArray();
    const std::size_t end = NeedsEnd() ? EndOfContainer() : 0;
    return scanner_.EndArray(end);
  }

  // `token`: the value's raw token, from its first byte to the next structural character.
  bool Value(simdjson::ondemand::value& value, std::string_view token) {
    if (token.empty()) return false;
    const auto at = static_cast<std::size_t>(token.data() - base_);
    switch (token[0]) {
      case '{': {
        simdjson::ondemand::object object;
        if (value.get_object().get(object) != simdjson::SUCCESS) return false;
        return Object(object, at);
      }
      case '[': {
        simdjson::ondemand::array array;
        if (value.get_array().get(array) != simdjson::SUCCESS) return false;
        return Array(array, at);
      }
      case '"': {
        // Consumed, not left for the iterator to skip: skipping a string that a colon follows,
        // On-Demand takes it for a key and skips the colon too, so `"a":"b":"c"` would pass.
        simdjson::ondemand::raw_json_string consumed;
        if (value.get_raw_json_string().get(consumed) != simdjson::SUCCESS) return false;
        const std::string_view text = TrimTrailingSpace(token);
        if (text.size() < 2 || text.back() != '"') return false;
        const std::string_view content = Content(text.data(), text.data() + text.size() - 1,
                                                 !in_object_ || ScannerReadsString());
        if (in_object_) return scanner_.String(content.data(), content.size(), at);
        return envelope_.Scalar(Envelope::JsonScalar::kString, content);
      }
      case 't':
      case 'f':
      case 'n': {
        const std::string_view text = TrimTrailingSpace(token);
        if (text == "null") {
          if (in_object_) return scanner_.Null(at);
          return envelope_.Scalar(Envelope::JsonScalar::kNull, "null");
        }
        if (text != "true" && text != "false") return false;
        const bool truth = text.size() == 4;
        if (in_object_) return scanner_.Bool(truth, at);
        return envelope_.Scalar(Envelope::JsonScalar::kBool, truth ? "true" : "false");
      }
      default: {
        const std::string_view text = TrimTrailingSpace(token);
        if (!IsPlainNumber(text)) return false;
        if (in_object_) return scanner_.Number(text.data(), text.size(), at);
        return envelope_.Scalar(Envelope::JsonScalar::kNumber, text);
      }
    }
  }

  ObjectScanner& scanner_;
  DocumentEnvelope& envelope_;
  simdjson::ondemand::document& document_;
  const char* base_;
  std::size_t size_;
  std::string& decoded_;
  bool in_object_ = false;
  int depth_ = 0;
};

std::string SkippedObject::Describe() const {
  if (name.empty()) return "an object with no name";
  if (namespace_name.empty()) return name;
  return fmt::format("{}/{}", namespace_name, name);
}

ObjectScanner::ObjectScanner(ScanOptions options, std::size_t keep_buffer_bytes)
    : options_(std::move(options)),
      keep_buffer_bytes_(keep_buffer_bytes),
      reader_(std::make_unique<rapidjson::Reader>()) {
  plan_.push_back(PathNode{});
  const uint32_t metadata = AddNode(0, "metadata", Slot::kMetadata);
  AddNode(metadata, "name", Slot::kName);
  AddNode(metadata, "namespace", Slot::kNamespace);
  AddNode(metadata, "uid", Slot::kUid);
  AddNode(metadata, "resourceVersion", Slot::kResourceVersion);
  AddNode(metadata, "deletionTimestamp", Slot::kDeletionTimestamp);
  AddNode(metadata, "labels", Slot::kLabels);
  if (options_.strip_managed_fields) AddNode(metadata, "managedFields", Slot::kManagedFields);
  // Annotation keys contain dots, so this path is built by segments, not parsed from a string.
  const uint32_t annotations = AddNode(metadata, "annotations", Slot::kNone);
  AddNode(annotations, "k8s.io/initial-events-end", Slot::kInitialEventsEnd);
  AddNode(0, "kind", Slot::kKind);
  AddNode(0, "apiVersion", Slot::kApiVersion);
  AddNode(0, "code", Slot::kStatusCode);
  AddNode(0, "status", Slot::kStatusStatus);
  AddNode(0, "reason", Slot::kStatusReason);
  AddNode(0, "message", Slot::kStatusMessage);

  for (uint32_t i = 0; i < options_.extra_field_paths.size(); ++i) {
    const std::string& path = options_.extra_field_paths[i];
    uint32_t node = 0;
    std::size_t start = 0;
    while (true) {
      const std::size_t dot = path.find('.', start);
      const std::string segment =
          path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      node = AddNode(node, segment, Slot::kNone);
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    plan_[node].extras.push_back(i);
  }
  extras_.resize(options_.extra_field_paths.size());
}

ObjectScanner::~ObjectScanner() = default;

// Returns the child of `parent` named `key`, creating it with `slot` if there is none. A node
// reached both by a built-in field and an extra path (say "metadata.name") keeps the built-in slot.
uint32_t ObjectScanner::AddNode(uint32_t parent, const std::string& key, Slot slot) {
  for (uint32_t child : plan_[parent].children) {
    if (plan_[child].key == key) {
      if (plan_[child].slot == Slot::kNone) plan_[child].slot = slot;
      return child;
    }
  }
  PathNode node;
  node.key = key;
  node.path = parent == 0 ? key : fmt::format("{}.{}", plan_[parent].path, key);
  node.slot = slot;
  plan_.push_back(std::move(node));
  const auto index = static_cast<uint32_t>(plan_.size() - 1);
  plan_[parent].children.push_back(index);
  return index;
}

int32_t ObjectScanner::FindChild(int32_t node, const char* key, std::size_t length) const {
  for (uint32_t child : plan_[node].children) {
    const std::string& name = plan_[child].key;
    if (name.size() == length && std::memcmp(name.data(), key, length) == 0) {
      return static_cast<int32_t>(child);
    }
  }
  return -1;
}

absl::StatusOr<ObjectRecord> ObjectScanner::Scan(std::string_view json) {
  StandaloneEnvelope envelope;
  if (absl::Status status = ParseDocument(json, envelope); !status.ok()) return status;
  return TakeRecord();
}

bool ObjectScanner::FastParse(std::size_t size, DocumentEnvelope& envelope) {
  if (!fast_parser_) fast_parser_ = std::make_unique<FastParser>();
  simdjson::ondemand::document document;
  if (fast_parser_->parser
          .iterate(simdjson::padded_string_view(scratch_.data(), size, scratch_.size()))
          .get(document) != simdjson::SUCCESS) {
    return false;
  }
  FastWalker walker(*this, envelope, document, scratch_.data(), size, fast_parser_->decoded);
  return walker.Run();
}

absl::Status ObjectScanner::ParseDocument(std::string_view document, DocumentEnvelope& envelope) {
  document_ = document;
  error_.clear();
  // NUL-terminated, as RapidJSON's stream needs, and then padded: validating UTF-8, RapidJSON
  // reads a multi-byte sequence's continuation bytes without stopping at the NUL, so a document
  // that ends inside one (a truncated event, garbage) would have it read past the terminator;
  // simdjson reads up to SIMDJSON_PADDING bytes past the end.
  scratch_.assign(document.data(), document.size());
  scratch_.append(kScratchPadding, '\0');

  const bool ascii = IsAscii(document);
  const bool fast = options_.fast_path == ScanOptions::FastPath::kAlways ||
                    (options_.fast_path == ScanOptions::FastPath::kNonAscii && !ascii);
  if (fast && envelope.CanRestart() && document.size() <= kFastPathMaxBytes) {
    std::string_view trimmed = document.substr(SkipSpace(document, 0));
    trimmed = TrimTrailingSpace(trimmed);
    if (!HasControlByte(trimmed) && CheckEscapes(trimmed)) {
      const bool parsed = FastParse(document.size(), envelope);
      if (fast_parser_->parser.capacity() > keep_buffer_bytes_) fast_parser_.reset();
      if (parsed) {
        ++fast_documents_;
        if (scratch_.capacity() > keep_buffer_bytes_) std::string().swap(scratch_);
        return absl::OkStatus();
      }
    }
    envelope.Restart();
    error_.clear();
  }
  ++fallback_documents_;

  rapidjson::InsituStringStream stream(scratch_.data());
  ScannerSax sax(*this, envelope, stream);
  if (ascii) {
    reader_->Parse<kParseFlags>(stream, sax);
  } else {
    reader_->Parse<kValidatingParseFlags>(stream, sax);
  }
  const std::size_t parsed = stream.Tell();
  if (scratch_.capacity() > keep_buffer_bytes_) std::string().swap(scratch_);

  if (reader_->HasParseError()) {
    // A handler that refused the input has said why; only the party that refused set an error.
    if (!sax.error().empty()) return absl::InvalidArgumentError(sax.error());
    if (sax.in_object() && !error_.empty()) return absl::InvalidArgumentError(error_);
    if (!envelope.error().empty()) return absl::InvalidArgumentError(envelope.error());
    return absl::InvalidArgumentError(
        fmt::format("invalid JSON at byte {}: {}", reader_->GetErrorOffset(),
                    rapidjson::GetParseError_En(reader_->GetParseErrorCode())));
  }
  // The stream ends at the first NUL byte, so a NUL after the value would otherwise pass
  // unnoticed.
  if (parsed != document.size()) {
    return absl::InvalidArgumentError(
        fmt::format("invalid JSON at byte {}: NUL byte after the value", parsed));
  }
  return absl::OkStatus();
}

void ObjectScanner::Begin() {
  frames_.clear();
  cuts_.clear();
  labels_.clear();
  pending_ = -1;
  cutting_ = false;
  begin_ = 0;
  end_ = 0;
  root_members_ = 0;
  done_ = false;
  error_.clear();
  side_ = ScanSideFields{};
  namespace_name_ = name_ = uid_ = resource_version_ = deletion_timestamp_ = TextRef{};
  extras_.assign(options_.extra_field_paths.size(), std::nullopt);
  escaped_.clear();
  fields_built_ = false;
}

ObjectScanner::TextRef ObjectScanner::MakeRef(const char* text, std::size_t length, bool is_string,
                                              std::size_t at) {
  TextRef ref;
  ref.size = length;
  if (!is_string) {
    // A number's or literal's text is exactly what the document holds at `at`.
    ref.raw = at;
  } else if (const std::size_t first = at + 1;
             first + length < document_.size() && document_[first + length] == '"' &&
             std::memchr(document_.data() + first, '\\', length) == nullptr) {
    // No backslash before the quote that follows: the decoded value is the raw text.
    ref.raw = first;
  } else {
    ref.pooled = escaped_.size();
    escaped_.append(text, length);
  }
  return ref;
}

bool ObjectScanner::Fail(std::string message) {
  error_ = std::move(message);
  return false;
}

void ObjectScanner::EndCut(std::size_t end) {
  cut_.value_end = end;
  cuts_.push_back(cut_);
  cutting_ = false;
  ++frames_[1].cut_members;
}

bool ObjectScanner::ApplyScalar(const PathNode& node, const char* text, std::size_t length,
                                bool is_string, std::size_t at) {
  TextRef* target = nullptr;
  switch (node.slot) {
    case Slot::kNone:
    case Slot::kManagedFields:
      break;
    case Slot::kMetadata:
    case Slot::kLabels:
      return Fail(fmt::format("{} must be an object, found {} (at byte {})", node.path,
                              ValueKindName(is_string), at));
    case Slot::kName:
      target = &name_;
      break;
    case Slot::kNamespace:
      target = &namespace_name_;
      break;
    case Slot::kUid:
      target = &uid_;
      break;
    case Slot::kResourceVersion:
      target = &resource_version_;
      break;
    case Slot::kDeletionTimestamp:
      target = &deletion_timestamp_;
      break;
    case Slot::kInitialEventsEnd:
      side_.initial_events_end = is_string && std::string_view(text, length) == "true";
      break;
    case Slot::kKind:
      if (is_string) side_.kind.assign(text, length);
      break;
    case Slot::kApiVersion:
      break;
    case Slot::kStatusCode:
      if (!is_string) {
        int32_t code = 0;
        const auto result = std::from_chars(text, text + length, code);
        if (result.ec == std::errc() && result.ptr == text + length) side_.status.code = code;
      }
      break;
    case Slot::kStatusStatus:
      if (is_string) side_.status.status.assign(text, length);
      break;
    case Slot::kStatusReason:
      if (is_string) side_.status.reason.assign(text, length);
      break;
    case Slot::kStatusMessage:
      if (is_string) side_.status.message.assign(text, length);
      break;
  }
  if (target != nullptr) {
    if (!is_string) {
      return Fail(fmt::format("{} must be a string, found {} (at byte {})", node.path,
                              ValueKindName(false), at));
    }
    *target = MakeRef(text, length, true, at);
  }
  if (!node.extras.empty()) {
    const TextRef ref = MakeRef(text, length, is_string, at);
    for (uint32_t extra : node.extras) extras_[extra] = ref;
  }
  return true;
}

bool ObjectScanner::ApplyContainer(const PathNode& node, bool is_array, std::size_t at) {
  const char* found = is_array ? "an array" : "an object";
  switch (node.slot) {
    case Slot::kMetadata:
    case Slot::kLabels:
      if (is_array) {
        return Fail(
            fmt::format("{} must be an object, found an array (at byte {})", node.path, at));
      }
      break;
    case Slot::kName:
    case Slot::kNamespace:
    case Slot::kUid:
    case Slot::kResourceVersion:
    case Slot::kDeletionTimestamp:
      return Fail(fmt::format("{} must be a string, found {} (at byte {})", node.path, found, at));
    default:
      break;
  }
  // Only scalars are indexable; the last occurrence of a repeated key wins, as in Go.
  for (uint32_t extra : node.extras) extras_[extra].reset();
  return true;
}

bool ObjectScanner::StartContainer(bool is_array, std::size_t at) {
  if (frames_.empty()) {  // the object itself: ScannerSax starts every object this way
    begin_ = at;
    Push(0, false, false);
    return true;
  }
  const Frame& parent = frames_.back();
  if (parent.labels) {
    return Fail(fmt::format("metadata.labels values must be strings, found {} (at byte {})",
                            is_array ? "an array" : "an object", at));
  }
  int32_t track = -1;
  bool labels = false;
  if (pending_ >= 0) {
    const PathNode& node = plan_[pending_];
    if (!ApplyContainer(node, is_array, at)) return false;
    if (!is_array) {
      labels = node.slot == Slot::kLabels;
      if (labels) labels_.clear();  // a repeated "labels" key: the last one wins
      if (labels || !node.children.empty()) track = pending_;
    }
  }
  pending_ = -1;
  Push(track, is_array, labels);
  return true;
}

// Field by field: building a Frame on the stack and copying it in made the CPU reload it as one
// 16-byte word right after byte-sized stores, a store-forwarding stall that cost ~10% of a scan.
void ObjectScanner::Push(int32_t node, bool is_array, bool labels) {
  Frame& frame = frames_.emplace_back();
  frame.node = node;
  frame.is_array = is_array;
  frame.labels = labels;
  frame.keys = 0;
  frame.cut_members = 0;
}

bool ObjectScanner::StartObject(std::size_t at) { return StartContainer(false, at); }

bool ObjectScanner::StartArray(std::size_t at) { return StartContainer(true, at); }

bool ObjectScanner::EndObject(std::size_t end) {
  if (frames_.size() == 1) root_members_ = frames_.back().keys;
  frames_.pop_back();
  if (frames_.empty()) {
    end_ = end;
    done_ = true;
    return true;
  }
  if (EndsCut()) EndCut(end);
  return true;
}

bool ObjectScanner::EndArray(std::size_t end) {
  frames_.pop_back();
  if (EndsCut()) EndCut(end);
  return true;
}

bool ObjectScanner::Key(const char* str, std::size_t length, std::size_t at) {
  Frame& frame = frames_.back();
  if (frame.labels) label_key_ = MakeRef(str, length, true, at);
  if (frame.node >= 0) {
    pending_ = FindChild(frame.node, str, length);
    if (pending_ >= 0) {
      switch (plan_[pending_].slot) {
        case Slot::kManagedFields:
          cutting_ = true;
          cut_ = Cut{at, 0, frame.keys == frame.cut_members};
          break;
        case Slot::kKind:
          side_.has_kind = true;
          break;
        case Slot::kApiVersion:
          side_.has_api_version = true;
          break;
        default:
          break;
      }
    }
  } else {
    pending_ = -1;
  }
  ++frame.keys;
  return true;
}

bool ObjectScanner::String(const char* str, std::size_t length, std::size_t at) {
  if (frames_.back().labels) labels_.emplace_back(label_key_, MakeRef(str, length, true, at));
  if (pending_ >= 0) {
    if (!ApplyScalar(plan_[pending_], str, length, true, at)) return false;
    pending_ = -1;
  }
  if (EndsCut()) EndCut(EndOfString(document_, at));
  return true;
}

bool ObjectScanner::Number(const char* text, std::size_t length, std::size_t at) {
  if (frames_.back().labels) {
    return Fail(
        fmt::format("metadata.labels values must be strings, found a number (at byte {})", at));
  }
  if (pending_ >= 0) {
    if (!ApplyScalar(plan_[pending_], text, length, false, at)) return false;
    pending_ = -1;
  }
  if (EndsCut()) EndCut(EndOfNumber(document_, at));
  return true;
}

bool ObjectScanner::Bool(bool value, std::size_t at) {
  if (frames_.back().labels) {
    return Fail(
        fmt::format("metadata.labels values must be strings, found a boolean (at byte {})", at));
  }
  const std::string_view text = value ? "true" : "false";
  if (pending_ >= 0) {
    if (!ApplyScalar(plan_[pending_], text.data(), text.size(), false, at)) return false;
    pending_ = -1;
  }
  if (EndsCut()) EndCut(at + text.size());
  return true;
}

bool ObjectScanner::Null(std::size_t at) {
  // Go's encoding/json leaves a field alone when it meets null, and stores "" for a map value.
  if (frames_.back().labels) labels_.emplace_back(label_key_, TextRef{});
  if (pending_ >= 0) {
    for (uint32_t extra : plan_[pending_].extras) extras_[extra].reset();
    pending_ = -1;
  }
  if (EndsCut()) EndCut(at + 4);
  return true;
}

ObjectRecord ObjectScanner::TakeRecord() { return TakeRecord(std::string_view()); }

ObjectRecord ObjectScanner::TakeRecord(std::string_view members) {
  const std::string_view document = document_;
  segments_.clear();
  std::string_view json;
  if (cuts_.empty() && members.empty()) {
    json = document.substr(begin_, end_ - begin_);
    segments_.push_back(Segment{begin_, end_, 0});
  } else {
    // Cut exactly the member and one comma, so that the rest stays byte-identical:
    //   {"a":1,"managedFields":[...],"b":2}  the comma before it:  {"a":1,"b":2}
    //   {"managedFields":[...],"b":2}        the comma after it:   {"b":2}
    //   {"managedFields":[...]}              no comma at all:      {}
    // "First" means no kept member precedes it, which also covers a repeated managedFields key.
    // managedFields is a member of metadata, so inserted members never touch a cut.
    json_.clear();
    std::size_t copied = begin_;
    const auto keep = [&](std::size_t from, std::size_t to) {
      if (to <= from) return;
      segments_.push_back(Segment{from, to, json_.size()});
      json_.append(document.data() + from, to - from);
    };
    if (!members.empty()) {
      keep(begin_, begin_ + 1);  // the opening brace
      json_.append(members.data(), members.size());
      if (root_members_ > 0) json_.push_back(',');
      copied = begin_ + 1;
    }
    for (const Cut& cut : cuts_) {
      std::size_t from = cut.key_start;
      std::size_t to = cut.value_end;
      if (cut.first) {
        const std::size_t next = SkipSpace(document, cut.value_end);
        if (next < document.size() && document[next] == ',') to = next + 1;
      } else {
        // Back over the whitespace between the key and the comma that precedes it.
        while (IsJsonSpace(document[from - 1])) --from;
        --from;
      }
      from = std::max(from, copied);
      keep(copied, from);
      copied = std::max(to, copied);
    }
    keep(copied, end_);
    json = json_;
  }

  label_views_.clear();
  for (const auto& [key, value] : labels_) {
    label_views_.emplace_back(Resolve(key, json), Resolve(value, json));
  }
  LabelSet::Normalize(label_views_);
  extra_views_.clear();
  for (const std::optional<TextRef>& extra : extras_) {
    extra_views_.push_back(extra ? std::optional<std::string_view>(Resolve(*extra, json))
                                 : std::nullopt);
  }
  ObjectRecord record =
      ObjectRecord::Pack(json, Resolve(namespace_name_, json), Resolve(name_, json),
                         Resolve(uid_, json), Resolve(resource_version_, json),
                         Resolve(deletion_timestamp_, json), label_views_, extra_views_);
  return record;
}

std::string_view ObjectScanner::Resolve(const TextRef& ref, std::string_view json) const {
  if (ref.raw == std::string_view::npos || ref.size == 0) return Decoded(ref);
  for (const Segment& segment : segments_) {
    if (ref.raw >= segment.from && ref.raw + ref.size <= segment.to) {
      return json.substr(segment.out + (ref.raw - segment.from), ref.size);
    }
  }
  return Decoded(ref);  // not in the kept JSON (cannot happen): Pack copies it
}

const ObjectRecord& ObjectScanner::fields() const {
  if (!fields_built_) {
    std::vector<LabelSet::View> labels;
    for (const auto& [key, value] : labels_) labels.emplace_back(Decoded(key), Decoded(value));
    LabelSet::Normalize(labels);
    std::vector<std::optional<std::string_view>> extras;
    for (const std::optional<TextRef>& extra : extras_) {
      extras.push_back(extra ? std::optional<std::string_view>(Decoded(*extra)) : std::nullopt);
    }
    fields_ = ObjectRecord::Pack(std::string_view(), Decoded(namespace_name_), Decoded(name_),
                                 Decoded(uid_), Decoded(resource_version_),
                                 Decoded(deletion_timestamp_), labels, extras);
    fields_built_ = true;
  }
  return fields_;
}

}  // namespace informerd::core
