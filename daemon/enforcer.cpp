#include "daemon/enforcer.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>
#include <unordered_set>

#include "core/json_writer.h"
#include "core/strings.h"
#include "storage/sqlite.h"

namespace tw::daemon {
namespace {

using storage::ActionState;
using storage::Resolution;
using storage::ViolationState;

std::string key_of(const std::string& token, const std::string& policy) {
  std::string k;
  k.reserve(token.size() + policy.size() + 1);
  k += token;
  k += '\0';
  k += policy;
  return k;
}

// 30 s, 1 min, 2 min, 4 min between the five attempts.
Duration backoff(int attempts) {
  return std::chrono::seconds(30) * (1 << std::min(std::max(attempts - 1, 0), 4));
}

// An attempt without an outcome is abandoned if the process that made it is gone (a crash, a
// restart), or if it is older than any request could take.
bool attempt_abandoned(const storage::ActionRow& a, Timestamp now, Duration timeout) {
  if (!a.attempt_started_at) return true;
  if (a.attempt_pid <= 0 || a.attempt_pid == static_cast<std::int64_t>(::getpid())) return true;
  if (::kill(static_cast<pid_t>(a.attempt_pid), 0) != 0 && errno == ESRCH) return true;
  return *a.attempt_started_at < now - (2 * timeout + std::chrono::minutes(1));
}

bool is_active(const storage::KnownToken& k, Timestamp now) {
  return k.status != TokenStatus::kRemoved && status_at(k.token, now) == TokenStatus::kActive;
}

}  // namespace

EnforcementSettings enforcement_settings(const Config& config) {
  EnforcementSettings s;
  s.mode = config.daemon.mode;
  s.max_actions_per_cycle = config.safety.max_actions_per_cycle;
  s.max_actions_percent = config.safety.max_actions_percent;
  return s;
}

Result<std::shared_ptr<const policy::PolicySet>> compile_policies(const Config& config) {
  return policy::PolicySet::compile(config.policies, config.exemptions);
}

Enforcer::Enforcer(ClusterConfig cluster, const Clock& clock, Logger log, AlertSink* sink)
    : cluster_(std::move(cluster)),
      info_{cluster_.name, cluster_.labels},
      clock_(clock),
      log_(std::move(log)),
      sink_(sink) {}

void Enforcer::configure(std::shared_ptr<const policy::PolicySet> policies,
                         EnforcementSettings settings) {
  policies_ = std::move(policies);
  index_.clear();
  if (policies_) {
    for (std::size_t i = 0; i < policies_->specs().size(); ++i)
      index_.emplace(policies_->specs()[i].name, i);
  }
  settings_ = settings;
  configured_changed_ = true;
  alerts_dirty_ = true;
}

const policy::PolicySpec* Enforcer::spec(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &policies_->specs()[it->second];
}

policy::Mode Enforcer::mode_of(const policy::PolicySpec& p) const {
  return p.mode.value_or(settings_.mode);
}

Status Enforcer::load(storage::WriteTxn& txn) {
  auto rows = storage::open_violations(txn.db(), cluster_.name);
  if (!rows.ok()) return rows.take_error();
  open_.clear();
  for (auto& v : *rows) {
    if (!alerting()) v.detail.clear();  // only alerts read it; 42k violations would hold ~10 MB
    std::string id = v.token_id;
    open_[std::move(id)].push_back(std::move(v));
  }
  auto uses = storage::exemption_uses(txn.db(), cluster_.name);
  if (!uses.ok()) return uses.take_error();
  exemption_uses_.clear();
  for (const auto& [exemption, token] : *uses) exemption_uses_.insert(key_of(exemption, token));
  auto halted = storage::cluster_halted(txn.db(), cluster_.name);
  if (!halted.ok()) return halted.take_error();
  halted_ = *halted;
  loaded_ = true;
  counts_dirty_ = true;
  evaluated_once_ = false;  // the cached verdict times belong to the old state
  alerts_dirty_ = true;
  return ok_status();
}

storage::ViolationRow* Enforcer::find_violation(std::int64_t id) {
  for (auto& [token, vs] : open_) {
    for (auto& v : vs) {
      if (v.id == id) return &v;
    }
  }
  return nullptr;
}

Status Enforcer::record(storage::WriteTxn& txn, EventKind kind, const std::string& token_id,
                        std::string detail, Timestamp now, const storage::ViolationRow* v) {
  if (v != nullptr && alerting()) {
    StateChange c;
    c.event = std::string(to_string(kind));
    c.cluster = cluster_.name;
    c.token_id = token_id;
    c.policy = v->policy;
    c.severity = v->severity;
    c.state = std::string(to_string(v->state));
    c.violation_id = v->id;
    c.at = now;
    c.detail = detail;
    outbox_.push_back(std::move(c));
  }
  auto seq = txn.append({kind, cluster_.name, token_id, std::move(detail)}, now);
  if (!seq.ok()) return seq.take_error();
  return ok_status();
}

Status Enforcer::open_violation(storage::WriteTxn& txn, std::size_t pi,
                                const policy::Subject& subject, Timestamp now,
                                EnforcementReport& report) {
  const Token& token = *subject.token;
  const policy::PolicySpec& p = policies_->specs()[pi];
  storage::ViolationRow v;
  v.cluster = cluster_.name;
  v.token_id = token.id;
  v.policy = p.name;
  v.severity = std::string(policy::to_string(p.severity));
  v.action = std::string(policy::to_string(p.action));
  v.state = ViolationState::kOpen;
  v.opened_at = now;
  std::optional<std::int64_t> continues;
  if (reappeared_.contains(token.id)) {
    // A token listed again after its removal keeps the grace it had: the clock does not restart.
    auto earlier =
        storage::last_violation_resolved_as_removed(txn.db(), cluster_.name, token.id, p.name);
    if (!earlier.ok()) return earlier.take_error();
    if (*earlier) {
      v.opened_at = (*earlier)->opened_at;
      continues = (*earlier)->id;
    }
  }
  if (p.action != policy::Action::kAlert) v.due_at = v.opened_at + p.grace_period;
  std::string reason = policies_->explain(pi, subject, now);
  {
    JsonWriter w(v.detail);
    w.begin_object()
        .field("reason", reason)
        .field("kind", policy::to_string(p.kind))
        .field("token_description", token.description)
        .end_object();
  }
  auto id = storage::insert_violation(txn, v);
  if (!id.ok()) return id.take_error();
  v.id = *id;
  std::string d;
  JsonWriter w(d);
  w.begin_object()
      .field("violation_id", v.id)
      .field("policy", p.name)
      .field("severity", v.severity)
      .field("action", v.action)
      .field("reason", reason)
      .field("action_due_at", v.due_at)
      .field("mode", policy::to_string(mode_of(p)));
  if (continues) w.field("continues_violation", *continues);
  w.end_object();
  TW_RETURN_IF_ERROR(record(txn, EventKind::kViolationOpened, token.id, std::move(d), now, &v));
  log_.warn("violation opened", {{"cluster", cluster_.name},
                                 {"token_id", token.id},
                                 {"policy", p.name},
                                 {"severity", v.severity},
                                 {"reason", reason}});
  ++report.opened;
  alerts_dirty_ = true;
  counts_dirty_ = true;
  if (metrics_ != nullptr) metrics_->violation_opened(cluster_.name, p.name);
  if (!alerting()) v.detail.clear();
  open_[token.id].push_back(std::move(v));
  return ok_status();
}

Status Enforcer::resolve(storage::WriteTxn& txn, storage::ViolationRow& v, Resolution resolution,
                         const std::string& why, Timestamp now, EnforcementReport& report) {
  TW_RETURN_IF_ERROR(storage::resolve_violation(txn, v.id, resolution, now));
  v.state = ViolationState::kResolved;
  v.resolution = resolution;
  v.resolved_at = now;
  std::string d;
  JsonWriter(d)
      .begin_object()
      .field("violation_id", v.id)
      .field("policy", v.policy)
      .field("resolution", to_string(resolution))
      .field("why", why)
      .end_object();
  TW_RETURN_IF_ERROR(record(txn, EventKind::kViolationResolved, v.token_id, std::move(d), now, &v));
  log_.info("violation resolved", {{"cluster", cluster_.name},
                                   {"token_id", v.token_id},
                                   {"policy", v.policy},
                                   {"resolution", to_string(resolution)}});
  ++report.resolved;
  alerts_dirty_ = true;
  counts_dirty_ = true;
  return ok_status();
}

Status Enforcer::reconcile_token(storage::WriteTxn& txn, const std::string& id,
                                 const storage::KnownToken* known,
                                 std::span<const policy::Finding> findings,
                                 std::span<const policy::Subject> subjects, Timestamp now,
                                 EnforcementReport& report) {
  const auto& specs = policies_->specs();
  auto finding_for = [&](const std::string& policy) -> const policy::Finding* {
    auto pi = index_.find(policy);
    if (pi == index_.end()) return nullptr;
    for (const auto& f : findings) {
      if (f.policy == pi->second) return &f;
    }
    return nullptr;
  };
  // 1. Violations that no longer hold are resolved, with the reason they ended.
  if (auto it = open_.find(id); it != open_.end()) {
    auto& vs = it->second;
    for (auto v = vs.begin(); v != vs.end();) {
      std::optional<Resolution> resolution;
      std::string why;
      const policy::Finding* f = nullptr;
      if (spec(v->policy) == nullptr) {
        resolution = Resolution::kPolicyRemoved, why = "the policy is no longer configured";
      } else if (known == nullptr || known->status == TokenStatus::kRemoved) {
        resolution = Resolution::kRemoved, why = "the token is no longer listed";
      } else if (known->token.revoked_at) {
        resolution = Resolution::kRevoked, why = "the token is revoked";
      } else if (status_at(known->token, now) == TokenStatus::kExpired) {
        resolution = Resolution::kCompliant, why = "the token expired";
      } else if (f = finding_for(v->policy); f == nullptr) {
        // Compliant after our restrict — recorded, or still in flight when a crash lost its
        // outcome.
        bool restricted =
            (v->state == ViolationState::kEnforced || v->state == ViolationState::kEnforcing) &&
            v->action == "restrict";
        resolution = restricted ? Resolution::kRestricted : Resolution::kCompliant;
        why = restricted ? "the token was restricted" : "the token complies again";
      } else if (f->exempt()) {
        resolution = Resolution::kExempted, why = "an exemption now covers it";
      }
      if (!resolution) {
        ++v;
        continue;
      }
      TW_RETURN_IF_ERROR(resolve(txn, *v, *resolution, why, now, report));
      v = vs.erase(v);
    }
    if (vs.empty()) open_.erase(it);
  }
  // 2. New violations open; exemptions that suppress one are recorded once per token.
  for (const auto& f : findings) {
    const Token& token = *subjects[f.subject].token;
    const policy::PolicySpec& p = specs[f.policy];
    if (f.exempt()) {
      const auto& e = policies_->exemptions()[static_cast<std::size_t>(f.exemption)];
      std::string ek = policies_->exemption_key(static_cast<std::size_t>(f.exemption));
      std::string use = key_of(ek, token.id);
      if (exemption_uses_.contains(use)) continue;
      auto fresh = storage::note_exemption_use(txn, ek, cluster_.name, token.id, now);
      if (!fresh.ok()) return fresh.take_error();
      exemption_uses_.insert(std::move(use));
      if (*fresh) {
        std::string d;
        JsonWriter(d)
            .begin_object()
            .field("exemption", ek)
            .field("policy", p.name)
            .field("exemption_policy", e.policy)
            .field("reason", e.reason)
            .field("expires", e.expires)
            .end_object();
        TW_RETURN_IF_ERROR(
            record(txn, EventKind::kExemptionApplied, token.id, std::move(d), now, nullptr));
        ++report.exemptions_applied;
      }
      continue;
    }
    auto it = open_.find(token.id);
    bool is_open = it != open_.end() &&
                   std::any_of(it->second.begin(), it->second.end(),
                               [&](const storage::ViolationRow& v) { return v.policy == p.name; });
    if (!is_open)
      TW_RETURN_IF_ERROR(open_violation(txn, f.policy, subjects[f.subject], now, report));
  }
  return ok_status();
}

void Enforcer::remember_clock(const std::string& id, Timestamp next) {
  if (next == Timestamp::max()) return;
  clock_heap_.emplace_back(next, id);
  std::push_heap(clock_heap_.begin(), clock_heap_.end(), std::greater<>());
}

Status Enforcer::on_poll(storage::WriteTxn& txn, const storage::Inventory& inventory,
                         const storage::PollSummary& poll, Timestamp now,
                         EnforcementReport& report) {
  if (!policies_) return ok_status();
  outbox_.clear();
  reappeared_.clear();
  reappeared_.insert(poll.reappeared.begin(), poll.reappeared.end());
  list_started_at_ = poll.list_started_at;
  unheld_pending_.clear();
  // An outside writer (an `approve`, a manual `poll`) makes the cached state stale.
  auto dv = txn.db().cached("PRAGMA data_version");
  if (!dv.ok()) return dv.take_error();
  auto row = (*dv)->step();
  if (!row.ok()) return row.take_error();
  std::int64_t version = (*dv)->int64(0);
  (*dv)->reset();
  if (!loaded_ || version != data_version_) {
    TW_RETURN_IF_ERROR(load(txn));
    data_version_ = version;
  }

  // Which tokens to judge again: all of them, or only those that changed or whose time came.
  // Superseded times stay in the heap (judging a token again is harmless); a full evaluation
  // rebuilds it before it grows past twice the inventory.
  bool full = !evaluated_once_ || configured_changed_ || poll.inventory_reloaded ||
              poll.changed_tokens.size() * 10 > inventory.size() ||
              clock_heap_.size() > 2 * inventory.size() + 64;
  std::vector<std::string> ids;
  if (!full) {
    ids = poll.changed_tokens;
    while (!clock_heap_.empty() && clock_heap_.front().first <= now) {
      std::pop_heap(clock_heap_.begin(), clock_heap_.end(), std::greater<>());
      ids.push_back(std::move(clock_heap_.back().second));
      clock_heap_.pop_back();
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    if (ids.empty() && now < next_due_) return ok_status();  // nothing can have changed
  }
  configured_changed_ = false;

  std::vector<policy::Subject> subjects;
  std::vector<const std::string*> absent;  // judged ids that are not (or no longer) listed
  if (full) {
    subjects.reserve(inventory.size());
    for (const auto& [id, k] : inventory) {
      if (k.status != TokenStatus::kRemoved) subjects.push_back({&k.token, k.first_seen});
    }
  } else {
    for (const auto& id : ids) {
      auto k = inventory.find(id);
      if (k != inventory.end() && k->second.status != TokenStatus::kRemoved) {
        subjects.push_back({&k->second.token, k->second.first_seen});
      } else {
        absent.push_back(&id);
      }
    }
  }
  report.evaluated = !subjects.empty() || !absent.empty() || full;
  const policy::Evaluation eval = policy::evaluate(*policies_, info_, subjects, now);
  if (full) clock_heap_.clear();
  for (std::size_t i = 0; i < subjects.size(); ++i)
    remember_clock(subjects[i].token->id, eval.subject_next_change[i]);
  evaluated_once_ = true;

  // Reconcile token by token (findings are ordered by subject).
  std::size_t fi = 0;
  std::unordered_set<std::string_view> judged;
  if (full) judged.reserve(subjects.size());
  for (std::size_t si = 0; si < subjects.size(); ++si) {
    std::size_t begin = fi;
    while (fi < eval.findings.size() && eval.findings[fi].subject == si) ++fi;
    const std::string& id = subjects[si].token->id;
    if (full) judged.insert(id);
    const storage::KnownToken& k = inventory.at(id);
    TW_RETURN_IF_ERROR(reconcile_token(
        txn, id, &k, std::span(eval.findings).subspan(begin, fi - begin), subjects, now, report));
  }
  // Open violations of tokens no longer listed (or removed).
  std::vector<std::string> gone;
  if (full) {
    for (const auto& [id, vs] : open_) {
      if (!judged.contains(id)) gone.push_back(id);
    }
  } else {
    for (const auto* id : absent) gone.push_back(*id);
  }
  for (const auto& id : gone) {
    auto k = inventory.find(id);
    TW_RETURN_IF_ERROR(reconcile_token(txn, id, k == inventory.end() ? nullptr : &k->second, {},
                                       subjects, now, report));
  }

  // Actions of violations that ended are settled; due violations get their action planned.
  TW_RETURN_IF_ERROR(settle_pending(txn, inventory, now, report));
  TW_RETURN_IF_ERROR(plan(txn, inventory, now, report));

  // What runs after the commit, and when there is work again without a change.
  auto pending = storage::pending_actions(txn.db(), cluster_.name);
  if (!pending.ok()) return pending.take_error();
  for (auto& a : *pending) {
    if (a.state != ActionState::kPlanned) continue;
    storage::ViolationRow* v = find_violation(a.violation_id);
    const policy::PolicySpec* p = v != nullptr ? spec(v->policy) : nullptr;
    if (v == nullptr || p == nullptr) continue;  // settled above
    if (mode_of(*p) == policy::Mode::kMonitor) {
      // Monitor mode came after the action was planned (or approved): it must not run now.
      TW_RETURN_IF_ERROR(storage::finish_action(txn, a.id, ActionState::kSkipped, now,
                                                "monitor mode", std::nullopt));
      TW_RETURN_IF_ERROR(storage::set_violation_state(txn, v->id, ViolationState::kSkipped));
      v->state = ViolationState::kSkipped;
      std::string d;
      JsonWriter(d)
          .begin_object()
          .field("action_id", a.id)
          .field("violation_id", v->id)
          .field("policy", v->policy)
          .field("action", a.action)
          .field("reason", "monitor")
          .end_object();
      TW_RETURN_IF_ERROR(record(txn, EventKind::kActionSkipped, a.token_id, std::move(d), now, v));
      ++report.skipped;
      count_action(a.policy, a.action, "skipped");
      continue;
    }
    if (a.next_attempt_at && *a.next_attempt_at > now) {
      next_due_ = std::min(next_due_, *a.next_attempt_at);
      continue;
    }
    if (a.attempt_started_at && !attempt_abandoned(a, now, cluster_.source.timeout)) {
      // Running in another process; if that attempt never ends, take it over once it is stale.
      next_due_ = std::min(next_due_, *a.attempt_started_at + 2 * cluster_.source.timeout +
                                          std::chrono::minutes(1) + Duration(1));
      continue;
    }
    if (a.action == "restrict") {
      // Restrict to what complies *now*: permissions removed since the plan must not come back.
      auto t = inventory.find(a.token_id);
      if (t == inventory.end()) continue;
      auto target = policies_->compliant_permissions(index_.at(v->policy), t->second.token);
      if (target != a.target) {
        TW_RETURN_IF_ERROR(storage::set_action_target(txn, a.id, target));
        a.target = std::move(target);
      }
    }
    report.to_run.push_back({std::move(a)});
  }
  if (!report.to_run.empty()) next_due_ = now;  // outcomes change the state: look again next cycle
  if (alerts_dirty_ && alerting()) rebuild_alerts(now);
  return ok_status();
}

Status Enforcer::settle_pending(storage::WriteTxn& txn, const storage::Inventory& inventory,
                                Timestamp now, EnforcementReport& report) {
  auto pending = storage::pending_actions(txn.db(), cluster_.name);
  if (!pending.ok()) return pending.take_error();
  for (const auto& a : *pending) {
    storage::ViolationRow* vr = find_violation(a.violation_id);
    if (vr != nullptr && vr->state != ViolationState::kResolved) continue;
    // The violation ended; the action must not run. It may already have done its work (a crash
    // lost the outcome): then it succeeded, and nothing is sent again.
    auto t = inventory.find(a.token_id);
    bool gone = t == inventory.end() || t->second.status == TokenStatus::kRemoved ||
                t->second.token.revoked_at;
    bool done = a.action == "revoke" ? gone : (!gone && t->second.token.permissions == a.target);
    ActionState state = done ? ActionState::kSucceeded : ActionState::kSkipped;
    std::string why =
        done ? (a.attempts > 0 ? "an earlier attempt took effect (confirmed by this poll)"
                               : "the token was already in the wanted state")
             : "the violation ended before the action ran";
    TW_RETURN_IF_ERROR(
        storage::finish_action(txn, a.id, state, now, done ? "" : why, std::nullopt));
    std::string d;
    JsonWriter(d)
        .begin_object()
        .field("action_id", a.id)
        .field("violation_id", a.violation_id)
        .field("policy", a.policy)
        .field("action", a.action)
        .field(done ? "outcome" : "reason", done ? "reconciled" : "resolved")
        .field("why", why)
        .end_object();
    TW_RETURN_IF_ERROR(record(txn, done ? EventKind::kActionSucceeded : EventKind::kActionSkipped,
                              a.token_id, std::move(d), now, vr));
    if (done) {
      ++report.reconciled;
    } else {
      ++report.skipped;
    }
    count_action(a.policy, a.action, done ? "succeeded" : "skipped");
  }
  return ok_status();
}

// A violation whose action succeeded stays settled only while the cluster agrees: if this poll
// still lists the token active (and the violation was not resolved), the action did not hold.
// It is planned again under the same rules, at most kMaxReplans times, then failed for good.
Status Enforcer::replan_unheld(storage::WriteTxn& txn, const storage::Inventory& inventory,
                               Timestamp now, Timestamp list_started_at,
                               EnforcementReport& report) {
  for (auto& [token, vs] : open_) {
    for (auto& v : vs) {
      if (v.state != ViolationState::kEnforced) continue;
      auto t = inventory.find(v.token_id);
      if (t == inventory.end() || !is_active(t->second, now)) continue;
      auto held = storage::succeeded_actions(txn.db(), v.id);
      if (!held.ok()) return held.take_error();
      // Only a list asked for after the action completed can contradict it (a manual `poll`
      // running beside the daemon may record an older one).
      if (!held->last_completed_at || list_started_at <= *held->last_completed_at) continue;
      const bool final = held->count >= kMaxReplans;
      if (final) {
        TW_RETURN_IF_ERROR(storage::set_violation_state(txn, v.id, ViolationState::kFailed));
        v.state = ViolationState::kFailed;
      } else {
        TW_RETURN_IF_ERROR(storage::reopen_violation(txn, v.id));
        v.state = ViolationState::kOpen;
        v.released = false;
      }
      const std::string error =
          "the " + v.action +
          " succeeded but a later poll still lists the token active and in violation";
      std::string d;
      JsonWriter(d)
          .begin_object()
          .field("action_id", held->last_id)
          .field("violation_id", v.id)
          .field("policy", v.policy)
          .field("action", v.action)
          .field("outcome", "did_not_hold")
          .field("error", error)
          .field("actions_succeeded", held->count)
          .field("final", final)
          .end_object();
      TW_RETURN_IF_ERROR(record(txn, EventKind::kActionFailed, v.token_id, std::move(d), now, &v));
      log_.error(final ? "an action did not hold again; giving up on this violation"
                       : "an action did not hold; planning it again",
                 {{"cluster", cluster_.name},
                  {"token_id", v.token_id},
                  {"policy", v.policy},
                  {"action", v.action},
                  {"actions_succeeded", held->count}});
      count_action(v.policy, v.action, "did_not_hold");
      ++report.did_not_hold;
      unheld_pending_.push_back(v.id);
      alerts_dirty_ = true;
      counts_dirty_ = true;
    }
  }
  return ok_status();
}

Status Enforcer::plan(storage::WriteTxn& txn, const storage::Inventory& inventory, Timestamp now,
                      EnforcementReport& report) {
  TW_RETURN_IF_ERROR(replan_unheld(txn, inventory, now, list_started_at_, report));
  std::vector<storage::ViolationRow*> due;
  next_due_ = Timestamp::max();
  for (auto& [token, vs] : open_) {
    for (auto& v : vs) {
      const policy::PolicySpec* p = spec(v.policy);
      if (p == nullptr || p->action == policy::Action::kAlert) continue;
      if (v.state != ViolationState::kOpen && v.state != ViolationState::kSkipped &&
          v.state != ViolationState::kHalted) {
        continue;  // planned, awaiting approval, running, done or failed for good
      }
      if (v.opened_at + p->grace_period > now) {
        next_due_ = std::min(next_due_, v.opened_at + p->grace_period);
        continue;
      }
      // Halted, and open in monitor mode, stay due: every cycle checks them again.
      next_due_ = now;
      due.push_back(&v);
    }
  }
  std::sort(due.begin(), due.end(), [](auto* a, auto* b) { return a->id < b->id; });

  std::vector<storage::ViolationRow*> candidates;
  for (auto* v : due) {
    const policy::PolicySpec& p = *spec(v->policy);
    std::string action(policy::to_string(p.action));
    if (mode_of(p) == policy::Mode::kMonitor) {
      if (v->state == ViolationState::kSkipped) continue;  // already recorded
      storage::ActionRow a;
      a.violation_id = v->id;
      a.cluster = cluster_.name;
      a.token_id = v->token_id;
      a.policy = v->policy;
      a.action = action;
      a.state = ActionState::kSkipped;
      a.planned_at = now;
      a.completed_at = now;
      a.error = "monitor mode";
      auto id = storage::insert_action(txn, a);
      if (!id.ok()) return id.take_error();
      TW_RETURN_IF_ERROR(storage::set_violation_state(txn, v->id, ViolationState::kSkipped));
      v->state = ViolationState::kSkipped;
      std::string d;
      JsonWriter(d)
          .begin_object()
          .field("action_id", *id)
          .field("violation_id", v->id)
          .field("policy", v->policy)
          .field("action", action)
          .field("reason", "monitor")
          .end_object();
      TW_RETURN_IF_ERROR(record(txn, EventKind::kActionSkipped, v->token_id, std::move(d), now, v));
      log_.info("action skipped: monitor mode", {{"cluster", cluster_.name},
                                                 {"token_id", v->token_id},
                                                 {"policy", v->policy},
                                                 {"action", action}});
      ++report.skipped;
      count_action(v->policy, action, "skipped");
      continue;
    }
    if (p.require_approval) {
      storage::ActionRow a;
      a.violation_id = v->id;
      a.cluster = cluster_.name;
      a.token_id = v->token_id;
      a.policy = v->policy;
      a.action = action;
      a.state = ActionState::kAwaitingApproval;
      a.planned_at = now;
      auto t = inventory.find(v->token_id);
      if (p.action == policy::Action::kRestrict && t != inventory.end()) {
        a.target = policies_->compliant_permissions(index_.at(p.name), t->second.token);
      }
      auto id = storage::insert_action(txn, a);
      if (!id.ok()) return id.take_error();
      TW_RETURN_IF_ERROR(
          storage::set_violation_state(txn, v->id, ViolationState::kAwaitingApproval));
      v->state = ViolationState::kAwaitingApproval;
      std::string d;
      JsonWriter w(d);
      w.begin_object()
          .field("action_id", *id)
          .field("violation_id", v->id)
          .field("policy", v->policy)
          .field("action", action)
          .field("awaiting_approval", true);
      if (p.action == policy::Action::kRestrict)
        w.key("permissions").raw(permissions_json(a.target));
      w.end_object();
      TW_RETURN_IF_ERROR(record(txn, EventKind::kActionPlanned, v->token_id, std::move(d), now, v));
      log_.warn("action awaits approval", {{"cluster", cluster_.name},
                                           {"token_id", v->token_id},
                                           {"policy", v->policy},
                                           {"action", action},
                                           {"action_id", *id}});
      ++report.awaiting_approval;
      alerts_dirty_ = true;
      continue;
    }
    candidates.push_back(v);
  }

  // Safety limits: counted over the actions nobody released by hand.
  std::size_t unreleased = static_cast<std::size_t>(
      std::count_if(candidates.begin(), candidates.end(), [](auto* v) { return !v->released; }));
  std::size_t active = 0;
  for (const auto& [id, k] : inventory)
    if (is_active(k, now)) ++active;
  bool over = unreleased > 0 &&
              (unreleased > static_cast<std::size_t>(settings_.max_actions_per_cycle) ||
               unreleased * 100 > static_cast<std::size_t>(settings_.max_actions_percent) * active);
  if (over) {
    for (auto* v : candidates) {
      if (v->released || v->state == ViolationState::kHalted) continue;
      TW_RETURN_IF_ERROR(storage::set_violation_state(txn, v->id, ViolationState::kHalted));
      v->state = ViolationState::kHalted;
    }
    report.halted = static_cast<int>(unreleased);
    if (!halted_) {
      std::map<std::string, std::int64_t> by_policy;  // what was held back, for reports
      for (auto* v : candidates) {
        if (!v->released) ++by_policy[v->policy];
      }
      std::string d;
      JsonWriter w(d);
      w.begin_object()
          .field("planned", static_cast<std::int64_t>(unreleased))
          .field("active_tokens", static_cast<std::int64_t>(active))
          .field("max_actions_per_cycle", settings_.max_actions_per_cycle)
          .field("max_actions_percent", settings_.max_actions_percent);
      w.key("policies").begin_object();
      for (const auto& [name, n] : by_policy) w.field(name, n);
      w.end_object().end_object();
      TW_RETURN_IF_ERROR(storage::set_cluster_halted(txn, cluster_.name, true, now, d));
      TW_RETURN_IF_ERROR(record(txn, EventKind::kEnforcementHalted, {}, d, now, nullptr));
      halted_ = true;
      alerts_dirty_ = true;
      counts_dirty_ = true;
      log_.error(
          "enforcement halted: the cycle planned more actions than the safety limits allow; none "
          "runs",
          {{"cluster", cluster_.name},
           {"planned", static_cast<std::int64_t>(unreleased)},
           {"active_tokens", static_cast<std::int64_t>(active)},
           {"max_actions_per_cycle", settings_.max_actions_per_cycle},
           {"max_actions_percent", settings_.max_actions_percent}});
    }
  } else if (halted_) {  // the plan fits: everything due is planned below, nothing stays halted
    TW_RETURN_IF_ERROR(storage::set_cluster_halted(txn, cluster_.name, false, now, "{}"));
    halted_ = false;
    alerts_dirty_ = true;
    counts_dirty_ = true;
    log_.info("enforcement resumed: the plan is within the safety limits",
              {{"cluster", cluster_.name}});
  }

  for (auto* v : candidates) {
    if (over && !v->released) continue;
    const std::size_t pi = index_.at(v->policy);
    const policy::PolicySpec& p = policies_->specs()[pi];
    storage::ActionRow a;
    a.violation_id = v->id;
    a.cluster = cluster_.name;
    a.token_id = v->token_id;
    a.policy = v->policy;
    a.action = std::string(policy::to_string(p.action));
    a.state = ActionState::kPlanned;
    a.planned_at = now;
    auto t = inventory.find(v->token_id);
    if (p.action == policy::Action::kRestrict && t != inventory.end()) {
      a.target = policies_->compliant_permissions(pi, t->second.token);
    }
    auto id = storage::insert_action(txn, a);
    if (!id.ok()) return id.take_error();
    TW_RETURN_IF_ERROR(storage::set_violation_state(txn, v->id, ViolationState::kEnforcing));
    v->state = ViolationState::kEnforcing;
    std::string d;
    JsonWriter w(d);
    w.begin_object()
        .field("action_id", *id)
        .field("violation_id", v->id)
        .field("policy", v->policy)
        .field("action", a.action)
        .field("released", v->released);
    if (p.action == policy::Action::kRestrict) w.key("permissions").raw(permissions_json(a.target));
    w.end_object();
    TW_RETURN_IF_ERROR(record(txn, EventKind::kActionPlanned, v->token_id, std::move(d), now, v));
    ++report.planned;
  }
  return ok_status();
}

void Enforcer::count_action(const std::string& policy, const std::string& action,
                            std::string_view result) {
  if (metrics_ != nullptr) metrics_->action(cluster_.name, policy, action, result);
}

void Enforcer::publish_metrics() {
  if (metrics_ == nullptr || !counts_dirty_) return;
  std::map<std::pair<std::string, std::string>, std::int64_t> open;
  for (const auto& [token, vs] : open_) {
    for (const auto& v : vs) ++open[{v.policy, v.severity}];
  }
  metrics_->violations_open(cluster_.name, open);
  metrics_->enforcement_halted(cluster_.name, halted_);
  counts_dirty_ = false;
}

void Enforcer::after_commit(bool committed) {
  if (committed) publish_metrics();
  if (!committed) {
    // The cache may hold what was rolled back: read it again next time.
    loaded_ = false;
    configured_changed_ = true;
    outbox_.clear();
    unheld_pending_.clear();
    return;
  }
  for (auto id : unheld_pending_) unheld_[id] = clock_.now();
  unheld_pending_.clear();
  if (alerting()) {
    for (const auto& c : outbox_) sink_->state_changed(c);
    if (alerts_dirty_) {
      sink_->set_active(cluster_.name, alerts_);
      alerts_dirty_ = false;
    }
  }
  outbox_.clear();
}

namespace {

// A request the cluster refused with Retry-After: the attempt stops there.
ActionResult told_to_wait(const Error& e) { return {{}, e.message, e.retry_after}; }

std::vector<Permission> sorted(std::vector<Permission> p) {
  std::sort(p.begin(), p.end(), [](const Permission& a, const Permission& b) {
    return std::tie(a.action, a.resource) < std::tie(b.action, b.resource);
  });
  return p;
}

}  // namespace

// A revocation counts only when a read-back shows it: the answer to the request is not believed.
// A retry reads first, so an earlier attempt that took effect (its answer or read-back lost) is
// not sent again; a request that failed is read back too, since it may have taken effect.
ActionResult run_revoke(influx::ClusterClient& client, const storage::ActionRow& a,
                        const influx::CallContext& ctx) {
  if (a.attempts > 0) {
    auto before = client.get_token(a.token_id, ctx);
    if (!before.ok() && before.error().retry_after) return told_to_wait(before.error());
    if (before.ok() && !before->has_value()) return {"gone", {}, {}};
    // Revoked before this attempt sent anything: by an earlier attempt whose answer was lost, or
    // by someone else — nothing acknowledged it to us, so it is not recorded as our revocation.
    if (before.ok() && (*before)->revoked_at) return {"already_revoked", {}, {}};
  }
  auto r = client.revoke(a.token_id, ctx);
  // Told to wait (429/503): refused, not carried out; the retry reads the token first anyway.
  if (!r.ok() && r.error().retry_after) return told_to_wait(r.error());
  const bool acknowledged = r.ok() && *r == influx::RevokeOutcome::kRevoked;
  auto back = client.get_token(a.token_id, ctx);
  if (!r.ok()) {
    // The request failed but the token is revoked: possibly by it; unacknowledged all the same.
    if (back.ok() && back->has_value() && (*back)->revoked_at) return {"already_revoked", {}, {}};
    return {{}, r.error().message, back.ok() ? std::nullopt : back.error().retry_after};
  }
  if (!back.ok()) {
    return {{},
            "could not read the token back to confirm the revocation: " + back.error().message,
            back.error().retry_after};
  }
  if (!back->has_value()) {
    // A source whose revocation is a deletion (influxdb3) deleted it; otherwise it no longer
    // exists: it cannot be used, but we did not revoke it.
    return {acknowledged && client.revoke_deletes() ? "deleted" : "gone", {}, {}};
  }
  if ((*back)->revoked_at) return {acknowledged ? "revoked" : "already_revoked", {}, {}};
  return {{},
          acknowledged
              ? "the cluster acknowledged the revocation but the token is still active"
              : "the cluster answered that the token does not exist but it is still active",
          {}};
}

// A restriction counts only when the token read back holds exactly the compliant permissions.
ActionResult run_restrict(influx::ClusterClient& client, const storage::ActionRow& a,
                          const influx::CallContext& ctx) {
  if (a.attempts > 0) {  // an earlier attempt may have taken effect: nothing is sent again then
    auto before = client.get_token(a.token_id, ctx);
    if (!before.ok() && before.error().retry_after) return told_to_wait(before.error());
    if (before.ok() && before->has_value() && !(*before)->revoked_at &&
        sorted((*before)->permissions) == sorted(a.target)) {
      return {"restricted", {}, {}};
    }
  }
  auto r = client.restrict(a.token_id, a.target, ctx);
  if (!r.ok()) return told_to_wait(r.error());
  auto back = client.get_token(a.token_id, ctx);
  if (!back.ok()) {
    return {{},
            "could not read the token back to confirm the restriction: " + back.error().message,
            back.error().retry_after};
  }
  if (!back->has_value())
    return {{}, "the cluster accepted the update but the token no longer exists", {}};
  const Token& t = **back;
  if (t.revoked_at) return {{}, "the cluster accepted the update but the token is revoked", {}};
  if (sorted(t.permissions) != sorted(a.target)) {
    return {{},
            "the cluster accepted the update but the token's permissions are " +
                printable(permissions_json(t.permissions), 300) + ", not " +
                printable(permissions_json(a.target), 300),
            {}};
  }
  return {"restricted", {}, {}};
}

void Enforcer::execute(storage::AuditStore& store, influx::ClusterClient& client,
                       const influx::CallContext& ctx, EnforcementReport& report) {
  for (auto& run : report.to_run) {
    // Shutdown: no new action starts; planned ones stay durable and run after the restart.
    if (ctx.cancel != nullptr && ctx.cancel->load()) return;
    const storage::ActionRow& a = run.action;
    Timestamp now = clock_.now();
    {
      auto txn = store.begin();
      if (!txn.ok()) {
        log_.error("cannot claim an action",
                   {{"cluster", cluster_.name}, {"error", txn.error().message}});
        return;
      }
      auto claimed = storage::claim_action(*txn, a.id, now, static_cast<std::int64_t>(::getpid()),
                                           a.attempt_started_at);
      if (!claimed.ok() || !*claimed || !txn->commit().ok()) continue;  // someone else has it
    }
    const int attempt = a.attempts + 1;
    log_.warn(a.action == "revoke" ? "revoking token" : "restricting token",
              {{"cluster", cluster_.name},
               {"token_id", a.token_id},
               {"policy", a.policy},
               {"action_id", a.id},
               {"attempt", attempt}});
    ActionResult result =
        a.action == "revoke" ? run_revoke(client, a, ctx) : run_restrict(client, a, ctx);
    std::string outcome = std::move(result.outcome);
    std::string error = std::move(result.error);
    const std::optional<Duration> wait = error.empty() ? std::nullopt : result.retry_after;
    if (!error.empty() && ctx.cancel != nullptr && ctx.cancel->load()) {
      // Shutdown: the attempt stays claimed and is reconciled against the next poll.
      log_.info("action interrupted by shutdown",
                {{"cluster", cluster_.name}, {"action_id", a.id}});
      return;
    }
    now = clock_.now();
    auto txn = store.begin();
    if (!txn.ok()) {
      log_.error("cannot record an action's outcome; the next poll reconciles it",
                 {{"cluster", cluster_.name}, {"action_id", a.id}, {"error", txn.error().message}});
      continue;
    }
    storage::ViolationRow* vr = find_violation(a.violation_id);
    Status s;
    std::string d;
    JsonWriter w(d);
    w.begin_object()
        .field("action_id", a.id)
        .field("violation_id", a.violation_id)
        .field("policy", a.policy)
        .field("action", a.action)
        .field("attempt", attempt);
    if (error.empty()) {
      w.field("outcome", outcome).end_object();
      s = storage::finish_action(*txn, a.id, ActionState::kSucceeded, now, "", std::nullopt);
      if (s.ok() && vr != nullptr)
        s = storage::set_violation_state(*txn, vr->id, ViolationState::kEnforced);
      if (s.ok() && vr != nullptr) vr->state = ViolationState::kEnforced;
      if (s.ok()) s = record(*txn, EventKind::kActionSucceeded, a.token_id, d, now, vr);
    } else {
      bool final = attempt >= kMaxAttempts;
      std::optional<Timestamp> retry;
      if (!final) retry = now + std::max(backoff(attempt), wait.value_or(Duration(0)));
      w.field("error", error).field("final", final).field("retry_at", retry).end_object();
      s = storage::finish_action(*txn, a.id, final ? ActionState::kFailed : ActionState::kPlanned,
                                 now, error, retry);
      if (s.ok() && final && vr != nullptr)
        s = storage::set_violation_state(*txn, vr->id, ViolationState::kFailed);
      if (s.ok() && final && vr != nullptr) vr->state = ViolationState::kFailed;
      if (s.ok()) s = record(*txn, EventKind::kActionFailed, a.token_id, d, now, vr);
      if (retry) next_due_ = std::min(next_due_, *retry);
    }
    if (s.ok()) s = txn->commit();
    if (!s.ok()) {
      log_.error("cannot record an action's outcome; the next poll reconciles it",
                 {{"cluster", cluster_.name}, {"action_id", a.id}, {"error", s.error().message}});
      loaded_ = false;
      continue;
    }
    count_action(a.policy, a.action,
                 error.empty()             ? "succeeded"
                 : attempt >= kMaxAttempts ? "failed"
                                           : "retry");
    if (error.empty()) {
      ++report.succeeded;
      log_.warn(a.action == "revoke" ? "token revoked" : "token restricted",
                {{"cluster", cluster_.name},
                 {"token_id", a.token_id},
                 {"policy", a.policy},
                 {"outcome", outcome}});
    } else {
      ++report.failed;
      log_.error(
          attempt >= kMaxAttempts ? "action failed for good" : "action failed; it will be retried",
          {{"cluster", cluster_.name},
           {"token_id", a.token_id},
           {"policy", a.policy},
           {"attempt", attempt},
           {"error", error}});
    }
    alerts_dirty_ = true;
    if (alerting()) rebuild_alerts(now);
    after_commit(true);
    if (wait) {
      // The cluster asked to wait: the actions left stay planned and run in a later cycle.
      report.retry_after = wait;
      log_.warn("the cluster asked to wait; the other actions of this cycle wait for the next one",
                {{"cluster", cluster_.name}, {"retry_after", format_duration(*wait)}});
      return;
    }
  }
}

void Enforcer::rebuild_alerts(Timestamp now) {
  alerts_.clear();
  std::erase_if(unheld_, [&](const auto& u) { return find_violation(u.first) == nullptr; });
  for (const auto& [token, vs] : open_) {
    for (const auto& v : vs) {
      if (v.state == ViolationState::kResolved) continue;
      Alert a;
      a.labels = {{"alertname", "TokenPolicyViolation"},
                  {"cluster", v.cluster},
                  {"policy", v.policy},
                  {"severity", v.severity},
                  {"token_id", v.token_id}};
      // The stored detail is our own JSON: {"reason":…,"kind":…,"token_description":…}.
      auto detail = nlohmann::json::parse(v.detail, nullptr, false);
      auto field = [&](const char* name) {
        return detail.is_object() && detail.contains(name) && detail[name].is_string()
                   ? detail[name].get<std::string>()
                   : std::string();
      };
      std::string reason = field("reason");
      std::string token_description = field("token_description");
      a.annotations["summary"] =
          "Token " + v.token_id + " on " + v.cluster + " violates policy " + v.policy;
      a.annotations["description"] = printable(reason, 500) + " (token description: \"" +
                                     printable(token_description, 200) + "\")";
      a.annotations["state"] = std::string(to_string(v.state));
      a.annotations["action"] = v.action;
      if (v.due_at) a.annotations["planned_action_at"] = format_timestamp(*v.due_at);
      a.starts_at = v.opened_at;
      alerts_.push_back(std::move(a));
      auto unheld = unheld_.find(v.id);
      if (unheld != unheld_.end() && v.state != ViolationState::kFailed &&
          v.state != ViolationState::kEnforced) {
        Alert u;
        u.labels = {{"alertname", "TokenActionDidNotHold"},
                    {"cluster", v.cluster},
                    {"policy", v.policy},
                    {"severity", "warning"},
                    {"token_id", v.token_id}};
        u.annotations["summary"] =
            "The " + v.action + " of token " + v.token_id + " on " + v.cluster +
            " succeeded but the cluster still lists the token active; it is planned again";
        u.annotations["description"] = "See `tokenwarden history --token " + v.token_id + "`.";
        u.starts_at = unheld->second;
        alerts_.push_back(std::move(u));
      }
      if (v.state == ViolationState::kFailed) {
        Alert f;
        f.labels = {{"alertname", "TokenActionFailed"},
                    {"cluster", v.cluster},
                    {"policy", v.policy},
                    {"severity", "critical"},
                    {"token_id", v.token_id}};
        f.annotations["summary"] = "The " + v.action + " of token " + v.token_id + " on " +
                                   v.cluster + " failed for good (" + std::to_string(kMaxAttempts) +
                                   " failed attempts, or it did not hold " +
                                   std::to_string(kMaxReplans) + " times)";
        f.annotations["description"] =
            "See `tokenwarden violations --cluster " + v.cluster + "` and the audit log.";
        f.starts_at = now;
        alerts_.push_back(std::move(f));
      }
    }
  }
  if (halted_) {
    Alert h;
    h.labels = {{"alertname", "TokenEnforcementHalted"},
                {"cluster", cluster_.name},
                {"severity", "critical"}};
    h.annotations["summary"] =
        "Enforcement on " + cluster_.name + " is halted by the safety limits";
    h.annotations["description"] =
        "More actions were planned than [safety] allows; none runs. Review them with "
        "`tokenwarden violations --cluster " +
        cluster_.name + "`, then release with `tokenwarden approve --cluster " + cluster_.name +
        " --all`.";
    h.starts_at = now;
    alerts_.push_back(std::move(h));
  }
  alerts_dirty_ = true;
}

}  // namespace tw::daemon
