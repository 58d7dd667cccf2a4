// Tests for daemon/alerts.h: the Alertmanager body, that a slow or dead receiver never blocks
// callers (the queue is bounded and drops are counted), and reposts on a ManualClock. No test
// sleeps: a held receiver and wake() replace waiting.
#include "daemon/alerts.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "tests/unit/core/test_support.h"
#include "tests/unit/influx/test_http_server.h"

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

tw::testing::CannedResponse ok() {
  tw::testing::CannedResponse r;
  r.body = "{}";
  return r;
}

// A webhook receiver that holds every answer until release(): the worker is stuck in its first
// delivery for as long as the test wants, without any timing.
struct HeldReceiver {
  std::mutex mu;
  std::condition_variable cv;
  bool released = false;
  tw::testing::TestHttpServer server{[this](const tw::testing::RecordedRequest&) {
    std::unique_lock lock(mu);
    cv.wait(lock, [this] { return released; });
    return ok();
  }};
  void release() {
    {
      std::lock_guard lock(mu);
      released = true;
    }
    cv.notify_all();
  }
  ~HeldReceiver() { release(); }
};

StateChange violation_opened() {
  StateChange c;
  c.event = "violation_opened";
  c.cluster = "c1";
  return c;
}

TEST(AlertDispatcher, SlowReceiverNeverBlocksAndDropsAreCounted) {
  ManualClock clock(ts("2026-11-28T10:00:00Z"));
  HeldReceiver receiver;
  AlertingOptions o;
  o.webhook_url = receiver.server.base_url("/hook");
  o.queue_capacity = 2;
  o.timeout = std::chrono::minutes(5);  // the held delivery must not time out
  auto sink = std::make_shared<MemoryLogSink>();
  AlertDispatcher d(o, clock, Logger("alerts", sink));
  // The worker takes at most one batch (at most `capacity` messages) and is then held by the
  // receiver; the queue holds `capacity` more: of 7 messages at least 3 are dropped, and
  // state_changed returns every time (it would hang here otherwise).
  for (int i = 0; i < 7; ++i) d.state_changed(violation_opened());
  const std::int64_t dropped = d.counters().dropped.load();
  EXPECT_GE(dropped, 3);
  bool logged = false;
  for (const auto& l : sink->lines()) logged = logged || l.find("queue full") != std::string::npos;
  EXPECT_TRUE(logged);
  receiver.release();
  ASSERT_TRUE(d.idle(std::chrono::seconds(30)));
  EXPECT_EQ(d.counters().webhook_ok.load() + dropped, 7);
  EXPECT_EQ(d.counters().webhook_failed.load(), 0);
  EXPECT_EQ(static_cast<std::int64_t>(receiver.server.request_count()), 7 - dropped);
}

TEST(AlertDispatcher, DeadReceiverFailureIsCountedAfterEveryAttempt) {
  ManualClock clock(ts("2026-11-28T10:00:00Z"));
  AlertingOptions o;
  o.webhook_url = "http://127.0.0.1:" + std::to_string(dead_port()) + "/hook";
  o.attempts = 3;
  o.retry_backoff = Duration(0);  // no waiting between the attempts
  auto sink = std::make_shared<MemoryLogSink>();
  AlertDispatcher d(o, clock, Logger("alerts", sink));
  d.state_changed(violation_opened());
  ASSERT_TRUE(d.idle(std::chrono::seconds(30)));
  EXPECT_EQ(d.counters().webhook_failed.load(), 1);
  EXPECT_EQ(d.counters().webhook_ok.load(), 0);
  bool logged = false;
  for (const auto& l : sink->lines()) {
    logged = logged || l.find("alert delivery failed") != std::string::npos;
  }
  EXPECT_TRUE(logged);
}

// Alertmanager: posted when it appears, re-posted every `repost` on the injected clock with
// endsAt = now + 3 intervals, and posted once more with endsAt = now when it resolves.
TEST(AlertDispatcher, RepostsFollowTheManualClock) {
  ManualClock clock(ts("2026-11-28T10:00:00Z"));
  tw::testing::TestHttpServer am([](const tw::testing::RecordedRequest&) { return ok(); });
  AlertingOptions o;
  o.alertmanager_url = am.base_url("");
  o.repost = std::chrono::minutes(1);
  AlertDispatcher d(o, clock, Logger("alerts", std::make_shared<MemoryLogSink>()));
  auto ends_at = [&](std::size_t i) {
    auto body = nlohmann::json::parse(am.requests().at(i).body);
    return body.at(0).at("endsAt").get<std::string>();
  };
  Alert a;
  a.labels = {{"alertname", "TokenPolicyViolation"}, {"cluster", "c1"}, {"token_id", "t1"}};
  a.starts_at = clock.now();

  d.set_active("c1", {a});
  ASSERT_TRUE(d.idle(std::chrono::seconds(30)));
  ASSERT_EQ(am.request_count(), 1u);
  EXPECT_EQ(am.requests()[0].target, "/api/v2/alerts");
  EXPECT_EQ(ends_at(0), "2026-11-28T10:03:00.000Z");

  d.set_active("c1", {a});  // the same set: nothing to post
  clock.advance(std::chrono::seconds(59));
  d.wake();
  ASSERT_TRUE(d.idle(std::chrono::seconds(30)));
  EXPECT_EQ(am.request_count(), 1u) << "no repost before the interval";

  clock.advance(std::chrono::seconds(1));
  d.wake();
  ASSERT_TRUE(d.idle(std::chrono::seconds(30)));
  ASSERT_EQ(am.request_count(), 2u);
  EXPECT_EQ(ends_at(1), "2026-11-28T10:04:00.000Z");

  clock.advance(std::chrono::seconds(10));
  d.set_active("c1", {});  // resolved: posted once with endsAt = now
  ASSERT_TRUE(d.idle(std::chrono::seconds(30)));
  ASSERT_EQ(am.request_count(), 3u);
  EXPECT_EQ(ends_at(2), "2026-11-28T10:01:10.000Z");

  clock.advance(std::chrono::minutes(5));
  d.wake();
  ASSERT_TRUE(d.idle(std::chrono::seconds(30)));
  EXPECT_EQ(am.request_count(), 3u) << "nothing active, nothing re-posted";
}

// ---- [ha]: a standby is muted (set_muted) ----------------------------------------------------

Alert token_alert(const std::string& token_id, Timestamp starts_at) {
  Alert a;
  a.labels = {{"alertname", "TokenPolicyViolation"}, {"cluster", "c1"}, {"token_id", token_id}};
  a.starts_at = starts_at;
  return a;
}

TEST(HaAlertMute, MutedSendsNothingAndUnmutingPostsTheActiveSetAtOnce) {
  ManualClock clock(ts("2026-11-28T10:00:00Z"));
  tw::testing::TestHttpServer am([](const tw::testing::RecordedRequest&) { return ok(); });
  tw::testing::TestHttpServer hook([](const tw::testing::RecordedRequest&) { return ok(); });
  AlertingOptions o;
  o.alertmanager_url = am.base_url("");
  o.webhook_url = hook.base_url("/hook");
  o.repost = std::chrono::minutes(1);
  AlertDispatcher d(o, clock, Logger("alerts", std::make_shared<MemoryLogSink>()));
  EXPECT_FALSE(d.muted());
  d.set_muted(true);
  EXPECT_TRUE(d.muted());

  d.set_active("c1", {token_alert("t1", clock.now())});
  d.state_changed(violation_opened());
  ASSERT_TRUE(d.idle(std::chrono::seconds(30)));
  EXPECT_EQ(am.request_count(), 0u) << "a standby posts nothing to Alertmanager";
  EXPECT_EQ(hook.request_count(), 0u) << "a standby sends no webhook message";
  // Nor at the repost interval.
  clock.advance(std::chrono::minutes(2));
  d.wake();
  ASSERT_TRUE(d.idle(std::chrono::seconds(30)));
  EXPECT_EQ(am.request_count(), 0u);
  // The active set is kept current while muted.
  d.set_active("c1", {token_alert("t1", clock.now()), token_alert("t2", clock.now())});
  ASSERT_TRUE(d.idle(std::chrono::seconds(30)));
  EXPECT_EQ(am.request_count(), 0u);

  // Leading: the active set is posted at once (no clock advance, no wake), the webhook message
  // dropped while muted is not sent late.
  d.set_muted(false);
  EXPECT_FALSE(d.muted());
  ASSERT_TRUE(d.idle(std::chrono::seconds(30)));
  ASSERT_EQ(am.request_count(), 1u);
  auto body = nlohmann::json::parse(am.requests().at(0).body);
  ASSERT_TRUE(body.is_array());
  ASSERT_EQ(body.size(), 2u);
  std::set<std::string> ids;
  for (const auto& a : body) ids.insert(a.at("labels").at("token_id").get<std::string>());
  EXPECT_EQ(ids, (std::set<std::string>{"t1", "t2"}));
  EXPECT_EQ(hook.request_count(), 0u);
  EXPECT_EQ(d.counters().webhook_ok.load() + d.counters().webhook_failed.load(), 0);

  // Unmuted, the webhook works again.
  d.state_changed(violation_opened());
  ASSERT_TRUE(d.idle(std::chrono::seconds(30)));
  EXPECT_EQ(hook.request_count(), 1u);
}

TEST(HaAlertMute, UnmutingWithNothingActivePostsNothing) {
  ManualClock clock(ts("2026-11-28T10:00:00Z"));
  tw::testing::TestHttpServer am([](const tw::testing::RecordedRequest&) { return ok(); });
  AlertingOptions o;
  o.alertmanager_url = am.base_url("");
  AlertDispatcher d(o, clock, Logger("alerts", std::make_shared<MemoryLogSink>()));
  d.set_muted(true);
  d.set_muted(false);
  ASSERT_TRUE(d.idle(std::chrono::seconds(30)));
  EXPECT_EQ(am.request_count(), 0u);
}

TEST(HaAlertMute, AMutedFormerLeaderStopsRepostingAndLeavesResolvingToTheLeader) {
  ManualClock clock(ts("2026-11-28T10:00:00Z"));
  tw::testing::TestHttpServer am([](const tw::testing::RecordedRequest&) { return ok(); });
  AlertingOptions o;
  o.alertmanager_url = am.base_url("");
  o.repost = std::chrono::minutes(1);
  AlertDispatcher d(o, clock, Logger("alerts", std::make_shared<MemoryLogSink>()));
  d.set_active("c1", {token_alert("t1", clock.now())});
  ASSERT_TRUE(d.idle(std::chrono::seconds(30)));
  ASSERT_EQ(am.request_count(), 1u);

  d.set_muted(true);  // leadership lost
  clock.advance(std::chrono::minutes(2));
  d.wake();
  ASSERT_TRUE(d.idle(std::chrono::seconds(30)));
  EXPECT_EQ(am.request_count(), 1u) << "no repost while muted";
  d.set_active("c1", {});  // resolved, as a standby sees it
  ASSERT_TRUE(d.idle(std::chrono::seconds(30)));
  EXPECT_EQ(am.request_count(), 1u) << "the leader resolves it, not a standby";
  d.set_muted(false);
  ASSERT_TRUE(d.idle(std::chrono::seconds(30)));
  EXPECT_EQ(am.request_count(), 1u) << "nothing active, nothing resolved to post";
}

}  // namespace
}  // namespace tw::daemon
