#pragma once
// Structured logging: one event per line, text or JSON, with key=value fields.
//
// Loggers are named ("poller", "storage", ...) and injected; there is no global logger. Field
// values and messages are made terminal-safe (control characters escaped), so a hostile token
// description cannot forge log lines. Never pass a secret to a logger.
//
// Thread safety: Logger and StreamLogSink are thread-safe; a line is written atomically.

#include <atomic>
#include <concepts>
#include <cstdio>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/time.h"

namespace tw {

enum class LogLevel { kTrace = 0, kDebug, kInfo, kWarn, kError };
enum class LogFormat { kText, kJson };

std::optional<LogLevel> parse_log_level(std::string_view s);
std::string_view to_string(LogLevel level);

struct LogField {
  LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
  LogField(std::string_view k, const std::string& v) : key(k), value(v) {}
  LogField(std::string_view k, const char* v) : key(k), value(v) {}
  template <std::integral T>
  LogField(std::string_view k, T v)
      : key(k),
        value(std::is_same_v<T, bool> ? (v ? "true" : "false") : std::to_string(v)),
        number(true) {}
  LogField(std::string_view k, double v);

  std::string_view key;
  std::string value;
  bool number = false;
};

class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void write(LogLevel level, std::string_view logger, std::string_view message,
                     std::span<const LogField> fields) = 0;
  bool enabled(LogLevel level) const { return level >= level_.load(); }
  void set_level(LogLevel level) { level_.store(level); }

 private:
  std::atomic<LogLevel> level_{LogLevel::kInfo};
};

// Writes to a stdio stream (stderr for journald). With syslog_prefix, each line starts with
// "<N>" (sd-daemon priority) and carries no timestamp, as journald adds its own.
class StreamLogSink final : public LogSink {
 public:
  StreamLogSink(std::FILE* out, LogFormat format, const Clock& clock, bool syslog_prefix = false);
  void write(LogLevel level, std::string_view logger, std::string_view message,
             std::span<const LogField> fields) override;
  void set_format(LogFormat format) { format_.store(format); }

 private:
  std::FILE* out_;
  std::atomic<LogFormat> format_;
  const Clock& clock_;
  bool syslog_prefix_;
  std::mutex mu_;
};

// Keeps formatted text lines in memory (tests and the demo).
class MemoryLogSink final : public LogSink {
 public:
  void write(LogLevel level, std::string_view logger, std::string_view message,
             std::span<const LogField> fields) override;
  std::vector<std::string> lines() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

// Renders one event as a text line (without newline): `level logger: message k=v k="v w"`.
std::string format_log_text(LogLevel level, std::string_view logger, std::string_view message,
                            std::span<const LogField> fields);

class Logger {
 public:
  Logger(std::string name, std::shared_ptr<LogSink> sink)
      : name_(std::move(name)), sink_(std::move(sink)) {}

  Logger child(std::string name) const { return Logger(std::move(name), sink_); }
  bool enabled(LogLevel level) const { return sink_ && sink_->enabled(level); }
  void log(LogLevel level, std::string_view message,
           std::initializer_list<LogField> fields = {}) const {
    if (enabled(level))
      sink_->write(level, name_, message, std::span(fields.begin(), fields.size()));
  }
  void trace(std::string_view m, std::initializer_list<LogField> f = {}) const {
    log(LogLevel::kTrace, m, f);
  }
  void debug(std::string_view m, std::initializer_list<LogField> f = {}) const {
    log(LogLevel::kDebug, m, f);
  }
  void info(std::string_view m, std::initializer_list<LogField> f = {}) const {
    log(LogLevel::kInfo, m, f);
  }
  void warn(std::string_view m, std::initializer_list<LogField> f = {}) const {
    log(LogLevel::kWarn, m, f);
  }
  void error(std::string_view m, std::initializer_list<LogField> f = {}) const {
    log(LogLevel::kError, m, f);
  }
  const std::shared_ptr<LogSink>& sink() const { return sink_; }

 private:
  std::string name_;
  std::shared_ptr<LogSink> sink_;
};

// A logger that discards everything (for tests that do not care).
Logger null_logger();

}  // namespace tw
