#include "daemon/schedule.h"

#include <algorithm>

namespace tw::daemon {

namespace {

bool same_source(const influx::SourceConfig& a, const influx::SourceConfig& b) {
  return a.type == b.type && a.url == b.url && a.token_file == b.token_file &&
         a.ca_file == b.ca_file && a.timeout == b.timeout && a.account_id == b.account_id &&
         a.cluster_id == b.cluster_id && a.influxctl_path == b.influxctl_path &&
         a.influxctl_config == b.influxctl_config && a.profile == b.profile;
}

bool same_web(const metrics::WebConfig& a, const metrics::WebConfig& b) {
  return a.tls_cert_file == b.tls_cert_file && a.tls_key_file == b.tls_key_file &&
         a.tls_client_ca_file == b.tls_client_ca_file && a.users == b.users;
}

// The sinks and the fail-closed gate (signing settings are not export settings).
bool same_export(const AuditSection& a, const AuditSection& b) {
  auto same_sink = [](const ExportSinkConfig& x, const ExportSinkConfig& y) {
    return x.name == y.name && x.type == y.type && x.address == y.address && x.tls == y.tls &&
           x.ca_file == y.ca_file && x.cert_file == y.cert_file && x.key_file == y.key_file &&
           x.path == y.path && x.socket == y.socket;
  };
  return a.require_export == b.require_export && a.export_max_lag == b.export_max_lag &&
         std::equal(a.exports.begin(), a.exports.end(), b.exports.begin(), b.exports.end(),
                    same_sink);
}

}  // namespace

NextPoll next_poll(Timestamp planned, Duration interval, Timestamp now,
                   std::optional<Duration> retry_after) {
  NextPoll out;
  const Duration behind = now - planned;
  std::int64_t k = 1;
  if (behind > interval) k = (behind + interval - Duration(1)) / interval;
  out.skipped = k - 1;
  out.planned = planned + interval * k;
  if (retry_after && out.planned < now + *retry_after) {
    out.planned = now + *retry_after;
    out.waited = true;
  }
  return out;
}

bool same_cluster(const ClusterConfig& a, const ClusterConfig& b) {
  return a.name == b.name && same_source(a.source, b.source) &&
         a.poll_interval == b.poll_interval && a.labels == b.labels;
}

std::optional<std::string> restart_only_change(const Config& running, const Config& next) {
  if (next.daemon.database != running.daemon.database)
    return "daemon.database changed; the database can only change at a restart";
  if (next.daemon.max_concurrent_polls != running.daemon.max_concurrent_polls)
    return "daemon.max_concurrent_polls changed; it takes effect only at a restart";
  if (next.http.listen != running.http.listen || !same_web(next.http.web, running.http.web) ||
      next.http.reuse_metrics_text != running.http.reuse_metrics_text) {
    return "[http] or its web_config changed; the endpoint's settings take effect only at a "
           "restart";
  }
  if (!(next.ha == running.ha)) {
    return "[ha] changed; high-availability settings take effect only at a restart";
  }
  if (!same_export(next.audit, running.audit)) {
    return "[audit] export settings changed (export sinks, require_export, export_max_lag); they "
           "take effect only at a restart";
  }
  return std::nullopt;
}

ClusterPlan plan_clusters(const std::vector<const ClusterConfig*>& running,
                          const std::vector<ClusterConfig>& next) {
  ClusterPlan plan;
  for (const auto& cl : next) {
    auto it = std::find_if(running.begin(), running.end(),
                           [&](const ClusterConfig* r) { return r->name == cl.name; });
    if (it == running.end()) {
      plan.added.push_back(cl.name);
    } else if (same_cluster(**it, cl)) {
      plan.unchanged.push_back(cl.name);
    } else {
      plan.changed.push_back(cl.name);
    }
  }
  for (const ClusterConfig* r : running) {
    bool kept = std::any_of(next.begin(), next.end(),
                            [&](const ClusterConfig& cl) { return cl.name == r->name; });
    if (!kept) plan.removed.push_back(r->name);
  }
  return plan;
}

}  // namespace tw::daemon
