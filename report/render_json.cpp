// The JSON report: one object, documented by docs/report-schema.json (kept in step with this
// file; a test validates every generated report against it). Streams the change events.
#include "core/json_writer.h"
#include "core/strings.h"
#include "report/report.h"
#include "report/sink_buffer.h"
#include "report/text_util.h"

namespace tw::report {
namespace {

void counts_object(JsonWriter& w, const std::array<std::int64_t, 4>& c) {
  w.begin_object();
  for (std::size_t i = 0; i < 4; ++i) w.field(status_name(i), c[i]);
  w.end_object();
}

void optional_seconds(JsonWriter& w, std::string_view key, const std::optional<double>& v) {
  w.key(key);
  if (v)
    w.value(*v);
  else
    w.null();
}

// A text field that is null when empty.
void text_or_null(JsonWriter& w, std::string_view key, const std::string& v) {
  w.key(key);
  if (v.empty())
    w.null();
  else
    w.value(v);
}

// Where the report comes from: schema, generation, configuration, period and clusters.
void header_json(JsonWriter& w, const ReportData& d) {
  const Request& r = d.request;
  w.field("$schema", kSchemaId);
  w.field("schema_version", kSchemaVersion);
  w.field("generated_at", r.generated_at);
  w.field("tokenwarden_version", r.version);
  w.field("database", r.database);
  w.key("configuration");
  if (d.context.from_config)
    w.value(d.context.config_path);
  else
    w.null();
  w.key("period").begin_object().field("from", r.from).field("to", r.to).end_object();
  w.key("cluster_filter");
  if (r.cluster.empty())
    w.null();
  else
    w.value(r.cluster);
  w.key("owner_filter");
  if (r.team.empty() && r.owner.empty()) {
    w.null();
  } else {
    w.begin_object();
    text_or_null(w, "team", r.team);
    text_or_null(w, "owner", r.owner);
    w.end_object();
  }
  w.key("clusters").begin_array();
  for (const auto& c : d.clusters) w.value(c);
  w.end_array();
}

void coverage_json(JsonWriter& w, const ReportData& d) {
  w.key("coverage").begin_array();
  for (const auto& c : d.coverage) {
    w.begin_object()
        .field("cluster", c.cluster)
        .field("poll_interval_seconds", seconds(c.interval))
        .field("poll_interval_source", c.interval_source);
    w.key("polls")
        .begin_object()
        .field("ok", c.polls_ok)
        .field("failed", c.polls_failed)
        .field("suspect", c.polls_suspect)
        .end_object();
    w.field("monitored_since", c.monitored_since)
        .field("last_successful_poll", c.last_successful_poll);
    w.key("gaps").begin_array();
    for (const auto& g : c.gaps) {
      w.begin_object()
          .field("from", g.from)
          .field("to", g.to)
          .field("seconds", seconds(g.to - g.from))
          .end_object();
    }
    w.end_array().field("gap_seconds", seconds(c.gap_total)).end_object();
  }
  w.end_array();
}

void token_json(JsonWriter& w, const InventoryEntry& e) {
  const auto& t = e.row.token;
  w.begin_object()
      .field("cluster", e.row.cluster)
      .field("token_id", t.id)
      .field("description", t.description)
      .field("status", to_string(e.row.status));
  w.key("permissions").begin_array();
  for (const auto& p : t.permissions)
    w.begin_object().field("action", p.action).field("resource", p.resource).end_object();
  w.end_array();
  w.field("created_at", t.created_at)
      .field("expires_at", t.expires_at)
      .field("revoked_at", t.revoked_at)
      .field("first_seen", e.row.first_seen)
      .field("last_seen", e.row.last_seen)
      .field("never_expires", e.never_expires)
      .field("all_databases", e.all_databases)
      .field("writes", e.writes)
      .end_object();
}

// The inventory at its instant: counts, highlights, every token, the time anomalies.
void inventory_json(JsonWriter& w, SinkBuffer& out, const InventorySection& inv) {
  w.key("inventory").begin_object().field("at", inv.at);
  w.key("counts");
  counts_object(w, inv.by_status);
  w.key("highlights")
      .begin_object()
      .field("never_expire", inv.never_expire)
      .field("all_databases", inv.all_databases)
      .field("write", inv.writes)
      .end_object();
  w.key("tokens").begin_array();
  inv.for_each_token([&](const InventoryEntry& e) {
    token_json(w, e);
    out.maybe_flush();
    return true;
  });
  w.end_array();
  w.key("anomalies").begin_array();
  for (const auto& a : inv.anomalies) {
    w.begin_object()
        .field("cluster", a.cluster)
        .field("token_id", a.token_id)
        .field("reason", a.reason)
        .field("value", a.value)
        .field("recorded_at", a.recorded_at)
        .end_object();
  }
  w.end_array().end_object();
}

// Recorded JSON, passed through (invalid UTF-8 in a tampered row replaced); "" is null.
void recorded_json(JsonWriter& w, std::string_view key, const std::string& recorded) {
  w.key(key);
  if (recorded.empty())
    w.null();
  else
    w.raw(is_valid_utf8(recorded) ? recorded : sanitize_utf8(recorded));
}

// The change counts and the change events, streamed.
Status changes_json(JsonWriter& w, SinkBuffer& out, storage::ReadTxn& txn, const ReportData& d) {
  const ChangeCounts& cc = d.changes;
  w.key("changes").begin_object();
  w.key("counts")
      .begin_object()
      .field("discovered", cc.discovered)
      .field("created", cc.created)
      .field("updated", cc.updated)
      .field("revoked", cc.revoked)
      .field("expired", cc.expired)
      .field("removed", cc.removed)
      .field("reappeared", cc.reappeared)
      .end_object();
  w.key("events").begin_array();
  Status st = for_each_change(txn, d, [&](const ChangeEvent& e) {
    w.begin_object()
        .field("seq", e.seq)
        .field("time", e.time)
        .field("cluster", e.cluster)
        .field("token_id", e.token_id)
        .field("event", e.event)
        .field("description", e.description);
    recorded_json(w, "before", e.before);
    recorded_json(w, "after", e.after);
    w.end_object();
    out.maybe_flush();
    return true;
  });
  if (!st.ok()) return st;
  w.end_array().end_object();
  return ok_status();
}

void time_to_remediate_json(JsonWriter& w, const TimeToRemediate& t) {
  w.key("time_to_remediate").begin_object().field("count", t.count);
  optional_seconds(w, "median_seconds", t.median_seconds);
  optional_seconds(w, "max_seconds", t.max_seconds);
  w.end_object();
}

void policy_json(JsonWriter& w, const PolicyCompliance& p) {
  w.begin_object().field("policy", p.policy).field("configured", p.configured);
  for (auto [k, v] : {std::pair<std::string_view, const std::string*>{"kind", &p.kind},
                      {"severity", &p.severity},
                      {"action", &p.action},
                      {"mode", &p.mode}}) {
    text_or_null(w, k, *v);
  }
  w.key("tokens_judged");
  if (p.tokens_judged)
    w.value(*p.tokens_judged);
  else
    w.null();
  w.key("violations")
      .begin_object()
      .field("opened", p.opened)
      .field("resolved", p.resolved)
      .field("open_at_end", p.open_at_end);
  w.key("resolutions").begin_object();
  for (const auto& [k, n] : p.resolutions) w.field(k, n);
  w.end_object().end_object();
  time_to_remediate_json(w, p.time_to_remediate);
  w.key("actions")
      .begin_object()
      .field("planned", p.actions_planned)
      .field("succeeded", p.actions_succeeded)
      .field("failed", p.actions_failed)
      .field("skipped", p.actions_skipped)
      .field("halted", p.actions_halted)
      .field("awaiting_approval_at_end", p.awaiting_approval_at_end)
      .end_object();
  w.key("exemptions")
      .begin_object()
      .field("in_force", p.exemptions_in_force)
      .field("used", p.exemptions_used)
      .end_object();
  w.end_object();
}

// Policies, enforcement halts and exemptions.
void compliance_json(JsonWriter& w, const ReportData& d) {
  w.key("compliance").begin_object();
  w.key("policies").begin_array();
  for (const auto& p : d.policies) policy_json(w, p);
  w.end_array();
  w.key("halts").begin_array();
  for (const auto& h : d.halts) {
    w.begin_object()
        .field("at", h.at)
        .field("cluster", h.cluster)
        .field("planned", h.planned)
        .end_object();
  }
  w.end_array();
  w.key("exemptions").begin_array();
  for (const auto& e : d.exemptions) {
    w.begin_object().field("policy", e.policy);
    text_or_null(w, "token_id", e.token_id);
    text_or_null(w, "description", e.description);
    text_or_null(w, "cluster", e.cluster);
    w.field("reason", e.reason).field("expires", e.expires).field("used", e.used).end_object();
  }
  w.end_array().end_object();
}

void optional_text(JsonWriter& w, std::string_view key, const std::optional<std::string>& v) {
  w.key(key);
  if (v)
    w.value(*v);
  else
    w.null();
}

void owner_row_json(JsonWriter& w, const OwnerRow& r, bool with_owner) {
  w.begin_object();
  optional_text(w, "team", r.team);
  if (with_owner) optional_text(w, "owner", r.owner);
  w.field("unowned", r.unowned).field("tokens", r.tokens);
  w.key("violations")
      .begin_object()
      .field("opened", r.opened)
      .field("open_at_end", r.open_at_end)
      .end_object();
  time_to_remediate_json(w, r.time_to_remediate);
  w.end_object();
}

// Per team (also the data of the chart of open violations per team) and per owner.
void owners_json(JsonWriter& w, const ReportData& d) {
  w.key("owners").begin_object().field("recorded", d.owners.recorded);
  w.key("by_team").begin_array();
  for (const auto& r : d.owners.by_team) owner_row_json(w, r, false);
  w.end_array();
  w.key("by_owner").begin_array();
  for (const auto& r : d.owners.by_owner) owner_row_json(w, r, true);
  w.end_array().end_object();
}

void series_json(JsonWriter& w, const ReportData& d) {
  w.key("series").begin_array();
  for (const auto& s : d.series) {
    w.begin_object().field("at", s.at);
    w.key("tokens");
    counts_object(w, s.tokens);
    w.field("open_violations", s.open_violations).end_object();
  }
  w.end_array();
}

void integrity_json(JsonWriter& w, const Integrity& g) {
  w.key("integrity")
      .begin_object()
      .field("ok", g.ok)
      .field("rows_checked", g.rows)
      .field("head_seq", g.head_seq)
      .field("head_hash", g.head_hash);
  w.key("first_bad_seq");
  if (g.first_bad_seq > 0)
    w.value(g.first_bad_seq);
  else
    w.null();
  text_or_null(w, "problem", g.problem);
  w.field("append_only_triggers", g.append_only_triggers);
  w.key("checkpoint");
  if (g.checkpoint) {
    const auto& c = *g.checkpoint;
    w.begin_object()
        .field("seq", c.seq)
        .field("head_seq", c.head_seq)
        .field("signed_at", c.signed_at)
        .field("key_id", c.key_id)
        .field("host", c.host)
        .field("verification", checkpoint_verification(g))
        .field("note", checkpoint_note(g))
        .end_object();
  } else {
    w.null();
  }
  w.end_object();
}

}  // namespace

// The sections in the order the document has them; integrity last, so that a chain check
// left running in the background overlaps the rest.
Status render_json(storage::ReadTxn& txn, const ReportData& d, const Sink& sink) {
  SinkBuffer out(sink);
  JsonWriter w(out.text);
  w.begin_object();
  header_json(w, d);
  coverage_json(w, d);
  out.maybe_flush();
  inventory_json(w, out, d.inventory);
  TW_RETURN_IF_ERROR(changes_json(w, out, txn, d));
  compliance_json(w, d);
  owners_json(w, d);
  series_json(w, d);
  auto integrity = integrity_of(txn, d);
  if (!integrity.ok()) return integrity.take_error();
  integrity_json(w, *integrity);
  w.end_object();
  out.text += '\n';
  out.flush();
  return ok_status();
}

}  // namespace tw::report
