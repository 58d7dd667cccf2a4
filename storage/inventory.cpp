#include "storage/inventory.h"

#include <algorithm>
#include <unordered_set>

#include "core/json_writer.h"
#include "core/sha256.h"

namespace tw::storage {
namespace {

std::string state_detail(const Token& t, TokenStatus status) {
  std::string out;
  out.reserve(256);
  append_token_state_json(out, t);
  out.pop_back();  // reopen the object to add fields
  out += ",\"status\":";
  append_json_string(out, to_string(status));
  out += '}';
  return out;
}

// {"before":{state recorded when it was removed},"after":{state now}}.
std::string reappeared_detail(const KnownToken& before, const Token& after, TokenStatus status) {
  return "{\"before\":" + state_detail(before.token, TokenStatus::kRemoved) +
         ",\"after\":" + state_detail(after, status) + "}";
}

// {"before":{…},"after":{…}} with only the fields that changed; empty if none did.
std::string update_detail(const Token& before, const Token& after, bool include_revoked) {
  std::string b, a;
  JsonWriter wb(b), wa(a);
  wb.begin_object();
  wa.begin_object();
  bool any = false;
  if (before.description != after.description) {
    wb.field("description", before.description);
    wa.field("description", after.description);
    any = true;
  }
  if (before.permissions != after.permissions) {
    wb.key("permissions").raw(permissions_json(before.permissions));
    wa.key("permissions").raw(permissions_json(after.permissions));
    any = true;
  }
  if (before.created_at != after.created_at) {
    wb.field("created_at", before.created_at);
    wa.field("created_at", after.created_at);
    any = true;
  }
  if (before.expires_at != after.expires_at) {
    wb.field("expires_at", before.expires_at);
    wa.field("expires_at", after.expires_at);
    any = true;
  }
  if (include_revoked && before.revoked_at != after.revoked_at) {
    wb.field("revoked_at", before.revoked_at);
    wa.field("revoked_at", after.revoked_at);
    any = true;
  }
  if (!any) return {};
  wb.end_object();
  wa.end_object();
  return "{\"before\":" + b + ",\"after\":" + a + "}";
}

}  // namespace

ChangePlan plan_changes(const Inventory& known, const std::vector<Token>& fetched, Timestamp now) {
  ChangePlan plan;
  std::size_t matched = 0;  // known present tokens that are listed again
  for (const auto& t : fetched) {
    TokenStatus status = status_at(t, now);
    auto it = known.find(t.id);
    if (it == known.end()) {
      plan.changes.push_back({Change::Type::kNew, &t, nullptr, status, {}});
      continue;
    }
    const KnownToken& k = it->second;
    if (k.status == TokenStatus::kRemoved) {
      plan.changes.push_back({Change::Type::kNew, &t, &k, status, {}});
      continue;
    }
    ++matched;
    if (k.status == status && k.token == t) continue;  // the common case: nothing changed
    plan.changes.push_back({Change::Type::kChanged, &t, &k, status, {}});
  }
  for (const auto& [id, k] : known) {
    if (k.status != TokenStatus::kRemoved) ++plan.known_present;
  }
  if (matched < plan.known_present) {
    // Ids are unique in both inputs, so only now is a set of the listed ids needed.
    std::unordered_set<std::string_view> listed;
    listed.reserve(fetched.size());
    for (const auto& t : fetched) listed.insert(t.id);
    std::vector<const KnownToken*> vanished;
    for (const auto& [id, k] : known) {
      // A revoked or expired token left out of the list is hidden, not gone: lists that hide
      // them are plausible (docs/sources.md). If it is renewed or changed it is listed again.
      if (k.status == TokenStatus::kActive && !listed.contains(id)) {
        vanished.push_back(&k);
      }
    }
    std::sort(vanished.begin(), vanished.end(),
              [](const KnownToken* a, const KnownToken* b) { return a->token.id < b->token.id; });
    for (const KnownToken* k : vanished) {
      plan.vanished_ids.push_back(k->token.id);
      plan.changes.push_back({Change::Type::kVanished, &k->token, k, TokenStatus::kRemoved, {}});
    }
  }
  // Written in id order: the rows and index entries keyed by token id then go in at one edge
  // of their B-trees instead of all over them (a first poll writes 100k of each).
  std::stable_sort(plan.changes.begin(), plan.changes.end(),
                   [](const Change& a, const Change& b) { return a.token->id < b.token->id; });
  return plan;
}

ChangePlan plan_expiries(const Inventory& known, Timestamp now) {
  ChangePlan plan;
  for (const auto& [id, k] : known) {
    if (k.status == TokenStatus::kRemoved) continue;
    ++plan.known_present;
    if (k.status != TokenStatus::kActive) continue;
    const TokenStatus status = status_at(k.token, now);
    if (status != TokenStatus::kActive)
      plan.changes.push_back({Change::Type::kChanged, &k.token, &k, status, {}});
  }
  std::sort(plan.changes.begin(), plan.changes.end(),
            [](const Change& a, const Change& b) { return a.token->id < b.token->id; });
  return plan;
}

std::vector<NewEvent> change_events(const std::string& cluster, const Change& c, bool first_poll) {
  std::vector<NewEvent> out;
  const Token& t = *c.token;
  switch (c.type) {
    case Change::Type::kNew: {
      if (c.before != nullptr) {  // listed again after token_removed: not a new token
        out.push_back({EventKind::kTokenReappeared, cluster, t.id,
                       reappeared_detail(*c.before, t, c.status)});
        break;
      }
      EventKind kind = first_poll ? EventKind::kTokenDiscovered : EventKind::kTokenCreated;
      out.push_back({kind, cluster, t.id, state_detail(t, c.status)});
      break;
    }
    case Change::Type::kChanged: {
      const KnownToken& k = *c.before;
      bool newly_revoked = !k.token.revoked_at && t.revoked_at;
      std::string update = update_detail(k.token, t, !newly_revoked);
      if (!update.empty())
        out.push_back({EventKind::kTokenUpdated, cluster, t.id, std::move(update)});
      if (newly_revoked) {
        std::string d;
        JsonWriter(d).begin_object().field("revoked_at", t.revoked_at).end_object();
        out.push_back({EventKind::kTokenRevoked, cluster, t.id, std::move(d)});
      } else if (c.status == TokenStatus::kExpired && k.status != TokenStatus::kExpired) {
        std::string d;
        JsonWriter(d).begin_object().field("expires_at", t.expires_at).end_object();
        out.push_back({EventKind::kTokenExpired, cluster, t.id, std::move(d)});
      }
      break;
    }
    case Change::Type::kVanished: {
      std::string d;
      JsonWriter w(d);
      w.begin_object().field("previous_status", to_string(c.before->status));
      if (!c.confirmed_by.empty()) w.field("confirmed_by", c.confirmed_by);
      w.end_object();
      out.push_back({EventKind::kTokenRemoved, cluster, t.id, std::move(d)});
      break;
    }
  }
  return out;
}

KnownToken change_row(const Change& c, Timestamp now, Timestamp last_ok_poll) {
  switch (c.type) {
    case Change::Type::kNew:
      return {*c.token, c.status, c.before != nullptr ? c.before->first_seen : now, now};
    case Change::Type::kChanged:
      return {*c.token, c.status, c.before->first_seen, now};
    case Change::Type::kVanished:
      return {c.before->token, TokenStatus::kRemoved, c.before->first_seen, last_ok_poll};
  }
  return {};
}

DiffResult diff_inventory(const std::string& cluster, const Inventory& known,
                          const std::vector<Token>& fetched, Timestamp now, bool first_poll,
                          Timestamp last_ok_poll) {
  ChangePlan plan = plan_changes(known, fetched, now);
  DiffResult out;
  out.known_present = plan.known_present;
  out.vanished_ids = std::move(plan.vanished_ids);
  for (const auto& c : plan.changes) {
    for (auto& e : change_events(cluster, c, first_poll)) out.events.push_back(std::move(e));
    out.upserts.push_back(change_row(c, now, last_ok_poll));
  }
  return out;
}

std::string vanished_digest(const std::vector<std::string>& sorted_ids) {
  std::string all;
  for (const auto& id : sorted_ids) {
    all += id;
    all += '\n';
  }
  return sha256_hex(all);
}

void apply_upserts(Inventory& inventory, std::vector<KnownToken> upserts) {
  for (auto& u : upserts) {
    std::string id = u.token.id;
    inventory.insert_or_assign(std::move(id), std::move(u));
  }
}

Timestamp next_expiry(const Inventory& inventory) {
  Timestamp next = Timestamp::max();
  for (const auto& [id, k] : inventory) {
    if (k.status == TokenStatus::kActive && k.token.expires_at && *k.token.expires_at < next) {
      next = *k.token.expires_at;
    }
  }
  return next;
}

}  // namespace tw::storage
