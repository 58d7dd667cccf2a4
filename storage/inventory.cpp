#include "storage/inventory.h"

#include <algorithm>
#include <unordered_set>

#include "core/json_writer.h"
#include "core/sha256.h"

namespace tw::storage {
namespace {

std::string state_detail(const Token& t, TokenStatus status, bool reappeared) {
  std::string out;
  append_token_state_json(out, t);
  out.pop_back();  // reopen the object to add fields
  out += ",\"status\":";
  append_json_string(out, to_string(status));
  if (reappeared) out += ",\"reappeared\":true";
  out += '}';
  return out;
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

DiffResult diff_inventory(const std::string& cluster, const Inventory& known,
                          const std::vector<Token>& fetched, Timestamp now, bool first_poll,
                          Timestamp last_ok_poll) {
  DiffResult out;
  std::unordered_set<std::string_view> seen;
  seen.reserve(fetched.size());
  for (const auto& t : fetched) {
    seen.insert(t.id);
    TokenStatus status = status_at(t, now);
    auto it = known.find(t.id);
    if (it == known.end() || it->second.status == TokenStatus::kRemoved) {
      bool reappeared = it != known.end();
      EventKind kind = first_poll && !reappeared ? EventKind::kTokenDiscovered : EventKind::kTokenCreated;
      out.events.push_back({kind, cluster, t.id, state_detail(t, status, reappeared)});
      out.upserts.push_back({t, status, reappeared ? it->second.first_seen : now, now});
      continue;
    }
    const KnownToken& k = it->second;
    if (k.token == t && k.status == status) continue;  // the common case: nothing changed

    bool newly_revoked = !k.token.revoked_at && t.revoked_at;
    std::string update = update_detail(k.token, t, !newly_revoked);
    if (!update.empty()) {
      out.events.push_back({EventKind::kTokenUpdated, cluster, t.id, std::move(update)});
    }
    if (newly_revoked) {
      std::string d;
      JsonWriter(d).begin_object().field("revoked_at", t.revoked_at).end_object();
      out.events.push_back({EventKind::kTokenRevoked, cluster, t.id, std::move(d)});
    } else if (status == TokenStatus::kExpired && k.status != TokenStatus::kExpired) {
      std::string d;
      JsonWriter(d).begin_object().field("expires_at", t.expires_at).end_object();
      out.events.push_back({EventKind::kTokenExpired, cluster, t.id, std::move(d)});
    }
    out.upserts.push_back({t, status, k.first_seen, now});
  }

  for (const auto& [id, k] : known) {
    if (k.status == TokenStatus::kRemoved) continue;
    ++out.known_present;
    if (!seen.contains(id)) out.vanished_ids.push_back(id);
  }
  std::sort(out.vanished_ids.begin(), out.vanished_ids.end());
  for (const auto& id : out.vanished_ids) {
    const KnownToken& k = known.at(id);
    std::string d;
    JsonWriter(d).begin_object().field("previous_status", to_string(k.status)).end_object();
    out.events.push_back({EventKind::kTokenRemoved, cluster, id, std::move(d)});
    out.upserts.push_back({k.token, TokenStatus::kRemoved, k.first_seen, last_ok_poll});
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

}  // namespace tw::storage
