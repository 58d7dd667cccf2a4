#pragma once
// Watches the management token tokenwarden itself uses for one cluster, where the source can see
// it (influxctl: `management list`, influx/token_source.h own_credential): its expiry becomes the
// metric tokenwarden_management_token_expiry_timestamp_seconds (the shipped rule
// TokenwardenManagementTokenExpiring alerts before it lapses), and once it has expired or been
// revoked, every poll fails with a sentence saying so and how to replace it, instead of an
// opaque authentication error.
//
// The list is read at the first poll and then hourly; while the credential has lapsed it is read
// at every poll, so a replaced token is noticed at once. A failed read is logged (once per
// distinct error) and never fails a poll: it is a warning about a warning.
//
// Thread safety: one check() at a time (the cluster's poller). Errors: none thrown.

#include <optional>
#include <string>

#include "core/log.h"
#include "core/time.h"
#include "influx/token_source.h"
#include "metrics/metrics.h"

namespace tw::daemon {

inline constexpr Duration kCredentialCheckInterval = std::chrono::hours(1);

class CredentialWatch {
 public:
  CredentialWatch(std::string cluster, Logger log);

  // Refreshes what is known when due and publishes the metric (if `metrics`); returns why the
  // poll must fail (the credential has expired or was revoked), or nullopt.
  std::optional<std::string> check(influx::ClusterClient& client, const influx::CallContext& ctx,
                                   Timestamp now, metrics::Metrics* metrics);

 private:
  bool due(Timestamp now) const;
  std::optional<std::string> lapsed(Timestamp now) const;

  std::string cluster_;
  Logger log_;
  std::optional<Timestamp> checked_at_;
  std::optional<influx::OwnCredential> known_;
  std::string last_error_;
};

}  // namespace tw::daemon
