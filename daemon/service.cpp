#include "daemon/service.h"

#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <csignal>
#include <mutex>
#include <optional>
#include <random>

#include "core/json_writer.h"
#include "core/strings.h"
#include "core/version.h"
#include "daemon/exports.h"
#include "daemon/ha.h"
#include "daemon/notify.h"
#include "daemon/preflight.h"
#include "daemon/records.h"
#include "daemon/runtime.h"
#include "daemon/schedule.h"
#include "metrics/http_endpoint.h"
#include "storage/audit_store.h"

namespace tw::daemon {

namespace asio = boost::asio;

// How long the exporters may keep delivering after daemon_stopped at a clean shutdown.
constexpr Duration kExportDrain = std::chrono::seconds(5);

namespace {

// toml11's syntax errors span several lines with a source excerpt; a log line needs one sentence:
// the first line, and the line number from the excerpt if there is one.
std::string one_line(const std::string& message) {
  auto nl = message.find('\n');
  if (nl == std::string::npos) return message;
  std::string out = message.substr(0, nl);
  auto bar = message.find(" | ", nl);
  if (bar != std::string::npos) {
    auto start = message.rfind('\n', bar);
    std::string num(trim(std::string_view(message).substr(start + 1, bar - start - 1)));
    if (!num.empty() &&
        std::all_of(num.begin(), num.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      out += " (line " + num + ")";
    }
  }
  return out;
}

const char* outcome_name(storage::PollOutcome o) {
  switch (o) {
    case storage::PollOutcome::kOk:
      return "ok";
    case storage::PollOutcome::kFailed:
      return "failed";
    case storage::PollOutcome::kSuspect:
      return "suspect";
  }
  return "unknown";
}

}  // namespace

struct Service::Impl {
  struct Slot {
    std::unique_ptr<ClusterPoller> poller;
    std::unique_ptr<asio::steady_timer> timer;
    Timestamp planned;
    bool running = false;
    // Set by a reload while a cycle runs; applied when it finishes.
    bool removed = false;
    std::unique_ptr<ClusterPoller> replacement;
    bool reconfigure = false;
    const std::string& name() const { return poller->cluster().name; }
  };

  // What /readyz reads from the endpoint's thread.
  struct ClusterHealth {
    Duration interval{0};
    Timestamp since;                   // when the daemon started watching the cluster
    std::optional<Timestamp> last_ok;  // last successful poll
    std::string last_error;
  };

  Config config;
  ServiceDeps deps;
  Logger log;
  Notifier notifier;
  Runtime rt;
  std::unique_ptr<Exports> exports;   // stopped before the runtime (it reads the metrics)
  std::unique_ptr<HaCoordinator> ha;  // [ha]: uses the runtime (store, metrics, alerts)
  asio::io_context ioc{1};
  std::unique_ptr<asio::thread_pool> pool;
  std::unique_ptr<asio::signal_set> signals;
  std::unique_ptr<asio::steady_timer> grace_timer;
  std::unique_ptr<asio::steady_timer> heartbeat_timer;
  std::vector<std::unique_ptr<Slot>> slots;
  std::atomic<bool> cancel{false};
  bool stopping = false;
  bool finished = false;
  int running = 0;
  std::mt19937_64 rng{std::random_device{}()};
  std::function<void(const CycleReport&)> callback;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  Duration heartbeat_period = std::chrono::seconds(10);
  bool watchdog = false;
  bool signing = false;  // a checkpoint job is queued or running on the pool

  // Shared with the endpoint thread.
  mutable std::mutex state_mu;
  std::map<std::string, ClusterHealth> health;
  std::vector<std::pair<std::string, Timestamp>> exemption_expiries;  // (policy, expires)
  std::vector<std::string> policy_names;
  bool alertmanager_seen = false, webhook_seen = false;
  bool accepting = false;  // started and not stopping
  bool shutting_down = false;
  std::atomic<std::int64_t> loop_tick{0};  // steady-clock ns of the last heartbeat
  std::string url;

  // Destroyed first: its handlers read the runtime's metrics.
  std::unique_ptr<metrics::HttpEndpoint> endpoint;

  Impl(Config c, ServiceDeps d)
      : config(std::move(c)), deps(std::move(d)), log("daemon", deps.sink) {}

  static std::int64_t steady_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  Duration jitter() {
    const Duration max = config.daemon.poll_jitter;
    if (max.count() <= 0) return Duration(0);
    std::uniform_int_distribution<Duration::rep> dist(0, max.count());
    return Duration(dist(rng));
  }

  // [audit] require_export: a poller's enforcer asks the exports before it acts.
  void gate(ClusterPoller& poller) {
    Enforcer* e = poller.enforcer();
    if (e != nullptr && ha) e->set_fence(ha.get());
    if (e == nullptr || !exports || !config.audit.require_export) return;
    e->set_export_gate([x = exports.get()](Timestamp now) { return x->blocking_reason(now); });
  }

  // ---- scheduling -------------------------------------------------------------------------

  void arm(Slot& slot) {
    Duration wait = slot.planned - deps.clock->now() + jitter();
    if (wait.count() < 0) wait = Duration(0);
    slot.timer->expires_after(wait);
    slot.timer->async_wait([this, s = &slot](const boost::system::error_code& ec) {
      if (ec || stopping) return;
      start_cycle(*s);
    });
  }

  // [ha]: this instance just started leading: every idle cluster is polled now rather than at
  // its next slot, so that what the old leader left is acted on within one cycle (a slot
  // stretched by a cluster's Retry-After keeps its wait).
  void poll_now() {
    if (stopping) return;
    const Timestamp now = deps.clock->now();
    for (auto& s : slots) {
      if (s->running || s->planned - now > s->poller->cluster().poll_interval) continue;
      s->timer->cancel();
      s->planned = now;
      start_cycle(*s);
    }
  }

  void start_cycle(Slot& slot) {
    if (slot.running) {  // cannot happen with re-arming on completion; kept as a guard
      schedule_next(slot);
      return;
    }
    slot.running = true;
    ++running;
    RunOptions opts;
    opts.cancel = &cancel;
    opts.max_vanished_percent = config.safety.max_vanished_percent;
    ClusterPoller* poller = slot.poller.get();
    asio::post(*pool, [this, s = &slot, poller, opts] {
      CycleReport rep = poller->run_once(opts);
      asio::post(ioc, [this, s, rep = std::move(rep)] { cycle_done(*s, rep); });
    });
  }

  void cycle_done(Slot& slot, const CycleReport& rep) {
    slot.running = false;
    --running;
    note_cycle(rep);
    maybe_checkpoint();
    if (callback) callback(rep);
    if (stopping) {
      maybe_finish();
      return;
    }
    if (slot.removed) {
      drop_slot(slot);
      return;
    }
    apply_pending(slot);
    schedule_next(slot, rep.retry_after);
  }

  void note_cycle(const CycleReport& rep) {
    const bool ok = rep.recorded && rep.summary.outcome == storage::PollOutcome::kOk;
    {
      std::lock_guard lock(state_mu);
      auto it = health.find(rep.cluster);
      if (it != health.end()) {
        if (ok) {
          it->second.last_ok = rep.finished_at;
          it->second.last_error.clear();
        } else {
          it->second.last_error =
              rep.error.empty() ? std::string("the poll was not recorded") : rep.error;
        }
      }
    }
    std::string st = std::to_string(slots.size()) + " clusters; last poll: " + rep.cluster + " " +
                     (rep.recorded ? outcome_name(rep.summary.outcome) : "not recorded") + " (" +
                     std::to_string(rep.summary.token_count) + " tokens)";
    if (rep.enforcement.opened + rep.enforcement.succeeded + rep.enforcement.failed > 0) {
      st += "; violations opened " + std::to_string(rep.enforcement.opened) +
            ", actions succeeded " + std::to_string(rep.enforcement.succeeded) + ", failed " +
            std::to_string(rep.enforcement.failed);
    }
    if (deps.notify_systemd) notifier.status(st);
  }

  // The next slot on the interval's grid; no sooner than `retry_after` from now if the cluster
  // asked to wait (HTTP 429/503 Retry-After), and the grid then continues from there.
  void schedule_next(Slot& slot, std::optional<Duration> retry_after = std::nullopt) {
    const Timestamp now = deps.clock->now();
    const NextPoll next =
        next_poll(slot.planned, slot.poller->cluster().poll_interval, now, retry_after);
    if (next.skipped > 0) {
      log.warn("a poll cycle overran its interval; skipping missed polls",
               {{"cluster", slot.name()}, {"skipped", next.skipped}});
    }
    slot.planned = next.planned;
    if (next.waited) {
      log.info("the cluster asked to wait; the next poll waits for it",
               {{"cluster", slot.name()},
                {"retry_after", format_duration(*retry_after)},
                {"next_poll", format_timestamp(slot.planned)}});
    }
    arm(slot);
  }

  Slot& add_slot(std::unique_ptr<ClusterPoller> poller, Timestamp first) {
    auto slot = std::make_unique<Slot>();
    slot->poller = std::move(poller);
    slot->timer = std::make_unique<asio::steady_timer>(ioc);
    slot->planned = first;
    {
      std::lock_guard lock(state_mu);
      ClusterHealth h;
      h.interval = slot->poller->cluster().poll_interval;
      h.since = first;
      health[slot->name()] = h;
    }
    slots.push_back(std::move(slot));
    return *slots.back();
  }

  void drop_slot(Slot& slot) {
    const std::string name = slot.name();
    slot.timer->cancel();
    {
      std::lock_guard lock(state_mu);
      health.erase(name);
    }
    rt.metrics->forget_cluster(name);
    std::erase_if(slots, [&](const std::unique_ptr<Slot>& s) { return s.get() == &slot; });
    log.info("cluster removed by the reload; no longer polled", {{"cluster", name}});
  }

  void apply_pending(Slot& slot) {
    if (slot.replacement) {
      slot.poller = std::move(slot.replacement);
      slot.reconfigure = false;
      std::lock_guard lock(state_mu);
      auto& h = health[slot.name()];
      h.interval = slot.poller->cluster().poll_interval;
    }
    if (slot.reconfigure) {
      slot.poller->set_owner_rules(rt.owners);
      if (Enforcer* e = slot.poller->enforcer())
        e->configure(rt.policies, enforcement_settings(config));
      slot.reconfigure = false;
    }
  }

  // ---- signed checkpoints ------------------------------------------------------------------

  // Due checkpoints are signed on the pool: the event loop never waits for the database.
  void maybe_checkpoint() {
    if (signing || stopping || !pool || !rt.checkpointer->due(deps.clock->now())) return;
    signing = true;
    asio::post(*pool, [this] {
      rt.checkpointer->sign(deps.clock->now());
      asio::post(ioc, [this] { signing = false; });
    });
  }

  // ---- heartbeat, watchdog, readiness -------------------------------------------------------

  void heartbeat() {
    loop_tick.store(steady_ns());
    if (watchdog && deps.notify_systemd) notifier.watchdog();
    maybe_checkpoint();
    heartbeat_timer->expires_after(heartbeat_period);
    heartbeat_timer->async_wait([this](const boost::system::error_code& ec) {
      if (ec || finished) return;
      heartbeat();
    });
  }

  bool healthy() const {
    const auto age = std::chrono::nanoseconds(steady_ns() - loop_tick.load());
    return age < heartbeat_period * 3 + std::chrono::seconds(5);
  }

  metrics::ReadyState ready() const {
    metrics::ReadyState r;
    const Timestamp now = deps.clock->now();
    std::lock_guard lock(state_mu);
    if (!accepting)
      r.reasons.push_back(shutting_down ? "the daemon is stopping" : "the daemon is starting");
    if (!rt.store) r.reasons.push_back("the database is not open");
    for (const auto& [name, h] : health) {
      const Duration window = h.interval * 3;
      if (!h.last_ok) {
        if (now - h.since > window) {
          r.reasons.push_back(
              "cluster " + name + ": no successful poll since the daemon started " +
              format_duration(now - h.since) + " ago" +
              (h.last_error.empty() ? std::string() : " (last error: " + h.last_error + ")"));
        } else {
          r.reasons.push_back("cluster " + name + ": waiting for the first successful poll");
        }
      } else if (now - *h.last_ok > window) {
        r.reasons.push_back(
            "cluster " + name + ": last successful poll " + format_duration(now - *h.last_ok) +
            " ago, more than 3 intervals" +
            (h.last_error.empty() ? std::string() : " (last error: " + h.last_error + ")"));
      }
    }
    r.ready = r.reasons.empty();
    return r;
  }

  std::string scrape() {
    const Timestamp now = deps.clock->now();
    {
      std::map<std::string, std::int64_t> active;
      std::lock_guard lock(state_mu);
      for (const auto& p : policy_names) active[p] = 0;
      for (const auto& [policy, expires] : exemption_expiries) {
        if (expires > now) ++active[policy];
      }
      rt.metrics->exemptions_active(active);
    }
    if (rt.alerts) {
      // Series appear once a receiver is configured, and stay (counters) after it is removed.
      const auto& c = rt.alerts->counters();
      bool am = false, wh = false;
      {
        std::lock_guard lock(state_mu);
        am = alertmanager_seen;
        wh = webhook_seen;
      }
      if (am) {
        rt.metrics->alerts_sent("alertmanager", "ok", c.alertmanager_ok.load());
        rt.metrics->alerts_sent("alertmanager", "failed", c.alertmanager_failed.load());
      }
      if (wh) {
        rt.metrics->alerts_sent("webhook", "ok", c.webhook_ok.load());
        rt.metrics->alerts_sent("webhook", "failed", c.webhook_failed.load());
        rt.metrics->alerts_sent("webhook", "dropped", c.dropped.load());
      }
    }
    if (exports) exports->refresh_metrics(now);
    if (exports && config.audit.require_export)
      rt.metrics->export_blocked(exports->blocking_reason(now).has_value());
    return rt.metrics->render();
  }

  void publish_config_state() {
    std::lock_guard lock(state_mu);
    exemption_expiries.clear();
    for (const auto& e : config.exemptions) exemption_expiries.emplace_back(e.policy, e.expires);
    policy_names.clear();
    for (const auto& p : config.policies) policy_names.push_back(p.name);
    alertmanager_seen = alertmanager_seen || !config.alerting.alertmanager_url.empty();
    webhook_seen = webhook_seen || !config.alerting.webhook_url.empty();
  }

  Status start_endpoint() {
    if (config.http.listen.empty()) return {};
    metrics::EndpointOptions eo;
    eo.listen = config.http.listen;
    eo.web = config.http.web;
    metrics::EndpointHandlers h;
    h.metrics = [this] { return scrape(); };
    h.healthy = [this] { return healthy(); };
    h.ready = [this] { return ready(); };
    auto ep = metrics::HttpEndpoint::start(std::move(eo), std::move(h), Logger("http", deps.sink));
    if (!ep.ok()) return ep.take_error();
    endpoint = std::move(*ep);
    {
      std::lock_guard lock(state_mu);
      url = endpoint->url();
    }
    return {};
  }

  // ---- reload -------------------------------------------------------------------------------

  void reload() {
    if (stopping) return;
    if (deps.notify_systemd) notifier.reloading();
    const Timestamp now = deps.clock->now();
    std::string rejected_hash;  // of the file read, if it could be
    auto failed = [&](const std::string& why) {
      log.error("configuration reload failed; the running configuration stays in force: " + why,
                {{"path", config.path}});
      rt.metrics->config_reload(false, now);
      auto st = append_daemon_event(
          *rt.store, EventKind::kConfigRejected,
          config_rejected_detail(config.path, rejected_hash, config.hash, why), now);
      if (!st.ok()) log.error("could not record config_rejected", {{"error", st.error().message}});
      if (deps.notify_systemd) notifier.ready("reload failed; running the previous configuration");
    };
    auto first_problem = [](const std::vector<std::string>& errors) {
      std::string why = errors.empty() ? std::string("it did not load") : one_line(errors.front());
      if (errors.size() > 1)
        why += " (and " + std::to_string(errors.size() - 1) + " more problems; run check-config)";
      return why;
    };
    if (config.path.empty() || config.path.front() == '<') {
      failed("the configuration was not loaded from a file");
      return;
    }
    auto load = load_config_file(config.path, now);
    rejected_hash = load.hash;
    if (!load.config) {
      failed(first_problem(load.errors));
      return;
    }
    // The files a start would read (TLS, token files): a reload that a restart would not survive
    // is refused now.
    auto files = check_runtime_files(*load.config, deps.credentials_directory);
    if (!files.errors.empty()) {
      failed(first_problem(files.errors));
      return;
    }
    auto key = load_configured_key(*load.config, deps.credentials_directory);
    if (!key.ok()) {
      failed(key.error().message);
      return;
    }
    Config next = std::move(*load.config);
    for (const auto& w : load.warnings) log.warn("configuration: " + w);
    for (const auto& w : files.warnings) log.warn("configuration: " + w);
    if (auto why = restart_only_change(config, next)) {
      failed(*why);
      return;
    }
    auto policies = compile_policies(next);
    if (!policies.ok()) {
      failed(policies.error().message);
      return;
    }
    auto owners = compile_owner_rules(next.owners);
    if (!owners.ok()) {
      failed(owners.error().message);
      return;
    }
    // Build every new or changed cluster's poller before touching anything.
    auto old_policies = rt.policies;
    auto old_owners = rt.owners;
    rt.policies = *policies;
    rt.owners = *owners;
    struct Change {
      Slot* slot = nullptr;  // null: an added cluster
      std::unique_ptr<ClusterPoller> poller;
    };
    std::vector<Change> built;
    std::vector<Slot*> unchanged;
    auto slot_named = [&](const std::string& name) -> Slot* {
      for (auto& s : slots) {
        if (!s->removed && s->name() == name) return s.get();
      }
      return nullptr;
    };
    std::vector<const ClusterConfig*> polled;
    for (auto& s : slots) {
      if (!s->removed) polled.push_back(&s->poller->cluster());
    }
    const ClusterPlan plan = plan_clusters(polled, next.clusters);
    for (const auto& name : plan.unchanged) unchanged.push_back(slot_named(name));
    for (const auto& cl : next.clusters) {
      if (std::find(plan.unchanged.begin(), plan.unchanged.end(), cl.name) != plan.unchanged.end())
        continue;
      auto p = make_poller(next, cl, rt, *deps.clock, deps.sink, deps.credentials_directory);
      if (!p.ok()) {
        rt.policies = old_policies;
        rt.owners = old_owners;
        failed(p.error().message);
        return;
      }
      gate(**p);
      built.push_back({slot_named(cl.name), std::move(*p)});
    }
    // Everything is valid: apply it all.
    const bool changed_hash = next.hash != config.hash;
    std::vector<Slot*> gone;
    for (const auto& name : plan.removed) gone.push_back(slot_named(name));
    const std::size_t added = plan.added.size();
    const std::size_t changed = plan.changed.size();
    config = std::move(next);
    deps.sink->set_level(config.daemon.log_level);
    apply_checkpoint_key(std::move(*key), now);
    if (deps.set_log_format) deps.set_log_format(config.daemon.log_format);
    if (rt.alerts)
      rt.alerts->reconfigure(config.alerting.alertmanager_url, config.alerting.webhook_url);
    for (Slot* s : unchanged) {
      s->reconfigure = true;
      if (!s->running) apply_pending(*s);
    }
    for (auto& c : built) {
      if (c.slot == nullptr) {
        Slot& s = add_slot(std::move(c.poller), now);
        if (!stopping) arm(s);
      } else {
        c.slot->replacement = std::move(c.poller);
        if (!c.slot->running) apply_pending(*c.slot);
      }
    }
    for (Slot* s : gone) {
      if (s->running) {
        s->removed = true;  // dropped when its cycle finishes
      } else {
        drop_slot(*s);
      }
    }
    std::vector<std::string> names;
    for (const auto& p : config.policies) names.push_back(p.name);
    rt.metrics->keep_policies(names);
    publish_config_state();
    if (changed_hash) {
      auto st = append_daemon_event(*rt.store, EventKind::kConfigApplied,
                                    config_applied_detail(config), now);
      if (!st.ok()) log.error("could not record config_applied", {{"error", st.error().message}});
    }
    rt.metrics->config_reload(true, now);
    log.info(changed_hash ? "configuration reloaded" : "configuration reloaded (unchanged)",
             {{"config_hash", config.hash.substr(0, 12)},
              {"clusters", static_cast<std::int64_t>(config.clusters.size())},
              {"added", static_cast<std::int64_t>(added)},
              {"changed", static_cast<std::int64_t>(changed)},
              {"removed", static_cast<std::int64_t>(gone.size())},
              {"policies", static_cast<std::int64_t>(config.policies.size())}});
    if (deps.notify_systemd) notifier.ready("running; configuration reloaded");
  }

  void apply_checkpoint_key(std::optional<ed25519::PrivateKey> key, Timestamp now) {
    const bool was_enabled = rt.checkpointer->enabled();
    rt.checkpointer->configure(std::move(key), config.audit);
    if (was_enabled || !rt.checkpointer->enabled()) return;
    if (auto st = rt.checkpointer->start(now); !st.ok()) {
      log.error("could not read the last checkpoint", {{"error", st.error().message}});
    }
  }

  // ---- stop ---------------------------------------------------------------------------------

  void stop() {
    if (stopping) return;
    stopping = true;
    {
      std::lock_guard lock(state_mu);
      accepting = false;
      shutting_down = true;
    }
    if (deps.notify_systemd) notifier.stopping();
    log.info("stopping", {{"running_cycles", running}});
    for (auto& s : slots) s->timer->cancel();
    if (signals) signals->cancel();
    if (running > 0) {
      grace_timer = std::make_unique<asio::steady_timer>(ioc, std::chrono::seconds(5));
      grace_timer->async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        log.warn("cancelling cycles still running after 5s", {{"running_cycles", running}});
        cancel = true;
      });
    }
    maybe_finish();
  }

  void maybe_finish() {
    if (running > 0 || finished) return;
    finished = true;
    if (grace_timer) grace_timer->cancel();
    if (heartbeat_timer) heartbeat_timer->cancel();
    std::string d;
    JsonWriter(d)
        .begin_object()
        .field("version", kVersion)
        .field("pid", static_cast<std::int64_t>(::getpid()))
        .end_object();
    if (ha) ha->stop();  // leadership_lost (shutdown) comes before daemon_stopped
    auto s = append_daemon_event(*rt.store, EventKind::kDaemonStopped, d, deps.clock->now());
    if (!s.ok()) log.error("could not record daemon_stopped", {{"error", s.error().message}});
    rt.checkpointer->sign(deps.clock->now());  // the last checkpoint covers daemon_stopped
    log.info("stopped");
    guard.reset();
  }

  void wait_signal() {
    signals->async_wait([this](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      if (signo == SIGHUP) {
        log.info("SIGHUP received; reloading the configuration", {{"path", config.path}});
        if (exports) exports->reopen();  // file sinks: logrotate
        reload();
        wait_signal();
        return;
      }
      log.info("signal received", {{"signal", signo == SIGTERM ? "SIGTERM" : "SIGINT"}});
      stop();
    });
  }
};

Service::Service(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Service::~Service() {
  if (!impl_) return;
  if (impl_->ha) impl_->ha->stop();
  if (impl_->endpoint) impl_->endpoint->stop();
  if (impl_->pool) impl_->pool->join();
}

void Service::on_cycle(std::function<void(const CycleReport&)> callback) {
  impl_->callback = std::move(callback);
}

void Service::request_stop() {
  asio::post(impl_->ioc, [impl = impl_.get()] { impl->stop(); });
}

void Service::request_reload() {
  asio::post(impl_->ioc, [impl = impl_.get()] { impl->reload(); });
}

std::string Service::endpoint_url() const {
  std::lock_guard lock(impl_->state_mu);
  return impl_->url;
}

Result<std::unique_ptr<Service>> Service::create(Config config, ServiceDeps deps) {
  auto impl = std::make_unique<Impl>(std::move(config), std::move(deps));
  RuntimeOptions ro;
  ro.credentials_directory = impl->deps.credentials_directory;
  ro.always_dispatch = true;  // a reload may add receivers
  auto rt = build_runtime(impl->config, *impl->deps.clock, impl->deps.sink, ro);
  if (!rt.ok()) return rt.take_error();
  impl->rt = std::move(*rt);
  auto exports =
      Exports::create(impl->config, *impl->deps.clock, impl->deps.sink, impl->rt.metrics.get());
  if (!exports.ok()) return exports.take_error();
  impl->exports = std::move(*exports);
  if (!impl->exports->empty()) {  // exporters wake after every commit
    auto observer = impl->rt.store->commit_observer();
    impl->rt.store->on_commit([observer, x = impl->exports.get()](const EventCounts& counts) {
      if (observer) observer(counts);
      x->notify();
    });
  }
  if (impl->config.ha.enabled) {
    HaDeps hd;
    hd.clock = impl->deps.clock;
    hd.sink = impl->deps.sink;
    hd.metrics = impl->rt.metrics.get();
    hd.alerts = impl->rt.alerts.get();
    hd.credentials_directory = impl->deps.credentials_directory;
    auto ha = HaCoordinator::create(impl->config.ha, *impl->rt.store, std::move(hd));
    if (!ha.ok()) return ha.take_error();
    impl->ha = std::move(*ha);
    impl->ha->on_leading(
        [impl = impl.get()] { asio::post(impl->ioc, [impl] { impl->poll_now(); }); });
  }
  const Timestamp now = impl->deps.clock->now();
  for (auto& poller : impl->rt.pollers) {
    impl->gate(*poller);
    impl->add_slot(std::move(poller), now);
  }
  impl->rt.pollers.clear();
  impl->publish_config_state();
  return std::unique_ptr<Service>(new Service(std::move(impl)));
}

int Service::run() {
  Impl& s = *impl_;
  s.loop_tick.store(Impl::steady_ns());
  s.rt.metrics->config_reload(true, s.deps.clock->now());
  if (auto st = s.start_endpoint(); !st.ok()) {
    s.log.error("cannot start the HTTP endpoint: " + st.error().message,
                {{"listen", s.config.http.listen}});
    return 1;
  }
  // Only a start that got this far is recorded: a start that fails (and a systemd restart loop
  // of them) leaves the audit log alone. The first polls are armed below, after these events.
  auto started = record_startup(*s.rt.store, s.config, s.deps.clock->now());
  if (!started.ok()) {
    s.log.error("cannot record daemon start in the audit log",
                {{"error", started.error().message}});
    return 1;
  }
  s.exports->start();
  if (s.ha) s.ha->start();
  s.pool = std::make_unique<asio::thread_pool>(
      static_cast<std::size_t>(s.config.daemon.max_concurrent_polls));
  if (s.deps.handle_signals) {
    s.signals = std::make_unique<asio::signal_set>(s.ioc, SIGINT, SIGTERM, SIGHUP);
    s.wait_signal();
  }
  if (s.deps.notify_systemd) {
    if (auto wd = s.notifier.watchdog_interval()) {
      s.watchdog = true;
      s.heartbeat_period = std::min<Duration>(*wd / 2, std::chrono::seconds(10));
      if (s.heartbeat_period < std::chrono::milliseconds(100))
        s.heartbeat_period = std::chrono::milliseconds(100);
    }
  }
  s.heartbeat_timer = std::make_unique<asio::steady_timer>(s.ioc);
  const Timestamp now = s.deps.clock->now();
  for (auto& slot : s.slots) {
    slot->planned = now;
    s.arm(*slot);
  }
  {
    std::lock_guard lock(s.state_mu);
    s.accepting = true;
  }
  s.log.info("started",
             {{"version", kVersion},
              {"clusters", static_cast<std::int64_t>(s.slots.size())},
              {"database", s.config.daemon.database},
              {"http", s.endpoint ? s.endpoint->url() : std::string("disabled")},
              {"watchdog", s.watchdog ? format_duration(s.heartbeat_period) : std::string("off")}});
  if (s.slots.empty()) s.log.warn("no clusters configured; waiting for a signal");
  if (s.deps.notify_systemd) {
    s.notifier.ready("running; " + std::to_string(s.slots.size()) +
                     " clusters, first polls under way");
  }
  s.heartbeat();  // after READY=1: the first watchdog ping follows it
  s.guard.emplace(asio::make_work_guard(s.ioc));
  s.ioc.run();
  s.pool->join();
  // daemon_stopped is recorded: the exporters get a bounded time to deliver the rest.
  s.exports->drain_and_stop(kExportDrain);
  if (s.endpoint) s.endpoint->stop();
  return 0;
}

}  // namespace tw::daemon
