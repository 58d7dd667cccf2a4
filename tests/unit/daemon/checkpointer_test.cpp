// Tests for daemon/checkpointer.h through build_runtime (the key loaded from [audit]
// signing_key_file, also by credential name; the store's commit observer wired): the triggers on
// a manual clock — checkpoint_events, checkpoint_interval with something new, nothing new means
// no signature, a forced signature as at shutdown — the state read back after a restart, the key
// file checks, and the key never reaching a log line or the database.

#include "daemon/checkpointer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "daemon/runtime.h"
#include "storage/checkpoints.h"
#include "tests/unit/core/test_support.h"

namespace tw::daemon {
namespace {

using tw::testing::ts;

class CheckpointerTest : public ::testing::Test {
 protected:
  CheckpointerTest() {
    auto k = ed25519::PrivateKey::generate();
    EXPECT_TRUE(k.ok());
    key_pem_ = k->pem();
    key_id_ = k->key_id();
    config_.daemon.database = dir_.file("audit.db");
    config_.audit.signing_key_file = dir_.write("checkpoint.key", key_pem_);
    config_.audit.checkpoint_events = 5;
    config_.audit.checkpoint_interval = std::chrono::hours(1);
  }

  Runtime build() {
    auto rt = build_runtime(config_, clock_, sink_, RuntimeOptions{});
    EXPECT_TRUE(rt.ok()) << (rt.ok() ? "" : rt.error().message);
    return std::move(*rt);
  }

  static void events(Runtime& rt, int n, Timestamp at) {
    auto txn = rt.store->begin();
    ASSERT_TRUE(txn.ok());
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(txn->append(NewEvent{EventKind::kDaemonStarted, "", "", "{}"}, at).ok());
    }
    ASSERT_TRUE(txn->commit().ok());
  }

  static std::int64_t last_checkpoint(Runtime& rt) {
    auto last = storage::read_last_checkpoint(rt.store->db());
    return last.ok() && *last ? (*last)->seq : 0;
  }

  tw::testing::TempDir dir_;
  Config config_;
  std::string key_pem_;
  std::string key_id_;
  ManualClock clock_{ts("2026-01-01T00:00:00Z")};
  std::shared_ptr<MemoryLogSink> sink_ = std::make_shared<MemoryLogSink>();
};

TEST_F(CheckpointerTest, DueAfterCheckpointEvents) {
  Runtime rt = build();
  ASSERT_TRUE(rt.checkpointer->enabled());
  events(rt, 4, clock_.now());
  EXPECT_FALSE(rt.checkpointer->due(clock_.now()));
  events(rt, 1, clock_.now());
  EXPECT_TRUE(rt.checkpointer->due(clock_.now()));
  EXPECT_EQ(rt.checkpointer->sign(clock_.now()), 6);
  EXPECT_FALSE(rt.checkpointer->due(clock_.now()));  // its own event does not count
  EXPECT_EQ(last_checkpoint(rt), 6);
}

TEST_F(CheckpointerTest, DueAfterTheIntervalOnlyWithSomethingNew) {
  Runtime rt = build();
  clock_.advance(std::chrono::hours(2));
  EXPECT_FALSE(rt.checkpointer->due(clock_.now()));  // nothing appended
  events(rt, 1, clock_.now());
  EXPECT_TRUE(rt.checkpointer->due(clock_.now()));
  EXPECT_EQ(rt.checkpointer->sign(clock_.now()), 2);
  events(rt, 1, clock_.now());
  clock_.advance(std::chrono::minutes(59));
  EXPECT_FALSE(rt.checkpointer->due(clock_.now()));
  clock_.advance(std::chrono::minutes(1));
  EXPECT_TRUE(rt.checkpointer->due(clock_.now()));
}

TEST_F(CheckpointerTest, NothingNewIsNeverSigned) {
  Runtime rt = build();
  EXPECT_EQ(rt.checkpointer->sign(clock_.now()), 0);  // empty log
  events(rt, 2, clock_.now());
  EXPECT_EQ(rt.checkpointer->sign(clock_.now()), 3);  // forced, as at shutdown
  EXPECT_EQ(rt.checkpointer->sign(clock_.now()), 0);
  EXPECT_EQ(last_checkpoint(rt), 3);
}

TEST_F(CheckpointerTest, StateSurvivesARestart) {
  {
    Runtime rt = build();
    events(rt, 3, clock_.now());
    EXPECT_EQ(rt.checkpointer->sign(clock_.now()), 4);
    events(rt, 4, clock_.now());  // 4 unsigned events left behind
  }
  clock_.advance(std::chrono::minutes(1));
  Runtime rt = build();
  EXPECT_FALSE(rt.checkpointer->due(clock_.now()));
  events(rt, 1, clock_.now());
  EXPECT_TRUE(rt.checkpointer->due(clock_.now()));  // 4 + 1 >= 5
  clock_.advance(std::chrono::minutes(1));
  EXPECT_EQ(rt.checkpointer->sign(clock_.now()), 10);
}

TEST_F(CheckpointerTest, WithoutAKeyNothingIsSigned) {
  config_.audit.signing_key_file.clear();
  Runtime rt = build();
  EXPECT_FALSE(rt.checkpointer->enabled());
  events(rt, 10, clock_.now());
  EXPECT_FALSE(rt.checkpointer->due(clock_.now()));
  EXPECT_EQ(rt.checkpointer->sign(clock_.now()), 0);
}

TEST_F(CheckpointerTest, RelativeKeyNameIsACredential) {
  RuntimeOptions o;
  o.credentials_directory = dir_.path().string();
  config_.audit.signing_key_file = "checkpoint.key";
  auto rt = build_runtime(config_, clock_, sink_, o);
  ASSERT_TRUE(rt.ok()) << rt.error().message;
  EXPECT_TRUE(rt->checkpointer->enabled());
}

TEST_F(CheckpointerTest, UnreadableKeyRefusesToStartInOneSentence) {
  config_.audit.signing_key_file = dir_.write("bad.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n");
  auto rt = build_runtime(config_, clock_, sink_, RuntimeOptions{});
  ASSERT_FALSE(rt.ok());
  EXPECT_EQ(rt.error().message.rfind("audit.signing_key_file: ", 0), 0u) << rt.error().message;
  EXPECT_NE(rt.error().message.find("bad.key"), std::string::npos);
  config_.audit.signing_key_file = dir_.file("missing.key");
  EXPECT_FALSE(build_runtime(config_, clock_, sink_, RuntimeOptions{}).ok());
}

TEST_F(CheckpointerTest, KeyFileCheckWarnsAboutExposureAndRejectsOtherFiles) {
  auto ok = check_signing_key_file(config_.audit.signing_key_file, "");
  EXPECT_FALSE(ok.error);
  EXPECT_TRUE(ok.warnings.empty());
  auto exposed = check_signing_key_file(dir_.write("open.key", key_pem_, 0644), "");
  EXPECT_FALSE(exposed.error);
  ASSERT_EQ(exposed.warnings.size(), 1u);
  EXPECT_NE(exposed.warnings[0].find("readable by group or others"), std::string::npos);
  auto wrong = check_signing_key_file(dir_.write("x.key", "hello"), "");
  EXPECT_TRUE(wrong.error.has_value());
  auto dir = check_signing_key_file(dir_.path().string(), "");
  EXPECT_TRUE(dir.error.has_value());
}

TEST_F(CheckpointerTest, TheKeyReachesNoLogLineAndNoRow) {
  Runtime rt = build();
  events(rt, 5, clock_.now());
  ASSERT_GT(rt.checkpointer->sign(clock_.now()), 0);
  const std::string body = key_pem_.substr(28, 48);  // inside the base64 body
  for (const auto& line : sink_->lines()) EXPECT_EQ(line.find(body), std::string::npos) << line;
  for (const char* suffix : {"", "-wal"}) {
    std::string path = config_.daemon.database + suffix;
    if (!std::filesystem::exists(path)) continue;
    EXPECT_EQ(tw::testing::read_file(path).find(body), std::string::npos) << path;
  }
  bool logged = false;
  for (const auto& line : sink_->lines()) logged |= line.find(key_id_) != std::string::npos;
  EXPECT_TRUE(logged);  // the key id is public and logged with each checkpoint
}

}  // namespace
}  // namespace tw::daemon
