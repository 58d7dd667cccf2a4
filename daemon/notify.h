#pragma once
// The systemd notification protocol (sd_notify): READY=1, STATUS=, RELOADING=1, STOPPING=1 and
// WATCHDOG=1. Without $NOTIFY_SOCKET every call is a no-op, so the daemon runs the same in a
// terminal.
//
// Thread safety: the calls are thread-safe (each is one datagram). Errors: ignored, as systemd
// itself would (a missing socket must not stop the daemon). Never blocks: a datagram the
// receiver cannot queue right away is dropped.

#include <optional>
#include <string>
#include <string_view>

#include "core/time.h"

namespace tw::daemon {

class Notifier {
 public:
  void ready(std::string_view status);
  void status(std::string_view status);
  void reloading();
  void stopping();
  void watchdog();
  // WatchdogSec= as passed by systemd ($WATCHDOG_USEC for this process), if enabled.
  std::optional<Duration> watchdog_interval() const;
};

}  // namespace tw::daemon
