// Fuzzes the REST token codecs (influx/codec.h): decode_token_list (array only), decode_token and
// decode_error_message on the same bytes. Properties of an accepted list: every id non-empty and
// unique, permissions sorted, and the canonical permissions JSON reads back to the same list.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "check.h"
#include "core/token.h"
#include "influx/codec.h"

namespace {

void check_token(const tw::Token& t) {
  FUZZ_CHECK(std::is_sorted(t.permissions.begin(), t.permissions.end()));
  auto back = tw::parse_permissions_json(tw::permissions_json(t.permissions));
  FUZZ_CHECK(back.ok());
  FUZZ_CHECK(*back == t.permissions);
  std::string state;
  tw::append_token_state_json(state, t);
  FUZZ_CHECK(!state.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);

  auto list = tw::influx::decode_token_list(body, tw::influx::EmptyList::kArrayOnly);
  if (list.ok()) {
    std::set<std::string> ids;
    for (const auto& t : list->tokens) {
      FUZZ_CHECK(!t.id.empty());
      FUZZ_CHECK(ids.insert(t.id).second);
      check_token(t);
    }
    FUZZ_CHECK(list->anomalies.size() <= list->tokens.size());
    FUZZ_CHECK(tw::influx::list_digest(body).size() == 64);
  } else {
    FUZZ_CHECK(!list.error().message.empty());
  }

  auto one = tw::influx::decode_token(std::string(body));
  if (one.ok()) {
    FUZZ_CHECK(!one->id.empty());
    check_token(*one);
  }

  (void)tw::influx::decode_error_message(body);
  return 0;
}
