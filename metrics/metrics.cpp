#include "metrics/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <cstdlib>
#include <iterator>
#include <set>
#include <sstream>

namespace tw::metrics {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

struct Metrics::Impl {
  prometheus::Registry registry;
  prometheus::Family<prometheus::Gauge>& build_info;
  prometheus::Family<prometheus::Gauge>& tokens;
  prometheus::Family<prometheus::Gauge>& without_expiry;
  prometheus::Family<prometheus::Gauge>& expiring;
  prometheus::Family<prometheus::Gauge>& never_expiring;
  prometheus::Family<prometheus::Gauge>& violations_open;
  prometheus::Family<prometheus::Counter>& violations_opened;
  prometheus::Family<prometheus::Counter>& token_anomalies;
  prometheus::Family<prometheus::Counter>& actions;
  prometheus::Family<prometheus::Gauge>& halted;
  prometheus::Family<prometheus::Counter>& polls;
  prometheus::Family<prometheus::Histogram>& poll_duration;
  prometheus::Family<prometheus::Gauge>& last_success;
  prometheus::Family<prometheus::Gauge>& mgmt_expiry;
  prometheus::Family<prometheus::Gauge>& export_delivered;
  prometheus::Family<prometheus::Gauge>& export_lag_events;
  prometheus::Family<prometheus::Gauge>& export_lag_seconds;
  prometheus::Family<prometheus::Gauge>& export_up;
  prometheus::Family<prometheus::Counter>& export_failures;
  prometheus::Gauge& export_blocked;
  prometheus::Family<prometheus::Counter>& audit_events;
  prometheus::Family<prometheus::Gauge>& ha_leader;
  prometheus::Family<prometheus::Gauge>& ha_term;
  prometheus::Family<prometheus::Gauge>& ha_etcd_up;
  prometheus::Family<prometheus::Gauge>& ha_lease_remaining;
  prometheus::Family<prometheus::Counter>& ha_etcd_requests;
  prometheus::Family<prometheus::Counter>& ha_fence_refusals;
  prometheus::Family<prometheus::Gauge>& checkpoint_seq;
  prometheus::Family<prometheus::Gauge>& checkpoint_at;
  prometheus::Family<prometheus::Gauge>& exemptions;
  prometheus::Family<prometheus::Counter>& alerts;
  prometheus::Gauge& reload_ok;
  prometheus::Gauge& reload_at;

  std::mutex mu;
  // Open-violation series per cluster (teams mapped), and the last counts with raw team names
  // (published again when the team labels change).
  std::map<std::string, std::set<OpenKey>> violation_series;
  std::map<std::string, std::map<OpenKey, std::int64_t>> violations_raw;
  std::map<std::string, std::set<std::string>> team_slots;       // teams with a label of their own
  std::map<std::string, std::set<std::string>> inventory_teams;  // team labels published
  std::map<std::string, std::int64_t> alert_totals;              // receiver '\0' result
  std::set<std::string> exemption_policies;
  std::map<std::string, std::int64_t> exemption_values;

  // The last exposition and the generation it was rendered at: a scrape when nothing changed
  // copies it instead of serializing every series again.
  std::atomic<std::uint64_t> generation{1};
  std::atomic<bool> external{false};  // registry() was handed out: never cache
  std::mutex cache_mu;
  std::uint64_t cached_generation = 0;
  std::string cached;

  void touch() { generation.fetch_add(1, std::memory_order_acq_rel); }

  // Callers hold mu.
  std::string team_label(const std::string& cluster, const std::string& team) const;
  void publish_violations(const std::string& cluster);
  void remove_team_inventory(const std::string& cluster, const std::string& team);

  Impl()
      : build_info(BuildGauge()
                       .Name("tokenwarden_build_info")
                       .Help("tokenwarden build information (always 1)")
                       .Register(registry)),
        tokens(BuildGauge()
                   .Name("tokenwarden_tokens")
                   .Help("Database tokens by cluster and status, as of the last successful poll")
                   .Register(registry)),
        without_expiry(BuildGauge()
                           .Name("tokenwarden_tokens_without_expiry")
                           .Help("Active tokens that never expire")
                           .Register(registry)),
        expiring(BuildGauge()
                     .Name("tokenwarden_tokens_expiring")
                     .Help("Active tokens that expire within the given window, by team")
                     .Register(registry)),
        never_expiring(BuildGauge()
                           .Name("tokenwarden_tokens_never_expiring")
                           .Help("Active tokens that never expire, by team")
                           .Register(registry)),
        violations_open(BuildGauge()
                            .Name("tokenwarden_violations_open")
                            .Help("Unresolved policy violations (any state but resolved), by "
                                  "policy, severity and the token's team")
                            .Register(registry)),
        violations_opened(BuildCounter()
                              .Name("tokenwarden_violations_opened_total")
                              .Help("Policy violations opened")
                              .Register(registry)),
        token_anomalies(BuildCounter()
                            .Name("tokenwarden_token_anomalies_total")
                            .Help("Token time anomalies recorded (token_anomaly events: "
                                  "created_in_future, created_at_unset), once per token and reason")
                            .Register(registry)),
        actions(BuildCounter()
                    .Name("tokenwarden_actions_total")
                    .Help("Enforcement actions by result (succeeded, failed, skipped)")
                    .Register(registry)),
        halted(BuildGauge()
                   .Name("tokenwarden_enforcement_halted")
                   .Help("1 while a cluster's enforcement is halted by the safety limits")
                   .Register(registry)),
        polls(BuildCounter()
                  .Name("tokenwarden_polls_total")
                  .Help("Polls by outcome (ok, failed, suspect)")
                  .Register(registry)),
        poll_duration(BuildHistogram()
                          .Name("tokenwarden_poll_duration_seconds")
                          .Help("Duration of a poll cycle (fetch, record, evaluate, act)")
                          .Register(registry)),
        last_success(BuildGauge()
                         .Name("tokenwarden_last_successful_poll_timestamp_seconds")
                         .Help("Unix time of the end of the last successful poll")
                         .Register(registry)),
        mgmt_expiry(BuildGauge()
                        .Name("tokenwarden_management_token_expiry_timestamp_seconds")
                        .Help("Unix time at which the management token tokenwarden uses for the "
                              "cluster expires (influxctl sources; absent if it never expires)")
                        .Register(registry)),
        export_delivered(BuildGauge()
                             .Name("tokenwarden_export_delivered_seq")
                             .Help("The last audit seq an export sink delivered")
                             .Register(registry)),
        export_lag_events(BuildGauge()
                              .Name("tokenwarden_export_lag_events")
                              .Help("Audit events not yet delivered by an export sink")
                              .Register(registry)),
        export_lag_seconds(BuildGauge()
                               .Name("tokenwarden_export_lag_seconds")
                               .Help("Seconds since the first audit event an export sink has "
                                     "not delivered was recorded (0 when caught up)")
                               .Register(registry)),
        export_up(BuildGauge()
                      .Name("tokenwarden_export_up")
                      .Help("1 if the export sink's last attempt succeeded")
                      .Register(registry)),
        export_failures(BuildCounter()
                            .Name("tokenwarden_export_failures_total")
                            .Help("Failed export attempts (each retried with backoff)")
                            .Register(registry)),
        export_blocked(BuildGauge()
                           .Name("tokenwarden_enforcement_export_blocked")
                           .Help("1 while [audit] require_export keeps enforcement actions "
                                 "waiting because an export sink lags more than export_max_lag")
                           .Register(registry)
                           .Add({})),
        audit_events(BuildCounter()
                         .Name("tokenwarden_audit_events_total")
                         .Help("Events appended to the audit log")
                         .Register(registry)),
        ha_leader(BuildGauge()
                      .Name("tokenwarden_ha_leader")
                      .Help("1 while this instance leads its [ha] group (and may act), else 0")
                      .Register(registry)),
        ha_term(BuildGauge()
                    .Name("tokenwarden_ha_term")
                    .Help("The [ha] term this instance leads, or the last leader's it saw (the "
                          "leader key's etcd create revision)")
                    .Register(registry)),
        ha_etcd_up(BuildGauge()
                       .Name("tokenwarden_ha_etcd_up")
                       .Help("1 if this instance's last call to etcd succeeded")
                       .Register(registry)),
        ha_lease_remaining(BuildGauge()
                               .Name("tokenwarden_ha_lease_remaining_seconds")
                               .Help("How long this instance's etcd lease lasts by its own "
                                     "conservative reckoning (0: no lease)")
                               .Register(registry)),
        ha_etcd_requests(BuildCounter()
                             .Name("tokenwarden_ha_etcd_requests_total")
                             .Help("Calls to etcd by operation and result")
                             .Register(registry)),
        ha_fence_refusals(BuildCounter()
                              .Name("tokenwarden_ha_fence_refusals_total")
                              .Help("Enforcement actions not started because this instance could "
                                    "not prove its leadership for the action's whole deadline")
                              .Register(registry)),
        checkpoint_seq(BuildGauge()
                           .Name("tokenwarden_audit_checkpoint_seq")
                           .Help("Seq of the last signed checkpoint this process appended")
                           .Register(registry)),
        checkpoint_at(BuildGauge()
                          .Name("tokenwarden_audit_checkpoint_timestamp_seconds")
                          .Help("Unix time of the last signed checkpoint this process appended")
                          .Register(registry)),
        exemptions(
            BuildGauge()
                .Name("tokenwarden_exemptions_active")
                .Help("Configured exemptions that have not expired, by policy (* for every policy)")
                .Register(registry)),
        alerts(BuildCounter()
                   .Name("tokenwarden_alerts_sent_total")
                   .Help("Alert deliveries by receiver and result (ok, failed, dropped)")
                   .Register(registry)),
        reload_ok(BuildGauge()
                      .Name("tokenwarden_config_last_reload_successful")
                      .Help("1 if the last configuration load or reload succeeded")
                      .Register(registry)
                      .Add({})),
        reload_at(BuildGauge()
                      .Name("tokenwarden_config_last_reload_success_timestamp_seconds")
                      .Help("Unix time of the last successful configuration load or reload")
                      .Register(registry)
                      .Add({})) {}
};

namespace {

// Advances the generation when a mutator returns, i.e. after its update: a render that starts
// in between sees the old generation and is not reused.
template <class Impl>
struct Touched {
  explicit Touched(Impl& impl) : impl_(impl) {}
  ~Touched() { impl_.touch(); }
  Touched(const Touched&) = delete;
  Touched& operator=(const Touched&) = delete;
  Impl& impl_;
};

double unix_seconds(Timestamp t) {
  return static_cast<double>(t.time_since_epoch().count()) / 1000.0;
}

// Poll durations span milliseconds (a small cluster) to tens of seconds (timeouts).
const prometheus::Histogram::BucketBoundaries kPollBuckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                           1,     2.5,  5,     10,   30,  60};

// A series' labels; an empty team is left out (Prometheus reads team="" as no label at all).
prometheus::Labels with_team(prometheus::Labels labels, const std::string& team) {
  if (!team.empty()) labels.emplace("team", team);
  return labels;
}

constexpr const char* kWindows[] = {"1d", "7d", "30d"};

}  // namespace

std::string Metrics::Impl::team_label(const std::string& cluster, const std::string& team) const {
  if (team.empty()) return team;
  auto it = team_slots.find(cluster);
  if (it != team_slots.end() && it->second.contains(team)) return team;
  return std::string(kOtherTeam);
}

void Metrics::Impl::publish_violations(const std::string& cluster) {
  std::map<OpenKey, std::int64_t> open;
  for (const auto& [key, n] : violations_raw[cluster])
    open[{key.policy, key.severity, team_label(cluster, key.team)}] += n;
  auto& series = violation_series[cluster];
  for (auto it = series.begin(); it != series.end();) {
    if (open.contains(*it)) {
      ++it;
      continue;
    }
    auto& gauge = violations_open.Add(with_team(
        {{"cluster", cluster}, {"policy", it->policy}, {"severity", it->severity}}, it->team));
    if (team_label(cluster, it->team) == it->team) {  // the team still has this label: 0
      gauge.Set(0);
      ++it;
    } else {
      violations_open.Remove(&gauge);
      it = series.erase(it);
    }
  }
  for (const auto& [key, n] : open) {
    violations_open
        .Add(with_team({{"cluster", cluster}, {"policy", key.policy}, {"severity", key.severity}},
                       key.team))
        .Set(static_cast<double>(n));
    series.insert(key);
  }
}

void Metrics::Impl::remove_team_inventory(const std::string& cluster, const std::string& team) {
  for (const char* within : kWindows)
    expiring.Remove(&expiring.Add(with_team({{"cluster", cluster}, {"within", within}}, team)));
  never_expiring.Remove(&never_expiring.Add(with_team({{"cluster", cluster}}, team)));
}

Metrics::Metrics(std::string version, MetricsOptions options) : impl_(std::make_unique<Impl>()) {
  if (!options.reuse_text) impl_->external = true;  // as if families changed behind our back
  impl_->build_info.Add({{"version", std::move(version)}}).Set(1);
}

Metrics::~Metrics() = default;

prometheus::Registry& Metrics::registry() {
  impl_->external = true;  // families added through it change nothing this class can see
  return impl_->registry;
}

void Metrics::poll_finished(const std::string& cluster, std::string_view outcome, double seconds,
                            std::optional<Timestamp> succeeded_at) {
  const Touched touched(*impl_);
  impl_->polls.Add({{"cluster", cluster}, {"outcome", std::string(outcome)}}).Increment();
  impl_->poll_duration.Add({{"cluster", cluster}}, kPollBuckets).Observe(seconds);
  if (succeeded_at)
    impl_->last_success.Add({{"cluster", cluster}}).Set(unix_seconds(*succeeded_at));
}

void Metrics::last_success(const std::string& cluster, std::optional<Timestamp> at) {
  const Touched touched(*impl_);
  impl_->last_success.Add({{"cluster", cluster}}).Set(at ? unix_seconds(*at) : 0.0);
}

void Metrics::management_token_expiry(const std::string& cluster, std::optional<Timestamp> at) {
  const Touched touched(*impl_);
  auto& gauge = impl_->mgmt_expiry.Add({{"cluster", cluster}});
  if (at) {
    gauge.Set(unix_seconds(*at));
  } else {
    impl_->mgmt_expiry.Remove(&gauge);
  }
}

void Metrics::export_status(const std::string& sink, std::int64_t delivered_seq,
                            std::int64_t lag_events, double lag_seconds, bool up) {
  const Touched touched(*impl_);
  impl_->export_delivered.Add({{"sink", sink}}).Set(static_cast<double>(delivered_seq));
  impl_->export_lag_events.Add({{"sink", sink}}).Set(static_cast<double>(lag_events));
  impl_->export_lag_seconds.Add({{"sink", sink}}).Set(lag_seconds);
  impl_->export_up.Add({{"sink", sink}}).Set(up ? 1 : 0);
  impl_->export_failures.Add({{"sink", sink}});
}

void Metrics::export_lag_seconds(const std::string& sink, double lag_seconds) {
  const Touched touched(*impl_);
  impl_->export_lag_seconds.Add({{"sink", sink}}).Set(lag_seconds);
}

void Metrics::export_failed(const std::string& sink) {
  const Touched touched(*impl_);
  impl_->export_failures.Add({{"sink", sink}}).Increment();
}

void Metrics::ha_status(bool leader, std::int64_t term, bool etcd_up,
                        double lease_remaining_seconds) {
  const Touched touched(*impl_);
  impl_->ha_leader.Add({}).Set(leader ? 1 : 0);
  impl_->ha_term.Add({}).Set(static_cast<double>(term));
  impl_->ha_etcd_up.Add({}).Set(etcd_up ? 1 : 0);
  impl_->ha_lease_remaining.Add({}).Set(lease_remaining_seconds);
  impl_->ha_fence_refusals.Add({});
}

void Metrics::ha_etcd_call(std::string_view op, bool ok) {
  const Touched touched(*impl_);
  impl_->ha_etcd_requests.Add({{"op", std::string(op)}, {"result", ok ? "ok" : "error"}})
      .Increment();
}

void Metrics::ha_fence_refused() {
  const Touched touched(*impl_);
  impl_->ha_fence_refusals.Add({}).Increment();
}

void Metrics::export_blocked(bool blocked) {
  const Touched touched(*impl_);
  impl_->export_blocked.Set(blocked ? 1 : 0);
}

void Metrics::team_labels(const std::string& cluster, const std::vector<std::string>& ranked) {
  std::lock_guard lock(impl_->mu);
  std::set<std::string> slots;
  for (const auto& team : ranked) {
    if (slots.size() == kMaxTeamLabels) break;
    if (!team.empty() && team != kOtherTeam) slots.insert(team);
  }
  auto& current = impl_->team_slots[cluster];
  if (slots == current) return;
  current = std::move(slots);
  impl_->publish_violations(cluster);
  impl_->touch();
}

std::string Metrics::team_label(const std::string& cluster, const std::string& team) const {
  std::lock_guard lock(impl_->mu);
  return impl_->team_label(cluster, team);
}

void Metrics::inventory(const std::string& cluster, const InventoryCounts& c) {
  const Touched touched(*impl_);
  std::lock_guard lock(impl_->mu);
  for (auto [status, n] : {std::pair{"active", c.active}, std::pair{"expired", c.expired},
                           std::pair{"revoked", c.revoked}, std::pair{"removed", c.removed}}) {
    impl_->tokens.Add({{"cluster", cluster}, {"status", status}}).Set(static_cast<double>(n));
  }
  impl_->without_expiry.Add({{"cluster", cluster}}).Set(static_cast<double>(c.without_expiry));
  std::map<std::string, TeamExpiry> teams{{"", {}}};
  for (const auto& [team, e] : c.teams) {
    TeamExpiry& t = teams[impl_->team_label(cluster, team)];
    t.never_expiring += e.never_expiring;
    t.expiring_1d += e.expiring_1d;
    t.expiring_7d += e.expiring_7d;
    t.expiring_30d += e.expiring_30d;
  }
  auto& published = impl_->inventory_teams[cluster];
  for (auto it = published.begin(); it != published.end();) {
    if (teams.contains(*it)) {
      ++it;
    } else {
      impl_->remove_team_inventory(cluster, *it);
      it = published.erase(it);
    }
  }
  for (const auto& [team, e] : teams) {
    impl_->never_expiring.Add(with_team({{"cluster", cluster}}, team))
        .Set(static_cast<double>(e.never_expiring));
    const std::int64_t n[] = {e.expiring_1d, e.expiring_7d, e.expiring_30d};
    for (std::size_t i = 0; i < std::size(kWindows); ++i) {
      impl_->expiring.Add(with_team({{"cluster", cluster}, {"within", kWindows[i]}}, team))
          .Set(static_cast<double>(n[i]));
    }
    published.insert(team);
  }
}

void Metrics::violations_open(const std::string& cluster,
                              const std::map<OpenKey, std::int64_t>& open) {
  const Touched touched(*impl_);
  std::lock_guard lock(impl_->mu);
  impl_->violations_raw[cluster] = open;
  impl_->publish_violations(cluster);
}

void Metrics::violation_opened(const std::string& cluster, const std::string& policy,
                               std::int64_t n) {
  const Touched touched(*impl_);
  impl_->violations_opened.Add({{"cluster", cluster}, {"policy", policy}})
      .Increment(static_cast<double>(n));
}

void Metrics::token_anomalies(const std::string& cluster, std::string_view reason, std::int64_t n) {
  const Touched touched(*impl_);
  impl_->token_anomalies.Add({{"cluster", cluster}, {"reason", std::string(reason)}})
      .Increment(static_cast<double>(n));
}

void Metrics::action(const std::string& cluster, const std::string& policy,
                     const std::string& action, std::string_view result, std::int64_t n) {
  const Touched touched(*impl_);
  impl_->actions
      .Add({{"cluster", cluster},
            {"policy", policy},
            {"action", action},
            {"result", std::string(result)}})
      .Increment(static_cast<double>(n));
}

void Metrics::enforcement_halted(const std::string& cluster, bool halted) {
  const Touched touched(*impl_);
  impl_->halted.Add({{"cluster", cluster}}).Set(halted ? 1 : 0);
}

void Metrics::audit_events(const EventCounts& counts) {
  for (int k = 0; k < kEventKindCount; ++k) {
    auto n = counts[static_cast<std::size_t>(k)];
    if (n > 0) {
      const Touched touched(*impl_);
      impl_->audit_events.Add({{"event", std::string(to_string(static_cast<EventKind>(k)))}})
          .Increment(static_cast<double>(n));
    }
  }
}

void Metrics::checkpoint_signed(std::int64_t seq, Timestamp at) {
  const Touched touched(*impl_);
  impl_->checkpoint_seq.Add({}).Set(static_cast<double>(seq));
  impl_->checkpoint_at.Add({}).Set(unix_seconds(at));
}

void Metrics::exemptions_active(const std::map<std::string, std::int64_t>& by_policy) {
  std::lock_guard lock(impl_->mu);
  // Called on every scrape: changes the generation only when a value changes.
  std::map<std::string, std::int64_t> next = by_policy;
  for (const auto& p : impl_->exemption_policies) next.try_emplace(p, 0);
  if (next == impl_->exemption_values) return;
  for (const auto& [p, n] : next) {
    impl_->exemptions.Add({{"policy", p}}).Set(static_cast<double>(n));
    impl_->exemption_policies.insert(p);
  }
  impl_->exemption_values = std::move(next);
  impl_->touch();
}

void Metrics::alerts_sent(const std::string& receiver, std::string_view result,
                          std::int64_t total) {
  std::lock_guard lock(impl_->mu);
  auto [it, created] = impl_->alert_totals.try_emplace(receiver + '\0' + std::string(result), 0);
  std::int64_t& last = it->second;
  if (!created && total <= last) return;  // called on every scrape: nothing new
  auto& c = impl_->alerts.Add({{"receiver", receiver}, {"result", std::string(result)}});
  if (total > last) c.Increment(static_cast<double>(total - last));
  last = std::max(last, total);
  impl_->touch();
}

void Metrics::config_reload(bool ok, Timestamp at) {
  const Touched touched(*impl_);
  impl_->reload_ok.Set(ok ? 1 : 0);
  if (ok) impl_->reload_at.Set(unix_seconds(at));
}

void Metrics::forget_cluster(const std::string& cluster) {
  const Touched touched(*impl_);
  std::lock_guard lock(impl_->mu);
  // Families cannot be iterated; each label set this cluster can have is removed by name.
  for (const auto& key : impl_->violation_series[cluster]) {
    impl_->violations_open.Remove(&impl_->violations_open.Add(with_team(
        {{"cluster", cluster}, {"policy", key.policy}, {"severity", key.severity}}, key.team)));
  }
  impl_->violation_series.erase(cluster);
  impl_->violations_raw.erase(cluster);
  for (const auto& team : impl_->inventory_teams[cluster])
    impl_->remove_team_inventory(cluster, team);
  impl_->inventory_teams.erase(cluster);
  impl_->team_slots.erase(cluster);
  for (const char* status : {"active", "expired", "revoked", "removed"}) {
    impl_->tokens.Remove(&impl_->tokens.Add({{"cluster", cluster}, {"status", status}}));
  }
  impl_->without_expiry.Remove(&impl_->without_expiry.Add({{"cluster", cluster}}));
  impl_->halted.Remove(&impl_->halted.Add({{"cluster", cluster}}));
  impl_->last_success.Remove(&impl_->last_success.Add({{"cluster", cluster}}));
  impl_->mgmt_expiry.Remove(&impl_->mgmt_expiry.Add({{"cluster", cluster}}));
}

void Metrics::keep_policies(const std::vector<std::string>& configured) {
  const Touched touched(*impl_);
  std::lock_guard lock(impl_->mu);
  std::set<std::string> keep(configured.begin(), configured.end());
  for (auto& [cluster, series] : impl_->violation_series) {
    for (auto it = series.begin(); it != series.end();) {
      if (keep.contains(it->policy)) {
        ++it;
        continue;
      }
      impl_->violations_open.Remove(&impl_->violations_open.Add(with_team(
          {{"cluster", cluster}, {"policy", it->policy}, {"severity", it->severity}}, it->team)));
      it = series.erase(it);
    }
  }
  for (auto& [cluster, raw] : impl_->violations_raw)
    std::erase_if(raw, [&](const auto& kv) { return !keep.contains(kv.first.policy); });
}

std::string Metrics::render() const {
  const bool cacheable = !impl_->external.load();
  const std::uint64_t generation = impl_->generation.load(std::memory_order_acquire);
  if (cacheable) {
    std::lock_guard lock(impl_->cache_mu);
    if (impl_->cached_generation == generation) return impl_->cached;
  }
  std::ostringstream out;
  out.imbue(std::locale::classic());
  prometheus::TextSerializer().Serialize(out, impl_->registry.Collect());
  std::string text = out.str();
  if (cacheable) {
    // An update during serialization advanced the generation: the next scrape renders again.
    std::lock_guard lock(impl_->cache_mu);
    impl_->cached_generation = generation;
    impl_->cached = text;
  }
  return text;
}

}  // namespace tw::metrics
