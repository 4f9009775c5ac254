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
    where_ = Where::kBeforeRoot;
    member_ = Member::kOther;
    skip_back_ = Where::kRoot;
    skip_depth_ = 0;
    in_item_ = false;
    has_items_ = false;
    item_index_ = 0;
    kind_.clear();
    api_version_.clear();
    members_.clear();
  }

  bool StartObject(ObjectStart& start) override {
    switch (where_) {
      case Where::kBeforeRoot:
        where_ = Where::kRoot;
        return true;
      case Where::kRoot:
        if (member_ == Member::kMetadata) {
          where_ = Where::kMetadata;
          return true;
        }
        if (member_ == Member::kItems) return Fail("\"items\" is an object, not an array");
        return Skip(Where::kRoot);
      case Where::kMetadata:
        if (member_ != Member::kOther) return Fail(WrongType("an object"));
        return Skip(Where::kMetadata);
      case Where::kItems:
        start = ObjectStart::kScan;
        in_item_ = true;
        return true;
      case Where::kSkip:
        ++skip_depth_;
        return true;
      case Where::kDone:
        break;
    }
    return Fail("unexpected object");  // RapidJSON rejects a second root before we get here
  }
  bool EndObject() override {
    switch (where_) {
      case Where::kMetadata:
        where_ = Where::kRoot;
        member_ = Member::kOther;
        break;
      case Where::kSkip:
        EndSkipped();
        break;
      default:
        where_ = Where::kDone;
        break;
    }
    return true;
  }
  bool StartArray() override {
    switch (where_) {
      case Where::kBeforeRoot:
        return Fail("the body is an array, not a JSON object");
      case Where::kRoot:
        if (member_ == Member::kItems) {
          where_ = Where::kItems;
          return true;
        }
        if (member_ == Member::kMetadata) return Fail("\"metadata\" is an array, not an object");
        return Skip(Where::kRoot);
      case Where::kMetadata:
        if (member_ != Member::kOther) return Fail(WrongType("an array"));
        return Skip(Where::kMetadata);
      case Where::kItems:
        return Fail(fmt::format("items[{}] is an array, not an object", item_index_));
      case Where::kSkip:
        ++skip_depth_;
        return true;
      case Where::kDone:
        break;
    }
    return Fail("unexpected array");
  }
  bool EndArray() override {
    if (where_ == Where::kItems) {
      where_ = Where::kRoot;
      member_ = Member::kOther;
      has_items_ = true;
    } else {
      EndSkipped();
    }
    return true;
  }
  bool Key(std::string_view key) override {
    if (where_ == Where::kRoot) {
      member_ = key == "metadata"     ? Member::kMetadata
                : key == "items"      ? Member::kItems
                : key == "kind"       ? Member::kKind
                : key == "apiVersion" ? Member::kApiVersion
                                      : Member::kOther;
    } else if (where_ == Where::kMetadata) {
      member_ = key == "resourceVersion"      ? Member::kResourceVersion
                : key == "continue"           ? Member::kContinue
                : key == "remainingItemCount" ? Member::kRemainingItemCount
                                              : Member::kOther;
    }
    return true;
  }
  bool Scalar(JsonScalar kind, std::string_view text) override {
    const char* what = Describe(kind);
    switch (where_) {
      case Where::kBeforeRoot:
        return Fail(fmt::format("the body is {}, not a JSON object", what));
      case Where::kRoot:
        if (member_ == Member::kMetadata) {
          if (kind == JsonScalar::kNull) return true;  // null metadata is the same as none
          return Fail(fmt::format("\"metadata\" is {}, not an object", what));
        }
        if (member_ == Member::kItems) {
          if (kind == JsonScalar::kNull) {
            has_items_ = true;  // `"items": null` is an empty page
            return true;
          }
          return Fail(fmt::format("\"items\" is {}, not an array", what));
        }
        if (member_ == Member::kKind && kind == JsonScalar::kString) {
          kind_.assign(text.data(), text.size());
        } else if (member_ == Member::kApiVersion && kind == JsonScalar::kString) {
          api_version_.assign(text.data(), text.size());
        }
        return true;
      case Where::kMetadata:
        return MetadataScalar(kind, text);
      case Where::kItems:
        return Fail(fmt::format("items[{}] is {}, not an object", item_index_, what));
      case Where::kSkip:
      case Where::kDone:
        return true;
    }
    return true;
  }
  bool ObjectScanned(ObjectScanner& scanner) override {
    in_item_ = false;
    ++item_index_;
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
    members_.clear();
    if (!side.has_kind) {
      // "PodList" → "Pod", as client-go's UnstructuredList does for its items. Only a name the
      // apiserver could have written is copied into every item; anything else (escapes decoding
      // to a lone surrogate, control characters: garbage) gives way to the resource's own kind.
      std::string_view kind = kind_;
      if (kind.size() > 4 && kind.substr(kind.size() - 4) == "List" &&
          IsPlainName(kind.substr(0, kind.size() - 4), /*version=*/false)) {
        kind.remove_suffix(4);
      } else {
        kind = item_type_.kind;
      }
      if (!kind.empty()) AppendMember(members_, "kind", kind);
    }
    if (!side.has_api_version) {
      const std::string& api_version = !api_version_.empty() && IsPlainName(api_version_, true)
                                           ? api_version_
                                           : item_type_.api_version;
      if (!api_version.empty()) AppendMember(members_, "apiVersion", api_version);
    }
    page_.items.push_back(scanner.TakeRecord(members_));
    return true;
  }

  bool has_items() const { return has_items_; }
  // An item was being scanned when the parse stopped: errors are about items[item_index()].
  bool in_item() const { return in_item_; }
  // Items scanned so far, skipped ones included.
  std::size_t item_index() const { return item_index_; }
  const std::string& kind() const { return kind_; }

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
    if (member_ == Member::kOther || kind == JsonScalar::kNull) return true;  // null: as if absent
    if (member_ == Member::kRemainingItemCount) {
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
    std::string& target = member_ == Member::kResourceVersion ? page_.metadata.resource_version
                                                              : page_.metadata.continue_token;
    target.assign(text.data(), text.size());
    return true;
  }
  bool Skip(Where back) {
    skip_back_ = back;
    skip_depth_ = 1;
    where_ = Where::kSkip;
    return true;
  }
  void EndSkipped() {
    if (--skip_depth_ == 0) where_ = skip_back_;
  }
  std::string WrongType(const char* what) const {
    const char* name = member_ == Member::kResourceVersion ? "resourceVersion"
                       : member_ == Member::kContinue      ? "continue"
                                                           : "remainingItemCount";
    const char* wanted = member_ == Member::kRemainingItemCount ? "an integer" : "a string";
    return fmt::format("metadata.{} is {}, not {}", name, what, wanted);
  }

  ListPage& page_;
  const std::size_t max_item_bytes_;
  const ItemType& item_type_;
  Where where_ = Where::kBeforeRoot;
  Member member_ = Member::kOther;
  Where skip_back_ = Where::kRoot;
  int skip_depth_ = 0;
  bool in_item_ = false;
  bool has_items_ = false;
  std::size_t item_index_ = 0;
  // The list's own "kind" and "apiVersion", once seen.
  std::string kind_;
  std::string api_version_;
  // The members inserted into the current item.
  std::string members_;
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
