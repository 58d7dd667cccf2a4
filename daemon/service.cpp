#include "daemon/service.h"

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <csignal>
#include <optional>
#include <random>

#include "core/json_writer.h"
#include "core/version.h"
#include "daemon/records.h"
#include "daemon/runtime.h"
#include "storage/audit_store.h"

namespace tw::daemon {

namespace asio = boost::asio;

struct Service::Impl {
  struct Slot {
    ClusterPoller* poller = nullptr;
    std::unique_ptr<asio::steady_timer> timer;
    Timestamp planned;
    bool running = false;
  };

  Config config;
  ServiceDeps deps;
  Logger log;
  Runtime rt;
  asio::io_context ioc{1};
  std::unique_ptr<asio::thread_pool> pool;
  std::unique_ptr<asio::signal_set> signals;
  std::unique_ptr<asio::steady_timer> grace_timer;
  std::vector<Slot> slots;
  std::atomic<bool> cancel{false};
  bool stopping = false;
  bool finished = false;
  int running = 0;
  std::mt19937_64 rng{std::random_device{}()};
  std::function<void(const CycleReport&)> callback;
  // Keeps run() going while idle; released once everything is drained after stop().
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;

  Impl(Config c, ServiceDeps d)
      : config(std::move(c)), deps(std::move(d)), log("daemon", deps.sink) {}

  Duration jitter() {
    const Duration max = config.daemon.poll_jitter;
    if (max.count() <= 0) return Duration(0);
    std::uniform_int_distribution<Duration::rep> dist(0, max.count());
    return Duration(dist(rng));
  }

  void arm(Slot& slot) {
    Duration wait = slot.planned - deps.clock->now() + jitter();
    if (wait.count() < 0) wait = Duration(0);
    slot.timer->expires_after(wait);
    slot.timer->async_wait([this, &slot](const boost::system::error_code& ec) {
      if (ec || stopping) return;
      start_cycle(slot);
    });
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
    asio::post(*pool, [this, &slot, opts] {
      CycleReport rep = slot.poller->run_once(opts);
      asio::post(ioc, [this, &slot, rep = std::move(rep)] { cycle_done(slot, rep); });
    });
  }

  void cycle_done(Slot& slot, const CycleReport& rep) {
    slot.running = false;
    --running;
    if (callback) callback(rep);
    if (stopping) {
      maybe_finish();
      return;
    }
    schedule_next(slot);
  }

  void schedule_next(Slot& slot) {
    const Duration interval = slot.poller->cluster().poll_interval;
    const Timestamp now = deps.clock->now();
    auto behind = now - slot.planned;
    std::int64_t k = 1;
    if (behind > interval) k = (behind + interval - Duration(1)) / interval;
    if (k > 1) {
      log.warn("a poll cycle overran its interval; skipping missed polls",
               {{"cluster", slot.poller->cluster().name}, {"skipped", k - 1}});
    }
    slot.planned += interval * k;
    arm(slot);
  }

  void stop() {
    if (stopping) return;
    stopping = true;
    log.info("stopping", {{"running_cycles", running}});
    for (auto& s : slots) s.timer->cancel();
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
    std::string d;
    JsonWriter(d).begin_object().field("version", kVersion).field("pid", static_cast<std::int64_t>(::getpid()))
        .end_object();
    auto s = append_daemon_event(*rt.store, EventKind::kDaemonStopped, d, deps.clock->now());
    if (!s.ok()) log.error("could not record daemon_stopped", {{"error", s.error().message}});
    log.info("stopped");
    guard.reset();
  }

  void wait_signal() {
    signals->async_wait([this](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      if (signo == SIGHUP) {
        log.warn("SIGHUP received; live reload is not available yet, restart to apply changes");
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
  if (impl_ && impl_->pool) impl_->pool->join();
}

void Service::on_cycle(std::function<void(const CycleReport&)> callback) {
  impl_->callback = std::move(callback);
}

void Service::request_stop() {
  asio::post(impl_->ioc, [impl = impl_.get()] { impl->stop(); });
}

Result<std::unique_ptr<Service>> Service::create(Config config, ServiceDeps deps) {
  auto impl = std::make_unique<Impl>(std::move(config), std::move(deps));
  RuntimeOptions ro;
  ro.credentials_directory = impl->deps.credentials_directory;
  auto rt = build_runtime(impl->config, *impl->deps.clock, impl->deps.sink, ro);
  if (!rt.ok()) return rt.take_error();
  impl->rt = std::move(*rt);
  for (auto& poller : impl->rt.pollers) {
    Impl::Slot slot;
    slot.poller = poller.get();
    slot.timer = std::make_unique<asio::steady_timer>(impl->ioc);
    impl->slots.push_back(std::move(slot));
  }
  return std::unique_ptr<Service>(new Service(std::move(impl)));
}

int Service::run() {
  Impl& s = *impl_;
  auto started = record_startup(*s.rt.store, s.config, s.deps.clock->now());
  if (!started.ok()) {
    s.log.error("cannot record daemon start in the audit log", {{"error", started.error().message}});
    return 1;
  }
  s.pool = std::make_unique<asio::thread_pool>(static_cast<std::size_t>(s.config.daemon.max_concurrent_polls));
  if (s.deps.handle_signals) {
    s.signals = std::make_unique<asio::signal_set>(s.ioc, SIGINT, SIGTERM, SIGHUP);
    s.wait_signal();
  }
  const Timestamp now = s.deps.clock->now();
  for (auto& slot : s.slots) {
    slot.planned = now;
    s.arm(slot);
  }
  s.log.info("started", {{"version", kVersion},
                         {"clusters", static_cast<std::int64_t>(s.slots.size())},
                         {"database", s.config.daemon.database}});
  if (s.slots.empty()) s.log.warn("no clusters configured; waiting for a signal");
  s.guard.emplace(asio::make_work_guard(s.ioc));
  s.ioc.run();
  s.pool->join();
  return 0;
}

}  // namespace tw::daemon
