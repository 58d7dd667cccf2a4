#include "policy/planner.h"

#include <algorithm>

namespace tw::policy {
namespace {

using PolicyIndex = std::unordered_map<std::string_view, std::size_t>;

PolicyIndex index_policies(const PolicySet& set) {
  PolicyIndex index;
  index.reserve(set.specs().size());
  for (std::size_t i = 0; i < set.specs().size(); ++i) index.emplace(set.specs()[i].name, i);
  return index;
}

const PolicySpec* find_spec(const PolicySet& set, const PolicyIndex& index, std::string_view name) {
  auto it = index.find(name);
  return it == index.end() ? nullptr : &set.specs()[it->second];
}

Mode mode_of(const PolicySpec& p, Mode daemon) { return p.mode.value_or(daemon); }

bool is_active(const Token* t, Timestamp now) {
  return t != nullptr && status_at(*t, now) == TokenStatus::kActive;
}

// ---- Phase 1 ----

struct Ending {
  Resolution resolution;
  std::string_view why;
};

// Why an open violation no longer holds, if it does not.
std::optional<Ending> ending_of(const Violation& v, const Verdict& verdict,
                                const PolicyIndex& index, Timestamp now) {
  auto pi = index.find(v.policy);
  if (pi == index.end())
    return Ending{Resolution::kPolicyRemoved, "the policy is no longer configured"};
  if (verdict.subject == nullptr)
    return Ending{Resolution::kRemoved, "the token is no longer listed"};
  const Token& token = *verdict.subject->token;
  if (token.revoked_at) return Ending{Resolution::kRevoked, "the token is revoked"};
  if (status_at(token, now) == TokenStatus::kExpired)
    return Ending{Resolution::kCompliant, "the token expired"};
  const Finding* f = nullptr;
  for (const auto& candidate : verdict.findings) {
    if (candidate.policy == pi->second) f = &candidate;
  }
  if (f == nullptr) {
    // Compliant after our restrict — recorded, or still in flight when a crash lost its outcome.
    bool restricted =
        (v.state == ViolationState::kEnforced || v.state == ViolationState::kEnforcing) &&
        v.action == Action::kRestrict;
    if (restricted) return Ending{Resolution::kRestricted, "the token was restricted"};
    return Ending{Resolution::kCompliant, "the token complies again"};
  }
  if (f->exempt()) return Ending{Resolution::kExempted, "an exemption now covers it"};
  return std::nullopt;
}

class VerdictPlanner {
 public:
  explicit VerdictPlanner(const VerdictInput& in) : in_(in), index_(index_policies(in.policies)) {}

  std::vector<VerdictStep> run() {
    for (const auto& verdict : in_.verdicts) plan_token(verdict);
    return std::move(steps_);
  }

 private:
  void plan_token(const Verdict& verdict) {
    const std::string& id = *verdict.token_id;
    std::vector<const Violation*> still_open;
    if (auto it = in_.open.find(id); it != in_.open.end()) {
      for (const auto& v : it->second) {
        auto ending = ending_of(v, verdict, index_, in_.now);
        if (!ending) {
          still_open.push_back(&v);
          continue;
        }
        steps_.push_back(Resolve{v.id, id, ending->resolution, ending->why});
      }
    }
    for (const auto& f : verdict.findings) {
      if (f.exempt()) {
        note_exemption(f, id);
        continue;
      }
      const PolicySpec& p = in_.policies.specs()[f.policy];
      bool is_open = std::any_of(still_open.begin(), still_open.end(),
                                 [&](const Violation* v) { return v->policy == p.name; });
      if (!is_open) steps_.push_back(open(f, p, *verdict.subject));
    }
  }

  void note_exemption(const Finding& f, const std::string& token_id) {
    const auto e = static_cast<std::size_t>(f.exemption);
    std::string key = in_.policies.exemption_key(e);
    std::string use = exemption_use_key(key, token_id);
    if (in_.exemption_uses.contains(use) || !noted_.insert(std::move(use)).second) return;
    steps_.push_back(ExemptionUse{f.policy, e, token_id, std::move(key)});
  }

  Open open(const Finding& f, const PolicySpec& p, const Subject& subject) const {
    Open o;
    o.policy = f.policy;
    o.subject = &subject;
    o.opened_at = in_.now;
    // A token listed again after its removal keeps the grace it had: the clock does not restart.
    for (const auto& e : in_.earlier) {
      if (e.token_id == subject.token->id && e.policy == p.name) {
        o.opened_at = e.opened_at;
        o.continues = e.id;
      }
    }
    if (p.action != Action::kAlert) o.due_at = o.opened_at + p.grace_period;
    o.reason = in_.policies.explain(f.policy, subject, in_.now);
    o.mode = mode_of(p, in_.mode);
    return o;
  }

  const VerdictInput& in_;
  PolicyIndex index_;
  std::unordered_set<std::string> noted_;
  std::vector<VerdictStep> steps_;
};

// ---- Phase 2 ----

ActionKind kind_of(Action a) {
  return a == Action::kRestrict ? ActionKind::kRestrict : ActionKind::kRevoke;
}

class ActionPlanner {
 public:
  explicit ActionPlanner(const ActionInput& in) : in_(in), index_(index_policies(in.policies)) {}

  ActionPlan run() {
    if (!in_.pending.empty()) index_violations();
    settle();
    did_not_hold();
    plan_due();
    schedule_pending();
    if (!plan_.run.empty()) plan_.next_due = in_.now;  // outcomes change the state: look again
    return std::move(plan_);
  }

 private:
  // The state of a violation as this plan leaves it so far.
  struct Current {
    ViolationState state;
    bool released;
  };
  Current current(const Violation& v) const {
    if (changed_.empty()) return {v.state, v.released};  // the common case: one lookup less
    auto it = changed_.find(v.id);
    return it == changed_.end() ? Current{v.state, v.released} : it->second;
  }
  void set_state(const Violation& v, ViolationState s, bool released) {
    changed_[v.id] = {s, released};
  }

  void index_violations() {
    for (const auto& [token, vs] : in_.open) {
      for (const auto& v : vs) by_id_.emplace(v.id, &v);
    }
  }
  const Violation* violation(std::int64_t id) const {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : it->second;
  }
  const PolicySpec* spec(const std::string& name) const {
    return find_spec(in_.policies, index_, name);
  }

  std::vector<Permission> compliant(const std::string& policy, const std::string& token_id) const {
    const Token* t = in_.tokens.listed(token_id);
    if (t == nullptr) return {};
    return in_.policies.compliant_permissions(index_.at(policy), *t);
  }

  // Actions of violations that ended must not run. One may already have done its work (a crash
  // lost the outcome): then it succeeded, and nothing is sent again.
  void settle() {
    for (const auto& a : in_.pending) {
      if (violation(a.violation_id) != nullptr) continue;
      const Token* t = in_.tokens.listed(a.token_id);
      const bool gone = t == nullptr || t->revoked_at.has_value();
      const bool done =
          a.kind == ActionKind::kRevoke ? gone : (!gone && t->permissions == a.target);
      std::string_view why =
          done ? (a.attempts > 0 ? "an earlier attempt took effect (confirmed by this poll)"
                                 : "the token was already in the wanted state")
               : "the violation ended before the action ran";
      plan_.steps.push_back(Settle{a.id, done, why});
      settled_.insert(a.id);
    }
  }

  // A violation whose action succeeded stays settled only while the cluster agrees. Only a list
  // asked for after the action completed can contradict it.
  void did_not_hold() {
    for (const auto& [token, vs] : in_.open) {
      for (const auto& v : vs) {
        if (v.state != ViolationState::kEnforced) continue;
        if (!is_active(in_.tokens.listed(v.token_id), in_.now)) continue;
        auto held = in_.held.find(v.id);
        if (held == in_.held.end() || !held->second.last_completed_at ||
            in_.list_started_at <= *held->second.last_completed_at) {
          continue;
        }
        const bool final = held->second.count >= kMaxReplans;
        set_state(v, final ? ViolationState::kFailed : ViolationState::kOpen,
                  final ? v.released : false);
        plan_.steps.push_back(DidNotHold{v.id, v.token_id, final, held->second});
      }
    }
  }

  // Violations whose grace is over and that have no action yet, by id.
  std::vector<const Violation*> due() {
    std::vector<const Violation*> out;
    for (const auto& [token, vs] : in_.open) {
      for (const auto& v : vs) {
        const PolicySpec* p = spec(v.policy);
        if (p == nullptr || p->action == Action::kAlert) continue;
        ViolationState s = current(v).state;
        if (s != ViolationState::kOpen && s != ViolationState::kSkipped &&
            s != ViolationState::kHalted) {
          continue;  // planned, awaiting approval, running, done or failed for good
        }
        const Timestamp deadline = v.opened_at + p->grace_period;
        if (deadline > in_.now) {
          plan_.next_due = std::min(plan_.next_due, deadline);
          continue;
        }
        plan_.next_due = in_.now;  // halted, and open in monitor mode, stay due
        out.push_back(&v);
      }
    }
    std::sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->id < b->id; });
    return out;
  }

  NewAction new_action(const Violation& v, const PolicySpec& p, ActionState state) const {
    NewAction a{v.id, v.token_id, v.policy, kind_of(p.action), state, {}, current(v).released};
    if (p.action == Action::kRestrict && state != ActionState::kSkipped)
      a.target = compliant(v.policy, v.token_id);
    return a;
  }

  void plan_due() {
    std::vector<const Violation*> candidates;
    for (const Violation* v : due()) {
      const PolicySpec& p = *spec(v->policy);
      if (mode_of(p, in_.settings.mode) == Mode::kMonitor) {
        if (current(*v).state == ViolationState::kSkipped) continue;  // already recorded
        plan_.steps.push_back(new_action(*v, p, ActionState::kSkipped));
        set_state(*v, ViolationState::kSkipped, current(*v).released);
      } else if (p.require_approval) {
        plan_.steps.push_back(new_action(*v, p, ActionState::kAwaitingApproval));
        set_state(*v, ViolationState::kAwaitingApproval, current(*v).released);
      } else {
        candidates.push_back(v);
      }
    }
    const bool over = limit(candidates);
    for (const Violation* v : candidates) {
      if (over && !current(*v).released) continue;
      NewAction a = new_action(*v, *spec(v->policy), ActionState::kPlanned);
      // A restrict of a token no longer listed cannot run (its violation resolves next).
      if (a.kind == ActionKind::kRevoke || in_.tokens.listed(v->token_id) != nullptr)
        plan_.run.push_back({0, plan_.steps.size()});
      plan_.steps.push_back(std::move(a));
      set_state(*v, ViolationState::kEnforcing, current(*v).released);
    }
  }

  // Safety limits, counted over the actions nobody released by hand. True if over them.
  bool limit(const std::vector<const Violation*>& candidates) {
    Halt h;
    for (const Violation* v : candidates) {
      if (current(*v).released) continue;
      ++h.planned;
      ++h.by_policy[v->policy];
    }
    if (h.planned > 0) {
      h.active_tokens = static_cast<std::int64_t>(in_.tokens.active_count(in_.now));
      h.over = h.planned > in_.settings.max_actions_per_cycle ||
               h.planned * 100 > std::int64_t{in_.settings.max_actions_percent} * h.active_tokens;
    }
    if (h.over) {
      for (const Violation* v : candidates) {
        Current c = current(*v);
        if (c.released || c.state == ViolationState::kHalted) continue;
        h.newly_halted.emplace_back(v->id, v->token_id);
        set_state(*v, ViolationState::kHalted, c.released);
      }
      if (!in_.halted) h.set_halted = true;
    } else if (in_.halted) {
      h.set_halted = false;  // the plan fits: everything due is planned, nothing stays halted
    }
    const bool over = h.over;
    if (over || h.set_halted) plan_.steps.push_back(std::move(h));
    return over;
  }

  // Pending planned actions: skipped if their policy is in monitor mode now, else run when due.
  void schedule_pending() {
    std::vector<Run> runs;
    for (const auto& a : in_.pending) {
      if (a.state != ActionState::kPlanned || settled_.contains(a.id)) continue;
      const Violation* v = violation(a.violation_id);
      const PolicySpec* p = v != nullptr ? spec(v->policy) : nullptr;
      if (v == nullptr || p == nullptr) continue;
      if (mode_of(*p, in_.settings.mode) == Mode::kMonitor) {
        plan_.steps.push_back(SkipPending{a.id, v->id, v->token_id});
        set_state(*v, ViolationState::kSkipped, current(*v).released);
        continue;
      }
      if (a.next_attempt_at && *a.next_attempt_at > in_.now) {
        plan_.next_due = std::min(plan_.next_due, *a.next_attempt_at);
        continue;
      }
      if (a.busy_until) {  // running in another process; taken over once that attempt is stale
        plan_.next_due = std::min(plan_.next_due, *a.busy_until);
        continue;
      }
      if (a.kind == ActionKind::kRestrict) {
        if (in_.tokens.listed(a.token_id) == nullptr) continue;
        auto target = compliant(v->policy, a.token_id);
        if (target != a.target) plan_.steps.push_back(Retarget{a.id, std::move(target)});
      }
      runs.push_back({a.id, Run{}.step});
    }
    // Pending actions are older than the ones planned this cycle: they run first.
    plan_.run.insert(plan_.run.begin(), runs.begin(), runs.end());
  }

  const ActionInput& in_;
  PolicyIndex index_;
  std::unordered_map<std::int64_t, const Violation*> by_id_;
  std::unordered_map<std::int64_t, Current> changed_;
  std::unordered_set<std::int64_t> settled_;
  ActionPlan plan_;
};

}  // namespace

std::string exemption_use_key(std::string_view exemption_key, std::string_view token_id) {
  std::string k;
  k.reserve(exemption_key.size() + token_id.size() + 1);
  k += exemption_key;
  k += '\0';
  k += token_id;
  return k;
}

std::vector<VerdictStep> plan_verdicts(const VerdictInput& in) { return VerdictPlanner(in).run(); }

ActionPlan plan_actions(const ActionInput& in) { return ActionPlanner(in).run(); }

}  // namespace tw::policy
