#include "daemon/runtime.h"

#include "core/host.h"
#include "core/version.h"

namespace tw::daemon {

Result<std::unique_ptr<ClusterPoller>> make_poller(const Config& config,
                                                   const ClusterConfig& cluster, Runtime& rt,
                                                   const Clock& clock,
                                                   const std::shared_ptr<LogSink>& sink,
                                                   const std::string& credentials_directory) {
  auto client = influx::make_cluster_client(cluster.source, credentials_directory);
  if (!client.ok())
    return make_error(client.error().code,
                      "cluster " + cluster.name + ": " + client.error().message);
  auto enforcer =
      std::make_unique<Enforcer>(cluster, clock, Logger("policy", sink), rt.alerts.get());
  enforcer->configure(rt.policies, enforcement_settings(config));
  if (config.ha.enabled) {
    // Only the leading daemon acts (the service gives its enforcers the real fence); a one-shot
    // process takes no part in the election.
    static NoLeadership no_leadership;
    enforcer->set_fence(&no_leadership);
  }
  auto poller = std::make_unique<ClusterPoller>(cluster, std::move(*client), *rt.recorder, clock,
                                                Logger("poller", sink), std::move(enforcer));
  poller->set_metrics(rt.metrics.get());
  poller->set_owner_rules(rt.owners);
  return poller;
}

Result<std::optional<ed25519::PrivateKey>> load_configured_key(
    const Config& config, const std::string& credentials_directory) {
  if (config.audit.signing_key_file.empty()) return std::optional<ed25519::PrivateKey>();
  auto loaded = load_signing_key(config.audit.signing_key_file, credentials_directory);
  if (!loaded.ok()) {
    return make_error(loaded.error().code, "audit.signing_key_file: " + loaded.error().message);
  }
  return std::optional<ed25519::PrivateKey>(std::move(*loaded));
}

Status configure_checkpoints(Checkpointer& checkpointer, const Config& config,
                             const std::string& credentials_directory, Timestamp now) {
  auto key = load_configured_key(config, credentials_directory);
  if (!key.ok()) return key.take_error();
  checkpointer.configure(std::move(*key), config.audit);
  return checkpointer.enabled() ? checkpointer.start(now) : ok_status();
}

Result<Runtime> build_runtime(const Config& config, const Clock& clock,
                              const std::shared_ptr<LogSink>& sink, const RuntimeOptions& options) {
  Runtime rt;
  auto store =
      storage::AuditStore::open(config.daemon.database, storage::AuditStore::Mode::kReadWrite);
  if (!store.ok()) return store.take_error();
  rt.store = std::move(*store);
  rt.recorder = std::make_unique<storage::InventoryRecorder>(*rt.store);
  rt.metrics = std::make_unique<metrics::Metrics>(
      kVersion, metrics::MetricsOptions{.reuse_text = config.http.reuse_metrics_text});
  rt.checkpointer =
      std::make_unique<Checkpointer>(*rt.store, Logger("checkpoint", sink), host_name());
  if (auto st = configure_checkpoints(*rt.checkpointer, config, options.credentials_directory,
                                      clock.now());
      !st.ok()) {
    return st.take_error();
  }
  rt.checkpointer->on_signed(
      [m = rt.metrics.get()](std::int64_t seq, Timestamp at) { m->checkpoint_signed(seq, at); });
  rt.store->on_commit([m = rt.metrics.get(), c = rt.checkpointer.get()](const EventCounts& counts) {
    m->audit_events(counts);
    c->committed(counts);
  });
  auto policies = compile_policies(config);
  if (!policies.ok()) return policies.take_error();
  rt.policies = std::move(*policies);
  auto owners = compile_owner_rules(config.owners);
  if (!owners.ok()) return owners.take_error();
  rt.owners = std::move(*owners);
  if (options.alerting && (options.always_dispatch || !config.alerting.alertmanager_url.empty() ||
                           !config.alerting.webhook_url.empty())) {
    AlertingOptions ao;
    ao.alertmanager_url = config.alerting.alertmanager_url;
    ao.webhook_url = config.alerting.webhook_url;
    rt.alerts = std::make_unique<AlertDispatcher>(ao, clock, Logger("alerts", sink));
  }
  for (const auto& cl : config.clusters) {
    if (!options.only_cluster.empty() && cl.name != options.only_cluster) continue;
    auto poller = make_poller(config, cl, rt, clock, sink, options.credentials_directory);
    if (!poller.ok()) return poller.take_error();
    rt.pollers.push_back(std::move(*poller));
  }
  return rt;
}

std::map<std::string, std::int64_t> active_exemptions(const Config& config, Timestamp now) {
  std::map<std::string, std::int64_t> out;
  for (const auto& p : config.policies) out[p.name] = 0;
  for (const auto& e : config.exemptions) {
    if (e.expires > now) ++out[e.policy];
  }
  return out;
}

}  // namespace tw::daemon
