#include "daemon/records.h"

#include <unistd.h>

#include "core/json_writer.h"
#include "core/version.h"
#include "storage/queries.h"

namespace tw::daemon {

Status append_daemon_event(storage::AuditStore& store, EventKind kind, const std::string& detail,
                           Timestamp now) {
  auto txn = store.begin();
  if (!txn.ok()) return txn.take_error();
  auto seq = txn->append({kind, {}, {}, detail}, now);
  if (!seq.ok()) return seq.take_error();
  return txn->commit();
}

std::string config_applied_detail(const Config& config) {
  std::string d;
  JsonWriter w(d);
  w.begin_object();
  w.field("config_hash", config.hash);
  w.field("path", config.path);
  w.key("clusters").begin_array();
  for (const auto& c : config.clusters) w.value(c.name);
  w.end_array();
  w.key("policies").begin_array();
  for (const auto& p : config.policies) w.value(p.name);
  w.end_array();
  w.field("exemptions", static_cast<std::int64_t>(config.exemptions.size()));
  w.end_object();
  return d;
}

std::string config_rejected_detail(const std::string& path, const std::string& rejected_hash,
                                   const std::string& running_hash, const std::string& reason) {
  std::string d;
  JsonWriter w(d);
  w.begin_object();
  w.field("path", path);
  if (rejected_hash.empty()) {
    w.key("config_hash").null();
  } else {
    w.field("config_hash", rejected_hash);
  }
  w.field("running_config_hash", running_hash);
  w.field("reason", reason);
  w.end_object();
  return d;
}

Status record_startup(storage::AuditStore& store, const Config& config, Timestamp now) {
  auto txn = store.begin();
  if (!txn.ok()) return txn.take_error();
  std::string d;
  JsonWriter(d)
      .begin_object()
      .field("version", kVersion)
      .field("pid", static_cast<std::int64_t>(::getpid()))
      .field("config_hash", config.hash)
      .end_object();
  auto seq = txn->append({EventKind::kDaemonStarted, {}, {}, d}, now);
  if (!seq.ok()) return seq.take_error();
  auto last = storage::last_applied_config_hash(txn->db());
  if (!last.ok()) return last.take_error();
  if (*last != config.hash) {
    auto s2 = txn->append({EventKind::kConfigApplied, {}, {}, config_applied_detail(config)}, now);
    if (!s2.ok()) return s2.take_error();
  }
  return txn->commit();
}

}  // namespace tw::daemon
