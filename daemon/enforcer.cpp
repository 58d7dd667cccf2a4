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
#include "policy/notices.h"

namespace tw::daemon {
namespace {

// Identifies a notice in notices_sent_.
std::string notice_key(const storage::SentNotice& n) {
  return n.token_id + '\n' + n.policy + '\n' + n.expires_at + '\n' + n.threshold;
}

bool is_action_event(EventKind kind) {
  switch (kind) {
    case EventKind::kActionPlanned:
    case EventKind::kActionApproved:
    case EventKind::kActionSucceeded:
    case EventKind::kActionFailed:
    case EventKind::kActionSkipped:
      return true;
    default:
      return false;
  }
}

using policy::Violation;
using storage::ActionState;
using storage::Resolution;
using storage::ViolationState;

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

ActionKind kind_of(const storage::ActionRow& a) {
  return parse_action_kind(a.action).value_or(ActionKind::kRevoke);
}

// The storage boundary: rows <-> the planner's values.
Violation to_violation(storage::ViolationRow&& r, bool keep_detail) {
  Violation v;
  v.id = r.id;
  v.token_id = std::move(r.token_id);
  v.policy = std::move(r.policy);
  v.severity = std::move(r.severity);
  v.action = policy::parse_action(r.action).value_or(policy::Action::kAlert);
  v.state = r.state;
  v.opened_at = r.opened_at;
  v.due_at = r.due_at;
  v.released = r.released;
  if (keep_detail) v.detail = std::move(r.detail);  // only alerts read it: 42k would hold ~10 MB
  return v;
}

policy::PendingAction to_pending(const storage::ActionRow& a, Timestamp now, Duration timeout) {
  policy::PendingAction p;
  p.id = a.id;
  p.violation_id = a.violation_id;
  p.token_id = a.token_id;
  p.policy = a.policy;
  p.kind = kind_of(a);
  p.state = a.state;
  p.attempts = a.attempts;
  p.target = a.target;
  p.next_attempt_at = a.next_attempt_at;
  if (a.attempt_started_at && !attempt_abandoned(a, now, timeout))
    p.busy_until = *a.attempt_started_at + 2 * timeout + std::chrono::minutes(1) + Duration(1);
  return p;
}

// The one place an enforcement_actions row is built from the plan.
storage::ActionRow action_row(const policy::NewAction& n, const std::string& cluster,
                              Timestamp now) {
  storage::ActionRow a;
  a.violation_id = n.violation;
  a.cluster = cluster;
  a.token_id = n.token_id;
  a.policy = n.policy;
  a.action = std::string(to_string(n.kind));
  a.state = n.state;
  a.planned_at = now;
  a.target = n.target;
  if (n.state == ActionState::kSkipped) {
    a.completed_at = now;
    a.error = "monitor mode";
  }
  return a;
}

class InventoryView final : public policy::TokenView {
 public:
  explicit InventoryView(const storage::Inventory& inventory) : inventory_(inventory) {}
  const Token* listed(const std::string& id) const override {
    auto it = inventory_.find(id);
    if (it == inventory_.end() || it->second.status == TokenStatus::kRemoved) return nullptr;
    return &it->second.token;
  }
  std::size_t active_count(Timestamp now) const override {
    std::size_t n = 0;
    for (const auto& [id, k] : inventory_)
      if (is_active(k, now)) ++n;
    return n;
  }

 private:
  const storage::Inventory& inventory_;
};

// Audit details, byte for byte as recorded since the first release (the log is a hash chain).
std::string opened_detail(const Violation& v, const policy::Open& o) {
  std::string d;
  JsonWriter w(d);
  w.begin_object()
      .field("violation_id", v.id)
      .field("policy", v.policy)
      .field("severity", v.severity)
      .field("action", policy::to_string(v.action))
      .field("reason", o.reason)
      .field("action_due_at", v.due_at)
      .field("mode", policy::to_string(o.mode));
  if (o.continues) w.field("continues_violation", *o.continues);
  w.end_object();
  return d;
}

std::string skipped_detail(std::int64_t action, const Violation& v, std::string_view kind) {
  std::string d;
  JsonWriter(d)
      .begin_object()
      .field("action_id", action)
      .field("violation_id", v.id)
      .field("policy", v.policy)
      .field("action", kind)
      .field("reason", "monitor")
      .end_object();
  return d;
}

std::string planned_detail(std::int64_t action, const Violation& v, const storage::ActionRow& a) {
  std::string d;
  JsonWriter w(d);
  w.begin_object()
      .field("action_id", action)
      .field("violation_id", v.id)
      .field("policy", v.policy)
      .field("action", a.action);
  if (a.state == ActionState::kAwaitingApproval) {
    w.field("awaiting_approval", true);
  } else {
    w.field("released", v.released);
  }
  if (kind_of(a) == ActionKind::kRestrict) w.key("permissions").raw(permissions_json(a.target));
  w.end_object();
  return d;
}

std::string halted_detail(const policy::Halt& h, const EnforcementSettings& s) {
  std::string d;
  JsonWriter w(d);
  w.begin_object()
      .field("planned", h.planned)
      .field("active_tokens", h.active_tokens)
      .field("max_actions_per_cycle", s.max_actions_per_cycle)
      .field("max_actions_percent", s.max_actions_percent);
  w.key("policies").begin_object();
  for (const auto& [name, n] : h.by_policy) w.field(name, n);
  w.end_object().end_object();
  return d;
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
  settings_ = settings;
  configured_changed_ = true;
  alerts_dirty_ = true;
}

// An outside writer (an `approve`, a manual `poll`) makes the cached state stale.
Status Enforcer::refresh(storage::WriteTxn& txn) {
  auto version = storage::data_version(txn.db());
  if (!version.ok()) return version.take_error();
  if (loaded_ && *version == data_version_) return ok_status();
  TW_RETURN_IF_ERROR(load(txn));
  data_version_ = *version;
  return ok_status();
}

Status Enforcer::load(storage::WriteTxn& txn) {
  auto rows = storage::open_violations(txn.db(), cluster_.name);
  if (!rows.ok()) return rows.take_error();
  open_.clear();
  for (auto& r : *rows) {
    Violation v = to_violation(std::move(r), alerting());
    std::string id = v.token_id;
    open_[std::move(id)].push_back(std::move(v));
  }
  auto uses = storage::exemption_uses(txn.db(), cluster_.name);
  if (!uses.ok()) return uses.take_error();
  exemption_uses_.clear();
  for (const auto& [exemption, token] : *uses)
    exemption_uses_.insert(policy::exemption_use_key(exemption, token));
  auto halted = storage::cluster_halted(txn.db(), cluster_.name);
  if (!halted.ok()) return halted.take_error();
  halted_ = *halted;
  // Notices about expiries that have passed can never be due again: forgotten, in memory and on
  // disk, so neither grows with every rotation.
  TW_RETURN_IF_ERROR(storage::prune_notices(txn, cluster_.name, clock_.now()));
  auto notices = storage::load_notices(txn.db(), cluster_.name);
  if (!notices.ok()) return notices.take_error();
  notices_sent_.clear();
  for (const auto& n : *notices) notices_sent_.insert(notice_key(n));
  loaded_ = true;
  counts_dirty_ = true;
  evaluated_once_ = false;  // the cached verdict times belong to the old state
  alerts_dirty_ = true;
  return ok_status();
}

Violation* Enforcer::find_violation(const std::string& token_id, std::int64_t id) {
  auto it = open_.find(token_id);
  if (it == open_.end()) return nullptr;
  for (auto& v : it->second) {
    if (v.id == id) return &v;
  }
  return nullptr;
}

Violation* Enforcer::find_violation(std::int64_t id) {
  for (auto& [token, vs] : open_) {
    for (auto& v : vs) {
      if (v.id == id) return &v;
    }
  }
  return nullptr;
}

Status Enforcer::record(storage::WriteTxn& txn, EventKind kind, const std::string& token_id,
                        std::string detail, Timestamp now, const Violation* v) {
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
    if (const Ownership* o = ownership_of(token_id)) {
      c.owner = o->owner;
      c.team = o->team;
      c.contact = o->contact;
    }
    outbox_.push_back(std::move(c));
  }
  if (fence_ != nullptr && is_action_event(kind) && detail.size() >= 2 && detail.back() == '}') {
    // [ha]: every action event carries the term it happened in.
    detail.pop_back();
    if (detail.size() > 1) detail += ',';
    detail += "\"term\":" + std::to_string(fence_->term()) + "}";
  }
  auto seq = txn.append({kind, cluster_.name, token_id, std::move(detail)}, now);
  if (!seq.ok()) return seq.take_error();
  return ok_status();
}

void Enforcer::remember_clock(const std::string& id, Timestamp next) {
  if (next == Timestamp::max()) return;
  clock_heap_.emplace_back(next, id);
  std::push_heap(clock_heap_.begin(), clock_heap_.end(), std::greater<>());
}

struct Enforcer::Judged {
  bool full = false;
  std::vector<std::string> ids;  // incremental: the tokens to judge again
  std::vector<policy::Subject> subjects;
  std::vector<const std::string*> absent;  // judged ids that are not (or no longer) listed
  policy::Evaluation eval;
};

Status Enforcer::on_poll(storage::WriteTxn& txn, const storage::Inventory& inventory,
                         const storage::PollSummary& poll, Timestamp now,
                         EnforcementReport& report) {
  if (!policies_) return ok_status();
  outbox_.clear();
  unheld_pending_.clear();
  list_started_at_ = poll.list_started_at;
  TW_RETURN_IF_ERROR(refresh(txn));
  if (owners_ != nullptr && owners_->changed()) alerts_dirty_ = true;  // alerts carry owners
  Judged judged;
  if (!judge(inventory, poll, now, judged)) {
    // Nothing can have changed, but a standby that now leads issues the notices it held back.
    if (notices_held_ && (fence_ == nullptr || fence_->leading())) {
      TW_RETURN_IF_ERROR(send_notices(txn, inventory, now));
      if (alerts_dirty_ && alerting()) rebuild_alerts(now);
    }
    return ok_status();
  }
  report.evaluated = !judged.subjects.empty() || !judged.absent.empty() || judged.full;
  TW_RETURN_IF_ERROR(apply_verdicts(txn, inventory, poll, judged, now, report));
  TW_RETURN_IF_ERROR(apply_actions(txn, inventory, now, report));
  TW_RETURN_IF_ERROR(send_notices(txn, inventory, now));
  if (alerts_dirty_ && alerting()) rebuild_alerts(now);
  return ok_status();
}

Status Enforcer::send_notices(storage::WriteTxn& txn, const storage::Inventory& inventory,
                              Timestamp now) {
  // With [ha] only the leader issues notices (a standby's alerts are muted: it would record a
  // notice nobody was sent); a new leader issues those its database has not recorded.
  const bool issuing = fence_ == nullptr || fence_->leading();
  notices_held_ = false;
  std::unordered_map<std::int64_t, std::string> thresholds;
  for (const auto& [token, vs] : open_) {
    for (const auto& v : vs) {
      if (v.state == ViolationState::kResolved) continue;
      const policy::PolicySpec* p = policies_->find(v.policy);
      if (p == nullptr || p->kind != policy::Kind::kExpiresSoon || p->notify_before.empty())
        continue;
      auto k = inventory.find(token);
      if (k == inventory.end() || k->second.status == TokenStatus::kRemoved ||
          !k->second.token.expires_at)
        continue;
      const Timestamp expires_at = *k->second.token.expires_at;
      auto step = policy::notice_step(p->notify_before, expires_at, now);
      if (!step.current) continue;
      storage::SentNotice n{token, v.policy, format_timestamp(expires_at),
                            policy::threshold_label(*step.current)};
      thresholds[v.id] = n.threshold;
      std::string key = notice_key(n);
      if (notices_sent_.contains(key)) continue;
      if (!issuing) {
        notices_held_ = true;
        continue;
      }
      TW_RETURN_IF_ERROR(send_notice(txn, v, n, expires_at, now));
      notices_sent_.insert(key);
      notices_pending_.push_back(std::move(key));
    }
  }
  if (thresholds != thresholds_) {
    thresholds_ = std::move(thresholds);
    alerts_dirty_ = true;
  }
  return ok_status();
}

// One notice: the notice_sent event and its expiry_notices row, and the webhook's message.
Status Enforcer::send_notice(storage::WriteTxn& txn, const Violation& v,
                             const storage::SentNotice& n, Timestamp expires_at, Timestamp now) {
  const Ownership* o = ownership_of(n.token_id);
  if (o == nullptr) o = &kNoOwner;
  std::string detail;
  JsonWriter w(detail);
  w.begin_object()
      .field("policy", n.policy)
      .field("threshold", n.threshold)
      .field("expires_at", expires_at)
      .field("remaining", format_duration(std::chrono::floor<std::chrono::seconds>(
                              std::max(expires_at - now, Duration(0)))));
  w.field_or_null("owner", o->owner).field_or_null("team", o->team);
  w.field_or_null("contact", o->contact);
  w.end_object();
  auto seq = storage::record_notice(txn, cluster_.name, n, detail, now);
  if (!seq.ok()) return seq.take_error();
  if (alerting()) {
    StateChange c;
    c.event = std::string(to_string(EventKind::kNoticeSent));
    c.cluster = cluster_.name;
    c.token_id = n.token_id;
    c.policy = v.policy;
    c.severity = v.severity;
    c.state = std::string(to_string(v.state));
    c.violation_id = v.id;
    c.at = now;
    c.detail = std::move(detail);
    c.owner = o->owner;
    c.team = o->team;
    c.contact = o->contact;
    outbox_.push_back(std::move(c));
  }
  return ok_status();
}

// Which tokens to judge again: all of them, or only those that changed or whose time came.
// Superseded times stay in the heap (judging a token again is harmless); a full evaluation
// rebuilds it before it grows past twice the inventory. False: nothing to do this cycle.
bool Enforcer::judge(const storage::Inventory& inventory, const storage::PollSummary& poll,
                     Timestamp now, Judged& out) {
  out.full = !evaluated_once_ || configured_changed_ || poll.inventory_reloaded ||
             poll.changed_tokens.size() * 10 > inventory.size() ||
             clock_heap_.size() > 2 * inventory.size() + 64;
  if (!out.full) {
    out.ids = poll.changed_tokens;
    while (!clock_heap_.empty() && clock_heap_.front().first <= now) {
      std::pop_heap(clock_heap_.begin(), clock_heap_.end(), std::greater<>());
      out.ids.push_back(std::move(clock_heap_.back().second));
      clock_heap_.pop_back();
    }
    std::sort(out.ids.begin(), out.ids.end());
    out.ids.erase(std::unique(out.ids.begin(), out.ids.end()), out.ids.end());
    if (out.ids.empty() && now < next_due_) return false;
  }
  configured_changed_ = false;
  if (out.full) {
    out.subjects.reserve(inventory.size());
    for (const auto& [id, k] : inventory) {
      if (k.status != TokenStatus::kRemoved)
        out.subjects.push_back({&k.token, k.first_seen, ownership_of(id)});
    }
    // In id order, so that the violations a first poll opens go into the indexes keyed by token
    // id at one edge (as the incremental path's sorted ids do).
    std::sort(out.subjects.begin(), out.subjects.end(),
              [](const policy::Subject& a, const policy::Subject& b) {
                return a.token->id < b.token->id;
              });
  } else {
    for (const auto& id : out.ids) {
      auto k = inventory.find(id);
      if (k != inventory.end() && k->second.status != TokenStatus::kRemoved) {
        out.subjects.push_back({&k->second.token, k->second.first_seen, ownership_of(id)});
      } else {
        out.absent.push_back(&id);
      }
    }
  }
  out.eval = policy::evaluate(*policies_, info_, out.subjects, now);
  if (out.full) clock_heap_.clear();
  for (std::size_t i = 0; i < out.subjects.size(); ++i)
    remember_clock(out.subjects[i].token->id, out.eval.subject_next_change[i]);
  evaluated_once_ = true;
  return true;
}

// One poll's writes: its transaction, time and report, and the actions it loaded.
struct Enforcer::Cycle {
  storage::WriteTxn& txn;
  Timestamp now;
  EnforcementReport& report;
  std::vector<storage::ActionRow> pending;                    // planned or awaiting, by id
  std::unordered_map<std::size_t, storage::ActionRow> fresh;  // inserted, by plan step
  storage::ActionRow* pending_action(std::int64_t id) {
    for (auto& a : pending) {
      if (a.id == id) return &a;
    }
    return nullptr;
  }
};

Status Enforcer::apply_verdicts(storage::WriteTxn& txn, const storage::Inventory& inventory,
                                const storage::PollSummary& poll, const Judged& judged,
                                Timestamp now, EnforcementReport& report) {
  // Findings are ordered by subject: one verdict per judged token, then the tokens gone.
  std::vector<policy::Verdict> verdicts;
  verdicts.reserve(judged.subjects.size());
  std::size_t fi = 0;
  for (std::size_t si = 0; si < judged.subjects.size(); ++si) {
    std::size_t begin = fi;
    while (fi < judged.eval.findings.size() && judged.eval.findings[fi].subject == si) ++fi;
    verdicts.push_back({&judged.subjects[si].token->id, &judged.subjects[si],
                        std::span(judged.eval.findings).subspan(begin, fi - begin)});
  }
  std::vector<std::string> gone;  // open violations of tokens no longer listed (or removed)
  if (judged.full) {
    for (const auto& [id, vs] : open_) {
      auto k = inventory.find(id);
      if (k == inventory.end() || k->second.status == TokenStatus::kRemoved) gone.push_back(id);
    }
  } else {
    for (const auto* id : judged.absent) gone.push_back(*id);
  }
  for (const auto& id : gone) verdicts.push_back({&id, nullptr, {}});

  auto earlier = continued_violations(txn, poll, verdicts);
  if (!earlier.ok()) return earlier.take_error();
  const policy::VerdictInput in{*policies_, settings_.mode,  now,     verdicts,
                                open_,      exemption_uses_, *earlier};
  Cycle cycle{txn, now, report, {}, {}};
  for (const auto& step : policy::plan_verdicts(in)) {
    TW_RETURN_IF_ERROR(std::visit([&](const auto& s) { return apply(cycle, s); }, step));
  }
  return ok_status();
}

// For tokens listed again after their removal: the violations a new one would continue.
Result<std::vector<policy::Earlier>> Enforcer::continued_violations(
    storage::WriteTxn& txn, const storage::PollSummary& poll,
    std::span<const policy::Verdict> verdicts) {
  std::vector<policy::Earlier> out;
  if (poll.reappeared.empty()) return out;
  std::unordered_set<std::string_view> reappeared(poll.reappeared.begin(), poll.reappeared.end());
  for (const auto& verdict : verdicts) {
    if (verdict.subject == nullptr || !reappeared.contains(*verdict.token_id)) continue;
    for (const auto& f : verdict.findings) {
      if (f.exempt()) continue;
      const std::string& policy = policies_->specs()[f.policy].name;
      auto e = storage::last_violation_resolved_as_removed(txn.db(), cluster_.name,
                                                           *verdict.token_id, policy);
      if (!e.ok()) return e.take_error();
      if (*e) out.push_back({*verdict.token_id, policy, (*e)->id, (*e)->opened_at});
    }
  }
  return out;
}

Status Enforcer::apply(Cycle& c, const policy::Resolve& s) {
  Violation* v = find_violation(s.token_id, s.violation);
  if (v == nullptr) return ok_status();
  TW_RETURN_IF_ERROR(storage::resolve_violation(c.txn, v->id, s.resolution, c.now));
  v->state = ViolationState::kResolved;
  std::string d;
  JsonWriter(d)
      .begin_object()
      .field("violation_id", v->id)
      .field("policy", v->policy)
      .field("resolution", to_string(s.resolution))
      .field("why", s.why)
      .end_object();
  TW_RETURN_IF_ERROR(
      record(c.txn, EventKind::kViolationResolved, v->token_id, std::move(d), c.now, v));
  log_.info("violation resolved", {{"cluster", cluster_.name},
                                   {"token_id", v->token_id},
                                   {"policy", v->policy},
                                   {"resolution", to_string(s.resolution)}});
  ++c.report.resolved;
  alerts_dirty_ = true;
  counts_dirty_ = true;
  auto& vs = open_[s.token_id];
  std::erase_if(vs, [&](const Violation& x) { return x.id == s.violation; });
  if (vs.empty()) open_.erase(s.token_id);
  return ok_status();
}

Status Enforcer::apply(Cycle& c, const policy::Open& s) {
  const Token& token = *s.subject->token;
  const policy::PolicySpec& p = policies_->specs()[s.policy];
  storage::ViolationRow row;
  row.cluster = cluster_.name;
  row.token_id = token.id;
  row.policy = p.name;
  row.severity = std::string(policy::to_string(p.severity));
  row.action = std::string(policy::to_string(p.action));
  row.state = ViolationState::kOpen;
  row.opened_at = s.opened_at;
  row.due_at = s.due_at;
  JsonWriter(row.detail)
      .begin_object()
      .field("reason", s.reason)
      .field("kind", policy::to_string(p.kind))
      .field("token_description", token.description)
      .end_object();
  auto id = storage::insert_violation(c.txn, row);
  if (!id.ok()) return id.take_error();
  row.id = *id;
  Violation v = to_violation(std::move(row), alerting());
  TW_RETURN_IF_ERROR(
      record(c.txn, EventKind::kViolationOpened, token.id, opened_detail(v, s), c.now, &v));
  log_.warn("violation opened", {{"cluster", cluster_.name},
                                 {"token_id", token.id},
                                 {"policy", p.name},
                                 {"severity", v.severity},
                                 {"reason", s.reason}});
  ++c.report.opened;
  alerts_dirty_ = true;
  counts_dirty_ = true;
  if (metrics_ != nullptr) metrics_->violation_opened(cluster_.name, p.name);
  open_[token.id].push_back(std::move(v));
  return ok_status();
}

Status Enforcer::apply(Cycle& c, const policy::ExemptionUse& s) {
  auto fresh = storage::note_exemption_use(c.txn, s.key, cluster_.name, s.token_id, c.now);
  if (!fresh.ok()) return fresh.take_error();
  exemption_uses_.insert(policy::exemption_use_key(s.key, s.token_id));
  if (!*fresh) return ok_status();
  const auto& e = policies_->exemptions()[s.exemption];
  std::string d;
  JsonWriter(d)
      .begin_object()
      .field("exemption", s.key)
      .field("policy", policies_->specs()[s.policy].name)
      .field("exemption_policy", e.policy)
      .field("reason", e.reason)
      .field("expires", e.expires)
      .end_object();
  TW_RETURN_IF_ERROR(
      record(c.txn, EventKind::kExemptionApplied, s.token_id, std::move(d), c.now, nullptr));
  ++c.report.exemptions_applied;
  return ok_status();
}

Status Enforcer::apply_actions(storage::WriteTxn& txn, const storage::Inventory& inventory,
                               Timestamp now, EnforcementReport& report) {
  Cycle c{txn, now, report, {}, {}};
  auto pending = storage::pending_actions(txn.db(), cluster_.name);
  if (!pending.ok()) return pending.take_error();
  c.pending = std::move(*pending);
  std::vector<policy::PendingAction> actions;
  actions.reserve(c.pending.size());
  for (const auto& a : c.pending) actions.push_back(to_pending(a, now, cluster_.source.timeout));
  std::unordered_map<std::int64_t, policy::Held> held;  // of the violations enforced
  for (const auto& [token, vs] : open_) {
    for (const auto& v : vs) {
      if (v.state != ViolationState::kEnforced) continue;
      auto h = storage::succeeded_actions(txn.db(), v.id);
      if (!h.ok()) return h.take_error();
      held[v.id] = {h->count, h->last_id, h->last_completed_at};
    }
  }
  const InventoryView tokens(inventory);
  const policy::ActionInput in{*policies_, settings_, now,    list_started_at_, open_,
                               actions,    held,      tokens, halted_};
  policy::ActionPlan plan = policy::plan_actions(in);
  for (std::size_t i = 0; i < plan.steps.size(); ++i) {
    TW_RETURN_IF_ERROR(std::visit([&](const auto& s) { return apply(c, s, i); }, plan.steps[i]));
  }
  next_due_ = plan.next_due;
  for (const auto& run : plan.run) {
    storage::ActionRow* a = run.pending != 0 ? c.pending_action(run.pending) : nullptr;
    if (run.pending == 0) a = &c.fresh.at(run.step);
    if (a != nullptr) report.to_run.push_back({std::move(*a)});
  }
  return ok_status();
}

Status Enforcer::apply(Cycle& c, const policy::Settle& s, std::size_t) {
  const storage::ActionRow* a = c.pending_action(s.action);
  if (a == nullptr) return ok_status();
  const ActionState state = s.done ? ActionState::kSucceeded : ActionState::kSkipped;
  TW_RETURN_IF_ERROR(storage::finish_action(c.txn, a->id, state, c.now,
                                            s.done ? "" : std::string(s.why), std::nullopt));
  std::string d;
  JsonWriter(d)
      .begin_object()
      .field("action_id", a->id)
      .field("violation_id", a->violation_id)
      .field("policy", a->policy)
      .field("action", a->action)
      .field(s.done ? "outcome" : "reason", s.done ? "reconciled" : "resolved")
      .field("why", s.why)
      .end_object();
  TW_RETURN_IF_ERROR(record(c.txn, s.done ? EventKind::kActionSucceeded : EventKind::kActionSkipped,
                            a->token_id, std::move(d), c.now, nullptr));
  if (s.done) {
    ++c.report.reconciled;
  } else {
    ++c.report.skipped;
  }
  count_action(a->policy, a->action, s.done ? "succeeded" : "skipped");
  return ok_status();
}

Status Enforcer::apply(Cycle& c, const policy::DidNotHold& s, std::size_t) {
  Violation* v = find_violation(s.token_id, s.violation);
  if (v == nullptr) return ok_status();
  if (s.final) {
    TW_RETURN_IF_ERROR(storage::set_violation_state(c.txn, v->id, ViolationState::kFailed));
    v->state = ViolationState::kFailed;
  } else {
    TW_RETURN_IF_ERROR(storage::reopen_violation(c.txn, v->id));
    v->state = ViolationState::kOpen;
    v->released = false;
  }
  const std::string action(policy::to_string(v->action));
  const std::string error =
      "the " + action + " succeeded but a later poll still lists the token active and in violation";
  std::string d;
  JsonWriter(d)
      .begin_object()
      .field("action_id", s.held.last_id)
      .field("violation_id", v->id)
      .field("policy", v->policy)
      .field("action", action)
      .field("outcome", "did_not_hold")
      .field("error", error)
      .field("actions_succeeded", s.held.count)
      .field("final", s.final)
      .end_object();
  TW_RETURN_IF_ERROR(record(c.txn, EventKind::kActionFailed, v->token_id, std::move(d), c.now, v));
  log_.error(s.final ? "an action did not hold again; giving up on this violation"
                     : "an action did not hold; planning it again",
             {{"cluster", cluster_.name},
              {"token_id", v->token_id},
              {"policy", v->policy},
              {"action", action},
              {"actions_succeeded", s.held.count}});
  count_action(v->policy, action, "did_not_hold");
  ++c.report.did_not_hold;
  unheld_pending_.push_back(v->id);
  alerts_dirty_ = true;
  counts_dirty_ = true;
  return ok_status();
}

Status Enforcer::apply(Cycle& c, const policy::NewAction& s, std::size_t step) {
  Violation* v = find_violation(s.token_id, s.violation);
  if (v == nullptr) return ok_status();
  storage::ActionRow a = action_row(s, cluster_.name, c.now);
  auto id = storage::insert_action(c.txn, a);
  if (!id.ok()) return id.take_error();
  a.id = *id;
  const ViolationState next = s.state == ActionState::kSkipped ? ViolationState::kSkipped
                              : s.state == ActionState::kAwaitingApproval
                                  ? ViolationState::kAwaitingApproval
                                  : ViolationState::kEnforcing;
  TW_RETURN_IF_ERROR(storage::set_violation_state(c.txn, v->id, next));
  v->state = next;
  if (s.state == ActionState::kSkipped) {
    TW_RETURN_IF_ERROR(record(c.txn, EventKind::kActionSkipped, v->token_id,
                              skipped_detail(a.id, *v, a.action), c.now, v));
    log_.info("action skipped: monitor mode", {{"cluster", cluster_.name},
                                               {"token_id", v->token_id},
                                               {"policy", v->policy},
                                               {"action", a.action}});
    ++c.report.skipped;
    count_action(v->policy, a.action, "skipped");
    return ok_status();
  }
  TW_RETURN_IF_ERROR(
      record(c.txn, EventKind::kActionPlanned, v->token_id, planned_detail(a.id, *v, a), c.now, v));
  if (s.state == ActionState::kAwaitingApproval) {
    log_.warn("action awaits approval", {{"cluster", cluster_.name},
                                         {"token_id", v->token_id},
                                         {"policy", v->policy},
                                         {"action", a.action},
                                         {"action_id", a.id}});
    ++c.report.awaiting_approval;
    alerts_dirty_ = true;
    return ok_status();
  }
  ++c.report.planned;
  c.fresh.emplace(step, std::move(a));
  return ok_status();
}

Status Enforcer::apply(Cycle& c, const policy::Halt& s, std::size_t) {
  for (const auto& [id, token] : s.newly_halted) {
    TW_RETURN_IF_ERROR(storage::set_violation_state(c.txn, id, ViolationState::kHalted));
    if (Violation* v = find_violation(token, id)) v->state = ViolationState::kHalted;
  }
  if (s.over) c.report.halted = static_cast<int>(s.planned);
  if (!s.set_halted) return ok_status();
  halted_ = *s.set_halted;
  alerts_dirty_ = true;
  counts_dirty_ = true;
  if (!halted_) {
    TW_RETURN_IF_ERROR(storage::set_cluster_halted(c.txn, cluster_.name, false, c.now, "{}"));
    log_.info("enforcement resumed: the plan is within the safety limits",
              {{"cluster", cluster_.name}});
    return ok_status();
  }
  const std::string d = halted_detail(s, settings_);
  TW_RETURN_IF_ERROR(storage::set_cluster_halted(c.txn, cluster_.name, true, c.now, d));
  TW_RETURN_IF_ERROR(record(c.txn, EventKind::kEnforcementHalted, {}, d, c.now, nullptr));
  log_.error(
      "enforcement halted: the cycle planned more actions than the safety limits allow; none "
      "runs",
      {{"cluster", cluster_.name},
       {"planned", s.planned},
       {"active_tokens", s.active_tokens},
       {"max_actions_per_cycle", settings_.max_actions_per_cycle},
       {"max_actions_percent", settings_.max_actions_percent}});
  return ok_status();
}

// Monitor mode came after the action was planned (or approved): it must not run now.
Status Enforcer::apply(Cycle& c, const policy::SkipPending& s, std::size_t) {
  const storage::ActionRow* a = c.pending_action(s.action);
  Violation* v = find_violation(s.token_id, s.violation);
  if (a == nullptr || v == nullptr) return ok_status();
  TW_RETURN_IF_ERROR(storage::finish_action(c.txn, a->id, ActionState::kSkipped, c.now,
                                            "monitor mode", std::nullopt));
  TW_RETURN_IF_ERROR(storage::set_violation_state(c.txn, v->id, ViolationState::kSkipped));
  v->state = ViolationState::kSkipped;
  TW_RETURN_IF_ERROR(record(c.txn, EventKind::kActionSkipped, a->token_id,
                            skipped_detail(a->id, *v, a->action), c.now, v));
  ++c.report.skipped;
  count_action(a->policy, a->action, "skipped");
  return ok_status();
}

Status Enforcer::apply(Cycle& c, const policy::Retarget& s, std::size_t) {
  storage::ActionRow* a = c.pending_action(s.action);
  if (a == nullptr) return ok_status();
  TW_RETURN_IF_ERROR(storage::set_action_target(c.txn, a->id, s.target));
  a->target = s.target;
  return ok_status();
}

void Enforcer::count_action(const std::string& policy, std::string_view action,
                            std::string_view result) {
  if (metrics_ != nullptr) metrics_->action(cluster_.name, policy, std::string(action), result);
}

void Enforcer::publish_metrics() {
  if (metrics_ == nullptr || !counts_dirty_) return;
  // By the token's raw team: Metrics maps teams to their bounded labels.
  std::map<metrics::OpenKey, std::int64_t> open;
  for (const auto& [token, vs] : open_) {
    const Ownership* owner = vs.empty() ? nullptr : ownership_of(token);
    for (const auto& v : vs)
      ++open[{v.policy, v.severity, owner != nullptr ? owner->team : std::string()}];
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
    for (const auto& key : notices_pending_) notices_sent_.erase(key);
    notices_pending_.clear();
    return;
  }
  notices_pending_.clear();
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

// [ha]: the token could not be read first; another instance may have acted on it, so nothing
// is sent (when in doubt, do not act).
ActionResult unread(const Error& e) {
  return {{}, "not sent: the token could not be read first: " + e.message, {}};
}

// [ha]: leadership could not be proven for the request's whole deadline.
ActionResult not_sent() {
  return {{},
          "not sent: this instance could not prove it still leads for the request's whole "
          "deadline (docs/high-availability.md)",
          {}};
}

}  // namespace

// A revocation counts only when a read-back shows it: the answer to the request is not believed.
// A retry reads first, so an earlier attempt that took effect (its answer or read-back lost) is
// not sent again; a request that failed is read back too, since it may have taken effect.
ActionResult run_revoke(influx::ClusterClient& client, const storage::ActionRow& a,
                        const influx::CallContext& ctx, ActionGuard* guard) {
  if (a.attempts > 0 || (guard != nullptr && guard->read_first)) {
    auto before = client.get_token(a.token_id, ctx);
    if (!before.ok() && before.error().retry_after) return told_to_wait(before.error());
    if (!before.ok() && guard != nullptr && guard->read_first) return unread(before.error());
    if (before.ok() && !before->has_value()) return {"gone", {}, {}};
    // Revoked before this attempt sent anything: by an earlier attempt whose answer was lost, or
    // by someone else — nothing acknowledged it to us, so it is not recorded as our revocation.
    if (before.ok() && (*before)->revoked_at) return {"already_revoked", {}, {}};
  }
  if (guard != nullptr && guard->may_send) {
    if (!guard->may_send()) return not_sent();
    guard->sent = true;
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
                          const influx::CallContext& ctx, ActionGuard* guard) {
  // An earlier attempt (or, with [ha], another instance) may have taken effect: nothing is sent
  // again then.
  if (a.attempts > 0 || (guard != nullptr && guard->read_first)) {
    auto before = client.get_token(a.token_id, ctx);
    if (!before.ok() && before.error().retry_after) return told_to_wait(before.error());
    if (!before.ok() && guard != nullptr && guard->read_first) return unread(before.error());
    if (before.ok() && before->has_value() && !(*before)->revoked_at &&
        same_permissions((*before)->permissions, a.target)) {
      return {"restricted", {}, {}};
    }
  }
  if (guard != nullptr && guard->may_send) {
    if (!guard->may_send()) return not_sent();
    guard->sent = true;
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
  if (!same_permissions(t.permissions, a.target)) {
    return {{},
            "the cluster accepted the update but the token's permissions are " +
                printable(permissions_json(t.permissions), 300) + ", not " +
                printable(permissions_json(a.target), 300),
            {}};
  }
  return {"restricted", {}, {}};
}

// Marks the attempt in the database before anything is sent: kTaken if someone else has it,
// kNoDatabase if the database cannot be written (nothing more runs this cycle).
Enforcer::Claim Enforcer::claim(storage::AuditStore& store, const storage::ActionRow& a) {
  const Timestamp now = clock_.now();
  auto txn = store.begin();
  if (!txn.ok()) {
    log_.error("cannot claim an action",
               {{"cluster", cluster_.name}, {"error", txn.error().message}});
    return Claim::kNoDatabase;
  }
  auto claimed = storage::claim_action(*txn, a.id, now, static_cast<std::int64_t>(::getpid()),
                                       a.attempt_started_at);
  return claimed.ok() && *claimed && txn->commit().ok() ? Claim::kOurs : Claim::kTaken;
}

// [audit] require_export: while an export sink lags too long no request is sent. The actions
// stay planned in the database and the next poll evaluates again (next_due_), so they run in the
// first cycle after the export caught up. The hold is logged and recorded once.
bool Enforcer::held_for_export(storage::AuditStore& store, EnforcementReport& report) {
  if (!export_gate_ || report.to_run.empty()) return false;
  const Timestamp now = clock_.now();
  const auto why = export_gate_(now);
  if (!why) {
    if (export_held_) {
      log_.info("the audit export caught up; enforcement actions run again",
                {{"cluster", cluster_.name}});
    }
    export_held_ = false;
    return false;
  }
  next_due_ = Timestamp::min();
  const auto n = static_cast<std::int64_t>(report.to_run.size());
  report.export_held = static_cast<int>(n);
  if (export_held_) return true;
  log_.error("enforcement actions held back until the audit export catches up: " + *why,
             {{"cluster", cluster_.name}, {"actions", n}});
  std::map<std::string, std::int64_t> by_policy;
  for (const auto& r : report.to_run) ++by_policy[r.action.policy];
  std::string d;
  JsonWriter w(d);
  w.begin_object().field("reason", "export_lagging").field("why", *why).field("planned", n);
  w.key("policies").begin_object();
  for (const auto& [name, k] : by_policy) w.field(name, k);
  w.end_object().end_object();
  auto txn = store.begin();
  Status s = txn.ok() ? record(*txn, EventKind::kEnforcementHalted, {}, d, now, nullptr)
                      : Status(txn.take_error());
  if (s.ok()) s = txn->commit();
  if (!s.ok()) {
    log_.error("cannot record the hold of enforcement actions",
               {{"cluster", cluster_.name}, {"error", s.error().message}});
    return true;  // recorded at the next attempt
  }
  export_held_ = true;
  return true;
}

// [ha]: a standby (or a leader whose takeover reconciliation is not done) runs no action; the
// planned ones stay planned and are evaluated again at the next poll.
bool Enforcer::held_for_leadership(influx::ClusterClient& client, const influx::CallContext& ctx,
                                   EnforcementReport& report) {
  if (fence_ == nullptr) return false;
  if (!fence_->leading()) {
    if (!report.to_run.empty()) {
      next_due_ = Timestamp::min();
      if (!standby_noted_) {
        log_.info("standby: planned actions are left to the leader",
                  {{"cluster", cluster_.name},
                   {"actions", static_cast<std::int64_t>(report.to_run.size())}});
        standby_noted_ = true;
      }
    }
    return true;
  }
  standby_noted_ = false;
  if (!fence_->reconcile(cluster_.name, client, ctx)) {
    next_due_ = Timestamp::min();
    return true;
  }
  return false;
}

void Enforcer::execute(storage::AuditStore& store, influx::ClusterClient& client,
                       const influx::CallContext& ctx, EnforcementReport& report) {
  if (held_for_leadership(client, ctx, report)) return;
  if (held_for_export(store, report)) return;
  for (auto& run : report.to_run) {
    // Shutdown: no new action starts; planned ones stay durable and run after the restart.
    if (ctx.cancel != nullptr && ctx.cancel->load()) return;
    const storage::ActionRow& a = run.action;
    ActionResult result;
    bool claimed_it = false;
    if (!run_fenced(store, client, ctx, a, result, claimed_it)) return;
    if (!claimed_it) continue;
    if (!result.error.empty() && ctx.cancel != nullptr && ctx.cancel->load()) {
      // Shutdown: the attempt stays claimed and is reconciled against the next poll.
      log_.info("action interrupted by shutdown",
                {{"cluster", cluster_.name}, {"action_id", a.id}});
      return;
    }
    if (!record_outcome(store, a, result, report)) continue;
    if (!result.error.empty() && result.retry_after) {
      // The cluster asked to wait: the actions left stay planned and run in a later cycle.
      report.retry_after = result.retry_after;
      log_.warn(
          "the cluster asked to wait; the other actions of this cycle wait for the next one",
          {{"cluster", cluster_.name}, {"retry_after", format_duration(*result.retry_after)}});
      return;
    }
  }
}

// One action: its intent ([ha]), the claim, the attempt with its read-back. False: nothing more
// runs this cycle (no database, or leadership could not be proven). `claimed_it` false: someone
// else has the action.
bool Enforcer::run_fenced(storage::AuditStore& store, influx::ClusterClient& client,
                          const influx::CallContext& ctx, const storage::ActionRow& a,
                          ActionResult& result, bool& claimed_it) {
  // The request that changes the token must end inside the lease: one request's timeout, two
  // for a source whose revocation is a lookup and then a DELETE (influxdb3).
  const bool revoke_kind = kind_of(a) == ActionKind::kRevoke;
  const Duration deadline =
      cluster_.source.timeout * (revoke_kind && client.revoke_deletes() ? 2 : 1);
  std::optional<ActionTicket> ticket;
  if (fence_ != nullptr) {
    auto t = fence_->begin(cluster_.name, a, deadline);
    if (!t.ok()) {
      log_.warn("action not started: " + t.error().message,
                {{"cluster", cluster_.name}, {"token_id", a.token_id}, {"action_id", a.id}});
      next_due_ = Timestamp::min();
      return false;
    }
    ticket = std::move(*t);
  }
  const Claim claimed = claim(store, a);
  if (claimed != Claim::kOurs) {
    // The intent is closed at once: nothing was sent.
    if (ticket) {
      fence_->finish(*ticket, cluster_.name, a, "retry", "",
                     "not started: the action could not be claimed in the database");
    }
    return claimed == Claim::kTaken;
  }
  claimed_it = true;
  const bool revoke = kind_of(a) == ActionKind::kRevoke;
  log_.warn(revoke ? "revoking token" : "restricting token", {{"cluster", cluster_.name},
                                                              {"token_id", a.token_id},
                                                              {"policy", a.policy},
                                                              {"action_id", a.id},
                                                              {"attempt", a.attempts + 1}});
  ActionGuard guard;
  if (ticket) {
    guard.read_first = true;
    guard.may_send = [&] { return fence_->may_send(*ticket, deadline); };
  }
  ActionGuard* g = ticket ? &guard : nullptr;
  result = revoke ? run_revoke(client, a, ctx, g) : run_restrict(client, a, ctx, g);
  if (ticket && !guard.sent && result.error.empty() && !fence_->holds(*ticket)) {
    // Leadership was lost during the attempt (a pause) and this instance sent nothing: what its
    // read found is no outcome of its term. The new leader settles the action.
    result = {{},
              "not recorded as done: leadership was lost during the attempt and nothing was sent "
              "(the read found \"" +
                  result.outcome + "\")",
              {}};
  }
  if (ticket) {
    const bool ok = result.error.empty();
    const bool final = !ok && a.attempts + 1 >= kMaxAttempts;
    fence_->finish(*ticket, cluster_.name, a,
                   ok      ? "succeeded"
                   : final ? "failed"
                           : "retry",
                   result.outcome, result.error);
  }
  return true;
}

// Records an attempt's outcome in a transaction of its own; false if it could not be recorded
// (the next poll reconciles it).
bool Enforcer::record_outcome(storage::AuditStore& store, const storage::ActionRow& a,
                              const ActionResult& result, EnforcementReport& report) {
  const int attempt = a.attempts + 1;
  const bool ok = result.error.empty();
  const bool final = !ok && attempt >= kMaxAttempts;
  const Timestamp now = clock_.now();
  auto txn = store.begin();
  if (!txn.ok()) {
    log_.error("cannot record an action's outcome; the next poll reconciles it",
               {{"cluster", cluster_.name}, {"action_id", a.id}, {"error", txn.error().message}});
    return false;
  }
  std::optional<Timestamp> retry;
  if (!ok && !final)
    retry = now + std::max(backoff(attempt), result.retry_after.value_or(Duration(0)));
  Status s = write_outcome(*txn, a, result, retry, now);
  if (s.ok()) s = txn->commit();
  if (retry) next_due_ = std::min(next_due_, *retry);
  if (!s.ok()) {
    log_.error("cannot record an action's outcome; the next poll reconciles it",
               {{"cluster", cluster_.name}, {"action_id", a.id}, {"error", s.error().message}});
    loaded_ = false;
    return false;
  }
  count_action(a.policy, a.action, ok ? "succeeded" : final ? "failed" : "retry");
  if (ok) {
    ++report.succeeded;
    log_.warn(kind_of(a) == ActionKind::kRevoke ? "token revoked" : "token restricted",
              {{"cluster", cluster_.name},
               {"token_id", a.token_id},
               {"policy", a.policy},
               {"outcome", result.outcome}});
  } else {
    ++report.failed;
    log_.error(final ? "action failed for good" : "action failed; it will be retried",
               {{"cluster", cluster_.name},
                {"token_id", a.token_id},
                {"policy", a.policy},
                {"attempt", attempt},
                {"error", result.error}});
  }
  alerts_dirty_ = true;
  if (alerting()) rebuild_alerts(now);
  after_commit(true);
  return true;
}

// The action's row, its violation's state and the action_succeeded/action_failed event.
Status Enforcer::write_outcome(storage::WriteTxn& txn, const storage::ActionRow& a,
                               const ActionResult& result, std::optional<Timestamp> retry,
                               Timestamp now) {
  const int attempt = a.attempts + 1;
  const bool ok = result.error.empty();
  const bool final = !ok && attempt >= kMaxAttempts;
  Violation* v = find_violation(a.token_id, a.violation_id);
  std::string d;
  JsonWriter w(d);
  w.begin_object()
      .field("action_id", a.id)
      .field("violation_id", a.violation_id)
      .field("policy", a.policy)
      .field("action", a.action)
      .field("attempt", attempt);
  if (ok) {
    w.field("outcome", result.outcome).end_object();
  } else {
    w.field("error", result.error).field("final", final).field("retry_at", retry).end_object();
  }
  const ActionState state = ok      ? ActionState::kSucceeded
                            : final ? ActionState::kFailed
                                    : ActionState::kPlanned;
  TW_RETURN_IF_ERROR(storage::finish_action(txn, a.id, state, now, ok ? "" : result.error, retry));
  if (v != nullptr && (ok || final)) {
    const ViolationState vs = ok ? ViolationState::kEnforced : ViolationState::kFailed;
    TW_RETURN_IF_ERROR(storage::set_violation_state(txn, v->id, vs));
    v->state = vs;
  }
  return record(txn, ok ? EventKind::kActionSucceeded : EventKind::kActionFailed, a.token_id,
                std::move(d), now, v);
}

namespace {

// One alert for `cluster`: about violation `v` (its policy and token become labels) or, with
// none, about the cluster as a whole.
Alert make_alert(const char* alertname, const std::string& severity, const std::string& cluster,
                 const policy::Violation* v, std::string summary, std::string description,
                 Timestamp starts_at) {
  Alert a;
  a.labels = {{"alertname", alertname}, {"cluster", cluster}, {"severity", severity}};
  if (v != nullptr) {
    a.labels["policy"] = v->policy;
    a.labels["token_id"] = v->token_id;
  }
  a.annotations["summary"] = std::move(summary);
  a.annotations["description"] = std::move(description);
  a.starts_at = starts_at;
  return a;
}

// TokenPolicyViolation: an open violation, with the reason its policy gave.
Alert violation_alert(const std::string& cluster, const policy::Violation& v) {
  // The stored detail is our own JSON: {"reason":…,"kind":…,"token_description":…}.
  auto detail = nlohmann::json::parse(v.detail, nullptr, false);
  auto field = [&](const char* name) {
    return detail.is_object() && detail.contains(name) && detail[name].is_string()
               ? detail[name].get<std::string>()
               : std::string();
  };
  Alert a = make_alert("TokenPolicyViolation", v.severity, cluster, &v,
                       "Token " + v.token_id + " on " + cluster + " violates policy " + v.policy,
                       printable(field("reason"), 500) + " (token description: \"" +
                           printable(field("token_description"), 200) + "\")",
                       v.opened_at);
  a.annotations["state"] = std::string(to_string(v.state));
  a.annotations["action"] = std::string(policy::to_string(v.action));
  if (v.due_at) a.annotations["planned_action_at"] = format_timestamp(*v.due_at);
  return a;
}

// TokenActionDidNotHold: the action succeeded, yet the cluster still lists the token active.
Alert unheld_alert(const std::string& cluster, const policy::Violation& v, Timestamp since) {
  return make_alert("TokenActionDidNotHold", "warning", cluster, &v,
                    "The " + std::string(policy::to_string(v.action)) + " of token " + v.token_id +
                        " on " + cluster +
                        " succeeded but the cluster still lists the token active; it is planned "
                        "again",
                    "See `tokenwarden history --token " + v.token_id + "`.", since);
}

// TokenActionFailed: the violation's action failed for good.
Alert failed_alert(const std::string& cluster, const policy::Violation& v, Timestamp now) {
  return make_alert(
      "TokenActionFailed", "critical", cluster, &v,
      "The " + std::string(policy::to_string(v.action)) + " of token " + v.token_id + " on " +
          cluster + " failed for good (" + std::to_string(Enforcer::kMaxAttempts) +
          " failed attempts, or it did not hold " + std::to_string(Enforcer::kMaxReplans) +
          " times)",
      "See `tokenwarden violations --cluster " + cluster + "` and the audit log.", now);
}

// TokenEnforcementHalted: the safety limits stopped every action on the cluster.
Alert halted_alert(const std::string& cluster, Timestamp now) {
  return make_alert("TokenEnforcementHalted", "critical", cluster, nullptr,
                    "Enforcement on " + cluster + " is halted by the safety limits",
                    "More actions were planned than [safety] allows; none runs. Review them with "
                    "`tokenwarden violations --cluster " +
                        cluster + "`, then release with `tokenwarden approve --cluster " + cluster +
                        " --all`.",
                    now);
}

}  // namespace

// Owner and team labels (omitted when empty), the [[owners]] rule's static labels (never in
// place of tokenwarden's own), and the contact annotation.
void Enforcer::address(Alert& a, const std::string& token_id) const {
  const Ownership* o = ownership_of(token_id);
  if (o == nullptr || !o->matched()) return;
  if (!o->owner.empty()) a.labels["owner"] = o->owner;
  if (!o->team.empty()) a.labels["team"] = o->team;
  if (!o->contact.empty()) a.annotations["contact"] = o->contact;
  const policy::OwnerRules* rules = owners_->rules();
  const policy::OwnerRuleSpec* rule = rules != nullptr ? rules->find(o->rule) : nullptr;
  if (rule != nullptr) {
    for (const auto& [k, value] : rule->labels) a.labels.emplace(k, value);
  }
}

void Enforcer::rebuild_alerts(Timestamp now) {
  alerts_.clear();
  std::erase_if(unheld_, [&](const auto& u) { return find_violation(u.first) == nullptr; });
  for (const auto& [token, vs] : open_) {
    for (const auto& v : vs) {
      if (v.state == ViolationState::kResolved) continue;
      const std::size_t first = alerts_.size();
      alerts_.push_back(violation_alert(cluster_.name, v));
      if (auto t = thresholds_.find(v.id); t != thresholds_.end())
        alerts_.back().labels["threshold"] = t->second;
      auto unheld = unheld_.find(v.id);
      if (unheld != unheld_.end() && v.state != ViolationState::kFailed &&
          v.state != ViolationState::kEnforced) {
        alerts_.push_back(unheld_alert(cluster_.name, v, unheld->second));
      }
      if (v.state == ViolationState::kFailed)
        alerts_.push_back(failed_alert(cluster_.name, v, now));
      for (std::size_t i = first; i < alerts_.size(); ++i) address(alerts_[i], token);
    }
  }
  if (halted_) alerts_.push_back(halted_alert(cluster_.name, now));
  alerts_dirty_ = true;
}

}  // namespace tw::daemon
