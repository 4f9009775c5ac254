// Printers for informerctl's output formats; see output.h.
#include "cmd/informerctl/output.h"

#include <vector>

#include "cmd/informerctl/age.h"
#include "cmd/informerctl/object_json.h"
#include "fmt/format.h"

namespace informerd::ctl {
namespace {

using Clock = std::chrono::system_clock;

std::string Plural(const v1::ResourceInfo& info) {
  return info.group().empty() ? info.resource()
                              : fmt::format("{}.{}", info.resource(), info.group());
}

// The part of the resource the daemon's configuration watches.
std::string Scope(const v1::ResourceInfo& info) {
  std::vector<std::string> parts;
  if (!info.namespace_().empty()) parts.push_back("namespace=" + info.namespace_());
  if (!info.label_selector().empty()) parts.push_back("labels=" + info.label_selector());
  if (!info.field_selector().empty()) parts.push_back("fields=" + info.field_selector());
  if (parts.empty()) return "<all>";
  std::string scope = parts[0];
  for (std::size_t i = 1; i < parts.size(); ++i) scope += ";" + parts[i];
  return scope;
}

std::string OrNone(const std::string& text) { return text.empty() ? "<none>" : text; }

const char* Bool(bool value) { return value ? "true" : "false"; }

template <typename Writer>
void WriteString(Writer& writer, const char* key, const std::string& value) {
  writer.Key(key);
  writer.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

std::string ResourcesJson(const v1::ListResourcesResponse& response) {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("resources");
  writer.StartArray();
  for (const v1::ResourceInfo& info : response.resources()) {
    writer.StartObject();
    WriteString(writer, "group", info.group());
    WriteString(writer, "version", info.version());
    WriteString(writer, "resource", info.resource());
    WriteString(writer, "kind", info.kind());
    writer.Key("namespaced");
    writer.Bool(info.namespaced());
    WriteString(writer, "namespace", info.namespace_());
    WriteString(writer, "labelSelector", info.label_selector());
    WriteString(writer, "fieldSelector", info.field_selector());
    writer.Key("synced");
    writer.Bool(info.synced());
    WriteString(writer, "resourceVersion", info.resource_version());
    writer.Key("objectCount");
    writer.Int64(info.object_count());
    writer.Key("subscriberCount");
    writer.Int64(info.subscriber_count());
    WriteString(writer, "condition", info.condition());
    writer.EndObject();
  }
  writer.EndArray();
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

// An object's JSON, checked; the error names the object's position for the user.
absl::Status CheckObject(const std::string& json, const std::string& where) {
  const absl::Status valid = ValidateJson(json);
  if (!valid.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("informerd sent {} that is {}", where, std::string(valid.message())));
  }
  return absl::OkStatus();
}

absl::StatusOr<ObjectMeta> Meta(const std::string& json, const std::string& where) {
  auto meta = ReadObjectMeta(json);
  if (!meta.ok()) {
    return absl::InvalidArgumentError(fmt::format("informerd sent {} that is invalid: {}", where,
                                                  std::string(meta.status().message())));
  }
  return meta;
}

std::string Pretty(const std::string& json) {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
  WriteJsonValue(json, writer);
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

std::vector<std::string> ObjectHeader(bool namespace_column) {
  if (namespace_column) return {"NAMESPACE", "NAME", "AGE"};
  return {"NAME", "AGE"};
}

std::vector<std::string> ObjectCells(const ObjectMeta& meta, bool namespace_column,
                                     Clock::time_point now) {
  std::vector<std::string> cells;
  if (namespace_column) cells.push_back(meta.namespace_name);
  cells.push_back(meta.name);
  cells.push_back(FormatAge(meta.creation_timestamp, now));
  return cells;
}

}  // namespace

absl::StatusOr<std::string> FormatResources(const v1::ListResourcesResponse& response,
                                            OutputFormat format) {
  switch (format) {
    case OutputFormat::kJson:
      return ResourcesJson(response);
    case OutputFormat::kName: {
      std::string text;
      for (const v1::ResourceInfo& info : response.resources()) text += Plural(info) + "\n";
      return text;
    }
    case OutputFormat::kTable:
      break;
  }
  Table table(
      {"RESOURCE", "NAMESPACED", "SCOPE", "SYNCED", "RV", "OBJECTS", "SUBSCRIBERS", "CONDITION"});
  for (const v1::ResourceInfo& info : response.resources()) {
    table.AddRow({Plural(info), Bool(info.namespaced()), Scope(info), Bool(info.synced()),
                  OrNone(info.resource_version()), std::to_string(info.object_count()),
                  std::to_string(info.subscriber_count()), OrNone(info.condition())});
  }
  return table.Render();
}

absl::StatusOr<std::string> FormatList(const v1::ListResponse& response, const ObjectView& view,
                                       Clock::time_point now) {
  for (int i = 0; i < response.items_size(); ++i) {
    const absl::Status valid = CheckObject(response.items(i), fmt::format("list item {}", i));
    if (!valid.ok()) return valid;
  }
  if (view.format == OutputFormat::kJson) {
    rapidjson::StringBuffer buffer;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
    writer.StartObject();
    WriteString(writer, "apiVersion", "v1");
    writer.Key("items");
    writer.StartArray();
    for (const std::string& item : response.items()) WriteJsonValue(item, writer);
    writer.EndArray();
    WriteString(writer, "kind", "List");
    writer.Key("metadata");
    writer.StartObject();
    WriteString(writer, "resourceVersion", response.resource_version());
    writer.EndObject();
    writer.EndObject();
    return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
  }
  std::vector<ObjectMeta> metas;
  for (int i = 0; i < response.items_size(); ++i) {
    auto meta = Meta(response.items(i), fmt::format("list item {}", i));
    if (!meta.ok()) return meta.status();
    metas.push_back(*std::move(meta));
  }
  if (view.format == OutputFormat::kName) {
    std::string text;
    for (const ObjectMeta& meta : metas) text += fmt::format("{}/{}\n", view.resource, meta.name);
    return text;
  }
  const bool namespace_column =
      view.all_namespaces && (metas.empty() || !metas[0].namespace_name.empty());
  Table table(ObjectHeader(namespace_column));
  for (const ObjectMeta& meta : metas) table.AddRow(ObjectCells(meta, namespace_column, now));
  return table.Render();
}

absl::StatusOr<std::string> FormatGet(const v1::GetResponse& response, const ObjectView& view,
                                      Clock::time_point now) {
  const absl::Status valid = CheckObject(response.object(), "an object");
  if (!valid.ok()) return valid;
  if (view.format == OutputFormat::kJson) return Pretty(response.object());
  auto meta = Meta(response.object(), "an object");
  if (!meta.ok()) return meta.status();
  if (view.format == OutputFormat::kName) return fmt::format("{}/{}\n", view.resource, meta->name);
  Table table(ObjectHeader(false));
  table.AddRow(ObjectCells(*meta, false, now));
  return table.Render();
}

std::string EventTypeName(v1::Event::Type type) {
  const std::string& name = v1::Event::Type_Name(type);
  return name.empty() ? std::to_string(static_cast<int>(type)) : name;
}

absl::StatusOr<std::string> WatchPrinter::Print(const v1::Event& event, Clock::time_point now) {
  const std::string type = EventTypeName(event.type());
  const bool has_object = !event.object().empty();
  const std::string where = fmt::format("a {} event (resource version {}) with an object", type,
                                        event.resource_version());
  if (has_object) {
    const absl::Status valid = CheckObject(event.object(), where);
    if (!valid.ok()) return valid;
  }
  if (view_.format == OutputFormat::kJson) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    writer.StartObject();
    WriteString(writer, "type", type);
    WriteString(writer, "resourceVersion", event.resource_version());
    if (has_object) {
      writer.Key("object");
      WriteJsonValue(event.object(), writer);
    }
    writer.EndObject();
    return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
  }
  ObjectMeta meta;
  if (has_object) {
    auto read = Meta(event.object(), where);
    if (!read.ok()) return read.status();
    meta = *std::move(read);
  }
  if (meta.name.empty()) meta.name = event.name();
  if (meta.namespace_name.empty()) meta.namespace_name = event.namespace_();
  if (view_.format == OutputFormat::kName) {
    if (!has_object && meta.name.empty()) return type + "\n";
    return fmt::format("{} {}/{}\n", type, view_.resource, meta.name);
  }
  if (!table_) {
    const bool namespace_column =
        view_.all_namespaces && (!has_object || !meta.namespace_name.empty());
    std::vector<std::string> header = ObjectHeader(namespace_column);
    header.insert(header.begin(), "EVENT");
    table_.emplace(std::move(header));
    table_->Reserve(0, std::string("MODIFIED").size());  // the longest event type
    namespace_column_ = namespace_column;
  }
  std::vector<std::string> cells;
  if (has_object) {
    cells = ObjectCells(meta, namespace_column_, now);
  } else {
    cells.assign(namespace_column_ ? 3 : 2, "");
  }
  cells.insert(cells.begin(), type);
  return table_->Row(std::move(cells));
}

}  // namespace informerd::ctl
