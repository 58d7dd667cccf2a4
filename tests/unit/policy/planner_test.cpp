// Tests for policy/planner.h: the enforcement planner, a pure function of values (no SQLite, no
// clock). One table row per lifecycle rule of docs/policies.md "The violation lifecycle" and
// "Safety": grace, approval, monitor per policy and daemon-wide, halt by count and by percent,
// releases, retries, re-planning after an action that did not hold, exemptions and their expiry,
// and every resolution kind. Each row states its inputs and the plan it expects, rendered one
// step a line.

#include "policy/planner.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tests/unit/core/test_support.h"

namespace tw::policy {
namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::minutes;
using tw::testing::ts;

const Timestamp kNow = ts("2026-06-01T12:00:00Z");

std::string offset(Timestamp t) {
  if (t == Timestamp::max()) return "never";
  auto m = std::chrono::duration_cast<minutes>(t - kNow).count();
  return (m >= 0 ? "+" : "") + std::to_string(m) + "m";
}

std::string perms(const std::vector<Permission>& ps) {
  std::string s;
  for (const auto& p : ps) s += (s.empty() ? "" : ",") + p.action + ":" + p.resource;
  return "[" + s + "]";
}

// ---- the world a row describes ----------------------------------------------------------------

Token token(std::string id) {
  Token t;
  t.id = std::move(id);
  t.description = "svc-" + t.id;
  t.created_at = kNow - days(10);  // no expiry: violates "lifetime" (max_lifetime, require_expiry)
  t.permissions = {{"read", "metrics"}, {"write", "billing"}};
  return t;
}

PolicySpec spec(std::string name, Action action) {
  PolicySpec p;
  p.name = std::move(name);
  p.action = action;
  p.grace_period = hours(72);
  if (action == Action::kAlert) {
    p.kind = Kind::kExpiresSoon;
    p.within = days(1);
  } else if (action == Action::kRestrict) {
    p.kind = Kind::kForbiddenGrant;
    p.actions = {"write"};
    p.databases = {"billing"};
  } else {
    p.kind = Kind::kMaxLifetime;
    p.max_lifetime = days(90);
  }
  return p;
}

struct World {
  std::vector<PolicySpec> policies = {spec("lifetime", Action::kRevoke),
                                      spec("no-billing-write", Action::kRestrict),
                                      spec("notice", Action::kAlert)};
  std::vector<ExemptionSpec> exemptions;
  std::vector<Token> tokens = {token("t1"), token("t2"), token("t3"), token("t4")};
  std::vector<std::string> removed;  // token ids no longer listed
  OpenViolations open;
  std::vector<PendingAction> pending;
  std::unordered_map<std::int64_t, Held> held;
  std::unordered_set<std::string> exemption_uses;
  std::vector<Earlier> earlier;
  EnforcementSettings settings;
  bool halted = false;
  Timestamp list_started_at = kNow - minutes(1);

  Token& tok(const std::string& id) {
    for (auto& t : tokens) {
      if (t.id == id) return t;
    }
    tokens.push_back(token(id));
    return tokens.back();
  }
  Violation& violate(std::int64_t id, const std::string& t, const std::string& policy,
                     ViolationState state = ViolationState::kOpen,
                     Timestamp opened = kNow - hours(73)) {
    Violation v;
    v.id = id;
    v.token_id = t;
    v.policy = policy;
    for (const auto& p : policies) {
      if (p.name == policy) v.action = p.action;
    }
    v.state = state;
    v.opened_at = opened;
    auto& vs = open[t];
    vs.push_back(v);
    return vs.back();
  }
  PendingAction& pend(std::int64_t id, std::int64_t violation, const std::string& t,
                      const std::string& policy, ActionKind kind = ActionKind::kRevoke) {
    PendingAction a;
    a.id = id;
    a.violation_id = violation;
    a.token_id = t;
    a.policy = policy;
    a.kind = kind;
    pending.push_back(a);
    return pending.back();
  }
};

class Tokens final : public TokenView {
 public:
  explicit Tokens(const World& w) : w_(w) {}
  const Token* listed(const std::string& id) const override {
    for (const auto& r : w_.removed) {
      if (r == id) return nullptr;
    }
    for (const auto& t : w_.tokens) {
      if (t.id == id) return &t;
    }
    return nullptr;
  }
  std::size_t active_count(Timestamp now) const override {
    std::size_t n = 0;
    for (const auto& t : w_.tokens) {
      if (listed(t.id) != nullptr && status_at(t, now) == TokenStatus::kActive) ++n;
    }
    return n;
  }

 private:
  const World& w_;
};

std::shared_ptr<const PolicySet> compile(const World& w) {
  auto set = PolicySet::compile(w.policies, w.exemptions);
  EXPECT_TRUE(set.ok()) << (set.ok() ? "" : set.error().message);
  return *set;
}

// ---- rendering --------------------------------------------------------------------------------

struct Render {
  const PolicySet& set;
  std::string operator()(const Resolve& s) const {
    return "resolve v" + std::to_string(s.violation) + " " + std::string(to_string(s.resolution)) +
           ": " + std::string(s.why);
  }
  std::string operator()(const Open& s) const {
    std::string o = "open " + s.subject->token->id + " " + set.specs()[s.policy].name + " at " +
                    offset(s.opened_at) + " due " + (s.due_at ? offset(*s.due_at) : "never") + " " +
                    std::string(to_string(s.mode));
    if (s.continues) o += " continues v" + std::to_string(*s.continues);
    return o;
  }
  std::string operator()(const ExemptionUse& s) const {
    return "exempt " + s.token_id + " " + set.specs()[s.policy].name + " by e" +
           std::to_string(s.exemption);
  }
  std::string operator()(const Settle& s) const {
    return "settle a" + std::to_string(s.action) + (s.done ? " succeeded: " : " skipped: ") +
           std::string(s.why);
  }
  std::string operator()(const DidNotHold& s) const {
    return "did_not_hold v" + std::to_string(s.violation) + (s.final ? " final" : " again") +
           " after " + std::to_string(s.held.count);
  }
  std::string operator()(const NewAction& s) const {
    std::string o = std::string(to_string(s.state)) + " " + std::string(to_string(s.kind)) + " v" +
                    std::to_string(s.violation);
    if (s.kind == ActionKind::kRestrict && s.state != ActionState::kSkipped)
      o += " " + perms(s.target);
    if (s.released) o += " released";
    return o;
  }
  std::string operator()(const Halt& s) const {
    std::string o = std::string(s.over ? "over" : "within") +
                    " limits: " + std::to_string(s.planned) + " of " +
                    std::to_string(s.active_tokens) + " active";
    for (const auto& [id, t] : s.newly_halted) o += " halt v" + std::to_string(id);
    if (s.set_halted) o += *s.set_halted ? "; cluster halted" : "; cluster resumed";
    return o;
  }
  std::string operator()(const SkipPending& s) const {
    return "skip a" + std::to_string(s.action) + " (monitor)";
  }
  std::string operator()(const Retarget& s) const {
    return "retarget a" + std::to_string(s.action) + " " + perms(s.target);
  }
};

std::vector<std::string> render(const std::vector<VerdictStep>& steps, const PolicySet& set) {
  std::vector<std::string> out;
  for (const auto& s : steps) out.push_back(std::visit(Render{set}, s));
  return out;
}

std::vector<std::string> render(const ActionPlan& plan, const PolicySet& set) {
  std::vector<std::string> out;
  for (const auto& s : plan.steps) out.push_back(std::visit(Render{set}, s));
  for (const auto& r : plan.run) {
    out.push_back(r.pending != 0 ? "run a" + std::to_string(r.pending)
                                 : "run step " + std::to_string(r.step));
  }
  out.push_back("next due " + offset(plan.next_due));
  return out;
}

// Evaluates the world's listed tokens (removed ones become verdicts without a subject) and plans.
std::vector<std::string> verdicts_of(const World& w) {
  auto set = compile(w);
  Tokens view(w);
  std::vector<Subject> subjects;
  for (const auto& t : w.tokens) {
    if (view.listed(t.id) != nullptr) subjects.push_back({&t, kNow - days(10)});
  }
  const Evaluation eval = evaluate(*set, ClusterInfo{"prod", {}}, subjects, kNow);
  std::vector<Verdict> verdicts;
  std::size_t fi = 0;
  for (std::size_t si = 0; si < subjects.size(); ++si) {
    std::size_t begin = fi;
    while (fi < eval.findings.size() && eval.findings[fi].subject == si) ++fi;
    verdicts.push_back({&subjects[si].token->id, &subjects[si],
                        std::span(eval.findings).subspan(begin, fi - begin)});
  }
  for (const auto& id : w.removed) verdicts.push_back({&id, nullptr, {}});
  const VerdictInput in{*set, w.settings.mode, kNow, verdicts, w.open, w.exemption_uses, w.earlier};
  return render(plan_verdicts(in), *set);
}

std::vector<std::string> actions_of(const World& w) {
  auto set = compile(w);
  Tokens view(w);
  const ActionInput in{*set,      w.settings, kNow, w.list_started_at, w.open,
                       w.pending, w.held,     view, w.halted};
  return render(plan_actions(in), *set);
}

struct Case {
  std::string rule;
  std::function<void(World&)> given;
  std::vector<std::string> expected;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.rule; }

// Only t1 violates unless a row says otherwise: t2..t4 comply (expiry within 90 days, no write
// on billing).
World base() {
  World w;
  for (const char* id : {"t2", "t3", "t4"}) {
    Token& t = w.tok(id);
    t.expires_at = kNow + days(30);
    t.permissions = {{"read", "metrics"}};
  }
  w.tok("t1").permissions = {{"read", "metrics"}};  // t1 violates "lifetime" only
  w.settings.max_actions_percent = 100;             // rows on the limits set their own
  return w;
}

// ---- phase 1: verdicts -----------------------------------------------------------------------

class VerdictTable : public ::testing::TestWithParam<Case> {};

TEST_P(VerdictTable, Plan) {
  World w = base();
  GetParam().given(w);
  EXPECT_EQ(verdicts_of(w), GetParam().expected) << GetParam().rule;
}

INSTANTIATE_TEST_SUITE_P(
    Lifecycle, VerdictTable,
    ::testing::Values(
        Case{"first detection opens, the action due after the grace period",
             [](World&) {},
             {"open t1 lifetime at +0m due +4320m enforce"}},
        Case{"an alert-only policy opens with nothing due",
             [](World& w) { w.policies[0].action = Action::kAlert; },
             {"open t1 lifetime at +0m due never enforce"}},
        Case{"the opening records the policy's own mode",
             [](World& w) { w.policies[0].mode = Mode::kMonitor; },
             {"open t1 lifetime at +0m due +4320m monitor"}},
        Case{"the opening records the daemon's mode",
             [](World& w) { w.settings.mode = Mode::kMonitor; },
             {"open t1 lifetime at +0m due +4320m monitor"}},
        Case{"a violation already open is not opened again",
             [](World& w) { w.violate(1, "t1", "lifetime"); },
             {}},
        Case{"resolved compliant when the token complies again",
             [](World& w) {
               w.violate(1, "t1", "lifetime");
               w.tok("t1").expires_at = kNow + days(30);
             },
             {"resolve v1 compliant: the token complies again"}},
        Case{"resolved restricted when it complies after our restrict",
             [](World& w) {
               w.tok("t1").expires_at = kNow + days(30);  // only t2 is judged here
               w.violate(1, "t2", "no-billing-write", ViolationState::kEnforced);
             },
             {"resolve v1 restricted: the token was restricted"}},
        Case{"resolved restricted when our restrict's outcome was lost",
             [](World& w) {
               w.tok("t1").expires_at = kNow + days(30);  // only t2 is judged here
               w.violate(1, "t2", "no-billing-write", ViolationState::kEnforcing);
             },
             {"resolve v1 restricted: the token was restricted"}},
        Case{"resolved revoked, whoever revoked it",
             [](World& w) {
               w.violate(1, "t1", "lifetime");
               w.tok("t1").revoked_at = kNow - minutes(5);
             },
             {"resolve v1 revoked: the token is revoked"}},
        Case{"an expired token's violations resolve as compliant",
             [](World& w) {
               w.violate(1, "t1", "lifetime");
               w.tok("t1").expires_at = kNow - minutes(5);
             },
             {"resolve v1 compliant: the token expired"}},
        Case{"resolved removed when the token is no longer listed",
             [](World& w) {
               w.violate(1, "t1", "lifetime");
               w.removed = {"t1"};
             },
             {"resolve v1 removed: the token is no longer listed"}},
        Case{"resolved policy_removed when its policy is no longer configured",
             [](World& w) {
               w.tok("t1").expires_at = kNow + days(30);  // only t2 is judged here
               w.violate(1, "t2", "gone-policy");
             },
             {"resolve v1 policy_removed: the policy is no longer configured"}},
        Case{"an exemption suppresses the violation and is recorded once",
             [](World& w) {
               w.exemptions.push_back({"lifetime", "t1", "", "", "vendor", kNow + days(30)});
             },
             {"exempt t1 lifetime by e0"}},
        Case{"an exemption already recorded for the token is not recorded again",
             [](World& w) {
               w.exemptions.push_back({"lifetime", "t1", "", "", "vendor", kNow + days(30)});
               auto set = compile(w);
               w.exemption_uses.insert(exemption_use_key(set->exemption_key(0), "t1"));
             },
             {}},
        Case{"an open violation that becomes exempt resolves as exempted",
             [](World& w) {
               w.exemptions.push_back({"*", "t1", "", "", "vendor", kNow + days(30)});
               w.violate(1, "t1", "lifetime");
             },
             {"resolve v1 exempted: an exemption now covers it", "exempt t1 lifetime by e0"}},
        Case{"an expired exemption no longer covers: the violation opens with a fresh grace",
             [](World& w) {
               w.exemptions.push_back({"lifetime", "t1", "", "", "vendor", kNow - minutes(1)});
               auto set = compile(w);
               w.exemption_uses.insert(exemption_use_key(set->exemption_key(0), "t1"));
             },
             {"open t1 lifetime at +0m due +4320m enforce"}},
        Case{"a reappeared token continues its violation: same detection time, same deadline",
             [](World& w) {
               w.earlier.push_back({"t1", "lifetime", 7, kNow - hours(70)});
             },
             {"open t1 lifetime at -4200m due +120m enforce continues v7"}}),
    [](const auto& row) { return "row" + std::to_string(row.index); });

// ---- phase 2: actions ------------------------------------------------------------------------

class ActionTable : public ::testing::TestWithParam<Case> {};

TEST_P(ActionTable, Plan) {
  World w = base();
  GetParam().given(w);
  EXPECT_EQ(actions_of(w), GetParam().expected) << GetParam().rule;
}

INSTANTIATE_TEST_SUITE_P(
    Lifecycle, ActionTable,
    ::testing::Values(
        Case{"within the grace period nothing is planned; due when it ends",
             [](World& w) {
               w.violate(1, "t1", "lifetime", ViolationState::kOpen, kNow - hours(1));
             },
             {"next due +4260m"}},
        Case{"grace over: the revoke is planned and runs after the commit",
             [](World& w) { w.violate(1, "t1", "lifetime"); },
             {"planned revoke v1", "run step 0", "next due +0m"}},
        Case{"a restrict is planned with the compliant permissions",
             [](World& w) {
               w.tok("t2").permissions = {{"read", "metrics"}, {"write", "billing"}};
               w.violate(1, "t2", "no-billing-write");
             },
             {"planned restrict v1 [read:metrics]", "run step 0", "next due +0m"}},
        Case{"an alert-only policy never plans an action",
             [](World& w) { w.violate(1, "t2", "notice"); },
             {"next due never"}},
        Case{"require_approval: the action waits for the operator and does not run",
             [](World& w) {
               w.policies[0].require_approval = true;
               w.violate(1, "t1", "lifetime");
             },
             {"awaiting_approval revoke v1", "next due +0m"}},
        Case{"daemon monitor mode: the action is skipped",
             [](World& w) {
               w.settings.mode = Mode::kMonitor;
               w.violate(1, "t1", "lifetime");
             },
             {"skipped revoke v1", "next due +0m"}},
        Case{"monitor mode skips once: a skipped violation is not skipped again",
             [](World& w) {
               w.settings.mode = Mode::kMonitor;
               w.violate(1, "t1", "lifetime", ViolationState::kSkipped);
             },
             {"next due +0m"}},
        Case{"a policy in monitor mode overrides the daemon's enforce",
             [](World& w) {
               w.policies[0].mode = Mode::kMonitor;
               w.violate(1, "t1", "lifetime");
             },
             {"skipped revoke v1", "next due +0m"}},
        Case{"a policy in enforce mode overrides the daemon's monitor",
             [](World& w) {
               w.settings.mode = Mode::kMonitor;
               w.policies[0].mode = Mode::kEnforce;
               w.violate(1, "t1", "lifetime");
             },
             {"planned revoke v1", "run step 0", "next due +0m"}},
        Case{"back in enforce, a skipped violation is planned",
             [](World& w) { w.violate(1, "t1", "lifetime", ViolationState::kSkipped); },
             {"planned revoke v1", "run step 0", "next due +0m"}},
        Case{
            "more actions than max_actions_per_cycle: all halted, none runs",
            [](World& w) {
              w.settings.max_actions_per_cycle = 2;
              w.settings.max_actions_percent = 100;
              for (int i = 1; i <= 3; ++i) w.violate(i, "t" + std::to_string(i), "lifetime");
            },
            {"over limits: 3 of 4 active halt v1 halt v2 halt v3; cluster halted", "next due +0m"}},
        Case{"more than max_actions_percent of the active tokens: halted",
             [](World& w) {
               w.settings.max_actions_percent = 25;
               w.violate(1, "t1", "lifetime");
               w.violate(2, "t2", "lifetime");
             },
             {"over limits: 2 of 4 active halt v1 halt v2; cluster halted", "next due +0m"}},
        Case{
            "exactly at the limits: planned",
            [](World& w) {
              w.settings.max_actions_per_cycle = 2;
              w.settings.max_actions_percent = 50;
              w.violate(1, "t1", "lifetime");
              w.violate(2, "t2", "lifetime");
            },
            {"planned revoke v1", "planned revoke v2", "run step 0", "run step 1", "next due +0m"}},
        Case{"still over while halted: recorded once, violations already halted stay so",
             [](World& w) {
               w.halted = true;
               w.settings.max_actions_percent = 25;
               w.violate(1, "t1", "lifetime", ViolationState::kHalted);
               w.violate(2, "t2", "lifetime");
             },
             {"over limits: 2 of 4 active halt v2", "next due +0m"}},
        Case{"an operator's release runs past the limits; the others stay halted",
             [](World& w) {
               w.settings.max_actions_percent = 25;
               w.violate(1, "t1", "lifetime", ViolationState::kHalted).released = true;
               w.violate(2, "t2", "lifetime", ViolationState::kHalted);
               w.violate(3, "t3", "lifetime", ViolationState::kHalted);
             },
             {"over limits: 2 of 4 active; cluster halted", "planned revoke v1 released",
              "run step 1", "next due +0m"}},
        Case{"the plan fits again: enforcement resumes and everything due is planned",
             [](World& w) {
               w.halted = true;
               w.violate(1, "t1", "lifetime", ViolationState::kHalted);
             },
             {"within limits: 1 of 4 active; cluster resumed", "planned revoke v1", "run step 1",
              "next due +0m"}},
        Case{"monitor and approval actions do not count toward the limits",
             [](World& w) {
               w.settings.max_actions_per_cycle = 1;
               w.settings.max_actions_percent = 100;
               w.policies[1].require_approval = true;
               w.policies[0].mode = Mode::kMonitor;
               w.tok("t2").permissions = {{"write", "billing"}};
               w.violate(1, "t1", "lifetime");
               w.violate(2, "t2", "no-billing-write");
             },
             {"skipped revoke v1", "awaiting_approval restrict v2 []", "next due +0m"}},
        Case{"a failed action is retried only once its back-off has passed",
             [](World& w) {
               w.violate(1, "t1", "lifetime", ViolationState::kEnforcing);
               w.pend(5, 1, "t1", "lifetime").next_attempt_at = kNow + minutes(2);
             },
             {"next due +2m"}},
        Case{"a failed action whose back-off passed runs again",
             [](World& w) {
               w.violate(1, "t1", "lifetime", ViolationState::kEnforcing);
               auto& a = w.pend(5, 1, "t1", "lifetime");
               a.attempts = 2;
               a.next_attempt_at = kNow - minutes(1);
             },
             {"run a5", "next due +0m"}},
        Case{"an attempt running in another process is taken over only once stale",
             [](World& w) {
               w.violate(1, "t1", "lifetime", ViolationState::kEnforcing);
               w.pend(5, 1, "t1", "lifetime").busy_until = kNow + minutes(3);
             },
             {"next due +3m"}},
        Case{"an approved action runs before the ones planned this cycle",
             [](World& w) {
               w.violate(1, "t1", "lifetime", ViolationState::kEnforcing);
               w.pend(5, 1, "t1", "lifetime");
               w.violate(2, "t2", "lifetime");
             },
             {"planned revoke v2", "run a5", "run step 0", "next due +0m"}},
        Case{"an action still awaiting approval does not run",
             [](World& w) {
               w.violate(1, "t1", "lifetime", ViolationState::kAwaitingApproval);
               w.pend(5, 1, "t1", "lifetime").state = ActionState::kAwaitingApproval;
             },
             {"next due never"}},
        Case{"monitor mode after planning: the pending action is skipped",
             [](World& w) {
               w.policies[0].mode = Mode::kMonitor;
               w.violate(1, "t1", "lifetime", ViolationState::kEnforcing);
               w.pend(5, 1, "t1", "lifetime");
             },
             {"skip a5 (monitor)", "next due never"}},
        Case{"a restrict runs with what complies now: removed permissions do not come back",
             [](World& w) {
               w.tok("t2").permissions = {{"write", "billing"}};
               w.violate(1, "t2", "no-billing-write", ViolationState::kEnforcing);
               w.pend(5, 1, "t2", "no-billing-write", ActionKind::kRestrict).target = {
                   {"read", "metrics"}};
             },
             {"retarget a5 []", "run a5", "next due +0m"}},
        Case{"the violation ended before the action ran: skipped",
             [](World& w) { w.pend(5, 1, "t1", "lifetime"); },
             {"settle a5 skipped: the violation ended before the action ran", "next due never"}},
        Case{"an earlier attempt took effect (outcome lost in a crash): reconciled",
             [](World& w) {
               w.tok("t1").revoked_at = kNow - minutes(1);
               w.pend(5, 1, "t1", "lifetime").attempts = 1;
             },
             {"settle a5 succeeded: an earlier attempt took effect (confirmed by this poll)",
              "next due never"}},
        Case{"a restrict already in the wanted state: reconciled",
             [](World& w) {
               w.pend(5, 1, "t1", "no-billing-write", ActionKind::kRestrict).target = {
                   {"read", "metrics"}};
             },
             {"settle a5 succeeded: the token was already in the wanted state", "next due never"}},
        Case{"an action that did not hold is planned again under the same rules",
             [](World& w) {
               w.violate(1, "t1", "lifetime", ViolationState::kEnforced).released = true;
               w.held[1] = {1, 5, kNow - minutes(10)};
             },
             {"did_not_hold v1 again after 1", "planned revoke v1", "run step 1", "next due +0m"}},
        Case{"re-planned, a former release no longer passes the limits",
             [](World& w) {
               w.settings.max_actions_per_cycle = 0;
               w.violate(1, "t1", "lifetime", ViolationState::kEnforced).released = true;
               w.held[1] = {1, 5, kNow - minutes(10)};
             },
             {"did_not_hold v1 again after 1", "over limits: 1 of 4 active halt v1; cluster halted",
              "next due +0m"}},
        Case{"after 3 actions that did not hold the violation fails for good",
             [](World& w) {
               w.violate(1, "t1", "lifetime", ViolationState::kEnforced);
               w.held[1] = {3, 9, kNow - minutes(10)};
             },
             {"did_not_hold v1 final after 3", "next due never"}},
        Case{"only a list asked for after the action completed can contradict it",
             [](World& w) {
               w.violate(1, "t1", "lifetime", ViolationState::kEnforced);
               w.held[1] = {1, 5, w.list_started_at};
             },
             {"next due never"}},
        Case{"an enforced violation whose token is revoked holds",
             [](World& w) {
               w.tok("t1").revoked_at = kNow - minutes(5);
               w.violate(1, "t1", "lifetime", ViolationState::kEnforced);
               w.held[1] = {1, 5, kNow - minutes(10)};
             },
             {"next due never"}}),
    [](const auto& row) { return "row" + std::to_string(row.index); });

}  // namespace
}  // namespace tw::policy
