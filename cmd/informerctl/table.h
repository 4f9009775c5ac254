// Table: kubectl's column layout for informerctl's default output.
//
// Columns are left-aligned and padded like kubectl's printers (Go's text/tabwriter with minimum
// width 6 and padding 3, k8s.io/cli-runtime/pkg/printers/tabwriter.go): each column is as wide
// as its widest cell plus 3 spaces, at least 6, and the last column is not padded. Trailing
// spaces are trimmed. Table lays out a complete result (resources, list, get); StreamingTable lays
// out rows as they arrive (watch), with columns that only ever widen, as kubectl's watch does.
// Not thread-safe; one per command.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace informerd::ctl {

class Table {
 public:
  explicit Table(std::vector<std::string> header);

  // A row with as many cells as the header.
  void AddRow(std::vector<std::string> cells);
  bool empty() const { return rows_.empty(); }

  // The header and every row, each line ending in '\n'.
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;  // rows_[0] is the header
};

class StreamingTable {
 public:
  explicit StreamingTable(std::vector<std::string> header);

  // Makes `column` wide enough for cells of `chars` characters from the start, for columns whose
  // values are known in advance (watch's EVENT).
  void Reserve(std::size_t column, std::size_t chars);

  // The text to print for this row: the header line first if no row was printed yet.
  std::string Row(std::vector<std::string> cells);

 private:
  std::vector<std::string> header_;
  std::vector<std::size_t> widths_;
  bool header_printed_ = false;
};

}  // namespace informerd::ctl
