#include "core/log.h"

#include <cmath>
#include <cstdio>

#include "core/json_writer.h"
#include "core/strings.h"

namespace tw {
namespace {

constexpr std::size_t kMaxValueBytes = 1024;

bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\') return true;
  }
  return false;
}

void append_text_value(std::string& out, const LogField& f) {
  std::string v = printable(f.value, kMaxValueBytes);
  if (f.number || !needs_quotes(v)) {
    out += v;
    return;
  }
  out += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

int syslog_priority(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
    case LogLevel::kDebug:
      return 7;
    case LogLevel::kInfo:
      return 6;
    case LogLevel::kWarn:
      return 4;
    case LogLevel::kError:
      return 3;
  }
  return 6;
}

}  // namespace

LogField::LogField(std::string_view k, double v) : key(k), number(true) {
  if (!std::isfinite(v)) {
    value = "null";  // valid in JSON lines; text lines show it as is
    return;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  value = buf;
}

std::optional<LogLevel> parse_log_level(std::string_view s) {
  if (s == "trace") return LogLevel::kTrace;
  if (s == "debug") return LogLevel::kDebug;
  if (s == "info") return LogLevel::kInfo;
  if (s == "warn" || s == "warning") return LogLevel::kWarn;
  if (s == "error") return LogLevel::kError;
  return std::nullopt;
}

std::string_view to_string(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return "trace";
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

std::string format_log_text(LogLevel level, std::string_view logger, std::string_view message,
                            std::span<const LogField> fields) {
  std::string line;
  line.reserve(128);
  line += to_string(level);
  line += ' ';
  line += logger;
  line += ": ";
  line += printable(message, 4096);
  for (const auto& f : fields) {
    line += ' ';
    line += f.key;
    line += '=';
    append_text_value(line, f);
  }
  return line;
}

StreamLogSink::StreamLogSink(std::FILE* out, LogFormat format, const Clock& clock,
                             bool syslog_prefix)
    : out_(out), format_(format), clock_(clock), syslog_prefix_(syslog_prefix) {}

void StreamLogSink::write(LogLevel level, std::string_view logger, std::string_view message,
                          std::span<const LogField> fields) {
  std::string line;
  if (format_.load() == LogFormat::kJson) {
    JsonWriter w(line);
    w.begin_object();
    w.field("ts", clock_.now());
    w.field("level", to_string(level));
    w.field("logger", logger);
    w.field("msg", printable(message, 4096));
    for (const auto& f : fields) {
      w.key(f.key);
      if (f.number) {
        w.raw(f.value);
      } else {
        w.value(std::string_view(truncate_utf8(f.value, kMaxValueBytes)));
      }
    }
    w.end_object();
  } else {
    if (syslog_prefix_) {
      line += '<';
      line += static_cast<char>('0' + syslog_priority(level));
      line += '>';
    } else {
      append_timestamp(line, clock_.now());
      line += ' ';
    }
    line += format_log_text(level, logger, message, fields);
  }
  line += '\n';
  std::lock_guard lock(mu_);
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

void MemoryLogSink::write(LogLevel level, std::string_view logger, std::string_view message,
                          std::span<const LogField> fields) {
  auto line = format_log_text(level, logger, message, fields);
  std::lock_guard lock(mu_);
  lines_.push_back(std::move(line));
}

std::vector<std::string> MemoryLogSink::lines() const {
  std::lock_guard lock(mu_);
  return lines_;
}

Logger null_logger() { return Logger("null", nullptr); }

}  // namespace tw
