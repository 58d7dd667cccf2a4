#include "sim/token_store.h"

#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <random>
#include <stdexcept>
#include <unordered_set>

#include "core/base64.h"
#include "sim/generator.h"
#include "sim/wire.h"

namespace tw::sim {
namespace {

constexpr std::size_t kMaxLoggedBody = 64 * 1024;

// 64 bytes from the system CSPRNG (falls back to random_device if OpenSSL cannot).
void random_bytes(unsigned char* out, int n) {
  if (RAND_bytes(out, n) == 1) return;
  std::random_device rd;
  for (int i = 0; i < n; ++i) out[i] = static_cast<unsigned char>(rd());
}

std::string random_access_token(const char* prefix) {
  unsigned char bytes[66];  // 86 base64url characters carry 516 bits (66 bytes make 88)
  random_bytes(bytes, sizeof bytes);
  std::string encoded =
      base64url_encode(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
  return prefix + encoded.substr(0, 86);
}

// kNumeric (InfluxDB 3): a token always holds a permission, so a generated "no access" token
// gets the least there is, read on system:health.
void give_a_permission(Token& t) {
  if (t.permissions.empty()) t.permissions.push_back({"read", "system:health"});
}

// kNumeric: a generated token as InfluxDB 3 could hold it: with a permission, and with a name
// (kept as the description) that no other token has, since names address tokens — a repeat gets
// " #ID" appended.
using Names = std::unordered_set<std::string>;
void shape_for_influxdb3(Names& taken, Token& t) {
  give_a_permission(t);
  if (!taken.insert(t.description).second) {
    t.description += " #" + t.id;
    taken.insert(t.description);
  }
}

std::uint64_t random_seed() {
  unsigned char b[8];
  random_bytes(b, sizeof b);
  std::uint64_t s = 0;
  for (unsigned char c : b) s = (s << 8) | c;
  return s;
}

}  // namespace

const char* to_string(ClockMode mode) {
  switch (mode) {
    case ClockMode::kReal:
      return "real";
    case ClockMode::kFrozen:
      return "frozen";
    case ClockMode::kOffset:
      return "offset";
  }
  return "unknown";
}

const char* to_string(AuthResult auth) {
  switch (auth) {
    case AuthResult::kOk:
      return "ok";
    case AuthResult::kMissing:
      return "missing";
    case AuthResult::kInvalid:
      return "invalid";
  }
  return "unknown";
}

TokenStore::TokenStore(std::string account_id, std::string cluster_id, const Clock* real_clock,
                       IdStyle ids)
    : account_id_(std::move(account_id)), cluster_id_(std::move(cluster_id)), ids_(ids) {
  if (real_clock == nullptr) {
    owned_clock_ = std::make_unique<SystemClock>();
    real_clock = owned_clock_.get();
  }
  real_clock_ = real_clock;
}

// --- clock ---------------------------------------------------------------------------------

Timestamp TokenStore::now_locked() const {
  switch (mode_) {
    case ClockMode::kFrozen:
      return frozen_at_;
    case ClockMode::kOffset:
      return real_clock_->now() + offset_;
    case ClockMode::kReal:
      break;
  }
  return real_clock_->now();
}

Timestamp TokenStore::now() const {
  std::lock_guard lock(mu_);
  return now_locked();
}

ClockMode TokenStore::clock_mode() const {
  std::lock_guard lock(mu_);
  return mode_;
}

void TokenStore::freeze_clock(Timestamp at) {
  std::lock_guard lock(mu_);
  mode_ = ClockMode::kFrozen;
  frozen_at_ = at;
}

void TokenStore::advance_clock(Duration by) {
  std::lock_guard lock(mu_);
  switch (mode_) {
    case ClockMode::kFrozen:
      frozen_at_ += by;
      break;
    case ClockMode::kOffset:
      offset_ += by;
      break;
    case ClockMode::kReal:
      mode_ = ClockMode::kOffset;
      offset_ = by;
      break;
  }
}

void TokenStore::use_real_clock() {
  std::lock_guard lock(mu_);
  mode_ = ClockMode::kReal;
  offset_ = Duration(0);
}

// --- tokens --------------------------------------------------------------------------------

TokenStore::Entry* TokenStore::find_locked(const std::string& id) {
  auto it = index_.find(id);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

std::string TokenStore::new_id_locked() {
  if (ids_ == IdStyle::kNumeric) return std::to_string(next_numeric_id_++);
  Rng rng(random_seed());
  return random_uuid(rng);
}

void TokenStore::upsert_locked(Token token) {
  if (ids_ == IdStyle::kNumeric) {
    std::uint64_t n = 0;
    auto [end, ec] = std::from_chars(token.id.data(), token.id.data() + token.id.size(), n);
    if (ec == std::errc() && end == token.id.data() + token.id.size() && n >= next_numeric_id_) {
      next_numeric_id_ = n + 1;
    }
  }
  if (Entry* e = find_locked(token.id)) {
    e->token = std::move(token);
    e->json.clear();
  } else {
    index_.emplace(token.id, entries_.size());
    entries_.push_back(Entry{std::move(token), {}});
  }
  invalidate_locked();
}

Token TokenStore::put(Token token) {
  std::lock_guard lock(mu_);
  if (token.id.empty()) token.id = new_id_locked();
  if (!token.created_at) token.created_at = now_locked();
  Token copy = token;
  upsert_locked(std::move(token));
  return copy;
}

bool TokenStore::replace(Token token) {
  std::lock_guard lock(mu_);
  Entry* e = find_locked(token.id);
  if (e == nullptr) return false;
  if (!token.created_at) token.created_at = e->token.created_at;
  e->token = std::move(token);
  e->json.clear();
  invalidate_locked();
  return true;
}

std::size_t TokenStore::generate(std::size_t n, std::uint64_t seed) {
  std::lock_guard lock(mu_);
  Rng rng(seed);
  Timestamp now = now_locked();
  entries_.reserve(entries_.size() + n);
  index_.reserve(entries_.size() + n);
  Names taken = ids_ == IdStyle::kNumeric ? descriptions_locked() : Names{};
  for (std::size_t i = 0; i < n; ++i) {
    Token t = generate_token(rng, now);
    if (ids_ == IdStyle::kNumeric) {  // no revoked state: a revoked token would be deleted
      t.id = new_id_locked();
      t.revoked_at.reset();
      shape_for_influxdb3(taken, t);
    }
    upsert_locked(std::move(t));
  }
  // Serialize now, so that the first GET after seeding is as fast as later ones.
  for (const auto& e : entries_) {
    if (e.json.empty()) append_api_token(e.json, e.token, account_id_, cluster_id_);
  }
  return n;
}

CreatedToken TokenStore::create(std::string description, std::vector<Permission> permissions,
                                std::optional<Timestamp> expires_at) {
  std::lock_guard lock(mu_);
  return create_locked(std::move(description), std::move(permissions), expires_at);
}

CreatedToken TokenStore::create_locked(std::string description, std::vector<Permission> permissions,
                                       std::optional<Timestamp> expires_at) {
  CreatedToken out;
  out.token.id = new_id_locked();
  out.token.description = std::move(description);
  sort_permissions(permissions);
  out.token.permissions = std::move(permissions);
  out.token.created_at = now_locked();
  out.token.expires_at = expires_at;
  out.access_token = random_access_token(ids_ == IdStyle::kNumeric ? "apiv3_" : "apiv1_");
  upsert_locked(out.token);
  return out;
}

Result<CreatedToken> TokenStore::create_named(std::string name, std::vector<Permission> permissions,
                                              std::optional<Timestamp> expires_at) {
  std::lock_guard lock(mu_);
  for (const auto& e : entries_) {
    if (e.token.description == name) {
      return make_error(ErrorCode::kInvalidArgument, "token name already exists: " + name, 409);
    }
  }
  return create_locked(std::move(name), std::move(permissions), expires_at);
}

std::optional<Token> TokenStore::find_named(std::string_view name) const {
  std::lock_guard lock(mu_);
  for (const auto& e : entries_) {
    if (e.token.description == name) return e.token;
  }
  return std::nullopt;
}

std::optional<Token> TokenStore::remove_named(std::string_view name) {
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].token.description != name) continue;
    Token gone = entries_[i].token;
    erase_locked(i);
    return gone;
  }
  return std::nullopt;
}

Result<Token> TokenStore::update(const std::string& id, std::optional<std::string> description,
                                 std::optional<std::vector<Permission>> permissions) {
  std::lock_guard lock(mu_);
  Entry* e = find_locked(id);
  if (e == nullptr) return make_error(ErrorCode::kNotFound, "token not found", 404);
  if (e->token.revoked_at) return make_error(ErrorCode::kInvalidArgument, "token is revoked", 409);
  if (description) e->token.description = std::move(*description);
  if (permissions) {
    sort_permissions(*permissions);
    e->token.permissions = std::move(*permissions);
  }
  e->json.clear();
  invalidate_locked();
  return e->token;
}

Result<Token> TokenStore::revoke(const std::string& id) {
  std::lock_guard lock(mu_);
  Entry* e = find_locked(id);
  if (e == nullptr) return make_error(ErrorCode::kNotFound, "token not found", 404);
  if (e->token.revoked_at) return make_error(ErrorCode::kNotFound, "token is already revoked", 404);
  e->token.revoked_at = now_locked();
  e->json.clear();
  invalidate_locked();
  return e->token;
}

bool TokenStore::remove(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = index_.find(id);
  if (it == index_.end()) return false;
  erase_locked(it->second);
  return true;
}

std::vector<std::size_t> TokenStore::shuffled_active_locked(Rng& rng) const {
  std::vector<std::size_t> active;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (!entries_[i].token.revoked_at) active.push_back(i);
  }
  // Fisher-Yates with our Rng: deterministic for a seed.
  for (std::size_t i = active.size(); i > 1; --i) {
    std::swap(active[i - 1], active[static_cast<std::size_t>(rng.below(i))]);
  }
  return active;
}

std::unordered_set<std::string> TokenStore::descriptions_locked() const {
  std::unordered_set<std::string> out;
  for (const auto& e : entries_) out.insert(e.token.description);
  return out;
}

void TokenStore::erase_revoked_locked() {
  for (std::size_t i = entries_.size(); i-- > 0;) {
    if (entries_[i].token.revoked_at) erase_locked(i);
  }
}

void TokenStore::erase_locked(std::size_t pos) {
  index_.erase(entries_[pos].token.id);
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(pos));
  for (auto& [key, i] : index_) {
    if (i > pos) --i;
  }
  invalidate_locked();
}

std::optional<Token> TokenStore::get(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = index_.find(id);
  if (it == index_.end()) return std::nullopt;
  return entries_[it->second].token;
}

std::vector<Token> TokenStore::list(bool include_revoked) const {
  std::lock_guard lock(mu_);
  std::vector<Token> out;
  out.reserve(entries_.size());
  for (const auto& e : entries_) {
    if (include_revoked || !e.token.revoked_at) out.push_back(e.token);
  }
  return out;
}

std::size_t TokenStore::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

ChurnResult TokenStore::churn(double percent, std::uint64_t seed) {
  std::lock_guard lock(mu_);
  ChurnResult result;
  if (!(percent > 0)) return result;
  auto n = static_cast<std::size_t>(
      std::llround(static_cast<double>(entries_.size()) * std::min(percent, 100.0) / 100.0));
  if (n == 0) n = 1;
  std::size_t to_create = (n + 2) / 3;
  std::size_t to_update = (n + 1) / 3;
  std::size_t to_revoke = n / 3;
  Rng rng(seed);
  Timestamp now = now_locked();

  // The first to_update active tokens (shuffled) are updated, the next to_revoke revoked.
  std::vector<std::size_t> active = shuffled_active_locked(rng);
  std::size_t next = 0;
  Names taken = ids_ == IdStyle::kNumeric ? descriptions_locked() : Names{};
  for (; result.updated < to_update && next < active.size(); ++next) {
    Entry& e = entries_[active[next]];
    if (rng.chance(50)) {
      e.token.permissions = generate_permissions(rng);
      if (ids_ == IdStyle::kNumeric) give_a_permission(e.token);
    } else {
      taken.erase(e.token.description);
      e.token.description = generate_description(rng);
      if (ids_ == IdStyle::kNumeric) shape_for_influxdb3(taken, e.token);
    }
    e.json.clear();
    ++result.updated;
  }
  for (; result.revoked < to_revoke && next < active.size(); ++next) {
    Entry& e = entries_[active[next]];
    e.token.revoked_at = now;
    e.json.clear();
    ++result.revoked;
  }
  if (ids_ == IdStyle::kNumeric) erase_revoked_locked();  // no revoked state: deleted instead
  for (; result.created < to_create; ++result.created) {
    Token t = generate_token(rng, now);
    if (ids_ == IdStyle::kNumeric) {
      t.id = new_id_locked();
      shape_for_influxdb3(taken, t);
    }
    t.created_at = now;
    if (t.expires_at) t.expires_at = now + std::chrono::days(90);
    t.revoked_at.reset();
    upsert_locked(std::move(t));
  }
  invalidate_locked();
  return result;
}

void TokenStore::reset() {
  std::lock_guard lock(mu_);
  entries_.clear();
  index_.clear();
  invalidate_locked();
  faults_.clear();
  requests_.clear();
  next_seq_ = 1;
  next_numeric_id_ = 0;
  mode_ = ClockMode::kReal;
  offset_ = Duration(0);
}

// --- JSON ----------------------------------------------------------------------------------

std::string TokenStore::token_json(const Token& token, const std::string* access_token) const {
  std::string out;
  append_api_token(out, token, account_id_, cluster_id_, access_token);
  return out;
}

std::shared_ptr<const std::string> TokenStore::list_json(bool include_revoked) const {
  std::lock_guard lock(mu_);
  auto& cached = list_cache_[include_revoked ? 1 : 0];
  if (cached) return cached;
  std::size_t total = 2;
  for (const auto& e : entries_) {
    if (e.json.empty()) append_api_token(e.json, e.token, account_id_, cluster_id_);
    total += e.json.size() + 1;
  }
  auto body = std::make_shared<std::string>();
  body->reserve(total);
  *body += '[';
  bool first = true;
  for (const auto& e : entries_) {
    if (!include_revoked && e.token.revoked_at) continue;
    if (!first) *body += ',';
    first = false;
    *body += e.json;
  }
  *body += ']';
  cached = std::move(body);
  return cached;
}

// --- faults --------------------------------------------------------------------------------

std::uint64_t TokenStore::add_fault(FaultSpec spec) {
  std::lock_guard lock(mu_);
  std::uint64_t id = next_fault_id_++;
  faults_.push_back(Fault{id, std::move(spec), 0});
  return id;
}

bool TokenStore::remove_fault(std::uint64_t id) {
  std::lock_guard lock(mu_);
  auto it =
      std::find_if(faults_.begin(), faults_.end(), [&](const Fault& f) { return f.id == id; });
  if (it == faults_.end()) return false;
  faults_.erase(it);
  return true;
}

void TokenStore::clear_faults() {
  std::lock_guard lock(mu_);
  faults_.clear();
}

std::vector<Fault> TokenStore::faults() const {
  std::lock_guard lock(mu_);
  return faults_;
}

std::optional<FaultSpec> TokenStore::take_fault(std::string_view method, std::string_view path) {
  std::lock_guard lock(mu_);
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (!fault_matches(it->spec, method, path)) continue;
    FaultSpec spec = it->spec;
    ++it->hits;
    if (it->spec.count != 0 && it->hits >= it->spec.count) faults_.erase(it);
    return spec;
  }
  return std::nullopt;
}

// --- request log ---------------------------------------------------------------------------

std::uint64_t TokenStore::record(RequestRecord r) {
  std::lock_guard lock(mu_);
  r.seq = next_seq_++;
  if (r.body && r.body->size() > kMaxLoggedBody) r.body->resize(kMaxLoggedBody);
  requests_.push_back(std::move(r));
  while (requests_.size() > kMaxRequestRecords) requests_.pop_front();
  return requests_.back().seq;
}

std::vector<RequestRecord> TokenStore::requests() const {
  std::lock_guard lock(mu_);
  return {requests_.begin(), requests_.end()};
}

void TokenStore::clear_requests() {
  std::lock_guard lock(mu_);
  requests_.clear();
}

}  // namespace tw::sim
