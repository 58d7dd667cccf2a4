// Fuzzes the JSON pull reader (influx/json_reader.h) by walking whatever it is given with every
// call the codecs use. Properties: a failed read always comes with an error message, the reader
// never runs past the document, and a document the walk accepts whole, skip_value() accepts too.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.h"
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
  JsonReader skipper(doc);
  const bool skipped = skipper.skip_value();
  FUZZ_CHECK(skipped || !skipper.ok());
  const bool skipped_whole = skipped && skipper.at_end();

  for (bool read_ints : {false, true}) {
    JsonReader r(doc);
    const bool walked = walk(r, read_ints);
    FUZZ_CHECK(walked || !r.ok());
    FUZZ_CHECK(r.offset() <= doc.size());
    // The walk is stricter (no repeated keys), never more lenient than skip_value.
    if (walked && r.at_end()) FUZZ_CHECK(skipped_whole);
  }
  return 0;
}
