// The HTML report: one self-contained file — inline CSS and inline SVG charts, no scripts, no
// external resources (a Content-Security-Policy says so to the browser too) — that prints well.
// Every value from the database goes through h(): printable() (invalid UTF-8 replaced,
// control characters shown as escapes, long text cut) and then HTML escaping, so a description
// holding markup, quotes or terminal escapes renders as inert text.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/strings.h"
#include "report/report.h"
#include "report/sink_buffer.h"
#include "report/text_util.h"

namespace tw::report {
namespace {

std::string h(std::string_view s, std::size_t max_bytes = 300) {
  std::string t = printable(s, max_bytes);
  std::string out;
  out.reserve(t.size() + 16);
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
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string fmt(double v, int decimals = 1) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

constexpr const char* kStyle = R"css(
:root { --fg: #1d2330; --muted: #5b6475; --line: #d8dde6; --bad: #b42318; --warn: #b54708; --ok: #067647; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--fg); margin: 2rem auto; max-width: 1200px; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .6rem; border-bottom: 2px solid var(--line); padding-bottom: .2rem; }
h3 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
.meta { color: var(--muted); margin: 0 0 1rem; }
.cards { display: flex; flex-wrap: wrap; gap: .6rem; margin: .6rem 0 1rem; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .5rem .8rem; min-width: 9rem; }
.card b { display: block; font-size: 1.3rem; }
.card.bad b { color: var(--bad); } .card.warn b { color: var(--warn); } .card.ok b { color: var(--ok); }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1rem; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: .25rem .45rem; text-align: left; vertical-align: top; }
th { background: #f3f5f8; font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
td.wrap { overflow-wrap: anywhere; max-width: 28rem; }
.flag { display: inline-block; border-radius: 3px; padding: 0 .3rem; margin: 0 .15rem .1rem 0; font-size: 11px;
        font-weight: 600; white-space: nowrap; }
.flag.noexp { background: #fef0c7; color: #93370d; } .flag.star { background: #fee4e2; color: #912018; }
.flag.write { background: #e0eaff; color: #1d3a8a; }
.verdict { border-radius: 6px; padding: .6rem .9rem; margin: .6rem 0; }
.verdict.ok { background: #ecfdf3; border: 1px solid #abefc6; } .verdict.bad { background: #fef3f2; border: 1px solid #fecdca; }
.note { color: var(--muted); font-size: 12px; }
svg { max-width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: #3b4252; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; overflow-wrap: anywhere; }
@media print {
  body { margin: 0; max-width: none; font-size: 11px; }
  h2 { break-after: avoid; } tr, .card, svg { break-inside: avoid; }
  th { background: none; }
}
)css";

// A line chart of one or more series over the report's sample times.
struct Line {
  std::string name;
  std::string color;
  std::vector<double> values;
};

// A time axis label: the date for long spans, the date and time for spans of a few days, the
// time of day for spans under a day.
std::string axis_time(Timestamp t, Duration span) {
  const std::string s = short_time(t);  // 2026-11-01 12:00 UTC
  if (span > std::chrono::hours(24 * 3)) return s.substr(0, 10);
  if (span > std::chrono::hours(20)) return s.substr(5, 11);
  if (span > std::chrono::hours(2)) return s.substr(11, 5);
  return format_timestamp(t).substr(11, 8);  // 12:00:05
}

std::string line_chart(const std::vector<Timestamp>& times, const std::vector<Line>& lines,
                       const std::string& title) {
  const double W = 720, H = 240, left = 56, right = 140, top = 16, bottom = 30;
  const double pw = W - left - right, ph = H - top - bottom;
  double maxv = 1;
  for (const auto& l : lines) {
    for (double v : l.values) maxv = std::max(maxv, v);
  }
  // A round axis: four steps of 1, 2 or 5 times a power of ten (whole numbers).
  const double raw_step = std::max(1.0, maxv / 4.0);
  const double mag = std::pow(10.0, std::floor(std::log10(raw_step)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * mag >= raw_step) {
      step = m * mag;
      break;
    }
  }
  const double axis = step * 4;
  std::string s = "<svg viewBox=\"0 0 720 240\" role=\"img\" aria-label=\"" + h(title) +
                  "\" xmlns=\"http://www.w3.org/2000/svg\">";
  for (int i = 0; i <= 4; ++i) {
    const double y = top + ph - ph * i / 4.0;
    s += "<line x1=\"" + fmt(left) + "\" x2=\"" + fmt(left + pw) + "\" y1=\"" + fmt(y) +
         "\" y2=\"" + fmt(y) + "\" stroke=\"#e4e7ec\"/>";
    s += "<text x=\"" + fmt(left - 6) + "\" y=\"" + fmt(y + 4) + "\" text-anchor=\"end\">" +
         thousands(static_cast<std::int64_t>(std::llround(axis * i / 4.0))) + "</text>";
  }
  const std::size_t n = times.size();
  auto x_at = [&](std::size_t i) {
    return n <= 1 ? left : left + pw * static_cast<double>(i) / static_cast<double>(n - 1);
  };
  for (std::size_t i : {std::size_t{0}, n / 2, n - 1}) {
    if (n == 0) break;
    const char* anchor = i == 0 ? "start" : (i == n - 1 ? "end" : "middle");
    s += "<text x=\"" + fmt(x_at(i)) + "\" y=\"" + fmt(H - 8) + "\" text-anchor=\"" + anchor +
         "\">" + h(axis_time(times[i], n > 1 ? times[n - 1] - times[0] : Duration{0})) + "</text>";
  }
  std::size_t k = 0;
  for (const auto& l : lines) {
    std::string pts;
    for (std::size_t i = 0; i < l.values.size() && i < n; ++i) {
      if (!pts.empty()) pts += ' ';
      pts += fmt(x_at(i)) + "," + fmt(top + ph - ph * l.values[i] / axis);
    }
    s += "<polyline fill=\"none\" stroke=\"" + l.color + "\" stroke-width=\"2\" points=\"" + pts +
         "\"/>";
    const double ly = top + 12 + 18.0 * static_cast<double>(k);
    s += "<rect x=\"" + fmt(left + pw + 14) + "\" y=\"" + fmt(ly - 9) +
         "\" width=\"12\" height=\"4\" fill=\"" + l.color + "\"/><text x=\"" + fmt(left + pw + 30) +
         "\" y=\"" + fmt(ly - 4) + "\">" + h(l.name) + " (" +
         thousands(l.values.empty() ? 0 : static_cast<std::int64_t>(l.values.back())) + ")</text>";
    ++k;
  }
  s += "</svg>";
  return s;
}

// Horizontal bars per policy: opened in the period and open at the end.
std::string policy_bars(const std::vector<PolicyCompliance>& policies) {
  std::vector<const PolicyCompliance*> shown;
  for (const auto& p : policies) {
    if (p.opened > 0 || p.open_at_end > 0) shown.push_back(&p);
  }
  std::sort(shown.begin(), shown.end(), [](auto* a, auto* b) {
    return std::max(a->opened, a->open_at_end) > std::max(b->opened, b->open_at_end);
  });
  if (shown.size() > 25) shown.resize(25);
  if (shown.empty()) return "<p class=\"note\">No violations in the period.</p>";
  double maxv = 1;
  for (auto* p : shown)
    maxv = std::max({maxv, static_cast<double>(p->opened), static_cast<double>(p->open_at_end)});
  const double W = 720, left = 210, right = 70, bar = 9, row = 26;
  const double H = 30 + row * static_cast<double>(shown.size());
  std::string s =
      "<svg viewBox=\"0 0 720 " + fmt(H, 0) +
      "\" role=\"img\" aria-label=\"violations per policy\" xmlns=\"http://www.w3.org/2000/svg\">";
  s += "<rect x=\"" + fmt(left) +
       "\" y=\"4\" width=\"12\" height=\"8\" fill=\"#7a5af8\"/><text x=\"" + fmt(left + 16) +
       "\" y=\"12\">opened in the period</text><rect x=\"" + fmt(left + 150) +
       "\" y=\"4\" width=\"12\" height=\"8\" fill=\"#f04438\"/><text x=\"" + fmt(left + 166) +
       "\" y=\"12\">open at the end</text>";
  double y = 26;
  for (auto* p : shown) {
    const double w1 = (W - left - right) * static_cast<double>(p->opened) / maxv;
    const double w2 = (W - left - right) * static_cast<double>(p->open_at_end) / maxv;
    s += "<text x=\"" + fmt(left - 8) + "\" y=\"" + fmt(y + 12) + "\" text-anchor=\"end\">" +
         h(p->policy, 40) + "</text>";
    s += "<rect x=\"" + fmt(left) + "\" y=\"" + fmt(y) + "\" width=\"" + fmt(w1) + "\" height=\"" +
         fmt(bar) + "\" fill=\"#7a5af8\"/>";
    s += "<text x=\"" + fmt(left + w1 + 4) + "\" y=\"" + fmt(y + 8) + "\">" + thousands(p->opened) +
         "</text>";
    s += "<rect x=\"" + fmt(left) + "\" y=\"" + fmt(y + bar + 1) + "\" width=\"" + fmt(w2) +
         "\" height=\"" + fmt(bar) + "\" fill=\"#f04438\"/>";
    s += "<text x=\"" + fmt(left + w2 + 4) + "\" y=\"" + fmt(y + 2 * bar + 1) + "\">" +
         thousands(p->open_at_end) + "</text>";
    y += row;
  }
  s += "</svg>";
  return s;
}

// Horizontal bars per team: violations open at the end of the period.
std::string team_bars(const std::vector<OwnerRow>& teams) {
  std::vector<const OwnerRow*> shown;
  for (const auto& t : teams) {
    if (t.open_at_end > 0) shown.push_back(&t);
  }
  std::stable_sort(shown.begin(), shown.end(),
                   [](auto* a, auto* b) { return a->open_at_end > b->open_at_end; });
  if (shown.size() > 25) shown.resize(25);
  if (shown.empty()) return "<p class=\"note\">No violation open at the end of the period.</p>";
  double maxv = 1;
  for (auto* t : shown) maxv = std::max(maxv, static_cast<double>(t->open_at_end));
  const double W = 720, left = 210, right = 70, bar = 14, row = 22;
  const double H = 8 + row * static_cast<double>(shown.size());
  std::string s = "<svg viewBox=\"0 0 720 " + fmt(H, 0) +
                  "\" role=\"img\" aria-label=\"open violations per team\" "
                  "xmlns=\"http://www.w3.org/2000/svg\">";
  double y = 4;
  for (auto* t : shown) {
    const double w = (W - left - right) * static_cast<double>(t->open_at_end) / maxv;
    s += "<text x=\"" + fmt(left - 8) + "\" y=\"" + fmt(y + 11) + "\" text-anchor=\"end\">" +
         h(team_label(*t), 40) + "</text>";
    s += "<rect x=\"" + fmt(left) + "\" y=\"" + fmt(y) + "\" width=\"" + fmt(w) + "\" height=\"" +
         fmt(bar) + "\" fill=\"#f04438\"/>";
    s += "<text x=\"" + fmt(left + w + 4) + "\" y=\"" + fmt(y + 11) + "\">" +
         thousands(t->open_at_end) + "</text>";
    y += row;
  }
  s += "</svg>";
  return s;
}

std::string card(const std::string& label, const std::string& value, const char* cls = "") {
  return std::string("<div class=\"card ") + cls + "\"><b>" + value + "</b>" + label + "</div>";
}

std::string permissions_html(const std::vector<Permission>& perms) {
  if (perms.empty()) return "<span class=\"note\">none</span>";
  std::string s;
  for (const auto& p : perms) {
    if (!s.empty()) s += "<br>";
    s += h(p.action, 40) + " " + h(p.resource, 100);
  }
  return s;
}

// The document's head, the title and the line saying what the report covers.
void head_html(std::string& o, const ReportData& d) {
  const Request& r = d.request;
  o += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src "
       "'unsafe-inline'\">\n"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
       "<meta name=\"generator\" content=\"tokenwarden " +
       h(r.version) + "\">\n<title>tokenwarden compliance report " +
       h(short_time(r.from).substr(0, 10)) + " to " + h(short_time(r.to).substr(0, 10)) +
       "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n";
  o += "<h1>tokenwarden compliance report</h1>\n<p class=\"meta\">" + h(short_time(r.from)) +
       " to " + h(short_time(r.to)) +
       " · clusters: " + (d.clusters.empty() ? std::string("none") : h(join(d.clusters, ", "))) +
       "<br>generated " + h(short_time(r.generated_at)) + " by tokenwarden " + h(r.version) +
       " from <code>" + h(r.database) + "</code>" +
       (d.context.from_config ? " with <code>" + h(d.context.config_path) + "</code>"
                              : std::string()) +
       "</p>\n";
  if (const std::string who = owner_filter_text(r); !who.empty()) {
    o += "<p class=\"meta\"><b>Tokens of " + h(who) +
         " only</b> (their current recorded owner): every section leaves the others out.</p>\n";
  }
}

std::int64_t gap_count(const ReportData& d) {
  std::int64_t gaps = 0;
  for (const auto& c : d.coverage) gaps += static_cast<std::int64_t>(c.gaps.size());
  return gaps;
}

void summary_cards(std::string& o, const ReportData& d, const Integrity& g) {
  std::int64_t open_total = 0, opened_total = 0, failed = 0;
  for (const auto& p : d.policies) {
    open_total += p.open_at_end;
    opened_total += p.opened;
    failed += p.actions_failed;
  }
  const std::int64_t gaps = gap_count(d);
  const InventorySection& inv = d.inventory;
  o += "<div class=\"cards\">";
  o += card("hash chain", g.ok ? "intact" : "BROKEN", g.ok ? "ok" : "bad");
  o += card("active tokens", thousands(inv.by_status[0]));
  o += card("never expire", thousands(inv.never_expire), inv.never_expire > 0 ? "warn" : "");
  o += card("grants on *", thousands(inv.all_databases), inv.all_databases > 0 ? "warn" : "");
  o += card("violations opened", thousands(opened_total));
  o += card("open at the end", thousands(open_total), open_total > 0 ? "bad" : "ok");
  o += card("failed actions", thousands(failed), failed > 0 ? "bad" : "");
  o += card("coverage gaps", thousands(gaps), gaps > 0 ? "warn" : "ok");
  o += "</div>\n";
}

void coverage_html(std::string& o, const ReportData& d) {
  o += "<h2 id=\"coverage\">Coverage</h2>\n<table><thead><tr><th>cluster</th><th>poll interval</th>"
       "<th class=\"n\">polls ok</th><th class=\"n\">failed</th><th class=\"n\">suspect</th>"
       "<th>last successful poll</th><th class=\"n\">gaps</th><th class=\"n\">time in "
       "gaps</th></tr></thead><tbody>\n";
  for (const auto& c : d.coverage) {
    o += "<tr><td>" + h(c.cluster) + "</td><td>" + h(human_duration(c.interval)) +
         " <span class=\"note\">(" + h(c.interval_source) + ")</span></td><td class=\"n\">" +
         thousands(c.polls_ok) + "</td><td class=\"n\">" + thousands(c.polls_failed) +
         "</td><td class=\"n\">" + thousands(c.polls_suspect) + "</td><td>" +
         h(short_time(c.last_successful_poll, "never")) + "</td><td class=\"n\">" +
         std::to_string(c.gaps.size()) + "</td><td class=\"n\">" + h(human_duration(c.gap_total)) +
         "</td></tr>\n";
  }
  o += "</tbody></table>\n<p class=\"note\">A gap is a span of more than 3 poll intervals without "
       "a successful "
       "poll; changes made then were recorded only when polling resumed.</p>\n";
  if (gap_count(d) > 0) {
    o += "<table><thead><tr><th>cluster</th><th>gap from</th><th>to</th><th "
         "class=\"n\">length</th></tr></thead><tbody>\n";
    for (const auto& c : d.coverage) {
      for (const auto& gap : c.gaps) {
        o += "<tr><td>" + h(c.cluster) + "</td><td>" + h(short_time(gap.from)) + "</td><td>" +
             h(short_time(gap.to)) + "</td><td class=\"n\">" +
             h(human_duration(gap.to - gap.from)) + "</td></tr>\n";
      }
    }
    o += "</tbody></table>\n";
  }
}

void trends_html(std::string& o, const ReportData& d) {
  std::vector<Timestamp> times;
  std::vector<Line> token_lines = {{"active", "#2e90fa", {}},
                                   {"expired", "#f79009", {}},
                                   {"revoked", "#f04438", {}},
                                   {"removed", "#667085", {}}};
  Line open_line{"open violations", "#7a5af8", {}};
  for (const auto& s : d.series) {
    times.push_back(s.at);
    for (std::size_t i = 0; i < 4; ++i)
      token_lines[i].values.push_back(static_cast<double>(s.tokens[i]));
    open_line.values.push_back(static_cast<double>(s.open_violations));
  }
  o += "<h2 id=\"trends\">Over time</h2>\n<h3>Tokens by status</h3>\n" +
       line_chart(times, token_lines, "tokens by status over time") +
       "\n<h3>Open violations</h3>\n" +
       line_chart(times, {open_line}, "open violations over time") +
       "\n<h3>Violations per policy</h3>\n" + policy_bars(d.policies) + "\n";
}

// The inventory at its instant, at most list_limit tokens, and the time anomalies.
void inventory_html(SinkBuffer& out, const ReportData& d) {
  std::string& o = out.text;
  const InventorySection& inv = d.inventory;
  const std::size_t limit = d.request.list_limit;
  o += "<h2 id=\"inventory\">Inventory at " + h(short_time(inv.at)) + "</h2>\n<p>Active " +
       thousands(inv.by_status[0]) + ", expired " + thousands(inv.by_status[1]) + ", revoked " +
       thousands(inv.by_status[2]) + ", removed " + thousands(inv.by_status[3]) +
       ". Among active tokens: <span class=\"flag noexp\">never expires</span> " +
       thousands(inv.never_expire) + ", <span class=\"flag star\">* grant</span> " +
       thousands(inv.all_databases) + ", <span class=\"flag write\">write</span> " +
       thousands(inv.writes) + ".</p>\n";
  o += "<table><thead><tr><th>cluster</th><th>token "
       "id</th><th>description</th><th>status</th><th>permissions</th>"
       "<th>expires</th><th>flags</th></tr></thead><tbody>\n";
  std::size_t n = 0;
  inv.for_each_token([&](const InventoryEntry& e) {
    if (n++ >= limit) return false;
    const auto& t = e.row.token;
    std::string flags;
    if (e.never_expires) flags += "<span class=\"flag noexp\">never expires</span>";
    if (e.all_databases) flags += "<span class=\"flag star\">* grant</span>";
    if (e.writes) flags += "<span class=\"flag write\">write</span>";
    o += "<tr><td>" + h(e.row.cluster) + "</td><td class=\"id\">" + h(t.id, 80) +
         "</td><td class=\"wrap\">" + h(t.description) + "</td><td>" +
         std::string(to_string(e.row.status)) + "</td><td>" + permissions_html(t.permissions) +
         "</td><td>" + h(short_time(t.expires_at, "never")) + "</td><td>" + flags + "</td></tr>\n";
    out.maybe_flush();
    return true;
  });
  o += "</tbody></table>\n";
  if (static_cast<std::size_t>(inv.token_count) > limit) {
    o += "<p class=\"note\">" + thousands(inv.token_count - static_cast<std::int64_t>(limit)) +
         " more tokens are not listed here; <code>--format csv</code> or <code>--format "
         "json</code> lists them "
         "all.</p>\n";
  }
}

void anomalies_html(std::string& o, const ReportData& d) {
  const InventorySection& inv = d.inventory;
  const std::size_t limit = d.request.list_limit;
  if (!inv.anomalies.empty()) {
    o += "<p><strong>" + thousands(static_cast<std::int64_t>(inv.anomalies.size())) +
         " time anomalies</strong> recorded: timestamps the cluster sent that tokenwarden does not "
         "trust (ages run "
         "from the earlier of created_at and first "
         "seen).</p>\n<table><thead><tr><th>cluster</th><th>token id</th>"
         "<th>reason</th><th>value seen</th><th>recorded</th></tr></thead><tbody>\n";
    std::size_t listed_anomalies = 0;
    for (const auto& a : inv.anomalies) {
      if (listed_anomalies++ >= limit) break;
      o += "<tr><td>" + h(a.cluster) + "</td><td class=\"id\">" + h(a.token_id, 80) + "</td><td>" +
           h(a.reason) + "</td><td>" + h(a.value, 80) + "</td><td>" + h(a.recorded_at) +
           "</td></tr>\n";
    }
    o += "</tbody></table>\n";
  }
}

// The period's token changes, streamed; at most list_limit of them.
Status changes_html(storage::ReadTxn& txn, SinkBuffer& out, const ReportData& d) {
  std::string& o = out.text;
  const std::size_t limit = d.request.list_limit;
  const ChangeCounts& cc = d.changes;
  o += "<h2 id=\"changes\">Changes in the period</h2>\n<p>Created " + thousands(cc.created) +
       ", updated " + thousands(cc.updated) + ", revoked " + thousands(cc.revoked) + ", expired " +
       thousands(cc.expired) + ", removed " + thousands(cc.removed) +
       (cc.reappeared > 0 ? ", reappeared " + thousands(cc.reappeared) : std::string()) +
       " <span class=\"note\">(and " + thousands(cc.discovered) +
       " discovered by first "
       "polls)</span>.</p>\n<table><thead><tr><th>time</th><th>cluster</th><th>token id</th>"
       "<th>event</th><th>description</th><th>before</th><th>after</th></tr></thead><tbody>\n";
  std::int64_t listed = 0;
  const std::int64_t total = cc.streamed();
  Status st = for_each_change(txn, d, [&](const ChangeEvent& e) {
    if (static_cast<std::size_t>(listed) >= limit) return false;
    ++listed;
    o += "<tr><td>" + h(e.time.substr(0, 19)) + "</td><td>" + h(e.cluster) +
         "</td><td class=\"id\">" + h(e.token_id, 80) + "</td><td>" + h(e.event.substr(6)) +
         "</td><td class=\"wrap\">" + h(e.description) + "</td><td class=\"wrap\"><code>" +
         h(e.before, 400) + "</code></td><td class=\"wrap\"><code>" +
         (e.event == "token_updated" ? h(e.after, 400) : std::string()) + "</code></td></tr>\n";
    out.maybe_flush();
    return true;
  });
  if (!st.ok()) return st;
  o += "</tbody></table>\n";
  if (total > listed) {
    o += "<p class=\"note\">" + thousands(total - listed) +
         " more changes are not listed here; <code>--format csv</code> or <code>--format "
         "json</code> lists them "
         "all.</p>\n";
  }
  return ok_status();
}

void compliance_html(std::string& o, const ReportData& d) {
  o += "<h2 id=\"compliance\">Policy "
       "compliance</h2>\n<table><thead><tr><th>policy</th><th>severity</th>"
       "<th>action</th><th class=\"n\">tokens judged</th><th class=\"n\">opened</th><th "
       "class=\"n\">resolved</th>"
       "<th class=\"n\">open at end</th><th class=\"n\">time to remediate<br>median / max</th>"
       "<th class=\"n\">actions<br>ok / failed / skipped / halted</th><th "
       "class=\"n\">exemptions<br>in force / used</th>"
       "</tr></thead><tbody>\n";
  for (const auto& p : d.policies) {
    const auto& t = p.time_to_remediate;
    o += "<tr><td>" + h(p.policy) +
         (p.configured ? "" : " <span class=\"note\">(not configured)</span>") + "</td><td>" +
         h(p.severity) + "</td><td>" + h(p.action) + "</td><td class=\"n\">" +
         (p.tokens_judged ? thousands(*p.tokens_judged) : std::string("—")) +
         "</td><td class=\"n\">" + thousands(p.opened) + "</td><td class=\"n\">" +
         thousands(p.resolved) + "</td><td class=\"n\">" + thousands(p.open_at_end) +
         "</td><td class=\"n\">" +
         (t.median_seconds
              ? h(human_duration(*t.median_seconds)) + " / " + h(human_duration(*t.max_seconds))
              : std::string("—")) +
         "</td><td class=\"n\">" + thousands(p.actions_succeeded) + " / " +
         thousands(p.actions_failed) + " / " + thousands(p.actions_skipped) + " / " +
         thousands(p.actions_halted) + "</td><td class=\"n\">" + thousands(p.exemptions_in_force) +
         " / " + thousands(p.exemptions_used) + "</td></tr>\n";
  }
  o += "</tbody></table>\n<p class=\"note\">Time to remediate: from detection to resolution "
       "(compliant, "
       "restricted, revoked or removed), for violations resolved in the period. Tokens judged: "
       "active tokens "
       "in the policy's scope at the inventory's instant (needs the configuration).</p>\n";
}

std::string ttr_html(const TimeToRemediate& t) {
  if (!t.median_seconds) return "—";
  return h(human_duration(*t.median_seconds)) + " / " + h(human_duration(*t.max_seconds));
}

std::string owner_cells(const OwnerRow& r) {
  return "<td class=\"n\">" + thousands(r.tokens) + "</td><td class=\"n\">" + thousands(r.opened) +
         "</td><td class=\"n\">" + thousands(r.open_at_end) + "</td><td class=\"n\">" +
         ttr_html(r.time_to_remediate) + "</td></tr>\n";
}

constexpr const char* kOwnerColumns =
    "<th class=\"n\">tokens<br>active at end</th><th class=\"n\">violations opened</th><th "
    "class=\"n\">open at end</th><th class=\"n\">time to remediate<br>median / max</th>"
    "</tr></thead><tbody>\n";

// Per team with the chart of open violations per team, then per owner.
void owners_html(std::string& o, const ReportData& d) {
  o += "<h2 id=\"owners\">Owners</h2>\n";
  if (!d.owners.recorded) {
    o += "<p class=\"note\">This database records no owners (schema before 6).</p>\n";
    return;
  }
  o += std::string("<table><thead><tr><th>team</th>") + kOwnerColumns;
  for (const auto& r : d.owners.by_team)
    o += "<tr><td>" + h(team_label(r)) + "</td>" + owner_cells(r);
  o += "</tbody></table>\n<h3>Open violations per team</h3>\n" + team_bars(d.owners.by_team) + "\n";
  if (!d.owners.by_owner.empty()) {
    o += std::string("<h3>By owner</h3>\n<table><thead><tr><th>team</th><th>owner</th>") +
         kOwnerColumns;
    for (const auto& r : d.owners.by_owner) {
      o += "<tr><td>" + h(team_label(r)) + "</td><td>" + h(owner_label(r)) + "</td>" +
           owner_cells(r);
    }
    o += "</tbody></table>\n";
  }
  o += "<p class=\"note\">Owners are the tokens' current recorded owners ([[owners]] rules); "
       "(unowned): no rule matched. Time to remediate as in the policy compliance table.</p>\n";
}

void halts_html(std::string& o, const ReportData& d) {
  if (!d.halts.empty()) {
    o += "<h3>Enforcement halted</h3>\n<table><thead><tr><th>time</th><th>cluster</th><th "
         "class=\"n\">actions held "
         "back</th></tr></thead><tbody>\n";
    for (const auto& hv : d.halts) {
      o += "<tr><td>" + h(short_time(hv.at)) + "</td><td>" + h(hv.cluster) +
           "</td><td class=\"n\">" + thousands(hv.planned) + "</td></tr>\n";
    }
    o += "</tbody></table>\n";
  }
}

void exemptions_html(std::string& o, const ReportData& d) {
  if (!d.exemptions.empty()) {
    o +=
        "<h3>Exemptions</h3>\n<table><thead><tr><th>policy</th><th>token or "
        "description</th><th>cluster</th>"
        "<th>reason</th><th>expires</th><th class=\"n\">tokens exempted</th></tr></thead><tbody>\n";
    for (const auto& e : d.exemptions) {
      o += "<tr><td>" + h(e.policy) + "</td><td class=\"id\">" +
           (e.token_id.empty() ? "description ~ " + h(e.description) : h(e.token_id)) +
           "</td><td>" + (e.cluster.empty() ? std::string("all") : h(e.cluster)) +
           "</td><td class=\"wrap\">" + h(e.reason) + "</td><td>" + h(short_time(e.expires)) +
           "</td><td class=\"n\">" + thousands(e.used) + "</td></tr>\n";
    }
    o += "</tbody></table>\n";
  }
}

void integrity_html(std::string& o, const Integrity& g) {
  o += "<h2 id=\"integrity\">Integrity</h2>\n";
  if (g.ok) {
    o += "<div class=\"verdict ok\"><b>The hash chain is intact</b>: every one of the " +
         thousands(g.rows) + " events links to the one before it.</div>\n";
  } else {
    o +=
        "<div class=\"verdict bad\"><b>The hash chain is broken.</b> " + h(g.problem, 600) +
        (g.first_bad_seq > 0 ? " First bad row: <b>seq " + std::to_string(g.first_bad_seq) + "</b>."
                             : std::string()) +
        " Events from there on cannot be trusted.</div>\n";
  }
  if (!g.append_only_triggers) {
    o += "<p><b>The append-only triggers of the audit table are missing</b>: someone removed "
         "them.</p>\n";
  }
  if (g.checkpoint) {
    const auto& c = *g.checkpoint;
    o += "<p>Last signed checkpoint: seq <b>" + std::to_string(c.seq) +
         "</b>, signing the head at seq " + std::to_string(c.head_seq) + ", signed at " +
         h(c.signed_at, 40) + " by key <code>" + h(c.key_id, 40) + "</code> on " + h(c.host, 100) +
         ": <b>" + h(checkpoint_note(g), 400) + "</b>.</p>\n";
  } else {
    o += "<p>Signed checkpoints: none in the audit log.</p>\n";
  }
  o += "<p>Head of the chain: seq <b>" + std::to_string(g.head_seq) + "</b>, hash <code>" +
       h(g.head_hash, 80) +
       "</code>. A later <code>tokenwarden verify</code> that still shows this row with this hash "
       "proves that "
       "the history up to it was not changed since this report.</p>\n</body>\n</html>\n";
}

}  // namespace

Status render_html(storage::ReadTxn& txn, const ReportData& d, const Sink& sink) {
  SinkBuffer out(sink);
  std::string& o = out.text;
  auto integrity = integrity_of(txn, d);
  if (!integrity.ok()) return integrity.take_error();
  head_html(o, d);
  summary_cards(o, d, *integrity);
  coverage_html(o, d);
  trends_html(o, d);
  out.maybe_flush();
  inventory_html(out, d);
  anomalies_html(o, d);
  TW_RETURN_IF_ERROR(changes_html(txn, out, d));
  compliance_html(o, d);
  halts_html(o, d);
  exemptions_html(o, d);
  owners_html(o, d);
  integrity_html(o, *integrity);
  out.flush();
  return ok_status();
}

}  // namespace tw::report
