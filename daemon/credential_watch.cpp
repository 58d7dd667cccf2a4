#include "daemon/credential_watch.h"

#include "core/strings.h"

namespace tw::daemon {

CredentialWatch::CredentialWatch(std::string cluster, Logger log)
    : cluster_(std::move(cluster)), log_(std::move(log)) {}

bool CredentialWatch::due(Timestamp now) const {
  if (!checked_at_ || now < *checked_at_ || now - *checked_at_ >= kCredentialCheckInterval) {
    return true;
  }
  return lapsed(now).has_value();
}

std::optional<std::string> CredentialWatch::lapsed(Timestamp now) const {
  if (!known_) return std::nullopt;
  std::string when;  // built only for a lapsed credential: this runs at every poll
  if (known_->revoked_at) {
    when = " was revoked at " + format_timestamp(*known_->revoked_at);
  } else if (known_->expires_at && *known_->expires_at <= now) {
    when = " expired at " + format_timestamp(*known_->expires_at);
  } else {
    return std::nullopt;
  }
  return "the management token tokenwarden uses for cluster " + cluster_ + " (id " +
         printable(known_->id, 64) +
         (known_->description.empty() ? std::string()
                                      : ", \"" + printable(known_->description, 80) + "\"") +
         ")" + when +
         "; create a new one with `influxctl management create` and set it as mgmt_token in the "
         "influxctl profile";
}

std::optional<std::string> CredentialWatch::check(influx::ClusterClient& client,
                                                  const influx::CallContext& ctx, Timestamp now,
                                                  metrics::Metrics* metrics) {
  if (due(now)) {
    auto got = client.own_credential(ctx);
    checked_at_ = now;
    if (got.ok()) {
      if (*got &&
          (!known_ || known_->id != (*got)->id || known_->expires_at != (*got)->expires_at)) {
        log_.info("management token",
                  {{"cluster", cluster_},
                   {"id", (*got)->id},
                   {"expires_at", (*got)->expires_at ? format_timestamp(*(*got)->expires_at)
                                                     : std::string("never")}});
      }
      known_ = std::move(*got);
      last_error_.clear();
    } else if (got.error().code != ErrorCode::kCancelled && got.error().message != last_error_) {
      last_error_ = got.error().message;
      log_.warn("cannot tell when the management token expires: " + last_error_,
                {{"cluster", cluster_}});
    }
    if (metrics != nullptr) {
      metrics->management_token_expiry(
          cluster_, known_ && !known_->revoked_at ? known_->expires_at : std::nullopt);
    }
  }
  return lapsed(now);
}

}  // namespace tw::daemon
