#pragma once
// Renders command results as an aligned table (for people), JSON (an array of objects) or CSV
// (RFC 4180 with a header row) — the `--format` of every list command.
//
// Table cells are made terminal-safe (control characters escaped) and long cells are cut with
// "…". CSV text cells that a spreadsheet would run as a formula (=, +, -, @ first) get a leading
// apostrophe. JSON keeps the exact values.
//
// Thread safety: pure functions.

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tw::cli {

enum class OutputFormat { kTable, kJson, kCsv };
std::optional<OutputFormat> parse_output_format(std::string_view s);

struct Cell {
  enum class Kind { kText, kNumber, kBool, kNull, kJson };
  Kind kind = Kind::kNull;
  std::string text;   // kText: the string; kNumber/kBool: literal; kJson: encoded JSON
  std::string brief;  // kJson: what a table shows (defaults to text)

  static Cell str(std::string s) { return {Kind::kText, std::move(s), {}}; }
  static Cell opt(const std::optional<std::string>& s) { return s ? str(*s) : null(); }
  static Cell num(long long n) { return {Kind::kNumber, std::to_string(n), {}}; }
  static Cell boolean(bool b) { return {Kind::kBool, b ? "true" : "false", {}}; }
  static Cell null() { return {Kind::kNull, {}, {}}; }
  static Cell json(std::string encoded, std::string brief = {}) {
    return {Kind::kJson, std::move(encoded), std::move(brief)};
  }
};

struct Column {
  std::string name;
  bool in_table = true;       // shown in table format
  std::size_t max_width = 0;  // table format: cut longer cells (0: no limit)
};

struct Table {
  std::vector<Column> columns;
  std::vector<std::vector<Cell>> rows;
};

std::string render(const Table& table, OutputFormat format);

// Writes rows as they come, for lists too long to hold (tokens --at over a large history): JSON
// and CSV are written in chunks, byte for byte as render() would; a table needs every row for
// its column widths, so it is rendered by finish().
class RowStream {
 public:
  RowStream(std::vector<Column> columns, OutputFormat format, std::FILE* out);
  ~RowStream();
  RowStream(const RowStream&) = delete;
  RowStream& operator=(const RowStream&) = delete;
  void row(std::vector<Cell> cells);
  void finish();

 private:
  void flush();
  Table table_;
  OutputFormat format_;
  std::FILE* out_;
  std::string buffer_;
  bool first_ = true;
  bool finished_ = false;
};

}  // namespace tw::cli
