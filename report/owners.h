#pragma once
// The owners part of a report (internal to report/): which tokens a team/owner report covers,
// and the owners section (tokens, violations and time to remediate per team and per owner).
// Both read the current recorded owner of each token (token_owners) through storage's queries.
//
// Thread safety: as the ReadTxn. Errors: kDatabase; kInvalidArgument (a team or owner that no
// recorded token has, or a database that records no owners).

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "report/report.h"
#include "storage/report_queries.h"

namespace tw::report {

// The ownership of `cluster`'s tokens ("" = every cluster), read once per report and kept
// compact: each token points at one of the few distinct (owned, team, owner) triples.
struct Owners {
  struct Owner {
    bool owned = false;
    std::optional<std::string> team, owner;
    auto operator<=>(const Owner&) const = default;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using ByToken = std::unordered_map<std::string, std::uint32_t, Hash, std::equal_to<>>;

  bool recorded = true;  // the database has token_owners
  std::vector<Owner> distinct;
  std::map<std::string, ByToken, std::less<>> by_cluster;  // token id -> index into distinct
  // The token's recorded owner; nullptr: none recorded (unowned).
  const Owner* find(std::string_view cluster, std::string_view token_id) const;
};
Result<Owners> read_owners(storage::ReadTxn& txn, const std::string& cluster);

// The tokens of request.team / request.owner (nullptr without either).
Result<std::shared_ptr<const TokenSet>> covered_tokens(const Owners& owners, const Request& req);

// Opened to resolved, for violations remediated (compliant, revoked, restricted, removed).
bool remediates(const storage::ResolvedViolation& v);
// Median and max of `seconds` (sorted here).
TimeToRemediate time_to_remediate(std::vector<double> seconds);

// The owners section, over the period's violations (`resolved`: those resolved in it) and the
// tokens active at its end.
Status owners_section(storage::ReadTxn& txn, const storage::ReportPeriod& period,
                      const Owners& owners, const std::vector<storage::ResolvedViolation>& resolved,
                      ReportData& data);

}  // namespace tw::report
