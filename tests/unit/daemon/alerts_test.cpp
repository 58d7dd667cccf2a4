// Tests for daemon/alerts.h: the Alertmanager body, and that a slow or dead receiver never
// blocks callers: the queue is bounded and drops are counted.
#include "daemon/alerts.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "tests/unit/core/test_support.h"

namespace tw::daemon {
namespace {

using tw::testing::ts;

// A loopback port with nothing listening (bound, then closed).
int dead_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

TEST(AlertDispatcher, AlertmanagerBodyIsTheApiV2Shape) {
  Alert a;
  a.labels = {{"alertname", "TokenPolicyViolation"}, {"cluster", "c1"}, {"token_id", "t\"1"}};
  a.annotations = {{"description", "line\nbreak <b>"}};
  a.starts_at = ts("2026-11-28T10:00:00Z");
  auto body =
      nlohmann::json::parse(AlertDispatcher::alertmanager_body({a}, ts("2026-11-28T10:03:00Z")));
  ASSERT_TRUE(body.is_array());
  ASSERT_EQ(body.size(), 1u);
  EXPECT_EQ(body[0]["labels"]["token_id"], "t\"1");
  EXPECT_EQ(body[0]["annotations"]["description"], "line\nbreak <b>");
  EXPECT_EQ(body[0]["startsAt"], "2026-11-28T10:00:00.000Z");
  EXPECT_EQ(body[0]["endsAt"], "2026-11-28T10:03:00.000Z");
}

TEST(AlertDispatcher, DeadReceiverNeverBlocksAndDropsAreCounted) {
  SystemClock clock;
  AlertingOptions o;
  o.webhook_url = "http://127.0.0.1:" + std::to_string(dead_port()) + "/hook";
  o.queue_capacity = 2;
  o.attempts = 3;  // each delivery keeps the worker busy ~1.75 s with back-off
  auto sink = std::make_shared<MemoryLogSink>();
  AlertDispatcher d(o, clock, Logger("alerts", sink));
  StateChange c;
  c.event = "violation_opened";
  c.cluster = "c1";
  auto start = std::chrono::steady_clock::now();
  // The worker takes at most one batch (at most `capacity` messages) before it is stuck retrying,
  // and the queue holds `capacity` more: of 7 messages at least 3 must be dropped.
  for (int i = 0; i < 7; ++i) d.state_changed(c);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::milliseconds(500)) << "state_changed must not wait for delivery";
  EXPECT_GE(d.counters().dropped.load(), 3);
  bool logged = false;
  for (const auto& l : sink->lines()) logged = logged || l.find("queue full") != std::string::npos;
  EXPECT_TRUE(logged);
  d.stop();
  EXPECT_GE(d.counters().webhook_failed.load(), 1);
}

}  // namespace
}  // namespace tw::daemon
