// The policy commands: violations, approve, simulate.
#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>

#include "cli/command_support.h"
#include "cli/commands.h"
#include "core/json_writer.h"
#include "core/strings.h"
#include "daemon/config.h"
#include "daemon/enforcer.h"
#include "storage/audit_store.h"
#include "storage/enforcement.h"
#include "storage/queries.h"

namespace tw::cli {
namespace {

std::string invoking_user() {
  for (const char* var : {"SUDO_USER", "USER", "LOGNAME"}) {
    if (std::string v = env(var); !v.empty()) return v;
  }
  if (passwd* pw = getpwuid(getuid()); pw != nullptr) return pw->pw_name;
  return "uid " + std::to_string(getuid());
}

// Text an operator gives that is stored and shown again: valid UTF-8, no control characters
// (C0, DEL, C1, bidirectional overrides, line separators), at most 100 bytes.
bool operator_text(const std::string& s) { return s.size() <= 100 && printable(s, 200) == s; }

// --cluster NAME --all, or action ids, not both; --by printable. A usage error is printed and
// gives false.
bool approve_options_ok(const ApproveOptions& o) {
  if (o.all == o.cluster.empty()) {
    print_error("use --cluster NAME together with --all to release a cluster, or leave both out");
    return false;
  }
  if (o.all == !o.action_ids.empty()) {
    print_error(o.all ? "give action ids or --cluster NAME --all, not both"
                      : "name the actions to approve (see `tokenwarden violations`), or use "
                        "--cluster NAME --all");
    return false;
  }
  // The approver is recorded in the audit log and echoed: printable text only.
  if (!o.by.empty() && !operator_text(o.by)) {
    print_error(
        "--by must be printable text of at most 100 bytes, without control characters, not \"" +
        printable(o.by, 100) + "\"");
    return false;
  }
  return true;
}

// With --all, the cluster has to be configured or recorded in the database. Returns kExitOk if
// it is, else the exit code after printing why.
int check_cluster_known(const GlobalOptions& g, const ApproveOptions& o,
                        const std::optional<daemon::Config>& config, storage::AuditStore& store,
                        const std::string& path) {
  if (o.all && (!config || config->find_cluster(o.cluster) == nullptr)) {
    auto known = storage::cluster_recorded(store.db(), o.cluster);
    if (!known.ok()) {
      print_error(known.error().message);
      return kExitFailure;
    }
    if (!*known) {
      print_error("no cluster named \"" + printable(o.cluster, 64) + "\" in " +
                  (config ? g.config_path + " or " : std::string()) + "the database " +
                  printable(path, 200));
      return kExitUsage;
    }
  }
  return kExitOk;
}

// Approvals and releases recorded in one write transaction, each with an action_approved event.
struct Approval {
  storage::WriteTxn& txn;
  const std::string& by;
  Timestamp now;
  int approved = 0;
  int released = 0;

  // The action_approved event of action `a` (nullptr: the release of a halted violation).
  bool event(const storage::ActionRow* a, std::int64_t violation_id, const std::string& cluster,
             const std::string& token, const char* scope) {
    std::string d;
    JsonWriter w(d);
    w.begin_object();
    if (a != nullptr)
      w.field("action_id", a->id).field("action", a->action).field("policy", a->policy);
    w.field("violation_id", violation_id).field("by", by).field("scope", scope).end_object();
    return txn.append({EventKind::kActionApproved, cluster, token, d}, now).ok();
  }
};

// --cluster NAME --all: every action awaiting approval and every halted violation of the
// cluster. Returns an exit code.
int approve_cluster(Approval& ap, const std::string& cluster) {
  auto pending = storage::pending_actions(ap.txn.db(), cluster);
  auto open = storage::open_violations(ap.txn.db(), cluster);
  if (!pending.ok() || !open.ok()) {
    print_error(!pending.ok() ? pending.error().message : open.error().message);
    return kExitFailure;
  }
  for (const auto& a : *pending) {
    if (a.state != storage::ActionState::kAwaitingApproval) continue;
    if (!storage::approve_action(ap.txn, a.id, ap.by, ap.now).ok() ||
        !ap.event(&a, a.violation_id, a.cluster, a.token_id, "action")) {
      print_error("cannot record the approval of action " + std::to_string(a.id));
      return kExitFailure;
    }
    ++ap.approved;
  }
  for (const auto& v : *open) {
    if (v.state != storage::ViolationState::kHalted || v.released) continue;
    if (!storage::release_violation(ap.txn, v.id).ok() ||
        !ap.event(nullptr, v.id, v.cluster, v.token_id, "halt")) {
      print_error("cannot record the release of violation " + std::to_string(v.id));
      return kExitFailure;
    }
    ++ap.released;
  }
  return kExitOk;
}

// Action ids: each has to be awaiting approval. Returns an exit code.
int approve_ids(Approval& ap, const std::vector<long long>& ids) {
  for (long long id : ids) {
    auto a = storage::find_action(ap.txn.db(), id);
    if (!a.ok()) {
      print_error(a.error().message);
      return kExitFailure;
    }
    if (!*a) {
      print_error("no action has id " + std::to_string(id) + " (see `tokenwarden violations`)");
      return kExitFailure;
    }
    if ((*a)->state != storage::ActionState::kAwaitingApproval) {
      print_error("action " + std::to_string(id) + " is " + std::string(to_string((*a)->state)) +
                  ", not awaiting approval; nothing was approved");
      return kExitFailure;
    }
    if (!storage::approve_action(ap.txn, id, ap.by, ap.now).ok() ||
        !ap.event(&**a, (*a)->violation_id, (*a)->cluster, (*a)->token_id, "action")) {
      print_error("cannot record the approval of action " + std::to_string(id));
      return kExitFailure;
    }
    ++ap.approved;
  }
  return kExitOk;
}

// What `simulate` shows: a summary row per cluster and policy, or (--tokens) a row per finding.
Table simulate_summary_table() {
  Table summary;
  summary.columns = {{"cluster"},         {"policy"},      {"kind"},           {"severity"},
                     {"action"},          {"mode"},        {"tokens"},         {"violations"},
                     {"exempted"},        {"would_alert"}, {"would_restrict"}, {"would_revoke"},
                     {"first_action_at"}, {"halts"}};
  return summary;
}

Table simulate_detail_table() {
  Table detail;
  detail.columns = {
      {"cluster"},          {"policy"},           {"token_id"}, {"description", true, 40},
      {"reason", true, 60}, {"exempt_by", false}, {"outcome"},  {"action_at"}};
  return detail;
}

// One simulation: the candidate policies, their settings and the tables being filled.
struct Simulation {
  const policy::PolicySet& set;
  const daemon::EnforcementSettings& settings;
  Timestamp now;
  bool tokens;  // --tokens: a detail row per finding
  Table summary = simulate_summary_table();
  Table detail = simulate_detail_table();
};

// One cluster's findings counted per policy.
struct PolicyCounts {
  std::int64_t violations = 0, exempted = 0, alert = 0, restrict = 0, revoke = 0;
};

struct ClusterOutcome {
  std::vector<PolicyCounts> per;                     // by index into specs()
  std::map<Timestamp, std::int64_t> destructive_at;  // actions falling due together
};

// What the daemon would do about finding `f`, counted in `out`; the outcome's text.
std::string judge_finding(const Simulation& sim, const policy::Finding& f, ClusterOutcome& out) {
  const auto& p = sim.set.specs()[f.policy];
  auto& c = out.per[f.policy];
  std::string outcome;
  if (f.exempt()) {
    ++c.exempted;
    outcome = "exempt";
  } else {
    ++c.violations;
    bool monitor = p.mode.value_or(sim.settings.mode) == policy::Mode::kMonitor;
    if (p.action == policy::Action::kAlert) {
      ++c.alert, outcome = "alert";
    } else if (monitor) {
      ++c.alert, outcome = std::string("alert (monitor: would ") +
                           std::string(policy::to_string(p.action)) + ")";
    } else {
      ++(p.action == policy::Action::kRevoke ? c.revoke : c.restrict);
      outcome =
          std::string(policy::to_string(p.action)) + (p.require_approval ? " after approval" : "");
      if (!p.require_approval) ++out.destructive_at[sim.now + p.grace_period];
    }
  }
  return outcome;
}

void detail_row(Simulation& sim, const std::string& cluster, const policy::Finding& f,
                const policy::Subject& subject, const std::string& outcome) {
  const auto& p = sim.set.specs()[f.policy];
  const Token& t = *subject.token;
  sim.detail.rows.push_back(
      {Cell::str(cluster), Cell::str(p.name), Cell::str(t.id), Cell::str(t.description),
       Cell::str(f.exempt() ? "exempt" : sim.set.explain(f.policy, subject, sim.now)),
       f.exempt() ? Cell::str(sim.set.exemptions()[static_cast<std::size_t>(f.exemption)].reason)
                  : Cell::null(),
       Cell::str(outcome),
       p.action == policy::Action::kAlert || f.exempt()
           ? Cell::null()
           : Cell::str(format_timestamp(sim.now + p.grace_period))});
}

// A summary row per policy that applies to the cluster; `halts` if the actions falling due with
// the policy's would exceed the enforcement limits.
void summary_rows(Simulation& sim, const std::string& name, const policy::ClusterInfo& info,
                  std::size_t subjects, std::size_t active, const ClusterOutcome& out) {
  const auto& specs = sim.set.specs();
  const auto& settings = sim.settings;
  auto halts = [&](const Timestamp& at) {
    auto it = out.destructive_at.find(at);
    if (it == out.destructive_at.end()) return false;
    auto n = static_cast<std::size_t>(it->second);
    return n > static_cast<std::size_t>(settings.max_actions_per_cycle) ||
           n * 100 > static_cast<std::size_t>(settings.max_actions_percent) * active;
  };
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const auto& p = specs[i];
    if (!sim.set.applies_to(i, info)) continue;
    const auto& c = out.per[i];
    bool destructive = c.restrict + c.revoke > 0 && !p.require_approval;
    sim.summary.rows.push_back(
        {Cell::str(name), Cell::str(p.name), Cell::str(std::string(policy::to_string(p.kind))),
         Cell::str(std::string(policy::to_string(p.severity))),
         Cell::str(std::string(policy::to_string(p.action))),
         Cell::str(std::string(policy::to_string(p.mode.value_or(settings.mode)))),
         Cell::num(static_cast<long long>(subjects)), Cell::num(c.violations),
         Cell::num(c.exempted), Cell::num(c.alert), Cell::num(c.restrict), Cell::num(c.revoke),
         destructive ? Cell::str(format_timestamp(sim.now + p.grace_period)) : Cell::null(),
         Cell::boolean(destructive && halts(sim.now + p.grace_period))});
  }
}

// Evaluates the cluster's recorded tokens (all but the removed ones) and adds its rows. Owners
// (the `orphaned` kind) are those the daemon recorded (token_inventory), as it would judge them.
void simulate_cluster(Simulation& sim, const std::string& name, const policy::ClusterInfo& info,
                      const std::vector<storage::InventoryRow>& all) {
  std::vector<storage::InventoryRow> rows;
  for (const auto& r : all) {
    if (r.cluster == name && r.status != TokenStatus::kRemoved) rows.push_back(r);
  }
  std::vector<policy::Subject> subjects;
  std::size_t active = 0;
  for (const auto& r : rows) {
    subjects.push_back({&r.token, parse_rfc3339(r.first_seen).value_or(sim.now), &r.ownership});
    if (status_at(r.token, sim.now) == TokenStatus::kActive) ++active;
  }
  auto eval = policy::evaluate(sim.set, info, subjects, sim.now);
  ClusterOutcome out;
  out.per.resize(sim.set.specs().size());
  for (const auto& f : eval.findings) {
    const std::string outcome = judge_finding(sim, f, out);
    if (sim.tokens) detail_row(sim, name, f, subjects[f.subject], outcome);
  }
  summary_rows(sim, name, info, subjects.size(), active, out);
}

// The candidate policy file over the base configuration; its problems printed (nullopt if it
// does not load).
std::optional<daemon::Config> load_candidate(const SimulateOptions& o, const daemon::Config& base,
                                             Timestamp now) {
  auto candidate = daemon::load_policy_file(o.policies_file, base, now);
  for (const auto& e : candidate.errors) std::fprintf(stderr, "%s\n", e.c_str());
  for (const auto& w : candidate.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  if (!candidate.config) {
    std::fprintf(stderr, "%s: %zu problem(s) found\n", o.policies_file.c_str(),
                 candidate.errors.size());
    return std::nullopt;
  }
  return std::move(*candidate.config);
}

}  // namespace

int cmd_violations(const GlobalOptions& g, const ViolationsOptions& o) {
  auto path = database_path(g, o.db);
  if (!path) return kExitUsage;
  auto store = open_store(*path, storage::AuditStore::Mode::kReadOnly);
  if (!store) return kExitFailure;
  storage::ViolationFilter f;
  f.open_only = o.open_only;
  f.cluster = o.cluster;
  f.policy = o.policy;
  auto rows = storage::query_violations(store->db(), f);
  auto actions = storage::query_actions(store->db(), o.cluster);
  if (!rows.ok() || !actions.ok()) {
    print_error(!rows.ok() ? rows.error().message : actions.error().message);
    return kExitFailure;
  }
  std::map<std::int64_t, const storage::ActionRow*> latest;
  for (const auto& a : *actions) latest[a.violation_id] = &a;  // ordered by id: the last wins
  Table t;
  t.columns = {{"id"},
               {"cluster"},
               {"token_id"},
               {"policy"},
               {"severity"},
               {"state"},
               {"action"},
               {"opened_at"},
               {"action_due_at"},
               {"resolved_at", false},
               {"resolution"},
               {"action_id"},
               {"action_state"},
               {"attempts", false},
               {"error", false},
               {"detail", false}};
  for (const auto& v : *rows) {
    auto it = latest.find(v.id);
    const storage::ActionRow* a = it == latest.end() ? nullptr : it->second;
    t.rows.push_back(
        {Cell::num(v.id), Cell::str(v.cluster), Cell::str(v.token_id), Cell::str(v.policy),
         Cell::str(v.severity), Cell::str(std::string(to_string(v.state))), Cell::str(v.action),
         Cell::str(format_timestamp(v.opened_at)), time_cell(v.due_at), time_cell(v.resolved_at),
         v.resolution ? Cell::str(std::string(to_string(*v.resolution))) : Cell::null(),
         a ? Cell::num(a->id) : Cell::null(),
         a ? Cell::str(std::string(to_string(a->state))) : Cell::null(),
         a ? Cell::num(a->attempts) : Cell::null(),
         a && !a->error.empty() ? Cell::str(a->error) : Cell::null(), Cell::json(v.detail)});
  }
  write_stdout(render(t, o.format));
  return kExitOk;
}

int cmd_approve(const GlobalOptions& g, const ApproveOptions& o) {
  if (!approve_options_ok(o)) return kExitUsage;
  std::optional<daemon::Config> config;
  if (o.db.empty()) {
    config = load_config(g, true);
    if (!config) return kExitUsage;
  }
  const std::string path = o.db.empty() ? config->daemon.database : o.db;
  auto store = open_store(path, storage::AuditStore::Mode::kReadWrite);
  if (!store) return kExitFailure;
  if (int rc = check_cluster_known(g, o, config, *store, path); rc != kExitOk) return rc;
  std::string by = o.by.empty() ? invoking_user() : o.by;
  if (!operator_text(by)) by = printable(by, 100);
  SystemClock clock;
  const Timestamp now = clock.now();
  auto txn = store->begin();
  if (!txn.ok()) {
    print_error(txn.error().message);
    return kExitFailure;
  }
  Approval ap{*txn, by, now};
  const int rc = o.all ? approve_cluster(ap, o.cluster) : approve_ids(ap, o.action_ids);
  if (rc != kExitOk) return rc;
  auto s = txn->commit();
  if (!s.ok()) {
    print_error(s.error().message);
    return kExitFailure;
  }
  if (ap.approved == 0 && ap.released == 0) {
    std::printf("nothing awaits approval on cluster %s\n", o.cluster.c_str());
  } else {
    std::printf(
        "approved %d action(s) and released %d halted violation(s) as %s; they run at the next "
        "poll%s\n",
        ap.approved, ap.released, by.c_str(),
        o.cluster.empty() ? "" : (" of " + o.cluster).c_str());
  }
  return kExitOk;
}

int cmd_simulate(const GlobalOptions& g, const SimulateOptions& o) {
  auto base = load_config(g, true);
  if (!base) return kExitUsage;
  SystemClock clock;
  const Timestamp now = clock.now();
  auto candidate = load_candidate(o, *base, now);
  if (!candidate) return kExitUsage;
  auto set = daemon::compile_policies(*candidate);
  if (!set.ok()) {
    print_error(set.error().message);
    return kExitUsage;
  }
  auto store =
      open_store(o.db.empty() ? base->daemon.database : o.db, storage::AuditStore::Mode::kReadOnly);
  if (!store) return kExitFailure;
  const daemon::EnforcementSettings settings = daemon::enforcement_settings(*candidate);
  // Clusters: every one configured, and any other found in the recorded inventory.
  std::map<std::string, policy::ClusterInfo> clusters;
  for (const auto& c : candidate->clusters) clusters[c.name] = {c.name, c.labels};
  auto all = storage::query_inventory(store->db(), {});
  if (!all.ok()) {
    print_error(all.error().message);
    return kExitFailure;
  }
  for (const auto& r : *all) {
    if (!clusters.contains(r.cluster)) clusters[r.cluster] = {r.cluster, {}};
  }
  Simulation sim{**set, settings, now, o.tokens};
  for (const auto& [name, info] : clusters) {
    if (!o.cluster.empty() && name != o.cluster) continue;
    simulate_cluster(sim, name, info, *all);
  }
  write_stdout(render(o.tokens ? sim.detail : sim.summary, o.format));
  if (o.format == OutputFormat::kTable) {
    std::printf("(simulation against the inventory recorded in %s; nothing was written)\n",
                (o.db.empty() ? base->daemon.database : o.db).c_str());
  }
  return kExitOk;
}

}  // namespace tw::cli
