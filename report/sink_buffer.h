#pragma once
// A write buffer in front of a report Sink: renderers append to `text` and call maybe_flush()
// after each row, so memory stays bounded however long the report is.
//
// Thread safety: one renderer at a time. Errors: none (the Sink reports its own).

#include <string>

#include "report/report.h"

namespace tw::report {

class SinkBuffer {
 public:
  explicit SinkBuffer(const Sink& sink) : sink_(sink) { text.reserve(kChunk * 2); }
  ~SinkBuffer() { flush(); }
  SinkBuffer(const SinkBuffer&) = delete;
  SinkBuffer& operator=(const SinkBuffer&) = delete;

  void maybe_flush() {
    if (text.size() >= kChunk) flush();
  }
  void flush() {
    if (!text.empty()) sink_(text);
    text.clear();
  }

  std::string text;

 private:
  static constexpr std::size_t kChunk = 64 * 1024;
  const Sink& sink_;
};

}  // namespace tw::report
