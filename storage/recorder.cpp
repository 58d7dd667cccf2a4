#include "storage/recorder.h"

#include <algorithm>
#include <functional>

#include "core/json_writer.h"
#include "storage/sqlite.h"

namespace tw::storage {

namespace {

// What a successful poll established (the poll_checkpoints row, docs/database.md).
struct Checkpoint {
  std::int64_t poll_id = 0;
  std::string digest;
  std::int64_t token_count = 0;
  std::int64_t audit_seq = 0;           // the audit log's last seq at its commit
  Timestamp due_at = Timestamp::max();  // max: never
  std::string evaluation;
};

Result<std::optional<Checkpoint>> read_checkpoint(Db& db, const std::string& cluster) {
  auto st = db.cached(
      "SELECT poll_id, list_digest, token_count, audit_seq, due_at, evaluation "
      "FROM poll_checkpoints WHERE cluster = ?");
  if (!st.ok()) return st.take_error();
  (*st)->bind(1, cluster);
  auto row = (*st)->step();
  if (!row.ok()) return row.take_error();
  std::optional<Checkpoint> out;
  if (*row) {
    Stmt& q = **st;
    out.emplace();
    out->poll_id = q.int64(0);
    out->digest = q.text(1);
    out->token_count = q.int64(2);
    out->audit_seq = q.int64(3);
    if (!q.is_null(4)) out->due_at = Timestamp(Duration(q.int64(4)));
    out->evaluation = q.text(5);
  }
  (*st)->reset();
  return out;
}

Status save_checkpoint(Db& db, const std::string& cluster, const Checkpoint& c) {
  auto st = db.cached(
      "INSERT INTO poll_checkpoints(cluster, poll_id, list_digest, token_count, audit_seq, due_at, "
      "evaluation) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(cluster) DO UPDATE SET "
      "poll_id = excluded.poll_id, list_digest = excluded.list_digest, "
      "token_count = excluded.token_count, audit_seq = excluded.audit_seq, "
      "due_at = excluded.due_at, evaluation = excluded.evaluation");
  if (!st.ok()) return st.take_error();
  (*st)
      ->bind(1, cluster)
      .bind(2, c.poll_id)
      .bind(3, c.digest)
      .bind(4, c.token_count)
      .bind(5, c.audit_seq);
  if (c.due_at == Timestamp::max())
    (*st)->bind_null(6);
  else
    (*st)->bind(6, static_cast<std::int64_t>(c.due_at.time_since_epoch().count()));
  (*st)->bind(7, c.evaluation);
  return (*st)->run();
}

// The last seq of the audit log (0 if empty).
Result<std::int64_t> audit_head(Db& db) {
  auto st = db.cached("SELECT COALESCE(MAX(seq), 0) FROM audit_events");
  if (!st.ok()) return st.take_error();
  auto row = (*st)->step();
  if (!row.ok()) return row.take_error();
  const std::int64_t seq = *row ? (*st)->int64(0) : 0;
  (*st)->reset();
  return seq;
}

// A poll that writes many rows (a first poll: every token, its event and, in the hook, its
// violations) gets a larger page cache for its transaction: with SQLite's default of 2 MiB, the
// inserts into the indexes keyed by token id (in no useful order) evict and read pages back all
// transaction long. The previous size is restored when the poll is done.
constexpr std::size_t kLargeWrite = 10'000;  // changes
class LargeCache {
 public:
  explicit LargeCache(Db& db) : db_(db) {
    auto st = db.prepare("PRAGMA cache_size");
    if (st.ok() && st->step().ok()) previous_ = st->int64(0);
    (void)db.exec("PRAGMA cache_size = -32768");  // KiB: 32 MiB
  }
  LargeCache(const LargeCache&) = delete;
  LargeCache& operator=(const LargeCache&) = delete;
  ~LargeCache() { (void)db_.exec("PRAGMA cache_size = " + std::to_string(previous_)); }

 private:
  Db& db_;
  std::int64_t previous_ = -2000;  // SQLite's default
};

// Commits a poll that records no token change: its one event and its row.
Result<std::int64_t> commit_poll_with_event(WriteTxn& txn, const PollRecord& poll, NewEvent event,
                                            Timestamp now) {
  auto seq = txn.append(event, now);
  if (!seq.ok()) return seq.take_error();
  auto id = txn.insert_poll(poll);
  if (!id.ok()) return id.take_error();
  TW_RETURN_IF_ERROR(txn.commit());
  return id;
}

// Why the direct reads do not confirm the vanishing ("" if they do).
std::string unconfirmed_reason(const std::vector<std::string>& sample,
                               const std::unordered_map<std::string, DirectRead>& reads,
                               Timestamp now) {
  std::size_t failed = 0, present = 0;
  const std::string* example = nullptr;
  const std::string* error = nullptr;
  for (const auto& id : sample) {
    const DirectRead& r = reads.at(id);
    if (!r.ok) {
      if (failed++ == 0) error = &r.error;
    } else if (r.token && status_at(*r.token, now) == TokenStatus::kActive) {
      if (present++ == 0) example = &id;
    }
  }
  if (present > 0) {
    return std::to_string(present) + " of " + std::to_string(sample.size()) +
           " tokens missing from the list still exist when read directly (e.g. " + *example +
           "): the list is incomplete, so nothing is recorded";
  }
  if (failed > 0) {
    return "could not confirm that " + std::to_string(failed) +
           " tokens missing from the list are gone (" + *error + "); nothing is recorded";
  }
  return {};
}

// Turns the confirmed reads into the changes to record: a token read back revoked (or expired)
// is revoked (expired), not removed; the others are removed, confirmed by their own read or by the
// sample's.
void apply_confirmations(ChangePlan& plan, const std::unordered_map<std::string, DirectRead>& reads,
                         Timestamp now) {
  plan.vanished_ids.clear();
  for (auto& c : plan.changes) {
    if (c.type != Change::Type::kVanished) continue;
    auto it = reads.find(c.token->id);
    if (it != reads.end() && it->second.token) {
      c.type = Change::Type::kChanged;
      c.token = &*it->second.token;
      c.status = status_at(*c.token, now);
      continue;
    }
    c.confirmed_by = it != reads.end() ? "direct_read" : "sample";
    plan.vanished_ids.push_back(c.token->id);
  }
}

}  // namespace

std::vector<std::string> removal_sample(const std::vector<std::string>& sorted_vanished) {
  const std::size_t n = sorted_vanished.size();
  if (n <= kRemovalSample) return sorted_vanished;
  std::vector<std::string> out;
  out.reserve(kRemovalSample);
  for (std::size_t i = 0; i < kRemovalSample; ++i)
    out.push_back(sorted_vanished[i * n / kRemovalSample]);
  return out;
}

struct InventoryRecorder::Step {
  PollInput& in;
  const Hook& hook;
  Cache& cache;
  WriteTxn& txn;
  Timestamp now;
  ClusterState state;
  PollSummary summary;
  PollRecord poll;
  std::optional<LargeCache> large_cache;  // a large write: until the poll is done
};

InventoryRecorder::Cache& InventoryRecorder::cache_for(const std::string& cluster) {
  std::lock_guard lock(mu_);
  return caches_[cluster];
}

std::string InventoryRecorder::known_digest(const std::string& cluster) {
  Cache& cache = cache_for(cluster);
  if (!cache.loaded) return {};
  return cache.digest;
}

std::string InventoryRecorder::saved_digest(const std::string& cluster, Timestamp horizon,
                                            const std::string& evaluation) {
  auto txn = store_.begin();
  if (!txn.ok()) return {};
  auto cp = read_checkpoint(txn->db(), cluster);
  if (!cp.ok() || !*cp) return {};
  const Checkpoint& c = **cp;
  if (c.evaluation != evaluation || c.due_at <= horizon) return {};
  return c.digest;
}

Result<PollSummary> InventoryRecorder::record_input(PollInput& in, const Hook& hook) {
  Cache& cache = cache_for(in.cluster);
  auto txn = store_.begin();
  if (!txn.ok()) return txn.take_error();
  Step s{in, hook, cache, *txn, in.finished_at, {}, {}, {}, {}};
  s.summary.list_started_at = in.started_at;
  s.poll.cluster = in.cluster;
  s.poll.started_at = in.started_at;
  s.poll.finished_at = in.finished_at;
  if (!in.tokens && !in.unchanged) return record_failed(s);

  auto state = txn->cluster_state(in.cluster);
  if (!state.ok()) return state.take_error();
  s.state = std::move(*state);
  const bool current = cache.loaded && cache.version == s.state.last_ok_poll_id;
  if (in.unchanged) return record_unchanged(s, current);
  return record_list(s, current);
}

// The source could not list the tokens: the poll row and a poll_failed event.
Result<PollSummary> InventoryRecorder::record_failed(Step& s) {
  s.summary.outcome = PollOutcome::kFailed;
  s.summary.message = s.in.error;
  s.poll.outcome = PollOutcome::kFailed;
  s.poll.error = s.in.error;
  std::string d;
  JsonWriter(d)
      .begin_object()
      .field("error", s.in.error)
      .field("started_at", s.in.started_at)
      .end_object();
  if (s.in.dry_run) return s.summary;
  auto id = commit_poll_with_event(s.txn, s.poll,
                                   {EventKind::kPollFailed, s.in.cluster, {}, std::move(d)}, s.now);
  if (!id.ok()) return id.take_error();
  s.summary.poll_id = *id;
  s.summary.events = s.txn.appended();
  return s.summary;
}

// The same bytes as the list behind the cached inventory: nothing changed but what the clock
// changes (expiries), unless another writer recorded a poll meanwhile.
Result<PollSummary> InventoryRecorder::record_unchanged(Step& s, bool current) {
  if (!current && s.in.use_checkpoint) return record_from_checkpoint(s);
  const Cache& cache = s.cache;
  if (!current || cache.digest.empty() || cache.digest != s.in.digest) {
    s.summary.needs_full_list = true;
    return s.summary;  // rolled back: nothing written
  }
  s.summary.token_count = cache.listed;
  s.summary.known = cache.listed;
  s.poll.outcome = PollOutcome::kOk;
  s.poll.token_count = static_cast<std::int64_t>(cache.listed);
  if (cache.next_expiry <= s.now) return record_expiries(s);
  auto id = s.txn.insert_poll(s.poll);
  if (!id.ok()) return id.take_error();
  s.summary.poll_id = *id;
  return finish(s, cache.listed, true);
}

// The same list, but the expiry of active tokens has passed since it was recorded: the changes
// a full compare of those bytes would find (an `active → expired` change each), taken from the
// cached inventory instead of a decoded list, and written the same way.
Result<PollSummary> InventoryRecorder::record_expiries(Step& s) {
  Cache& cache = s.cache;
  ChangePlan plan = plan_expiries(cache.tokens, s.now);
  s.summary.changed_tokens.reserve(plan.changes.size());
  for (const auto& c : plan.changes) s.summary.changed_tokens.push_back(c.token->id);
  TW_RETURN_IF_ERROR(write_changes(s, plan));
  cache.loaded = false;  // runs ahead of the database until the commit
  for (const auto& c : plan.changes) {
    KnownToken& k = cache.tokens[c.token->id];
    k.status = c.status;
    k.last_seen = s.now;
  }
  cache.next_expiry = next_expiry(cache.tokens);
  return finish(s, cache.listed, false);
}

// An identical list seen by a process without the inventory in memory (a one-shot `poll`): the
// checkpoint stands for the inventory only if it describes the cluster's last successful poll,
// nothing was appended to the audit log since (by any writer: a poll, an approval, an action),
// it was saved for the same evaluation and nothing it stands for is due. Else: a full compare.
Result<PollSummary> InventoryRecorder::record_from_checkpoint(Step& s) {
  auto cp = read_checkpoint(s.txn.db(), s.in.cluster);
  if (!cp.ok()) return cp.take_error();
  auto head = audit_head(s.txn.db());
  if (!head.ok()) return head.take_error();
  if (!*cp || !s.state.ever_ok || (*cp)->poll_id != s.state.last_ok_poll_id ||
      (*cp)->audit_seq != *head || (*cp)->digest.empty() || (*cp)->digest != s.in.digest ||
      (*cp)->evaluation != s.in.evaluation || (*cp)->due_at <= s.now) {
    s.summary.needs_full_list = true;
    return s.summary;  // rolled back: nothing written
  }
  Checkpoint c = std::move(**cp);
  s.summary.from_checkpoint = true;
  s.summary.token_count = static_cast<std::size_t>(c.token_count);
  s.summary.known = s.summary.token_count;
  s.poll.outcome = PollOutcome::kOk;
  s.poll.token_count = c.token_count;
  auto id = s.txn.insert_poll(s.poll);
  if (!id.ok()) return id.take_error();
  if (s.in.dry_run) return s.summary;  // rolled back
  c.poll_id = *id;
  TW_RETURN_IF_ERROR(save_checkpoint(s.txn.db(), s.in.cluster, c));
  TW_RETURN_IF_ERROR(s.txn.commit());
  s.summary.poll_id = *id;
  s.summary.events = s.txn.appended();
  return s.summary;
}

// A decoded list: diff it against the inventory (read again if another writer recorded a poll),
// hold it back if tokens vanished unconfirmed or too many vanished, else record every change.
Result<PollSummary> InventoryRecorder::record_list(Step& s, bool current) {
  Cache& cache = s.cache;
  if (!current) {
    auto inv = s.txn.load_inventory(s.in.cluster);
    if (!inv.ok()) return inv.take_error();
    cache.tokens = std::move(*inv);
    cache.version = s.state.last_ok_poll_id;
    cache.digest.clear();
    cache.loaded = true;
    s.summary.inventory_reloaded = true;
  }
  const std::vector<Token>& fetched = *s.in.tokens;
  ChangePlan plan = plan_changes(cache.tokens, fetched, s.now);
  s.summary.token_count = fetched.size();
  s.summary.known = plan.known_present;
  s.poll.token_count = static_cast<std::int64_t>(fetched.size());
  if (auto held = hold_for_vanished(s, plan)) return std::move(*held);

  s.summary.changed_tokens.reserve(plan.changes.size());
  for (const auto& c : plan.changes) {
    s.summary.changed_tokens.push_back(c.token->id);
    if (c.type == Change::Type::kNew && c.before != nullptr)
      s.summary.reappeared.push_back(c.token->id);
  }
  TW_RETURN_IF_ERROR(write_changes(s, plan));
  update_cache(s, plan, current);
  return finish(s, fetched.size(), false);
}

// Tokens missing from the list: asks for direct reads (needs_confirmation), holds the poll as
// suspect if the reads do not confirm them or too many vanished at once; else turns the
// confirmed reads into changes and returns nothing.
std::optional<Result<PollSummary>> InventoryRecorder::hold_for_vanished(Step& s, ChangePlan& plan) {
  const std::size_t listed = s.in.tokens->size();
  if (!plan.vanished_ids.empty()) {
    std::vector<std::string> sample = removal_sample(plan.vanished_ids);
    for (const auto& id : sample) {
      if (!s.in.confirmations.contains(id)) {
        s.summary.needs_confirmation = true;
        s.summary.to_confirm = std::move(sample);
        return s.summary;  // rolled back: nothing written
      }
    }
    std::string why = unconfirmed_reason(sample, s.in.confirmations, s.now);
    if (!why.empty()) {
      s.summary.vanished = plan.vanished_ids.size();
      std::string d;
      JsonWriter(d)
          .begin_object()
          .field("known", static_cast<std::int64_t>(plan.known_present))
          .field("vanished", static_cast<std::int64_t>(plan.vanished_ids.size()))
          .field("listed", static_cast<std::int64_t>(listed))
          .field("sampled", static_cast<std::int64_t>(sample.size()))
          .field("reason", why)
          .end_object();
      return hold_as_suspect(s, why, std::move(d));
    }
    apply_confirmations(plan, s.in.confirmations, s.now);
  }
  s.summary.vanished = plan.vanished_ids.size();

  const bool too_many_vanished =
      plan.known_present > 0 &&
      plan.vanished_ids.size() * 100 >
          static_cast<std::size_t>(s.in.max_vanished_percent) * plan.known_present;
  if (!too_many_vanished) return std::nullopt;
  std::string digest = vanished_digest(plan.vanished_ids);
  if (s.state.pending_suspect_digest == digest) {
    s.summary.confirmed_suspect = true;
    return std::nullopt;
  }
  s.poll.vanished_digest = digest;
  std::string d;
  JsonWriter(d)
      .begin_object()
      .field("known", static_cast<std::int64_t>(plan.known_present))
      .field("vanished", static_cast<std::int64_t>(plan.vanished_ids.size()))
      .field("listed", static_cast<std::int64_t>(listed))
      .field("max_vanished_percent", s.in.max_vanished_percent)
      .field("digest", digest)
      .end_object();
  return hold_as_suspect(
      s,
      std::to_string(plan.vanished_ids.size()) + " of " + std::to_string(plan.known_present) +
          " known tokens vanished (more than " + std::to_string(s.in.max_vanished_percent) +
          "%); nothing is recorded until the next poll confirms it",
      std::move(d));
}

// Holds the poll as suspect: its row and one poll_suspect event, nothing else.
Result<PollSummary> InventoryRecorder::hold_as_suspect(Step& s, std::string message,
                                                       std::string detail) {
  s.summary.outcome = PollOutcome::kSuspect;
  s.summary.message = message;
  s.poll.outcome = PollOutcome::kSuspect;
  s.poll.error = std::move(message);
  if (s.in.dry_run) return s.summary;
  auto id = commit_poll_with_event(
      s.txn, s.poll, {EventKind::kPollSuspect, s.in.cluster, {}, std::move(detail)}, s.now);
  if (!id.ok()) return id.take_error();
  s.summary.poll_id = *id;
  s.summary.events = s.txn.appended();
  return s.summary;
}

// The events of every change, then the token rows, then the poll row.
Status InventoryRecorder::write_changes(Step& s, const ChangePlan& plan) {
  // Events and rows are written change by change: a first poll of 100k tokens never holds 100k
  // event details at once.
  const bool first_poll = !s.state.ever_ok;
  const Timestamp last_ok = s.state.last_ok_finished.value_or(s.now);
  if (plan.changes.size() >= kLargeWrite) s.large_cache.emplace(s.txn.db());
  for (const auto& c : plan.changes) {
    for (const auto& e : change_events(s.in.cluster, c, first_poll)) {
      auto seq = s.txn.append(e, s.now);
      if (!seq.ok()) return seq.take_error();
    }
  }
  // Rows in key order: B-tree appends touch far fewer pages than inserts in list order.
  std::vector<const Change*> by_id;
  by_id.reserve(plan.changes.size());
  for (const auto& c : plan.changes) by_id.push_back(&c);
  std::sort(by_id.begin(), by_id.end(),
            [](const Change* a, const Change* b) { return a->token->id < b->token->id; });
  for (const Change* c : by_id) {
    TW_RETURN_IF_ERROR(s.txn.put_token(s.in.cluster, change_row(*c, s.now, last_ok)));
  }
  s.poll.outcome = PollOutcome::kOk;
  auto id = s.txn.insert_poll(s.poll);
  if (!id.ok()) return id.take_error();
  s.summary.poll_id = *id;
  return ok_status();
}

// Brings the cached inventory to the state just written. From here the cache runs ahead of the
// database: it stays marked unloaded until the commit. Listed tokens move into the cache;
// vanished ones only change their row.
void InventoryRecorder::update_cache(Step& s, const ChangePlan& plan, bool current) {
  Cache& cache = s.cache;
  std::vector<Token>& fetched = *s.in.tokens;
  const Timestamp last_ok = s.state.last_ok_finished.value_or(s.now);
  cache.loaded = false;
  for (const auto& c : plan.changes) {
    if (c.type == Change::Type::kVanished) {
      KnownToken& k = cache.tokens[c.token->id];
      k.status = TokenStatus::kRemoved;
      k.last_seen = last_ok;
    }
  }
  for (const auto& c : plan.changes) {
    if (c.type == Change::Type::kVanished) continue;
    Timestamp first_seen = c.before != nullptr ? c.before->first_seen : s.now;
    const std::less<const Token*> before;
    const bool listed =
        !before(c.token, fetched.data()) && before(c.token, fetched.data() + fetched.size());
    // Listed tokens are moved (this call owns them); tokens confirmed revoked by a read are copied.
    Token t =
        listed ? std::move(fetched[static_cast<std::size_t>(c.token - fetched.data())]) : *c.token;
    std::string id_copy = t.id;
    cache.tokens.insert_or_assign(std::move(id_copy),
                                  KnownToken{std::move(t), c.status, first_seen, s.now});
  }
  if (!plan.changes.empty() || !current) cache.next_expiry = next_expiry(cache.tokens);
}

// Runs the hook, saves the checkpoint and commits; the cache counts as loaded again only after
// the commit (`intact`: an unchanged list left it as it was, so a dry run keeps it).
Result<PollSummary> InventoryRecorder::finish(Step& s, std::size_t listed, bool intact) {
  Cache& cache = s.cache;
  cache.loaded = false;
  if (s.hook) {
    s.summary.events = s.txn.appended();  // the hook sees what this poll recorded
    auto st = s.hook(s.txn, cache.tokens, s.summary);
    if (!st.ok()) return st.take_error();
  }
  if (s.in.dry_run) {
    cache.loaded = intact;
    s.summary.poll_id = 0;
    s.summary.events = s.txn.appended();
    return s.summary;  // rolled back; a changed cache reloads next time
  }
  auto head = audit_head(s.txn.db());
  if (!head.ok()) return head.take_error();
  const Checkpoint cp{s.summary.poll_id,
                      s.in.digest,
                      static_cast<std::int64_t>(listed),
                      *head,
                      std::min(cache.next_expiry, s.summary.hook_due),
                      s.in.evaluation};
  TW_RETURN_IF_ERROR(save_checkpoint(s.txn.db(), s.in.cluster, cp));
  TW_RETURN_IF_ERROR(s.txn.commit());
  cache.version = s.summary.poll_id;
  cache.digest = s.in.digest;
  cache.listed = listed;
  cache.loaded = true;
  s.summary.events = s.txn.appended();
  return s.summary;
}

}  // namespace tw::storage
