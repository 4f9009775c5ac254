#include "core/watch_event_decoder.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "fmt/format.h"

namespace informerd::core {
namespace {

// After this, the buffer of an unusually large event is released rather than kept for reuse.
constexpr std::size_t kKeepBufferBytes = std::size_t{1} << 20;

bool IsBlank(std::string_view text) {
  for (char c : text) {
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return false;
  }
  return true;
}

// Follows the envelope {"type":T,"object":{...}}; the scanner takes the "object" value. Members
// other than type and object are skipped, as Go's encoding/json would.
class EventEnvelope : public DocumentEnvelope {
 public:
  bool CanRestart() const override { return true; }
  void Reset() override { state_ = State{}; }
  bool StartObject(ObjectStart& start) override {
    if (state_.depth == 1 && state_.member == Member::kObject) {
      start = ObjectStart::kScan;
      state_.object_started = true;
      return true;
    }
    if (state_.depth == 1 && state_.member == Member::kType) return Check("an object");
    ++state_.depth;  // the event itself, or an object inside a member we skip
    return true;
  }
  bool EndObject() override {
    --state_.depth;
    return true;
  }
  bool StartArray() override {
    if (!Check("an array")) return false;
    ++state_.depth;
    return true;
  }
  bool EndArray() override {
    --state_.depth;
    return true;
  }
  bool Key(std::string_view key) override {
    if (state_.depth == 1) {
      state_.member = key == "type"     ? Member::kType
                      : key == "object" ? Member::kObject
                                        : Member::kOther;
    }
    return true;
  }
  bool Scalar(JsonScalar kind, std::string_view text) override {
    if (state_.depth == 1 && state_.member == Member::kType && kind == JsonScalar::kString) {
      state_.type.assign(text.data(), text.size());
      state_.has_type = true;
      return true;
    }
    return Check(Describe(kind));
  }
  bool ObjectScanned(ObjectScanner&) override {
    state_.has_object = true;  // the decoder takes the record once it knows the type
    return true;
  }

  const std::string& type() const { return state_.type; }
  bool has_type() const { return state_.has_type; }
  bool has_object() const { return state_.has_object; }
  // The scanner began scanning the "object" (it may not have finished).
  bool object_started() const { return state_.object_started; }

 private:
  enum class Member { kOther, kType, kObject };

  // Any value is fine inside members we skip; "type" and "object" and the event itself have one
  // shape each.
  bool Check(const char* what) {
    if (state_.depth == 0) {
      return Fail(fmt::format("the event is {}, not a JSON object", what));
    }
    if (state_.depth == 1 && state_.member == Member::kType) {
      return Fail(fmt::format("\"type\" is {}, not a string", what));
    }
    if (state_.depth == 1 && state_.member == Member::kObject) {
      return Fail(fmt::format("\"object\" is {}, not a JSON object", what));
    }
    return true;
  }

  // Where the parse is; Reset starts it over, so all of it lives here.
  struct State {
    int depth = 0;  // envelope nesting; the scanned object does not count
    Member member = Member::kOther;
    std::string type;
    bool has_type = false;
    bool has_object = false;
    bool object_started = false;
  };
  State state_;
};

bool ParseEventType(std::string_view text, WatchEventType& type) {
  static constexpr WatchEventType kTypes[] = {WatchEventType::kAdded, WatchEventType::kModified,
                                              WatchEventType::kDeleted, WatchEventType::kBookmark,
                                              WatchEventType::kError};
  for (const WatchEventType candidate : kTypes) {
    if (text == WatchEventTypeName(candidate)) {
      type = candidate;
      return true;
    }
  }
  return false;
}

std::string Resume(const std::string& resource_version) {
  if (resource_version.empty()) return "no resourceVersion known yet";
  return fmt::format("resume from resourceVersion \"{}\"", resource_version);
}

}  // namespace

const char* WatchEventTypeName(WatchEventType type) {
  switch (type) {
    case WatchEventType::kAdded:
      return "ADDED";
    case WatchEventType::kModified:
      return "MODIFIED";
    case WatchEventType::kDeleted:
      return "DELETED";
    case WatchEventType::kBookmark:
      return "BOOKMARK";
    case WatchEventType::kError:
      return "ERROR";
  }
  return "UNKNOWN";
}

WatchEventDecoder::WatchEventDecoder(WatchDecoderOptions options)
    : scanner_(std::move(options.scan)),
      max_event_bytes_(options.max_event_bytes),
      resource_version_(std::move(options.start_resource_version)) {}

WatchEventDecoder::~WatchEventDecoder() = default;

absl::Status WatchEventDecoder::Break(absl::Status status) {
  status_ = std::move(status);
  std::string().swap(pending_);
  return status_;
}

void WatchEventDecoder::SkipOversized(std::vector<WatchEvent>& events) {
  if (!IsBlank(pending_)) {
    WatchEvent event;
    event.type = WatchEventType::kModified;
    SkippedObject skipped;
    skipped.bytes = oversized_bytes_;
    skipped.limit = max_event_bytes_;
    // The kept bytes end inside the event, so the parse fails there; what it saw before that is
    // all there is to know. A Go server writes "type" first, then the object's metadata.
    EventEnvelope envelope;
    (void)scanner_.ParseDocument(pending_, envelope);
    if (envelope.has_type()) ParseEventType(envelope.type(), event.type);
    if (envelope.object_started()) {
      const ObjectRecord& object = scanner_.fields();
      skipped.namespace_name = object.namespace_name.str();
      skipped.name = object.name.str();
      skipped.uid = object.uid.str();
      skipped.resource_version = object.resource_version.str();
    }
    if (!skipped.resource_version.empty() && event.type != WatchEventType::kError) {
      resource_version_ = skipped.resource_version;
    }
    event.skipped = std::move(skipped);
    events.push_back(std::move(event));
    ++events_decoded_;
  }
  consumed_ += oversized_bytes_ + 1;
  skipping_ = false;
  oversized_bytes_ = 0;
  if (pending_.capacity() > kKeepBufferBytes) {
    std::string().swap(pending_);
  } else {
    pending_.clear();
  }
}

absl::Status WatchEventDecoder::Feed(std::string_view bytes, std::vector<WatchEvent>& events) {
  if (!status_.ok()) return status_;
  while (!bytes.empty()) {
    const void* newline = std::memchr(bytes.data(), '\n', bytes.size());
    const auto length =
        newline == nullptr
            ? bytes.size()
            : static_cast<std::size_t>(static_cast<const char*>(newline) - bytes.data());
    // Checked before buffering, so a stream that never sends a newline cannot grow the buffer
    // past the limit.
    if (!skipping_ && pending_.size() + length > max_event_bytes_) {
      skipping_ = true;
      oversized_bytes_ = pending_.size();
    }
    if (skipping_) {
      pending_.append(bytes.data(), std::min(length, max_event_bytes_ - pending_.size()));
      oversized_bytes_ += length;
      if (newline == nullptr) return absl::OkStatus();
      SkipOversized(events);
      bytes.remove_prefix(length + 1);
      continue;
    }
    if (newline == nullptr) {
      pending_.append(bytes.data(), bytes.size());
      return absl::OkStatus();
    }
    absl::Status status;
    std::size_t line_size = length;
    if (pending_.empty()) {
      // The common case for small events: parse straight from the caller's piece, no copy.
      status = DecodeLine(bytes.substr(0, length), events);
    } else {
      pending_.append(bytes.data(), length);
      line_size = pending_.size();
      status = DecodeLine(pending_, events);
      if (pending_.capacity() > kKeepBufferBytes) {
        std::string().swap(pending_);
      } else {
        pending_.clear();
      }
    }
    if (!status.ok()) return Break(std::move(status));
    consumed_ += line_size + 1;
    bytes.remove_prefix(length + 1);
  }
  return absl::OkStatus();
}

absl::Status WatchEventDecoder::Finish(std::vector<WatchEvent>& events) {
  if (!status_.ok()) return status_;
  if (skipping_) {
    return Break(absl::InvalidArgumentError(fmt::format(
        "the watch body ended inside event #{} at stream byte {}, {} bytes so far (over the "
        "{}-byte limit); {}",
        events_decoded_ + 1, consumed_, oversized_bytes_, max_event_bytes_,
        Resume(resource_version_))));
  }
  if (IsBlank(pending_)) {
    pending_.clear();
    return absl::OkStatus();
  }
  const std::string line = std::move(pending_);
  pending_.clear();
  absl::Status status = DecodeLine(line, events);
  if (!status.ok()) {
    return Break(absl::InvalidArgumentError(
        fmt::format("the watch body ended inside an event: {}", std::string(status.message()))));
  }
  consumed_ += line.size();
  return absl::OkStatus();
}

absl::Status WatchEventDecoder::DecodeLine(std::string_view line, std::vector<WatchEvent>& events) {
  // Blank lines carry nothing (a proxy may add "\r\n" keep-alives).
  if (IsBlank(line)) return absl::OkStatus();
  const auto malformed = [&](const std::string& detail) {
    return absl::InvalidArgumentError(
        fmt::format("watch event #{} at stream byte {} is malformed: {}; {}", events_decoded_ + 1,
                    consumed_, detail, Resume(resource_version_)));
  };

  EventEnvelope envelope;
  if (absl::Status parsed = scanner_.ParseDocument(line, envelope); !parsed.ok()) {
    return malformed(std::string(parsed.message()));
  }
  if (!envelope.has_type()) return malformed("it has no \"type\"");
  if (!envelope.has_object()) return malformed("it has no \"object\"");

  WatchEvent event;
  if (!ParseEventType(envelope.type(), event.type)) {
    return malformed(fmt::format("unknown event type \"{}\"", envelope.type()));
  }

  switch (event.type) {
    case WatchEventType::kAdded:
    case WatchEventType::kModified:
    case WatchEventType::kDeleted:
      event.object = scanner_.TakeRecord();
      if (!event.object.resource_version.empty()) {
        resource_version_ = event.object.resource_version;
      }
      break;
    case WatchEventType::kBookmark:
      // A bookmark exists only to carry a resource version; without one it is not a bookmark.
      if (scanner_.fields().resource_version.empty()) {
        return malformed("BOOKMARK without metadata.resourceVersion");
      }
      event.resource_version = scanner_.fields().resource_version;
      event.initial_events_end = scanner_.side_fields().initial_events_end;
      resource_version_ = event.resource_version;
      break;
    case WatchEventType::kError:
      event.status = scanner_.side_fields().status;
      break;
  }
  events.push_back(std::move(event));
  ++events_decoded_;
  return absl::OkStatus();
}

}  // namespace informerd::core
