// Fuzzes the InfluxDB 3 Core/Enterprise codec (influx/influxdb3_codec.h): the system.tokens rows
// and, on the same bytes, the permission-string parser. Properties: accepted rows have one name
// per token, ids that are unique non-negative decimals, names unique and non-empty, permissions
// sorted; accepted permission strings give non-empty resources and actions of lower-case letters
// and '_', or "*" on a resource that is not a database (a database's "*" is read and write).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "check.h"
#include "core/token.h"
#include "influx/influxdb3_codec.h"

namespace {

bool is_action(std::string_view a) {
  return !a.empty() &&
         std::all_of(a.begin(), a.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  auto rows = tw::influx::decode_influxdb3_rows(text);
  if (rows.ok()) {
    const auto& tokens = rows->list.tokens;
    FUZZ_CHECK(rows->names.size() == tokens.size());
    std::set<std::string> ids, names;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const auto& id = tokens[i].id;
      FUZZ_CHECK(!id.empty());
      FUZZ_CHECK(std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; }));
      FUZZ_CHECK(id == "0" || id[0] != '0');
      FUZZ_CHECK(ids.insert(id).second);
      FUZZ_CHECK(!rows->names[i].empty());
      FUZZ_CHECK(names.insert(rows->names[i]).second);
      FUZZ_CHECK(!tokens[i].revoked_at.has_value());
      FUZZ_CHECK(std::is_sorted(tokens[i].permissions.begin(), tokens[i].permissions.end()));
    }
  } else {
    FUZZ_CHECK(!rows.error().message.empty());
  }

  auto perms = tw::influx::parse_influxdb3_permissions(text);
  if (perms.ok()) {
    for (const auto& p : *perms) {
      FUZZ_CHECK(is_action(p.action) || (p.action == "*" && !tw::is_database_resource(p.resource)));
      FUZZ_CHECK(!p.resource.empty());
    }
  } else {
    FUZZ_CHECK(!perms.error().message.empty());
  }
  return 0;
}
