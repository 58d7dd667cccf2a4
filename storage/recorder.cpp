#include "storage/recorder.h"

#include <algorithm>
#include <functional>

#include "core/json_writer.h"

namespace tw::storage {

namespace {

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

InventoryRecorder::Cache& InventoryRecorder::cache_for(const std::string& cluster) {
  std::lock_guard lock(mu_);
  return caches_[cluster];
}

std::string InventoryRecorder::known_digest(const std::string& cluster, Timestamp horizon) {
  Cache& cache = cache_for(cluster);
  if (!cache.loaded || cache.digest.empty() || cache.next_expiry <= horizon) return {};
  return cache.digest;
}

Result<PollSummary> InventoryRecorder::record_input(PollInput& in, const Hook& hook) {
  Cache& cache = cache_for(in.cluster);
  PollSummary summary;
  summary.list_started_at = in.started_at;
  auto txn = store_.begin();
  if (!txn.ok()) return txn.take_error();
  const Timestamp now = in.finished_at;

  PollRecord poll;
  poll.cluster = in.cluster;
  poll.started_at = in.started_at;
  poll.finished_at = in.finished_at;

  if (!in.tokens && !in.unchanged) {
    summary.outcome = PollOutcome::kFailed;
    summary.message = in.error;
    poll.outcome = PollOutcome::kFailed;
    poll.error = in.error;
    std::string d;
    JsonWriter(d)
        .begin_object()
        .field("error", in.error)
        .field("started_at", in.started_at)
        .end_object();
    if (in.dry_run) return summary;
    auto id = commit_poll_with_event(*txn, poll,
                                     {EventKind::kPollFailed, in.cluster, {}, std::move(d)}, now);
    if (!id.ok()) return id.take_error();
    summary.poll_id = *id;
    summary.events = txn->appended();
    return summary;
  }

  auto state = txn->cluster_state(in.cluster);
  if (!state.ok()) return state.take_error();
  bool current = cache.loaded && cache.version == state->last_ok_poll_id;

  if (in.unchanged) {
    // The same bytes as the list behind the cached inventory: nothing changed, unless another
    // writer recorded a poll meanwhile or a token has expired since.
    if (!current || cache.digest.empty() || cache.digest != in.digest || cache.next_expiry <= now) {
      summary.needs_full_list = true;
      return summary;  // rolled back: nothing written
    }
    summary.token_count = cache.listed;
    summary.known = cache.listed;
    poll.outcome = PollOutcome::kOk;
    poll.token_count = static_cast<std::int64_t>(cache.listed);
    auto id = txn->insert_poll(poll);
    if (!id.ok()) return id.take_error();
    summary.poll_id = *id;
    if (hook) {
      cache.loaded = false;  // until committed
      auto s = hook(*txn, cache.tokens, summary);
      if (!s.ok()) return s.take_error();
      cache.loaded = true;
    }
    if (in.dry_run) {
      summary.poll_id = 0;
      summary.events = txn->appended();
      return summary;
    }
    cache.loaded = false;
    TW_RETURN_IF_ERROR(txn->commit());
    cache.version = *id;
    cache.loaded = true;
    summary.events = txn->appended();
    return summary;
  }

  if (!current) {
    auto inv = txn->load_inventory(in.cluster);
    if (!inv.ok()) return inv.take_error();
    cache.tokens = std::move(*inv);
    cache.version = state->last_ok_poll_id;
    cache.digest.clear();
    cache.loaded = true;
    summary.inventory_reloaded = true;
  }

  std::vector<Token>& fetched = *in.tokens;
  ChangePlan plan = plan_changes(cache.tokens, fetched, now);
  summary.token_count = fetched.size();
  summary.known = plan.known_present;
  poll.token_count = static_cast<std::int64_t>(fetched.size());
  // Holds the poll as suspect: its row and one poll_suspect event, nothing else.
  auto suspect = [&](std::string message, std::string detail) -> Result<PollSummary> {
    summary.outcome = PollOutcome::kSuspect;
    summary.message = message;
    poll.outcome = PollOutcome::kSuspect;
    poll.error = std::move(message);
    if (in.dry_run) return summary;
    auto id = commit_poll_with_event(
        *txn, poll, {EventKind::kPollSuspect, in.cluster, {}, std::move(detail)}, now);
    if (!id.ok()) return id.take_error();
    summary.poll_id = *id;
    summary.events = txn->appended();
    return summary;
  };
  if (!plan.vanished_ids.empty()) {
    std::vector<std::string> sample = removal_sample(plan.vanished_ids);
    for (const auto& id : sample) {
      if (!in.confirmations.contains(id)) {
        summary.needs_confirmation = true;
        summary.to_confirm = std::move(sample);
        return summary;  // rolled back: nothing written
      }
    }
    std::string why = unconfirmed_reason(sample, in.confirmations, now);
    if (!why.empty()) {
      summary.vanished = plan.vanished_ids.size();
      std::string d;
      JsonWriter(d)
          .begin_object()
          .field("known", static_cast<std::int64_t>(plan.known_present))
          .field("vanished", static_cast<std::int64_t>(plan.vanished_ids.size()))
          .field("listed", static_cast<std::int64_t>(fetched.size()))
          .field("sampled", static_cast<std::int64_t>(sample.size()))
          .field("reason", why)
          .end_object();
      return suspect(why, std::move(d));
    }
    apply_confirmations(plan, in.confirmations, now);
  }
  summary.vanished = plan.vanished_ids.size();

  bool too_many_vanished =
      plan.known_present > 0 &&
      plan.vanished_ids.size() * 100 >
          static_cast<std::size_t>(in.max_vanished_percent) * plan.known_present;
  if (too_many_vanished) {
    std::string digest = vanished_digest(plan.vanished_ids);
    if (state->pending_suspect_digest == digest) {
      summary.confirmed_suspect = true;
    } else {
      poll.vanished_digest = digest;
      std::string d;
      JsonWriter(d)
          .begin_object()
          .field("known", static_cast<std::int64_t>(plan.known_present))
          .field("vanished", static_cast<std::int64_t>(plan.vanished_ids.size()))
          .field("listed", static_cast<std::int64_t>(fetched.size()))
          .field("max_vanished_percent", in.max_vanished_percent)
          .field("digest", digest)
          .end_object();
      return suspect(std::to_string(plan.vanished_ids.size()) + " of " +
                         std::to_string(plan.known_present) + " known tokens vanished (more than " +
                         std::to_string(in.max_vanished_percent) +
                         "%); nothing is recorded until the next poll confirms it",
                     std::move(d));
    }
  }

  summary.changed_tokens.reserve(plan.changes.size());
  for (const auto& c : plan.changes) {
    summary.changed_tokens.push_back(c.token->id);
    if (c.type == Change::Type::kNew && c.before != nullptr)
      summary.reappeared.push_back(c.token->id);
  }
  // Events and rows are written change by change: a first poll of 100k tokens never holds 100k
  // event details at once.
  const bool first_poll = !state->ever_ok;
  const Timestamp last_ok = state->last_ok_finished.value_or(now);
  for (const auto& c : plan.changes) {
    for (const auto& e : change_events(in.cluster, c, first_poll)) {
      auto seq = txn->append(e, now);
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
    TW_RETURN_IF_ERROR(txn->put_token(in.cluster, change_row(*c, now, last_ok)));
  }
  poll.outcome = PollOutcome::kOk;
  auto id = txn->insert_poll(poll);
  if (!id.ok()) return id.take_error();
  summary.poll_id = *id;

  // From here the cache runs ahead of the database; any failure leaves it marked unloaded.
  // Listed tokens move into the cache; vanished ones only change their row.
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
    Timestamp first_seen = c.before != nullptr ? c.before->first_seen : now;
    const std::less<const Token*> before;
    const bool listed =
        !before(c.token, fetched.data()) && before(c.token, fetched.data() + fetched.size());
    // Listed tokens are moved (this call owns them); tokens confirmed revoked by a read are copied.
    Token t =
        listed ? std::move(fetched[static_cast<std::size_t>(c.token - fetched.data())]) : *c.token;
    std::string id_copy = t.id;
    cache.tokens.insert_or_assign(std::move(id_copy),
                                  KnownToken{std::move(t), c.status, first_seen, now});
  }
  if (!plan.changes.empty() || !current) cache.next_expiry = next_expiry(cache.tokens);
  if (hook) {
    summary.events = txn->appended();  // the hook sees what this poll recorded
    auto s = hook(*txn, cache.tokens, summary);
    if (!s.ok()) return s.take_error();
  }
  if (in.dry_run) {
    summary.poll_id = 0;
    summary.events = txn->appended();
    return summary;  // rolled back; the cache reloads next time
  }
  TW_RETURN_IF_ERROR(txn->commit());
  cache.version = *id;
  cache.digest = in.digest;
  cache.listed = fetched.size();
  cache.loaded = true;
  summary.events = txn->appended();
  return summary;
}

}  // namespace tw::storage
