// The inventory replay (storage/queries.h): the token events of the audit log applied in seq
// order to a compact per-token state. Built for long histories: one sequential scan through a
// memory-mapped read, event details read with simdjson's on-demand parser (no document tree),
// times kept as integers, permission sets shared between tokens, and rows materialized one at a
// time when visited.
#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <string_view>
#include <unordered_map>

#include "storage/pipeline.h"
#include "storage/queries.h"
#include "storage/sqlite.h"

namespace tw::storage {
namespace {

constexpr std::int64_t kNone = std::numeric_limits<std::int64_t>::min();

std::int64_t to_ms(Timestamp t) { return t.time_since_epoch().count(); }
Timestamp from_ms(std::int64_t ms) { return Timestamp(Duration(ms)); }
std::optional<Timestamp> opt_ts(std::int64_t ms) {
  return ms == kNone ? std::nullopt : std::optional<Timestamp>(from_ms(ms));
}
std::int64_t parse_ms(std::string_view text) {
  auto t = parse_rfc3339(text);
  return t.ok() ? to_ms(*t) : kNone;
}

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

// A token's fields as an event's detail states them (absent fields stay unset).
struct Fields {
  std::optional<std::string_view> description;
  std::optional<std::string_view> permissions;            // the raw JSON array
  std::optional<std::int64_t> created, expires, revoked;  // kNone: null
  std::optional<std::string_view> status;
};

simdjson::error_code read_time(simdjson::ondemand::value v, std::optional<std::int64_t>& out) {
  bool null = false;
  if (auto e = v.is_null().get(null)) return e;
  if (null) {
    out = kNone;
    return simdjson::SUCCESS;
  }
  std::string_view s;
  if (auto e = v.get_string().get(s)) return e;
  out = parse_ms(s);
  return simdjson::SUCCESS;
}

simdjson::error_code read_fields(simdjson::ondemand::object obj, Fields& f, Fields* after) {
  for (auto field : obj) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return e;
    simdjson::ondemand::value v;
    if (auto e = field.value().get(v)) return e;
    simdjson::error_code e = simdjson::SUCCESS;
    if (key == "description") {
      std::string_view s;
      if (!(e = v.get_string().get(s))) f.description = s;
    } else if (key == "permissions") {
      simdjson::ondemand::array a;
      std::string_view raw;
      if (!(e = v.get_array().get(a)) && !(e = a.raw_json().get(raw))) f.permissions = raw;
    } else if (key == "created_at") {
      e = read_time(v, f.created);
    } else if (key == "expires_at") {
      e = read_time(v, f.expires);
    } else if (key == "revoked_at") {
      e = read_time(v, f.revoked);
    } else if (key == "status") {
      std::string_view s;
      if (!(e = v.get_string().get(s))) f.status = s;
    } else if (key == "after" && after != nullptr) {
      simdjson::ondemand::object o;
      if (!(e = v.get_object().get(o))) e = read_fields(o, *after, nullptr);
    }
    if (e) return e;
  }
  return simdjson::SUCCESS;
}

// Token ids -> entry index, for every cluster in one open-addressing table (linear probing,
// at most half full). Each slot keeps 32 bits of the hash, so a probe rarely has to look at
// the id itself: far fewer cache misses than a node-based map over a few hundred thousand ids.
class IdIndex {
 public:
  static constexpr std::uint32_t kEmpty = 0xFFFFFFFFu;
  static constexpr std::size_t kNoSlot = static_cast<std::size_t>(-1);

  // The slot holding (cluster, id), or the empty slot where it belongs.
  template <class IdOf>
  std::size_t find(std::uint32_t cluster, std::string_view id, const IdOf& id_of) const {
    if (slots_.empty()) return kNoSlot;
    const std::uint64_t h = hash(cluster, id);
    const auto tag = static_cast<std::uint32_t>(h >> 32);
    std::size_t i = static_cast<std::size_t>(h) & mask_;
    while (slots_[i].entry != kEmpty) {
      if (slots_[i].tag == tag && id_of(slots_[i].entry, cluster, id)) return i;
      i = (i + 1) & mask_;
    }
    return i;
  }
  std::uint32_t at(std::size_t slot) const { return slot == kNoSlot ? kEmpty : slots_[slot].entry; }
  // Stores `entry` in an empty slot found by find() (which must be called again after a grow).
  void put(std::size_t slot, std::uint32_t cluster, std::string_view id, std::uint32_t entry) {
    slots_[slot] = {static_cast<std::uint32_t>(hash(cluster, id) >> 32), entry};
    ++size_;
  }
  // Makes room for one more; returns true if the table was rebuilt (slots moved).
  template <class Rehash>
  bool reserve_one(const Rehash& rehash) {
    if ((size_ + 1) * 2 <= slots_.size()) return false;
    rebuild(std::max<std::size_t>(1024, slots_.size() * 2), rehash);
    return true;
  }
  template <class Rehash>
  void reserve(std::size_t n, const Rehash& rehash) {
    std::size_t capacity = std::max<std::size_t>(1024, slots_.size());
    while ((size_ + n) * 2 > capacity) capacity *= 2;
    if (capacity > slots_.size()) rebuild(capacity, rehash);
  }

  static std::uint64_t hash(std::uint32_t cluster, std::string_view id) {
    // FNV-1a over the id, mixed with the cluster and finalized (splitmix64).
    std::uint64_t h =
        0xcbf29ce484222325ULL ^ (static_cast<std::uint64_t>(cluster) * 0x9E3779B97F4A7C15ULL);
    for (char c : id) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
  }

 private:
  struct Slot {
    std::uint32_t tag;
    std::uint32_t entry;
  };
  template <class Rehash>
  void rebuild(std::size_t capacity, const Rehash& rehash) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(capacity, Slot{0, kEmpty});
    mask_ = capacity - 1;
    for (const auto& s : old) {
      if (s.entry == kEmpty) continue;
      std::size_t i = static_cast<std::size_t>(rehash(s.entry)) & mask_;
      while (slots_[i].entry != kEmpty) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace

struct InventoryReplay::Impl {
  struct Entry {
    std::string id;
    std::uint64_t id_prefix = 0;  // the id's first 8 bytes, big-endian: most sort comparisons
    std::string description;
    std::int64_t created = kNone, expires = kNone, revoked = kNone;
    std::int64_t first_seen = 0;
    std::int64_t removed_last_seen = kNone;  // removed tokens: the last ok poll before removal
    std::uint32_t permissions = 0;           // index into permission_sets
    std::uint32_t cluster = 0;               // index into clusters
    TokenStatus status = TokenStatus::kActive;
  };

  std::vector<std::string> clusters;
  std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>> cluster_index;
  IdIndex ids;
  std::vector<std::vector<std::int64_t>> ok_polls;  // per cluster, finished_at ascending
  std::vector<std::vector<Permission>> permission_sets;
  std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>> permission_index;
  std::vector<Entry> entries;

  simdjson::ondemand::parser parser;
  std::string buffer;  // the detail, copied with simdjson's padding
  // Entry indexes by cluster name and token id, computed on the first visit after a change.
  std::vector<std::uint32_t> order;
  bool order_valid = false;

  const std::vector<std::uint32_t>& sorted() {
    if (order_valid) return order;
    order.resize(entries.size());
    for (std::uint32_t i = 0; i < entries.size(); ++i) order[i] = i;
    // Clusters ranked by name once, so most comparisons are of integers.
    std::vector<std::uint32_t> rank(clusters.size());
    std::vector<std::uint32_t> by_name(clusters.size());
    for (std::uint32_t i = 0; i < clusters.size(); ++i) by_name[i] = i;
    std::sort(by_name.begin(), by_name.end(),
              [&](std::uint32_t a, std::uint32_t b) { return clusters[a] < clusters[b]; });
    for (std::uint32_t i = 0; i < by_name.size(); ++i) rank[by_name[i]] = i;
    std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
      const auto& x = entries[a];
      const auto& y = entries[b];
      if (x.cluster != y.cluster) return rank[x.cluster] < rank[y.cluster];
      if (x.id_prefix != y.id_prefix) return x.id_prefix < y.id_prefix;
      return x.id < y.id;
    });
    order_valid = true;
    return order;
  }

  auto same_token() const {
    return [this](std::uint32_t entry, std::uint32_t cluster, std::string_view id) {
      return entries[entry].cluster == cluster && entries[entry].id == id;
    };
  }
  auto rehash() const {
    return [this](std::uint32_t entry) {
      return IdIndex::hash(entries[entry].cluster, entries[entry].id);
    };
  }

  std::uint32_t cluster_of(std::string_view name) {
    auto it = cluster_index.find(name);
    if (it != cluster_index.end()) return it->second;
    const auto k = static_cast<std::uint32_t>(clusters.size());
    clusters.emplace_back(name);
    cluster_index.emplace(std::string(name), k);
    ok_polls.emplace_back();
    return k;
  }

  std::uint32_t permissions_of(std::string_view raw) {
    auto it = permission_index.find(raw);
    if (it != permission_index.end()) return it->second;
    auto perms = parse_permissions_json(raw).value_or(std::vector<Permission>{});
    const auto k = static_cast<std::uint32_t>(permission_sets.size());
    permission_sets.push_back(std::move(perms));
    permission_index.emplace(std::string(raw), k);
    return k;
  }

  std::int64_t last_ok_before(std::uint32_t cluster, std::int64_t t, bool inclusive) const {
    const auto& v = ok_polls[cluster];
    auto pos = inclusive ? std::upper_bound(v.begin(), v.end(), t)
                         : std::lower_bound(v.begin(), v.end(), t);
    return pos == v.begin() ? kNone : *(pos - 1);
  }

  static TokenStatus status_of(const Entry& e, std::int64_t at) {
    if (e.status == TokenStatus::kActive && e.expires != kNone && e.expires <= at)
      return TokenStatus::kExpired;
    return e.status;
  }

  // Applies one token event. Details that cannot be read leave the state as it was.
  void apply(std::string_view cluster_name, std::string_view id, std::string_view event,
             std::string_view detail, std::int64_t recorded_at) {
    const std::uint32_t c = cluster_of(cluster_name);
    order_valid = false;
    std::size_t slot = ids.find(c, id, same_token());
    Entry* e = ids.at(slot) == IdIndex::kEmpty ? nullptr : &entries[ids.at(slot)];
    if (event == "token_expired" || event == "token_removed") {
      if (e == nullptr) return;  // the history starts mid-way (should not happen)
      if (event == "token_expired") {
        e->status = TokenStatus::kExpired;
      } else {
        e->status = TokenStatus::kRemoved;
        e->removed_last_seen = last_ok_before(c, recorded_at, false);
      }
      return;
    }
    // token_reappeared carries {"before":…,"after":…}; its `after` is the token's whole state.
    const bool reappeared = event == "token_reappeared";
    const bool full = event == "token_discovered" || event == "token_created" || reappeared;
    if (!full && e == nullptr) return;
    buffer.assign(detail);
    buffer.append(simdjson::SIMDJSON_PADDING, '\0');
    simdjson::ondemand::document doc;
    if (parser.iterate(buffer.data(), detail.size(), buffer.size()).get(doc)) return;
    simdjson::ondemand::object obj;
    if (doc.get_object().get(obj)) return;
    Fields f, after;
    if (read_fields(obj, f, event == "token_updated" || reappeared ? &after : nullptr)) return;
    if (reappeared) f = after;
    if (full) {
      if (e == nullptr) {
        if (ids.reserve_one(rehash())) slot = ids.find(c, id, same_token());
        ids.put(slot, c, id, static_cast<std::uint32_t>(entries.size()));
        entries.emplace_back();
        e = &entries.back();
        e->id = std::string(id);
        for (std::size_t i = 0; i < 8; ++i) {
          e->id_prefix =
              (e->id_prefix << 8) | (i < id.size() ? static_cast<unsigned char>(id[i]) : 0u);
        }
        e->cluster = c;
        e->first_seen = recorded_at;
      }
      // A reappeared token keeps its first sighting.
      e->description = std::string(f.description.value_or(""));
      e->permissions = permissions_of(f.permissions.value_or("[]"));
      e->created = f.created.value_or(kNone);
      e->expires = f.expires.value_or(kNone);
      e->revoked = f.revoked.value_or(kNone);
      e->removed_last_seen = kNone;
      e->status = parse_token_status(f.status.value_or("active")).value_or(TokenStatus::kActive);
      return;
    }
    if (event == "token_updated") {
      if (after.description) e->description = std::string(*after.description);
      if (after.permissions) e->permissions = permissions_of(*after.permissions);
      if (after.created) e->created = *after.created;
      if (after.expires) e->expires = *after.expires;
      if (after.revoked) e->revoked = *after.revoked;
      if (e->revoked != kNone)
        e->status = TokenStatus::kRevoked;
      else if (e->expires != kNone && e->expires <= recorded_at)
        e->status = TokenStatus::kExpired;
      else
        e->status = TokenStatus::kActive;
    } else if (event == "token_revoked") {
      e->revoked = f.revoked.value_or(kNone);
      e->status = TokenStatus::kRevoked;
    }
  }
};

InventoryReplay::InventoryReplay() : impl_(std::make_unique<Impl>()) {}
InventoryReplay::~InventoryReplay() = default;
InventoryReplay::InventoryReplay(InventoryReplay&&) noexcept = default;
InventoryReplay& InventoryReplay::operator=(InventoryReplay&&) noexcept = default;

Status InventoryReplay::run(Db& db, Timestamp until, const std::string& cluster,
                            const std::vector<Timestamp>& samples,
                            const std::function<void(Timestamp)>& on_sample) {
  const std::string until_text = format_timestamp(until);
  {
    auto st = db.prepare(
        "SELECT cluster, finished_at FROM poll_runs WHERE outcome = 'ok' AND finished_at <= ?1 "
        "AND (?2 = '' OR cluster = ?2) ORDER BY id");
    if (!st.ok()) return st.take_error();
    st->bind(1, until_text).bind(2, cluster);
    while (true) {
      auto r = st->step();
      if (!r.ok()) return r.take_error();
      if (!*r) break;
      const std::uint32_t c = impl_->cluster_of(st->view(0));
      impl_->ok_polls[c].push_back(parse_ms(st->view(1)));
    }
    for (auto& v : impl_->ok_polls) std::sort(v.begin(), v.end());
  }
  {
    // Room for every token the log mentions (cheap: counted in the event index).
    auto st = db.prepare(
        "SELECT count(*) FROM audit_events WHERE event IN ('token_discovered', 'token_created')");
    if (st.ok()) {
      auto r = st->step();
      if (r.ok() && *r) {
        const auto n = static_cast<std::size_t>(st->int64(0));
        impl_->entries.reserve(impl_->entries.size() + n);
        impl_->ids.reserve(n, impl_->rehash());
      }
    }
  }
  // One sequential pass in seq order over the rows up to the last one recorded by `until` (found
  // through the time index, so an early instant reads only the start of a long log). The unary
  // `+` keeps SQLite from answering through an index and sorting a million rows by seq.
  std::int64_t last_seq = 0;
  {
    auto st = db.prepare("SELECT max(seq) FROM audit_events WHERE recorded_at <= ?1");
    if (!st.ok()) return st.take_error();
    st->bind(1, until_text);
    auto r = st->step();
    if (!r.ok()) return r.take_error();
    if (*r) last_seq = st->int64(0);
  }
  auto st = db.prepare(
      "SELECT cluster, token_id, event, detail, recorded_at FROM audit_events "
      "WHERE seq <= ?3 AND +recorded_at <= ?1 AND (?2 = '' OR +cluster = ?2) AND +event IN "
      "('token_discovered', "
      "'token_created', 'token_updated', 'token_revoked', 'token_expired', 'token_removed', "
      "'token_reappeared') ORDER BY seq");
  if (!st.ok()) return st.take_error();
  st->bind(1, until_text).bind(2, cluster).bind(3, last_seq);
  std::size_t next_sample = 0;
  const std::int64_t until_ms = to_ms(until);
  std::vector<std::int64_t> sample_ms;
  for (auto t : samples) sample_ms.push_back(to_ms(t));

  // Read on a second thread while the rows are applied here.
  TW_RETURN_IF_ERROR(pipelined_rows(*st, 5, [&](const std::string_view* f) {
    const std::int64_t recorded_at = parse_ms(f[4]);
    while (next_sample < samples.size() && sample_ms[next_sample] <= until_ms &&
           recorded_at > sample_ms[next_sample]) {
      if (on_sample) on_sample(samples[next_sample]);
      ++next_sample;
    }
    impl_->apply(f[0], f[1], f[2], f[3], recorded_at);
    return true;
  }));
  for (; next_sample < samples.size() && sample_ms[next_sample] <= until_ms; ++next_sample) {
    if (on_sample) on_sample(samples[next_sample]);
  }
  return ok_status();
}

std::array<std::int64_t, 4> InventoryReplay::counts(Timestamp at) const {
  std::array<std::int64_t, 4> out{};
  const std::int64_t t = to_ms(at);
  for (const auto& e : impl_->entries) ++out[static_cast<std::size_t>(Impl::status_of(e, t))];
  return out;
}

std::size_t InventoryReplay::size() const { return impl_->entries.size(); }

void InventoryReplay::summarize(Timestamp at,
                                const std::function<void(const Summary&)>& visit) const {
  const std::int64_t t = to_ms(at);
  for (const auto& e : impl_->entries) {
    visit({impl_->clusters[e.cluster], Impl::status_of(e, t), e.expires != kNone,
           &impl_->permission_sets[e.permissions], e.id});
  }
}

const std::string* InventoryReplay::description(std::string_view cluster,
                                                std::string_view token_id) const {
  auto c = impl_->cluster_index.find(cluster);
  if (c == impl_->cluster_index.end() || impl_->entries.empty()) return nullptr;
  const std::uint32_t e = impl_->ids.at(impl_->ids.find(c->second, token_id, impl_->same_token()));
  return e == IdIndex::kEmpty ? nullptr : &impl_->entries[e].description;
}

void InventoryReplay::for_each(Timestamp at, const std::optional<TokenStatus>& status,
                               const std::function<bool(const InventoryRow&)>& visit) const {
  const std::int64_t t = to_ms(at);
  const auto& order = impl_->sorted();
  const auto& entries = impl_->entries;
  const auto& clusters = impl_->clusters;
  InventoryRow row;
  for (std::uint32_t i : order) {
    const auto& e = entries[i];
    if (status && Impl::status_of(e, t) != *status) continue;
    row.cluster = clusters[e.cluster];
    row.token.id = e.id;
    row.token.description = e.description;
    row.token.permissions = impl_->permission_sets[e.permissions];
    row.token.created_at = opt_ts(e.created);
    row.token.expires_at = opt_ts(e.expires);
    row.token.revoked_at = opt_ts(e.revoked);
    row.status = Impl::status_of(e, t);
    row.first_seen = format_timestamp(from_ms(e.first_seen));
    const std::int64_t last = row.status == TokenStatus::kRemoved
                                  ? e.removed_last_seen
                                  : impl_->last_ok_before(e.cluster, t, true);
    row.last_seen = last == kNone ? row.first_seen : format_timestamp(from_ms(last));
    if (!visit(row)) return;
  }
}

std::vector<InventoryRow> InventoryReplay::rows(Timestamp at,
                                                const std::optional<TokenStatus>& status) const {
  std::vector<InventoryRow> out;
  for_each(at, status, [&](const InventoryRow& r) {
    out.push_back(r);
    return true;
  });
  return out;
}

Result<std::vector<InventoryRow>> inventory_at(Db& db, Timestamp at,
                                               const InventoryFilter& filter) {
  InventoryReplay replay;
  TW_RETURN_IF_ERROR(replay.run(db, at, filter.cluster, {}, {}));
  return replay.rows(at, filter.status);
}

}  // namespace tw::storage
