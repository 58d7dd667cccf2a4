#include "daemon/notify.h"

#include <systemd/sd-daemon.h>
#include <time.h>

namespace tw::daemon {
namespace {

void send(const std::string& message) { (void)sd_notify(0, message.c_str()); }

}  // namespace

void Notifier::ready(std::string_view status) { send("READY=1\nSTATUS=" + std::string(status)); }

void Notifier::status(std::string_view status) { send("STATUS=" + std::string(status)); }

void Notifier::reloading() {
  // MONOTONIC_USEC lets systemd >= 253 match the reload to this notification (Type=notify-reload).
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  auto usec = static_cast<long long>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
  send("RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC=" + std::to_string(usec));
}

void Notifier::stopping() { send("STOPPING=1\nSTATUS=stopping"); }

void Notifier::watchdog() { send("WATCHDOG=1"); }

std::optional<Duration> Notifier::watchdog_interval() const {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::duration_cast<Duration>(std::chrono::microseconds(usec));
}

}  // namespace tw::daemon
