// The Markdown report: the same sections as the HTML one, as headings and pipe tables. Long
// lists stop at Request::list_limit rows with a count of the rest (CSV and JSON have them all).
// Every value from the database is shown through printable() and escaped so that it cannot
// start a table cell, a link, emphasis, code or inline HTML.
#include "core/strings.h"
#include "report/report.h"
#include "report/sink_buffer.h"
#include "report/text_util.h"

namespace tw::report {
namespace {

std::string md(std::string_view s, std::size_t max_bytes = 300) {
  std::string t = printable(s, max_bytes);
  std::string out;
  out.reserve(t.size() + 8);
  for (char c : t) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '|':
        out += "\\|";
        break;
      case '\\':
      case '`':
      case '*':
      case '_':
      case '[':
      case ']':
      case '#':
      case '~':
      case '!':
        out += '\\';
        out += c;
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string permissions_text(const std::vector<Permission>& perms) {
  if (perms.empty()) return "(none)";
  std::string s;
  for (const auto& p : perms) {
    if (!s.empty()) s += ", ";
    s += md(p.action, 40) + " " + md(p.resource, 80);
  }
  return s;
}

void table_header(std::string& o, std::initializer_list<std::string_view> cols) {
  o += "|";
  for (auto c : cols) {
    o += ' ';
    o += c;
    o += " |";
  }
  o += "\n|";
  for (std::size_t i = 0; i < cols.size(); ++i) o += "---|";
  o += '\n';
}

// The title and the list saying what the report covers.
void head_md(std::string& o, const ReportData& d) {
  const Request& r = d.request;
  o += "# tokenwarden compliance report\n\n";
  o += "- Period: " + short_time(r.from) + " to " + short_time(r.to) + "\n";
  o += "- Clusters: " + (d.clusters.empty() ? std::string("none") : md(join(d.clusters, ", "))) +
       "\n";
  o += "- Generated: " + short_time(r.generated_at) + " by tokenwarden " + md(r.version) +
       " from `" + md(r.database) + "`" +
       (d.context.from_config ? " with " + md(d.context.config_path) : "") + "\n";
  if (const std::string who = owner_filter_text(r); !who.empty()) {
    o += "- Tokens: only those of " + md(who) +
         " (their current recorded owner); every section leaves the others out\n";
  }
}

// The last item of that list: the verdict of the chain check.
void verdict_md(std::string& o, const Integrity& g) {
  o += "- Integrity: " + std::string(g.ok ? "**hash chain intact**" : "**HASH CHAIN BROKEN**") +
       " (" + thousands(g.rows) + " events, head seq " + std::to_string(g.head_seq) + ")\n\n";
}

void coverage_md(std::string& o, const ReportData& d) {
  o += "## Coverage\n\n";
  table_header(o, {"cluster", "poll interval", "polls ok", "failed", "suspect",
                   "last successful poll", "gaps", "time in gaps"});
  for (const auto& c : d.coverage) {
    o += "| " + md(c.cluster) + " | " + human_duration(c.interval) + " (" + c.interval_source +
         ") | " + thousands(c.polls_ok) + " | " + thousands(c.polls_failed) + " | " +
         thousands(c.polls_suspect) + " | " + short_time(c.last_successful_poll, "never") + " | " +
         std::to_string(c.gaps.size()) + " | " + human_duration(c.gap_total) + " |\n";
  }
  o += "\nA gap is a span of more than 3 poll intervals without a successful poll.\n\n";
  bool any_gap = false;
  for (const auto& c : d.coverage) {
    for (const auto& gap : c.gaps) {
      if (!any_gap) table_header(o, {"cluster", "gap from", "to", "length"});
      any_gap = true;
      o += "| " + md(c.cluster) + " | " + short_time(gap.from) + " | " + short_time(gap.to) +
           " | " + human_duration(gap.to - gap.from) + " |\n";
    }
  }
  if (any_gap) o += '\n';
}

// The inventory at its instant, at most list_limit tokens.
void inventory_md(SinkBuffer& out, const ReportData& d) {
  std::string& o = out.text;
  const InventorySection& inv = d.inventory;
  const std::size_t limit = d.request.list_limit;
  o += "## Inventory at " + short_time(inv.at) + "\n\n";
  o += "Active " + thousands(inv.by_status[0]) + ", expired " + thousands(inv.by_status[1]) +
       ", revoked " + thousands(inv.by_status[2]) + ", removed " + thousands(inv.by_status[3]) +
       ".\n\n";
  o += "Among active tokens: **" + thousands(inv.never_expire) + " never expire**, **" +
       thousands(inv.all_databases) + " have a grant on every database (`*`)**, **" +
       thousands(inv.writes) + " can write**.\n\n";
  table_header(o,
               {"cluster", "token id", "description", "status", "permissions", "expires", "flags"});
  std::size_t n = 0;
  inv.for_each_token([&](const InventoryEntry& e) {
    if (n++ >= limit) return false;
    const auto& t = e.row.token;
    std::string flags;
    if (e.never_expires) flags += "**never expires** ";
    if (e.all_databases) flags += "**`*` grant** ";
    if (e.writes) flags += "write";
    o += "| " + md(e.row.cluster) + " | " + md(t.id, 80) + " | " + md(t.description) + " | " +
         std::string(to_string(e.row.status)) + " | " + permissions_text(t.permissions) + " | " +
         short_time(t.expires_at, "never") + " | " + flags + " |\n";
    out.maybe_flush();
    return true;
  });
  if (static_cast<std::size_t>(inv.token_count) > limit) {
    o += "\n" + thousands(inv.token_count - static_cast<std::int64_t>(limit)) +
         " more tokens are not listed here; `--format csv` or `--format json` lists them all.\n";
  }
  o += '\n';
}

void anomalies_md(std::string& o, const ReportData& d) {
  const InventorySection& inv = d.inventory;
  const std::size_t limit = d.request.list_limit;
  if (!inv.anomalies.empty()) {
    o += "**" + thousands(static_cast<std::int64_t>(inv.anomalies.size())) +
         " time anomalies** recorded: timestamps the cluster sent that tokenwarden does not trust "
         "(ages run "
         "from the earlier of created_at and first seen).\n\n";
    table_header(o, {"cluster", "token id", "reason", "value seen", "recorded"});
    std::size_t listed = 0;
    for (const auto& a : inv.anomalies) {
      if (listed++ >= limit) break;
      o += "| " + md(a.cluster) + " | " + md(a.token_id, 80) + " | " + md(a.reason) + " | " +
           md(a.value, 80) + " | " + md(a.recorded_at) + " |\n";
    }
    o += '\n';
  }
}

// The period's token changes, streamed; at most list_limit of them.
Status changes_md(storage::ReadTxn& txn, SinkBuffer& out, const ReportData& d) {
  std::string& o = out.text;
  const std::size_t limit = d.request.list_limit;
  const ChangeCounts& cc = d.changes;
  o += "## Changes in the period\n\n";
  o += "Created " + thousands(cc.created) + ", updated " + thousands(cc.updated) + ", revoked " +
       thousands(cc.revoked) + ", expired " + thousands(cc.expired) + ", removed " +
       thousands(cc.removed) +
       (cc.reappeared > 0 ? ", reappeared " + thousands(cc.reappeared) : std::string()) + " (and " +
       thousands(cc.discovered) + " discovered by first polls).\n\n";
  table_header(o, {"time", "cluster", "token id", "event", "description", "change"});
  std::int64_t listed = 0;
  const std::int64_t total = cc.streamed();
  Status st = for_each_change(txn, d, [&](const ChangeEvent& e) {
    if (static_cast<std::size_t>(listed) >= limit) return false;
    ++listed;
    std::string change;
    if (e.event == "token_updated") change = md(e.before, 200) + " → " + md(e.after, 200);
    o += "| " + md(e.time) + " | " + md(e.cluster) + " | " + md(e.token_id, 80) + " | " +
         md(e.event.substr(6)) + " | " + md(e.description) + " | " + change + " |\n";
    out.maybe_flush();
    return true;
  });
  if (!st.ok()) return st;
  if (total > listed) {
    o += "\n" + thousands(total - listed) +
         " more changes are not listed here; `--format csv` or `--format json` lists them all.\n";
  }
  o += '\n';
  return ok_status();
}

void compliance_md(std::string& o, const ReportData& d) {
  o += "## Policy compliance\n\n";
  table_header(o, {"policy", "severity", "action", "tokens judged", "opened", "resolved",
                   "open at end", "time to remediate (median / max)",
                   "actions ok / failed / skipped / halted", "exemptions in force / used"});
  for (const auto& p : d.policies) {
    const auto& t = p.time_to_remediate;
    o += "| " + md(p.policy) + (p.configured ? "" : " (not configured)") + " | " + md(p.severity) +
         " | " + md(p.action) + " | " +
         (p.tokens_judged ? thousands(*p.tokens_judged) : std::string("—")) + " | " +
         thousands(p.opened) + " | " + thousands(p.resolved) + " | " + thousands(p.open_at_end) +
         " | " +
         (t.median_seconds
              ? human_duration(*t.median_seconds) + " / " + human_duration(*t.max_seconds)
              : std::string("—")) +
         " | " + thousands(p.actions_succeeded) + " / " + thousands(p.actions_failed) + " / " +
         thousands(p.actions_skipped) + " / " + thousands(p.actions_halted) + " | " +
         thousands(p.exemptions_in_force) + " / " + thousands(p.exemptions_used) + " |\n";
  }
  o += "\nTime to remediate: from detection to resolution (compliant, restricted, revoked or "
       "removed) for "
       "violations resolved in the period.\n\n";
}

std::string ttr_md(const TimeToRemediate& t) {
  if (!t.median_seconds) return "—";
  return human_duration(*t.median_seconds) + " / " + human_duration(*t.max_seconds);
}

void owner_cells(std::string& o, const OwnerRow& r) {
  o += thousands(r.tokens) + " | " + thousands(r.opened) + " | " + thousands(r.open_at_end) +
       " | " + ttr_md(r.time_to_remediate) + " |\n";
}

// Per team (the chart of open violations per team, as a table) and per owner.
void owners_md(std::string& o, const ReportData& d) {
  o += "## Owners\n\n";
  if (!d.owners.recorded) {
    o += "This database records no owners (schema before 6).\n\n";
    return;
  }
  table_header(o, {"team", "tokens (active at end)", "violations opened", "open at end",
                   "time to remediate (median / max)"});
  for (const auto& r : d.owners.by_team) {
    o += "| " + md(team_label(r)) + " | ";
    owner_cells(o, r);
  }
  o += "\nOwners are the tokens' current recorded owners (`[[owners]]` rules); \"(unowned)\": no "
       "rule matched.\n\n";
  if (d.owners.by_owner.empty()) return;
  o += "### By owner\n\n";
  table_header(o, {"team", "owner", "tokens (active at end)", "violations opened", "open at end",
                   "time to remediate (median / max)"});
  for (const auto& r : d.owners.by_owner) {
    o += "| " + md(team_label(r)) + " | " + md(owner_label(r)) + " | ";
    owner_cells(o, r);
  }
  o += '\n';
}

void halts_md(std::string& o, const ReportData& d) {
  if (!d.halts.empty()) {
    o += "### Enforcement halted\n\n";
    table_header(o, {"time", "cluster", "actions held back"});
    for (const auto& h : d.halts) {
      o += "| " + short_time(h.at) + " | " + md(h.cluster) + " | " + thousands(h.planned) + " |\n";
    }
    o += '\n';
  }
}

void exemptions_md(std::string& o, const ReportData& d) {
  if (!d.exemptions.empty()) {
    o += "### Exemptions\n\n";
    table_header(
        o, {"policy", "token or description", "cluster", "reason", "expires", "tokens exempted"});
    for (const auto& e : d.exemptions) {
      o += "| " + md(e.policy) + " | " +
           (e.token_id.empty() ? "description ~ " + md(e.description) : md(e.token_id)) + " | " +
           (e.cluster.empty() ? std::string("all") : md(e.cluster)) + " | " + md(e.reason) + " | " +
           short_time(e.expires) + " | " + thousands(e.used) + " |\n";
    }
    o += '\n';
  }
}

// The series at most 12 rows long (every step-th sample).
void series_md(std::string& o, const ReportData& d) {
  o += "## Over time\n\n";
  table_header(o, {"time", "active", "expired", "revoked", "removed", "open violations"});
  const std::size_t step = d.series.size() > 12 ? (d.series.size() + 11) / 12 : 1;
  for (std::size_t i = 0; i < d.series.size(); i += step) {
    const auto& s = d.series[i];
    o += "| " + short_time(s.at) + " | " + thousands(s.tokens[0]) + " | " + thousands(s.tokens[1]) +
         " | " + thousands(s.tokens[2]) + " | " + thousands(s.tokens[3]) + " | " +
         thousands(s.open_violations) + " |\n";
  }
  o += '\n';
}

void integrity_md(std::string& o, const Integrity& g) {
  o += "## Integrity\n\n";
  if (g.ok) {
    o += "`tokenwarden verify` found the hash chain intact over " + thousands(g.rows) +
         " events.\n\n";
  } else {
    o += "**The hash chain is broken**: " + md(g.problem, 500) +
         (g.first_bad_seq > 0 ? " First bad row: seq " + std::to_string(g.first_bad_seq) + "."
                              : std::string()) +
         " Events from there on cannot be trusted.\n\n";
  }
  if (g.checkpoint) {
    const auto& c = *g.checkpoint;
    o += "Last signed checkpoint: seq " + std::to_string(c.seq) + ", signing the head at seq " +
         std::to_string(c.head_seq) + ", signed at " + md(c.signed_at, 40) + " by key `" +
         md(c.key_id, 40) + "` on " + md(c.host, 100) + ": " + md(checkpoint_note(g), 400) +
         ".\n\n";
  } else {
    o += "Signed checkpoints: none in the audit log.\n\n";
  }
  o += "Head of the chain: seq " + std::to_string(g.head_seq) + ", hash `" + md(g.head_hash, 80) +
       "`. A later `tokenwarden verify` that still shows this row with this hash proves that the "
       "history up "
       "to it was not changed since this report.\n";
}

}  // namespace

Status render_markdown(storage::ReadTxn& txn, const ReportData& d, const Sink& sink) {
  SinkBuffer out(sink);
  std::string& o = out.text;
  head_md(o, d);
  auto integrity = integrity_of(txn, d);
  if (!integrity.ok()) return integrity.take_error();
  verdict_md(o, *integrity);
  coverage_md(o, d);
  out.maybe_flush();
  inventory_md(out, d);
  anomalies_md(o, d);
  TW_RETURN_IF_ERROR(changes_md(txn, out, d));
  compliance_md(o, d);
  halts_md(o, d);
  exemptions_md(o, d);
  owners_md(o, d);
  series_md(o, d);
  integrity_md(o, *integrity);
  out.flush();
  return ok_status();
}

}  // namespace tw::report
