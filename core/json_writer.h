#pragma once
// A small, fast, deterministic JSON writer.
//
// Used wherever output must be canonical (audit details that are hashed) or fast (100k-token
// bodies in the simulator). Strings are escaped per RFC 8259; invalid UTF-8 is replaced by
// U+FFFD so the output is always valid JSON; "</" is written as "<\/" so JSON embedded in HTML
// cannot close a script element.
//
// Thread safety: one writer per thread. Errors: none; misuse (unbalanced calls) is a bug.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/time.h"

namespace tw {

void append_json_string(std::string& out, std::string_view s);

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view k);

  JsonWriter& value(std::string_view v);
  JsonWriter& value(const char* v) { return value(std::string_view(v)); }
  JsonWriter& value(const std::string& v) { return value(std::string_view(v)); }
  JsonWriter& value(std::int64_t v);
  JsonWriter& value(int v) { return value(static_cast<std::int64_t>(v)); }
  JsonWriter& value(std::uint64_t v);
  JsonWriter& value(double v);
  JsonWriter& value(bool v);
  JsonWriter& value(Timestamp t);  // as format_timestamp
  JsonWriter& value(const std::optional<Timestamp>& t);
  JsonWriter& value(const std::optional<std::string>& v);
  JsonWriter& null();
  JsonWriter& raw(std::string_view json);  // an already-encoded JSON value

  template <class T>
  JsonWriter& field(std::string_view k, const T& v) {
    key(k);
    return value(v);
  }
  // The field, or null when `v` is empty (owners, teams and contacts nobody gave).
  JsonWriter& field_or_null(std::string_view k, std::string_view v) {
    key(k);
    return v.empty() ? null() : value(v);
  }

 private:
  void separate();

  std::string& out_;
  std::vector<bool> first_;  // per open container: no element written yet
  bool after_key_ = false;
};

}  // namespace tw
