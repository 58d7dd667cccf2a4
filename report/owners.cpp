#include "report/owners.h"

#include <algorithm>
#include <compare>
#include <map>

#include "core/strings.h"
#include "report/text_util.h"

namespace tw::report {
namespace {

// The order of the owners section: named teams (owners) by name, then no team (no owner),
// then the unowned tokens.
struct GroupKey {
  int team_rank = 0;  // 0: a team, 1: owned without a team, 2: unowned
  std::string team;
  int owner_rank = 0;  // 0: an owner, 1: none
  std::string owner;
  auto operator<=>(const GroupKey&) const = default;
};

GroupKey key_of(bool owned, const std::optional<std::string>& team,
                const std::optional<std::string>& owner) {
  if (!owned) return {2, "", 1, ""};
  return {team ? 0 : 1, team.value_or(""), owner ? 0 : 1, owner.value_or("")};
}

struct Group {
  OwnerRow row;
  std::vector<double> remediation_seconds;
};

class Groups {
 public:
  Group& get(const GroupKey& k) {
    auto [it, created] = groups_.try_emplace(k);
    if (created) {
      it->second.row.unowned = k.team_rank == 2;
      if (k.team_rank == 0) it->second.row.team = k.team;
      if (k.owner_rank == 0) it->second.row.owner = k.owner;
    }
    return it->second;
  }
  // One row per (team, owner) of owned tokens, and one per team with their sums.
  void take(OwnersSection& out) {
    std::map<GroupKey, Group> teams;
    for (auto& [k, g] : groups_) {
      Group& t = teams[GroupKey{k.team_rank, k.team, 0, ""}];
      t.row.unowned = g.row.unowned;
      t.row.team = g.row.team;
      t.row.tokens += g.row.tokens;
      t.row.opened += g.row.opened;
      t.row.open_at_end += g.row.open_at_end;
      t.remediation_seconds.insert(t.remediation_seconds.end(), g.remediation_seconds.begin(),
                                   g.remediation_seconds.end());
      if (g.row.unowned) continue;
      g.row.time_to_remediate = time_to_remediate(std::move(g.remediation_seconds));
      out.by_owner.push_back(std::move(g.row));
    }
    for (auto& [k, t] : teams) {
      t.row.time_to_remediate = time_to_remediate(std::move(t.remediation_seconds));
      out.by_team.push_back(std::move(t.row));
    }
  }

 private:
  std::map<GroupKey, Group> groups_;
};

// Active tokens at the end of the period, by their recorded owner.
void count_tokens(const Owners& owners, const ReportData& data, Groups& groups) {
  if (!data.period_end) return;
  data.period_end->summarize(data.request.to, [&](const storage::InventoryReplay::Summary& t) {
    if (t.status != TokenStatus::kActive || !data.inventory.covers(t.cluster, t.token_id)) return;
    const Owners::Owner* o = owners.find(t.cluster, t.token_id);
    const GroupKey k = o != nullptr ? key_of(o->owned, o->team, o->owner) : key_of(false, {}, {});
    ++groups.get(k).row.tokens;
  });
}

}  // namespace

void TokenSet::insert(const std::string& cluster, const std::string& token_id) {
  by_cluster_[cluster].insert(token_id);
}

bool TokenSet::contains(std::string_view cluster, std::string_view token_id) const {
  auto c = by_cluster_.find(cluster);
  return c != by_cluster_.end() && c->second.find(token_id) != c->second.end();
}

std::string owner_filter_text(const Request& r) {
  std::string s;
  if (!r.team.empty()) s = "team \"" + r.team + "\"";
  if (!r.owner.empty()) {
    if (!s.empty()) s += ", ";
    s += "owner \"";
    s += r.owner;
    s += '"';
  }
  return s;
}

std::string team_label(const OwnerRow& row) {
  if (row.unowned) return "(unowned)";
  return row.team ? *row.team : "(no team)";
}

std::string owner_label(const OwnerRow& row) {
  if (row.unowned) return "(unowned)";
  return row.owner ? *row.owner : "(no owner)";
}

const Owners::Owner* Owners::find(std::string_view cluster, std::string_view token_id) const {
  auto c = by_cluster.find(cluster);
  if (c == by_cluster.end()) return nullptr;
  auto t = c->second.find(token_id);
  return t == c->second.end() ? nullptr : &distinct[t->second];
}

Result<Owners> read_owners(storage::ReadTxn& txn, const std::string& cluster) {
  Owners o;
  auto recorded = storage::owners_recorded(txn);
  if (!recorded.ok()) return recorded.take_error();
  o.recorded = *recorded;
  storage::ReportPeriod p;
  p.cluster = cluster;
  p.owners_recorded = o.recorded;
  std::map<Owners::Owner, std::uint32_t> index;
  Owners::Owner owner;
  TW_RETURN_IF_ERROR(storage::for_each_token_owner(txn, p, [&](const storage::TokenOwnerRow& r) {
    owner.owned = r.owned;
    owner.team = r.team;
    owner.owner = r.owner;
    auto [it, added] = index.try_emplace(owner, static_cast<std::uint32_t>(o.distinct.size()));
    if (added) o.distinct.push_back(owner);
    auto c = o.by_cluster.find(r.cluster);
    if (c == o.by_cluster.end()) c = o.by_cluster.emplace(r.cluster, Owners::ByToken{}).first;
    c->second.emplace(r.token_id, it->second);
  }));
  return o;
}

Result<std::shared_ptr<const TokenSet>> covered_tokens(const Owners& owners, const Request& req) {
  if (req.team.empty() && req.owner.empty()) return std::shared_ptr<const TokenSet>();
  const std::string who = printable(owner_filter_text(req), 200);
  if (!owners.recorded) {
    return make_error(ErrorCode::kInvalidArgument,
                      "this database records no owners (schema before 6): no report for " + who);
  }
  auto set = std::make_shared<TokenSet>();
  for (const auto& [cluster, tokens] : owners.by_cluster) {
    for (const auto& [id, i] : tokens) {
      const Owners::Owner& o = owners.distinct[i];
      if (!o.owned || (!req.team.empty() && o.team != req.team) ||
          (!req.owner.empty() && o.owner != req.owner))
        continue;
      set->insert(cluster, id);
    }
  }
  if (set->empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "no recorded token belongs to " + who +
                          (req.cluster.empty() ? std::string() : " in cluster " + req.cluster));
  }
  return std::shared_ptr<const TokenSet>(std::move(set));
}

bool remediates(const storage::ResolvedViolation& v) {
  const std::string r = v.resolution.value_or("");
  return r == "compliant" || r == "revoked" || r == "restricted" || r == "removed";
}

TimeToRemediate time_to_remediate(std::vector<double> v) {
  TimeToRemediate t;
  if (v.empty()) return t;
  std::sort(v.begin(), v.end());
  t.count = static_cast<std::int64_t>(v.size());
  t.max_seconds = v.back();
  const std::size_t m = v.size() / 2;
  t.median_seconds = v.size() % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
  return t;
}

Status owners_section(storage::ReadTxn& txn, const storage::ReportPeriod& period,
                      const Owners& owners, const std::vector<storage::ResolvedViolation>& resolved,
                      ReportData& data) {
  data.owners.recorded = owners.recorded;
  if (!owners.recorded) return ok_status();  // nobody's tokens can be told apart
  Groups groups;
  count_tokens(owners, data, groups);
  auto counts = storage::violations_by_owner(txn, period);
  if (!counts.ok()) return counts.take_error();
  for (const auto& c : *counts) {
    Group& g = groups.get(key_of(c.owned, c.team, c.owner));
    g.row.opened += c.opened;
    g.row.open_at_end += c.open_at_end;
  }
  for (const auto& v : resolved) {
    if (!remediates(v)) continue;
    auto o = parse_rfc3339(v.opened_at);
    auto r = parse_rfc3339(v.resolved_at);
    if (o.ok() && r.ok())
      groups.get(key_of(v.owned, v.team, v.owner)).remediation_seconds.push_back(seconds(*r - *o));
  }
  groups.take(data.owners);
  return ok_status();
}

}  // namespace tw::report
