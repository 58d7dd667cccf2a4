#pragma once
// The Prometheus metrics of SPEC §5, on a prometheus-cpp registry (core library only; no HTTP
// here). The daemon updates them from its poll cycle and enforcement; render() produces the text
// exposition for GET /metrics. Labels are bounded: clusters, policies, severities, statuses,
// outcomes, actions, receivers, event names, teams — never token ids or descriptions.
//
// Teams ([[owners]], docs/owners.md) may be captured from token descriptions, so their number is
// capped per cluster: team_labels() names the kMaxTeamLabels teams with the most active tokens
// (the poller, whenever it recounts the inventory); every other team is counted under
// team="other" (kOtherTeam). Tokens without a team are counted in the series without a team
// label (PromQL selects them with team=""). The same mapping applies to the open violations.
//
// render() reuses the previous text while no metric changed (every mutator advances a generation
// counter), so frequent scrapes between polls cost a copy, not a serialization. Benchmarks turn
// that off (MetricsOptions::reuse_text, `[http] reuse_metrics_text = false`) to measure the
// serialization itself.
//
// Thread safety: every method is thread-safe (prometheus-cpp metrics are atomic; label-set
// bookkeeping is guarded by a mutex). Errors: none.

#include <compare>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/audit_event.h"
#include "core/time.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace tw::metrics {

inline constexpr std::size_t kMaxTeamLabels = 50;
inline constexpr std::string_view kOtherTeam = "other";

// One team's active tokens: how many never expire, how many expire within 1, 7 and 30 days.
struct TeamExpiry {
  std::int64_t never_expiring = 0;
  std::int64_t expiring_1d = 0, expiring_7d = 0, expiring_30d = 0;
  bool operator==(const TeamExpiry&) const = default;
};

struct InventoryCounts {
  std::int64_t active = 0, expired = 0, revoked = 0, removed = 0;
  std::int64_t without_expiry = 0;  // active tokens that never expire
  // By team label (team_label(): "" for no team, "other" past the cap). The no-team series are
  // published even when this has no "" entry (zeros), so they always exist.
  std::map<std::string, TeamExpiry> teams{};
};

// Open violations of a cluster by policy, severity and team (the token's team, "" for none).
struct OpenKey {
  std::string policy;
  std::string severity;
  std::string team{};
  auto operator<=>(const OpenKey&) const = default;
};

struct MetricsOptions {
  bool reuse_text = true;  // false: every render() serializes every series
};

class Metrics {
 public:
  explicit Metrics(std::string version, MetricsOptions options = {});
  ~Metrics();

  void poll_finished(const std::string& cluster, std::string_view outcome, double seconds,
                     std::optional<Timestamp> succeeded_at);
  // The last successful poll as recorded before this process polled (0 if there never was one),
  // so a cluster that has not been polled successfully since a restart still has the series.
  void last_success(const std::string& cluster, std::optional<Timestamp> at);
  // The teams of a cluster that get a label of their own, ranked (most active tokens first): the
  // first kMaxTeamLabels non-empty ones are kept. Series of teams that lose their label go away;
  // the open violations are published again under the new mapping.
  void team_labels(const std::string& cluster, const std::vector<std::string>& ranked);
  // The label value a team's series carry in `cluster`: "" for "", the team if it has a label,
  // else "other".
  std::string team_label(const std::string& cluster, const std::string& team) const;
  // Sets tokenwarden_tokens, _tokens_without_expiry, and per team _tokens_expiring and
  // _tokens_never_expiring (teams mapped by team_label(); teams no longer reported go away).
  void inventory(const std::string& cluster, const InventoryCounts& counts);
  // The open violations of a cluster by (policy, severity, team) with raw team names (mapped by
  // team_label()); replaces the previous set (series no longer reported go to 0, or away if the
  // policy is no longer configured or the team lost its label).
  void violations_open(const std::string& cluster, const std::map<OpenKey, std::int64_t>& open);
  void violation_opened(const std::string& cluster, const std::string& policy, std::int64_t n = 1);
  // token_anomaly events recorded (tokenwarden_token_anomalies_total); n = 0 creates the series.
  void token_anomalies(const std::string& cluster, std::string_view reason, std::int64_t n = 1);
  void action(const std::string& cluster, const std::string& policy, const std::string& action,
              std::string_view result, std::int64_t n = 1);
  void enforcement_halted(const std::string& cluster, bool halted);
  void audit_events(const EventCounts& counts);
  // A checkpoint_signed event was appended (tokenwarden_audit_checkpoint_seq and _timestamp_
  // seconds; absent until the first one).
  void checkpoint_signed(std::int64_t seq, Timestamp at);
  void exemptions_active(const std::map<std::string, std::int64_t>& by_policy);
  // Totals as counted by the alert dispatcher (monotonic); the counters follow them.
  void alerts_sent(const std::string& receiver, std::string_view result, std::int64_t total);
  void config_reload(bool ok, Timestamp at);
  // When the management token tokenwarden uses for a cluster expires
  // (tokenwarden_management_token_expiry_timestamp_seconds); nullopt removes the series (it never
  // expires, or the source cannot tell).
  void management_token_expiry(const std::string& cluster, std::optional<Timestamp> at);
  // An export sink's position (docs/audit-export.md): the last seq it delivered, how many
  // events and how many seconds (age of the oldest undelivered event, 0 when caught up) it lags,
  // and whether its last attempt succeeded (tokenwarden_export_*{sink}).
  void export_status(const std::string& sink, std::int64_t delivered_seq, std::int64_t lag_events,
                     double lag_seconds, bool up);
  // Only the age of the oldest undelivered event, recomputed at a scrape (a long delivery).
  void export_lag_seconds(const std::string& sink, double lag_seconds);
  void export_failed(const std::string& sink);  // tokenwarden_export_failures_total
  // 1 while [audit] require_export holds enforcement actions back (a sink lags too long).
  void export_blocked(bool blocked);
  // [ha] (docs/high-availability.md): this instance's role and term, whether its last call to
  // the coordination service succeeded, and how long its lease lasts (tokenwarden_ha_*; absent
  // without [ha]).
  void ha_status(bool leader, std::int64_t term, bool etcd_up, double lease_remaining_seconds);
  void ha_etcd_call(std::string_view op, bool ok);  // tokenwarden_ha_etcd_requests_total
  void ha_fence_refused();  // an action not started: leadership could not be proven for it
  // Drops the gauge series of a cluster (removed by a reload) or of policies no longer configured.
  // Counters and the poll-duration histogram stay (a counter that vanishes and comes back would
  // look like a reset); they simply stop increasing.
  void forget_cluster(const std::string& cluster);
  void keep_policies(const std::vector<std::string>& configured);

  std::string render() const;
  prometheus::Registry& registry();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tw::metrics
