#include "storage/owners.h"

#include "core/json_writer.h"
#include "storage/audit_store.h"
#include "storage/sqlite.h"

namespace tw::storage {
namespace {

std::optional<std::string> nullable(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>(s);
}

}  // namespace

Result<std::unordered_map<std::string, Ownership>> load_owners(Db& db, const std::string& cluster) {
  auto st = db.prepare(
      "SELECT token_id, owner, team, contact, owner_rule FROM token_owners WHERE cluster = ?1");
  if (!st.ok()) return st.take_error();
  st->bind(1, cluster);
  std::unordered_map<std::string, Ownership> out;
  while (true) {
    auto r = st->step();
    if (!r.ok()) return r.take_error();
    if (!*r) break;
    Ownership o;
    o.owner = st->opt_text(1).value_or("");
    o.team = st->opt_text(2).value_or("");
    o.contact = st->opt_text(3).value_or("");
    o.rule = st->opt_text(4).value_or("");
    out.emplace(st->text(0), std::move(o));
  }
  return out;
}

Status put_owner(WriteTxn& txn, const std::string& cluster, const std::string& token_id,
                 const Ownership& o, Timestamp at) {
  if (!o.matched()) {
    auto del = txn.db().cached("DELETE FROM token_owners WHERE cluster = ?1 AND token_id = ?2");
    if (!del.ok()) return del.take_error();
    (*del)->bind(1, cluster).bind(2, token_id);
    return (*del)->run();
  }
  auto st = txn.db().cached(
      "INSERT OR REPLACE INTO token_owners(cluster, token_id, owner, team, contact, owner_rule, "
      "resolved_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  if (!st.ok()) return st.take_error();
  (*st)->bind(1, cluster).bind(2, token_id).bind(3, nullable(o.owner)).bind(4, nullable(o.team));
  (*st)->bind(5, nullable(o.contact)).bind(6, nullable(o.rule)).bind(7, format_timestamp(at));
  return (*st)->run();
}

NewEvent owner_changed_event(const std::string& cluster, const std::string& token_id,
                             const Ownership& before, const Ownership& after,
                             std::string_view cause) {
  std::string detail;
  JsonWriter w(detail);
  w.begin_object();
  w.field_or_null("owner", after.owner).field_or_null("team", after.team);
  w.field_or_null("owner_rule", after.rule).field_or_null("contact", after.contact);
  w.field_or_null("previous_owner", before.owner).field_or_null("previous_team", before.team);
  w.field_or_null("previous_owner_rule", before.rule);
  w.field("cause", cause);
  w.end_object();
  return NewEvent{EventKind::kOwnerChanged, cluster, token_id, std::move(detail)};
}

Result<std::vector<SentNotice>> load_notices(Db& db, const std::string& cluster) {
  auto st = db.prepare(
      "SELECT token_id, policy, expires_at, threshold FROM expiry_notices WHERE cluster = ?1");
  if (!st.ok()) return st.take_error();
  st->bind(1, cluster);
  std::vector<SentNotice> out;
  while (true) {
    auto r = st->step();
    if (!r.ok()) return r.take_error();
    if (!*r) break;
    out.push_back(SentNotice{st->text(0), st->text(1), st->text(2), st->text(3)});
  }
  return out;
}

Status prune_notices(WriteTxn& txn, const std::string& cluster, Timestamp now) {
  auto st = txn.db().cached("DELETE FROM expiry_notices WHERE cluster = ?1 AND expires_at < ?2");
  if (!st.ok()) return st.take_error();
  (*st)->bind(1, cluster).bind(2, format_timestamp(now));
  return (*st)->run();
}

Result<std::int64_t> record_notice(WriteTxn& txn, const std::string& cluster, const SentNotice& n,
                                   std::string detail, Timestamp at) {
  auto seq =
      txn.append(NewEvent{EventKind::kNoticeSent, cluster, n.token_id, std::move(detail)}, at);
  if (!seq.ok()) return seq.take_error();
  auto st = txn.db().cached(
      "INSERT OR IGNORE INTO expiry_notices(cluster, token_id, policy, expires_at, threshold, "
      "sent_at, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  if (!st.ok()) return st.take_error();
  (*st)->bind(1, cluster).bind(2, n.token_id).bind(3, n.policy).bind(4, n.expires_at);
  (*st)->bind(5, n.threshold).bind(6, format_timestamp(at)).bind(7, *seq);
  TW_RETURN_IF_ERROR((*st)->run());
  return seq;
}

}  // namespace tw::storage
