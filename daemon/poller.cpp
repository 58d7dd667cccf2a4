#include "daemon/poller.h"

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "core/sha256.h"
#include "core/version.h"
#include "storage/queries.h"

namespace tw::daemon {
namespace {

std::int64_t count(const storage::EventCounts& c, EventKind k) {
  return c[static_cast<std::size_t>(k)];
}

// Keeps the longest wait a cluster asked for.
void note_wait(std::optional<Duration>& wait, const std::optional<Duration>& asked) {
  if (asked && (!wait || *asked > *wait)) wait = asked;
}

// Length-prefixed, so that no two different inputs give the same text.
void put(std::string& out, std::string_view v) {
  out += std::to_string(v.size());
  out += ':';
  out += v;
}
void put(std::string& out, std::int64_t v) { put(out, std::to_string(v)); }
void put(std::string& out, const std::optional<Duration>& d) {
  put(out, d ? std::to_string(d->count()) : std::string("-"));
}

// Identity of the policy evaluation the enforcer runs for this cluster: every field of every
// policy and exemption, the settings, the cluster's labels and timeout, this build's version.
// A checkpoint saved under another identity never stands for this one. "" without policies.
std::string evaluation_identity(const ClusterConfig& cluster, const Enforcer* enforcer,
                                const OwnerTracker& owners) {
  if (enforcer == nullptr || enforcer->policies() == nullptr) {
    // No evaluation, but the owners are resolved in the hook too: new rules must run it.
    return owners.identity().empty() ? std::string() : sha256_hex("owners\n" + owners.identity());
  }
  std::string s;
  put(s, kVersion);
  put(s, owners.identity());
  put(s, cluster.name);
  for (const auto& [k, v] : cluster.labels) {
    put(s, k);
    put(s, v);
  }
  put(s, std::optional<Duration>(cluster.source.timeout));
  const EnforcementSettings& e = enforcer->settings();
  put(s, policy::to_string(e.mode));
  put(s, static_cast<std::int64_t>(e.max_actions_per_cycle));
  put(s, static_cast<std::int64_t>(e.max_actions_percent));
  for (const policy::PolicySpec& p : enforcer->policies()->specs()) {
    put(s, p.name);
    put(s, policy::to_string(p.kind));
    put(s, p.max_lifetime);
    put(s, static_cast<std::int64_t>(p.require_expiry));
    put(s, p.max_age);
    for (const auto& a : p.actions) put(s, a);
    put(s, "|");
    for (const auto& d : p.databases) put(s, d);
    put(s, "|");
    put(s, p.max ? std::to_string(*p.max) : std::string("-"));
    put(s, p.pattern);
    put(s, p.within);
    for (Duration d : p.notify_before) put(s, std::optional<Duration>(d));
    put(s, "|");
    for (const auto& o : p.known_owners) put(s, o);
    put(s, "|");
    put(s, policy::to_string(p.severity));
    put(s, policy::to_string(p.action));
    put(s, p.mode ? policy::to_string(*p.mode) : std::string_view("-"));
    put(s, std::optional<Duration>(p.grace_period));
    put(s, std::optional<Duration>(p.min_token_age));
    put(s, static_cast<std::int64_t>(p.require_approval));
    for (const auto& c : p.scope.clusters) put(s, c);
    put(s, "|");
    put(s, p.scope.description);
    for (const auto& [k, v] : p.scope.labels) {
      put(s, k);
      put(s, v);
    }
    put(s, "|");
  }
  for (const policy::ExemptionSpec& x : enforcer->policies()->exemptions()) {
    put(s, x.policy);
    put(s, x.token_id);
    put(s, x.description);
    put(s, x.cluster);
    put(s, x.reason);
    put(s, static_cast<std::int64_t>(x.expires.time_since_epoch().count()));
  }
  return sha256_hex(s);
}

}  // namespace

ClusterPoller::ClusterPoller(ClusterConfig cluster, std::unique_ptr<influx::ClusterClient> client,
                             storage::InventoryRecorder& recorder, const Clock& clock, Logger log,
                             std::unique_ptr<Enforcer> enforcer)
    : cluster_(std::move(cluster)),
      client_(std::move(client)),
      recorder_(recorder),
      clock_(clock),
      log_(std::move(log)),
      owners_(cluster_.name),
      enforcer_(std::move(enforcer)),
      anomalies_(cluster_.name),
      credential_(cluster_.name, log_) {
  if (enforcer_) enforcer_->set_owners(&owners_);
}

void ClusterPoller::set_owner_rules(std::shared_ptr<const policy::OwnerRules> rules) {
  owners_.set_rules(std::move(rules));
}

void ClusterPoller::set_metrics(metrics::Metrics* m) {
  metrics_ = m;
  if (enforcer_) enforcer_->set_metrics(m);
  if (metrics_ != nullptr) {
    for (auto reason : kAnomalyReasons) metrics_->token_anomalies(cluster_.name, reason, 0);
  }
}

void ClusterPoller::count_inventory(const storage::Inventory& inventory) {
  counts_ = {};
  // Active tokens by raw team first (owners_ keeps the strings while the hook runs).
  std::unordered_map<std::string_view, TeamTokens> by_team;
  for (const auto& [id, k] : inventory) {
    switch (k.status) {
      case TokenStatus::kActive: {
        ++counts_.active;
        TeamTokens& t = by_team[owners_.of(id).team];
        if (k.token.expires_at) {
          t.expiries.push_back(*k.token.expires_at);
        } else {
          ++counts_.without_expiry;
          ++t.never_expiring;
        }
        break;
      }
      case TokenStatus::kExpired:
        ++counts_.expired;
        break;
      case TokenStatus::kRevoked:
        ++counts_.revoked;
        break;
      case TokenStatus::kRemoved:
        ++counts_.removed;
        break;
    }
  }
  rank_teams(by_team);
  stats_ready_ = true;
}

// The teams with the most active tokens (then by name) get labels of their own; the tokens of
// each label are merged into team_tokens_.
void ClusterPoller::rank_teams(std::unordered_map<std::string_view, TeamTokens>& by_team) {
  std::vector<std::pair<std::int64_t, std::string_view>> ranked;
  ranked.reserve(by_team.size());
  for (const auto& [team, t] : by_team) {
    ranked.emplace_back(-(t.never_expiring + static_cast<std::int64_t>(t.expiries.size())), team);
  }
  std::sort(ranked.begin(), ranked.end());
  std::vector<std::string> names;
  for (const auto& [n, team] : ranked) {
    if (names.size() > metrics::kMaxTeamLabels) break;  // room for "" among them
    names.emplace_back(team);
  }
  metrics_->team_labels(cluster_.name, names);
  team_tokens_.clear();
  for (auto& [team, t] : by_team) {
    TeamTokens& to = team_tokens_[metrics_->team_label(cluster_.name, std::string(team))];
    to.never_expiring += t.never_expiring;
    if (to.expiries.empty()) {
      to.expiries = std::move(t.expiries);
    } else {
      to.expiries.insert(to.expiries.end(), t.expiries.begin(), t.expiries.end());
    }
  }
  for (auto& [team, t] : team_tokens_) std::sort(t.expiries.begin(), t.expiries.end());
}

void ClusterPoller::publish_inventory(Timestamp now) {
  // The expiry windows move with the clock; counted from the sorted expiries at every poll.
  counts_.teams.clear();
  for (const auto& [team, t] : team_tokens_) {
    auto within = [&](Duration d) {
      auto from = std::upper_bound(t.expiries.begin(), t.expiries.end(), now);
      auto to = std::upper_bound(t.expiries.begin(), t.expiries.end(), now + d);
      return static_cast<std::int64_t>(to - from);
    };
    counts_.teams[team] = {.never_expiring = t.never_expiring,
                           .expiring_1d = within(std::chrono::hours(24)),
                           .expiring_7d = within(std::chrono::hours(24 * 7)),
                           .expiring_30d = within(std::chrono::hours(24 * 30))};
  }
  metrics_->inventory(cluster_.name, counts_);
}

bool ClusterPoller::confirm_vanished(const std::vector<std::string>& ids,
                                     const influx::CallContext& ctx, storage::PollInput& in,
                                     std::optional<Duration>& wait) {
  influx::CallContext read_ctx{ctx.cancel, {}};
  for (const auto& id : ids) {
    if (ctx.cancel != nullptr && ctx.cancel->load()) return false;
    if (in.confirmations.contains(id)) continue;
    storage::DirectRead r;
    if (wait) {
      r.error = "not read: the cluster asked to wait " + format_duration(*wait);
      in.confirmations.emplace(id, std::move(r));
      continue;
    }
    auto got = client_->get_token(id, read_ctx);
    if (got.ok()) {
      r.ok = true;
      r.token = std::move(*got);
    } else {
      r.error = got.error().message;
      note_wait(wait, got.error().retry_after);
    }
    in.confirmations.emplace(id, std::move(r));
  }
  if (ctx.cancel != nullptr && ctx.cancel->load()) return false;  // a read cut short proves nothing
  log_.info("read tokens missing from the list directly",
            {{"cluster", cluster_.name}, {"read", static_cast<std::int64_t>(ids.size())}});
  return true;
}

// One cycle's state, shared by the steps of run_once.
struct ClusterPoller::Cycle {
  explicit Cycle(const RunOptions& o) : options(o) {}
  const RunOptions& options;
  CycleReport rep;
  influx::CallContext ctx;
  std::chrono::steady_clock::time_point steady_start = std::chrono::steady_clock::now();
  std::string evaluation;              // the policy evaluation's identity (checkpoints)
  std::optional<std::string> lapsed;   // why the management token can no longer be used
  std::vector<TimeAnomaly> anomalies;  // in the list fetched last
  bool hook_ran = false;               // the poll's transaction reached policy evaluation
  bool decoded = false;                // a list was decoded (its memory is worth trimming)
  bool fetched_ok = false;             // the first fetch returned a list
  bool abandoned = false;              // shutdown interrupted the cycle: nothing to report
};

CycleReport ClusterPoller::run_once(const RunOptions& options) {
  Cycle c(options);
  c.rep.cluster = cluster_.name;
  c.rep.started_at = clock_.now();
  c.ctx.cancel = options.cancel;
  c.evaluation = evaluation_identity(cluster_, enforcer_.get(), owners_);
  offer_digest(c);
  // A management token known to have lapsed fails the poll with that reason, not the cluster's.
  c.lapsed =
      credential_.check(*client_, c.ctx, c.rep.started_at, options.dry_run ? nullptr : metrics_);

  auto summary = record(c);
  if (c.abandoned) return std::move(c.rep);
  const bool committed =
      summary.ok() && summary->poll_id != 0 && summary->outcome == storage::PollOutcome::kOk;
  after_record(c, committed);
  if (c.decoded && options.trim_heap) {
    // A decoded list leaves tens of MB of small freed blocks at 100k tokens; hand the free pages
    // back so the next poll does not start from a fragmented, fully resident heap.
    malloc_trim(0);
  }
  c.rep.total_time =
      std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - c.steady_start);
  if (metrics_ != nullptr && !options.dry_run) publish_poll(c, summary);
  if (!summary.ok()) {
    c.rep.error = summary.error().message;
    c.rep.summary.outcome =
        c.fetched_ok ? storage::PollOutcome::kOk : storage::PollOutcome::kFailed;
    log_.error("could not record the poll; nothing was written and the next poll will retry",
               {{"cluster", cluster_.name}, {"error", c.rep.error}});
    return std::move(c.rep);
  }
  c.rep.recorded = true;
  c.rep.summary = std::move(*summary);
  log_outcome(c.rep);
  return std::move(c.rep);
}

// Offers the digest of the last list recorded whole: an identical list lets the source skip
// decoding and the recorder skip the diff (it records the expiries that passed from memory). A
// new process may offer the digest saved with the last poll's checkpoint instead, unless a token
// can expire before the fetch ends (it has no inventory in memory to record that from).
void ClusterPoller::offer_digest(Cycle& c) {
  if (c.options.full_compare) return;
  const Timestamp horizon = c.rep.started_at + cluster_.source.timeout;
  c.ctx.known_digest = recorder_.known_digest(cluster_.name);
  if (c.ctx.known_digest.empty() && c.options.use_checkpoint)
    c.ctx.known_digest = recorder_.saved_digest(cluster_.name, horizon, c.evaluation);
}

// Fetches the list into a poll input (a failed fetch is an input with its error); nothing if
// shutdown interrupted the fetch.
std::optional<storage::PollInput> ClusterPoller::fetch(Cycle& c) {
  c.anomalies.clear();
  auto list = c.lapsed
                  ? Result<influx::TokenList>(make_error(ErrorCode::kInvalidArgument, *c.lapsed))
                  : client_->list_tokens(c.ctx);
  c.rep.finished_at = clock_.now();
  c.rep.fetch_time =
      std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - c.steady_start);
  if (!list.ok() && list.error().code == ErrorCode::kCancelled) {
    abandon(c, list.error().message);
    return std::nullopt;
  }
  storage::PollInput in;
  in.cluster = cluster_.name;
  in.started_at = c.rep.started_at;
  in.finished_at = c.rep.finished_at;
  in.max_vanished_percent = c.options.max_vanished_percent;
  in.dry_run = c.options.dry_run;
  in.use_checkpoint = c.options.use_checkpoint;
  in.evaluation = c.evaluation;
  if (!list.ok()) {
    in.error = list.error().message;
    note_wait(c.rep.retry_after, list.error().retry_after);
    return in;
  }
  in.unchanged = list->unchanged;
  in.digest = std::move(list->digest);
  if (!list->unchanged) {
    c.anomalies = anomalies_in(list->tokens, std::move(list->anomalies), c.rep.finished_at);
    in.tokens = std::move(list->tokens);
    c.decoded = true;
  }
  if (list->replaced_invalid_utf8) {
    log_.warn("the token list contained invalid UTF-8; it was replaced by U+FFFD",
              {{"cluster", cluster_.name}});
  }
  return in;
}

// Shutdown interrupted the cycle: nothing happened worth recording.
void ClusterPoller::abandon(Cycle& c, std::string why) {
  c.abandoned = true;
  c.rep.error = std::move(why);
  c.rep.summary.outcome = storage::PollOutcome::kFailed;
  log_.info("poll abandoned for shutdown", {{"cluster", cluster_.name}});
}

// Fetches and records the list. The recorder may ask for a full list (the unchanged shortcut
// could not be used) and, for tokens missing from a list, for direct reads before it records
// their removal.
Result<storage::PollSummary> ClusterPoller::record(Cycle& c) {
  auto in = fetch(c);
  if (!in) return make_error(ErrorCode::kCancelled, c.rep.error);
  c.fetched_ok = in->tokens.has_value() || in->unchanged;
  storage::InventoryRecorder::Hook hook =
      [&](storage::WriteTxn& txn, const storage::Inventory& inventory, storage::PollSummary& s) {
        return on_recorded(c, txn, inventory, s);
      };
  auto summary = recorder_.record_input(*in, hook);
  for (int round = 0; round < 3 && summary.ok(); ++round) {
    if (summary->needs_full_list) {
      c.ctx.known_digest.clear();
      in = fetch(c);
      if (!in) return make_error(ErrorCode::kCancelled, c.rep.error);
    } else if (summary->needs_confirmation) {
      if (!confirm_vanished(summary->to_confirm, c.ctx, *in, c.rep.retry_after)) {
        abandon(c, "shutting down");
        return make_error(ErrorCode::kCancelled, c.rep.error);
      }
    } else {
      break;
    }
    summary = recorder_.record_input(*in, hook);
  }
  if (summary.ok() && (summary->needs_full_list || summary->needs_confirmation)) {
    summary = make_error(ErrorCode::kInternal,
                         "the token list kept changing while its vanished tokens were read");
  }
  return summary;
}

// Runs inside the poll's transaction, only for a successful poll: anomalies, inventory gauges,
// then policy evaluation.
Status ClusterPoller::on_recorded(Cycle& c, storage::WriteTxn& txn,
                                  const storage::Inventory& inventory, storage::PollSummary& s) {
  c.hook_ran = true;
  TW_RETURN_IF_ERROR(anomalies_.record(txn, c.anomalies, c.rep.finished_at, s.inventory_reloaded));
  TW_RETURN_IF_ERROR(owners_.on_poll(txn, inventory, s, c.rep.finished_at));
  if (metrics_ != nullptr && (!stats_ready_ || !s.changed_tokens.empty() || s.inventory_reloaded)) {
    count_inventory(inventory);
    // A token's team may have changed: its open violations are counted again under it.
    if (enforcer_) enforcer_->recount_open_violations();
  }
  if (!enforcer_) return ok_status();
  c.rep.enforcement = EnforcementReport{};
  TW_RETURN_IF_ERROR(enforcer_->on_poll(txn, inventory, s, c.rep.finished_at, c.rep.enforcement));
  s.hook_due = enforcer_->next_due();  // saved with the poll's checkpoint
  return ok_status();
}

// After the poll's transaction: what the hook prepared is kept or dropped, anomalies are
// reported, and the actions planned in a committed poll run.
void ClusterPoller::after_record(Cycle& c, bool committed) {
  if (!c.hook_ran) return;
  if (!committed) stats_ready_ = false;  // computed from state that was rolled back
  owners_.after_commit(committed && !c.options.dry_run);
  if (enforcer_) enforcer_->after_commit(committed);
  anomalies_.after_commit(committed && !c.options.dry_run);
  for (const auto& a : anomalies_.recorded()) {
    log_.warn("token timestamp anomaly recorded", {{"cluster", cluster_.name},
                                                   {"token_id", a.token_id},
                                                   {"reason", std::string(a.reason)},
                                                   {"value", a.value}});
    if (metrics_ != nullptr) metrics_->token_anomalies(cluster_.name, a.reason, 1);
  }
  if (enforcer_ && committed && !c.options.dry_run &&
      (!c.rep.enforcement.to_run.empty() || enforcer_->wants_execute())) {
    enforcer_->execute(recorder_.store(), *client_, c.ctx, c.rep.enforcement);
    note_wait(c.rep.retry_after, c.rep.enforcement.retry_after);
  }
}

void ClusterPoller::publish_poll(const Cycle& c, const Result<storage::PollSummary>& summary) {
  std::string_view outcome = !summary.ok() ? "failed" : storage::to_string(summary->outcome);
  bool ok = summary.ok() && summary->outcome == storage::PollOutcome::kOk;
  if (!ok && !last_success_known_) {
    // First poll of this process failed: publish the last success on record (or 0), so a
    // cluster that keeps failing after a restart still shows how stale it is.
    auto txn = recorder_.store().begin();
    if (txn.ok()) {
      auto last = storage::last_successful_poll(txn->db(), cluster_.name);
      if (last.ok()) metrics_->last_success(cluster_.name, *last);
    }
  }
  last_success_known_ = true;
  metrics_->poll_finished(cluster_.name, outcome,
                          std::chrono::duration<double>(c.rep.total_time).count(),
                          ok ? std::optional<Timestamp>(c.rep.finished_at) : std::nullopt);
  if (ok && stats_ready_) publish_inventory(c.rep.finished_at);
}

void ClusterPoller::log_outcome(CycleReport& rep) {
  const auto& s = rep.summary;
  switch (s.outcome) {
    case storage::PollOutcome::kFailed:
      rep.error = s.message;
      if (rep.retry_after) {
        log_.warn("poll failed", {{"cluster", cluster_.name},
                                  {"error", s.message},
                                  {"retry_after", format_duration(*rep.retry_after)}});
      } else {
        log_.warn("poll failed", {{"cluster", cluster_.name}, {"error", s.message}});
      }
      break;
    case storage::PollOutcome::kSuspect:
      rep.error = s.message;
      log_.warn("poll held as suspect", {{"cluster", cluster_.name},
                                         {"known", static_cast<std::int64_t>(s.known)},
                                         {"vanished", static_cast<std::int64_t>(s.vanished)},
                                         {"reason", s.message}});
      break;
    case storage::PollOutcome::kOk:
      log_recorded(s, rep.total_time);
      break;
  }
}

void ClusterPoller::log_recorded(const storage::PollSummary& s, Duration total_time) {
  std::int64_t changes = 0;
  for (auto k : {EventKind::kTokenDiscovered, EventKind::kTokenCreated, EventKind::kTokenUpdated,
                 EventKind::kTokenRevoked, EventKind::kTokenExpired, EventKind::kTokenRemoved,
                 EventKind::kTokenReappeared}) {
    changes += count(s.events, k);
  }
  if (s.confirmed_suspect) {
    log_.warn("vanished tokens confirmed by a second poll; recording their removal",
              {{"cluster", cluster_.name}, {"vanished", static_cast<std::int64_t>(s.vanished)}});
  }
  LogLevel level = changes > 0 ? LogLevel::kInfo : LogLevel::kDebug;
  log_.log(level, changes > 0 ? "poll recorded changes" : "poll found no change",
           {{"cluster", cluster_.name},
            {"tokens", static_cast<std::int64_t>(s.token_count)},
            {"discovered", count(s.events, EventKind::kTokenDiscovered)},
            {"created", count(s.events, EventKind::kTokenCreated)},
            {"updated", count(s.events, EventKind::kTokenUpdated)},
            {"revoked", count(s.events, EventKind::kTokenRevoked)},
            {"expired", count(s.events, EventKind::kTokenExpired)},
            {"removed", count(s.events, EventKind::kTokenRemoved)},
            {"reappeared", count(s.events, EventKind::kTokenReappeared)},
            {"duration_ms", static_cast<std::int64_t>(total_time.count())}});
}

}  // namespace tw::daemon
