// Fuzzes what tokenwarden reads from influxctl's output (influx/codec.h, influxctl_version.h):
// `token list --format json` (an array or `null`), `management list --format json` and
// `influxctl version`. Properties: accepted token lists have non-empty, unique ids and whatever the
// REST mode accepts decodes the same here (influxctl only adds `null`); a parsed version is
// non-negative and prints as MAJOR.MINOR.PATCH.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "check.h"
#include "influx/codec.h"
#include "influx/influxctl_version.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view out(reinterpret_cast<const char*>(data), size);

  auto list = tw::influx::decode_token_list(out, tw::influx::EmptyList::kNullOrArray);
  if (list.ok()) {
    std::set<std::string> ids;
    for (const auto& t : list->tokens) {
      FUZZ_CHECK(!t.id.empty());
      FUZZ_CHECK(ids.insert(t.id).second);
    }
  }
  auto rest = tw::influx::decode_token_list(out, tw::influx::EmptyList::kArrayOnly);
  if (rest.ok()) {
    FUZZ_CHECK(list.ok());
    FUZZ_CHECK(rest->tokens == list->tokens);
  }

  auto management = tw::influx::decode_management_tokens(out);
  if (management.ok()) {
    for (const auto& m : *management) FUZZ_CHECK(!m.id.empty());
  }

  if (auto v = tw::influx::parse_influxctl_version(out)) {
    FUZZ_CHECK(v->major >= 0 && v->minor >= 0 && v->patch >= 0);
    auto again = tw::influx::parse_influxctl_version(v->to_string());
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(*again == *v);
  }
  return 0;
}
