// Tests for daemon/notify.h: the sd_notify datagrams as a receiver bound in a temp dir (or in the
// abstract namespace) gets them, the no-op without or with an unusable $NOTIFY_SOCKET, that a
// full receiver never blocks the sender, and $WATCHDOG_USEC / $WATCHDOG_PID.

#include "daemon/notify.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <optional>
#include <string>

#include "tests/unit/core/test_support.h"

namespace tw::daemon {
namespace {

using tw::testing::ScopedEnv;

// A datagram socket that plays systemd's part. `name`: a path, or "@name" (abstract).
class Receiver {
 public:
  explicit Receiver(const std::string& name) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, name.data(), name.size());
    if (name[0] == '@') addr.sun_path[0] = '\0';
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
    bound_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), len) == 0;
  }
  ~Receiver() {
    if (fd_ >= 0) ::close(fd_);
  }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  bool bound() const { return bound_; }
  // The next datagram, or nullopt if none is queued.
  std::optional<std::string> next() const {
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }

 private:
  int fd_ = -1;
  bool bound_ = false;
};

class NotifyTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(receiver_.bound()) << std::strerror(errno); }

  tw::testing::TempDir dir_;
  const std::string path_ = dir_.file("notify");
  Receiver receiver_{path_};
  ScopedEnv socket_{"NOTIFY_SOCKET", path_};
  Notifier notifier_;
};

TEST_F(NotifyTest, EachCallIsOneDatagramOfTheProtocol) {
  notifier_.ready("polling 2 clusters");
  notifier_.status("poll of prod-eu failed");
  notifier_.stopping();
  notifier_.watchdog();
  EXPECT_EQ(receiver_.next(), "READY=1\nSTATUS=polling 2 clusters");
  EXPECT_EQ(receiver_.next(), "STATUS=poll of prod-eu failed");
  EXPECT_EQ(receiver_.next(), "STOPPING=1\nSTATUS=stopping");
  EXPECT_EQ(receiver_.next(), "WATCHDOG=1");
  EXPECT_EQ(receiver_.next(), std::nullopt);
}

long long monotonic_usec() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<long long>(t.tv_sec) * 1000000 + t.tv_nsec / 1000;
}

TEST_F(NotifyTest, ReloadingCarriesTheMonotonicTime) {
  const long long before = monotonic_usec();
  notifier_.reloading();
  const long long after = monotonic_usec();
  auto got = receiver_.next();
  ASSERT_TRUE(got.has_value());
  const std::string prefix = "RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC=";
  ASSERT_EQ(got->rfind(prefix, 0), 0u) << *got;
  const long long usec = std::stoll(got->substr(prefix.size()));
  EXPECT_LE(before, usec);
  EXPECT_LE(usec, after);
}

TEST_F(NotifyTest, AbstractNamespaceSocket) {
  const std::string name = "@tw-unit-notify-" + std::to_string(::getpid());
  Receiver abstract(name);
  ASSERT_TRUE(abstract.bound());
  ScopedEnv env("NOTIFY_SOCKET", name);
  notifier_.status("abstract");
  EXPECT_EQ(abstract.next(), "STATUS=abstract");
  EXPECT_EQ(receiver_.next(), std::nullopt);
}

TEST_F(NotifyTest, WithoutAUsableSocketNothingIsSent) {
  for (const std::optional<std::string>& value :
       {std::optional<std::string>(), std::optional<std::string>(""),
        std::optional<std::string>("relative/notify"),               // neither a path nor abstract
        std::optional<std::string>("/" + std::string(200, 'x'))}) {  // longer than sun_path
    ScopedEnv env("NOTIFY_SOCKET", value);
    notifier_.ready("x");
    notifier_.watchdog();
  }
  ScopedEnv gone("NOTIFY_SOCKET", dir_.file("nobody-listens"));
  notifier_.status("into the void");  // an absent receiver is ignored, as systemd would
  EXPECT_EQ(receiver_.next(), std::nullopt);
}

TEST_F(NotifyTest, AFullReceiverDropsMessagesInsteadOfBlocking) {
  // Nobody reads: the receiver's queue fills up long before this loop ends. A blocking send
  // would hang here (and the test would time out).
  for (int i = 0; i < 5000; ++i) notifier_.status("status " + std::to_string(i));
  EXPECT_EQ(receiver_.next(), "STATUS=status 0") << "what fitted was delivered in order";
}

TEST(NotifierWatchdog, IntervalFromTheEnvironment) {
  Notifier n;
  {
    ScopedEnv usec("WATCHDOG_USEC", "30000000");
    ScopedEnv pid("WATCHDOG_PID", std::to_string(::getpid()));
    EXPECT_EQ(n.watchdog_interval(), std::optional<Duration>(std::chrono::seconds(30)));
  }
  {
    ScopedEnv usec("WATCHDOG_USEC", "30000000");
    ScopedEnv pid("WATCHDOG_PID", std::to_string(::getpid() + 1));
    EXPECT_EQ(n.watchdog_interval(), std::nullopt) << "meant for another process";
  }
  {
    ScopedEnv usec("WATCHDOG_USEC", "0");
    ScopedEnv pid("WATCHDOG_PID", std::nullopt);
    EXPECT_EQ(n.watchdog_interval(), std::nullopt);
  }
  ScopedEnv usec("WATCHDOG_USEC", std::nullopt);
  EXPECT_EQ(n.watchdog_interval(), std::nullopt);
}

}  // namespace
}  // namespace tw::daemon
