#include "daemon/notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace tw::daemon {
namespace {

// Like sd_notify(), but never blocks: libsystemd's sendmsg() waits when the receiver's queue is
// full (net.unix.max_dgram_qlen, often 10), and this is called from the event loop. A message
// that cannot be queued right away is dropped; the next STATUS or WATCHDOG follows soon.
void send(const std::string& message) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::size_t len = std::strlen(path);
  if ((path[0] != '/' && path[0] != '@') || len >= sizeof addr.sun_path) return;
  std::memcpy(addr.sun_path, path, len);
  if (path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return;
  const auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  (void)::sendto(fd, message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                 reinterpret_cast<const sockaddr*>(&addr), addr_len);
  ::close(fd);
}

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
