// kubectl-style column layout; see table.h.
#include "cmd/informerctl/table.h"

#include <algorithm>
#include <utility>

namespace informerd::ctl {
namespace {

constexpr std::size_t kMinWidth = 6;
constexpr std::size_t kPadding = 3;

void Widen(const std::vector<std::string>& cells, std::vector<std::size_t>* widths) {
  widths->resize(std::max(widths->size(), cells.size()), 0);
  for (std::size_t i = 0; i < cells.size(); ++i) {
    (*widths)[i] = std::max((*widths)[i], std::max(kMinWidth, cells[i].size() + kPadding));
  }
}

std::string Line(const std::vector<std::string>& cells, const std::vector<std::size_t>& widths) {
  std::string line;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    line += cells[i];
    if (i + 1 < cells.size()) line.append(widths[i] - cells[i].size(), ' ');
  }
  line.erase(line.find_last_not_of(' ') + 1);
  line += '\n';
  return line;
}

}  // namespace

Table::Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }

void Table::AddRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }

std::string Table::Render() const {
  std::vector<std::size_t> widths;
  for (const auto& row : rows_) Widen(row, &widths);
  std::string text;
  for (const auto& row : rows_) text += Line(row, widths);
  return text;
}

StreamingTable::StreamingTable(std::vector<std::string> header) : header_(std::move(header)) {
  Widen(header_, &widths_);
}

void StreamingTable::Reserve(std::size_t column, std::size_t chars) {
  std::vector<std::string> cells(column + 1);
  cells[column].assign(chars, ' ');
  Widen(cells, &widths_);
}

std::string StreamingTable::Row(std::vector<std::string> cells) {
  Widen(cells, &widths_);
  std::string text;
  if (!header_printed_) {
    text += Line(header_, widths_);
    header_printed_ = true;
  }
  text += Line(cells, widths_);
  return text;
}

}  // namespace informerd::ctl
