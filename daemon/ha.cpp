#include "daemon/ha.h"

#include <algorithm>

#include "core/json_writer.h"
#include "core/strings.h"
#include "daemon/alerts.h"
#include "influx/management_token.h"
#include "storage/queries.h"

namespace tw::daemon {

namespace {

// Text from the coordination service goes into the audit log: valid UTF-8, bounded.
std::string clip(std::string_view s, std::size_t max = 256) {
  return sanitize_utf8(truncate_utf8(s, max));
}

double seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

// What a read-back says about an intent left open: the effect is there, it is not, or the token
// is gone.
std::string finding(const ha::Intent& i, const std::optional<Token>& t) {
  if (!t) return "gone";
  if (t->revoked_at) return "revoked";
  if (i.action == "restrict" && !i.target.empty()) {
    auto target = parse_permissions_json(i.target);
    if (target.ok() && same_permissions(t->permissions, *target)) return "restricted";
  }
  return "not_done";
}

}  // namespace

HaCoordinator::HaCoordinator(const HaSection& config, storage::AuditStore& store, HaDeps deps)
    : config_(config), store_(store), deps_(std::move(deps)), log_("ha", deps_.sink) {}

HaCoordinator::~HaCoordinator() { stop(); }

Result<std::unique_ptr<HaCoordinator>> HaCoordinator::create(const HaSection& config,
                                                             storage::AuditStore& store,
                                                             HaDeps deps) {
  std::unique_ptr<HaCoordinator> h(new HaCoordinator(config, store, std::move(deps)));
  if (h->deps_.backend) {
    h->backend_ = std::move(h->deps_.backend);
  } else {
    ha::EtcdOptions o;
    for (const auto& e : config.endpoints) {
      auto u = influx::parse_url(e);
      if (!u.ok())
        return make_error(ErrorCode::kInvalidArgument, "ha.endpoints: " + u.error().message);
      o.endpoints.push_back(*u);
    }
    o.ca_file = config.ca_file;
    o.cert_file = config.cert_file;
    o.key_file = config.key_file;
    if (!config.username.empty()) {
      auto password =
          influx::read_management_token(config.password_file, h->deps_.credentials_directory);
      if (!password.ok()) {
        return make_error(password.error().code, "ha.password_file: " + password.error().message);
      }
      o.username = config.username;
      o.password = std::move(*password);
    }
    // A renewal must come back well inside the lease: a third of the renewal interval.
    o.timeout = std::clamp<Duration>(config.lease_ttl / 3, std::chrono::milliseconds(500),
                                     std::chrono::seconds(5));
    h->backend_ = std::make_unique<ha::EtcdCoordination>(std::move(o), h.get());
  }
  const ha::SteadyClock& steady = h->deps_.steady ? *h->deps_.steady : h->real_steady_;
  ha::ElectionOptions eo;
  eo.instance = config.instance;
  eo.key_prefix = config.key_prefix;
  eo.lease_ttl = config.lease_ttl;
  h->election_ = std::make_unique<ha::Election>(*h->backend_, steady, eo);
  auto txn = store.begin();
  if (!txn.ok()) return txn.take_error();
  auto cursor = storage::last_observed_intent_revision(txn->db(), config.key_prefix);
  if (!cursor.ok()) return cursor.take_error();
  h->mirrored_ = *cursor;
  return h;
}

void HaCoordinator::etcd_call(const char* op, bool ok) {
  if (deps_.metrics != nullptr) deps_.metrics->ha_etcd_call(op, ok);
}

bool HaCoordinator::leading() const {
  if (election_->role() != ha::Role::kLeader) return false;
  std::lock_guard lock(mu_);
  return ready_term_ == election_->term();
}

std::int64_t HaCoordinator::term() const { return election_->term(); }

void HaCoordinator::start() {
  publish();
  if (deps_.alerts != nullptr) deps_.alerts->set_muted(true);
  thread_ = std::thread([this] { run(); });
}

void HaCoordinator::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    auto r = election_->tick();
    after_tick(r);
    lock.lock();
    cv_.wait_for(lock, r.next, [this] { return stopping_ || wake_; });
    wake_ = false;
  }
}

void HaCoordinator::step() { after_tick(election_->tick()); }

void HaCoordinator::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  const bool led = election_->role() == ha::Role::kLeader;
  election_->resign();
  if (led) log_.info("resigned the leadership: the lease is revoked, a standby takes over now");
  record_leadership();
  publish();
}

void HaCoordinator::after_tick(const ha::TickResult& r) {
  if (!r.error.empty()) {
    if (!outage_logged_) {
      log_.error("etcd unreachable: " + r.error,
                 {{"instance", config_.instance},
                  {"lease_remaining", format_duration(election_->lease_remaining())}});
      outage_logged_ = true;
    }
  } else if (outage_logged_) {
    log_.info("etcd reachable again", {{"instance", config_.instance}});
    outage_logged_ = false;
  }
  record_leadership();
  if (election_->role() == ha::Role::kLeader) {
    bool ready;
    {
      std::lock_guard lock(mu_);
      ready = ready_term_ == election_->term();
    }
    if (!ready) load_open_intents(election_->term());
  }
  bool pending;
  {
    std::lock_guard lock(mu_);
    pending = mirror_pending_;
  }
  if (r.store_changed || pending) mirror();
  publish();
}

Status HaCoordinator::append(EventKind kind, const std::string& cluster,
                             const std::string& token_id, std::string detail) {
  auto txn = store_.begin();
  if (!txn.ok()) return txn.take_error();
  auto seq = txn->append({kind, cluster, token_id, std::move(detail)}, deps_.clock->now());
  if (!seq.ok()) return seq.take_error();
  return txn->commit();
}

void HaCoordinator::record_leadership() {
  for (const auto& e : election_->take_events()) {
    std::string d;
    JsonWriter w(d);
    w.begin_object().field("term", e.term).field("instance", config_.instance);
    if (!e.acquired) w.field("reason", e.reason);
    w.end_object();
    auto s =
        append(e.acquired ? EventKind::kLeadershipAcquired : EventKind::kLeadershipLost, {}, {}, d);
    if (!s.ok()) {
      log_.error("cannot record a leadership change in the audit log",
                 {{"term", e.term}, {"error", s.error().message}});
    }
    if (e.acquired) {
      log_.warn("leadership acquired: this instance now acts and alerts",
                {{"instance", config_.instance}, {"term", e.term}});
      if (deps_.alerts != nullptr) deps_.alerts->set_muted(false);
    } else {
      log_.warn("leadership lost: this instance no longer acts or alerts",
                {{"instance", config_.instance}, {"term", e.term}, {"reason", e.reason}});
      if (deps_.alerts != nullptr) deps_.alerts->set_muted(true);
      std::lock_guard lock(mu_);
      ready_term_ = 0;
      open_.clear();
    }
  }
}

// A new term: the intents earlier terms left at "intent" (begun, outcome unknown) must be read
// back before this instance acts on their clusters.
void HaCoordinator::load_open_intents(std::int64_t term) {
  auto r = backend_->range_prefix(ha::intents_prefix(config_.key_prefix), 0);
  if (!r.ok()) {
    log_.warn("cannot read the intents earlier terms left; no action until they are read",
              {{"term", term}, {"error", r.error().message}});
    return;
  }
  std::map<std::string, std::vector<std::pair<std::string, ha::Intent>>> open;
  std::int64_t n = 0;
  for (const auto& kv : r->kvs) {
    auto i = ha::decode_intent(kv.value);
    if (!i || i->state != "intent" || i->term >= term) continue;
    open[i->cluster].emplace_back(kv.key, std::move(*i));
    ++n;
  }
  if (n > 0) {
    log_.warn("intents left open by earlier terms are reconciled before any action",
              {{"term", term}, {"open_intents", n}});
  }
  {
    std::lock_guard lock(mu_);
    if (election_->term() != term || election_->role() != ha::Role::kLeader) return;
    open_ = std::move(open);
    ready_term_ = term;
  }
  if (on_leading_) on_leading_();
}

bool HaCoordinator::reconcile(const std::string& cluster, influx::ClusterClient& client,
                              const influx::CallContext& ctx) {
  std::vector<std::pair<std::string, ha::Intent>> todo;
  std::int64_t term = 0;
  {
    std::lock_guard lock(mu_);
    if (ready_term_ == 0) return false;
    term = ready_term_;
    auto it = open_.find(cluster);
    if (it == open_.end()) return true;
    todo = std::move(it->second);
    open_.erase(it);
  }
  std::size_t done = 0;
  for (; done < todo.size(); ++done) {
    const auto& [key, intent] = todo[done];
    auto t = client.get_token(intent.token_id, ctx);
    if (!t.ok()) {
      log_.warn(
          "cannot read a token back to reconcile an open intent; no action until it is",
          {{"cluster", cluster}, {"token_id", intent.token_id}, {"error", t.error().message}});
      break;
    }
    auto f = election_->fence(Duration(0));
    if (!f.ok() || f->term != term) break;
    ha::Intent r = intent;
    r.state = "reconciled";
    r.outcome = finding(intent, *t);
    r.error.clear();
    r.from_term = intent.term;
    r.term = term;
    r.instance = config_.instance;
    r.updated_at = deps_.clock->now();
    auto w = backend_->put_fenced(key, ha::encode_intent(r), f->leader_key, term);
    if (!w.ok()) break;
    if (!w->ok) {
      election_->lost_leadership(term, "leader_key_lost");
      break;
    }
    std::string d;
    JsonWriter(d)
        .begin_object()
        .field("instance", clip(intent.instance))
        .field("term", intent.term)
        .field("policy", clip(intent.policy))
        .field("action", clip(intent.action))
        .field("state", "reconciled")
        .field("outcome", r.outcome)
        .field("reconciled_by", config_.instance)
        .field("reconciled_in_term", term)
        // Not "revision": that names the mirror's cursor (storage::last_observed_intent_revision),
        // which this write must not move past intents not yet mirrored.
        .field("reconciled_revision", w->revision)
        .end_object();
    (void)append(EventKind::kActionObserved, clip(cluster), clip(intent.token_id), d);
    log_.warn("intent left open by an earlier term reconciled", {{"cluster", cluster},
                                                                 {"token_id", intent.token_id},
                                                                 {"from_term", intent.term},
                                                                 {"finding", r.outcome}});
  }
  if (done == todo.size()) return true;
  std::lock_guard lock(mu_);
  if (ready_term_ == term) {
    auto& back = open_[cluster];
    back.insert(back.begin(),
                std::make_move_iterator(todo.begin() + static_cast<std::ptrdiff_t>(done)),
                std::make_move_iterator(todo.end()));
  }
  return false;
}

ha::Intent HaCoordinator::intent_of(const std::string& cluster, const storage::ActionRow& a) const {
  ha::Intent i;
  i.cluster = cluster;
  i.token_id = a.token_id;
  i.policy = a.policy;
  i.action = a.action;
  i.instance = config_.instance;
  i.action_id = a.id;
  i.attempt = a.attempts + 1;
  i.planned_at = a.planned_at;
  i.updated_at = deps_.clock->now();
  if (a.action == "restrict") i.target = permissions_json(a.target);
  return i;
}

Result<ActionTicket> HaCoordinator::begin(const std::string& cluster, const storage::ActionRow& a,
                                          Duration deadline) {
  auto refuse = [&](std::string why) -> Result<ActionTicket> {
    if (deps_.metrics != nullptr) deps_.metrics->ha_fence_refused();
    {
      std::lock_guard lock(mu_);
      wake_ = true;  // record a step-down now
    }
    cv_.notify_all();
    return make_error(ErrorCode::kUnsupported, std::move(why));
  };
  auto f = election_->fence(deadline);
  if (!f.ok()) return refuse(f.error().message);
  bool ready;
  {
    std::lock_guard lock(mu_);
    ready = ready_term_ == f->term;
  }
  if (!ready) return refuse("the intents of earlier terms are not read yet");
  ha::Intent i = intent_of(cluster, a);
  i.state = "intent";
  i.term = f->term;
  const std::string key = ha::intent_key(config_.key_prefix, cluster, a.token_id, a.policy);
  std::string value = ha::encode_intent(i);
  auto w = backend_->put_fenced(key, value, f->leader_key, f->term);
  if (!w.ok())
    return refuse("the action's intent could not be written to etcd: " + w.error().message);
  if (!w->ok) {
    election_->lost_leadership(f->term, "leader_key_lost");
    return refuse("the leader key moved: this instance no longer leads");
  }
  return ActionTicket{f->term, key, std::move(value)};
}

bool HaCoordinator::holds(const ActionTicket& ticket) const {
  return election_->role() == ha::Role::kLeader && election_->term() == ticket.term &&
         election_->lease_remaining() > Duration(0);
}

bool HaCoordinator::may_send(const ActionTicket& ticket, Duration deadline) {
  auto refuse = [&](const std::string& why) {
    if (deps_.metrics != nullptr) deps_.metrics->ha_fence_refused();
    log_.warn("request not sent: leadership could not be proven for its deadline: " + why,
              {{"term", ticket.term}, {"deadline", format_duration(deadline)}});
    {
      std::lock_guard lock(mu_);
      wake_ = true;  // record a step-down (and mute the alerts) now
    }
    cv_.notify_all();
    return false;
  };
  // Proof from etcd, not from our own clock: the lease still exists (renewed now, which also
  // restarts our reckoning of it) and the leader key still has our term.
  if (!election_->renew_now()) return refuse("the lease could not be renewed");
  auto f = election_->fence(deadline);
  if (!f.ok()) return refuse(f.error().message);
  if (f->term != ticket.term) return refuse("another term began");
  auto w = backend_->put_fenced(ticket.key, ticket.value, f->leader_key, f->term);
  if (!w.ok()) return refuse(w.error().message);
  if (!w->ok) {
    election_->lost_leadership(f->term, "leader_key_lost");
    return refuse("the leader key moved");
  }
  return true;
}

void HaCoordinator::finish(const ActionTicket& ticket, const std::string& cluster,
                           const storage::ActionRow& a, std::string_view state,
                           std::string_view outcome, std::string_view error) {
  ha::Intent i = intent_of(cluster, a);
  i.state = std::string(state);
  i.term = ticket.term;
  i.outcome = std::string(outcome);
  i.error = clip(error, 512);
  auto w =
      backend_->put_fenced(ticket.key, ha::encode_intent(i), election_->leader_key(), ticket.term);
  if (!w.ok() || !w->ok) {
    log_.warn("the action's outcome could not be written to etcd; the next leader reconciles it",
              {{"cluster", cluster},
               {"token_id", a.token_id},
               {"error", w.ok() ? std::string("the leader key moved") : w.error().message}});
    if (w.ok()) election_->lost_leadership(ticket.term, "leader_key_lost");
  }
}

// The intents other instances wrote since the last one recorded: one action_observed each.
bool HaCoordinator::mirror() {
  {
    std::lock_guard lock(mu_);
    mirror_pending_ = true;  // until this one is recorded
  }
  auto r = backend_->range_prefix(ha::intents_prefix(config_.key_prefix), mirrored_ + 1);
  if (!r.ok()) return false;
  std::vector<const ha::KeyValue*> kvs;
  for (const auto& kv : r->kvs) kvs.push_back(&kv);
  std::sort(kvs.begin(), kvs.end(),
            [](auto* a, auto* b) { return a->mod_revision < b->mod_revision; });
  std::int64_t last = mirrored_;
  auto txn = store_.begin();
  if (!txn.ok()) return false;
  for (const auto* kv : kvs) {
    auto i = ha::decode_intent(kv->value);
    if (i && i->instance != config_.instance) {
      std::string d;
      JsonWriter w(d);
      w.begin_object()
          .field("instance", clip(i->instance))
          .field("term", i->term)
          .field("policy", clip(i->policy))
          .field("action", clip(i->action))
          .field("state", clip(i->state, 32))
          .field("attempt", i->attempt)
          .field("planned_at", i->planned_at)
          .field("updated_at", i->updated_at);
      if (!i->outcome.empty()) w.field("outcome", clip(i->outcome, 32));
      if (!i->error.empty()) w.field("error", clip(i->error, 512));
      if (i->from_term != 0) w.field("from_term", i->from_term);
      w.field("revision", kv->mod_revision).field("key_prefix", config_.key_prefix).end_object();
      auto seq = txn->append({EventKind::kActionObserved, clip(i->cluster), clip(i->token_id), d},
                             deps_.clock->now());
      if (!seq.ok()) return false;
    }
    last = std::max(last, kv->mod_revision);
  }
  if (!txn->commit().ok()) return false;
  std::lock_guard lock(mu_);
  mirrored_ = last;
  mirror_pending_ = false;
  return true;
}

void HaCoordinator::publish() {
  if (deps_.metrics == nullptr) return;
  deps_.metrics->ha_status(leading(), election_->term(), election_->service_reachable(),
                           seconds(election_->lease_remaining()));
}

}  // namespace tw::daemon
