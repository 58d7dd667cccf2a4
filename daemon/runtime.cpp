#include "daemon/runtime.h"

namespace tw::daemon {

Result<Runtime> build_runtime(const Config& config, const Clock& clock, const std::shared_ptr<LogSink>& sink,
                              const RuntimeOptions& options) {
  Runtime rt;
  auto store = storage::AuditStore::open(config.daemon.database, storage::AuditStore::Mode::kReadWrite);
  if (!store.ok()) return store.take_error();
  rt.store = std::move(*store);
  rt.recorder = std::make_unique<storage::InventoryRecorder>(*rt.store);
  auto policies = compile_policies(config);
  if (!policies.ok()) return policies.take_error();
  rt.policies = std::move(*policies);
  if (options.alerting && (!config.alerting.alertmanager_url.empty() || !config.alerting.webhook_url.empty())) {
    AlertingOptions ao;
    ao.alertmanager_url = config.alerting.alertmanager_url;
    ao.webhook_url = config.alerting.webhook_url;
    rt.alerts = std::make_unique<AlertDispatcher>(ao, clock, Logger("alerts", sink));
  }
  const EnforcementSettings settings = enforcement_settings(config);
  for (const auto& cl : config.clusters) {
    if (!options.only_cluster.empty() && cl.name != options.only_cluster) continue;
    auto client = influx::make_cluster_client(cl.source, options.credentials_directory);
    if (!client.ok()) return make_error(client.error().code, "cluster " + cl.name + ": " + client.error().message);
    auto enforcer = std::make_unique<Enforcer>(cl, clock, Logger("policy", sink), rt.alerts.get());
    enforcer->configure(rt.policies, settings);
    rt.pollers.push_back(std::make_unique<ClusterPoller>(cl, std::move(*client), *rt.recorder, clock,
                                                         Logger("poller", sink), std::move(enforcer)));
  }
  return rt;
}

}  // namespace tw::daemon
