// The CSV report: one file with several tables (docs/reports.md "CSV"). Each table starts with
// a row `section,<name>`, then its header row, then its rows, and ends with an empty line; a
// spreadsheet opens the file as one sheet, and a CSV reader splits it at the `section` rows.
// RFC 4180 quoting; text from the database that a spreadsheet would run as a formula (leading
// = + - @, tab or carriage return) gets a leading apostrophe.
#include <cstdio>

#include "core/strings.h"
#include "report/report.h"
#include "report/sink_buffer.h"
#include "report/text_util.h"

namespace tw::report {
namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

class Csv {
 public:
  explicit Csv(SinkBuffer& out) : out_(out) {}

  void section(std::string_view name, std::initializer_list<std::string_view> header) {
    if (!first_) out_.text += "\r\n";
    first_ = false;
    out_.text += "section,";
    out_.text += name;
    out_.text += "\r\n";
    bool sep = false;
    for (auto h : header) {
      if (sep) out_.text += ',';
      sep = true;
      out_.text += h;
    }
    out_.text += "\r\n";
  }
  // A text cell from the database.
  Csv& text(std::string_view v) {
    sep();
    append_csv_field(out_.text, v);
    return *this;
  }
  Csv& value(std::int64_t v) {
    sep();
    out_.text += std::to_string(v);
    return *this;
  }
  Csv& value(double v) {
    sep();
    out_.text += num(v);
    return *this;
  }
  Csv& value(bool v) {
    sep();
    out_.text += v ? "true" : "false";
    return *this;
  }
  Csv& time(const std::optional<Timestamp>& t) {
    sep();
    if (t) out_.text += format_timestamp(*t);
    return *this;
  }
  Csv& empty() {
    sep();
    return *this;
  }
  void end() {
    out_.text += "\r\n";
    row_started_ = false;
    out_.maybe_flush();
  }

 private:
  void sep() {
    if (row_started_) out_.text += ',';
    row_started_ = true;
  }
  SinkBuffer& out_;
  bool first_ = true;
  bool row_started_ = false;
};

std::string permissions_text(const std::vector<Permission>& perms) {
  std::string s;
  for (const auto& p : perms) {
    if (!s.empty()) s += ' ';
    s += p.action + ":" + p.resource;
  }
  return s;
}

void report_csv(Csv& csv, const ReportData& d) {
  const Request& r = d.request;
  csv.section("report", {"key", "value"});
  csv.text("generated_at").time(r.generated_at).end();
  csv.text("tokenwarden_version").text(r.version).end();
  csv.text("database").text(r.database).end();
  csv.text("configuration").text(d.context.from_config ? d.context.config_path : "").end();
  csv.text("period_from").time(r.from).end();
  csv.text("period_to").time(r.to).end();
  csv.text("cluster_filter").text(r.cluster).end();
  csv.text("team_filter").text(r.team).end();
  csv.text("owner_filter").text(r.owner).end();
  csv.text("schema_version").value(static_cast<std::int64_t>(kSchemaVersion)).end();
}

// The sections coverage and gaps.
void coverage_csv(Csv& csv, const ReportData& d) {
  csv.section("coverage", {"cluster", "poll_interval_seconds", "poll_interval_source", "polls_ok",
                           "polls_failed", "polls_suspect", "monitored_since",
                           "last_successful_poll", "gaps", "gap_seconds"});
  for (const auto& c : d.coverage) {
    csv.text(c.cluster)
        .value(seconds(c.interval))
        .text(c.interval_source)
        .value(c.polls_ok)
        .value(c.polls_failed)
        .value(c.polls_suspect)
        .time(c.monitored_since)
        .time(c.last_successful_poll)
        .value(static_cast<std::int64_t>(c.gaps.size()))
        .value(seconds(c.gap_total))
        .end();
  }
  csv.section("gaps", {"cluster", "from", "to", "seconds"});
  for (const auto& c : d.coverage) {
    for (const auto& g : c.gaps)
      csv.text(c.cluster).time(g.from).time(g.to).value(seconds(g.to - g.from)).end();
  }
}

// The sections inventory_summary, inventory and time_anomalies.
void inventory_csv(Csv& csv, const InventorySection& inv) {
  csv.section("inventory_summary", {"at", "active", "expired", "revoked", "removed", "never_expire",
                                    "all_databases", "write"});
  csv.time(inv.at)
      .value(inv.by_status[0])
      .value(inv.by_status[1])
      .value(inv.by_status[2])
      .value(inv.by_status[3])
      .value(inv.never_expire)
      .value(inv.all_databases)
      .value(inv.writes)
      .end();
  csv.section("inventory", {"cluster", "token_id", "description", "status", "permissions",
                            "created_at", "expires_at", "revoked_at", "first_seen", "last_seen",
                            "never_expires", "all_databases", "writes"});
  inv.for_each_token([&](const InventoryEntry& e) {
    const auto& t = e.row.token;
    csv.text(e.row.cluster)
        .text(t.id)
        .text(t.description)
        .text(to_string(e.row.status))
        .text(permissions_text(t.permissions))
        .time(t.created_at)
        .time(t.expires_at)
        .time(t.revoked_at)
        .text(e.row.first_seen)
        .text(e.row.last_seen)
        .value(e.never_expires)
        .value(e.all_databases)
        .value(e.writes)
        .end();
    return true;
  });
  csv.section("time_anomalies", {"cluster", "token_id", "reason", "value", "recorded_at"});
  for (const auto& a : inv.anomalies) {
    csv.text(a.cluster).text(a.token_id).text(a.reason).text(a.value).text(a.recorded_at).end();
  }
}

// The sections change_counts and changes (streamed).
Status changes_csv(Csv& csv, storage::ReadTxn& txn, const ReportData& d) {
  const ChangeCounts& cc = d.changes;
  csv.section("change_counts",
              {"discovered", "created", "updated", "revoked", "expired", "removed", "reappeared"});
  csv.value(cc.discovered)
      .value(cc.created)
      .value(cc.updated)
      .value(cc.revoked)
      .value(cc.expired)
      .value(cc.removed)
      .value(cc.reappeared)
      .end();
  csv.section("changes",
              {"seq", "time", "cluster", "token_id", "event", "description", "before", "after"});
  return for_each_change(txn, d, [&](const ChangeEvent& e) {
    csv.value(e.seq)
        .text(e.time)
        .text(e.cluster)
        .text(e.token_id)
        .text(e.event)
        .text(e.description)
        .text(e.before)
        .text(e.after)
        .end();
    return true;
  });
}

void optional_value(Csv& csv, const std::optional<double>& v) {
  if (v)
    csv.value(*v);
  else
    csv.empty();
}

void policy_row(Csv& csv, const PolicyCompliance& p) {
  csv.text(p.policy).value(p.configured).text(p.kind).text(p.severity).text(p.action).text(p.mode);
  if (p.tokens_judged)
    csv.value(*p.tokens_judged);
  else
    csv.empty();
  csv.value(p.opened).value(p.resolved).value(p.open_at_end).value(p.time_to_remediate.count);
  optional_value(csv, p.time_to_remediate.median_seconds);
  optional_value(csv, p.time_to_remediate.max_seconds);
  csv.value(p.actions_planned)
      .value(p.actions_succeeded)
      .value(p.actions_failed)
      .value(p.actions_skipped)
      .value(p.actions_halted)
      .value(p.awaiting_approval_at_end)
      .value(p.exemptions_in_force)
      .value(p.exemptions_used)
      .end();
}

// The sections policies, resolutions, halts and exemptions.
void compliance_csv(Csv& csv, const ReportData& d) {
  csv.section("policies", {"policy",
                           "configured",
                           "kind",
                           "severity",
                           "action",
                           "mode",
                           "tokens_judged",
                           "violations_opened",
                           "violations_resolved",
                           "open_at_end",
                           "remediated",
                           "time_to_remediate_median_seconds",
                           "time_to_remediate_max_seconds",
                           "actions_planned",
                           "actions_succeeded",
                           "actions_failed",
                           "actions_skipped",
                           "actions_halted",
                           "awaiting_approval_at_end",
                           "exemptions_in_force",
                           "exemptions_used"});
  for (const auto& p : d.policies) policy_row(csv, p);
  csv.section("resolutions", {"policy", "resolution", "count"});
  for (const auto& p : d.policies) {
    for (const auto& [k, n] : p.resolutions) csv.text(p.policy).text(k).value(n).end();
  }
  csv.section("halts", {"at", "cluster", "planned"});
  for (const auto& h : d.halts) csv.time(h.at).text(h.cluster).value(h.planned).end();
  csv.section("exemptions",
              {"policy", "token_id", "description", "cluster", "reason", "expires", "used"});
  for (const auto& e : d.exemptions) {
    csv.text(e.policy)
        .text(e.token_id)
        .text(e.description)
        .text(e.cluster)
        .text(e.reason)
        .time(e.expires)
        .value(e.used)
        .end();
  }
}

void owner_cells(Csv& csv, const OwnerRow& r) {
  csv.value(r.unowned)
      .value(r.tokens)
      .value(r.opened)
      .value(r.open_at_end)
      .value(r.time_to_remediate.count);
  optional_value(csv, r.time_to_remediate.median_seconds);
  optional_value(csv, r.time_to_remediate.max_seconds);
  csv.end();
}

// The sections owners_by_team (also the data of the chart of open violations per team) and
// owners_by_owner; a team or owner the rule does not assign is empty.
void owners_csv(Csv& csv, const ReportData& d) {
  csv.section("owners_by_team",
              {"team", "unowned", "tokens", "violations_opened", "open_at_end", "remediated",
               "time_to_remediate_median_seconds", "time_to_remediate_max_seconds"});
  for (const auto& r : d.owners.by_team) {
    csv.text(r.team.value_or(""));
    owner_cells(csv, r);
  }
  csv.section("owners_by_owner",
              {"team", "owner", "unowned", "tokens", "violations_opened", "open_at_end",
               "remediated", "time_to_remediate_median_seconds", "time_to_remediate_max_seconds"});
  for (const auto& r : d.owners.by_owner) {
    csv.text(r.team.value_or("")).text(r.owner.value_or(""));
    owner_cells(csv, r);
  }
}

void series_csv(Csv& csv, const ReportData& d) {
  csv.section("series", {"at", "active", "expired", "revoked", "removed", "open_violations"});
  for (const auto& s : d.series) {
    csv.time(s.at)
        .value(s.tokens[0])
        .value(s.tokens[1])
        .value(s.tokens[2])
        .value(s.tokens[3])
        .value(s.open_violations)
        .end();
  }
}

void integrity_csv(Csv& csv, const Integrity& g) {
  csv.section("integrity",
              {"ok", "rows_checked", "head_seq", "head_hash", "first_bad_seq", "problem"});
  csv.value(g.ok).value(g.rows).value(g.head_seq).text(g.head_hash);
  if (g.first_bad_seq > 0)
    csv.value(g.first_bad_seq);
  else
    csv.empty();
  csv.text(g.problem).end();
  csv.section("checkpoint",
              {"seq", "head_seq", "signed_at", "key_id", "host", "verification", "note"});
  if (g.checkpoint) {
    const auto& c = *g.checkpoint;
    csv.value(c.seq).value(c.head_seq).text(c.signed_at).text(c.key_id).text(c.host);
  } else {
    csv.empty().empty().empty().empty().empty();
  }
  csv.text(checkpoint_verification(g)).text(checkpoint_note(g)).end();
}

}  // namespace

// The sections in the order the file has them; integrity last, so that a chain check left
// running in the background overlaps the rest.
Status render_csv(storage::ReadTxn& txn, const ReportData& d, const Sink& sink) {
  SinkBuffer out(sink);
  Csv csv(out);
  report_csv(csv, d);
  coverage_csv(csv, d);
  inventory_csv(csv, d.inventory);
  TW_RETURN_IF_ERROR(changes_csv(csv, txn, d));
  compliance_csv(csv, d);
  owners_csv(csv, d);
  series_csv(csv, d);
  auto integrity = integrity_of(txn, d);
  if (!integrity.ok()) return integrity.take_error();
  integrity_csv(csv, *integrity);
  out.flush();
  return ok_status();
}

}  // namespace tw::report
