// Output: informerd's responses → the text informerctl prints, in each output format.
//
// Pure functions (and one small stateful printer for watch streams) over the generated proto
// messages, with the current time passed in for the AGE column. Nothing here does I/O; the
// commands (commands.h) write the returned text. An object whose JSON text is malformed is an
// error (informerd promises JSON), reported as InvalidArgument with where it breaks.
//
// Formats, per command:
//   table (default)  resources: RESOURCE NAMESPACED SCOPE SYNCED RV OBJECTS SUBSCRIBERS CONDITION
//                    get, list:  [NAMESPACE] NAME AGE       watch: EVENT [NAMESPACE] NAME AGE
//                    NAMESPACE appears when the request spans all namespaces, unless the first
//                    object shows the resource is cluster-scoped (it has no metadata.namespace).
//   json             get: the object; list: a kubectl-style List object
//                    {"apiVersion":"v1","items":[...],"kind":"List","metadata":{"resourceVersion"}};
//                    resources: {"resources":[...]} with the proto's JSON field names;
//                    watch: one {"type","resourceVersion","object"} per line (no "object" for
//                    SYNCED and BOOKMARK). Object text is re-emitted with its numbers verbatim.
//   name             RESOURCE/NAME with RESOURCE as typed; resources: plural.group;
//                    watch: "TYPE RESOURCE/NAME", or just "TYPE" for SYNCED and BOOKMARK.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "cmd/informerctl/command_line.h"
#include "cmd/informerctl/table.h"
#include "informerd/v1/informerd.pb.h"

namespace informerd::ctl {

// How objects of one request are shown.
struct ObjectView {
  OutputFormat format = OutputFormat::kTable;
  // As the user typed it; used by -o name.
  std::string resource;
  // The request had no namespace: show the NAMESPACE column (for namespaced resources).
  bool all_namespaces = false;
};

absl::StatusOr<std::string> FormatResources(const v1::ListResourcesResponse& response,
                                            OutputFormat format);

absl::StatusOr<std::string> FormatList(const v1::ListResponse& response, const ObjectView& view,
                                       std::chrono::system_clock::time_point now);

absl::StatusOr<std::string> FormatGet(const v1::GetResponse& response, const ObjectView& view,
                                      std::chrono::system_clock::time_point now);

// "ADDED", ..., or the number for a type this build does not know.
std::string EventTypeName(v1::Event::Type type);

// Formats a watch stream event by event; the table's header comes with the first row.
class WatchPrinter {
 public:
  explicit WatchPrinter(ObjectView view) : view_(std::move(view)) {}

  // The text for one event (whole lines).
  absl::StatusOr<std::string> Print(const v1::Event& event,
                                    std::chrono::system_clock::time_point now);

 private:
  ObjectView view_;
  std::optional<StreamingTable> table_;  // created with the first row, which decides NAMESPACE
  bool namespace_column_ = false;
};

}  // namespace informerd::ctl
