#include "cli/output.h"

#include <algorithm>

#include "core/json_writer.h"
#include "core/strings.h"

namespace tw::cli {
namespace {

// Display width in code points (good enough for aligned ASCII-heavy tables).
std::size_t width(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

std::string cut(std::string s, std::size_t max) {
  if (max == 0 || width(s) <= max) return s;
  std::size_t count = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (count == max - 1) break;
      ++count;
    }
  }
  s.resize(i);
  return s + "\xE2\x80\xA6";  // …
}

std::string to_upper_copy(std::string s) {
  for (auto& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}

std::string table_text(const Cell& c) {
  switch (c.kind) {
    case Cell::Kind::kNull:
      return "-";
    case Cell::Kind::kJson:
      return printable(c.brief.empty() ? c.text : c.brief, 4096);
    default:
      return printable(c.text, 4096);
  }
}

void append_csv(std::string& out, const Cell& c) {
  if (c.kind == Cell::Kind::kNull) return;
  append_csv_field(out, c.text, c.kind == Cell::Kind::kText);
}

}  // namespace

std::optional<OutputFormat> parse_output_format(std::string_view s) {
  if (s == "table") return OutputFormat::kTable;
  if (s == "json") return OutputFormat::kJson;
  if (s == "csv") return OutputFormat::kCsv;
  return std::nullopt;
}

namespace {

void json_row(std::string& out, const std::vector<Column>& columns, const std::vector<Cell>& row) {
  JsonWriter w(out);
  w.begin_object();
  for (std::size_t i = 0; i < columns.size() && i < row.size(); ++i) {
    w.key(columns[i].name);
    const Cell& c = row[i];
    switch (c.kind) {
      case Cell::Kind::kText:
        w.value(c.text);
        break;
      case Cell::Kind::kNull:
        w.null();
        break;
      default:
        w.raw(c.text);
    }
  }
  w.end_object();
}

void csv_header(std::string& out, const std::vector<Column>& columns) {
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (i > 0) out += ',';
    out += columns[i].name;
  }
  out += "\r\n";
}

void csv_row(std::string& out, const std::vector<Column>& columns, const std::vector<Cell>& row) {
  for (std::size_t i = 0; i < columns.size() && i < row.size(); ++i) {
    if (i > 0) out += ',';
    append_csv(out, row[i]);
  }
  out += "\r\n";
}

}  // namespace

RowStream::RowStream(std::vector<Column> columns, OutputFormat format, std::FILE* out)
    : format_(format), out_(out) {
  table_.columns = std::move(columns);
  if (format_ == OutputFormat::kJson) buffer_ += '[';
  if (format_ == OutputFormat::kCsv) csv_header(buffer_, table_.columns);
}

RowStream::~RowStream() { finish(); }

void RowStream::row(std::vector<Cell> cells) {
  switch (format_) {
    case OutputFormat::kJson:
      if (!first_) buffer_ += ',';
      json_row(buffer_, table_.columns, cells);
      break;
    case OutputFormat::kCsv:
      csv_row(buffer_, table_.columns, cells);
      break;
    case OutputFormat::kTable:
      table_.rows.push_back(std::move(cells));
      break;
  }
  first_ = false;
  if (buffer_.size() >= 64 * 1024) flush();
}

void RowStream::flush() {
  if (!buffer_.empty()) std::fwrite(buffer_.data(), 1, buffer_.size(), out_);
  buffer_.clear();
}

void RowStream::finish() {
  if (finished_) return;
  finished_ = true;
  if (format_ == OutputFormat::kJson) buffer_ += "]\n";
  if (format_ == OutputFormat::kTable) buffer_ += render(table_, format_);
  flush();
}

std::string render(const Table& table, OutputFormat format) {
  std::string out;
  if (format == OutputFormat::kJson) {
    out += '[';
    bool first = true;
    for (const auto& row : table.rows) {
      if (!first) out += ',';
      first = false;
      json_row(out, table.columns, row);
    }
    out += "]\n";
    return out;
  }
  if (format == OutputFormat::kCsv) {
    csv_header(out, table.columns);
    for (const auto& row : table.rows) csv_row(out, table.columns, row);
    return out;
  }
  std::vector<std::size_t> cols;
  for (std::size_t i = 0; i < table.columns.size(); ++i) {
    if (table.columns[i].in_table) cols.push_back(i);
  }
  std::vector<std::vector<std::string>> cells;
  std::vector<std::size_t> widths;
  for (auto i : cols) widths.push_back(width(to_upper_copy(table.columns[i].name)));
  for (const auto& row : table.rows) {
    std::vector<std::string> line;
    for (std::size_t k = 0; k < cols.size(); ++k) {
      std::size_t i = cols[k];
      std::string t = i < row.size() ? cut(table_text(row[i]), table.columns[i].max_width) : "";
      widths[k] = std::max(widths[k], width(t));
      line.push_back(std::move(t));
    }
    cells.push_back(std::move(line));
  }
  auto emit = [&](const std::vector<std::string>& line) {
    std::string l;
    for (std::size_t k = 0; k < line.size(); ++k) {
      l += line[k];
      if (k + 1 < line.size()) l += std::string(widths[k] - width(line[k]) + 2, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + "\n";
  };
  std::vector<std::string> header;
  for (auto i : cols) header.push_back(to_upper_copy(table.columns[i].name));
  emit(header);
  for (const auto& line : cells) emit(line);
  return out;
}

}  // namespace tw::cli
