#include "storage/recorder.h"

#include "core/json_writer.h"

namespace tw::storage {

Result<PollSummary> InventoryRecorder::record(const PollInput& in, const Hook& hook) {
  Cache* cache = nullptr;
  {
    std::lock_guard lock(mu_);
    cache = &caches_[in.cluster];
  }
  PollSummary summary;
  auto txn = store_.begin();
  if (!txn.ok()) return txn.take_error();
  const Timestamp now = in.finished_at;

  PollRecord poll;
  poll.cluster = in.cluster;
  poll.started_at = in.started_at;
  poll.finished_at = in.finished_at;

  if (in.tokens == nullptr) {
    summary.outcome = PollOutcome::kFailed;
    summary.message = in.error;
    poll.outcome = PollOutcome::kFailed;
    poll.error = in.error;
    std::string d;
    JsonWriter(d).begin_object().field("error", in.error).field("started_at", in.started_at).end_object();
    if (in.dry_run) return summary;
    auto seq = txn->append({EventKind::kPollFailed, in.cluster, {}, std::move(d)}, now);
    if (!seq.ok()) return seq.take_error();
    auto id = txn->insert_poll(poll);
    if (!id.ok()) return id.take_error();
    TW_RETURN_IF_ERROR(txn->commit());
    summary.poll_id = *id;
    summary.events = txn->appended();
    return summary;
  }

  auto state = txn->cluster_state(in.cluster);
  if (!state.ok()) return state.take_error();
  if (!cache->loaded || cache->version != state->last_ok_poll_id) {
    auto inv = txn->load_inventory(in.cluster);
    if (!inv.ok()) return inv.take_error();
    cache->tokens = std::move(*inv);
    cache->version = state->last_ok_poll_id;
    cache->loaded = true;
  }

  DiffResult diff = diff_inventory(in.cluster, cache->tokens, *in.tokens, now, !state->ever_ok,
                                   state->last_ok_finished.value_or(now));
  summary.token_count = in.tokens->size();
  summary.known = diff.known_present;
  summary.vanished = diff.vanished_ids.size();
  poll.token_count = static_cast<std::int64_t>(in.tokens->size());

  bool too_many_vanished =
      diff.known_present > 0 &&
      diff.vanished_ids.size() * 100 > static_cast<std::size_t>(in.max_vanished_percent) * diff.known_present;
  if (too_many_vanished) {
    std::string digest = vanished_digest(diff.vanished_ids);
    if (state->pending_suspect_digest == digest) {
      summary.confirmed_suspect = true;
    } else {
      summary.outcome = PollOutcome::kSuspect;
      summary.message = std::to_string(diff.vanished_ids.size()) + " of " +
                        std::to_string(diff.known_present) + " known tokens vanished (more than " +
                        std::to_string(in.max_vanished_percent) +
                        "%); nothing is recorded until the next poll confirms it";
      poll.outcome = PollOutcome::kSuspect;
      poll.error = summary.message;
      poll.vanished_digest = digest;
      if (in.dry_run) return summary;
      std::string d;
      JsonWriter(d).begin_object()
          .field("known", static_cast<std::int64_t>(diff.known_present))
          .field("vanished", static_cast<std::int64_t>(diff.vanished_ids.size()))
          .field("listed", static_cast<std::int64_t>(in.tokens->size()))
          .field("max_vanished_percent", in.max_vanished_percent)
          .field("digest", digest)
          .end_object();
      auto seq = txn->append({EventKind::kPollSuspect, in.cluster, {}, std::move(d)}, now);
      if (!seq.ok()) return seq.take_error();
      auto id = txn->insert_poll(poll);
      if (!id.ok()) return id.take_error();
      TW_RETURN_IF_ERROR(txn->commit());
      summary.poll_id = *id;
      summary.events = txn->appended();
      return summary;
    }
  }

  for (const auto& e : diff.events) {
    auto seq = txn->append(e, now);
    if (!seq.ok()) return seq.take_error();
  }
  for (const auto& u : diff.upserts) TW_RETURN_IF_ERROR(txn->put_token(in.cluster, u));
  poll.outcome = PollOutcome::kOk;
  auto id = txn->insert_poll(poll);
  if (!id.ok()) return id.take_error();
  summary.poll_id = *id;

  // From here the cache runs ahead of the database; any failure invalidates it.
  apply_upserts(cache->tokens, std::move(diff.upserts));
  cache->loaded = false;
  if (hook) {
    auto s = hook(*txn, cache->tokens, summary);
    if (!s.ok()) return s.take_error();
  }
  if (in.dry_run) {
    summary.poll_id = 0;
    summary.events = txn->appended();
    return summary;  // rolled back; the cache reloads next time
  }
  TW_RETURN_IF_ERROR(txn->commit());
  cache->version = *id;
  cache->loaded = true;
  summary.events = txn->appended();
  return summary;
}

}  // namespace tw::storage
