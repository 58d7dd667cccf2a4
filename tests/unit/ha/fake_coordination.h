#pragma once
// An in-memory coordination service with etcd's semantics (revisions, leases that expire and take
// their keys with them, create-if-absent and fenced transactions) on a manual steady clock, for
// the election's unit tests. `down` makes every call fail as an unreachable quorum does.
#include <map>
#include <string>

#include "ha/coordination.h"
#include "ha/election.h"

namespace tw::ha::testing {

class FakeCoordination final : public Coordination {
 public:
  explicit FakeCoordination(const ManualSteadyClock& clock) : clock_(clock) {}

  bool down = false;
  std::map<std::string, int> calls;  // by operation
  std::int64_t revision = 1;
  std::map<std::string, KeyValue> kv;

  int total_calls() const {
    int n = 0;
    for (const auto& [op, k] : calls) n += k;
    return n;
  }
  // Expires leases whose time has come (etcd does it on its own; here at each call or by hand).
  void expire() {
    const auto now = clock_.now();
    for (auto it = leases_.begin(); it != leases_.end();) {
      if (it->second.expires <= now) {
        drop_keys(it->first);
        it = leases_.erase(it);
      } else {
        ++it;
      }
    }
  }
  bool lease_alive(LeaseId id) {
    expire();
    return leases_.count(id) != 0;
  }
  // Another writer takes the key (a revision race).
  void overwrite(const std::string& key, const std::string& value, LeaseId lease = 0) {
    ++revision;
    auto& e = kv[key];
    const bool fresh = e.create_revision == 0;
    e.key = key;
    e.value = value;
    e.mod_revision = revision;
    if (fresh) e.create_revision = revision;
    e.lease = lease;
  }
  void erase(const std::string& key) {
    if (kv.erase(key) != 0) ++revision;
  }

  Result<Lease> grant(Duration ttl) override {
    if (auto e = enter("grant")) return *e;
    const LeaseId id = next_lease_++;
    leases_[id] = {ttl, clock_.now() + ttl};
    return Lease{id, ttl, revision};
  }
  Result<Renewal> keep_alive(LeaseId lease) override {
    if (auto e = enter("keepalive")) return *e;
    auto it = leases_.find(lease);
    if (it == leases_.end()) return Renewal{Duration(0), revision};
    it->second.expires = clock_.now() + it->second.ttl;
    return Renewal{it->second.ttl, revision};
  }
  Status revoke(LeaseId lease) override {
    if (auto e = enter("revoke")) return *e;
    drop_keys(lease);
    leases_.erase(lease);
    return ok_status();
  }
  Result<Campaign> campaign(const std::string& key, const std::string& value,
                            LeaseId lease) override {
    if (auto e = enter("campaign")) return *e;
    Campaign c;
    auto it = kv.find(key);
    if (it == kv.end()) {
      if (leases_.count(lease) == 0)
        return make_error(ErrorCode::kHttpStatus, "lease not found", 400);
      overwrite(key, value, lease);
      c.won = true;
      c.leader = kv[key];
    } else {
      c.leader = it->second;
    }
    c.revision = revision;
    return c;
  }
  Status put(const std::string& key, const std::string& value, LeaseId lease) override {
    if (auto e = enter("put")) return *e;
    overwrite(key, value, lease);
    return ok_status();
  }
  Result<FencedWrite> put_fenced(const std::string& key, const std::string& value,
                                 const std::string& fence_key,
                                 std::int64_t fence_revision) override {
    if (auto e = enter("txn")) return *e;
    auto it = kv.find(fence_key);
    const bool holds = it != kv.end() && it->second.create_revision == fence_revision;
    if (holds) overwrite(key, value);
    return FencedWrite{holds, revision};
  }
  Result<Range> range_prefix(const std::string& prefix, std::int64_t min_mod) override {
    if (auto e = enter("range")) return *e;
    Range r;
    for (const auto& [k, v] : kv) {
      if (k.rfind(prefix, 0) == 0 && v.mod_revision >= min_mod) r.kvs.push_back(v);
    }
    r.revision = revision;
    return r;
  }
  Result<std::optional<KeyValue>> get(const std::string& key) override {
    if (auto e = enter("get")) return *e;
    auto it = kv.find(key);
    if (it == kv.end()) return std::optional<KeyValue>();
    return std::optional<KeyValue>(it->second);
  }

 private:
  struct LeaseState {
    Duration ttl;
    SteadyTime expires;
  };
  std::optional<Error> enter(const char* op) {
    expire();
    ++calls[op];
    if (down) return make_error(ErrorCode::kTimeout, std::string("etcd unreachable during ") + op);
    return std::nullopt;
  }
  void drop_keys(LeaseId lease) {
    bool any = false;
    for (auto it = kv.begin(); it != kv.end();) {
      if (it->second.lease == lease) {
        it = kv.erase(it);
        any = true;
      } else {
        ++it;
      }
    }
    if (any) ++revision;
  }

  const ManualSteadyClock& clock_;
  LeaseId next_lease_ = 100;
  std::map<LeaseId, LeaseState> leases_;
};

}  // namespace tw::ha::testing
