#pragma once
// What high availability needs from a coordination service (docs/high-availability.md): leases,
// a leader key created only if absent, keys written only while that leader key still holds, and
// reads of a prefix. etcd's v3 API (ha/etcd.h) is the implementation; a Kubernetes Lease
// backend would map onto the same calls (the mapping is in the docs). Tests use a fake.
//
// Every call has a deadline (the backend's own) and returns an error (kNetwork, kTimeout,
// kHttpStatus, kParse) in one sentence; none throws.
//
// Thread safety: implementations are called from the coordinator's thread and from action
// threads (fenced writes) concurrently; they must be reentrant.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/time.h"

namespace tw::ha {

using LeaseId = std::int64_t;

struct Lease {
  LeaseId id = 0;
  Duration ttl{0};            // what the service granted
  std::int64_t revision = 0;  // the store's revision when it answered
};

// A keep-alive's answer: the lease's new TTL (0: the lease no longer exists) and the store's
// revision, which moves whenever any key changes (a leader key expiring, an intent written).
struct Renewal {
  Duration ttl{0};
  std::int64_t revision = 0;
};

struct KeyValue {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  LeaseId lease = 0;
};

// The leader key after a campaign: ours (won) or someone else's.
struct Campaign {
  bool won = false;
  std::optional<KeyValue> leader;  // the key as it stands (absent: nobody holds it)
  std::int64_t revision = 0;
};

struct Range {
  std::vector<KeyValue> kvs;
  std::int64_t revision = 0;
};

// A write fenced on the leader key: `ok` false when the key no longer has that create revision
// (another term began, or ours expired).
struct FencedWrite {
  bool ok = false;
  std::int64_t revision = 0;
};

class Coordination {
 public:
  virtual ~Coordination() = default;
  virtual Result<Lease> grant(Duration ttl) = 0;
  virtual Result<Renewal> keep_alive(LeaseId lease) = 0;
  virtual Status revoke(LeaseId lease) = 0;
  // Puts `key` = `value` on `lease` unless it exists (create revision 0); then reads it.
  virtual Result<Campaign> campaign(const std::string& key, const std::string& value,
                                    LeaseId lease) = 0;
  // Puts `key` = `value` on `lease` (0: no lease), unconditionally (membership keys).
  virtual Status put(const std::string& key, const std::string& value, LeaseId lease) = 0;
  // Puts `key` = `value` (no lease) only while `fence_key` exists with `fence_revision` as its
  // create revision.
  virtual Result<FencedWrite> put_fenced(const std::string& key, const std::string& value,
                                         const std::string& fence_key,
                                         std::int64_t fence_revision) = 0;
  // Keys under `prefix` modified at or after `min_mod_revision` (0: all), by key.
  virtual Result<Range> range_prefix(const std::string& prefix, std::int64_t min_mod_revision) = 0;
  virtual Result<std::optional<KeyValue>> get(const std::string& key) = 0;
};

}  // namespace tw::ha
