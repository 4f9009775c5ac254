#include "core/list_decoder.h"

#include <charconv>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace informerd::core {
namespace {

// A kind ("Pod", "CronTab": letters and digits) or, with `version`, an apiVersion ("v1",
// "apps/v1", "stable.example.com/v1beta1": also '.', '-' and '/').
bool IsPlainName(std::string_view text, bool version) {
  if (text.empty()) return false;
  for (const char c : text) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       (version && (c == '.' || c == '-' || c == '/'));
    if (!plain) return false;
  }
  return true;
}

// Appends `"key":"value"` to `out`, `value` escaped as encoding/json would (quote, backslash and
// control characters; other bytes as they are).
void AppendMember(std::string& out, std::string_view key, std::string_view value) {
  if (!out.empty()) out.push_back(',');
  out.push_back('"');
  out.append(key.data(), key.size());
  out.append("\":\"");
  for (const char c : value) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

// Follows {"kind":..,"apiVersion":..,"metadata":{...},"items":[...], ...}; the scanner takes each
// item. Members it does not know are skipped, as Go's encoding/json would.
class PageEnvelope : public DocumentEnvelope {
 public:
  PageEnvelope(ListPage& page, std::size_t max_item_bytes, const ItemType& item_type)
      : page_(page), max_item_bytes_(max_item_bytes), item_type_(item_type) {}

  bool CanRestart() const override { return true; }
  void Reset() override {
    page_ = ListPage{};
    state_ = State{};
  }

  bool StartObject(ObjectStart& start) override {
    switch (state_.where) {
      case Where::kBeforeRoot:
        state_.where = Where::kRoot;
        return true;
      case Where::kRoot:
        if (state_.member == Member::kMetadata) {
          state_.where = Where::kMetadata;
          return true;
        }
        if (state_.member == Member::kItems) return Fail("\"items\" is an object, not an array");
        return Skip(Where::kRoot);
      case Where::kMetadata:
        if (state_.member != Member::kOther) return Fail(WrongType("an object"));
        return Skip(Where::kMetadata);
      case Where::kItems:
        start = ObjectStart::kScan;
        state_.in_item = true;
        return true;
      case Where::kSkip:
        ++state_.skip_depth;
        return true;
      case Where::kDone:
        break;
    }
    return Fail("unexpected object");  // RapidJSON rejects a second root before we get here
  }
  bool EndObject() override {
    switch (state_.where) {
      case Where::kMetadata:
        state_.where = Where::kRoot;
        state_.member = Member::kOther;
        break;
      case Where::kSkip:
        EndSkipped();
        break;
      default:
        state_.where = Where::kDone;
        break;
    }
    return true;
  }
  bool StartArray() override {
    switch (state_.where) {
      case Where::kBeforeRoot:
        return Fail("the body is an array, not a JSON object");
      case Where::kRoot:
        if (state_.member == Member::kItems) {
          state_.where = Where::kItems;
          return true;
        }
        if (state_.member == Member::kMetadata)
          return Fail("\"metadata\" is an array, not an object");
        return Skip(Where::kRoot);
      case Where::kMetadata:
        if (state_.member != Member::kOther) return Fail(WrongType("an array"));
        return Skip(Where::kMetadata);
      case Where::kItems:
        return Fail(fmt::format("items[{}] is an array, not an object", state_.item_index));
      case Where::kSkip:
        ++state_.skip_depth;
        return true;
      case Where::kDone:
        break;
    }
    return Fail("unexpected array");
  }
  bool EndArray() override {
    if (state_.where == Where::kItems) {
      state_.where = Where::kRoot;
      state_.member = Member::kOther;
      state_.has_items = true;
    } else {
      EndSkipped();
    }
    return true;
  }
  bool Key(std::string_view key) override {
    if (state_.where == Where::kRoot) {
      state_.member = key == "metadata"     ? Member::kMetadata
                      : key == "items"      ? Member::kItems
                      : key == "kind"       ? Member::kKind
                      : key == "apiVersion" ? Member::kApiVersion
                                            : Member::kOther;
    } else if (state_.where == Where::kMetadata) {
      state_.member = key == "resourceVersion"      ? Member::kResourceVersion
                      : key == "continue"           ? Member::kContinue
                      : key == "remainingItemCount" ? Member::kRemainingItemCount
                                                    : Member::kOther;
    }
    return true;
  }
  bool Scalar(JsonScalar kind, std::string_view text) override {
    const char* what = Describe(kind);
    switch (state_.where) {
      case Where::kBeforeRoot:
        return Fail(fmt::format("the body is {}, not a JSON object", what));
      case Where::kRoot:
        if (state_.member == Member::kMetadata) {
          if (kind == JsonScalar::kNull) return true;  // null metadata is the same as none
          return Fail(fmt::format("\"metadata\" is {}, not an object", what));
        }
        if (state_.member == Member::kItems) {
          if (kind == JsonScalar::kNull) {
            state_.has_items = true;  // `"items": null` is an empty page
            return true;
          }
          return Fail(fmt::format("\"items\" is {}, not an array", what));
        }
        if (state_.member == Member::kKind && kind == JsonScalar::kString) {
          state_.kind.assign(text.data(), text.size());
        } else if (state_.member == Member::kApiVersion && kind == JsonScalar::kString) {
          state_.api_version.assign(text.data(), text.size());
        }
        return true;
      case Where::kMetadata:
        return MetadataScalar(kind, text);
      case Where::kItems:
        return Fail(fmt::format("items[{}] is {}, not an object", state_.item_index, what));
      case Where::kSkip:
      case Where::kDone:
        return true;
    }
    return true;
  }
  bool ObjectScanned(ObjectScanner& scanner) override {
    state_.in_item = false;
    ++state_.item_index;
    // Checked before the record copies the item's JSON out of the page.
    if (const std::size_t size = scanner.object_bytes(); size > max_item_bytes_) {
      const ObjectRecord& item = scanner.fields();
      SkippedObject skipped;
      skipped.namespace_name = item.namespace_name.str();
      skipped.name = item.name.str();
      skipped.uid = item.uid.str();
      skipped.resource_version = item.resource_version.str();
      skipped.bytes = size;
      skipped.limit = max_item_bytes_;
      page_.skipped.push_back(std::move(skipped));
      return true;
    }
    const ScanSideFields& side = scanner.side_fields();
    state_.members.clear();
    if (!side.has_kind) {
      // "PodList" → "Pod", as client-go's UnstructuredList does for its items. Only a name the
      // apiserver could have written is copied into every item; anything else (escapes decoding
      // to a lone surrogate, control characters: garbage) gives way to the resource's own kind.
      std::string_view kind = state_.kind;
      if (kind.size() > 4 && kind.substr(kind.size() - 4) == "List" &&
          IsPlainName(kind.substr(0, kind.size() - 4), /*version=*/false)) {
        kind.remove_suffix(4);
      } else {
        kind = item_type_.kind;
      }
      if (!kind.empty()) AppendMember(state_.members, "kind", kind);
    }
    if (!side.has_api_version) {
      const std::string& api_version =
          !state_.api_version.empty() && IsPlainName(state_.api_version, true)
              ? state_.api_version
              : item_type_.api_version;
      if (!api_version.empty()) AppendMember(state_.members, "apiVersion", api_version);
    }
    page_.items.push_back(scanner.TakeRecord(state_.members));
    return true;
  }

  bool has_items() const { return state_.has_items; }
  // An item was being scanned when the parse stopped: errors are about items[item_index()].
  bool in_item() const { return state_.in_item; }
  // Items scanned so far, skipped ones included.
  std::size_t item_index() const { return state_.item_index; }
  const std::string& kind() const { return state_.kind; }

 private:
  enum class Where { kBeforeRoot, kRoot, kMetadata, kItems, kSkip, kDone };
  enum class Member {
    kOther,
    kMetadata,
    kItems,
    kKind,
    kApiVersion,
    kResourceVersion,
    kContinue,
    kRemainingItemCount
  };

  bool MetadataScalar(JsonScalar kind, std::string_view text) {
    if (state_.member == Member::kOther || kind == JsonScalar::kNull)
      return true;  // null: as if absent
    if (state_.member == Member::kRemainingItemCount) {
      if (kind != JsonScalar::kNumber) return Fail(WrongType(Describe(kind)));
      int64_t count = 0;
      const auto result = std::from_chars(text.data(), text.data() + text.size(), count);
      if (result.ec != std::errc() || result.ptr != text.data() + text.size()) {
        return Fail(fmt::format("metadata.remainingItemCount is {}, not a 64-bit integer", text));
      }
      page_.metadata.remaining_item_count = count;
      return true;
    }
    if (kind != JsonScalar::kString) return Fail(WrongType(Describe(kind)));
    std::string& target = state_.member == Member::kResourceVersion
                              ? page_.metadata.resource_version
                              : page_.metadata.continue_token;
    target.assign(text.data(), text.size());
    return true;
  }
  bool Skip(Where back) {
    state_.skip_back = back;
    state_.skip_depth = 1;
    state_.where = Where::kSkip;
    return true;
  }
  void EndSkipped() {
    if (--state_.skip_depth == 0) state_.where = state_.skip_back;
  }
  std::string WrongType(const char* what) const {
    const char* name = state_.member == Member::kResourceVersion ? "resourceVersion"
                       : state_.member == Member::kContinue      ? "continue"
                                                                 : "remainingItemCount";
    const char* wanted = state_.member == Member::kRemainingItemCount ? "an integer" : "a string";
    return fmt::format("metadata.{} is {}, not {}", name, what, wanted);
  }

  ListPage& page_;
  const std::size_t max_item_bytes_;
  const ItemType& item_type_;
  // Where the parse is; Reset starts it over, so all of it lives here.
  struct State {
    Where where = Where::kBeforeRoot;
    Member member = Member::kOther;
    Where skip_back = Where::kRoot;
    int skip_depth = 0;
    bool in_item = false;
    bool has_items = false;
    std::size_t item_index = 0;
    // The list's own "kind" and "apiVersion", once seen.
    std::string kind;
    std::string api_version;
    // The members inserted into the current item.
    std::string members;
  };
  State state_;
};

}  // namespace

ListDecoder::ListDecoder(ScanOptions options, std::size_t max_item_bytes, ItemType item_type)
    : scanner_(std::move(options), std::numeric_limits<std::size_t>::max()),
      max_item_bytes_(max_item_bytes),
      item_type_(std::move(item_type)) {}

absl::StatusOr<ListPage> ListDecoder::Decode(std::string_view body) {
  ListPage page;
  PageEnvelope envelope(page, max_item_bytes_, item_type_);
  if (absl::Status status = scanner_.ParseDocument(body, envelope); !status.ok()) {
    if (envelope.in_item()) {
      return absl::InvalidArgumentError(fmt::format(
          "list page: items[{}]: {}", envelope.item_index(), std::string(status.message())));
    }
    return absl::InvalidArgumentError(fmt::format("list page: {}", std::string(status.message())));
  }
  if (!envelope.has_items()) {
    // Every list kind has "items" (possibly empty); without it this is some other object,
    // typically a Status that came with an unexpected HTTP status.
    return absl::InvalidArgumentError(
        fmt::format("list page: the body has no \"items\" (kind \"{}\"), so it is not a list",
                    envelope.kind()));
  }
  return page;
}

absl::StatusOr<KubeStatus> ParseKubeStatus(std::string_view body) {
  ObjectScanner scanner(ScanOptions{false, {}});
  const auto record = scanner.Scan(body);
  if (!record.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("not a Kubernetes Status: {}", std::string(record.status().message())));
  }
  const std::string& kind = scanner.side_fields().kind;
  if (kind != "Status") {
    return absl::InvalidArgumentError(
        fmt::format("not a Kubernetes Status: the object's kind is \"{}\"", kind));
  }
  return scanner.side_fields().status;
}

}  // namespace informerd::core
