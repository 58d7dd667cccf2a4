#pragma once
// The daemon scheduler's decisions as pure functions (daemon/service.cpp carries them out):
// when a cluster's next poll is due, and what a configuration reload may change and does change.
// No clock reads, no I/O; tests/unit/daemon/schedule_test.cpp covers them.
//
// Thread safety: pure functions. Errors: a refused reload is a value (the sentence to log).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/time.h"
#include "daemon/config.h"

namespace tw::daemon {

struct NextPoll {
  Timestamp planned;         // the next planned time (the jitter is added when the timer is armed)
  std::int64_t skipped = 0;  // grid slots skipped because the last cycle overran them
  bool waited = false;       // pushed out to honour the cluster's Retry-After
};

// The next slot on the `interval` grid after `planned` that is not already in the past by more
// than one interval (a cycle that overran skips the slots it missed; a slot due exactly now is
// kept), then no sooner than `retry_after` from `now` if the cluster asked to wait; the grid
// continues from there. `interval` must be positive.
NextPoll next_poll(Timestamp planned, Duration interval, Timestamp now,
                   std::optional<Duration> retry_after = std::nullopt);

// Whether a reload keeps a cluster's poller (same name, source, interval and labels) or must build
// it anew.
bool same_cluster(const ClusterConfig& a, const ClusterConfig& b);

// The settings that take effect only at a restart (daemon.database, daemon.max_concurrent_polls,
// [http] and its web config): why a reload from `running` to `next` is refused, or nullopt.
std::optional<std::string> restart_only_change(const Config& running, const Config& next);

// What a reload does to the polled clusters, by name. `running` are the configurations of the
// clusters polled now (their current pollers'); `unchanged`, `changed` and `added` are in the
// order of `next`, `removed` in the order of `running`.
struct ClusterPlan {
  std::vector<std::string> unchanged;  // the poller stays (it picks up policies and safety)
  std::vector<std::string> changed;    // a new poller replaces it once its cycle finishes
  std::vector<std::string> added;
  std::vector<std::string> removed;
};
ClusterPlan plan_clusters(const std::vector<const ClusterConfig*>& running,
                          const std::vector<ClusterConfig>& next);

}  // namespace tw::daemon
