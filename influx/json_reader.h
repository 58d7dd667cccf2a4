#pragma once
// A strict, allocation-light JSON pull reader over a document held in memory (RFC 8259).
//
// The token codecs use it to walk a 100k-token list without building a DOM or an index: memory
// beyond the document is only what the caller keeps. It is strict about structure (every
// value, separator and bracket is checked; nothing may follow the top-level value) and tolerant
// about text: invalid UTF-8 and unpaired surrogate escapes in strings become U+FFFD (and are
// flagged) instead of failing the whole document. Containers nest at most 64 deep. An object
// read with next_member() must not repeat a key (RFC 8259 leaves the meaning of a repeated key
// open: consumers disagree on which one counts), so a repeat is an error.
//
// Usage: check peek() for the kind of the next value, then read it with the matching call;
// iterate containers with enter_*() and next_*(). Every call returns false on malformed input
// and error() then says what was expected at which byte.
//
// Thread safety: one reader per thread. Errors: error() (one sentence), offset().

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tw::influx {

class JsonReader {
 public:
  enum class Kind { kObject, kArray, kString, kNumber, kBool, kNull, kNone };

  explicit JsonReader(std::string_view document) : s_(document) {}

  // The kind of the next value (whitespace skipped); kNone at the end or on a stray character.
  Kind peek();

  bool enter_array();  // consumes '['
  // Before each element: true if one follows (consumes the ',' between elements), false after
  // the closing ']' (consumed) or on error (check ok()).
  bool next_element();
  bool enter_object();  // consumes '{'
  // Before each member: reads its key and the ':' and returns true; false after the closing
  // '}' (consumed) or on error (check ok()).
  bool next_member(std::string& key);

  bool read_string(std::string& out);
  // A number without fraction or exponent that fits 64 bits. A valid number that does not is
  // consumed and false returned with ok() still true (a shape problem, not malformed JSON).
  bool read_integer(std::int64_t& out);
  bool read_null();
  bool skip_value();  // any value, checked

  // Only whitespace remains.
  bool at_end();

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  std::size_t offset() const { return pos_; }
  bool replaced_invalid_utf8() const { return replaced_; }

 private:
  void skip_ws();
  bool fail(const char* expected);
  bool skip_number();
  bool skip_literal(std::string_view word);
  bool skip_container(int depth);
  bool skip_value_at(int depth);

  std::string_view s_;
  std::size_t pos_ = 0;
  // Container state: whether the next element/member is the first one. Kept per depth.
  bool first_[66] = {};
  // The keys seen so far in the objects being read with next_member(): keys_[key_start_[d]..]
  // belong to the object at depth d.
  std::vector<std::string> keys_;
  std::size_t key_start_[66] = {};
  int depth_ = 0;
  bool replaced_ = false;
  std::string error_;
};

}  // namespace tw::influx
