// Fuzzes the JSON pull reader (influx/json_reader.h) by walking whatever it is given with every
// call the codecs use. Checks: no crash or sanitizer report, no read past the document, and a
// failed read always comes with an error message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "influx/json_reader.h"

namespace {

using tw::influx::JsonReader;

// Reads one value of any kind; `read_ints` chooses read_integer over skip_value for numbers.
bool walk(JsonReader& r, bool read_ints) {
  switch (r.peek()) {
    case JsonReader::Kind::kObject: {
      if (!r.enter_object()) return false;
      std::string key;
      while (r.next_member(key)) {
        if (!walk(r, read_ints)) return false;
      }
      return r.ok();
    }
    case JsonReader::Kind::kArray: {
      if (!r.enter_array()) return false;
      while (r.next_element()) {
        if (!walk(r, read_ints)) return false;
      }
      return r.ok();
    }
    case JsonReader::Kind::kString: {
      std::string s;
      return r.read_string(s);
    }
    case JsonReader::Kind::kNumber: {
      if (!read_ints) return r.skip_value();
      std::int64_t n = 0;
      return r.read_integer(n) || r.ok();
    }
    case JsonReader::Kind::kNull:
      return r.read_null();
    case JsonReader::Kind::kBool:
    case JsonReader::Kind::kNone:
      return r.skip_value();
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view doc(reinterpret_cast<const char*>(data), size);
  for (bool read_ints : {false, true}) {
    JsonReader r(doc);
    bool walked = walk(r, read_ints);
    // A read that fails says why, and the reader never runs past the document.
    if (!walked && r.ok()) std::abort();
    if (r.offset() > doc.size()) std::abort();
    if (walked) (void)r.at_end();
  }
  JsonReader skipper(doc);
  bool skipped = skipper.skip_value();
  if (!skipped && skipper.ok()) std::abort();
  if (skipped) (void)skipper.at_end();
  return 0;
}
