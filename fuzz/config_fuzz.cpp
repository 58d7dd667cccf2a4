// Fuzzes the configuration loader (daemon/config.h: load_config_string), toml11 included. The
// loader reports every problem as a value, so an exception escaping it is a bug (libFuzzer
// reports it as a crash). Properties: errors and a config never come together; a loaded config
// renders (render_config) to text that loads again and renders the same.
//
// Inputs naming web_config are skipped: the loader would read that file, and a fuzzer that
// writes "/dev/zero" there would hang, not find a bug.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "check.h"
#include "core/time.h"
#include "daemon/config.h"

namespace {

// render_config's output without its first line (the source's path and hash).
std::string without_header(const std::string& rendered) {
  auto nl = rendered.find('\n');
  return nl == std::string::npos ? std::string() : rendered.substr(nl + 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (text.find("web_config") != std::string_view::npos) return -1;  // -1: not added to the corpus
  const auto now = tw::make_timestamp(2026, 12, 7);

  auto load = tw::daemon::load_config_string(text, "<fuzz>", now);
  FUZZ_CHECK(load.config.has_value() == load.errors.empty());
  if (!load.config) return 0;

  std::string rendered = tw::daemon::render_config(*load.config);
  auto back = tw::daemon::load_config_string(rendered, "<rendered>", now);
  if (!back.config) {
    for (const auto& e : back.errors) std::fprintf(stderr, "%s\n", e.c_str());
    std::fprintf(stderr, "rendered:\n%s\n", rendered.c_str());
  }
  FUZZ_CHECK(back.config.has_value());
  FUZZ_CHECK(without_header(tw::daemon::render_config(*back.config)) == without_header(rendered));
  return 0;
}
